/* Unit tests of lib/model.c: bio_model_clone (a clone holds the source's parameters, running
 * statistics and batch counts, and predicts what the source predicts, bit for bit) and
 * bio_model_fuse_adam (the fused step is the plain one, bit for bit), and nn.c's fused first
 * block (the unfused layers' bits). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bio/checkpoint.h"
#include "bio/kernels.h"
#include "bio/model.h"
#include "bio/optim.h"
#include "bio/nn.h"
#include "bio/rng.h"
#include "test.h"

/* The two test modalities, and inputs for them: n values each in [-1, 1), drawn in turn. */
static void two_modalities(struct bio_model_spec *s)
{
	strcpy(s->modalities[0], "iris");
	strcpy(s->modalities[1], "fingerprint");
}

static void two_inputs(float *a, float *b, size_t n, struct bio_rng *r)
{
	for (size_t i = 0; i < n; i++) {
		a[i] = bio_rng_uniform_f(r) * 2 - 1;
		b[i] = bio_rng_uniform_f(r) * 2 - 1;
	}
}

TEST(model_clone_predicts_the_same)
{
	struct bio_error err;
	struct bio_model_spec s = {.input_size = 8, .n_blocks = 2, .channels = {3, 4},
				   .kernel = 3, .hidden = 6, .embedding = 5, .dropout = 0.25f,
				   .fusion = BIO_FUSION_ATTENTION, .attention_temperature = 1.0f,
				   .n_mod = 2, .n_classes = 3};
	two_modalities(&s);
	enum { N = 4 };
	float in0[N * 64], in1[N * 64];
	struct bio_rng r;
	bio_rng_seed(&r, 7);
	two_inputs(in0, in1, N * 64, &r);
	const float *in[2] = {in0, in1};
	struct bio_model *m = bio_model_new(&s, N, &err);
	CHECK(m != NULL);
	if (!m)
		return;
	bio_model_init_params(m, &r);
	bio_model_forward_rng(m, in, N, 1, &r); /* training: running statistics and counts move */
	struct bio_model *c = bio_model_clone(m, N, &err);
	CHECK(c != NULL);
	if (!c) {
		bio_model_free(m);
		return;
	}
	CHECK(bio_model_spec_equal(&c->spec, &m->spec));
	CHECK_EQ(c->n_params, m->n_params);
	CHECK_EQ(c->n_buffers, m->n_buffers);
	CHECK(memcmp(c->params, m->params, m->n_params * sizeof(float)) == 0);
	CHECK(memcmp(c->buffers, m->buffers, m->n_buffers * sizeof(float)) == 0);
	const struct bio_model_tensor *tc = bio_model_find(c, "iris.bn1.num_batches_tracked");
	const struct bio_model_tensor *tm = bio_model_find(m, "iris.bn1.num_batches_tracked");
	CHECK(tc && tm && *tm->count == 1 && *tc->count == *tm->count);
	CHECK(c->pool == NULL);
	bio_model_freeze(m);
	bio_model_freeze(c);
	bio_model_forward(m, in, N, 0);
	bio_model_forward(c, in, N, 0);
	CHECK(memcmp(c->logits, m->logits, N * 3 * sizeof(float)) == 0);
	CHECK(memcmp(c->fused, m->fused, (size_t)N * bio_fusion_out_dim(&m->fusion) *
					     sizeof(float)) == 0);
	bio_model_free(c);
	bio_model_free(m);
}

/* Three Adam (AdamW, weight decay) steps fused into fc1's backward give the parameters and
 * moments of three plain steps, bit for bit, with 1 and 2 threads; the fused layers' gradients
 * are never written. */
