/* Unit tests of the image module: writer -> decoder round trips (PNG, BMP; gray and RGB), the
 * atomic writers' failure paths, limits, every bad-input class built in memory (each prefix of
 * valid files, corrupt headers, bad palette indices, CRC errors), and resize invariants with
 * hand-computed values (PIL parity itself is checked by tests/python/pil_compare.py). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bio/image.h"
#include "test.h"

static char tmpdir[256];

static void path_in_tmp(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int count_tmp_files(void)
{
	int n = 0;
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			n++;
	if (d)
		closedir(d);
	return n;
}

static uint8_t l24(uint8_t r, uint8_t g, uint8_t b)
{
	return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

static void fill_pattern(uint8_t *px, size_t n, unsigned seed)
{
	uint32_t s = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		s = s * 1103515245u + 12345u;
		px[i] = (uint8_t)(s >> 16);
	}
}

TEST(round_trip)
{
	static const uint32_t sizes[][2] = {{1, 1}, {2, 3}, {3, 2}, {7, 5}, {64, 64}, {101, 33}};
	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		uint32_t w = sizes[si][0], h = sizes[si][1];
		uint8_t *px = malloc((size_t)w * h * 3);
		fill_pattern(px, (size_t)w * h * 3, (unsigned)si);
		for (int fmt = 0; fmt < 2; fmt++) {
			for (int ch = 1; ch <= 3; ch += 2) {
				char path[512];
				struct bio_error err = {0};
				path_in_tmp(path, sizeof path, fmt ? "rt.png" : "rt.bmp");
				int rc = fmt ? bio_image_save_png(path, px, w, h, ch, &err)
					     : bio_image_save_bmp(path, px, w, h, ch, &err);
				CHECK_EQ(rc, 0);
				struct bio_image img;
				rc = bio_image_load(&img, path, NULL, &err);
				CHECK_EQ(rc, 0);
				if (rc)
					continue;
				CHECK_EQ(img.width, w);
				CHECK_EQ(img.height, h);
				size_t bad = 0;
				for (size_t i = 0; i < (size_t)w * h; i++) {
					uint8_t want = ch == 1 ? px[i]
							       : l24(px[3 * i], px[3 * i + 1], px[3 * i + 2]);
					bad += img.pixels[i] != want;
				}
				CHECK_EQ(bad, 0);
				bio_image_destroy(&img);
				bio_image_destroy(&img); /* twice: a no-op */
			}
		}
		free(px);
	}
	CHECK_EQ(count_tmp_files(), 0);
}

TEST(reader_reuse)
{
	/* one reader through files of growing and shrinking sizes gives what bio_image_load gives */
	static const uint32_t sizes[][2] = {{5, 5}, {300, 200}, {3, 1}, {64, 70}};
	struct bio_image_reader r = {0};
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < 4; i++) {
			char path[512];
			uint32_t w = sizes[i][0], h = sizes[i][1];
			uint8_t *px = malloc((size_t)w * h);
			fill_pattern(px, (size_t)w * h, (unsigned)(i + 7));
			path_in_tmp(path, sizeof path, i % 2 ? "rd.png" : "rd.bmp");
			CHECK_EQ((i % 2 ? bio_image_save_png : bio_image_save_bmp)(path, px, w, h, 1,
										    NULL), 0);
			struct bio_image a, b;
			struct bio_error err = {0};
			CHECK_EQ(bio_image_reader_load(&a, &r, path, NULL, &err), 0);
			CHECK_EQ(bio_image_load(&b, path, NULL, &err), 0);
			CHECK(a.width == w && b.width == w && a.height == h && b.height == h &&
			      memcmp(a.pixels, px, (size_t)w * h) == 0 &&
			      memcmp(b.pixels, px, (size_t)w * h) == 0);
			bio_image_destroy(&a);
			bio_image_destroy(&b);
			free(px);
		}
	CHECK(r.cap >= 300 * 200);
	/* a FIFO (no size known in advance) reads through the same buffer */
	char fifo[512], src[512];
	path_in_tmp(fifo, sizeof fifo, "fifo.bmp");
	path_in_tmp(src, sizeof src, "rd.bmp");
	if (mkfifo(fifo, 0600) == 0) {
		char cmd[1200];
		snprintf(cmd, sizeof cmd, "cat '%s' > '%s' &", src, fifo);
		CHECK_EQ(system(cmd), 0);
		struct bio_image a;
		struct bio_error err = {0};
		CHECK_EQ(bio_image_reader_load(&a, &r, fifo, NULL, &err), 0);
		CHECK_EQ(a.width, 3); /* rd.bmp was last written at 3x1 */
		bio_image_destroy(&a);
	}
	bio_image_reader_destroy(&r);
	bio_image_reader_destroy(&r);
}

