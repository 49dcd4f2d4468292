/* bio-eval: reads a predictions stream and measures it the way biometrics engineers do (the
 * engine is libbio's bio/eval.h): closed-set accuracy, top-k, per-class precision/recall and the
 * confusion matrix; for each embedding present verification (ROC, DET, EER, FNMR at FMR 1%,
 * 0.1%, 0, ZeroFNMR, AUC), identification (CMC, rank-1, rank-5), subjects-bootstrap 95%
 * intervals, and thresholds set on a dev set (--dev). Writes a YAML report, optional CSV curves
 * and PNG plots, and a side-by-side summary on stderr. The whole input is read and every figure
 * computed before anything is written, so bad input leaves no output behind. */
#include <stdlib.h>
#include <string.h>

#include "bio/eval.h"
#include "bio/plot.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-eval [OPTIONS] [PREDICTIONS...]\n"
		"Evaluate a predictions stream (standard input when no file or '-' is given):\n"
		"closed-set accuracy, verification (ROC, DET, EER, FNMR at FMR) and identification\n"
		"(CMC) for each modality's embeddings (the input's modalities) and the fused ones, with\n"
		"bootstrap 95%% confidence intervals. The report (YAML) goes to -o or standard output,\n"
		"a summary table to standard error.\n"
		"\n"
		"      --curves DIR       write roc_/det_/cmc_/hist_<modality>.csv, confusion.csv and\n"
		"                         per_class.csv into DIR\n"
		"      --scores           with --curves: also every score, DIR/scores_<modality>.csv\n"
		"      --plots DIR        write det.png, roc.png, cmc.png, hist_<modality>.png (gnuplot)\n"
		"      --run-dir DIR      a tracking run (mlruns/<exp>/<run>): plot its metrics as\n"
		"                         DIR/../training_curves.png in --plots DIR\n"
		"      --track-run RUN    log the figures (metrics eval_*) and the report, curves and\n"
		"                         plots (artifacts eval/) to a tracking run: its directory,\n"
		"                         or its id in the store at tracking.uri; with --plots, its\n"
		"                         training curves are drawn too\n"
		"      --protocol P       verification pairs: all or fvc (default eval.protocol)\n"
		"      --gallery N        samples per identity enrolled for identification\n"
		"      --enrol FILE       take the gallery from the predictions in FILE (e.g. of the\n"
		"                         training split); every input record is then a probe\n"
		"      --template T       verification: pairs (every pair), mean (probes against each\n"
		"                         identity's mean template of --gallery samples) or all\n"
		"                         (against all of them, best score) (eval.template)\n"
		"      --dev FILE         set a threshold at eval.dev_fmr on the predictions in FILE\n"
		"                         and report FMR, FNMR and HTER at it on the input\n"
		"      --bootstrap N      replicates of the subjects bootstrap (eval.bootstrap; 0 = no\n"
		"                         confidence intervals)\n"
		"  -q, --quiet            no summary table\n"
		BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: eval.topk, eval.gallery, eval.template, eval.bootstrap,\n"
		"eval.bootstrap_seed, eval.dev_fmr, eval.histogram_bins, eval.protocol,\n"
		"eval.max_pairs, eval.curve_resolution, eval.plot_width, eval.plot_height.\n"
		"See bio-eval(1).\n");
}

/* The evaluation: freed at exit, which removes its curves and plots unless committed. */
static struct bio_eval *ev;

static void free_eval(void)
{
	bio_eval_free(ev);
}

