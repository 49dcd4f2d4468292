/* Inference with a trained model: samples in batches through eval-mode copies of the model, one
 * per worker thread, on one pool. Every sample's result is bit-identical whatever the batch size,
 * the thread count and its batch neighbours (each layer computes each sample on its own; with
 * OpenBLAS doing the GEMMs, which does not promise that, every sample goes through alone). Then
 * the scores of the classes: softmax and top-k. */
#ifndef BIO_INFER_H
#define BIO_INFER_H

#include <stddef.h>

#include "bio/error.h"
#include "bio/model.h"
#include "bio/thread.h"

struct bio_infer {
	struct bio_model *model;   /* worker 0's model; its spec and fusion serve for all */
	struct bio_model **models; /* [n_workers], each for batches of `group` */
	int n_workers;
	struct bio_nn_pool *pool;  /* n_workers threads, the caller's included */
	int group;                 /* samples per forward pass of a worker */
	int batch_size, n_mod, n_classes, emb_dim, fused_dim, has_alpha;
	size_t pixels;                      /* input_size^2 */
	float *inputs[BIO_MODEL_MAX_MODS];  /* [batch][1][S][S] per model modality: fill these */
	float *logits;                      /* results [batch][n_classes] */
	float *emb[BIO_MODEL_MAX_MODS];     /* results [batch][embedding] per modality */
	float *fused;                       /* results [batch][fused_dim] */
	float *alpha;                       /* results [batch][n_mod]: fusion weights (has_alpha) */
};

/* The batch a model given to bio_infer_init must be built for (its max_batch): groups of up to
 * 8 samples per worker (the big weights read once per group), 1 with OpenBLAS. */
int bio_infer_group(int batch_size, int n_threads);
/* Sets in up for batches of batch_size with min(n_threads, 64, batch_size) workers: model
 * (taken; built for bio_infer_group's batch) is worker 0's, the others are clones, all frozen.
 * On failure in holds nothing and model is freed. */
int bio_infer_init(struct bio_infer *in, struct bio_model *model, int batch_size, int n_threads,
		   struct bio_error *err);
/* Runs samples [0, n) of in->inputs (n <= batch_size) through the workers; the results fill
 * rows [0, n) of logits, emb, fused and alpha. */
void bio_infer_run(struct bio_infer *in, int n);
/* Frees what in holds (the models included); safe on a zeroed one. */
void bio_infer_destroy(struct bio_infer *in);

/* Softmax in double of n logits into probs[n]. */
void bio_infer_softmax(double *probs, const float *logits, int n);
/* Indices of the k largest of probs[n] into order[0..k), ties to the lower index. */
void bio_infer_top_k(int *order, const double *probs, int n, int k);

#endif