TEST(writer_errors)
{
	uint8_t px[12] = {0};
	struct bio_error err = {0};
	char path[512];
	path_in_tmp(path, sizeof path, "no/such/dir/x.png");
	CHECK_EQ(bio_image_save_png(path, px, 2, 2, 1, &err), BIO_EIO);
	CHECK(strstr(err.msg, "no/such/dir") != NULL);
	CHECK_EQ(bio_image_save_bmp(path, px, 2, 2, 3, &err), BIO_EIO);
	path_in_tmp(path, sizeof path, "bad.png");
	CHECK_EQ(bio_image_save_png(path, px, 2, 2, 2, &err), BIO_EINVAL);
	CHECK_EQ(bio_image_save_bmp(path, px, 0, 2, 1, &err), BIO_EINVAL);
	CHECK_EQ(bio_image_save_png(path, NULL, 2, 2, 1, &err), BIO_EINVAL);
	CHECK(access(path, F_OK) != 0);
	/* a failed write leaves an existing file alone */
	CHECK_EQ(bio_image_save_png(path, px, 2, 2, 1, NULL), 0);
	struct stat st0, st1;
	CHECK_EQ(stat(path, &st0), 0);
	CHECK_EQ(bio_image_save_png(path, px, 2, 2, 5, &err), BIO_EINVAL);
	CHECK_EQ(stat(path, &st1), 0);
	CHECK_EQ(st0.st_ino, st1.st_ino);
	CHECK_EQ(count_tmp_files(), 0);
	/* a full device (a private copy of /dev/full when we may mknod): the write fails with
	 * EIO, and the device is written to, never renamed over */
	path_in_tmp(path, sizeof path, "full");
	if (mknod(path, S_IFCHR | 0666, makedev(1, 7)) == 0) {
		CHECK_EQ(bio_image_save_png(path, px, 2, 2, 1, &err), BIO_EIO);
		CHECK(strstr(err.msg, "No space left") != NULL);
		CHECK_EQ(bio_image_save_bmp(path, px, 2, 2, 1, &err), BIO_EIO);
		struct stat st;
		CHECK(stat(path, &st) == 0 && S_ISCHR(st.st_mode));
		unlink(path);
	}
}

/* Writes a w x h gray BMP in memory through the writer and returns its bytes. */
static uint8_t *make_file(size_t *len, int png, uint32_t w, uint32_t h, int ch)
{
	char path[512];
	path_in_tmp(path, sizeof path, png ? "mk.png" : "mk.bmp");
	uint8_t *px = malloc((size_t)w * h * (size_t)ch);
	fill_pattern(px, (size_t)w * h * (size_t)ch, w + h);
	int rc = png ? bio_image_save_png(path, px, w, h, ch, NULL)
		     : bio_image_save_bmp(path, px, w, h, ch, NULL);
	free(px);
	return rc ? NULL : read_file(path, len);
}

