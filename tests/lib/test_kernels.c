/* Kernel paths: every path this CPU supports against a double-precision reference GEMM (shapes
 * with edges in every dimension, both transposes, alpha, beta), bit-identical results for any
 * split of M or N (what the thread pool does), C not read when beta is 0, the BIO_CPU choice,
 * and the nn layers on every path against the generic one. */
#include <stdint.h>

#include "bio/kernels.h"
#include "bio/nn.h"
#include "test.h"

static uint64_t seed = 88172645463325252ULL;

static float frand(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return (float)((double)(seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rnd(size_t n)
{
	float *p = malloc(n * sizeof(float) + 1);
	for (size_t i = 0; i < n; i++)
		p[i] = frand();
	return p;
}

/* C = alpha op(A) op(B) + beta C in double. */
static void ref_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
		     const float *b, int ldb, float beta, double *c, const float *c0, int ldc)
{
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			double s = 0;
			for (int p = 0; p < k; p++) {
				double x = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
				double y = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
				s += x * y;
			}
			c[(size_t)i * ldc + j] =
				alpha * s + (beta == 0.0f ? 0.0 : beta * (double)c0[(size_t)i * ldc + j]);
		}
}

static const int shapes[][3] = {
	{1, 1, 1}, {3, 5, 7}, {8, 32, 9}, {9, 33, 10}, {17, 70, 300}, {64, 96, 288},
	{13, 1029, 31}, {130, 40, 600}, {32, 9, 700}, {257, 65, 513},
};

TEST(every_path_matches_the_reference)
{
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (!bio_isa_supported((enum bio_isa)isa))
			continue;
		CHECK(bio_kernels_set_isa((enum bio_isa)isa) == 0);
		CHECK(!bio_kernels_uses_openblas());
		for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
			for (int t = 0; t < 4; t++) {
				int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
				int ta = t & 1, tb = t >> 1;
				int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
				float *a = rnd((size_t)(ta ? k : m) * lda);
				float *b = rnd((size_t)(tb ? n : k) * ldb);
				float *c = rnd((size_t)m * ldc), *c0 = malloc((size_t)m * ldc * 4);
				double *r = malloc((size_t)m * ldc * sizeof(double));
				memcpy(c0, c, (size_t)m * ldc * 4);
				float alpha = t == 3 ? -0.5f : 1.0f, beta = (s + t) % 3 ? 0.0f : 0.75f;
				ref_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, r, c0, ldc);
				bio_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
				double worst = 0;
				for (int i = 0; i < m; i++)
					for (int j = 0; j < n; j++) {
						double d = fabs(c[(size_t)i * ldc + j] - r[(size_t)i * ldc + j]);
						worst = d > worst ? d : worst;
					}
				/* float sums of k products of values in [-1, 1] */
				double tol = 2e-6 * k + 1e-6;
				if (!(worst <= tol))
					fprintf(stderr, "%s: %dx%dx%d ta %d tb %d: max error %g\n",
						bio_isa_name((enum bio_isa)isa), m, n, k, ta, tb, worst);
				CHECK(worst <= tol);
				/* the padding columns of C are untouched */
				for (int i = 0; i < m; i++)
					CHECK(c[(size_t)i * ldc + n] == c0[(size_t)i * ldc + n]);
				free(a);
				free(b);
				free(c);
				free(c0);
				free(r);
			}
	}
}

