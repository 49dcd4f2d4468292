/* bio-dump: shows what is inside a bio-stream, as JSON lines (one JSON object per msgpack object:
 * the header, each record, the trailer), like msgpack2json or pamfile. Tensors are summarised
 * (dtype, shape, min, max, mean, count of non-finite values; --full adds their values), bin values
 * by their length (--full: hex). Every record is checked as any reader checks it (framing,
 * trailer count, tensor maps against their shapes and the stream limits), so bio-dump is also a
 * validator: a bad stream gets one error line and exit 1. The conversion is libbio's
 * (bio/dump.h); this file reads the options and the stream. */
#include <inttypes.h>

#include "bio/dump.h"
#include "bio/stream.h"
#include "tool.h"

enum { OPT_HEADER = 0x2000, OPT_COUNT, OPT_RECORD, OPT_FULL };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-dump [OPTIONS] [FILE...]\n"
		"Show a bio-stream (FILEs read as one stream; standard input when none, or -) as JSON\n"
		"lines: the header, one line per record, then {\"end\": N}. Tensors are summarised as\n"
		"{\"dtype\", \"shape\", \"min\", \"max\", \"mean\", \"nonfinite\"}; non-finite numbers are\n"
		"null. The whole stream is checked as every reader checks it.\n"
		"\n"
		"      --header         print the header only\n"
		"      --count          print the number of records only (after checking them all)\n"
		"      --record N       print record N only (0-based)\n"
		"      --full           tensors with their values (\"data\"), bin values as hex\n"
		BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: stream.max_tensor_bytes, stream.max_str_bytes. See bio-dump(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"header", no_argument, 0, OPT_HEADER},
		{"count", no_argument, 0, OPT_COUNT},
		{"record", required_argument, 0, OPT_RECORD},
		{"full", no_argument, 0, OPT_FULL},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	int opt, header_only = 0, count_only = 0;
	long long only = -1;
	struct bio_dump d = {0};

	bio_tool_init(&t, "bio-dump", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS, long_opts, usage)) != -1)
		switch (opt) {
		case OPT_HEADER: header_only = 1; break;
		case OPT_COUNT: count_only = 1; break;
		case OPT_RECORD: only = bio_tool_parse_count(&t, "--record", optarg, 0, INT64_MAX); break;
		case OPT_FULL: d.full = 1; break;
		}
	if (header_only + count_only + (only >= 0) > 1)
		bio_tool_usage_error(&t, "--header, --count and --record exclude each other");
	bio_tool_load_config(&t);
	d.r = bio_tool_open_inputs(&t, argc, argv, optind);
	const struct bio_value *meta, *rec;
	if (bio_stream_read_header(d.r, NULL, &meta, &err) != 0)
		bio_tool_die_err(&t, &err);
	d.out = bio_tool_output_open(&t);
	d.out_name = bio_tool_output_name(&t);
	if (!count_only && only < 0 && bio_dump_header(&d, meta, &err))
		bio_tool_die_err(&t, &err);
	uint64_t n = 0;
	int rc = 0;
	while (!header_only && (rc = bio_stream_read_record(d.r, &rec, &err)) == 1) {
		/* every record is checked, printed or not */
		int write = !count_only && (only < 0 || (uint64_t)only == n);
		if (bio_dump_record(&d, rec, n++, write, &err))
			bio_tool_die_err(&t, &err);
	}
	if (rc < 0)
		bio_tool_die_err(&t, &err);
	if (only >= 0 && (uint64_t)only >= n)
		bio_tool_die(&t, "%s: --record %lld: the stream has %" PRIu64 " records",
			     bio_stream_reader_source(d.r), only, n);
	if (count_only) {
		if (fprintf(d.out, "%" PRIu64 "\n", n) < 0)
			bio_tool_die(&t, "write error");
	} else if (!header_only && only < 0 && bio_dump_trailer(&d, n, &err)) {
		bio_tool_die_err(&t, &err);
	}
	bio_stream_reader_free(d.r);
	bio_config_free(t.cfg);
	t.cfg = NULL;
	bio_tool_output_commit(&t);
	return BIO_EXIT_OK;
}
