/* Direct 3 x 3 convolution, stride 1, padding 1, any number of input channels: no im2col. Included
 * by each vector ISA's file after it defines (as for conv_c1.h) VW, vec_t, VZERO, VSET1, VLOADU,
 * VSTOREU, VFMA, VADD, and
 *
 *   CONV_HSUM(v, out)  out[i] = the sum of v[i]'s lanes for i < VW, in a fixed order
 *
 *   CONV_MR         output channels per register tile (the tile is MR channels x NV vectors)
 *   CONV_NAME(x)    the name of function x here
 *
 * Layout as the layers keep it: channel c of sample j at p + c ld + j h w, planes row-major.
 * The direct path takes planes whose width is a multiple of VW and output channel counts that
 * are multiples of MR (bio_conv3x3_direct says so); others go through im2col + GEMM.
 *
 * The chunk's input is first copied into a zero-padded buffer [j][ci][h + 2][pw] (the plane at
 * row 1, column 1), so the inner loops have no borders. Forward: each output is a sum over ci,
 * then kh, then kw, of one FMA each, from zero, then + bias: the same sequence for every pixel,
 * wherever it lies and whichever thread computes it. The input gradient is the same kernel on
 * d_out with the weights transposed and flipped (bio_conv3x3_flip). The weight gradient sums per
 * lane over (sample, row, column block) in that order, then across lanes in lane order. */
#include <stddef.h>
#include <string.h>

/* keeps v in a register (GCC would rather fold the load into each of its three FMAs) */
#if defined(__GNUC__)
#define CONV_REG(v) __asm__("" : "+v"(v))
#else
#define CONV_REG(v) (void)0
#endif

#define CONV_PW(w) ((w) + VW) /* padded row: the plane at column 1, zeros around */

/* acc[r][v] += w[r] x[v], r < MR, v < NV: a register tile's step (also wino.h's) */
#define CONV_RANK1(acc, w, x, NV)                                                              \
	_Pragma("GCC unroll 16") for (int r_ = 0; r_ < CONV_MR; r_++)                            \
	{                                                                                      \
		vec_t a_ = VSET1((w)[r_]);                                                     \
		_Pragma("GCC unroll 4") for (int v_ = 0; v_ < (NV); v_++) acc[r_][v_] =           \
			VFMA(a_, x[v_], acc[r_][v_]);                                          \
	}

/* pad [j][ci][h + 2][pw] from in (channel stride ld, samples j < n of h x w). */
static void CONV_NAME(pad)(float *pad, const float *in, size_t ld, int c_in, int n, int h, int w)
{
	const int pw = CONV_PW(w);
	const size_t plane = (size_t)(h + 2) * pw, hw = (size_t)h * w;
	for (int j = 0; j < n; j++)
		for (int ci = 0; ci < c_in; ci++) {
			float *p = pad + ((size_t)j * c_in + ci) * plane;
			const float *s = in + ci * ld + j * hw;
			memset(p, 0, sizeof(float) * pw);
			for (int y = 0; y < h; y++) {
				float *r = p + (size_t)(y + 1) * pw;
				r[0] = 0.0f;
				memcpy(r + 1, s + (size_t)y * w, sizeof(float) * w);
				memset(r + 1 + w, 0, sizeof(float) * (pw - 1 - w));
			}
			memset(p + (size_t)(h + 1) * pw, 0, sizeof(float) * pw);
		}
}

/* One register tile: out[r * out_ld + v VW + lane] for r < MR, v < NV = sum over ci < c_in,
 * t < 9 of wp[(ci 9 + t) MR + r] src[ci plane + off[v] + (t / 3) pw + t % 3 + lane] (+ bias[r]). */
#define CONV_TILE(NV)                                                                          \
	static inline void CONV_NAME(tile##NV)(const float *wp, const float *src, size_t plane,  \
					       int pw, int c_in, const int *off, float *out,      \
					       size_t out_ld, const float *bias)                  \
	{                                                                                      \
		vec_t acc[CONV_MR][NV];                                                        \
		_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)                     \
			_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = VZERO(); \
		for (int ci = 0; ci < c_in; ci++) {                                            \
			const float *s = src + ci * plane;                                     \
			for (int kh = 0; kh < 3; kh++) {                                       \
				const float *row = s + kh * pw;                                \
				_Pragma("GCC unroll 3") for (int kw = 0; kw < 3; kw++)         \
				{                                                              \
					vec_t x[NV];                                           \
					_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)   \
						x[v] = VLOADU(row + off[v] + kw);              \
					CONV_RANK1(acc, wp, x, NV);                            \
					wp += CONV_MR;                                         \
				}                                                              \
			}                                                                      \
		}                                                                              \
		_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)                     \
		{                                                                              \
			vec_t b = bias ? VSET1(bias[r]) : VZERO();                             \
			_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                   \
				VSTOREU(out + r * out_ld + v * VW,                             \
					bias ? VADD(acc[r][v], b) : acc[r][v]);                \
		}                                                                              \
	}
