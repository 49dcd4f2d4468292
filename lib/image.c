/* Image entry points of libbio: limits, reading a file with a size bound, sniffing the format
 * from its magic bytes and dispatching to the BMP/PNG/TIFF/JPEG decoders (image_*.c), and the
 * atomic BMP writer (8-bit gray with a gray palette, or 24-bit RGB). The PNG writer lives in
 * image_png.c beside the PNG decoder, the resizer in image_resize.c. */
#include "bio/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_internal.h"

void bio_image_limits_default(struct bio_image_limits *lim)
{
	lim->max_width = 16384;
	lim->max_height = 16384;
	lim->max_pixels = (uint64_t)64 << 20;
	lim->max_file_bytes = (size_t)256 << 20;
}

int bio_image_check_dims(uint64_t width, uint64_t height, const struct bio_image_limits *lim,
			 const char *name, const char *fmt, struct bio_error *err)
{
	if (width == 0 || height == 0)
		return bio_error_set(err, BIO_EFORMAT, "%s: %s image has zero size (%llux%llu)",
				     name, fmt, (unsigned long long)width,
				     (unsigned long long)height);
	if (width > lim->max_width || height > lim->max_height)
		return bio_error_set(err, BIO_ELIMIT,
				     "%s: %s image of %llux%llu exceeds the limit of %ux%u", name,
				     fmt, (unsigned long long)width, (unsigned long long)height,
				     lim->max_width, lim->max_height);
	/* both factors are below 2^32 here, so the product fits in 64 bits */
	uint64_t n = width * height;
	if (n > lim->max_pixels || n > SIZE_MAX)
		return bio_error_set(err, BIO_ELIMIT,
				     "%s: %s image of %llux%llu exceeds the limit of %llu pixels",
				     name, fmt, (unsigned long long)width,
				     (unsigned long long)height, (unsigned long long)lim->max_pixels);
	return 0;
}

int bio_image_alloc_checked(struct bio_image *img, uint64_t width, uint64_t height,
			    const struct bio_image_limits *lim, const char *name, const char *fmt,
			    struct bio_error *err)
{
	int rc = bio_image_check_dims(width, height, lim, name, fmt, err);
	if (rc < 0)
		return rc;
	uint64_t n = width * height;
	img->pixels = malloc((size_t)n);
	if (!img->pixels)
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory for a %llux%llu image",
				     name, (unsigned long long)width, (unsigned long long)height);
	img->width = (uint32_t)width;
	img->height = (uint32_t)height;
	return 0;
}

void bio_image_destroy(struct bio_image *img)
{
	if (!img)
		return;
	free(img->pixels);
	img->pixels = NULL;
	img->width = 0;
	img->height = 0;
}

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

/* ---- atomic output: <path>.tmp.<pid>.<tid>.<n>, renamed over path on success ---- */

int bio_image_tmp_open(char *tmp, size_t tmp_size, const char *path, struct bio_error *err)
{
	struct stat st;
	tmp[0] = '\0';
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* a device or FIFO (/dev/full, /dev/stdout): write to it, never rename over it */
		int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (fd < 0)
			return bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		return fd;
	}
	for (int attempt = 0; attempt < 100; attempt++) {
		int n = snprintf(tmp, tmp_size, "%s.tmp.%ld.%ld.%d", path, (long)getpid(),
				 (long)gettid(), attempt);
		if (n < 0 || (size_t)n >= tmp_size) {
			tmp[0] = '\0';
			return bio_error_set(err, BIO_EINVAL, "%s: path too long", path);
		}
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST) {
			int e = errno;
			tmp[0] = '\0';
			return bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(e));
		}
	}
	tmp[0] = '\0';
	return bio_error_set(err, BIO_EIO, "%s: cannot create a temporary file", path);
}

void bio_image_tmp_abort(FILE *f, int fd, const char *tmp)
{
	if (f)
		fclose(f);
	else if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
}

