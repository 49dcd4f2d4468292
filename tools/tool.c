/* Shared code of the bio-* programs (see tool.h): common options, the layered configuration
 * (built-in base and environment overlay, -c files, --set), one-line error exits with the exit
 * code table, atomic -o output (temp file beside the target, fsync, rename; removed on failure or
 * on SIGINT/SIGTERM/SIGHUP), checked close of stdout, thread budget and a terminal progress bar.
 * Linked into every tool, never into libbio, so it may print and exit. */
#include "bio/clock.h"
#include "bio/kernels.h"
#include "bio/sha256.h"
#include "bio/stale.h"
#include "bio/stream.h"
#include "bio/thread.h"
#include "tool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio_ext.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <poll.h>
#include <unistd.h>

/* Process-wide state, for the signal and exit handlers, which can reach nothing else: the temp
 * output path (set after the temp file exists, cleared before the path is freed), the program
 * name, and whether standard output has been closed and checked already. */
static char *volatile tool_signal_tmp;
static const char *tool_exit_name = "bio";
static int tool_stdout_done;

/* True when standard output is a pipe or socket whose reader has gone away (POLLERR on the write
 * end): the cause of a stdio error whose errno was lost, e.g. to a failed flush reported earlier. */
static int tool_stdout_reader_gone(void)
{
	struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

/* Flushes and closes stdout as gnulib's close_stream does (a closed stdout that was never
 * written to is fine); returns 1 on failure with *e the errno (0 when unknown). */
static int tool_stdout_close(int *e)
{
	int pending = __fpending(stdout) != 0;
	int bad = ferror(stdout) != 0;
	*e = 0;
	tool_stdout_done = 1;
	errno = 0;
	if (fflush(stdout) != 0) {
		bad = 1;
		*e = errno;
	}
	if (bad && !*e && tool_stdout_reader_gone())
		*e = EPIPE;
	errno = 0;
	if (fclose(stdout) != 0 && (pending || errno != EBADF)) {
		bad = 1;
		if (!*e)
			*e = errno;
	}
	return bad;
}

/* At exit: a temp output that was never committed is removed, and a program that exits without
 * bio_tool_output_commit (after --help, say) still gets its stdout checked: a write error turns
 * exit status 0 into 1 with the usual message. */
static void tool_at_exit(void)
{
	char *tmp = tool_signal_tmp;
	if (tmp) { /* still owned by the struct bio_tool, which nobody uses after exit */
		tool_signal_tmp = NULL;
		unlink(tmp);
		free(tmp);
	}
	int e;
	if (!tool_stdout_done && tool_stdout_close(&e) && e != EPIPE) {
		fprintf(stderr, "%s: <stdout>: write error%s%s\n", tool_exit_name, e ? ": " : "",
			e ? strerror(e) : "");
		_exit(BIO_EXIT_RUNTIME);
	}
}

static void tool_on_signal(int sig)
{
	/* Async-signal-safe calls only: unlink the partial output, then die of the same signal so
	 * the parent sees "killed by SIGTERM" (the handler runs with SA_RESETHAND | SA_NODEFER: the
	 * default action is back and the signal not blocked); _exit if it somehow returns. */
	char *tmp = tool_signal_tmp;
	if (tmp)
		unlink(tmp);
	raise(sig);
	_exit(128 + sig);
}

static void tool_catch_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct sigaction old, sa;
		if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN)
			continue; /* keep nohup's and the shell's "ignore" */
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = tool_on_signal;
		sa.sa_flags = SA_RESETHAND | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
}

static volatile sig_atomic_t *tool_stop_flag;

static void tool_on_stop(int sig)
{
	*tool_stop_flag = sig;
}

