/* bio-train's ranks (dist.h): Open MPI when built with BIO_HAVE_MPI, else one process that
 * refuses to be one rank of several. */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BIO_HAVE_MPI
#include <mpi.h>
#endif

static struct bio_dist_stats stats;

/* The job size the launcher gave this process (Open MPI's mpirun, PMIx, Slurm's srun with PMI),
 * 0 when it was not started as a rank. srun with PMIx (--mpi=pmix) sets PMIX_RANK but not
 * PMIX_SIZE; every srun task has SLURM_STEP_NUM_TASKS and SLURM_PROCID (an sbatch script itself
 * has SLURM_NTASKS and SLURM_PROCID but no step: it is not a rank; nor is the one task of
 * srun -n 1 without PMI, e.g. a make run by srun). */
static int launcher_size(void)
{
	static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE",
					   "MPI_LOCALNRANKS"};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return atoi(v);
	}
	const char *st = getenv("SLURM_STEP_NUM_TASKS");
	if (st && atoi(st) > 1 && getenv("SLURM_PROCID"))
		return atoi(st);
	if (getenv("PMIX_RANK") || getenv("PMI_RANK"))
		return -1; /* a rank, of a size this process cannot tell */
	return 0;
}

const struct bio_dist_stats *bio_dist_stats(void)
{
	return &stats;
}

#ifdef BIO_HAVE_MPI

static int mpi_on;

/* An srun task that srun gave no process-management interface (--mpi=none, or MpiDefault=none):
 * MPI_Init cannot find the other tasks, and each would train alone into the same files. */
