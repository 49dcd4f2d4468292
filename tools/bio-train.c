/* bio-train: trains the two-branch model on a batches stream (bio-batch's output, stdin or
 * files), validates each epoch on a samples stream (--val), keeps the last and the best
 * checkpoints (atomic writes), stops early on a validation metric, and resumes from a checkpoint
 * (--resume) bit-identically, given the batch stream from the next epoch on
 * (bio-batch --start-epoch E). One line per epoch on stderr. SIGINT/SIGTERM finish the current
 * epoch, checkpoint and exit. */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bio/checkpoint.h"
#include "bio/clock.h"
#include "bio/config.h"
#include "bio/fs.h"
#include "bio/git.h"
#include "bio/header.h"
#include "bio/model.h"
#include "bio/nn.h"
#include "bio/optim.h"
#include "bio/rng.h"
#include "bio/stream.h"
#include "bio/track.h"
#include "bio/kernels.h"
#include "dist.h"
#include "tool.h"

#define KEY_INIT 0x696e6974u /* "init": RNG stream of the initial weights */
#define KEY_DROP 0x64726f70u /* "drop": RNG stream of a batch's dropout masks */
#define MAX_VAL_SAMPLES 10000000

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-train [OPTION]... [BATCHES]...\n"
		"Train the iris + fingerprint model on a batches stream (default: standard input)\n"
		"and write checkpoints.\n\n"
		"      --val FILE         validation samples stream (evaluated after every epoch;\n"
		"                         records of another split than \"val\" are skipped)\n"
		"      --resume CKPT      continue from a checkpoint; the batches must start at the\n"
		"                         epoch after it (bio-batch --start-epoch E)\n"
		"      --half             store checkpoint weights as f16 (training.half)\n"
		"      --full             best.ckpt with the optimizer state too, as last.ckpt\n"
		"                         (training.best_full; default: weights only)\n"
		"  -o, --output DIR       checkpoint directory (default training.checkpoint_dir);\n"
		"                         writes DIR/last.ckpt and DIR/best.ckpt\n"
		"      --layer-times      print a per-layer time breakdown at the end\n"
		"      --register NAME    register the run's checkpoints/ directory (best.ckpt) as a\n"
		"                         new version of model NAME in the tracking store\n"
		"      --alias ALIAS      with --register: point ALIAS (models:/NAME@ALIAS) at it\n"
		"      --sync-tracking DIR  send what runs of checkpoint directory DIR could not send\n"
		"                         to their tracking server (DIR/tracking), then exit\n"
		"      --push-tracking MLRUNS  send every run (and registered version) of file store\n"
		"                         MLRUNS to the tracking server at tracking.uri, then exit\n"
		BIO_TOOL_COMMON_HELP
		"\nConfig keys: model.* (architecture), training.* (optimizer, lr, scheduler,\n"
		"early_stopping, accumulate, clip_grad_norm, checkpoint_dir, half, best_full),\n"
		"experiment.seed, "
		"tracking.* (uri: a file store or http(s)://HOST:PORT of an MLflow server).\n"
		"See bio-train(1).\n");
}

struct val_set {
	size_t n;
	int n_mod;
	float *x[BIO_MODEL_MAX_MODS]; /* [n][S*S] per model modality */
	int64_t *labels;
	struct bio_track_run *run; /* NULL when tracking is off */
	const char *track_uri;
};

struct train {
	struct bio_tool *t;
	struct bio_model *m;
	struct bio_optim o;
	struct bio_sched s;
	struct bio_ckpt_meta meta;
	struct val_set val;
	int have_val;
	const char *dir;
	char *last_path, *best_path;
	int64_t epochs_total;
	int accumulate;
	double clip;
	int64_t es_patience;
	int es_max; /* early-stopping metric maximised */
	int layer_times;
	int fused;        /* Adam fused into fc1's backward (bio_model_fuse_adam) */
	struct bio_adam fused_c;
	int best_full;    /* training.best_full: best.ckpt with the optimizer state */
	int legend_done; /* the epoch lines' legend was printed */
	/* the epoch in progress */
	int64_t epoch;
	int in_epoch;
	int64_t n_batches, n_samples, n_correct, pending;
	double loss_sum;
	double t_data, t_fwd, t_bwd, t_start;
	unsigned char *seen_label;
	int64_t n_seen_labels;
	float *in[BIO_MODEL_MAX_MODS];
	int64_t *labels;
	struct bio_track_run *run; /* NULL when tracking is off */
	const char *track_uri;
	struct bio_track_opts track_opts;
	char *spool;               /* <dir>/tracking: the journal of a server run */
	int track_warned;          /* a server failure was reported (until it answers again) */
	struct bio_nn_dist *dist;  /* this process's rank (rank 0 of 1 without mpirun) */
	int root;                  /* rank 0: writes checkpoints, tracking and the epoch lines */
};

/* Like bio_tool_die, but first marks the tracking run FAILED. */
static _Noreturn void __attribute__((format(printf, 2, 3))) train_die(struct train *tr,
								   const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (tr->run && bio_track_run_end(tr->run, BIO_TRACK_FAILED, NULL) == 0)
		bio_track_flush_now(tr->run, NULL);
	bio_tool_die(tr->t, "%s", msg);
}

/* Loads the validation samples of path (its "val" split when records carry one): header and
 * records checked by the header module against the model and the training labels. */
