/* BMP decoder to 8-bit gray, matching PIL 9.4's BmpImagePlugin + convert("L"): OS/2 core (12),
 * BITMAPINFOHEADER (40) and its extensions (52, 56, 64, V4 108, V5 124); 1/4/8-bit palette,
 * 16-bit (5-5-5 or bit fields), 24-bit, 32-bit (BGRX or bit fields); bottom-up and top-down
 * rows; RLE8/RLE4. Every field read from the file is checked against the file size and the
 * limits before anything is allocated; palette indices past the palette are errors. And the
 * atomic BMP writer (8-bit gray with a gray palette, or 24-bit RGB). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

enum { BMP_RGB = 0, BMP_RLE8 = 1, BMP_RLE4 = 2, BMP_BITFIELDS = 3, BMP_ALPHABITFIELDS = 6 };

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One channel of a bit-field pixel: a contiguous mask of 1..8 bits, expanded to 8 bits as PIL
 * expands 5- and 6-bit channels (v * 255 / max). */
struct bmp_field {
	uint32_t shift;
	uint32_t max;
};

static int field_init(struct bmp_field *f, uint32_t mask)
{
	if (mask == 0)
		return -1;
	f->shift = 0;
	while (!(mask & 1)) {
		mask >>= 1;
		f->shift++;
	}
	if (mask & (mask + 1)) /* not contiguous */
		return -1;
	if (mask > 0xff)
		return -1;
	f->max = mask;
	return 0;
}

static unsigned field_get(const struct bmp_field *f, uint32_t px)
{
	uint32_t v = (px >> f->shift) & f->max;
	return f->max == 255 ? v : v * 255 / f->max;
}

struct bmp_info {
	uint32_t header_bytes;
	uint64_t width, height;
	int top_down;
	uint32_t bits, compression, n_colors;
	size_t pal_entry_bytes;
	struct bmp_field r, g, b;
	uint8_t gray_lut[256]; /* palette entry -> L */
};

/* RLE8/RLE4 decoding as PIL's BmpRleDecoder: indices written in file row order; end-of-line and
 * delta skip with index 0; data ending early leaves the rest at index 0. Unlike PIL, a run that
 * would cross the end of its row is an error (PIL clips it silently): returns -1 when the data
 * ends early, -2 for such a run (*bad_row from the bottom, *bad_x, *bad_count). Indices are
 * checked against the palette by the caller. */
static int bmp_decode_rle(uint8_t *idx, const struct bmp_info *bi, const uint8_t *p, size_t n,
			  size_t data_offset, uint64_t *bad_row, uint64_t *bad_x, unsigned *bad_count)
{
	uint64_t w = bi->width, total = bi->width * bi->height, pos = 0, x = 0;
	size_t i = 0;
	int rle4 = bi->compression == BMP_RLE4;
	while (pos < total) {
		if (i + 2 > n)
			return -1;
		unsigned count = p[i], byte = p[i + 1];
		i += 2;
		if (count) {
			if (x + count > w) {
				*bad_row = pos / w;
				*bad_x = x;
				*bad_count = count;
				return -2;
			}
			for (unsigned k = 0; k < count && pos < total; k++)
				idx[pos++] = (uint8_t)(rle4 ? (k % 2 ? byte & 15 : byte >> 4) : byte);
			x += count;
		} else if (byte == 0) { /* end of line */
			pos = (pos + w - 1) / w * w;
			x = 0;
		} else if (byte == 1) { /* end of bitmap */
			break;
		} else if (byte == 2) { /* delta */
			if (i + 2 > n)
				return -1;
			uint64_t skip = p[i] + (uint64_t)p[i + 1] * w;
			i += 2;
			pos = pos + skip > total ? total : pos + skip;
			x = pos % w;
		} else { /* absolute run of `byte` pixels */
			if (x + byte > w) {
				*bad_row = pos / w;
				*bad_x = x;
				*bad_count = byte;
				return -2;
			}
			size_t n_bytes = rle4 ? byte / 2 : byte;
			size_t avail = n - i < n_bytes ? n - i : n_bytes;
			for (size_t k = 0; k < avail; k++) {
				if (rle4) {
					if (pos < total)
						idx[pos++] = (uint8_t)(p[i + k] >> 4);
					if (pos < total)
						idx[pos++] = (uint8_t)(p[i + k] & 15);
				} else if (pos < total) {
					idx[pos++] = p[i + k];
				}
			}
			i += avail;
			if (avail < n_bytes)
				return -1;
			x += byte;
			if ((data_offset + i) % 2) /* PIL aligns on the file position */
				i++;
		}
	}
	return 0;
}

