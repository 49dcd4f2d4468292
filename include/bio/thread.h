/* Threads for every stage, inside the process's one thread budget (-j): the fork-join pool the
 * layers, the optimizer, the metrics and the tools' workers run on, and the ordered parallel map
 * bio-prep streams through. Neither makes a result depend on the thread count: the pool splits
 * [0, n_items) into ranges fixed by n_items and the thread count alone, each piece computed in a
 * fixed order by its caller; the ordered map hands items back in submission order. The pool keeps
 * the bio_nn_ names it had in nn.h. */
#ifndef BIO_THREAD_H
#define BIO_THREAD_H

#include <stddef.h>

#include "bio/error.h"

/* The cores this process may run on (its CPU affinity; else the cores online; at least 1): the
 * default thread budget. */
int bio_thread_cpus(void);

/* ---- fork-join pool ---- */

/* A fixed set of worker threads; the caller's thread is worker 0. Waits spin briefly before
 * sleeping (a layer hands out work every few hundred microseconds). */
struct bio_nn_pool;
/* New pool of n_threads (>= 1; 1 = no extra threads); NULL on failure. */
struct bio_nn_pool *bio_nn_pool_new(int n_threads);
/* Joins the threads and frees p (NULL is a no-op). */
void bio_nn_pool_free(struct bio_nn_pool *p);
/* p's thread count (1 for NULL). */
int bio_nn_pool_threads(const struct bio_nn_pool *p);
/* Calls fn(ctx, begin, end, thread) on contiguous ranges of [0, n_items), one per thread (thread
 * t gets [n_items * t / T, n_items * (t + 1) / T) of T threads; empty ranges are skipped), and
 * waits for all; runs fn(ctx, 0, n_items, 0) directly when p is NULL. */
void bio_nn_parallel_for(struct bio_nn_pool *p, size_t n_items,
			 void (*fn)(void *ctx, size_t begin, size_t end, int thread), void *ctx);
/* bio_nn_parallel_for on a pool of n_threads made for this call alone; when the threads cannot
 * be started, fn(ctx, 0, n_items, 0) runs on the caller's thread (the same results). */
void bio_thread_run(int n_threads, size_t n_items,
		    void (*fn)(void *ctx, size_t begin, size_t end, int thread), void *ctx);

/* ---- ordered parallel map ---- */

/* Work function: processes the caller's item `slot` (results and errors go into the slot).
 * Called from worker threads with the map's ud and the worker's index in [0, n_threads) (0 when
 * running without threads), so per-worker scratch needs no locking; must not touch other
 * shared state without locking. */
typedef void (*bio_omap_fn)(void *ud, int worker, void *slot);

struct bio_omap;

/* New map with n_threads workers (n_threads <= 1: no threads, fn runs inside submit) and at
 * most window (>= 1) items in flight. Returns NULL with err set on failure. */
struct bio_omap *bio_omap_new(int n_threads, size_t window, bio_omap_fn fn, void *ud,
			      struct bio_error *err);
/* Waits for items in flight to finish, joins the threads, frees m (NULL is a no-op). Slots not
 * collected yet are simply dropped (they remain the caller's). */
void bio_omap_free(struct bio_omap *m);
/* Submits slot (borrowed until collected) as the next item. The caller must keep
 * bio_omap_in_flight(m) < window (collect first when full): a full map is a programmer error. */
void bio_omap_submit(struct bio_omap *m, void *slot);
/* Waits for the oldest item in flight and returns its slot, or NULL when none is in flight. */
void *bio_omap_collect(struct bio_omap *m);
/* Items submitted but not yet collected. */
size_t bio_omap_in_flight(const struct bio_omap *m);
/* The window given to bio_omap_new. */
size_t bio_omap_window(const struct bio_omap *m);

#endif
