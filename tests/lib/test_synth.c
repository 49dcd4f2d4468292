/* Unit tests for lib/synth.c: parameter checks, names, determinism (same arguments, fresh model,
 * other thread: same bytes), identity and sample variation, seeds, the shape of the images (dark
 * pupil and bright sclera in irises; ridges at the model's frequency in fingerprints), the
 * fingerprint class mix, noise and eyelash switches, and odd sizes. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bio/synth.h"
#include "test.h"

static struct bio_synth_params params(uint32_t size)
{
	struct bio_synth_params p;
	bio_synth_params_default(&p);
	p.size = size;
	return p;
}

/* Renders (subject, side, sample) of the iris (finger < 0) or fingerprint into a new buffer. */
static uint8_t *render(const struct bio_synth_params *p, uint32_t subject, int side, int finger,
		       uint32_t sample)
{
	struct bio_error err = {0};
	uint8_t *img = malloc((size_t)p->size * p->size);
	int rc;
	if (finger < 0) {
		struct bio_synth_iris *m;
		rc = bio_synth_iris_new(&m, p, subject, side, &err);
		if (!rc)
			rc = bio_synth_iris_render(img, m, sample, &err);
		bio_synth_iris_free(m);
	} else {
		struct bio_synth_print *m;
		rc = bio_synth_print_new(&m, p, subject, side, finger, &err);
		if (!rc)
			rc = bio_synth_print_render(img, m, sample, &err);
		bio_synth_print_free(m);
	}
	CHECK_EQ(rc, 0);
	return img;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += abs((int)a[i] - (int)b[i]);
	return s / (double)n;
}

TEST(params_and_names)
{
	struct bio_error err = {0};
	struct bio_synth_params p = params(128);
	CHECK_EQ(bio_synth_params_check(&p, &err), 0);
	p.size = 8;
	CHECK_EQ(bio_synth_params_check(&p, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "size 8") != NULL);
	p.size = BIO_SYNTH_MAX_SIZE + 1;
	CHECK_EQ(bio_synth_params_check(&p, &err), BIO_EINVAL);
	p = params(64);
	p.variation = 2.5;
	CHECK_EQ(bio_synth_params_check(&p, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "variation") != NULL);
	p = params(64);
	p.noise = -0.1;
	CHECK_EQ(bio_synth_params_check(&p, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "noise") != NULL);
	struct bio_synth_iris *m = (struct bio_synth_iris *)&p; /* must be reset to NULL */
	CHECK_EQ(bio_synth_iris_new(&m, &p, 1, 0, &err), BIO_EINVAL);
	CHECK(m == NULL);
	p = params(64);
	struct bio_synth_print *fp = NULL;
	CHECK_EQ(bio_synth_print_new(&fp, &p, 1, 0, BIO_SYNTH_N_FINGERS, &err), BIO_EINVAL);
	CHECK(fp == NULL);

	CHECK_STR(bio_synth_side_name(BIO_SYNTH_LEFT), "L");
	CHECK_STR(bio_synth_side_name(BIO_SYNTH_RIGHT), "R");
	CHECK(bio_synth_side_name(2) == NULL);
	for (int f = 0; f < BIO_SYNTH_N_FINGERS; f++)
		CHECK_EQ(bio_synth_finger_parse(bio_synth_finger_name(f)), f);
	CHECK_STR(bio_synth_finger_name(BIO_SYNTH_THUMB), "thumb");
	CHECK(bio_synth_finger_name(-1) == NULL);
	CHECK_EQ(bio_synth_finger_parse("Thumb"), -1);
	CHECK_EQ(bio_synth_finger_parse(""), -1);
	bio_synth_iris_free(NULL);
	bio_synth_print_free(NULL);
}

/* The same arguments give the same bytes (a fresh model each time); samples of one identity
 * differ, and so do other sides, subjects, seeds and fingers. */
