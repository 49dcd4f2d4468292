/* Training engine (include/bio/train.h): reads a batches stream, trains the model with the
 * optimizer and scheduler of the config, validates on a samples stream after each epoch, keeps
 * last.ckpt (with the optimizer state) and best.ckpt (weights only unless training.best_full),
 * stops early on a validation metric, resumes from last.ckpt, and records the run in the
 * tracking store. Data-parallel ranks go through the caller's communication functions (tools/dist.c
 * over MPI); rank 0 writes checkpoints and tracking and says the epoch lines. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bio/checkpoint.h"
#include "bio/clock.h"
#include "bio/fs.h"
#include "bio/git.h"
#include "bio/header.h"
#include "bio/kernels.h"
#include "bio/metrics.h"
#include "bio/optim.h"
#include "bio/rng.h"
#include "bio/track.h"
#include "bio/train.h"
#include "free_list.h"

#ifndef BIO_VERSION
#define BIO_VERSION "0.1.0"
#endif

#define KEY_INIT 0x696e6974u /* "init": RNG stream of the initial weights */
#define KEY_DROP 0x64726f70u /* "drop": RNG stream of a batch's dropout masks */
#define MAX_VAL_SAMPLES 10000000

struct val_set {
	size_t n;
	int n_mod;
	float *x[BIO_MODEL_MAX_MODS]; /* [n][S*S] per model modality */
	int64_t *labels;
};

struct bio_train {
	struct bio_config *cfg;
	struct bio_train_opts opts;
	struct bio_model_spec spec;
	struct bio_model *m;
	struct bio_optim o;
	struct bio_sched s;
	struct bio_ckpt_meta meta;
	struct val_set val;
	int have_val;
	const char *dir;
	char *last_path, *best_path;
	int64_t seed;
	int64_t epochs_total;
	int half;
	int accumulate;
	double clip;
	int64_t es_patience;
	int es_max;      /* early-stopping metric maximised (val_accuracy) */
	int es_eer;      /* the metric is val_eer: the fused embeddings' verification EER */
	double last_eer; /* with es_eer: the last validation's */
	int best_full;   /* training.best_full: best.ckpt with the optimizer state */
	int fused;       /* Adam fused into fc1's backward (bio_model_fuse_adam) */
	struct bio_adam fused_c;
	int legend_done; /* the epoch lines' legend was said */
	/* the epoch in progress */
	int64_t epoch;
	int in_epoch;
	int64_t n_batches, n_samples, n_correct, pending;
	double loss_sum;
	double t_data, t_fwd, t_bwd, t_start;
	double first_begin, first_step; /* seconds after opts.t_launch */
	unsigned char *seen_label;
	int64_t n_seen_labels;
	char **label_names;        /* the batches' (meta.labels once the model is set up) */
	size_t n_labels;
	float *in[BIO_MODEL_MAX_MODS];
	int64_t *labels;
	struct bio_track_run *run; /* NULL when tracking is off */
	const char *track_uri;
	struct bio_track_opts track_opts;
	char *spool;               /* <dir>/tracking: the journal of a server run */
	int track_warned;          /* a server failure was said (until it answers again) */
	struct bio_nn_dist one;    /* rank 0 of 1 when the caller gave no ranks */
	struct bio_nn_dist *dist;  /* this process's rank */
	int root;                  /* rank 0: writes checkpoints, tracking and the epoch lines */
};

static void say(const struct bio_train_hooks *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(const struct bio_train_hooks *h, const char *fmt, ...)
{
	char msg[BIO_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (h && h->say)
		h->say(h->ud, msg);
}

static int stopped_by(const struct bio_train *tr)
{
	return tr->opts.stop ? (int)*tr->opts.stop : 0;
}

/* ---- the ranks (one process when the caller gave none) ---- */

static void comm_reduce(struct bio_train *tr, float *g, size_t n)
{
	if (tr->opts.comm.reduce)
		tr->opts.comm.reduce(tr->dist, g, n);
}

static void comm_bcast(struct bio_train *tr, void *buf, size_t bytes)
{
	if (tr->opts.comm.bcast)
		tr->opts.comm.bcast(tr->dist, buf, bytes, 0);
}

static int comm_any(struct bio_train *tr, int flag)
{
	return tr->opts.comm.any ? tr->opts.comm.any(tr->dist, flag) : flag != 0;
}

/* ---- validation ---- */

/* Loads the validation samples of path (its "val" split when records carry one): header and
 * records checked by the header module against the model and the training labels. */
static int load_val(struct bio_train *tr, const char *path, char *const *labels, size_t n_labels,
		    struct bio_error *err)
{
	const char *paths[1] = {path};
	const struct bio_model_spec *sp = &tr->m->spec;
	struct bio_stream_limits lim;
	if (tr->opts.limits)
		lim = *tr->opts.limits;
	else
		bio_stream_limits_default(&lim);
	struct bio_stream_reader *r = bio_stream_reader_open(paths, 1, &lim, err);
	const struct bio_value *rec;
	struct bio_header h;
	memset(&h, 0, sizeof h);
	int rc;
	if (!r) {
		rc = err ? err->code : BIO_EIO;
		goto out;
	}
	if ((rc = bio_header_read(&h, r, "samples",
				  BIO_HEADER_LABELS | BIO_HEADER_MODALITIES | BIO_HEADER_SHAPE, err)))
		goto out;
	char what[512];
	snprintf(what, sizeof what, "%s: the validation samples against the training batches",
		 path);
	if ((rc = bio_header_same_labels(&h, labels, n_labels, what, err)))
		goto out;
	for (int b = 0; b < sp->n_mod; b++)
		if (bio_header_modality(&h, sp->modalities[b]) < 0) {
			rc = bio_error_set(err, BIO_EFORMAT, "%s: the validation samples carry no "
					   "modality '%s' (model.modalities)", path,
					   sp->modalities[b]);
			goto out;
		}
	if (h.shape[1] != sp->input_size || h.shape[2] != sp->input_size) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: header meta 'shape': the validation "
				   "samples are %lldx%lld, the model takes %dx%d (model.input_size, "
				   "prep.size)", path, (long long)h.shape[2], (long long)h.shape[1],
				   sp->input_size, sp->input_size);
		goto out;
	}
	size_t side2 = (size_t)sp->input_size * sp->input_size, cap = 0;
	struct val_set *v = &tr->val;
	v->n_mod = sp->n_mod;
	while ((rc = bio_stream_read_record(r, &rec, err)) == 1) {
		if (v->n >= MAX_VAL_SAMPLES) {
			rc = bio_error_set(err, BIO_ELIMIT, "%s: more than %d validation samples",
					   path, MAX_VAL_SAMPLES);
			goto out;
		}
		if (v->n == cap) {
			cap = cap ? 2 * cap : 256;
			for (int b = 0; b < sp->n_mod; b++) {
				float *p = realloc(v->x[b], cap * side2 * sizeof(float));
				if (!p) {
					rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
					goto out;
				}
				v->x[b] = p;
			}
			int64_t *l = realloc(v->labels, cap * sizeof(int64_t));
			if (!l) {
				rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
				goto out;
			}
			v->labels = l;
		}
		const struct bio_value *split = bio_value_get(rec, "split");
		if (split && !bio_value_str_eq(split, "val"))
			continue; /* a whole samples stream: its validation split only */
		if ((rc = bio_record_get_label(&v->labels[v->n], &h, r, rec, "label", 0, err)))
			goto out;
		for (int b = 0; b < sp->n_mod; b++) {
			struct bio_tensor tv;
			if ((rc = bio_record_get_sample(&tv, &h, r, rec, sp->modalities[b], 0, err)))
				goto out;
			memcpy(v->x[b] + v->n * side2, tv.data, side2 * sizeof(float));
		}
		v->n++;
	}
	if (rc < 0)
		goto out;
	rc = 0;
	if (v->n == 0)
		rc = bio_error_set(err, BIO_EFORMAT, "%s: no validation samples", path);
	if (!rc && tr->es_eer) { /* genuine and impostor pairs: before training, not after
				  * its first epoch */
		unsigned char *seen = calloc(n_labels ? n_labels : 1, 1);
		int pair = 0;
		size_t ids = 0;
		for (size_t i = 0; seen && i < v->n; i++)
			if (v->labels[i] >= 0 && (size_t)v->labels[i] < n_labels) {
				ids += seen[v->labels[i]] == 0;
				pair |= seen[v->labels[i]]++ > 0;
			}
		if (!seen)
			rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
		else if (!pair)
			rc = bio_error_set(err, BIO_EINVAL, "%s: val_eer (training.early_stopping."
					   "metric): no identity has two validation samples", path);
		else if (ids < 2)
			rc = bio_error_set(err, BIO_EINVAL, "%s: val_eer (training.early_stopping."
					   "metric): the validation samples are of one identity", path);
		free(seen);
	}
	tr->have_val = 1;
out:
	bio_header_destroy(&h);
	bio_stream_reader_free(r);
	return rc;
}

