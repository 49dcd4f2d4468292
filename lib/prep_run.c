/* A manifest's records prepared on threads, in order (see prep_run.h). */
#include "bio/prep_run.h"

#include <stdlib.h>
#include <string.h>

#include "bio/thread.h"

#ifndef BIO_VERSION
#define BIO_VERSION "0.1.0"
#endif

struct bio_prep_run {
	const struct bio_prep_params *params; /* [n_mod] */
	int n_mod, n_threads;
	size_t pixels; /* S * S */
	struct bio_prep_scratch **scratch; /* one per worker */
	size_t window, n_free;
	struct bio_prep_job *jobs;       /* [window] */
	struct bio_prep_job **free_jobs; /* [n_free] */
	struct bio_omap *map;
};

/* Appends s[0..len) and a NUL to job->strs (growing it); returns the offset, or -1 on ENOMEM.
 * s NULL reserves the room. */
static long long job_add_str(struct bio_prep_job *job, size_t *used, const char *s, size_t len)
{
	if (*used + len + 1 > job->strs_cap) {
		size_t cap = job->strs_cap ? job->strs_cap : 256;
		while (cap < *used + len + 1)
			cap *= 2;
		char *p = realloc(job->strs, cap);
		if (!p)
			return -1;
		job->strs = p;
		job->strs_cap = cap;
	}
	size_t off = *used;
	if (s)
		memcpy(job->strs + off, s, len);
	job->strs[off + len] = '\0';
	*used += len + 1;
	return (long long)off;
}

/* Appends root "/" path (or path alone when it is absolute or root is NULL); offset or -1. */
static long long job_add_path(struct bio_prep_job *job, size_t *used, const char *root,
			      const char *path, size_t len)
{
	if (!root || (len > 0 && path[0] == '/'))
		return job_add_str(job, used, path, len);
	size_t rl = strlen(root);
	long long off = job_add_str(job, used, NULL, rl + 1 + len);
	if (off >= 0) {
		char *p = job->strs + off;
		memcpy(p, root, rl);
		p[rl] = '/';
		memcpy(p + rl + 1, path, len);
	}
	return off;
}

int bio_prep_job_fill(struct bio_prep_job *job, struct bio_stream_reader *r,
		      const struct bio_value *rec, const struct bio_header *h, const char *root,
		      struct bio_error *err)
{
	const char *s;
	size_t len, used = 0;
	long long off;
	int rc;

	char *const *modalities = h->modalities;
	int n_mod = h->n_mod;
	job->index = bio_stream_reader_record_index(r);
	if ((rc = bio_record_get_label(&job->label, h, r, rec, "label", 0, err)) < 0)
		return rc;
	static const char *const keys[] = {"id", "identity", "split"};
	size_t *offs[] = {&job->off_id, &job->off_identity, &job->off_split};
	for (int k = 0; k < 3; k++) {
		if ((rc = bio_record_get_str(&s, &len, r, rec, keys[k], err)) < 0)
			return rc;
		if ((off = job_add_str(job, &used, s, len)) < 0)
			goto nomem;
		*offs[k] = (size_t)off;
	}
	for (int m = 0; m < n_mod; m++) {
		if ((rc = bio_record_get_str(&s, &len, r, rec, modalities[m], err)) < 0)
			return rc;
		if (memchr(s, '\0', len))
			return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: key '%s': NUL in path",
					     bio_stream_reader_source(r),
					     (unsigned long long)job->index, modalities[m]);
		if ((off = job_add_path(job, &used, root, s, len)) < 0)
			goto nomem;
		job->off_path[m] = (size_t)off;
	}
	return 0;
nomem:
	return bio_error_set(err, BIO_ENOMEM, "%s: record %llu: out of memory",
			     bio_stream_reader_source(r), (unsigned long long)job->index);
}

static void prep_work(void *ud, int worker, void *slot)
{
	const struct bio_prep_run *run = ud;
	struct bio_prep_job *job = slot;

	job->rc = 0;
	memset(job->fp, 0, sizeof job->fp);
	memset(job->iris, 0, sizeof job->iris);
	for (int m = 0; m < run->n_mod && job->rc == 0; m++)
		job->rc = bio_prep_file_info(job->out + (size_t)m * run->pixels,
					     job->strs + job->off_path[m], &run->params[m],
					     run->scratch[worker], &job->fp[m], &job->iris[m],
					     &job->err);
}

