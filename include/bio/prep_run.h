/* Preprocessing a manifest stream (bio-prep's engine): each record's strings and image paths
 * copied into a job slot, the images prepared on n threads through the ordered map (bio_omap),
 * the jobs handed back in the order they were submitted, so the output is byte-identical for
 * every thread count and memory does not depend on the number of images (a few slots per
 * thread); then the samples stream: its header, one record per sample, the trailer. */
#ifndef BIO_PREP_RUN_H
#define BIO_PREP_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/header.h"
#include "bio/prep.h"
#include "bio/stream.h"

/* One sample in flight: the strings of its manifest record, its output tensors, its outcome. */
struct bio_prep_job {
	uint64_t index; /* record index in the manifest */
	int64_t label;
	char *strs;     /* id, identity, split, then one path per modality, NUL-separated */
	size_t strs_cap;
	size_t off_id, off_identity, off_split, off_path[BIO_HEADER_MAX_MODS];
	float *out;     /* n_mod * S * S floats, the modalities in header order */
	struct bio_fp_segment_info fp[BIO_HEADER_MAX_MODS]; /* what a segmentation found */
	struct bio_iris_segment_info iris[BIO_HEADER_MAX_MODS];
	int rc;         /* 0, or the error of preparing one of its images (err) */
	struct bio_error err;
};

/* Copies label, id, identity, split and one path per modality of h (borrowed) of manifest record
 * rec into job; a relative path gets root "/" in front (root NULL: paths as written). Errors name
 * the source, the record and the key. */
int bio_prep_job_fill(struct bio_prep_job *job, struct bio_stream_reader *r,
		      const struct bio_value *rec, const struct bio_header *h, const char *root,
		      struct bio_error *err);

struct bio_prep_run;

/* A new run preparing n_mod images per job, image m with params p[m] (borrowed; must outlive
 * the run; every p[m].size the same) on
 * n_threads threads, with 4 job slots per thread (1 for one thread). NULL on failure (err set). */
struct bio_prep_run *bio_prep_run_new(const struct bio_prep_params *p, int n_mod, int n_threads,
				      struct bio_error *err);
/* A free job slot to fill and submit (borrowed from run), or NULL when every slot is in flight. */
struct bio_prep_job *bio_prep_run_slot(struct bio_prep_run *run);
/* Hands a filled slot to the threads. */
void bio_prep_run_submit(struct bio_prep_run *run, struct bio_prep_job *job);
/* The oldest submitted job once it is done (waits), or NULL when none is in flight; it stays
 * valid until the next bio_prep_run_slot. */
struct bio_prep_job *bio_prep_run_collect(struct bio_prep_run *run);
/* Stops the threads and frees run (NULL is a no-op). */
void bio_prep_run_free(struct bio_prep_run *run);

/* Writes the samples header to w (borrowed): the manifest meta's keys carried forward, ours
 * replaced (shape, normalize, resize, quantize, the segmentation settings of the n_mod
 * modalities, params p[m] for modalities[m]), with the digest of cfg's prep section. Fails only
 * when cfg has none (BIO_ENOTFOUND); a write error is left for bio_prep_write_trailer. */
int bio_prep_write_header(struct bio_stream_writer *w, const struct bio_value *meta,
			  const struct bio_prep_params *p, char *const *modalities, int n_mod,
			  const struct bio_config *cfg, struct bio_error *err);

/* What bio_prep_run_all does besides preparing (hooks may be NULL). */
struct bio_prep_run_opts {
	int keep_going;   /* a sample whose image fails is skipped (said, counted), not an error */
	long long shard_i, shard_n; /* only records whose index modulo shard_n is shard_i */
	const char *root; /* relative image paths against root (NULL: as written) */
	void *ud;
	void (*say)(void *ud, const char *msg); /* a skipped sample's error */
	void (*progress)(void *ud, unsigned long long done); /* samples written so far */
};

/* The samples written and failed (of these, the failures a segmentation refused). */
struct bio_prep_counts {
	long long n_done, n_failed, n_seg_failed;
	int segmented; /* a modality is segmented: the trailer says segment_failed */
};

/* Prepares every record of manifest r (header h) in o's shard on run and writes one samples
 * record each to w (all borrowed), in input order, counting into *c. Fails on a bad record or
 * (without keep_going) an image that fails; stops quietly when w's reader went away or a write
 * failed, for bio_prep_write_trailer to report. */
int bio_prep_run_all(struct bio_prep_run *run, struct bio_stream_reader *r,
		     const struct bio_header *h, struct bio_stream_writer *w,
		     const struct bio_prep_run_opts *o, struct bio_prep_counts *c,
		     struct bio_error *err);
/* Writes the trailer to w: the count, "failed" and, when a modality is segmented,
 * "segment_failed". BIO_EPIPE when w's reader went away, another error when a write failed. */
int bio_prep_write_trailer(struct bio_stream_writer *w, const struct bio_prep_counts *c,
			   struct bio_error *err);

#endif