/* The EER of every pair of validation samples (eval.protocol all) scored by the cosine of
 * their fused embeddings emb [n][dim], as bio-eval scores bio-infer's. */
static int val_eer(struct bio_train *tr, double *eer, const float *emb, size_t dim,
		   struct bio_error *err)
{
	struct bio_scores sc;
	memset(&sc, 0, sizeof sc);
	struct bio_verif v;
	/* (load_val made sure of genuine and impostor pairs) */
	int rc = bio_scores_pairs(&sc, emb, tr->val.n, dim, tr->val.labels, BIO_PAIRS_ALL,
				  50000000, 0, tr->opts.n_threads, err);
	if (!rc && !(rc = bio_sort_scores(sc.genuine, sc.n_genuine, err)) &&
	    !(rc = bio_sort_scores(sc.impostor, sc.n_impostor, err)) &&
	    !(rc = bio_verif_compute(&v, sc.genuine, sc.n_genuine, sc.impostor, sc.n_impostor,
				     err)))
		*eer = v.eer;
	bio_scores_destroy(&sc);
	return rc;
}

/* Mean loss and accuracy of the model in eval mode over the validation set, and with es_eer the
 * fused embeddings' EER (else NaN). */
static int validate(struct bio_train *tr, double *loss, double *acc, double *eer,
		    struct bio_error *err)
{
	struct bio_model *m = tr->m;
	const size_t side2 = (size_t)m->spec.input_size * m->spec.input_size;
	const size_t dim = (size_t)bio_fusion_out_dim(&m->fusion);
	double lsum = 0.0;
	int64_t correct = 0;
	float *emb = NULL;
	*eer = NAN;
	if (tr->es_eer && !(emb = malloc(tr->val.n * dim * sizeof(float))))
		return bio_error_set(err, BIO_ENOMEM, "out of memory for %zu validation embeddings",
				     tr->val.n);
	for (size_t i = 0; i < tr->val.n; i += (size_t)m->max_batch) {
		int n = (int)(tr->val.n - i < (size_t)m->max_batch ? tr->val.n - i : (size_t)m->max_batch);
		const float *in[BIO_MODEL_MAX_MODS];
		for (int b = 0; b < m->spec.n_mod; b++)
			in[b] = tr->val.x[b] + i * side2;
		bio_model_forward(m, in, n, 0);
		int c = 0;
		double l = bio_model_loss_sum(m, m->logits, tr->val.labels + i, n, &c) / n;
		lsum += l * n;
		correct += c;
		if (emb)
			memcpy(emb + i * dim, m->fused, (size_t)n * dim * sizeof(float));
	}
	*loss = lsum / (double)tr->val.n;
	*acc = (double)correct / (double)tr->val.n;
	int rc = emb ? val_eer(tr, eer, emb, dim, err) : 0;
	free(emb);
	return rc;
}

/* ---- tracking ---- */

struct param_ctx {
	struct bio_train *tr;
	int warned;
};

static int log_param_leaf(void *ud, const char *path, const char *value)
{
	struct param_ctx *pc = ud;
	struct bio_error err;
	if (bio_track_log_param(pc->tr->run, path, value, &err) && !pc->warned) {
		/* a resumed run whose config changed keeps its first params */
		say(&pc->tr->opts.hooks, "tracking: %s", err.msg);
		pc->warned = 1;
	}
	return 0;
}

/* Sends what the tracking server has not got yet; a failure is a warning (once until it answers
 * again): the run stays in the journal and training goes on. now: try whatever the wait. */
static int track_flush(struct bio_train *tr, int now)
{
	struct bio_error err;
	if (!tr->run)
		return 0;
	int rc = now ? bio_track_flush_now(tr->run, &err) : bio_track_flush(tr->run, &err);
	if (rc && !tr->track_warned) {
		say(&tr->opts.hooks, "%s; training goes on", err.msg);
		tr->track_warned = 1;
	} else if (!rc && tr->track_warned) {
		say(&tr->opts.hooks, "tracking server %s answers again", tr->track_uri);
		tr->track_warned = 0;
	}
	return rc;
}

static int track_metric(struct bio_train *tr, const char *key, double value,
			struct bio_error *err)
{
	if (tr->run && bio_track_log_metric(tr->run, key, value, tr->epoch, 0, err))
		return bio_error_prefix(err, "tracking");
	return 0;
}

