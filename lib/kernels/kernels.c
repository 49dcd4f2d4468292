/* The kernel path, chosen once: BIO_CPU, else the best this CPU runs (CPUID and the OS's saved
 * register state, as __builtin_cpu_supports reports them), and the one-line description -v
 * prints, with the BLAS core OpenBLAS picked for itself (it may be a fallback core on CPUs it
 * does not know; the hot loops do not use it). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cblas.h>

#include "bio/kernels.h"
#include "pool.h"

void bio_sgemm_generic(int, int, int, int, int, float, const float *, int, const float *, int,
		       float, float *, int);
void bio_sgemm_avx2(int, int, int, int, int, float, const float *, int, const float *, int,
		    float, float *, int);
void bio_sgemm_avx512(int, int, int, int, int, float, const float *, int, const float *, int,
		      float, float *, int);

#define C1_DECL(isa)                                                                          \
	void bio_conv_c1_forward_##isa(const float *, const float *, int, const float *, int, int, \
				       int, float *, size_t);                                     \
	void bio_conv_c1_dweights_##isa(float *, int, const float *, const float *, int, int, int, \
					size_t, int);
C1_DECL(generic)
C1_DECL(avx2)
C1_DECL(avx512)

#define CONV_DECL(isa)                                                                         \
	void bio_conv3x3_pack_##isa(float *, const float *, int, int, int);                      \
	void bio_conv3x3_forward_##isa(const float *, const float *, int, int, const float *,    \
				       size_t, int, int, int, float *, size_t);                   \
	void bio_conv3x3_dweights_##isa(float *, int, int, const float *, size_t, const float *,  \
					size_t, int, int, int, int);                               \
	int bio_wino_fits_##isa(int, int, int);                                                  \
	void bio_wino_pack_##isa(float *, const float *, int, int, int);                         \
	void bio_wino_forward_##isa(const float *, const float *, int, int, const float *,       \
				    size_t, int, int, int, float *, size_t);                       \
	int bio_wino4_fits_##isa(int, int, int);                                                 \
	void bio_wino4_pack_##isa(float *, const float *, int, int, int);                        \
	void bio_wino4_forward_##isa(const float *, const float *, int, int, const float *,      \
				     size_t, int, int, int, float *, size_t);                      \
	int bio_wino_dw_fits_##isa(int, int, int, int);                                          \
	void bio_wino_dweights_##isa(float *, int, int, const float *, size_t, const float *,    \
				     size_t, int, int, int, int);
CONV_DECL(generic)
CONV_DECL(avx2)
CONV_DECL(avx512)

#define LIN_DECL(isa)                                                                          \
	void bio_lin_dw_tree_##isa(float *, size_t, int, int, const float *, size_t, const float *, \
				   size_t, int);
LIN_DECL(generic)
LIN_DECL(avx2)
LIN_DECL(avx512)

void bio_pool2_grad_scatter_avx512(float *x0, float *x1, const float *dp, const float *po,
				   const uint8_t *am, int wo, float a);

void bio_adam_generic(float *, const float *, float *, float *, size_t, const struct bio_adam *);
void bio_adam_avx2(float *, const float *, float *, float *, size_t, const struct bio_adam *);
void bio_adam_avx512(float *, const float *, float *, float *, size_t, const struct bio_adam *);

typedef void (*sgemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int,
			 float, float *, int);

/* the 3x3 convolutions' and fc1's weight-gradient functions of one path, in the table's order */
#define CONV_FNS(isa)                                                                          \
	bio_conv3x3_pack_##isa, bio_conv3x3_forward_##isa, bio_conv3x3_dweights_##isa,          \
		bio_wino_fits_##isa, bio_wino_pack_##isa, bio_wino_forward_##isa,                 \
		bio_wino4_fits_##isa, bio_wino4_pack_##isa, bio_wino4_forward_##isa,              \
		bio_wino_dw_fits_##isa, bio_wino_dweights_##isa, bio_lin_dw_tree_##isa

