/* Compute kernels chosen once at start from the CPU's features: AVX-512, AVX2+FMA, or a portable
 * path. Each ISA's kernels live in a file of their own (lib/kernels/gemm_avx512.c, gemm_avx2.c,
 * gemm_generic.c) compiled for that ISA only; nothing runs an instruction the CPU lacks.
 *
 * The environment variable BIO_CPU=avx512|avx2|generic forces a path (a path the CPU lacks is an
 * error at bio_kernels_init); unset or "auto" takes the best the CPU has. BIO_BLAS=own|openblas|
 * auto chooses who computes the GEMMs (see bio_kernels_uses_openblas).
 *
 * SGEMM: C = alpha op(A) op(B) + beta C, row-major, single-threaded (callers split work over
 * their own threads in pieces fixed independently of the thread count). Each element of C is a
 * sum over k in a fixed order (blocks of BIO_SGEMM_KC in increasing k, each block summed in
 * increasing k), whatever m, n, the position in C or the thread that computes it: results are
 * bit-identical for any split of M or N, and differ between ISAs only by rounding (FMA). With
 * beta == 0, C is not read (NaN in C does not propagate). */
#ifndef BIO_KERNELS_H
#define BIO_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"

enum bio_isa { BIO_ISA_GENERIC, BIO_ISA_AVX2, BIO_ISA_AVX512, BIO_ISA_COUNT };

#define BIO_SGEMM_KC 256

/* Chooses the path (BIO_CPU, else the best supported); idempotent. Fails (BIO_EINVAL) when
 * BIO_CPU names an unknown path or one this CPU lacks, naming what it has. */
int bio_kernels_init(struct bio_error *err);
/* The path in use (bio_kernels_init first: the other calls do it with the default on first use
 * and abort on a bad BIO_CPU). */
enum bio_isa bio_kernels_isa(void);
const char *bio_isa_name(enum bio_isa isa);
/* 1 when this CPU (and OS) can run isa's kernels. */
int bio_isa_supported(enum bio_isa isa);
/* Switches the path (tests, benchmarks); -1 when unsupported. Not thread-safe: call between
 * computations. */
int bio_kernels_set_isa(enum bio_isa isa);

/* 1 when the GEMMs go to OpenBLAS: BIO_BLAS=openblas, or (BIO_BLAS unset or auto, BIO_CPU
 * unset) OpenBLAS picked a core made for this CPU (SkylakeX, Cooperlake, SapphireRapids on AVX-512;
 * those or Haswell, Zen on AVX2). Otherwise (BIO_BLAS=own, BIO_CPU set, or OpenBLAS running a
 * fallback core such as Prescott on a CPU it does not know) biopipe's own kernels of the chosen
 * path. */
int bio_kernels_uses_openblas(void);
/* One line for -v: "kernels avx512 (cpu: avx512 avx2 generic), BLAS OpenBLAS 0.3.21 core
 * Prescott (not used for the hot loops)". */
const char *bio_kernels_describe(void);

/* The first layer's convolution (1 input channel, 3x3, stride 1, padding 1), direct, on the
 * chosen path (whoever computes the GEMMs): out[co * out_ld + j h w + y w + x] for samples j < n
 * of in [n][h][w], weights w [c_out][9], + bias[co] when bias is non-NULL; and its weight
 * gradient dw [c_out][9] from d_out (same layout, channel stride d_ld), added to dw when
 * accumulate, else written. Sums run in a fixed order (conv_c1.h). */
void bio_conv3x3_c1_forward(const float *w, const float *bias, int c_out, const float *in, int n,
			    int h, int wd, float *out, size_t out_ld);
void bio_conv3x3_c1_dweights(float *dw, int c_out, const float *in, const float *d_out, int n,
			     int h, int wd, size_t d_ld, int accumulate);

/* Direct 3x3 convolution (stride 1, padding 1, any input channels; lib/kernels/conv3x3.h): 1
 * when it takes c_out output channels on planes wd wide on the chosen path (not with BIO_CONV=gemm,
 * which sends every convolution through im2col + GEMM). Channel c of sample j at p + c ld +
 * j h wd. Where bio_conv3x3_winograd says so, the forward runs Winograd instead (not with
 * BIO_CONV=direct): it returns 4 for F(4x4, 3x3) (lib/kernels/wino4.h, 4 times fewer
 * multiplications: planes a multiple of 4), 2 for F(2x2, 3x3) (wino.h, 2.25 times: even planes),
 * 0 for the direct kernel; each the same convolution within rounding. The weights are packed first, for the kernel the path chosen now
 * runs on h x wd planes (BIO_CONV3X3_PACKED floats at wp): w [c_out][c_in][9]; with flip, w is
 * [c_in][c_out][9] and is packed transposed and flipped, which makes the input gradient of that
 * layer from its output gradient (c_in, c_out then name the gradient's). Forward: out =
 * conv(in) + bias (bias may be NULL). The weight gradient dw [c_out][c_in][9] (+)= d_out x in
 * over samples j < n (Winograd too where bio_conv3x3_winograd_dw says so). Fixed summation orders (conv3x3.h, wino.h): no result
 * depends on the samples beside it in a call or on the thread that computes it. */
