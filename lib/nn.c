/* Neural-network layers: forward and backward passes over flat float arrays (see bio/nn.h for
 * layouts), run on bio/thread.h's pool. Convolutions are lowered to one sgemm per
 * chunk of samples (im2col); sums run in a fixed order (8 float lanes per block of 1024, blocks
 * added in double), work is split into pieces that do not depend on the thread count, so results
 * are reproducible bit for bit. Elementwise kernels are written as blocks of 8 lanes, which GCC
 * vectorises at -O2. The only file that calls OpenBLAS. */
#include "bio/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bio/error.h"
#include "bio/kernels.h"
#include "kernels/clones.h"

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
	bio_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
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

/* ---- pieces and trees (bio/nn.h): the order of every sum over the samples of a batch ---- */

void *bio_kernels_scratch(int slot, size_t bytes);
/* bio_kernels_scratch's slots of this file (0-7 are the kernels') */
enum { SCRATCH_SUMS = 8, SCRATCH_TREE = 9, SCRATCH_COL = 10, SCRATCH_FUSED = 11, SCRATCH_C1 = 12 };

static size_t n_pieces(int n_batch)
{
	return n_batch > 0 ? ((size_t)n_batch + BIO_NN_PIECE - 1) / BIO_NN_PIECE : 0;
}

void bio_nn_tree_init(struct bio_nn_tree *t)
{
	t->n = 0;
	t->depth = 0;
}

/* Leaf n joins the subtrees it completes: as many as trailing one bits of n (the stack holds one
 * subtree per one bit of n, largest first). */
void bio_nn_tree_push(struct bio_nn_tree *t, double x)
{
	for (uint64_t k = t->n; k & 1; k >>= 1)
		x = t->v[--t->depth] + x;
	t->v[t->depth++] = x;
	t->n++;
}

/* The unfinished subtrees, smallest first: the stride-doubling tree adds a short tail to the
 * subtree before it once the stride reaches its size. */
double bio_nn_tree_sum(const struct bio_nn_tree *t)
{
	if (t->depth == 0)
		return 0.0;
	double x = t->v[t->depth - 1];
	for (int i = t->depth - 2; i >= 0; i--)
		x = t->v[i] + x;
	return x;
}

void bio_nn_tree_d(double *v, size_t n, size_t width)
{
	for (size_t s = 1; s < n; s *= 2)
		for (size_t p = 0; p + s < n; p += 2 * s)
			for (size_t i = 0; i < width; i++)
				v[p * width + i] += v[(p + s) * width + i];
}

void bio_nn_tree_f(float *v, size_t n, size_t width)
{
	for (size_t s = 1; s < n; s *= 2)
		for (size_t p = 0; p + s < n; p += 2 * s)
			for (size_t i = 0; i < width; i++)
				v[p * width + i] += v[(p + s) * width + i];
}

/* The float twin of struct bio_nn_tree, for gradients (float trees of float piece partials). */
struct tree_f {
	float v[64];
	uint64_t n;
	int depth;
};

static void tree_f_push(struct tree_f *t, float x)
{
	for (uint64_t k = t->n; k & 1; k >>= 1)
		x = t->v[--t->depth] + x;
	t->v[t->depth++] = x;
	t->n++;
}

static float tree_f_sum(const struct tree_f *t)
{
	if (t->depth == 0)
		return 0.0f;
	float x = t->v[t->depth - 1];
	for (int i = t->depth - 2; i >= 0; i--)
		x = t->v[i] + x;
	return x;
}

void bio_nn_dist_split(struct bio_nn_dist *d, int n_global)
{
	size_t pieces = n_pieces(n_global), per = 1;
	while (per * (size_t)d->size < pieces)
		per *= 2;
	size_t p0 = per * (size_t)d->rank, p1 = p0 + per;
	if (p0 > pieces)
		p0 = pieces;
	if (p1 > pieces)
		p1 = pieces;
	size_t s0 = p0 * BIO_NN_PIECE, s1 = p1 * BIO_NN_PIECE;
	if (s1 > (size_t)n_global)
		s1 = (size_t)n_global;
	if (s0 > s1)
		s0 = s1;
	d->n_global = n_global;
	d->s0 = (int)s0;
	d->n = (int)(s1 - s0);
	d->n_active = (int)((pieces + per - 1) / per);
}

/* v[0..n) += the other ranks' values by the tree over ranks (no-op for one process). */
static void dist_allsum(const struct bio_nn_dist *d, double *v, size_t n)
{
	if (d && d->size > 1)
		d->allsum(d, v, n);
}

/* The global sample count a sum over m = n_batch * spatial values divides by. */
static size_t dist_count(const struct bio_nn_dist *d, int n_batch, size_t spatial)
{
	return (size_t)(d ? d->n_global : n_batch) * spatial;
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

/* d += src */
static void add_into(float *d, const float *src, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		float t[8];
		for (int k = 0; k < 8; k++)
			t[k] = d[i + k] + src[i + k];
		for (int k = 0; k < 8; k++)
			d[i + k] = t[k];
	}
	for (; i < n; i++)
		d[i] += src[i];
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

/* x = a * (-mdy - x * mdyx), the dense part of batch-norm backward */
static void bn_dx_dense(float *x, size_t n, float a, float mdy, float mdyx)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		float t[8];
		for (int k = 0; k < 8; k++)
			t[k] = a * (-mdy - x[i + k] * mdyx);
		for (int k = 0; k < 8; k++)
			x[i + k] = t[k];
	}
	for (; i < n; i++)
		x[i] = a * (-mdy - x[i] * mdyx);
}

/* ---- conv2d ---- */

int bio_conv2d_setup(struct bio_conv2d *l, int c_in, int c_out, int k, int stride, int pad,
		     int h_in, int w_in)
{
	BIO_ASSERT(c_in > 0 && c_out > 0 && k > 0 && stride > 0 && pad >= 0);
	memset(l, 0, sizeof *l); /* no pool, no scratch, no buffers until the caller sets them */
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
						if (s == 1 && ow_hi > ow_lo)
							add_into(dr + ow_lo - p + kw, sr + ow_lo,
								 (size_t)(ow_hi - ow_lo));
						else
							for (int ow = ow_lo; ow < ow_hi; ow++)
								dr[ow * s - p + kw] += sr[ow];
					}
				}
			}
		}
	}
}

void *bio_kernels_scratch(int slot, size_t bytes);

/* Thread t's im2col buffer: the layer's own when it has one, else this thread's scratch (taken
 * only by the layers that need one, so a model of direct kernels holds none). */
static float *col_scratch(const struct bio_conv2d *l, int t)
{
	if (l->col)
		return l->col + (size_t)t * l->col_floats;
	return bio_kernels_scratch(SCRATCH_COL, sizeof(float) * l->col_floats);
}

static int conv_chunk(const struct bio_conv2d *l, int n_batch)
{
	size_t per = bio_conv2d_col_floats(l);
	BIO_ASSERT(l->col_floats >= per);
	size_t nc = l->col_floats / per;
	if (l->chunk > 0 && (size_t)l->chunk < nc)
		nc = (size_t)l->chunk;
	return nc >= (size_t)n_batch ? n_batch : (int)nc;
}

struct conv_job {
	const struct bio_conv2d *l;
	float *out, *d_in;
	const float *in, *d_out;
	int n_batch, chunk;
	const float *wp, *wp_flip; /* the direct kernels' packed weights */
};

/* The first layer's shape (1 input channel, 3x3, stride 1, padding 1): a direct kernel. */
static int conv_is_c1(const struct bio_conv2d *l)
{
	return l->c_in == 1 && l->k == 3 && l->stride == 1 && l->pad == 1;
}

/* 3x3, stride 1, padding 1 with several input channels, on a shape the direct kernels take
 * (lib/kernels/conv3x3.h): no im2col. The input gradient needs its own check (c_in channels). */
static int conv_is_direct(const struct bio_conv2d *l)
{
	return l->c_in > 1 && l->k == 3 && l->stride == 1 && l->pad == 1 &&
	       bio_conv3x3_direct(l->c_out, l->w_in);
}

static int conv_dx_is_direct(const struct bio_conv2d *l)
{
	return conv_is_direct(l) && bio_conv3x3_direct(l->c_in, l->w_in);
}

