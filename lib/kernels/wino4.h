/* Winograd F(4x4, 3x3) convolution, stride 1, padding 1: each 4 x 4 block of outputs (a tile)
 * from the 6 x 6 inputs around it with 36 multiplications per input channel where the direct
 * kernel takes 144 (4 times fewer; F(2x2, 3x3) of wino.h, 2.25). Included by each vector ISA's
 * file after wino.h, with the same macros (W4_NAME(x) the name of function x here). The forward
 * and the input gradient of the 3x3 layers run here where the shape fits (w4_fits), else in
 * wino.h; the weight gradient stays in wino.h.
 *
 * The transforms (Lavin and Gray 2016, points 0, 1, -1, 2, -2, infinity):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * Every output is the same sequence of operations wherever it lies and whichever thread or call
 * computes it, as in wino.h. Lanes are the tiles t = ty tw + tx (tw = w / 4) of one sample. Each
 * input plane is split into 24 arrays [padded row mod 4][tile column c, 0..5][(th + 1) tw], entry
 * k tw + tx = padded(4 k + row mod 4, 4 tx + c): input (r, c) of tiles t0.. is one contiguous load
 * at (r / 4) tw + t0 of array (r % 4, c). The outputs are stored a quarter vector of tiles (one
 * row of pixels of VW / 4 tiles) at a time. */
#include <stddef.h>
#include <string.h>

#define W4_NB 3 /* tile vectors per register tile (with CONV_MR output channels) */

int W4_NAME(fits)(int c_out, int h, int wd);
int W4_NAME(fits)(int c_out, int h, int wd)
{
	const int th = h / 4, tw = wd / 4;
	return h > 0 && wd > 0 && h % 4 == 0 && wd % 4 == 0 && c_out % CONV_MR == 0 &&
	       tw % (VW / 4) == 0 && (th * tw) % VW == 0;
}

/* u [36][c_out / MR][c_in][MR] = G g G^T (in double, then rounded) of each channel pair's 3 x 3
 * weights, from w as wino.h's pack (flip: transposed and flipped). */
void W4_NAME(pack)(float *u, const float *w, int flip, int c_in, int c_out);
void W4_NAME(pack)(float *u, const float *w, int flip, int c_in, int c_out)
{
	static const double G[6][3] = {{0.25, 0, 0},
				       {-1.0 / 6, -1.0 / 6, -1.0 / 6},
				       {-1.0 / 6, 1.0 / 6, -1.0 / 6},
				       {1.0 / 24, 1.0 / 12, 1.0 / 6},
				       {1.0 / 24, -1.0 / 12, 1.0 / 6},
				       {0, 0, 1}};
	const int ncb = c_out / CONV_MR;
	const size_t st = (size_t)ncb * c_in * CONV_MR; /* xi's stride in u */
	/* MR output channels at a time (the lanes of the arithmetic: each xi's MR stores are
	 * contiguous) */
	for (int cb = 0; cb < ncb; cb++)
		for (int ci = 0; ci < c_in; ci++) {
			double g[9][CONV_MR], t[6][3][CONV_MR];
			for (int r = 0; r < CONV_MR; r++) {
				float gf[9];
				WINO_NAME(taps)(gf, w, flip, c_in, c_out, cb * CONV_MR + r, ci);
				for (int k = 0; k < 9; k++)
					g[k][r] = gf[k];
			}
			for (int i = 0; i < 6; i++) /* t = G g */
				for (int c = 0; c < 3; c++)
					for (int r = 0; r < CONV_MR; r++)
						t[i][c][r] = G[i][0] * g[c][r] + G[i][1] * g[3 + c][r] +
							     G[i][2] * g[6 + c][r];
			float *o = u + ((size_t)cb * c_in + ci) * CONV_MR;
			for (int i = 0; i < 6; i++) /* U = t G^T */
				for (int c = 0; c < 6; c++)
					for (int r = 0; r < CONV_MR; r++)
						o[(size_t)(i * 6 + c) * st + r] =
							(float)(t[i][0][r] * G[c][0] + t[i][1][r] * G[c][1] +
								t[i][2][r] * G[c][2]);
		}
}

/* s [ci][24][(th + 1) tw]: the split planes (above) of one sample of in (channel stride ld). */
static void W4_NAME(split)(float *s, const float *in, size_t ld, int c_in, int h, int wd)
{
	const int th = h / 4, tw = wd / 4;
	const size_t sp = (size_t)(th + 1) * tw;
	for (int ci = 0; ci < c_in; ci++, s += 24 * sp, in += ld) {
		float *restrict d = s;
		const float *restrict p = in;
		for (int k = 0; k <= th; k++)
			for (int res = 0; res < 4; res++) {
				const int y = 4 * k + res; /* padded row: input row y - 1 */
				float *restrict a = d + (size_t)res * 6 * sp + (size_t)k * tw;
				if (y < 1 || y > h) {
					for (int c = 0; c < 6; c++)
						memset(a + c * sp, 0, sizeof(float) * (size_t)tw);
					continue;
				}
				const float *restrict row = p + (size_t)(y - 1) * wd;
				/* column c of tile tx: input column 4 tx + c - 1 */
				for (int x = 0; x < tw; x++) {
					a[sp + x] = row[4 * x];
					a[2 * sp + x] = row[4 * x + 1];
					a[3 * sp + x] = row[4 * x + 2];
					a[4 * sp + x] = row[4 * x + 3];
				}
				a[0] = 0.0f;
				for (int x = 1; x < tw; x++)
					a[x] = row[4 * x - 1];
				for (int x = 0; x + 1 < tw; x++)
					a[5 * sp + x] = row[4 * x + 4];
				a[5 * sp + tw - 1] = 0.0f;
			}
	}
}