static const struct {
	const char *name;
	sgemm_fn sgemm;
	void (*c1_forward)(const float *, const float *, int, const float *, int, int, int, float *,
			   size_t);
	void (*c1_dweights)(float *, int, const float *, const float *, int, int, int, size_t, int);
	int vw, mr; /* the direct 3x3 kernels' vector width and channels per tile */
	void (*pack)(float *, const float *, int, int, int);
	void (*forward)(const float *, const float *, int, int, const float *, size_t, int, int, int,
			float *, size_t);
	void (*dweights)(float *, int, int, const float *, size_t, const float *, size_t, int, int,
			 int, int);
	/* Winograd F(2x2, 3x3) (wino.h): the shapes it takes, pack, forward */
	int (*wino_fits)(int, int, int);
	void (*wino_pack)(float *, const float *, int, int, int);
	void (*wino_forward)(const float *, const float *, int, int, const float *, size_t, int, int,
			     int, float *, size_t);
	/* Winograd F(4x4, 3x3) (wino4.h) */
	int (*wino4_fits)(int, int, int);
	void (*wino4_pack)(float *, const float *, int, int, int);
	void (*wino4_forward)(const float *, const float *, int, int, const float *, size_t, int,
			      int, int, float *, size_t);
	int (*wino_dw_fits)(int, int, int, int);
	void (*wino_dweights)(float *, int, int, const float *, size_t, const float *, size_t, int,
			      int, int, int);
	void (*lin_dw)(float *, size_t, int, int, const float *, size_t, const float *, size_t,
		       int);
	/* the batch-norm affine + ReLU + max-pool row and its backward (generic where a path has
	 * none of its own) */
	void (*relu_pool)(float *, uint8_t *, const float *, const float *, int, float, float);
	void (*pool_sums)(float *, float *, const float *, const float *, const uint8_t *,
			  const float *, const float *, int);
	void (*pool_scatter)(float *, float *, const float *, const float *, const uint8_t *, int,
			     float);
	void (*adam)(float *, const float *, float *, float *, size_t, const struct bio_adam *);
} isas[BIO_ISA_COUNT] = {
	[BIO_ISA_GENERIC] = {"generic", bio_sgemm_generic, bio_conv_c1_forward_generic,
			     bio_conv_c1_dweights_generic, 4, 4, CONV_FNS(generic),
			     bio_relu_pool2_row_generic, bio_pool2_grad_sums_generic,
			     bio_pool2_grad_scatter_generic, bio_adam_generic},
	[BIO_ISA_AVX2] = {"avx2", bio_sgemm_avx2, bio_conv_c1_forward_avx2,
			  bio_conv_c1_dweights_avx2, 8, 4, CONV_FNS(avx2), bio_relu_pool2_row_avx2,
			  bio_pool2_grad_sums_avx2, bio_pool2_grad_scatter_generic, bio_adam_avx2},
	[BIO_ISA_AVX512] = {"avx512", bio_sgemm_avx512, bio_conv_c1_forward_avx512,
			    bio_conv_c1_dweights_avx512, 16, 8, CONV_FNS(avx512),
			    bio_relu_pool2_row_avx512, bio_pool2_grad_sums_avx512,
			    bio_pool2_grad_scatter_avx512, bio_adam_avx512},
};

static enum bio_isa current = BIO_ISA_GENERIC;
static int chosen;
static int use_openblas; /* the GEMMs go to OpenBLAS (its core suits this CPU, or BIO_BLAS) */
static int conv_gemm;	 /* BIO_CONV=gemm: every convolution through im2col + GEMM */
static int conv_direct;	 /* BIO_CONV=direct: the direct 3x3 kernels also where Winograd fits */
static const char *why = "";
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct bio_error init_err;
static int init_rc;

/* Per-thread scratch buffers of the kernels, freed when the thread exits (pool threads come and
 * go with their models). */
