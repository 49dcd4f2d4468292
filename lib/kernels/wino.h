/* Winograd F(2x2, 3x3) convolution, stride 1, padding 1: each 2 x 2 block of outputs (a tile) from
 * the 4 x 4 inputs around it with 16 multiplications per input channel where the direct kernel
 * (conv3x3.h) takes 36, 2.25 times fewer (Lavin and Gray, "Fast algorithms for convolutional
 * neural networks", 2016). Included by each vector ISA's file after conv3x3.h, with its VW,
 * vec_t, VZERO, VSET1, VLOADU, VSTOREU, VFMA, VADD and CONV_MR, and
 *
 *   VSUB(a, b)             a - b
 *   WINO_ZIP(a, b, lo, hi) lo = a0 b0 a1 b1 ... (the first VW / 2 lanes of each), hi = the rest
 *   WINO_DEINT_VEC(p, e, o, n)  e[i] = p[2 i], o[i] = p[2 i + 1] for the first i < n that
 *                          vectors take; returns how many
 *   WINO_NAME(x)           the name of function x here
 *
 * The transforms (B, G, A of the paper, entries 0, +-1 and 1/2):
 *   U = G g G^T  (g the 3 x 3 weights, once per call of pack)
 *   V = B^T d B  (d a tile's 4 x 4 padded inputs)
 *   y = A^T M A  (M[xi] = sum over ci of U[xi] V[xi], xi < 16: 16 small GEMMs)
 * Every output is the same sequence of operations wherever it lies and whichever thread computes
 * it: V by fixed adds, each M[xi] a sum over ci in order of one FMA each from zero, then A's adds,
 * then + bias. The batch-size and thread-count independence of the direct kernel holds; the bits
 * differ from it (the sums are grouped otherwise), within rounding of the same convolution.
 *
 * Lanes are tiles: the VW tiles t0 .. t0 + VW - 1 of one sample (t = ty tw + tx, tw = w / 2 tiles
 * a row), a tile vector. Before the transform each input plane is split into eight arrays
 * [parity of the padded row][column c of the tile, 0..3][(th + 1) tw], entry k tw + tx holding
 * padded(2 k + parity, 2 tx + c): then input (r, c) of tiles t0.. is one contiguous load at
 * (r / 2) tw + t0 of array (r % 2, c), across tile rows too. wino_fits says which shapes work:
 * h and w even, the tiles of a sample a whole number of vectors, half a vector of tiles in one
 * tile row (the outputs are stored half a vector at a time). */
#include <stddef.h>
#include <string.h>

#define WINO_NB 3 /* tile vectors per register tile (with CONV_MR output channels) */

/* e[i] = p[2 i], o[i] = p[2 i + 1], i < n */
static inline void WINO_NAME(deint)(const float *p, float *e, float *o, int n)
{
	for (int i = WINO_DEINT_VEC(p, e, o, n); i < n; i++) {
		e[i] = p[2 * i];
		o[i] = p[2 * i + 1];
	}
}

int WINO_NAME(fits)(int c_out, int h, int wd);
int WINO_NAME(fits)(int c_out, int h, int wd)
{
	const int th = h / 2, tw = wd / 2;
	return h > 0 && wd > 0 && h % 2 == 0 && wd % 2 == 0 && c_out % CONV_MR == 0 &&
	       tw % (VW / 2) == 0 && (th * tw) % VW == 0 && th * tw / VW >= 2;
}

/* g = the 3 x 3 weights of output channel o from input channel ci: w [c_out][c_in][9], or when
 * flip, w [c_in][c_out][9] transposed and flipped (also wino4.h's) */
static inline void WINO_NAME(taps)(float g[9], const float *w, int flip, int c_in, int c_out,
				   int o, int ci)
{
	for (int k = 0; k < 9; k++)
		g[k] = flip ? w[((size_t)ci * c_out + o) * 9 + 8 - k] : w[((size_t)o * c_in + ci) * 9 + k];
}

