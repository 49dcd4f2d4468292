/* Checkpoints: bio-streams of kind "checkpoint" with one record {name, tensor} per state_dict
 * entry of the model (PyTorch names and layouts; f32, or f16 with half; num_batches_tracked as an
 * i64 scalar), then the optimizer moments as records "optimizer.<param>.exp_avg" /
 * ".exp_avg_sq" (Adam, AdamW) or ".momentum_buffer" (SGD), always f32. The header meta holds
 * the model spec ("model": input_size, channels, kernel, hidden, embedding, dropout, fusion,
 * modalities, n_classes), label names, epoch/step, seed and RNG state, optimizer and scheduler
 * state, early-stopping state and the effective config as YAML text. Each record carries a
 * "crc32c" of its name, dtype, shape and data, the trailer "meta_crc32c" over the meta's encoding,
 * and the meta "checksum": "crc32c"; a load verifies them all (a checkpoint without the marker,
 * written before checksums existed, loads unchecked: meta->checksummed = 0). Files are written to a temp
 * file beside the target, fsynced and renamed into place, so a crash never leaves a partial
 * checkpoint under the final name. */
#ifndef BIO_CHECKPOINT_H
#define BIO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"
#include "bio/model.h"
#include "bio/optim.h"

struct bio_ckpt_meta {
	int64_t epoch;         /* epochs completed: the next epoch to train */
	int64_t step;          /* optimizer steps taken */
	uint64_t seed;         /* experiment seed */
	uint64_t rng[4];       /* training RNG state after the last completed epoch */
	char **labels;         /* label names, n_labels (owned after a load) */
	size_t n_labels;
	char *config_yaml;     /* effective config (owned after a load; may be NULL) */
	double best_metric;    /* early stopping: best validation metric so far */
	int64_t best_epoch;    /* epoch (0-based) that reached it, -1 none */
	int64_t bad_epochs;    /* epochs since the best */
	double val_loss, val_accuracy; /* of the last completed epoch (NaN when not validated) */
	int half;              /* weights stored as f16 */
	int checksummed;       /* after a load: 1 when every checksum was verified, 0 for a
				* checkpoint written before checksums (loaded unchecked) */
};

/* Writes a checkpoint of m (with o's moments when o is non-NULL, s's state when non-NULL) to
 * path atomically. Borrowed arguments. */
int bio_checkpoint_save(const char *path, const struct bio_model *m, const struct bio_optim *o,
			const struct bio_sched *s, const struct bio_ckpt_meta *meta,
			struct bio_error *err);

/* Makes to a second name of the checkpoint file from (just saved) atomically, without writing
 * it again: a hard link renamed over to (a later save of either name replaces that name's file
 * only); where the file system has no hard links, a copy written as bio_checkpoint_save does.
 * Returns 0, or an error naming to. */
int bio_checkpoint_link(const char *from, const char *to, struct bio_error *err);

/* Reads the checkpoint at path: builds *model_out (new; batches up to max_batch) from the spec in
 * its meta and loads every tensor, checking names, dtypes and shapes (a missing, extra or
 * misshapen tensor, a truncated stream or a bad meta is an error naming the file). When o is
 * non-NULL its moments block must be model_out's (set after the model is built: pass o with
 * kind set; o->m/v/n are filled), and the optimizer records and state are required; s (may be
 * NULL) receives the scheduler state. meta (may be NULL) receives the rest; free its strings
 * with bio_ckpt_meta_destroy. */
int bio_checkpoint_load(struct bio_model **model_out, struct bio_optim *o, struct bio_sched *s,
			struct bio_ckpt_meta *meta, const char *path, int max_batch,
			struct bio_error *err);

void bio_ckpt_meta_destroy(struct bio_ckpt_meta *meta);

/* Points o's moment arrays at m's moments block (m and v halves). */
void bio_optim_bind(struct bio_optim *o, struct bio_model *m);

#endif
