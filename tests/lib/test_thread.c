/* Unit tests of lib/thread.c: the pool covers every item once in the ranges its header states,
 * for any thread count; bio_thread_run; the ordered map hands items back in submission order
 * for every thread count and window. */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "bio/thread.h"
#include "test.h"

struct cover {
	size_t n_items;
	int n_threads;
	atomic_int *hits;
	atomic_int bad; /* a range other than the thread's own */
};

static void cover_range(void *ctx, size_t begin, size_t end, int thread)
{
	struct cover *c = ctx;
	size_t t = (size_t)thread, n = (size_t)c->n_threads;
	if (begin >= end || begin != c->n_items * t / n || end != c->n_items * (t + 1) / n)
		atomic_fetch_add(&c->bad, 1);
	for (size_t i = begin; i < end; i++)
		atomic_fetch_add(&c->hits[i], 1);
}

/* Every item exactly once, each thread on its own range; a pool reused for several calls. */
TEST(pool_covers_every_item_once)
{
	static const int threads[] = {1, 2, 3, 4, 7};
	static const size_t items[] = {1, 2, 3, 5, 64, 1001};
	for (size_t a = 0; a < sizeof threads / sizeof *threads; a++) {
		struct bio_nn_pool *p = bio_nn_pool_new(threads[a]);
		CHECK(p != NULL);
		if (!p)
			continue;
		CHECK_EQ(bio_nn_pool_threads(p), threads[a]);
		for (size_t b = 0; b < sizeof items / sizeof *items; b++) {
			atomic_int hits[1001];
			for (size_t i = 0; i < items[b]; i++)
				atomic_init(&hits[i], 0);
			/* one item, or one thread: the caller runs it all as thread 0 */
			int eff = items[b] == 1 ? 1 : threads[a];
			struct cover c = {items[b], eff, hits, 0};
			bio_nn_parallel_for(p, items[b], cover_range, &c);
			CHECK_EQ(atomic_load(&c.bad), 0);
			for (size_t i = 0; i < items[b]; i++)
				CHECK_EQ(atomic_load(&hits[i]), 1);
		}
		bio_nn_parallel_for(p, 0, cover_range, NULL); /* nothing to do: fn not called */
		bio_nn_pool_free(p);
	}
	bio_nn_pool_free(NULL);
	CHECK_EQ(bio_nn_pool_threads(NULL), 1);
	atomic_int hits[10];
	for (int i = 0; i < 10; i++)
		atomic_init(&hits[i], 0);
	struct cover c = {10, 1, hits, 0};
	bio_nn_parallel_for(NULL, 10, cover_range, &c); /* no pool: one call on the caller */
	CHECK_EQ(atomic_load(&c.bad), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(atomic_load(&hits[i]), 1);
}

TEST(thread_run_and_cpus)
{
	atomic_int hits[100];
	for (int n = 1; n <= 5; n++) {
		for (int i = 0; i < 100; i++)
			atomic_init(&hits[i], 0);
		struct cover c = {100, n, hits, 0};
		bio_thread_run(n, 100, cover_range, &c);
		CHECK_EQ(atomic_load(&c.bad), 0);
		for (int i = 0; i < 100; i++)
			CHECK_EQ(atomic_load(&hits[i]), 1);
	}
	CHECK(bio_thread_cpus() >= 1);
}

struct item {
	uint64_t in;
	uint64_t out;
};

/* Deliberately uneven work: some items take much longer, so workers finish out of order. */
static void slow_hash(void *ud, int worker, void *slot)
{
	(void)ud;
	(void)worker;
	struct item *it = slot;
	uint64_t x = it->in * 0x9e3779b97f4a7c15ull;
	if (it->in % 7 == 3) {
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	for (int k = 0; k < 1000 + (int)(it->in % 13) * 500; k++)
		x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull + (uint64_t)k;
	it->out = x;
}

/* Runs n items through a map of n_threads and window; returns a hash of outputs in order and
 * checks that items come back in submission order and the window is never exceeded. */
static uint64_t run_map(int n_threads, size_t window, uint64_t n)
{
	struct item *slots = calloc(window, sizeof(*slots));
	struct item **free_slots = calloc(window, sizeof(*free_slots));
	struct bio_error err = {0};
	struct bio_omap *m = bio_omap_new(n_threads, window, slow_hash, NULL, &err);
	CHECK(m != NULL);
	if (!m || !slots || !free_slots) {
		free(slots);
		free(free_slots);
		return 0;
	}
	size_t n_free = window;
	for (size_t i = 0; i < window; i++)
		free_slots[i] = &slots[i];
	uint64_t next_in = 0, next_out = 0, h = 1469598103934665603ull;
	for (;;) {
		while (next_in < n && n_free > 0) {
			struct item *it = free_slots[--n_free];
			it->in = next_in++;
			bio_omap_submit(m, it);
			CHECK(bio_omap_in_flight(m) <= window);
		}
		struct item *it = bio_omap_collect(m);
		if (!it)
			break;
		CHECK_EQ(it->in, next_out);
		next_out++;
		h = (h ^ it->out) * 1099511628211ull;
		free_slots[n_free++] = it;
	}
	CHECK_EQ(next_out, n);
	CHECK(bio_omap_collect(m) == NULL);
	bio_omap_free(m);
	free(slots);
	free(free_slots);
	return h;
}

TEST(omap_same_result_for_every_thread_count)
{
	uint64_t ref = run_map(1, 1, 500);
	CHECK(ref != 0);
	CHECK(run_map(1, 5, 500) == ref);
	CHECK(run_map(2, 8, 500) == ref);
	CHECK(run_map(3, 3, 500) == ref);
	CHECK(run_map(8, 32, 500) == ref);
	CHECK(run_map(4, 1, 100) == run_map(1, 1, 100));
}

TEST(omap_empty_and_free_with_items_in_flight)
{
	struct bio_error err = {0};
	struct bio_omap *m = bio_omap_new(3, 4, slow_hash, NULL, &err);
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(bio_omap_collect(m) == NULL);
	CHECK_EQ(bio_omap_window(m), 4);
	struct item items[4] = {{1, 0}, {2, 0}, {3, 0}, {4, 0}};
	for (int i = 0; i < 4; i++)
		bio_omap_submit(m, &items[i]);
	CHECK_EQ(bio_omap_in_flight(m), 4);
	bio_omap_free(m); /* must wait for the workers, not crash */
	bio_omap_free(NULL);
}

int main(void)
{
	RUN(pool_covers_every_item_once);
	RUN(thread_run_and_cpus);
	RUN(omap_same_result_for_every_thread_count);
	RUN(omap_empty_and_free_with_items_in_flight);
	return test_summary();
}
