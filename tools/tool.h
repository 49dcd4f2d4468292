/* Shared code of the bio-* programs (linked into tools, never into libbio): common options,
 * layered config loading, error exits, atomic output files, thread budget, progress bars.
 *
 * Usage pattern in tools/bio-<verb>.c:
 *
 *   static const struct option long_opts[] = { BIO_TOOL_LONG_OPTS, {"epochs", 1, 0, 'E'}, {0} };
 *   struct bio_tool t;
 *   bio_tool_init(&t, "bio-batch", argc, argv);
 *   while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "E:", long_opts,
 *                                   usage)) != -1)   // -h, -c --set --env -o -j -v ... handled
 *       switch (opt) { case 'E': ...; }
 *   bio_tool_load_config(&t);       // base + env + -c files + --set; handles --print-config
 *   FILE *out = bio_tool_output_open(&t);  // -o FILE (temp + rename) or stdout
 *   ...
 *   bio_tool_output_commit(&t);     // flush, fsync, rename; checks fclose(stdout)
 */
#ifndef BIO_TOOL_H
#define BIO_TOOL_H

#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "bio/config.h"
#include "bio/error.h"

#ifndef BIO_VERSION
#define BIO_VERSION "0.1.0"
#endif

/* Exit codes. */
enum { BIO_EXIT_OK = 0, BIO_EXIT_RUNTIME = 1, BIO_EXIT_USAGE = 2 };

/* Option values of the common long options (above the char range). */
enum {
	BIO_OPT_SET = 0x1000,
	BIO_OPT_ENV,
	BIO_OPT_PRINT_CONFIG,
	BIO_OPT_VERSION,
	BIO_OPT_PRINT_DIGEST,
};

/* Common options: -h/--help, --version, -c/--config FILE, --set k=v, --env NAME,
 * --print-config, --print-digest [PREV:]KEYS, -o/--output FILE, -j/--jobs N, -v/--verbose. */
#define BIO_TOOL_SHORT_OPTS "hc:o:j:v"
#define BIO_TOOL_LONG_OPTS                                                      \
	{"help", no_argument, 0, 'h'}, {"version", no_argument, 0, BIO_OPT_VERSION}, \
	{"config", required_argument, 0, 'c'},                                  \
	{"set", required_argument, 0, BIO_OPT_SET},                             \
	{"env", required_argument, 0, BIO_OPT_ENV},                             \
	{"print-config", no_argument, 0, BIO_OPT_PRINT_CONFIG},                 \
	{"print-digest", required_argument, 0, BIO_OPT_PRINT_DIGEST},           \
	{"output", required_argument, 0, 'o'}, {"jobs", required_argument, 0, 'j'}, \
	{"verbose", no_argument, 0, 'v'}

/* Lines for the common options, to print in each tool's --help (a tool whose -o is not a file
 * of its output, as bio-train's checkpoint directory, prints HEAD, its own -o line, TAIL). */
#define BIO_TOOL_COMMON_HELP_HEAD                                                             \
	"  -c, --config FILE    merge a YAML config file (repeatable; later files override)\n"   \
	"      --set KEY=VALUE  override one config key (repeatable), e.g. --set prep.size=32\n"  \
	"      --env NAME       environment overlay configs/env/NAME.yaml (default $BIO_ENV or dev)\n" \
	"      --print-config   print the effective configuration as YAML and exit\n"            \
	"      --print-digest [PREV:]KEY,...  print the SHA-256 of those sections or keys of the\n" \
	"                       effective configuration (chained after digest PREV) and exit\n"
#define BIO_TOOL_COMMON_HELP                                                                  \
	BIO_TOOL_COMMON_HELP_HEAD                                                             \
	"  -o, --output FILE    write to FILE atomically (default: standard output)\n"          \
	BIO_TOOL_COMMON_HELP_TAIL
#define BIO_TOOL_COMMON_HELP_TAIL                                                             \
	"  -j, --jobs N         threads to use (default: the cores available)\n"                 \
	"  -v, --verbose        more detail on standard error\n"                                 \
	"  -h, --help           show this help and exit\n"                                        \
	"      --version        show the version and exit\n"

#define BIO_TOOL_MAX_CONFIGS 64
#define BIO_TOOL_MAX_SETS 256
#define BIO_TOOL_MAX_OPTION_SETS 32
#define BIO_TOOL_OPTION_SET_BYTES 1024

