/* bio-synth: writes synthetic iris and fingerprint images per subject under an output root, in
 * the layout bio-scan's default patterns read: iris/SSS_E_KK.bmp and
 * fingerprint/SSS_H_finger_KK.BMP (.png for both with --format png). Each subject has two eyes
 * and two hands; identity = subject + side, so the left iris and the left-hand fingerprint of a
 * subject belong to one identity. Work is split over threads by identity (build the model once,
 * render its samples); every image depends only on (options, identity, sample), so the files are
 * byte-identical for any -j. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bio/clock.h"
#include "bio/fs.h"
#include "bio/image.h"
#include "bio/synth.h"
#include "bio/thread.h"
#include "tool.h"

#define SYNTH_MAX_SUBJECTS 100000
#define SYNTH_MAX_SAMPLES 10000

enum { FMT_BMP, FMT_PNG };

struct job {
	struct bio_tool *t;
	const char *root;
	struct bio_synth_params params;
	uint32_t n_subjects, n_samples;
	int format;
	int do_iris, do_print;
	int fingers[BIO_SYNTH_N_FINGERS];
	int n_fingers;
	int subject_digits, sample_digits;
	size_t n_items, per_subject; /* work items: subject x side x (iris, fingers...) */

	pthread_mutex_t lock;
	size_t next;            /* next item to take */
	size_t n_done;          /* images written */
	size_t fail_item;       /* lowest failed item, n_items when none */
	struct bio_error fail;  /* its error */
};

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

static int digits(uint32_t n)
{
	int d = 1;
	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/* Creates dir and its missing parents, or dies. */
static void mkdir_or_die(struct bio_tool *t, const char *dir)
{
	struct bio_error err;
	if (bio_fs_mkdir_p(dir, &err))
		bio_tool_die_err(t, &err);
}

/* Renders and writes every sample of work item i. */
static int run_item(struct job *j, size_t i, uint8_t *pixels, char *path, size_t path_size,
		    struct bio_error *err)
{
	uint32_t subject = (uint32_t)(i / j->per_subject) + 1;
	size_t k = i % j->per_subject;
	int side = (int)(k / (j->per_subject / 2));
	size_t kind = k % (j->per_subject / 2); /* 0: iris when do_iris, then fingers */
	const char *sname = bio_synth_side_name(side);
	int is_iris = j->do_iris && kind == 0;
	int finger = is_iris ? -1 : j->fingers[kind - (size_t)j->do_iris];
	struct bio_synth_iris *iris = NULL;
	struct bio_synth_print *print = NULL;
	int rc = is_iris ? bio_synth_iris_new(&iris, &j->params, subject, side, err)
			 : bio_synth_print_new(&print, &j->params, subject, side, finger, err);
	for (uint32_t s = 1; !rc && s <= j->n_samples; s++) {
		rc = is_iris ? bio_synth_iris_render(pixels, iris, s, err)
			     : bio_synth_print_render(pixels, print, s, err);
		if (rc)
			break;
		const char *ext = j->format == FMT_PNG ? "png" : is_iris ? "bmp" : "BMP";
		if (is_iris)
			snprintf(path, path_size, "%s/iris/%0*u_%s_%0*u.%s", j->root,
				 j->subject_digits, subject, sname, j->sample_digits, s, ext);
		else
			snprintf(path, path_size, "%s/fingerprint/%0*u_%s_%s_%0*u.%s", j->root,
				 j->subject_digits, subject, sname, bio_synth_finger_name(finger),
				 j->sample_digits, s, ext);
		uint32_t sz = j->params.size;
		rc = j->format == FMT_PNG ? bio_image_save_png(path, pixels, sz, sz, 1, err)
					  : bio_image_save_bmp(path, pixels, sz, sz, 1, err);
		if (!rc) {
			pthread_mutex_lock(&j->lock);
			j->n_done++;
			bio_tool_progress(j->t, "images", j->n_done,
					  (unsigned long long)j->n_items * j->n_samples);
			pthread_mutex_unlock(&j->lock);
		}
	}
	bio_synth_iris_free(iris);
	bio_synth_print_free(print);
	return rc;
}

/* One worker: takes the next item until none is left or one has failed. */
static void worker(struct job *j)
{
	size_t s = j->params.size;
	size_t path_size = strlen(j->root) + 128;
	uint8_t *pixels = malloc(s * s);
	char *path = malloc(path_size);
	struct bio_error err = {0};
	for (;;) {
		pthread_mutex_lock(&j->lock);
		size_t i = j->next < j->n_items && j->fail_item == j->n_items ? j->next++ : j->n_items;
		pthread_mutex_unlock(&j->lock);
		if (i == j->n_items)
			break;
		int rc = pixels && path ? run_item(j, i, pixels, path, path_size, &err)
					: bio_error_set(&err, BIO_ENOMEM, "out of memory");
		if (rc) {
			pthread_mutex_lock(&j->lock);
			if (i < j->fail_item) {
				j->fail_item = i;
				j->fail = err;
			}
			pthread_mutex_unlock(&j->lock);
			break;
		}
	}
	free(pixels);
	free(path);
}

/* The pool's range of workers (one each: the pool has a thread per worker). */
static void workers_range(void *ctx, size_t begin, size_t end, int thread)
{
	(void)thread;
	for (size_t w = begin; w < end; w++)
		worker(ctx);
}

/* Parses a comma-separated finger list into j->fingers; 0 or -1 (bad name in *bad). */
static int parse_fingers(struct job *j, const char *list, char *bad, size_t bad_size)
{
	j->n_fingers = 0;
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char name[32];
		if (len == 0 || len >= sizeof name) {
			snprintf(bad, bad_size, "%.*s", (int)(len < 31 ? len : 31), p);
			return -1;
		}
		memcpy(name, p, len);
		name[len] = 0;
		int f = bio_synth_finger_parse(name);
		if (f < 0) {
			snprintf(bad, bad_size, "%s", name);
			return -1;
		}
		for (int k = 0; k < j->n_fingers; k++)
			if (j->fingers[k] == f) {
				snprintf(bad, bad_size, "%s (repeated)", name);
				return -1;
			}
		j->fingers[j->n_fingers++] = f;
		p += len;
		if (*p == ',' && !*++p) {
			snprintf(bad, bad_size, "(empty)");
			return -1;
		}
	}
	return j->n_fingers ? 0 : (snprintf(bad, bad_size, "(empty)"), -1);
}