void bio_tool_catch_stop(volatile sig_atomic_t *flag)
{
	tool_stop_flag = flag;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tool_on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

void bio_tool_init(struct bio_tool *t, const char *name, int argc, char **argv)
{
	memset(t, 0, sizeof *t);
	/* getopt names the program from argv[0] in its messages: make that the short name. */
	if (argc > 0 && argv && name)
		argv[0] = (char *)name;
	t->name = name;
	t->n_threads = bio_thread_cpus();
	t->progress = isatty(STDERR_FILENO);
	signal(SIGPIPE, SIG_IGN);
	opterr = 0; /* bio_tool_bad_option says what was wrong, with a suggestion */
	static int registered;
	tool_exit_name = name ? name : "bio";
	if (!registered && atexit(tool_at_exit) == 0)
		registered = 1;
}

static const char *tool_name(const struct bio_tool *t)
{
	return t && t->name ? t->name : "bio";
}

/* "name: message" on stderr, after ending a progress line. */
static void tool_vwarn(struct bio_tool *t, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void tool_vwarn(struct bio_tool *t, const char *fmt, va_list ap)
{
	char msg[BIO_ERROR_MSG_MAX];
	vsnprintf(msg, sizeof msg, fmt, ap);
	bio_tool_progress_end(t);
	fprintf(stderr, "%s: %s\n", tool_name(t), msg);
}

void bio_tool_warn(struct bio_tool *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tool_vwarn(t, fmt, ap);
	va_end(ap);
}

void bio_tool_die(struct bio_tool *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tool_vwarn(t, fmt, ap);
	va_end(ap);
	if (t)
		bio_tool_output_abort(t);
	tool_stdout_done = 1; /* failing already: one message is enough */
	exit(BIO_EXIT_RUNTIME);
}

void bio_tool_die_err(struct bio_tool *t, const struct bio_error *err)
{
	/* Our reader went away (downstream stopped early): not an error of ours. */
	if (err && err->code == BIO_EPIPE && t && !t->out_tmp) {
		bio_tool_output_abort(t);
		tool_stdout_done = 1;
		exit(BIO_EXIT_OK);
	}
	bio_tool_die(t, "%s", err && err->msg[0] ? err->msg : "unknown error");
}

void bio_tool_usage_error(struct bio_tool *t, const char *fmt, ...)
{
	if (fmt) {
		char msg[BIO_ERROR_MSG_MAX];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		fprintf(stderr, "%s: %s\n", tool_name(t), msg);
	}
	fprintf(stderr, "Try '%s --help'.\n", tool_name(t));
	if (t)
		bio_tool_output_abort(t);
	tool_stdout_done = 1;
	exit(BIO_EXIT_USAGE);
}

/* Levenshtein distance of a and b (lengths < 64), capped at 64. */
static int edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
	int row[65];
	if (na > 63 || nb > 63)
		return 64;
	for (size_t j = 0; j <= nb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= na; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= nb; j++) {
			int up = row[j];
			int best = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

_Noreturn void bio_tool_bad_option(struct bio_tool *t, char **argv, const char *shortopts,
				   const struct option *longopts)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	const char *n = tool_name(t);
	if (!arg)
		arg = "";
	if (!strncmp(arg, "--", 2)) {
		const char *name = arg + 2;
		size_t len = strcspn(name, "=");
		const struct option *hit = NULL;
		for (const struct option *o = longopts; o && o->name; o++)
			if (strlen(o->name) == len && !strncmp(o->name, name, len))
				hit = o;
		if (hit) /* a known long option: its argument is missing or not allowed */
			fprintf(stderr, hit->has_arg == no_argument
						? "%s: option '--%s' doesn't allow an argument\n"
						: "%s: option '--%s' requires an argument\n",
				n, hit->name);
		else {
			const char *best = NULL;
			int best_d = 3;
			for (const struct option *o = longopts; o && o->name; o++) {
				int d = edit_distance(name, len, o->name, strlen(o->name));
				/* a prefix of several options is ambiguous: suggest the first */
				if (len >= 2 && !strncmp(o->name, name, len))
					d = 1;
				if (d < best_d && (size_t)d * 3 <= len + 1) {
					best = o->name;
					best_d = d;
				}
			}
			if (best)
				fprintf(stderr, "%s: unrecognized option '%.*s' (did you mean '--%s'?)\n",
					n, (int)(len + 2), arg, best);
			else
				fprintf(stderr, "%s: unrecognized option '%.*s'\n", n, (int)(len + 2),
					arg);
		}
	} else {
		const char *p = optopt ? strchr(shortopts, optopt) : NULL;
		if (p && p[1] == ':')
			fprintf(stderr, "%s: option requires an argument -- '%c'\n", n, optopt);
		else if (optopt && optopt < 0x100)
			fprintf(stderr, "%s: invalid option -- '%c'\n", n, optopt);
		else
			fprintf(stderr, "%s: invalid option '%s'\n", n, arg);
	}
	bio_tool_usage_error(t, NULL);
}

long long bio_tool_parse_count(struct bio_tool *t, const char *opt, const char *arg,
			       long long min, long long max)
{
	char *end;
	errno = 0;
	long long v = arg ? strtoll(arg, &end, 10) : 0;
	if (!arg || !*arg || *end || errno || isspace((unsigned char)arg[0]) || v < min || v > max)
		bio_tool_usage_error(t, "%s: invalid value '%s' (expected an integer from %lld to %lld)",
				     opt, arg ? arg : "", min, max);
	return v;
}

int bio_tool_common_opt(struct bio_tool *t, int opt, const char *arg)
{
	switch (opt) {
	case 'c':
		if (t->n_config_files >= BIO_TOOL_MAX_CONFIGS)
			bio_tool_usage_error(t, "--config: more than %d files", BIO_TOOL_MAX_CONFIGS);
		t->config_files[t->n_config_files++] = arg;
		return 1;
	case BIO_OPT_SET:
		if (t->n_sets >= BIO_TOOL_MAX_SETS)
			bio_tool_usage_error(t, "--set: more than %d values", BIO_TOOL_MAX_SETS);
		if (!strchr(arg, '='))
			bio_tool_usage_error(t, "--set: '%s': expected KEY=VALUE", arg);
		t->sets[t->n_sets++] = arg;
		return 1;
	case BIO_OPT_ENV:
		if (!*arg)
			bio_tool_usage_error(t, "--env: empty environment name");
		t->env = arg;
		return 1;
	case BIO_OPT_PRINT_CONFIG:
		t->print_config = 1;
		return 1;
	case BIO_OPT_PRINT_DIGEST:
		t->print_digest = arg;
		return 1;
	case 'o':
		if (!*arg)
			bio_tool_usage_error(t, "--output: empty file name");
		t->output = strcmp(arg, "-") ? arg : NULL;
		t->output_forced = !t->output;
		return 1;
	case 'j':
		t->n_threads = (int)bio_tool_parse_count(t, "--jobs", arg, 1, 4096);
		return 1;
	case 'v':
		t->verbose++;
		return 1;
	case BIO_OPT_VERSION:
		printf("%s (biopipe) %s\n", tool_name(t), BIO_VERSION);
		bio_tool_output_commit(t);
		exit(BIO_EXIT_OK);
	default:
		return 0;
	}
}

int bio_tool_next_opt(struct bio_tool *t, int argc, char **argv, const char *shortopts,
		      const struct option *longopts, void (*usage)(FILE *))
{
	int opt;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (bio_tool_common_opt(t, opt, optarg))
			continue;
		if (opt == 'h') {
			usage(stdout);
			exit(BIO_EXIT_OK); /* stdout is checked at exit */
		}
		if (opt == '?' || opt == ':')
			bio_tool_bad_option(t, argv, shortopts, longopts);
		return opt;
	}
	return -1;
}

void bio_tool_option_key(struct bio_tool *t, const char *opt, const char *key, const char *value)
{
	if (t->n_option_sets >= BIO_TOOL_MAX_OPTION_SETS || t->n_sets >= BIO_TOOL_MAX_SETS)
		bio_tool_usage_error(t, "%s: too many options", opt);
	char *slot = t->option_sets[t->n_option_sets];
	int n = snprintf(slot, BIO_TOOL_OPTION_SET_BYTES, "%s=%s", key, value);
	if (n < 0 || n >= BIO_TOOL_OPTION_SET_BYTES)
		bio_tool_usage_error(t, "%s: value too long", opt);
	t->n_option_sets++;
	t->sets[t->n_sets++] = slot;
}

void bio_tool_option_count(struct bio_tool *t, const char *opt, const char *key, const char *arg,
			   long long min, long long max)
{
	bio_tool_parse_count(t, opt, arg, min, max);
	bio_tool_option_key(t, opt, key, arg);
}

void bio_tool_option_number(struct bio_tool *t, const char *opt, const char *key, const char *arg,
			    double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (!*arg || *end || errno || !(v >= lo && v <= hi))
		bio_tool_usage_error(t, "%s: invalid value '%s' (expected a number from %g to %g)",
				     opt, arg, lo, hi);
	bio_tool_option_key(t, opt, key, arg);
}

static const struct bio_builtin_file *builtin_find(const char *name)
{
	for (size_t i = 0; i < bio_n_builtin_configs; i++)
		if (!strcmp(bio_builtin_configs[i].name, name))
			return &bio_builtin_configs[i];
	return NULL;
}

/* Dies naming the environments built in (configs/env/<name>.yaml). */
static _Noreturn void die_unknown_env(struct bio_tool *t, const char *env, const char *from)
{
	static const char pre[] = "configs/env/", suf[] = ".yaml";
	char list[512] = "";
	size_t len = 0;
	for (size_t i = 0; i < bio_n_builtin_configs; i++) {
		const char *n = bio_builtin_configs[i].name;
		size_t nl = strlen(n);
		if (strncmp(n, pre, sizeof pre - 1) || nl < sizeof pre - 1 + sizeof suf - 1 ||
		    strcmp(n + nl - (sizeof suf - 1), suf))
			continue;
		int w = snprintf(list + len, sizeof list - len, "%s%.*s", len ? ", " : "",
				 (int)(nl - (sizeof pre - 1) - (sizeof suf - 1)), n + sizeof pre - 1);
		if (w < 0 || (size_t)w >= sizeof list - len)
			break;
		len += (size_t)w;
	}
	bio_tool_die(t, "%s: unknown environment '%s' (available: %s)", from, env,
		     len ? list : "none");
}

struct bio_config *bio_tool_base_config(struct bio_tool *t)
{
	struct bio_error err = {0};
	struct bio_config *c = bio_config_new();
	if (!c)
		bio_tool_die(t, "configuration: out of memory");
	const struct bio_builtin_file *base = builtin_find("configs/base.yaml");
	if (!base)
		bio_tool_die(t, "configs/base.yaml: not built into this program");
	if (bio_config_load_base(c, base->name, (const char *)base->data, base->len, &err) != 0)
		bio_tool_die_err(t, &err);
	return c;
}

void bio_tool_load_config(struct bio_tool *t)
{
	struct bio_error err = {0};
	t->cfg = bio_tool_base_config(t);

	const char *from = "--env";
	const char *env = t->env;
	if (!env) {
		env = getenv("BIO_ENV");
		from = "BIO_ENV";
		if (!env || !*env) {
			env = "dev";
			from = "default environment";
		}
	}
	char name[256];
	const struct bio_builtin_file *f = NULL;
	if (!strchr(env, '/') &&
	    snprintf(name, sizeof name, "configs/env/%s.yaml", env) < (int)sizeof name)
		f = builtin_find(name);
	if (!f)
		die_unknown_env(t, env, from);
	t->env = env;
	if (bio_config_load_overlay(t->cfg, f->name, (const char *)f->data, f->len, &err) != 0)
		bio_tool_die_err(t, &err);

	for (int i = 0; i < t->n_config_files; i++)
		if (bio_config_load_file(t->cfg, t->config_files[i], &err) != 0)
			bio_tool_die_err(t, &err);
	for (int i = 0; i < t->n_sets; i++)
		if (bio_config_set(t->cfg, t->sets[i], &err) != 0)
			bio_tool_die_err(t, &err);

	if (t->print_digest)
		bio_tool_print_digest(t, t->print_digest); /* exits */
	if (t->print_config) {
		if (bio_config_dump(t->cfg, stdout, &err) != 0 && err.code != BIO_EIO)
			bio_tool_die_err(t, &err);
		const char *output = t->output;
		t->output = NULL; /* --print-config writes to stdout only */
		bio_tool_output_commit(t);
		t->output = output;
		bio_config_free(t->cfg);
		t->cfg = NULL;
		exit(BIO_EXIT_OK);
	}
}

void bio_tool_print_digest(struct bio_tool *t, const char *spec)
{
	enum { MAX_KEYS = 64, KEY_BYTES = 256 };
	char keys[MAX_KEYS][KEY_BYTES];
	const char *key_ptrs[MAX_KEYS];
	size_t n_keys = 0;
	const char *colon = strchr(spec, ':');
	const char *p = colon ? colon + 1 : spec;
	if (colon == spec)
		bio_tool_usage_error(t, "--print-digest: '%s': empty PREV before ':'", spec);
	while (*p) {
		size_t len = strcspn(p, ", ");
		if (len) {
			if (n_keys == MAX_KEYS || len >= KEY_BYTES)
				bio_tool_usage_error(t, "--print-digest: more than %d keys or a key "
							"over %d bytes", MAX_KEYS, KEY_BYTES - 1);
			memcpy(keys[n_keys], p, len);
			keys[n_keys][len] = '\0';
			key_ptrs[n_keys] = keys[n_keys];
			n_keys++;
		}
		p += len;
		p += *p != '\0';
	}
	if (!n_keys)
		bio_tool_usage_error(t, "--print-digest: '%s': expected [PREV:]KEY[,KEY...]", spec);
	struct bio_error err = {0};
	char hex[65];
	if (bio_config_digest(t->cfg, key_ptrs, n_keys, hex, &err) != 0)
		bio_tool_die_err(t, &err);
	if (colon) {
		struct bio_sha256 s;
		bio_sha256_init(&s);
		bio_sha256_update(&s, spec, (size_t)(colon - spec));
		bio_sha256_update(&s, "\n", 1);
		bio_sha256_update(&s, hex, 64);
		bio_sha256_update(&s, "\n", 1);
		bio_sha256_final_hex(hex, &s);
	}
	printf("%s\n", hex);
	t->output = NULL; /* the digest goes to stdout only */
	bio_tool_output_commit(t);
	bio_config_free(t->cfg);
	t->cfg = NULL;
	exit(BIO_EXIT_OK);
}

void bio_tool_kernels_init(struct bio_tool *t)
{
	struct bio_error err = {0};
	if (bio_kernels_init(&err) != 0)
		bio_tool_die_err(t, &err);
	if (t->verbose)
		bio_tool_warn(t, "%s", bio_kernels_describe());
}

FILE *bio_tool_output_open(struct bio_tool *t)
{
	if (!t->output) {
		t->out = stdout;
		return t->out;
	}
	struct stat st;
	if (stat(t->output, &st) == 0 && S_ISDIR(st.st_mode))
		bio_tool_die(t, "%s: %s", t->output, strerror(EISDIR));
	if (stat(t->output, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A device or FIFO (-o /dev/null): written in place; a temp file beside it and a
		 * rename would replace the device node itself. */
		t->out = fopen(t->output, "w");
		if (!t->out)
			bio_tool_die(t, "%s: %s", t->output, strerror(errno));
		return t->out;
	}
	const char *slash = strrchr(t->output, '/');
	size_t dir_len = slash ? (size_t)(slash - t->output) + 1 : 0;
	const char *base = slash ? slash + 1 : t->output;
	if (!*base)
		bio_tool_die(t, "%s: output is a directory", t->output);
	/* ".<base>.tmp.<PID>.XXXXXX": the PID lets the next run remove what a killed one left */
	size_t n = dir_len + 1 + strlen(base) + sizeof ".tmp..XXXXXX" + 24;
	char *tmp = malloc(n);
	if (!tmp)
		bio_tool_die(t, "%s: out of memory", t->output);
	char *dir = dir_len ? strndup(t->output, dir_len) : strdup(".");
	snprintf(tmp, n, ".%s.tmp.", base);
	if (dir)
		bio_remove_stale_temps(dir, tmp);
	free(dir);
	snprintf(tmp, n, "%.*s.%s.tmp.%ld.XXXXXX", (int)dir_len, t->output, base, (long)getpid());
	int fd = mkstemp(tmp);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		bio_tool_die(t, "%s: cannot create: %s", t->output, strerror(e));
	}
	t->out_tmp = tmp;
	tool_signal_tmp = tmp;
	tool_catch_signals();
	/* mkstemp makes 0600; give the file the mode a plain fopen would. */
	mode_t mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) != 0) {
		int e = errno;
		close(fd);
		bio_tool_die(t, "%s: %s", tmp, strerror(e));
	}
	t->out = fdopen(fd, "w");
	if (!t->out) {
		int e = errno;
		close(fd);
		bio_tool_die(t, "%s: %s", t->output, strerror(e));
	}
	return t->out;
}

