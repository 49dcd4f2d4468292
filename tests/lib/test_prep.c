/* Unit tests of lib/prep.c (sample normalisation) and lib/batch.c (epoch orders, batch
 * counts). */
#include <stdint.h>

#include "bio/batch.h"
#include "bio/prep.h"
#include "test.h"

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
	RUN(prep_normalize_quantized);
	RUN(prep_identity_resize_keeps_pixels);
	RUN(prep_scratch_cache_matches_uncached);
	RUN(prep_file_missing_names_path);
	RUN(prep_params_from_config);
	RUN(batch_count);
	RUN(batch_epoch_order);
	return test_summary();
}