/* Splitting M or N (as the pool does) gives the same bits; so does any position in C. */
TEST(splits_are_bit_identical)
{
	const int m = 72, n = 200, k = 600;
	float *a = rnd((size_t)m * k), *b = rnd((size_t)k * n);
	float *whole = calloc((size_t)m * n, 4), *parts = calloc((size_t)m * n, 4);
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		for (int tb = 0; tb < 2; tb++) {
			float *bb = b;
			int ldb = tb ? k : n;
			bio_sgemm(0, tb, m, n, k, 1.0f, a, k, bb, ldb, 0.0f, whole, n);
			/* rows 0..29 and 30..71, then columns 0..112 and 113..199 */
			bio_sgemm(0, tb, 30, n, k, 1.0f, a, k, bb, ldb, 0.0f, parts, n);
			bio_sgemm(0, tb, m - 30, n, k, 1.0f, a + (size_t)30 * k, k, bb, ldb, 0.0f,
				  parts + (size_t)30 * n, n);
			CHECK(memcmp(whole, parts, (size_t)m * n * 4) == 0);
			memset(parts, 0, (size_t)m * n * 4);
			bio_sgemm(0, tb, m, 113, k, 1.0f, a, k, bb, ldb, 0.0f, parts, n);
			bio_sgemm(0, tb, m, n - 113, k, 1.0f, a, k,
				  tb ? bb + (size_t)113 * k : bb + 113, ldb, 0.0f, parts + 113, n);
			CHECK(memcmp(whole, parts, (size_t)m * n * 4) == 0);
		}
	}
	free(a);
	free(b);
	free(whole);
	free(parts);
}

TEST(beta_zero_does_not_read_c)
{
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];
		for (int i = 0; i < 4; i++)
			c[i] = NAN;
		bio_sgemm(0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2);
		CHECK(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11);
	}
}

/* The layers on each path agree with the generic path (gradients of a small model). */
TEST(layers_agree_across_paths)
{
	struct bio_conv2d l = {0};
	CHECK(bio_conv2d_setup(&l, 16, 24, 3, 1, 1, 12, 12) == 0);
	const int n = 4;
	size_t nw = (size_t)24 * 16 * 9, nin = (size_t)16 * n * 144, nout = (size_t)24 * n * 144;
	float *w = rnd(nw), *in = rnd(nin), *dout = rnd(nout);
	float *out[BIO_ISA_COUNT] = {0}, *dw[BIO_ISA_COUNT] = {0}, *din[BIO_ISA_COUNT] = {0};
	l.w = w;
	l.col_floats = bio_conv2d_col_floats(&l) * n;
	l.col = malloc(l.col_floats * sizeof(float));
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		out[isa] = malloc(nout * 4);
		dw[isa] = calloc(nw, 4);
		din[isa] = malloc(nin * 4);
		l.dw = dw[isa];
		bio_conv2d_forward(&l, out[isa], in, n);
		bio_conv2d_backward(&l, din[isa], dout, in, n);
	}
	for (int isa = 1; isa < BIO_ISA_COUNT; isa++) {
		if (!out[isa])
			continue;
		double e1 = 0, e2 = 0, e3 = 0;
		for (size_t i = 0; i < nout; i++)
			e1 = fmax(e1, fabs(out[isa][i] - out[0][i]));
		for (size_t i = 0; i < nw; i++)
			e2 = fmax(e2, fabs(dw[isa][i] - dw[0][i]) / (1 + fabs(dw[0][i])));
		for (size_t i = 0; i < nin; i++)
			e3 = fmax(e3, fabs(din[isa][i] - din[0][i]));
		CHECK(e1 < 1e-4 && e2 < 1e-4 && e3 < 1e-4);
	}
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		free(out[isa]);
		free(dw[isa]);
		free(din[isa]);
	}
	free(l.col);
	free(w);
	free(in);
	free(dout);
}

/* The weight gradient of 3x3 tap t (pad 1) by the definition, in double: the sum over n samples
 * of h x w planes, one after another in dy and in, of dy at (y, x) times in at the tap's shift. */
static double ref_dweight(const float *dy, const float *in, int t, int n, int h, int w)
{
	const size_t hw = (size_t)h * w;
	double s = 0;
	for (int j = 0; j < n; j++)
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				int yy = y + t / 3 - 1, xx = x + t % 3 - 1;
				if (yy >= 0 && yy < h && xx >= 0 && xx < w)
					s += (double)dy[j * hw + (size_t)y * w + x] *
					     in[j * hw + (size_t)yy * w + xx];
			}
	return s;
}

