/* Fingerprint foreground segmentation, crop and contrast normalisation (bio-prep, before the
 * resize), so a print that covers half of a 388 x 374 capture fills the model's input instead of
 * a quarter of it, at the same contrast whatever the sensor:
 *
 *  1. blocks of block x block pixels (the last partial row and column of blocks ignored); a block
 *     is foreground when its variance is at least threshold^2 times the largest block variance
 *     (variances from exact integer sums);
 *  2. the block mask opened (eroded, then dilated, 3 x 3 blocks, outside the image counted as
 *     background for the erosion), so isolated specks of texture are dropped;
 *  2b. holes filled: background blocks that no 4-connected path of background blocks joins to the
 *     image's border become foreground;
 *  3. foreground = the share of blocks left; below min_foreground the image fails
 *     (BIO_EINVAL, a message naming both numbers and the key);
 *  4. the crop: the bounding box of those blocks, grown by margin blocks on each side, clamped to
 *     the image, then made square around its centre (side = the longer side; cells outside the
 *     image take the background level);
 *  5. contrast: with M and S the mean and standard deviation of the foreground blocks' pixels
 *     (population, from exact integer sums), each foreground pixel becomes
 *     floor(128 + 127 (x - M) / (2 S) + 0.5) clamped to 0..255, every other cell 128.
 *
 * All arithmetic is exact integers or IEEE doubles in a fixed order (a numpy reference,
 * tests/python/segment_reference.py, gives the same bytes). */
#ifndef BIO_SEGMENT_H
#define BIO_SEGMENT_H

#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/image.h"

struct bio_fp_segment_params {
	int enabled;
	int block;             /* block side, pixels (4..128) */
	double threshold;      /* standard deviation relative to the largest block's (0..1) */
	double min_foreground; /* share of blocks (0..1) */
	int margin;            /* blocks added on each side of the bounding box (0..64) */
};

struct bio_fp_segment_info {
	int failed;             /* 1: the segmentation refused the image (the error says why) */
	double foreground;      /* share of the blocks that are foreground after the opening */
	int64_t crop_x, crop_y; /* the square crop's top-left corner in the input (may be < 0) */
	uint32_t side;          /* its side */
	double mean, std;       /* M and S of step 5 */
};

/* Reads prep.fingerprint.segment, .block, .threshold, .min_foreground and .margin from c; errors
 * name the key. */
int bio_fp_segment_params_from_config(struct bio_fp_segment_params *p, const struct bio_config *c,
				      struct bio_error *err);

/* Segments the 8-bit gray image in (borrowed) into *out (a new 8-bit gray square image; the
 * caller destroys it with bio_image_destroy) and fills *info (may be NULL). On failure *out is
 * left empty and the message says why ("fingerprint segmentation: ..."). */
int bio_fp_segment(struct bio_image *out, const struct bio_image *in,
		   const struct bio_fp_segment_params *p, struct bio_fp_segment_info *info,
		   struct bio_error *err);

/* Iris segmentation and Daugman rubber-sheet normalisation (bio-prep, before the resize, for
 * the modality named iris), on an 8-bit gray eye image of side s = min(width, height). A
 * circle's jump at an angle is the mean of the smoothed image at 1, 2, 3 px outside it minus at
 * 1, 2, 3 px inside; the pupil score of a circle is the mean of the middle half of its jumps
 * at 64 (or 32) angles, the limbus score the smaller of the two lateral arcs' (16 angles from
 * 30 degrees above the horizontal to 40 below, on each side, middle half of each):
 *
 *  1. the image smoothed (two 3 x 3 box passes); lo its 0.2th percentile level;
 *  2. pupil-first candidates: a centre-surround search over squares (integral image), every
 *     centre in the middle 60% and every r in 0.045..0.25 s, scored (F - m) r / (m - lo + 8)^2
 *     with m the mean of the square of half-side 0.7 r and F the second darkest of the four
 *     sides of the frame between half-sides 1.2 r and 1.6 r; the 6 best that do not overlap;
 *     each refined by its pupil score (centre +-0.3 r, radius 0.75..1.35 r), its limbus found
 *     (centre within 0.4 pupil radii, radius max(1.5 pr, 0.15 s)..min(5.2 pr, 0.5 s)), the pupil
 *     searched again inside that limbus (centre within 0.1 R, radius 0.18..0.7 R, the pupil score
 *     over the darkness of its inside) and the limbus again around it;
 *  3. limbus-first candidates: every 2 px in the middle 40%, radius 0.2..0.5 s, by limbus
 *     score, the 6 best that do not overlap; each gets the pupil inside it and the limbus again;
 *  4. of all candidate pairs whose circles nest as an eye's do (centres at most 0.12 R apart,
 *     pupil 0.15..0.72 R) with a pupil score of at least 4 and a limbus score of at least 2 gray
 *     levels, the one with the largest product of the two;
 *  5. the strip: row i at rho = (i + 0.5) / H from the pupil boundary to the limbus, column j
 *     at angle 2 pi j / W (image axes, y down), sampled bilinearly from the unsmoothed image,
 *     rounded to 8 bits.
 *
 * It fails (BIO_EINVAL, "iris segmentation failed: ...") when no pair qualifies (a flat image).
 * Doubles in a fixed order, one thread: the same bytes for the same image. */
struct bio_iris_segment_params {
	int enabled;
	int strip_height, strip_width; /* the polar strip (4..1024 each) */
};

struct bio_iris_segment_info {
	int failed;      /* 1: the segmentation refused the image (the error says why) */
	double pupil[3]; /* centre x, y (pixel-index coordinates) and radius */
	double iris[3];  /* the limbus, likewise */
};

/* Reads prep.iris.segment, .strip_height and .strip_width from c; errors name the key. */
int bio_iris_segment_params_from_config(struct bio_iris_segment_params *p,
					const struct bio_config *c, struct bio_error *err);

/* Finds the pupil and limbus circles of the 8-bit gray image in (borrowed) into *info (failed
 * cleared on success). */
int bio_iris_find(struct bio_iris_segment_info *info, const struct bio_image *in,
		  struct bio_error *err);

/* Finds the circles, then unwraps the iris into *out (a new 8-bit gray strip_width x
 * strip_height image; the caller destroys it with bio_image_destroy) and fills *info (may be
 * NULL). On failure *out is left empty and the message says why. */
int bio_iris_segment(struct bio_image *out, const struct bio_image *in,
		     const struct bio_iris_segment_params *p, struct bio_iris_segment_info *info,
		     struct bio_error *err);

#endif
