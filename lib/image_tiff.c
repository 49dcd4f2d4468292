/* TIFF decoder to 8-bit gray through libtiff, matching PIL 9.4's open + convert("L"): the file
 * is read from memory with TIFFClientOpen; libtiff's messages go to a per-handle handler that
 * keeps the first error for bio_error (the process-wide handlers are silenced once, so libtiff
 * never writes to stderr). Gray (8/16-bit, min-is-black or min-is-white, with or without an
 * extra sample), palette (1..8-bit, colormap >> 8 as PIL) and 8-bit RGB(A) in strips are read
 * row by row; anything else libtiff can render (tiles, planar, 1/2/4-bit gray, 16-bit RGB,
 * YCbCr, CMYK, ...) goes through TIFFReadRGBAImage and PIL's L formula. Only the first image of
 * a multi-page file is read, as PIL does; a chain of pages that loops is refused. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "image_internal.h"

#if defined(TIFFLIB_VERSION) && TIFFLIB_VERSION >= 20221213
#define BIO_TIFF_OPEN_OPTIONS 1 /* libtiff >= 4.5: per-handle handlers and allocation cap */
#endif

struct tiff_mem {
	const uint8_t *buf;
	toff_t len, pos;
	const char *name;
	char msg[256]; /* first error message, without libtiff's "<name>: " prefix */
	char io_msg[256]; /* first warning about data past the end of the file */
};

/* The offset of the IFD after the one at off (0 at the end of the chain, or when off or the
 * IFD does not lie inside the file: libtiff reports those for the first one). */
static uint64_t tiff_next_ifd(const uint8_t *buf, size_t len, int big_endian, int big, uint64_t off)
{
	size_t count_bytes = big ? 8 : 2, entry_bytes = big ? 20 : 12, off_bytes = big ? 8 : 4;
	if (off == 0 || off > len || len - off < count_bytes)
		return 0;
	uint64_t n = 0;
	for (size_t i = 0; i < count_bytes; i++)
		n |= (uint64_t)buf[off + (big_endian ? count_bytes - 1 - i : i)] << (8 * i);
	if (n > (len - off - count_bytes) / entry_bytes)
		return 0;
	uint64_t at = off + count_bytes + n * entry_bytes;
	if (len - at < off_bytes)
		return 0;
	uint64_t next = 0;
	for (size_t i = 0; i < off_bytes; i++)
		next |= (uint64_t)buf[at + (big_endian ? off_bytes - 1 - i : i)] << (8 * i);
	return next;
}

/* Fails when the chain of IFDs (pages) loops back on itself, e.g. an IFD whose next offset is its
 * own: libtiff reads only the first page as PIL does, but such a file is corrupt. Brent's cycle
 * detection: constant memory, at most a few times the chain's length in steps. */
static int tiff_check_ifd_chain(const uint8_t *buf, size_t len, const char *name,
				struct bio_error *err)
{
	if (len < 16 || !((buf[0] == 'I' && buf[1] == 'I') || (buf[0] == 'M' && buf[1] == 'M')))
		return 0; /* libtiff says what is wrong */
	int be = buf[0] == 'M';
	unsigned magic = be ? (unsigned)buf[2] << 8 | buf[3] : (unsigned)buf[3] << 8 | buf[2];
	int big = magic == 43;
	uint64_t first = 0;
	for (size_t i = 0; i < (big ? 8u : 4u); i++)
		first |= (uint64_t)buf[(big ? 8 : 4) + (be ? (big ? 7 : 3) - i : i)] << (8 * i);
	uint64_t power = 1, lam = 1, tortoise = first;
	uint64_t hare = tiff_next_ifd(buf, len, be, big, first);
	while (hare != 0 && tortoise != hare) {
		if (power == lam) {
			tortoise = hare;
			power *= 2;
			lam = 0;
		}
		hare = tiff_next_ifd(buf, len, be, big, hare);
		lam++;
	}
	if (hare != 0)
		return bio_error_set(err, BIO_EFORMAT,
				     "%s: bad TIFF: the chain of IFDs loops back to offset %llu", name,
				     (unsigned long long)hare);
	return 0;
}