TEST(deterministic_and_variation)
{
	struct bio_synth_params p = params(64);
	size_t n = 64 * 64;
	for (int finger = -1; finger <= 0; finger++) {
		uint8_t *s1 = render(&p, 1, 0, finger, 1), *s2 = render(&p, 1, 0, finger, 2);
		uint8_t *again = render(&p, 1, 0, finger, 1);
		uint8_t *other_side = render(&p, 1, 1, finger, 1);
		uint8_t *other_subject = render(&p, 2, 0, finger, 1);
		CHECK(memcmp(s1, again, n) == 0);
		CHECK(mean_abs_diff(s1, s2, n) > 2);
		CHECK(mean_abs_diff(s1, other_side, n) > 2);
		CHECK(mean_abs_diff(s1, other_subject, n) > 2);
		p.seed = 43;
		uint8_t *other_seed = render(&p, 1, 0, finger, 1);
		p.seed = 42;
		CHECK(mean_abs_diff(s1, other_seed, n) > 2);
		free(s1);
		free(s2);
		free(again);
		free(other_side);
		free(other_subject);
		free(other_seed);
	}
	/* Different fingers of one hand are different identities. */
	uint8_t *thumb = render(&p, 1, 0, BIO_SYNTH_THUMB, 1);
	uint8_t *index = render(&p, 1, 0, BIO_SYNTH_INDEX, 1);
	CHECK(mean_abs_diff(thumb, index, n) > 2);
	free(thumb);
	free(index);
}

static double fraction(const uint8_t *img, size_t n, int lo, int hi)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += img[i] >= lo && img[i] <= hi;
	return (double)c / (double)n;
}

TEST(iris_shape)
{
	struct bio_synth_params p = params(128);
	p.noise = 0;
	size_t n = 128 * 128;
	for (uint32_t subject = 1; subject <= 6; subject++) {
		uint8_t *img = render(&p, subject, (int)(subject % 2), -1, subject);
		/* A dark pupil: a solid block of very dark pixels (pupil radius >= 0.05 S). */
		CHECK(fraction(img, n, 0, 60) > 0.02);
		/* Bright sclera and the specular highlight. */
		CHECK(fraction(img, n, 150, 255) > 0.03);
		CHECK(fraction(img, n, 180, 255) > 0);
		/* The darkest pixels lie near the middle (the eye is centred within +-7%). */
		double sx = 0, sy = 0, c = 0;
		for (int y = 0; y < 128; y++)
			for (int x = 0; x < 128; x++)
				if (img[y * 128 + x] < 40) {
					sx += x;
					sy += y;
					c++;
				}
		CHECK(c > 0);
		if (c > 0) {
			CHECK_NEAR(sx / c, 64, 24);
			CHECK_NEAR(sy / c, 64, 24);
		}
		free(img);
	}
}

TEST(print_shape)
{
	struct bio_synth_params p = params(256);
	p.noise = 0;
	size_t n = 256 * 256;
	for (uint32_t subject = 1; subject <= 6; subject++) {
		uint8_t *img = render(&p, subject, 0, 0, 1);
		/* Dark ridges on a light background. */
		CHECK(fraction(img, n, 0, 120) > 0.05);
		CHECK(fraction(img, n, 190, 255) > 0.25);
		/* Ridges across the middle: crossings of the gray level 150 along rows 118..137 and
		 * along columns 118..137, within the central half; about 2 per ridge period (1/12 to
		 * 1/19 of the side) where the ridges run across the line: 0.5 S / period ridges ->
		 * 12 to 38 crossings, fewer where contact is lost or the ridges run along it. */
		double rows = 0, cols = 0;
		for (int k = 118; k < 138; k++)
			for (int i = 65; i < 192; i++) {
				rows += (img[k * 256 + i] < 150) != (img[k * 256 + i - 1] < 150);
				cols += (img[i * 256 + k] < 150) != (img[(i - 1) * 256 + k] < 150);
			}
		double crossings = (rows > cols ? rows : cols) / 20;
		CHECK(crossings >= 6 && crossings <= 40);
		free(img);
	}
}

TEST(print_classes)
{
	struct bio_synth_params p = params(32);
	struct bio_error err = {0};
	int counts[5] = {0};
	for (uint32_t s = 1; s <= 200; s++) {
		struct bio_synth_print *m;
		CHECK_EQ(bio_synth_print_new(&m, &p, s, 0, 0, &err), 0);
		int c = bio_synth_print_class(m);
		CHECK(c >= 0 && c < 5);
		if (c >= 0 && c < 5)
			counts[c]++;
		bio_synth_print_free(m);
	}
	for (int c = 0; c < 5; c++)
		CHECK(counts[c] > 3);
	/* Loops are the most common class, as in real fingers. */
	CHECK(counts[2] + counts[3] > 80);
}

