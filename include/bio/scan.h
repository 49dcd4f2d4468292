/* Data-set discovery for bio-scan: walks one folder per modality, parses each file's path
 * (relative to the modality folder) with a POSIX extended regex whose capture groups are named by
 * a field list, builds identity and pairing keys from fields, pairs the modalities (same identity
 * and pairing key, or chimeric: identity i of one modality with identity i of the other), gives
 * labels 0..N-1 in identity-name order, assigns train/val/test splits from a seed, and packs the
 * result as a manifest bio-stream. Files that do not parse, have no partner, or repeat a key are
 * kept in lists so the caller can report them.
 *
 * Use: bio_scan_new, bio_scan_add_modality (or bio_scan_from_config) for each modality, then
 * bio_scan_walk (or bio_scan_add_path per file), bio_scan_build, then the accessors or
 * bio_scan_pack_meta / bio_scan_pack_records. */
#ifndef BIO_SCAN_H
#define BIO_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/stream.h"

#define BIO_SCAN_MAX_MODALITIES 8
#define BIO_SCAN_MAX_FIELDS 32 /* capture groups named per modality */
#define BIO_SCAN_MAX_DEPTH 64  /* folder nesting below a modality folder */
#define BIO_SCAN_MAX_FILES 100000000u

enum bio_scan_split_mode {
	BIO_SCAN_STRATIFIED, /* per identity: its samples split val/test/train, >= 1 train each */
	BIO_SCAN_DISJOINT,   /* whole identities go to train, val or test (open-set verification) */
};

enum bio_scan_split_name { BIO_SCAN_TRAIN, BIO_SCAN_VAL, BIO_SCAN_TEST };

struct bio_scan_options {
	int chimeric;                        /* pair identity i of each modality by sorted order */
	enum bio_scan_split_mode split_mode;
	double val, test;                    /* fractions, each in [0, 1], val + test <= 1 */
	uint64_t seed;                       /* split seed */
};

/* One modality's layout. All strings are borrowed for the call (copied). */
struct bio_scan_modality_spec {
	const char *name;     /* record key: "iris", "fingerprint" */
	const char *root;     /* data root of this modality */
	const char *dir;      /* folder below root ("" or "." = root itself) */
	const char *pattern;  /* POSIX ERE matched against the path relative to root/dir */
	const char *const *fields; /* fields[i] names capture group i+1; "" or "-" leaves it unnamed */
	size_t n_fields;
	const char *const *identity; /* field names whose values, joined by "_", name the identity */
	size_t n_identity;
	const char *const *pair_by;  /* field names whose values, joined by "_", form the pairing key */
	size_t n_pair_by;
};

/* Which member of a bio_scan_modality_spec an error is about. */
enum bio_scan_spec_part {
	BIO_SCAN_PART_NONE,
	BIO_SCAN_PART_NAME,
	BIO_SCAN_PART_PATTERN,
	BIO_SCAN_PART_FIELDS,
	BIO_SCAN_PART_IDENTITY,
	BIO_SCAN_PART_PAIR_BY,
};

/* Why a file has no record. */
enum bio_scan_unpaired_reason {
	BIO_SCAN_NO_PARTNER,      /* no file of another modality with the same identity and key */
	BIO_SCAN_EXTRA_IDENTITY,  /* chimeric: identity beyond the number of paired identities */
	BIO_SCAN_EXTRA_SAMPLE,    /* chimeric: sample beyond the partner identity's sample count */
};

struct bio_scan;

/* New empty scan with the given options (copied), or NULL when out of memory or opt is invalid
 * (err says why). */
struct bio_scan *bio_scan_new(const struct bio_scan_options *opt, struct bio_error *err);
void bio_scan_free(struct bio_scan *s);

/* Adds a modality (spec is copied; the regex is compiled once here). Fails (BIO_EINVAL) on a bad
 * regex, more named fields than capture groups, an identity or pair_by field that is not named,
 * a duplicate modality name; *part (may be NULL) says which member was wrong. */
int bio_scan_add_modality(struct bio_scan *s, const struct bio_scan_modality_spec *spec,
			  enum bio_scan_spec_part *part, struct bio_error *err);

/* Builds a scan from the config's scan section: scan.root (or root_override when not NULL),
 * scan.modalities, scan.<modality>.{root,dir,pattern,fields,identity,pair_by}, scan.identity,
 * scan.pair_by, scan.chimeric, scan.split.{mode,val,test,seed}. Errors name the key and its
 * file:line. Returns a new scan in *out. */
int bio_scan_from_config(struct bio_scan **out, const struct bio_config *cfg,
			 const char *root_override, struct bio_error *err);

/* Parses one path relative to modality m's folder; returns 1 when it matched (kept for
 * pairing), 0 when it did not (kept in the unparsed list), < 0 on error. */
int bio_scan_add_path(struct bio_scan *s, size_t m, const char *rel_path, struct bio_error *err);

/* Walks every modality's folder recursively (sorted by name, so the result does not depend on
 * readdir order) and adds each regular file. Symbolic links to files are followed; symbolic links
 * to folders are not descended into (no cycles) and, like other non-regular entries, are counted
 * as skipped. A missing folder fails with "<path>: No such file or directory". */
int bio_scan_walk(struct bio_scan *s, struct bio_error *err);

/* Sorts, pairs, labels and splits. Call once, after all files are added. */
int bio_scan_build(struct bio_scan *s, struct bio_error *err);