static tmsize_t tiff_read(thandle_t h, void *out, tmsize_t n)
{
	struct tiff_mem *m = h;
	if (n < 0)
		return -1;
	toff_t left = m->pos < m->len ? m->len - m->pos : 0;
	if ((toff_t)n > left)
		n = (tmsize_t)left;
	memcpy(out, m->buf + m->pos, (size_t)n);
	m->pos += (toff_t)n;
	return n;
}

static tmsize_t tiff_write(thandle_t h, void *in, tmsize_t n)
{
	(void)h;
	(void)in;
	(void)n;
	return -1;
}

static toff_t tiff_seek(thandle_t h, toff_t off, int whence)
{
	struct tiff_mem *m = h;
	toff_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->len : 0;
	if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
		return (toff_t)-1;
	if (off > UINT64_MAX - base)
		return (toff_t)-1;
	m->pos = base + off; /* past the end is allowed; reads there return 0 bytes */
	return m->pos;
}

static int tiff_close(thandle_t h)
{
	(void)h;
	return 0;
}

static toff_t tiff_size(thandle_t h)
{
	return ((struct tiff_mem *)h)->len;
}

/* The buffer is "mapped": libtiff reads strips in place (its unmapped path in 4.5.0 also
 * rejects valid uncompressed tiles). */
static int tiff_map(thandle_t h, void **base, toff_t *size)
{
	struct tiff_mem *m = h;
	*base = (void *)(uintptr_t)m->buf;
	*size = m->len;
	return 1;
}

static void tiff_unmap(thandle_t h, void *base, toff_t size)
{
	(void)h;
	(void)base;
	(void)size;
}

#ifdef BIO_TIFF_OPEN_OPTIONS
static int tiff_error_cb(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	struct tiff_mem *m = user;
	(void)tif;
	(void)module;
	if (!m->msg[0]) {
		vsnprintf(m->msg, sizeof m->msg, fmt, ap);
		size_t n = strlen(m->name);
		if (strncmp(m->msg, m->name, n) == 0 && m->msg[n] == ':' && m->msg[n + 1] == ' ')
			memmove(m->msg, m->msg + n + 2, strlen(m->msg + n + 2) + 1);
	}
	return 1; /* handled: the process-wide handler is not called */
}

/* libtiff only warns when a tag's data lies past the end of the file ("IO error during reading
 * of ...; tag ignored") and goes on without the tag: for us that file is truncated. */
static int tiff_warning_cb(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	struct tiff_mem *m = user;
	char msg[256];
	(void)tif;
	(void)module;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (!m->io_msg[0] && strstr(msg, "IO error"))
		snprintf(m->io_msg, sizeof m->io_msg, "%s", msg);
	return 1;
}
#endif

static pthread_once_t tiff_once = PTHREAD_ONCE_INIT;

static void tiff_silence(void)
{
	TIFFSetErrorHandler(NULL);
	TIFFSetWarningHandler(NULL);
}

struct tiff_fmt {
	uint32_t w, h;
	uint16_t bps, spp, photometric, planar, sample_format, orientation;
};

/* Row-by-row decoding of the layouts PIL handles byte for byte. Returns 1 when the layout is
 * not one of them (the caller falls back to RGBA), 0 on success, <0 on error. */
