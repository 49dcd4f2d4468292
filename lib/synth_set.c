/* A synthetic data set written to disk on threads (see synth_set.h). */
#include "bio/synth_set.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bio/fs.h"
#include "bio/image.h"
#include "bio/thread.h"

/* One write of a set: the work items and their state, shared by the workers. */
struct job {
	const struct bio_synth_set *s;
	int subject_digits, sample_digits;
	size_t n_items, per_subject; /* work items: subject x side x (iris, fingers...) */
	pthread_mutex_t lock;
	size_t next;           /* next item to take */
	size_t n_done;         /* images written */
	size_t fail_item;      /* lowest failed item, n_items when none */
	struct bio_error fail; /* its error */
};

static int digits(uint32_t n)
{
	int d = 1;
	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

int bio_synth_set_from_config(struct bio_synth_set *s, const struct bio_config *c,
			      struct bio_error *err)
{
	int64_t v;
	const char *fmt;
	int rc;
	memset(s, 0, sizeof *s);
	bio_synth_params_default(&s->params);
	s->do_iris = s->do_print = 1;
	if ((rc = bio_config_get_int_range(c, "synth.subjects", 1, BIO_SYNTH_MAX_SUBJECTS, &v,
					   err)))
		return rc;
	s->n_subjects = (uint32_t)v;
	if ((rc = bio_config_get_int_range(c, "synth.samples", 1, BIO_SYNTH_MAX_SAMPLES, &v, err)))
		return rc;
	s->n_samples = (uint32_t)v;
	if ((rc = bio_config_get_int_range(c, "synth.size", BIO_SYNTH_MIN_SIZE, BIO_SYNTH_MAX_SIZE,
					   &v, err)))
		return rc;
	s->params.size = (uint32_t)v;
	if ((rc = bio_config_get_str(c, "synth.format", &fmt, err)))
		return rc;
	if (strcmp(fmt, "bmp") && strcmp(fmt, "png"))
		return bio_error_set(err, BIO_EINVAL,
				     "%s: synth.format: invalid value '%s' (expected bmp or png)",
				     bio_config_origin(c, "synth.format"), fmt);
	s->png = !strcmp(fmt, "png");
	if ((rc = bio_config_get_double_range(c, "synth.noise", 0, 1, &s->params.noise, err)) ||
	    (rc = bio_config_get_double_range(c, "synth.variation", 0, 2, &s->params.variation,
					      err)) ||
	    (rc = bio_config_get_int_range(c, "experiment.seed", 0, INT64_MAX, &v, err)) ||
	    (rc = bio_config_get_bool(c, "synth.eyelashes", &s->params.eyelashes, err)))
		return rc;
	s->params.seed = (uint64_t)v;
	size_t n = bio_config_count(c, "synth.fingers");
	if (n == 0 || n > BIO_SYNTH_N_FINGERS) {
		if (bio_config_has(c, "synth.fingers"))
			return bio_error_set(err, BIO_EINVAL,
					     "%s: synth.fingers: expected 1 to %d finger names",
					     bio_config_origin(c, "synth.fingers"),
					     BIO_SYNTH_N_FINGERS);
		s->fingers[s->n_fingers++] = BIO_SYNTH_THUMB;
	}
	for (size_t i = 0; i < n && n <= BIO_SYNTH_N_FINGERS; i++) {
		const char *name = bio_config_item_at(c, "synth.fingers", i);
		int f = name ? bio_synth_finger_parse(name) : -1;
		for (int k = 0; k < s->n_fingers && f >= 0; k++)
			if (s->fingers[k] == f)
				f = -1;
		if (f < 0)
			return bio_error_set(err, BIO_EINVAL,
					     "%s: synth.fingers: invalid or repeated finger '%s'",
					     bio_config_origin(c, "synth.fingers"), name ? name : "");
		s->fingers[s->n_fingers++] = f;
	}
	return 0;
}

size_t bio_synth_set_series(const struct bio_synth_set *s)
{
	return 2 * (size_t)(s->do_iris + (s->do_print ? s->n_fingers : 0));
}

/* Renders and writes every sample of work item i. */
static int run_item(struct job *j, size_t i, uint8_t *pixels, char *path, size_t path_size,
		    struct bio_error *err)
{
	const struct bio_synth_set *st = j->s;
	uint32_t subject = (uint32_t)(i / j->per_subject) + 1;
	size_t k = i % j->per_subject;
	int side = (int)(k / (j->per_subject / 2));
	size_t kind = k % (j->per_subject / 2); /* 0: iris when do_iris, then fingers */
	const char *sname = bio_synth_side_name(side);
	int is_iris = st->do_iris && kind == 0;
	int finger = is_iris ? -1 : st->fingers[kind - (size_t)st->do_iris];
	struct bio_synth_iris *iris = NULL;
	struct bio_synth_print *print = NULL;
	int rc = is_iris ? bio_synth_iris_new(&iris, &st->params, subject, side, err)
			 : bio_synth_print_new(&print, &st->params, subject, side, finger, err);
	for (uint32_t s = 1; !rc && s <= st->n_samples; s++) {
		rc = is_iris ? bio_synth_iris_render(pixels, iris, s, err)
			     : bio_synth_print_render(pixels, print, s, err);
		if (rc)
			break;
		const char *ext = st->png ? "png" : is_iris ? "bmp" : "BMP";
		if (is_iris)
			snprintf(path, path_size, "%s/iris/%0*u_%s_%0*u.%s", st->root,
				 j->subject_digits, subject, sname, j->sample_digits, s, ext);
		else
			snprintf(path, path_size, "%s/fingerprint/%0*u_%s_%s_%0*u.%s", st->root,
				 j->subject_digits, subject, sname, bio_synth_finger_name(finger),
				 j->sample_digits, s, ext);
		uint32_t sz = st->params.size;
		rc = st->png ? bio_image_save_png(path, pixels, sz, sz, 1, err)
			     : bio_image_save_bmp(path, pixels, sz, sz, 1, err);
		if (!rc) {
			pthread_mutex_lock(&j->lock);
			j->n_done++;
			if (st->progress)
				st->progress(st->progress_ud, j->n_done,
					     j->n_items * st->n_samples);
			pthread_mutex_unlock(&j->lock);
		}
	}
	bio_synth_iris_free(iris);
	bio_synth_print_free(print);
	return rc;
}

/* One worker: takes the next item until none is left or one has failed. */
static void worker(struct job *j)
{
	size_t s = j->s->params.size;
	size_t path_size = strlen(j->s->root) + 128;
	uint8_t *pixels = malloc(s * s);
	char *path = malloc(path_size);
	struct bio_error err = {0};
	for (;;) {
		pthread_mutex_lock(&j->lock);
		size_t i = j->next < j->n_items && j->fail_item == j->n_items ? j->next++ : j->n_items;
		pthread_mutex_unlock(&j->lock);
		if (i == j->n_items)
			break;
		int rc = pixels && path ? run_item(j, i, pixels, path, path_size, &err)
					: bio_error_set(&err, BIO_ENOMEM, "out of memory");
		if (rc) {
			pthread_mutex_lock(&j->lock);
			if (i < j->fail_item) {
				j->fail_item = i;
				j->fail = err;
			}
			pthread_mutex_unlock(&j->lock);
			break;
		}
	}
	free(pixels);
	free(path);
}

/* The pool's range of workers (one each: the pool has a thread per worker). */
static void workers_range(void *ctx, size_t begin, size_t end, int thread)
{
	(void)thread;
	for (size_t w = begin; w < end; w++)
		worker(ctx);
}

/* mkdir -p root/sub (sub NULL: root). */
static int make_dir(const char *root, const char *sub, struct bio_error *err)
{
	if (!sub)
		return bio_fs_mkdir_p(root, err);
	char *p = bio_fs_path_join(root, sub);
	if (!p)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	int rc = bio_fs_mkdir_p(p, err);
	free(p);
	return rc;
}

int bio_synth_set_write(const struct bio_synth_set *s, int n_threads, size_t *n_images,
			struct bio_error *err)
{
	int rc;
	if (n_images)
		*n_images = 0;
	if ((rc = bio_synth_params_check(&s->params, err)) || (rc = make_dir(s->root, NULL, err)) ||
	    (s->do_iris && (rc = make_dir(s->root, "iris", err))) ||
	    (s->do_print && (rc = make_dir(s->root, "fingerprint", err))))
		return rc;
	struct job j;
	memset(&j, 0, sizeof j);
	j.s = s;
	j.subject_digits = digits(s->n_subjects) < 3 ? 3 : digits(s->n_subjects);
	j.sample_digits = digits(s->n_samples) < 2 ? 2 : digits(s->n_samples);
	j.per_subject = bio_synth_set_series(s);
	j.n_items = j.per_subject * s->n_subjects;
	j.fail_item = j.n_items;
	pthread_mutex_init(&j.lock, NULL);
	if (n_threads < 1)
		n_threads = 1;
	if ((size_t)n_threads > j.n_items)
		n_threads = (int)j.n_items;
	/* the items go to whichever worker is free: images take unequal times */
	bio_thread_run(n_threads, (size_t)n_threads, workers_range, &j);
	pthread_mutex_destroy(&j.lock);
	if (n_images)
		*n_images = j.n_done;
	if (j.fail_item < j.n_items) {
		if (err)
			*err = j.fail;
		return j.fail.code ? j.fail.code : BIO_EIO;
	}
	return 0;
}

int bio_synth_set_write_provenance(const struct bio_config *cfg, const char *root,
				   struct bio_error *err)
{
	struct bio_error dump_err;
	size_t n = strlen(root) + 32, len = 0;
	char *path = malloc(n), *text = NULL;
	FILE *f = path ? open_memstream(&text, &len) : NULL;
	if (!f) {
		free(path);
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	snprintf(path, n, "%s/synth.yaml", root);
	fputs("# bio-synth: the configuration these images were made with (read by bio-scan)\n", f);
	static const char *const sections[] = {"synth"};
	int rc = bio_config_dump_sections(cfg, f, sections, 1, &dump_err);
	if (fclose(f) != 0 || rc)
		rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
	else
		rc = bio_fs_write_atomic(path, text, len, NULL, 1, err);
	free(text);
	free(path);
	return rc;
}
