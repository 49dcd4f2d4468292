/* bio-train's ranks (dist.h): Open MPI when built with BIO_HAVE_MPI, else one process that
 * refuses to be one rank of several. */
#include "dist.h"

#include "bio/clock.h"
#include "bio/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void bio_dist_say_stats(const struct bio_nn_dist *d, size_t n_params)
{
	const struct bio_dist_stats *ds = &stats;
	fprintf(stderr, "bio-train: rank %d of %d: %llu steps, gradient sums %.2f ms/step, "
		"%.0f bytes sent/step (the gradient: %zu bytes), during backward %.2f "
		"ms/step, statistics sums %.2f ms/step, %.0f bytes sent/step\n", d->rank,
		d->size, ds->steps,
		ds->steps ? 1e3 * ds->reduce_s / (double)ds->steps : 0.0,
		ds->steps ? (double)ds->bytes_sent / (double)ds->steps : 0.0,
		n_params * sizeof(float),
		ds->steps ? 1e3 * ds->overlap_s / (double)ds->steps : 0.0,
		ds->steps ? 1e3 * ds->allsum_s / (double)ds->steps : 0.0,
		ds->steps ? (double)ds->stat_bytes / (double)ds->steps : 0.0);
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

static void mpi_allsum(const struct bio_nn_dist *d, double *v, size_t n)
{
	double t0 = bio_clock_now_s();
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
	stats.allsum_s += bio_clock_now_s() - t0;
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
 * 2s, adds what rank r + s holds), as a reduce-scatter then an all-gather: a range of the
 * gradient is cut into one segment per active rank; rank q receives every active rank's copy of
 * segment q and adds them by that tree, element by element the same additions in the same order
 * as the tree of whole vectors (so the bits of one process); then each segment's sum goes to
 * every rank. Every rank sends (A-1)/A of the range in each phase, A = active ranks: with two
 * ranks exactly the gradient's size per step, in both directions at once.
 *
 * Overlapped with backward (bio_dist_attach): the model hands over each range as soon as its
 * gradients are final (the head, then per branch its dense layers, the bulk of the bytes, then
 * its convolutions); the range's reduce-scatter starts at once (non-blocking, on a communicator
 * of its own), and between layers finished ranges are added and their all-gathers started, in
 * range order on every rank (the order MPI needs for collectives). bio_dist_reduce then only
 * waits for what is still in flight. Open MPI moves data inside MPI calls: the calls between
 * layers and the batch-norm sums of backward are those chances. */
enum { MAX_RANGES = 4 * BIO_MODEL_MAX_MODS + 4 };

struct range {
	size_t seg;           /* floats of this rank's segment */
	int *cnt, *disp;      /* per rank: the segments (counts and offsets from g) */
	float *all;           /* A copies of this rank's segment */
	MPI_Request *rs;      /* the reduce-scatter's sends and receives */
	int n_rs;
	MPI_Request ag;       /* the all-gather */
	int phase;            /* 0 reduce-scatter in flight, 1 all-gather in flight, 2 done */
};

static struct {
	MPI_Comm comm;
	const struct bio_nn_dist *d;
	float *g;
	struct range r[MAX_RANGES];
	int n, next;          /* ranges begun; the first whose all-gather has not started */
	float *all;           /* the ranges' segment copies */
	size_t all_cap, all_used;
	int attached;
} ov;

