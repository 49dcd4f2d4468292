/* Experiment tracking in MLflow's local file store (an `mlruns/` directory), written the way
 * MLflow's own FileStore writes it, so that `mlflow ui --backend-store-uri ./mlruns` lists the
 * runs, their params, metric curves, tags and artifacts, and the model registry (`mlruns/models/`)
 * lists registered versions. Layout and formats: ../shared/REFERENCE.md section 1.
 *
 * Keys of params, metrics and tags are sanitised to MLflow's allowed set (alphanumerics, `_ - . /`
 * and space; anything else becomes `_`); a `/` in a key makes subdirectories, as in MLflow.
 * Files are written atomically (temp file + rename) except metric lines, which are appended with
 * one write each. The module never prints; errors name the file and the cause.
 *
 * A tracking server (a URI http://HOST:PORT or https://...; the _opts functions below) gets the
 * same run over MLflow's REST API. Such a run is journaled first in a local file-store run (the
 * spool, e.g. beside the checkpoints), and bio_track_flush sends what the server has not yet
 * acknowledged: every logging call stays local and quick, a server that is slow or down never
 * stops the caller, and a later flush or bio_track_sync sends the rest, each metric point once.
 * Implemented in track_http.c (HTTP in http.c). */
#ifndef BIO_TRACK_H
#define BIO_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"

/* Run status as stored in meta.yaml (MLflow's RunStatus proto values). */
enum bio_track_status {
	BIO_TRACK_RUNNING = 1,
	BIO_TRACK_SCHEDULED = 2,
	BIO_TRACK_FINISHED = 3,
	BIO_TRACK_FAILED = 4,
	BIO_TRACK_KILLED = 5,
};

/* MLflow's limits (validation.py of the 2.x file store). */
#define BIO_TRACK_MAX_KEY 250
#define BIO_TRACK_MAX_PARAM_VALUE 6000
#define BIO_TRACK_MAX_TAG_VALUE 5000
#define BIO_TRACK_MAX_EXPERIMENT_NAME 500

struct bio_track_run;
struct bio_config;

/* Starts a run in experiment experiment_name (NULL or "" = the "Default" experiment, id "0";
 * created with a new id when absent) of the store at root_uri ("mlruns", "/abs/mlruns" or
 * "file:///abs/mlruns"; created with .trash/ and experiment 0 when new). run_name may be NULL
 * (then "run-<first 8 hex of the id>"); it is mirrored in the tag mlflow.runName. Writes the run's
 * meta.yaml with status RUNNING and the tags mlflow.runName, mlflow.user, mlflow.source.type
 * (LOCAL). Returns a new run (free with bio_track_run_free) or NULL with err set. */
struct bio_track_run *bio_track_run_start(const char *root_uri, const char *experiment_name,
					  const char *run_name, struct bio_error *err);
/* Reopens an existing run by id (any experiment of the store) to log more, e.g. on --resume:
 * its status becomes RUNNING again and its end time null. */
struct bio_track_run *bio_track_run_open(const char *root_uri, const char *run_id,
					 struct bio_error *err);
/* Frees run (NULL is a no-op); the files stay as they are (a run not ended stays RUNNING). */
void bio_track_run_free(struct bio_track_run *run);

/* Borrowed strings of run, valid until bio_track_run_free: the 32-hex run id, the experiment id,
 * the run directory (absolute path) and the artifact directory (absolute path). */
const char *bio_track_run_id(const struct bio_track_run *run);
const char *bio_track_run_experiment_id(const struct bio_track_run *run);
const char *bio_track_run_dir(const struct bio_track_run *run);
const char *bio_track_run_artifact_dir(const struct bio_track_run *run);

/* Logs a param (params/<key>, the value exactly, no newline). Params are immutable: logging the
 * same key again with another value is BIO_EINVAL; the same value is a no-op. Values longer than
 * BIO_TRACK_MAX_PARAM_VALUE bytes are BIO_ELIMIT. */
int bio_track_log_param(struct bio_track_run *run, const char *key, const char *value,
			struct bio_error *err);
/* Appends "<timestamp_ms> <value> <step>\n" to metrics/<key>; timestamp_ms 0 = now. The value is
 * written as Python's repr would (shortest round trip; nan, inf, -inf). */
int bio_track_log_metric(struct bio_track_run *run, const char *key, double value, int64_t step,
			 int64_t timestamp_ms, struct bio_error *err);
/* Sets (overwrites) tags/<key>; mlflow.runName also renames the run in meta.yaml. Values longer
 * than BIO_TRACK_MAX_TAG_VALUE bytes are BIO_ELIMIT. */