TEST(limits)
{
	size_t len;
	uint8_t *buf = make_file(&len, 1, 100, 50, 1);
	CHECK(buf != NULL);
	struct bio_image_limits lim;
	struct bio_image img;
	struct bio_error err = {0};
	bio_image_limits_default(&lim);
	CHECK_EQ(bio_image_decode(&img, buf, len, "x.png", &lim, &err), 0);
	bio_image_destroy(&img);
	lim.max_width = 99;
	CHECK_EQ(bio_image_decode(&img, buf, len, "x.png", &lim, &err), BIO_ELIMIT);
	CHECK_STR(err.msg, "x.png: PNG image of 100x50 exceeds the limit of 99x16384");
	CHECK(img.pixels == NULL && img.width == 0);
	bio_image_limits_default(&lim);
	lim.max_pixels = 4999;
	CHECK_EQ(bio_image_decode(&img, buf, len, "x.png", &lim, &err), BIO_ELIMIT);
	bio_image_limits_default(&lim);
	lim.max_file_bytes = len - 1;
	CHECK_EQ(bio_image_decode(&img, buf, len, "x.png", &lim, &err), BIO_ELIMIT);
	free(buf);

	buf = make_file(&len, 0, 100, 50, 3);
	bio_image_limits_default(&lim);
	lim.max_height = 49;
	CHECK_EQ(bio_image_decode(&img, buf, len, "x.bmp", &lim, &err), BIO_ELIMIT);
	free(buf);

	char path[512];
	path_in_tmp(path, sizeof path, "mk.bmp");
	bio_image_limits_default(&lim);
	lim.max_file_bytes = 100;
	CHECK_EQ(bio_image_load(&img, path, &lim, &err), BIO_ELIMIT);
	CHECK(strstr(err.msg, path) == err.msg);
	path_in_tmp(path, sizeof path, "missing.png");
	CHECK_EQ(bio_image_load(&img, path, NULL, &err), BIO_ENOTFOUND);
	CHECK(strstr(err.msg, path) == err.msg);
}

/* Every proper prefix of a valid file must fail cleanly (and never crash or leak), except the
 * last `slack` bytes may be missing (an RLE BMP's end-of-line and end-of-bitmap codes after the
 * last pixel, as in PIL). */
static void check_prefixes(const uint8_t *buf, size_t len, const char *name, size_t slack)
{
	struct bio_image img;
	struct bio_error err = {0};
	size_t n_bad = 0;
	for (size_t n = 0; n + slack < len; n++) {
		int rc = bio_image_decode(&img, buf, n, name, NULL, &err);
		if (rc == 0) {
			bio_image_destroy(&img);
			n_bad++;
			continue;
		}
		if (img.pixels || strncmp(err.msg, name, strlen(name)) != 0)
			n_bad++;
	}
	if (n_bad)
		fprintf(stderr, "%s: %zu prefixes accepted or misreported\n", name, n_bad);
	CHECK_EQ(n_bad, 0);
	int rc = bio_image_decode(&img, buf, len, name, NULL, &err);
	if (rc < 0)
		fprintf(stderr, "%s\n", err.msg);
	CHECK_EQ(rc, 0);
	bio_image_destroy(&img);
}