TEST(fused_adam_is_the_plain_step)
{
	struct bio_error err;
	struct bio_model_spec s = {.input_size = 16, .n_blocks = 2, .channels = {8, 16},
				   .kernel = 3, .hidden = 24, .embedding = 8,
				   .fusion = BIO_FUSION_CONCAT, .n_mod = 2, .n_classes = 5};
	two_modalities(&s);
	enum { N = 6, PX = 16 * 16 };
	float in0[N * PX], in1[N * PX];
	int64_t y[N];
	struct bio_rng r;
	bio_rng_seed(&r, 3);
	two_inputs(in0, in1, N * PX, &r);
	for (int i = 0; i < N; i++)
		y[i] = i % 5;
	const float *in[2] = {in0, in1};
	for (int kind = BIO_OPTIM_ADAM; kind <= BIO_OPTIM_ADAMW; kind++)
		for (int threads = 1; threads <= 2; threads++) {
			struct bio_model *m[2];
			struct bio_optim o[2];
			struct bio_adam c;
			for (int f = 0; f < 2; f++) {
				m[f] = bio_model_new(&s, N, &err);
				CHECK(m[f] && bio_model_set_threads(m[f], threads, &err) == 0);
				if (!m[f])
					return;
				bio_rng_seed(&r, 5);
				bio_model_init_params(m[f], &r);
				o[f] = (struct bio_optim){.kind = kind, .lr = 0.01, .weight_decay = 0.1,
							  .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
				bio_optim_bind(&o[f], m[f]);
			}
			bio_model_fuse_adam(m[1], o[1].m, o[1].v, &c);
			o[1].skip = m[1]->fused_skip;
			o[1].n_skip = m[1]->n_fused;
			CHECK_EQ(m[1]->n_fused, 2);
			for (int step = 0; step < 3; step++)
				for (int f = 0; f < 2; f++) {
					bio_rng_seed(&r, 9 + (uint64_t)step);
					bio_model_forward_rng(m[f], in, N, 1, &r);
					bio_model_loss(m[f], y, N, 1.0f, NULL);
					if (f)
						bio_optim_adam_consts(&o[f], o[f].step + 1, &c);
					bio_model_backward(m[f], N, 1);
					bio_optim_step_pool(&o[f], m[f]->params, m[f]->grads,
							    m[f]->n_params, m[f]->pool);
					bio_model_zero_grad(m[f]);
				}
			size_t np = m[0]->n_params;
			CHECK(memcmp(m[0]->params, m[1]->params, np * sizeof(float)) == 0);
			CHECK(memcmp(o[0].m, o[1].m, np * sizeof(float)) == 0);
			CHECK(memcmp(o[0].v, o[1].v, np * sizeof(float)) == 0);
			int untouched = 1;
			for (int b = 0; b < m[1]->n_fused; b++)
				for (size_t i = m[1]->fused_skip[2 * b]; i < m[1]->fused_skip[2 * b + 1]; i++)
					untouched &= m[1]->grads[i] == 0.0f;
			CHECK(untouched);
			bio_model_free(m[0]);
			bio_model_free(m[1]);
		}
}

struct c1_case {
	struct bio_conv2d cv;
	struct bio_batchnorm bn;
	int64_t tracked;
	float *in, *pool, *dp;
	uint8_t *argmax;
};

static float *c1_rnd(struct bio_rng *r, size_t n)
{
	float *p = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		p[i] = bio_rng_uniform_f(r) * 2 - 1;
	return p;
}

/* A first block of c channels on h x w; the same random weights for the same seed. */
static void c1_case_new(struct c1_case *k, int c, int n, int h, int w, struct bio_nn_pool *pool)
{
	struct bio_rng r;
	bio_rng_seed(&r, 21);
	memset(k, 0, sizeof *k);
	bio_conv2d_setup(&k->cv, 1, c, 3, 1, 1, h, w);
	k->cv.w = c1_rnd(&r, (size_t)c * 9);
	k->cv.b = c1_rnd(&r, (size_t)c);
	k->cv.dw = calloc((size_t)c * 9, sizeof(float));
	k->cv.db = calloc((size_t)c, sizeof(float));
	k->cv.chunk = BIO_NN_PIECE;
	k->cv.col_floats = bio_conv2d_col_floats(&k->cv) * BIO_NN_PIECE;
	k->cv.dw_part = calloc((size_t)c * 9 * (size_t)((n + BIO_NN_PIECE - 1) / BIO_NN_PIECE),
			       sizeof(float));
	k->cv.pool = pool;
	k->bn = (struct bio_batchnorm){.c = c, .spatial = h * w, .eps = 1e-5f, .momentum = 0.1f,
				       .pool = pool, .num_batches_tracked = &k->tracked};
	k->bn.gamma = c1_rnd(&r, (size_t)c);
	k->bn.beta = c1_rnd(&r, (size_t)c);
	k->bn.dgamma = calloc((size_t)c, sizeof(float));
	k->bn.dbeta = calloc((size_t)c, sizeof(float));
	k->bn.running_mean = c1_rnd(&r, (size_t)c);
	k->bn.running_var = calloc((size_t)c, sizeof(float));
	for (int i = 0; i < c; i++)
		k->bn.running_var[i] = 0.5f + (float)i;
	k->bn.mean = calloc((size_t)c, sizeof(float));
	k->bn.invstd = calloc((size_t)c, sizeof(float));
	size_t pn = (size_t)c * n * (h / 2) * (w / 2);
	k->in = c1_rnd(&r, (size_t)n * h * w);
	k->dp = c1_rnd(&r, pn);
	k->pool = calloc(pn, sizeof(float));
	k->argmax = calloc(pn, 1);
}

static void c1_case_free(struct c1_case *k)
{
	void *p[] = {k->cv.w, k->cv.b, k->cv.dw, k->cv.db, k->cv.dw_part, k->bn.gamma, k->bn.beta,
		     k->bn.dgamma, k->bn.dbeta, k->bn.running_mean, k->bn.running_var, k->bn.mean,
		     k->bn.invstd, k->in, k->dp, k->pool, k->argmax};
	for (size_t i = 0; i < sizeof p / sizeof *p; i++)
		free(p[i]);
}

#define SAME(a, b, n) (memcmp((a), (b), (n) * sizeof *(a)) == 0)

/* bio_c1_block_forward and _backward give what the conv, batch norm, pool and their backward
 * give, bit for bit: outputs, arg-maxes, running statistics, every gradient; for batches that
 * end in a partial piece, odd channel counts (a partial group), training and eval, 1 and 2
 * threads. */
TEST(fused_first_block_is_the_layers)
{
	const int shapes[][4] = {{5, 9, 8, 8}, {32, 32, 16, 16}, {3, 1, 6, 10}, {4, 4, 8, 4}};
	for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
		for (int threads = 1; threads <= 2; threads++)
			for (int training = 0; training <= 1; training++) {
				const int c = shapes[si][0], n = shapes[si][1], h = shapes[si][2],
					  w = shapes[si][3];
				struct bio_nn_pool *pool = bio_nn_pool_new(threads);
				struct c1_case a, b;
				c1_case_new(&a, c, n, h, w, pool);
				c1_case_new(&b, c, n, h, w, pool);
				CHECK(bio_c1_block_fits(&b.cv, n));
				float *x = malloc(sizeof(float) * (size_t)c * n * h * w);
				bio_conv2d_forward(&a.cv, x, a.in, n);
				bio_batchnorm_forward(&a.bn, NULL, x, x, n, training);
				bio_affine_relu_maxpool2_forward(a.pool, a.argmax, x, a.bn.gamma,
								 a.bn.beta, c, n, h, w);
				bio_conv2d_forward(&a.cv, x, a.in, n);
				bio_batchnorm_renormalize(&a.bn, x, x, n);
				bio_bn_relu_pool_backward(&a.bn, x, a.dp, a.pool, a.argmax, n, h, w,
							  training);
				bio_conv2d_backward(&a.cv, NULL, x, a.in, n);
				bio_c1_block_forward(&b.cv, &b.bn, b.pool, b.argmax, b.in, n, training);
				bio_c1_block_backward(&b.cv, &b.bn, b.dp, b.pool, b.argmax, b.in, n,
						      training);
				size_t pn = (size_t)c * n * (h / 2) * (w / 2);
				CHECK(SAME(a.pool, b.pool, pn));
				CHECK(SAME(a.argmax, b.argmax, pn));
				CHECK(SAME(a.bn.running_mean, b.bn.running_mean, c));
				CHECK(SAME(a.bn.running_var, b.bn.running_var, c));
				CHECK(SAME(a.bn.mean, b.bn.mean, c) && SAME(a.bn.invstd, b.bn.invstd, c));
				CHECK_EQ(a.tracked, b.tracked);
				CHECK(SAME(a.bn.dgamma, b.bn.dgamma, c));
				CHECK(SAME(a.bn.dbeta, b.bn.dbeta, c));
				CHECK(SAME(a.cv.db, b.cv.db, c));
				CHECK(SAME(a.cv.dw, b.cv.dw, (size_t)c * 9));
				free(x);
				c1_case_free(&a);
				c1_case_free(&b);
				bio_nn_pool_free(pool);
			}
}

/* A model whose first block is not fused (5 x 5 kernels: block 1's output kept in one buffer,
 * which then also holds half of backward's gradient scratch; 3 blocks, so the halves swap
 * roles): its gradients match central differences of the loss, for 1 and 3 blocks' weights. */
TEST(unfused_model_gradients_match_differences)
{
	struct bio_error err;
	struct bio_model_spec s = {.input_size = 16, .n_blocks = 3, .channels = {3, 4, 5},
				   .kernel = 5, .hidden = 6, .embedding = 5,
				   .fusion = BIO_FUSION_CONCAT, .n_mod = 2, .n_classes = 3};
	two_modalities(&s);
	enum { N = 5, PX = 16 * 16 };
	float in0[N * PX], in1[N * PX];
	int64_t y[N] = {0, 1, 2, 1, 0};
	struct bio_rng r;
	bio_rng_seed(&r, 17);
	two_inputs(in0, in1, N * PX, &r);
	const float *in[2] = {in0, in1};
	struct bio_model *m = bio_model_new(&s, N, &err);
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(!m->c1_fused);
	bio_model_init_params(m, &r);
	bio_model_forward(m, in, N, 1);
	bio_model_loss(m, y, N, 1.0f, NULL);
	bio_model_backward(m, N, 1);
	const char *names[] = {"iris.conv1.weight", "fingerprint.conv1.weight",
			       "fingerprint.conv2.weight", "iris.conv3.weight", "iris.bn1.weight"};
	int bad = 0;
	for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
		const struct bio_model_tensor *t = bio_model_find(m, names[k]);
		CHECK(t != NULL);
		if (!t)
			continue;
		for (int e = 0; e < 3; e++) {
			float *p = t->data + (size_t)e * 7, keep = *p, g = t->grad[(size_t)e * 7];
			const float h = 1e-3f;
			*p = keep + h;
			bio_model_forward(m, in, N, 1);
			double up = bio_model_loss(m, y, N, 1.0f, NULL);
			*p = keep - h;
			bio_model_forward(m, in, N, 1);
			double down = bio_model_loss(m, y, N, 1.0f, NULL);
			*p = keep;
			double fd = (up - down) / (2.0 * h);
			if (fabs(fd - g) > 2e-3 + 2e-2 * fabs(fd)) {
				fprintf(stderr, "%s[%d]: backward %g, differences %g\n", names[k], e * 7,
					g, fd);
				bad++;
			}
		}
	}
	CHECK_EQ(bad, 0);
	bio_model_free(m);
}

int main(void)
{
	bio_nn_set_threads(1);
	RUN(model_clone_predicts_the_same);
	RUN(fused_adam_is_the_plain_step);
	RUN(fused_first_block_is_the_layers);
	RUN(unfused_model_gradients_match_differences);
	return test_summary();
}
