/* A manifest's records prepared on threads, in order (see prep_run.h). */
#include "bio/prep_run.h"

#include <stdlib.h>
#include <string.h>

#include "bio/thread.h"

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
