/* Batching a samples stream (bio-batch's engine): one split selected, shuffled with an order that
 * depends only on (seed, epoch) (bio/batch.h), cut into batches, repeated for the epochs asked;
 * a run started at epoch k gives exactly the tail of an uninterrupted run. From regular files it
 * indexes where each selected record starts in one pass and re-reads records in shuffled order,
 * so memory holds one batch, not the data set; from a pipe it buffers the selected samples in
 * memory, up to max_buffer bytes. With augmentation each sample of each epoch is written
 * transformed (bio/augment.h), and the record carries the drawn parameters (aug_<modality>). */
#ifndef BIO_BATCH_RUN_H
#define BIO_BATCH_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/header.h"
#include "bio/stream.h"

/* What to batch and how. */
struct bio_batch_opts {
	const char *split;   /* batch.split (borrowed) */
	int64_t batch_size;  /* batch.batch_size */
	int64_t epochs;      /* batch.epochs, in all */
	int64_t start_epoch; /* the first written (0-based) */
	uint64_t seed;       /* batch.seed */
	int drop_last;       /* batch.drop_last: leave out each epoch's incomplete batch */
	int shuffle;         /* 0: the input order in every epoch */
	int64_t max_buffer;  /* batch.max_buffer_bytes: held in memory from a pipe */
};

/* Fills o from cfg's batch section (start_epoch 0, shuffle 1); o->split borrowed from cfg. */
int bio_batch_opts_from_config(struct bio_batch_opts *o, const struct bio_config *cfg,
			       struct bio_error *err);

struct bio_batch_run;

/* Reads every record of r (borrowed; header h already read, both must outlive the run) and
 * indexes those of o's split (o copied); augmentation per modality from cfg's augment section.
 * NULL on failure (err names the source, record and key). */
struct bio_batch_run *bio_batch_run_new(struct bio_stream_reader *r, const struct bio_header *h,
					const struct bio_batch_opts *o,
					const struct bio_config *cfg, struct bio_error *err);
/* Frees run (NULL is a no-op). */
void bio_batch_run_free(struct bio_batch_run *run);
/* The selected samples, those of them held in memory (from a pipe), the batches per epoch. */
void bio_batch_run_counts(const struct bio_batch_run *run, size_t *n_samples, size_t *n_held,
			  uint64_t *batches_per_epoch);
/* Writes the batches header to w (borrowed): the input meta carried forward, ours replaced. */
void bio_batch_run_write_header(struct bio_batch_run *run, struct bio_stream_writer *w);
/* Writes the batches of epochs [start_epoch, epochs) to w. Fails when a record cannot be read
 * again; a write error stops the writing quietly, for bio_stream_finish to report. */
int bio_batch_run_write(struct bio_batch_run *run, struct bio_stream_writer *w,
			struct bio_error *err);

#endif