/* ---- results (valid after bio_scan_build; strings borrowed from s) ---- */

size_t bio_scan_n_modalities(const struct bio_scan *s);
const char *bio_scan_modality_name(const struct bio_scan *s, size_t m);
/* The folder scanned for modality m: root/dir. */
const char *bio_scan_modality_base(const struct bio_scan *s, size_t m);

size_t bio_scan_n_labels(const struct bio_scan *s);
const char *bio_scan_label_name(const struct bio_scan *s, size_t label);

size_t bio_scan_n_records(const struct bio_scan *s);
size_t bio_scan_record_label(const struct bio_scan *s, size_t r);
enum bio_scan_split_name bio_scan_record_split(const struct bio_scan *s, size_t r);
/* Full path (base/rel) of record r's file of modality m, written into buf (NUL-terminated,
 * truncated to buf_len). Returns the length it needs (excluding NUL), like snprintf. */
size_t bio_scan_record_path(const struct bio_scan *s, size_t r, size_t m, char *buf,
			    size_t buf_len);
/* Record r's pairing key of modality m. */
const char *bio_scan_record_key(const struct bio_scan *s, size_t r, size_t m);
/* Number of records in split sp. */
size_t bio_scan_split_count(const struct bio_scan *s, enum bio_scan_split_name sp);
/* "train", "val", "test". */
const char *bio_scan_split_str(enum bio_scan_split_name sp);

/* Counts of files seen: total regular files, unparsed, unpaired, duplicates (same modality,
 * identity and pairing key as an earlier file in sorted order), skipped non-regular entries. */
size_t bio_scan_n_files(const struct bio_scan *s);
size_t bio_scan_n_unparsed(const struct bio_scan *s);
size_t bio_scan_n_unpaired(const struct bio_scan *s);
size_t bio_scan_n_duplicates(const struct bio_scan *s);
size_t bio_scan_n_skipped(const struct bio_scan *s);
/* i-th unparsed file / unpaired file / duplicate / skipped entry as a full path into buf (as
 * bio_scan_record_path). Unpaired: *reason and *missing (bit m set = no partner in modality m)
 * may be NULL. Duplicate: the kept file's path goes into kept (may be NULL). */
size_t bio_scan_unparsed_path(const struct bio_scan *s, size_t i, char *buf, size_t buf_len);
size_t bio_scan_unpaired_path(const struct bio_scan *s, size_t i, char *buf, size_t buf_len,
			      enum bio_scan_unpaired_reason *reason, unsigned *missing);
size_t bio_scan_duplicate_path(const struct bio_scan *s, size_t i, char *buf, size_t buf_len,
			       char *kept, size_t kept_len);
size_t bio_scan_skipped_path(const struct bio_scan *s, size_t i, char *buf, size_t buf_len);

/* ---- manifest stream ---- */

/* Number of meta entries bio_scan_pack_meta packs (a caller adding its own entries packs a map of
 * that many plus its own, then its entries and this call). */
size_t bio_scan_n_meta(const struct bio_scan *s);
/* Packs the meta entries (key, value pairs, no map header): root, modalities, labels, identity,
 * pair_by, chimeric, split {mode, val, test, seed}, layout {modality: {root, dir, pattern,
 * fields}}, counts {files, unparsed, unpaired, duplicates, skipped, records, identities, train,
 * val, test}. */
int bio_scan_pack_meta(const struct bio_scan *s, struct bio_stream_writer *w);
/* Packs every record: {id, label, identity, split, <modality>: path..., fields: {<modality>:
 * {field: value}}}. */
int bio_scan_pack_records(const struct bio_scan *s, struct bio_stream_writer *w,
			  struct bio_error *err);

/* ---- bio-scan's output (lib/scan_manifest.c) ---- */

/* One line per file left out, through say(ud, line) (each cut at BIO_ERROR_MSG_MAX): "unparsed:
 * PATH", "unpaired: PATH (why)", "duplicate: PATH (same identity and key as KEPT)", "skipped:
 * PATH (...)". */
void bio_scan_say_files(const struct bio_scan *s, void (*say)(void *ud, const char *msg),
			void *ud);
/* The one summary line "3 files unparsed, 2 unpaired[, N duplicates][, N skipped]" into
 * line[size]; 1, or 0 with line empty when no file was left out. */
int bio_scan_summary(const struct bio_scan *s, char *line, size_t size);
/* ROOT/synth.yaml (root NULL: scan.root of cfg), written by bio-synth beside the images it made,
 * into *text (new; NULL when there is none: real data). Larger than 64 KiB, unreadable or not
 * text is an error. */
int bio_scan_read_synth_yaml(char **text, const struct bio_config *cfg, const char *root,
			     struct bio_error *err);
/* Writes the manifest stream to w (borrowed): the header (synth_yaml when not NULL, program,
 * version, config_digest digest, bio_scan_pack_meta), every record, the trailer. BIO_EPIPE when
 * w's reader went away. */
int bio_scan_write_manifest(const struct bio_scan *s, struct bio_stream_writer *w,
			    const char *digest, const char *synth_yaml, struct bio_error *err);

/* Natural order used for identities and keys: runs of digits compare as numbers ("2" < "10"),
 * ties broken by plain byte order. Exposed for tests. */
int bio_scan_strcmp_natural(const char *a, const char *b);

#endif
