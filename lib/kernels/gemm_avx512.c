/* SGEMM for AVX-512 (F): an 8 x 32 micro-tile, 16 zmm accumulators, two loads of B and eight
 * broadcasts of A per k step (8 divides the channel counts of the model's layers, so no row
 * is computed for nothing). Compiled for AVX-512 only (the target pragma below); called only
 * when the CPU has it (kernels.c). */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma"))), \
			     apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,fma")
#endif

#include <immintrin.h>

#define GEMM_MR 8
#define GEMM_NR 32
#define GEMM_NAME bio_sgemm_avx512

/* The tile's sum s into C: first ? (beta == 0 ? alpha s : beta C + alpha s) : C + alpha s, each
 * operation rounded as the scalar edge code rounds it (no FMA here). */
static inline void put(float *c, __m512 s, __m512 va, __m512 vb, int first, int zero_beta)
{
	__m512 as = _mm512_mul_ps(va, s);
	if (!first)
		_mm512_storeu_ps(c, _mm512_add_ps(_mm512_loadu_ps(c), as));
	else if (zero_beta)
		_mm512_storeu_ps(c, as);
	else
		_mm512_storeu_ps(c, _mm512_add_ps(_mm512_mul_ps(vb, _mm512_loadu_ps(c)), as));
}

static inline void gemm_micro(int kc, const float *ap, const float *bp, int ldb, float *c,
			      int ldc, float alpha, float beta, int first)
{
	__m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
	__m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
	__m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00;
	for (int kk = 0; kk < kc; kk++) {
		const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
		__m512 a;
#define ROW(r, x0, x1)                               \
	a = _mm512_set1_ps(ap[r]);                   \
	x0 = _mm512_fmadd_ps(a, b0, x0);             \
	x1 = _mm512_fmadd_ps(a, b1, x1);
		ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31)
		ROW(4, c40, c41) ROW(5, c50, c51) ROW(6, c60, c61) ROW(7, c70, c71)
#undef ROW
		ap += 8;
		bp += ldb;
	}
	const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
	const int zb = beta == 0.0f;
#define PUT(r, x0, x1)                                                \
	put(c + (size_t)(r) * ldc, x0, va, vb, first, zb);           \
	put(c + (size_t)(r) * ldc + 16, x1, va, vb, first, zb);
	PUT(0, c00, c01) PUT(1, c10, c11) PUT(2, c20, c21) PUT(3, c30, c31)
	PUT(4, c40, c41) PUT(5, c50, c51) PUT(6, c60, c61) PUT(7, c70, c71)
#undef PUT
}

#include "gemm_driver.h"

#include <math.h>

typedef __m512 vec_t;
#define VW 16
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define CONV_C1_SFMA(a, b, c) fmaf(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define CONV_C1_NAME(x) bio_conv_c1_##x##_avx512
#include "conv_c1.h"

/* out[i] = the sum of v[i]'s 16 lanes, i < 16: 256-bit halves, then 128-bit quarters, then pairs,
 * then single lanes, added as a fixed tree (the result lane 4q + m holds v[4m + q]'s sum). */
static inline void conv_hsum(const __m512 *v, float *out)
{
	__m512 t[8], u[4], w[2];
	for (int k = 0; k < 8; k++)
		t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
				     _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
	for (int k = 0; k < 4; k++)
		u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88),
				     _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xDD));
	for (int k = 0; k < 2; k++)
		w[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44),
				     _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xEE));
	float r[16];
	_mm512_storeu_ps(r, _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88),
					  _mm512_shuffle_ps(w[0], w[1], 0xDD)));
	for (int i = 0; i < 16; i++)
		out[i] = r[(i % 4) * 4 + i / 4];
}
#define CONV_HSUM(v, out) conv_hsum(v, out)
#define CONV_MR 8
#define CONV_NAME(x) bio_conv3x3_##x##_avx512
#include "conv3x3.h"

#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define WINO_ZIP(a, b, lo, hi)                                                                  \
	do {                                                                                    \
		lo = _mm512_permutex2var_ps(a, _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3,  \
							       18, 2, 17, 1, 16, 0), b);      \
		hi = _mm512_permutex2var_ps(a, _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, \
							       11, 26, 10, 25, 9, 24, 8), b); \
	} while (0)
/* e[i] = p[2 i], o[i] = p[2 i + 1] for the first i < n: 16 at a time, then 8 (how many:
 * returned) */
static inline int wino_deint(const float *p, float *e, float *o, int n)
{
	const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
	int i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512 a = _mm512_loadu_ps(p + 2 * i), b = _mm512_loadu_ps(p + 2 * i + 16);
		_mm512_storeu_ps(e + i, _mm512_permutex2var_ps(a, ie, b));
		_mm512_storeu_ps(o + i, _mm512_permutex2var_ps(a, io, b));
	}
	for (; i + 8 <= n; i += 8) {
		__m512 a = _mm512_permutexvar_ps(_mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12,
								  10, 8, 6, 4, 2, 0),
						 _mm512_loadu_ps(p + 2 * i));
		_mm256_storeu_ps(e + i, _mm512_castps512_ps256(a));
		_mm256_storeu_ps(o + i, _mm512_extractf32x8_ps(a, 1));
	}
	return i;
}
#define WINO_DEINT_VEC(p, e, o, n) wino_deint(p, e, o, n)
#define WINO_NAME(x) bio_wino_##x##_avx512
#include "wino.h"
#define W4_NAME(x) bio_wino4_##x##_avx512
#include "wino4.h"

#define NT_MA 4
#define NT_NB 4
#include "gemm_nt.h"

#define LIN_NV 4
#define LIN_NAME(x) bio_lin_##x##_avx512
#include "lin_dw.h"

#define VDIV(a, b) _mm512_div_ps(a, b)
#define VSQRT(a) _mm512_sqrt_ps(a)
#define ADAM_NAME bio_adam_avx512
#include "adam.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
