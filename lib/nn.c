/* Neural-network layers: forward and backward passes over flat float arrays (see bio/nn.h for
 * layouts). Convolutions are lowered to one sgemm per chunk of samples (im2col of as many samples
 * as the scratch holds); every reduction outside sgemm runs on one thread in a fixed order, in
 * double precision, so results are reproducible bit for bit. The only file that calls OpenBLAS. */
#include "bio/nn.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "bio/error.h"

void bio_nn_set_threads(int n_threads)
{
	openblas_set_num_threads(n_threads < 1 ? 1 : n_threads);
}

void bio_nn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
		  int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
	if (m <= 0 || n <= 0)
		return;
	if (k <= 0) {
		for (int i = 0; i < m; i++)
			for (int j = 0; j < n; j++)
				c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
		return;
	}
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
		    trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- fixed-order sums: 8 float lanes per block of 1024, blocks added in double ---- */

#define SUM_BLOCK 1024

static double sum_f(const float *x, size_t n)
{
	double total = 0.0;
	size_t i = 0;
	while (i < n) {
		size_t end = n - i > SUM_BLOCK ? i + SUM_BLOCK : n;
		float acc[8] = {0};
		for (; i + 8 <= end; i += 8)
			for (int k = 0; k < 8; k++)
				acc[k] += x[i + k];
		for (; i < end; i++)
			acc[0] += x[i];
		total += (double)(((acc[0] + acc[1]) + (acc[2] + acc[3])) +
				  ((acc[4] + acc[5]) + (acc[6] + acc[7])));
	}
	return total;
}

/* sum of (x - mu)^2 */
static double sum_sqdev_f(const float *x, size_t n, float mu)
{
	double total = 0.0;
	size_t i = 0;
	while (i < n) {
		size_t end = n - i > SUM_BLOCK ? i + SUM_BLOCK : n;
		float acc[8] = {0};
		for (; i + 8 <= end; i += 8)
			for (int k = 0; k < 8; k++) {
				float d = x[i + k] - mu;
				acc[k] += d * d;
			}
		for (; i < end; i++) {
			float d = x[i] - mu;
			acc[0] += d * d;
		}
		total += (double)(((acc[0] + acc[1]) + (acc[2] + acc[3])) +
				  ((acc[4] + acc[5]) + (acc[6] + acc[7])));
	}
	return total;
}

/* sum of a, and of a*b */
static void sum2_f(double *sa, double *sab, const float *a, const float *b, size_t n)
{
	double ta = 0.0, tab = 0.0;
	size_t i = 0;
	while (i < n) {
		size_t end = n - i > SUM_BLOCK ? i + SUM_BLOCK : n;
		float acc[8] = {0}, acc2[8] = {0};
		for (; i + 8 <= end; i += 8)
			for (int k = 0; k < 8; k++) {
				acc[k] += a[i + k];
				acc2[k] += a[i + k] * b[i + k];
			}
		for (; i < end; i++) {
			acc[0] += a[i];
			acc2[0] += a[i] * b[i];
		}
		ta += (double)(((acc[0] + acc[1]) + (acc[2] + acc[3])) +
			       ((acc[4] + acc[5]) + (acc[6] + acc[7])));
		tab += (double)(((acc2[0] + acc2[1]) + (acc2[2] + acc2[3])) +
				((acc2[4] + acc2[5]) + (acc2[6] + acc2[7])));
	}
	*sa = ta;
	*sab = tab;
}

/* Elementwise kernels written as blocks of 8 independent lanes, a form the compiler vectorises
 * at -O2 (the "very cheap" cost model of GCC 12 vectorises fixed-width blocks). In-place use
 * (dst == src) is allowed: every lane reads its element before writing it. */

static void add_scalar(float *x, size_t n, float v)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		float t[8];
		for (int k = 0; k < 8; k++)
			t[k] = x[i + k] + v;
		for (int k = 0; k < 8; k++)
			x[i + k] = t[k];
	}
	for (; i < n; i++)
		x[i] += v;
}

