/* JPEG decoder to 8-bit gray through libjpeg(-turbo), matching PIL 9.4's open + convert("L"):
 * gray JPEGs decode straight to gray; color ones decode to RGB with libjpeg's defaults (islow
 * IDCT, fancy upsampling), as PIL does, and then go through PIL's L formula, so the result is
 * PIL's byte for byte when both use the same libjpeg. (Asking libjpeg for JCS_GRAYSCALE would
 * take the Y channel instead: on our fixtures 2.3% of pixels differ from PIL, by up to 14.)
 * CMYK/YCCK JPEGs go through PIL's inverted-CMYK -> RGB -> L. Errors longjmp out of libjpeg
 * into the inner function, whose resources live in the caller's context; libjpeg never prints.
 * A file that ends early is an error (PIL: "image file is truncated"); a progressive file with
 * absurdly many scans is refused. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image_internal.h"

#define JPEG_MAX_SCANS 1000

struct jpeg_ctx {
	struct jpeg_error_mgr mgr; /* first: libjpeg hands us &mgr */
	struct jpeg_progress_mgr progress;
	jmp_buf jmp;
	int truncated;
	char msg[JMSG_LENGTH_MAX];
	struct jpeg_decompress_struct cinfo;
	uint8_t *row;
	struct bio_image *img;
	const struct bio_image_limits *lim;
	const char *name;
	struct bio_error *err;
	int rc; /* our own error, already in err */
};

static void jpeg_error_exit_cb(j_common_ptr cinfo)
{
	struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;
	(*cinfo->err->format_message)(cinfo, c->msg);
	longjmp(c->jmp, 1);
}

static void jpeg_emit_message_cb(j_common_ptr cinfo, int level)
{
	struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;
	if (level < 0) {
		cinfo->err->num_warnings++;
		if (cinfo->err->msg_code == JWRN_JPEG_EOF && !c->truncated) {
			c->truncated = 1;
			(*cinfo->err->format_message)(cinfo, c->msg);
		}
	}
}

static void jpeg_output_message_cb(j_common_ptr cinfo)
{
	(void)cinfo;
}

static void jpeg_progress_cb(j_common_ptr cinfo)
{
	j_decompress_ptr d = (j_decompress_ptr)cinfo;
	if (cinfo->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
		struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;
		snprintf(c->msg, sizeof c->msg, "more than %d scans", JPEG_MAX_SCANS);
		longjmp(c->jmp, 1);
	}
}

/* PIL: a CMYK JPEG is read as "CMYK;I" (Adobe's inverted samples), converted to RGB by
 * cmyk2rgb (no colour management) and then to L. */
static inline unsigned muldiv255(unsigned a, unsigned b)
{
	unsigned t = a * b + 128;
	return ((t >> 8) + t) >> 8;
}

static uint8_t cmyk_to_l(const uint8_t *p)
{
	unsigned cmyk[4], rgb[3];
	for (int i = 0; i < 4; i++)
		cmyk[i] = 255u - p[i];
	unsigned nk = 255u - cmyk[3];
	for (int i = 0; i < 3; i++) {
		unsigned m = muldiv255(cmyk[i], nk);
		rgb[i] = nk > m ? nk - m : 0;
	}
	return bio_image_rgb_to_l(rgb[0], rgb[1], rgb[2]);
}

static int jpeg_decode_inner(struct jpeg_ctx *c, const uint8_t *buf, size_t len)
{
	struct jpeg_decompress_struct *ci = &c->cinfo;
	if (setjmp(c->jmp))
		return -1;
	jpeg_mem_src(ci, buf, (unsigned long)len);
	jpeg_read_header(ci, TRUE);
	c->rc = bio_image_alloc_checked(c->img, ci->image_width, ci->image_height, c->lim, c->name,
					"JPEG", c->err);
	if (c->rc < 0)
		return c->rc;
	switch (ci->jpeg_color_space) {
	case JCS_GRAYSCALE:
		ci->out_color_space = JCS_GRAYSCALE;
		break;
	case JCS_YCbCr:
	case JCS_RGB:
		ci->out_color_space = JCS_RGB;
		break;
	case JCS_CMYK:
	case JCS_YCCK:
		ci->out_color_space = JCS_CMYK;
		break;
	default:
		c->rc = bio_error_set(c->err, BIO_EUNSUPPORTED,
				      "%s: unsupported JPEG color space %d", c->name,
				      (int)ci->jpeg_color_space);
		return c->rc;
	}
	jpeg_start_decompress(ci);
	if (ci->output_width != c->img->width || ci->output_height != c->img->height ||
	    (ci->output_components != 1 && ci->output_components != 3 &&
	     ci->output_components != 4)) {
		c->rc = bio_error_set(c->err, BIO_EFORMAT, "%s: unexpected JPEG output layout",
				      c->name);
		return c->rc;
	}
	size_t w = c->img->width;
	c->row = malloc(w * (size_t)ci->output_components);
	if (!c->row) {
		c->rc = bio_error_set(c->err, BIO_ENOMEM, "%s: out of memory", c->name);
		return c->rc;
	}
	while (ci->output_scanline < ci->output_height) {
		uint8_t *dst = c->img->pixels + (size_t)ci->output_scanline * w;
		JSAMPROW rows[1] = {ci->output_components == 1 ? dst : c->row};
		if (jpeg_read_scanlines(ci, rows, 1) != 1) {
			snprintf(c->msg, sizeof c->msg, "no progress reading scanlines");
			return -1;
		}
		if (ci->output_components == 3)
			for (size_t x = 0; x < w; x++)
				dst[x] = bio_image_rgb_to_l(c->row[3 * x], c->row[3 * x + 1],
							    c->row[3 * x + 2]);
		else if (ci->output_components == 4)
			for (size_t x = 0; x < w; x++)
				dst[x] = cmyk_to_l(c->row + 4 * x);
		if (c->truncated)
			return -1;
	}
	jpeg_finish_decompress(ci);
	return c->truncated ? -1 : 0;
}

int bio_image_decode_jpeg(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			  const struct bio_image_limits *lim, struct bio_error *err)
{
	struct jpeg_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
	c->img = img;
	c->lim = lim;
	c->name = name;
	c->err = err;
	c->cinfo.err = jpeg_std_error(&c->mgr);
	c->mgr.error_exit = jpeg_error_exit_cb;
	c->mgr.emit_message = jpeg_emit_message_cb;
	c->mgr.output_message = jpeg_output_message_cb;
	c->progress.progress_monitor = jpeg_progress_cb;
	int rc;
	if (setjmp(c->jmp)) {
		/* jpeg_create_decompress failed (out of memory) */
		free(c);
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
	}
	jpeg_create_decompress(&c->cinfo);
	c->cinfo.progress = &c->progress;
	rc = jpeg_decode_inner(c, buf, len);
	if (rc < 0 && c->rc == 0) {
		if (c->truncated)
			rc = bio_error_set(err, BIO_ETRUNC, "%s: truncated JPEG (%s)", name, c->msg);
		else
			rc = bio_error_set(err, BIO_EFORMAT, "%s: bad JPEG: %s", name, c->msg);
	} else if (rc < 0) {
		rc = c->rc;
	}
	jpeg_destroy_decompress(&c->cinfo);
	free(c->row);
	free(c);
	if (rc < 0)
		bio_image_destroy(img);
	return rc;
}
