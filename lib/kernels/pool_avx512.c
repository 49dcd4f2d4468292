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

void bio_relu_pool2_row_generic(float *out, uint8_t *argmax, const float *r0, const float *r1,
				int wo, float g, float b);
void bio_relu_pool2_row_avx512(float *out, uint8_t *argmax, const float *r0, const float *r1,
			       int wo, float g, float b);

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

#if defined(__clang__)
#pragma clang attribute pop
#endif