/* xh = (x - mean) * invstd */
static void normalize(float *xh, const float *x, size_t n, float mean, float invstd)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		float t[8];
		for (int k = 0; k < 8; k++)
			t[k] = (x[i + k] - mean) * invstd;
		for (int k = 0; k < 8; k++)
			xh[i + k] = t[k];
	}
	for (; i < n; i++)
		xh[i] = (x[i] - mean) * invstd;
}

/* dx = a * (dy - mdy - xh * mdyx) */
static void bn_dx(float *dx, const float *dy, const float *xh, size_t n, float a, float mdy,
		  float mdyx)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		float t[8];
		for (int k = 0; k < 8; k++)
			t[k] = a * (dy[i + k] - mdy - xh[i + k] * mdyx);
		for (int k = 0; k < 8; k++)
			dx[i + k] = t[k];
	}
	for (; i < n; i++)
		dx[i] = a * (dy[i] - mdy - xh[i] * mdyx);
}

/* ---- conv2d ---- */

int bio_conv2d_setup(struct bio_conv2d *l, int c_in, int c_out, int k, int stride, int pad,
		     int h_in, int w_in)
{
	BIO_ASSERT(c_in > 0 && c_out > 0 && k > 0 && stride > 0 && pad >= 0);
	l->c_in = c_in;
	l->c_out = c_out;
	l->k = k;
	l->stride = stride;
	l->pad = pad;
	l->h_in = h_in;
	l->w_in = w_in;
	if (h_in + 2 * pad < k || w_in + 2 * pad < k)
		return -1;
	l->h_out = (h_in + 2 * pad - k) / stride + 1;
	l->w_out = (w_in + 2 * pad - k) / stride + 1;
	return 0;
}

size_t bio_conv2d_col_floats(const struct bio_conv2d *l)
{
	return (size_t)l->c_in * l->k * l->k * l->h_out * l->w_out;
}

/* col [c_in*k*k][nc*ho*wo] from samples n0..n0+nc of in [c_in][n_batch][h][w]. */
static void im2col(const struct bio_conv2d *l, float *col, const float *in, int n_batch, int n0,
		   int nc)
{
	const int k = l->k, s = l->stride, p = l->pad, hi = l->h_in, wi = l->w_in;
	const int ho = l->h_out, wo = l->w_out;
	const size_t plane = (size_t)hi * wi, cols = (size_t)nc * ho * wo;
	for (int ci = 0; ci < l->c_in; ci++) {
		for (int kh = 0; kh < k; kh++) {
			for (int kw = 0; kw < k; kw++) {
				float *row = col + ((size_t)(ci * k + kh) * k + kw) * cols;
				/* valid ow range: 0 <= ow*s - p + kw < wi */
				int ow_lo = 0, ow_hi = wo;
				while (ow_lo < wo && ow_lo * s - p + kw < 0)
					ow_lo++;
				while (ow_hi > ow_lo && (ow_hi - 1) * s - p + kw >= wi)
					ow_hi--;
				for (int j = 0; j < nc; j++) {
					const float *src = in + ((size_t)ci * n_batch + n0 + j) * plane;
					for (int oh = 0; oh < ho; oh++) {
						float *dst = row + ((size_t)j * ho + oh) * wo;
						int ih = oh * s - p + kh;
						if (ih < 0 || ih >= hi) {
							memset(dst, 0, sizeof(float) * wo);
							continue;
						}
						const float *sr = src + (size_t)ih * wi;
						for (int ow = 0; ow < ow_lo; ow++)
							dst[ow] = 0.0f;
						if (s == 1) {
							if (ow_hi > ow_lo)
								memcpy(dst + ow_lo, sr + ow_lo - p + kw,
								       sizeof(float) * (ow_hi - ow_lo));
						} else {
							for (int ow = ow_lo; ow < ow_hi; ow++)
								dst[ow] = sr[ow * s - p + kw];
						}
						for (int ow = ow_hi; ow < wo; ow++)
							dst[ow] = 0.0f;
					}
				}
			}
		}
	}
}

