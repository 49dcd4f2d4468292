/* PNG through libpng: the decoder to 8-bit gray (every bit depth and color type, Adam7,
 * matching PIL 9.4's open + convert("L")) and the atomic gray/RGB writer. libpng reports errors
 * by longjmp: the setjmp lives in a small inner function whose resources sit in a context owned
 * by the caller, so the caller frees them on either path. CRC errors in any chunk are errors;
 * warnings are dropped; dimensions are checked from IHDR before any pixel memory is allocated. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image_internal.h"

struct png_ctx {
	const uint8_t *buf;
	size_t len, pos;
	const char *name;
	const struct bio_image_limits *lim;
	struct bio_error *err;
	struct bio_image *img;
	png_structp png;
	png_infop info;
	uint8_t *rows;          /* one row, or the whole image when interlaced */
	png_bytep *row_ptrs;
	int rc;                 /* set by us before returning an error of our own */
	char msg[200];          /* libpng's message */
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
	struct png_ctx *c = png_get_error_ptr(png);
	snprintf(c->msg, sizeof c->msg, "%s", msg);
	png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void png_read_cb(png_structp png, png_bytep out, size_t n)
{
	struct png_ctx *c = png_get_io_ptr(png);
	if (n > c->len - c->pos)
		png_error(png, "truncated PNG data");
	memcpy(out, c->buf + c->pos, n);
	c->pos += n;
}

/* Converts one decoded row (after the transforms set up below) to gray. */
static int png_row_to_gray(struct png_ctx *c, uint8_t *dst, const uint8_t *src, int color_type,
			   int bit_depth, const uint8_t *lut, int n_palette, uint32_t y)
{
	uint32_t w = c->img->width;
	switch (color_type) {
	case PNG_COLOR_TYPE_GRAY:
		if (bit_depth == 16) { /* PIL: mode "I", and I -> L clips to 0..255 */
			for (uint32_t x = 0; x < w; x++)
				dst[x] = src[2 * x] ? 255 : src[2 * x + 1];
		} else {
			memcpy(dst, src, w);
		}
		break;
	case PNG_COLOR_TYPE_GRAY_ALPHA:
		for (uint32_t x = 0; x < w; x++)
			dst[x] = src[2 * x];
		break;
	case PNG_COLOR_TYPE_PALETTE:
		for (uint32_t x = 0; x < w; x++) {
			if (src[x] >= n_palette) {
				c->rc = bio_error_set(c->err, BIO_EFORMAT,
						      "%s: PNG palette index %u out of range "
						      "(%d colors) at pixel (%u, %u)",
						      c->name, src[x], n_palette, x, y);
				return c->rc;
			}
			dst[x] = lut[src[x]];
		}
		break;
	case PNG_COLOR_TYPE_RGB:
		for (uint32_t x = 0; x < w; x++)
			dst[x] = bio_image_rgb_to_l(src[3 * x], src[3 * x + 1], src[3 * x + 2]);
		break;
	case PNG_COLOR_TYPE_RGB_ALPHA:
		for (uint32_t x = 0; x < w; x++)
			dst[x] = bio_image_rgb_to_l(src[4 * x], src[4 * x + 1], src[4 * x + 2]);
		break;
	default:
		c->rc = bio_error_set(c->err, BIO_EFORMAT, "%s: bad PNG color type %d", c->name,
				      color_type);
		return c->rc;
	}
	return 0;
}