/* The first layer's direct kernel (1 channel, 3x3, pad 1) against the definition, on every path:
 * forward and the weight gradient, rows of 40 (vectors and a tail). */
TEST(conv_c1_matches_the_definition)
{
	const int co = 5, n = 3, h = 7, w = 40;
	float *wt = rnd((size_t)co * 9), *in = rnd((size_t)n * h * w), *dy = rnd((size_t)co * n * h * w);
	float *out = malloc(sizeof(float) * co * n * h * w), dw[45];
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		bio_conv3x3_c1_forward(wt, NULL, co, in, n, h, w, out, (size_t)n * h * w);
		bio_conv3x3_c1_dweights(dw, co, in, dy, n, h, w, (size_t)n * h * w, 0);
		double e_out = 0, e_dw = 0;
		for (int c = 0; c < co; c++) {
			for (int j = 0; j < n; j++)
				for (int y = 0; y < h; y++)
					for (int x = 0; x < w; x++) {
						double s = 0;
						for (int t = 0; t < 9; t++) {
							int yy = y + t / 3 - 1, xx = x + t % 3 - 1;
							if (yy >= 0 && yy < h && xx >= 0 && xx < w)
								s += (double)wt[c * 9 + t] *
								     in[((size_t)j * h + yy) * w + xx];
						}
						size_t o = (size_t)c * n * h * w + ((size_t)j * h + y) * w + x;
						e_out = fmax(e_out, fabs(out[o] - s));
					}
			for (int t = 0; t < 9; t++) {
				double s = ref_dweight(dy + (size_t)c * n * h * w, in, t, n, h, w);
				e_dw = fmax(e_dw, fabs(dw[c * 9 + t] - s));
			}
		}
		if (!(e_out < 1e-5 && e_dw < 1e-3))
			fprintf(stderr, "%s: conv c1 errors %g %g\n", bio_isa_name((enum bio_isa)isa),
				e_out, e_dw);
		CHECK(e_out < 1e-5 && e_dw < 1e-3);
		/* accumulate adds */
		float dw2[45];
		memcpy(dw2, dw, sizeof dw);
		bio_conv3x3_c1_dweights(dw2, co, in, dy, n, h, w, (size_t)n * h * w, 1);
		for (int i = 0; i < 45; i++)
			CHECK(dw2[i] == dw[i] + dw[i]);
	}
	free(wt);
	free(in);
	free(dy);
	free(out);
}

/* The 3x3 kernels on every path on h x w planes (Winograd where wino says it fits, else direct):
 * forward (+ bias), the flipped (input-gradient) form and the weight gradient against the
 * definition in double; a sample's outputs do not depend on the other samples of its call;
 * accumulate adds. */