/* d_in samples n0..n0+nc (zeroed first) += col2im(col). */
static void col2im(const struct bio_conv2d *l, float *d_in, const float *col, int n_batch, int n0,
		   int nc)
{
	const int k = l->k, s = l->stride, p = l->pad, hi = l->h_in, wi = l->w_in;
	const int ho = l->h_out, wo = l->w_out;
	const size_t plane = (size_t)hi * wi, cols = (size_t)nc * ho * wo;
	for (int ci = 0; ci < l->c_in; ci++)
		memset(d_in + ((size_t)ci * n_batch + n0) * plane, 0, sizeof(float) * plane * nc);
	for (int ci = 0; ci < l->c_in; ci++) {
		for (int kh = 0; kh < k; kh++) {
			for (int kw = 0; kw < k; kw++) {
				const float *row = col + ((size_t)(ci * k + kh) * k + kw) * cols;
				int ow_lo = 0, ow_hi = wo;
				while (ow_lo < wo && ow_lo * s - p + kw < 0)
					ow_lo++;
				while (ow_hi > ow_lo && (ow_hi - 1) * s - p + kw >= wi)
					ow_hi--;
				for (int j = 0; j < nc; j++) {
					float *dst = d_in + ((size_t)ci * n_batch + n0 + j) * plane;
					for (int oh = 0; oh < ho; oh++) {
						int ih = oh * s - p + kh;
						if (ih < 0 || ih >= hi)
							continue;
						const float *sr = row + ((size_t)j * ho + oh) * wo;
						float *dr = dst + (size_t)ih * wi;
						for (int ow = ow_lo; ow < ow_hi; ow++)
							dr[ow * s - p + kw] += sr[ow];
					}
				}
			}
		}
	}
}

static int conv_chunk(const struct bio_conv2d *l, int n_batch)
{
	size_t per = bio_conv2d_col_floats(l);
	BIO_ASSERT(l->col && l->col_floats >= per);
	size_t nc = l->col_floats / per;
	return nc >= (size_t)n_batch ? n_batch : (int)nc;
}

void bio_conv2d_forward(const struct bio_conv2d *l, float *out, const float *in, int n_batch)
{
	const int kk = l->c_in * l->k * l->k;
	const size_t hw = (size_t)l->h_out * l->w_out, ld = hw * n_batch;
	const int chunk = conv_chunk(l, n_batch);
	const int direct = l->k == 1 && l->stride == 1 && l->pad == 0;
	for (int n0 = 0; n0 < n_batch; n0 += chunk) {
		int nc = n_batch - n0 < chunk ? n_batch - n0 : chunk;
		const float *col = l->col;
		int ldb = (int)(nc * hw);
		if (direct) {
			col = in + n0 * hw; /* in [c_in][n][hw] is already the column matrix */
			ldb = (int)ld;
		} else {
			im2col(l, l->col, in, n_batch, n0, nc);
		}
		bio_nn_sgemm(0, 0, l->c_out, (int)(nc * hw), kk, 1.0f, l->w, kk, col, ldb, 0.0f,
			     out + n0 * hw, (int)ld);
	}
	if (l->b) {
		for (int co = 0; co < l->c_out; co++) {
			add_scalar(out + co * ld, ld, l->b[co]);
		}
	}
}

void bio_conv2d_backward(const struct bio_conv2d *l, float *d_in, const float *d_out,
			 const float *in, int n_batch)
{
	const int kk = l->c_in * l->k * l->k;
	const size_t hw = (size_t)l->h_out * l->w_out, ld = hw * n_batch;
	const int chunk = conv_chunk(l, n_batch);
	const int direct = l->k == 1 && l->stride == 1 && l->pad == 0;
	if (l->db) {
		for (int co = 0; co < l->c_out; co++)
			l->db[co] += (float)sum_f(d_out + co * ld, ld);
	}
	for (int n0 = 0; n0 < n_batch; n0 += chunk) {
		int nc = n_batch - n0 < chunk ? n_batch - n0 : chunk;
		int cols = (int)(nc * hw);
		const float *col = l->col;
		int ldc = cols;
		if (direct) {
			col = in + n0 * hw;
			ldc = (int)ld;
		} else {
			im2col(l, l->col, in, n_batch, n0, nc);
		}
		/* dw [c_out][kk] += d_out_chunk [c_out][cols] col^T */
		bio_nn_sgemm(0, 1, l->c_out, kk, cols, 1.0f, d_out + n0 * hw, (int)ld, col, ldc, 1.0f,
			     l->dw, kk);
		if (!d_in)
			continue;
		if (direct) {
			bio_nn_sgemm(1, 0, kk, cols, l->c_out, 1.0f, l->w, kk, d_out + n0 * hw, (int)ld,
				     0.0f, d_in + n0 * hw, (int)ld);
		} else {
			/* dcol [kk][cols] = W^T d_out_chunk, then scattered back */
			bio_nn_sgemm(1, 0, kk, cols, l->c_out, 1.0f, l->w, kk, d_out + n0 * hw, (int)ld,
				     0.0f, l->col, cols);
			col2im(l, d_in, l->col, n_batch, n0, nc);
		}
	}
}

