/* The image module's base, below the per-format files: default limits, the dimension check and
 * checked allocation the decoders share, bio_image_destroy, the atomic output the writers share
 * and their argument check. It calls no decoder: image.c dispatches to image_<format>.c, and
 * those call down to here, never back. */
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