int bio_track_set_tag(struct bio_track_run *run, const char *key, const char *value,
		      struct bio_error *err);
/* Copies the file src_path into artifacts/[subdir/]<basename of src_path> (subdir may be NULL;
 * relative, without ".." parts). */
int bio_track_log_artifact(struct bio_track_run *run, const char *src_path, const char *subdir,
			   struct bio_error *err);
/* Ends the run: status BIO_TRACK_FINISHED, _FAILED or _KILLED and end_time = now, written
 * atomically to meta.yaml. The run may still be freed only. */
int bio_track_run_end(struct bio_track_run *run, int status, struct bio_error *err);
/* Ends run run_id of the store at root_uri as KILLED (end_time now) when its meta.yaml still says
 * RUNNING: the run of a process that was killed (kill -9, power loss) and is being started over.
 * Returns 1 when it ended it, 0 when the run had ended already, < 0 on error (no such run). */
int bio_track_run_close_stale(const char *root_uri, const char *run_id, struct bio_error *err);

/* Writes into out (cap bytes) the MLflow-valid form of key: characters outside [A-Za-z0-9_-. /]
 * become '_', repeated and leading/trailing '/' are dropped, "." and ".." parts become "_",
 * an empty key becomes "_"; at most BIO_TRACK_MAX_KEY bytes. Returns 0, or BIO_ELIMIT when cap
 * is too small. */
int bio_track_sanitize_key(char *out, size_t cap, const char *key);

/* Model registry: adds a version of registered model name (created when absent) whose source is
 * source_uri (e.g. "runs:/<run_id>/checkpoints/best.bin" or a file:// URI) and run_id (may be
 * NULL). *version receives the new version number (max existing + 1). */
int bio_track_register_model(int64_t *version, const char *root_uri, const char *name,
			     const char *source_uri, const char *run_id, struct bio_error *err);
/* Resolves "models:/NAME/VERSION", "models:/NAME@ALIAS" or "models:/NAME/latest" (the highest
 * version not deleted), "runs:/RUN_ID/PATH", "file:///PATH" or a plain path to a local file
 * path; a directory source resolves to its best.ckpt (or its only file). *path is new (caller
 * frees). */
int bio_track_resolve_model(char **path, const char *root_uri, const char *model_uri,
			    struct bio_error *err);
/* Points alias (MLflow's rule: [A-Za-z0-9_-]+, not "latest", not v<digits>) of registered model
 * name at version, as MLflow's file store does (models/NAME/aliases/ALIAS holds the number). */
int bio_track_set_alias(const char *root_uri, const char *name, const char *alias,
			int64_t version, struct bio_error *err);
/* 0 when alias is a valid alias name, else BIO_EINVAL with err set. */
int bio_track_check_alias(const char *alias, struct bio_error *err);
/* The model file of a model directory dir: dir/best.ckpt, else its only regular file. New. */
int bio_track_pick_model_file(char **path, const char *dir, struct bio_error *err);

/* ---- any tracking URI: a file store or a tracking server ---- */

/* How a server run is journaled and sent; bio_track_opts_init sets the defaults. */
struct bio_track_opts {
	const char *spool_dir;    /* file store journaling server runs; NULL: <cache_dir>/spool */
	const char *cache_dir;    /* downloaded models and the default spool; NULL or "": the
				   * XDG cache ($XDG_CACHE_HOME or ~/.cache)/biopipe */
	double timeout_s;         /* one request (tracking.timeout) */
	double connect_timeout_s; /* (tracking.connect_timeout) */
	int retries;              /* further tries of a failed request (tracking.retries) */
	double backoff_s;         /* first wait between tries, doubling (tracking.backoff) */
};
void bio_track_opts_init(struct bio_track_opts *opts);
/* bio_track_opts_init, then the keys tracking.timeout, tracking.connect_timeout,
 * tracking.retries, tracking.backoff and tracking.cache_dir of cfg (strings borrowed from cfg). */
int bio_track_opts_from_config(struct bio_track_opts *opts, const struct bio_config *cfg,
			       struct bio_error *err);
/* True for http:// and https:// URIs. */
int bio_track_uri_is_server(const char *uri);

/* bio_track_run_start / _open for any URI (opts NULL = defaults). For a server: the run is
 * journaled in a new run of the spool, created on the server at the first successful flush
 * (this call tries once; failing, it still returns the run). _open of a server run takes the
 * journal's run id (as bio_track_run_id returns it), a server run id, or the journal id of a
 * run journaled elsewhere (found on the server by its tag bio.spool_run_id); the last two are
 * attached to: logged to, their status left alone unless bio_track_run_end is called. */
