/* bio-scan: discovers a data set and writes its manifest stream. It walks one folder per
 * modality below the data root (scan.root, or ROOT), parses each file's relative path with the
 * configured regex, builds identities and pairing keys from the named groups, pairs the
 * modalities (or pairs identities by rank with scan.chimeric), labels identities 0..N-1 in name
 * order, assigns seeded train/val/test splits and writes one record per paired sample. Files that
 * do not parse, have no partner or repeat a key are counted in one line on stderr (listed with
 * -v), never dropped silently. All the logic is in lib/scan.c. */
#include <stdlib.h>
#include <string.h>

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

/* Path of the i-th listed file via one of the bio_scan_*_path accessors, into a grown buffer. */
static const char *list_path(char **buf, size_t *cap, size_t need)
{
	if (need + 1 > *cap) {
		char *p = realloc(*buf, need + 1);
		if (!p)
			return NULL;
		*buf = p;
		*cap = need + 1;
	}
	return *buf;
}

static void list_files(struct bio_tool *t, const struct bio_scan *s)
{
	char *buf = NULL, kept[8192]; /* longer paths cannot be opened anyway (PATH_MAX) */
	size_t cap = 0;
	for (size_t i = 0; i < bio_scan_n_unparsed(s); i++) {
		size_t n = bio_scan_unparsed_path(s, i, NULL, 0);
		if (list_path(&buf, &cap, n)) {
			bio_scan_unparsed_path(s, i, buf, cap);
			bio_tool_warn(t, "unparsed: %s", buf);
		}
	}
	for (size_t i = 0; i < bio_scan_n_unpaired(s); i++) {
		enum bio_scan_unpaired_reason why;
		unsigned missing;
		size_t n = bio_scan_unpaired_path(s, i, NULL, 0, NULL, NULL);
		if (!list_path(&buf, &cap, n))
			continue;
		bio_scan_unpaired_path(s, i, buf, cap, &why, &missing);
		if (why == BIO_SCAN_EXTRA_IDENTITY) {
			bio_tool_warn(t, "unpaired: %s (chimeric: no partner identity)", buf);
		} else if (why == BIO_SCAN_EXTRA_SAMPLE) {
			bio_tool_warn(t, "unpaired: %s (chimeric: the partner identity has fewer "
					 "samples)",
				      buf);
		} else {
			char names[256] = "";
			size_t len = 0;
			for (size_t m = 0; m < bio_scan_n_modalities(s); m++)
				if (missing & (1u << m)) {
					int k = snprintf(names + len, sizeof names - len, "%s%s",
							 len ? ", " : "",
							 bio_scan_modality_name(s, m));
					if (k > 0 && (size_t)k < sizeof names - len)
						len += (size_t)k;
				}
			bio_tool_warn(t, "unpaired: %s (no %s with the same identity and key)", buf,
				      names);
		}
	}
	for (size_t i = 0; i < bio_scan_n_duplicates(s); i++) {
		size_t n = bio_scan_duplicate_path(s, i, NULL, 0, NULL, 0);
		if (!list_path(&buf, &cap, n))
			continue;
		bio_scan_duplicate_path(s, i, buf, cap, kept, sizeof kept);
		bio_tool_warn(t, "duplicate: %s (same identity and key as %s)", buf, kept);
	}
	for (size_t i = 0; i < bio_scan_n_skipped(s); i++) {
		size_t n = bio_scan_skipped_path(s, i, NULL, 0);
		if (list_path(&buf, &cap, n)) {
			bio_scan_skipped_path(s, i, buf, cap);
			bio_tool_warn(t, "skipped: %s (not a regular file or a link to one)", buf);
		}
	}
	free(buf);
}