struct bio_tool {
	const char *name;          /* "bio-prep" */
	struct bio_config *cfg;    /* effective config after bio_tool_load_config */
	const char *env;           /* environment overlay name */
	const char *config_files[BIO_TOOL_MAX_CONFIGS];
	int n_config_files;
	const char *sets[BIO_TOOL_MAX_SETS];
	int n_sets;
	char option_sets[BIO_TOOL_MAX_OPTION_SETS][BIO_TOOL_OPTION_SET_BYTES]; /* storage of the
				    * "key=value" of options that stand for a config key */
	int n_option_sets;
	int print_config;
	const char *print_digest;  /* --print-digest value, or NULL */
	const char *output;        /* -o path or NULL for stdout */
	int output_forced;         /* -o - given: standard output even when it is a terminal */
	int n_threads;             /* -j, default: cores available (sched_getaffinity) */
	int verbose;
	FILE *out;                 /* open output, after bio_tool_output_open */
	char *out_tmp;             /* temp path while writing -o FILE */
	int progress;              /* 1 when stderr is a terminal */
};

/* Initialises t for program name; installs SIGPIPE handling (ignored: writes fail with EPIPE). */
void bio_tool_init(struct bio_tool *t, const char *name, int argc, char **argv);
/* From now on SIGINT and SIGTERM set *flag to the signal's number instead of ending the program
 * (bio-train finishes the epoch, checkpoints and stops); the temp output is then not removed. */
void bio_tool_catch_stop(volatile sig_atomic_t *flag);
/* Handles a common option; returns 1 when handled, 0 when the tool must handle opt.
 * --version prints and exits 0; a bad -j value is a usage error. */
int bio_tool_common_opt(struct bio_tool *t, int opt, const char *arg);
/* The next option of the tool's own, as getopt_long over shortopts and longopts returns it
 * (optarg set), or -1 after the last: the common options are handled (bio_tool_common_opt),
 * -h/--help prints usage(stdout) and exits 0 (stdout checked), a bad option exits 2
 * (bio_tool_bad_option). So a main's option loop is a switch over its own options only. */
int bio_tool_next_opt(struct bio_tool *t, int argc, char **argv, const char *shortopts,
		      const struct option *longopts, void (*usage)(FILE *));
/* An option that stands for a config key (bio-batch --epochs N is batch.epochs=N): queued as a
 * --set in command-line order, so --print-config, the checkpoint's config and the tracked params
 * show what ran. opt names the option in messages. */
void bio_tool_option_key(struct bio_tool *t, const char *opt, const char *key, const char *value);
/* An integer option that stands for a config key (bio-batch --epochs N): checked as
 * bio_tool_parse_count checks it (min to max, a usage error naming opt), then queued as
 * bio_tool_option_key queues it. */
void bio_tool_option_count(struct bio_tool *t, const char *opt, const char *key, const char *arg,
			   long long min, long long max);
/* The same for a number option (bio-synth --noise X): a decimal number from lo to hi. */
void bio_tool_option_number(struct bio_tool *t, const char *opt, const char *key, const char *arg,
			    double lo, double hi);
/* A new configuration holding only the built-in base (for checking an overlay that came from
 * elsewhere, e.g. a stream header). Exits 1 on failure. */
struct bio_config *bio_tool_base_config(struct bio_tool *t);
/* Builds t->cfg: built-in base.yaml, env overlay (configs/env/<env>.yaml, built in), -c files,
 * --set values. Exits 1 with the config error; exits 0 after printing for --print-config or
 * --print-digest (bio_tool_print_digest). */
void bio_tool_load_config(struct bio_tool *t);

/* Prints the digest of the keys of spec "[PREV:]KEY[,KEY...]" (commas or spaces between keys;
 * a key is a top-level section "prep" or a dotted key "experiment.seed") on stdout: without PREV,
 * bio_config_digest of those keys, the config_digest a stream header carries for them; with PREV,
 * the SHA-256 of "PREV\n<that digest>\n", so a pipeline stage's digest chains its upstream
 * stage's. 64 hex digits and a newline. An unknown key exits 1, a malformed spec exits 2. */
void bio_tool_print_digest(struct bio_tool *t, const char *spec);

/* Picks the compute kernels for this CPU (bio_kernels_init; exits 1 on failure) and with -v
 * says which. */
void bio_tool_kernels_init(struct bio_tool *t);

