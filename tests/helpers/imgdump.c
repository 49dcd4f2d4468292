/* imgdump: decodes one image with libbio for the image tests. Default: writes the gray image as
 * binary PGM (P5) to stdout. -r WxH resizes (-f bilinear|area) and writes W*H little-endian
 * float32 values, or with -u PIL-exact 8-bit pixels as PGM. -w OUT saves the decoded gray image
 * with libbio's writer (.png or .bmp by extension); -W OUT saves an RGB test pattern of the same
 * size (R = (3x + y) & 255, G = (x + 5y) & 255, B = (7x + 3y) & 255). --max-pixels N lowers the
 * pixel limit. --bench N times N resizes with a prebuilt plan and prints microseconds per image
 * on stderr (for the report; tests never time). Errors: one line "imgdump: ..." and exit 1;
 * usage errors exit 2. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bio/image.h"

static void usage_error(const char *msg)
{
	fprintf(stderr, "imgdump: %s\nTry 'imgdump --help'.\n", msg);
	exit(2);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static int save(const char *path, const uint8_t *px, uint32_t w, uint32_t h, int channels,
		struct bio_error *err)
{
	if (ends_with(path, ".png"))
		return bio_image_save_png(path, px, w, h, channels, err);
	return bio_image_save_bmp(path, px, w, h, channels, err);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, 0, 'h'},       {"resize", required_argument, 0, 'r'},
		{"filter", required_argument, 0, 'f'}, {"u8", no_argument, 0, 'u'},
		{"write", required_argument, 0, 'w'}, {"write-rgb", required_argument, 0, 'W'},
		{"max-pixels", required_argument, 0, 'P'}, {"bench", required_argument, 0, 'B'},
		{0, 0, 0, 0}};
	unsigned rw = 0, rh = 0;
	int u8 = 0, opt;
	long bench = 0;
	enum bio_resize_filter filter = BIO_RESIZE_BILINEAR;
	const char *write_gray = NULL, *write_rgb = NULL;
	struct bio_image_limits lim;
	bio_image_limits_default(&lim);
	while ((opt = getopt_long(argc, argv, "hr:f:uw:W:", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			printf("usage: imgdump [-r WxH [-f bilinear|area] [-u]] [-w OUT] [-W OUT] "
			       "[--max-pixels N] [--bench N] FILE\n");
			return 0;
		case 'r':
			if (sscanf(optarg, "%ux%u", &rw, &rh) != 2 || !rw || !rh)
				usage_error("bad -r, expected WxH");
			break;
		case 'f':
			if (strcmp(optarg, "bilinear") == 0)
				filter = BIO_RESIZE_BILINEAR;
			else if (strcmp(optarg, "area") == 0)
				filter = BIO_RESIZE_AREA;
			else
				usage_error("bad -f, expected bilinear or area");
			break;
		case 'u': u8 = 1; break;
		case 'w': write_gray = optarg; break;
		case 'W': write_rgb = optarg; break;
		case 'P': lim.max_pixels = strtoull(optarg, NULL, 10); break;
		case 'B': bench = strtol(optarg, NULL, 10); break;
		default: usage_error("bad option");
		}
	}
	if (optind != argc - 1)
		usage_error("expected one FILE");

	struct bio_error err = {0};
	struct bio_image img = {0};
	int rc = bio_image_load(&img, argv[optind], &lim, &err);
	if (rc < 0) {
		fprintf(stderr, "imgdump: %s\n", err.msg);
		return 1;
	}
	if (write_gray && save(write_gray, img.pixels, img.width, img.height, 1, &err) < 0)
		goto fail;
	if (write_rgb) {
		size_t n = (size_t)img.width * img.height;
		uint8_t *rgb = malloc(3 * n);
		if (!rgb) {
			bio_error_set(&err, BIO_ENOMEM, "out of memory");
			goto fail;
		}
		for (uint32_t y = 0; y < img.height; y++)
			for (uint32_t x = 0; x < img.width; x++) {
				uint8_t *p = rgb + 3 * ((size_t)y * img.width + x);
				p[0] = (uint8_t)(3 * x + y);
				p[1] = (uint8_t)(x + 5 * y);
				p[2] = (uint8_t)(7 * x + 3 * y);
			}
		rc = save(write_rgb, rgb, img.width, img.height, 3, &err);
		free(rgb);
		if (rc < 0)
			goto fail;
	}
	if (write_gray || write_rgb) {
		bio_image_destroy(&img);
		return 0;
	}
	if (!rw) {
		printf("P5\n%u %u\n255\n", img.width, img.height);
		fwrite(img.pixels, 1, (size_t)img.width * img.height, stdout);
	} else {
		struct bio_resize_plan *plan;
		if (bio_image_resize_plan_new(&plan, img.width, img.height, rw, rh, filter, &err) < 0)
			goto fail;
		size_t n = (size_t)rw * rh;
		float *f = malloc(sizeof *f * n);
		uint8_t *b = malloc(n);
		if (!f || !b) {
			bio_error_set(&err, BIO_ENOMEM, "out of memory");
			rc = -1;
		} else if (u8) {
			rc = bio_image_resize_planned_u8(b, plan, &img, &err);
		} else {
			rc = bio_image_resize_planned(f, plan, &img, &err);
		}
		if (rc == 0 && bench > 0) {
			struct timespec t0, t1;
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
			for (long i = 0; i < bench && rc == 0; i++)
				rc = bio_image_resize_planned(f, plan, &img, &err);
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
			double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
				     (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / (double)bench;
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
			for (long i = 0; i < bench && rc == 0; i++)
				rc = bio_image_resize(f, rw, rh, &img, filter, &err);
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
			double us2 = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
				      (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / (double)bench;
			fprintf(stderr, "%ux%u -> %ux%u: %.1f us/image with a plan, %.1f us without\n",
				img.width, img.height, rw, rh, us, us2);
		}
		if (rc == 0) {
			if (u8) {
				printf("P5\n%u %u\n255\n", rw, rh);
				fwrite(b, 1, n, stdout);
			} else {
				fwrite(f, sizeof *f, n, stdout);
			}
		}
		free(f);
		free(b);
		bio_image_resize_plan_free(plan);
		if (rc < 0)
			goto fail;
	}
	bio_image_destroy(&img);
	if (fclose(stdout) != 0) {
		perror("imgdump: stdout");
		return 1;
	}
	return 0;
fail:
	fprintf(stderr, "imgdump: %s\n", err.msg);
	bio_image_destroy(&img);
	return 1;
}