/* u [16][c_out / MR][c_in][MR] = G g G^T of each (output, input) channel pair's 3 x 3 weights
 * from w [c_out][c_in][9]; when flip, from w [c_in][c_out][9] transposed and flipped (as
 * conv3x3.h's pack: the input gradient of the layer whose weights w are). */
void WINO_NAME(pack)(float *u, const float *w, int flip, int c_in, int c_out);
void WINO_NAME(pack)(float *u, const float *w, int flip, int c_in, int c_out)
{
	const int ncb = c_out / CONV_MR;
	for (int o = 0; o < c_out; o++)
		for (int ci = 0; ci < c_in; ci++) {
			float g[9], t[4][3];
			WINO_NAME(taps)(g, w, flip, c_in, c_out, o, ci);
			for (int c = 0; c < 3; c++) { /* t = G g */
				t[0][c] = g[c];
				t[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
				t[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
				t[3][c] = g[6 + c];
			}
			const int cb = o / CONV_MR, r = o % CONV_MR;
			for (int i = 0; i < 4; i++) { /* U = t G^T */
				float v[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
					      0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
				for (int c = 0; c < 4; c++)
					u[((((size_t)(i * 4 + c) * ncb + cb) * c_in + ci) * CONV_MR) +
					  r] = v[c];
			}
		}
}

/* s [ci][8][(th + 1) tw]: the split planes (above) of one sample of in (channel stride ld). */
static void WINO_NAME(split)(float *s, const float *in, size_t ld, int c_in, int h, int wd)
{
	const int th = h / 2, tw = wd / 2;
	const size_t sp = (size_t)(th + 1) * tw;
	for (int ci = 0; ci < c_in; ci++) {
		float *restrict d = s + (size_t)ci * 8 * sp;
		const float *restrict p = in + ci * ld;
		for (int y = 0; y < h + 2; y++) { /* padded row y: parity y % 2, row y / 2 */
			float *restrict a = d + (size_t)(y % 2) * 4 * sp + (size_t)(y / 2) * tw;
			if (y == 0 || y == h + 1) {
				for (int c = 0; c < 4; c++)
					for (int x = 0; x < tw; x++)
						a[c * sp + x] = 0.0f;
				continue;
			}
			const float *restrict row = p + (size_t)(y - 1) * wd;
			/* column c of tile tx: padded column 2 tx + c, input column 2 tx + c - 1:
			 * c = 1 the even input columns, 2 the odd ones, 0 the odd ones a tile to
			 * the right (a zero first), 3 the even ones a tile to the left (a zero
			 * last) */
			WINO_NAME(deint)(row, a + sp, a + 2 * sp, tw);
			a[0] = 0.0f;
			memcpy(a + 1, a + 2 * sp, sizeof(float) * (size_t)(tw - 1));
			memcpy(a + 3 * sp, a + sp + 1, sizeof(float) * (size_t)(tw - 1));
			a[3 * sp + tw - 1] = 0.0f;
		}
	}
}

/* v[xi vs + ci NB + b] = B^T d B of the tile vector at sp-array base src (channel ci at src +
 * ci 8 sp), tiles t0.. (offset t0 in the arrays); vs = c_in NB + 1 (so that the 16 stores do
 * not lie a multiple of 4 KiB apart, in one set of L1). */
static inline void WINO_NAME(in_tf)(vec_t *v, const float *src, size_t sp, int tw, int c_in,
				    int b)
{
	const size_t vs = (size_t)c_in * WINO_NB + 1;
	for (int ci = 0; ci < c_in; ci++) {
		const float *a = src + (size_t)ci * 8 * sp;
		vec_t d[4][4], e[4][4];
		_Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
			_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
				d[r][c] = VLOADU(a + ((size_t)(r % 2) * 4 + c) * sp + (size_t)(r / 2) * tw);
		_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) { /* B^T d */
			e[0][c] = VSUB(d[0][c], d[2][c]);
			e[1][c] = VADD(d[1][c], d[2][c]);
			e[2][c] = VSUB(d[2][c], d[1][c]);
			e[3][c] = VSUB(d[1][c], d[3][c]);
		}
		_Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) { /* (B^T d) B */
			vec_t *o = v + (size_t)(r * 4) * vs + (size_t)ci * WINO_NB + b;
			const size_t step = vs;
			o[0] = VSUB(e[r][0], e[r][2]);
			o[step] = VADD(e[r][1], e[r][2]);
			o[2 * step] = VSUB(e[r][2], e[r][1]);
			o[3 * step] = VSUB(e[r][1], e[r][3]);
		}
	}
}

/* m[r NB + b] = sum over ci < c_in of u[ci MR + r] v[ci NB + b], r < MR, b < NB_ (one xi). */
#define WINO_TILE(NB_)                                                                         \
	static inline void WINO_NAME(gemm##NB_)(const float *u, const vec_t *v, int c_in,        \
						vec_t *m)                                         \
	{                                                                                      \
		vec_t acc[CONV_MR][NB_];                                                       \
		_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)                     \
			_Pragma("GCC unroll 4") for (int b = 0; b < NB_; b++) acc[r][b] = VZERO(); \
		for (int ci = 0; ci < c_in; ci++, u += CONV_MR, v += WINO_NB) {                \
			vec_t x[NB_];                                                          \
			_Pragma("GCC unroll 4") for (int b = 0; b < NB_; b++) x[b] = v[b];     \
			CONV_RANK1(acc, u, x, NB_);                                            \
		}                                                                              \
		_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)                     \
			_Pragma("GCC unroll 4") for (int b = 0; b < NB_; b++)                  \
				m[r * WINO_NB + b] = acc[r][b];                                \
	}