static int png_decode_inner(struct png_ctx *c)
{
	if (setjmp(png_jmpbuf(c->png)))
		return -1;
	png_set_read_fn(c->png, c, png_read_cb);
	png_set_crc_action(c->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
	png_set_user_limits(c->png, c->lim->max_width > 0x7fffffff ? 0x7fffffff : c->lim->max_width,
			    c->lim->max_height > 0x7fffffff ? 0x7fffffff : c->lim->max_height);
	png_set_chunk_malloc_max(c->png, (png_alloc_size_t)16 << 20);
	png_set_chunk_cache_max(c->png, 1000);
	png_read_info(c->png, c->info);

	png_uint_32 w, h;
	int bit_depth, color_type, interlace;
	png_get_IHDR(c->png, c->info, &w, &h, &bit_depth, &color_type, &interlace, NULL, NULL);
	c->rc = bio_image_alloc_checked(c->img, w, h, c->lim, c->name, "PNG", c->err);
	if (c->rc < 0)
		return c->rc;

	uint8_t lut[256];
	int n_palette = 0;
	if (color_type == PNG_COLOR_TYPE_PALETTE) {
		png_colorp pal = NULL;
		if (!png_get_PLTE(c->png, c->info, &pal, &n_palette) || n_palette <= 0) {
			c->rc = bio_error_set(c->err, BIO_EFORMAT, "%s: PNG palette image without PLTE",
					      c->name);
			return c->rc;
		}
		for (int i = 0; i < n_palette && i < 256; i++)
			lut[i] = bio_image_rgb_to_l(pal[i].red, pal[i].green, pal[i].blue);
	}
	if (bit_depth == 16 && color_type != PNG_COLOR_TYPE_GRAY)
		png_set_strip_16(c->png); /* PIL keeps the high byte */
	if (bit_depth < 8) {
		if (color_type == PNG_COLOR_TYPE_GRAY)
			png_set_expand_gray_1_2_4_to_8(c->png); /* scaled: 1 -> 255, 3 -> 255 */
		else
			png_set_packing(c->png); /* palette indices, one per byte */
	}
	int n_passes = png_set_interlace_handling(c->png);
	png_read_update_info(c->png, c->info);
	size_t row_bytes = png_get_rowbytes(c->png, c->info);
	size_t min_bytes = (size_t)w * (bit_depth == 16 && color_type == PNG_COLOR_TYPE_GRAY ? 2 : 1);
	if (row_bytes < min_bytes || row_bytes / 8 > w) {
		c->rc = bio_error_set(c->err, BIO_EFORMAT, "%s: unexpected PNG row size %zu",
				      c->name, row_bytes);
		return c->rc;
	}
	if (n_passes > 1) {
		if (h > SIZE_MAX / row_bytes) {
			c->rc = bio_error_set(c->err, BIO_ELIMIT, "%s: PNG image too large", c->name);
			return c->rc;
		}
		c->rows = malloc(row_bytes * h);
		c->row_ptrs = malloc(sizeof *c->row_ptrs * h);
		if (!c->rows || !c->row_ptrs) {
			c->rc = bio_error_set(c->err, BIO_ENOMEM, "%s: out of memory", c->name);
			return c->rc;
		}
		for (uint32_t y = 0; y < h; y++)
			c->row_ptrs[y] = c->rows + (size_t)y * row_bytes;
		png_read_image(c->png, c->row_ptrs);
		for (uint32_t y = 0; y < h; y++)
			if (png_row_to_gray(c, c->img->pixels + (size_t)y * w, c->row_ptrs[y],
					    color_type, bit_depth, lut, n_palette, y) < 0)
				return c->rc;
	} else {
		c->rows = malloc(row_bytes);
		if (!c->rows) {
			c->rc = bio_error_set(c->err, BIO_ENOMEM, "%s: out of memory", c->name);
			return c->rc;
		}
		for (uint32_t y = 0; y < h; y++) {
			png_read_row(c->png, c->rows, NULL);
			if (png_row_to_gray(c, c->img->pixels + (size_t)y * w, c->rows, color_type,
					    bit_depth, lut, n_palette, y) < 0)
				return c->rc;
		}
	}
	png_read_end(c->png, NULL);
	return 0;
}

int bio_image_decode_png(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			 const struct bio_image_limits *lim, struct bio_error *err)
{
	struct png_ctx c = {.buf = buf, .len = len, .name = name, .lim = lim, .err = err, .img = img};
	c.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_error_cb, png_warning_cb);
	if (c.png)
		c.info = png_create_info_struct(c.png);
	if (!c.png || !c.info) {
		png_destroy_read_struct(c.png ? &c.png : NULL, NULL, NULL);
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
	}
	/* IHDR is the first chunk: check its dimensions before libpng allocates anything */
	if (len >= 24 && memcmp(buf + 12, "IHDR", 4) == 0) {
		uint32_t w = png_get_uint_32(buf + 16), h = png_get_uint_32(buf + 20);
		int rc0 = bio_image_check_dims(w, h, lim, name, "PNG", err);
		if (rc0 < 0) {
			png_destroy_read_struct(&c.png, &c.info, NULL);
			return rc0;
		}
	}
	int rc = png_decode_inner(&c);
	if (rc < 0 && c.rc == 0) {
		if (strstr(c.msg, "truncated") || strstr(c.msg, "Not enough image data") ||
		    strstr(c.msg, "Read Error"))
			rc = bio_error_set(err, BIO_ETRUNC, "%s: truncated PNG (%s)", name, c.msg);
		else if (strstr(c.msg, "user limit") || strstr(c.msg, "chunk data is too large"))
			rc = bio_error_set(err, BIO_ELIMIT, "%s: PNG %s", name, c.msg);
		else
			rc = bio_error_set(err, BIO_EFORMAT, "%s: bad PNG: %s", name, c.msg);
	} else if (rc < 0) {
		rc = c.rc;
	}
	png_destroy_read_struct(&c.png, &c.info, NULL);
	free(c.rows);
	free(c.row_ptrs);
	if (rc < 0)
		bio_image_destroy(img);
	return rc;
}

