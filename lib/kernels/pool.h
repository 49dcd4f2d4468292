/* The batch-norm affine + ReLU + 2x2 max-pool row kernels and their backward, one per path
 * (kernels.c holds the generic ones and the dispatch; pool_avx2.c, pool_avx512.c the vector
 * ones; a path without a kernel of its own uses the generic one): declared once for all. */
#ifndef BIO_KERNELS_POOL_H
#define BIO_KERNELS_POOL_H

#include <stdint.h>

void bio_relu_pool2_row_generic(float *out, uint8_t *argmax, const float *r0, const float *r1,
				int wo, float g, float b);
void bio_relu_pool2_row_avx512(float *out, uint8_t *argmax, const float *r0, const float *r1,
			       int wo, float g, float b);
void bio_relu_pool2_row_avx2(float *out, uint8_t *argmax, const float *r0, const float *r1,
			     int wo, float g, float b);
void bio_pool2_grad_sums_generic(float *r1, float *r2, const float *dp, const float *po,
				 const uint8_t *am, const float *x0, const float *x1, int wo);
void bio_pool2_grad_sums_avx512(float *r1, float *r2, const float *dp, const float *po,
				const uint8_t *am, const float *x0, const float *x1, int wo);
void bio_pool2_grad_sums_avx2(float *r1, float *r2, const float *dp, const float *po,
			      const uint8_t *am, const float *x0, const float *x1, int wo);
void bio_pool2_grad_scatter_generic(float *x0, float *x1, const float *dp, const float *po,
				    const uint8_t *am, int wo, float a);
void bio_pool2_grad_scatter_avx512(float *x0, float *x1, const float *dp, const float *po,
				   const uint8_t *am, int wo, float a);

#endif