WINO_TILE(1)
WINO_TILE(2)
WINO_TILE(3)

/* m[xi MR NB ..] = the tiles of output-channel block cb for each xi < n_xi: u [n_xi][ncb][c_in]
 * [MR], v[xi vs ..] (nb tile vectors); the forward's GEMMs (also wino4.h's) */
static inline void WINO_NAME(gemms)(const float *u, const vec_t *v, size_t vs, vec_t *m, int n_xi,
				    int ncb, int cb, int c_in, int nb)
{
	for (int xi = 0; xi < n_xi; xi++) {
		const float *ut = u + ((size_t)xi * ncb + cb) * c_in * CONV_MR;
		const vec_t *vt = v + xi * vs;
		vec_t *mt = m + (size_t)xi * CONV_MR * WINO_NB;
		if (nb == 3)
			WINO_NAME(gemm3)(ut, vt, c_in, mt);
		else if (nb == 2)
			WINO_NAME(gemm2)(ut, vt, c_in, mt);
		else
			WINO_NAME(gemm1)(ut, vt, c_in, mt);
	}
}

/* The input side of a forward (also wino4.h's): a call's samples, each split into planes (split,
 * per_j floats a sample, arrays sp floats apart) in slot j % ring of s when first needed (ring:
 * the most samples a block of WINO_NB tile vectors can span), tile vectors transformed by tf. */
struct WINO_NAME(src) {
	const float *in;
	size_t in_ld, hw, per_j, sp;
	int c_in, h, wd, tw, vps, ring;
	float *s;
	void (*split)(float *, const float *, size_t, int, int, int);
	void (*tf)(vec_t *, const float *, size_t, int, int, int);
};

/* the source of a forward by tiles of tile x tile outputs, n_arr split arrays a channel */
static inline struct WINO_NAME(src)
	WINO_NAME(src_new)(const float *in, size_t in_ld, int c_in, int h, int wd, int tile,
			   int n_arr, void (*split)(float *, const float *, size_t, int, int, int),
			   void (*tf)(vec_t *, const float *, size_t, int, int, int))
{
	const int th = h / tile, tw = wd / tile, vps = th * tw / VW;
	const int ring = (WINO_NB - 1 + vps - 1) / vps + 1;
	const size_t sp = (size_t)(th + 1) * tw, per_j = (size_t)n_arr * sp * c_in;
	float *s = bio_kernels_scratch(6, sizeof(float) * (size_t)ring * per_j);
	return (struct WINO_NAME(src)){in, in_ld, (size_t)h * wd, per_j, sp, c_in, h, wd, tw, vps,
				       ring, s, split, tf};
}

