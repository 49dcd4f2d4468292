/* SGEMM in portable C (any x86-64): a 4 x 16 micro-tile of plain multiply-adds, each rounded
 * (baseline x86-64 has no FMA), which GCC vectorises with SSE2. */
#include <stddef.h>

#define GEMM_MR 4
#define GEMM_NR 16
#define GEMM_NAME bio_sgemm_generic

static inline void gemm_micro(int kc, const float *ap, const float *bp, int ldb, float *c,
			      int ldc, float alpha, float beta, int first)
{
	float s[4][16] = {{0}};
	for (int kk = 0; kk < kc; kk++) {
		for (int r = 0; r < 4; r++) {
			const float a = ap[r];
			for (int j = 0; j < 16; j++)
				s[r][j] += a * bp[j];
		}
		ap += 4;
		bp += ldb;
	}
	for (int r = 0; r < 4; r++) {
		float *cr = c + (size_t)r * ldc;
		for (int j = 0; j < 16; j++) {
			if (!first)
				cr[j] += alpha * s[r][j];
			else if (beta == 0.0f)
				cr[j] = alpha * s[r][j];
			else
				cr[j] = beta * cr[j] + alpha * s[r][j];
		}
	}
}

#include "gemm_driver.h"

#include <emmintrin.h> /* SSE2: part of every x86-64 */

typedef __m128 vec_t;
#define VW 4
#define VZERO() _mm_setzero_ps()
#define VSET1(x) _mm_set1_ps(x)
#define VLOADU(p) _mm_loadu_ps(p)
#define VSTOREU(p, v) _mm_storeu_ps(p, v)
#define VFMA(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define CONV_C1_SFMA(a, b, c) ((a) * (b) + (c))
#define VADD(a, b) _mm_add_ps(a, b)
#define CONV_C1_NAME(x) bio_conv_c1_##x##_generic
#include "conv_c1.h"

/* out[i] = the sum of v[i]'s 4 lanes, i < 4: pairs, then single lanes, as a fixed tree. */
static inline void conv_hsum(const __m128 *v, float *out)
{
	__m128 t0 = _mm_add_ps(_mm_shuffle_ps(v[0], v[1], 0x44), _mm_shuffle_ps(v[0], v[1], 0xEE));
	__m128 t1 = _mm_add_ps(_mm_shuffle_ps(v[2], v[3], 0x44), _mm_shuffle_ps(v[2], v[3], 0xEE));
	_mm_storeu_ps(out, _mm_add_ps(_mm_shuffle_ps(t0, t1, 0x88), _mm_shuffle_ps(t0, t1, 0xDD)));
}
#define CONV_HSUM(v, out) conv_hsum(v, out)
#define CONV_MR 4
#define CONV_NAME(x) bio_conv3x3_##x##_generic
#include "conv3x3.h"

#define VMUL(a, b) _mm_mul_ps(a, b)
#define VSUB(a, b) _mm_sub_ps(a, b)
#define WINO_ZIP(a, b, lo, hi)                                                                  \
	do {                                                                                    \
		lo = _mm_unpacklo_ps(a, b);                                                     \
		hi = _mm_unpackhi_ps(a, b);                                                     \
	} while (0)
/* e[i] = p[2 i], o[i] = p[2 i + 1] for the first i < n: 4 at a time (how many: returned) */
static inline int wino_deint(const float *p, float *e, float *o, int n)
{
	int i = 0;
	for (; i + 4 <= n; i += 4) {
		__m128 a = _mm_loadu_ps(p + 2 * i), b = _mm_loadu_ps(p + 2 * i + 4);
		_mm_storeu_ps(e + i, _mm_shuffle_ps(a, b, 0x88));
		_mm_storeu_ps(o + i, _mm_shuffle_ps(a, b, 0xDD));
	}
	return i;
}
#define WINO_DEINT_VEC(p, e, o, n) wino_deint(p, e, o, n)
#define WINO_NAME(x) bio_wino_##x##_generic
#include "wino.h"
#define W4_NAME(x) bio_wino4_##x##_generic
#include "wino4.h"

#define NT_MA 2
#define NT_NB 4
#include "gemm_nt.h"

#define LIN_NV 2
#define LIN_NAME(x) bio_lin_##x##_generic
#include "lin_dw.h"

#define VDIV(a, b) _mm_div_ps(a, b)
#define VSQRT(a) _mm_sqrt_ps(a)
#define ADAM_NAME bio_adam_generic
#include "adam.h"
