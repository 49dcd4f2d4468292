/* bench/eval helper: times libbio's verification metrics on scores given as raw little-endian f64
 * files (genuine, impostor): radix sort, EER (bob.measure sweep), FNMR at FMR 1%/0.1%/0,
 * ZeroFNMR, AUC, the DET points (thinned ROC) and their probit transform. Prints one JSON line.
 * Usage: eval_bench GENUINE.f64 IMPOSTOR.f64 [RESOLUTION] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bio/metrics.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double *load(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long bytes = ftell(f);
	fseek(f, 0, SEEK_SET);
	*n = (size_t)bytes / sizeof(double);
	double *x = malloc(*n * sizeof *x + 1);
	if (!x || fread(x, sizeof *x, *n, f) != *n) {
		fprintf(stderr, "%s: read error\n", path);
		exit(1);
	}
	fclose(f);
	return x;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: eval_bench GENUINE.f64 IMPOSTOR.f64 [RESOLUTION]\n");
		return 2;
	}
	double resolution = argc > 3 ? atof(argv[3]) : 0.01;
	size_t ng, ni;
	double *g = load(argv[1], &ng), *im = load(argv[2], &ni);
	struct bio_error err = {0};
	double t0 = now();
	if (bio_sort_scores(g, ng, &err) < 0 || bio_sort_scores(im, ni, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	double t1 = now();
	struct bio_verif v;
	if (bio_verif_compute(&v, g, ng, im, ni, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	double t2 = now();
	struct bio_roc_point *pts;
	size_t n_pts;
	if (bio_roc_curve(&pts, &n_pts, g, ng, im, ni, resolution, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	double s = 0;
	for (size_t i = 0; i < n_pts; i++)
		s += bio_ppndf(pts[i].fmr) + bio_ppndf(pts[i].fnmr);
	double t3 = now();
	printf("{\"n_genuine\": %zu, \"n_impostor\": %zu, \"sort_s\": %.6f, \"metrics_s\": %.6f, "
	       "\"det_s\": %.6f, \"total_s\": %.6f, \"eer\": %.17g, \"eer_threshold\": %.17g, "
	       "\"fnmr_at_fmr_1pct\": %.17g, \"fnmr_at_fmr_0_1pct\": %.17g, \"fnmr_at_fmr_0\": %.17g, "
	       "\"auc\": %.17g, \"det_points\": %zu, \"checksum\": %.6g}\n",
	       ng, ni, t1 - t0, t2 - t1, t3 - t2, t3 - t0, v.eer, v.eer_threshold, v.fnmr_at_fmr[0],
	       v.fnmr_at_fmr[1], v.fnmr_at_fmr[2], v.auc, n_pts, s);
	free(pts);
	free(g);
	free(im);
	return 0;
}