static void conv_forward_chunks(void *ctx, size_t c0, size_t c1, int t)
{
	const struct conv_job *j = ctx;
	const struct bio_conv2d *l = j->l;
	const int kk = l->c_in * l->k * l->k, n_batch = j->n_batch;
	const size_t hw = (size_t)l->h_out * l->w_out, ld = hw * n_batch;
	const int direct = l->k == 1 && l->stride == 1 && l->pad == 0;
	float *colbuf = NULL;
	for (size_t c = c0; c < c1; c++) {
		int n0 = (int)c * j->chunk;
		int nc = n_batch - n0 < j->chunk ? n_batch - n0 : j->chunk;
		if (conv_is_c1(l)) {
			bio_conv3x3_c1_forward(l->w, l->b, l->c_out, j->in + n0 * hw, nc, l->h_in, l->w_in,
					       j->out + n0 * hw, ld);
			continue;
		}
		if (conv_is_direct(l)) { /* (the bias added in the same pass) */
			bio_conv3x3_forward(j->wp, l->b, l->c_in, l->c_out, j->in + n0 * hw,
					    (size_t)hw * n_batch, nc, l->h_in, l->w_in,
					    j->out + n0 * hw, ld);
			continue;
		}
		const float *col;
		int ldb = (int)(nc * hw);
		if (direct) {
			col = j->in + n0 * hw; /* in [c_in][n][hw] is already the column matrix */
			ldb = (int)ld;
		} else {
			col = colbuf = colbuf ? colbuf : col_scratch(l, t);
			im2col(l, colbuf, j->in, n_batch, n0, nc);
		}
		bio_nn_sgemm(0, 0, l->c_out, (int)(nc * hw), kk, 1.0f, l->w, kk, col, ldb, 0.0f,
			     j->out + n0 * hw, (int)ld);
	}
}

BIO_CLONES static void conv_bias_channels(void *ctx, size_t c0, size_t c1, int t)
{
	const struct conv_job *j = ctx;
	const size_t ld = (size_t)j->l->h_out * j->l->w_out * j->n_batch;
	(void)t;
	for (size_t co = c0; co < c1; co++)
		add_scalar(j->out + co * ld, ld, j->l->b[co]);
}

/* The packed weights for this call: the layer's buffer (repacked unless frozen), else a
 * temporary one (*tmp, freed by the caller). */
static const float *conv_packed(const struct bio_conv2d *l, float *buf, int flip, float **tmp)
{
	size_t n = BIO_CONV3X3_PACKED(l->c_in, l->c_out);
	if (flip ? !conv_dx_is_direct(l) : !conv_is_direct(l))
		return NULL;
	if (!flip && buf && l->frozen)
		return buf;
	if (!buf && !(buf = *tmp = malloc(n * sizeof(float))))
		abort(); /* (only layers built outside a model, in tests) */
	if (flip)
		bio_conv3x3_pack(buf, l->w, 1, l->c_out, l->c_in, l->h_in, l->w_in);
	else
		bio_conv3x3_pack(buf, l->w, 0, l->c_in, l->c_out, l->h_in, l->w_in);
	return buf;
}

void bio_conv2d_freeze(struct bio_conv2d *l)
{
	l->frozen = 0;
	float *tmp = NULL;
	if (l->wp && conv_packed(l, l->wp, 0, &tmp))
		l->frozen = 1;
	free(tmp);
}

void bio_conv2d_forward(const struct bio_conv2d *l, float *out, const float *in, int n_batch)
{
	if (n_batch == 0) /* (a rank without samples in this step) */
		return;
	struct conv_job j = {l, out, NULL, in, NULL, n_batch, conv_chunk(l, n_batch), NULL, NULL};
	float *tmp = NULL;
	j.wp = conv_packed(l, l->wp, 0, &tmp);
	size_t n_chunks = (size_t)((n_batch + j.chunk - 1) / j.chunk);
	bio_nn_parallel_for(l->pool, n_chunks, conv_forward_chunks, &j);
	if (l->b && !conv_is_direct(l) && !conv_is_c1(l)) /* (those add it in the same pass) */
		bio_nn_parallel_for(l->pool, (size_t)l->c_out, conv_bias_channels, &j);
	free(tmp);
}

BIO_CLONES static void conv_db_channels(void *ctx, size_t c0, size_t c1, int t)
{
	const struct conv_job *j = ctx;
	const size_t ld = (size_t)j->l->h_out * j->l->w_out * j->n_batch;
	(void)t;
	const size_t hw = (size_t)j->l->h_out * j->l->w_out;
	for (size_t co = c0; co < c1; co++) {
		struct tree_f tf = {{0}, 0, 0};
		for (int s = 0; s < j->n_batch; s += BIO_NN_PIECE) {
			int cnt = j->n_batch - s < BIO_NN_PIECE ? j->n_batch - s : BIO_NN_PIECE;
			tree_f_push(&tf, (float)sum_f(j->d_out + co * ld + (size_t)s * hw,
						      (size_t)cnt * hw));
		}
		j->l->db[co] += tree_f_sum(&tf);
	}
}

static void conv_backward_chunks(void *ctx, size_t c0, size_t c1, int t)
{
	const struct conv_job *j = ctx;
	const struct bio_conv2d *l = j->l;
	const int kk = l->c_in * l->k * l->k, n_batch = j->n_batch;
	const size_t hw = (size_t)l->h_out * l->w_out, ld = hw * n_batch;
	const int direct = l->k == 1 && l->stride == 1 && l->pad == 0;
	float *colbuf = NULL;
	for (size_t c = c0; c < c1; c++) {
		int n0 = (int)c * j->chunk;
		int nc = n_batch - n0 < j->chunk ? n_batch - n0 : j->chunk;
		int cols = (int)(nc * hw);
		const float *col = NULL;
		int ldc = cols;
		/* dw [c_out][kk] (+)= d_out_chunk [c_out][cols] col^T: into this chunk's partial
		 * when there is one, so that the sum over chunks runs in a fixed order */
		float *dst = l->dw_part ? l->dw_part + c * (size_t)l->c_out * kk : l->dw;
		if (conv_is_c1(l)) {
			bio_conv3x3_c1_dweights(dst, l->c_out, j->in + n0 * hw, j->d_out + n0 * hw,
						nc, l->h_in, l->w_in, ld, !l->dw_part);
			if (!j->d_in)
				continue; /* (the input gradient below needs no im2col) */
		} else if (conv_is_direct(l)) {
			bio_conv3x3_dweights(dst, l->c_in, l->c_out, j->in + n0 * hw, ld,
					     j->d_out + n0 * hw, ld, nc, l->h_in, l->w_in,
					     !l->dw_part);
		} else {
			if (direct) {
				col = j->in + n0 * hw;
				ldc = (int)ld;
			} else {
				col = colbuf = colbuf ? colbuf : col_scratch(l, t);
				im2col(l, colbuf, j->in, n_batch, n0, nc);
			}
			bio_nn_sgemm(0, 1, l->c_out, kk, cols, 1.0f, j->d_out + n0 * hw, (int)ld,
				     col, ldc, l->dw_part ? 0.0f : 1.0f, dst, kk);
		}
		if (!j->d_in)
			continue;
		if (conv_dx_is_direct(l)) {
			bio_conv3x3_forward(j->wp_flip, NULL, l->c_out, l->c_in, j->d_out + n0 * hw, ld,
					    nc, l->h_in, l->w_in, j->d_in + n0 * hw, ld);
		} else if (direct) {
			bio_nn_sgemm(1, 0, kk, cols, l->c_out, 1.0f, l->w, kk, j->d_out + n0 * hw,
				     (int)ld, 0.0f, j->d_in + n0 * hw, (int)ld);
		} else {
			/* dcol [kk][cols] = W^T d_out_chunk, then scattered back */
			colbuf = colbuf ? colbuf : col_scratch(l, t);
			bio_nn_sgemm(1, 0, kk, cols, l->c_out, 1.0f, l->w, kk, j->d_out + n0 * hw,
				     (int)ld, 0.0f, colbuf, cols);
			col2im(l, j->d_in, colbuf, n_batch, n0, nc);
		}
	}
}

struct dw_sum_job {
	float *dw;
	float *part; /* consumed: the tree sums in place */
	size_t n, n_parts;
};

/* dw += the chunks' partial weight gradients, summed as a pairwise tree in a fixed order: for
 * stride s = 1, 2, 4, ...: part[p] += part[p + s] for p = 0, 2s, 4s, ... (so four chunks give
 * (p0 + p1) + (p2 + p3)), then dw += part[0]. Any split of the chunks into 2^r contiguous,
 * equal groups (threads now, MPI ranks later) reduces each group with the same tree and then
 * the groups' sums with it again: the same bits. The partials are scratch and are consumed. */
BIO_CLONES static void dw_sum_range(void *ctx, size_t b, size_t e, int t)
{
	const struct dw_sum_job *j = ctx;
	float *part = j->part;
	(void)t;
	for (size_t s = 1; s < j->n_parts; s *= 2)
		for (size_t p = 0; p + s < j->n_parts; p += 2 * s) {
			float *dst = part + p * j->n;
			const float *src = part + (p + s) * j->n;
			for (size_t i = b; i < e; i++)
				dst[i] += src[i];
		}
	for (size_t i = b; i < e; i++)
		j->dw[i] += part[i];
}