static void conv3x3_check(int h, int w, int ci, int wino) /* (wino: the kernel expected) */
{
	const int co = 16, n = 3; /* (both a multiple of every MR) */
	const size_t hw = (size_t)h * w, ld = (size_t)n * hw;
	float *wt = rnd((size_t)co * ci * 9), *b = rnd(co), *in = rnd(ci * ld), *dy = rnd(co * ld);
	float *out = malloc(sizeof(float) * co * ld), *one = malloc(sizeof(float) * co * ld);
	float *dx = malloc(sizeof(float) * ci * ld), *dw = malloc(sizeof(float) * co * ci * 9);
	float *dw2 = malloc(sizeof(float) * co * ci * 9);
	float *wp = malloc(sizeof(float) * BIO_CONV3X3_PACKED(ci, co));
	float *wpf = malloc(sizeof(float) * BIO_CONV3X3_PACKED(ci, co));
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		CHECK(bio_conv3x3_direct(co, w) && bio_conv3x3_direct(8, 16));
		CHECK(!bio_conv3x3_direct(co, 6) && !bio_conv3x3_direct(3, w));
		CHECK(bio_conv3x3_winograd(co, h, w) == wino && bio_conv3x3_winograd(ci, h, w) == wino);
		if (bio_conv3x3_winograd(co, h, w) != wino)
			fprintf(stderr, "%s: %dx%d: kernel %d, expected %d\n",
				bio_isa_name((enum bio_isa)isa), h, w, bio_conv3x3_winograd(co, h, w), wino);
		CHECK(wino || !bio_conv3x3_winograd_dw(ci, co, h, w));
		CHECK(!wino || ci % 32 != 0 || bio_conv3x3_winograd_dw(ci, co, h, w));
		bio_conv3x3_pack(wp, wt, 0, ci, co, h, w);
		bio_conv3x3_forward(wp, b, ci, co, in, ld, n, h, w, out, ld);
		bio_conv3x3_pack(wpf, wt, 1, co, ci, h, w);
		bio_conv3x3_forward(wpf, NULL, co, ci, dy, ld, n, h, w, dx, ld);
		bio_conv3x3_dweights(dw, ci, co, in, ld, dy, ld, n, h, w, 0);
		double e_out = 0, e_dx = 0, e_dw = 0, m_out = 1, m_dx = 1, m_dw = 1; /* (max |ref|) */
		for (int j = 0; j < n; j++)
			for (int y = 0; y < h; y++)
				for (int x = 0; x < w; x++) {
					size_t p = j * hw + (size_t)y * w + x;
					for (int c = 0; c < co; c++) {
						double s = b[c];
						for (int i = 0; i < ci; i++)
							for (int t = 0; t < 9; t++) {
								int yy = y + t / 3 - 1, xx = x + t % 3 - 1;
								if (yy >= 0 && yy < h && xx >= 0 && xx < w)
									s += (double)wt[(c * ci + i) * 9 + t] *
									     in[i * ld + j * hw + yy * w + xx];
							}
						e_out = fmax(e_out, fabs(out[c * ld + p] - s));
						m_out = fmax(m_out, fabs(s));
					}
					for (int i = 0; i < ci; i++) { /* dx = sum over c, taps of w dy */
						double s = 0;
						for (int c = 0; c < co; c++)
							for (int t = 0; t < 9; t++) {
								int yy = y - t / 3 + 1, xx = x - t % 3 + 1;
								if (yy >= 0 && yy < h && xx >= 0 && xx < w)
									s += (double)wt[(c * ci + i) * 9 + t] *
									     dy[c * ld + j * hw + yy * w + xx];
							}
						e_dx = fmax(e_dx, fabs(dx[i * ld + p] - s));
						m_dx = fmax(m_dx, fabs(s));
					}
				}
		for (int c = 0; c < co; c++)
			for (int i = 0; i < ci; i++)
				for (int t = 0; t < 9; t++) {
					double s = ref_dweight(dy + c * ld, in + i * ld, t, n, h, w);
					e_dw = fmax(e_dw, fabs(dw[(c * ci + i) * 9 + t] - s));
					m_dw = fmax(m_dw, fabs(s));
				}
		/* errors relative to the largest value: fp32 rounding (direct ~1e-6, Winograd
		 * F(2x2, 3x3) a few 1e-6, F(4x4, 3x3) ~1e-5; a wrong tap or transform is ~1) */
		e_out /= m_out;
		e_dx /= m_dx;
		e_dw /= m_dw;
		if (!(e_out < 5e-5 && e_dx < 5e-5 && e_dw < 5e-5))
			fprintf(stderr, "%s: conv3x3 errors %g %g %g\n",
				bio_isa_name((enum bio_isa)isa), e_out, e_dx, e_dw);
		CHECK(e_out < 5e-5 && e_dx < 5e-5 && e_dw < 5e-5);
		/* sample 1 alone gives the same bits as within the call of three */
		bio_conv3x3_forward(wp, b, ci, co, in + hw, ld, 1, h, w, one, ld);
		int same = 1;
		for (int c = 0; c < co; c++)
			same &= !memcmp(one + c * ld, out + c * ld + hw, sizeof(float) * hw);
		CHECK(same);
		memcpy(dw2, dw, sizeof(float) * co * ci * 9);
		bio_conv3x3_dweights(dw2, ci, co, in, ld, dy, ld, n, h, w, 1);
		for (int i = 0; i < co * ci * 9; i++)
			CHECK(dw2[i] == dw[i] + dw[i]);
	}
	free(wt);
	free(b);
	free(in);
	free(dy);
	free(out);
	free(one);
	free(dx);
	free(dw);
	free(dw2);
	free(wp);
	free(wpf);
}