/* v[.. b] for b < nb: the tile vectors g0 + b (sample g / vps, tiles from g % vps VW) transformed,
 * each sample split when first needed (*last: the last sample split) */
static inline void WINO_NAME(block_in)(const struct WINO_NAME(src) *q, vec_t *v, int g0, int nb,
				       int *last)
{
	for (int b = 0; b < nb; b++) {
		const int g = g0 + b, j = g / q->vps, t0 = g % q->vps * VW;
		float *sj = q->s + (size_t)(j % q->ring) * q->per_j;
		if (j > *last) {
			*last = j;
			q->split(sj, q->in + j * q->hw, q->in_ld, q->c_in, q->h, q->wd);
		}
		q->tf(v, sj + t0, q->sp, q->tw, q->c_in, b);
	}
}

/* A forward's blocks (also wino4.h's): the nb <= WINO_NB tile vectors from g0 transformed
 * (block_in), then for each block of MR output channels the n_xi GEMMs into m (xi's stride MR NB
 * vectors) and out_tf for each channel and tile vector: q = m + r NB + b, bv the bias, o that
 * sample's plane of the channel. */
static inline void WINO_NAME(drive)(const struct WINO_NAME(src) *src, const float *u, int n_xi,
				    int ncb, const float *bias, int n, float *out, size_t out_ld,
				    void (*out_tf)(const vec_t *, vec_t, float *, int, int, int))
{
	const int c_in = src->c_in, vps = src->vps;
	const size_t vs = (size_t)c_in * WINO_NB + 1; /* (the in_tfs') */
	vec_t *v = bio_kernels_scratch(7, sizeof(vec_t) * n_xi * vs);
	vec_t *m = bio_kernels_scratch(5, sizeof(vec_t) * n_xi * CONV_MR * WINO_NB);
	const int n_vec = n * vps;
	int split = -1; /* the last sample split */
	for (int g0 = 0; g0 < n_vec; g0 += WINO_NB) {
		const int nb = n_vec - g0 < WINO_NB ? n_vec - g0 : WINO_NB;
		WINO_NAME(block_in)(src, v, g0, nb, &split);
		for (int cb = 0; cb < ncb; cb++) {
			WINO_NAME(gemms)(u, v, vs, m, n_xi, ncb, cb, c_in, nb);
			for (int r = 0; r < CONV_MR; r++) {
				const int co = cb * CONV_MR + r;
				const vec_t bv = VSET1(bias ? bias[co] : 0.0f);
				for (int b = 0; b < nb; b++) {
					const int g = g0 + b, j = g / vps, t0 = g % vps * VW;
					out_tf(m + (size_t)r * WINO_NB + b, bv,
					       out + (size_t)co * out_ld + (size_t)j * src->hw, t0, src->tw,
					       src->wd);
				}
			}
		}
	}
}

/* The 2 x 2 outputs of tiles t0.. (y = A^T M A + bias) into plane o, from M[xi] = q[xi MR NB] */
static inline void WINO_NAME(out_tf)(const vec_t *q, vec_t bv, float *o, int t0, int tw, int wd)
{
	const size_t st = (size_t)CONV_MR * WINO_NB; /* xi's stride */
	vec_t s0[4], s1[4];
	_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) { /* A^T M */
		vec_t m0 = q[c * st], m1 = q[(4 + c) * st];
		vec_t m2 = q[(8 + c) * st], m3 = q[(12 + c) * st];
		s0[c] = VADD(VADD(m0, m1), m2);
		s1[c] = VSUB(VSUB(m1, m2), m3);
	}
	vec_t y[2][2]; /* (A^T M) A, + bias */
	y[0][0] = VADD(VADD(VADD(s0[0], s0[1]), s0[2]), bv);
	y[0][1] = VADD(VSUB(VSUB(s0[1], s0[2]), s0[3]), bv);
	y[1][0] = VADD(VADD(VADD(s1[0], s1[1]), s1[2]), bv);
	y[1][1] = VADD(VSUB(VSUB(s1[1], s1[2]), s1[3]), bv);
	const int ta = t0, tb = t0 + VW / 2; /* each half's first tile */
	_Pragma("GCC unroll 2") for (int a = 0; a < 2; a++) {
		vec_t lo, hi;
		WINO_ZIP(y[a][0], y[a][1], lo, hi);
		VSTOREU(o + (size_t)(2 * (ta / tw) + a) * wd + 2 * (ta % tw), lo);
		VSTOREU(o + (size_t)(2 * (tb / tw) + a) * wd + 2 * (tb % tw), hi);
	}
}

