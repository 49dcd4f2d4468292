/* bio-train: trains the two-branch model on a batches stream (bio-batch's output, stdin or
 * files), validates each epoch on a samples stream (--val), keeps the last and the best
 * checkpoints (atomic writes), stops early on a validation metric, and resumes from a checkpoint
 * (--resume) bit-identically, given the batch stream from the next epoch on
 * (bio-batch --start-epoch E). One line per epoch on stderr. SIGINT/SIGTERM finish the current
 * epoch, checkpoint and exit. The training itself is libbio's (bio/train.h); this file parses the
 * options, starts the ranks (dist.h) and says what training has to say. */
#include <stdio.h>
#include <string.h>

#include "bio/clock.h"
#include "bio/track.h"
#include "bio/train.h"
#include "dist.h"
#include "tool.h"

static volatile sig_atomic_t stop_signal;

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
		"      --layer-times      print a per-layer time breakdown at the end\n"
		"      --register NAME    register the run's checkpoints/ directory (best.ckpt) as a\n"
		"                         new version of model NAME in the tracking store\n"
		"      --alias ALIAS      with --register: point ALIAS (models:/NAME@ALIAS) at it\n"
		"      --sync-tracking DIR  send what runs of checkpoint directory DIR could not send\n"
		"                         to their tracking server (DIR/tracking), then exit\n"
		"      --push-tracking MLRUNS  send every run (and registered version) of file store\n"
		"                         MLRUNS to the tracking server at tracking.uri, then exit\n"
		BIO_TOOL_COMMON_HELP_HEAD
		"  -o, --output DIR     checkpoint directory (default training.checkpoint_dir):\n"
		"                       DIR/last.ckpt and DIR/best.ckpt\n"
		BIO_TOOL_COMMON_HELP_TAIL
		"\nConfig keys: model.* (architecture), training.* (optimizer, lr, scheduler,\n"
		"early_stopping, accumulate, clip_grad_norm, checkpoint_dir, half, best_full),\n"
		"experiment.seed, "
		"tracking.* (uri: a file store or http(s)://HOST:PORT of an MLflow server).\n"
		"See bio-train(1).\n");
}

static void progress(void *ud, unsigned long long done, unsigned long long total)
{
	bio_tool_progress(ud, "batches", done, total);
}

static struct bio_config *base_config(void *ud)
{
	return bio_tool_base_config(ud);
}

/* From the first batch on, SIGINT/SIGTERM finish the epoch, checkpoint and stop. */
static void catch_stop(void *ud)
{
	(void)ud;
	bio_tool_catch_stop(&stop_signal);
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
	static struct bio_nn_dist dist;
	struct bio_tool t;
	struct bio_error err = {0};
	struct bio_stream_limits lim;
	struct bio_train_opts o = {.t_launch = bio_clock_now_s(), .stop = &stop_signal,
				   .limits = &lim,
				   .comm = {&dist, bio_dist_attach, bio_dist_reduce, bio_dist_bcast,
					    bio_dist_any},
				   .hooks = {&t, bio_tool_say, progress, base_config, catch_stop}};
	const char *sync_dir = NULL, *push_store = NULL;
	int opt;
	bio_tool_init(&t, "bio-train", argc, argv);
	if (bio_dist_init(&dist, &argc, &argv, &err))
		bio_tool_die_err(&t, &err);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS, long_opts, usage)) != -1) {
		switch (opt) {
		case OPT_VAL: o.val_path = optarg; break;
		case OPT_RESUME: o.resume = optarg; break;
		case OPT_HALF: bio_tool_option_key(&t, "--half", "training.half", "true"); break;
		case OPT_FULL: bio_tool_option_key(&t, "--full", "training.best_full", "true"); break;
		case OPT_LAYER_TIMES: o.layer_times = 1; break;
		case OPT_REGISTER: o.register_name = optarg; break;
		case OPT_ALIAS: o.alias = optarg; break;
		case OPT_SYNC: sync_dir = optarg; break;
		case OPT_PUSH: push_store = optarg; break;
		default: bio_tool_bad_option(&t, argv, BIO_TOOL_SHORT_OPTS, long_opts);
		}
	}
	bio_tool_load_config(&t);
	bio_tool_kernels_init(&t);
	if (o.alias && !o.register_name)
		bio_tool_usage_error(&t, "--alias needs --register");
	if (o.alias && bio_track_check_alias(o.alias, &err))
		bio_tool_usage_error(&t, "%s", err.msg);
	if (dist.size > 1 && (sync_dir || push_store))
		bio_tool_usage_error(&t, "--sync-tracking and --push-tracking run in one process, "
				     "not under mpirun");
	if (dist.size > 1 && (optind >= argc || strcmp(argv[optind], "-") == 0))
		bio_tool_usage_error(&t, "under mpirun every rank reads the batches: give them as a "
				     "file (bio-batch -o FILE), not standard input");
	if (sync_dir || push_store) {
		if (optind < argc || (sync_dir && push_store))
			bio_tool_usage_error(&t, "--sync-tracking and --push-tracking take no batches "
					     "and go alone");
		int rc = sync_dir ? bio_train_sync_tracking(t.cfg, sync_dir, &o.hooks, &err)
				  : bio_train_push_tracking(t.cfg, push_store, &o.hooks, &err);
		if (rc == BIO_EUNSUPPORTED)
			bio_tool_usage_error(&t, "%s", err.msg);
		if (rc)
			bio_tool_die_err(&t, &err);
		bio_config_free(t.cfg);
		return 0;
	}
	o.n_threads = t.n_threads;
	o.output_dir = t.output;
	o.verbose = t.verbose;
	struct bio_train *tr = bio_train_new(t.cfg, &o, &err);
	if (!tr)
		bio_tool_die_err(&t, &err);
	bio_tool_stream_limits(&t, &lim);
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	if (bio_train_run(tr, r, &err))
		bio_tool_die_err(&t, &err);
	bio_stream_reader_free(r);
	if (t.verbose && dist.size > 1)
		bio_dist_say_stats(&dist, bio_train_n_params(tr));
	bio_train_say_times(tr);
	bio_train_free(tr);
	bio_config_free(t.cfg);
	bio_dist_finalize(&dist);
	return 0;
}
