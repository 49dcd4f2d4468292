/* The batch-norm affine, ReLU and 2 x 2 max-pool of a row pair for AVX-512 (F): 16 windows at a
 * time, even and odd columns separated by permutes. The same operations as the portable row
 * (kernels.c: planes 16 wide take the 256-bit step; g x + b as a multiply then an add, ReLU keeping +0 for NaN and zeros, the first
 * maximum in the order (0,0) (0,1) (1,0) (1,1)), so the results are the same bits. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl"))), \
			     apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512f,avx512bw,avx512vl")
#endif

#include <immintrin.h>
#include <stdint.h>

#include "pool.h"

static inline __m512 affine_relu(__m512 x, __m512 g, __m512 b)
{
	return _mm512_max_ps(_mm512_add_ps(_mm512_mul_ps(g, x), b), _mm512_setzero_ps());
}

void bio_relu_pool2_row_avx512(float *out, uint8_t *argmax, const float *r0, const float *r1,
			       int wo, float g, float b)
{
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
					       28, 30);
	const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
					      29, 31);
	const __m512 vg = _mm512_set1_ps(g), vb = _mm512_set1_ps(b);
	int j = 0;
	for (; j + 16 <= wo; j += 16) {
		__m512 a0 = affine_relu(_mm512_loadu_ps(r0 + 2 * j), vg, vb);
		__m512 a1 = affine_relu(_mm512_loadu_ps(r0 + 2 * j + 16), vg, vb);
		__m512 c0 = affine_relu(_mm512_loadu_ps(r1 + 2 * j), vg, vb);
		__m512 c1 = affine_relu(_mm512_loadu_ps(r1 + 2 * j + 16), vg, vb);
		__m512 v0 = _mm512_permutex2var_ps(a0, even, a1);
		__m512 v1 = _mm512_permutex2var_ps(a0, odd, a1);
		__m512 v2 = _mm512_permutex2var_ps(c0, even, c1);
		__m512 v3 = _mm512_permutex2var_ps(c0, odd, c1);
		__m512 best = v0;
		__m512i k = _mm512_setzero_si512();
		__mmask16 m = _mm512_cmp_ps_mask(v1, best, _CMP_GT_OQ);
		best = _mm512_mask_blend_ps(m, best, v1);
		k = _mm512_mask_mov_epi32(k, m, _mm512_set1_epi32(1));
		m = _mm512_cmp_ps_mask(v2, best, _CMP_GT_OQ);
		best = _mm512_mask_blend_ps(m, best, v2);
		k = _mm512_mask_mov_epi32(k, m, _mm512_set1_epi32(2));
		m = _mm512_cmp_ps_mask(v3, best, _CMP_GT_OQ);
		best = _mm512_mask_blend_ps(m, best, v3);
		k = _mm512_mask_mov_epi32(k, m, _mm512_set1_epi32(3));
		_mm512_storeu_ps(out + j, best);
		_mm_storeu_si128((__m128i *)(argmax + j), _mm512_cvtepi32_epi8(k));
	}
	if (j + 8 <= wo) { /* 8 windows (planes 16 wide) in 256-bit halves, the same steps */
		const __m256i e8 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
		const __m256i o8 = _mm256_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15);
		const __m256 g8 = _mm256_set1_ps(g), b8 = _mm256_set1_ps(b), z = _mm256_setzero_ps();
#define AR8(p) _mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(g8, _mm256_loadu_ps(p)), b8), z)
		__m256 a0 = AR8(r0 + 2 * j), a1 = AR8(r0 + 2 * j + 8);
		__m256 c0 = AR8(r1 + 2 * j), c1 = AR8(r1 + 2 * j + 8);
#undef AR8
		__m256 v1 = _mm256_permutex2var_ps(a0, o8, a1);
		__m256 v2 = _mm256_permutex2var_ps(c0, e8, c1);
		__m256 v3 = _mm256_permutex2var_ps(c0, o8, c1);
		__m256 best = _mm256_permutex2var_ps(a0, e8, a1);
		__m256i k = _mm256_setzero_si256();
		__mmask8 m = _mm256_cmp_ps_mask(v1, best, _CMP_GT_OQ);
		best = _mm256_mask_blend_ps(m, best, v1);
		k = _mm256_mask_mov_epi32(k, m, _mm256_set1_epi32(1));
		m = _mm256_cmp_ps_mask(v2, best, _CMP_GT_OQ);
		best = _mm256_mask_blend_ps(m, best, v2);
		k = _mm256_mask_mov_epi32(k, m, _mm256_set1_epi32(2));
		m = _mm256_cmp_ps_mask(v3, best, _CMP_GT_OQ);
		best = _mm256_mask_blend_ps(m, best, v3);
		k = _mm256_mask_mov_epi32(k, m, _mm256_set1_epi32(3));
		_mm256_storeu_ps(out + j, best);
		_mm_storel_epi64((__m128i *)(argmax + j), _mm256_cvtepi32_epi8(k));
		j += 8;
	}
	if (j < wo)
		bio_relu_pool2_row_generic(out + j, argmax + j, r0 + 2 * j, r1 + 2 * j, wo - j, g, b);
}