void bio_conv2d_backward(const struct bio_conv2d *l, float *d_in, const float *d_out,
			 const float *in, int n_batch)
{
	if (n_batch == 0)
		return;
	struct conv_job j = {l, NULL, d_in, in, d_out, n_batch, conv_chunk(l, n_batch), NULL, NULL};
	float *tmp = NULL;
	if (d_in)
		j.wp_flip = conv_packed(l, l->wp_flip, 1, &tmp);
	size_t n_chunks = (size_t)((n_batch + j.chunk - 1) / j.chunk);
	if (l->db)
		bio_nn_parallel_for(l->pool, (size_t)l->c_out, conv_db_channels, &j);
	/* without per-chunk partials the chunks accumulate into dw one after the other */
	bio_nn_parallel_for(l->dw_part ? l->pool : NULL, n_chunks, conv_backward_chunks, &j);
	if (l->dw_part) {
		struct dw_sum_job sj = {l->dw, l->dw_part,
					(size_t)l->c_out * l->c_in * l->k * l->k, n_chunks};
		bio_nn_parallel_for(l->pool, sj.n, dw_sum_range, &sj);
	}
	free(tmp);
}

/* ---- batch norm ---- */

/* Sums of one channel's run of nb samples of `plane` values, per piece, added by the tree. */
static double piece_sum(const float *x, int nb, size_t plane)
{
	struct bio_nn_tree t;
	bio_nn_tree_init(&t);
	for (int s = 0; s < nb; s += BIO_NN_PIECE) {
		int cnt = nb - s < BIO_NN_PIECE ? nb - s : BIO_NN_PIECE;
		bio_nn_tree_push(&t, sum_f(x + (size_t)s * plane, (size_t)cnt * plane));
	}
	return bio_nn_tree_sum(&t);
}

static double piece_sqdev(const float *x, int nb, size_t plane, float mu)
{
	struct bio_nn_tree t;
	bio_nn_tree_init(&t);
	for (int s = 0; s < nb; s += BIO_NN_PIECE) {
		int cnt = nb - s < BIO_NN_PIECE ? nb - s : BIO_NN_PIECE;
		bio_nn_tree_push(&t, sum_sqdev_f(x + (size_t)s * plane, (size_t)cnt * plane, mu));
	}
	return bio_nn_tree_sum(&t);
}

/* Batch-norm passes over channels. With one process each channel is done in one pass (phase
 * ALL); across ranks the channels' sums are first formed (SUMS, SUMS2), added over the ranks, and
 * then used (USE): the same arithmetic in the same order either way. */
enum bn_phase { BN_ALL, BN_SUMS, BN_SUMS2, BN_USE };

struct bn_job {
	const struct bio_batchnorm *l;
	float *out, *xhat, *d_in;
	const float *in, *d_out;
	const float *xhat_c;
	int n_batch, training;
	enum bn_phase phase;
	double *s1, *s2; /* [c]: per-channel sums (SUMS/SUMS2 write, USE reads) */
};

/* Channel c's mean and inverse deviation from the sum sx and squared deviations v of mc values,
 * and the running statistics moved towards them. */
static void bn_batch_stats(const struct bio_batchnorm *l, size_t c, double sx, double v, double mc)
{
	double mu = sx / mc;
	double var = v / mc;
	l->mean[c] = (float)mu;
	l->invstd[c] = (float)(1.0 / sqrt(var + l->eps));
	double unbiased = mc > 1 ? v / (mc - 1) : var;
	l->running_mean[c] = (1.0f - l->momentum) * l->running_mean[c] + l->momentum * (float)mu;
	l->running_var[c] = (1.0f - l->momentum) * l->running_var[c] +
			    l->momentum * (float)unbiased;
}

static void bn_running_stats(const struct bio_batchnorm *l, size_t c)
{
	l->mean[c] = l->running_mean[c];
	l->invstd[c] = (float)(1.0 / sqrt((double)l->running_var[c] + l->eps));
}

BIO_CLONES static void bn_forward_channels(void *ctx, size_t c0, size_t c1, int t)
{
	const struct bn_job *j = ctx;
	const struct bio_batchnorm *l = j->l;
	const size_t m = (size_t)j->n_batch * l->spatial;
	const double mc = (double)dist_count(l->dist, j->n_batch, (size_t)l->spatial);
	(void)t;
	for (size_t c = c0; c < c1; c++) {
		const float *x = j->in + c * m;
		float *xh = j->xhat + c * m, *o = j->out ? j->out + c * m : NULL;
		float mean, invstd;
		if (j->training) {
			double sx, v;
			if (j->phase == BN_SUMS) {
				j->s1[c] = piece_sum(x, j->n_batch, (size_t)l->spatial);
				continue;
			}
			if (j->phase == BN_SUMS2) {
				j->s2[c] = piece_sqdev(x, j->n_batch, (size_t)l->spatial,
						       (float)(j->s1[c] / mc));
				continue;
			}
			if (j->phase == BN_USE) {
				sx = j->s1[c];
				v = j->s2[c];
			} else {
				sx = piece_sum(x, j->n_batch, (size_t)l->spatial);
				v = piece_sqdev(x, j->n_batch, (size_t)l->spatial, (float)(sx / mc));
			}
			bn_batch_stats(l, c, sx, v, mc);
		} else {
			bn_running_stats(l, c);
		}
		mean = l->mean[c];
		invstd = l->invstd[c];
		const float g = l->gamma[c], b = l->beta[c];
		normalize(xh, x, m, mean, invstd);
		if (o)
			for (size_t i = 0; i < m; i++)
				o[i] = g * xh[i] + b;
	}
}

/* Runs a per-channel job: in one pass, or, across ranks, as sums, rank sums, then use. */
static void bn_run(struct bn_job *j, void (*fn)(void *, size_t, size_t, int), int two_sums)
{
	const struct bio_batchnorm *l = j->l;
	if (!j->training || !l->dist || l->dist->size == 1) {
		j->phase = BN_ALL;
		bio_nn_parallel_for(l->pool, (size_t)l->c, fn, j);
		return;
	}
	double *s = malloc(sizeof(double) * 2 * (size_t)l->c);
	if (!s)
		abort();
	j->s1 = s;
	j->s2 = s + l->c;
	j->phase = BN_SUMS;
	bio_nn_parallel_for(l->pool, (size_t)l->c, fn, j);
	if (two_sums) {
		/* forward: the mean over the ranks first, then the squared deviations from it */
		dist_allsum(l->dist, j->s1, (size_t)l->c);
		j->phase = BN_SUMS2;
		bio_nn_parallel_for(l->pool, (size_t)l->c, fn, j);
		dist_allsum(l->dist, j->s2, (size_t)l->c);
	} else {
		dist_allsum(l->dist, s, 2 * (size_t)l->c);
	}
	j->phase = BN_USE;
	bio_nn_parallel_for(l->pool, (size_t)l->c, fn, j);
	free(s);
}

void bio_batchnorm_forward(const struct bio_batchnorm *l, float *out, float *xhat, const float *in,
			   int n_batch, int training)
{
	struct bn_job j = {l, out, xhat, NULL, in, NULL, NULL, n_batch, training, BN_ALL, NULL, NULL};
	bn_run(&j, bn_forward_channels, 1);
	if (training && l->num_batches_tracked)
		(*l->num_batches_tracked)++;
}

BIO_CLONES static void bn_renormalize_channels(void *ctx, size_t c0, size_t c1, int t)
{
	const struct bn_job *j = ctx;
	const size_t m = (size_t)j->n_batch * j->l->spatial;
	(void)t;
	for (size_t c = c0; c < c1; c++)
		normalize(j->xhat + c * m, j->in + c * m, m, j->l->mean[c], j->l->invstd[c]);
}

void bio_batchnorm_renormalize(const struct bio_batchnorm *l, float *xhat, const float *in,
			       int n_batch)
{
	struct bn_job j = {l, NULL, xhat, NULL, in, NULL, NULL, n_batch, 0, BN_ALL, NULL, NULL};
	bio_nn_parallel_for(l->pool, (size_t)l->c, bn_renormalize_channels, &j);
}

/* A channel's batch-norm gradient sums over the pieces: each piece's sum(dy) and sum(dy xhat)
 * into double trees (the input gradient's coefficients) and float trees (dbeta, dgamma). */
struct grad_trees {
	struct bio_nn_tree t1, t2;
	struct tree_f f1, f2;
};

static void grad_trees_init(struct grad_trees *g)
{
	bio_nn_tree_init(&g->t1);
	bio_nn_tree_init(&g->t2);
	g->f1 = g->f2 = (struct tree_f){{0}, 0, 0};
}