FILE *bio_tool_output_open_stream(struct bio_tool *t)
{
	if (!t->output && !t->output_forced && isatty(STDOUT_FILENO))
		bio_tool_usage_error(t, "refusing to write a binary bio-stream to a terminal (use -o "
					"FILE, a pipe such as '| bio-dump', or -o - to force it)");
	return bio_tool_output_open(t);
}

struct bio_stream_writer *bio_tool_output_writer(struct bio_tool *t)
{
	struct bio_error err = {0};
	struct bio_stream_writer *w = bio_stream_writer_new(bio_tool_output_open_stream(t), &err);
	if (!w)
		bio_tool_die_err(t, &err);
	bio_stream_writer_set_name(w, bio_tool_output_name(t));
	return w;
}

const char *bio_tool_output_name(const struct bio_tool *t)
{
	return t && t->output ? t->output : "<stdout>";
}

void bio_tool_output_abort(struct bio_tool *t)
{
	if (!t || !t->out_tmp)
		return;
	char *tmp = t->out_tmp;
	unlink(tmp);
	tool_signal_tmp = NULL;
	t->out_tmp = NULL;
	if (t->out && t->out != stdout)
		fclose(t->out);
	t->out = NULL;
	free(tmp);
}

/* Flushes and closes stdout; dies on a write error, exits 0 when the reader went away. */
static void tool_close_stdout(struct bio_tool *t)
{
	int e;
	if (!tool_stdout_close(&e))
		return;
	if (e == EPIPE) {
		bio_tool_output_abort(t);
		exit(BIO_EXIT_OK);
	}
	bio_tool_die(t, "<stdout>: write error%s%s", e ? ": " : "", e ? strerror(e) : "");
}