TEST(switches)
{
	struct bio_synth_params p = params(64);
	size_t n = 64 * 64;
	p.noise = 0;
	uint8_t *clean = render(&p, 4, 0, 0, 1);
	p.noise = 0.1;
	uint8_t *noisy = render(&p, 4, 0, 0, 1);
	/* sd 0.1 * 255 * [0.7, 1.3]: mean |noise| about 0.8 sd, less where clipped. */
	double d = mean_abs_diff(clean, noisy, n);
	CHECK(d > 8 && d < 40);
	free(clean);
	free(noisy);
	/* Eyelashes: off changes some sample of some eye (a sample may draw no lashes). */
	int changed = 0;
	for (uint32_t s = 1; s <= 4; s++) {
		p.eyelashes = 1;
		uint8_t *with = render(&p, 1, 0, -1, s);
		p.eyelashes = 0;
		uint8_t *without = render(&p, 1, 0, -1, s);
		changed += memcmp(with, without, n) != 0;
		free(with);
		free(without);
	}
	CHECK(changed > 0);
	/* Variation 0: samples of one identity differ much less (no pose, pupil, eyelid or
	 * pressure changes; only noise, blur, lashes and the highlight). */
	p.noise = 0;
	p.eyelashes = 0;
	for (int finger = -1; finger <= 0; finger++) {
		double diff[2];
		for (int k = 0; k < 2; k++) {
			p.variation = k ? 1.0 : 0.0;
			double sum = 0;
			for (uint32_t s = 2; s <= 4; s++) {
				uint8_t *a = render(&p, 2, 1, finger, 1), *b = render(&p, 2, 1, finger, s);
				sum += mean_abs_diff(a, b, n);
				free(a);
				free(b);
			}
			diff[k] = sum / 3;
		}
		CHECK(diff[0] < 0.6 * diff[1]);
	}
}

TEST(sizes)
{
	const uint32_t sizes[] = {BIO_SYNTH_MIN_SIZE, 17, 33, 301};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		struct bio_synth_params p = params(sizes[i]);
		for (int finger = -1; finger <= 0; finger++) {
			uint8_t *img = render(&p, 7, 1, finger, 3);
			size_t n = (size_t)sizes[i] * sizes[i];
			int lo = 255, hi = 0;
			for (size_t k = 0; k < n; k++) {
				lo = img[k] < lo ? img[k] : lo;
				hi = img[k] > hi ? img[k] : hi;
			}
			CHECK(hi - lo > 60); /* not a flat image */
			free(img);
		}
	}
}

struct thread_arg {
	const struct bio_synth_print *m;
	uint32_t sample;
	uint8_t img[80 * 80];
	int rc;
};

static void *render_thread(void *arg)
{
	struct thread_arg *a = arg;
	a->rc = bio_synth_print_render(a->img, a->m, a->sample, NULL);
	return NULL;
}

TEST(threads)
{
	struct bio_synth_params p = params(80);
	struct bio_synth_print *m;
	struct bio_error err = {0};
	CHECK_EQ(bio_synth_print_new(&m, &p, 9, 1, 2, &err), 0);
	static struct thread_arg args[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		args[i].m = m;
		args[i].sample = (uint32_t)(3 - i);
		CHECK_EQ(pthread_create(&th[i], NULL, render_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		uint8_t seq[80 * 80];
		CHECK_EQ(args[i].rc, 0);
		CHECK_EQ(bio_synth_print_render(seq, m, args[i].sample, &err), 0);
		CHECK(memcmp(seq, args[i].img, sizeof seq) == 0);
	}
	bio_synth_print_free(m);
}

int main(void)
{
	RUN(params_and_names);
	RUN(deterministic_and_variation);
	RUN(iris_shape);
	RUN(print_shape);
	RUN(print_classes);
	RUN(switches);
	RUN(sizes);
	RUN(threads);
	return test_summary();
}
