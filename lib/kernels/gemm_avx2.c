/* SGEMM for AVX2 + FMA: a 4 x 24 micro-tile, 12 ymm accumulators, three loads of B and four
 * broadcasts of A per k step. Compiled for AVX2/FMA only (the target pragma below); called only
 * when the CPU has them (kernels.c). */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma")
#endif

#include <immintrin.h>

#define GEMM_MR 4
#define GEMM_NR 24
#define GEMM_NAME bio_sgemm_avx2

/* As in gemm_avx512.c: each operation rounded as the scalar edge code rounds it. */
static inline void put(float *c, __m256 s, __m256 va, __m256 vb, int first, int zero_beta)
{
	__m256 as = _mm256_mul_ps(va, s);
	if (!first)
		_mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), as));
	else if (zero_beta)
		_mm256_storeu_ps(c, as);
	else
		_mm256_storeu_ps(c, _mm256_add_ps(_mm256_mul_ps(vb, _mm256_loadu_ps(c)), as));
}

static inline void gemm_micro(int kc, const float *ap, const float *bp, int ldb, float *c,
			      int ldc, float alpha, float beta, int first)
{
	__m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
	__m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
	for (int kk = 0; kk < kc; kk++) {
		const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8),
			     b2 = _mm256_loadu_ps(bp + 16);
		__m256 a;
#define ROW(r, x0, x1, x2)                           \
	a = _mm256_broadcast_ss(ap + r);             \
	x0 = _mm256_fmadd_ps(a, b0, x0);             \
	x1 = _mm256_fmadd_ps(a, b1, x1);             \
	x2 = _mm256_fmadd_ps(a, b2, x2);
		ROW(0, c00, c01, c02) ROW(1, c10, c11, c12)
		ROW(2, c20, c21, c22) ROW(3, c30, c31, c32)
#undef ROW
		ap += 4;
		bp += ldb;
	}
	const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
	const int zb = beta == 0.0f;
#define PUT(r, x0, x1, x2)                                            \
	put(c + (size_t)(r) * ldc, x0, va, vb, first, zb);           \
	put(c + (size_t)(r) * ldc + 8, x1, va, vb, first, zb);       \
	put(c + (size_t)(r) * ldc + 16, x2, va, vb, first, zb);
	PUT(0, c00, c01, c02) PUT(1, c10, c11, c12)
	PUT(2, c20, c21, c22) PUT(3, c30, c31, c32)
#undef PUT
}

#include "gemm_driver.h"

#include <math.h>

typedef __m256 vec_t;
#define VW 8
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define CONV_C1_SFMA(a, b, c) fmaf(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define CONV_C1_NAME(x) bio_conv_c1_##x##_avx2
#include "conv_c1.h"

/* out[i] = the sum of v[i]'s 8 lanes, i < 8: 128-bit halves, then pairs, then single lanes, added
 * as a fixed tree (the result lane 4l + m holds v[2m + l]'s sum). */
static inline void conv_hsum(const __m256 *v, float *out)
{
	__m256 t[4], w[2];
	for (int k = 0; k < 4; k++)
		t[k] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x20),
				     _mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x31));
	for (int k = 0; k < 2; k++)
		w[k] = _mm256_add_ps(_mm256_shuffle_ps(t[2 * k], t[2 * k + 1], 0x44),
				     _mm256_shuffle_ps(t[2 * k], t[2 * k + 1], 0xEE));
	float r[8];
	_mm256_storeu_ps(r, _mm256_add_ps(_mm256_shuffle_ps(w[0], w[1], 0x88),
					  _mm256_shuffle_ps(w[0], w[1], 0xDD)));
	for (int i = 0; i < 8; i++)
		out[i] = r[(i % 2) * 4 + i / 2];
}
#define CONV_HSUM(v, out) conv_hsum(v, out)
#define CONV_MR 4
#define CONV_NAME(x) bio_conv3x3_##x##_avx2
#include "conv3x3.h"

#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define WINO_ZIP(a, b, lo, hi)                                                                  \
	do {                                                                                    \
		__m256 u_ = _mm256_unpacklo_ps(a, b), w_ = _mm256_unpackhi_ps(a, b);             \
		lo = _mm256_permute2f128_ps(u_, w_, 0x20);                                      \
		hi = _mm256_permute2f128_ps(u_, w_, 0x31);                                      \
	} while (0)
/* e[i] = p[2 i], o[i] = p[2 i + 1] for the first i < n: 8 at a time (how many: returned) */
static inline int wino_deint(const float *p, float *e, float *o, int n)
{
	int i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 a = _mm256_loadu_ps(p + 2 * i), b = _mm256_loadu_ps(p + 2 * i + 8);
		/* (a0 a2 b0 b2 | a4 a6 b4 b6), then its 64-bit quarters 0 2 1 3 */
		__m256 ev = _mm256_shuffle_ps(a, b, 0x88), od = _mm256_shuffle_ps(a, b, 0xDD);
		_mm256_storeu_ps(e + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8)));
		_mm256_storeu_ps(o + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8)));
	}
	return i;
}
#define WINO_DEINT_VEC(p, e, o, n) wino_deint(p, e, o, n)
#define WINO_NAME(x) bio_wino_##x##_avx2
#include "wino.h"
#define W4_NAME(x) bio_wino4_##x##_avx2
#include "wino4.h"

#define NT_MA 2
#define NT_NB 4
#include "gemm_nt.h"

#define LIN_NV 2
#define LIN_NAME(x) bio_lin_##x##_avx2
#include "lin_dw.h"

#define VDIV(a, b) _mm256_div_ps(a, b)
#define VSQRT(a) _mm256_sqrt_ps(a)
#define ADAM_NAME bio_adam_avx2
#include "adam.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
