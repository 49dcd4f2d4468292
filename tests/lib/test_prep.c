/* Unit tests of lib/prep.c (ordered parallel map, sample normalisation) and lib/batch.c (epoch
 * orders, batch counts). */
#include <stdint.h>
#include <time.h>

#include "bio/batch.h"
#include "bio/prep.h"
#include "test.h"

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

TEST(prep_normalize_quantized)
{
	/* A constant image stays constant through any resize: every output is (v/255-m)/s. */
	uint8_t px[10 * 7];
	memset(px, 200, sizeof(px));
	struct bio_image img = {10, 7, px};
	struct bio_prep_params p;
	bio_prep_params_default(&p);
	p.size = 4;
	p.mean = 0.25f;
	p.std = 0.5f;
	float out[16];
	struct bio_error err = {0};
	CHECK_EQ(bio_prep_image(out, &img, &p, NULL, &err), 0);
	float want = (200.0f / 255.0f - 0.25f) / 0.5f;
	for (int i = 0; i < 16; i++)
		CHECK(out[i] == want);
	p.quantize = 0;
	p.filter = BIO_RESIZE_AREA;
	CHECK_EQ(bio_prep_image(out, &img, &p, NULL, &err), 0);
	for (int i = 0; i < 16; i++)
		CHECK_NEAR(out[i], want, 1e-6);
}

TEST(prep_identity_resize_keeps_pixels)
{
	/* Same size in and out: the resize is the identity, so every pixel maps through the LUT. */
	uint8_t px[8 * 8];
	for (int i = 0; i < 64; i++)
		px[i] = (uint8_t)(i * 4);
	struct bio_image img = {8, 8, px};
	struct bio_prep_params p;
	bio_prep_params_default(&p);
	p.size = 8;
	float out[64];
	struct bio_error err = {0};
	CHECK_EQ(bio_prep_image(out, &img, &p, NULL, &err), 0);
	for (int i = 0; i < 64; i++)
		CHECK_NEAR(out[i], ((float)px[i] / 255.0f - 0.5f) / 0.5f, 1e-6);
}

TEST(prep_scratch_cache_matches_uncached)
{
	/* Six input sizes in turn (more than the plan cache holds), bilinear and area, with and
	 * without quantisation: the cached path must give exactly what the one-off path gives. */
	static const uint32_t sizes[6][2] = {{40, 30}, {17, 23}, {64, 64}, {100, 7}, {5, 90}, {33, 33}};
	struct bio_prep_scratch *s = bio_prep_scratch_new();
	CHECK(s != NULL);
	if (!s)
		return;
	uint8_t *px = malloc(100 * 100);
	float a[24 * 24], b[24 * 24];
	for (int i = 0; i < 100 * 100; i++)
		px[i] = (uint8_t)((i * 37 + (i / 100) * 11) & 255);
	struct bio_error err = {0};
	int same = 1;
	for (int round = 0; round < 3; round++)
		for (int k = 0; k < 6; k++) {
			struct bio_image img = {sizes[k][0], sizes[k][1], px};
			struct bio_prep_params p;
			bio_prep_params_default(&p);
			p.size = 24;
			p.filter = (k + round) % 2 ? BIO_RESIZE_AREA : BIO_RESIZE_BILINEAR;
			p.quantize = round != 1;
			p.mean = round == 2 ? 0.3f : 0.5f;
			CHECK_EQ(bio_prep_image(a, &img, &p, s, &err), 0);
			CHECK_EQ(bio_prep_image(b, &img, &p, NULL, &err), 0);
			same = same && memcmp(a, b, sizeof(a)) == 0;
		}
	CHECK(same);
	free(px);
	bio_prep_scratch_free(s);
	bio_prep_scratch_free(NULL);
}

TEST(prep_file_missing_names_path)
{
	struct bio_prep_params p;
	bio_prep_params_default(&p);
	float out[64 * 64];
	struct bio_error err = {0};
	CHECK(bio_prep_file(out, "/nonexistent/dir/x.bmp", &p, NULL, &err) < 0);
	CHECK(strstr(err.msg, "/nonexistent/dir/x.bmp") != NULL);
}

TEST(prep_params_from_config)
{
	struct bio_config *c = bio_config_new();
	struct bio_error err = {0};
	const char *base = "prep:\n  size: 32\n  resize: area\n  mean: 0.1\n  std: 0.2\n"
			   "  quantize: false\n  max_width: 100\n  max_height: 50\n"
			   "  max_pixels: 5000\n  max_file_bytes: 100000\n";
	CHECK_EQ(bio_config_load_base(c, "base", base, strlen(base), &err), 0);
	struct bio_prep_params p;
	CHECK_EQ(bio_prep_params_from_config(&p, c, &err), 0);
	CHECK_EQ(p.size, 32);
	CHECK_EQ(p.filter, BIO_RESIZE_AREA);
	CHECK_NEAR(p.mean, 0.1, 1e-7);
	CHECK_NEAR(p.std, 0.2, 1e-7);
	CHECK_EQ(p.quantize, 0);
	CHECK_EQ(p.limits.max_width, 100);
	CHECK_EQ(p.limits.max_height, 50);
	CHECK_EQ(bio_config_set(c, "prep.resize=cubic", &err), 0);
	CHECK(bio_prep_params_from_config(&p, c, &err) < 0);
	CHECK(strstr(err.msg, "prep.resize") != NULL);
	bio_config_free(c);
}

TEST(batch_count)
{
	CHECK_EQ(bio_batch_count(10, 3, 0), 4);
	CHECK_EQ(bio_batch_count(10, 3, 1), 3);
	CHECK_EQ(bio_batch_count(9, 3, 0), 3);
	CHECK_EQ(bio_batch_count(9, 3, 1), 3);
	CHECK_EQ(bio_batch_count(2, 3, 1), 0);
	CHECK_EQ(bio_batch_count(0, 3, 0), 0);
}

TEST(batch_epoch_order)
{
	enum { N = 1000 };
	static uint32_t a[N], b[N], c[N];
	static unsigned char seen[N];
	bio_batch_epoch_order(a, N, 1234, 0);
	bio_batch_epoch_order(b, N, 1234, 0);
	bio_batch_epoch_order(c, N, 1234, 1);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	CHECK(memcmp(a, c, sizeof(a)) != 0);
	memset(seen, 0, sizeof(seen));
	int ok = 1, fixed = 0;
	for (int i = 0; i < N; i++) {
		if (a[i] >= N || seen[a[i]])
			ok = 0;
		else
			seen[a[i]] = 1;
		fixed += a[i] == (uint32_t)i;
	}
	CHECK(ok);
	CHECK(fixed < 10); /* a shuffled order, not the identity */
	bio_batch_epoch_order(b, N, 1235, 0);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	bio_batch_epoch_order(a, 0, 1, 0); /* n = 0 must not touch anything */
}

int main(void)
{
	RUN(omap_same_result_for_every_thread_count);
	RUN(omap_empty_and_free_with_items_in_flight);
	RUN(prep_normalize_quantized);
	RUN(prep_identity_resize_keeps_pixels);
	RUN(prep_scratch_cache_matches_uncached);
	RUN(prep_file_missing_names_path);
	RUN(prep_params_from_config);
	RUN(batch_count);
	RUN(batch_epoch_order);
	return test_summary();
}
