/* The weight gradient of a linear layer as the pieces' tree, in registers: included by each
 * vector ISA's file after it defines VW, vec_t, VZERO, VSET1, VLOADU, VSTOREU, VFMA, VADD,
 * CONV_C1_SFMA (the scalar FMA that rounds as VFMA does) and
 *
 *   LIN_NV          vectors of columns per register tile (the tile is 4 rows x LIN_NV vectors)
 *   LIN_NAME(x)     the name of function x here
 *
 * dw[r ld_dw + c] += the sum over the samples s < n of d[s ld_d + r] in[s ld_in + c], for r < rows,
 * c < cols, formed as nn.c forms every sum over a batch: per piece of BIO_NN_PIECE samples one
 * sum (from zero, one VFMA per sample in order), the pieces added by the stride-doubling tree
 * (built leaf by leaf as a binary counter, the last partial subtrees folded from the right), then
 * added to dw. Each element's additions are the same whatever the tile, the column range a
 * thread takes, or the ISA's vector width (the column tails use the scalar FMA): so the result
 * depends on neither the thread count nor on how a batch is split over ranks in aligned blocks
 * of pieces.
 *
 * Done as one GEMM of depth BIO_NN_PIECE per piece into a leaf buffer and tree additions over
 * buffers, this weight gradient (8192 x 256 per branch in the canonical model) ran at 45 GFLOP/s
 * out of 400 here: each leaf's 8 MB went through memory. Here the leaf is a register tile and
 * the tree's partial sums (at most log2(pieces) + 1 tiles) wait in a small stack in L1. */
#include <stddef.h>

#define LIN_PIECE 4 /* = BIO_NN_PIECE (nn.h) */
#define LIN_DEPTH 32 /* partial subtrees held at most: 2^32 pieces */

/* A tile of R rows (R <= 4) x NV vectors: the tree over pieces into the caller's stack (R NV
 * vectors per level), then added into dw. */
#define LIN_TILE(R, NV)                                                                        \
	static inline void LIN_NAME(tile_##R##_##NV)(float *dw, size_t ld_dw, const float *d,  \
						     size_t ld_d, const float *in, size_t ld_in, \
						     int n, vec_t *stack)                        \
	{                                                                                      \
		int top = 0;                                                                   \
		unsigned long long count = 0;                                                  \
		for (int s0 = 0; s0 < n; s0 += LIN_PIECE, count++) {                           \
			const int s1 = n - s0 < LIN_PIECE ? n : s0 + LIN_PIECE;                \
			vec_t acc[R][NV];                                                      \
			_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                    \
				_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)           \
					acc[r][v] = VZERO();                                   \
			for (int s = s0; s < s1; s++) {                                        \
				vec_t x[NV];                                                   \
				_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)           \
					x[v] = VLOADU(in + (size_t)s * ld_in + v * VW);        \
				_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)            \
				{                                                              \
					vec_t a = VSET1(d[(size_t)s * ld_d + r]);              \
					_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)   \
						acc[r][v] = VFMA(a, x[v], acc[r][v]);          \
				}                                                              \
			}                                                                      \
			/* each completed pair of equal subtrees is added at once */           \
			for (unsigned long long k = count; k & 1; k >>= 1) {                   \
				const vec_t *p = stack + (size_t)(--top) * R * NV;             \
				_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)            \
					_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)   \
						acc[r][v] = VADD(p[r * NV + v], acc[r][v]);    \
			}                                                                      \
			vec_t *q = stack + (size_t)(top++) * R * NV;                           \
			_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                    \
				_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)           \
					q[r * NV + v] = acc[r][v];                             \
		}                                                                              \
		if (top == 0)                                                                  \
			return;                                                                \
		vec_t acc[R][NV];                                                              \
		const vec_t *q = stack + (size_t)(top - 1) * R * NV;                           \
		_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                            \
			_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] =       \
				q[r * NV + v];                                                 \
		for (int i = top - 2; i >= 0; i--) { /* the partial subtrees, from the right */ \
			const vec_t *p = stack + (size_t)i * R * NV;                           \
			_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                    \
				_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)           \
					acc[r][v] = VADD(p[r * NV + v], acc[r][v]);            \
		}                                                                              \
		_Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                            \
			_Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                   \
			{                                                                      \
				float *o = dw + (size_t)r * ld_dw + v * VW;                    \
				VSTOREU(o, VADD(VLOADU(o), acc[r][v]));                        \
			}                                                                      \
	}
LIN_TILE(4, LIN_NV)
LIN_TILE(1, LIN_NV)
LIN_TILE(4, 1)
LIN_TILE(1, 1)

/* One element by the same additions (the column tails). */
static inline void LIN_NAME(one)(float *dw, const float *d, size_t ld_d, const float *in,
				 size_t ld_in, int n)
{
	float stack[LIN_DEPTH];
	int top = 0;
	unsigned long long count = 0;
	for (int s0 = 0; s0 < n; s0 += LIN_PIECE, count++) {
		const int s1 = n - s0 < LIN_PIECE ? n : s0 + LIN_PIECE;
		float acc = 0.0f;
		for (int s = s0; s < s1; s++)
			acc = CONV_C1_SFMA(d[(size_t)s * ld_d], in[(size_t)s * ld_in], acc);
		for (unsigned long long k = count; k & 1; k >>= 1)
			acc = stack[--top] + acc;
		stack[top++] = acc;
	}
	if (top == 0)
		return;
	float acc = stack[top - 1];
	for (int i = top - 2; i >= 0; i--)
		acc = stack[i] + acc;
	*dw += acc;
}

void LIN_NAME(dw_tree)(float *dw, size_t ld_dw, int rows, int cols, const float *d, size_t ld_d,
		       const float *in, size_t ld_in, int n);
void LIN_NAME(dw_tree)(float *dw, size_t ld_dw, int rows, int cols, const float *d, size_t ld_d,
		       const float *in, size_t ld_in, int n)
{
	vec_t stack[LIN_DEPTH * 4 * LIN_NV];
	const int wide = LIN_NV * VW;
	int c = 0;
	for (; c + wide <= cols; c += wide) {
		int r = 0;
		for (; r + 4 <= rows; r += 4)
			LIN_NAME(tile_4_LIN_NV)(dw + (size_t)r * ld_dw + c, ld_dw, d + r, ld_d, in + c,
						ld_in, n, stack);
		for (; r < rows; r++)
			LIN_NAME(tile_1_LIN_NV)(dw + (size_t)r * ld_dw + c, ld_dw, d + r, ld_d, in + c,
						ld_in, n, stack);
	}
	for (; c + VW <= cols; c += VW) {
		int r = 0;
		for (; r + 4 <= rows; r += 4)
			LIN_NAME(tile_4_1)(dw + (size_t)r * ld_dw + c, ld_dw, d + r, ld_d, in + c,
					   ld_in, n, stack);
		for (; r < rows; r++)
			LIN_NAME(tile_1_1)(dw + (size_t)r * ld_dw + c, ld_dw, d + r, ld_d, in + c,
					   ld_in, n, stack);
	}
	for (; c < cols; c++)
		for (int r = 0; r < rows; r++)
			LIN_NAME(one)(dw + (size_t)r * ld_dw + c, d + r, ld_d, in + c, ld_in, n);
}

#undef LIN_TILE
#undef LIN_PIECE
#undef LIN_DEPTH