/* Reads the first line of path into buf; 0 or -1. */
static int read_line(char *buf, size_t cap, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int ok = fgets(buf, (int)cap, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\r\n")] = 0;
	return buf[0] ? 0 : -1;
}

/* Reopens the tracking run of the checkpoint resume's directory (its run_id), or leaves tr->run
 * NULL with a warning. */
static void track_reopen(struct bio_train *tr, const char *resume)
{
	struct bio_error err;
	char id[128];
	char *rdir = strdup(resume), *slash = rdir ? strrchr(rdir, '/') : NULL;
	char *rid_path = NULL;
	if (rdir) {
		if (slash)
			*slash = 0;
		rid_path = bio_fs_path_join(slash ? rdir : ".", "run_id");
	}
	if (rid_path && read_line(id, sizeof id, rid_path) == 0) {
		tr->run = bio_track_run_open_opts(tr->track_uri, &tr->track_opts, id, &err);
		if (!tr->run)
			say(&tr->opts.hooks, "tracking: cannot reopen run %s (%s); starting a new run",
			    id, err.msg);
	}
	free(rid_path);
	free(rdir);
}

/* Params = the flattened effective config and the model's size, tags, and the config as an
 * artifact (<checkpoint dir>/config.yaml). */
static int track_describe(struct bio_train *tr, struct bio_error *err)
{
	struct param_ctx pc = {tr, 0};
	bio_config_foreach_leaf(tr->cfg, log_param_leaf, &pc);
	char buf[64];
	snprintf(buf, sizeof buf, "%d", tr->m->spec.n_classes);
	log_param_leaf(&pc, "model.n_classes", buf);
	snprintf(buf, sizeof buf, "%zu", tr->m->n_params);
	log_param_leaf(&pc, "model.n_params", buf);
	if (bio_track_set_tag(tr->run, "mlflow.source.name", "bio-train", err) ||
	    bio_track_set_tag(tr->run, "bio.version", BIO_VERSION, err))
		return bio_error_prefix(err, "tracking");
	snprintf(buf, sizeof buf, "%d", tr->opts.n_threads);
	bio_track_set_tag(tr->run, "bio.threads", buf, NULL);
	if (tr->opts.resume)
		bio_track_set_tag(tr->run, "bio.resumed_from", tr->opts.resume, NULL);
	/* the git commit of the working directory, when there is one */
	char commit[41];
	if (bio_git_head(commit, NULL) == 0)
		bio_track_set_tag(tr->run, "mlflow.source.git.commit", commit, NULL);
	char *cpath = bio_fs_path_join(tr->dir, "config.yaml");
	int rc = 0;
	if (!cpath)
		rc = bio_error_set(err, BIO_ENOMEM, "tracking: out of memory");
	else if (bio_fs_write_atomic(cpath, tr->meta.config_yaml, strlen(tr->meta.config_yaml),
				     NULL, 1, err) ||
		 bio_track_log_artifact(tr->run, cpath, NULL, err))
		rc = bio_error_prefix(err, "tracking");
	free(cpath);
	if (rc == 0)
		track_flush(tr, 0);
	return rc;
}

/* Starts (or, on resume, reopens) the tracking run; its id is kept in <checkpoint dir>/run_id. */
static int track_start(struct bio_train *tr, struct bio_error *err)
{
	const struct bio_config *cfg = tr->cfg;
	const struct bio_train_hooks *h = &tr->opts.hooks;
	int enabled, rc;
	const char *exp, *name;
	if ((rc = bio_config_get_bool(cfg, "tracking.enabled", &enabled, err)) ||
	    (rc = bio_config_get_str(cfg, "tracking.uri", &tr->track_uri, err)) ||
	    (rc = bio_config_get_str(cfg, "tracking.experiment", &exp, err)) ||
	    (rc = bio_config_get_str(cfg, "tracking.run_name", &name, err)))
		return rc;
	if (!enabled)
		return 0;
	if ((rc = bio_track_opts_from_config(&tr->track_opts, cfg, err)))
		return rc;
	tr->spool = bio_fs_path_join(tr->dir, "tracking");
	char id[128], *id_path = bio_fs_path_join(tr->dir, "run_id");
	if (!id_path || !tr->spool) {
		free(id_path);
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	tr->track_opts.spool_dir = tr->spool;
	if (bio_track_uri_is_server(tr->track_uri) && access(tr->spool, F_OK) == 0) {
		/* what earlier runs here could not send */
		struct bio_error serr;
		size_t n_runs, n_pending;
		if (bio_track_sync(&n_runs, &n_pending, tr->spool, &tr->track_opts, &serr))
			say(h, "%s", serr.msg);
	}
	if (tr->opts.resume)
		track_reopen(tr, tr->opts.resume);
	if (!tr->run && read_line(id, sizeof id, id_path) == 0) {
		/* a run into this folder before, not resumed: if it was killed, it still says
		 * RUNNING; mark it KILLED, as MLflow does */
		struct bio_error serr;
		if (bio_track_run_close_stale(tr->track_uri, id, &serr) == 1 && tr->opts.verbose)
			say(h, "tracking: the earlier run %s was left RUNNING: marked KILLED", id);
	}
	if (!tr->run) {
		tr->run = bio_track_run_start_opts(tr->track_uri, &tr->track_opts, exp,
						   *name ? name : NULL, err);
		if (!tr->run) {
			free(id_path);
			return err ? err->code : BIO_EIO;
		}
	}
	say(h, "tracking run %s of experiment '%s' in %s", bio_track_run_id(tr->run), exp,
	    tr->track_uri);
	snprintf(id, sizeof id, "%s\n", bio_track_run_id(tr->run));
	rc = bio_fs_write_atomic(id_path, id, strlen(id), NULL, 1, err);
	free(id_path);
	return rc ? rc : track_describe(tr, err);
}

/* Logs the checkpoints, registers them (register_name), ends and sends the run. */
static int track_end(struct bio_train *tr, struct bio_error *err)
{
	const struct bio_train_hooks *h = &tr->opts.hooks;
	const char *register_name = tr->opts.register_name, *alias = tr->opts.alias;
	if (!tr->run)
		return 0;
	if (bio_track_log_artifact(tr->run, tr->best_path, "checkpoints", err) ||
	    bio_track_log_artifact(tr->run, tr->last_path, "checkpoints", err))
		return bio_error_prefix(err, "tracking");
	if (register_name) {
		/* the directory, so that MLflow's download_artifacts("models:/NAME/V") works */
		int64_t version;
		struct bio_error rerr;
		rerr.msg[0] = '\0';
		if (bio_track_run_register(&version, tr->run, register_name, "checkpoints", alias,
					   &rerr)) {
			if (err)
				*err = rerr;
			return bio_error_prefix(err, "tracking");
		}
		if (version > 0)
			say(h, "registered model %s version %" PRId64 "%s%s", register_name, version,
			    alias ? " alias " : "", alias ? alias : "");
		else
			say(h, "model %s: registration waits for the tracking server: %s",
			    register_name, rerr.msg);
	}
	if (bio_track_run_end(tr->run, stopped_by(tr) ? BIO_TRACK_KILLED : BIO_TRACK_FINISHED, err))
		return bio_error_prefix(err, "tracking");
	struct bio_error ferr;
	if (bio_track_flush_now(tr->run, &ferr))
		say(h, "the run is not complete on %s: %s", tr->track_uri, ferr.msg);
	else
		say(h, "tracked as run %s in %s (checkpoints/ among its artifacts)",
		    bio_track_run_id(tr->run), tr->track_uri);
	bio_track_run_free(tr->run);
	tr->run = NULL;
	return 0;
}

/* After an error: the tracking run (when one is open) is marked FAILED and sent. */
static int train_fail(struct bio_train *tr, int rc)
{
	if (tr->run && bio_track_run_end(tr->run, BIO_TRACK_FAILED, NULL) == 0)
		bio_track_flush_now(tr->run, NULL);
	return rc;
}

int bio_train_sync_tracking(const struct bio_config *cfg, const char *dir,
			    const struct bio_train_hooks *h, struct bio_error *err)
{
	struct bio_track_opts o;
	int rc;
	if ((rc = bio_track_opts_from_config(&o, cfg, err)))
		return rc;
	char *spool = bio_fs_path_join(dir, "tracking");
	if (!spool)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	const char *root = access(spool, F_OK) == 0 ? spool : dir;
	size_t n_runs, n_pending;
	struct bio_error serr;
	rc = bio_track_sync(&n_runs, &n_pending, root, &o, &serr);
	if (rc == BIO_ENOTFOUND || (rc == 0 && n_runs == 0)) {
		rc = bio_error_set(err, BIO_ENOTFOUND, "%s: no tracking journal (runs for a tracking "
				   "server) there", dir);
		goto out;
	}
	say(h, "tracking: %zu of %zu run%s of %s complete on the server", n_runs - n_pending, n_runs,
	    n_runs == 1 ? "" : "s", root);
	if (rc)
		rc = bio_error_set(err, rc, "%zu run%s not complete: %s", n_pending,
				   n_pending == 1 ? "" : "s", serr.msg);
out:
	free(spool);
	return rc;
}

int bio_train_push_tracking(const struct bio_config *cfg, const char *store,
			    const struct bio_train_hooks *h, struct bio_error *err)
{
	struct bio_track_opts o;
	const char *uri;
	int rc;
	if ((rc = bio_config_get_str(cfg, "tracking.uri", &uri, err)) ||
	    (rc = bio_track_opts_from_config(&o, cfg, err)))
		return rc == BIO_EUNSUPPORTED ? BIO_EINVAL : rc;
	if (!bio_track_uri_is_server(uri))
		return bio_error_set(err, BIO_EUNSUPPORTED, "--push-tracking needs tracking.uri of a "
				     "tracking server (http:// or https://), not '%s'", uri);
	size_t n_runs, n_pending;
	struct bio_error perr;
	rc = bio_track_push(&n_runs, &n_pending, store, uri, &o, &perr);
	if (rc == BIO_EUNSUPPORTED)
		perr.code = rc = BIO_EIO; /* (that code says: a usage error) */
	if (rc && n_runs == 0) {
		if (err)
			*err = perr;
		return rc;
	}
	say(h, "tracking: %zu of %zu run%s of %s complete on %s", n_runs - n_pending, n_runs,
	    n_runs == 1 ? "" : "s", store, uri);
	if (rc)
		return bio_error_set(err, rc, "%zu run%s not complete: %s", n_pending,
				     n_pending == 1 ? "" : "s", perr.msg);
	return 0;
}

/* ---- one step, one epoch ---- */

static void optimizer_step(struct bio_train *tr)
{
	struct bio_model *m = tr->m;
	if (tr->clip > 0.0)
		bio_clip_grad_norm(m->grads, m->n_params, tr->clip);
	bio_optim_step_pool(&tr->o, m->params, m->grads, m->n_params, m->pool);
	bio_model_zero_grad(m);
	tr->pending = 0;
	tr->meta.step++;
}

static long peak_rss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* A checkpoint: with the optimizer and scheduler state (full: last.ckpt, to resume from), or
 * the weights and meta only (best.ckpt, what inference and evaluation read: a third the size). */
static int save(struct bio_train *tr, const char *path, int full, struct bio_error *err)
{
	return bio_checkpoint_save(path, tr->m, full ? &tr->o : NULL, full ? &tr->s : NULL,
				   &tr->meta, err);
}

/* The per-epoch metrics of the tracking run. */
static int track_epoch(struct bio_train *tr, double tl, double ta, double vl, double va,
		       double lr, double t_val, double elapsed, struct bio_error *err)
{
	double rate = (double)tr->n_samples / (tr->t_fwd + tr->t_bwd + tr->t_data);
	int rc;
	if ((rc = track_metric(tr, "train_loss", tl, err)) ||
	    (rc = track_metric(tr, "train_accuracy", ta, err)) ||
	    (tr->have_val && ((rc = track_metric(tr, "val_loss", vl, err)) ||
			      (rc = track_metric(tr, "val_accuracy", va, err)))) ||
	    (tr->es_eer && (rc = track_metric(tr, "val_eer", tr->last_eer, err))) ||
	    (rc = track_metric(tr, "lr", lr, err)) ||
	    (rc = track_metric(tr, "data_load_time", tr->t_data, err)) ||
	    (rc = track_metric(tr, "forward_time", tr->t_fwd, err)) ||
	    (rc = track_metric(tr, "backward_time", tr->t_bwd, err)) ||
	    (rc = track_metric(tr, "val_time", t_val, err)) ||
	    (rc = track_metric(tr, "epoch_time", elapsed, err)) ||
	    (rc = track_metric(tr, "samples_per_s", rate, err)) ||
	    (rc = track_metric(tr, "peak_rss", (double)peak_rss_kib() * 1024.0, err)))
		return rc;
	track_flush(tr, 0);
	return 0;
}

/* The epoch line (and, the first time, what its fields are), on rank 0. */
static void say_epoch(struct bio_train *tr, double tl, double ta, double vl, double va, double lr,
		      double t_val, double elapsed, int improved)
{
	const struct bio_train_hooks *h = &tr->opts.hooks;
	if (!tr->root)
		return;
	if (!tr->legend_done) {
		/* once per process: what the fields of the epoch lines are */
		tr->legend_done = 1;
		say(h, "each epoch: loss, acc on the training batches%s; lr; samples/s trained; time "
		    "in all (data, forward, backward%s); rss = peak memory; * = best so far by %s "
		    "(best.ckpt)",
		    tr->have_val ? (tr->es_eer ? "; val_loss, val_acc, val_eer (EER of every pair "
						 "by fused embeddings) on --val"
					       : "; val_loss, val_acc on --val")
				 : " (no --val)",
		    tr->have_val ? ", val" : "",
		    tr->have_val ? (tr->es_eer ? "val_eer" : tr->es_max ? "val_acc" : "val_loss")
				 : (tr->es_max ? "training acc" : "training loss"));
	}
	char val_part[96] = "", val_time[32] = "";
	if (tr->have_val) {
		int k = snprintf(val_part, sizeof val_part, " val_loss %.4f val_acc %.4f", vl, va);
		if (tr->es_eer)
			snprintf(val_part + k, sizeof val_part - (size_t)k, " val_eer %.4f",
				 tr->last_eer);
		snprintf(val_time, sizeof val_time, " val %.2fs", t_val);
	}
	say(h, "epoch %" PRId64 "/%" PRId64 " loss %.4f acc %.4f%s lr %.3g samples/s %.1f time "
	    "%.2fs (data %.2fs forward %.2fs backward %.2fs%s) rss %ld MiB%s",
	    tr->epoch + 1, tr->epochs_total, tl, ta, val_part, lr,
	    (double)tr->n_samples / (tr->t_fwd + tr->t_bwd + tr->t_data), elapsed, tr->t_data,
	    tr->t_fwd, tr->t_bwd, val_time, peak_rss_kib() / 1024, improved ? " *" : "");
}

/* Ends the epoch in progress: pending optimizer step, validation, scheduler, early stopping,
 * checkpoints. *stop = 1 when training must stop. */
static int end_epoch(struct bio_train *tr, int *stop, struct bio_error *err)
{
	const struct bio_train_hooks *h = &tr->opts.hooks;
	int rc;
	*stop = 0;
	if (tr->pending)
		optimizer_step(tr);
	if (tr->n_seen_labels < 2)
		return bio_error_set(err, BIO_EFORMAT, "epoch %" PRId64 ": the training set holds a "
				     "single class; nothing to learn", tr->epoch);
	double tl = tr->loss_sum / (double)tr->n_samples;
	double ta = (double)tr->n_correct / (double)tr->n_samples;
	double vl = NAN, va = NAN, t_val = bio_clock_now_s();
	if (tr->have_val) {
		/* rank 0 holds the validation set; every rank takes its figures */
		double v[4] = {NAN, NAN, NAN, 0};
		if (tr->root && validate(tr, &v[0], &v[1], &v[2], err))
			v[3] = 1;
		comm_bcast(tr, v, sizeof v);
		if (v[3] != 0) /* (rank 0's message; the others stop with it) */
			return tr->root ? err->code : bio_error_set(err, BIO_EINVAL, "validation failed "
								    "on rank 0");
		vl = v[0];
		va = v[1];
		tr->last_eer = v[2];
		if (!isfinite(vl))
			return bio_error_set(err, BIO_ENAN, "epoch %" PRId64 ": validation loss is "
					     "not finite; last good checkpoint kept", tr->epoch);
	}
	t_val = bio_clock_now_s() - t_val;
	double lr = tr->o.lr;
	double elapsed = bio_clock_now_s() - tr->t_start;
	double metric_loss = tr->have_val ? vl : tl, metric_acc = tr->have_val ? va : ta;
	double metric = tr->es_eer ? tr->last_eer : tr->es_max ? metric_acc : metric_loss;
	tr->o.lr = bio_sched_epoch_end(&tr->s, metric);
	int improved = tr->meta.best_epoch < 0 ||
		       (tr->es_max ? metric > tr->meta.best_metric : metric < tr->meta.best_metric);
	if (improved) {
		tr->meta.best_metric = metric;
		tr->meta.best_epoch = tr->epoch;
		tr->meta.bad_epochs = 0;
	} else {
		tr->meta.bad_epochs++;
	}
	tr->meta.epoch = tr->epoch + 1;
	tr->meta.val_loss = vl;
	tr->meta.val_accuracy = va;
	int stopping = comm_any(tr, stopped_by(tr) != 0); /* every rank stops at the same epoch */
	say_epoch(tr, tl, ta, vl, va, lr, t_val, elapsed, improved);
	if ((rc = track_epoch(tr, tl, ta, vl, va, lr, t_val, elapsed, err)))
		return rc;
	/* best before last: a crash between the two leaves the older last.ckpt, and resuming from
	 * it redoes this epoch and rewrites the same best.ckpt. best.ckpt holds the weights only
	 * (training.best_full, --full: the optimizer state too, and then the same bytes are not
	 * written twice: last.ckpt becomes a second name of best.ckpt's file). */
	if (!tr->root) {
		/* (rank 0 writes the checkpoints) */
	} else if (improved && tr->best_full) {
		if ((rc = save(tr, tr->best_path, 1, err)) ||
		    (rc = bio_checkpoint_link(tr->best_path, tr->last_path, err)))
			return rc;
	} else {
		if ((improved && (rc = save(tr, tr->best_path, 0, err))) ||
		    (rc = save(tr, tr->last_path, 1, err)))
			return rc;
	}
	tr->in_epoch = 0;
	if (stopping) {
		if (tr->root)
			say(h, "stopped by signal %d after epoch %" PRId64 "; resume with bio-batch "
			    "--start-epoch %" PRId64 " ... | bio-train --resume %s", stopped_by(tr),
			    tr->epoch + 1, tr->epoch + 1, tr->last_path);
		*stop = 1;
	} else if (tr->es_patience > 0 && tr->meta.bad_epochs >= tr->es_patience) {
		if (tr->root)
			say(h, "early stopping after epoch %" PRId64 " (best epoch %" PRId64 ", %s "
			    "%.4f)", tr->epoch + 1, tr->meta.best_epoch + 1,
			    tr->es_eer ? "val_eer" : tr->es_max ? "val_accuracy" : "val_loss",
			    tr->meta.best_metric);
		*stop = 1;
	}
	return 0;
}

static void begin_epoch(struct bio_train *tr, int64_t epoch)
{
	tr->epoch = epoch;
	tr->in_epoch = 1;
	tr->n_batches = tr->n_samples = tr->n_correct = tr->pending = 0;
	tr->loss_sum = 0.0;
	tr->t_data = tr->t_fwd = tr->t_bwd = 0.0;
	tr->t_start = bio_clock_now_s();
	memset(tr->seen_label, 0, (size_t)tr->m->spec.n_classes);
	tr->n_seen_labels = 0;
	/* the gradients are zero here: after bio_model_new, and after every optimizer step (an
	 * epoch ends with one when batches are pending) */
}

/* ---- what ran upstream ---- */

static int64_t meta_int_or(const struct bio_value *meta, const char *key, int64_t def)
{
	int64_t v;
	return bio_value_int(bio_value_get(meta, key), &v) ? def : v;
}

struct synth_rec {
	struct bio_config *cfg;
	const char *src;
	const struct bio_config *from; /* the base with the header's overlay */
	const char *name;              /* that overlay's name, as origins start */
	struct bio_error *err;
};

static int synth_leaf(void *ud, const char *path, const char *value)
{
	struct synth_rec *r = ud;
	struct bio_error err = {0};
	char set[1024];
	if (strncmp(path, "synth.", 6) != 0) {
		if (!strncmp(bio_config_origin(r->from, path), r->name, strlen(r->name)))
			return bio_error_set(r->err, BIO_EINVAL, "%s: header 'synth_yaml': %s: only "
					     "synth.* keys belong there", r->src, path);
		return 0;
	}
	if (snprintf(set, sizeof set, "%s=%s", path, value) >= (int)sizeof set ||
	    bio_config_set(r->cfg, set, &err))
		return bio_error_set(r->err, BIO_EINVAL, "%s: header 'synth_yaml': %s: %s", r->src,
				     path, err.msg[0] ? err.msg : "value too long");
	return 0;
}

/* The synth.* configuration the images were made with (bio-synth's synth.yaml, carried by
 * bio-scan's header as "synth_yaml") replaces this program's own synth.* in what it records. The
 * text is checked as a config overlay on the built-in base; keys outside synth.* are refused. */
static int record_synth(struct bio_train *tr, const struct bio_value *bmeta, const char *src,
			struct bio_error *err)
{
	const struct bio_train_hooks *h = &tr->opts.hooks;
	const char *text;
	size_t len;
	if (bio_value_str(bio_value_get(bmeta, "synth_yaml"), &text, &len) != 0)
		return 0;
	struct bio_config *c = h->base_config ? h->base_config(h->ud) : NULL;
	if (!c)
		return bio_error_set(err, BIO_ENOMEM, "%s: header 'synth_yaml': no base configuration "
				     "to check it on", src);
	char name[512];
	snprintf(name, sizeof name, "%s: header 'synth_yaml'", src);
	int rc = bio_config_load_overlay(c, name, text, len, err);
	if (rc == 0) {
		struct synth_rec r = {tr->cfg, src, c, name, err};
		rc = bio_config_foreach_leaf(c, synth_leaf, &r);
	}
	bio_config_free(c);
	return rc;
}

/* What ran upstream is what is recorded: the batch.* values bio-batch used (its options or its
 * config, carried in the batches header) replace this program's own, so the checkpoint's config,
 * config.yaml and the tracked params say what the training saw. The sample size the header
 * carries becomes prep.size. */
static int record_upstream(struct bio_train *tr, const struct bio_value *bmeta, const char *src,
			   struct bio_error *err)
{
	struct bio_config *cfg = tr->cfg;
	char set[512];
	static const char *const ints[][2] = {{"epochs", "batch.epochs"},
					      {"batch_size", "batch.batch_size"},
					      {"seed", "batch.seed"}};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		int64_t v;
		if (bio_value_int(bio_value_get(bmeta, ints[i][0]), &v) == 0) {
			snprintf(set, sizeof set, "%s=%" PRId64, ints[i][1], v);
			if (bio_config_set(cfg, set, err))
				return bio_error_prefix(err, "%s: header '%s'", src, ints[i][0]);
		}
	}
	const char *split;
	size_t split_len;
	if (bio_value_str(bio_value_get(bmeta, "split"), &split, &split_len) == 0 &&
	    split_len < 256 && !memchr(split, 0, split_len)) {
		/* quoted: a split name is a string whatever it looks like */
		int ok = 1;
		for (size_t i = 0; i < split_len; i++)
			ok &= split[i] != '"' && split[i] != '\\';
		if (ok) {
			snprintf(set, sizeof set, "batch.split=\"%.*s\"", (int)split_len, split);
			if (bio_config_set(cfg, set, err))
				return bio_error_prefix(err, "%s: header 'split'", src);
		}
	}
	int drop;
	if (bio_value_bool(bio_value_get(bmeta, "drop_last"), &drop) == 0 &&
	    bio_config_set(cfg, drop ? "batch.drop_last=true" : "batch.drop_last=false", err))
		return bio_error_prefix(err, "%s: header 'drop_last'", src);
	int rc = record_synth(tr, bmeta, src, err);
	if (rc)
		return rc;
	const struct bio_value *shape = bio_value_get(bmeta, "shape");
	int64_t h;
	if (bio_value_len(shape) == 3 && bio_value_int(bio_value_at(shape, 1), &h) == 0) {
		/* (that the shape fits the model was checked with the header) */
		snprintf(set, sizeof set, "prep.size=%" PRId64, h);
		if (bio_config_set(cfg, set, err))
			return bio_error_prefix(err, "%s: header 'shape'", src);
	}
	return 0;
}

/* ---- set-up ---- */

struct bio_train *bio_train_new(struct bio_config *cfg, const struct bio_train_opts *o,
				struct bio_error *err)
{
	struct bio_train *tr = calloc(1, sizeof *tr);
	int64_t v;
	const char *s;
	if (!tr) {
		bio_error_set(err, BIO_ENOMEM, "out of memory");
		return NULL;
	}
	tr->cfg = cfg;
	tr->opts = *o;
	tr->one.size = 1;
	tr->dist = o->comm.nn ? o->comm.nn : &tr->one;
	tr->root = tr->dist->rank == 0;
	tr->first_begin = tr->first_step = -1.0;
	if (bio_config_get_bool(cfg, "training.half", &tr->half, err) ||
	    bio_config_get_bool(cfg, "training.best_full", &tr->best_full, err) ||
	    bio_config_get_int_range(cfg, "training.accumulate", 1, 1000000, &v, err))
		goto fail;
	tr->accumulate = (int)v;
	if (tr->dist->size > 1 && tr->accumulate > 1) {
		bio_error_set(err, BIO_EINVAL, "%s: training.accumulate %d: gradient accumulation is "
			      "not supported across ranks (mpirun); a larger batch_size is the "
			      "same training", bio_config_origin(cfg, "training.accumulate"),
			      tr->accumulate);
		goto fail;
	}
	if (bio_config_get_double_range(cfg, "training.clip_grad_norm", 0.0, 1e30, &tr->clip,
					err) ||
	    bio_config_get_int_range(cfg, "training.early_stopping.patience", 0, 1000000000,
				     &tr->es_patience, err) ||
	    bio_config_get_str(cfg, "training.early_stopping.metric", &s, err))
		goto fail;
	if (strcmp(s, "val_accuracy") != 0 && strcmp(s, "val_loss") != 0 &&
	    strcmp(s, "val_eer") != 0) {
		bio_error_set(err, BIO_EINVAL, "%s: training.early_stopping.metric: expected "
			      "val_accuracy, val_loss or val_eer, got '%s'",
			      bio_config_origin(cfg, "training.early_stopping.metric"), s);
		goto fail;
	}
	tr->es_max = strcmp(s, "val_accuracy") == 0;
	tr->es_eer = strcmp(s, "val_eer") == 0;
	if (tr->es_eer && !o->val_path) {
		bio_error_set(err, BIO_EINVAL, "%s: training.early_stopping.metric val_eer needs "
			      "validation samples (--val)",
			      bio_config_origin(cfg, "training.early_stopping.metric"));
		goto fail;
	}
	if (bio_config_get_str(cfg, "training.checkpoint_dir", &tr->dir, err))
		goto fail;
	if (o->output_dir)
		tr->dir = o->output_dir;
	if (bio_config_get_int(cfg, "experiment.seed", &tr->seed, err) ||
	    bio_model_spec_from_config(&tr->spec, cfg, err))
		goto fail;
	return tr;
fail:
	free(tr);
	return NULL;
}

/* "[a, b, ...]": sp's channels (modalities 0) or modality names (1), into out[cap]. */
static void spec_list(char *out, size_t cap, const struct bio_model_spec *sp, int modalities)
{
	int count = modalities ? sp->n_mod : sp->n_blocks;
	size_t n = 0;
	for (int i = 0; i < count && n + 1 < cap; i++) {
		int w = modalities ? snprintf(out + n, cap - n, "%s%.32s", i ? ", " : "[",
					      sp->modalities[i])
				   : snprintf(out + n, cap - n, "%s%d", i ? ", " : "[",
					      sp->channels[i]);
		n += w > 0 ? (size_t)w : 0;
	}
	if (n + 1 < cap)
		snprintf(out + n, cap - n, "%s]", count ? "" : "[");
}

/* The first field in which the checkpoint's model (a) differs from the configured one (b),
 * named by its config key with both values, as err. */
static int spec_differs(const struct bio_model_spec *a, const struct bio_model_spec *b,
			const char *ckpt, struct bio_error *err)
{
	char va[256] = "", vb[256] = "";
	const char *key = NULL;
#define SPEC_INT(field, name)                                                                   \
	if (!key && a->field != b->field) {                                                     \
		key = name;                                                                     \
		snprintf(va, sizeof va, "%d", (int)a->field);                                   \
		snprintf(vb, sizeof vb, "%d", (int)b->field);                                   \
	}
#define SPEC_FLOAT(field, name)                                                                 \
	if (!key && a->field != b->field) {                                                     \
		key = name;                                                                     \
		snprintf(va, sizeof va, "%g", (double)a->field);                                \
		snprintf(vb, sizeof vb, "%g", (double)b->field);                                \
	}
	if (a->n_classes != b->n_classes)
		return bio_error_set(err, BIO_EINVAL, "%s: the checkpoint's model has %d classes, "
				     "the batches carry %d labels (labels come from bio-scan: "
				     "scan.identity, scan.root)", ckpt, a->n_classes, b->n_classes);
	SPEC_INT(input_size, "model.input_size")
	SPEC_INT(kernel, "model.kernel")
	SPEC_INT(hidden, "model.hidden")
	SPEC_INT(embedding, "model.embedding")
	SPEC_FLOAT(dropout, "model.dropout")
	if (!key && a->fusion != b->fusion) {
		key = "model.fusion";
		snprintf(va, sizeof va, "%s", bio_fusion_name(a->fusion));
		snprintf(vb, sizeof vb, "%s", bio_fusion_name(b->fusion));
	}
	if (!key && a->loss != b->loss) {
		key = "training.loss";
		snprintf(va, sizeof va, "%s", bio_loss_name(a->loss));
		snprintf(vb, sizeof vb, "%s", bio_loss_name(b->loss));
	}
	if (!key && a->loss != BIO_LOSS_SOFTMAX) {
		SPEC_FLOAT(margin, "training.margin")
		SPEC_FLOAT(scale, "training.scale")
	}
	if (!key && a->fusion == BIO_FUSION_ATTENTION) {
		SPEC_FLOAT(attention_temperature, "model.attention_temperature")
	}
#undef SPEC_INT
#undef SPEC_FLOAT
	int same = !key && a->n_blocks == b->n_blocks;
	for (int i = 0; same && i < a->n_blocks; i++)
		same = a->channels[i] == b->channels[i];
	if (!key && !same) {
		key = "model.channels";
		spec_list(va, sizeof va, a, 0);
		spec_list(vb, sizeof vb, b, 0);
	}
	same = !key && a->n_mod == b->n_mod;
	for (int i = 0; same && i < a->n_mod; i++)
		same = strcmp(a->modalities[i], b->modalities[i]) == 0;
	if (!key && !same) {
		key = "model.modalities";
		spec_list(va, sizeof va, a, 1);
		spec_list(vb, sizeof vb, b, 1);
	}
	if (!key)
		return bio_error_set(err, BIO_EINVAL, "%s: the checkpoint's model differs from the "
				     "configured one (model.* keys or the number of classes)", ckpt);
	return bio_error_set(err, BIO_EINVAL, "%s: the checkpoint's model differs from the "
			     "configured one: %s %s in the checkpoint, %s configured", ckpt, key, va,
			     vb);
}

/* The model, optimizer and training state from checkpoint o->resume, checked against the
 * configured model, the batches' labels and the seed. */
static int load_resume(struct bio_train *tr, int64_t batch_size, struct bio_error *err)
{
	const char *resume = tr->opts.resume;
	struct bio_optim ck_o = tr->o;
	struct bio_sched ck_s = tr->s;
	int rc = bio_checkpoint_load(&tr->m, &ck_o, &ck_s, &tr->meta, resume, (int)batch_size, err);
	if (rc)
		return rc;
	if (tr->opts.verbose && !tr->meta.checksummed)
		say(&tr->opts.hooks, "%s: no checksums (written before checkpoints had them): loaded "
		    "unchecked", resume);
	if (!bio_model_spec_equal(&tr->m->spec, &tr->spec))
		return spec_differs(&tr->m->spec, &tr->spec, resume, err);
	if (tr->meta.n_labels != tr->n_labels)
		return bio_error_set(err, BIO_EINVAL, "%s: label names differ from the batches' (%zu "
				     "in the checkpoint, %zu in the batches; labels come from bio-scan: "
				     "scan.identity, scan.root)", resume, tr->meta.n_labels,
				     tr->n_labels);
	for (size_t i = 0; i < tr->meta.n_labels; i++)
		if (strcmp(tr->meta.labels[i], tr->label_names[i]) != 0)
			return bio_error_set(err, BIO_EINVAL, "%s: label names differ from the "
					     "batches' (label %zu: '%s' in the checkpoint, '%s' in the "
					     "batches; labels come from bio-scan: scan.identity, "
					     "scan.root)", resume, i, tr->meta.labels[i],
					     tr->label_names[i]);
	if (tr->meta.seed != (uint64_t)tr->seed)
		return bio_error_set(err, BIO_EINVAL, "%s: the checkpoint was trained with "
				     "experiment.seed %" PRIu64 ", the config says %" PRId64, resume,
				     tr->meta.seed, tr->seed);
	tr->o.m = ck_o.m;
	tr->o.v = ck_o.v;
	tr->o.n = ck_o.n;
	tr->o.step = ck_o.step;
	tr->o.lr = ck_o.lr;
	tr->s.lr = ck_s.lr;
	tr->s.epoch = ck_s.epoch;
	tr->s.best = ck_s.best;
	tr->s.num_bad = ck_s.num_bad;
	tr->s.t_max = ck_s.t_max;
	for (size_t i = 0; i < tr->meta.n_labels; i++)
		free(tr->meta.labels[i]);
	free(tr->meta.labels);
	tr->meta.labels = NULL;
	tr->meta.n_labels = 0;
	return 0;
}

/* The batches' header against the model: labels (copied into tr), modalities, sample shape,
 * batch size; the upstream values recorded in the config. */
static int read_batches_header(struct bio_train *tr, struct bio_header *bh,
			       struct bio_stream_reader *r, int64_t *batch_size,
			       int64_t *start_epoch, struct bio_error *err)
{
	const struct bio_model_spec *spec = &tr->spec;
	int rc;
	if ((rc = bio_header_read(bh, r, "batches",
				  BIO_HEADER_LABELS | BIO_HEADER_MODALITIES | BIO_HEADER_SHAPE, err)))
		return rc;
	const struct bio_value *bmeta = bh->meta;
	const char *src = bio_stream_reader_source(r);
	size_t n_labels = bh->n_labels;
	if (n_labels < 2)
		return bio_error_set(err, BIO_EFORMAT, "%s: the training set has %zu class%s; at "
				     "least 2 are needed", src, n_labels, n_labels == 1 ? "" : "es");
	if (!(tr->label_names = calloc(n_labels, sizeof *tr->label_names)))
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	tr->n_labels = n_labels;
	for (size_t i = 0; i < n_labels; i++)
		if (!(tr->label_names[i] = strdup(bh->labels[i])))
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
	for (int b = 0; b < spec->n_mod; b++)
		if (bio_header_modality(bh, spec->modalities[b]) < 0)
			return bio_error_set(err, BIO_EFORMAT, "%s: the batches carry no modality "
					     "'%s' (model.modalities)", src, spec->modalities[b]);
	if (bh->shape[1] != spec->input_size || bh->shape[2] != spec->input_size)
		return bio_error_set(err, BIO_EFORMAT, "%s: header meta 'shape': the batches hold "
				     "%lldx%lld samples, the model takes %dx%d (model.input_size, "
				     "prep.size)", src, (long long)bh->shape[2],
				     (long long)bh->shape[1], spec->input_size, spec->input_size);
	*batch_size = meta_int_or(bmeta, "batch_size", 0);
	if (*batch_size < 1 || *batch_size > 65536)
		return bio_error_set(err, BIO_EFORMAT, "%s: header: batch_size %" PRId64 " outside "
				     "1..65536", src, *batch_size);
	tr->epochs_total = meta_int_or(bmeta, "epochs", 0);
	*start_epoch = meta_int_or(bmeta, "start_epoch", 0);
	tr->spec.n_classes = (int)n_labels;
	return record_upstream(tr, bmeta, src, err);
}

/* Model, optimizer, scheduler and meta: fresh or from the checkpoint; the effective config
 * (with what ran upstream) and the batches' labels into the meta. */
static int setup_model(struct bio_train *tr, int64_t batch_size, struct bio_error *err)
{
	int rc;
	if ((rc = bio_optim_from_config(&tr->o, tr->cfg, err)) ||
	    (rc = bio_sched_from_config(&tr->s, tr->cfg, tr->epochs_total, err)))
		return rc;
	if (tr->opts.resume) {
		if ((rc = load_resume(tr, batch_size, err)))
			return rc;
	} else {
		if (!(tr->m = bio_model_new(&tr->spec, (int)batch_size, err)))
			return err ? err->code : BIO_ENOMEM;
		struct bio_rng init;
		bio_rng_seed1(&init, (uint64_t)tr->seed, KEY_INIT);
		bio_model_init_params(tr->m, &init);
		bio_optim_bind(&tr->o, tr->m);
		tr->meta.epoch = 0;
		tr->meta.best_epoch = -1;
		tr->meta.best_metric = 0.0;
		tr->meta.seed = (uint64_t)tr->seed;
		memcpy(tr->meta.rng, init.s, sizeof init.s);
	}
	free(tr->meta.config_yaml);
	tr->meta.config_yaml = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&buf, &len);
	if (!mf || bio_config_dump(tr->cfg, mf, err) || fclose(mf) != 0) {
		free(buf);
		return bio_error_set(err, BIO_EIO, "cannot dump the configuration");
	}
	tr->meta.config_yaml = buf;
	tr->meta.labels = tr->label_names;
	tr->meta.n_labels = tr->n_labels;
	tr->label_names = NULL;
	tr->meta.half = tr->half;
	return 0;
}

