/* The batch-norm affine, ReLU and 2 x 2 max-pool of a row pair for AVX2, 8 windows at a time
 * (even and odd columns separated by in-lane shuffles and a cross-lane permute), and the sums of
 * its backward. The row is the portable row's operations (g x + b as a multiply then an add,
 * ReLU keeping +0 for NaN and zeros, the first maximum in the order (0,0) (0,1) (1,0) (1,1)), so
 * the same bits as every path. Without it the AVX2 path ran the portable scalar row: a quarter
 * of bio-infer's time. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma")
#endif

#include <immintrin.h>
#include <stdint.h>

#include "pool.h"

static inline __m256 affine_relu(__m256 x, __m256 g, __m256 b)
{
	return _mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(g, x), b), _mm256_setzero_ps());
}

/* the even (columns 0, 2, .. 14) and odd columns of the 16 floats a, b */
static inline __m256 evens(__m256 a, __m256 b)
{
	return _mm256_castpd_ps(
		_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
}

static inline __m256 odds(__m256 a, __m256 b)
{
	return _mm256_castpd_ps(
		_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

void bio_relu_pool2_row_avx2(float *out, uint8_t *argmax, const float *r0, const float *r1,
			     int wo, float g, float b)
{
	const __m256 vg = _mm256_set1_ps(g), vb = _mm256_set1_ps(b);
	int j = 0;
	for (; j + 8 <= wo; j += 8) {
		__m256 a0 = affine_relu(_mm256_loadu_ps(r0 + 2 * j), vg, vb);
		__m256 a1 = affine_relu(_mm256_loadu_ps(r0 + 2 * j + 8), vg, vb);
		__m256 c0 = affine_relu(_mm256_loadu_ps(r1 + 2 * j), vg, vb);
		__m256 c1 = affine_relu(_mm256_loadu_ps(r1 + 2 * j + 8), vg, vb);
		__m256 best = evens(a0, a1), v1 = odds(a0, a1), v2 = evens(c0, c1), v3 = odds(c0, c1);
		__m256 m1 = _mm256_cmp_ps(v1, best, _CMP_GT_OQ);
		best = _mm256_blendv_ps(best, v1, m1);
		__m256 m2 = _mm256_cmp_ps(v2, best, _CMP_GT_OQ);
		best = _mm256_blendv_ps(best, v2, m2);
		__m256 m3 = _mm256_cmp_ps(v3, best, _CMP_GT_OQ);
		best = _mm256_blendv_ps(best, v3, m3);
		_mm256_storeu_ps(out + j, best);
		int b1 = _mm256_movemask_ps(m1), b2 = _mm256_movemask_ps(m2);
		int b3 = _mm256_movemask_ps(m3);
		for (int i = 0; i < 8; i++)
			argmax[j + i] = (uint8_t)(b3 >> i & 1 ? 3 : b2 >> i & 1 ? 2 : b1 >> i & 1);
	}
	if (j < wo)
		bio_relu_pool2_row_generic(out + j, argmax + j, r0 + 2 * j, r1 + 2 * j, wo - j, g, b);
}

/* The sums of g and g x over a row of windows (g = dp where the pooled value is positive, x the
 * input at the window's arg-max): per lane over the groups of 8 windows (g x a multiply then an
 * add), the lanes in order, then the last windows one by one. */
void bio_pool2_grad_sums_avx2(float *r1, float *r2, const float *dp, const float *po,
			      const uint8_t *am, const float *x0, const float *x1, int wo)
{
	__m256 s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
	int j = 0;
	for (; j + 8 <= wo; j += 8) {
		__m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(po + j), _mm256_setzero_ps(), _CMP_GT_OQ);
		__m256 g = _mm256_and_ps(pos, _mm256_loadu_ps(dp + j));
		__m256i k = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(am + j)));
		__m256 a0 = _mm256_loadu_ps(x0 + 2 * j), a1 = _mm256_loadu_ps(x0 + 2 * j + 8);
		__m256 c0 = _mm256_loadu_ps(x1 + 2 * j), c1 = _mm256_loadu_ps(x1 + 2 * j + 8);
		__m256 x = evens(a0, a1);
		x = _mm256_blendv_ps(x, odds(a0, a1),
				     _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(1))));
		x = _mm256_blendv_ps(x, evens(c0, c1),
				     _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(2))));
		x = _mm256_blendv_ps(x, odds(c0, c1),
				     _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(3))));
		s1 = _mm256_add_ps(s1, g);
		s2 = _mm256_add_ps(s2, _mm256_mul_ps(g, x));
	}
	float l1[8], l2[8], t1 = 0.0f, t2 = 0.0f;
	_mm256_storeu_ps(l1, s1);
	_mm256_storeu_ps(l2, s2);
	for (int i = 0; i < 8; i++) {
		t1 += l1[i];
		t2 += l2[i];
	}
	if (j < wo) {
		float u1, u2;
		bio_pool2_grad_sums_generic(&u1, &u2, dp + j, po + j, am + j, x0 + 2 * j, x1 + 2 * j,
					    wo - j);
		t1 += u1;
		t2 += u2;
	}
	*r1 = t1;
	*r2 = t2;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