void bio_tool_output_commit(struct bio_tool *t)
{
	if (t && t->out && t->out != stdout && !t->out_tmp) {
		/* -o naming a device or FIFO: no rename, but a checked close. */
		FILE *f = t->out;
		t->out = NULL;
		int e = 0;
		errno = 0;
		if (fflush(f) != 0 || ferror(f))
			e = errno ? errno : EIO;
		if (fclose(f) != 0 && !e)
			e = errno;
		if (e == EPIPE) {
			tool_stdout_done = 1;
			exit(BIO_EXIT_OK);
		}
		if (e)
			bio_tool_die(t, "%s: write error: %s", t->output, strerror(e));
	}
	if (t && t->out_tmp) {
		FILE *f = t->out;
		int e = 0;
		errno = 0;
		if (fflush(f) != 0 || ferror(f))
			e = errno ? errno : EIO;
		if (!e && fsync(fileno(f)) != 0 && errno != EINVAL && errno != EROFS)
			e = errno;
		t->out = NULL;
		if (fclose(f) != 0 && !e)
			e = errno;
		if (e)
			bio_tool_die(t, "%s: write error: %s", t->output, strerror(e));
		if (rename(t->out_tmp, t->output) != 0) {
			e = errno;
			bio_tool_die(t, "%s: %s", t->output, strerror(e));
		}
		char *tmp = t->out_tmp;
		tool_signal_tmp = NULL;
		t->out_tmp = NULL;
		free(tmp);
		/* Make the rename durable too; failure here loses nothing already written. */
		const char *slash = strrchr(t->output, '/');
		char dir[4096];
		if (slash && (size_t)(slash - t->output) < sizeof dir - 1) {
			memcpy(dir, t->output, (size_t)(slash - t->output) + 1);
			dir[slash - t->output + 1] = '\0';
		} else {
			strcpy(dir, ".");
		}
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	if (t)
		t->out = NULL;
	tool_close_stdout(t);
}

/* Time of the last redraw: progress bars are drawn at most 10 times a second. The bar is
 * display-only state, so it lives here rather than in struct bio_tool (whose layout is fixed). */
static double tool_progress_last, tool_progress_start;

/* "m:ss" or "h:mm:ss" of a duration in seconds. */
static void tool_clock(char *buf, size_t cap, double sec)
{
	if (!(sec >= 0) || sec > 359999)
		sec = 0;
	unsigned s = (unsigned)(sec + 0.5); /* < 100 hours */
	if (s >= 3600)
		snprintf(buf, cap, "%u:%02u:%02u", s / 3600 % 100, s / 60 % 60, s % 60);
	else
		snprintf(buf, cap, "%u:%02u", s / 60 % 60, s % 60);
}

void bio_tool_progress(struct bio_tool *t, const char *what, unsigned long long done,
		       unsigned long long total)
{
	if (!t || !t->progress)
		return;
	if (!what)
		what = "";
	double now = bio_clock_now_s();
	if (tool_progress_start == 0)
		tool_progress_start = now;
	if (now - tool_progress_last < 0.1 && !(total && done == total))
		return;
	tool_progress_last = now;
	double elapsed = now - tool_progress_start;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	char el[32], eta[32];
	tool_clock(el, sizeof el, elapsed);
	if (total) {
		enum { WIDTH = 30 };
		unsigned long long d = done > total ? total : done;
		int fill = (int)(d * WIDTH / total);
		char bar[WIDTH + 1];
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, ' ', (size_t)(WIDTH - fill));
		bar[WIDTH] = '\0';
		if (rate > 0)
			tool_clock(eta, sizeof eta, (double)(total - d) / rate);
		else
			snprintf(eta, sizeof eta, "?");
		fprintf(stderr, "\r%s: %s [%s] %llu/%llu %3d%% %.1f/s %s elapsed, ETA %s\033[K",
			tool_name(t), what, bar, done, total, (int)(d * 100 / total), rate, el, eta);
	} else {
		fprintf(stderr, "\r%s: %s %llu (%.1f/s, %s elapsed)\033[K", tool_name(t), what, done,
			rate, el);
	}
	t->progress = 2; /* a line is on the screen */
}

