/* The first layer's convolution, 1 input channel, 3 x 3, stride 1, padding 1, computed directly
 * (im2col would copy each pixel nine times into a GEMM with k = 9), included by each ISA's file
 * after it defines the vector type and operations:
 *
 *   VW            floats per vector        vec_t         the vector type
 *   VZERO()       zeros                    VSET1(x)      x in every lane
 *   VLOADU(p)     load from any address    VSTOREU(p, v) store to any address
 *   VFMA(a, b, c) a * b + c                VADD(a, b)    a + b
 *   CONV_C1_NAME(x)  the name of function x here
 *
 * Each sample's plane is copied into a zero-padded buffer, so the inner loops have no borders.
 * Sums run in a fixed order: forward over (kh, kw); the weight gradient per lane over
 * (sample, row, column block), then across lanes in lane order, then the nine taps apart. */
#include <stdlib.h>
#include <string.h>

/* pad [(h + 2) x pw]: the plane at (1, 1), zero around (pw = w + 2 rounded up to VW, + VW). */
static void CONV_C1_NAME(pad)(float *pad, int pw, const float *in, int h, int w)
{
	memset(pad, 0, sizeof(float) * (size_t)(h + 2) * pw);
	for (int y = 0; y < h; y++)
		memcpy(pad + (size_t)(y + 1) * pw + 1, in + (size_t)y * w, sizeof(float) * w);
}

static float *CONV_C1_NAME(scratch)(int h, int w, int *pw)
{
	*pw = ((w + 2 + VW - 1) / VW) * VW + VW;
	return bio_kernels_scratch(3, sizeof(float) * (size_t)(h + 2) * *pw);
}

/* Channels [0, nc) (nc 1 or 2) of one padded plane: out[c * out_ld + y w + x] = sum over (kh, kw)
 * of k9[c 9 + kh 3 + kw] pad[y + kh][x + kw] (+ bias[c]), taps in order, one FMA each. */
static inline void CONV_C1_NAME(plane)(const float *k9, const float *bias, int nc,
				       const float *pad, int pw, int h, int w, float *out,
				       size_t out_ld)
{
	/* (unrolled, so that the 18 weights and 9 inputs stay in registers: GCC 12 at -O2 kept
	 * both arrays on the stack and ran the tap loop, 4x slower) */
	vec_t k[2][9];
#pragma GCC unroll 9
	for (int t = 0; t < 9; t++) {
		k[0][t] = VSET1(k9[t]);
		k[1][t] = VSET1(k9[(nc > 1 ? 9 : 0) + t]);
	}
	for (int y = 0; y < h; y++) {
		const float *r0 = pad + (size_t)y * pw, *r1 = r0 + pw, *r2 = r1 + pw;
		float *o0 = out + (size_t)y * w, *o1 = o0 + out_ld;
		int x = 0;
		for (; x + VW <= w; x += VW) {
			vec_t in[9] = {VLOADU(r0 + x), VLOADU(r0 + x + 1), VLOADU(r0 + x + 2),
				       VLOADU(r1 + x), VLOADU(r1 + x + 1), VLOADU(r1 + x + 2),
				       VLOADU(r2 + x), VLOADU(r2 + x + 1), VLOADU(r2 + x + 2)};
			vec_t s0 = VZERO(), s1 = VZERO();
#pragma GCC unroll 9
			for (int t = 0; t < 9; t++) {
				s0 = VFMA(k[0][t], in[t], s0);
				s1 = VFMA(k[1][t], in[t], s1);
			}
			if (bias) {
				s0 = VADD(s0, VSET1(bias[0]));
				s1 = VADD(s1, VSET1(bias[nc - 1]));
			}
			VSTOREU(o0 + x, s0);
			if (nc == 2)
				VSTOREU(o1 + x, s1);
		}
		for (; x < w; x++) /* a row not a multiple of the vector: the same sums, scalar */
			for (int c = 0; c < nc; c++) {
				float s = 0.0f;
				for (int t = 0; t < 9; t++)
					s = CONV_C1_SFMA(k9[c * 9 + t],
							 (t < 3 ? r0 : t < 6 ? r1 : r2)[x + t % 3], s);
				if (bias)
					s += bias[c];
				out[c * out_ld + (size_t)y * w + x] = s;
			}
	}
}

/* out[co * out_ld + j h w + y w + x] = sum over (kh, kw) of wt[co][kh 3 + kw] in_j[y + kh - 1]
 * [x + kw - 1] (+ bias[co] when bias), for samples j < n of in [n][h][w]. */
void CONV_C1_NAME(forward)(const float *wt, const float *bias, int c_out, const float *in, int n,
			   int h, int w, float *out, size_t out_ld);