struct bio_prep_run *bio_prep_run_new(const struct bio_prep_params *p, int n_mod, int n_threads,
				      struct bio_error *err)
{
	struct bio_prep_run *run = calloc(1, sizeof *run);
	if (!run)
		goto nomem;
	run->params = p;
	run->n_mod = n_mod;
	run->n_threads = n_threads > 1 ? n_threads : 1;
	run->window = run->n_threads > 1 ? (size_t)run->n_threads * 4 : 1;
	run->pixels = (size_t)p->size * p->size;
	run->jobs = calloc(run->window, sizeof *run->jobs);
	run->free_jobs = calloc(run->window, sizeof *run->free_jobs);
	run->scratch = calloc((size_t)run->n_threads, sizeof *run->scratch);
	if (!run->jobs || !run->free_jobs || !run->scratch)
		goto nomem;
	for (int i = 0; i < run->n_threads; i++)
		if (!(run->scratch[i] = bio_prep_scratch_new()))
			goto nomem;
	for (size_t i = 0; i < run->window; i++) {
		run->jobs[i].out = malloc((size_t)n_mod * run->pixels * sizeof(float));
		if (!run->jobs[i].out) {
			bio_error_set(err, BIO_ENOMEM, "out of memory for %zu samples of %zu floats",
				      run->window, (size_t)n_mod * run->pixels);
			bio_prep_run_free(run);
			return NULL;
		}
		run->free_jobs[run->n_free++] = &run->jobs[i];
	}
	run->map = bio_omap_new(run->n_threads, run->window, prep_work, run, err);
	if (!run->map) {
		bio_prep_run_free(run);
		return NULL;
	}
	return run;
nomem:
	bio_prep_run_free(run);
	bio_error_set(err, BIO_ENOMEM, "out of memory");
	return NULL;
}

struct bio_prep_job *bio_prep_run_slot(struct bio_prep_run *run)
{
	return run->n_free ? run->free_jobs[--run->n_free] : NULL;
}

void bio_prep_run_submit(struct bio_prep_run *run, struct bio_prep_job *job)
{
	bio_omap_submit(run->map, job);
}

struct bio_prep_job *bio_prep_run_collect(struct bio_prep_run *run)
{
	struct bio_prep_job *job = bio_omap_collect(run->map);
	if (job)
		run->free_jobs[run->n_free++] = job;
	return job;
}

void bio_prep_run_free(struct bio_prep_run *run)
{
	if (!run)
		return;
	bio_omap_free(run->map);
	for (size_t i = 0; run->jobs && i < run->window; i++) {
		free(run->jobs[i].out);
		free(run->jobs[i].strs);
	}
	free(run->jobs);
	free(run->free_jobs);
	for (int i = 0; run->scratch && i < run->n_threads; i++)
		bio_prep_scratch_free(run->scratch[i]);
	free(run->scratch);
	free(run);
}

/* 1 when modality params p run a segmentation (fingerprint or iris) before the resize. */
static int segmented(const struct bio_prep_params *p)
{
	return p->fp.enabled || p->iris.enabled;
}

/* The key "segment" and its map {modality: pack_one(the modality's params, its index, ctx)} over
 * the n_seg segmented modalities; nothing when n_seg is 0. The status of the last pack. */
static int pack_segment(struct bio_stream_writer *w, const struct bio_prep_params *p,
			char *const *modalities, int n_mod, size_t n_seg,
			int (*pack_one)(struct bio_stream_writer *w, const struct bio_prep_params *pm,
					int m, const void *ctx),
			const void *ctx)
{
	int rc = 0;
	if (n_seg == 0)
		return 0;
	bio_pack_str(w, "segment");
	bio_pack_map(w, n_seg);
	for (int m = 0; m < n_mod; m++) {
		if (!segmented(&p[m]))
			continue;
		bio_pack_str(w, modalities[m]);
		rc = pack_one(w, &p[m], m, ctx);
	}
	return rc;
}

/* The header's settings of a segmented modality: {strip: [height, width]} or {block, threshold,
 * min_foreground, margin}. */