TEST(conv3x3_direct_matches_the_definition)
{
	conv3x3_check(7, 32, 8, 0); /* (h odd: no 2 x 2 tiles) */
}

/* Winograd F(4x4, 3x3) (planes a multiple of 4: 32 wide, a tile vector within a tile row; 16
 * wide, across rows, a block of tile vectors across three samples) and F(2x2, 3x3) (6 rows);
 * the weight gradient's Winograd with 32 input channels; shapes neither takes */
TEST(conv3x3_winograd_matches_the_definition)
{
	conv3x3_check(8, 32, 8, 4); /* (the weight gradient direct: 8 input channels) */
	conv3x3_check(8, 32, 32, 4);
	conv3x3_check(16, 16, 32, 4);
	conv3x3_check(6, 32, 8, 2);
	conv3x3_check(6, 64, 32, 2);
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		CHECK(!bio_conv3x3_winograd(16, 7, 32) && !bio_conv3x3_winograd(16, 8, 30));
		CHECK(!bio_conv3x3_winograd(10, 8, 32) && !bio_conv3x3_winograd(16, 2, 8));
		CHECK(!bio_conv3x3_winograd_dw(32, 16, 7, 32) && !bio_conv3x3_winograd_dw(20, 16, 8, 32));
		CHECK(!bio_conv3x3_winograd_dw(32, 16, 4, 8)); /* (16 tiles: no whole block) */
	}
}

/* A linear layer's weight gradient on every path: within float rounding of the definition in
 * double, added to what dw held, and the same bits whatever ranges of rows and columns the calls
 * take (as threads take them), for sample counts that leave a short piece. */
TEST(lin_dw_tree_is_the_definition)
{
	enum { R = 11, C = 83, N = 13 }; /* rows and columns not multiples of any tile */
	static float d[N * R], in[N * C], dw[R * C], dw2[R * C], init[R * C];
	for (int i = 0; i < N * R; i++)
		d[i] = frand() - 0.5f;
	for (int i = 0; i < N * C; i++)
		in[i] = frand() - 0.5f;
	for (int i = 0; i < R * C; i++)
		init[i] = frand() - 0.5f;
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		for (int n = 1; n <= N; n += 4) {
			memcpy(dw, init, sizeof dw);
			memcpy(dw2, init, sizeof dw2);
			bio_lin_dw_tree(dw, C, R, C, d, R, in, C, n);
			double maxerr = 0.0;
			for (int r = 0; r < R; r++)
				for (int c = 0; c < C; c++) {
					double e = init[r * C + c];
					for (int s = 0; s < n; s++)
						e += (double)d[s * R + r] * in[s * C + c];
					double err = fabs(dw[r * C + c] - e);
					maxerr = err > maxerr ? err : maxerr;
				}
			CHECK(maxerr < 1e-5);
			/* in pieces: rows 0-4 and 5-10, columns 0-16, 17-50, 51-82 */
			static const int r0[3] = {0, 5, R}, c0[4] = {0, 17, 51, C};
			for (int a = 0; a < 2; a++)
				for (int b = 0; b < 3; b++)
					bio_lin_dw_tree(dw2 + r0[a] * C + c0[b], C, r0[a + 1] - r0[a],
							c0[b + 1] - c0[b], d + r0[a], R, in + c0[b], C, n);
			CHECK(memcmp(dw, dw2, sizeof dw) == 0);
		}
	}
}

