/* bio-train's ranks: data-parallel training over MPI (Open MPI), when bio-train is built with it.
 *
 * A process started by mpirun / srun (its environment says so) is one rank of the job; each
 * rank trains on its share of every global batch (bio_nn_dist_split), the ranks add their
 * batch-norm statistics and loss sums (allsum) and their gradients (bio_dist_reduce) by the same
 * pairwise tree as one process's pieces, so every rank holds one process's gradients. Rank 0
 * writes checkpoints, tracking and the epoch lines. Without MPI built in, a process started by a
 * launcher as one of several ranks is refused with one line. */
#ifndef BIO_TOOLS_DIST_H
#define BIO_TOOLS_DIST_H

#include <stddef.h>

#include "bio/error.h"
#include "bio/nn.h"

struct bio_dist_stats {
	double reduce_s;        /* seconds in the gradient reductions */
	double allsum_s;        /* seconds in the statistics/loss sums */
	double overlap_s;       /* seconds in the gradient exchange during backward */
	unsigned long long bytes_sent;  /* gradient bytes this rank sent */
	unsigned long long stat_bytes;  /* statistics/loss bytes this rank sent */
	unsigned long long steps;
};

/* Fills d (rank 0 of 1 when not started as a rank). Returns 0, or -1 with err set (started as a
 * rank of several without MPI built in, or MPI failed to start). */
int bio_dist_init(struct bio_nn_dist *d, int *argc, char ***argv, struct bio_error *err);
/* 1 when this bio-train was built with MPI. */
int bio_dist_built_with_mpi(void);
struct bio_model;
/* Overlaps the gradient exchange with m's backward (m->grad_ready): each range of gradients
 * starts moving as soon as backward has finished it; bio_dist_reduce then waits for the rest.
 * No-op in one process; BIO_DIST_NO_OVERLAP=1 in the environment turns it off (bench/scale). */
void bio_dist_attach(const struct bio_nn_dist *d, struct bio_model *m);
/* g[0..n) (this rank's gradient tree sums) = the tree over the active ranks, on every rank
 * (after a backward of the attached model: finishes what it began). */
void bio_dist_reduce(const struct bio_nn_dist *d, float *g, size_t n);
/* Rank root's bytes to every rank. */
void bio_dist_bcast(const struct bio_nn_dist *d, void *buf, size_t bytes, int root);
/* 1 on every rank when flag is non-zero on any. */
int bio_dist_any(const struct bio_nn_dist *d, int flag);
const struct bio_dist_stats *bio_dist_stats(void);
/* Prints this rank's statistics (steps, time and bytes of the sums per step; the gradient of
 * n_params floats) as one line on stderr (bio-train -v under mpirun). */
void bio_dist_say_stats(const struct bio_nn_dist *d, size_t n_params);
/* Ends MPI (every rank); the process may then exit. */
void bio_dist_finalize(const struct bio_nn_dist *d);
/* Takes the whole job down after a fatal error on this rank (exit status code). */
_Noreturn void bio_dist_abort(const struct bio_nn_dist *d, int code);

#endif