static int pack_settings(struct bio_stream_writer *w, const struct bio_prep_params *pm, int m,
			 const void *ctx)
{
	(void)m;
	(void)ctx;
	if (pm->iris.enabled) {
		bio_pack_map(w, 1);
		bio_pack_str(w, "strip");
		bio_pack_array(w, 2);
		bio_pack_int(w, pm->iris.strip_height);
		return bio_pack_int(w, pm->iris.strip_width);
	}
	bio_pack_map(w, 4);
	bio_pack_kv_int(w, "block", pm->fp.block);
	bio_pack_kv_double(w, "threshold", pm->fp.threshold);
	bio_pack_kv_double(w, "min_foreground", pm->fp.min_foreground);
	return bio_pack_kv_int(w, "margin", pm->fp.margin);
}

/* What the segmentation of modality m found in the job (ctx): {pupil: [x, y, r], iris: [x, y, r]}
 * or {foreground, crop: [x, y, side], mean, std}. */
static int pack_found(struct bio_stream_writer *w, const struct bio_prep_params *pm, int m,
		      const void *ctx)
{
	const struct bio_prep_job *job = ctx;
	int rc = 0;
	if (pm->iris.enabled) {
		const struct bio_iris_segment_info *g = &job->iris[m];
		bio_pack_map(w, 2);
		bio_pack_str(w, "pupil");
		bio_pack_array(w, 3);
		for (int k = 0; k < 3; k++)
			bio_pack_double(w, g->pupil[k]);
		bio_pack_str(w, "iris");
		rc = bio_pack_array(w, 3);
		for (int k = 0; k < 3; k++)
			rc = bio_pack_double(w, g->iris[k]);
		return rc;
	}
	const struct bio_fp_segment_info *f = &job->fp[m];
	bio_pack_map(w, 4);
	bio_pack_kv_double(w, "foreground", f->foreground);
	bio_pack_str(w, "crop");
	bio_pack_array(w, 3);
	bio_pack_int(w, f->crop_x);
	bio_pack_int(w, f->crop_y);
	bio_pack_int(w, f->side);
	bio_pack_kv_double(w, "mean", f->mean);
	return bio_pack_kv_double(w, "std", f->std);
}

int bio_prep_write_header(struct bio_stream_writer *w, const struct bio_value *meta,
			  const struct bio_prep_params *p, char *const *modalities, int n_mod,
			  const struct bio_config *cfg, struct bio_error *err)
{
	static const char *const digest_keys[] = {"prep"};
	char digest[65];
	int rc = bio_config_digest(cfg, digest_keys, 1, digest, err);
	if (rc < 0)
		return rc;
	static const char *const own[] = {"program", "version", "shape", "normalize", "resize",
					  "quantize", "prep_digest", "segment"};
	const size_t n_own = sizeof(own) / sizeof(own[0]);
	size_t n_seg = 0;
	for (int m = 0; m < n_mod; m++)
		n_seg += (size_t)segmented(&p[m]);
	/* (segment only when a modality is segmented) */
	bio_stream_begin_header_carry(w, "samples", meta, own, n_own, n_own - (n_seg == 0));
	bio_pack_kv_str(w, "program", "bio-prep");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	bio_pack_str(w, "shape");
	bio_pack_array(w, 3);
	bio_pack_int(w, 1);
	bio_pack_int(w, p->size);
	bio_pack_int(w, p->size);
	bio_pack_str(w, "normalize");
	bio_pack_map(w, 2);
	bio_pack_kv_double(w, "mean", p->mean);
	bio_pack_kv_double(w, "std", p->std);
	bio_pack_kv_str(w, "resize", p->filter == BIO_RESIZE_AREA ? "area" : "bilinear");
	bio_pack_str(w, "quantize");
	bio_pack_bool(w, p->quantize);
	pack_segment(w, p, modalities, n_mod, n_seg, pack_settings, NULL);
	bio_pack_kv_str(w, "prep_digest", digest);
	return 0; /* a write error: reported by bio_stream_finish */
}

