/* bio-scan: discovers a data set and writes its manifest stream. It walks one folder per
 * modality below the data root (scan.root, or ROOT), parses each file's relative path with the
 * configured regex, builds identities and pairing keys from the named groups, pairs the
 * modalities (or pairs identities by rank with scan.chimeric), labels identities 0..N-1 in name
 * order, assigns seeded train/val/test splits and writes one record per paired sample. Files that
 * do not parse, have no partner or repeat a key are counted in one line on stderr (listed with
 * -v), never dropped silently. All the logic is in lib/scan.c and lib/scan_manifest.c. */
#include <stdlib.h>

#include "bio/scan.h"
#include "bio/stream.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-scan [OPTIONS] [ROOT]\n"
		"Walk the data root ROOT (default scan.root), parse file paths by the configured\n"
		"patterns, pair the modalities, label identities and assign splits; write a manifest\n"
		"stream. Unparsed, unpaired and duplicate files are counted on standard error.\n"
		"\n"
		BIO_TOOL_COMMON_HELP
		"                       (-v lists every unparsed, unpaired and duplicate file)\n"
		"\n"
		"Config keys: scan.root, scan.modalities, scan.<modality>.{root,dir,pattern,fields,\n"
		"identity,pair_by}, scan.identity, scan.pair_by, scan.chimeric,\n"
		"scan.split.{mode,val,test,seed}. Data set layouts: configs/datasets/*.yaml.\n"
		"See bio-scan(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {BIO_TOOL_LONG_OPTS, {0, 0, 0, 0}};
	struct bio_tool t;
	struct bio_error err = {0};
	struct bio_scan *s = NULL;

	bio_tool_init(&t, "bio-scan", argc, argv);
	while (bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS, long_opts, usage) != -1)
		; /* no options of its own */
	if (argc - optind > 1)
		bio_tool_usage_error(&t, "one data root expected, got %d arguments", argc - optind);
	const char *root = optind < argc ? argv[optind] : NULL;
	if (root && !root[0])
		bio_tool_usage_error(&t, "empty data root");
	bio_tool_load_config(&t);

	if (bio_scan_from_config(&s, t.cfg, root, &err) != 0 || bio_scan_walk(s, &err) != 0 ||
	    bio_scan_build(s, &err) != 0)
		bio_tool_die_err(&t, &err);
	char line[512];
	if (t.verbose)
		bio_scan_say_files(s, bio_tool_say, &t);
	if (bio_scan_summary(s, line, sizeof line))
		bio_tool_warn(&t, "%s%s", line, t.verbose ? "" : " (use -v to list)");
	if (bio_scan_n_records(s) == 0)
		bio_tool_die(&t, "%s: no records (%zu files, %zu unparsed, %zu unpaired)",
			     root ? root : bio_scan_modality_base(s, 0), bio_scan_n_files(s),
			     bio_scan_n_unparsed(s), bio_scan_n_unpaired(s));
	if (t.verbose)
		bio_tool_warn(&t, "%zu records, %zu identities; train %zu, val %zu, test %zu",
			      bio_scan_n_records(s), bio_scan_n_labels(s),
			      bio_scan_split_count(s, BIO_SCAN_TRAIN),
			      bio_scan_split_count(s, BIO_SCAN_VAL),
			      bio_scan_split_count(s, BIO_SCAN_TEST));

	static const char *const digest_keys[] = {"scan"};
	char digest[65], *synth_yaml;
	if (bio_config_digest(t.cfg, digest_keys, 1, digest, &err) != 0 ||
	    bio_scan_read_synth_yaml(&synth_yaml, t.cfg, root, &err) != 0)
		bio_tool_die_err(&t, &err);

	struct bio_stream_writer *w = bio_tool_output_writer(&t);
	int rc = bio_scan_write_manifest(s, w, digest, synth_yaml, &err);
	if (rc < 0 && rc != BIO_EPIPE)
		bio_tool_die_err(&t, &err); /* BIO_EPIPE: exits 0 quietly in the commit */
	free(synth_yaml);
	bio_stream_writer_free(w);
	bio_scan_free(s);
	bio_config_free(t.cfg);
	t.cfg = NULL;
	bio_tool_output_commit(&t);
	return BIO_EXIT_OK;
}
