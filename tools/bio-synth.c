/* bio-synth: writes synthetic iris and fingerprint images per subject under an output root, in
 * the layout bio-scan's default patterns read: iris/SSS_E_KK.bmp and
 * fingerprint/SSS_H_finger_KK.BMP (.png for both with --format png). Each subject has two eyes
 * and two hands; identity = subject + side, so the left iris and the left-hand fingerprint of a
 * subject belong to one identity. The set is written by libbio (bio/synth_set.h: split over
 * threads by identity; every image depends only on (options, identity, sample), so the files are
 * byte-identical for any -j, and records synth.yaml); this program reads the options. */
#include <stdlib.h>
#include <string.h>

#include "bio/clock.h"
#include "bio/synth.h"
#include "bio/synth_set.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-synth [OPTIONS] -o DIR\n"
		"Write synthetic iris and fingerprint images per subject under DIR (created if\n"
		"needed; files of the same name are replaced atomically):\n"
		"  DIR/iris/SSS_E_KK.bmp               subject, eye L/R, sample\n"
		"  DIR/fingerprint/SSS_H_finger_KK.BMP  subject, hand L/R, finger, sample\n"
		"Identity = subject + side. Same options and seed give byte-identical files.\n"
		"\n"
		"  -o, --out DIR          output root (default: scan.root of the config)\n"
		"  -n, --subjects N       subjects, each with two eyes and two hands (synth.subjects)\n"
		"  -s, --samples N        samples per identity and modality (synth.samples)\n"
		"      --size S           image side in pixels, 16..4096 (synth.size)\n"
		"  -f, --format FMT       bmp or png (synth.format)\n"
		"      --seed N           master seed (experiment.seed)\n"
		"      --noise X          sensor noise, fraction of full scale 0..1 (synth.noise)\n"
		"      --fingers LIST     comma-separated fingers per hand: thumb, index, middle,\n"
		"                         ring, little (synth.fingers; default thumb)\n"
		"      --modalities LIST  iris, fingerprint or both (default iris,fingerprint)\n"
		"      --no-eyelashes     leave eyelashes out of iris images (synth.eyelashes)\n"
		"      --variation X      scale of the per-sample capture changes, 0..2: 0 same pose\n"
		"                         and conditions for every sample, 1 default (synth.variation)\n"
		"  -c, --config FILE    merge a YAML config file (repeatable; later files override)\n"
		"      --set KEY=VALUE  override one config key (repeatable), e.g. --set synth.size=64\n"
		"      --env NAME       environment overlay configs/env/NAME.yaml (default $BIO_ENV or dev)\n"
		"      --print-config   print the effective configuration as YAML and exit\n"
		"  -j, --jobs N         threads to use (default: the cores available)\n"
		"  -v, --verbose        more detail on standard error\n"
		"  -h, --help           show this help and exit\n"
		"      --version        show the version and exit\n"
		"\n"
		"Command-line options override the config keys named. See bio-synth(1).\n");
}

/* The progress bar of the images written (called under the set's lock). */
static void progress(void *ud, size_t done, size_t total)
{
	bio_tool_progress(ud, "images", done, total);
}

/* --modalities iris, fingerprint or both: sets *iris and/or *print (repeated options add up). */
static void parse_modalities(struct bio_tool *t, const char *arg, int *iris, int *print)
{
	if (!strcmp(arg, "iris"))
		*iris = 1;
	else if (!strcmp(arg, "fingerprint"))
		*print = 1;
	else if (!strcmp(arg, "iris,fingerprint") || !strcmp(arg, "fingerprint,iris"))
		*iris = *print = 1;
	else
		bio_tool_usage_error(t, "--modalities: invalid value '%s' (expected iris, fingerprint "
				     "or iris,fingerprint)", arg);
}

