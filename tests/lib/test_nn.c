/* Unit tests for nn.c and model.c: finite-difference gradient checks for every layer, the loss,
 * the fusion modules and the whole model (central differences on a scalar L = sum(out * R) for a
 * fixed random R); fused kernels against their unfused composition; thread-count independence. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bio/error.h"
#include "bio/model.h"
#include "bio/nn.h"
#include "bio/rng.h"
#include "test.h"

static struct bio_rng rng;

static float *rnd(size_t n, float lo, float hi)
{
	float *p = malloc(n * sizeof(float) + 4);
	for (size_t i = 0; i < n; i++)
		p[i] = (float)bio_rng_range(&rng, lo, hi);
	return p;
}

static float *zeros(size_t n)
{
	return calloc(n + 1, sizeof(float));
}

static double dot(const float *a, const float *b, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* Compares analytic gradient g of loss w.r.t. x[0..n) with central differences at up to
 * max_checks random indices; returns the number of mismatches. */
static int fd_check(const char *what, float *x, const float *g, size_t n, double (*loss)(void *),
		    void *ctx, float eps, double atol, double rtol, int max_checks)
{
	int bad = 0;
	for (int t = 0; t < max_checks && (size_t)t < n * 4; t++) {
		size_t i = n <= (size_t)max_checks ? (size_t)t : bio_rng_below(&rng, n);
		if (n <= (size_t)max_checks && (size_t)t >= n)
			break;
		float save = x[i];
		x[i] = save + eps;
		double lp = loss(ctx);
		x[i] = save - eps;
		double lm = loss(ctx);
		x[i] = save;
		double num = (lp - lm) / (2.0 * (double)eps);
		double a = g[i];
		double m = fabs(a) > fabs(num) ? fabs(a) : fabs(num);
		if (!(fabs(a - num) <= atol + rtol * m)) {
			/* a ReLU or max-pool switch inside [x-eps, x+eps] spoils the difference:
			 * retry once with a 4x smaller step, which a real error survives */
			float e2 = eps / 4;
			x[i] = save + e2;
			lp = loss(ctx);
			x[i] = save - e2;
			lm = loss(ctx);
			x[i] = save;
			num = (lp - lm) / (2.0 * (double)e2);
			m = fabs(a) > fabs(num) ? fabs(a) : fabs(num);
		}
		if (!(fabs(a - num) <= atol + rtol * m)) {
			if (bad < 3)
				fprintf(stderr, "  %s[%zu]: analytic %.6g numeric %.6g\n", what, i, a, num);
			bad++;
		}
	}
	return bad;
}

/* ---- conv2d ---- */

struct conv_ctx {
	struct bio_conv2d l;
	float *in, *out, *r;
	int n;
};

static double conv_loss(void *p)
{
	struct conv_ctx *c = p;
	bio_conv2d_forward(&c->l, c->out, c->in, c->n);
	return dot(c->out, c->r, (size_t)c->l.c_out * c->n * c->l.h_out * c->l.w_out);
}

static void conv_case(int cin, int cout, int k, int s, int p, int h, int w, int n, int chunked)
{
	struct conv_ctx c = {.n = n};
	CHECK(bio_conv2d_setup(&c.l, cin, cout, k, s, p, h, w) == 0);
	size_t nw = (size_t)cout * cin * k * k, nin = (size_t)cin * n * h * w;
	size_t nout = (size_t)cout * n * c.l.h_out * c.l.w_out;
	c.l.w = rnd(nw, -0.5f, 0.5f);
	c.l.b = rnd(cout, -0.5f, 0.5f);
	c.l.dw = zeros(nw);
	c.l.db = zeros(cout);
	c.l.col_floats = bio_conv2d_col_floats(&c.l) * (chunked ? 1 : n);
	c.l.col = zeros(c.l.col_floats);
	c.in = rnd(nin, -1, 1);
	c.out = zeros(nout);
	c.r = rnd(nout, -1, 1);
	float *din = zeros(nin);
	conv_loss(&c);
	bio_conv2d_backward(&c.l, din, c.r, c.in, n);
	int bad = fd_check("conv.w", c.l.w, c.l.dw, nw, conv_loss, &c, 1e-2f, 1e-3, 1e-3, 40) +
		  fd_check("conv.b", c.l.b, c.l.db, cout, conv_loss, &c, 1e-2f, 1e-3, 1e-3, 40) +
		  fd_check("conv.in", c.in, din, nin, conv_loss, &c, 1e-2f, 1e-3, 1e-3, 40);
	if (bad)
		fprintf(stderr, "conv cin=%d cout=%d k=%d s=%d p=%d %dx%d n=%d chunked=%d\n", cin, cout,
			k, s, p, h, w, n, chunked);
	CHECK_EQ(bad, 0);
	/* d_in = NULL computes the same weight gradient */
	float *dw2 = zeros(nw);
	float *save = c.l.dw;
	c.l.dw = dw2;
	memset(c.l.db, 0, sizeof(float) * cout);
	bio_conv2d_backward(&c.l, NULL, c.r, c.in, n);
	CHECK(memcmp(dw2, save, nw * sizeof(float)) == 0);
	free(save);
	free(c.l.w);
	free(c.l.b);
	free(c.l.dw);
	free(c.l.db);
	free(c.l.col);
	free(c.in);
	free(c.out);
	free(c.r);
	free(din);
}

TEST(conv2d_gradients)
{
	conv_case(2, 3, 3, 1, 1, 6, 5, 3, 0);
	conv_case(2, 3, 3, 1, 1, 6, 5, 3, 1);
	conv_case(3, 2, 5, 2, 2, 9, 7, 2, 1);
	conv_case(3, 4, 1, 1, 0, 4, 4, 3, 0);
	conv_case(2, 2, 3, 2, 0, 7, 8, 2, 0);
	conv_case(1, 4, 3, 1, 1, 5, 5, 4, 1);
	conv_case(1, 3, 3, 1, 1, 4, 37, 3, 1); /* the direct first-layer kernel: vectors + a tail */
}