int main(int argc, char **argv)
{
	enum { OPT_CURVES = 0x2000, OPT_PLOTS, OPT_RUN_DIR, OPT_PROTOCOL, OPT_GALLERY, OPT_SCORES,
	       OPT_TRACK, OPT_ENROL, OPT_DEV, OPT_TEMPLATE, OPT_BOOTSTRAP };
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"curves", required_argument, 0, OPT_CURVES},
		{"plots", required_argument, 0, OPT_PLOTS},
		{"run-dir", required_argument, 0, OPT_RUN_DIR},
		{"protocol", required_argument, 0, OPT_PROTOCOL},
		{"gallery", required_argument, 0, OPT_GALLERY},
		{"scores", no_argument, 0, OPT_SCORES},
		{"track-run", required_argument, 0, OPT_TRACK},
		{"enrol", required_argument, 0, OPT_ENROL},
		{"enroll", required_argument, 0, OPT_ENROL},
		{"dev", required_argument, 0, OPT_DEV},
		{"template", required_argument, 0, OPT_TEMPLATE},
		{"bootstrap", required_argument, 0, OPT_BOOTSTRAP},
		{"quiet", no_argument, 0, 'q'},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	const char *curves = NULL, *plots = NULL, *run_dir = NULL, *track = NULL, *side[3] = {0};
	const char *protocol = NULL;
	int quiet = 0, with_scores = 0, opt;

	bio_tool_init(&t, "bio-eval", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "q", long_opts,
					usage)) != -1) {
		switch (opt) {
		case OPT_CURVES: curves = optarg; break;
		case OPT_PLOTS: plots = optarg; break;
		case OPT_RUN_DIR: run_dir = optarg; break;
		case OPT_SCORES: with_scores = 1; break;
		case OPT_TRACK: track = optarg; break;
		case OPT_ENROL: side[BIO_EVAL_ENROL] = optarg; break;
		case OPT_DEV: side[BIO_EVAL_DEV] = optarg; break;
		case 'q': quiet = 1; break;
		case OPT_PROTOCOL:
			protocol = optarg;
			bio_tool_option_key(&t, "--protocol", "eval.protocol", optarg);
			break;
		case OPT_GALLERY:
			bio_tool_option_count(&t, "--gallery", "eval.gallery", optarg, 1, 1000000);
			break;
		case OPT_TEMPLATE:
			bio_tool_option_key(&t, "--template", "eval.template", optarg);
			break;
		case OPT_BOOTSTRAP:
			bio_tool_option_count(&t, "--bootstrap", "eval.bootstrap", optarg,
					      0, 1000000);
			break;
		}
	}
	if (with_scores && !curves)
		bio_tool_usage_error(&t, "--scores needs --curves DIR");
	if (run_dir && !plots)
		bio_tool_usage_error(&t, "--run-dir needs --plots DIR");
	bio_tool_load_config(&t);
	if (protocol && strcmp(protocol, "all") != 0 && strcmp(protocol, "fvc") != 0)
		bio_tool_usage_error(&t, "--protocol: '%s' is not all or fvc", protocol);
	if (!(ev = bio_eval_new(t.cfg, t.n_threads, &err)))
		bio_tool_die_err(&t, &err);
	atexit(free_eval);
	const char *track_dir = NULL; /* the training curves of the tracked run, by default */
	if (track && bio_eval_track_resolve(ev, track, &track_dir, &err) < 0)
		bio_tool_die_err(&t, &err);
	int required = run_dir != NULL;
	if (!run_dir)
		run_dir = track_dir;
	if (optind < argc)
		bio_eval_set_inputs(ev, argv + optind, argc - optind);

	/* Read everything first: bad input fails before any output exists. */
	for (int s = BIO_EVAL_INPUT; s <= BIO_EVAL_DEV; s++) {
		if (s != BIO_EVAL_INPUT && !side[s])
			continue;
		struct bio_stream_reader *r = s == BIO_EVAL_INPUT
			? bio_tool_open_inputs(&t, argc, argv, optind)
			: bio_tool_open_inputs(&t, 1, (char **)&side[s], 0);
		int rc = bio_eval_read(ev, (enum bio_eval_role)s, r, side[s], &err);
		bio_stream_reader_free(r);
		if (rc < 0)
			bio_tool_die_err(&t, &err);
	}
	if (bio_eval_compute(ev, &err) < 0)
		bio_tool_die_err(&t, &err);
	if (plots && !bio_plot_available())
		bio_tool_die(&t, "--plots: cannot run %s (install gnuplot-nox, or set BIO_GNUPLOT)",
			     getenv("BIO_GNUPLOT") ? getenv("BIO_GNUPLOT") : "gnuplot");

	FILE *out = bio_tool_output_open(&t);
	int rc = 0;
	if ((curves && bio_eval_write_curves(ev, curves, with_scores, &err) < 0) ||
	    (plots && bio_eval_write_plots(ev, plots, &err) < 0) ||
	    (plots && run_dir &&
	     (rc = bio_eval_plot_training(ev, plots, run_dir, required, &err)) < 0))
		bio_tool_die_err(&t, &err);
	if (rc > 0)
		bio_tool_warn(&t, "%s", err.msg);
	bio_eval_write_report(ev, out);
	bio_tool_output_commit(&t);
	if (bio_eval_commit_files(ev, &err) < 0 ||
	    (track && (rc = bio_eval_track_log(ev, t.output, curves, plots, &err)) < 0))
		bio_tool_die_err(&t, &err);
	if (track && rc > 0)
		bio_tool_warn(&t, "%s", err.msg);
	if (!quiet)
		bio_eval_write_summary(ev, stderr);
	bio_config_free(t.cfg);
	return BIO_EXIT_OK;
}
