/* Fingerprint segmentation, crop and contrast normalisation (include/bio/segment.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bio/segment.h"

int bio_fp_segment_params_from_config(struct bio_fp_segment_params *p, const struct bio_config *c,
				      struct bio_error *err)
{
	int64_t block, margin;
	int rc;
	memset(p, 0, sizeof *p);
	if ((rc = bio_config_get_bool(c, "prep.fingerprint.segment", &p->enabled, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.fingerprint.block", 4, 128, &block, err)) < 0 ||
	    (rc = bio_config_get_double_range(c, "prep.fingerprint.threshold", 0.0, 1.0,
					      &p->threshold, err)) < 0 ||
	    (rc = bio_config_get_double_range(c, "prep.fingerprint.min_foreground", 0.0, 1.0,
					      &p->min_foreground, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.fingerprint.margin", 0, 64, &margin, err)) < 0)
		return rc;
	p->block = (int)block;
	p->margin = (int)margin;
	return 0;
}

/* The 3 x 3 erosion (erode != 0: every cell of the window set, cells outside counting as unset)
 * or dilation (any cell set) of mask [hb][wb] into out. */
static void morph3(uint8_t *out, const uint8_t *mask, int hb, int wb, int erode)
{
	for (int y = 0; y < hb; y++)
		for (int x = 0; x < wb; x++) {
			int all = 1, any = 0;
			for (int dy = -1; dy <= 1; dy++)
				for (int dx = -1; dx <= 1; dx++) {
					int yy = y + dy, xx = x + dx;
					int v = yy >= 0 && yy < hb && xx >= 0 && xx < wb &&
						mask[(size_t)yy * wb + xx];
					all &= v;
					any |= v;
				}
			out[(size_t)y * wb + x] = (uint8_t)(erode ? all : any);
		}
}