/* Validation set, checkpoint directory, batch buffers, threads, ranks, tracking run. */
static int setup_run(struct bio_train *tr, int64_t batch_size, struct bio_error *err)
{
	const struct bio_model_spec *spec = &tr->spec;
	int rc;
	if (tr->opts.val_path && tr->root &&
	    (rc = load_val(tr, tr->opts.val_path, tr->meta.labels, tr->meta.n_labels, err)))
		return rc;
	tr->have_val = tr->opts.val_path != NULL;
	if (tr->root && (rc = bio_fs_mkdir_p(tr->dir, err)) != 0)
		return rc;
	tr->last_path = bio_fs_path_join(tr->dir, "last.ckpt");
	tr->best_path = bio_fs_path_join(tr->dir, "best.ckpt");
	const size_t side2 = (size_t)spec->input_size * spec->input_size;
	for (int b = 0; b < spec->n_mod; b++)
		tr->in[b] = malloc((size_t)batch_size * side2 * sizeof(float));
	tr->labels = malloc((size_t)batch_size * sizeof(int64_t));
	tr->seen_label = calloc(tr->meta.n_labels, 1);
	if (!tr->last_path || !tr->best_path || !tr->labels || !tr->seen_label)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	for (int b = 0; b < spec->n_mod; b++)
		if (!tr->in[b])
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
	tr->m->timing = tr->opts.layer_times;
	if ((rc = bio_model_set_threads(tr->m, tr->opts.n_threads, err)))
		return rc;
	if (tr->dist->size > 1) {
		bio_model_set_dist(tr->m, tr->dist);
		if (tr->opts.comm.attach)
			tr->opts.comm.attach(tr->dist, tr->m);
	}
	/* a plain Adam step per batch: fc1's (most of the weights) done inside backward, so its
	 * gradient (a sixth of the training memory) is never formed; the same bits */
	if (tr->o.kind != BIO_OPTIM_SGD && tr->accumulate == 1 && tr->clip <= 0.0 &&
	    tr->dist->size <= 1) {
		bio_model_fuse_adam(tr->m, tr->o.m, tr->o.v, &tr->fused_c);
		tr->o.skip = tr->m->fused_skip;
		tr->o.n_skip = tr->m->n_fused;
		tr->fused = 1;
	}
	if (tr->root && (rc = track_start(tr, err)))
		return rc;
	if (tr->opts.register_name && !tr->run && tr->root)
		return bio_error_set(err, BIO_EINVAL, "--register needs tracking "
				     "(tracking.enabled: true)");
	return 0;
}

