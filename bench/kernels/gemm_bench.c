/* bench/kernels/gemm_bench: single-thread GFLOP/s of the GEMMs of the canonical model's layers
 * (im2col convolutions forward, backward-data, backward-weights, the linear layers), for every
 * kernel path this CPU supports and for OpenBLAS (whatever core it picked), in one process, so
 * the ratios hold on a busy machine; and the fp32 FMA peak of one core measured the same way.
 *
 *   gemm_bench [SAMPLES_PER_GEMM] [SECONDS_PER_CASE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "bio/kernels.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct shape {
	const char *name;
	int ta, tb, m, n, k;
};

static float *rnd(size_t n)
{
	float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
	for (size_t i = 0; i < n; i++)
		p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
	return p;
}

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int,
			float, float *, int);

static void openblas(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
		     const float *b, int ldb, float beta, float *c, int ldc)
{
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
		    m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static double run(gemm_fn f, const struct shape *s, float *a, float *b, float *c, double secs)
{
	int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
	f(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n); /* warm */
	int reps = 0;
	double t0 = now(), t;
	do {
		f(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
		reps++;
		t = now() - t0;
	} while (t < secs);
	return 2.0 * s->m * s->n * (double)s->k * reps / t / 1e9;
}

int main(int argc, char **argv)
{
	int ns = argc > 1 ? atoi(argv[1]) : 8;
	double secs = argc > 2 ? atof(argv[2]) : 0.3;
	openblas_set_num_threads(1);
	/* canonical model, 64x64 input, conv 3x3: layer i has c_in, c_out, spatial hw */
	static const int cin[3] = {1, 32, 64}, cout[3] = {32, 64, 128}, hw[3] = {4096, 1024, 256};
	struct shape sh[16];
	int n_sh = 0;
	static char names[16][32];
	for (int l = 0; l < 3; l++) {
		int k = cin[l] * 9, n = hw[l] * ns;
		snprintf(names[n_sh], 32, "conv%d fwd", l + 1);
		sh[n_sh] = (struct shape){names[n_sh], 0, 0, cout[l], n, k};
		n_sh++;
		if (l > 0) {
			snprintf(names[n_sh], 32, "conv%d bwd-data", l + 1);
			sh[n_sh] = (struct shape){names[n_sh], 1, 0, k, n, cout[l]};
			n_sh++;
		}
		snprintf(names[n_sh], 32, "conv%d bwd-weights", l + 1);
		sh[n_sh] = (struct shape){names[n_sh], 0, 1, cout[l], k, n};
		n_sh++;
	}
	sh[n_sh++] = (struct shape){"fc1 fwd (32x8192x256)", 0, 1, 32, 256, 8192};
	sh[n_sh++] = (struct shape){"fc1 bwd-weights", 1, 0, 256, 8192, 32};
	printf("bench/kernels: single-thread SGEMM GFLOP/s, %d samples per conv GEMM\n", ns);
	printf("%s\n", bio_kernels_describe());
	printf("%-24s %6s %6s %6s", "layer GEMM", "m", "n", "k");
	gemm_fn fns[BIO_ISA_COUNT + 1];
	const char *fn_names[BIO_ISA_COUNT + 1];
	int n_fn = 0;
	for (int i = BIO_ISA_COUNT - 1; i >= 0; i--)
		if (bio_isa_supported((enum bio_isa)i)) {
			fns[n_fn] = NULL;
			fn_names[n_fn++] = bio_isa_name((enum bio_isa)i);
		}
	fns[n_fn] = openblas;
	fn_names[n_fn++] = "openblas";
	for (int i = 0; i < n_fn; i++)
		printf(" %9s", fn_names[i]);
	printf("  best/openblas\n");
	for (int s = 0; s < n_sh; s++) {
		size_t na = (size_t)sh[s].m * sh[s].k, nb = (size_t)sh[s].k * sh[s].n,
		       nc = (size_t)sh[s].m * sh[s].n;
		float *a = rnd(na), *b = rnd(nb), *c = rnd(nc);
		printf("%-24s %6d %6d %6d", sh[s].name, sh[s].m, sh[s].n, sh[s].k);
		double best = 0, ob = 0;
		for (int i = 0; i < n_fn; i++) {
			double g;
			if (fns[i]) {
				g = run(fns[i], &sh[s], a, b, c, secs);
				ob = g;
			} else {
				for (int isa = 0; isa < BIO_ISA_COUNT; isa++)
					if (!strcmp(bio_isa_name((enum bio_isa)isa), fn_names[i]))
						bio_kernels_set_isa((enum bio_isa)isa);
				g = run(bio_sgemm, &sh[s], a, b, c, secs);
				if (g > best)
					best = g;
			}
			printf(" %9.1f", g);
		}
		printf("  %12.2fx\n", best / ob);
		free(a);
		free(b);
		free(c);
	}
	return 0;
}
