/* Predicting identities (bio-infer's engine): a trained checkpoint (a file, or a models:/ or
 * runs:/ URI of the tracking store) applied to a samples stream in batches through bio/infer.h,
 * written as a predictions stream or CSV: per sample its id, true label, predicted identity with
 * its name, the top-k classes with softmax scores, and on request the embedding of each modality
 * branch, the fused one and the fusion weights. Samples are checked against the model
 * (modalities, input shape, label names) before any is predicted.
 *
 * Order of use: bio_predict_opts_from_config, bio_predict_model_file, bio_predict_new,
 * bio_predict_check_samples, bio_predict_write_header, bio_predict_all, bio_predict_finish,
 * bio_predict_free. */
#ifndef BIO_PREDICT_H
#define BIO_PREDICT_H

#include <stdint.h>
#include <stdio.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/header.h"
#include "bio/stream.h"

/* What the caller does with what prediction has to say (every hook may be NULL). */
struct bio_predict_hooks {
	void *ud;
	/* one line for the user (standard error: "bio-infer: " msg "\n") */
	void (*say)(void *ud, const char *msg);
	/* done samples predicted so far */
	void (*progress)(void *ud, unsigned long long done);
};

/* What to predict and how. */
struct bio_predict_opts {
	int batch_size;       /* infer.batch_size: samples per forward pass */
	int topk;             /* infer.topk: classes kept per sample (cut to the model's) */
	int embeddings;       /* infer.embeddings: also emb_<modality>, emb_fused */
	const char *split;    /* infer.split (borrowed); NULL: every split */
	int csv;              /* CSV instead of a predictions stream */
	long long shard_i, shard_n; /* only records whose index modulo shard_n is shard_i */
	int n_threads;        /* the thread budget (-j) */
	int verbose;          /* say that a checkpoint without checksums was loaded unchecked */
	struct bio_predict_hooks hooks;
};

/* Fills the fields of o that cfg's infer section sets (split "" is NULL; borrowed from cfg); the
 * others are left as they are. */
int bio_predict_opts_from_config(struct bio_predict_opts *o, const struct bio_config *cfg,
				 struct bio_error *err);
/* The checkpoint file of model (borrowed) into *path (new): model itself, or for models:/ and
 * runs:/ the file the tracking store or server at cfg's tracking.uri resolves it to (from a
 * server, downloaded into tracking.cache_dir). */
int bio_predict_model_file(char **path, const struct bio_config *cfg, const char *model,
			   struct bio_error *err);

struct bio_predict;

/* Loads the checkpoint path (borrowed) and sets up its workers for o (copied; its strings must
 * outlive the run). OpenBLAS is set to one thread (the workers are the threads). NULL on failure
 * (err names the file), also when the checkpoint's label names do not match its classes. */
struct bio_predict *bio_predict_new(const char *path, const struct bio_predict_opts *o,
				    struct bio_error *err);
/* Frees p (NULL is a no-op). */
void bio_predict_free(struct bio_predict *p);
/* Checks the samples header h (read by bio_header_read from r, both borrowed) against the
 * model: its modalities, input shape and, when the samples carry label names, the label set.
 * model_name (borrowed) names the model in messages. */
int bio_predict_check_samples(struct bio_predict *p, struct bio_stream_reader *r,
			      const struct bio_header *h, const char *model_name,
			      struct bio_error *err);
/* Writes the CSV column names, or the predictions stream's header, to out (borrowed; must
 * outlive p); out_name names it in messages, model (borrowed) is recorded in the header. */
int bio_predict_write_header(struct bio_predict *p, FILE *out, const char *out_name,
			     const char *model, struct bio_error *err);
/* Predicts every sample of r (header h) in the shard and split and writes one prediction each;
 * *n_written is their number. Fails on a bad record, naming the source, record and key; a write
 * error is left for bio_predict_finish (or the caller's close of out) to report. */
int bio_predict_all(struct bio_predict *p, struct bio_stream_reader *r, const struct bio_header *h,
		    uint64_t *n_written, struct bio_error *err);
/* Writes the predictions stream's trailer (nothing for CSV); BIO_EPIPE when its reader went
 * away, another error when a write failed. */
int bio_predict_finish(struct bio_predict *p, struct bio_error *err);

#endif