static void load_val(struct train *tr, const char *path, char *const *labels, size_t n_labels)
{
	struct bio_error err;
	const char *paths[1] = {path};
	const struct bio_model_spec *sp = &tr->m->spec;
	struct bio_stream_limits lim;
	bio_tool_stream_limits(tr->t, &lim);
	struct bio_stream_reader *r = bio_stream_reader_open(paths, 1, &lim, &err);
	const struct bio_value *rec;
	struct bio_header h;
	if (!r || bio_header_read(&h, r, "samples",
				  BIO_HEADER_LABELS | BIO_HEADER_MODALITIES | BIO_HEADER_SHAPE, &err))
		bio_tool_die_err(tr->t, &err);
	char what[512];
	snprintf(what, sizeof what, "%s: the validation samples against the training batches",
		 path);
	if (bio_header_same_labels(&h, labels, n_labels, what, &err))
		bio_tool_die_err(tr->t, &err);
	for (int b = 0; b < sp->n_mod; b++)
		if (bio_header_modality(&h, sp->modalities[b]) < 0)
			bio_tool_die(tr->t, "%s: the validation samples carry no modality '%s' "
				     "(model.modalities)", path, sp->modalities[b]);
	if (h.shape[1] != sp->input_size || h.shape[2] != sp->input_size)
		bio_tool_die(tr->t, "%s: header meta 'shape': the validation samples are "
			     "%lldx%lld, the model takes %dx%d (model.input_size, prep.size)",
			     path, (long long)h.shape[2], (long long)h.shape[1], sp->input_size,
			     sp->input_size);
	size_t side2 = (size_t)sp->input_size * sp->input_size, cap = 0;
	struct val_set *v = &tr->val;
	v->n_mod = sp->n_mod;
	int rc;
	while ((rc = bio_stream_read_record(r, &rec, &err)) == 1) {
		if (v->n >= MAX_VAL_SAMPLES)
			bio_tool_die(tr->t, "%s: more than %d validation samples", path,
				     MAX_VAL_SAMPLES);
		if (v->n == cap) {
			cap = cap ? 2 * cap : 256;
			for (int b = 0; b < sp->n_mod; b++) {
				float *p = realloc(v->x[b], cap * side2 * sizeof(float));
				if (!p)
					bio_tool_die(tr->t, "%s: out of memory", path);
				v->x[b] = p;
			}
			int64_t *l = realloc(v->labels, cap * sizeof(int64_t));
			if (!l)
				bio_tool_die(tr->t, "%s: out of memory", path);
			v->labels = l;
		}
		const struct bio_value *split = bio_value_get(rec, "split");
		if (split && !bio_value_str_eq(split, "val"))
			continue; /* a whole samples stream: its validation split only */
		if (bio_record_get_label(&v->labels[v->n], &h, r, rec, "label", 0, &err))
			bio_tool_die_err(tr->t, &err);
		for (int b = 0; b < sp->n_mod; b++) {
			struct bio_tensor tv;
			if (bio_record_get_sample(&tv, &h, r, rec, sp->modalities[b], 0, &err))
				bio_tool_die_err(tr->t, &err);
			memcpy(v->x[b] + v->n * side2, tv.data, side2 * sizeof(float));
		}
		v->n++;
	}
	if (rc < 0)
		bio_tool_die_err(tr->t, &err);
	bio_header_destroy(&h);
	bio_stream_reader_free(r);
	if (v->n == 0)
		bio_tool_die(tr->t, "%s: no validation samples", path);
	tr->have_val = 1;
}

/* Mean loss and accuracy of the model in eval mode over the validation set. */
static void validate(struct train *tr, double *loss, double *acc)
{
	struct bio_model *m = tr->m;
	const size_t side2 = (size_t)m->spec.input_size * m->spec.input_size;
	double lsum = 0.0;
	int64_t correct = 0;
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
	}
	*loss = lsum / (double)tr->val.n;
	*acc = (double)correct / (double)tr->val.n;
}

/* ---- tracking ---- */

struct param_ctx {
	struct train *tr;
	int warned;
};

static int log_param_leaf(void *ud, const char *path, const char *value)
{
	struct param_ctx *pc = ud;
	struct bio_error err;
	if (bio_track_log_param(pc->tr->run, path, value, &err) && !pc->warned) {
		/* a resumed run whose config changed keeps its first params */
		bio_tool_warn(pc->tr->t, "tracking: %s", err.msg);
		pc->warned = 1;
	}
	return 0;
}

/* Sends what the tracking server has not got yet; a failure is a warning (once until it answers
 * again): the run stays in the journal and training goes on. now: try whatever the wait. */
static int track_flush(struct train *tr, int now)
{
	struct bio_error err;
	if (!tr->run)
		return 0;
	int rc = now ? bio_track_flush_now(tr->run, &err) : bio_track_flush(tr->run, &err);
	if (rc && !tr->track_warned) {
		bio_tool_warn(tr->t, "%s; training goes on", err.msg);
		tr->track_warned = 1;
	} else if (!rc && tr->track_warned) {
		fprintf(stderr, "bio-train: tracking server %s answers again\n", tr->track_uri);
		tr->track_warned = 0;
	}
	return rc;
}