struct bio_track_run *bio_track_run_start_opts(const char *uri, const struct bio_track_opts *opts,
					       const char *experiment_name, const char *run_name,
					       struct bio_error *err);
struct bio_track_run *bio_track_run_open_opts(const char *uri, const struct bio_track_opts *opts,
					      const char *run_id, struct bio_error *err);
/* Sends what the server has not acknowledged (no-op for a file store): run creation, params,
 * tags, metric points, artifacts, registrations and aliases, status. After a failure, calls
 * within a growing wait (at most a minute) return at once without trying. Returns 0 when all is
 * sent, else BIO_EIO (or the server's refusal) with err naming the spool directory. */
int bio_track_flush(struct bio_track_run *run, struct bio_error *err);
/* Like bio_track_flush, but tries now, whatever the wait. */
int bio_track_flush_now(struct bio_track_run *run, struct bio_error *err);
/* The server's run id once created (else NULL; always NULL for a file store). Borrowed, valid
 * until the next flush. */
const char *bio_track_run_server_id(const struct bio_track_run *run);
/* Registers artifact directory artifact_path of run (e.g. "checkpoints") as a new version of
 * model name, source runs:/<id>/<artifact_path>, and points alias (NULL: none) at it. For a
 * server run it is sent at once when the server answers, else by a later flush: *version is the
 * new version, or 0 while pending (err then says why; the return is still 0). */
int bio_track_run_register(int64_t *version, struct bio_track_run *run, const char *name,
			   const char *artifact_path, const char *alias, struct bio_error *err);
/* Sends every run of the spool (a file store written by server runs) that its server has not
 * fully acknowledged. *n_runs: runs seen, *n_pending: runs still not complete. */
int bio_track_sync(size_t *n_runs, size_t *n_pending, const char *spool_dir,
		   const struct bio_track_opts *opts, struct bio_error *err);
/* Sends every active run of the file store at store (a path or file:// URI) to the server at
 * uri, and then the store's registered versions whose source is one of those runs (runs:/ID/
 * PATH) with their aliases: each run becomes a journal (<run dir>/bio-remote.json is added) and
 * is sent as by bio_track_sync, so pushing again sends only what is new. *n_runs: runs seen,
 * *n_pending: runs not complete on the server. */
int bio_track_push(size_t *n_runs, size_t *n_pending, const char *store, const char *uri,
		   const struct bio_track_opts *opts, struct bio_error *err);
/* bio_track_resolve_model for any URI: from a server, the model file is downloaded into
 * <cache_dir>/artifacts/<run id>/<path> (reused when already there with the same size). */
int bio_track_resolve_model_opts(char **path, const char *uri, const struct bio_track_opts *opts,
				 const char *model_uri, struct bio_error *err);

/* ---- reading a file-store run (reports and plots made after training) ---- */

/* The directory of run run_id in the file store at root_uri (active experiments, then .trash),
 * new in *run_dir; BIO_ENOTFOUND when no run has that id. */
int bio_track_run_find(char **run_dir, const char *root_uri, const char *run_id,
		       struct bio_error *err);
/* The status (BIO_TRACK_RUNNING, ...) the meta.yaml of run_dir (borrowed) holds now, read
 * without opening the run (bio_track_run_open would make it RUNNING). */
int bio_track_run_read_status(int *status, const char *run_dir, struct bio_error *err);

/* At most this many points are read per metric. */
#define BIO_TRACK_MAX_POINTS 10000000

/* One metric of a run, its points in file (logging) order. */
struct bio_track_series {
	char *key;
	int64_t *timestamps, *steps; /* timestamps in ms since the epoch */
	double *values;
	size_t n;
};

/* Every metric of run_dir (borrowed): the regular files metrics/<key>, hidden ones left out,
 * sorted by key, lines "<timestamp_ms> <value> [<step>]" (step 0 when absent). Lines that do not
 * parse are passed over, as is a last line without its line break (a killed writer's). A new
 * array of *n_series in *series (free with bio_track_series_free); BIO_ENOTFOUND when run_dir
 * has no metrics folder, BIO_ELIMIT past BIO_TRACK_MAX_POINTS points in one metric. */
int bio_track_run_read_metrics(struct bio_track_series **series, size_t *n_series,
			       const char *run_dir, struct bio_error *err);
/* Frees series[0..n_series) and the array (NULL is a no-op). */
void bio_track_series_free(struct bio_track_series *series, size_t n_series);

#endif