enum { N_SLOTS = 13 }; /* 0-7 the kernels, 8-9 nn.c's sums over pieces, 10-12 its im2col,
			* fused weight-gradient tiles and fused first block */
struct scratch {
	void *p[N_SLOTS];
	size_t cap[N_SLOTS];
};
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_ready; /* the key exists (a program that ran no kernel has none) */

static void scratch_free(void *v)
{
	struct scratch *s = v;
	for (int i = 0; i < N_SLOTS; i++)
		free(s->p[i]);
	free(s);
}

static void scratch_init(void)
{
	if (pthread_key_create(&scratch_key, scratch_free) != 0)
		abort();
	scratch_ready = 1;
}

void *bio_kernels_scratch(int slot, size_t bytes);
void *bio_kernels_scratch(int slot, size_t bytes)
{
	pthread_once(&scratch_once, scratch_init);
	struct scratch *s = pthread_getspecific(scratch_key);
	if (!s) {
		if (!(s = calloc(1, sizeof *s)) || pthread_setspecific(scratch_key, s) != 0)
			abort();
	}
	if (bytes > s->cap[slot]) {
		free(s->p[slot]);
		size_t n = ((bytes + 63) / 64) * 64;
		if (!(s->p[slot] = aligned_alloc(64, n)))
			abort();
		s->cap[slot] = n;
	}
	return s->p[slot];
}

/* The main thread's buffers at exit (it never runs the key's destructor). */
__attribute__((destructor)) static void scratch_at_exit(void)
{
	struct scratch *s = scratch_ready ? pthread_getspecific(scratch_key) : NULL;
	if (s) {
		pthread_setspecific(scratch_key, NULL);
		scratch_free(s);
	}
}

const char *bio_isa_name(enum bio_isa isa)
{
	return isa >= 0 && isa < BIO_ISA_COUNT ? isas[isa].name : "?";
}

int bio_isa_supported(enum bio_isa isa)
{
	__builtin_cpu_init();
	switch (isa) {
	case BIO_ISA_GENERIC: return 1;
	case BIO_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	case BIO_ISA_AVX512: return __builtin_cpu_supports("avx512f");
	default: return 0;
	}
}

/* "avx512 avx2 generic": the paths this CPU runs, widest first. */
static void supported_names(char have[64])
{
	have[0] = 0;
	for (int j = BIO_ISA_COUNT - 1; j >= 0; j--)
		if (bio_isa_supported((enum bio_isa)j)) {
			strcat(have, have[0] ? " " : "");
			strcat(have, isas[j].name);
		}
}

/* True when OpenBLAS picked a core made for this CPU's widest vectors: on CPUs it does not know
 * it falls back to old SSE3 cores (Debian's 0.3.21 runs "Prescott" on some AVX-512 Xeons). */
static int openblas_core_suits(void)
{
	const char *core = openblas_get_corename();
	static const char *const avx512_cores[] = {"skylakex", "cooperlake", "sapphirerapids"};
	static const char *const avx2_cores[] = {"haswell", "zen", "skylakex", "cooperlake",
						 "sapphirerapids"};
	if (!core)
		return 0;
	if (bio_isa_supported(BIO_ISA_AVX512)) {
		for (size_t i = 0; i < sizeof avx512_cores / sizeof avx512_cores[0]; i++)
			if (!strcasecmp(core, avx512_cores[i]))
				return 1;
		return 0;
	}
	if (bio_isa_supported(BIO_ISA_AVX2)) {
		for (size_t i = 0; i < sizeof avx2_cores / sizeof avx2_cores[0]; i++)
			if (!strcasecmp(core, avx2_cores[i]))
				return 1;
		return 0;
	}
	return 1; /* no AVX2: OpenBLAS's SSE kernels are what the CPU has */
}

