/* Image decoding (PNG, BMP, TIFF, JPEG; format sniffed from the magic bytes) to 8-bit gray,
 * resizing that matches PIL's results, and gray/RGB PNG/BMP writers. Only image*.c talk to
 * libpng, libtiff and libjpeg. Decoded formats: PNG at every bit depth and color type, with tRNS
 * and Adam7; BMP with OS/2 core, INFO, V4 and V5 headers, 1/4/8-bit palettes, 16/24/32-bit
 * (bit fields too), bottom-up or top-down, RLE8/RLE4; TIFF through libtiff (8/16-bit gray,
 * palette, RGB(A), and whatever libtiff's RGBA reader handles); JPEG gray, YCbCr, CMYK/YCCK.
 * Tested bit-exact against PIL 9.4 by tests/python/pil_compare.py. */
#ifndef BIO_IMAGE_H
#define BIO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"

/* An 8-bit gray image, row-major, width*height bytes. Decoding matches PIL 9.4's
 * Image.open(p).convert("L"): color is converted with PIL's fixed-point ITU-R 601-2 formula
 * L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, palettes through the palette, alpha ignored.
 * 16-bit samples as PIL reduces them: RGB(A) and gray+alpha keep the high byte, while 16-bit gray
 * (PNG, TIFF) is clipped to 0..255 (PIL opens it as mode I / I;16, whose L conversion clips). */
struct bio_image {
	uint32_t width;
	uint32_t height;
	uint8_t *pixels;
};

struct bio_image_limits {
	uint32_t max_width;      /* default 16384 */
	uint32_t max_height;     /* default 16384 */
	uint64_t max_pixels;     /* default 64M */
	size_t max_file_bytes;   /* default 256 MiB */
};

void bio_image_limits_default(struct bio_image_limits *lim);

/* Reads and decodes the file at path into img (caller-owned storage; free with destroy).
 * Messages name the path: "x.bmp: truncated BMP pixel array (got 1024 of 76800 bytes)". */
int bio_image_load(struct bio_image *img, const char *path, const struct bio_image_limits *lim,
		   struct bio_error *err);
/* A read buffer reused across loads: loading many files through one reader saves an allocation
 * and its page faults per file (about 0.1 ms per 150 KB file). Zero-initialise it
 * (struct bio_image_reader r = {0}); one per thread; free with bio_image_reader_destroy. */
struct bio_image_reader {
	uint8_t *buf;
	size_t cap;
};
/* As bio_image_load, reading through r (borrowed; its buffer grows as needed and is kept). */
int bio_image_reader_load(struct bio_image *img, struct bio_image_reader *r, const char *path,
			  const struct bio_image_limits *lim, struct bio_error *err);
void bio_image_reader_destroy(struct bio_image_reader *r);

/* Decodes len bytes of buf (borrowed); name is used in messages. */
int bio_image_decode(struct bio_image *img, const void *buf, size_t len, const char *name,
		     const struct bio_image_limits *lim, struct bio_error *err);
/* Frees img's pixels; img may be zeroed or already destroyed. */
void bio_image_destroy(struct bio_image *img);

enum bio_resize_filter {
	BIO_RESIZE_BILINEAR, /* PIL Image.BILINEAR (triangle filter, support scaled on downsampling) */
	BIO_RESIZE_AREA,     /* PIL Image.BOX (area average) */
};

/* Resizes in to out_w x out_h floats (out: caller buffer of out_w*out_h) in the 0..255 range,
 * not rounded: PIL 9.4 Image.resize's last fixed-point accumulator / 2^22 (its horizontal pass is
 * rounded to 8 bits as PIL does), to the nearest float or one ulp off where float32 cannot tell a
 * near-tie apart, so that floorf(v + 0.5f) is exactly PIL's 8-bit pixel (|v - PIL| <= 0.5).
 * Builds the coefficient tables on every call; a caller resizing many images of one size should
 * use a bio_resize_plan. */
int bio_image_resize(float *out, uint32_t out_w, uint32_t out_h, const struct bio_image *in,
		     enum bio_resize_filter filter, struct bio_error *err);

/* Coefficient tables for one (in size, out size, filter); read-only once built, so one plan may
 * be shared by threads. */
struct bio_resize_plan;

/* Builds a plan in *plan (returned new; free with bio_image_resize_plan_free). */
int bio_image_resize_plan_new(struct bio_resize_plan **plan, uint32_t in_w, uint32_t in_h,
			      uint32_t out_w, uint32_t out_h, enum bio_resize_filter filter,
			      struct bio_error *err);
void bio_image_resize_plan_free(struct bio_resize_plan *plan);
/* As bio_image_resize with a plan (borrowed) for in's size; out holds out_w*out_h floats. */
int bio_image_resize_planned(float *out, const struct bio_resize_plan *plan,
			     const struct bio_image *in, struct bio_error *err);
/* The same, rounded exactly as PIL rounds: out (out_w*out_h bytes) equals PIL's result. */
int bio_image_resize_planned_u8(uint8_t *out, const struct bio_resize_plan *plan,
				const struct bio_image *in, struct bio_error *err);

/* Writes an 8-bit image with channels 1 (gray) or 3 (RGB, interleaved) as PNG / BMP (BMP:
 * 8-bit palette for gray, 24-bit for RGB). Written to <path>.tmp.<pid>.<tid>.<n> and renamed
 * into place (not fsync'ed), so a failed write leaves no partial file; a path that is a device
 * or FIFO (/dev/stdout, /dev/full) is written directly, never renamed over. Safe in threads. */
int bio_image_save_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
		       int channels, struct bio_error *err);
int bio_image_save_bmp(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
		       int channels, struct bio_error *err);

#endif
