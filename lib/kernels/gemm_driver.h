/* The blocked SGEMM driver, included by each ISA's file after it defines
 *
 *   GEMM_MR, GEMM_NR      the micro-tile (rows of A, columns of B)
 *   GEMM_NAME             the function to define (bio_sgemm_<isa>)
 *   gemm_micro(kc, ap, bp, ldb, c, ldc, alpha, beta, first)
 *                         s[r][j] = sum over kk < kc of ap[kk][r] bp[kk ldb + j], kk in
 *                         increasing order, one multiply-add per step; then the tile of C
 *                         (MR x NR at c, row stride ldc) = first ? beta C + alpha s : C + alpha s
 *                         (with beta == 0: alpha s, C not read)
 *
 * and the target pragma of its ISA, so that the packing loops are compiled for it too.
 * BLIS-style loops: for each block of columns (NC) and of k (KC), pack op(B) into NR-wide
 * panels; for each block of rows (MC), pack op(A) into MR-high panels; run the micro-kernel on
 * every tile, adding its sum into C (the first k block applies beta). Tiles at the edges are
 * packed with zeros and stored partially, so every element of C sees the same sequence of
 * operations wherever it lies. */
#include <stdlib.h>
#include <string.h>

#include "bio/kernels.h"

void *bio_kernels_scratch(int slot, size_t bytes);

#define GEMM_KC BIO_SGEMM_KC
#define GEMM_MC (GEMM_MR * 16)
#define GEMM_NC (GEMM_NR * 32)

/* Edge strips of B are packed once per block of rows (ic == 0) and reused. */
/* ap[p][kk][r] = op(A)[i0 + p MR + r][k0 + kk], zero beyond mc rows. */
static void gemm_pack_a(float *ap, int trans_a, const float *a, int lda, int i0, int mc, int k0,
			int kc)
{
	for (int p = 0; p < mc; p += GEMM_MR) {
		int rows = mc - p < GEMM_MR ? mc - p : GEMM_MR;
		float *dst = ap + (size_t)p * kc;
		if (!trans_a) {
			for (int r = 0; r < GEMM_MR; r++) {
				if (r < rows) {
					const float *src = a + (size_t)(i0 + p + r) * lda + k0;
					for (int kk = 0; kk < kc; kk++)
						dst[(size_t)kk * GEMM_MR + r] = src[kk];
				} else {
					for (int kk = 0; kk < kc; kk++)
						dst[(size_t)kk * GEMM_MR + r] = 0.0f;
				}
			}
		} else {
			for (int kk = 0; kk < kc; kk++) {
				const float *src = a + (size_t)(k0 + kk) * lda + i0 + p;
				float *d = dst + (size_t)kk * GEMM_MR;
				int r = 0;
				for (; r < rows; r++)
					d[r] = src[r];
				for (; r < GEMM_MR; r++)
					d[r] = 0.0f;
			}
		}
	}
}

/* bp[q][kk][c] = op(B)[k0 + kk][j0 + q NR + c], zero beyond nc columns. */
static void gemm_pack_b(float *bp, int trans_b, const float *b, int ldb, int j0, int nc, int k0,
			int kc)
{
	for (int q = 0; q < nc; q += GEMM_NR) {
		int cols = nc - q < GEMM_NR ? nc - q : GEMM_NR;
		float *dst = bp + (size_t)q * kc;
		if (!trans_b) {
			for (int kk = 0; kk < kc; kk++) {
				const float *src = b + (size_t)(k0 + kk) * ldb + j0 + q;
				float *d = dst + (size_t)kk * GEMM_NR;
				if (cols == GEMM_NR) {
					memcpy(d, src, sizeof(float) * GEMM_NR);
				} else {
					int c = 0;
					for (; c < cols; c++)
						d[c] = src[c];
					for (; c < GEMM_NR; c++)
						d[c] = 0.0f;
				}
			}
		} else {
			for (int c = 0; c < GEMM_NR; c++) {
				if (c < cols) {
					const float *src = b + (size_t)(j0 + q + c) * ldb + k0;
					for (int kk = 0; kk < kc; kk++)
						dst[(size_t)kk * GEMM_NR + c] = src[kk];
				} else {
					for (int kk = 0; kk < kc; kk++)
						dst[(size_t)kk * GEMM_NR + c] = 0.0f;
				}
			}
		}
	}
}