static void track_metric(struct train *tr, const char *key, double value)
{
	struct bio_error err;
	if (tr->run && bio_track_log_metric(tr->run, key, value, tr->epoch, 0, &err))
		train_die(tr, "tracking: %s", err.msg);
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

/* Starts (or, on --resume, reopens) the tracking run: params = the flattened effective config,
 * tags, and the config as an artifact. The run id is kept in <checkpoint dir>/run_id. */
static void track_start(struct train *tr, const char *resume, int n_threads)
{
	const struct bio_config *cfg = tr->t->cfg;
	struct bio_error err;
	int enabled;
	const char *exp, *name;
	if (bio_config_get_bool(cfg, "tracking.enabled", &enabled, &err) ||
	    bio_config_get_str(cfg, "tracking.uri", &tr->track_uri, &err) ||
	    bio_config_get_str(cfg, "tracking.experiment", &exp, &err) ||
	    bio_config_get_str(cfg, "tracking.run_name", &name, &err))
		bio_tool_die_err(tr->t, &err);
	if (!enabled)
		return;
	if (bio_track_opts_from_config(&tr->track_opts, cfg, &err))
		bio_tool_die_err(tr->t, &err);
	tr->spool = bio_fs_path_join(tr->dir, "tracking");
	char id[128], *id_path = bio_fs_path_join(tr->dir, "run_id");
	if (!id_path || !tr->spool)
		bio_tool_die(tr->t, "out of memory");
	tr->track_opts.spool_dir = tr->spool;
	if (bio_track_uri_is_server(tr->track_uri) && access(tr->spool, F_OK) == 0) {
		/* what earlier runs here could not send */
		size_t n_runs, n_pending;
		if (bio_track_sync(&n_runs, &n_pending, tr->spool, &tr->track_opts, &err))
			bio_tool_warn(tr->t, "%s", err.msg);
	}
	if (resume) {
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
				bio_tool_warn(tr->t, "tracking: cannot reopen run %s (%s); starting a "
					      "new run", id, err.msg);
		}
		free(rid_path);
		free(rdir);
	}
	if (!tr->run && read_line(id, sizeof id, id_path) == 0) {
		/* a run into this folder before, not resumed: if it was killed, it still says
		 * RUNNING; mark it KILLED, as MLflow does */
		int rc = bio_track_run_close_stale(tr->track_uri, id, &err);
		if (rc == 1 && tr->t->verbose)
			fprintf(stderr, "bio-train: tracking: the earlier run %s was left RUNNING: "
				"marked KILLED\n", id);
	}
	if (!tr->run) {
		tr->run = bio_track_run_start_opts(tr->track_uri, &tr->track_opts, exp,
						   *name ? name : NULL, &err);
		if (!tr->run)
			bio_tool_die_err(tr->t, &err);
	}
	fprintf(stderr, "bio-train: tracking run %s of experiment '%s' in %s\n",
		bio_track_run_id(tr->run), exp, tr->track_uri);
	snprintf(id, sizeof id, "%s\n", bio_track_run_id(tr->run));
	if (bio_fs_write_atomic(id_path, id, strlen(id), NULL, 1, &err))
		train_die(tr, "%s", err.msg);
	free(id_path);
	struct param_ctx pc = {tr, 0};
	bio_config_foreach_leaf(cfg, log_param_leaf, &pc);
	char buf[64];
	snprintf(buf, sizeof buf, "%d", tr->m->spec.n_classes);
	log_param_leaf(&pc, "model.n_classes", buf);
	snprintf(buf, sizeof buf, "%zu", tr->m->n_params);
	log_param_leaf(&pc, "model.n_params", buf);
	if (bio_track_set_tag(tr->run, "mlflow.source.name", "bio-train", &err) ||
	    bio_track_set_tag(tr->run, "bio.version", BIO_VERSION, &err))
		train_die(tr, "tracking: %s", err.msg);
	snprintf(buf, sizeof buf, "%d", n_threads);
	bio_track_set_tag(tr->run, "bio.threads", buf, NULL);
	if (resume)
		bio_track_set_tag(tr->run, "bio.resumed_from", resume, NULL);
	/* the git commit of the working directory, when there is one */
	char commit[41];
	if (bio_git_head(commit, NULL) == 0)
		bio_track_set_tag(tr->run, "mlflow.source.git.commit", commit, NULL);
	char *cpath = bio_fs_path_join(tr->dir, "config.yaml");
	if (!cpath ||
	    bio_fs_write_atomic(cpath, tr->meta.config_yaml, strlen(tr->meta.config_yaml), NULL, 1,
				&err) ||
	    bio_track_log_artifact(tr->run, cpath, NULL, &err))
		train_die(tr, "tracking: %s", cpath ? err.msg : "out of memory");
	free(cpath);
	track_flush(tr, 0);
}

static void track_end(struct train *tr, const char *register_name, const char *alias)
{
	struct bio_error err;
	if (!tr->run)
		return;
	if (bio_track_log_artifact(tr->run, tr->best_path, "checkpoints", &err) ||
	    bio_track_log_artifact(tr->run, tr->last_path, "checkpoints", &err))
		train_die(tr, "tracking: %s", err.msg);
	if (register_name) {
		/* the directory, so that MLflow's download_artifacts("models:/NAME/V") works */
		int64_t version;
		err.msg[0] = '\0';
		if (bio_track_run_register(&version, tr->run, register_name, "checkpoints", alias,
					   &err))
			train_die(tr, "tracking: %s", err.msg);
		if (version > 0)
			fprintf(stderr, "bio-train: registered model %s version %" PRId64 "%s%s\n",
				register_name, version, alias ? " alias " : "", alias ? alias : "");
		else
			fprintf(stderr, "bio-train: model %s: registration waits for the tracking "
				"server: %s\n", register_name, err.msg);
	}
	if (bio_track_run_end(tr->run, stop_signal ? BIO_TRACK_KILLED : BIO_TRACK_FINISHED, &err))
		train_die(tr, "tracking: %s", err.msg);
	if (bio_track_flush_now(tr->run, &err))
		fprintf(stderr, "bio-train: the run is not complete on %s: %s\n", tr->track_uri,
			err.msg);
	else
		fprintf(stderr, "bio-train: tracked as run %s in %s (checkpoints/ among its "
			"artifacts)\n", bio_track_run_id(tr->run), tr->track_uri);
	bio_track_run_free(tr->run);
	tr->run = NULL;
}

/* --sync-tracking DIR: sends the journals of DIR/tracking (or DIR itself); 0 when all sent. */
static int sync_tracking(struct bio_tool *t, const char *dir)
{
	struct bio_error err;
	struct bio_track_opts o;
	if (bio_track_opts_from_config(&o, t->cfg, &err))
		bio_tool_die_err(t, &err);
	char *spool = bio_fs_path_join(dir, "tracking");
	if (!spool)
		bio_tool_die(t, "out of memory");
	const char *root = access(spool, F_OK) == 0 ? spool : dir;
	size_t n_runs, n_pending;
	int rc = bio_track_sync(&n_runs, &n_pending, root, &o, &err);
	if (rc == BIO_ENOTFOUND || (rc == 0 && n_runs == 0))
		bio_tool_die(t, "%s: no tracking journal (runs for a tracking server) there", dir);
	fprintf(stderr, "bio-train: tracking: %zu of %zu run%s of %s complete on the server\n",
		n_runs - n_pending, n_runs, n_runs == 1 ? "" : "s", root);
	if (rc)
		bio_tool_die(t, "%zu run%s not complete: %s", n_pending, n_pending == 1 ? "" : "s",
			     err.msg);
	free(spool);
	return 0;
}

/* --push-tracking STORE: sends a file store's runs and registry to the server at tracking.uri. */
static int push_tracking(struct bio_tool *t, const char *store)
{
	struct bio_error err;
	struct bio_track_opts o;
	const char *uri;
	if (bio_config_get_str(t->cfg, "tracking.uri", &uri, &err) ||
	    bio_track_opts_from_config(&o, t->cfg, &err))
		bio_tool_die_err(t, &err);
	if (!bio_track_uri_is_server(uri))
		bio_tool_usage_error(t, "--push-tracking needs tracking.uri of a tracking server "
				     "(http:// or https://), not '%s'", uri);
	size_t n_runs, n_pending;
	int rc = bio_track_push(&n_runs, &n_pending, store, uri, &o, &err);
	if (rc && n_runs == 0)
		bio_tool_die_err(t, &err);
	fprintf(stderr, "bio-train: tracking: %zu of %zu run%s of %s complete on %s\n",
		n_runs - n_pending, n_runs, n_runs == 1 ? "" : "s", store, uri);
	if (rc)
		bio_tool_die(t, "%zu run%s not complete: %s", n_pending, n_pending == 1 ? "" : "s",
			     err.msg);
	return 0;
}