int bio_image_decode_bmp(struct bio_image *img, const uint8_t *buf, size_t len, const char *name,
			 const struct bio_image_limits *lim, struct bio_error *err)
{
	struct bmp_info bi;
	memset(&bi, 0, sizeof bi);
	if (len < 14 + 4)
		return bio_error_set(err, BIO_ETRUNC, "%s: truncated BMP header (%zu bytes)", name,
				     len);
	uint32_t data_offset = le32(buf + 10);
	bi.header_bytes = le32(buf + 14);
	const uint8_t *h = buf + 14;
	switch (bi.header_bytes) {
	case 12: case 40: case 52: case 56: case 64: case 108: case 124:
		break;
	default:
		return bio_error_set(err, BIO_EFORMAT, "%s: unsupported BMP header size %u", name,
				     bi.header_bytes);
	}
	if (len - 14 < bi.header_bytes)
		return bio_error_set(err, BIO_ETRUNC,
				     "%s: truncated BMP header (%zu of %u header bytes)", name,
				     len - 14, bi.header_bytes);
	uint32_t planes;
	uint32_t masks[3] = {0, 0, 0};
	size_t pal_start = 14 + (size_t)bi.header_bytes;
	if (bi.header_bytes == 12) {
		bi.width = le16(h + 4);
		bi.height = le16(h + 6);
		planes = le16(h + 8);
		bi.bits = le16(h + 10);
		bi.compression = BMP_RGB;
		bi.pal_entry_bytes = 3;
	} else {
		int32_t w = (int32_t)le32(h + 4), hh = (int32_t)le32(h + 8);
		if (w < 0)
			return bio_error_set(err, BIO_EFORMAT, "%s: negative BMP width %d", name,
					     (int)w);
		bi.width = (uint64_t)w;
		bi.top_down = hh < 0;
		bi.height = hh < 0 ? (uint64_t)(-(int64_t)hh) : (uint64_t)hh;
		planes = le16(h + 12);
		bi.bits = le16(h + 14);
		bi.compression = le32(h + 16);
		bi.n_colors = le32(h + 32);
		bi.pal_entry_bytes = 4;
		if (bi.compression == BMP_BITFIELDS || bi.compression == BMP_ALPHABITFIELDS) {
			if (bi.header_bytes >= 52) {
				for (int i = 0; i < 3; i++)
					masks[i] = le32(h + 40 + 4 * i);
			} else {
				size_t n_masks = bi.compression == BMP_ALPHABITFIELDS ? 4 : 3;
				if (len - pal_start < 4 * n_masks)
					return bio_error_set(err, BIO_ETRUNC,
							     "%s: truncated BMP bit-field masks",
							     name);
				for (int i = 0; i < 3; i++)
					masks[i] = le32(buf + pal_start + 4 * i);
				pal_start += 4 * n_masks;
			}
		}
	}
	if (planes != 1)
		return bio_error_set(err, BIO_EFORMAT, "%s: bad BMP plane count %u", name, planes);
	if (bi.header_bytes == 12 && bi.bits != 1 && bi.bits != 4 && bi.bits != 8 && bi.bits != 24)
		return bio_error_set(err, BIO_EFORMAT, "%s: unsupported BMP bit depth %u", name,
				     bi.bits);
	if (bi.bits != 1 && bi.bits != 4 && bi.bits != 8 && bi.bits != 16 && bi.bits != 24 &&
	    bi.bits != 32)
		return bio_error_set(err, BIO_EFORMAT, "%s: unsupported BMP bit depth %u", name,
				     bi.bits);
	if (bi.top_down && (bi.compression == BMP_RLE8 || bi.compression == BMP_RLE4))
		return bio_error_set(err, BIO_EFORMAT, "%s: top-down BMP cannot be RLE-compressed",
				     name);
	switch (bi.compression) {
	case BMP_RGB:
		if (bi.bits == 16) {
			masks[0] = 0x7c00;
			masks[1] = 0x03e0;
			masks[2] = 0x001f;
		} else if (bi.bits == 32) {
			masks[0] = 0xff0000;
			masks[1] = 0x00ff00;
			masks[2] = 0x0000ff;
		}
		break;
	case BMP_RLE8:
	case BMP_RLE4:
		if (bi.bits != (bi.compression == BMP_RLE8 ? 8u : 4u))
			return bio_error_set(err, BIO_EFORMAT,
					     "%s: BMP RLE%u compression with %u-bit pixels", name,
					     bi.compression == BMP_RLE8 ? 8 : 4, bi.bits);
		break;
	case BMP_BITFIELDS:
	case BMP_ALPHABITFIELDS:
		if (bi.bits == 24 && masks[0] == 0xff0000 && masks[1] == 0xff00 && masks[2] == 0xff)
			break;
		if (bi.bits != 16 && bi.bits != 32)
			return bio_error_set(err, BIO_EFORMAT,
					     "%s: BMP bit fields with %u-bit pixels", name,
					     bi.bits);
		break;
	default:
		return bio_error_set(err, BIO_EUNSUPPORTED, "%s: unsupported BMP compression %u",
				     name, bi.compression);
	}
	if (bi.bits == 16 || bi.bits == 32) {
		if (field_init(&bi.r, masks[0]) || field_init(&bi.g, masks[1]) ||
		    field_init(&bi.b, masks[2]) ||
		    (bi.bits == 16 && (masks[0] | masks[1] | masks[2]) > 0xffff))
			return bio_error_set(err, BIO_EUNSUPPORTED,
					     "%s: unsupported BMP bit-field masks %#x %#x %#x", name,
					     masks[0], masks[1], masks[2]);
	}

	/* palette */
	if (bi.bits <= 8) {
		if (bi.n_colors == 0)
			bi.n_colors = 1u << bi.bits;
		if (bi.n_colors > 256)
			return bio_error_set(err, BIO_EFORMAT,
					     "%s: BMP palette of %u colors (at most 256)", name,
					     bi.n_colors);
		size_t pal_bytes = bi.pal_entry_bytes * bi.n_colors;
		if (len - pal_start < pal_bytes)
			return bio_error_set(err, BIO_ETRUNC,
					     "%s: truncated BMP palette (%zu of %zu bytes)", name,
					     len - pal_start, pal_bytes);
		for (uint32_t i = 0; i < bi.n_colors; i++) {
			const uint8_t *e = buf + pal_start + bi.pal_entry_bytes * i;
			bi.gray_lut[i] = bio_image_rgb_to_l(e[2], e[1], e[0]);
		}
		/* PIL: an offset pointing just past the header means "after the palette" */
		if (data_offset == 14 + bi.header_bytes)
			data_offset += 4 * bi.n_colors;
	}
	int rc = bio_image_check_dims(bi.width, bi.height, lim, name, "BMP", err);
	if (rc < 0)
		return rc;
	if (data_offset == 0)
		data_offset = (uint32_t)(pal_start +
					 (bi.bits <= 8 ? bi.pal_entry_bytes * bi.n_colors : 0));
	if (data_offset >= len)
		return bio_error_set(err, BIO_ETRUNC,
				     "%s: BMP pixel data offset %u is past the end of the file "
				     "(%zu bytes)",
				     name, data_offset, len);

	const uint8_t *data = buf + data_offset;
	size_t avail = len - data_offset;
	uint64_t w = bi.width, hgt = bi.height;
	int rle = bi.compression == BMP_RLE8 || bi.compression == BMP_RLE4;
	uint64_t stride = rle ? w : ((w * bi.bits + 31) >> 5) * 4;
	if (!rle && avail / stride < hgt) /* w, hgt are within the limits: stride * hgt fits */
		return bio_error_set(err, BIO_ETRUNC,
				     "%s: truncated BMP pixel array (got %zu of %llu bytes)", name,
				     avail, (unsigned long long)(stride * hgt));
	rc = bio_image_alloc_checked(img, w, hgt, lim, name, "BMP", err);
	if (rc < 0)
		return rc;
	uint8_t *idx = NULL;
	const uint8_t *rows = data;
	if (rle) {
		idx = calloc((size_t)(w * hgt), 1);
		if (!idx) {
			rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
			goto out;
		}
		uint64_t bad_row = 0, bad_x = 0;
		unsigned bad_count = 0;
		int drc = bmp_decode_rle(idx, &bi, data, avail, data_offset, &bad_row, &bad_x,
					 &bad_count);
		if (drc == -2) {
			rc = bio_error_set(err, BIO_EFORMAT,
					   "%s: BMP RLE run of %u pixels at x=%llu overflows row %llu "
					   "(width %llu)", name, bad_count, (unsigned long long)bad_x,
					   (unsigned long long)bad_row, (unsigned long long)w);
			goto out;
		}
		if (drc < 0) {
			rc = bio_error_set(err, BIO_ETRUNC, "%s: truncated BMP RLE data", name);
			goto out;
		}
		rows = idx;
	}

	/* a full gray ramp (PIL's and our writer's 8-bit gray BMPs): rows copy straight through */
	int identity = bi.n_colors == 256;
	for (unsigned i = 0; identity && i < 256; i++)
		identity = bi.gray_lut[i] == i;
	for (uint64_t y = 0; y < hgt; y++) {
		const uint8_t *src = rows + y * stride;
		uint64_t oy = bi.top_down ? y : hgt - 1 - y; /* RLE is always bottom-up */
		uint8_t *dst = img->pixels + oy * w;
		unsigned bad = 0;
		uint64_t bad_x = 0;
		if (idx || bi.bits == 8) {
			if (identity)
				memcpy(dst, src, (size_t)w);
			else
				for (uint64_t x = 0; x < w; x++)
					dst[x] = bi.gray_lut[src[x]];
			if (bi.n_colors < 256) {
				unsigned mx = 0;
				for (uint64_t x = 0; x < w; x++)
					mx = src[x] > mx ? src[x] : mx;
				for (uint64_t x = 0; mx >= bi.n_colors && !bad; x++) {
					if (src[x] >= bi.n_colors) {
						bad = src[x] + 1u;
						bad_x = x;
					}
				}
			}
		} else if (bi.bits == 4) {
			for (uint64_t x = 0; x < w; x++) {
				unsigned v = x & 1 ? src[x / 2] & 15 : src[x / 2] >> 4;
				if (v >= bi.n_colors && !bad) {
					bad = v + 1;
					bad_x = x;
				}
				dst[x] = bi.gray_lut[v];
			}
		} else if (bi.bits == 1) {
			for (uint64_t x = 0; x < w; x++) {
				unsigned v = (src[x / 8] >> (7 - x % 8)) & 1;
				if (v >= bi.n_colors && !bad) {
					bad = v + 1;
					bad_x = x;
				}
				dst[x] = bi.gray_lut[v];
			}
		} else if (bi.bits == 24) {
			for (uint64_t x = 0; x < w; x++)
				dst[x] = bio_image_rgb_to_l(src[3 * x + 2], src[3 * x + 1],
							    src[3 * x]);
		} else if (bi.bits == 32 && bi.r.shift == 16 && bi.g.shift == 8 && bi.b.shift == 0 &&
			   bi.r.max == 255 && bi.g.max == 255 && bi.b.max == 255) {
			for (uint64_t x = 0; x < w; x++)
				dst[x] = bio_image_rgb_to_l(src[4 * x + 2], src[4 * x + 1],
							    src[4 * x]);
		} else {
			size_t bpp = bi.bits / 8;
			for (uint64_t x = 0; x < w; x++) {
				uint32_t px = bpp == 2 ? le16(src + 2 * x) : le32(src + 4 * x);
				dst[x] = bio_image_rgb_to_l(field_get(&bi.r, px),
							    field_get(&bi.g, px),
							    field_get(&bi.b, px));
			}
		}
		if (bad) {
			rc = bio_error_set(err, BIO_EFORMAT,
					   "%s: BMP palette index %u out of range (%u colors) "
					   "at pixel (%llu, %llu)",
					   name, bad - 1, bi.n_colors, (unsigned long long)bad_x,
					   (unsigned long long)oy);
			goto out;
		}
	}
out:
	free(idx);
	if (rc < 0)
		bio_image_destroy(img);
	return rc;
}

/* ---- writer ---- */

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