/* The double-precision reference: direct convolution of one sample compared with forward. */
TEST(conv2d_reference)
{
	struct bio_conv2d l;
	int cin = 3, cout = 2, k = 3, s = 2, p = 1, h = 7, w = 6, n = 2;
	bio_conv2d_setup(&l, cin, cout, k, s, p, h, w);
	l.w = rnd((size_t)cout * cin * k * k, -1, 1);
	l.b = rnd(cout, -1, 1);
	l.col_floats = bio_conv2d_col_floats(&l);
	l.col = zeros(l.col_floats);
	float *in = rnd((size_t)cin * n * h * w, -1, 1);
	float *out = zeros((size_t)cout * n * l.h_out * l.w_out);
	bio_conv2d_forward(&l, out, in, n);
	double maxerr = 0.0;
	for (int co = 0; co < cout; co++)
		for (int b = 0; b < n; b++)
			for (int oh = 0; oh < l.h_out; oh++)
				for (int ow = 0; ow < l.w_out; ow++) {
					double acc = l.b[co];
					for (int ci = 0; ci < cin; ci++)
						for (int kh = 0; kh < k; kh++)
							for (int kw = 0; kw < k; kw++) {
								int ih = oh * s - p + kh, iw = ow * s - p + kw;
								if (ih < 0 || ih >= h || iw < 0 || iw >= w)
									continue;
								acc += (double)l.w[((co * cin + ci) * k + kh) * k + kw] *
								       in[(((size_t)ci * n + b) * h + ih) * w + iw];
							}
					double got = out[(((size_t)co * n + b) * l.h_out + oh) * l.w_out + ow];
					if (fabs(got - acc) > maxerr)
						maxerr = fabs(got - acc);
				}
	CHECK(maxerr < 1e-5);
	free(l.w);
	free(l.b);
	free(l.col);
	free(in);
	free(out);
}

/* ---- batch norm ---- */

struct bn_ctx {
	struct bio_batchnorm l;
	float *in, *out, *xhat, *r;
	int n, training;
};

static double bn_loss(void *p)
{
	struct bn_ctx *c = p;
	bio_batchnorm_forward(&c->l, c->out, c->xhat, c->in, c->n, c->training);
	return dot(c->out, c->r, (size_t)c->l.c * c->n * c->l.spatial);
}

static void bn_case(int training)
{
	struct bn_ctx c = {.n = 3, .training = training};
	int ch = 3, sp = 5;
	size_t tot = (size_t)ch * c.n * sp;
	int64_t nbt = 0;
	c.l = (struct bio_batchnorm){ch, sp, 1e-5f, 0.1f, rnd(ch, 0.5f, 1.5f), rnd(ch, -1, 1),
				     zeros(ch), zeros(ch), rnd(ch, -0.2f, 0.2f), rnd(ch, 0.5f, 2),
				     &nbt, zeros(ch), zeros(ch), NULL, NULL};
	c.in = rnd(tot, -2, 2);
	c.out = zeros(tot);
	c.xhat = zeros(tot);
	c.r = rnd(tot, -1, 1);
	float *din = zeros(tot);
	float rm0 = c.l.running_mean[0], rv0 = c.l.running_var[0];
	bn_loss(&c);
	if (training) {
		/* running statistics: momentum 0.1, unbiased variance */
		double mu = 0, v = 0;
		for (size_t i = 0; i < (size_t)c.n * sp; i++)
			mu += c.in[i];
		mu /= c.n * sp;
		for (size_t i = 0; i < (size_t)c.n * sp; i++)
			v += (c.in[i] - mu) * (c.in[i] - mu);
		CHECK_NEAR(c.l.running_mean[0], 0.9 * rm0 + 0.1 * mu, 1e-6);
		CHECK_NEAR(c.l.running_var[0], 0.9 * rv0 + 0.1 * v / (c.n * sp - 1), 1e-5);
		CHECK_EQ(nbt, 1);
	}
	bio_batchnorm_backward(&c.l, din, c.r, c.xhat, c.n, training);
	/* forward in training mode moves the running stats; the loss does not depend on them */
	int bad = fd_check("bn.in", c.in, din, tot, bn_loss, &c, 1e-2f, 2e-3, 2e-3, 45) +
		  fd_check("bn.gamma", c.l.gamma, c.l.dgamma, ch, bn_loss, &c, 1e-2f, 2e-3, 2e-3, 9) +
		  fd_check("bn.beta", c.l.beta, c.l.dbeta, ch, bn_loss, &c, 1e-2f, 2e-3, 2e-3, 9);
	CHECK_EQ(bad, 0);
	/* in-place backward gives the same */
	float *d2 = zeros(tot);
	memcpy(d2, c.r, tot * sizeof(float));
	bio_batchnorm_forward(&c.l, c.out, c.xhat, c.in, c.n, training);
	bio_batchnorm_backward(&c.l, d2, d2, c.xhat, c.n, training);
	bio_batchnorm_backward(&c.l, din, c.r, c.xhat, c.n, training);
	CHECK(memcmp(d2, din, tot * sizeof(float)) == 0);
	free(d2);
	free(c.l.gamma);
	free(c.l.beta);
	free(c.l.dgamma);
	free(c.l.dbeta);
	free(c.l.running_mean);
	free(c.l.running_var);
	free(c.l.mean);
	free(c.l.invstd);
	free(c.in);
	free(c.out);
	free(c.xhat);
	free(c.r);
	free(din);
}