/* ---- batch norm ---- */

void bio_batchnorm_forward(const struct bio_batchnorm *l, float *out, float *xhat, const float *in,
			   int n_batch, int training)
{
	const size_t m = (size_t)n_batch * l->spatial;
	for (int c = 0; c < l->c; c++) {
		const float *x = in + c * m;
		float *xh = xhat + c * m, *o = out ? out + c * m : NULL;
		float mean, invstd;
		if (training) {
			double mu = sum_f(x, m) / (double)m;
			double v = sum_sqdev_f(x, m, (float)mu);
			double var = v / (double)m;
			mean = (float)mu;
			invstd = (float)(1.0 / sqrt(var + l->eps));
			double unbiased = m > 1 ? v / (double)(m - 1) : var;
			l->running_mean[c] = (1.0f - l->momentum) * l->running_mean[c] +
					     l->momentum * (float)mu;
			l->running_var[c] = (1.0f - l->momentum) * l->running_var[c] +
					    l->momentum * (float)unbiased;
		} else {
			mean = l->running_mean[c];
			invstd = (float)(1.0 / sqrt((double)l->running_var[c] + l->eps));
		}
		l->mean[c] = mean;
		l->invstd[c] = invstd;
		const float g = l->gamma[c], b = l->beta[c];
		normalize(xh, x, m, mean, invstd);
		if (o)
			for (size_t i = 0; i < m; i++)
				o[i] = g * xh[i] + b;
	}
	if (training && l->num_batches_tracked)
		(*l->num_batches_tracked)++;
}

void bio_batchnorm_backward(const struct bio_batchnorm *l, float *d_in, const float *d_out,
			    const float *xhat, int n_batch, int training)
{
	const size_t m = (size_t)n_batch * l->spatial;
	for (int c = 0; c < l->c; c++) {
		const float *dy = d_out + c * m, *xh = xhat + c * m;
		float *dx = d_in + c * m;
		double sdy, sdyx;
		sum2_f(&sdy, &sdyx, dy, xh, m);
		l->dgamma[c] += (float)sdyx;
		l->dbeta[c] += (float)sdy;
		const float g = l->gamma[c], is = l->invstd[c];
		if (training) {
			/* dx = g*is/m * (m*dy - sum(dy) - xhat*sum(dy*xhat)) */
			const float a = g * is, mdy = (float)(sdy / (double)m),
				    mdyx = (float)(sdyx / (double)m);
			bn_dx(dx, dy, xh, m, a, mdy, mdyx);
		} else {
			const float a = g * is;
			for (size_t i = 0; i < m; i++)
				dx[i] = a * dy[i];
		}
	}
}

/* ---- elementwise ---- */

void bio_relu_forward(float *out, const float *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void bio_relu_backward(float *d_in, const float *d_out, const float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d_in[i] = out[i] > 0.0f ? d_out[i] : 0.0f;
}

void bio_dropout_forward(float *out, const float *in, const float *mask, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] * mask[i];
}

void bio_dropout_backward(float *d_in, const float *d_out, const float *mask, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d_in[i] = d_out[i] * mask[i];
}

float bio_dropout_scale(float p)
{
	return 1.0f / (float)(1.0 - (double)p);
}

/* ---- max pool ---- */