/* The pooled row is the same bits on every path as the definition: ties (the first maximum
 * wins), negatives (ReLU), zeros of both signs, a width not a multiple of 16. */
TEST(relu_pool2_row_is_the_definition)
{
	enum { WO = 45 }; /* 16 + 16 + 8 + 5 */
	float r0[2 * WO], r1[2 * WO], out[WO];
	uint8_t am[WO];
	for (int i = 0; i < 2 * WO; i++) {
		r0[i] = frand() - 0.5f;
		r1[i] = i % 5 == 0 ? r0[i] : frand() - 0.5f; /* ties across the rows */
	}
	r0[4] = -0.0f;
	r1[5] = 0.0f;
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		const float g = 1.5f, b = -0.1f;
		bio_relu_pool2_row(out, am, r0, r1, WO, g, b);
		for (int j = 0; j < WO; j++) {
			float v[4] = {g * r0[2 * j] + b, g * r0[2 * j + 1] + b, g * r1[2 * j] + b,
				      g * r1[2 * j + 1] + b};
			int k = 0;
			for (int q = 0; q < 4; q++)
				v[q] = v[q] > 0.0f ? v[q] : 0.0f;
			for (int q = 1; q < 4; q++)
				if (v[q] > v[k])
					k = q;
			CHECK(am[j] == k);
			CHECK(memcmp(&out[j], &v[k], sizeof(float)) == 0);
		}
	}
}

/* The pooling's backward on every path: the sums agree with the definition in double, the
 * scatter touches exactly the arg-max cells of windows with a positive pooled value. */
TEST(pool2_grad_rows_are_the_definition)
{
	enum { WO = 45 };
	float dp[WO], po[WO], x0[2 * WO], x1[2 * WO], y0[2 * WO], y1[2 * WO];
	uint8_t am[WO];
	for (int j = 0; j < WO; j++) {
		dp[j] = frand() - 0.5f;
		po[j] = j % 3 ? frand() : -frand();
		am[j] = (uint8_t)(j * 7 % 4);
	}
	for (int i = 0; i < 2 * WO; i++) {
		x0[i] = frand() - 0.5f;
		x1[i] = frand() - 0.5f;
	}
	x0[3] = -0.0f;
	for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
		if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
			continue;
		float r1, r2;
		double e1 = 0, e2 = 0;
		bio_pool2_grad_sums(&r1, &r2, dp, po, am, x0, x1, WO);
		for (int j = 0; j < WO; j++) {
			double g = po[j] > 0.0f ? dp[j] : 0.0;
			e1 += g;
			e2 += g * (am[j] >> 1 ? x1 : x0)[2 * j + (am[j] & 1)];
		}
		CHECK(fabs(r1 - e1) < 1e-5 && fabs(r2 - e2) < 1e-5);
		memcpy(y0, x0, sizeof x0);
		memcpy(y1, x1, sizeof x1);
		bio_pool2_grad_scatter(y0, y1, dp, po, am, WO, 0.75f);
		int ok = 1;
		for (int j = 0; j < WO; j++)
			for (int q = 0; q < 4; q++) {
				const float *src = q >> 1 ? x1 : x0, *got = q >> 1 ? y1 : y0;
				int c = 2 * j + (q & 1);
				float want = src[c];
				if (po[j] > 0.0f && am[j] == q)
					want = src[c] + 0.75f * dp[j];
				ok &= memcmp(&got[c], &want, sizeof(float)) == 0;
			}
		CHECK(ok);
	}
}