TEST(batchnorm_gradients)
{
	bn_case(1);
	bn_case(0);
}

/* ---- elementwise, pool, flatten ---- */

struct ew_ctx {
	int kind; /* 0 relu, 1 dropout, 2 pool, 3 flatten */
	float *in, *out, *mask, *r;
	uint8_t *am;
	size_t n_in, n_out;
};

static double ew_loss(void *p)
{
	struct ew_ctx *c = p;
	if (c->kind == 0)
		bio_relu_forward(c->out, c->in, c->n_in);
	else if (c->kind == 1)
		bio_dropout_forward(c->out, c->in, c->mask, c->n_in);
	else if (c->kind == 2)
		bio_maxpool2_forward(c->out, c->am, c->in, 6, 5, 6);
	else
		bio_flatten_forward(c->out, c->in, 3, 2, 4);
	return dot(c->out, c->r, c->n_out);
}

TEST(elementwise_gradients)
{
	for (int kind = 0; kind < 4; kind++) {
		struct ew_ctx c = {.kind = kind};
		c.n_in = kind == 2 ? 6 * 5 * 6 : 24;
		c.n_out = kind == 2 ? 6 * 2 * 3 : 24;
		c.in = rnd(c.n_in, -1, 1);
		/* keep values away from the ReLU kink and pool ties */
		for (size_t i = 0; i < c.n_in; i++)
			c.in[i] = (c.in[i] < 0 ? -0.1f : 0.1f) + c.in[i] + 0.003f * (float)i;
		c.out = zeros(c.n_in);
		c.r = rnd(c.n_out, -1, 1);
		c.mask = zeros(c.n_in);
		float scale = bio_dropout_scale(0.3f);
		for (size_t i = 0; i < c.n_in; i++)
			c.mask[i] = i % 3 ? scale : 0.0f;
		c.am = calloc(c.n_out, 1);
		float *din = zeros(c.n_in);
		ew_loss(&c);
		if (kind == 0)
			bio_relu_backward(din, c.r, c.out, c.n_in);
		else if (kind == 1)
			bio_dropout_backward(din, c.r, c.mask, c.n_in);
		else if (kind == 2)
			bio_maxpool2_backward(din, c.r, c.am, 6, 5, 6);
		else
			bio_flatten_backward(din, c.r, 3, 2, 4);
		CHECK_EQ(fd_check("elementwise", c.in, din, c.n_in, ew_loss, &c, 1e-3f, 1e-4, 1e-3,
				  200), 0);
		free(c.in);
		free(c.out);
		free(c.r);
		free(c.mask);
		free(c.am);
		free(din);
	}
	CHECK(bio_dropout_scale(0.3f) == 1.0f / 0.7f);
}

TEST(fused_pool_matches_composition)
{
	int c = 3, n = 2, h = 7, w = 6;
	size_t tot = (size_t)c * n * h * w, po = (size_t)c * n * 3 * 3;
	float *xhat = rnd(tot, -2, 2), *g = rnd(c, 0.5f, 1.5f), *b = rnd(c, -0.5f, 0.5f);
	for (size_t i = 0; i < tot; i += 5)
		xhat[i] = -b[(i / (n * h * w))] / g[i / (n * h * w)] - 1.0f; /* negative: ReLU ties */
	float *bn = zeros(tot), *p1 = zeros(po), *p2 = zeros(po);
	uint8_t *a1 = calloc(po, 1), *a2 = calloc(po, 1);
	for (int ci = 0; ci < c; ci++)
		for (size_t i = 0; i < (size_t)n * h * w; i++)
			bn[ci * n * h * w + i] = g[ci] * xhat[ci * n * h * w + i] + b[ci];
	bio_relu_forward(bn, bn, tot);
	bio_maxpool2_forward(p1, a1, bn, (size_t)c * n, h, w);
	bio_affine_relu_maxpool2_forward(p2, a2, xhat, g, b, c, n, h, w);
	CHECK(memcmp(p1, p2, po * sizeof(float)) == 0);
	CHECK(memcmp(a1, a2, po) == 0);
	float *dout = rnd(po, -1, 1), *d1 = zeros(tot), *d2 = zeros(tot);
	bio_maxpool2_backward(d1, dout, a1, (size_t)c * n, h, w);
	bio_relu_backward(d1, d1, bn, tot);
	bio_maxpool2_relu_backward(d2, dout, p2, a2, (size_t)c * n, h, w);
	CHECK(memcmp(d1, d2, tot * sizeof(float)) == 0);
	/* the one-pass pool + ReLU + batch-norm backward equals the composition (to rounding) */
	for (int training = 0; training < 2; training++) {
		int64_t nbt = 0;
		struct bio_batchnorm l = {c, h * w, 1e-5f, 0.1f, g, b, zeros(c), zeros(c), zeros(c),
					  zeros(c), &nbt, zeros(c), zeros(c), NULL, NULL};
		float *l2g = zeros(c), *l2b = zeros(c);
		for (int ci = 0; ci < c; ci++)
			l.invstd[ci] = 0.5f + 0.25f * ci;
		float *ref = zeros(tot), *x = zeros(tot);
		bio_batchnorm_backward(&l, ref, d2, xhat, n, training);
		float *dg = l.dgamma, *db = l.dbeta;
		l.dgamma = l2g;
		l.dbeta = l2b;
		memcpy(x, xhat, tot * sizeof(float));
		bio_bn_relu_pool_backward(&l, x, dout, p2, a2, n, h, w, training);
		double maxd = 0, maxr = 0;
		for (size_t i = 0; i < tot; i++) {
			maxd = fmax(maxd, fabs((double)x[i] - ref[i]));
			maxr = fmax(maxr, fabs((double)ref[i]));
		}
		CHECK(maxd <= 1e-6 * maxr);
		for (int ci = 0; ci < c; ci++) {
			CHECK_NEAR(l2g[ci], dg[ci], 1e-5 * (1 + fabs(dg[ci])));
			CHECK_NEAR(l2b[ci], db[ci], 1e-5 * (1 + fabs(db[ci])));
		}
		free(dg);
		free(db);
		free(l2g);
		free(l2b);
		free(l.running_mean);
		free(l.running_var);
		free(l.mean);
		free(l.invstd);
		free(ref);
		free(x);
	}
	free(xhat);
	free(g);
	free(b);
	free(bn);
	free(p1);
	free(p2);
	free(a1);
	free(a2);
	free(dout);
	free(d1);
	free(d2);
}