/* One batch record rec (record ri of r) of the epoch in progress: forward, loss, backward, the
 * ranks' gradients added, an optimizer step every training.accumulate batches. */
static int train_batch(struct bio_train *tr, const struct bio_header *bh,
		       struct bio_stream_reader *r, const struct bio_value *rec, uint64_t ri,
		       int64_t epoch, int64_t index, int64_t batch_size, double t_read,
		       struct bio_error *err)
{
	const struct bio_model_spec *spec = &tr->spec;
	const char *src = bio_stream_reader_source(r);
	const size_t side2 = (size_t)spec->input_size * spec->input_size;
	struct bio_tensor lt;
	int rc;
	if ((rc = bio_record_get_tensor(&lt, r, rec, "label", BIO_DTYPE_I64, 1, err)))
		return rc;
	int64_t nb = lt.shape[0];
	if (nb < 1 || nb > batch_size)
		return bio_error_set(err, BIO_EFORMAT, "%s: record %" PRIu64 ": batch of %" PRId64
				     " samples (batch size %" PRId64 ")", src, ri, nb, batch_size);
	memcpy(tr->labels, lt.data, (size_t)nb * sizeof(int64_t));
	if ((rc = bio_record_check_labels(bh, r, "label", tr->labels, (size_t)nb, 0, err)))
		return rc;
	const struct bio_value *ids = bio_value_get(rec, "ids");
	if (ids && (bio_value_type(ids) != BIO_V_ARRAY || bio_value_len(ids) != (size_t)nb))
		return bio_error_set(err, BIO_EFORMAT, "%s: record %" PRIu64 ": key 'ids': %zu ids "
				     "for a batch of %" PRId64 " labels", src, ri,
				     bio_value_type(ids) == BIO_V_ARRAY ? bio_value_len(ids) : 0, nb);
	for (int64_t i = 0; i < nb; i++) {
		if (!tr->seen_label[tr->labels[i]]) {
			tr->seen_label[tr->labels[i]] = 1;
			tr->n_seen_labels++;
		}
	}
	/* this rank's samples of the batch (all of them in one process) */
	int s0 = 0, n_own = (int)nb;
	if (tr->dist->size > 1) {
		bio_nn_dist_split(tr->dist, (int)nb);
		s0 = tr->dist->s0;
		n_own = tr->dist->n;
	}
	for (int b = 0; b < spec->n_mod; b++) {
		struct bio_tensor tv;
		if ((rc = bio_record_get_sample(&tv, bh, r, rec, spec->modalities[b], nb, err)))
			return rc;
		memcpy(tr->in[b], (const float *)tv.data + (size_t)s0 * side2,
		       (size_t)n_own * side2 * sizeof(float));
	}
	double t0 = bio_clock_now_s();
	tr->t_data += t0 - t_read;
	if (tr->first_begin < 0)
		tr->first_begin = t0 - tr->opts.t_launch;
	struct bio_rng drop;
	bio_rng_seed3(&drop, tr->meta.seed, KEY_DROP, (uint64_t)epoch, (uint64_t)index);
	bio_model_forward_rng(tr->m, (const float *const *)tr->in, n_own, 1, &drop);
	int correct = 0;
	double loss = bio_model_loss(tr->m, tr->labels + s0, n_own, 1.0f / tr->accumulate,
				     &correct);
	if (!isfinite(loss))
		return bio_error_set(err, BIO_ENAN, "%s: record %" PRIu64 ": epoch %" PRId64
				     " batch %" PRId64 ": the loss is not finite; stopped, last good "
				     "checkpoint kept", src, ri, epoch, index);
	double t1 = bio_clock_now_s();
	if (tr->fused)
		bio_optim_adam_consts(&tr->o, tr->o.step + 1, &tr->fused_c);
	bio_model_backward(tr->m, n_own, 1);
	/* the ranks' gradients added by the tree: each rank then holds one process's */
	comm_reduce(tr, tr->m->grads, tr->m->n_params);
	tr->pending++;
	if (tr->pending == tr->accumulate)
		optimizer_step(tr);
	memcpy(tr->meta.rng, drop.s, sizeof drop.s);
	double t2 = bio_clock_now_s();
	if (tr->first_step < 0)
		tr->first_step = t2 - tr->opts.t_launch;
	tr->t_fwd += t1 - t0;
	tr->t_bwd += t2 - t1;
	tr->loss_sum += loss * nb;
	tr->n_correct += correct;
	tr->n_samples += nb;
	tr->n_batches++;
	return 0;
}