int main(int argc, char **argv)
{
	enum { OPT_SIZE = 0x2000, OPT_SEED, OPT_NOISE, OPT_FINGERS, OPT_MODS, OPT_NOLASH, OPT_VAR };
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"out", required_argument, 0, 'o'},
		{"subjects", required_argument, 0, 'n'},
		{"samples", required_argument, 0, 's'},
		{"size", required_argument, 0, OPT_SIZE},
		{"format", required_argument, 0, 'f'},
		{"seed", required_argument, 0, OPT_SEED},
		{"noise", required_argument, 0, OPT_NOISE},
		{"fingers", required_argument, 0, OPT_FINGERS},
		{"modalities", required_argument, 0, OPT_MODS},
		{"no-eyelashes", no_argument, 0, OPT_NOLASH},
		{"variation", required_argument, 0, OPT_VAR},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	const char *out_opt = NULL, *mods_opt = NULL;
	int do_iris = 0, do_print = 0, opt;
	char bad[64], list[BIO_TOOL_OPTION_SET_BYTES];

	bio_tool_init(&t, "bio-synth", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "n:s:f:", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 'n':
			bio_tool_option_count(&t, "--subjects", "synth.subjects", optarg,
					      1, BIO_SYNTH_MAX_SUBJECTS);
			break;
		case 's':
			bio_tool_option_count(&t, "--samples", "synth.samples", optarg,
					      1, BIO_SYNTH_MAX_SAMPLES);
			break;
		case OPT_SIZE:
			bio_tool_option_count(&t, "--size", "synth.size", optarg,
					      BIO_SYNTH_MIN_SIZE, BIO_SYNTH_MAX_SIZE);
			break;
		case 'f':
			if (strcmp(optarg, "bmp") && strcmp(optarg, "png"))
				bio_tool_usage_error(&t, "--format: invalid value '%s' (expected bmp or png)",
						     optarg);
			bio_tool_option_key(&t, "--format", "synth.format", optarg);
			break;
		case OPT_SEED:
			bio_tool_option_count(&t, "--seed", "experiment.seed", optarg,
					      0, INT64_MAX);
			break;
		case OPT_NOISE:
			bio_tool_option_number(&t, "--noise", "synth.noise", optarg, 0, 1);
			break;
		case OPT_FINGERS:
			if (bio_synth_fingers_check(optarg, bad, sizeof bad) < 0)
				bio_tool_usage_error(&t, "--fingers: invalid finger '%s' (expected thumb, index, middle, ring or little)",
						     bad);
			snprintf(list, sizeof list, "[%s]", optarg);
			bio_tool_option_key(&t, "--fingers", "synth.fingers", list);
			break;
		case OPT_MODS: parse_modalities(&t, mods_opt = optarg, &do_iris, &do_print); break;
		case OPT_NOLASH:
			bio_tool_option_key(&t, "--no-eyelashes", "synth.eyelashes", "false");
			break;
		case OPT_VAR:
			bio_tool_option_number(&t, "--variation", "synth.variation", optarg, 0, 2);
			break;
		}
	}
	/* -o names an output directory here, not a file */
	if (t.output_forced)
		bio_tool_usage_error(&t, "--out: '-': expected a directory");
	out_opt = t.output;
	t.output = NULL;
	if (optind < argc)
		bio_tool_usage_error(&t, "unexpected argument '%s'", argv[optind]);
	bio_tool_load_config(&t);

	/* The options are --sets of the synth keys (bio_tool_option_key): the config holds what runs. */
	struct bio_synth_set set;
	if (bio_synth_set_from_config(&set, t.cfg, &err))
		bio_tool_die_err(&t, &err);
	if (mods_opt) {
		set.do_iris = do_iris;
		set.do_print = do_print;
	}
	if (!out_opt && bio_config_get_str(t.cfg, "scan.root", &out_opt, &err))
		bio_tool_die_err(&t, &err);
	if (!out_opt || !*out_opt)
		bio_tool_usage_error(&t, "no output directory (-o DIR)");
	set.root = out_opt;
	set.progress = progress;
	set.progress_ud = &t;

	double t0 = bio_clock_now_s();
	size_t n_images;
	int rc = bio_synth_set_write(&set, t.n_threads, &n_images, &err);
	bio_tool_progress_end(&t);
	if (rc)
		bio_tool_die_err(&t, &err);
	if (bio_synth_set_write_provenance(t.cfg, set.root, &err))
		bio_tool_die_err(&t, &err);
	if (t.verbose)
		fprintf(stderr, "bio-synth: %s: %zu images (%u subjects x %zu series (side x modality "
			"or finger) x %u samples) in %.2f s, %d threads\n", set.root, n_images,
			set.n_subjects, bio_synth_set_series(&set), set.n_samples,
			bio_clock_now_s() - t0, t.n_threads);
	bio_config_free(t.cfg);
	bio_tool_output_commit(&t);
	return BIO_EXIT_OK;
}