/* o[i * st] = (B^T x)[i] for the six vectors x */
#define W4_BT(x, o, st)                                                                        \
	do {                                                                                   \
		const vec_t t1_ = VFMA(m4, x[2], x[4]), t2_ = VFMA(m4, x[1], x[3]);             \
		const vec_t t3_ = VSUB(x[4], x[2]), t4_ = VMUL(two, VSUB(x[3], x[1]));          \
		o[0] = VFMA(four, x[0], VFMA(m5, x[2], x[4]));                                   \
		o[st] = VADD(t1_, t2_);                                                         \
		o[2 * st] = VSUB(t1_, t2_);                                                     \
		o[3 * st] = VADD(t3_, t4_);                                                     \
		o[4 * st] = VSUB(t3_, t4_);                                                     \
		o[5 * st] = VFMA(four, x[1], VFMA(m5, x[3], x[5]));                              \
	} while (0)

/* v[xi vs + ci NB + b] = B^T d B of the tile vector at split base src (channel ci at src + ci 24
 * sp), vs = c_in NB + 1 */
static inline void W4_NAME(in_tf)(vec_t *v, const float *src, size_t sp, int tw, int c_in, int b)
{
	const size_t vs = (size_t)c_in * W4_NB + 1;
	const vec_t four = VSET1(4.0f), m4 = VSET1(-4.0f), m5 = VSET1(-5.0f), two = VSET1(2.0f);
	for (int ci = 0; ci < c_in; ci++) {
		const float *a = src + (size_t)ci * 24 * sp;
		vec_t e[6][6]; /* e = B^T d, by columns */
		_Pragma("GCC unroll 6") for (int c = 0; c < 6; c++)
		{
			vec_t x[6];
			_Pragma("GCC unroll 6") for (int r = 0; r < 6; r++)
				x[r] = VLOADU(a + ((size_t)(r % 4) * 6 + c) * sp + (size_t)(r / 4) * tw);
			vec_t col[6];
			vec_t *o = col;
			W4_BT(x, o, 1);
			_Pragma("GCC unroll 6") for (int i = 0; i < 6; i++) e[i][c] = col[i];
		}
		_Pragma("GCC unroll 6") for (int i = 0; i < 6; i++)
		{
			vec_t *o = v + (size_t)(i * 6) * vs + (size_t)ci * W4_NB + b;
			W4_BT(e[i], o, vs);
		}
	}
}

/* The 36 GEMMs are wino.h's (WINO_NAME(gemms): register tiles m[r NB + b] = sum over ci of
 * u[ci MR + r] v[ci NB + b], with its NB, which W4_NB equals). */
_Static_assert(W4_NB == 3, "W4_NB is wino.h's WINO_NB");

/* y[i] = (A^T m)[i], i < 4, for the six vectors m */
#define W4_AT(m, y)                                                                            \
	do {                                                                                   \
		const vec_t s12_ = VADD(m[1], m[2]), d12_ = VSUB(m[1], m[2]);                   \
		const vec_t s34_ = VADD(m[3], m[4]), d34_ = VSUB(m[3], m[4]);                   \
		y[0] = VADD(VADD(m[0], s12_), s34_);                                            \
		y[1] = VFMA(two, d34_, d12_);                                                   \
		y[2] = VFMA(four, s34_, s12_);                                                  \
		y[3] = VADD(VFMA(eight, d34_, d12_), m[5]);                                     \
	} while (0)

/* The 4 x 4 outputs of tiles t0.. (y = A^T M A + bias) into plane o, from M[xi] = q[xi MR NB] */
static inline void W4_NAME(out_tf)(const vec_t *q, vec_t bv, float *o, int t0, int tw, int wd)
{
	const vec_t two = VSET1(2.0f), four = VSET1(4.0f), eight = VSET1(8.0f);
	const size_t st = (size_t)CONV_MR * W4_NB; /* xi's stride */
	vec_t f[4][6];				   /* A^T M, by columns */
	_Pragma("GCC unroll 6") for (int c = 0; c < 6; c++)
	{
		vec_t x[6], y[4];
		_Pragma("GCC unroll 6") for (int i = 0; i < 6; i++) x[i] = q[(i * 6 + c) * st];
		W4_AT(x, y);
		_Pragma("GCC unroll 4") for (int a = 0; a < 4; a++) f[a][c] = y[a];
	}
	_Pragma("GCC unroll 4") for (int a = 0; a < 4; a++)
	{
		vec_t y[4]; /* (A^T M) A: output row a of each tile, + bias */
		W4_AT(f[a], y);
		_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) y[c] = VADD(y[c], bv);
		/* interleaved: quarter k holds tiles t0 + k VW / 4 .. */
		vec_t p0, p1, p2, p3, z[4];
		WINO_ZIP(y[0], y[2], p0, p1);
		WINO_ZIP(y[1], y[3], p2, p3);
		WINO_ZIP(p0, p2, z[0], z[1]);
		WINO_ZIP(p1, p3, z[2], z[3]);
		_Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)
		{
			const int t = t0 + k * (VW / 4);
			VSTOREU(o + (size_t)(4 * (t / tw) + a) * wd + 4 * (t % tw), z[k]);
		}
	}
}

/* out [c_out] (channel stride out_ld) = conv(in [c_in] (stride in_ld)) + bias, samples j < n,
 * with the weights packed by W4_NAME(pack) (wino.h's driver) */
WINO_FORWARD(W4_NAME(forward), 4, 24, 36, W4_NAME(split), W4_NAME(in_tf), W4_NAME(out_tf))

#undef W4_NB
#undef WINO_FORWARD
#undef W4_BT
#undef W4_AT