/* The batch records of r, epoch after epoch from expect_epoch on. */
static int train_loop(struct bio_train *tr, const struct bio_header *bh,
		      struct bio_stream_reader *r, int64_t expect_epoch, int64_t batch_size,
		      struct bio_error *err)
{
	const struct bio_train_hooks *h = &tr->opts.hooks;
	const char *src = bio_stream_reader_source(r);
	const struct bio_value *rec;
	int rc, stopped = 0;
	int64_t n_records = 0, bpe = meta_int_or(bh->meta, "batches_per_epoch", -1);
	double t_read = bio_clock_now_s();
	if (h->training)
		h->training(h->ud);
	while (!stopped && (rc = bio_stream_read_record(r, &rec, err)) == 1) {
		n_records++;
		int64_t epoch, index;
		if ((rc = bio_record_get_int(&epoch, r, rec, "epoch", err)) ||
		    (rc = bio_record_get_int(&index, r, rec, "index", err)))
			return rc;
		uint64_t ri = bio_stream_reader_record_index(r);
		if (tr->in_epoch && epoch != tr->epoch) {
			double te = bio_clock_now_s();
			if ((rc = end_epoch(tr, &stopped, err)))
				return rc;
			if (stopped)
				break;
			/* the epoch's end (validation, checkpoints) is not the next epoch's data time */
			t_read += bio_clock_now_s() - te;
			expect_epoch = tr->epoch + 1;
		}
		if (!tr->in_epoch) {
			if (epoch != expect_epoch)
				return bio_error_set(err, BIO_EFORMAT, "%s: record %" PRIu64 ": batches "
						     "of epoch %" PRId64 " where epoch %" PRId64 " was "
						     "expected (resume needs bio-batch --start-epoch %"
						     PRId64 ")", src, ri, epoch, expect_epoch,
						     expect_epoch);
			begin_epoch(tr, epoch);
		}
		if (index != tr->n_batches)
			return bio_error_set(err, BIO_EFORMAT, "%s: record %" PRIu64 ": batch index %"
					     PRId64 " where %" PRId64 " was expected", src, ri, index,
					     tr->n_batches);
		if ((rc = train_batch(tr, bh, r, rec, ri, epoch, index, batch_size, t_read, err)))
			return rc;
		if (tr->root && h->progress)
			h->progress(h->ud, (unsigned long long)tr->n_batches,
				    bpe > 0 ? (unsigned long long)bpe : 0);
		t_read = bio_clock_now_s();
	}
	if (!stopped && rc < 0)
		return rc;
	if (!stopped && tr->in_epoch && (rc = end_epoch(tr, &stopped, err)))
		return rc;
	if (n_records == 0)
		return bio_error_set(err, BIO_EFORMAT, "%s: no training batches", src);
	return 0;
}