void bio_tool_progress_end(struct bio_tool *t)
{
	tool_progress_start = 0;
	if (!t || t->progress != 2)
		return;
	fputs("\n", stderr);
	t->progress = 1;
}

void bio_tool_say(void *ud, const char *msg)
{
	bio_tool_warn(ud, "%s", msg);
}

void bio_tool_progress_samples(void *ud, unsigned long long done)
{
	bio_tool_progress(ud, "samples", done, 0);
}

void bio_tool_stream_limits(struct bio_tool *t, struct bio_stream_limits *lim)
{
	struct bio_error err = {0};
	int64_t tensor_bytes, str_bytes;
	bio_stream_limits_default(lim);
	/* at most the fixed 256 MiB bio-stream(5) and bio-config(5) give */
	if (bio_config_get_int_range(t->cfg, "stream.max_tensor_bytes",
				     1, (int64_t)lim->max_tensor_bytes, &tensor_bytes, &err) < 0 ||
	    bio_config_get_int_range(t->cfg, "stream.max_str_bytes", 1,
				     (int64_t)1 << 32, &str_bytes, &err) < 0)
		bio_tool_die_err(t, &err);
	lim->max_tensor_bytes = (size_t)tensor_bytes;
	lim->max_str_bytes = (size_t)str_bytes;
	/* one encoded object must be able to hold the largest tensor */
	if (lim->max_object_bytes < lim->max_tensor_bytes + 65536)
		lim->max_object_bytes = lim->max_tensor_bytes + 65536;
}

