/* bio-stream v1: the msgpack tensor streams every program reads and writes.
 *
 * A stream is: a header map {"bio-stream": 1, "kind": K, "meta": {...}}, then records (maps with
 * string keys; the key "end" is reserved), then a trailer map {"end": N, ...extra counters}.
 * Several streams may follow each other (files given together, or `cat a b | tool`): they are
 * read as one stream of their records, provided every part has the same kind.
 * Tensors are maps {"dtype": "f32", "shape": [...], "data": <bin>}, little-endian, row-major.
 *
 * Record keys per kind (man5/bio-stream.5 is the authority):
 *  manifest:    id(str) label(int) identity(str) split("train"|"val"|"test") and one path string
 *               per modality, keyed by modality name ("iris", "fingerprint"); optional extra
 *               parsed fields. meta: labels [names...], modalities [names...], root, ...
 *  samples:     id label identity split, and one f32 tensor [1,H,W] per modality.
 *               meta: labels, modalities, shape [1,H,W], normalize {mean, std}; trailer adds
 *               "failed": number of samples skipped with --keep-going.
 *  batches:     epoch(int) index(int, batch within epoch) ids [str...] label (i64 tensor [B]) and
 *               one f32 tensor [B,1,H,W] per modality. meta: labels, modalities, batch_size, seed,
 *               epochs, start_epoch, batches_per_epoch, split.
 *  predictions: id label(int, -1 unknown) pred(int) pred_name(str) topk (i64 [k]) topk_scores
 *               (f32 [k]) and, on request, emb_<modality> and emb_fused (f32 [D]).
 *  checkpoint:  one record per tensor: name(str) tensor; meta holds config, epoch, step, labels,
 *               optimizer/scheduler/RNG state.
 *
 * Only stream.c talks to msgpack: values are seen through the opaque struct bio_value. */
#ifndef BIO_STREAM_H
#define BIO_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bio/error.h"
#include "bio/tensor.h"

#define BIO_STREAM_VERSION 1

/* Bounds on what a reader accepts before allocating. */
struct bio_stream_limits {
	size_t max_object_bytes; /* one msgpack object (record) as encoded */
	size_t max_tensor_bytes; /* one tensor's data */
	size_t max_str_bytes;    /* one string */
	size_t max_items;        /* elements of one array or map */
	int max_depth;           /* nesting depth */
};

/* Fills lim with the defaults (256 MiB objects and tensors, 1 MiB strings, 16M items, depth 32). */
void bio_stream_limits_default(struct bio_stream_limits *lim);

/* ---- values: borrowed views into the current header/record/trailer ---- */

enum bio_vtype {
	BIO_V_NIL,
	BIO_V_BOOL,
	BIO_V_INT,   /* signed or unsigned integer that fits int64 */
	BIO_V_FLOAT,
	BIO_V_STR,
	BIO_V_BIN,
	BIO_V_ARRAY,
	BIO_V_MAP,
	BIO_V_OTHER, /* ext or uint64 beyond int64 */
};

struct bio_value; /* opaque */

enum bio_vtype bio_value_type(const struct bio_value *v);
/* Element count of an array or map, byte length of a str or bin, else 0. */
size_t bio_value_len(const struct bio_value *v);
/* Map lookup by string key; NULL when v is not a map or the key is absent. */
const struct bio_value *bio_value_get(const struct bio_value *map, const char *key);
/* Array element i (NULL when out of range or not an array). */
const struct bio_value *bio_value_at(const struct bio_value *arr, size_t i);
/* Map entry i: key string (not NUL-terminated, *key_len bytes) and value; NULL key if not str. */
const struct bio_value *bio_value_map_at(const struct bio_value *map, size_t i, const char **key,
					 size_t *key_len);
/* Scalar accessors: return 0, or BIO_EFORMAT when v is NULL or of another type.
 * bio_value_double accepts ints too. *s of bio_value_str is not NUL-terminated. */