void CONV_C1_NAME(forward)(const float *wt, const float *bias, int c_out, const float *in, int n,
			   int h, int w, float *out, size_t out_ld)
{
	int pw;
	float *pad = CONV_C1_NAME(scratch)(h, w, &pw);
	const size_t hw = (size_t)h * w;
	for (int j = 0; j < n; j++) {
		CONV_C1_NAME(pad)(pad, pw, in + (size_t)j * hw, h, w);
		/* two channels at a time through the whole plane, their 18 weights in registers:
		 * each channel's plane is written front to back (the channels' planes lie out_ld
		 * apart, a large power of two: a pixel's 32 outputs in turn would share a few cache
		 * sets), the input rows are re-read from L1 */
		int co = 0;
		for (; co + 2 <= c_out; co += 2)
			CONV_C1_NAME(plane)(wt + (size_t)co * 9, bias ? bias + co : NULL, 2, pad, pw, h,
					    w, out + co * out_ld + (size_t)j * hw, out_ld);
		if (co < c_out)
			CONV_C1_NAME(plane)(wt + (size_t)co * 9, bias ? bias + co : NULL, 1, pad, pw, h,
					    w, out + co * out_ld + (size_t)j * hw, out_ld);
	}
}

/* dw[co][t] (+)= sum over samples j < n, rows, columns of d_out[co * d_ld + j h w + ...] times
 * the input pixel under tap t; overwrite when accumulate is 0. */
void CONV_C1_NAME(dweights)(float *dw, int c_out, const float *in, const float *d_out, int n,
			    int h, int w, size_t d_ld, int accumulate);
void CONV_C1_NAME(dweights)(float *dw, int c_out, const float *in, const float *d_out, int n,
			    int h, int w, size_t d_ld, int accumulate)
{
	int pw;
	float *pad = CONV_C1_NAME(scratch)(h, w, &pw);
	const size_t hw = (size_t)h * w;
	/* per output channel, nine vector sums (and nine scalar ones for the row tails) */
	/* the per-thread scratch, not an allocation per call (this runs for every chunk of every
	 * step) */
	vec_t *acc = bio_kernels_scratch(4, sizeof(vec_t) * 9 * (size_t)c_out);
	float *tail = bio_kernels_scratch(5, sizeof(float) * 9 * (size_t)c_out);
	memset(tail, 0, sizeof(float) * 9 * (size_t)c_out);
	for (int i = 0; i < 9 * c_out; i++)
		acc[i] = VZERO();
	for (int j = 0; j < n; j++) {
		CONV_C1_NAME(pad)(pad, pw, in + (size_t)j * hw, h, w);
		for (int co = 0; co < c_out; co++) {
			vec_t a0 = acc[co * 9 + 0], a1 = acc[co * 9 + 1], a2 = acc[co * 9 + 2];
			vec_t a3 = acc[co * 9 + 3], a4 = acc[co * 9 + 4], a5 = acc[co * 9 + 5];
			vec_t a6 = acc[co * 9 + 6], a7 = acc[co * 9 + 7], a8 = acc[co * 9 + 8];
			const float *dy = d_out + co * d_ld + (size_t)j * hw;
			for (int y = 0; y < h; y++) {
				const float *r0 = pad + (size_t)y * pw, *r1 = r0 + pw, *r2 = r1 + pw;
				const float *dr = dy + (size_t)y * w;
				int x = 0;
				for (; x + VW <= w; x += VW) {
					vec_t d = VLOADU(dr + x);
					a0 = VFMA(d, VLOADU(r0 + x), a0);
					a1 = VFMA(d, VLOADU(r0 + x + 1), a1);
					a2 = VFMA(d, VLOADU(r0 + x + 2), a2);
					a3 = VFMA(d, VLOADU(r1 + x), a3);
					a4 = VFMA(d, VLOADU(r1 + x + 1), a4);
					a5 = VFMA(d, VLOADU(r1 + x + 2), a5);
					a6 = VFMA(d, VLOADU(r2 + x), a6);
					a7 = VFMA(d, VLOADU(r2 + x + 1), a7);
					a8 = VFMA(d, VLOADU(r2 + x + 2), a8);
				}
				for (; x < w; x++)
					for (int t = 0; t < 9; t++)
						tail[co * 9 + t] = CONV_C1_SFMA(
							dr[x], (t < 3 ? r0 : t < 6 ? r1 : r2)[x + t % 3],
							tail[co * 9 + t]);
			}
			acc[co * 9 + 0] = a0, acc[co * 9 + 1] = a1, acc[co * 9 + 2] = a2;
			acc[co * 9 + 3] = a3, acc[co * 9 + 4] = a4, acc[co * 9 + 5] = a5;
			acc[co * 9 + 6] = a6, acc[co * 9 + 7] = a7, acc[co * 9 + 8] = a8;
		}
	}
	for (int i = 0; i < 9 * c_out; i++) {
		float lanes[VW];
		VSTOREU(lanes, acc[i]);
		float s = 0.0f;
		for (int l = 0; l < VW; l++)
			s += lanes[l];
		s += tail[i];
		dw[i] = accumulate ? dw[i] + s : s;
	}
}
