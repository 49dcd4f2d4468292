/* JPEG decoder (in progress): reports the format as unsupported until the libtiff/libjpeg
 * decoder lands. */
#include "image_internal.h"

int bio_image_decode_jpeg(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			 const struct bio_image_limits *lim, struct bio_error *err)
{
	(void)img;
	(void)buf;
	(void)len;
	(void)lim;
	return bio_error_set(err, BIO_EUNSUPPORTED, "%s: JPEG decoding not built yet", name);
}
