/* The decode-only floor of bench/prep: reads and decodes every image named in a list file (one
 * path per line) with libbio (bio_image_reader_load, a reused buffer, as bio-prep's threads do)
 * and nothing else (no resize, no output), so the bench can show how close bio-prep gets to the
 * cost of just reading and decoding the files.
 * Usage: prep_decode LIST; prints "<images> <seconds>" on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bio/image.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: prep_decode LIST\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	struct bio_image_limits lim;
	bio_image_limits_default(&lim);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *line = NULL;
	size_t cap = 0;
	long n = 0;
	struct bio_image_reader reader = {0};
	unsigned long sum = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (!line[0])
			continue;
		struct bio_image img = {0};
		struct bio_error err = {0};
		if (bio_image_reader_load(&img, &reader, line, &lim, &err) < 0) {
			fprintf(stderr, "prep_decode: %s\n", err.msg);
			return 1;
		}
		sum += img.pixels[0];
		bio_image_destroy(&img);
		n++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(line);
	bio_image_reader_destroy(&reader);
	fclose(f);
	double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	printf("%ld %.6f %lu\n", n, s, sum);
	return 0;
}