/* The one summary line: "3 files unparsed, 2 unpaired (use -v to list)". */
static void summary(struct bio_tool *t, const struct bio_scan *s)
{
	size_t unparsed = bio_scan_n_unparsed(s), unpaired = bio_scan_n_unpaired(s);
	size_t dups = bio_scan_n_duplicates(s), skipped = bio_scan_n_skipped(s);
	if (unparsed + unpaired + dups + skipped == 0)
		return;
	char line[512];
	int n = snprintf(line, sizeof line, "%zu file%s unparsed, %zu unpaired", unparsed,
			 unparsed == 1 ? "" : "s", unpaired);
	if (dups && n > 0 && (size_t)n < sizeof line)
		n += snprintf(line + n, sizeof line - (size_t)n, ", %zu duplicate%s", dups,
			      dups == 1 ? "" : "s");
	if (skipped && n > 0 && (size_t)n < sizeof line)
		n += snprintf(line + n, sizeof line - (size_t)n, ", %zu skipped", skipped);
	bio_tool_warn(t, "%s%s", line, t->verbose ? "" : " (use -v to list)");
}

/* ROOT/synth.yaml, written by bio-synth beside the images it made: carried forward as the
 * header's "synth_yaml" so that training records how its data was made. NULL when there is none
 * (real data); larger than 64 KiB or unreadable is an error. */
static char *read_synth_yaml(struct bio_tool *t, const char *root)
{
	struct bio_error err = {0};
	if (!root && bio_config_get_str(t->cfg, "scan.root", &root, &err))
		bio_tool_die_err(t, &err);
	if (!root || !*root)
		return NULL;
	size_t n = strlen(root) + 16;
	char *path = malloc(n);
	if (!path)
		bio_tool_die(t, "out of memory");
	snprintf(path, n, "%s/synth.yaml", root);
	FILE *f = fopen(path, "r");
	if (!f) {
		free(path);
		return NULL;
	}
	enum { MAX = 64 * 1024 };
	char *buf = malloc(MAX + 1);
	if (!buf)
		bio_tool_die(t, "out of memory");
	size_t len = fread(buf, 1, MAX + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad)
		bio_tool_die(t, "%s: read error", path);
	if (len > MAX)
		bio_tool_die(t, "%s: larger than %d bytes", path, MAX);
	if (memchr(buf, 0, len))
		bio_tool_die(t, "%s: not a text file", path);
	buf[len] = 0;
	free(path);
	return buf;
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
	if (t.verbose)
		list_files(&t, s);
	summary(&t, s);
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
	char digest[65];
	if (bio_config_digest(t.cfg, digest_keys, 1, digest, &err) != 0)
		bio_tool_die_err(&t, &err);

	char *synth_yaml = read_synth_yaml(&t, root);

	FILE *out = bio_tool_output_open_stream(&t);
	struct bio_stream_writer *w = bio_stream_writer_new(out, &err);
	if (!w)
		bio_tool_die_err(&t, &err);
	bio_stream_writer_set_name(w, bio_tool_output_name(&t));
	bio_stream_begin_header(w, "manifest");
	bio_pack_map(w, 3 + (synth_yaml != NULL) + bio_scan_n_meta(s));
	if (synth_yaml)
		bio_pack_kv_str(w, "synth_yaml", synth_yaml);
	free(synth_yaml);
	bio_pack_kv_str(w, "program", "bio-scan");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	bio_pack_kv_str(w, "config_digest", digest);
	bio_scan_pack_meta(s, w);
	int rc = bio_scan_pack_records(s, w, &err);
	if (rc == 0 || rc == BIO_EIO || rc == BIO_EPIPE)
		rc = bio_stream_finish(w, 0, NULL, NULL, &err); /* reports the write error */
	if (rc < 0 && rc != BIO_EPIPE)
		bio_tool_die_err(&t, &err);
	bio_stream_writer_free(w);
	bio_scan_free(s);
	bio_config_free(t.cfg);
	t.cfg = NULL;
	bio_tool_output_commit(&t);
	return BIO_EXIT_OK;
}