static void choose_blas(int forced_isa)
{
	const char *blas = getenv("BIO_BLAS");
	if (blas && !strcmp(blas, "openblas")) {
		use_openblas = 1;
		why = "BIO_BLAS=openblas";
	} else if (blas && !strcmp(blas, "own")) {
		why = "BIO_BLAS=own";
	} else if (blas && *blas && strcmp(blas, "auto") != 0) {
		init_rc = bio_error_set(&init_err, BIO_EINVAL,
					"BIO_BLAS=%s: unknown (expected own, openblas or auto)", blas);
	} else if (forced_isa) {
		why = "BIO_CPU";
	} else if (openblas_core_suits()) {
		use_openblas = 1;
		why = "its core suits this CPU";
	} else {
		why = "OpenBLAS's core does not suit this CPU";
	}
}

static void choose_isa(void);

static void choose_conv(void)
{
	const char *c = getenv("BIO_CONV");
	if (c && !strcmp(c, "gemm"))
		conv_gemm = 1;
	else if (c && !strcmp(c, "direct"))
		conv_direct = 1;
	else if (c && *c && strcmp(c, "auto") != 0)
		init_rc = bio_error_set(&init_err, BIO_EINVAL,
					"BIO_CONV=%s: unknown (expected auto, direct or gemm)", c);
}

static void choose(void)
{
	choose_conv();
	if (init_rc == 0)
		choose_isa();
	if (init_rc == 0)
		choose_blas(getenv("BIO_CPU") && *getenv("BIO_CPU") &&
			    strcmp(getenv("BIO_CPU"), "auto") != 0);
}

static void choose_isa(void)
{
	const char *want = getenv("BIO_CPU");
	if (want && *want && strcmp(want, "auto") != 0) {
		for (int i = 0; i < BIO_ISA_COUNT; i++)
			if (strcmp(want, isas[i].name) == 0) {
				if (!bio_isa_supported((enum bio_isa)i)) {
					char have[64];
					supported_names(have);
					init_rc = bio_error_set(&init_err, BIO_EINVAL,
								"BIO_CPU=%s: this CPU does not "
								"support it (it has: %s)",
								want, have);
					return;
				}
				current = (enum bio_isa)i;
				chosen = 1;
				return;
			}
		init_rc = bio_error_set(&init_err, BIO_EINVAL,
					"BIO_CPU=%s: unknown (expected avx512, avx2, generic or "
					"auto)",
					want);
		return;
	}
	current = bio_isa_supported(BIO_ISA_AVX512) ? BIO_ISA_AVX512
		  : bio_isa_supported(BIO_ISA_AVX2) ? BIO_ISA_AVX2
						    : BIO_ISA_GENERIC;
	chosen = 1;
}

int bio_kernels_init(struct bio_error *err)
{
	pthread_once(&once, choose);
	if (init_rc && err)
		*err = init_err;
	return init_rc;
}

enum bio_isa bio_kernels_isa(void)
{
	if (!chosen && bio_kernels_init(NULL) != 0) {
		fprintf(stderr, "bio: %s\n", init_err.msg);
		abort();
	}
	return current;
}

int bio_kernels_set_isa(enum bio_isa isa)
{
	if (isa < 0 || isa >= BIO_ISA_COUNT || !bio_isa_supported(isa))
		return -1;
	bio_kernels_isa(); /* the once-choice happened: it will not override this one */
	current = isa;
	use_openblas = 0;
	why = "set by the program";
	return 0;
}

int bio_kernels_uses_openblas(void)
{
	bio_kernels_isa();
	return use_openblas;
}

const char *bio_kernels_describe(void)
{
	static char line[256];
	char have[64];
	supported_names(have);
	enum bio_isa isa = bio_kernels_isa();
	const char *conv = conv_gemm ? "3x3 convolutions by im2col + GEMM (BIO_CONV=gemm)"
			   : conv_direct ? "3x3 convolutions direct (BIO_CONV=direct)"
					 : "3x3 convolutions Winograd F(4x4,3x3) or F(2x2,3x3) where the "
					   "shape fits, else direct";
	if (use_openblas)
		snprintf(line, sizeof line,
			 "kernels %s (cpu: %s); %s; GEMMs by OpenBLAS, core %s (%s)",
			 bio_isa_name(isa), have, conv, openblas_get_corename(), why);
	else
		snprintf(line, sizeof line,
			 "kernels %s (cpu: %s); %s; GEMMs by biopipe's %s kernels (%s; OpenBLAS "
			 "core %s)",
			 bio_isa_name(isa), have, conv, bio_isa_name(isa), why,
			 openblas_get_corename());
	return line;
}