/* Adam's update on every path: the bits of the update written out here, one rounding per
 * operation (Adam, Adam with L2 weight decay, AdamW), over a length that leaves a tail. */
TEST(adam_is_the_definition)
{
	enum { N = 45 };
	float p0[N], g[N], m0[N], v0[N];
	for (int i = 0; i < N; i++) {
		p0[i] = frand() - 0.5f;
		g[i] = i % 5 ? (frand() - 0.5f) * 1e-2f : 0.0f;
		m0[i] = (frand() - 0.5f) * 1e-3f;
		v0[i] = frand() * 1e-5f;
	}
	for (int kind = 0; kind < 3; kind++) {
		const float lr = 1e-3f, wd = kind ? 0.01f : 0.0f;
		const double bc1 = 1.0 - pow(0.9, 3.0), bc2 = 1.0 - pow(0.999, 3.0);
		struct bio_adam c = {(float)(1.0 - 1e-3 * wd), wd, 0.9f, (float)(1.0 - 0.9), 0.999f,
				     (float)(1.0 - 0.999), (float)sqrt(bc2), 1e-8f,
				     (float)(-(lr / bc1)), kind == 2};
		float want_p[N], want_m[N], want_v[N];
		for (int i = 0; i < N; i++) {
			float gi = g[i], pi = p0[i];
			if (kind == 2)
				pi = pi * c.decay;
			else if (kind == 1)
				gi = gi + c.wd * pi;
			float mi = m0[i] * c.b1, vi = v0[i] * c.b2, t = gi * gi;
			mi = mi + c.one_b1 * gi;
			vi = vi + c.one_b2 * t;
			float denom = sqrtf(vi);
			denom = denom / c.bc2s;
			denom = denom + c.eps;
			float q = mi / denom;
			want_p[i] = pi + c.neg_step * q;
			want_m[i] = mi;
			want_v[i] = vi;
		}
		for (int isa = 0; isa < BIO_ISA_COUNT; isa++) {
			if (bio_kernels_set_isa((enum bio_isa)isa) != 0)
				continue;
			float p[N], m[N], v[N];
			memcpy(p, p0, sizeof p);
			memcpy(m, m0, sizeof m);
			memcpy(v, v0, sizeof v);
			bio_adam(p, g, m, v, 7, &c); /* a short call, then the rest */
			bio_adam(p + 7, g + 7, m + 7, v + 7, N - 7, &c);
			CHECK(memcmp(p, want_p, sizeof p) == 0);
			CHECK(memcmp(m, want_m, sizeof m) == 0);
			CHECK(memcmp(v, want_v, sizeof v) == 0);
		}
	}
}

TEST(names_and_support)
{
	CHECK(bio_isa_supported(BIO_ISA_GENERIC));
	CHECK_STR(bio_isa_name(BIO_ISA_AVX512), "avx512");
	CHECK_STR(bio_isa_name(BIO_ISA_AVX2), "avx2");
	CHECK_STR(bio_isa_name(BIO_ISA_GENERIC), "generic");
	if (!bio_isa_supported(BIO_ISA_AVX512))
		CHECK(bio_kernels_set_isa(BIO_ISA_AVX512) == -1);
	CHECK(strstr(bio_kernels_describe(), "kernels ") != NULL);
}

int main(void)
{
	struct bio_error err;
	if (bio_kernels_init(&err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	RUN(every_path_matches_the_reference);
	RUN(splits_are_bit_identical);
	RUN(beta_zero_does_not_read_c);
	RUN(layers_agree_across_paths);
	RUN(conv_c1_matches_the_definition);
	RUN(conv3x3_direct_matches_the_definition);
	RUN(conv3x3_winograd_matches_the_definition);
	RUN(lin_dw_tree_is_the_definition);
	RUN(relu_pool2_row_is_the_definition);
	RUN(pool2_grad_rows_are_the_definition);
	RUN(adam_is_the_definition);
	RUN(names_and_support);
	return test_summary();
}