int bio_train_run(struct bio_train *tr, struct bio_stream_reader *r, struct bio_error *err)
{
	struct bio_error local;
	struct bio_header bh;
	int64_t batch_size = 0, start_epoch = 0;
	const char *src = bio_stream_reader_source(r), *resume = tr->opts.resume;
	int rc;
	if (!err)
		err = &local;
	memset(&bh, 0, sizeof bh);
	if ((rc = read_batches_header(tr, &bh, r, &batch_size, &start_epoch, err)) ||
	    (rc = setup_model(tr, batch_size, err)))
		goto out;
	int64_t expect_epoch = tr->meta.epoch;
	if (!resume && start_epoch != 0) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: the batches start at epoch %" PRId64 "; a "
				   "fresh run starts at 0 (use --resume CHECKPOINT to continue a run)",
				   src, start_epoch);
		goto out;
	}
	if (tr->epochs_total > 0 && expect_epoch >= tr->epochs_total) {
		rc = bio_error_set(err, BIO_EINVAL, "%s: the checkpoint has completed %" PRId64
				   " epochs; the batches stop at epoch %" PRId64 " (batch.epochs %"
				   PRId64 "): nothing to train (bio-batch --epochs above %" PRId64
				   " continues it)", resume ? resume : src, expect_epoch,
				   tr->epochs_total, tr->epochs_total, expect_epoch);
		goto out;
	}
	if ((rc = setup_run(tr, batch_size, err)) ||
	    (rc = train_loop(tr, &bh, r, expect_epoch, batch_size, err)) ||
	    (tr->root && (rc = track_end(tr, err))))
		goto out;