void bio_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
	       const float *b, int ldb, float beta, float *c, int ldc)
{
	enum bio_isa isa = bio_kernels_isa();
	if (use_openblas) {
		cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
			    trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb,
			    beta, c, ldc);
		return;
	}
	isas[isa].sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
				      ldc);
}

void bio_lin_dw_tree(float *dw, size_t ld_dw, int rows, int cols, const float *d, size_t ld_d,
		     const float *in, size_t ld_in, int n)
{
	isas[bio_kernels_isa()].lin_dw(dw, ld_dw, rows, cols, d, ld_d, in, ld_in, n);
}

void bio_conv3x3_c1_forward(const float *w, const float *bias, int c_out, const float *in, int n,
			    int h, int wd, float *out, size_t out_ld)
{
	isas[bio_kernels_isa()].c1_forward(w, bias, c_out, in, n, h, wd, out, out_ld);
}

void bio_conv3x3_c1_dweights(float *dw, int c_out, const float *in, const float *d_out, int n,
			     int h, int wd, size_t d_ld, int accumulate)
{
	isas[bio_kernels_isa()].c1_dweights(dw, c_out, in, d_out, n, h, wd, d_ld, accumulate);
}

int bio_conv3x3_direct(int c_out, int wd)
{
	enum bio_isa isa = bio_kernels_isa();
	return !conv_gemm && c_out % isas[isa].mr == 0 && wd % isas[isa].vw == 0;
}

/* the forward kernel on this shape: 4 Winograd F(4x4, 3x3), 2 F(2x2, 3x3), 0 direct */
static int conv3x3_kind(int c_out, int h, int wd)
{
	if (!bio_conv3x3_direct(c_out, wd) || conv_direct)
		return 0;
	enum bio_isa isa = bio_kernels_isa();
	return isas[isa].wino4_fits(c_out, h, wd) ? 4 : isas[isa].wino_fits(c_out, h, wd) ? 2 : 0;
}

int bio_conv3x3_winograd(int c_out, int h, int wd)
{
	return conv3x3_kind(c_out, h, wd);
}

int bio_conv3x3_winograd_dw(int c_in, int c_out, int h, int wd)
{
	return bio_conv3x3_direct(c_out, wd) && !conv_direct &&
	       isas[bio_kernels_isa()].wino_dw_fits(c_in, c_out, h, wd);
}

void bio_conv3x3_pack(float *wp, const float *w, int flip, int c_in, int c_out, int h, int wd)
{
	const int kind = conv3x3_kind(c_out, h, wd);
	if (kind == 4)
		isas[bio_kernels_isa()].wino4_pack(wp, w, flip, c_in, c_out);
	else if (kind == 2)
		isas[bio_kernels_isa()].wino_pack(wp, w, flip, c_in, c_out);
	else
		isas[bio_kernels_isa()].pack(wp, w, flip, c_in, c_out);
}

void bio_conv3x3_forward(const float *wp, const float *bias, int c_in, int c_out,
			 const float *in, size_t in_ld, int n, int h, int wd, float *out,
			 size_t out_ld)
{
	if (!bio_conv3x3_direct(c_out, wd))
		abort(); /* (the callers ask first) */
	const int kind = conv3x3_kind(c_out, h, wd);
	if (kind == 4)
		isas[bio_kernels_isa()].wino4_forward(wp, bias, c_in, c_out, in, in_ld, n, h, wd,
						      out, out_ld);
	else if (kind == 2)
		isas[bio_kernels_isa()].wino_forward(wp, bias, c_in, c_out, in, in_ld, n, h, wd, out,
						     out_ld);
	else
		isas[bio_kernels_isa()].forward(wp, bias, c_in, c_out, in, in_ld, n, h, wd, out,
						out_ld);
}