CONV_TILE(1)
CONV_TILE(2)
CONV_TILE(3)

/* wp [c_out / MR][ci][9][MR]: the tiles' weights in the order they read them, from w [c_out]
 * [c_in][9]; or, when flip, from w [c_in][c_out][9] transposed and flipped (the input gradient
 * of the layer whose weights w are). */
void CONV_NAME(pack)(float *wp, const float *w, int flip, int c_in, int c_out);
void CONV_NAME(pack)(float *wp, const float *w, int flip, int c_in, int c_out)
{
	for (int cb = 0; cb < c_out / CONV_MR; cb++)
		for (int ci = 0; ci < c_in; ci++)
			for (int t = 0; t < 9; t++)
				for (int r = 0; r < CONV_MR; r++) {
					size_t o = (size_t)cb * CONV_MR + r;
					wp[(((size_t)cb * c_in + ci) * 9 + t) * CONV_MR + r] =
						flip ? w[((size_t)ci * c_out + o) * 9 + 8 - t]
						     : w[(o * c_in + ci) * 9 + t];
				}
}

/* out [c_out] (channel stride out_ld) = conv(in [c_in] (stride in_ld)) + bias, samples j < n,
 * with the weights packed by pack. */
void CONV_NAME(forward)(const float *wp, const float *bias, int c_in, int c_out,
			const float *in, size_t in_ld, int n, int h, int wd, float *out,
			size_t out_ld);
void CONV_NAME(forward)(const float *wp, const float *bias, int c_in, int c_out,
			const float *in, size_t in_ld, int n, int h, int wd, float *out,
			size_t out_ld)
{
	const int pw = CONV_PW(wd), vpr = wd / VW, nvec = h * vpr;
	const size_t plane = (size_t)(h + 2) * pw, hw = (size_t)h * wd;
	float *pad = bio_kernels_scratch(6, sizeof(float) * plane * c_in * n);
	CONV_NAME(pad)(pad, in, in_ld, c_in, n, h, wd);
	for (int j = 0; j < n; j++) {
		const float *src = pad + (size_t)j * c_in * plane;
		for (int v0 = 0; v0 < nvec; v0 += 3) {
			int nv = nvec - v0 < 3 ? nvec - v0 : 3, off[3];
			for (int v = 0; v < nv; v++) {
				int y = (v0 + v) / vpr, x0 = (v0 + v) % vpr * VW;
				off[v] = y * pw + x0;
			}
			for (int cb = 0; cb < c_out / CONV_MR; cb++) {
				const float *wt = wp + (size_t)cb * c_in * 9 * CONV_MR;
				float *o = out + (size_t)cb * CONV_MR * out_ld + j * hw + (size_t)v0 * VW;
				const float *b = bias ? bias + cb * CONV_MR : NULL;
				if (nv == 3)
					CONV_NAME(tile3)(wt, src, plane, pw, c_in, off, o, out_ld, b);
				else if (nv == 2)
					CONV_NAME(tile2)(wt, src, plane, pw, c_in, off, o, out_ld, b);
				else
					CONV_NAME(tile1)(wt, src, plane, pw, c_in, off, o, out_ld, b);
			}
		}
	}
}

/* dw [c_out][c_in][9] (+)= sum over samples j < n and pixels of d_out[co] times the input under
 * each tap (overwrite when accumulate is 0). Register tile: MR output channels x the three
 * column taps of one (ci, kh), each a vector of per-lane sums. The pixels go in blocks of rows
 * (about 32 vectors) so that a block of d_out stays in L1 while every (ci, kh) tile runs over
 * it (blocks run across samples); the tiles' sums wait in acc between blocks. Each lane sums
 * its pixels in order (sample, row, column block) whatever the blocks, then the lanes are added (CONV_HSUM). */
void CONV_NAME(dweights)(float *dw, int c_in, int c_out, const float *in, size_t in_ld,
			 const float *d_out, size_t d_ld, int n, int h, int wd, int accumulate);
