/* Unit tests for lib/segment.c's iris part: the pupil and limbus circles found in bio-synth's
 * irises against the circles it drew (bio_synth_iris_truth), at several sizes and in looks
 * bio-synth does not make (a flat low-contrast response, a gamma, heavy uniform noise); the
 * strip's shape, determinism and the failure on a flat image. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bio/rng.h"
#include "bio/segment.h"
#include "bio/synth.h"
#include "test.h"

/* out = clamp(gain (x / 255)^gamma 255 + offset + noise), noise uniform in +-noise * 255. */
struct look {
	const char *name;
	double gain, gamma, offset, noise;
};

static const struct look looks[] = {
	{"synth", 1.0, 1.0, 0.0, 0.0},
	{"gain 0.6 offset 60", 0.6, 1.0, 60.0, 0.0},
	{"gamma 2.2", 1.0, 2.2, 0.0, 0.0},
	{"noise 0.15 uniform", 1.0, 1.0, 0.0, 0.15},
};

static void apply_look(uint8_t *px, size_t n, const struct look *l, struct bio_rng *r)
{
	for (size_t i = 0; i < n; i++) {
		double v = l->gain * pow(px[i] / 255.0, l->gamma) * 255.0 + l->offset;
		if (l->noise > 0)
			v += l->noise * 255.0 * (2.0 * bio_rng_uniform(r) - 1.0);
		v = floor(v + 0.5);
		px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

static double dist(double ax, double ay, double bx, double by)
{
	return sqrt((ax - bx) * (ax - bx) + (ay - by) * (ay - by));
}

/* BIO_TEST_SEGMENT_FULL=1: every size (96, 128, 200) and 4 subjects x 2 eyes x 2 samples per
 * look, about 90 s; else 96 and 128 px, 2 subjects x 2 eyes x 1 sample (a few seconds, as make
 * test and the sanitizer build run it). */
TEST(truth)
{
	static const uint32_t sizes[] = {96, 128, 200};
	const char *full_env = getenv("BIO_TEST_SEGMENT_FULL");
	const int full = full_env && strcmp(full_env, "1") == 0;
	const size_t n_sizes = full ? 3 : 2;
	const uint32_t n_subjects = full ? 4 : 2, n_samples = full ? 2 : 1;
	for (size_t li = 0; li < sizeof looks / sizeof looks[0]; li++) {
		double worst_p = 0, worst_i = 0, worst_ptol = 0, worst_itol = 0;
		int n_failed = 0;
		for (size_t si = 0; si < n_sizes; si++) {
			const uint32_t S = sizes[si];
			const double ptol = 0.02 * S + 1, itol = 0.03 * S + 1;
			struct bio_synth_params p;
			bio_synth_params_default(&p);
			p.size = S;
			uint8_t *px = malloc((size_t)S * S);
			struct bio_rng r;
			bio_rng_seed2(&r, 7, li, S);
			for (uint32_t subject = 0; subject < n_subjects; subject++)
				for (int side = 0; side < 2; side++) {
					struct bio_error err = {0};
					struct bio_synth_iris *m;
					CHECK_EQ(bio_synth_iris_new(&m, &p, subject, side, &err), 0);
					for (uint32_t sample = 0; sample < n_samples; sample++) {
						struct bio_synth_iris_truth t;
						struct bio_iris_segment_info f;
						CHECK_EQ(bio_synth_iris_render(px, m, sample, &err), 0);
						bio_synth_iris_truth(m, sample, &t);
						apply_look(px, (size_t)S * S, &looks[li], &r);
						struct bio_image img = {S, S, px};
						if (bio_iris_find(&f, &img, &err) < 0) {
							fprintf(stderr, "  %s size %u %u/%d/%u: %s\n",
								looks[li].name, S, subject, side,
								sample, err.msg);
							n_failed++;
							continue;
						}
						double ep = dist(f.pupil[0], f.pupil[1], t.pupil_x,
								 t.pupil_y);
						double epr = fabs(f.pupil[2] - t.pupil_r);
						double ei = dist(f.iris[0], f.iris[1], t.iris_x,
								 t.iris_y);
						double eir = fabs(f.iris[2] - t.iris_r);
						ep = ep > epr ? ep : epr;
						ei = ei > eir ? ei : eir;
						if (ep > ptol || ei > itol)
							fprintf(stderr,
								"  %s size %u %u/%d/%u: pupil err %.2f "
								"(tol %.2f) limbus err %.2f (tol %.2f)\n",
								looks[li].name, S, subject, side,
								sample, ep, ptol, ei, itol);
						CHECK(ep <= ptol);
						CHECK(ei <= itol);
						if (ep / ptol > worst_p / (worst_ptol ? worst_ptol : 1))
							worst_p = ep, worst_ptol = ptol;
						if (ei / itol > worst_i / (worst_itol ? worst_itol : 1))
							worst_i = ei, worst_itol = itol;
					}
					bio_synth_iris_free(m);
				}
			free(px);
		}
		fprintf(stderr,
			"  look '%s': %d failed; worst pupil error %.2f px (tol %.2f), worst limbus "
			"error %.2f px (tol %.2f)\n",
			looks[li].name, n_failed, worst_p, worst_ptol, worst_i, worst_itol);
		CHECK_EQ(n_failed, 0);
	}
}

TEST(strip)
{
	struct bio_synth_params p;
	bio_synth_params_default(&p);
	struct bio_synth_iris *m;
	struct bio_error err = {0};
	uint8_t *px = malloc((size_t)p.size * p.size);
	CHECK_EQ(bio_synth_iris_new(&m, &p, 3, 1, &err), 0);
	CHECK_EQ(bio_synth_iris_render(px, m, 0, &err), 0);
	struct bio_image img = {p.size, p.size, px}, a, b;
	struct bio_iris_segment_params sp = {1, 32, 128};
	struct bio_iris_segment_info f;
	CHECK_EQ(bio_iris_segment(&a, &img, &sp, &f, &err), 0);
	CHECK_EQ(f.failed, 0);
	CHECK_EQ(a.width, 128);
	CHECK_EQ(a.height, 32);
	CHECK_EQ(bio_iris_segment(&b, &img, &sp, NULL, &err), 0);
	CHECK(a.pixels && b.pixels && memcmp(a.pixels, b.pixels, 32 * 128) == 0);
	/* the first row is the pupil's edge: darker on average than the last (the limbus) */
	double r0 = 0, r1 = 0;
	for (int j = 0; j < 128; j++) {
		r0 += a.pixels[j];
		r1 += a.pixels[31 * 128 + j];
	}
	CHECK(r0 < r1);
	bio_image_destroy(&a);
	bio_image_destroy(&b);
	/* a flat image fails, saying so */
	memset(px, 128, (size_t)p.size * p.size);
	CHECK_EQ(bio_iris_segment(&a, &img, &sp, &f, &err), BIO_EINVAL);
	CHECK_EQ(f.failed, 1);
	CHECK(a.pixels == NULL);
	CHECK(strstr(err.msg, "iris segmentation failed") != NULL);
	bio_synth_iris_free(m);
	free(px);
}

int main(void)
{
	RUN(strip);
	RUN(truth);
	return test_summary();
}