void bio_maxpool2_forward(float *out, uint8_t *argmax, const float *in, size_t n_planes, int h,
			  int w)
{
	const int ho = h / 2, wo = w / 2;
	for (size_t pl = 0; pl < n_planes; pl++) {
		const float *x = in + pl * h * w;
		float *o = out + pl * ho * wo;
		uint8_t *a = argmax + pl * ho * wo;
		for (int oh = 0; oh < ho; oh++) {
			const float *r0 = x + (size_t)(2 * oh) * w, *r1 = r0 + w;
			for (int ow = 0; ow < wo; ow++) {
				float v = r0[2 * ow];
				uint8_t k = 0;
				if (r0[2 * ow + 1] > v || isnan(r0[2 * ow + 1])) {
					v = r0[2 * ow + 1];
					k = 1;
				}
				if (r1[2 * ow] > v || isnan(r1[2 * ow])) {
					v = r1[2 * ow];
					k = 2;
				}
				if (r1[2 * ow + 1] > v || isnan(r1[2 * ow + 1])) {
					v = r1[2 * ow + 1];
					k = 3;
				}
				o[oh * wo + ow] = v;
				a[oh * wo + ow] = k;
			}
		}
	}
}

void bio_affine_relu_maxpool2_forward(float *out, uint8_t *argmax, const float *xhat,
				      const float *gamma, const float *beta, int c, int n_batch,
				      int h, int w)
{
	const int ho = h / 2, wo = w / 2;
	for (int ci = 0; ci < c; ci++) {
		const float g = gamma[ci], b = beta[ci];
		for (int n = 0; n < n_batch; n++) {
			size_t pl = (size_t)ci * n_batch + n;
			const float *x = xhat + pl * h * w;
			float *o = out + pl * ho * wo;
			uint8_t *a = argmax + pl * ho * wo;
			for (int oh = 0; oh < ho; oh++) {
				const float *r0 = x + (size_t)(2 * oh) * w, *r1 = r0 + w;
				float *orow = o + (size_t)oh * wo;
				uint8_t *arow = a + (size_t)oh * wo;
				/* branch-free so that the compiler can vectorise; first maximum wins */
				for (int ow = 0; ow < wo; ow++) {
					float v0 = g * r0[2 * ow] + b, v1 = g * r0[2 * ow + 1] + b;
					float v2 = g * r1[2 * ow] + b, v3 = g * r1[2 * ow + 1] + b;
					v0 = v0 > 0.0f ? v0 : 0.0f;
					v1 = v1 > 0.0f ? v1 : 0.0f;
					v2 = v2 > 0.0f ? v2 : 0.0f;
					v3 = v3 > 0.0f ? v3 : 0.0f;
					float best = v0;
					int k = 0;
					k = v1 > best ? 1 : k;
					best = v1 > best ? v1 : best;
					k = v2 > best ? 2 : k;
					best = v2 > best ? v2 : best;
					k = v3 > best ? 3 : k;
					best = v3 > best ? v3 : best;
					orow[ow] = best;
					arow[ow] = (uint8_t)k;
				}
			}
		}
	}
}

static void maxpool2_scatter(float *d_in, const float *d_out, const float *out,
			     const uint8_t *argmax, size_t n_planes, int h, int w)
{
	const int ho = h / 2, wo = w / 2;
	memset(d_in, 0, sizeof(float) * n_planes * h * w);
	for (size_t pl = 0; pl < n_planes; pl++) {
		float *dx = d_in + pl * h * w;
		const float *dy = d_out + pl * ho * wo;
		const uint8_t *a = argmax + pl * ho * wo;
		const float *o = out ? out + pl * ho * wo : NULL;
		for (int oh = 0; oh < ho; oh++) {
			for (int ow = 0; ow < wo; ow++) {
				size_t j = (size_t)oh * wo + ow;
				if (o && !(o[j] > 0.0f))
					continue;
				int k = a[j];
				dx[(size_t)(2 * oh + (k >> 1)) * w + 2 * ow + (k & 1)] = dy[j];
			}
		}
	}
}

void bio_maxpool2_backward(float *d_in, const float *d_out, const uint8_t *argmax,
			   size_t n_planes, int h, int w)
{
	maxpool2_scatter(d_in, d_out, NULL, argmax, n_planes, h, w);
}

void bio_maxpool2_relu_backward(float *d_in, const float *d_out, const float *out,
				const uint8_t *argmax, size_t n_planes, int h, int w)
{
	maxpool2_scatter(d_in, d_out, out, argmax, n_planes, h, w);
}

