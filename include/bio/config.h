/* Layered YAML configuration (libyaml). The base layer (configs/base.yaml, built into every
 * program) defines every known key and its default; overlays (an environment file
 * configs/env/<env>.yaml, -c files, --set a.b=v) may only change keys the base defines, except
 * below maps the base leaves empty ({}), which are open. Values keep the file:line they came
 * from so errors can name it. Alias bombs and deep nesting are refused. bio-config(5) is the
 * user-facing description.
 *
 * Paths are dotted keys ("training.early_stopping.patience"); keys may not contain '.'. A plain
 * empty value, ~ or null is null: it counts as absent for the getters (the default applies).
 * Strings returned (get_str, key_at, item_at, origin) are borrowed from c and valid until the
 * next load/set on c or bio_config_free. Read-only calls may run concurrently. */
#ifndef BIO_CONFIG_H
#define BIO_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bio/error.h"
#include "bio/sha256.h" /* bio_config_digest is a SHA-256 */

struct bio_config;

/* Limits applied while parsing any layer (nodes and text bytes count aliases expanded). */
#define BIO_CONFIG_MAX_DEPTH 32
#define BIO_CONFIG_MAX_NODES 100000
#define BIO_CONFIG_MAX_BYTES (4u << 20)

/* Returns a new, empty configuration (NULL when out of memory); _free(NULL) is a no-op. */
struct bio_config *bio_config_new(void);
void bio_config_free(struct bio_config *c);

/* Parses YAML text (name used in messages) as the base layer: defines the known keys; only
 * once per c. Maps left empty ({}) are open: overlays may add any keys below them. */
int bio_config_load_base(struct bio_config *c, const char *name, const char *text, size_t len,
			 struct bio_error *err);
/* Merges an overlay from YAML text / a file. Unknown keys fail with "file:line: a.b: unknown key
 * (did you mean 'a.c'?)" (a suggestion when one is close), map/sequence/scalar changes fail; a
 * failed overlay changes nothing. Sequences and scalars are replaced whole, maps merged. An empty
 * file is an empty overlay. Syntax errors, duplicate keys, non-string keys, several documents,
 * tags other than the standard ones, merge keys (<<) and the limits above are errors. */
int bio_config_load_overlay(struct bio_config *c, const char *name, const char *text, size_t len,
			    struct bio_error *err);
int bio_config_load_file(struct bio_config *c, const char *path, struct bio_error *err);
/* Applies "a.b.c=value" (split at the first '='), origin "--set". A value starting with [ { " or
 * ' is parsed as YAML (a flow sequence/map or quoted scalar); any other value is taken literally
 * as a plain scalar ("a: b # c" stays that string); an empty value is null. */
int bio_config_set(struct bio_config *c, const char *assignment, struct bio_error *err);

/* True when path names a node (scalar, sequence or map). */
int bio_config_has(const struct bio_config *c, const char *path);
/* Typed getters. They take no default: configs/base.yaml is the one place a default lives, and
 * a key absent from the merged configuration is an error (BIO_ENOTFOUND: a bug, or a
 * configuration not built on the base). A null value (an empty --set key=) is "" for a string
 * and an error for the other types; a present value of the wrong type fails with
 * "<file:line>: <path>: expected an integer, got 'abc'". Integers are decimal ([+-]digits,
 * int64); numbers are decimal ([+-]1, 1.5, .5, 1e-3; no inf/nan/hex); booleans are
 * true/false/yes/no/on/off in any case. Quoting changes nothing except that a quoted value ("",
 * '~') is a string, never null. */
int bio_config_get_str(const struct bio_config *c, const char *path, const char **out,
		       struct bio_error *err);
int bio_config_get_int(const struct bio_config *c, const char *path, int64_t *out,
		       struct bio_error *err);
int bio_config_get_double(const struct bio_config *c, const char *path, double *out,
			  struct bio_error *err);
int bio_config_get_bool(const struct bio_config *c, const char *path, int *out,
			struct bio_error *err);
/* The string at path as an index into the n names (borrowed): *out is i where names[i] matches;
 * any other value fails with "expected a, b or c, got 'x'". */
int bio_config_get_choice(const struct bio_config *c, const char *path,
			  const char *const *names, int n, int *out, struct bio_error *err);
/* Range-checked integer/double getters: value outside [min, max] is an error naming file:line. */
int bio_config_get_int_range(const struct bio_config *c, const char *path, int64_t min,
			     int64_t max, int64_t *out, struct bio_error *err);
int bio_config_get_double_range(const struct bio_config *c, const char *path, double min,
				double max, double *out, struct bio_error *err);
/* Number of children of a map or sequence at path (0 when absent or scalar). */
size_t bio_config_count(const struct bio_config *c, const char *path);
/* Key of the i-th child of the map at path (NULL when out of range / not a map). */
const char *bio_config_key_at(const struct bio_config *c, const char *path, size_t i);
/* Scalar string of the i-th item of a sequence at path (NULL when absent / not a scalar). */
const char *bio_config_item_at(const struct bio_config *c, const char *path, size_t i);
/* "file:line" where the value at path was last set, "" when absent. */
const char *bio_config_origin(const struct bio_config *c, const char *path);
/* Formats an error about the value at path: "<origin>: <path>: <message>"; returns code. */
int bio_config_error(const struct bio_config *c, const char *path, struct bio_error *err, int code,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Writes the effective configuration as block-style YAML (maps in block style, sequences in flow
 * style) with keys in base order, strings quoted where needed: loading the dump as an overlay on
 * the same base reproduces the configuration. Fails only on a write error (BIO_EIO). */
int bio_config_dump(const struct bio_config *c, FILE *f, struct bio_error *err);
/* The same for the top-level sections named (sections borrowed; NULL: all), in base order: the one YAML
 * emitter for configuration written out (bio-synth's synth.yaml). */
int bio_config_dump_sections(const struct bio_config *c, FILE *f, const char *const *sections,
			     size_t n_sections, struct bio_error *err);
/* Calls fn for every scalar leaf (and every sequence, as a flow string "[a, b]") with its
 * dotted path and value, in dump order; stops and returns fn's value when non-zero. */
int bio_config_foreach_leaf(const struct bio_config *c,
			    int (*fn)(void *ud, const char *path, const char *value), void *ud);
/* SHA-256 (lowercase hex, 64 chars + NUL) of the canonical form of the subtrees named by
 * prefixes (all of it when n_prefixes is 0; a missing prefix is BIO_ENOTFOUND). Canonical form:
 * JSON-like, map keys sorted bytewise, every scalar a string ("0.001"), null as null, no spaces;
 * with prefixes, one line '"prefix"=<form>\n' per prefix in the order given. Independent of key
 * order and quoting in the input files; "1.0" and "1" differ. */
int bio_config_digest(const struct bio_config *c, const char *const *prefixes, size_t n_prefixes,
		      char out_hex[65], struct bio_error *err);

#endif