TEST(truncation)
{
	size_t len;
	for (int png = 0; png < 2; png++)
		for (int ch = 1; ch <= 3; ch += 2) {
			uint8_t *buf = make_file(&len, png, 13, 7, ch);
			CHECK(buf != NULL);
			if (buf)
				check_prefixes(buf, len, png ? "t.png" : "t.bmp", 0);
			free(buf);
		}
	static const char *const seeds[] = {
		"tests/fuzz/corpus/image/tif_P_tiff_lzw.tif",
		"tests/fuzz/corpus/image/tif_hand_gray8_tiled.tif",
		"tests/fuzz/corpus/image/jpg_smooth_gray.jpg",
		"tests/fuzz/corpus/image/jpg_smooth_progressive.jpg",
		"tests/fuzz/corpus/image/png_pal4_i.png",
		"tests/fuzz/corpus/image/bmp_rle8.bmp",
	};
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		uint8_t *buf = read_file(seeds[i], &len);
		CHECK(buf != NULL);
		if (buf)
			check_prefixes(buf, len, seeds[i], strstr(seeds[i], "rle") ? 4 : 0);
		free(buf);
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

TEST(bmp_bad_input)
{
	size_t len;
	uint8_t *ok = make_file(&len, 0, 320, 240, 1); /* 8-bit: 14 + 40 + 1024 + 76800 bytes */
	struct bio_image img;
	struct bio_error err = {0};
	CHECK_EQ(len, 14 + 40 + 1024 + 76800);
	CHECK_EQ(bio_image_decode(&img, ok, 14 + 40 + 1024 + 1024, "x.bmp", NULL, &err),
		 BIO_ETRUNC);
	CHECK_STR(err.msg, "x.bmp: truncated BMP pixel array (got 1024 of 76800 bytes)");
	uint8_t *b = malloc(len);
	/* palette of 16 colors and an index of 200 */
	memcpy(b, ok, len);
	put32(b + 46, 16);
	b[14 + 40 + 1024 + 5] = 200;
	put32(b + 10, 14 + 40 + 1024); /* keep the pixel offset */
	CHECK_EQ(bio_image_decode(&img, b, len, "x.bmp", NULL, &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "palette index") != NULL);
	/* zero width, zero height, 100000 x 100000, negative width, overflowing dims */
	static const int32_t dims[][2] = {{0, 240}, {320, 0}, {100000, 100000}, {-5, 240},
					  {0x7fffffff, 0x7fffffff}, {0x7fffffff, -0x7fffffff}};
	static const int codes[] = {BIO_EFORMAT, BIO_EFORMAT, BIO_ELIMIT, BIO_EFORMAT, BIO_ELIMIT,
				    BIO_ELIMIT};
	for (size_t i = 0; i < 6; i++) {
		memcpy(b, ok, len);
		put32(b + 18, (uint32_t)dims[i][0]);
		put32(b + 22, (uint32_t)dims[i][1]);
		CHECK_EQ(bio_image_decode(&img, b, len, "x.bmp", NULL, &err), codes[i]);
		CHECK(img.pixels == NULL);
	}
	/* header size, bit depth, compression, palette size, offset past the end */
	static const struct { size_t at; uint32_t v; int nbytes; } pokes[] = {
		{14, 41, 4}, {28, 7, 2}, {30, 9, 4}, {46, 300, 4}, {10, 999999, 4}, {26, 2, 2}};
	for (size_t i = 0; i < sizeof pokes / sizeof pokes[0]; i++) {
		memcpy(b, ok, len);
		if (pokes[i].nbytes == 4) {
			put32(b + pokes[i].at, pokes[i].v);
		} else {
			b[pokes[i].at] = (uint8_t)pokes[i].v;
			b[pokes[i].at + 1] = (uint8_t)(pokes[i].v >> 8);
		}
		CHECK(bio_image_decode(&img, b, len, "x.bmp", NULL, &err) < 0);
		CHECK(strncmp(err.msg, "x.bmp: ", 7) == 0);
	}
	free(b);
	free(ok);
}

TEST(png_bad_input)
{
	size_t len;
	uint8_t *ok = make_file(&len, 1, 40, 30, 3);
	struct bio_image img;
	struct bio_error err = {0};
	uint8_t *b = malloc(len);
	/* flipping any byte after the signature breaks a CRC, a length, or the zlib stream:
	 * the decoder must never accept it */
	size_t accepted = 0;
	for (size_t i = 8; i < len; i++) {
		memcpy(b, ok, len);
		b[i] ^= 0x10;
		if (bio_image_decode(&img, b, len, "x.png", NULL, &err) == 0) {
			accepted++;
			bio_image_destroy(&img);
		}
	}
	CHECK_EQ(accepted, 0);
	memcpy(b, ok, len);
	b[29] ^= 1; /* IHDR CRC */
	CHECK_EQ(bio_image_decode(&img, b, len, "x.png", NULL, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "x.png: bad PNG: IHDR: CRC error");
	free(b);
	free(ok);
}

TEST(unknown_format)
{
	struct bio_image img;
	struct bio_error err = {0};
	CHECK_EQ(bio_image_decode(&img, "GIF89a....", 10, "a.gif", NULL, &err), BIO_EUNSUPPORTED);
	CHECK_STR(err.msg, "a.gif: unknown image format (not BMP, PNG, TIFF or JPEG)");
	CHECK_EQ(bio_image_decode(&img, "", 0, "e.png", NULL, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "e.png: empty file");
}

static struct bio_image make_image(uint32_t w, uint32_t h, unsigned seed)
{
	struct bio_image img = {w, h, malloc((size_t)w * h)};
	fill_pattern(img.pixels, (size_t)w * h, seed);
	return img;
}

TEST(resize_values)
{
	struct bio_error err = {0};
	float out[64 * 64];
	uint8_t out8[64 * 64];
	struct bio_resize_plan *plan;
	/* 2x1 -> 1x1: both filters average, 15.5 exactly, which PIL rounds up to 16 */
	uint8_t two[2] = {10, 21};
	struct bio_image img2 = {2, 1, two};
	for (int f = 0; f < 2; f++) {
		enum bio_resize_filter flt = f ? BIO_RESIZE_AREA : BIO_RESIZE_BILINEAR;
		CHECK_EQ(bio_image_resize(out, 1, 1, &img2, flt, &err), 0);
		CHECK_NEAR(out[0], 15.5, 1e-5);
		CHECK_EQ(bio_image_resize_plan_new(&plan, 2, 1, 1, 1, flt, &err), 0);
		CHECK_EQ(bio_image_resize_planned_u8(out8, plan, &img2, &err), 0);
		CHECK_EQ(out8[0], 16);
		bio_image_resize_plan_free(plan);
	}
	/* box 4x4 -> 2x2: means of the 2x2 blocks, after PIL rounds the horizontal pass to 8 bits
	 * ((100 + 101) / 2 -> 101, so the last two are 51.5 and 54.5, not 51.25 and 54.25) */
	uint8_t four[16] = {0, 4, 8, 12, 16, 20, 24, 28, 1, 3, 5, 7, 100, 101, 102, 103};
	struct bio_image img4 = {4, 4, four};
	CHECK_EQ(bio_image_resize(out, 2, 2, &img4, BIO_RESIZE_AREA, &err), 0);
	CHECK_NEAR(out[0], 10.0, 1e-4);
	CHECK_NEAR(out[1], 18.0, 1e-4);
	CHECK_NEAR(out[2], (2 + 101) / 2.0, 1e-4);
	CHECK_NEAR(out[3], (6 + 103) / 2.0, 1e-4);
	/* bilinear 1x4 -> 1x2, support 2 around center 1.0: the window is clipped at the edge,
	 * taps 0.75, 0.75, 0.25 normalised to 3/7, 3/7, 1/7 */
	uint8_t col[4] = {8, 16, 32, 64};
	struct bio_image imgc = {1, 4, col};
	CHECK_EQ(bio_image_resize(out, 1, 2, &imgc, BIO_RESIZE_BILINEAR, &err), 0);
	CHECK_NEAR(out[0], (8 * 3 + 16 * 3 + 32 * 1) / 7.0, 1e-4);
	/* constant images stay constant, any sizes, both filters */
	static const uint32_t sz[][4] = {{388, 374, 64, 64}, {5, 7, 64, 3}, {1, 1, 9, 9},
					 {100, 3, 7, 64}};
	for (size_t i = 0; i < 4; i++) {
		struct bio_image c = {sz[i][0], sz[i][1], malloc((size_t)sz[i][0] * sz[i][1])};
		memset(c.pixels, 77, (size_t)sz[i][0] * sz[i][1]);
		for (int f = 0; f < 2; f++) {
			CHECK_EQ(bio_image_resize(out, sz[i][2], sz[i][3], &c,
						  f ? BIO_RESIZE_AREA : BIO_RESIZE_BILINEAR, &err), 0);
			float lo = 255, hi = 0;
			for (uint32_t k = 0; k < sz[i][2] * sz[i][3]; k++) {
				lo = out[k] < lo ? out[k] : lo;
				hi = out[k] > hi ? out[k] : hi;
			}
			CHECK_NEAR(lo, 77, 1e-3);
			CHECK_NEAR(hi, 77, 1e-3);
		}
		free(c.pixels);
	}
	/* same size: the input itself */
	struct bio_image r = make_image(31, 17, 3);
	CHECK_EQ(bio_image_resize(out, 31, 17, &r, BIO_RESIZE_BILINEAR, &err), 0);
	size_t bad = 0;
	for (size_t i = 0; i < 31 * 17; i++)
		bad += out[i] != r.pixels[i];
	CHECK_EQ(bad, 0);
	free(r.pixels);
}

TEST(resize_float_vs_u8)
{
	struct bio_error err = {0};
	static const uint32_t sz[][4] = {{388, 374, 64, 64}, {296, 560, 64, 64}, {17, 13, 64, 64},
					 {100, 100, 33, 51}, {64, 50, 64, 20}, {50, 64, 20, 64}};
	float *out = malloc(sizeof *out * 64 * 64);
	uint8_t *out8 = malloc(64 * 64);
	for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
		struct bio_image img = make_image(sz[i][0], sz[i][1], (unsigned)i);
		for (int f = 0; f < 2; f++) {
			struct bio_resize_plan *plan;
			enum bio_resize_filter flt = f ? BIO_RESIZE_AREA : BIO_RESIZE_BILINEAR;
			CHECK_EQ(bio_image_resize_plan_new(&plan, sz[i][0], sz[i][1], sz[i][2],
							   sz[i][3], flt, &err), 0);
			CHECK_EQ(bio_image_resize_planned(out, plan, &img, &err), 0);
			CHECK_EQ(bio_image_resize_planned_u8(out8, plan, &img, &err), 0);
			size_t bad = 0;
			for (uint32_t k = 0; k < sz[i][2] * sz[i][3]; k++)
				bad += (int)floorf(out[k] + 0.5f) != out8[k] || out[k] < 0 ||
				       out[k] > 255;
			CHECK_EQ(bad, 0);
			bio_image_resize_plan_free(plan);
		}
		free(img.pixels);
	}
	/* a plan refuses an image of another size; bad sizes and filters are refused */
	struct bio_resize_plan *plan;
	struct bio_image img = make_image(10, 10, 1);
	CHECK_EQ(bio_image_resize_plan_new(&plan, 11, 10, 4, 4, BIO_RESIZE_AREA, &err), 0);
	CHECK_EQ(bio_image_resize_planned(out, plan, &img, &err), BIO_EINVAL);
	bio_image_resize_plan_free(plan);
	bio_image_resize_plan_free(NULL);
	CHECK_EQ(bio_image_resize(out, 0, 4, &img, BIO_RESIZE_AREA, &err), BIO_EINVAL);
	CHECK_EQ(bio_image_resize(out, 4, 4, &img, (enum bio_resize_filter)7, &err), BIO_EINVAL);
	free(img.pixels);
	free(out);
	free(out8);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_image.XXXXXX");
	static const struct test_case tests[] = {
		TEST_CASE(round_trip),
		TEST_CASE(reader_reuse),
		TEST_CASE(writer_errors),
		TEST_CASE(limits),
		TEST_CASE(truncation),
		TEST_CASE(bmp_bad_input),
		TEST_CASE(png_bad_input),
		TEST_CASE(unknown_format),
		TEST_CASE(resize_values),
		TEST_CASE(resize_float_vs_u8),
	};
	return test_main_in_tmpdir(tmpdir, tests, sizeof tests / sizeof tests[0]);
}
