/* Preprocessing a manifest stream: each record's strings and image paths copied into a job slot,
 * the images prepared on n threads through the ordered map (bio_omap), the jobs handed back in
 * the order they were submitted, so the output is byte-identical for every thread count and
 * memory does not depend on the number of images (a few slots per thread). */
#ifndef BIO_PREP_RUN_H
#define BIO_PREP_RUN_H

#include <stddef.h>
#include <stdint.h>

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

#endif
