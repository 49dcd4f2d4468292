/* bench/kernels/layer_bench: the canonical model's convolutions (64x64 input, 3x3 pad 1,
 * 1->32, 32->64, 64->128 channels at 64, 32, 16 px) on a batch, with the model's threading (a
 * pool of THREADS, chunks of BIO_MODEL_CONV_CHUNK samples, per-chunk weight-gradient partials): forward,
 * backward-weights (backward with no input gradient) and backward-data (the rest of a full
 * backward); seconds per call (median of REPS), GFLOP/s, and % of the fp32 FMA peak of THREADS
 * cores measured here (a loop of independent FMAs on the widest vectors the path uses). The
 * FLOPs are a direct convolution's (2 x 9 x c_in x c_out per output pixel) whatever the kernel:
 * where Winograd runs (F(4x4,3x3): 4 times fewer multiplications) the rates are effective ones
 * and can pass the peak.
 *
 *   layer_bench [BATCH] [THREADS] [REPS] [CHUNK]      one line per op: "name seconds gflops pct"
 *   layer_bench --peak THREADS                        the peak alone, GFLOP/s
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

#include "bio/kernels.h"
#include "bio/model.h"
#include "bio/nn.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static float *rnd(size_t n)
{
	float *p = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
	return p;
}

/* Peak: 12 independent FMA chains per thread on the widest vectors (FMA latency 4 x 2 ports
 * needs at least 8 in flight). */
#define PEAK_BODY(T, SET, FMA, STORE, W)                                                     \
	T b = SET(0.999999f), c = SET(1e-7f);                                                  \
	T a0 = SET(1.0f), a1 = SET(1.1f), a2 = SET(1.2f), a3 = SET(1.3f), a4 = SET(1.4f);       \
	T a5 = SET(1.5f), a6 = SET(1.6f), a7 = SET(1.7f), a8 = SET(1.8f), a9 = SET(1.9f);       \
	T a10 = SET(2.0f), a11 = SET(2.1f);                                                     \
	for (long it = 0; it < iters; it++) {                                                   \
		a0 = FMA(a0, b, c); a1 = FMA(a1, b, c); a2 = FMA(a2, b, c); a3 = FMA(a3, b, c);  \
		a4 = FMA(a4, b, c); a5 = FMA(a5, b, c); a6 = FMA(a6, b, c); a7 = FMA(a7, b, c);  \
		a8 = FMA(a8, b, c); a9 = FMA(a9, b, c); a10 = FMA(a10, b, c); a11 = FMA(a11, b, c); \
	}                                                                                       \
	float v[W];                                                                             \
	STORE(v, a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);                  \
	return v[0];

__attribute__((target("avx512f,fma"))) static double peak_avx512(long iters)
{
	PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, 16)
}

__attribute__((target("avx2,fma"))) static double peak_avx2(long iters)
{
	PEAK_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, 8)
}

struct peak_job {
	long iters;
	double sink;
};

static void peak_run(void *ctx, size_t b, size_t e, int t)
{
	struct peak_job *j = ctx;
	(void)t;
	for (size_t i = b; i < e; i++)
		j->sink += bio_isa_supported(BIO_ISA_AVX512) ? peak_avx512(j->iters)
							     : peak_avx2(j->iters);
}