static int srun_without_pmi(void)
{
	return getenv("SLURM_STEP_NUM_TASKS") && getenv("SLURM_PROCID") && !getenv("PMIX_RANK") &&
	       !getenv("PMI_RANK") && !getenv("PMI_FD") && !getenv("OMPI_COMM_WORLD_SIZE");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void mpi_allsum(const struct bio_nn_dist *d, double *v, size_t n)
{
	double t0 = now_s();
	double *all = malloc(sizeof(double) * n * (size_t)d->size);
	if (!all) {
		fprintf(stderr, "bio-train: rank %d: out of memory\n", d->rank);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	MPI_Allgather(v, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
	bio_nn_tree_d(all, (size_t)d->n_active, n);
	memcpy(v, all, sizeof(double) * n);
	free(all);
	stats.stat_bytes += sizeof(double) * n;
	stats.allsum_s += now_s() - t0;
}

int bio_dist_built_with_mpi(void)
{
	return 1;
}

int bio_dist_init(struct bio_nn_dist *d, int *argc, char ***argv, struct bio_error *err)
{
	memset(d, 0, sizeof *d);
	d->size = 1;
	d->allsum = mpi_allsum;
	int n = launcher_size();
	if (n == 0)
		return 0; /* not started by a launcher: one process, MPI left alone */
	if (srun_without_pmi())
		return bio_error_set(err, BIO_EINVAL,
				     "started by srun as one of %d tasks without PMIx: give srun "
				     "--mpi=pmix (or MpiDefault=pmix in slurm.conf)", n);
	if (MPI_Init(argc, argv) != MPI_SUCCESS)
		return bio_error_set(err, BIO_EINVAL, "MPI_Init failed");
	mpi_on = 1;
	MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
	MPI_Comm_size(MPI_COMM_WORLD, &d->size);
	return 0;
}

static void *dist_alloc(const struct bio_nn_dist *d, size_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);
	if (!p) {
		fprintf(stderr, "bio-train: rank %d: out of memory\n", d->rank);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	return p;
}

/* The sum over the active ranks by the stride-doubling tree (at stride s, rank r, a multiple of
 * 2s, adds what rank r + s holds), as a reduce-scatter then an all-gather: the gradient is cut
 * into one segment per active rank; rank q receives every active rank's copy of segment q and
 * adds them by that tree, element by element the same additions in the same order as the tree
 * of whole vectors (so the bits of one process); then each segment's sum goes to every rank.
 * Every rank sends (A-1)/A of the gradient in each phase, A = active ranks: with two ranks
 * exactly the gradient's size per step, in both directions at once. */
void bio_dist_reduce(const struct bio_nn_dist *d, float *g, size_t n)
{
	if (d->size == 1)
		return;
	double t0 = now_s();
	const int A = d->n_active, P = d->size;
	static float *all;
	static size_t all_n;
	static int *cnt, *off;
	static MPI_Request *req;
	if (!cnt) {
		cnt = dist_alloc(d, sizeof(int) * (size_t)P);
		off = dist_alloc(d, sizeof(int) * (size_t)P);
		req = dist_alloc(d, sizeof(MPI_Request) * 2 * (size_t)P);
	}
	/* segment q of [0, n): [off[q], off[q] + cnt[q]), cut at multiples of 16 floats */
	size_t per = (n / (size_t)A + 15) / 16 * 16;
	if (per > (size_t)1 << 30) {
		fprintf(stderr, "bio-train: rank %d: gradient of %zu floats too large to exchange\n",
			d->rank, n);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	for (int q = 0; q < P; q++) {
		size_t o = q < A ? (size_t)q * per : n;
		o = o < n ? o : n;
		size_t e = q < A ? o + per : n;
		e = e < n ? e : n;
		off[q] = (int)o;
		cnt[q] = (int)(e - o);
	}
	const int me = d->rank;
	if (me < A) {
		size_t seg = (size_t)cnt[me];
		if (all_n < seg * (size_t)A) {
			free(all);
			all = dist_alloc(d, sizeof(float) * seg * (size_t)A);
			all_n = seg * (size_t)A;
		}
		int nr = 0;
		for (int q = 0; q < A; q++) {
			if (q == me)
				continue;
			MPI_Irecv(all + (size_t)q * seg, cnt[me], MPI_FLOAT, q, 1, MPI_COMM_WORLD,
				  &req[nr++]);
			MPI_Isend(g + off[q], cnt[q], MPI_FLOAT, q, 1, MPI_COMM_WORLD, &req[nr++]);
			stats.bytes_sent += sizeof(float) * (size_t)cnt[q];
		}
		memcpy(all + (size_t)me * seg, g + off[me], sizeof(float) * seg);
		MPI_Waitall(nr, req, MPI_STATUSES_IGNORE);
		for (int s = 1; s < A; s *= 2)
			for (int r = 0; r + s < A; r += 2 * s) {
				float *x = all + (size_t)r * seg;
				const float *y = all + (size_t)(r + s) * seg;
				for (size_t i = 0; i < seg; i++)
					x[i] += y[i];
			}
		memcpy(g + off[me], all, sizeof(float) * seg);
		/* what the all-gather sends: this segment to each other rank */
		stats.bytes_sent += sizeof(float) * seg * (size_t)(P - 1);
	}
	MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, g, cnt, off, MPI_FLOAT, MPI_COMM_WORLD);
	stats.reduce_s += now_s() - t0;
	stats.steps++;
}

void bio_dist_bcast(const struct bio_nn_dist *d, void *buf, size_t bytes, int root)
{
	if (d->size > 1)
		MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
}

int bio_dist_any(const struct bio_nn_dist *d, int flag)
{
	if (d->size == 1)
		return flag != 0;
	int in = flag != 0, out = 0;
	MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
	return out;
}

void bio_dist_finalize(const struct bio_nn_dist *d)
{
	(void)d;
	if (mpi_on) {
		MPI_Finalize();
		mpi_on = 0;
	}
}

_Noreturn void bio_dist_abort(const struct bio_nn_dist *d, int code)
{
	if (mpi_on && d->size > 1)
		MPI_Abort(MPI_COMM_WORLD, code);
	exit(code);
}

#else /* without MPI */

static void no_allsum(const struct bio_nn_dist *d, double *v, size_t n)
{
	(void)d;
	(void)v;
	(void)n;
}

int bio_dist_built_with_mpi(void)
{
	return 0;
}

int bio_dist_init(struct bio_nn_dist *d, int *argc, char ***argv, struct bio_error *err)
{
	(void)argc;
	(void)argv;
	memset(d, 0, sizeof *d);
	d->size = 1;
	d->allsum = no_allsum;
	int n = launcher_size();
	if (n > 1 || n < 0) {
		char size[32] = "several";
		if (n > 1)
			snprintf(size, sizeof size, "%d", n);
		return bio_error_set(err, BIO_EINVAL,
				     "started by mpirun/srun as one of %s ranks, but this bio-train "
				     "was built without MPI (install openmpi-bin and libopenmpi-dev, "
				     "then rebuild with make)", size);
	}
	return 0;
}

void bio_dist_reduce(const struct bio_nn_dist *d, float *g, size_t n)
{
	(void)d;
	(void)g;
	(void)n;
}

void bio_dist_bcast(const struct bio_nn_dist *d, void *buf, size_t bytes, int root)
{
	(void)d;
	(void)buf;
	(void)bytes;
	(void)root;
}

int bio_dist_any(const struct bio_nn_dist *d, int flag)
{
	(void)d;
	return flag != 0;
}

void bio_dist_finalize(const struct bio_nn_dist *d)
{
	(void)d;
}

_Noreturn void bio_dist_abort(const struct bio_nn_dist *d, int code)
{
	(void)d;
	exit(code);
}

#endif
