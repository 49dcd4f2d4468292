/* A minimal bio-* program for tests/tools/config.bats: built from tools/tool.c with its own small
 * built-in configs, it copies standard input to its output (-o FILE or stdout) so the tests can
 * drive what every program shares: option handling, --env, atomic output, SIGTERM cleanup, a
 * full disk, a reader that goes away. --fail-after N dies after N bytes, to show that a failed
 * run leaves no partial file and keeps the old one; --no-commit forgets to commit. */
#include "../../tools/tool.c"

static const char demo_base[] = "demo:\n  greeting: hello\n  count: 3\n";
static const char demo_dev[] = "demo:\n  count: 4\n";
static const char demo_prod[] = "demo:\n  greeting: hi\n";

const struct bio_builtin_file bio_builtin_configs[] = {
	{"configs/base.yaml", (const unsigned char *)demo_base, sizeof demo_base - 1},
	{"configs/env/dev.yaml", (const unsigned char *)demo_dev, sizeof demo_dev - 1},
	{"configs/env/prod.yaml", (const unsigned char *)demo_prod, sizeof demo_prod - 1},
};
const size_t bio_n_builtin_configs = 3;

/* As the programs do: exit 0 after this, stdout still checked at exit. */
static void usage(FILE *f)
{
	fprintf(f, "Usage: tool-demo [OPTIONS] < IN\nCopy standard input to the output.\n\n"
		BIO_TOOL_COMMON_HELP
		"      --fail-after N   die after copying N bytes\n"
		"      --show           print demo.greeting, demo.count and -j first\n"
		"      --no-commit      return without committing the output (a bug)\n");
}

int main(int argc, char **argv)
{
	enum { OPT_FAIL_AFTER = 0x2000, OPT_SHOW, OPT_NO_COMMIT };
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"fail-after", required_argument, 0, OPT_FAIL_AFTER},
		{"show", no_argument, 0, OPT_SHOW},
		{"no-commit", no_argument, 0, OPT_NO_COMMIT},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	long long fail_after = -1;
	int show = 0, no_commit = 0, opt;
	bio_tool_init(&t, "tool-demo", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS, long_opts, usage)) !=
	       -1) {
		switch (opt) {
		case OPT_FAIL_AFTER:
			fail_after = bio_tool_parse_count(&t, "--fail-after", optarg, 0, 1LL << 40);
			break;
		case OPT_SHOW:
			show = 1;
			break;
		case OPT_NO_COMMIT:
			no_commit = 1;
			break;
		}
	}
	if (optind < argc)
		bio_tool_usage_error(&t, "unexpected argument '%s'", argv[optind]);
	bio_tool_load_config(&t);
	struct bio_error err = {0};
	const char *greeting;
	int64_t count;
	if (bio_config_get_str(t.cfg, "demo.greeting", &greeting, &err) != 0 ||
	    bio_config_get_int_range(t.cfg, "demo.count", 0, 100, &count, &err) != 0)
		bio_tool_die_err(&t, &err);
	FILE *out = bio_tool_output_open(&t);
	if (show)
		fprintf(out, "%s %lld %d\n", greeting, (long long)count, t.n_threads);
	char buf[4096];
	size_t n;
	long long copied = 0;
	while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
		if (fail_after >= 0 && copied + (long long)n > fail_after)
			bio_tool_die(&t, "<stdin>: failing after %lld bytes as asked", fail_after);
		if (fwrite(buf, 1, n, out) != n) {
			if (errno == EPIPE) {
				struct bio_error e = {BIO_EPIPE, "<stdout>: broken pipe"};
				bio_tool_die_err(&t, &e);
			}
			bio_tool_die(&t, "%s: write error: %s", t.output ? t.output : "<stdout>",
				     strerror(errno));
		}
		copied += (long long)n;
		bio_tool_progress(&t, "copying", (unsigned long long)copied, 0);
	}
	if (ferror(stdin))
		bio_tool_die(&t, "<stdin>: %s", strerror(errno));
	bio_tool_progress_end(&t);
	if (no_commit) { /* a program bug: the exit handler must still remove the temp file */
		bio_config_free(t.cfg);
		return 0;
	}
	bio_tool_output_commit(&t);
	bio_config_free(t.cfg);
	return 0;
}