static int tiff_read_rows(struct bio_image *img, TIFF *tif, const struct tiff_fmt *f,
			  struct tiff_mem *m, const char *name, struct bio_error *err)
{
	int gray = f->photometric == PHOTOMETRIC_MINISBLACK || f->photometric == PHOTOMETRIC_MINISWHITE;
	int contig = f->planar == PLANARCONFIG_CONTIG || f->spp == 1;
	if (TIFFIsTiled(tif) || !contig)
		return 1;
	int ok = (gray && (f->bps == 8 || (f->bps == 16 && f->photometric == PHOTOMETRIC_MINISBLACK)) &&
		  f->spp <= 2) ||
		 (f->photometric == PHOTOMETRIC_PALETTE && f->spp == 1 && f->bps <= 8 &&
		  (f->bps == 1 || f->bps == 2 || f->bps == 4 || f->bps == 8)) ||
		 (f->photometric == PHOTOMETRIC_RGB && f->bps == 8 && (f->spp == 3 || f->spp == 4));
	if (!ok)
		return 1;
	uint8_t lut[256];
	if (f->photometric == PHOTOMETRIC_PALETTE) {
		uint16_t *r, *g, *b;
		if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &r, &g, &b))
			return bio_error_set(err, BIO_EFORMAT, "%s: TIFF palette image without a colormap",
					     name);
		for (uint32_t i = 0; i < (1u << f->bps); i++)
			lut[i] = bio_image_rgb_to_l(r[i] >> 8, g[i] >> 8, b[i] >> 8);
	}
	tmsize_t sl = TIFFScanlineSize(tif);
	uint64_t need = ((uint64_t)f->w * f->bps * f->spp + 7) / 8;
	if (sl <= 0 || (uint64_t)sl < need)
		return bio_error_set(err, BIO_EFORMAT, "%s: bad TIFF scanline size", name);
	uint8_t *row = malloc((size_t)sl);
	if (!row)
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
	int rc = 0;
	for (uint32_t y = 0; y < f->h; y++) {
		if (TIFFReadScanline(tif, row, y, 0) < 0) {
			int trunc = strstr(m->msg, "Read error") != NULL;
			rc = bio_error_set(err, trunc ? BIO_ETRUNC : BIO_EFORMAT,
					   "%s: %s TIFF data at row %u: %s", name,
					   trunc ? "truncated" : "bad", y,
					   m->msg[0] ? m->msg : "read failed");
			break;
		}
		uint8_t *dst = img->pixels + (size_t)y * f->w;
		if (gray && f->bps == 8) {
			if (f->spp == 1)
				memcpy(dst, row, f->w);
			else
				for (uint32_t x = 0; x < f->w; x++)
					dst[x] = row[(size_t)x * f->spp];
			if (f->photometric == PHOTOMETRIC_MINISWHITE)
				for (uint32_t x = 0; x < f->w; x++)
					dst[x] = (uint8_t)(255 - dst[x]);
		} else if (gray) { /* 16-bit, native byte order after libtiff: PIL's I;16 -> L clips */
			for (uint32_t x = 0; x < f->w; x++) {
				uint16_t v;
				memcpy(&v, row + 2 * (size_t)x * f->spp, 2);
				dst[x] = v > 255 ? 255 : (uint8_t)v;
			}
		} else if (f->photometric == PHOTOMETRIC_PALETTE) {
			unsigned per = 8 / f->bps, mask = (1u << f->bps) - 1;
			for (uint32_t x = 0; x < f->w; x++) {
				unsigned shift = (per - 1 - x % per) * f->bps;
				dst[x] = lut[(row[x / per] >> shift) & mask];
			}
		} else {
			for (uint32_t x = 0; x < f->w; x++) {
				const uint8_t *p = row + (size_t)x * f->spp;
				dst[x] = bio_image_rgb_to_l(p[0], p[1], p[2]);
			}
		}
	}
	free(row);
	return rc;
}

/* Anything else libtiff can render: RGBA in the file's own row order (PIL ignores the
 * orientation tag), then PIL's L formula. */
static int tiff_read_rgba(struct bio_image *img, TIFF *tif, const struct tiff_fmt *f,
			  struct tiff_mem *m, const char *name, struct bio_error *err)
{
	char emsg[1024] = "";
	if (!TIFFRGBAImageOK(tif, emsg))
		return bio_error_set(err, BIO_EUNSUPPORTED, "%s: unsupported TIFF: %s", name,
				     emsg[0] ? emsg : m->msg);
	size_t n = (size_t)f->w * f->h;
	if (n > SIZE_MAX / 4)
		return bio_error_set(err, BIO_ELIMIT, "%s: TIFF image too large", name);
	uint32_t *raster = malloc(n * 4);
	if (!raster)
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
	int orient = f->orientation >= ORIENTATION_TOPLEFT && f->orientation <= ORIENTATION_LEFTBOT
			     ? f->orientation : ORIENTATION_TOPLEFT;
	int rc = 0;
	if (!TIFFReadRGBAImageOriented(tif, f->w, f->h, raster, orient, 0) || m->msg[0]) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: bad TIFF data: %s", name,
				   m->msg[0] ? m->msg : "read failed");
	} else {
		for (size_t i = 0; i < n; i++)
			img->pixels[i] = bio_image_rgb_to_l(TIFFGetR(raster[i]), TIFFGetG(raster[i]),
							    TIFFGetB(raster[i]));
	}
	free(raster);
	return rc;
}