/* fn: out [c_out] (channel stride out_ld) = conv(in [c_in] (stride in_ld)) + bias, samples j < n,
 * with the weights packed by this file's pack, by tiles of tile x tile outputs (n_arr split
 * arrays a channel, n_xi GEMMs; also wino4.h's) */
#define WINO_FORWARD(fn, tile, n_arr, n_xi, split, in_tf, out_tf)                               \
	void fn(const float *u, const float *bias, int c_in, int c_out, const float *in,        \
		size_t in_ld, int n, int h, int wd, float *out, size_t out_ld);                  \
	void fn(const float *u, const float *bias, int c_in, int c_out, const float *in,        \
		size_t in_ld, int n, int h, int wd, float *out, size_t out_ld)                   \
	{                                                                                      \
		const struct WINO_NAME(src) src =                                              \
			WINO_NAME(src_new)(in, in_ld, c_in, h, wd, tile, n_arr, split, in_tf);  \
		WINO_NAME(drive)(&src, u, n_xi, c_out / CONV_MR, bias, n, out, out_ld, out_tf); \
	}
WINO_FORWARD(WINO_NAME(forward), 2, 8, 16, WINO_NAME(split), WINO_NAME(in_tf), WINO_NAME(out_tf))

/* The weight gradient by the same transforms (the forward's gradient with respect to U): for
 * each tile, Yh = A dy A^T (dy the tile's 2 x 2 output gradients) and Xh = B^T d B as above;
 * S[xi][co][ci] = the sum over tiles of Yh[xi][co] Xh[xi][ci], 16 GEMMs that reduce over the
 * tiles; dw = G^T S G. Xh is formed from the input transposed to channels-last (the vector
 * lanes are input channels), Yh from the output gradient split like the input above (the lanes
 * are tiles; its entries are the broadcast operand). Each S element is one chain of FMAs over
 * the call's samples, then their tiles, in order, from zero: the same bits whatever the
 * blocking (WINO_TB tiles at a time) or thread. */
#define WINO_TB 32 /* tiles a block */
#define WINO_PAD 16 /* floats after each xi's block: the 16 stores of a transform would otherwise
		     * lie a multiple of 4 KiB apart and share one set of L1 */

int WINO_NAME(dw_fits)(int c_in, int c_out, int h, int wd);
int WINO_NAME(dw_fits)(int c_in, int c_out, int h, int wd)
{
	return h > 0 && wd > 0 && h % 2 == 0 && wd % 2 == 0 && c_out % CONV_MR == 0 &&
	       c_in % (2 * VW) == 0 && c_in % 8 == 0 && (h / 2 * (wd / 2)) % WINO_TB == 0;
}

/* S[co][ci .. ci + 2 VW) += sum over tt < TB of yh[r TB + tt] xh[tt ci_n + ..] for the MR rows
 * r at yh (output channel co0 + r), S rows ld apart */
static inline void WINO_NAME(dw_tile)(float *S, size_t ld, const float *yh, const float *xh,
				      int ci_n)
{
	vec_t acc[CONV_MR][2];
	_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)
	{
		acc[r][0] = VLOADU(S + r * ld);
		acc[r][1] = VLOADU(S + r * ld + VW);
	}
	for (int tt = 0; tt < WINO_TB; tt++) {
		const vec_t x0 = VLOADU(xh + (size_t)tt * ci_n), x1 = VLOADU(xh + (size_t)tt * ci_n + VW);
		_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)
		{
			const vec_t a = VSET1(yh[r * WINO_TB + tt]);
			acc[r][0] = VFMA(a, x0, acc[r][0]);
			acc[r][1] = VFMA(a, x1, acc[r][1]);
		}
	}
	_Pragma("GCC unroll 16") for (int r = 0; r < CONV_MR; r++)
	{
		VSTOREU(S + r * ld, acc[r][0]);
		VSTOREU(S + r * ld + VW, acc[r][1]);
	}
}

