/* bio-scan's output (see scan.h): the lines about the files left out, the synth.yaml carried
 * forward from the data root, the manifest stream. */
#include "bio/scan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BIO_VERSION
#define BIO_VERSION "0.1.0"
#endif

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

/* say(ud, the printf-style line), cut at BIO_ERROR_MSG_MAX as every message is. */
static void say_line(void (*say)(void *ud, const char *msg), void *ud, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say_line(void (*say)(void *ud, const char *msg), void *ud, const char *fmt, ...)
{
	char msg[BIO_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	say(ud, msg);
}

void bio_scan_say_files(const struct bio_scan *s, void (*say)(void *ud, const char *msg),
			void *ud)
{
	char *buf = NULL, kept[8192]; /* longer paths cannot be opened anyway (PATH_MAX) */
	size_t cap = 0;
	for (size_t i = 0; i < bio_scan_n_unparsed(s); i++) {
		size_t n = bio_scan_unparsed_path(s, i, NULL, 0);
		if (list_path(&buf, &cap, n)) {
			bio_scan_unparsed_path(s, i, buf, cap);
			say_line(say, ud, "unparsed: %s", buf);
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
			say_line(say, ud, "unpaired: %s (chimeric: no partner identity)", buf);
		} else if (why == BIO_SCAN_EXTRA_SAMPLE) {
			say_line(say, ud, "unpaired: %s (chimeric: the partner identity has fewer "
				 "samples)", buf);
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
			say_line(say, ud, "unpaired: %s (no %s with the same identity and key)", buf,
				 names);
		}
	}
	for (size_t i = 0; i < bio_scan_n_duplicates(s); i++) {
		size_t n = bio_scan_duplicate_path(s, i, NULL, 0, NULL, 0);
		if (!list_path(&buf, &cap, n))
			continue;
		bio_scan_duplicate_path(s, i, buf, cap, kept, sizeof kept);
		say_line(say, ud, "duplicate: %s (same identity and key as %s)", buf, kept);
	}
	for (size_t i = 0; i < bio_scan_n_skipped(s); i++) {
		size_t n = bio_scan_skipped_path(s, i, NULL, 0);
		if (list_path(&buf, &cap, n)) {
			bio_scan_skipped_path(s, i, buf, cap);
			say_line(say, ud, "skipped: %s (not a regular file or a link to one)", buf);
		}
	}
	free(buf);
}

int bio_scan_summary(const struct bio_scan *s, char *line, size_t size)
{
	size_t unparsed = bio_scan_n_unparsed(s), unpaired = bio_scan_n_unpaired(s);
	size_t dups = bio_scan_n_duplicates(s), skipped = bio_scan_n_skipped(s);
	line[0] = 0;
	if (unparsed + unpaired + dups + skipped == 0)
		return 0;
	int n = snprintf(line, size, "%zu file%s unparsed, %zu unpaired", unparsed,
			 unparsed == 1 ? "" : "s", unpaired);
	if (dups && n > 0 && (size_t)n < size)
		n += snprintf(line + n, size - (size_t)n, ", %zu duplicate%s", dups,
			      dups == 1 ? "" : "s");
	if (skipped && n > 0 && (size_t)n < size)
		snprintf(line + n, size - (size_t)n, ", %zu skipped", skipped);
	return 1;
}

int bio_scan_read_synth_yaml(char **text, const struct bio_config *cfg, const char *root,
			     struct bio_error *err)
{
	int rc = 0;
	*text = NULL;
	if (!root && (rc = bio_config_get_str(cfg, "scan.root", &root, err)))
		return rc;
	if (!root || !*root)
		return 0;
	size_t n = strlen(root) + 16;
	char *path = malloc(n), *buf = NULL;
	if (!path)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	snprintf(path, n, "%s/synth.yaml", root);
	FILE *f = fopen(path, "r");
	if (!f)
		goto out; /* none: real data */
	enum { MAX = 64 * 1024 };
	if (!(buf = malloc(MAX + 1))) {
		fclose(f);
		rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
		goto out;
	}
	size_t len = fread(buf, 1, MAX + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad)
		rc = bio_error_set(err, BIO_EIO, "%s: read error", path);
	else if (len > MAX)
		rc = bio_error_set(err, BIO_ELIMIT, "%s: larger than %d bytes", path, MAX);
	else if (memchr(buf, 0, len))
		rc = bio_error_set(err, BIO_EFORMAT, "%s: not a text file", path);
	if (rc) {
		free(buf);
		goto out;
	}
	buf[len] = 0;
	*text = buf;
out:
	free(path);
	return rc;
}

int bio_scan_write_manifest(const struct bio_scan *s, struct bio_stream_writer *w,
			    const char *digest, const char *synth_yaml, struct bio_error *err)
{
	bio_stream_begin_header(w, "manifest");
	bio_pack_map(w, 3 + (synth_yaml != NULL) + bio_scan_n_meta(s));
	if (synth_yaml)
		bio_pack_kv_str(w, "synth_yaml", synth_yaml);
	bio_pack_kv_str(w, "program", "bio-scan");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	bio_pack_kv_str(w, "config_digest", digest);
	bio_scan_pack_meta(s, w);
	int rc = bio_scan_pack_records(s, w, err);
	if (rc == 0 || rc == BIO_EIO || rc == BIO_EPIPE)
		rc = bio_stream_finish(w, 0, NULL, NULL, err); /* reports the write error */
	return rc;
}