/* ---- flatten ---- */

void bio_flatten_forward(float *out, const float *in, int c, int n_batch, int spatial)
{
	for (int n = 0; n < n_batch; n++)
		for (int ci = 0; ci < c; ci++)
			memcpy(out + ((size_t)n * c + ci) * spatial,
			       in + ((size_t)ci * n_batch + n) * spatial, sizeof(float) * spatial);
}

void bio_flatten_backward(float *d_in, const float *d_out, int c, int n_batch, int spatial)
{
	for (int n = 0; n < n_batch; n++)
		for (int ci = 0; ci < c; ci++)
			memcpy(d_in + ((size_t)ci * n_batch + n) * spatial,
			       d_out + ((size_t)n * c + ci) * spatial, sizeof(float) * spatial);
}

/* ---- linear ---- */

void bio_linear_forward(const struct bio_linear *l, float *out, const float *in, int n_batch)
{
	bio_nn_sgemm(0, 1, n_batch, l->n_out, l->n_in, 1.0f, in, l->n_in, l->w, l->n_in, 0.0f, out,
		     l->n_out);
	if (l->b)
		for (int n = 0; n < n_batch; n++)
			for (int o = 0; o < l->n_out; o++)
				out[(size_t)n * l->n_out + o] += l->b[o];
}

void bio_linear_backward(const struct bio_linear *l, float *d_in, const float *d_out,
			 const float *in, int n_batch)
{
	bio_nn_sgemm(1, 0, l->n_out, l->n_in, n_batch, 1.0f, d_out, l->n_out, in, l->n_in, 1.0f,
		     l->dw, l->n_in);
	if (l->db) {
		for (int o = 0; o < l->n_out; o++) {
			double s = 0.0;
			for (int n = 0; n < n_batch; n++)
				s += d_out[(size_t)n * l->n_out + o];
			l->db[o] += (float)s;
		}
	}
	if (d_in)
		bio_nn_sgemm(0, 0, n_batch, l->n_in, l->n_out, 1.0f, d_out, l->n_out, l->w, l->n_in,
			     0.0f, d_in, l->n_in);
}

/* ---- softmax cross-entropy ---- */

double bio_softmax_ce(float *d_logits, int *n_correct, const float *logits, const int64_t *labels,
		      int n_batch, int n_classes, float scale)
{
	double total = 0.0;
	int correct = 0;
	for (int n = 0; n < n_batch; n++) {
		const float *z = logits + (size_t)n * n_classes;
		int64_t y = labels[n];
		BIO_ASSERT(y >= 0 && y < n_classes);
		float mx = z[0];
		int am = 0;
		for (int c = 1; c < n_classes; c++)
			if (z[c] > mx) {
				mx = z[c];
				am = c;
			}
		if (am == y)
			correct++;
		double s = 0.0;
		for (int c = 0; c < n_classes; c++)
			s += exp((double)z[c] - mx);
		double lse = mx + log(s);
		total += lse - z[y];
		if (d_logits) {
			float *d = d_logits + (size_t)n * n_classes;
			double k = (double)scale / n_batch;
			for (int c = 0; c < n_classes; c++) {
				double p = exp((double)z[c] - lse);
				d[c] = (float)((p - (c == y ? 1.0 : 0.0)) * k);
			}
		}
	}
	if (n_correct)
		*n_correct = correct;
	return n_batch > 0 ? total / n_batch : 0.0;
}

/* ---- fusion ---- */

int bio_fusion_out_dim(const struct bio_fusion *f)
{
	return f->kind == BIO_FUSION_CONCAT ? f->n_mod * f->dim : f->dim;
}

int bio_fusion_parse(enum bio_fusion_kind *out, const char *name)
{
	static const char *const names[] = {"concat", "attention", "weighted"};
	for (int i = 0; i < 3; i++)
		if (strcmp(name, names[i]) == 0) {
			*out = (enum bio_fusion_kind)i;
			return 0;
		}
	return -1;
}

const char *bio_fusion_name(enum bio_fusion_kind kind)
{
	return kind == BIO_FUSION_CONCAT ? "concat" : kind == BIO_FUSION_ATTENTION ? "attention" : "weighted";
}