#define BIO_CONV3X3_PACKED(c_in, c_out) ((size_t)(c_in) * (size_t)(c_out) * 36)
int bio_conv3x3_direct(int c_out, int wd);
int bio_conv3x3_winograd(int c_out, int h, int wd);
int bio_conv3x3_winograd_dw(int c_in, int c_out, int h, int wd);
void bio_conv3x3_pack(float *wp, const float *w, int flip, int c_in, int c_out, int h, int wd);
void bio_conv3x3_forward(const float *wp, const float *bias, int c_in, int c_out,
			 const float *in, size_t in_ld, int n, int h, int wd, float *out,
			 size_t out_ld);
void bio_conv3x3_dweights(float *dw, int c_in, int c_out, const float *in, size_t in_ld,
			  const float *d_out, size_t d_ld, int n, int h, int wd, int accumulate);

/* One row pair of a plane through the batch-norm affine, ReLU and a 2 x 2 max-pool: out[j] =
 * the largest of max(0, g x + b) over r0[2j], r0[2j + 1], r1[2j], r1[2j + 1] (g x + b a multiply
 * then an add), argmax[j] its position 0..3 (the first in that order); the same bits on every
 * path. */
void bio_relu_pool2_row(float *out, uint8_t *argmax, const float *r0, const float *r1, int wo,
			float g, float b);

/* The backward of that pooling for one row pair x0, x1 of the batch-norm output, wo windows:
 * grad_sums: *r1 = the sum of g, *r2 = of g x, over the windows, where g = dp[j] when po[j] > 0
 * (else 0) and x the input at the window's arg-max am[j]; grad_scatter: x[arg-max] += a dp[j]
 * for windows with po[j] > 0, other cells untouched. The sums' order is the path's (windows in
 * order; AVX-512: per lane over groups of 16, then lanes in order, then the rest in order). */
void bio_pool2_grad_sums(float *r1, float *r2, const float *dp, const float *po,
			 const uint8_t *am, const float *x0, const float *x1, int wo);
void bio_pool2_grad_scatter(float *x0, float *x1, const float *dp, const float *po,
			    const uint8_t *am, int wo, float a);

/* One Adam / AdamW step over elements [0, n) (lib/kernels/adam.h): for each, with AdamW p *=
 * decay, else with weight decay g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g; p +=
 * neg_step m / (sqrt(v) / bc2s + eps); each operation rounded once, in that order, on every path
 * (bio_adam_one is the element's reference form). */
struct bio_adam {
	float decay, wd, b1, one_b1, b2, one_b2, bc2s, eps, neg_step;
	int adamw;
};
void bio_adam(float *p, const float *g, float *m, float *v, size_t n, const struct bio_adam *c);
static inline void bio_adam_one(float *p, float g, float *m, float *v, const struct bio_adam *c)
{
	float pi = *p;
	if (c->adamw)
		pi = pi * c->decay;
	else if (c->wd != 0.0f)
		g = g + c->wd * pi;
	const float mi = *m * c->b1 + c->one_b1 * g, vi = *v * c->b2 + c->one_b2 * (g * g);
	*m = mi;
	*v = vi;
	*p = pi + c->neg_step * (mi / (sqrtf(vi) / c->bc2s + c->eps));
}

void bio_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
	       const float *b, int ldb, float beta, float *c, int ldc);

/* A linear layer's weight gradient over n samples (lib/kernels/lin_dw.h): dw[r ld_dw + c] += the
 * sum over s < n of d[s ld_d + r] in[s ld_in + c] (r < rows, c < cols), per piece of
 * BIO_NN_PIECE samples, the pieces added by the stride-doubling tree; each element's bits the
 * same whatever range of rows and columns a call takes. */
void bio_lin_dw_tree(float *dw, size_t ld_dw, int rows, int cols, const float *d, size_t ld_d,
		     const float *in, size_t ld_in, int n);

#endif
