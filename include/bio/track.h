/* Experiment tracking in MLflow's local file store (an `mlruns/` directory), written the way
 * MLflow's own FileStore writes it, so that `mlflow ui --backend-store-uri ./mlruns` lists the
 * runs, their params, metric curves, tags and artifacts, and the model registry (`mlruns/models/`)
 * lists registered versions. Layout and formats: ../shared/REFERENCE.md section 1.
 *
 * Keys of params, metrics and tags are sanitised to MLflow's allowed set (alphanumerics, `_ - . /`
 * and space; anything else becomes `_`); a `/` in a key makes subdirectories, as in MLflow.
 * Files are written atomically (temp file + rename) except metric lines, which are appended with
 * one write each. The module never prints; errors name the file and the cause. */
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
/* Resolves "models:/NAME/VERSION" or "models:/NAME/latest" (the highest version not deleted),
 * "runs:/RUN_ID/PATH", "file:///PATH" or a plain path to a local file path. *path is new
 * (caller frees). */
int bio_track_resolve_model(char **path, const char *root_uri, const char *model_uri,
			    struct bio_error *err);

#endif