/* ---- linear ---- */

struct lin_ctx {
	struct bio_linear l;
	float *in, *out, *r;
	int n;
};

static double lin_loss(void *p)
{
	struct lin_ctx *c = p;
	bio_linear_forward(&c->l, c->out, c->in, c->n);
	return dot(c->out, c->r, (size_t)c->n * c->l.n_out);
}

TEST(linear_gradients)
{
	struct lin_ctx c = {.n = 4};
	int ni = 7, no = 5;
	c.l = (struct bio_linear){ni, no, rnd((size_t)ni * no, -1, 1), rnd(no, -1, 1),
				  zeros((size_t)ni * no), zeros(no), NULL, NULL};
	c.in = rnd((size_t)c.n * ni, -1, 1);
	c.out = zeros((size_t)c.n * no);
	c.r = rnd((size_t)c.n * no, -1, 1);
	float *din = zeros((size_t)c.n * ni);
	lin_loss(&c);
	bio_linear_backward(&c.l, din, c.r, c.in, c.n);
	int bad = fd_check("lin.w", c.l.w, c.l.dw, (size_t)ni * no, lin_loss, &c, 1e-2f, 1e-4,
			   1e-3, 35) +
		  fd_check("lin.b", c.l.b, c.l.db, no, lin_loss, &c, 1e-2f, 1e-4, 1e-3, 5) +
		  fd_check("lin.in", c.in, din, (size_t)c.n * ni, lin_loss, &c, 1e-2f, 1e-4, 1e-3,
			   28);
	CHECK_EQ(bad, 0);
	free(c.l.w);
	free(c.l.b);
	free(c.l.dw);
	free(c.l.db);
	free(c.in);
	free(c.out);
	free(c.r);
	free(din);
}

/* ---- loss ---- */

struct ce_ctx {
	float *z;
	int64_t y[5];
};

static double ce_loss(void *p)
{
	struct ce_ctx *c = p;
	return bio_softmax_ce(NULL, NULL, c->z, c->y, 5, 4, 1.0f);
}

TEST(softmax_ce_gradient)
{
	struct ce_ctx c = {.y = {0, 3, 1, 1, 2}};
	c.z = rnd(20, -3, 3);
	float *d = zeros(20);
	int correct = -1;
	double l = bio_softmax_ce(d, &correct, c.z, c.y, 5, 4, 1.0f);
	CHECK(l > 0);
	CHECK(correct >= 0 && correct <= 5);
	CHECK_EQ(fd_check("ce", c.z, d, 20, ce_loss, &c, 1e-3f, 1e-5, 1e-3, 20), 0);
	/* the scale multiplies the gradient */
	float *d2 = zeros(20);
	bio_softmax_ce(d2, NULL, c.z, c.y, 5, 4, 0.5f);
	CHECK_NEAR(d2[7], 0.5 * d[7], 1e-7);
	/* a known value: uniform logits give log(C) */
	float z0[4] = {0, 0, 0, 0};
	int64_t y0 = 2;
	CHECK_NEAR(bio_softmax_ce(NULL, NULL, z0, &y0, 1, 4, 1.0f), log(4.0), 1e-12);
	free(c.z);
	free(d);
	free(d2);
}

/* ---- margin losses and the cosine classifier ---- */

struct mce_ctx {
	float *z;
	int64_t y[6];
	enum bio_loss_kind kind;
	float margin, scale;
};

static double mce_loss(void *p)
{
	struct mce_ctx *c = p;
	return bio_margin_ce_sum(NULL, NULL, c->z, c->y, 6, 4, c->kind, c->margin, c->scale, 1.0);
}

TEST(margin_ce_gradient)
{
	/* CosFace, ArcFace, and ArcFace with a margin so large that targets below cos(pi - m)
	 * take the fallback */
	const enum bio_loss_kind kinds[3] = {BIO_LOSS_COSFACE, BIO_LOSS_ARCFACE, BIO_LOSS_ARCFACE};
	const float margins[3] = {0.35f, 0.5f, 1.4f};
	for (int k = 0; k < 3; k++) {
		struct mce_ctx c = {.y = {0, 3, 1, 1, 2, 3}, .kind = kinds[k], .margin = margins[k],
				    .scale = 4.0f};
		c.z = rnd(24, -0.9f * c.scale, 0.9f * c.scale); /* s cos, |cos| < 0.9 */
		c.z[0] = -0.6f * c.scale; /* cos(pi - 1.4) = -0.17: the fallback */
		float *d = zeros(24);
		double l = bio_margin_ce_sum(d, NULL, c.z, c.y, 6, 4, c.kind, c.margin, c.scale, 1.0);
		CHECK(l > 0);
		CHECK_EQ(fd_check(bio_loss_name(c.kind), c.z, d, 24, mce_loss, &c, 1e-3f, 1e-5, 1e-3,
				  24), 0);
		/* no margin: the softmax cross-entropy of the logits */
		c.margin = 0.0f;
		CHECK_NEAR(mce_loss(&c), bio_softmax_ce_sum(NULL, NULL, c.z, c.y, 6, 4, 1.0), 1e-9);
		/* a margin only raises the loss */
		c.margin = margins[k];
		CHECK(mce_loss(&c) > bio_softmax_ce_sum(NULL, NULL, c.z, c.y, 6, 4, 1.0));
		free(c.z);
		free(d);
	}
	/* a known value: CosFace on one row, cosines (0.5, 0), s 2, m 0.25: target 2 (0.25) */
	float z[2] = {1.0f, 0.0f};
	int64_t y = 0;
	int correct = 0;
	CHECK_NEAR(bio_margin_ce_sum(NULL, &correct, z, &y, 1, 2, BIO_LOSS_COSFACE, 0.25f, 2.0f,
				     1.0), log(1.0 + exp(-0.5)), 1e-12);
	CHECK_EQ(correct, 1); /* accuracy counts the plain logits */
	CHECK_EQ(bio_loss_parse(&(enum bio_loss_kind){0}, "arcface"), 0);
	CHECK_EQ(bio_loss_parse(&(enum bio_loss_kind){0}, "sphereface"), -1);
}