/* ---- writer ---- */

struct png_wctx {
	FILE *f;
	const uint8_t *pixels;
	uint32_t width, height;
	int channels;
	char msg[200];
};

static void png_werror_cb(png_structp png, png_const_charp msg)
{
	struct png_wctx *c = png_get_error_ptr(png);
	snprintf(c->msg, sizeof c->msg, "%s", msg);
	png_longjmp(png, 1);
}

static int png_write_inner(struct png_wctx *c, png_structp png, png_infop info)
{
	if (setjmp(png_jmpbuf(png)))
		return -1;
	png_init_io(png, c->f);
	png_set_IHDR(png, info, c->width, c->height, 8,
		     c->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	size_t stride = (size_t)c->width * (size_t)c->channels;
	for (uint32_t y = 0; y < c->height; y++)
		png_write_row(png, c->pixels + (size_t)y * stride);
	png_write_end(png, NULL);
	return 0;
}

int bio_image_save_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
		       int channels, struct bio_error *err)
{
	int rc = bio_image_check_write_args(path, pixels, width, height, channels, err);
	if (rc < 0)
		return rc;
	char tmp[4096];
	int fd = bio_image_tmp_open(tmp, sizeof tmp, path, err);
	if (fd < 0)
		return fd;
	struct png_wctx c = {.pixels = pixels, .width = width, .height = height, .channels = channels};
	c.f = fdopen(fd, "wb");
	if (!c.f) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		bio_image_tmp_abort(NULL, fd, tmp);
		return rc;
	}
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, png_werror_cb,
						  png_warning_cb);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!png || !info) {
		png_destroy_write_struct(png ? &png : NULL, NULL);
		bio_image_tmp_abort(c.f, -1, tmp);
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
	}
	rc = png_write_inner(&c, png, info);
	png_destroy_write_struct(&png, &info);
	if (rc < 0) {
		bio_image_tmp_abort(c.f, -1, tmp);
		return bio_error_set(err, BIO_EIO, "%s: PNG write failed: %s", path, c.msg);
	}
	return bio_image_tmp_commit(c.f, tmp, path, err);
}