int main(int argc, char **argv)
{
	/* layer_bench --peak THREADS: only the peak's GFLOP/s (bench/train's reference) */
	const int peak_only = argc > 1 && !strcmp(argv[1], "--peak");
	if (peak_only) {
		argv++;
		argc--;
	}
	int batch = argc > 1 ? atoi(argv[1]) : 32, threads = argc > 2 ? atoi(argv[2]) : 2;
	if (peak_only)
		threads = batch;
	int reps = argc > 3 ? atoi(argv[3]) : 7;
	if (reps < 1 || reps > 64) {
		fprintf(stderr, "layer_bench: REPS must be 1..64\n");
		return 2;
	}
	int chunk_opt = argc > 4 ? atoi(argv[4]) : BIO_MODEL_CONV_CHUNK;
	struct bio_nn_pool *pool = threads > 1 ? bio_nn_pool_new(threads) : NULL;
	bio_nn_set_threads(1);

	/* the peak: one piece per thread, fixed iterations, FLOPs = 2 * width * 12 * iters */
	int width = bio_isa_supported(BIO_ISA_AVX512) ? 16 : 8;
	struct peak_job pj = {20000000, 0};
	double t0 = now();
	bio_nn_parallel_for(pool, (size_t)threads, peak_run, &pj);
	double peak = 2.0 * width * 12 * (double)pj.iters * threads / (now() - t0) / 1e9;
	if (peak_only) {
		printf("%.1f%s\n", peak, pj.sink == 0 ? " " : ""); /* (sink: the loop is kept) */
		return 0;
	}
	printf("peak %.1f GFLOP/s fp32 FMA on %d thread(s) (%s vectors)%s\n", peak, threads,
	       width == 16 ? "512-bit" : "256-bit", pj.sink == 0 ? " " : "");
	printf("%s\n", bio_kernels_describe());

	static const int cin[3] = {1, 32, 64}, cout[3] = {32, 64, 128}, side[3] = {64, 32, 16};
	for (int l = 0; l < 3; l++) {
		struct bio_conv2d cv = {0};
		bio_conv2d_setup(&cv, cin[l], cout[l], 3, 1, 1, side[l], side[l]);
		int chunk = batch < chunk_opt ? batch : chunk_opt, n_chunks = (batch + chunk - 1) / chunk;
		size_t nw = (size_t)cout[l] * cin[l] * 9, plane = (size_t)side[l] * side[l];
		cv.w = rnd(nw);
		cv.b = rnd((size_t)cout[l]);
		cv.dw = calloc(nw, 4);
		cv.db = calloc((size_t)cout[l], 4);
		cv.chunk = chunk;
		cv.col_floats = bio_conv2d_col_floats(&cv) * chunk;
		cv.col = malloc(cv.col_floats * sizeof(float) * threads);
		cv.dw_part = malloc(nw * n_chunks * sizeof(float));
		cv.pool = pool;
		float *in = rnd(plane * cin[l] * batch), *out = malloc(plane * cout[l] * batch * 4);
		float *dout = rnd(plane * cout[l] * batch), *din = malloc(plane * cin[l] * batch * 4);
		double flops = 2.0 * plane * cout[l] * cin[l] * 9 * batch;
		double tf[64], tw[64], tb[64];
		for (int r = 0; r < reps; r++) {
			double a = now();
			bio_conv2d_forward(&cv, out, in, batch);
			double b = now();
			bio_conv2d_backward(&cv, NULL, dout, in, batch);
			double c = now();
			bio_conv2d_backward(&cv, din, dout, in, batch);
			double d = now();
			tf[r] = b - a;
			tw[r] = c - b;
			tb[r] = (d - c) - (c - b);
		}
		qsort(tf, (size_t)reps, sizeof(double), cmp_d);
		qsort(tw, (size_t)reps, sizeof(double), cmp_d);
		qsort(tb, (size_t)reps, sizeof(double), cmp_d);
		const char *names[3] = {"forward", "backward-weights", "backward-data"};
		double *ts[3] = {tf, tw, tb};
		for (int o = 0; o < 3; o++) {
			if (l == 0 && o == 2)
				continue; /* the first layer's input gradient is never needed */
			double s = ts[o][reps / 2];
			printf("conv%d %s %.6f %.1f %.1f\n", l + 1, names[o], s, flops / s / 1e9,
			       100.0 * flops / s / 1e9 / peak);
		}
		free(cv.w);
		free(cv.b);
		free(cv.dw);
		free(cv.db);
		free(cv.col);
		free(cv.dw_part);
		free(in);
		free(out);
		free(dout);
		free(din);
	}
	bio_nn_pool_free(pool);
	return 0;
}