int bio_image_tmp_commit(FILE *f, const char *tmp, const char *path, struct bio_error *err)
{
	int rc = 0;
	if (fflush(f) != 0 || ferror(f))
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno ? errno : EIO));
	if (fclose(f) != 0 && rc == 0)
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
	if (tmp[0]) {
		if (rc == 0 && rename(tmp, path) != 0)
			rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		if (rc < 0)
			unlink(tmp);
	}
	return rc;
}

int bio_image_check_write_args(const char *path, const uint8_t *pixels, uint32_t width,
			       uint32_t height, int channels, struct bio_error *err)
{
	if (!pixels || width == 0 || height == 0 || (channels != 1 && channels != 3))
		return bio_error_set(err, BIO_EINVAL,
				     "%s: cannot write a %ux%u image with %d channels", path, width,
				     height, channels);
	if (width > 0x7fffffffu / 3 || height > 0x7fffffffu ||
	    (uint64_t)width * height * (uint64_t)channels > 0x7fffffffu)
		return bio_error_set(err, BIO_EINVAL, "%s: image of %ux%u too large to write", path,
				     width, height);
	return 0;
}

static void put_le16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int bio_image_save_bmp(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
		       int channels, struct bio_error *err)
{
	int rc = bio_image_check_write_args(path, pixels, width, height, channels, err);
	if (rc < 0)
		return rc;
	uint32_t bits = channels == 1 ? 8 : 24;
	uint32_t stride = ((width * bits + 31) / 32) * 4;
	uint32_t n_colors = channels == 1 ? 256 : 0;
	uint32_t offset = 14 + 40 + 4 * n_colors;
	uint64_t data_bytes = (uint64_t)stride * height;
	if (offset + data_bytes > 0xffffffffu)
		return bio_error_set(err, BIO_EINVAL, "%s: image of %ux%u too large for BMP", path,
				     width, height);

	uint8_t hdr[14 + 40 + 1024];
	memset(hdr, 0, sizeof hdr);
	hdr[0] = 'B';
	hdr[1] = 'M';
	put_le32(hdr + 2, (uint32_t)(offset + data_bytes));
	put_le32(hdr + 10, offset);
	put_le32(hdr + 14, 40);
	put_le32(hdr + 18, width);
	put_le32(hdr + 22, height); /* positive: bottom-up rows */
	put_le16(hdr + 26, 1);
	put_le16(hdr + 28, bits);
	put_le32(hdr + 30, 0); /* BI_RGB */
	put_le32(hdr + 34, (uint32_t)data_bytes);
	put_le32(hdr + 38, 2835); /* 72 dpi */
	put_le32(hdr + 42, 2835);
	put_le32(hdr + 46, n_colors);
	put_le32(hdr + 50, 0);
	for (uint32_t i = 0; i < n_colors; i++) {
		uint8_t *e = hdr + 54 + 4 * i;
		e[0] = e[1] = e[2] = (uint8_t)i;
	}

	char tmp[4096];
	int fd = bio_image_tmp_open(tmp, sizeof tmp, path, err);
	if (fd < 0)
		return fd;
	FILE *f = fdopen(fd, "wb");
	if (!f) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		bio_image_tmp_abort(NULL, fd, tmp);
		return rc;
	}
	uint8_t *row = calloc(stride, 1);
	if (!row) {
		bio_image_tmp_abort(f, -1, tmp);
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
	}
	fwrite(hdr, 1, offset, f);
	for (uint32_t y = height; y-- > 0;) {
		const uint8_t *src = pixels + (size_t)y * width * (size_t)channels;
		if (channels == 1) {
			memcpy(row, src, width);
		} else {
			for (uint32_t x = 0; x < width; x++) {
				row[3 * x + 0] = src[3 * x + 2];
				row[3 * x + 1] = src[3 * x + 1];
				row[3 * x + 2] = src[3 * x + 0];
			}
		}
		if (fwrite(row, 1, stride, f) != stride)
			break;
	}
	free(row);
	return bio_image_tmp_commit(f, tmp, path, err);
}