struct bio_stream_reader *bio_tool_open_inputs(struct bio_tool *t, int argc, char **argv,
					       int first)
{
	static const char *const stdin_path[] = {"-"};
	const char *const *paths = (const char *const *)(argv + first);
	size_t n_paths = first < argc ? (size_t)(argc - first) : 0;
	if (n_paths == 0) {
		paths = stdin_path;
		n_paths = 1;
	}
	struct bio_stream_limits lim;
	struct bio_error err = {0};
	bio_tool_stream_limits(t, &lim);
	struct bio_stream_reader *r = bio_stream_reader_open(paths, n_paths, &lim, &err);
	if (!r)
		bio_tool_die_err(t, &err);
	return r;
}

const struct bio_value *bio_tool_next_record(struct bio_tool *t, struct bio_stream_reader *r)
{
	struct bio_error err = {0};
	const struct bio_value *rec;
	int rc = bio_stream_read_record(r, &rec, &err);
	if (rc < 0)
		bio_tool_die_err(t, &err);
	return rc ? rec : NULL;
}

void bio_tool_parse_shard(struct bio_tool *t, const char *arg, long long *shard_i,
			  long long *shard_n)
{
	char *end;
	errno = 0;
	long long i = strtoll(arg, &end, 10);
	if (errno || end == arg || *end != '/' || i < 0)
		bio_tool_usage_error(t, "--shard: expected I/N, got '%s'", arg);
	const char *ns = end + 1;
	long long n = strtoll(ns, &end, 10);
	if (errno || end == ns || *end || n < 1 || n > 1000000 || i >= n)
		bio_tool_usage_error(t, "--shard: expected I/N with 0 <= I < N <= 1000000, got '%s'",
				     arg);
	*shard_i = i;
	*shard_n = n;
}

