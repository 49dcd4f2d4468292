/* Private interface between the image*.c files of libbio, in two layers with no way back: the
 * per-format decoders (image_<format>.c) that image.c's bio_image_decode dispatches to, and
 * below them what they share from image_base.c (the dimension check and allocation, atomic
 * output, the writers' argument check) and PIL's RGB -> L formula. */
#ifndef BIO_IMAGE_INTERNAL_H
#define BIO_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bio/error.h"
#include "bio/image.h"

/* Each decoder fills img (zeroed on entry; left zeroed on error) from len bytes of buf (borrowed);
 * lim is never NULL; messages start with name. */
int bio_image_decode_bmp(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			 const struct bio_image_limits *lim, struct bio_error *err);
int bio_image_decode_png(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			 const struct bio_image_limits *lim, struct bio_error *err);
int bio_image_decode_tiff(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			  const struct bio_image_limits *lim, struct bio_error *err);
int bio_image_decode_jpeg(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			  const struct bio_image_limits *lim, struct bio_error *err);

/* Checks width x height (as declared by a file of format fmt) against lim: 0, BIO_EFORMAT (zero
 * size) or BIO_ELIMIT. */
int bio_image_check_dims(uint64_t width, uint64_t height, const struct bio_image_limits *lim,
			 const char *name, const char *fmt, struct bio_error *err);
/* Checks width x height (as declared by a file of format fmt, e.g. "BMP") against lim and
 * allocates img->pixels; returns 0, BIO_EFORMAT (zero size), BIO_ELIMIT or BIO_ENOMEM. */
int bio_image_alloc_checked(struct bio_image *img, uint64_t width, uint64_t height,
			    const struct bio_image_limits *lim, const char *name, const char *fmt,
			    struct bio_error *err);

/* Atomic output: creates <path>.tmp.<pid>.<tid>.<n> (name in tmp) and returns its fd, or a
 * negative BIO_E* code. When path exists and is not a regular file (a device, a FIFO), opens
 * path itself and sets tmp to "" (nothing is renamed over a device). commit flushes and closes
 * f (taken) and renames tmp over path, removing tmp on any error; abort closes f (or fd) and
 * removes tmp. */
int bio_image_tmp_open(char *tmp, size_t tmp_size, const char *path, struct bio_error *err);
int bio_image_tmp_commit(FILE *f, const char *tmp, const char *path, struct bio_error *err);
void bio_image_tmp_abort(FILE *f, int fd, const char *tmp);
/* Validates the arguments of the writers (channels 1 or 3, non-zero size, no overflow). */
int bio_image_check_write_args(const char *path, const uint8_t *pixels, uint32_t width,
			       uint32_t height, int channels, struct bio_error *err);

/* PIL 9.4 "RGB" -> "L" (Convert.c, L24): ITU-R 601-2 luma in 16-bit fixed point, rounded. */
static inline uint8_t bio_image_rgb_to_l(unsigned r, unsigned g, unsigned b)
{
	return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

#endif