int bio_value_bool(const struct bio_value *v, int *out);
int bio_value_int(const struct bio_value *v, int64_t *out);
int bio_value_double(const struct bio_value *v, double *out);
int bio_value_str(const struct bio_value *v, const char **s, size_t *len);
int bio_value_bin(const struct bio_value *v, const void **data, size_t *len);
/* Returns a new NUL-terminated copy of a str value (caller frees), or NULL (wrong type/ENOMEM). */
char *bio_value_strdup(const struct bio_value *v);
/* True when str value v equals the C string s. */
int bio_value_str_eq(const struct bio_value *v, const char *s);
/* Validates a tensor map (dtype, shape, data size == numel*itemsize, limits) and makes *out a
 * borrowed view of its data (valid until the next read). Message names `what`. */
int bio_value_tensor(struct bio_tensor *out, const struct bio_value *v, const char *what,
		     struct bio_error *err);

/* ---- typed record getters with messages "<source>: record N: key 'k': cause" ---- */

struct bio_stream_reader;

/* Sets err (may be NULL) to "<source>: record N: key 'key': <cause>" for the record r read
 * last (N as the getters name it); returns code. For checks of a record beyond its types. */
int bio_record_error(struct bio_stream_reader *r, struct bio_error *err, int code,
		     const char *key, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* 1 when the string key "split" of rec equals split (split NULL: every record), 0 when it is
 * another split, <0 (err set) when the key is missing or not a string. */
int bio_record_in_split(struct bio_stream_reader *r, const struct bio_value *rec,
			const char *split, struct bio_error *err);

int bio_record_get_int(int64_t *out, struct bio_stream_reader *r, const struct bio_value *rec,
		       const char *key, struct bio_error *err);
int bio_record_get_str(const char **s, size_t *len, struct bio_stream_reader *r,
		       const struct bio_value *rec, const char *key, struct bio_error *err);
/* Tensor view; when dtype >= 0 it must match; when n_dims > 0 the rank must match. */
int bio_record_get_tensor(struct bio_tensor *out, struct bio_stream_reader *r,
			  const struct bio_value *rec, const char *key, int dtype, int n_dims,
			  struct bio_error *err);

/* ---- reader ---- */

/* Opens n_paths files ("-" = stdin) as one stream. lim may be NULL (defaults). Returns a new
 * reader or NULL with err set (missing file, ...). */
struct bio_stream_reader *bio_stream_reader_open(const char *const *paths, size_t n_paths,
						 const struct bio_stream_limits *lim,
						 struct bio_error *err);
/* Wraps an already open FILE (borrowed; not closed); name is used in messages. */
struct bio_stream_reader *bio_stream_reader_open_file(FILE *f, const char *name,
						      const struct bio_stream_limits *lim,
						      struct bio_error *err);
/* Opens an in-memory buffer (borrowed, must outlive the reader); for fuzzing and tests. */
struct bio_stream_reader *bio_stream_reader_open_mem(const void *buf, size_t len, const char *name,
						     const struct bio_stream_limits *lim,
						     struct bio_error *err);
void bio_stream_reader_free(struct bio_stream_reader *r);

/* Reads the first header; *kind and *meta are borrowed and stay valid for the reader's life.
 * Fails when the object is not a v1 header, or when want_kind (may be NULL) differs. */
int bio_stream_read_header(struct bio_stream_reader *r, const char *want_kind,
			   const struct bio_value **meta, struct bio_error *err);
/* Reads the next record into *rec (borrowed until the next read). Returns 1 with a record,
 * 0 at the clean end (every part's trailer seen and its count checked), < 0 on error (truncated
 * stream, count mismatch, a following part of another kind, malformed object). */
int bio_stream_read_record(struct bio_stream_reader *r, const struct bio_value **rec,
			   struct bio_error *err);
/* The kind named by the header ("samples", ...), NULL before bio_stream_read_header succeeded. */
const char *bio_stream_reader_kind(const struct bio_stream_reader *r);
/* Index (0-based, across all parts) of the record last returned. */
uint64_t bio_stream_reader_record_index(const struct bio_stream_reader *r);
/* Name for messages of where the last record came from: "path" or "<stdin>". */
const char *bio_stream_reader_source(const struct bio_stream_reader *r);
/* Sum of an integer trailer field (e.g. "failed") over the parts read so far (0 if absent). */
int64_t bio_stream_reader_trailer_sum(const struct bio_stream_reader *r, const char *key);

/* Random access (regular files only): where the last returned record starts, and a re-read of
 * a record at such a position. Returns BIO_EUNSUPPORTED for pipes. */
int bio_stream_reader_tell(const struct bio_stream_reader *r, size_t *part, uint64_t *offset);
int bio_stream_read_record_at(struct bio_stream_reader *r, size_t part, uint64_t offset,
			      const struct bio_value **rec, struct bio_error *err);

/* ---- writer ---- */

struct bio_stream_writer;

/* New writer on f (borrowed, not closed). */
struct bio_stream_writer *bio_stream_writer_new(FILE *f, struct bio_error *err);
void bio_stream_writer_free(struct bio_stream_writer *w);
/* Names the output in write-error messages ("out.bs: write error: No space left on device");
 * name is borrowed and must outlive the writer. */
void bio_stream_writer_set_name(struct bio_stream_writer *w, const char *name);

/* Writes map{"bio-stream":1, "kind":kind, "meta": ...}: the caller then packs exactly one value
 * (usually a map) as the meta. */
int bio_stream_begin_header(struct bio_stream_writer *w, const char *kind);
/* The header of a stage that carries its input's meta forward: as bio_stream_begin_header, then a
 * meta map holding the entries of meta (borrowed, may be NULL) whose keys are strings not in
 * own[0..n_own), in their order, with room for n_new more entries, which the caller packs next
 * (its own keys, replacing the input's). */
int bio_stream_begin_header_carry(struct bio_stream_writer *w, const char *kind,
				  const struct bio_value *meta, const char *const *own,
				  size_t n_own, size_t n_new);
/* Starts a record: the caller then packs exactly one map. Counts records. */
int bio_stream_begin_record(struct bio_stream_writer *w);
/* Writes the trailer {"end": N, extra keys...}: n_extra (key, value) integer pairs, then
 * flushes. Returns BIO_EIO / BIO_EPIPE if any write since creation failed. */
int bio_stream_finish(struct bio_stream_writer *w, size_t n_extra, const char *const *extra_keys,
		      const int64_t *extra_values, struct bio_error *err);
/* Number of records begun so far. */
uint64_t bio_stream_writer_count(const struct bio_stream_writer *w);

/* Packing primitives (msgpack shapes). They return 0 or the sticky write error. */
int bio_pack_map(struct bio_stream_writer *w, size_t n);
int bio_pack_array(struct bio_stream_writer *w, size_t n);
int bio_pack_str(struct bio_stream_writer *w, const char *s);
int bio_pack_strn(struct bio_stream_writer *w, const char *s, size_t len);
int bio_pack_int(struct bio_stream_writer *w, int64_t v);
int bio_pack_double(struct bio_stream_writer *w, double v);
int bio_pack_float(struct bio_stream_writer *w, float v);
int bio_pack_bool(struct bio_stream_writer *w, int v);
int bio_pack_nil(struct bio_stream_writer *w);
int bio_pack_bin(struct bio_stream_writer *w, const void *data, size_t len);
/* Packs {"dtype","shape","data"} for t. */
int bio_pack_tensor(struct bio_stream_writer *w, const struct bio_tensor *t);
/* Packs a copy of any value read from a stream (to copy headers/fields forward). */
int bio_pack_value(struct bio_stream_writer *w, const struct bio_value *v);
/* Convenience: key string then value. */
int bio_pack_kv_str(struct bio_stream_writer *w, const char *key, const char *val);
int bio_pack_kv_int(struct bio_stream_writer *w, const char *key, int64_t val);
int bio_pack_kv_double(struct bio_stream_writer *w, const char *key, double val);

#endif
