/* Unit tests of lib/model.c: bio_model_clone (a clone holds the source's parameters, running
 * statistics and batch counts, and predicts what the source predicts, bit for bit) and
 * bio_model_fuse_adam (the fused step is the plain one, bit for bit). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bio/checkpoint.h"
#include "bio/kernels.h"
#include "bio/model.h"
#include "bio/optim.h"
#include "bio/nn.h"
#include "bio/rng.h"
#include "test.h"

TEST(model_clone_predicts_the_same)
{
	struct bio_error err;
	struct bio_model_spec s = {.input_size = 8, .n_blocks = 2, .channels = {3, 4},
				   .kernel = 3, .hidden = 6, .embedding = 5, .dropout = 0.25f,
				   .fusion = BIO_FUSION_ATTENTION, .attention_temperature = 1.0f,
				   .n_mod = 2, .n_classes = 3};
	strcpy(s.modalities[0], "iris");
	strcpy(s.modalities[1], "fingerprint");
	enum { N = 4 };
	float in0[N * 64], in1[N * 64];
	struct bio_rng r;
	bio_rng_seed(&r, 7);
	for (int i = 0; i < N * 64; i++) {
		in0[i] = bio_rng_uniform_f(&r) * 2 - 1;
		in1[i] = bio_rng_uniform_f(&r) * 2 - 1;
	}
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
	strcpy(s.modalities[0], "iris");
	strcpy(s.modalities[1], "fingerprint");
	enum { N = 6, PX = 16 * 16 };
	float in0[N * PX], in1[N * PX];
	int64_t y[N];
	struct bio_rng r;
	bio_rng_seed(&r, 3);
	for (int i = 0; i < N * PX; i++) {
		in0[i] = bio_rng_uniform_f(&r) * 2 - 1;
		in1[i] = bio_rng_uniform_f(&r) * 2 - 1;
	}
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

int main(void)
{
	bio_nn_set_threads(1);
	RUN(model_clone_predicts_the_same);
	RUN(fused_adam_is_the_plain_step);
	return test_summary();
}