/* lanes 0..15 of the 16 windows' arg-max positions, and the mask of windows passing a gradient */
static inline __m512i window_k(const uint8_t *am)
{
	return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)am));
}

static inline float hsum16(__m512 v)
{
	float l[16];
	_mm512_storeu_ps(l, v);
	float s = 0.0f; /* lane order, as the portable row sums its windows */
	for (int i = 0; i < 16; i++)
		s += l[i];
	return s;
}

/* The sums of g and g x over a row of windows (g = dp where the pooled value is positive, x the
 * input at the window's arg-max): per lane over the groups of 16 windows (x g as a multiply then
 * an add), the lanes in order, then the last windows one by one. */
void bio_pool2_grad_sums_avx512(float *r1, float *r2, const float *dp, const float *po,
				const uint8_t *am, const float *x0, const float *x1, int wo)
{
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
					       28, 30);
	const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
					      29, 31);
	__m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
	int j = 0;
	for (; j + 16 <= wo; j += 16) {
		__mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(po + j), _mm512_setzero_ps(),
						   _CMP_GT_OQ);
		__m512 g = _mm512_maskz_mov_ps(pos, _mm512_loadu_ps(dp + j));
		__m512i k = window_k(am + j);
		__m512 a0 = _mm512_loadu_ps(x0 + 2 * j), a1 = _mm512_loadu_ps(x0 + 2 * j + 16);
		__m512 c0 = _mm512_loadu_ps(x1 + 2 * j), c1 = _mm512_loadu_ps(x1 + 2 * j + 16);
		__m512 x = _mm512_permutex2var_ps(a0, even, a1);
		x = _mm512_mask_mov_ps(x, _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(1)),
				       _mm512_permutex2var_ps(a0, odd, a1));
		x = _mm512_mask_mov_ps(x, _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(2)),
				       _mm512_permutex2var_ps(c0, even, c1));
		x = _mm512_mask_mov_ps(x, _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(3)),
				       _mm512_permutex2var_ps(c0, odd, c1));
		s1 = _mm512_add_ps(s1, g);
		s2 = _mm512_add_ps(s2, _mm512_mul_ps(g, x));
	}
	float t1 = hsum16(s1), t2 = hsum16(s2);
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

/* x[arg-max cell of each window] += a dp where the pooled value is positive (other cells are
 * not touched: masked adds). */
void bio_pool2_grad_scatter_avx512(float *x0, float *x1, const float *dp, const float *po,
				   const uint8_t *am, int wo, float a)
{
	const __m512 va = _mm512_set1_ps(a);
	int j = 0;
	for (; j + 16 <= wo; j += 16) {
		__mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(po + j), _mm512_setzero_ps(),
						   _CMP_GT_OQ);
		__m512 v = _mm512_mul_ps(va, _mm512_loadu_ps(dp + j));
		__m512i k = window_k(am + j);
		/* each window's value twice (lanes 2i, 2i + 1: its even and odd column); a lane
		 * adds when the window passes a gradient and its arg-max is that cell */
		const __m512i dup_lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
		const __m512i dup_hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14,
							 14, 15, 15);
		const __m512i par = _mm512_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
		__m512i kp = _mm512_mask_mov_epi32(_mm512_set1_epi32(-1), pos, k); /* -1: none */
		__m512i kl = _mm512_permutexvar_epi32(dup_lo, kp), kh = _mm512_permutexvar_epi32(dup_hi, kp);
		__m512 l = _mm512_permutexvar_ps(dup_lo, v), hv = _mm512_permutexvar_ps(dup_hi, v);
		for (int r = 0; r < 2; r++) {
			float *xr = r ? x1 : x0;
			__m512i cell = _mm512_add_epi32(par, _mm512_set1_epi32(2 * r));
			__mmask16 ml = _mm512_cmpeq_epi32_mask(kl, cell), mh = _mm512_cmpeq_epi32_mask(kh, cell);
			__m512 x_lo = _mm512_loadu_ps(xr + 2 * j), x_hi = _mm512_loadu_ps(xr + 2 * j + 16);
			_mm512_storeu_ps(xr + 2 * j, _mm512_mask_add_ps(x_lo, ml, x_lo, l));
			_mm512_storeu_ps(xr + 2 * j + 16, _mm512_mask_add_ps(x_hi, mh, x_hi, hv));
		}
	}
	if (j < wo)
		bio_pool2_grad_scatter_generic(x0 + 2 * j, x1 + 2 * j, dp + j, po + j, am + j, wo - j,
					       a);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
