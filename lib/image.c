/* Image entry points of libbio: reading a file with a size bound, sniffing the format from its
 * magic bytes and dispatching to the BMP/PNG/TIFF/JPEG decoders (image_*.c). Each format's
 * writer lives beside its decoder, the resizer in image_resize.c, and what the format files
 * share (limits, checks, atomic output) in image_base.c. */
#include "bio/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_internal.h"

int bio_image_decode(struct bio_image *img, const void *buf, size_t len, const char *name,
		     const struct bio_image_limits *lim, struct bio_error *err)
{
	struct bio_image_limits dflt;
	const uint8_t *p = buf;
	memset(img, 0, sizeof *img);
	if (!name)
		name = "<image>";
	if (!lim) {
		bio_image_limits_default(&dflt);
		lim = &dflt;
	}
	if (len > lim->max_file_bytes)
		return bio_error_set(err, BIO_ELIMIT, "%s: image of %zu bytes exceeds the limit of %zu",
				     name, len, lim->max_file_bytes);
	if (len == 0)
		return bio_error_set(err, BIO_EFORMAT, "%s: empty file", name);
	if (len >= 2 && p[0] == 'B' && p[1] == 'M')
		return bio_image_decode_bmp(img, p, len, name, lim, err);
	if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
		return bio_image_decode_png(img, p, len, name, lim, err);
	if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
		return bio_image_decode_tiff(img, p, len, name, lim, err);
	if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		return bio_image_decode_jpeg(img, p, len, name, lim, err);
	return bio_error_set(err, BIO_EUNSUPPORTED,
			     "%s: unknown image format (not BMP, PNG, TIFF or JPEG)", name);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The dimensions a BMP, PNG or JPEG header declares, from the first len bytes of the file: 1 when
 * found (TIFF and anything not found there: 0, the decoder checks). */
static int sniff_dims(const uint8_t *p, size_t len, uint64_t *w, uint64_t *h, const char **fmt)
{
	if (len >= 26 && p[0] == 'B' && p[1] == 'M') {
		int32_t bw = (int32_t)((uint32_t)p[18] | (uint32_t)p[19] << 8 | (uint32_t)p[20] << 16 |
				       (uint32_t)p[21] << 24);
		int32_t bh = (int32_t)((uint32_t)p[22] | (uint32_t)p[23] << 8 | (uint32_t)p[24] << 16 |
				       (uint32_t)p[25] << 24);
		if (p[14] < 40)
			return 0; /* an OS/2 core header: 16-bit sizes, the decoder handles it */
		*w = (uint64_t)(bw < 0 ? -(int64_t)bw : bw);
		*h = (uint64_t)(bh < 0 ? -(int64_t)bh : bh);
		*fmt = "BMP";
		return 1;
	}
	if (len >= 24 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(p + 12, "IHDR", 4) == 0) {
		*w = be32(p + 16);
		*h = be32(p + 20);
		*fmt = "PNG";
		return 1;
	}
	if (len >= 4 && p[0] == 0xff && p[1] == 0xd8) {
		size_t i = 2;
		while (i + 9 < len) {
			if (p[i] != 0xff)
				return 0;
			uint8_t m = p[i + 1];
			if (m == 0xff) {
				i++;
				continue;
			}
			size_t seg = (size_t)p[i + 2] << 8 | p[i + 3];
			if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
				*h = (uint64_t)p[i + 5] << 8 | p[i + 6];
				*w = (uint64_t)p[i + 7] << 8 | p[i + 8];
				*fmt = "JPEG";
				return 1;
			}
			if (seg < 2)
				return 0;
			i += 2 + seg;
		}
	}
	return 0;
}

/* Reads all of fd (at most max_bytes) into *buf (capacity *cap, grown as needed and kept);
 * *len gets the size. When lim is given, the dimensions the header declares are checked as soon
 * as the first 64 KiB are in: an image over the limits is refused without reading the rest. */
static int read_all(uint8_t **buf, size_t *cap, size_t *len, int fd, const char *path,
		    size_t max_bytes, const struct bio_image_limits *lim, struct bio_error *err)
{
	struct stat st;
	size_t want = 1 << 16, n_read = 0, full = 0;
	int checked = lim == NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if ((uint64_t)st.st_size > max_bytes)
			return bio_error_set(err, BIO_ELIMIT,
					     "%s: file of %llu bytes exceeds the limit of %zu bytes",
					     path, (unsigned long long)st.st_size, max_bytes);
		full = (size_t)st.st_size + 1; /* +1: see the end of the file in one read */
		want = checked || full <= (1u << 16) ? full : (1u << 16);
	}
	for (;;) {
		if (!checked && n_read >= 26) {
			uint64_t w, h;
			const char *fmt = "";
			checked = 1;
			if (sniff_dims(*buf, n_read, &w, &h, &fmt)) {
				int rc = bio_image_check_dims(w, h, lim, path, fmt, err);
				if (rc < 0)
					return rc;
			}
			if (full > want)
				want = full;
		}
		if (n_read == *cap || want > *cap) {
			if (n_read == *cap && *cap > max_bytes)
				return bio_error_set(err, BIO_ELIMIT,
						     "%s: file exceeds the limit of %zu bytes", path,
						     max_bytes);
			size_t ncap = want > *cap ? want : *cap * 2;
			if (ncap > max_bytes + 1)
				ncap = max_bytes + 1;
			uint8_t *nb = realloc(*buf, ncap);
			if (!nb)
				return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
			*buf = nb;
			*cap = ncap;
		}
		ssize_t n = read(fd, *buf + n_read, *cap - n_read);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		}
		if (n == 0)
			break;
		n_read += (size_t)n;
	}
	if (n_read > max_bytes)
		return bio_error_set(err, BIO_ELIMIT, "%s: file exceeds the limit of %zu bytes", path,
				     max_bytes);
	*len = n_read;
	return 0;
}

void bio_image_reader_destroy(struct bio_image_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

int bio_image_reader_load(struct bio_image *img, struct bio_image_reader *r, const char *path,
			  const struct bio_image_limits *lim, struct bio_error *err)
{
	struct bio_image_limits dflt;
	memset(img, 0, sizeof *img);
	if (!lim) {
		bio_image_limits_default(&dflt);
		lim = &dflt;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s", path,
				     strerror(errno));
	size_t len = 0;
	int rc = read_all(&r->buf, &r->cap, &len, fd, path, lim->max_file_bytes, lim, err);
	close(fd);
	if (rc < 0)
		return rc;
	return bio_image_decode(img, r->buf, len, path, lim, err);
}

int bio_image_load(struct bio_image *img, const char *path, const struct bio_image_limits *lim,
		   struct bio_error *err)
{
	struct bio_image_reader r = {0};
	int rc = bio_image_reader_load(img, &r, path, lim, err);
	bio_image_reader_destroy(&r);
	return rc;
}
