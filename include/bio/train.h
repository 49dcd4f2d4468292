/* Training the model on a batches stream (bio-batch's output): validation on a samples stream
 * after every epoch, the scheduler, early stopping, the last and best checkpoints (atomic writes),
 * resuming from a checkpoint bit-identically (given the batches from the next epoch on), the
 * tracking run (params, per-epoch metrics, artifacts, registration), and data-parallel ranks
 * through the caller's communication functions. The library prints nothing: each line meant for
 * the user (epoch lines, warnings, notes) goes to the caller's say hook, without the program name
 * and the newline. */
#ifndef BIO_TRAIN_H
#define BIO_TRAIN_H

#include <signal.h>
#include <stddef.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/model.h"
#include "bio/nn.h"
#include "bio/stream.h"

/* What the caller does with what training has to say (every hook may be NULL). */
struct bio_train_hooks {
	void *ud;
	/* one line for the user (standard error: "bio-train: " msg "\n"; a progress line on the
	 * screen ends first: every epoch ends with its line) */
	void (*say)(void *ud, const char *msg);
	/* done of total batches of the epoch so far (total 0: unknown) */
	void (*progress)(void *ud, unsigned long long done, unsigned long long total);
	/* a new configuration holding the built-in base only (for checking the header's
	 * synth_yaml); NULL on failure */
	struct bio_config *(*base_config)(void *ud);
	/* called once, just before the first batch is read: from then on *stop asks to finish
	 * the epoch (e.g. install the SIGINT/SIGTERM handlers here) */
	void (*training)(void *ud);
};

/* The ranks of a data-parallel run (one process: nn NULL or nn->size 1, and every function may be
 * NULL). The functions are those of bio-train's MPI layer (tools/dist.h), which libbio does not
 * link: attach overlaps the gradient exchange with backward, reduce adds the ranks' gradients,
 * bcast sends root's bytes to every rank, any is 1 on every rank when flag is set on one. */
struct bio_train_comm {
	struct bio_nn_dist *nn;
	void (*attach)(const struct bio_nn_dist *d, struct bio_model *m);
	void (*reduce)(const struct bio_nn_dist *d, float *g, size_t n);
	void (*bcast)(const struct bio_nn_dist *d, void *buf, size_t bytes, int root);
	int (*any)(const struct bio_nn_dist *d, int flag);
};

/* A run's options besides the configuration (all strings borrowed; must outlive the run). */
struct bio_train_opts {
	const char *val_path;      /* validation samples stream (its "val" split), or NULL */
	const char *resume;        /* checkpoint to continue from (last.ckpt), or NULL */
	const char *register_name; /* register the run's checkpoints/ as a version of this model */
	const char *alias;         /* with register_name: point models:/NAME@ALIAS at it */
	const char *output_dir;    /* instead of training.checkpoint_dir, or NULL */
	int layer_times;           /* time each layer (bio_train_say_times) */
	int n_threads;             /* the thread budget (-j) */
	int verbose;
	double t_launch;           /* bio_clock_now_s() when the program started */
	const volatile sig_atomic_t *stop; /* non-zero (a signal number): stop after this epoch */
	const struct bio_stream_limits *limits; /* reading the validation stream (NULL: defaults) */
	struct bio_train_comm comm;
	struct bio_train_hooks hooks;
};

struct bio_train;

/* A new run reading the training.*, experiment.seed and model.* keys of cfg (borrowed; it must
 * outlive the run, which records the upstream batch.*, synth.* and prep.size values in it) and o
 * (copied; its strings borrowed). NULL on a bad value, with err naming the key. */
struct bio_train *bio_train_new(struct bio_config *cfg, const struct bio_train_opts *o,
				struct bio_error *err);
/* Trains on the batches of r (borrowed; its header not read yet) from the header on: builds or
 * loads (o->resume) the model, checks the batches against the model and the checkpoint, trains
 * epoch after epoch, checkpoints, tracks, registers. On an error after the tracking run started,
 * the run is marked FAILED. Returns 0 (also when stopped by *stop or early stopping) or an
 * error. */
int bio_train_run(struct bio_train *tr, struct bio_stream_reader *r, struct bio_error *err);
/* After bio_train_run, on rank 0: says when the first step began and ended after o->t_launch
 * (verbose) and the time of each layer (layer_times). */
void bio_train_say_times(const struct bio_train *tr);
/* The number of model parameters (0 before bio_train_run built the model). */
size_t bio_train_n_params(const struct bio_train *tr);
/* Frees tr (NULL is a no-op). */
void bio_train_free(struct bio_train *tr);

/* Sends what the runs of checkpoint directory dir (its tracking/ journal, or dir itself) could
 * not send to their tracking server, with tracking.* of cfg; says through h how many are
 * complete. Borrowed arguments. Returns 0 when all are, else an error. */
int bio_train_sync_tracking(const struct bio_config *cfg, const char *dir,
			    const struct bio_train_hooks *h, struct bio_error *err);
/* Sends every run and registered version of file store `store` to the tracking server at
 * tracking.uri of cfg; says through h how many are complete. Borrowed arguments. Returns 0 when
 * all are; BIO_EUNSUPPORTED when tracking.uri is not a server's (the caller's usage error). */
int bio_train_push_tracking(const struct bio_config *cfg, const char *store,
			    const struct bio_train_hooks *h, struct bio_error *err);

#endif