/* dw [c_out][c_in][9] (+)= sum over samples j < n and pixels of d_out[co] times the input under
 * each tap (overwrite when accumulate is 0), layouts as conv3x3.h's dweights */
void WINO_NAME(dweights)(float *dw, int c_in, int c_out, const float *in, size_t in_ld,
			 const float *d_out, size_t d_ld, int n, int h, int wd, int accumulate);
void WINO_NAME(dweights)(float *dw, int c_in, int c_out, const float *in, size_t in_ld,
			 const float *d_out, size_t d_ld, int n, int h, int wd, int accumulate)
{
	const int th = h / 2, tw = wd / 2, tps = th * tw, pw = wd + 2;
	const size_t hw = (size_t)h * wd, per_ci = (size_t)(h + 2) * pw;
	const size_t sq = (size_t)tps;		/* floats of one of the four dy splits */
	const size_t s_n = (size_t)16 * c_out * c_in; /* S */
	float *xt = bio_kernels_scratch(6, sizeof(float) * (per_ci * c_in + 4 * sq * c_out));
	float *q = xt + per_ci * c_in; /* [co][a][b][tps]: dy at (2 ty + a, 2 tx + b) */
	const size_t ys = (size_t)WINO_TB * c_out + WINO_PAD, xs = (size_t)WINO_TB * c_in + WINO_PAD;
	float *yh = bio_kernels_scratch(7, sizeof(float) * 16 * (ys + xs)); /* [xi (ys)][co][tt] */
	float *xh = yh + 16 * ys;					    /* [xi (xs)][tt][ci] */
	float *S = bio_kernels_scratch(5, sizeof(float) * s_n);
	memset(S, 0, sizeof(float) * s_n);
	memset(xt, 0, sizeof(float) * per_ci * c_in);
	for (int j = 0; j < n; j++) {
		/* xt [(h + 2) (w + 2)][ci]: the padded input, channels last (the borders stay 0),
		 * 8 channels at a time (their planes lie in_ld apart, often a large power of two:
		 * more at once would share one set of L1) */
		for (int c0 = 0; c0 < c_in; c0 += 8) {
			const float *p = in + c0 * in_ld + j * hw;
			for (int y = 0; y < h; y++)
				for (int x = 0; x < wd; x++) {
					float *o = xt + ((size_t)(y + 1) * pw + x + 1) * c_in + c0;
					const float *src = p + (size_t)y * wd + x;
					_Pragma("GCC unroll 8") for (int c = 0; c < 8; c++) o[c] = src[c * in_ld];
				}
		}
		for (int co = 0; co < c_out; co++) {
			const float *p = d_out + co * d_ld + j * hw;
			float *qc = q + (size_t)co * 4 * sq;
			for (int y = 0; y < h; y++)
				WINO_NAME(deint)(p + (size_t)y * wd, qc + (size_t)(y % 2) * 2 * sq + (size_t)(y / 2) * tw,
					   qc + ((size_t)(y % 2) * 2 + 1) * sq + (size_t)(y / 2) * tw, tw);
		}
		for (int t0 = 0; t0 < tps; t0 += WINO_TB) {
			/* yh [xi][co][tt] = A dy A^T (A = [1 0; 1 1; 1 -1; 0 -1]) */
			for (int co = 0; co < c_out; co++)
				for (int v = 0; v < WINO_TB; v += VW) {
					const float *qc = q + (size_t)co * 4 * sq + t0 + v;
					const vec_t y00 = VLOADU(qc), y01 = VLOADU(qc + sq);
					const vec_t y10 = VLOADU(qc + 2 * sq), y11 = VLOADU(qc + 3 * sq);
					vec_t z[4][2] = {{y00, y01},
							 {VADD(y00, y10), VADD(y01, y11)},
							 {VSUB(y00, y10), VSUB(y01, y11)},
							 {VSUB(VZERO(), y10), VSUB(VZERO(), y11)}};
					_Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
					{
						float *o = yh + (size_t)(i * 4) * ys + (size_t)co * WINO_TB + v;
						const size_t st = ys;
						VSTOREU(o, z[i][0]);
						VSTOREU(o + st, VADD(z[i][0], z[i][1]));
						VSTOREU(o + 2 * st, VSUB(z[i][0], z[i][1]));
						VSTOREU(o + 3 * st, VSUB(VZERO(), z[i][1]));
					}
				}
			/* xh [xi][tt][ci] = B^T d B, VW input channels at a time */
			for (int tt = 0; tt < WINO_TB; tt++) {
				const int t = t0 + tt, ty = t / tw, tx = t % tw;
				const float *base = xt + ((size_t)(2 * ty) * pw + 2 * tx) * c_in;
				for (int cv = 0; cv < c_in; cv += VW) {
					vec_t d[4][4], e[4][4];
					_Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
						_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
							d[r][c] = VLOADU(base + ((size_t)r * pw + c) * c_in + cv);
					_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
					{
						e[0][c] = VSUB(d[0][c], d[2][c]);
						e[1][c] = VADD(d[1][c], d[2][c]);
						e[2][c] = VSUB(d[2][c], d[1][c]);
						e[3][c] = VSUB(d[1][c], d[3][c]);
					}
					_Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
					{
						float *o = xh + (size_t)(r * 4) * xs + (size_t)tt * c_in + cv;
						const size_t st = xs;
						VSTOREU(o, VSUB(e[r][0], e[r][2]));
						VSTOREU(o + st, VADD(e[r][1], e[r][2]));
						VSTOREU(o + 2 * st, VSUB(e[r][2], e[r][1]));
						VSTOREU(o + 3 * st, VSUB(e[r][1], e[r][3]));
					}
				}
			}
			for (int xi = 0; xi < 16; xi++)
				for (int co = 0; co < c_out; co += CONV_MR)
					for (int cv = 0; cv < c_in; cv += 2 * VW)
						WINO_NAME(dw_tile)(S + ((size_t)xi * c_out + co) * c_in + cv,
								   (size_t)c_in,
								   yh + xi * ys + (size_t)co * WINO_TB,
								   xh + xi * xs + cv, c_in);
		}
	}
	/* dw = G^T S G per channel pair (G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]), VW input
	 * channels at a time */
	const vec_t half = VSET1(0.5f);
	for (int co = 0; co < c_out; co++)
		for (int cv = 0; cv < c_in; cv += VW) {
			vec_t m[4][4], t[3][4];
			float g[9][VW];
			_Pragma("GCC unroll 16") for (int xi = 0; xi < 16; xi++)
				m[xi / 4][xi % 4] = VLOADU(S + ((size_t)xi * c_out + co) * c_in + cv);
			_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
			{
				t[0][c] = VADD(m[0][c], VMUL(half, VADD(m[1][c], m[2][c])));
				t[1][c] = VMUL(half, VSUB(m[1][c], m[2][c]));
				t[2][c] = VADD(VMUL(half, VADD(m[1][c], m[2][c])), m[3][c]);
			}
			_Pragma("GCC unroll 3") for (int r = 0; r < 3; r++)
			{
				VSTOREU(g[r * 3], VADD(t[r][0], VMUL(half, VADD(t[r][1], t[r][2]))));
				VSTOREU(g[r * 3 + 1], VMUL(half, VSUB(t[r][1], t[r][2])));
				VSTOREU(g[r * 3 + 2], VADD(VMUL(half, VADD(t[r][1], t[r][2])), t[r][3]));
			}
			float *o = dw + ((size_t)co * c_in + cv) * 9;
			for (int l = 0; l < VW; l++)
				for (int k = 0; k < 9; k++)
					o[l * 9 + k] = accumulate ? o[l * 9 + k] + g[k][l] : g[k][l];
		}
}

#undef WINO_TB
#undef WINO_PAD

#undef WINO_TILE
#undef WINO_NB