static void grad_trees_push(struct grad_trees *g, double a, double ab)
{
	bio_nn_tree_push(&g->t1, a);
	bio_nn_tree_push(&g->t2, ab);
	tree_f_push(&g->f1, (float)a);
	tree_f_push(&g->f2, (float)ab);
}

static void grad_trees_sum(const struct grad_trees *g, double *sdy, double *sdyx, float *gdy,
			   float *gdyx)
{
	*sdy = bio_nn_tree_sum(&g->t1);
	*sdyx = bio_nn_tree_sum(&g->t2);
	*gdy = tree_f_sum(&g->f1);
	*gdyx = tree_f_sum(&g->f2);
}

/* Per piece: sum(dy) and sum(dy * xhat) of channel c, by grad_trees. */
static void bn_grad_sums(double *sdy, double *sdyx, float *gdy, float *gdyx, const float *dy,
			 const float *xh, int nb, size_t plane)
{
	struct grad_trees g;
	grad_trees_init(&g);
	for (int s = 0; s < nb; s += BIO_NN_PIECE) {
		int cnt = nb - s < BIO_NN_PIECE ? nb - s : BIO_NN_PIECE;
		double a, ab;
		sum2_f(&a, &ab, dy + (size_t)s * plane, xh + (size_t)s * plane, (size_t)cnt * plane);
		grad_trees_push(&g, a, ab);
	}
	grad_trees_sum(&g, sdy, sdyx, gdy, gdyx);
}

BIO_CLONES static void bn_backward_channels(void *ctx, size_t c0, size_t c1, int t)
{
	const struct bn_job *j = ctx;
	const struct bio_batchnorm *l = j->l;
	const size_t m = (size_t)j->n_batch * l->spatial;
	const double mc = (double)dist_count(l->dist, j->n_batch, (size_t)l->spatial);
	(void)t;
	for (size_t c = c0; c < c1; c++) {
		const float *dy = j->d_out + c * m, *xh = j->xhat_c + c * m;
		float *dx = j->d_in + c * m;
		double sdy, sdyx;
		if (j->phase != BN_USE) {
			float gdy, gdyx;
			bn_grad_sums(&sdy, &sdyx, &gdy, &gdyx, dy, xh, j->n_batch,
				     (size_t)l->spatial);
			l->dgamma[c] += gdyx;
			l->dbeta[c] += gdy;
			if (j->phase == BN_SUMS) {
				j->s1[2 * c] = sdy;
				j->s1[2 * c + 1] = sdyx;
				continue;
			}
		} else {
			sdy = j->s1[2 * c];
			sdyx = j->s1[2 * c + 1];
		}
		const float g = l->gamma[c], is = l->invstd[c];
		if (j->training) {
			/* dx = g*is/m * (m*dy - sum(dy) - xhat*sum(dy*xhat)) */
			const float a = g * is, mdy = (float)(sdy / mc), mdyx = (float)(sdyx / mc);
			bn_dx(dx, dy, xh, m, a, mdy, mdyx);
		} else {
			const float a = g * is;
			for (size_t i = 0; i < m; i++)
				dx[i] = a * dy[i];
		}
	}
}

void bio_batchnorm_backward(const struct bio_batchnorm *l, float *d_in, const float *d_out,
			    const float *xhat, int n_batch, int training)
{
	struct bn_job j = {l, NULL, NULL, d_in, NULL, d_out, xhat, n_batch, training, BN_ALL, NULL,
			   NULL};
	bn_run(&j, bn_backward_channels, 0);
}

struct bnrp_job {
	const struct bio_batchnorm *l;
	float *x;
	const float *d_pool, *pool_out;
	const uint8_t *argmax;
	int n_batch, h, w, training;
	enum bn_phase phase;
	double *s1, *s2; /* s1 [c][2]: sum(dy), sum(dy xhat) (as bn_job's, for bn_run) */
};

BIO_CLONES static void bnrp_channels(void *ctx, size_t c0, size_t c1, int t)
{
	const struct bnrp_job *j = ctx;
	const struct bio_batchnorm *l = j->l;
	const int h = j->h, w = j->w, ho = h / 2, wo = w / 2, nb = j->n_batch;
	const size_t plane = (size_t)h * w, pplane = (size_t)ho * wo, m = plane * nb;
	const double mc = (double)dist_count(l->dist, nb, plane);
	(void)t;
	for (size_t c = c0; c < c1; c++) {
		float *x = j->x + c * m;
		const float *dp = j->d_pool + c * pplane * nb, *po = j->pool_out + c * pplane * nb;
		const uint8_t *am = j->argmax + c * pplane * nb;
		double sdy, sdyx;
		if (j->phase != BN_USE) {
			/* the gradient of the batch-norm output is dp at each window's arg-max where
			 * the pooled value is positive, zero elsewhere: its sums need only those
			 * positions; per piece, then the trees */
			struct grad_trees g;
			grad_trees_init(&g);
			for (int s = 0; s < nb; s += BIO_NN_PIECE) {
				int end = nb - s < BIO_NN_PIECE ? nb : s + BIO_NN_PIECE;
				double a = 0.0, ab = 0.0;
				for (int n = s; n < end; n++) {
					const float *xp = x + (size_t)n * plane;
					for (int oh = 0; oh < ho; oh++) {
						size_t q = (size_t)n * pplane + (size_t)oh * wo;
						const float *x0 = xp + (size_t)(2 * oh) * w;
						float r1, r2;
						bio_pool2_grad_sums(&r1, &r2, dp + q, po + q, am + q, x0,
								    x0 + w, wo);
						a += r1;
						ab += r2;
					}
				}
				grad_trees_push(&g, a, ab);
			}
			float gdy, gdyx;
			grad_trees_sum(&g, &sdy, &sdyx, &gdy, &gdyx);
			l->dgamma[c] += gdyx;
			l->dbeta[c] += gdy;
			if (j->phase == BN_SUMS) {
				j->s1[2 * c] = sdy;
				j->s1[2 * c + 1] = sdyx;
				continue;
			}
		} else {
			sdy = j->s1[2 * c];
			sdyx = j->s1[2 * c + 1];
		}
		const float a = l->gamma[c] * l->invstd[c];
		if (j->training) {
			const float mdy = (float)(sdy / mc), mdyx = (float)(sdyx / mc);
			bn_dx_dense(x, m, a, mdy, mdyx);
		} else {
			memset(x, 0, m * sizeof(float));
		}
		for (int n = 0; n < nb; n++) {
			float *xp = x + (size_t)n * plane;
			for (int oh = 0; oh < ho; oh++) {
				size_t q = (size_t)n * pplane + (size_t)oh * wo;
				float *x0 = xp + (size_t)(2 * oh) * w;
				bio_pool2_grad_scatter(x0, x0 + w, dp + q, po + q, am + q, wo, a);
			}
		}
	}
}

void bio_bn_relu_pool_backward(const struct bio_batchnorm *l, float *xhat_dx,
			       const float *d_pool, const float *pool_out, const uint8_t *argmax,
			       int n_batch, int h, int w, int training)
{
	struct bnrp_job j = {l, xhat_dx, d_pool, pool_out, argmax, n_batch, h, w, training, BN_ALL,
			     NULL, NULL};
	if (!training || !l->dist || l->dist->size == 1) {
		bio_nn_parallel_for(l->pool, (size_t)l->c, bnrp_channels, &j);
		return;
	}
	double *s = malloc(sizeof(double) * 2 * (size_t)l->c);
	if (!s)
		abort();
	j.s1 = s;
	j.phase = BN_SUMS;
	bio_nn_parallel_for(l->pool, (size_t)l->c, bnrp_channels, &j);
	dist_allsum(l->dist, s, 2 * (size_t)l->c);
	j.phase = BN_USE;
	bio_nn_parallel_for(l->pool, (size_t)l->c, bnrp_channels, &j);
	free(s);
}

/* ---- the first block fused: 1-channel 3x3 conv, batch norm, affine, ReLU, 2x2 max pool ---- */

enum { C1_GROUP = 4 }; /* channels per work item: a piece of them is 4 x 4 x 64 x 64 floats (256 KB) */

int bio_c1_block_fits(const struct bio_conv2d *cv, int n_batch)
{
	return conv_is_c1(cv) && cv->dw_part && cv->b && cv->h_in % 2 == 0 && cv->w_in % 2 == 0 &&
	       conv_chunk(cv, n_batch) == (n_batch < BIO_NN_PIECE ? n_batch : BIO_NN_PIECE);
}

enum c1_pass { C1_SUM, C1_SQDEV, C1_POOL, C1_GRAD_SUMS, C1_GRAD };