/* C tile (rows x cols valid) = first ? beta C + alpha acc : C + alpha acc: the edge tiles (the
 * full ones are stored by the micro-kernel, with the same operations). */
static void gemm_store(float *c, int ldc, int rows, int cols, const float *acc, float alpha,
		       float beta, int first)
{
	for (int r = 0; r < rows; r++) {
		float *cr = c + (size_t)r * ldc;
		const float *ar = acc + (size_t)r * GEMM_NR;
		if (!first)
			for (int j = 0; j < cols; j++)
				cr[j] += alpha * ar[j];
		else if (beta == 0.0f)
			for (int j = 0; j < cols; j++)
				cr[j] = alpha * ar[j];
		else
			for (int j = 0; j < cols; j++)
				cr[j] = beta * cr[j] + alpha * ar[j];
	}
}

/* A B^T: dot products of rows, no packing (gemm_nt.h, included after the vector operations) */
static void gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
		    int ldb, float beta, float *c, int ldc);

void GEMM_NAME(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
	       int lda, const float *b, int ldb, float beta, float *c, int ldc);
void GEMM_NAME(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
	       int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
	if (trans_b && !trans_a) {
		gemm_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
		return;
	}
	/* per-thread packing buffers (kernels.c frees them when the thread exits) */
	float *ap = bio_kernels_scratch(0, sizeof(float) * GEMM_MC * GEMM_KC);
	float *bp = bio_kernels_scratch(1, sizeof(float) * GEMM_NC * GEMM_KC);
	float *edge = bio_kernels_scratch(2, sizeof(float) * GEMM_NR * GEMM_KC);
	_Alignas(64) float acc[GEMM_MR * GEMM_NR];
	/* k in equal blocks of at most KC: the blocks depend on k alone */
	int n_kb = (k + GEMM_KC - 1) / GEMM_KC;
	int kb = (k + n_kb - 1) / n_kb;
	for (int jc = 0; jc < n; jc += GEMM_NC) {
		int nc = n - jc < GEMM_NC ? n - jc : GEMM_NC;
		for (int pc = 0; pc < k; pc += kb) {
			int kc = k - pc < kb ? k - pc : kb;
			if (trans_b)
				gemm_pack_b(bp, trans_b, b, ldb, jc, nc, pc, kc);
			for (int ic = 0; ic < m; ic += GEMM_MC) {
				int mc = m - ic < GEMM_MC ? m - ic : GEMM_MC;
				gemm_pack_a(ap, trans_a, a, lda, ic, mc, pc, kc);
				for (int jr = 0; jr < nc; jr += GEMM_NR) {
					int cols = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
					/* op(B)'s strip: packed (transposed B), read in place (a
					 * full strip of plain B), or an edge strip padded */
					const float *bs;
					int ldbs = GEMM_NR;
					if (trans_b) {
						bs = bp + (size_t)jr * kc;
					} else if (cols == GEMM_NR) {
						bs = b + (size_t)pc * ldb + jc + jr;
						ldbs = ldb;
					} else {
						if (ic == 0)
							gemm_pack_b(edge, 0, b, ldb, jc + jr, cols, pc, kc);
						bs = edge;
					}
					for (int ir = 0; ir < mc; ir += GEMM_MR) {
						int rows = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
						float *ct = c + (size_t)(ic + ir) * ldc + jc + jr;
						if (rows == GEMM_MR && cols == GEMM_NR) {
							gemm_micro(kc, ap + (size_t)ir * kc, bs, ldbs, ct,
								   ldc, alpha, beta, pc == 0);
						} else {
							gemm_micro(kc, ap + (size_t)ir * kc, bs, ldbs, acc,
								   GEMM_NR, 1.0f, 0.0f, 1);
							gemm_store(ct, ldc, rows, cols, acc, alpha, beta,
								   pc == 0);
						}
					}
				}
			}
		}
	}
}
