/* Unit tests of lib/infer.c: the workers' results are each sample's own, bit for bit, whatever
 * the batch size and thread count; softmax and top-k. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bio/infer.h"
#include "bio/model.h"
#include "bio/nn.h"
#include "bio/rng.h"
#include "test.h"

enum { N = 7, S = 8 };

static struct bio_model *tiny_model(int max_batch, enum bio_fusion_kind fusion)
{
	struct bio_error err;
	struct bio_model_spec s = {.input_size = S, .n_blocks = 2, .channels = {3, 4},
				   .kernel = 3, .hidden = 6, .embedding = 5, .dropout = 0.25f,
				   .fusion = fusion, .attention_temperature = 1.0f,
				   .n_mod = 2, .n_classes = 3};
	strcpy(s.modalities[0], "iris");
	strcpy(s.modalities[1], "fingerprint");
	struct bio_model *m = bio_model_new(&s, max_batch, &err);
	if (m) {
		struct bio_rng r;
		bio_rng_seed(&r, 11);
		bio_model_init_params(m, &r);
	}
	return m;
}

TEST(infer_results_do_not_depend_on_batch_or_threads)
{
	static float x[2][N * S * S];
	struct bio_rng r;
	bio_rng_seed(&r, 5);
	for (int b = 0; b < 2; b++)
		for (int i = 0; i < N * S * S; i++)
			x[b][i] = bio_rng_uniform_f(&r) * 2 - 1;
	/* reference: each sample alone through one frozen model */
	struct bio_model *ref = tiny_model(1, BIO_FUSION_ATTENTION);
	CHECK(ref != NULL);
	if (!ref)
		return;
	bio_model_freeze(ref);
	float want[N][3];
	for (int i = 0; i < N; i++) {
		const float *in[2] = {x[0] + i * S * S, x[1] + i * S * S};
		bio_model_forward(ref, in, 1, 0);
		memcpy(want[i], ref->logits, sizeof want[i]);
	}
	bio_model_free(ref);
	static const int threads[] = {1, 3}, batches[] = {N, 2};
	for (int ti = 0; ti < 2; ti++)
		for (int bi = 0; bi < 2; bi++) {
			struct bio_error err = {0};
			struct bio_infer e;
			int bs = batches[bi];
			struct bio_model *m =
				tiny_model(bio_infer_group(bs, threads[ti]), BIO_FUSION_ATTENTION);
			CHECK_EQ(bio_infer_init(&e, m, bs, threads[ti], &err), 0);
			CHECK(e.n_workers >= 1 && e.n_workers <= threads[ti]);
			CHECK_EQ(e.n_classes, 3);
			CHECK(e.has_alpha);
			for (int i0 = 0; i0 < N; i0 += bs) {
				int n = N - i0 < bs ? N - i0 : bs;
				for (int b = 0; b < 2; b++)
					memcpy(e.inputs[b], x[b] + (size_t)i0 * S * S,
					       (size_t)n * S * S * sizeof(float));
				bio_infer_run(&e, n);
				for (int i = 0; i < n; i++)
					CHECK(memcmp(e.logits + i * 3, want[i0 + i], sizeof want[0]) ==
					      0);
				for (int i = 0; i < n; i++) /* attention weights sum to 1 */
					CHECK(fabsf(e.alpha[2 * i] + e.alpha[2 * i + 1] - 1) < 1e-5f);
			}
			bio_infer_destroy(&e);
			bio_infer_destroy(&e); /* a destroyed one is zeroed: safe again */
		}
}

TEST(softmax_and_top_k)
{
	const float logits[4] = {1, 3, 3, -2};
	double p[4];
	bio_infer_softmax(p, logits, 4);
	CHECK(fabs(p[0] + p[1] + p[2] + p[3] - 1) < 1e-12);
	CHECK(fabs(p[1] - exp(0) / (2 + exp(-2) + exp(-5))) < 1e-12);
	int order[3];
	bio_infer_top_k(order, p, 4, 3);
	CHECK_EQ(order[0], 1); /* a tie goes to the lower index */
	CHECK_EQ(order[1], 2);
	CHECK_EQ(order[2], 0);
}

int main(void)
{
	RUN(infer_results_do_not_depend_on_batch_or_threads);
	RUN(softmax_and_top_k);
	return test_summary();
}