static void optimizer_step(struct train *tr)
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
static void save(struct train *tr, const char *path, int full)
{
	struct bio_error err;
	if (bio_checkpoint_save(path, tr->m, full ? &tr->o : NULL, full ? &tr->s : NULL, &tr->meta,
				&err))
		train_die(tr, "%s", err.msg);
}

/* Ends the epoch in progress: pending optimizer step, validation, scheduler, early stopping,
 * checkpoints. Returns 1 when training must stop. */
static int end_epoch(struct train *tr)
{
	if (tr->pending)
		optimizer_step(tr);
	if (tr->n_seen_labels < 2)
		train_die(tr, "epoch %" PRId64 ": the training set holds a single class; "
			     "nothing to learn", tr->epoch);
	double tl = tr->loss_sum / (double)tr->n_samples;
	double ta = (double)tr->n_correct / (double)tr->n_samples;
	double vl = NAN, va = NAN, t_val = bio_clock_now_s();
	if (tr->have_val) {
		/* rank 0 holds the validation set; every rank takes its figures */
		double v[2] = {NAN, NAN};
		if (tr->root)
			validate(tr, &v[0], &v[1]);
		bio_dist_bcast(tr->dist, v, sizeof v, 0);
		vl = v[0];
		va = v[1];
		if (!isfinite(vl))
			train_die(tr, "epoch %" PRId64 ": validation loss is not finite; last "
				     "good checkpoint kept", tr->epoch);
	}
	t_val = bio_clock_now_s() - t_val;
	double lr = tr->o.lr;
	double elapsed = bio_clock_now_s() - tr->t_start;
	double metric_loss = tr->have_val ? vl : tl, metric_acc = tr->have_val ? va : ta;
	double metric = tr->es_max ? metric_acc : metric_loss;
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
	int stop = bio_dist_any(tr->dist, stop_signal != 0); /* every rank stops at the same epoch */
	bio_tool_progress_end(tr->t);
	if (!tr->legend_done && tr->root) {
		/* once per process: what the fields of the epoch lines are */
		tr->legend_done = 1;
		fprintf(stderr,
			"bio-train: each epoch: loss, acc on the training batches%s; lr; samples/s "
			"trained; time in all (data, forward, backward%s); rss = peak memory; "
			"* = best so far by %s (best.ckpt)\n",
			tr->have_val ? "; val_loss, val_acc on --val" : " (no --val)",
			tr->have_val ? ", val" : "",
			tr->have_val ? (tr->es_max ? "val_acc" : "val_loss")
				     : (tr->es_max ? "training acc" : "training loss"));
	}
	char val_part[64] = "", val_time[32] = "";
	if (tr->have_val && tr->root) {
		snprintf(val_part, sizeof val_part, " val_loss %.4f val_acc %.4f", vl, va);
		snprintf(val_time, sizeof val_time, " val %.2fs", t_val);
	}
	if (tr->root)
	fprintf(stderr,
		"bio-train: epoch %" PRId64 "/%" PRId64 " loss %.4f acc %.4f%s lr %.3g samples/s "
		"%.1f time %.2fs (data %.2fs forward %.2fs backward %.2fs%s) rss %ld MiB%s\n",
		tr->epoch + 1, tr->epochs_total, tl, ta, val_part, lr,
		(double)tr->n_samples / (tr->t_fwd + tr->t_bwd + tr->t_data), elapsed, tr->t_data,
		tr->t_fwd, tr->t_bwd, val_time, peak_rss_kib() / 1024, improved ? " *" : "");
	track_metric(tr, "train_loss", tl);
	track_metric(tr, "train_accuracy", ta);
	if (tr->have_val) {
		track_metric(tr, "val_loss", vl);
		track_metric(tr, "val_accuracy", va);
	}
	track_metric(tr, "lr", lr);
	track_metric(tr, "data_load_time", tr->t_data);
	track_metric(tr, "forward_time", tr->t_fwd);
	track_metric(tr, "backward_time", tr->t_bwd);
	track_metric(tr, "val_time", t_val);
	track_metric(tr, "epoch_time", elapsed);
	track_metric(tr, "samples_per_s", (double)tr->n_samples / (tr->t_fwd + tr->t_bwd + tr->t_data));
	track_metric(tr, "peak_rss", (double)peak_rss_kib() * 1024.0);
	track_flush(tr, 0);
	/* best before last: a crash between the two leaves the older last.ckpt, and resuming from
	 * it redoes this epoch and rewrites the same best.ckpt. best.ckpt holds the weights only
	 * (training.best_full, --full: the optimizer state too, and then the same bytes are not
	 * written twice: last.ckpt becomes a second name of best.ckpt's file). */
	if (!tr->root) {
		/* (rank 0 writes the checkpoints) */
	} else if (improved && tr->best_full) {
		struct bio_error err;
		save(tr, tr->best_path, 1);
		if (bio_checkpoint_link(tr->best_path, tr->last_path, &err))
			train_die(tr, "%s", err.msg);
	} else {
		if (improved)
			save(tr, tr->best_path, 0);
		save(tr, tr->last_path, 1);
	}
	tr->in_epoch = 0;
	if (stop) {
		if (tr->root)
		fprintf(stderr,
			"bio-train: stopped by signal %d after epoch %" PRId64 "; resume with "
			"bio-batch --start-epoch %" PRId64 " ... | bio-train --resume %s\n",
			(int)stop_signal, tr->epoch + 1, tr->epoch + 1, tr->last_path);
		return 1;
	}
	if (tr->es_patience > 0 && tr->meta.bad_epochs >= tr->es_patience) {
		if (tr->root)
		fprintf(stderr, "bio-train: early stopping after epoch %" PRId64 " (best epoch %" PRId64
			", %s %.4f)\n", tr->epoch + 1, tr->meta.best_epoch + 1,
			tr->es_max ? "val_accuracy" : "val_loss", tr->meta.best_metric);
		return 1;
	}
	return 0;
}

static void begin_epoch(struct train *tr, int64_t epoch)
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

static int64_t meta_int_or(const struct bio_value *meta, const char *key, int64_t def)
{
	int64_t v;
	return bio_value_int(bio_value_get(meta, key), &v) ? def : v;
}

struct synth_rec {
	struct bio_tool *t;
	const char *src;
	const struct bio_config *from; /* the base with the header's overlay */
	const char *name;              /* that overlay's name, as origins start */
};

