/* Batched, multi-threaded inference over eval-mode copies of one model, and the class scores
 * (see infer.h). */
#include "bio/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bio/kernels.h"
#include "bio/nn.h"

int bio_infer_group(int batch_size, int n_threads)
{
	int n_workers = n_threads < 64 ? n_threads : 64;
	if (n_workers > batch_size)
		n_workers = batch_size;
	if (n_workers < 1)
		n_workers = 1;
	int group = (batch_size + n_workers - 1) / n_workers;
	if (group > 8)
		group = 8;
	if (bio_kernels_uses_openblas())
		group = 1;
	return group;
}

int bio_infer_init(struct bio_infer *in, struct bio_model *model, int batch_size, int n_threads,
		   struct bio_error *err)
{
	memset(in, 0, sizeof *in);
	in->batch_size = batch_size;
	in->n_workers = n_threads < 64 ? n_threads : 64;
	if (in->n_workers > batch_size)
		in->n_workers = batch_size;
	if (in->n_workers < 1)
		in->n_workers = 1;
	in->group = bio_infer_group(batch_size, n_threads);
	in->models = calloc((size_t)in->n_workers, sizeof *in->models);
	if (!in->models) {
		bio_model_free(model);
		return bio_error_set(err, BIO_ENOMEM, "inference: out of memory");
	}
	in->models[0] = in->model = model;
	in->pool = bio_nn_pool_new(in->n_workers);
	if (!in->pool) {
		bio_infer_destroy(in);
		return bio_error_set(err, BIO_ENOMEM, "cannot start %d threads", in->n_workers);
	}
	for (int w = 1; w < in->n_workers; w++)
		if (!(in->models[w] = bio_model_clone(model, in->group, err))) {
			bio_infer_destroy(in);
			return err ? err->code : BIO_ENOMEM;
		}
	for (int w = 0; w < in->n_workers; w++)
		bio_model_freeze(in->models[w]);
	const struct bio_model_spec *spec = &model->spec;
	in->n_mod = spec->n_mod;
	in->n_classes = spec->n_classes;
	in->emb_dim = spec->embedding;
	in->fused_dim = bio_fusion_out_dim(&model->fusion);
	in->has_alpha = spec->fusion != BIO_FUSION_CONCAT;
	in->pixels = (size_t)spec->input_size * (size_t)spec->input_size;
	size_t nb = (size_t)batch_size;
	int ok = 1;
	for (int m = 0; m < in->n_mod; m++) {
		ok &= (in->inputs[m] = calloc(nb * in->pixels, sizeof(float))) != NULL;
		ok &= (in->emb[m] = calloc(nb * (size_t)in->emb_dim, sizeof(float))) != NULL;
	}
	ok &= (in->logits = calloc(nb * (size_t)in->n_classes, sizeof(float))) != NULL;
	ok &= (in->fused = calloc(nb * (size_t)in->fused_dim, sizeof(float))) != NULL;
	ok &= (in->alpha = calloc(nb * (size_t)in->n_mod, sizeof(float))) != NULL;
	if (!ok) {
		bio_infer_destroy(in);
		return bio_error_set(err, BIO_ENOMEM, "inference: out of memory for batches of %d",
				     batch_size);
	}
	return 0;
}

/* Worker index's share of the batch: groups of in->group samples, index, index + n_workers, ... */
static void worker_run(struct bio_infer *in, int index, int n)
{
	struct bio_model *m = in->models[index];
	int n_mod = m->spec.n_mod, g = in->group;
	for (int i = index * g; i < n; i += in->n_workers * g) {
		int nb = n - i < g ? n - i : g;
		const float *inputs[BIO_MODEL_MAX_MODS];
		for (int b = 0; b < n_mod; b++)
			inputs[b] = in->inputs[b] + (size_t)i * in->pixels;
		bio_model_forward(m, inputs, nb, 0);
		memcpy(in->logits + (size_t)i * in->n_classes, m->logits,
		       (size_t)nb * in->n_classes * sizeof(float));
		for (int b = 0; b < n_mod; b++)
			memcpy(in->emb[b] + (size_t)i * in->emb_dim, bio_model_embedding(m, b),
			       (size_t)nb * in->emb_dim * sizeof(float));
		memcpy(in->fused + (size_t)i * in->fused_dim, m->fused,
		       (size_t)nb * in->fused_dim * sizeof(float));
		for (int k = 0; k < nb && in->has_alpha; k++) /* weighted: one row for all */
			memcpy(in->alpha + (size_t)(i + k) * n_mod,
			       m->fusion.alpha + (m->spec.fusion == BIO_FUSION_ATTENTION
						  ? (size_t)k * n_mod : 0),
			       (size_t)n_mod * sizeof(float));
	}
}

struct run {
	struct bio_infer *in;
	int n;
};

/* The pool's range of workers (one each: there are as many threads as workers). */
static void workers_range(void *ctx, size_t begin, size_t end, int thread)
{
	const struct run *r = ctx;
	(void)thread;
	for (size_t w = begin; w < end; w++)
		worker_run(r->in, (int)w, r->n);
}

void bio_infer_run(struct bio_infer *in, int n)
{
	if (n <= 0)
		return;
	struct run r = {in, n};
	int n_active = in->n_workers < n ? in->n_workers : n;
	bio_nn_parallel_for(in->pool, (size_t)n_active, workers_range, &r);
}

void bio_infer_destroy(struct bio_infer *in)
{
	for (int m = 0; m < BIO_MODEL_MAX_MODS; m++) {
		free(in->inputs[m]);
		free(in->emb[m]);
	}
	free(in->logits);
	free(in->fused);
	free(in->alpha);
	for (int w = 0; in->models && w < in->n_workers; w++)
		bio_model_free(in->models[w]);
	free(in->models);
	bio_nn_pool_free(in->pool);
	memset(in, 0, sizeof *in);
}

void bio_infer_softmax(double *probs, const float *logits, int n)
{
	double mx = logits[0], sum = 0;
	for (int c = 1; c < n; c++)
		if (logits[c] > mx)
			mx = logits[c];
	for (int c = 0; c < n; c++) {
		probs[c] = exp((double)logits[c] - mx);
		sum += probs[c];
	}
	for (int c = 0; c < n; c++)
		probs[c] /= sum;
}

void bio_infer_top_k(int *order, const double *probs, int n, int k)
{
	for (int i = 0; i < k; i++) {
		int best = -1;
		for (int c = 0; c < n; c++) {
			int taken = 0;
			for (int j = 0; j < i; j++)
				taken |= order[j] == c;
			if (!taken && (best < 0 || probs[c] > probs[best]))
				best = c;
		}
		order[i] = best;
	}
}
