/* Evaluating predictions streams the way biometrics engineers do (bio-eval's engine): closed-set
 * accuracy, top-k, per-class precision/recall and the confusion matrix from the predictions; for
 * each embedding present (emb_<modality> of the input's modalities, emb_fused) verification from
 * genuine/impostor cosine scores, of every pair or of probes against enrolled templates (ROC,
 * DET, EER, FNMR at FMR 1%, 0.1%, 0, ZeroFNMR, AUC, histograms), identification with a
 * gallery/probe split (CMC, rank-1, rank-5), subjects-bootstrap 95% intervals, score-level
 * fusion, and thresholds set on a dev set with the FMR, FNMR and HTER they give. Then a YAML
 * report, CSV curves, PNG plots (gnuplot), a summary table, and the figures logged to a tracking
 * run. Every input is read and every figure computed before anything is written; curves and
 * plots appear as one set (bio_eval_commit_files) or not at all.
 *
 * Order of use: bio_eval_new, [bio_eval_track_resolve], bio_eval_read for the input, then
 * [BIO_EVAL_ENROL], [BIO_EVAL_DEV], bio_eval_compute, the writers, bio_eval_commit_files,
 * [bio_eval_track_log], bio_eval_free. */
#ifndef BIO_EVAL_H
#define BIO_EVAL_H

#include <stdio.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/stream.h"

struct bio_eval;

/* Which predictions a stream holds. */
enum bio_eval_role {
	BIO_EVAL_INPUT, /* the predictions evaluated */
	BIO_EVAL_ENROL, /* the gallery (--enrol): every input record is then a probe */
	BIO_EVAL_DEV,   /* the set the thresholds are set on (--dev), at eval.dev_fmr */
};

/* A new evaluation with the settings of cfg's eval section (cfg borrowed; must outlive it) on
 * n_threads threads. NULL on failure, err naming the config key. */
struct bio_eval *bio_eval_new(const struct bio_config *cfg, int n_threads, struct bio_error *err);
/* Frees ev (NULL is a no-op), removing the curve and plot files not committed and the folders
 * made for them when left empty. */
void bio_eval_free(struct bio_eval *ev);
/* The input files as given (borrowed; "-" for standard input), for the report's provenance. */
void bio_eval_set_inputs(struct bio_eval *ev, char *const *names, int n_names);

/* Reads every record of r (borrowed) as role's predictions. path (borrowed; must outlive ev)
 * names an enrol or dev stream in messages and the report (NULL for the input). Fails on bad
 * input naming the source, record and key; on an empty stream; when an enrol or dev stream's
 * modalities (and an enrol stream's label names) differ from the input's. */
int bio_eval_read(struct bio_eval *ev, enum bio_eval_role role, struct bio_stream_reader *r,
		  const char *path, struct bio_error *err);
/* Computes every figure of what was read. */
int bio_eval_compute(struct bio_eval *ev, struct bio_error *err);

/* Writes roc_/det_/cmc_/hist_<section>.csv, confusion.csv and per_class.csv (with with_scores
 * also scores_<section>.csv) into dir (borrowed; made when missing), pending until
 * bio_eval_commit_files. */
int bio_eval_write_curves(struct bio_eval *ev, const char *dir, int with_scores,
			  struct bio_error *err);
/* Writes det.png, roc.png, cmc.png and hist_<section>.png into dir (made when missing), pending
 * until bio_eval_commit_files. Needs gnuplot (bio_plot_available). */
int bio_eval_write_plots(struct bio_eval *ev, const char *dir, struct bio_error *err);
/* Draws the metrics of the tracking run run_dir (borrowed) as dir/training_curves.png (pending).
 * 1 with err holding a warning and nothing drawn when there is nothing to draw (the run has no
 * metrics and required is 0, or none of them is a curve). */
int bio_eval_plot_training(struct bio_eval *ev, const char *dir, const char *run_dir,
			   int required, struct bio_error *err);
/* Writes the YAML report to f (borrowed). */
void bio_eval_write_report(const struct bio_eval *ev, FILE *f);
/* Writes the side-by-side summary table to f (borrowed). */
void bio_eval_write_summary(const struct bio_eval *ev, FILE *f);
/* Renames every pending curve and plot file into place. */
int bio_eval_commit_files(struct bio_eval *ev, struct bio_error *err);

/* Resolves the tracking run to log to: RUN (borrowed) is a run directory of a file store, or a
 * run id in the store or server at tracking.uri. *run_dir is the run's directory (borrowed from
 * ev), NULL for a server run. Fails when the run is not found. */
int bio_eval_track_resolve(struct bio_eval *ev, const char *run, const char **run_dir,
			   struct bio_error *err);
/* Logs the figures as metrics eval_* (step 0) and the report report_path (borrowed; NULL: a copy
 * written here), curves and plots (the folders, NULL when none) as artifacts under eval/ of the
 * resolved run, which keeps its status. 1 with err holding a warning when a server run's
 * figures stay journaled (the server did not take them now). */
int bio_eval_track_log(struct bio_eval *ev, const char *report_path, const char *curves,
		       const char *plots, struct bio_error *err);

#endif