/* One samples record: the job's strings, its tensors [1, size, size], what a segmentation found. */
static int write_sample(struct bio_stream_writer *w, const struct bio_prep_job *job,
			const struct bio_prep_params *p, char *const *modalities, int n_mod,
			uint32_t size)
{
	int64_t shape[3] = {1, size, size};
	size_t pixels = (size_t)size * size, n_seg = 0;
	for (int m = 0; m < n_mod; m++)
		n_seg += (size_t)segmented(&p[m]);

	bio_stream_begin_record(w);
	bio_pack_map(w, 4 + (size_t)n_mod + (n_seg > 0));
	bio_pack_kv_str(w, "id", job->strs + job->off_id);
	bio_pack_kv_int(w, "label", job->label);
	bio_pack_kv_str(w, "identity", job->strs + job->off_identity);
	bio_pack_kv_str(w, "split", job->strs + job->off_split);
	int rc = 0;
	for (int m = 0; m < n_mod; m++) {
		struct bio_tensor t;
		bio_tensor_view(&t, BIO_DTYPE_F32, 3, shape, job->out + (size_t)m * pixels);
		bio_pack_str(w, modalities[m]);
		rc = bio_pack_tensor(w, &t);
	}
	if (n_seg > 0)
		rc = pack_segment(w, p, modalities, n_mod, n_seg, pack_found, job);
	return rc;
}

/* The next record of r whose index modulo shard_n is shard_i: 1, 0 at the end, <0 on error. */
static int next_in_shard(struct bio_stream_reader *r, const struct bio_value **rec,
			 long long shard_i, long long shard_n, struct bio_error *err)
{
	int rc;
	do
		rc = bio_stream_read_record(r, rec, err);
	while (rc == 1 &&
	       (long long)(bio_stream_reader_record_index(r) % (uint64_t)shard_n) != shard_i);
	return rc;
}

/* How many of job's images a segmentation refused. */
static long long seg_failed(const struct bio_prep_run *run, const struct bio_prep_job *job)
{
	long long n = 0;
	for (int m = 0; m < run->n_mod; m++)
		n += (run->params[m].fp.enabled && job->fp[m].failed) ||
		     (run->params[m].iris.enabled && job->iris[m].failed);
	return n;
}

int bio_prep_run_all(struct bio_prep_run *run, struct bio_stream_reader *r,
		     const struct bio_header *h, struct bio_stream_writer *w,
		     const struct bio_prep_run_opts *o, struct bio_prep_counts *c,
		     struct bio_error *err)
{
	/* Read records into free slots, collect finished ones in order, write them. */
	int input_done = 0, rc;
	struct bio_prep_job *job;
	memset(c, 0, sizeof *c);
	for (int m = 0; m < run->n_mod; m++)
		c->segmented |= segmented(&run->params[m]);
	for (;;) {
		while (!input_done && (job = bio_prep_run_slot(run))) {
			const struct bio_value *rec;
			if ((rc = next_in_shard(r, &rec, o->shard_i, o->shard_n, err)) < 0)
				return rc;
			if ((input_done = rc == 0))
				break;
			if ((rc = bio_prep_job_fill(job, r, rec, h, o->root, err)) < 0)
				return rc;
			bio_prep_run_submit(run, job);
		}
		if (!(job = bio_prep_run_collect(run)))
			return 0; /* input done and nothing in flight */
		if (job->rc < 0) {
			if (!o->keep_going) {
				if (err)
					*err = job->err;
				return job->rc;
			}
			if (o->say)
				o->say(o->ud, job->err.msg);
			c->n_failed++;
			c->n_seg_failed += seg_failed(run, job);
			continue;
		}
		rc = write_sample(w, job, run->params, h->modalities, run->n_mod,
				  run->params[0].size);
		if (rc < 0 && rc != BIO_EPIPE)
			return 0; /* a write error: reported by bio_stream_finish */
		if (o->progress)
			o->progress(o->ud, (unsigned long long)++c->n_done);
		if (rc == BIO_EPIPE)
			return 0; /* downstream went away: stop quietly */
	}
}

int bio_prep_write_trailer(struct bio_stream_writer *w, const struct bio_prep_counts *c,
			   struct bio_error *err)
{
	/* (segment_failed: those of the failures a segmentation refused, when one runs) */
	const char *extra_keys[] = {"failed", "segment_failed"};
	int64_t extra_values[] = {c->n_failed, c->n_seg_failed};
	return bio_stream_finish(w, c->segmented ? 2 : 1, extra_keys, extra_values, err);
}
