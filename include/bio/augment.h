/* Training-time augmentation of one modality's image (bio-batch): a random similarity transform
 * (rotation about the centre, isotropic scale, translation) resampled bilinearly with the border
 * replicated, an optional circular shift along x (the rotation of a polar iris strip), and a
 * contrast gain and brightness offset. Each sample's transform is drawn from its own RNG stream,
 * keyed by (seed, epoch, sample, modality), so batches are reproducible whatever the batch size,
 * the order of work or the thread count. */
#ifndef BIO_AUGMENT_H
#define BIO_AUGMENT_H

#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"

/* The ranges of one modality (config augment.<modality>.*); all 0: none. */
struct bio_augment {
	double rotate;     /* largest |angle|, degrees */
	double translate;  /* largest |shift| per axis, fraction of the side */
	double scale;      /* scale factor drawn in [1 - scale, 1 + scale] */
	double contrast;   /* gain drawn in [1 - contrast, 1 + contrast] */
	double brightness; /* offset drawn in [-brightness, brightness] (normalised units) */
	double shift;      /* largest |circular shift| along x, fraction of the width */
};

/* One drawn transform. Output pixel (x, y) (0-based) reads the input at
 * (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]) of the input rolled by `shift` columns
 * (rolled[y][x] = in[y][(x - shift) mod w]), bilinearly, coordinates clamped to the image (the
 * border replicated); then v = gain * v + bias. */
struct bio_augment_params {
	double m[6];
	double gain, bias;
	int shift;
};
#define BIO_AUGMENT_N_PARAMS 9 /* m[6], gain, bias, shift: the record's aug_<modality> row */

/* Fills a from augment.<modality>.* of cfg when augment.enabled is true and the section exists,
 * else all 0. Errors name the key. */
int bio_augment_from_config(struct bio_augment *a, const struct bio_config *cfg,
			    const char *modality, struct bio_error *err);
/* 1 when any range is non-zero. */
int bio_augment_active(const struct bio_augment *a);
/* Draws the transform of (seed, epoch, sample, modality) for an h x w image; the same number
 * of draws whichever ranges are 0, so changing one range leaves the others' values as they were. */
void bio_augment_draw(struct bio_augment_params *p, const struct bio_augment *a, int h, int w,
		      uint64_t seed, uint64_t epoch, uint64_t sample, uint64_t modality);
/* out [h][w] (must not alias in) = the transform of in [h][w]. */
void bio_augment_apply(float *out, const float *in, int h, int w,
		       const struct bio_augment_params *p);
/* The params as the 9 doubles of a record row (m[0..5], gain, bias, shift). */
void bio_augment_params_pack(double *row, const struct bio_augment_params *p);

#endif
