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

#endif
