/* Sample preprocessing for bio-prep (decode, gray, resize, normalise into S*S floats) and the
 * ordered parallel map its threads run on: a ring of `window` items, workers take them in
 * submission order, the caller collects them in the same order, so results never depend on the
 * thread count and memory stays bounded by the window. */
#include "bio/prep.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- ordered parallel map ---- */

struct omap_item {
	void *slot;
	int done;
};

struct bio_omap {
	bio_omap_fn fn;
	void *ud;
	size_t window;
	struct omap_item *ring;
	uint64_t head;      /* next item to collect */
	uint64_t next_work; /* next item a worker takes */
	uint64_t tail;      /* next item to submit */
	int n_threads;
	pthread_t *threads;
	int stop;
	pthread_mutex_t mu;
	pthread_cond_t cv_work; /* work submitted, or stop */
	pthread_cond_t cv_done; /* an item finished */
};

static void *omap_worker(void *arg)
{
	struct bio_omap *m = arg;

	pthread_mutex_lock(&m->mu);
	for (;;) {
		while (!m->stop && m->next_work == m->tail)
			pthread_cond_wait(&m->cv_work, &m->mu);
		if (m->next_work == m->tail)
			break; /* stop, and nothing left */
		uint64_t i = m->next_work++;
		void *slot = m->ring[i % m->window].slot;
		pthread_mutex_unlock(&m->mu);
		m->fn(m->ud, slot);
		pthread_mutex_lock(&m->mu);
		m->ring[i % m->window].done = 1;
		if (i == m->head)
			pthread_cond_signal(&m->cv_done);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

struct bio_omap *bio_omap_new(int n_threads, size_t window, bio_omap_fn fn, void *ud,
			      struct bio_error *err)
{
	BIO_ASSERT(fn && window >= 1);
	struct bio_omap *m = calloc(1, sizeof(*m));
	if (!m) {
		bio_error_set(err, BIO_ENOMEM, "ordered map: out of memory");
		return NULL;
	}
	m->fn = fn;
	m->ud = ud;
	m->window = window;
	m->ring = calloc(window, sizeof(*m->ring));
	if (!m->ring) {
		free(m);
		bio_error_set(err, BIO_ENOMEM, "ordered map: out of memory for %zu items", window);
		return NULL;
	}
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv_work, NULL);
	pthread_cond_init(&m->cv_done, NULL);
	if (n_threads <= 1)
		return m;
	m->threads = calloc((size_t)n_threads, sizeof(*m->threads));
	if (!m->threads) {
		bio_omap_free(m);
		bio_error_set(err, BIO_ENOMEM, "ordered map: out of memory for %d threads", n_threads);
		return NULL;
	}
	for (int t = 0; t < n_threads; t++) {
		int rc = pthread_create(&m->threads[t], NULL, omap_worker, m);
		if (rc != 0) {
			bio_omap_free(m);
			bio_error_set(err, BIO_EIO, "ordered map: cannot start thread %d: %s", t,
				      strerror(rc));
			return NULL;
		}
		m->n_threads = t + 1;
	}
	return m;
}

void bio_omap_free(struct bio_omap *m)
{
	if (!m)
		return;
	if (m->n_threads > 0) {
		pthread_mutex_lock(&m->mu);
		m->stop = 1;
		pthread_cond_broadcast(&m->cv_work);
		pthread_mutex_unlock(&m->mu);
		for (int t = 0; t < m->n_threads; t++)
			pthread_join(m->threads[t], NULL);
	}
	pthread_cond_destroy(&m->cv_done);
	pthread_cond_destroy(&m->cv_work);
	pthread_mutex_destroy(&m->mu);
	free(m->threads);
	free(m->ring);
	free(m);
}

void bio_omap_submit(struct bio_omap *m, void *slot)
{
	BIO_ASSERT(m->tail - m->head < m->window);
	if (m->n_threads == 0) {
		m->fn(m->ud, slot);
		m->ring[m->tail % m->window] = (struct omap_item){slot, 1};
		m->tail++;
		m->next_work = m->tail;
		return;
	}
	pthread_mutex_lock(&m->mu);
	m->ring[m->tail % m->window] = (struct omap_item){slot, 0};
	m->tail++;
	pthread_cond_signal(&m->cv_work);
	pthread_mutex_unlock(&m->mu);
}

void *bio_omap_collect(struct bio_omap *m)
{
	void *slot = NULL;

	if (m->n_threads == 0) {
		if (m->head == m->tail)
			return NULL;
		return m->ring[m->head++ % m->window].slot;
	}
	pthread_mutex_lock(&m->mu);
	if (m->head != m->tail) {
		struct omap_item *it = &m->ring[m->head % m->window];
		while (!it->done)
			pthread_cond_wait(&m->cv_done, &m->mu);
		slot = it->slot;
		m->head++;
		/* the next item may already be done: its worker signalled before it became head */
	}
	pthread_mutex_unlock(&m->mu);
	return slot;
}

size_t bio_omap_in_flight(const struct bio_omap *m)
{
	return (size_t)(m->tail - m->head);
}

size_t bio_omap_window(const struct bio_omap *m)
{
	return m->window;
}

/* ---- sample preprocessing ---- */

void bio_prep_params_default(struct bio_prep_params *p)
{
	memset(p, 0, sizeof(*p));
	p->size = 64;
	p->filter = BIO_RESIZE_BILINEAR;
	p->mean = 0.5f;
	p->std = 0.5f;
	p->quantize = 1;
	bio_image_limits_default(&p->limits);
}

int bio_prep_params_from_config(struct bio_prep_params *p, const struct bio_config *c,
				struct bio_error *err)
{
	int64_t size, w, h;
	double mean, std;
	const char *resize;
	int quantize, rc;

	bio_prep_params_default(p);
	if ((rc = bio_config_get_int_range(c, "prep.size", p->size, 1, 4096, &size, err)) < 0 ||
	    (rc = bio_config_get_str(c, "prep.resize", "bilinear", &resize, err)) < 0 ||
	    (rc = bio_config_get_double(c, "prep.mean", p->mean, &mean, err)) < 0 ||
	    (rc = bio_config_get_double_range(c, "prep.std", p->std, 1e-12, 1e12, &std, err)) < 0 ||
	    (rc = bio_config_get_bool(c, "prep.quantize", p->quantize, &quantize, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.max_width", p->limits.max_width, 1,
					   UINT32_MAX, &w, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.max_height", p->limits.max_height, 1,
					   UINT32_MAX, &h, err)) < 0)
		return rc;
	if (strcmp(resize, "bilinear") == 0)
		p->filter = BIO_RESIZE_BILINEAR;
	else if (strcmp(resize, "area") == 0)
		p->filter = BIO_RESIZE_AREA;
	else
		return bio_config_error(c, "prep.resize", err, BIO_EINVAL,
					"expected bilinear or area, got '%s'", resize);
	if (!isfinite(mean))
		return bio_config_error(c, "prep.mean", err, BIO_EINVAL, "not a finite number");
	p->size = (uint32_t)size;
	p->mean = (float)mean;
	p->std = (float)std;
	p->quantize = quantize;
	p->limits.max_width = (uint32_t)w;
	p->limits.max_height = (uint32_t)h;
	return 0;
}

int bio_prep_image(float *out, const struct bio_image *img, const struct bio_prep_params *p,
		   struct bio_error *err)
{
	size_t n = (size_t)p->size * p->size;
	int rc = bio_image_resize(out, p->size, p->size, img, p->filter, err);
	if (rc < 0)
		return rc;
	/* The same float operations as numpy on a float32 array: (x / 255 - mean) / std. */
	const float mean = p->mean, std = p->std;
	if (p->quantize) {
		float lut[256];
		for (int v = 0; v < 256; v++)
			lut[v] = ((float)v / 255.0f - mean) / std;
		for (size_t i = 0; i < n; i++) {
			float v = out[i] + 0.5f; /* PIL rounds half up */
			int q = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int)v;
			out[i] = lut[q];
		}
	} else {
		for (size_t i = 0; i < n; i++)
			out[i] = (out[i] / 255.0f - mean) / std;
	}
	return 0;
}

int bio_prep_file(float *out, const char *path, const struct bio_prep_params *p,
		  struct bio_error *err)
{
	struct bio_image img = {0};
	int rc = bio_image_load(&img, path, &p->limits, err);
	if (rc == 0) {
		rc = bio_prep_image(out, &img, p, err);
		if (rc < 0)
			bio_error_prefix(err, "%s", path);
	}
	bio_image_destroy(&img);
	return rc;
}