/* Starts the reduce-scatter of [off, off + n) of g. */
static void range_begin(const struct bio_nn_dist *d, float *g, size_t off, size_t n)
{
	const int A = d->n_active, P = d->size, me = d->rank;
	if (ov.n == MAX_RANGES) {
		fprintf(stderr, "bio-train: rank %d: more gradient ranges than %d\n", me, MAX_RANGES);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	struct range *r = &ov.r[ov.n];
	if (!r->cnt) {
		r->cnt = dist_alloc(d, sizeof(int) * (size_t)P);
		r->disp = dist_alloc(d, sizeof(int) * (size_t)P);
		r->rs = dist_alloc(d, sizeof(MPI_Request) * 2 * (size_t)P);
	}
	/* segment q: [q per, (q + 1) per) of the range, cut at multiples of 16 floats */
	size_t per = (n / (size_t)A + 15) / 16 * 16;
	if (off + n > (size_t)1 << 31 || per > (size_t)1 << 30) {
		fprintf(stderr, "bio-train: rank %d: gradient of %zu floats too large to exchange\n",
			me, off + n);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	for (int q = 0; q < P; q++) {
		size_t o = q < A ? (size_t)q * per : n;
		o = o < n ? o : n;
		size_t e = q < A ? o + per : n;
		e = e < n ? e : n;
		r->disp[q] = (int)(off + o);
		r->cnt[q] = (int)(e - o);
	}
	r->n_rs = 0;
	r->seg = me < A ? (size_t)r->cnt[me] : 0;
	r->all = ov.all + ov.all_used;
	ov.all_used += r->seg * (size_t)A;
	r->phase = 0;
	if (me < A) {
		for (int q = 0; q < A; q++) {
			if (q == me)
				continue;
			MPI_Irecv(r->all + (size_t)q * r->seg, r->cnt[me], MPI_FLOAT, q, ov.n, ov.comm,
				  &r->rs[r->n_rs++]);
			MPI_Isend(g + r->disp[q], r->cnt[q], MPI_FLOAT, q, ov.n, ov.comm,
				  &r->rs[r->n_rs++]);
			stats.bytes_sent += sizeof(float) * (size_t)r->cnt[q];
		}
		memcpy(r->all + (size_t)me * r->seg, g + r->disp[me], sizeof(float) * r->seg);
	}
	ov.n++;
}

/* The range's reduce-scatter done: this rank's segment added by the tree, its all-gather
 * started. */
static void range_gather(const struct bio_nn_dist *d, float *g, struct range *r)
{
	const int A = d->n_active, me = d->rank;
	if (me < A) {
		bio_nn_tree_f(r->all, (size_t)A, r->seg); /* the ranks' copies, leaf q = rank q */
		memcpy(g + r->disp[me], r->all, sizeof(float) * r->seg);
		/* what the all-gather sends: this segment to each other rank */
		stats.bytes_sent += sizeof(float) * r->seg * (size_t)(d->size - 1);
	}
	MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, g, r->cnt, r->disp, MPI_FLOAT,
			ov.comm, &r->ag);
	r->phase = 1;
}

/* Moves what can move: the ranges whose reduce-scatter is done go on to their all-gathers, in
 * range order; wait: block until every range is done. */
static void ranges_progress(int wait)
{
	const struct bio_nn_dist *d = ov.d;
	while (ov.next < ov.n) {
		struct range *r = &ov.r[ov.next];
		int done = 1;
		if (wait)
			MPI_Waitall(r->n_rs, r->rs, MPI_STATUSES_IGNORE);
		else
			MPI_Testall(r->n_rs, r->rs, &done, MPI_STATUSES_IGNORE);
		if (!done)
			break;
		range_gather(d, ov.g, r);
		ov.next++;
	}
	for (int i = 0; i < ov.next; i++) {
		struct range *r = &ov.r[i];
		if (r->phase != 1)
			continue;
		int done = 1;
		if (wait)
			MPI_Wait(&r->ag, MPI_STATUS_IGNORE);
		else
			MPI_Test(&r->ag, &done, MPI_STATUS_IGNORE);
		if (done)
			r->phase = 2;
	}
}

static void on_grads_ready(void *ctx, size_t off, size_t n)
{
	(void)ctx;
	double t0 = bio_clock_now_s();
	if (n)
		range_begin(ov.d, ov.g, off, n);
	ranges_progress(0);
	stats.overlap_s += bio_clock_now_s() - t0;
}

/* The exchange's communicator and buffers for a gradient g of n floats. */
static void ov_setup(const struct bio_nn_dist *d, float *g, size_t n)
{
	if (!ov.attached) {
		MPI_Comm_dup(MPI_COMM_WORLD, &ov.comm);
		ov.attached = 1;
	}
	ov.d = d;
	ov.g = g;
	/* every range's copies: at most n + 16 floats per range and rank over all ranges */
	size_t cap = n + (size_t)16 * MAX_RANGES * (size_t)d->size;
	if (ov.all_cap < cap) {
		free(ov.all);
		ov.all = dist_alloc(d, sizeof(float) * cap);
		ov.all_cap = cap;
	}
}

void bio_dist_attach(const struct bio_nn_dist *d, struct bio_model *m)
{
	if (d->size == 1 || getenv("BIO_DIST_NO_OVERLAP"))
		return;
	ov_setup(d, m->grads, m->n_params);
	m->grad_ready = on_grads_ready;
	m->grad_ready_ctx = NULL;
}

void bio_dist_reduce(const struct bio_nn_dist *d, float *g, size_t n)
{
	if (d->size == 1)
		return;
	double t0 = bio_clock_now_s();
	if (ov.d == d && ov.g == g && ov.n > 0) {
		/* overlapped: what the backward began; wait for the rest */
		ranges_progress(1);
	} else {
		ov_setup(d, g, n);
		range_begin(d, g, 0, n);
		ranges_progress(1);
	}
	ov.n = ov.next = 0;
	ov.all_used = 0;
	stats.reduce_s += bio_clock_now_s() - t0;
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

void bio_dist_attach(const struct bio_nn_dist *d, struct bio_model *m)
{
	(void)d;
	(void)m;
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
