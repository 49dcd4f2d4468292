/* Image decoding (PNG, BMP, TIFF, JPEG; format sniffed from the magic bytes) to 8-bit gray,
 * resizing that matches PIL's results, and gray PNG/BMP writers. Only image*.c talk to libpng,
 * libtiff and libjpeg. */
#ifndef BIO_IMAGE_H
#define BIO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"

/* An 8-bit gray image, row-major, width*height bytes. Color sources are converted with PIL's
 * "L" formula (L = R*299/1000 + G*587/1000 + B*114/1000); 16-bit samples are reduced as PIL does. */
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
 * not rounded; within 0.5 of PIL's rounded 8-bit result. */
int bio_image_resize(float *out, uint32_t out_w, uint32_t out_h, const struct bio_image *in,
		     enum bio_resize_filter filter, struct bio_error *err);

/* Writes an 8-bit image with channels 1 (gray) or 3 (RGB, interleaved) as PNG / BMP (BMP:
 * 8-bit palette for gray, 24-bit for RGB). Written to a temp file and renamed into place. */
int bio_image_save_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
		       int channels, struct bio_error *err);
int bio_image_save_bmp(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
		       int channels, struct bio_error *err);

#endif
