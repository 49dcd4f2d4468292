/* Threads for every stage, inside one budget per process (-j): a fork-join pool whose work is
 * split into ranges fixed by the item count and thread count alone (the layers' pieces, the
 * metrics' rows, a tool's workers), and an ordered parallel map for streams (bio-prep): workers
 * take items in submission order and the caller collects them in that order, so output never
 * depends on the thread count and memory stays bounded by the window. The only file that starts
 * threads. */
#include "bio/thread.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bio/error.h"

int bio_thread_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0) {
		int n = CPU_COUNT(&set);
		if (n > 0)
			return n;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 && n < INT_MAX ? (int)n : 1;
}

/* ---- fork-join pool ---- */

struct bio_nn_pool {
	int n_threads;
	pthread_t *threads;
	struct pool_worker *workers;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	void (*fn)(void *, size_t, size_t, int);
	void *ctx;
	size_t n_items;
	atomic_ulong gen;
	atomic_int pending;
	int quit;
};

/* Waits spin this many rounds (a few tens of microseconds) before sleeping on the condition
 * variable: a layer hands out work every few hundred microseconds, and waking a sleeping thread
 * costs tens of microseconds on a virtual machine. */
#define POOL_SPINS 20000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

struct pool_worker {
	struct bio_nn_pool *p;
	int index;
};

static void pool_range(const struct bio_nn_pool *p, int t, size_t *b, size_t *e)
{
	*b = p->n_items * (size_t)t / (size_t)p->n_threads;
	*e = p->n_items * (size_t)(t + 1) / (size_t)p->n_threads;
}