struct cos_ctx {
	struct bio_cosine l;
	float *in, *out, *r;
	int n;
};

static double cos_loss(void *p)
{
	struct cos_ctx *c = p;
	bio_cosine_forward(&c->l, c->out, c->in, c->n);
	return dot(c->out, c->r, (size_t)c->n * c->l.n_out);
}

TEST(cosine_gradients)
{
	/* 9 samples: three pieces, the last short */
	struct cos_ctx c = {.n = 9};
	const int ni = 6, no = 4;
	c.l = (struct bio_cosine){ni, no, 3.0f, rnd((size_t)no * ni, -1, 1), zeros((size_t)no * ni),
				  zeros((size_t)c.n * ni), zeros(c.n), zeros((size_t)no * ni),
				  zeros(no)};
	c.in = rnd((size_t)c.n * ni, -1, 1);
	c.out = zeros((size_t)c.n * no);
	c.r = rnd((size_t)c.n * no, -1, 1);
	float *din = zeros((size_t)c.n * ni);
	cos_loss(&c);
	for (size_t i = 0; i < (size_t)c.n * no; i++) /* logits are s cos: inside [-s, s] */
		CHECK(fabsf(c.out[i]) <= 3.0f * (1.0f + 1e-6f));
	bio_cosine_backward(&c.l, din, c.r, c.n);
	int bad = fd_check("cosine.w", c.l.w, c.l.dw, (size_t)no * ni, cos_loss, &c, 1e-3f, 1e-4,
			   1e-3, 24) +
		  fd_check("cosine.in", c.in, din, (size_t)c.n * ni, cos_loss, &c, 1e-3f, 1e-4,
			   1e-3, 24);
	CHECK_EQ(bad, 0);
	/* scale invariance: the logits do not change when an input or a weight row is scaled */
	float o0 = c.out[5];
	for (int i = 0; i < ni; i++) {
		c.in[ni + i] *= 7.0f;
		c.l.w[ni + i] *= 0.25f;
	}
	cos_loss(&c);
	CHECK_NEAR(c.out[5], o0, 1e-5);
	free(c.l.w);
	free(c.l.dw);
	free(c.l.u);
	free(c.l.u_inv);
	free(c.l.v);
	free(c.l.v_inv);
	free(c.in);
	free(c.out);
	free(c.r);
	free(din);
}

/* ---- fusion ---- */

struct fu_ctx {
	struct bio_fusion f;
	float *emb[3], *out, *r;
	int n;
};

static double fu_loss(void *p)
{
	struct fu_ctx *c = p;
	bio_fusion_forward(&c->f, c->out, (const float *const *)c->emb, c->n);
	return dot(c->out, c->r, (size_t)c->n * bio_fusion_out_dim(&c->f));
}

TEST(fusion_gradients)
{
	for (int kind = 0; kind < 3; kind++) {
		struct fu_ctx c = {.n = 3};
		int nm = 3, d = 4;
		c.f = (struct bio_fusion){(enum bio_fusion_kind)kind, nm, d, NULL, NULL, NULL, NULL,
					  zeros((size_t)c.n * nm), 0.7f};
		if (kind == BIO_FUSION_ATTENTION) {
			c.f.w = rnd(d, -1, 1);
			c.f.b = rnd(1, -1, 1);
			c.f.dw = zeros(d);
			c.f.db = zeros(1);
		} else if (kind == BIO_FUSION_WEIGHTED) {
			c.f.w = rnd(nm, -1, 1);
			c.f.dw = zeros(nm);
		}
		float *de[3];
		for (int m = 0; m < nm; m++) {
			c.emb[m] = rnd((size_t)c.n * d, -1, 1);
			de[m] = zeros((size_t)c.n * d);
		}
		size_t no = (size_t)c.n * bio_fusion_out_dim(&c.f);
		c.out = zeros(no);
		c.r = rnd(no, -1, 1);
		fu_loss(&c);
		bio_fusion_backward(&c.f, de, c.r, (const float *const *)c.emb, c.n);
		int bad = 0;
		for (int m = 0; m < nm; m++)
			bad += fd_check("fusion.emb", c.emb[m], de[m], (size_t)c.n * d, fu_loss, &c,
					1e-3f, 1e-4, 1e-3, 12);
		if (kind == BIO_FUSION_ATTENTION) {
			bad += fd_check("fusion.w", c.f.w, c.f.dw, d, fu_loss, &c, 1e-3f, 1e-4, 1e-3, 4);
			bad += fd_check("fusion.b", c.f.b, c.f.db, 1, fu_loss, &c, 1e-3f, 1e-4, 1e-3, 1);
		} else if (kind == BIO_FUSION_WEIGHTED) {
			bad += fd_check("fusion.w", c.f.w, c.f.dw, nm, fu_loss, &c, 1e-3f, 1e-4, 1e-3,
					3);
		}
		if (bad)
			fprintf(stderr, "fusion %s\n", bio_fusion_name((enum bio_fusion_kind)kind));
		CHECK_EQ(bad, 0);
		for (int m = 0; m < nm; m++) {
			free(c.emb[m]);
			free(de[m]);
		}
		free(c.f.w);
		free(c.f.b);
		free(c.f.dw);
		free(c.f.db);
		free(c.f.alpha);
		free(c.out);
		free(c.r);
	}
}