int bio_image_decode_tiff(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			  const struct bio_image_limits *lim, struct bio_error *err)
{
	struct tiff_mem m = {.buf = buf, .len = len, .name = name};
	pthread_once(&tiff_once, tiff_silence);
	int crc = tiff_check_ifd_chain(buf, len, name, err);
	if (crc < 0)
		return crc;
	TIFF *tif;
#ifdef BIO_TIFF_OPEN_OPTIONS
	TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
	if (!opts)
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
	TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_error_cb, &m);
	TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warning_cb, &m);
	uint64_t cap = lim->max_pixels * 4 + (1u << 20);
	TIFFOpenOptionsSetMaxSingleMemAlloc(opts, cap > (uint64_t)INT64_MAX ? INT64_MAX : (tmsize_t)cap);
	tif = TIFFClientOpenExt(name, "r", &m, tiff_read, tiff_write, tiff_seek, tiff_close,
				tiff_size, tiff_map, tiff_unmap, opts);
	TIFFOpenOptionsFree(opts);
#else
	tif = TIFFClientOpen(name, "r", &m, tiff_read, tiff_write, tiff_seek, tiff_close,
			     tiff_size, tiff_map, tiff_unmap);
#endif
	if (!tif)
		return bio_error_set(err, m.pos >= m.len ? BIO_ETRUNC : BIO_EFORMAT,
				     "%s: bad TIFF: %s", name, m.msg[0] ? m.msg : "cannot open");
	struct tiff_fmt f;
	memset(&f, 0, sizeof f);
	int rc = 0;
	if (m.io_msg[0]) {
		rc = bio_error_set(err, BIO_ETRUNC, "%s: truncated TIFF: %s", name, m.io_msg);
		goto out;
	}
	if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &f.w) ||
	    !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &f.h)) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: TIFF without image dimensions", name);
		goto out;
	}
	TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &f.bps);
	TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &f.spp);
	TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &f.planar);
	TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &f.sample_format);
	TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &f.orientation);
	if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &f.photometric))
		f.photometric = f.spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
	if (f.sample_format != SAMPLEFORMAT_UINT) {
		rc = bio_error_set(err, BIO_EUNSUPPORTED,
				   "%s: unsupported TIFF sample format %u (only unsigned integers)",
				   name, f.sample_format);
		goto out;
	}
	if (f.bps != 1 && f.bps != 2 && f.bps != 4 && f.bps != 8 && f.bps != 16) {
		rc = bio_error_set(err, BIO_EUNSUPPORTED, "%s: unsupported TIFF bit depth %u", name,
				   f.bps);
		goto out;
	}
	rc = bio_image_check_dims(f.w, f.h, lim, name, "TIFF", err);
	if (rc < 0)
		goto out;
	/* every strip or tile must lie inside the file */
	uint32_t n_striles = TIFFIsTiled(tif) ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
	for (uint32_t i = 0; i < n_striles; i++) {
		int e1 = 0, e2 = 0;
		uint64_t off = TIFFGetStrileOffsetWithErr(tif, i, &e1);
		uint64_t n = TIFFGetStrileByteCountWithErr(tif, i, &e2);
		if (e1 || e2 || off > len || n > len - off) {
			rc = bio_error_set(err, BIO_ETRUNC,
					   "%s: truncated TIFF: %s %u (%llu bytes at offset %llu) "
					   "ends past the end of the file (%zu bytes)",
					   name, TIFFIsTiled(tif) ? "tile" : "strip", i,
					   (unsigned long long)n, (unsigned long long)off, len);
			goto out;
		}
	}
	rc = bio_image_alloc_checked(img, f.w, f.h, lim, name, "TIFF", err);
	if (rc < 0)
		goto out;
	rc = tiff_read_rows(img, tif, &f, &m, name, err);
	if (rc == 1)
		rc = tiff_read_rgba(img, tif, &f, &m, name, err);
	if (rc == 0 && m.io_msg[0])
		rc = bio_error_set(err, BIO_ETRUNC, "%s: truncated TIFF: %s", name, m.io_msg);
out:
	TIFFClose(tif);
	if (rc < 0)
		bio_image_destroy(img);
	return rc;
}