int bio_fp_segment(struct bio_image *out, const struct bio_image *in,
		   const struct bio_fp_segment_params *p, struct bio_fp_segment_info *info,
		   struct bio_error *err)
{
	memset(out, 0, sizeof *out);
	if (info) {
		memset(info, 0, sizeof *info);
		info->failed = 1; /* until it succeeds */
	}
	const int b = p->block;
	if (!in || !in->pixels || in->width < (uint32_t)b || in->height < (uint32_t)b)
		return bio_error_set(err, BIO_EINVAL,
				     "fingerprint segmentation: image %ux%u is smaller than one %dx%d "
				     "block (prep.fingerprint.block)",
				     in ? in->width : 0, in ? in->height : 0, b, b);
	const int wb = (int)(in->width / (uint32_t)b), hb = (int)(in->height / (uint32_t)b);
	const size_t nb = (size_t)wb * hb, w = in->width;
	double *var = malloc(nb * sizeof(double));
	uint8_t *mask = calloc(nb, 1), *tmp = calloc(nb, 1);
	if (!var || !mask || !tmp) {
		free(var);
		free(mask);
		free(tmp);
		return bio_error_set(err, BIO_ENOMEM, "fingerprint segmentation: out of memory");
	}
	/* 1. block variances times n^2, exact: n sum(x^2) - sum(x)^2 */
	const int64_t n = (int64_t)b * b;
	double vmax = 0.0;
	for (int by = 0; by < hb; by++)
		for (int bx = 0; bx < wb; bx++) {
			int64_t s1 = 0, s2 = 0;
			for (int y = by * b; y < (by + 1) * b; y++) {
				const uint8_t *row = in->pixels + (size_t)y * w + (size_t)bx * b;
				for (int x = 0; x < b; x++) {
					s1 += row[x];
					s2 += (int64_t)row[x] * row[x];
				}
			}
			double v = (double)(n * s2 - s1 * s1);
			var[(size_t)by * wb + bx] = v;
			if (v > vmax)
				vmax = v;
		}
	const double t = p->threshold * p->threshold * vmax;
	for (size_t i = 0; i < nb; i++)
		tmp[i] = (uint8_t)(vmax > 0.0 && var[i] >= t);
	/* 2. opening */
	morph3(mask, tmp, hb, wb, 1);
	morph3(tmp, mask, hb, wb, 0);
	memcpy(mask, tmp, nb);
	/* 2b. holes filled: background blocks not reached from the border through background
	 * (4-neighbours) become foreground (a smudge or a pale patch inside the print) */
	{
		size_t *stack = malloc(nb * sizeof(size_t)), top = 0;
		if (!stack) {
			free(var);
			free(mask);
			free(tmp);
			return bio_error_set(err, BIO_ENOMEM, "fingerprint segmentation: out of memory");
		}
		memset(tmp, 0, nb); /* tmp: background reached from the border */
		for (int by = 0; by < hb; by++)
			for (int bx = 0; bx < wb; bx++) {
				size_t i = (size_t)by * wb + bx;
				if ((by == 0 || bx == 0 || by == hb - 1 || bx == wb - 1) && !mask[i]) {
					tmp[i] = 1;
					stack[top++] = i;
				}
			}
		while (top > 0) {
			size_t i = stack[--top];
			int by = (int)(i / (size_t)wb), bx = (int)(i % (size_t)wb);
			const int ny[4] = {by - 1, by + 1, by, by}, nx[4] = {bx, bx, bx - 1, bx + 1};
			for (int k = 0; k < 4; k++) {
				if (ny[k] < 0 || ny[k] >= hb || nx[k] < 0 || nx[k] >= wb)
					continue;
				size_t j = (size_t)ny[k] * wb + nx[k];
				if (!mask[j] && !tmp[j]) {
					tmp[j] = 1;
					stack[top++] = j;
				}
			}
		}
		for (size_t i = 0; i < nb; i++)
			mask[i] = (uint8_t)!tmp[i];
		free(stack);
	}
	/* 3. the share of foreground blocks, their bounding box */
	size_t n_fg = 0;
	int bx0 = wb, by0 = hb, bx1 = -1, by1 = -1;
	for (int by = 0; by < hb; by++)
		for (int bx = 0; bx < wb; bx++)
			if (mask[(size_t)by * wb + bx]) {
				n_fg++;
				bx0 = bx < bx0 ? bx : bx0;
				bx1 = bx > bx1 ? bx : bx1;
				by0 = by < by0 ? by : by0;
				by1 = by > by1 ? by : by1;
			}
	const double fg = (double)n_fg / (double)nb;
	int rc = 0;
	if (info)
		info->foreground = fg;
	if (n_fg == 0 || fg < p->min_foreground) {
		rc = bio_error_set(err, BIO_EINVAL,
				   "fingerprint segmentation failed: foreground %.1f%% of the image, "
				   "below prep.fingerprint.min_foreground %.1f%%",
				   100.0 * fg, 100.0 * p->min_foreground);
		goto done;
	}
	/* 5 (first half). mean and deviation of the foreground blocks' pixels, exact sums */
	uint64_t s1 = 0, s2 = 0, cnt = 0;
	for (int by = 0; by < hb; by++)
		for (int bx = 0; bx < wb; bx++) {
			if (!mask[(size_t)by * wb + bx])
				continue;
			for (int y = by * b; y < (by + 1) * b; y++) {
				const uint8_t *row = in->pixels + (size_t)y * w + (size_t)bx * b;
				for (int x = 0; x < b; x++) {
					s1 += row[x];
					s2 += (uint64_t)row[x] * row[x];
				}
			}
			cnt += (uint64_t)n;
		}
	const double mean = (double)s1 / (double)cnt;
	const double var_fg = (double)s2 / (double)cnt - mean * mean;
	const double sd = var_fg > 0.0 ? sqrt(var_fg) : 0.0;
	if (!(sd > 0.0)) {
		rc = bio_error_set(err, BIO_EINVAL,
				   "fingerprint segmentation failed: the foreground is flat");
		goto done;
	}
	/* 4. the crop, in pixels: the box grown by the margin, clamped, made square */
	int64_t x0 = (int64_t)(bx0 - p->margin) * b, y0 = (int64_t)(by0 - p->margin) * b;
	int64_t x1 = (int64_t)(bx1 + 1 + p->margin) * b, y1 = (int64_t)(by1 + 1 + p->margin) * b;
	x0 = x0 < 0 ? 0 : x0;
	y0 = y0 < 0 ? 0 : y0;
	x1 = x1 > (int64_t)in->width ? (int64_t)in->width : x1;
	y1 = y1 > (int64_t)in->height ? (int64_t)in->height : y1;
	const int64_t side = x1 - x0 > y1 - y0 ? x1 - x0 : y1 - y0;
	const int64_t cx = x0 - (side - (x1 - x0)) / 2, cy = y0 - (side - (y1 - y0)) / 2;
	out->pixels = malloc((size_t)side * (size_t)side);
	if (!out->pixels) {
		rc = bio_error_set(err, BIO_ENOMEM, "fingerprint segmentation: out of memory");
		goto done;
	}
	out->width = out->height = (uint32_t)side;
	/* 5. foreground pixels normalised, every other cell the background level */
	const double scale = 2.0 * sd;
	for (int64_t y = 0; y < side; y++) {
		uint8_t *o = out->pixels + (size_t)y * (size_t)side;
		const int64_t iy = cy + y, by = iy >= 0 ? iy / b : -1;
		for (int64_t x = 0; x < side; x++) {
			const int64_t ix = cx + x, bx = ix >= 0 ? ix / b : -1;
			if (iy < 0 || ix < 0 || by >= hb || bx >= wb ||
			    !mask[(size_t)by * wb + (size_t)bx]) {
				o[x] = 128;
				continue;
			}
			double v = floor(128.0 + 127.0 * (((double)in->pixels[(size_t)iy * w + ix] -
							    mean) / scale) + 0.5);
			o[x] = (uint8_t)(v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v);
		}
	}
	if (info) {
		info->failed = 0;
		info->foreground = fg;
		info->crop_x = cx;
		info->crop_y = cy;
		info->side = (uint32_t)side;
		info->mean = mean;
		info->std = sd;
	}
done:
	free(var);
	free(mask);
	free(tmp);
	return rc;
}
