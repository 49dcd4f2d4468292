/* C = alpha A B^T + beta C without packing (the linear layers' forward, W stored [n_out][n_in],
 * and im2col's weight gradient): every element of C is a dot product of a row of A and a row of
 * B, both contiguous. Included by each ISA's file after the vector operations (conv3x3.h's VW,
 * vec_t, VLOADU, VFMA, CONV_HSUM, CONV_C1_SFMA) and
 *
 *   NT_MA, NT_NB    rows of A and of B per register tile (NT_MA NT_NB accumulators)
 *
 * Each element's sum: k in blocks of NT_KB; in each, per lane over the full vectors in increasing
 * order (one FMA each), the lanes added by CONV_HSUM's tree (then, in k's last block, its k % VW
 * last products in order); the blocks' sums added in order; then alpha s (+ beta C). The same operations wherever the element lies and whatever the tile, so
 * any split of m or n gives the same bits. With beta == 0, C is not read. Packing B (the
 * blocked driver's way) would cost a transposed copy of all of B per call: for a batch of one it
 * was most of the inference time. */

#define NT_KB 512 /* k in blocks of this many (a multiple of every VW): rows of A and B in L1/L2 */

void *bio_kernels_scratch(int slot, size_t bytes);

/* p[r ldp + q] (+)= the tile's partial sums over kk in [0, kc) of a[r][kk] b[q][kk] (kc a multiple
 * of VW except in k's last block, whose k % VW last products follow the lanes). */
#define NT_TILE(NAME, MA, NB)                                                                  \
	static void NAME(int kc, const float *a, int lda, const float *b, int ldb, float *p,      \
			 int ldp, int first)                                                      \
	{                                                                                      \
		vec_t acc[MA * NB > VW ? MA * NB : VW];                                        \
		for (int i = 0; i < (MA * NB > VW ? MA * NB : VW); i++)                        \
			acc[i] = VZERO();                                                      \
		const int kv = kc - kc % VW;                                                   \
		for (int kk = 0; kk < kv; kk += VW) {                                          \
			vec_t x[MA];                                                           \
			_Pragma("GCC unroll 8") for (int r = 0; r < MA; r++) x[r] =            \
				VLOADU(a + (size_t)r * lda + kk);                              \
			_Pragma("GCC unroll 8") for (int q = 0; q < NB; q++)                   \
			{                                                                      \
				vec_t y = VLOADU(b + (size_t)q * ldb + kk);                    \
				_Pragma("GCC unroll 8") for (int r = 0; r < MA; r++)           \
					acc[r * NB + q] = VFMA(x[r], y, acc[r * NB + q]);      \
			}                                                                      \
		}                                                                              \
		float s[(MA * NB + VW - 1) / VW * VW];                                         \
		for (int i = 0; i < MA * NB; i += VW)                                          \
			CONV_HSUM(acc + i, s + i);                                             \
		for (int r = 0; r < MA; r++)                                                   \
			for (int q = 0; q < NB; q++) {                                         \
				float t = s[r * NB + q];                                       \
				for (int kk = kv; kk < kc; kk++)                               \
					t = CONV_C1_SFMA(a[(size_t)r * lda + kk],              \
							 b[(size_t)q * ldb + kk], t);          \
				float *o = p + (size_t)r * ldp + q;                            \
				*o = first ? t : *o + t;                                       \
			}                                                                      \
	}
NT_TILE(nt_full, NT_MA, NT_NB)
NT_TILE(nt_row, 1, NT_NB)
NT_TILE(nt_col, NT_MA, 1)
NT_TILE(nt_one, 1, 1)
#undef NT_TILE

static void gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
		    int ldb, float beta, float *c, int ldc)
{
	float *p = bio_kernels_scratch(0, sizeof(float) * ((size_t)m * n + 1));
	for (int k0 = 0; k0 < k || k0 == 0; k0 += NT_KB) {
		const int kc = k - k0 < NT_KB ? k - k0 : NT_KB, first = k0 == 0;
		int i = 0;
		for (; i + NT_MA <= m; i += NT_MA) {
			const float *ai = a + (size_t)i * lda + k0;
			float *pi = p + (size_t)i * n;
			int j = 0;
			for (; j + NT_NB <= n; j += NT_NB)
				nt_full(kc, ai, lda, b + (size_t)j * ldb + k0, ldb, pi + j, n, first);
			for (; j < n; j++)
				nt_col(kc, ai, lda, b + (size_t)j * ldb + k0, ldb, pi + j, n, first);
		}
		for (; i < m; i++) {
			const float *ai = a + (size_t)i * lda + k0;
			float *pi = p + (size_t)i * n;
			int j = 0;
			for (; j + NT_NB <= n; j += NT_NB)
				nt_row(kc, ai, lda, b + (size_t)j * ldb + k0, ldb, pi + j, n, first);
			for (; j < n; j++)
				nt_one(kc, ai, lda, b + (size_t)j * ldb + k0, ldb, pi + j, n, first);
		}
		if (k == 0)
			break;
	}
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			float s = k > 0 ? p[(size_t)i * n + j] : 0.0f, *o = c + (size_t)i * ldc + j;
			*o = beta == 0.0f ? alpha * s : beta * *o + alpha * s;
		}
}