/* ---- whole model ---- */

#ifndef EPS
#define EPS 5e-4f
#endif
struct model_ctx {
	struct bio_model *m;
	float *in[2];
	int64_t labels[4];
	int n;
};

static double model_loss(void *p)
{
	struct model_ctx *c = p;
	bio_model_forward(c->m, (const float *const *)c->in, c->n, 1);
	return bio_model_loss(c->m, c->labels, c->n, 1.0f, NULL);
}

static struct bio_model_spec tiny_spec(enum bio_fusion_kind fusion, int n_mod)
{
	struct bio_model_spec s = {.input_size = 8, .n_blocks = 2, .channels = {3, 4},
				   .kernel = 3, .hidden = 6, .embedding = 5, .dropout = 0.25f,
				   .fusion = fusion, .attention_temperature = 1.0f,
				   .n_mod = n_mod, .n_classes = 3};
	strcpy(s.modalities[0], "iris");
	strcpy(s.modalities[1], "fingerprint");
	return s;
}

/* The fusions with the softmax head, then the margin heads (CosFace on concat, ArcFace on
 * weighted fusion): configuration k of 5. */
static struct bio_model_spec head_spec(int k, int *kind)
{
	*kind = k < 3 ? k : k == 3 ? BIO_FUSION_CONCAT : BIO_FUSION_WEIGHTED;
	struct bio_model_spec s = tiny_spec((enum bio_fusion_kind)*kind, 2);
	if (k >= 3) {
		s.loss = k == 3 ? BIO_LOSS_COSFACE : BIO_LOSS_ARCFACE;
		s.margin = k == 3 ? 0.35f : 0.5f;
		s.scale = 2.0f; /* small: a large s makes central differences of the tiny model noisy */
	}
	return s;
}

TEST(model_gradients)
{
	for (int k = 0; k < 5; k++) {
		struct bio_error err;
		int kind;
		struct bio_model_spec s = head_spec(k, &kind);
		struct model_ctx c = {.n = 4, .labels = {0, 2, 1, 2}};
		c.m = bio_model_new(&s, 4, &err);
		CHECK(c.m != NULL);
		if (!c.m)
			return;
		bio_model_init_params(c.m, &rng);
		if (kind == BIO_FUSION_WEIGHTED) {
			const struct bio_model_tensor *t = bio_model_find(c.m, "fusion.weights");
			t->data[0] = 0.3f;
			t->data[1] = -0.2f;
		}
		for (int m = 0; m < 2; m++)
			c.in[m] = rnd(4 * 64, -1, 1);
		struct bio_rng r2;
		bio_rng_seed(&r2, 5);
		bio_model_forward_rng(c.m, (const float *const *)c.in, c.n, 1, &r2);
		bio_model_zero_grad(c.m);
		bio_model_loss(c.m, c.labels, c.n, 1.0f, NULL);
		bio_model_backward(c.m, c.n, 1);
		int bad = 0;
		for (size_t i = 0; i < c.m->n_tensors; i++) {
			const struct bio_model_tensor *t = &c.m->tensors[i];
			if (t->role != BIO_ROLE_PARAM)
				continue;
			/* margin heads: the head and the fusion (the branches see the same backward
			 * as under softmax, checked above; through the normalised head their central
			 * differences in float meet ReLU switches and rounding noise past the
			 * tolerance; PyTorch parity checks every gradient of these models) */
			if (s.loss != BIO_LOSS_SOFTMAX && strncmp(t->name, "classifier.", 11) != 0 &&
			    strncmp(t->name, "fusion.", 7) != 0)
				continue;
			int b = fd_check(t->name, t->data, t->grad, t->numel, model_loss, &c, EPS,
					 2e-4, 2e-2, 6);
			if (b)
				fprintf(stderr, "model %s %s: %s\n",
					bio_fusion_name((enum bio_fusion_kind)kind),
					bio_loss_name(s.loss), t->name);
			bad += b;
		}
		CHECK_EQ(bad, 0);
		for (int m = 0; m < 2; m++)
			free(c.in[m]);
		bio_model_free(c.m);
	}
}