static int synth_leaf(void *ud, const char *path, const char *value)
{
	struct synth_rec *r = ud;
	struct bio_error err = {0};
	char set[1024];
	if (strncmp(path, "synth.", 6) != 0) {
		if (!strncmp(bio_config_origin(r->from, path), r->name, strlen(r->name)))
			bio_tool_die(r->t, "%s: header 'synth_yaml': %s: only synth.* keys belong "
				     "there", r->src, path);
		return 0;
	}
	if (snprintf(set, sizeof set, "%s=%s", path, value) >= (int)sizeof set ||
	    bio_config_set(r->t->cfg, set, &err))
		bio_tool_die(r->t, "%s: header 'synth_yaml': %s: %s", r->src, path,
			     err.msg[0] ? err.msg : "value too long");
	return 0;
}

/* The synth.* configuration the images were made with (bio-synth's synth.yaml, carried by
 * bio-scan's header as "synth_yaml") replaces this program's own synth.* in what it records. The
 * text is checked as a config overlay on the built-in base; keys outside synth.* are refused. */
static void record_synth(struct bio_tool *t, const struct bio_value *bmeta, const char *src)
{
	const char *text;
	size_t len;
	if (bio_value_str(bio_value_get(bmeta, "synth_yaml"), &text, &len) != 0)
		return;
	struct bio_error err = {0};
	struct bio_config *c = bio_tool_base_config(t);
	char name[512];
	snprintf(name, sizeof name, "%s: header 'synth_yaml'", src);
	if (bio_config_load_overlay(c, name, text, len, &err))
		bio_tool_die_err(t, &err);
	struct synth_rec r = {t, src, c, name};
	bio_config_foreach_leaf(c, synth_leaf, &r);
	bio_config_free(c);
}

/* What ran upstream is what is recorded: the batch.* values bio-batch used (its options or its
 * config, carried in the batches header) replace this program's own, so the checkpoint's config,
 * config.yaml and the tracked params say what the training saw. The sample size the header
 * carries becomes prep.size. */
static void record_upstream(struct bio_tool *t, const struct bio_value *bmeta, const char *src)
{
	struct bio_error err = {0};
	char set[512];
	static const char *const ints[][2] = {{"epochs", "batch.epochs"},
					      {"batch_size", "batch.batch_size"},
					      {"seed", "batch.seed"}};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		int64_t v;
		if (bio_value_int(bio_value_get(bmeta, ints[i][0]), &v) == 0) {
			snprintf(set, sizeof set, "%s=%" PRId64, ints[i][1], v);
			if (bio_config_set(t->cfg, set, &err))
				bio_tool_die(t, "%s: header '%s': %s", src, ints[i][0], err.msg);
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
			if (bio_config_set(t->cfg, set, &err))
				bio_tool_die(t, "%s: header 'split': %s", src, err.msg);
		}
	}
	int drop;
	if (bio_value_bool(bio_value_get(bmeta, "drop_last"), &drop) == 0 &&
	    bio_config_set(t->cfg, drop ? "batch.drop_last=true" : "batch.drop_last=false", &err))
		bio_tool_die(t, "%s: header 'drop_last': %s", src, err.msg);
	record_synth(t, bmeta, src);
	const struct bio_value *shape = bio_value_get(bmeta, "shape");
	int64_t h;
	if (bio_value_len(shape) == 3 && bio_value_int(bio_value_at(shape, 1), &h) == 0) {
		/* (that the shape fits the model was checked with the header) */
		snprintf(set, sizeof set, "prep.size=%" PRId64, h);
		if (bio_config_set(t->cfg, set, &err))
			bio_tool_die(t, "%s: header 'shape': %s", src, err.msg);
	}
}