void CONV_NAME(dweights)(float *dw, int c_in, int c_out, const float *in, size_t in_ld,
			 const float *d_out, size_t d_ld, int n, int h, int wd, int accumulate)
{
	const int pw = CONV_PW(wd), vpr = wd / VW;
	const int rows = vpr >= 32 ? 1 : 32 / vpr; /* rows per block, across samples */
	const size_t plane = (size_t)(h + 2) * pw;
	const size_t per_cb = (size_t)c_in * 3 * CONV_MR * 3;
	size_t roff[32];
	float *pad = bio_kernels_scratch(6, sizeof(float) * plane * c_in * n);
	vec_t *acc = bio_kernels_scratch(7, sizeof(vec_t) * per_cb);
	/* the block of d_out packed [vector][r][VW]: one stream (the MR channel planes lie ld
	 * apart, a large power of two, and would share L1 sets) */
	const size_t dp_n = (size_t)rows * wd * CONV_MR; /* (then the lane sums, per_cb) */
	float *dp = bio_kernels_scratch(5, sizeof(float) * (dp_n > per_cb ? dp_n : per_cb));
	CONV_NAME(pad)(pad, in, in_ld, c_in, n, h, wd);
	for (int cb = 0; cb < c_out / CONV_MR; cb++) {
		for (size_t i = 0; i < per_cb; i++)
			acc[i] = VZERO();
		/* rows g = j h + y of all the samples, in blocks */
		for (int g0 = 0; g0 < n * h; g0 += rows) {
			const int g1 = g0 + rows < n * h ? g0 + rows : n * h;
			float *dv = dp;
			for (int g = g0; g < g1; g++) {
				const float *dr = d_out + (size_t)cb * CONV_MR * d_ld + (size_t)g * wd;
				for (int x = 0; x < wd; x += VW)
					for (int r = 0; r < CONV_MR; r++, dv += VW)
						memcpy(dv, dr + r * d_ld + x, sizeof(float) * VW);
			}
			for (int g = g0; g < g1; g++) /* the rows' offsets in pad (channel 0, kh 0) */
				roff[g - g0] = (size_t)(g / h) * c_in * plane + (size_t)(g % h) * pw;
			for (int ci = 0; ci < c_in; ci++)
				for (int kh = 0; kh < 3; kh++) {
					vec_t *at = acc + ((size_t)ci * 3 + kh) * CONV_MR * 3;
					vec_t a[CONV_MR][3];
					_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)
					{
						a[r][0] = at[r * 3 + 0];
						a[r][1] = at[r * 3 + 1];
						a[r][2] = at[r * 3 + 2];
					}
					const float *d = dp;
					const float *s0 = pad + (size_t)ci * plane + (size_t)kh * pw;
					for (int g = g0; g < g1; g++) {
						const float *s = s0 + roff[g - g0];
						for (int x = 0; x < wd; x += VW, d += CONV_MR * VW) {
							vec_t i0 = VLOADU(s + x), i1 = VLOADU(s + x + 1);
							vec_t i2 = VLOADU(s + x + 2);
							_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR;
										      r++)
							{
								vec_t gr = VLOADU(d + r * VW);
								CONV_REG(gr);
								a[r][0] = VFMA(gr, i0, a[r][0]);
								a[r][1] = VFMA(gr, i1, a[r][1]);
								a[r][2] = VFMA(gr, i2, a[r][2]);
							}
						}
					}
					_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)
					{
						at[r * 3 + 0] = a[r][0];
						at[r * 3 + 1] = a[r][1];
						at[r * 3 + 2] = a[r][2];
					}
				}
		}
		/* sums[i] = the lanes of acc[i] added (CONV_HSUM's fixed tree, VW vectors at a
		 * time; a last partial group lane by lane) */
		float *sums = (float *)dp;
		size_t i = 0;
		for (; i + VW <= per_cb; i += VW)
			CONV_HSUM(acc + i, sums + i);
		for (; i < per_cb; i++) {
			float lanes[VW], sum = 0.0f;
			VSTOREU(lanes, acc[i]);
			for (int l = 0; l < VW; l++)
				sum += lanes[l];
			sums[i] = sum;
		}
		for (int ci = 0; ci < c_in; ci++)
			for (int r = 0; r < CONV_MR; r++)
				for (int t = 0; t < 9; t++) {
					float sum = sums[((size_t)ci * 3 + t / 3) * CONV_MR * 3 + r * 3 +
							 t % 3];
					float *o = dw + ((size_t)(cb * CONV_MR + r) * c_in + ci) * 9 + t;
					*o = accumulate ? *o + sum : sum;
				}
	}
}

#undef CONV_TILE
#undef CONV_PW
#undef CONV_REG