TEST(model_layout_and_init)
{
	struct bio_error err;
	struct bio_model_spec s = tiny_spec(BIO_FUSION_ATTENTION, 2);
	struct bio_model *m = bio_model_new(&s, 2, &err);
	CHECK(m != NULL);
	const struct bio_model_tensor *t = bio_model_find(m, "iris.conv1.weight");
	CHECK(t && t->n_dims == 4 && t->shape[0] == 3 && t->shape[1] == 1 && t->shape[2] == 3);
	t = bio_model_find(m, "fingerprint.fc1.weight");
	CHECK(t && t->shape[0] == 6 && t->shape[1] == 4 * 2 * 2);
	CHECK(bio_model_find(m, "fusion.score.weight") != NULL);
	CHECK(bio_model_find(m, "iris.bn2.num_batches_tracked") != NULL);
	CHECK(bio_model_find(m, "classifier.bias") != NULL);
	{ /* the cosine classifier: a weight, no bias */
		struct bio_model_spec sa = s;
		sa.loss = BIO_LOSS_ARCFACE;
		sa.margin = 0.5f;
		sa.scale = 30.0f;
		struct bio_model *ma = bio_model_new(&sa, 2, &err);
		CHECK(ma != NULL);
		CHECK(bio_model_find(ma, "classifier.weight") != NULL);
		CHECK(bio_model_find(ma, "classifier.bias") == NULL);
		CHECK_EQ(ma->n_params + s.n_classes, m->n_params);
		CHECK(!bio_model_spec_equal(&s, &sa));
		sa.margin = -0.1f;
		CHECK(bio_model_spec_check(&sa, &err) != 0);
		bio_model_free(ma);
	}
	bio_model_init_params(m, &rng);
	t = bio_model_find(m, "iris.conv2.weight");
	float mx = 0;
	for (size_t i = 0; i < t->numel; i++)
		if (fabsf(t->data[i]) > mx)
			mx = fabsf(t->data[i]);
	CHECK(mx <= 1.0f / sqrtf(27.0f) && mx > 0.5f / sqrtf(27.0f));
	CHECK(bio_model_find(m, "iris.bn1.weight")->data[0] == 1.0f);
	CHECK(bio_model_find(m, "iris.bn1.running_var")->data[2] == 1.0f);
	bio_model_free(m);
	s.n_classes = 1;
	CHECK(bio_model_new(&s, 2, &err) == NULL);
	s.n_classes = 3;
	s.input_size = 3;
	CHECK(bio_model_new(&s, 2, &err) == NULL);
}

/* Same gradients with 1, 2 and 3 pool threads, bit for bit. OpenBLAS stays single-threaded: how
 * it would split its own work over threads is its business (it differs between CPUs), and the
 * programs never let it. */
TEST(thread_count_independent)
{
	struct bio_error err;
	struct bio_model_spec s = {.input_size = 32, .n_blocks = 3, .channels = {16, 32, 64},
				   .kernel = 3, .hidden = 64, .embedding = 32, .dropout = 0.3f,
				   .fusion = BIO_FUSION_ATTENTION, .attention_temperature = 1.0f,
				   .n_mod = 2, .n_classes = 10};
	strcpy(s.modalities[0], "iris");
	strcpy(s.modalities[1], "fingerprint");
	int n = 16;
	float *in[2] = {rnd((size_t)n * 32 * 32, -1, 1), rnd((size_t)n * 32 * 32, -1, 1)};
	int64_t y[16];
	for (int i = 0; i < n; i++)
		y[i] = i % 10;
	float *g[3];
	for (int t = 0; t < 3; t++) {
		struct bio_model *m = bio_model_new(&s, n, &err);
		CHECK(bio_model_set_threads(m, t + 1, &err) == 0);
		struct bio_rng r;
		bio_rng_seed(&r, 11);
		bio_model_init_params(m, &r);
		bio_model_forward_rng(m, (const float *const *)in, n, 1, &r);
		bio_model_loss(m, y, n, 1.0f, NULL);
		bio_model_backward(m, n, 1);
		g[t] = malloc(m->n_params * sizeof(float));
		memcpy(g[t], m->grads, m->n_params * sizeof(float));
		size_t np = m->n_params;
		bio_model_free(m);
		if (t > 0)
			CHECK(memcmp(g[0], g[t], np * sizeof(float)) == 0);
	}
	free(g[0]);
	free(g[1]);
	free(g[2]);
	free(in[0]);
	free(in[1]);
}

/* The binary-counter tree (leaves pushed one by one) is the stride-doubling tree, bit for bit. */
TEST(tree_push_is_the_stride_doubling_tree)
{
	for (size_t n = 1; n <= 130; n++) {
		double *v = malloc(n * sizeof(double));
		struct bio_nn_tree t;
		bio_nn_tree_init(&t);
		for (size_t i = 0; i < n; i++) {
			/* magnitudes 1e-8 .. 1e8: a different grouping rounds differently */
			v[i] = (bio_rng_uniform(&rng) - 0.5) * pow(10.0, (double)(i % 17) - 8.0);
			bio_nn_tree_push(&t, v[i]);
		}
		double pushed = bio_nn_tree_sum(&t);
		bio_nn_tree_d(v, n, 1);
		CHECK(memcmp(&pushed, &v[0], sizeof pushed) == 0);
		free(v);
	}
}

/* Ranks as threads: allsum through a shared buffer and a barrier (what MPI does across
 * processes), to check the split itself without MPI. */
struct fake_world {
	pthread_barrier_t barrier;
	double buf[8][512];
};

static void fake_allsum(const struct bio_nn_dist *d, double *v, size_t n)
{
	struct fake_world *w = d->ctx;
	BIO_ASSERT(n <= 512);
	memcpy(w->buf[d->rank], v, n * sizeof(double));
	pthread_barrier_wait(&w->barrier);
	double all[8 * 512];
	for (int r = 0; r < d->n_active; r++)
		memcpy(all + (size_t)r * n, w->buf[r], n * sizeof(double));
	bio_nn_tree_d(all, (size_t)d->n_active, n);
	memcpy(v, all, n * sizeof(double));
	pthread_barrier_wait(&w->barrier);
}

struct rank_job {
	struct bio_nn_dist d;
	const struct bio_model_spec *spec;
	float *const *in;
	const int64_t *labels;
	int n_global;
	float *grads, *buffers; /* out */
	double loss;
	int correct;
};

