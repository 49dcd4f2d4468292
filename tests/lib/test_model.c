/* Unit tests of lib/model.c's bio_model_clone: a clone holds the source's parameters, running
 * statistics and batch counts, and predicts what the source predicts, bit for bit. */
#include <stdint.h>
#include <string.h>

#include "bio/model.h"
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

int main(void)
{
	bio_nn_set_threads(1);
	RUN(model_clone_predicts_the_same);
	return test_summary();
}
