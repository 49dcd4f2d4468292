/* Unit tests for augment.c: the identity transform and an integer translation move pixels
 * exactly, the border is replicated, a circular shift rolls columns, a half-pixel shift averages
 * neighbours, and draws are a pure function of (seed, epoch, sample, modality) inside the ranges.
 * (The numpy reference of the warp is tests/python/augment_reference.py, run by bio-batch.bats.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bio/augment.h"
#include "test.h"

enum { H = 5, W = 7 };

static void fill(float *img)
{
	for (int i = 0; i < H * W; i++)
		img[i] = (float)(i * 0.37 - 3.0);
}

static struct bio_augment_params identity(void)
{
	struct bio_augment_params p = {{1, 0, 0, 0, 1, 0}, 1.0, 0.0, 0};
	return p;
}

TEST(identity_and_translation)
{
	float in[H * W], out[H * W];
	fill(in);
	struct bio_augment_params p = identity();
	bio_augment_apply(out, in, H, W, &p);
	CHECK(memcmp(in, out, sizeof in) == 0);
	/* output (x, y) reads input (x - 2, y + 1): columns beyond the edge replicate it */
	p.m[2] = -2.0;
	p.m[5] = 1.0;
	bio_augment_apply(out, in, H, W, &p);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			int sx = x - 2 < 0 ? 0 : x - 2, sy = y + 1 > H - 1 ? H - 1 : y + 1;
			CHECK_EQ(out[y * W + x], in[sy * W + sx]);
		}
	/* half a pixel: the mean of two neighbours; gain and bias after */
	p = identity();
	p.m[2] = 0.5;
	p.gain = 2.0;
	p.bias = -1.0;
	bio_augment_apply(out, in, H, W, &p);
	CHECK_NEAR(out[2 * W + 3], 2.0 * (in[2 * W + 3] + in[2 * W + 4]) / 2.0 - 1.0, 1e-5);
	CHECK_NEAR(out[2 * W + 6], 2.0 * in[2 * W + 6] - 1.0, 1e-5); /* last column: the edge */
	/* a circular shift: rolled[y][x] = in[y][(x - k) mod w] */
	p = identity();
	p.shift = -3;
	bio_augment_apply(out, in, H, W, &p);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			CHECK_EQ(out[y * W + x], in[y * W + (x + 3) % W]);
}

TEST(draws)
{
	struct bio_augment a = {10.0, 0.1, 0.05, 0.2, 0.3, 0.25};
	struct bio_augment_params p, q;
	bio_augment_draw(&p, &a, H, W, 42, 3, 17, 1);
	bio_augment_draw(&q, &a, H, W, 42, 3, 17, 1);
	CHECK(memcmp(p.m, q.m, sizeof p.m) == 0 && p.gain == q.gain && p.bias == q.bias &&
	      p.shift == q.shift);
	int differ = 0;
	for (int k = 0; k < 4; k++) {
		uint64_t key[4] = {42, 3, 17, 1};
		key[k]++;
		bio_augment_draw(&q, &a, H, W, key[0], key[1], key[2], key[3]);
		differ += memcmp(p.m, q.m, sizeof p.m) != 0;
	}
	CHECK_EQ(differ, 4);
	for (int s = 0; s < 200; s++) {
		bio_augment_draw(&p, &a, 64, 64, 1, 0, (uint64_t)s, 0);
		double scale = 1.0 / hypot(p.m[0], p.m[3]);
		double angle = atan2(-p.m[3], p.m[0]) * 180.0 / 3.14159265358979323846;
		CHECK(fabs(angle) <= 10.0 + 1e-9 && fabs(scale - 1.0) <= 0.05 + 1e-9);
		CHECK(fabs(p.gain - 1.0) <= 0.2 && fabs(p.bias) <= 0.3 && abs(p.shift) <= 16);
	}
	/* all ranges 0: the identity, exactly */
	struct bio_augment none = {0};
	CHECK(!bio_augment_active(&none) && bio_augment_active(&a));
	bio_augment_draw(&p, &none, H, W, 1, 2, 3, 4);
	float in[H * W], out[H * W];
	fill(in);
	bio_augment_apply(out, in, H, W, &p);
	CHECK(memcmp(in, out, sizeof in) == 0);
}

int main(void)
{
	RUN(identity_and_translation);
	RUN(draws);
	return test_summary();
}