static void *pool_main(void *arg)
{
	struct pool_worker *w = arg;
	struct bio_nn_pool *p = w->p;
	unsigned long seen = 0;
	for (;;) {
		for (int i = 0; i < POOL_SPINS && atomic_load(&p->gen) == seen; i++)
			cpu_relax();
		pthread_mutex_lock(&p->mu);
		while (atomic_load(&p->gen) == seen && !p->quit)
			pthread_cond_wait(&p->cv_work, &p->mu);
		if (p->quit) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		seen = atomic_load(&p->gen);
		pthread_mutex_unlock(&p->mu);
		size_t b, e;
		pool_range(p, w->index, &b, &e);
		if (b < e)
			p->fn(p->ctx, b, e, w->index);
		if (atomic_fetch_sub(&p->pending, 1) == 1) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->cv_done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

struct bio_nn_pool *bio_nn_pool_new(int n_threads)
{
	if (n_threads < 1)
		n_threads = 1;
	struct bio_nn_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n_threads = n_threads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_work, NULL);
	pthread_cond_init(&p->cv_done, NULL);
	if (n_threads == 1)
		return p;
	p->threads = calloc((size_t)n_threads, sizeof *p->threads);
	p->workers = calloc((size_t)n_threads, sizeof *p->workers);
	if (!p->threads || !p->workers) {
		bio_nn_pool_free(p);
		return NULL;
	}
	for (int i = 1; i < n_threads; i++) {
		p->workers[i] = (struct pool_worker){p, i};
		if (pthread_create(&p->threads[i], NULL, pool_main, &p->workers[i]) != 0) {
			p->n_threads = i; /* the ones started */
			bio_nn_pool_free(p);
			return NULL;
		}
	}
	return p;
}

/* The end of a pool's life: when running, sets *stop under mu, wakes the workers waiting on
 * cv_work and joins the n threads; then destroys mu and both conditions. */
static void workers_end(int running, pthread_mutex_t *mu, pthread_cond_t *cv_work,
			pthread_cond_t *cv_done, int *stop, const pthread_t *threads, int n)
{
	if (running) {
		pthread_mutex_lock(mu);
		*stop = 1;
		pthread_cond_broadcast(cv_work);
		pthread_mutex_unlock(mu);
		for (int i = 0; i < n; i++)
			pthread_join(threads[i], NULL);
	}
	pthread_mutex_destroy(mu);
	pthread_cond_destroy(cv_work);
	pthread_cond_destroy(cv_done);
}

void bio_nn_pool_free(struct bio_nn_pool *p)
{
	if (!p)
		return;
	/* threads[0] is the caller's own slot: workers are 1..n_threads-1 */
	workers_end(p->threads != NULL, &p->mu, &p->cv_work, &p->cv_done, &p->quit,
		    p->threads ? p->threads + 1 : NULL, p->n_threads - 1);
	free(p->threads);
	free(p->workers);
	free(p);
}

int bio_nn_pool_threads(const struct bio_nn_pool *p)
{
	return p ? p->n_threads : 1;
}

void bio_nn_parallel_for(struct bio_nn_pool *p, size_t n_items,
			 void (*fn)(void *ctx, size_t begin, size_t end, int thread), void *ctx)
{
	if (n_items == 0)
		return;
	if (!p || p->n_threads == 1 || n_items == 1) {
		fn(ctx, 0, n_items, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->ctx = ctx;
	p->n_items = n_items;
	atomic_store(&p->pending, p->n_threads - 1);
	atomic_fetch_add(&p->gen, 1); /* (after the job: a spinning worker reads it next) */
	pthread_cond_broadcast(&p->cv_work);
	pthread_mutex_unlock(&p->mu);
	size_t b, e;
	pool_range(p, 0, &b, &e);
	if (b < e)
		fn(ctx, b, e, 0);
	for (int i = 0; i < POOL_SPINS && atomic_load(&p->pending) > 0; i++)
		cpu_relax();
	pthread_mutex_lock(&p->mu);
	while (atomic_load(&p->pending) > 0)
		pthread_cond_wait(&p->cv_done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

void bio_thread_run(int n_threads, size_t n_items,
		    void (*fn)(void *ctx, size_t begin, size_t end, int thread), void *ctx)
{
	struct bio_nn_pool *p = n_threads > 1 && n_items > 1 ? bio_nn_pool_new(n_threads) : NULL;
	bio_nn_parallel_for(p, n_items, fn, ctx);
	bio_nn_pool_free(p);
}

/* ---- ordered parallel map ---- */

struct omap_item {
	void *slot;
	int done;
};

struct omap_worker {
	struct bio_omap *m;
	int index;
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
	struct omap_worker *workers;
	int stop;
	pthread_mutex_t mu;
	pthread_cond_t cv_work; /* work submitted, or stop */
	pthread_cond_t cv_done; /* an item finished */
};

static void *omap_worker(void *arg)
{
	const struct omap_worker *wk = arg;
	struct bio_omap *m = wk->m;

	pthread_mutex_lock(&m->mu);
	for (;;) {
		while (!m->stop && m->next_work == m->tail)
			pthread_cond_wait(&m->cv_work, &m->mu);
		if (m->next_work == m->tail)
			break; /* stop, and nothing left */
		uint64_t i = m->next_work++;
		void *slot = m->ring[i % m->window].slot;
		pthread_mutex_unlock(&m->mu);
		m->fn(m->ud, wk->index, slot);
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
	m->workers = calloc((size_t)n_threads, sizeof(*m->workers));
	if (!m->threads || !m->workers) {
		bio_omap_free(m);
		bio_error_set(err, BIO_ENOMEM, "ordered map: out of memory for %d threads", n_threads);
		return NULL;
	}
	for (int t = 0; t < n_threads; t++) {
		m->workers[t] = (struct omap_worker){m, t};
		int rc = pthread_create(&m->threads[t], NULL, omap_worker, &m->workers[t]);
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
	workers_end(m->n_threads > 0, &m->mu, &m->cv_work, &m->cv_done, &m->stop, m->threads,
		    m->n_threads);
	free(m->threads);
	free(m->workers);
	free(m->ring);
	free(m);
}

void bio_omap_submit(struct bio_omap *m, void *slot)
{
	BIO_ASSERT(m->tail - m->head < m->window);
	if (m->n_threads == 0) {
		m->fn(m->ud, 0, slot);
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