struct c1_job {
	const struct bio_conv2d *cv;
	const struct bio_batchnorm *bn;
	const float *in, *d_pool, *pool_out;
	float *out;      /* forward: the pool output */
	uint8_t *argmax;
	int n_batch, training, n_groups;
	size_t n_pieces;
	enum c1_pass pass;
	double *la, *lb; /* [c][n_pieces] the pieces' sums */
	float *lf;       /* [c][n_pieces] the pieces' conv-bias gradient sums */
	const float *mdy, *mdyx; /* C1_GRAD: per channel */
};

/* Work item it: piece p's conv output of a group of channels, recomputed into this thread's
 * buffer (layout [channel][sample of the piece][h][w]), normalised when the pass needs it. */
BIO_CLONES static void c1_items(void *ctx, size_t i0, size_t i1, int t)
{
	const struct c1_job *j = ctx;
	const struct bio_conv2d *l = j->cv;
	const struct bio_batchnorm *bn = j->bn;
	const int h = l->h_in, w = l->w_in, ho = h / 2, wo = w / 2, nb = j->n_batch;
	const size_t plane = (size_t)h * w, pplane = (size_t)ho * wo;
	(void)t;
	float *buf = bio_kernels_scratch(SCRATCH_C1, sizeof(float) * C1_GROUP * BIO_NN_PIECE * plane);
	for (size_t it = i0; it < i1; it++) {
		const size_t p = it / (size_t)j->n_groups;
		const int c0 = (int)(it % (size_t)j->n_groups) * C1_GROUP;
		const int gc = l->c_out - c0 < C1_GROUP ? l->c_out - c0 : C1_GROUP;
		const int n0 = (int)p * BIO_NN_PIECE;
		const int cnt = nb - n0 < BIO_NN_PIECE ? nb - n0 : BIO_NN_PIECE;
		const size_t len = (size_t)cnt * plane;
		bio_conv3x3_c1_forward(l->w + (size_t)c0 * 9, l->b + c0, gc, j->in + (size_t)n0 * plane,
				       cnt, h, w, buf, len);
		for (int k = 0; k < gc; k++) {
			const size_t c = (size_t)(c0 + k), leaf = c * j->n_pieces + p;
			float *x = buf + (size_t)k * len;
			if (j->pass == C1_SUM) {
				j->la[leaf] = sum_f(x, len);
				continue;
			}
			if (j->pass == C1_SQDEV) {
				j->lb[leaf] = sum_sqdev_f(x, len, bn->mean[c]);
				continue;
			}
			normalize(x, x, len, bn->mean[c], bn->invstd[c]);
			const size_t q0 = (c * (size_t)nb + (size_t)n0) * pplane;
			if (j->pass == C1_POOL) {
				const float g = bn->gamma[c], b = bn->beta[c];
				for (int n = 0; n < cnt; n++)
					for (int oh = 0; oh < ho; oh++) {
						const float *r0 = x + n * plane + (size_t)(2 * oh) * w;
						size_t q = q0 + n * pplane + (size_t)oh * wo;
						bio_relu_pool2_row(j->out + q, j->argmax + q, r0, r0 + w,
								   wo, g, b);
					}
				continue;
			}
			const float *dp = j->d_pool + q0, *po = j->pool_out + q0;
			const uint8_t *am = j->argmax + q0;
			if (j->pass == C1_GRAD_SUMS) { /* as bnrp_channels forms them */
				double a = 0.0, ab = 0.0;
				for (int n = 0; n < cnt; n++)
					for (int oh = 0; oh < ho; oh++) {
						size_t q = n * pplane + (size_t)oh * wo;
						const float *x0 = x + n * plane + (size_t)(2 * oh) * w;
						float r1, r2;
						bio_pool2_grad_sums(&r1, &r2, dp + q, po + q, am + q, x0,
								    x0 + w, wo);
						a += r1;
						ab += r2;
					}
				j->la[leaf] = a;
				j->lb[leaf] = ab;
				continue;
			}
			const float a = bn->gamma[c] * bn->invstd[c];
			if (j->training)
				bn_dx_dense(x, len, a, j->mdy[c], j->mdyx[c]);
			else
				memset(x, 0, len * sizeof(float));
			for (int n = 0; n < cnt; n++)
				for (int oh = 0; oh < ho; oh++) {
					size_t q = n * pplane + (size_t)oh * wo;
					float *x0 = x + n * plane + (size_t)(2 * oh) * w;
					bio_pool2_grad_scatter(x0, x0 + w, dp + q, po + q, am + q, wo, a);
				}
			j->lf[leaf] = (float)sum_f(x, len); /* conv_db_channels' piece sum */
		}
		if (j->pass == C1_GRAD) /* this chunk's partial weight gradient, these channels */
			bio_conv3x3_c1_dweights(l->dw_part + (p * (size_t)l->c_out + (size_t)c0) * 9, gc,
						j->in + (size_t)n0 * plane, buf, cnt, h, w,
						(size_t)cnt * plane, 0);
	}
}

static void c1_run(struct c1_job *j, enum c1_pass pass)
{
	j->pass = pass;
	bio_nn_parallel_for(j->cv->pool, j->n_pieces * (size_t)j->n_groups, c1_items, j);
}

/* Sets up j and its leaves; 0, or -1 out of memory. */
static int c1_job_init(struct c1_job *j, const struct bio_conv2d *cv,
		       const struct bio_batchnorm *bn, const float *in, int n_batch, int training)
{
	*j = (struct c1_job){.cv = cv, .bn = bn, .in = in, .n_batch = n_batch,
			     .training = training, .n_groups = (cv->c_out + C1_GROUP - 1) / C1_GROUP,
			     .n_pieces = n_pieces(n_batch)};
	size_t n = (size_t)cv->c_out * j->n_pieces;
	j->la = malloc(sizeof(double) * (2 * n + 2 * (size_t)cv->c_out));
	j->lf = malloc(sizeof(float) * (n + 2 * (size_t)cv->c_out));
	if (!j->la || !j->lf) {
		free(j->la);
		free(j->lf);
		return -1;
	}
	j->lb = j->la + n;
	return 0;
}

/* Channel c's leaves added by the tree, in piece order. */
static double c1_tree(const double *leaves, size_t c, size_t n_pieces)
{
	struct bio_nn_tree t;
	bio_nn_tree_init(&t);
	for (size_t p = 0; p < n_pieces; p++)
		bio_nn_tree_push(&t, leaves[c * n_pieces + p]);
	return bio_nn_tree_sum(&t);
}

void bio_c1_block_forward(const struct bio_conv2d *cv, const struct bio_batchnorm *bn,
			  float *pool_out, uint8_t *argmax, const float *in, int n_batch,
			  int training)
{
	/* (a rank with no samples still takes part in the sums over the ranks) */
	struct c1_job j;
	if (c1_job_init(&j, cv, bn, in, n_batch, training))
		abort();
	j.out = pool_out;
	j.argmax = argmax;
	const size_t nc = (size_t)cv->c_out;
	double *s1 = j.la + 2 * nc * j.n_pieces, *s2 = s1 + nc;
	const double mc = (double)dist_count(bn->dist, n_batch, (size_t)bn->spatial);
	if (training) {
		/* bn_forward_channels' sums: the mean first (over the ranks), then the squared
		 * deviations from it */
		c1_run(&j, C1_SUM);
		for (size_t c = 0; c < nc; c++)
			s1[c] = c1_tree(j.la, c, j.n_pieces);
		dist_allsum(bn->dist, s1, nc);
		for (size_t c = 0; c < nc; c++)
			bn->mean[c] = (float)(s1[c] / mc);
		c1_run(&j, C1_SQDEV);
		for (size_t c = 0; c < nc; c++)
			s2[c] = c1_tree(j.lb, c, j.n_pieces);
		dist_allsum(bn->dist, s2, nc);
		for (size_t c = 0; c < nc; c++)
			bn_batch_stats(bn, c, s1[c], s2[c], mc);
		if (bn->num_batches_tracked)
			(*bn->num_batches_tracked)++;
	} else {
		for (size_t c = 0; c < nc; c++)
			bn_running_stats(bn, c);
	}
	c1_run(&j, C1_POOL);
	free(j.la);
	free(j.lf);
}

