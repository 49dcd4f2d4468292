/* bio-infer: applies a trained checkpoint to a samples stream and writes a predictions stream
 * (or CSV): per sample its id, true label, predicted identity with its name, the top-k classes
 * with softmax scores, and on request the embedding of each modality branch and the fused one.
 * The model comes from a checkpoint file or from the tracking store's model registry
 * (models:/NAME/VERSION, models:/NAME/latest). Samples go through the network in batches in eval
 * mode; every sample's result is the same whatever the batch size and thread count. The engine is
 * libbio's (bio/predict.h); this file parses the options and calls it. */
#include <stdlib.h>

#include "bio/header.h"
#include "bio/predict.h"
#include "bio/stream.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-infer -m MODEL [OPTIONS] [SAMPLES...]\n"
		"Predict identities for a samples stream (standard input when no file or '-' is\n"
		"given) with a trained checkpoint, and write a predictions stream.\n"
		"\n"
		"  -m, --model MODEL      checkpoint file, or models:/NAME/VERSION, models:/NAME@ALIAS,\n"
		"                         models:/NAME/latest or runs:/RUN_ID/PATH from the tracking\n"
		"                         store or server (tracking.uri)\n"
		"  -s, --split NAME       only samples of this split (default infer.split: all)\n"
		"  -b, --batch-size N     samples per forward pass (default infer.batch_size)\n"
		"  -k, --topk K           classes kept per sample (default infer.topk)\n"
		"  -e, --embeddings       also write emb_<modality> and emb_fused per sample\n"
		"      --csv              write CSV instead of a bio-stream\n"
		"      --shard I/N        only samples whose record index modulo N is I\n" BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: infer.batch_size, infer.topk, infer.embeddings, infer.split, tracking.uri,\n"
		"tracking.cache_dir, tracking.timeout.\n"
		"See bio-infer(1).\n");
}

int main(int argc, char **argv)
{
	enum { OPT_CSV = 0x2000, OPT_SHARD };
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"model", required_argument, 0, 'm'},
		{"split", required_argument, 0, 's'},
		{"batch-size", required_argument, 0, 'b'},
		{"topk", required_argument, 0, 'k'},
		{"embeddings", no_argument, 0, 'e'},
		{"csv", no_argument, 0, OPT_CSV},
		{"shard", required_argument, 0, OPT_SHARD},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	struct bio_predict_opts o = {.shard_n = 1,
				     .hooks = {&t, bio_tool_say, bio_tool_progress_samples}};
	const char *model_arg = NULL;
	int opt;

	bio_tool_init(&t, "bio-infer", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "m:s:b:k:e", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 'm': model_arg = optarg; break;
		case 's': bio_tool_option_key(&t, "--split", "infer.split", optarg); break;
		case 'b':
			bio_tool_option_count(&t, "--batch-size", "infer.batch_size", optarg,
					      1, 4096);
			break;
		case 'k': bio_tool_option_count(&t, "--topk", "infer.topk", optarg, 1, 64); break;
		case 'e': bio_tool_option_key(&t, "--embeddings", "infer.embeddings", "true"); break;
		case OPT_CSV: o.csv = 1; break;
		case OPT_SHARD: bio_tool_parse_shard(&t, optarg, &o.shard_i, &o.shard_n); break;
		}
	}
	bio_tool_load_config(&t);
	bio_tool_kernels_init(&t);
	if (!model_arg)
		bio_tool_usage_error(&t, "no model given (-m CHECKPOINT or -m models:/NAME/VERSION)");
	/* the options are --sets of infer.* keys (bio_tool_option_key): the config holds what runs */
	char *model_path;
	if (bio_predict_opts_from_config(&o, t.cfg, &err) < 0 ||
	    bio_predict_model_file(&model_path, t.cfg, model_arg, &err) < 0)
		bio_tool_die_err(&t, &err);
	o.n_threads = t.n_threads;
	o.verbose = t.verbose;
	struct bio_predict *p = bio_predict_new(model_path, &o, &err);
	if (!p)
		bio_tool_die_err(&t, &err);

	/* Inputs, checked against the model. */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	struct bio_header sh;
	if (bio_header_read(&sh, r, "samples", BIO_HEADER_MODALITIES | BIO_HEADER_SHAPE, &err) < 0 ||
	    bio_predict_check_samples(p, r, &sh, model_path, &err) < 0)
		bio_tool_die_err(&t, &err);

	/* The output's header, then batches of samples through the model. */
	FILE *out = o.csv ? bio_tool_output_open(&t) : bio_tool_output_open_stream(&t);
	uint64_t n_written;
	if (bio_predict_write_header(p, out, bio_tool_output_name(&t), model_arg, &err) < 0 ||
	    bio_predict_all(p, r, &sh, &n_written, &err) < 0)
		bio_tool_die_err(&t, &err);
	bio_tool_progress_end(&t);
	if (bio_predict_finish(p, &err) < 0)
		bio_tool_die_err(&t, &err); /* BIO_EPIPE (reader went away): exits 0 quietly */
	bio_tool_output_commit(&t);
	if (t.verbose)
		fprintf(stderr, "bio-infer: %llu predictions\n", (unsigned long long)n_written);
	bio_predict_free(p);
	bio_header_destroy(&sh);
	bio_stream_reader_free(r);
	free(model_path);
	bio_config_free(t.cfg);
	return BIO_EXIT_OK;
}