/* p[0..n) = softmax(s[0..n)), in double then rounded. */
static void softmax_small(float *p, const double *s, int n)
{
	double mx = s[0], sum = 0.0, e[16];
	for (int i = 1; i < n; i++)
		if (s[i] > mx)
			mx = s[i];
	for (int i = 0; i < n; i++) {
		e[i] = exp(s[i] - mx);
		sum += e[i];
	}
	for (int i = 0; i < n; i++)
		p[i] = (float)(e[i] / sum);
}

void bio_fusion_forward(const struct bio_fusion *f, float *out, const float *const *emb,
			int n_batch)
{
	const int d = f->dim, nm = f->n_mod;
	BIO_ASSERT(nm >= 1 && nm <= 16);
	if (f->kind == BIO_FUSION_CONCAT) {
		for (int n = 0; n < n_batch; n++)
			for (int m = 0; m < nm; m++)
				memcpy(out + ((size_t)n * nm + m) * d, emb[m] + (size_t)n * d,
				       sizeof(float) * d);
		return;
	}
	double s[16];
	if (f->kind == BIO_FUSION_WEIGHTED) {
		for (int m = 0; m < nm; m++)
			s[m] = f->w[m];
		softmax_small(f->alpha, s, nm);
	}
	for (int n = 0; n < n_batch; n++) {
		float *a = f->alpha;
		if (f->kind == BIO_FUSION_ATTENTION) {
			a = f->alpha + (size_t)n * nm;
			for (int m = 0; m < nm; m++) {
				const float *e = emb[m] + (size_t)n * d;
				double z = 0.0;
				for (int i = 0; i < d; i++)
					z += (double)f->w[i] * e[i];
				s[m] = (float)(z + f->b[0]);
			}
			softmax_small(a, s, nm);
		}
		float *o = out + (size_t)n * d;
		for (int i = 0; i < d; i++) {
			float v = 0.0f;
			for (int m = 0; m < nm; m++)
				v += a[m] * emb[m][(size_t)n * d + i];
			o[i] = v;
		}
	}
}

void bio_fusion_backward(const struct bio_fusion *f, float *const *d_emb, const float *d_out,
			 const float *const *emb, int n_batch)
{
	const int d = f->dim, nm = f->n_mod;
	if (f->kind == BIO_FUSION_CONCAT) {
		for (int n = 0; n < n_batch; n++)
			for (int m = 0; m < nm; m++)
				memcpy(d_emb[m] + (size_t)n * d, d_out + ((size_t)n * nm + m) * d,
				       sizeof(float) * d);
		return;
	}
	double dsum[16] = {0};
	double dwv = 0.0;
	for (int n = 0; n < n_batch; n++) {
		const float *a = f->kind == BIO_FUSION_ATTENTION ? f->alpha + (size_t)n * nm : f->alpha;
		const float *g = d_out + (size_t)n * d;
		double da[16], ds[16], adot = 0.0;
		for (int m = 0; m < nm; m++) {
			const float *e = emb[m] + (size_t)n * d;
			float *de = d_emb[m] + (size_t)n * d;
			double z = 0.0;
			for (int i = 0; i < d; i++) {
				z += (double)g[i] * e[i];
				de[i] = a[m] * g[i];
			}
			da[m] = z;
			adot += a[m] * z;
		}
		for (int m = 0; m < nm; m++)
			ds[m] = a[m] * (da[m] - adot);
		if (f->kind == BIO_FUSION_WEIGHTED) {
			for (int m = 0; m < nm; m++)
				dsum[m] += ds[m];
			continue;
		}
		/* attention: s_m = w . e_m + b */
		for (int m = 0; m < nm; m++) {
			const float *e = emb[m] + (size_t)n * d;
			float *de = d_emb[m] + (size_t)n * d;
			float dsm = (float)ds[m];
			for (int i = 0; i < d; i++) {
				f->dw[i] += dsm * e[i];
				de[i] += dsm * f->w[i];
			}
			dwv += ds[m];
		}
	}
	if (f->kind == BIO_FUSION_WEIGHTED)
		for (int m = 0; m < nm; m++)
			f->dw[m] += (float)dsum[m];
	else
		f->db[0] += (float)dwv;
}