void bio_c1_block_backward(const struct bio_conv2d *cv, const struct bio_batchnorm *bn,
			   const float *d_pool, const float *pool_out, const uint8_t *argmax,
			   const float *in, int n_batch, int training)
{
	struct c1_job j;
	if (c1_job_init(&j, cv, bn, in, n_batch, training))
		abort();
	j.d_pool = d_pool;
	j.pool_out = pool_out;
	j.argmax = (uint8_t *)argmax; /* (read only in backward) */
	const size_t nc = (size_t)cv->c_out, np = j.n_pieces;
	const int dist = training && bn->dist && bn->dist->size > 1;
	double *s = j.la + 2 * nc * np;
	float *mdy = j.lf + nc * np, *mdyx = mdy + nc;
	/* bnrp_channels' sums (dgamma, dbeta from this rank's, the coefficients over the ranks) */
	c1_run(&j, C1_GRAD_SUMS);
	for (size_t c = 0; c < nc; c++) {
		struct grad_trees g;
		grad_trees_init(&g);
		for (size_t p = 0; p < np; p++)
			grad_trees_push(&g, j.la[c * np + p], j.lb[c * np + p]);
		float gdy, gdyx;
		grad_trees_sum(&g, &s[2 * c], &s[2 * c + 1], &gdy, &gdyx);
		bn->dgamma[c] += gdyx;
		bn->dbeta[c] += gdy;
	}
	if (dist)
		dist_allsum(bn->dist, s, 2 * nc);
	const double mc = (double)dist_count(bn->dist, n_batch, (size_t)bn->spatial);
	for (size_t c = 0; c < nc; c++) {
		mdy[c] = (float)(s[2 * c] / mc);
		mdyx[c] = (float)(s[2 * c + 1] / mc);
	}
	j.mdy = mdy;
	j.mdyx = mdyx;
	/* the conv output's gradient per piece: its bias sums and each chunk's weight partial
	 * (conv_db_channels, conv_backward_chunks), then the partials' tree (dw_sum_range) */
	c1_run(&j, C1_GRAD);
	for (size_t c = 0; c < nc && np > 0; c++) { /* (no samples: the conv's gradients as they were) */
		struct tree_f tf = {{0}, 0, 0};
		for (size_t p = 0; p < np; p++)
			tree_f_push(&tf, j.lf[c * np + p]);
		cv->db[c] += tree_f_sum(&tf);
	}
	struct dw_sum_job sj = {cv->dw, cv->dw_part, nc * 9, np};
	if (np > 0)
		bio_nn_parallel_for(cv->pool, sj.n, dw_sum_range, &sj);
	free(j.la);
	free(j.lf);
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

/* (the row pairs on the chosen kernel path: bio_relu_pool2_row) */
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
				const float *r0 = x + (size_t)(2 * oh) * w;
				bio_relu_pool2_row(o + (size_t)oh * wo, a + (size_t)oh * wo, r0, r0 + w,
						   wo, g, b);
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

/* Linear layers are split into fixed blocks of output rows (forward, weight gradient) and of input
 * columns (input gradient), the same for every thread count, spread over the pool. */
#define LIN_OUT_BLOCK 64
#define LIN_IN_BLOCK 1024

struct lin_job {
	const struct bio_linear *l;
	float *out, *d_in;
	const float *in, *d_out;
	int n_batch;
};

static void lin_forward_blocks(void *ctx, size_t b0, size_t b1, int t)
{
	const struct lin_job *j = ctx;
	const struct bio_linear *l = j->l;
	(void)t;
	for (size_t b = b0; b < b1; b++) {
		int o0 = (int)b * LIN_OUT_BLOCK;
		int no = l->n_out - o0 < LIN_OUT_BLOCK ? l->n_out - o0 : LIN_OUT_BLOCK;
		bio_nn_sgemm(0, 1, j->n_batch, no, l->n_in, 1.0f, j->in, l->n_in,
			     l->w + (size_t)o0 * l->n_in, l->n_in, 0.0f, j->out + o0, l->n_out);
		if (l->b)
			for (int n = 0; n < j->n_batch; n++)
				for (int o = o0; o < o0 + no; o++)
					j->out[(size_t)n * l->n_out + o] += l->b[o];
	}
}

void bio_linear_forward(const struct bio_linear *l, float *out, const float *in, int n_batch)
{
	struct lin_job j = {l, out, NULL, in, NULL, n_batch};
	bio_nn_parallel_for(l->pool, (size_t)(l->n_out + LIN_OUT_BLOCK - 1) / LIN_OUT_BLOCK,
			    lin_forward_blocks, &j);
}

/* The weight gradient in blocks of LIN_DW_COLS input columns, every row of each: the pieces'
 * tree per element in registers (bio_lin_dw_tree), so a block of the input stays in L1 while
 * all rows run over it; then the bias gradient, per piece then the tree, by rows. */
#define LIN_DW_COLS 128

static void lin_dw_blocks(void *ctx, size_t b0, size_t b1, int t)
{
	const struct lin_job *j = ctx;
	const struct bio_linear *l = j->l;
	(void)t;
	/* the block's columns of every sample copied together first: the input's rows lie n_in
	 * floats apart, often a large power of two, and would share a few L1 sets */
	const size_t ld = LIN_DW_COLS + 16;
	float *blk = bio_kernels_scratch(SCRATCH_TREE, sizeof(float) * ld * (size_t)j->n_batch);
	for (size_t b = b0; b < b1; b++) {
		int c0 = (int)b * LIN_DW_COLS;
		int nc = l->n_in - c0 < LIN_DW_COLS ? l->n_in - c0 : LIN_DW_COLS;
		for (int s = 0; s < j->n_batch; s++)
			memcpy(blk + (size_t)s * ld, j->in + (size_t)s * l->n_in + c0,
			       sizeof(float) * (size_t)nc);
		if (!l->fused) {
			bio_lin_dw_tree(l->dw + c0, (size_t)l->n_in, l->n_out, nc, j->d_out,
					(size_t)l->n_out, blk, ld, j->n_batch);
			continue;
		}
		/* the block's gradient from zero in a tile (the same additions as into a zeroed
		 * dw), then each row's part of it into Adam */
		float *tile = bio_kernels_scratch(SCRATCH_FUSED,
						  sizeof(float) * LIN_DW_COLS * (size_t)l->n_out);
		memset(tile, 0, sizeof(float) * LIN_DW_COLS * (size_t)l->n_out);
		bio_lin_dw_tree(tile, LIN_DW_COLS, l->n_out, nc, j->d_out, (size_t)l->n_out, blk, ld,
				j->n_batch);
		const struct bio_lin_fused *f = l->fused;
		for (int r = 0; r < l->n_out; r++) {
			size_t o = (size_t)r * l->n_in + (size_t)c0;
			bio_adam(l->w + o, tile + (size_t)r * LIN_DW_COLS, f->m + o, f->v + o,
				 (size_t)nc, f->c);
		}
	}
}

static void lin_db(const struct lin_job *j)
{
	const struct bio_linear *l = j->l;
	const int nb = j->n_batch;
	for (int o = 0; o < l->n_out; o++) {
		struct tree_f tf = {{0}, 0, 0};
		for (int s = 0; s < nb; s += BIO_NN_PIECE) {
			int end = nb - s < BIO_NN_PIECE ? nb : s + BIO_NN_PIECE;
			double sum = 0.0;
			for (int n = s; n < end; n++)
				sum += j->d_out[(size_t)n * l->n_out + o];
			tree_f_push(&tf, (float)sum);
		}
		l->db[o] += tree_f_sum(&tf);
	}
}

static void lin_dx_blocks(void *ctx, size_t b0, size_t b1, int t)
{
	const struct lin_job *j = ctx;
	const struct bio_linear *l = j->l;
	(void)t;
	for (size_t b = b0; b < b1; b++) {
		int i0 = (int)b * LIN_IN_BLOCK;
		int ni = l->n_in - i0 < LIN_IN_BLOCK ? l->n_in - i0 : LIN_IN_BLOCK;
		bio_nn_sgemm(0, 0, j->n_batch, ni, l->n_out, 1.0f, j->d_out, l->n_out, l->w + i0,
			     l->n_in, 0.0f, j->d_in + i0, l->n_in);
	}
}

void bio_linear_backward(const struct bio_linear *l, float *d_in, const float *d_out,
			 const float *in, int n_batch)
{
	struct lin_job j = {l, NULL, d_in, in, d_out, n_batch};
	/* (a fused step changes w: the input gradient first) */
	if (d_in && l->fused)
		bio_nn_parallel_for(l->pool, (size_t)(l->n_in + LIN_IN_BLOCK - 1) / LIN_IN_BLOCK,
				    lin_dx_blocks, &j);
	bio_nn_parallel_for(l->pool, (size_t)(l->n_in + LIN_DW_COLS - 1) / LIN_DW_COLS,
			    lin_dw_blocks, &j);
	if (l->db)
		lin_db(&j);
	if (d_in && !l->fused)
		bio_nn_parallel_for(l->pool, (size_t)(l->n_in + LIN_IN_BLOCK - 1) / LIN_IN_BLOCK,
				    lin_dx_blocks, &j);
}

/* ---- softmax cross-entropy ---- */

double bio_softmax_ce_sum(float *d_logits, int *n_correct, const float *logits,
			  const int64_t *labels, int n_batch, int n_classes, double d_scale)
{
	struct bio_nn_tree total;
	bio_nn_tree_init(&total);
	int correct = 0;
	for (int s = 0; s < n_batch; s += BIO_NN_PIECE) {
		int end = n_batch - s < BIO_NN_PIECE ? n_batch : s + BIO_NN_PIECE;
		double piece = 0.0;
		for (int n = s; n < end; n++) {
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
			double sum = 0.0;
			for (int c = 0; c < n_classes; c++)
				sum += exp((double)z[c] - mx);
			double lse = mx + log(sum);
			piece += lse - z[y];
			if (d_logits) {
				float *d = d_logits + (size_t)n * n_classes;
				for (int c = 0; c < n_classes; c++) {
					double p = exp((double)z[c] - lse);
					d[c] = (float)((p - (c == y ? 1.0 : 0.0)) * d_scale);
				}
			}
		}
		bio_nn_tree_push(&total, piece);
	}
	if (n_correct)
		*n_correct = correct;
	return bio_nn_tree_sum(&total);
}

double bio_softmax_ce(float *d_logits, int *n_correct, const float *logits, const int64_t *labels,
		      int n_batch, int n_classes, float scale)
{
	if (n_batch <= 0) {
		if (n_correct)
			*n_correct = 0;
		return 0.0;
	}
	return bio_softmax_ce_sum(d_logits, n_correct, logits, labels, n_batch, n_classes,
				  (double)scale / n_batch) / n_batch;
}

/* ---- additive-margin softmax over a cosine classifier ---- */

/* The index of name in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

static const char *const loss_names[] = {"softmax", "cosface", "arcface"};

int bio_loss_parse(enum bio_loss_kind *out, const char *name)
{
	int i = name_index(loss_names, 3, name);
	if (i >= 0)
		*out = (enum bio_loss_kind)i;
	return i >= 0 ? 0 : -1;
}

const char *bio_loss_name(enum bio_loss_kind kind)
{
	return kind == BIO_LOSS_COSFACE ? "cosface" : kind == BIO_LOSS_ARCFACE ? "arcface" : "softmax";
}

static double inv_norm(const float *x, int n);

void bio_cosine_forward(const struct bio_cosine *l, float *out, const float *in, int n_batch)
{
	const int ni = l->n_in, no = l->n_out;
	for (int c = 0; c < no; c++) {
		const float *w = l->w + (size_t)c * ni;
		float *v = l->v + (size_t)c * ni;
		double inv = inv_norm(w, ni);
		l->v_inv[c] = (float)inv;
		for (int i = 0; i < ni; i++)
			v[i] = (float)(w[i] * inv);
	}
	for (int n = 0; n < n_batch; n++) {
		const float *x = in + (size_t)n * ni;
		float *u = l->u + (size_t)n * ni;
		double inv = inv_norm(x, ni);
		l->u_inv[n] = (float)inv;
		for (int i = 0; i < ni; i++)
			u[i] = (float)(x[i] * inv);
		for (int c = 0; c < no; c++) {
			const float *v = l->v + (size_t)c * ni;
			double z = 0.0;
			for (int i = 0; i < ni; i++)
				z += (double)u[i] * v[i];
			out[(size_t)n * no + c] = (float)(l->scale * z);
		}
	}
}

/* With g = d(cos) = s d_out: d_in_n = (du_n - (du_n . u_n) u_n) / |in_n|, du_n = sum_c g_nc v_c;
 * dw_c = (dv_c - (dv_c . v_c) v_c) / |w_c|, dv_c = sum_n g_nc u_n, formed (and projected) per
 * piece, the pieces added by the tree. */
void bio_cosine_backward(const struct bio_cosine *l, float *d_in, const float *d_out,
			 int n_batch)
{
	const int ni = l->n_in, no = l->n_out;
	const double s = l->scale;
	for (int n = 0; n < n_batch && d_in; n++) {
		const float *g = d_out + (size_t)n * no, *u = l->u + (size_t)n * ni;
		float *dx = d_in + (size_t)n * ni;
		double proj = 0.0;
		for (int i = 0; i < ni; i++) {
			double du = 0.0;
			for (int c = 0; c < no; c++)
				du += s * g[c] * l->v[(size_t)c * ni + i];
			dx[i] = (float)du;
			proj += du * u[i];
		}
		double inv = l->u_inv[n];
		if (!(inv < 1e12f)) /* below the clamp |in| is a constant: no projection */
			proj = 0.0;
		for (int i = 0; i < ni; i++)
			dx[i] = (float)(inv * (dx[i] - proj * u[i]));
	}
	const size_t width = (size_t)ni * no;
	int slots = 1;
	for (size_t np = n_pieces(n_batch); np; np >>= 1)
		slots++;
	float *stack = bio_kernels_scratch(SCRATCH_SUMS, sizeof(float) * width * (size_t)slots);
	int top = 0;
	uint64_t count = 0;
	for (int s0 = 0; s0 < n_batch; s0 += BIO_NN_PIECE, count++) {
		int end = n_batch - s0 < BIO_NN_PIECE ? n_batch : s0 + BIO_NN_PIECE;
		float *leaf = stack + (size_t)top * width;
		for (int c = 0; c < no; c++) {
			float *lc = leaf + (size_t)c * ni;
			const float *v = l->v + (size_t)c * ni;
			double proj = 0.0;
			for (int i = 0; i < ni; i++) {
				double dv = 0.0;
				for (int n = s0; n < end; n++)
					dv += s * d_out[(size_t)n * no + c] * l->u[(size_t)n * ni + i];
				lc[i] = (float)dv;
				proj += dv * v[i];
			}
			double inv = l->v_inv[c];
			if (!(inv < 1e12f))
				proj = 0.0;
			for (int i = 0; i < ni; i++)
				lc[i] = (float)(inv * (lc[i] - proj * v[i]));
		}
		for (uint64_t k = count; k & 1; k >>= 1, top--)
			add_into(stack + (size_t)(top - 1) * width, stack + (size_t)top * width, width);
		top++;
	}
	for (int i = top - 2; i >= 0; i--)
		add_into(stack + (size_t)i * width, stack + (size_t)(i + 1) * width, width);
	if (top > 0)
		add_into(l->dw, stack, width);
}

double bio_margin_ce_sum(float *d_logits, int *n_correct, const float *logits,
			 const int64_t *labels, int n_batch, int n_classes,
			 enum bio_loss_kind kind, float margin, float scale, double d_scale)
{
	if (kind == BIO_LOSS_SOFTMAX)
		return bio_softmax_ce_sum(d_logits, n_correct, logits, labels, n_batch, n_classes,
					  d_scale);
	BIO_ASSERT(scale > 0.0f && margin >= 0.0f);
	const double s = scale, m = margin;
	const double cos_m = cos(m), sin_m = sin(m);
	const double pi = 3.14159265358979323846;
	const double th = cos(pi - m), mm = sin(pi - m) * m;
	struct bio_nn_tree total;
	bio_nn_tree_init(&total);
	int correct = 0;
	double z[1024], *zp = z;
	if (n_classes > 1024)
		zp = malloc(sizeof(double) * (size_t)n_classes);
	BIO_ASSERT(zp);
	for (int p = 0; p < n_batch; p += BIO_NN_PIECE) {
		int end = n_batch - p < BIO_NN_PIECE ? n_batch : p + BIO_NN_PIECE;
		double piece = 0.0;
		for (int n = p; n < end; n++) {
			const float *zr = logits + (size_t)n * n_classes;
			int64_t y = labels[n];
			BIO_ASSERT(y >= 0 && y < n_classes);
			int am = 0;
			for (int c = 1; c < n_classes; c++)
				if (zr[c] > zr[am])
					am = c;
			if (am == y)
				correct++;
			/* the target's margin logit and its derivative w.r.t. the plain logit */
			double cy = zr[y] / s, phi, dphi;
			if (kind == BIO_LOSS_COSFACE) {
				phi = cy - m;
				dphi = 1.0;
			} else if (cy > th) {
				double sn = sqrt(fmax(1.0 - cy * cy, 0.0));
				phi = cy * cos_m - sn * sin_m;
				dphi = cos_m + (sn > 1e-12 ? sin_m * cy / sn : 0.0);
			} else {
				phi = cy - mm;
				dphi = 1.0;
			}
			double mx = -INFINITY, sum = 0.0;
			for (int c = 0; c < n_classes; c++) {
				zp[c] = c == y ? s * phi : (double)zr[c];
				if (zp[c] > mx)
					mx = zp[c];
			}
			for (int c = 0; c < n_classes; c++)
				sum += exp(zp[c] - mx);
			double lse = mx + log(sum);
			piece += lse - zp[y];
			if (d_logits) {
				float *d = d_logits + (size_t)n * n_classes;
				for (int c = 0; c < n_classes; c++) {
					double g = exp(zp[c] - lse) - (c == y ? 1.0 : 0.0);
					d[c] = (float)(g * (c == y ? dphi : 1.0) * d_scale);
				}
			}
		}
		bio_nn_tree_push(&total, piece);
	}
	if (zp != z)
		free(zp);
	if (n_correct)
		*n_correct = correct;
	return bio_nn_tree_sum(&total);
}

/* ---- fusion ---- */

int bio_fusion_out_dim(const struct bio_fusion *f)
{
	return f->kind == BIO_FUSION_CONCAT ? f->n_mod * f->dim : f->dim;
}

int bio_fusion_parse(enum bio_fusion_kind *out, const char *name)
{
	static const char *const names[] = {"concat", "attention", "weighted"};
	int i = name_index(names, 3, name);
	if (i >= 0)
		*out = (enum bio_fusion_kind)i;
	return i >= 0 ? 0 : -1;
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

/* 1 / max(|x|, 1e-12) of x[0..n), in double (F.normalize's clamp). */
static double inv_norm(const float *x, int n)
{
	double ss = 0.0;
	for (int i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	double r = sqrt(ss);
	return 1.0 / (r > 1e-12 ? r : 1e-12);
}

/* The attention scores' pieces for sample n: inv[m] = 1/|e_m|, cosv[m] = u_m . w/|w|. */
static void attention_cos(double *inv, double *cosv, const struct bio_fusion *f,
			  const float *const *emb, size_t n, double w_inv)
{
	const int d = f->dim;
	for (int m = 0; m < f->n_mod; m++) {
		const float *e = emb[m] + n * d;
		double z = 0.0;
		for (int i = 0; i < d; i++)
			z += (double)f->w[i] * e[i];
		inv[m] = inv_norm(e, d);
		cosv[m] = z * inv[m] * w_inv;
	}
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
		for (int n = 0; n < n_batch; n++) {
			double inv[16];
			for (int m = 0; m < nm; m++)
				inv[m] = inv_norm(emb[m] + (size_t)n * d, d);
			float *o = out + (size_t)n * d;
			for (int i = 0; i < d; i++) {
				float v = 0.0f;
				for (int m = 0; m < nm; m++)
					v += f->alpha[m] * (float)(emb[m][(size_t)n * d + i] * inv[m]);
				o[i] = v;
			}
		}
		return;
	}
	/* attention (bio/nn.h): bounded cosine scores over the normalised embeddings */
	BIO_ASSERT(f->temperature > 0.0f);
	const double w_inv = inv_norm(f->w, d), t = f->temperature;
	for (int n = 0; n < n_batch; n++) {
		double inv[16], cosv[16];
		float *a = f->alpha + (size_t)n * nm;
		attention_cos(inv, cosv, f, emb, (size_t)n, w_inv);
		for (int m = 0; m < nm; m++)
			s[m] = (cosv[m] + f->b[0]) / t;
		softmax_small(a, s, nm);
		float *o = out + (size_t)n * d;
		for (int i = 0; i < d; i++) {
			float v = 0.0f;
			for (int m = 0; m < nm; m++)
				v += a[m] * (float)(emb[m][(size_t)n * d + i] * inv[m]);
			o[i] = v;
		}
	}
}

/* Attention backward over samples [s0, s1) of one piece: d_emb written; the piece's dw into
 * leaf[0..dim) (added in sample order), its db returned. With u = e/|e|, c_m = ds_m / T:
 * du_m = alpha_m g + c_m w/|w|, de_m = (du_m - (du_m . u_m) u_m) / |e_m| (du_m . u_m = alpha_m
 * (g . u_m) + c_m cos_m), dw = c_m (u_m - cos_m w/|w|) / |w|, db = c_m. */
static double attention_backward_piece(float *leaf, const struct bio_fusion *f,
				       float *const *d_emb, const float *d_out,
				       const float *const *emb, int s0, int s1, double w_inv)
{
	const int d = f->dim, nm = f->n_mod;
	const double t = f->temperature;
	double db = 0.0;
	for (int n = s0; n < s1; n++) {
		const float *a = f->alpha + (size_t)n * nm;
		const float *g = d_out + (size_t)n * d;
		double inv[16], cosv[16], da[16], adot = 0.0;
		attention_cos(inv, cosv, f, emb, (size_t)n, w_inv);
		for (int m = 0; m < nm; m++) {
			const float *e = emb[m] + (size_t)n * d;
			double z = 0.0;
			for (int i = 0; i < d; i++)
				z += (double)g[i] * (float)(e[i] * inv[m]);
			da[m] = z;
			adot += a[m] * z;
		}
		for (int m = 0; m < nm; m++) {
			const float *e = emb[m] + (size_t)n * d;
			float *de = d_emb[m] + (size_t)n * d;
			double c = a[m] * (da[m] - adot) / t;
			/* below the clamp |e| is a constant: no projection */
			int unit = inv[m] < 1e12;
			double proj = unit ? a[m] * da[m] + c * cosv[m] : 0.0;
			for (int i = 0; i < d; i++) {
				double u = (float)(e[i] * inv[m]), wh = f->w[i] * w_inv;
				de[i] = (float)(inv[m] * (a[m] * g[i] + c * wh - proj * u));
				leaf[i] += (float)(c * w_inv * (u - (w_inv < 1e12 ? cosv[m] * wh : 0.0)));
			}
			db += c;
		}
	}
	return db;
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
	/* the parameters' gradients per piece of samples into a leaf [dim | n_mod | 1] (attention
	 * dw | weighted dw | attention db), leaves added by the tree */
	const size_t width = (size_t)d + nm + 1;
	int slots = 1;
	for (size_t np = n_pieces(n_batch); np; np >>= 1)
		slots++;
	float *stack = bio_kernels_scratch(SCRATCH_SUMS, sizeof(float) * width * (size_t)slots);
	const double w_inv = f->kind == BIO_FUSION_ATTENTION ? inv_norm(f->w, d) : 0.0;
	int top = 0;
	uint64_t count = 0;
	for (int s = 0; s < n_batch; s += BIO_NN_PIECE, count++) {
		int end = n_batch - s < BIO_NN_PIECE ? n_batch : s + BIO_NN_PIECE;
		float *leaf = stack + (size_t)top * width;
		double dsum[16] = {0};
		double dwv = 0.0;
		memset(leaf, 0, sizeof(float) * width);
		if (f->kind == BIO_FUSION_ATTENTION)
			dwv = attention_backward_piece(leaf, f, d_emb, d_out, emb, s, end, w_inv);
		for (int n = s; n < end && f->kind == BIO_FUSION_WEIGHTED; n++) {
			/* u = e/|e|: da_m = g . u_m, de_m = alpha_m (g - (g . u_m) u_m) / |e_m| */
			const float *a = f->alpha;
			const float *g = d_out + (size_t)n * d;
			double da[16], ds[16], adot = 0.0;
			for (int m = 0; m < nm; m++) {
				const float *e = emb[m] + (size_t)n * d;
				float *de = d_emb[m] + (size_t)n * d;
				double inv = inv_norm(e, d), z = 0.0;
				for (int i = 0; i < d; i++)
					z += (double)g[i] * (float)(e[i] * inv);
				/* below the clamp |e| is a constant: no projection */
				double proj = inv < 1e12 ? z : 0.0;
				for (int i = 0; i < d; i++)
					de[i] = (float)(inv * a[m] * (g[i] - proj * (float)(e[i] * inv)));
				da[m] = z;
				adot += a[m] * z;
			}
			for (int m = 0; m < nm; m++)
				ds[m] = a[m] * (da[m] - adot);
			for (int m = 0; m < nm; m++)
				dsum[m] += ds[m];
		}
		for (int m = 0; m < nm; m++)
			leaf[d + m] = (float)dsum[m];
		leaf[d + nm] = (float)dwv;
		for (uint64_t k = count; k & 1; k >>= 1, top--)
			add_into(stack + (size_t)(top - 1) * width, stack + (size_t)top * width, width);
		top++;
	}
	for (int i = top - 2; i >= 0; i--)
		add_into(stack + (size_t)i * width, stack + (size_t)(i + 1) * width, width);
	if (top == 0)
		return;
	if (f->kind == BIO_FUSION_WEIGHTED) {
		for (int m = 0; m < nm; m++)
			f->dw[m] += stack[d + m];
	} else {
		for (int i = 0; i < d; i++)
			f->dw[i] += stack[i];
		f->db[0] += stack[d + nm];
	}
}