int main(int argc, char **argv)
{
	enum { OPT_VAL = 0x2000, OPT_RESUME, OPT_HALF, OPT_FULL, OPT_LAYER_TIMES, OPT_REGISTER,
	       OPT_ALIAS, OPT_SYNC, OPT_PUSH };
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"val", required_argument, 0, OPT_VAL},
		{"resume", required_argument, 0, OPT_RESUME},
		{"half", no_argument, 0, OPT_HALF},
		{"full", no_argument, 0, OPT_FULL},
		{"layer-times", no_argument, 0, OPT_LAYER_TIMES},
		{"register", required_argument, 0, OPT_REGISTER},
		{"alias", required_argument, 0, OPT_ALIAS},
		{"sync-tracking", required_argument, 0, OPT_SYNC},
		{"push-tracking", required_argument, 0, OPT_PUSH},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct train tr;
	memset(&tr, 0, sizeof tr);
	const char *val_path = NULL, *resume = NULL, *register_name = NULL, *alias = NULL;
	const char *sync_dir = NULL, *push_store = NULL;
	int half = 0, opt;
	double t_launch = bio_clock_now_s();
	bio_tool_init(&t, "bio-train", argc, argv);
	tr.t = &t;
	static struct bio_nn_dist dist;
	{
		struct bio_error derr = {0};
		if (bio_dist_init(&dist, &argc, &argv, &derr))
			bio_tool_die_err(&t, &derr);
	}
	tr.dist = &dist;
	tr.root = dist.rank == 0;
	while ((opt = getopt_long(argc, argv, BIO_TOOL_SHORT_OPTS, long_opts, NULL)) != -1) {
		if (bio_tool_common_opt(&t, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VAL:
			val_path = optarg;
			break;
		case OPT_RESUME:
			resume = optarg;
			break;
		case OPT_HALF:
			bio_tool_option_key(&t, "--half", "training.half", "true");
			break;
		case OPT_FULL:
			bio_tool_option_key(&t, "--full", "training.best_full", "true");
			break;
		case OPT_LAYER_TIMES:
			tr.layer_times = 1;
			break;
		case OPT_REGISTER:
			register_name = optarg;
			break;
		case OPT_ALIAS:
			alias = optarg;
			break;
		case OPT_SYNC:
			sync_dir = optarg;
			break;
		case OPT_PUSH:
			push_store = optarg;
			break;
		default:
			bio_tool_bad_option(&t, argv, BIO_TOOL_SHORT_OPTS, long_opts);
		}
	}
	bio_tool_load_config(&t);
	{
		struct bio_error kerr = {0};
		if (bio_kernels_init(&kerr) != 0)
			bio_tool_die_err(&t, &kerr);
		if (t.verbose)
			bio_tool_warn(&t, "%s", bio_kernels_describe());
	}
	struct bio_error err;
	if (alias && !register_name)
		bio_tool_usage_error(&t, "--alias needs --register");
	if (alias && bio_track_check_alias(alias, &err))
		bio_tool_usage_error(&t, "%s", err.msg);
	if (dist.size > 1) {
		if (sync_dir || push_store)
			bio_tool_usage_error(&t, "--sync-tracking and --push-tracking run in one "
					     "process, not under mpirun");
		if (optind >= argc || strcmp(argv[optind], "-") == 0)
			bio_tool_usage_error(&t, "under mpirun every rank reads the batches: give "
					     "them as a file (bio-batch -o FILE), not standard input");
	}
	if (sync_dir || push_store) {
		if (optind < argc || (sync_dir && push_store))
			bio_tool_usage_error(&t, "--sync-tracking and --push-tracking take no batches "
					     "and go alone");
		if (sync_dir)
			sync_tracking(&t, sync_dir);
		else
			push_tracking(&t, push_store);
		bio_config_free(t.cfg);
		return 0;
	}
	const struct bio_config *cfg = t.cfg;
	int64_t v;
	const char *s;
	if (bio_config_get_bool(cfg, "training.half", &half, &err) ||
	    bio_config_get_bool(cfg, "training.best_full", &tr.best_full, &err))
		bio_tool_die_err(&t, &err);
	if (bio_config_get_int_range(cfg, "training.accumulate", 1, 1000000, &v, &err))
		bio_tool_die_err(&t, &err);
	tr.accumulate = (int)v;
	if (dist.size > 1 && tr.accumulate > 1)
		bio_tool_die(&t, "%s: training.accumulate %d: gradient accumulation is not "
			     "supported across ranks (mpirun); a larger batch_size is the same "
			     "training", bio_config_origin(cfg, "training.accumulate"), tr.accumulate);
	if (bio_config_get_double_range(cfg, "training.clip_grad_norm", 0.0, 1e30, &tr.clip,
					&err) ||
	    bio_config_get_int_range(cfg, "training.early_stopping.patience", 0, 1000000000,
				     &tr.es_patience, &err) ||
	    bio_config_get_str(cfg, "training.early_stopping.metric", &s, &err))
		bio_tool_die_err(&t, &err);
	if (strcmp(s, "val_accuracy") != 0 && strcmp(s, "val_loss") != 0)
		bio_tool_die(&t, "%s: training.early_stopping.metric: expected val_accuracy or "
			     "val_loss, got '%s'", bio_config_origin(cfg, "training.early_stopping.metric"),
			     s);
	tr.es_max = strcmp(s, "val_accuracy") == 0;
	if (bio_config_get_str(cfg, "training.checkpoint_dir", &tr.dir, &err))
		bio_tool_die_err(&t, &err);
	if (t.output)
		tr.dir = t.output;
	int64_t seed;
	if (bio_config_get_int(cfg, "experiment.seed", &seed, &err))
		bio_tool_die_err(&t, &err);
	struct bio_model_spec spec;
	if (bio_model_spec_from_config(&spec, cfg, &err))
		bio_tool_die_err(&t, &err);

	/* the batches stream */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	const struct bio_value *bmeta, *rec;
	struct bio_header bh;
	if (bio_header_read(&bh, r, "batches",
			    BIO_HEADER_LABELS | BIO_HEADER_MODALITIES | BIO_HEADER_SHAPE, &err))
		bio_tool_die_err(&t, &err);
	bmeta = bh.meta;
	const char *src = bio_stream_reader_source(r);
	size_t n_labels = bh.n_labels;
	if (n_labels < 2)
		bio_tool_die(&t, "%s: the training set has %zu class%s; at least 2 are needed", src,
			     n_labels, n_labels == 1 ? "" : "es");
	char **labels = calloc(n_labels, sizeof *labels); /* tr.meta's own copy */
	if (!labels)
		bio_tool_die(&t, "out of memory");
	for (size_t i = 0; i < n_labels; i++)
		if (!(labels[i] = strdup(bh.labels[i])))
			bio_tool_die(&t, "out of memory");
	for (int b = 0; b < spec.n_mod; b++)
		if (bio_header_modality(&bh, spec.modalities[b]) < 0)
			bio_tool_die(&t, "%s: the batches carry no modality '%s' (model.modalities)",
				     src, spec.modalities[b]);
	if (bh.shape[1] != spec.input_size || bh.shape[2] != spec.input_size)
		bio_tool_die(&t, "%s: header meta 'shape': the batches hold %lldx%lld samples, the "
			     "model takes %dx%d (model.input_size, prep.size)", src,
			     (long long)bh.shape[2], (long long)bh.shape[1], spec.input_size,
			     spec.input_size);
	int64_t batch_size = meta_int_or(bmeta, "batch_size", 0);
	if (batch_size < 1 || batch_size > 65536)
		bio_tool_die(&t, "%s: header: batch_size %" PRId64 " outside 1..65536", src,
			     batch_size);
	tr.epochs_total = meta_int_or(bmeta, "epochs", 0);
	int64_t start_epoch = meta_int_or(bmeta, "start_epoch", 0);
	spec.n_classes = (int)n_labels;
	record_upstream(&t, bmeta, src);

	/* model, optimizer, scheduler: fresh or from the checkpoint */
	if (bio_optim_from_config(&tr.o, cfg, &err) ||
	    bio_sched_from_config(&tr.s, cfg, tr.epochs_total, &err))
		bio_tool_die_err(&t, &err);
	if (resume) {
		struct bio_optim ck_o = tr.o;
		struct bio_sched ck_s = tr.s;
		if (bio_checkpoint_load(&tr.m, &ck_o, &ck_s, &tr.meta, resume, (int)batch_size, &err))
			bio_tool_die_err(&t, &err);
		if (t.verbose && !tr.meta.checksummed)
			fprintf(stderr, "bio-train: %s: no checksums (written before checkpoints had "
				"them): loaded unchecked\n", resume);
		if (!bio_model_spec_equal(&tr.m->spec, &spec))
			bio_tool_die(&t, "%s: the checkpoint's model differs from the configured one "
				     "(model.* keys or the number of classes)", resume);
		if (tr.meta.n_labels != n_labels)
			bio_tool_die(&t, "%s: label names differ from the batches'", resume);
		for (size_t i = 0; i < n_labels; i++)
			if (strcmp(tr.meta.labels[i], labels[i]) != 0)
				bio_tool_die(&t, "%s: label names differ from the batches' (label %zu: "
					     "'%s' vs '%s')", resume, i, tr.meta.labels[i], labels[i]);
		if (tr.meta.seed != (uint64_t)seed)
			bio_tool_die(&t, "%s: the checkpoint was trained with experiment.seed %" PRIu64
				     ", the config says %" PRId64, resume, tr.meta.seed, seed);
		tr.o.m = ck_o.m;
		tr.o.v = ck_o.v;
		tr.o.n = ck_o.n;
		tr.o.step = ck_o.step;
		tr.o.lr = ck_o.lr;
		tr.s.lr = ck_s.lr;
		tr.s.epoch = ck_s.epoch;
		tr.s.best = ck_s.best;
		tr.s.num_bad = ck_s.num_bad;
		tr.s.t_max = ck_s.t_max;
		for (size_t i = 0; i < tr.meta.n_labels; i++)
			free(tr.meta.labels[i]);
		free(tr.meta.labels);
	} else {
		if (!(tr.m = bio_model_new(&spec, (int)batch_size, &err)))
			bio_tool_die_err(&t, &err);
		struct bio_rng init;
		bio_rng_seed1(&init, (uint64_t)seed, KEY_INIT);
		bio_model_init_params(tr.m, &init);
		bio_optim_bind(&tr.o, tr.m);
		tr.meta.epoch = 0;
		tr.meta.best_epoch = -1;
		tr.meta.best_metric = 0.0;
		tr.meta.seed = (uint64_t)seed;
		memcpy(tr.meta.rng, init.s, sizeof init.s);
	}
	free(tr.meta.config_yaml);
	tr.meta.config_yaml = NULL;
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *mf = open_memstream(&buf, &len);
		if (!mf || bio_config_dump(cfg, mf, &err) || fclose(mf) != 0)
			bio_tool_die(&t, "cannot dump the configuration");
		tr.meta.config_yaml = buf;
	}
	tr.meta.labels = labels;
	tr.meta.n_labels = n_labels;
	tr.meta.half = half;
	int64_t expect_epoch = tr.meta.epoch;
	if (!resume && start_epoch != 0)
		bio_tool_die(&t, "%s: the batches start at epoch %" PRId64 "; a fresh run starts at 0 "
			     "(use --resume CHECKPOINT to continue a run)", src, start_epoch);
	if (tr.epochs_total > 0 && expect_epoch >= tr.epochs_total)
		bio_tool_die(&t, "%s: the checkpoint has completed %" PRId64 " epochs; the batches "
			     "stop at epoch %" PRId64 ": nothing to train", resume ? resume : src,
			     expect_epoch, tr.epochs_total);

	if (val_path && tr.root)
		load_val(&tr, val_path, labels, n_labels);
	tr.have_val = val_path != NULL;
	if (tr.root && bio_fs_mkdir_p(tr.dir, &err) != 0)
		bio_tool_die_err(&t, &err);
	tr.last_path = bio_fs_path_join(tr.dir, "last.ckpt");
	tr.best_path = bio_fs_path_join(tr.dir, "best.ckpt");
	const size_t side2 = (size_t)spec.input_size * spec.input_size;
	for (int b = 0; b < spec.n_mod; b++)
		tr.in[b] = malloc((size_t)batch_size * side2 * sizeof(float));
	tr.labels = malloc((size_t)batch_size * sizeof(int64_t));
	tr.seen_label = calloc(n_labels, 1);
	if (!tr.last_path || !tr.best_path || !tr.labels || !tr.seen_label)
		bio_tool_die(&t, "out of memory");
	for (int b = 0; b < spec.n_mod; b++)
		if (!tr.in[b])
			bio_tool_die(&t, "out of memory");
	tr.m->timing = tr.layer_times;
	if (bio_model_set_threads(tr.m, t.n_threads, &err))
		bio_tool_die_err(&t, &err);
	if (dist.size > 1) {
		bio_model_set_dist(tr.m, &dist);
		bio_dist_attach(&dist, tr.m);
	}
	/* a plain Adam step per batch: fc1's (most of the weights) done inside backward, so its
	 * gradient (a sixth of the training memory) is never formed; the same bits */
	if (tr.o.kind != BIO_OPTIM_SGD && tr.accumulate == 1 && tr.clip <= 0.0 && dist.size <= 1) {
		bio_model_fuse_adam(tr.m, tr.o.m, tr.o.v, &tr.fused_c);
		tr.o.skip = tr.m->fused_skip;
		tr.o.n_skip = tr.m->n_fused;
		tr.fused = 1;
	}
	if (tr.root)
		track_start(&tr, resume, t.n_threads);
	if (register_name && !tr.run && tr.root)
		bio_tool_die(&t, "--register needs tracking (tracking.enabled: true)");

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	int rc, stopped = 0;
	int64_t n_records = 0, bpe = meta_int_or(bmeta, "batches_per_epoch", -1);
	double t_read = bio_clock_now_s(), first_step = -1.0, first_begin = -1.0;
	while (!stopped && (rc = bio_stream_read_record(r, &rec, &err)) == 1) {
		n_records++;
		int64_t epoch, index;
		if (bio_record_get_int(&epoch, r, rec, "epoch", &err) ||
		    bio_record_get_int(&index, r, rec, "index", &err))
			train_die(&tr, "%s", err.msg);
		uint64_t ri = bio_stream_reader_record_index(r);
		if (tr.in_epoch && epoch != tr.epoch) {
			double te = bio_clock_now_s();
			if (end_epoch(&tr)) {
				stopped = 1;
				break;
			}
			/* the epoch's end (validation, checkpoints) is not the next epoch's data time */
			t_read += bio_clock_now_s() - te;
			expect_epoch = tr.epoch + 1;
		}
		if (!tr.in_epoch) {
			if (epoch != expect_epoch)
				train_die(&tr, "%s: record %" PRIu64 ": batches of epoch %" PRId64
					     " where epoch %" PRId64 " was expected (resume needs "
					     "bio-batch --start-epoch %" PRId64 ")", src, ri, epoch,
					     expect_epoch, expect_epoch);
			begin_epoch(&tr, epoch);
		}
		if (index != tr.n_batches)
			train_die(&tr, "%s: record %" PRIu64 ": batch index %" PRId64 " where %" PRId64
				     " was expected", src, ri, index, tr.n_batches);
		struct bio_tensor lt;
		if (bio_record_get_tensor(&lt, r, rec, "label", BIO_DTYPE_I64, 1, &err))
			train_die(&tr, "%s", err.msg);
		int64_t nb = lt.shape[0];
		if (nb < 1 || nb > batch_size)
			train_die(&tr, "%s: record %" PRIu64 ": batch of %" PRId64 " samples (batch "
				     "size %" PRId64 ")", src, ri, nb, batch_size);
		memcpy(tr.labels, lt.data, (size_t)nb * sizeof(int64_t));
		if (bio_record_check_labels(&bh, r, "label", tr.labels, (size_t)nb, 0, &err))
			train_die(&tr, "%s", err.msg);
		const struct bio_value *ids = bio_value_get(rec, "ids");
		if (ids && (bio_value_type(ids) != BIO_V_ARRAY || bio_value_len(ids) != (size_t)nb))
			train_die(&tr, "%s: record %" PRIu64 ": key 'ids': %zu ids for a batch of %"
				     PRId64 " labels", src, ri,
				     bio_value_type(ids) == BIO_V_ARRAY ? bio_value_len(ids) : 0, nb);
		for (int64_t i = 0; i < nb; i++) {
			if (!tr.seen_label[tr.labels[i]]) {
				tr.seen_label[tr.labels[i]] = 1;
				tr.n_seen_labels++;
			}
		}
		/* this rank's samples of the batch (all of them in one process) */
		int s0 = 0, n_own = (int)nb;
		if (dist.size > 1) {
			bio_nn_dist_split(&dist, (int)nb);
			s0 = dist.s0;
			n_own = dist.n;
		}
		for (int b = 0; b < spec.n_mod; b++) {
			struct bio_tensor tv;
			if (bio_record_get_sample(&tv, &bh, r, rec, spec.modalities[b], nb, &err))
				train_die(&tr, "%s", err.msg);
			memcpy(tr.in[b], (const float *)tv.data + (size_t)s0 * side2,
			       (size_t)n_own * side2 * sizeof(float));
		}
		double t0 = bio_clock_now_s();
		tr.t_data += t0 - t_read;
		if (first_begin < 0)
			first_begin = t0 - t_launch;
		struct bio_rng drop;
		bio_rng_seed3(&drop, tr.meta.seed, KEY_DROP, (uint64_t)epoch, (uint64_t)index);
		bio_model_forward_rng(tr.m, (const float *const *)tr.in, n_own, 1, &drop);
		int correct = 0;
		double loss = bio_model_loss(tr.m, tr.labels + s0, n_own, 1.0f / tr.accumulate,
					     &correct);
		if (!isfinite(loss))
			train_die(&tr, "%s: record %" PRIu64 ": epoch %" PRId64 " batch %" PRId64
				     ": the loss is not finite; stopped, last good checkpoint kept",
				     src, ri, epoch, index);
		double t1 = bio_clock_now_s();
		if (tr.fused)
			bio_optim_adam_consts(&tr.o, tr.o.step + 1, &tr.fused_c);
		bio_model_backward(tr.m, n_own, 1);
		/* the ranks' gradients added by the tree: each rank then holds one process's */
		bio_dist_reduce(&dist, tr.m->grads, tr.m->n_params);
		tr.pending++;
		if (tr.pending == tr.accumulate)
			optimizer_step(&tr);
		memcpy(tr.meta.rng, drop.s, sizeof drop.s);
		double t2 = bio_clock_now_s();
		if (first_step < 0)
			first_step = t2 - t_launch;
		tr.t_fwd += t1 - t0;
		tr.t_bwd += t2 - t1;
		tr.loss_sum += loss * nb;
		tr.n_correct += correct;
		tr.n_samples += nb;
		tr.n_batches++;
		if (tr.root)
			bio_tool_progress(&t, "batches", (unsigned long long)tr.n_batches,
				  bpe > 0 ? (unsigned long long)bpe : 0);
		t_read = bio_clock_now_s();
	}
	if (!stopped && rc < 0)
		train_die(&tr, "%s", err.msg);
	if (!stopped && tr.in_epoch)
		end_epoch(&tr);
	if (n_records == 0)
		train_die(&tr, "%s: no training batches", src);
	bio_header_destroy(&bh);
	bio_stream_reader_free(r);
	if (tr.root)
		track_end(&tr, register_name, alias);
	if (t.verbose && dist.size > 1) {
		const struct bio_dist_stats *ds = bio_dist_stats();
		fprintf(stderr, "bio-train: rank %d of %d: %llu steps, gradient sums %.2f ms/step, "
			"%.0f bytes sent/step (the gradient: %zu bytes), during backward %.2f "
			"ms/step, statistics sums %.2f ms/step, %.0f bytes sent/step\n", dist.rank,
			dist.size, ds->steps,
			ds->steps ? 1e3 * ds->reduce_s / (double)ds->steps : 0.0,
			ds->steps ? (double)ds->bytes_sent / (double)ds->steps : 0.0,
			tr.m->n_params * sizeof(float),
			ds->steps ? 1e3 * ds->overlap_s / (double)ds->steps : 0.0,
			ds->steps ? 1e3 * ds->allsum_s / (double)ds->steps : 0.0,
			ds->steps ? (double)ds->stat_bytes / (double)ds->steps : 0.0);
	}
	if (t.verbose && tr.root)
		fprintf(stderr, "bio-train: first step began %.1f ms and ended %.1f ms after start\n",
			first_begin * 1e3, first_step * 1e3);
	if (tr.layer_times && tr.root) {
		double tot = 0.0;
		for (int i = 0; i < BIO_MODEL_N_TIMERS; i++)
			tot += tr.m->timers[i];
		for (int i = 0; i < BIO_MODEL_N_TIMERS; i++)
			fprintf(stderr, "bio-train: layer time %-22s %8.3f s %5.1f%%\n",
				bio_model_timer_names[i], tr.m->timers[i],
				tot > 0 ? 100.0 * tr.m->timers[i] / tot : 0.0);
	}
	bio_model_free(tr.m);
	for (int b = 0; b < BIO_MODEL_MAX_MODS; b++) {
		free(tr.in[b]);
		free(tr.val.x[b]);
	}
	free(tr.val.labels);
	free(tr.labels);
	free(tr.seen_label);
	free(tr.last_path);
	free(tr.best_path);
	free(tr.spool);
	bio_ckpt_meta_destroy(&tr.meta);
	bio_config_free(t.cfg);
	bio_dist_finalize(&dist);
	return 0;
}