/* Opens the output: stdout, or a temp file beside -o FILE. Exits 1 on failure. */
FILE *bio_tool_output_open(struct bio_tool *t);
/* Same for a binary bio-stream: refuses (usage error, exit 2) to write it to standard output
 * when that is a terminal, as gzip does, unless -o - asked for it. */
FILE *bio_tool_output_open_stream(struct bio_tool *t);
/* bio_tool_output_open_stream, then a bio-stream writer on it named as the output (new; the
 * caller frees it after bio_stream_finish). Exits 1 on failure. */
struct bio_stream_writer;
struct bio_stream_writer *bio_tool_output_writer(struct bio_tool *t);
/* Flushes, fsyncs and renames the temp file into place (or closes stdout, checked). Exits 1 on a
 * write error (disk full); exits 0 quietly when stdout's reader went away (EPIPE). */
void bio_tool_output_commit(struct bio_tool *t);
/* The output's name for messages: the -o path, or "<stdout>". */
const char *bio_tool_output_name(const struct bio_tool *t);
/* Removes the temp output, if any (called by bio_tool_die). */
void bio_tool_output_abort(struct bio_tool *t);

/* Prints "name: message" on stderr, removes partial output, exits 1. */
_Noreturn void bio_tool_die(struct bio_tool *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Same with a struct bio_error's message. */
_Noreturn void bio_tool_die_err(struct bio_tool *t, const struct bio_error *err);
/* Prints "name: message" (if fmt) and "Try 'name --help'." on stderr, exits 2. */
_Noreturn void bio_tool_usage_error(struct bio_tool *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* getopt_long returned '?' (bio_tool_init turns getopt's own messages off): the one line glibc
 * would print (unrecognized option, invalid option, missing argument), with "did you mean
 * '--x'?" when a long option of longopts is close to a misspelled one, then the Try line; exit 2. */
_Noreturn void bio_tool_bad_option(struct bio_tool *t, char **argv, const char *shortopts,
				   const struct option *longopts);
/* Prints "name: message" on stderr (a warning; does not exit). */
void bio_tool_warn(struct bio_tool *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Progress bar on stderr, only when stderr is a terminal: done of total (total 0 = unknown). */
void bio_tool_progress(struct bio_tool *t, const char *what, unsigned long long done,
		       unsigned long long total);
/* Ends the progress line. */
void bio_tool_progress_end(struct bio_tool *t);

/* Hooks for libbio's engines, ud being the struct bio_tool: a line to say (bio_tool_warn), and
 * the samples done so far of an unknown total (bio_tool_progress). */
void bio_tool_say(void *ud, const char *msg);
void bio_tool_progress_samples(void *ud, unsigned long long done);

/* Fills lim with the stream reader bounds: the defaults, with stream.max_tensor_bytes and
 * stream.max_str_bytes from the effective config. Exits 1 on a bad value. */
struct bio_stream_limits;
void bio_tool_stream_limits(struct bio_tool *t, struct bio_stream_limits *lim);

/* Opens the files argv[first..argc) (standard input when there are none; "-" is standard
 * input) as one bio-stream with the bounds of bio_tool_stream_limits. Exits 1 on failure. */
struct bio_stream_reader *bio_tool_open_inputs(struct bio_tool *t, int argc, char **argv,
					       int first);
/* The next record of r (borrowed until the next read), or NULL after the last; a read error
 * (bad or truncated input) exits 1 with its message. */
struct bio_value;
const struct bio_value *bio_tool_next_record(struct bio_tool *t, struct bio_stream_reader *r);
/* Parses a --shard value "I/N" (0 <= I < N <= 1000000); a bad value is a usage error. */
void bio_tool_parse_shard(struct bio_tool *t, const char *arg, long long *shard_i,
			  long long *shard_n);

/* Parses a non-negative integer option value ("--epochs 20"); usage error naming opt if bad. */
long long bio_tool_parse_count(struct bio_tool *t, const char *opt, const char *arg,
			       long long min, long long max);

/* Config files built into every program (generated from configs/base.yaml and configs/env/NAME.yaml
 * by the Makefile): name is the path relative to the source tree, e.g. "configs/env/dev.yaml". */
struct bio_builtin_file {
	const char *name;
	const unsigned char *data;
	size_t len;
};
extern const struct bio_builtin_file bio_builtin_configs[];
extern const size_t bio_n_builtin_configs;

#endif