static void *rank_main(void *arg)
{
	struct rank_job *j = arg;
	struct bio_error err;
	struct bio_model *m = bio_model_new(j->spec, j->n_global, &err);
	BIO_ASSERT(m);
	struct bio_rng r;
	bio_rng_seed(&r, 11);
	bio_model_init_params(m, &r);
	if (j->spec->fusion == BIO_FUSION_WEIGHTED) {
		const struct bio_model_tensor *t = bio_model_find(m, "fusion.weights");
		t->data[0] = 0.3f;
		t->data[1] = -0.2f;
	}
	bio_model_set_dist(m, &j->d);
	const size_t side2 = (size_t)j->spec->input_size * j->spec->input_size;
	const float *in[2] = {j->in[0] + (size_t)j->d.s0 * side2, j->in[1] + (size_t)j->d.s0 * side2};
	bio_model_forward_rng(m, in, j->d.n, 1, &r);
	j->loss = bio_model_loss(m, j->labels + j->d.s0, j->d.n, 1.0f, &j->correct);
	bio_model_backward(m, j->d.n, 1);
	j->grads = malloc(m->n_params * sizeof(float));
	j->buffers = malloc(m->n_buffers * sizeof(float));
	memcpy(j->grads, m->grads, m->n_params * sizeof(float));
	memcpy(j->buffers, m->buffers, m->n_buffers * sizeof(float));
	bio_model_free(m);
	return NULL;
}

/* A batch split over 1-4 ranks (each holding an aligned block of pieces, some none) gives the
 * loss, running statistics and (summed over the ranks by the tree) gradients of one process, bit
 * for bit: in every fusion mode, for batch sizes that leave short pieces and idle ranks. */
TEST(ranks_reproduce_one_process)
{
	struct bio_error err;
	const int sizes[] = {28, 20, 16, 13, 5, 3};
	for (int k = 0; k < 5; k++)
		for (int bi = 0; bi < 6; bi++) {
			int kind;
			struct bio_model_spec s = head_spec(k, &kind);
			s.input_size = 16;
			s.channels[0] = 4;
			s.channels[1] = 8;
			const int n = sizes[bi];
			const size_t side2 = 16 * 16;
			float *in[2] = {rnd((size_t)n * side2, -1, 1), rnd((size_t)n * side2, -1, 1)};
			int64_t y[32];
			for (int i = 0; i < n; i++)
				y[i] = (i * 7) % 3;
			struct bio_model *m = bio_model_new(&s, n, &err);
			CHECK(m != NULL);
			struct bio_rng r;
			bio_rng_seed(&r, 11);
			bio_model_init_params(m, &r);
			if (kind == BIO_FUSION_WEIGHTED) {
				const struct bio_model_tensor *t = bio_model_find(m, "fusion.weights");
				t->data[0] = 0.3f;
				t->data[1] = -0.2f;
			}
			bio_model_forward_rng(m, (const float *const *)in, n, 1, &r);
			int correct1 = 0;
			double loss1 = bio_model_loss(m, y, n, 1.0f, &correct1);
			bio_model_backward(m, n, 1);
			for (int size = 1; size <= 4; size++) {
				struct fake_world w;
				pthread_barrier_init(&w.barrier, NULL, (unsigned)size);
				struct rank_job jobs[4];
				pthread_t th[4];
				for (int rk = 0; rk < size; rk++) {
					jobs[rk] = (struct rank_job){.spec = &s, .in = in, .labels = y,
								     .n_global = n};
					jobs[rk].d = (struct bio_nn_dist){.rank = rk, .size = size,
									  .allsum = fake_allsum,
									  .ctx = &w};
					bio_nn_dist_split(&jobs[rk].d, n);
					CHECK(pthread_create(&th[rk], NULL, rank_main, &jobs[rk]) == 0);
				}
				for (int rk = 0; rk < size; rk++)
					pthread_join(th[rk], NULL);
				pthread_barrier_destroy(&w.barrier);
				int covered = 0;
				for (int rk = 0; rk < size; rk++) {
					CHECK(jobs[rk].d.s0 == covered || jobs[rk].d.n == 0);
					covered += jobs[rk].d.n;
				}
				CHECK_EQ(covered, n);
				{
					size_t np = m->n_params;
					float *all = malloc(np * (size_t)size * sizeof(float));
					int act = jobs[0].d.n_active;
					for (int rk = 0; rk < act; rk++)
						memcpy(all + (size_t)rk * np, jobs[rk].grads,
						       np * sizeof(float));
					bio_nn_tree_f(all, (size_t)act, np);
					CHECK(memcmp(all, m->grads, np * sizeof(float)) == 0);
					for (int rk = 0; rk < size; rk++) {
						CHECK(memcmp(jobs[rk].buffers, m->buffers,
							     m->n_buffers * sizeof(float)) == 0);
						CHECK(jobs[rk].loss == loss1);
						CHECK_EQ(jobs[rk].correct, correct1);
					}
					free(all);
				}
				for (int rk = 0; rk < size; rk++) {
					free(jobs[rk].grads);
					free(jobs[rk].buffers);
				}
			}
			bio_model_free(m);
			free(in[0]);
			free(in[1]);
		}
}

int main(void)
{
	bio_rng_seed(&rng, 1234);
	bio_nn_set_threads(1);
	RUN(conv2d_gradients);
	RUN(conv2d_reference);
	RUN(batchnorm_gradients);
	RUN(elementwise_gradients);
	RUN(fused_pool_matches_composition);
	RUN(linear_gradients);
	RUN(softmax_ce_gradient);
	RUN(margin_ce_gradient);
	RUN(cosine_gradients);
	RUN(fusion_gradients);
	RUN(model_gradients);
	RUN(model_layout_and_init);
	RUN(thread_count_independent);
	RUN(tree_push_is_the_stride_doubling_tree);
	RUN(ranks_reproduce_one_process);
	return test_summary();
}