out:
	bio_header_destroy(&bh);
	if (rc == BIO_EPIPE) /* training writes no stream: not a reader that went away */
		rc = err->code = BIO_EIO;
	return rc ? train_fail(tr, rc) : 0;
}

void bio_train_say_times(const struct bio_train *tr)
{
	const struct bio_train_hooks *h = &tr->opts.hooks;
	if (!tr->root)
		return;
	if (tr->opts.verbose)
		say(h, "first step began %.1f ms and ended %.1f ms after start",
		    tr->first_begin * 1e3, tr->first_step * 1e3);
	if (tr->opts.layer_times && tr->m) {
		double tot = 0.0;
		for (int i = 0; i < BIO_MODEL_N_TIMERS; i++)
			tot += tr->m->timers[i];
		for (int i = 0; i < BIO_MODEL_N_TIMERS; i++)
			say(h, "layer time %-22s %8.3f s %5.1f%%", bio_model_timer_names[i],
			    tr->m->timers[i], tot > 0 ? 100.0 * tr->m->timers[i] / tot : 0.0);
	}
}

size_t bio_train_n_params(const struct bio_train *tr)
{
	return tr && tr->m ? tr->m->n_params : 0;
}

void bio_train_free(struct bio_train *tr)
{
	if (!tr)
		return;
	bio_track_run_free(tr->run);
	bio_model_free(tr->m);
	for (int b = 0; b < BIO_MODEL_MAX_MODS; b++) {
		free(tr->in[b]);
		free(tr->val.x[b]);
	}
	bio_free_strs(tr->label_names, tr->n_labels);
	BIO_FREE(tr->val.labels, tr->labels, tr->seen_label, tr->last_path, tr->best_path,
		 tr->spool);
	bio_ckpt_meta_destroy(&tr->meta);
	free(tr);
}
