/* bio-prep: turns a manifest stream (one record per sample, one image path per modality) into a
 * samples stream (one normalised f32 tensor [1,S,S] per modality). Images are decoded, converted
 * to gray, resized and normalised on -j threads through an ordered map, so the output is
 * byte-identical for every thread count and memory does not depend on the number of images.
 * --shard i/n keeps the records whose index modulo n is i: shards run apart (GNU parallel) and
 * joined with cat hold the same records as one run. The engine is libbio's (bio/prep_run.h); this
 * file parses the options and calls it. */
#include "bio/header.h"
#include "bio/prep.h"
#include "bio/prep_run.h"
#include "bio/stream.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-prep [OPTIONS] [MANIFEST...]\n"
		"Decode, gray, resize and normalise the images of a manifest stream (standard input\n"
		"when no file or '-' is given) into a samples stream.\n"
		"\n"
		"  -k, --keep-going     skip a sample whose image fails, name it on stderr, count it\n"
		"                       in the trailer's \"failed\"; exit 1 at the end if more than\n"
		"                       --max-failures samples failed\n"
		"      --max-failures N failures allowed with --keep-going (default prep.max_failures)\n"
		"      --shard I/N      process only records whose index modulo N is I (0 <= I < N)\n"
		"      --root DIR       resolve relative image paths against DIR (default: as written,\n"
		"                       relative to the current directory)\n"
		BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: prep.size, prep.resize (bilinear|area), prep.mean, prep.std,\n"
		"prep.quantize, prep.max_width, prep.max_height, prep.max_failures, prep.fingerprint.*\n"
		"(segment, block, threshold, min_foreground, margin: the fingerprint's segmentation),\n"
		"prep.iris.* (segment, strip_height, strip_width: the iris's segmentation and strip).\n"
		"See bio-prep(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"keep-going", no_argument, 0, 'k'},
		{"max-failures", required_argument, 0, 'F'},
		{"shard", required_argument, 0, 'S'},
		{"root", required_argument, 0, 'R'},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	struct bio_prep_run_opts o = {.shard_n = 1, .ud = &t, .say = bio_tool_say,
				      .progress = bio_tool_progress_samples};
	int opt;

	bio_tool_init(&t, "bio-prep", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "k", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 'k': o.keep_going = 1; break;
		case 'F':
			bio_tool_option_count(&t, "--max-failures", "prep.max_failures", optarg,
					      0, INT64_MAX);
			break;
		case 'S': bio_tool_parse_shard(&t, optarg, &o.shard_i, &o.shard_n); break;
		case 'R': o.root = optarg[0] ? optarg : NULL; break; /* else paths as written */
		}
	}
	bio_tool_load_config(&t);

	struct bio_prep_params params; /* (what every modality shares) */
	int64_t max_failures; /* --max-failures is a --set of it */
	if (bio_prep_params_from_config(&params, t.cfg, &err) < 0 ||
	    bio_config_get_int_range(t.cfg, "prep.max_failures", 0, INT64_MAX, &max_failures,
				     &err) < 0)
		bio_tool_die_err(&t, &err);

	/* Inputs: files, or standard input. */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	struct bio_header h; /* modalities named by the header; labels when it has them */
	if (bio_header_read(&h, r, "manifest", BIO_HEADER_MODALITIES, &err) < 0)
		bio_tool_die_err(&t, &err);
	struct bio_prep_params mod_params[BIO_HEADER_MAX_MODS]; /* each modality's own */
	for (int m = 0; m < h.n_mod; m++)
		if (bio_prep_params_for_modality(&mod_params[m], t.cfg, h.modalities[m], &err) < 0)
			bio_tool_die_err(&t, &err);

	struct bio_stream_writer *w = bio_tool_output_writer(&t);
	struct bio_prep_run *run = NULL;
	if (bio_prep_write_header(w, h.meta, mod_params, h.modalities, h.n_mod, t.cfg, &err) < 0 ||
	    !(run = bio_prep_run_new(mod_params, h.n_mod, t.n_threads, &err)))
		bio_tool_die_err(&t, &err);

	struct bio_prep_counts n;
	int rc = bio_prep_run_all(run, r, &h, w, &o, &n, &err);
	bio_tool_progress_end(&t);
	bio_prep_run_free(run);
	if (rc < 0 || bio_prep_write_trailer(w, &n, &err) < 0)
		bio_tool_die_err(&t, &err); /* BIO_EPIPE (reader went away): exits 0 quietly */
	bio_stream_writer_free(w);
	bio_tool_output_commit(&t);
	if (t.verbose)
		fprintf(stderr, "bio-prep: %lld samples written, %lld failed, %d thread%s\n", n.n_done,
			n.n_failed, t.n_threads, t.n_threads == 1 ? "" : "s");

	bio_header_destroy(&h);
	bio_stream_reader_free(r);
	bio_config_free(t.cfg);
	if (n.n_failed > max_failures) {
		fprintf(stderr, "bio-prep: %lld samples failed (allowed: %lld)\n", n.n_failed,
			(long long)max_failures);
		return BIO_EXIT_RUNTIME;
	}
	return BIO_EXIT_OK;
}