static double parse_double(struct bio_tool *t, const char *opt, const char *arg, double lo,
			   double hi)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (!*arg || *end || errno || !(v >= lo && v <= hi))
		bio_tool_usage_error(t, "%s: invalid value '%s' (expected a number from %g to %g)",
				     opt, arg, lo, hi);
	return v;
}

/* ROOT/synth.yaml: the synth section of the configuration the images were made with (options
 * included), an overlay bio-scan carries forward in the manifest header so that what trains on
 * these images records how they were made. Written atomically; a failure is an error. */
static void write_provenance(struct bio_tool *t, const char *root)
{
	struct bio_error err;
	size_t n = strlen(root) + 32, len = 0;
	char *path = malloc(n), *text = NULL;
	FILE *f = open_memstream(&text, &len);
	if (!path || !f)
		bio_tool_die(t, "out of memory");
	snprintf(path, n, "%s/synth.yaml", root);
	fputs("# bio-synth: the configuration these images were made with (read by bio-scan)\n", f);
	static const char *const sections[] = {"synth"};
	if (bio_config_dump_sections(t->cfg, f, sections, 1, &err) || fclose(f) != 0)
		bio_tool_die(t, "%s: out of memory", path);
	if (bio_fs_write_atomic(path, text, len, NULL, 1, &err))
		bio_tool_die_err(t, &err);
	free(text);
	free(path);
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
	struct job j;
	memset(&j, 0, sizeof j);
	const char *out_opt = NULL, *format_opt = NULL, *fingers_opt = NULL, *mods_opt = NULL;
	long long subjects = -1, samples = -1, size = -1, seed = -1;
	double noise = -1, variation = -1;
	int no_lashes = 0, opt;
	char bad[64];

	bio_tool_init(&t, "bio-synth", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "n:s:f:", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 'n':
			subjects = bio_tool_parse_count(&t, "--subjects", optarg, 1,
							SYNTH_MAX_SUBJECTS);
			bio_tool_option_key(&t, "--subjects", "synth.subjects", optarg);
			break;
		case 's':
			samples = bio_tool_parse_count(&t, "--samples", optarg, 1, SYNTH_MAX_SAMPLES);
			bio_tool_option_key(&t, "--samples", "synth.samples", optarg);
			break;
		case OPT_SIZE:
			size = bio_tool_parse_count(&t, "--size", optarg, BIO_SYNTH_MIN_SIZE,
						    BIO_SYNTH_MAX_SIZE);
			bio_tool_option_key(&t, "--size", "synth.size", optarg);
			break;
		case 'f':
			if (strcmp(optarg, "bmp") && strcmp(optarg, "png"))
				bio_tool_usage_error(&t, "--format: invalid value '%s' (expected bmp or png)",
						     optarg);
			format_opt = optarg;
			bio_tool_option_key(&t, "--format", "synth.format", optarg);
			break;
		case OPT_SEED:
			seed = bio_tool_parse_count(&t, "--seed", optarg, 0, INT64_MAX);
			bio_tool_option_key(&t, "--seed", "experiment.seed", optarg);
			break;
		case OPT_NOISE:
			noise = parse_double(&t, "--noise", optarg, 0, 1);
			bio_tool_option_key(&t, "--noise", "synth.noise", optarg);
			break;
		case OPT_FINGERS:
			if (parse_fingers(&j, optarg, bad, sizeof bad) < 0)
				bio_tool_usage_error(&t, "--fingers: invalid finger '%s' (expected thumb, index, middle, ring or little)",
						     bad);
			fingers_opt = optarg;
			{
				char list[BIO_TOOL_OPTION_SET_BYTES];
				snprintf(list, sizeof list, "[%s]", optarg);
				bio_tool_option_key(&t, "--fingers", "synth.fingers", list);
			}
			break;
		case OPT_MODS:
			if (!strcmp(optarg, "iris"))
				j.do_iris = 1;
			else if (!strcmp(optarg, "fingerprint"))
				j.do_print = 1;
			else if (!strcmp(optarg, "iris,fingerprint") ||
				 !strcmp(optarg, "fingerprint,iris"))
				j.do_iris = j.do_print = 1;
			else
				bio_tool_usage_error(&t, "--modalities: invalid value '%s' (expected iris, fingerprint or iris,fingerprint)",
						     optarg);
			mods_opt = optarg;
			break;
		case OPT_NOLASH:
			no_lashes = 1;
			bio_tool_option_key(&t, "--no-eyelashes", "synth.eyelashes", "false");
			break;
		case OPT_VAR:
			variation = parse_double(&t, "--variation", optarg, 0, 2);
			bio_tool_option_key(&t, "--variation", "synth.variation", optarg);
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

	/* Config values, then the command line over them. */
	int64_t v;
	const char *fmt = NULL;
	double d;
	int lashes = 1;
	bio_synth_params_default(&j.params);
	if (bio_config_get_int_range(t.cfg, "synth.subjects", 1, SYNTH_MAX_SUBJECTS, &v, &err))
		bio_tool_die_err(&t, &err);
	j.n_subjects = (uint32_t)(subjects >= 0 ? subjects : v);
	if (bio_config_get_int_range(t.cfg, "synth.samples", 1, SYNTH_MAX_SAMPLES, &v, &err))
		bio_tool_die_err(&t, &err);
	j.n_samples = (uint32_t)(samples >= 0 ? samples : v);
	if (bio_config_get_int_range(t.cfg, "synth.size", BIO_SYNTH_MIN_SIZE,
				     BIO_SYNTH_MAX_SIZE, &v, &err))
		bio_tool_die_err(&t, &err);
	j.params.size = (uint32_t)(size >= 0 ? size : v);
	if (bio_config_get_str(t.cfg, "synth.format", &fmt, &err))
		bio_tool_die_err(&t, &err);
	if (format_opt)
		fmt = format_opt;
	else if (strcmp(fmt, "bmp") && strcmp(fmt, "png"))
		bio_tool_die(&t, "%s: synth.format: invalid value '%s' (expected bmp or png)",
			     bio_config_origin(t.cfg, "synth.format"), fmt);
	j.format = strcmp(fmt, "png") ? FMT_BMP : FMT_PNG;
	if (bio_config_get_double_range(t.cfg, "synth.noise", 0, 1, &d, &err))
		bio_tool_die_err(&t, &err);
	j.params.noise = noise >= 0 ? noise : d;
	if (bio_config_get_double_range(t.cfg, "synth.variation", 0, 2, &d, &err))
		bio_tool_die_err(&t, &err);
	j.params.variation = variation >= 0 ? variation : d;
	if (bio_config_get_int_range(t.cfg, "experiment.seed", 0, INT64_MAX, &v, &err))
		bio_tool_die_err(&t, &err);
	j.params.seed = (uint64_t)(seed >= 0 ? seed : v);
	if (bio_config_get_bool(t.cfg, "synth.eyelashes", &lashes, &err))
		bio_tool_die_err(&t, &err);
	j.params.eyelashes = no_lashes ? 0 : lashes;
	if (!fingers_opt) {
		size_t n = bio_config_count(t.cfg, "synth.fingers");
		j.n_fingers = 0;
		if (n == 0 || n > BIO_SYNTH_N_FINGERS) {
			if (bio_config_has(t.cfg, "synth.fingers"))
				bio_tool_die(&t, "%s: synth.fingers: expected 1 to %d finger names",
					     bio_config_origin(t.cfg, "synth.fingers"),
					     BIO_SYNTH_N_FINGERS);
			j.fingers[j.n_fingers++] = BIO_SYNTH_THUMB;
		}
		for (size_t i = 0; i < n && n <= BIO_SYNTH_N_FINGERS; i++) {
			const char *name = bio_config_item_at(t.cfg, "synth.fingers", i);
			int f = name ? bio_synth_finger_parse(name) : -1;
			for (int k = 0; k < j.n_fingers && f >= 0; k++)
				if (j.fingers[k] == f)
					f = -1;
			if (f < 0)
				bio_tool_die(&t, "%s: synth.fingers: invalid or repeated finger '%s'",
					     bio_config_origin(t.cfg, "synth.fingers"),
					     name ? name : "");
			j.fingers[j.n_fingers++] = f;
		}
	}
	if (!mods_opt)
		j.do_iris = j.do_print = 1;
	if (!out_opt && bio_config_get_str(t.cfg, "scan.root", &out_opt, &err))
		bio_tool_die_err(&t, &err);
	if (!out_opt || !*out_opt)
		bio_tool_usage_error(&t, "no output directory (-o DIR)");
	if (bio_synth_params_check(&j.params, &err))
		bio_tool_die_err(&t, &err);

	j.t = &t;
	j.root = out_opt;
	j.subject_digits = digits(j.n_subjects) < 3 ? 3 : digits(j.n_subjects);
	j.sample_digits = digits(j.n_samples) < 2 ? 2 : digits(j.n_samples);
	j.per_subject = 2 * (size_t)(j.do_iris + (j.do_print ? j.n_fingers : 0));
	j.n_items = j.per_subject * j.n_subjects;
	j.fail_item = j.n_items;
	if (!j.do_print)
		j.n_fingers = 0;

	mkdir_or_die(&t, j.root);
	size_t dlen = strlen(j.root) + 16;
	char *sub = malloc(dlen);
	if (!sub)
		bio_tool_die(&t, "out of memory");
	if (j.do_iris) {
		snprintf(sub, dlen, "%s/iris", j.root);
		mkdir_or_die(&t, sub);
	}
	if (j.do_print) {
		snprintf(sub, dlen, "%s/fingerprint", j.root);
		mkdir_or_die(&t, sub);
	}
	free(sub);

	double t0 = bio_clock_now_s();
	pthread_mutex_init(&j.lock, NULL);
	int n_threads = t.n_threads < 1 ? 1 : t.n_threads;
	if ((size_t)n_threads > j.n_items)
		n_threads = (int)j.n_items;
	/* the items go to whichever worker is free: images take unequal times */
	bio_thread_run(n_threads, (size_t)n_threads, workers_range, &j);
	pthread_mutex_destroy(&j.lock);
	bio_tool_progress_end(&t);
	if (j.fail_item < j.n_items)
		bio_tool_die_err(&t, &j.fail);
	write_provenance(&t, j.root);
	if (t.verbose)
		fprintf(stderr, "bio-synth: %s: %zu images (%u subjects x %zu series (side x modality or finger) x %u samples) in %.2f s, %d threads\n",
			j.root, j.n_done, j.n_subjects, j.per_subject, j.n_samples,
			bio_clock_now_s() - t0,
			n_threads);
	bio_config_free(t.cfg);
	bio_tool_output_commit(&t);
	return BIO_EXIT_OK;
}