void bio_conv3x3_dweights(float *dw, int c_in, int c_out, const float *in, size_t in_ld,
			  const float *d_out, size_t d_ld, int n, int h, int wd, int accumulate)
{
	if (!bio_conv3x3_direct(c_out, wd))
		abort();
	if (bio_conv3x3_winograd_dw(c_in, c_out, h, wd))
		isas[bio_kernels_isa()].wino_dweights(dw, c_in, c_out, in, in_ld, d_out, d_ld, n, h,
						      wd, accumulate);
	else
		isas[bio_kernels_isa()].dweights(dw, c_in, c_out, in, in_ld, d_out, d_ld, n, h, wd,
						 accumulate);
}

static inline float affine_relu1(float x, float g, float b)
{
	float v = g * x + b;
	return v > 0.0f ? v : 0.0f;
}

void bio_relu_pool2_row_generic(float *out, uint8_t *argmax, const float *r0, const float *r1,
				int wo, float g, float b)
{
	for (int j = 0; j < wo; j++) {
		float v0 = affine_relu1(r0[2 * j], g, b), v1 = affine_relu1(r0[2 * j + 1], g, b);
		float v2 = affine_relu1(r1[2 * j], g, b), v3 = affine_relu1(r1[2 * j + 1], g, b);
		float best = v0;
		int k = 0;
		k = v1 > best ? 1 : k;
		best = v1 > best ? v1 : best;
		k = v2 > best ? 2 : k;
		best = v2 > best ? v2 : best;
		k = v3 > best ? 3 : k;
		best = v3 > best ? v3 : best;
		out[j] = best;
		argmax[j] = (uint8_t)k;
	}
}

void bio_relu_pool2_row(float *out, uint8_t *argmax, const float *r0, const float *r1, int wo,
			float g, float b)
{
	isas[bio_kernels_isa()].relu_pool(out, argmax, r0, r1, wo, g, b);
}

void bio_pool2_grad_sums_generic(float *r1, float *r2, const float *dp, const float *po,
				 const uint8_t *am, const float *x0, const float *x1, int wo)
{
	float s1 = 0.0f, s2 = 0.0f;
	for (int j = 0; j < wo; j++) {
		float g = po[j] > 0.0f ? dp[j] : 0.0f;
		int k = am[j];
		s1 += g;
		s2 += g * (k >> 1 ? x1 : x0)[2 * j + (k & 1)];
	}
	*r1 = s1;
	*r2 = s2;
}

void bio_pool2_grad_scatter_generic(float *x0, float *x1, const float *dp, const float *po,
				    const uint8_t *am, int wo, float a)
{
	for (int j = 0; j < wo; j++) {
		if (!(po[j] > 0.0f))
			continue;
		int k = am[j];
		(k >> 1 ? x1 : x0)[2 * j + (k & 1)] += a * dp[j];
	}
}

void bio_pool2_grad_sums(float *r1, float *r2, const float *dp, const float *po,
			 const uint8_t *am, const float *x0, const float *x1, int wo)
{
	isas[bio_kernels_isa()].pool_sums(r1, r2, dp, po, am, x0, x1, wo);
}

void bio_pool2_grad_scatter(float *x0, float *x1, const float *dp, const float *po,
			    const uint8_t *am, int wo, float a)
{
	isas[bio_kernels_isa()].pool_scatter(x0, x1, dp, po, am, wo, a);
}

void bio_adam(float *p, const float *g, float *m, float *v, size_t n, const struct bio_adam *c)
{
	isas[bio_kernels_isa()].adam(p, g, m, v, n, c);
}
