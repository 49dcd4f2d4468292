/* Data-set discovery (bio-scan's library half): per-modality folder walks sorted by name, path
 * parsing with POSIX extended regexes compiled once, identity and pairing keys built from named
 * capture groups, pairing by key or chimeric pairing by identity rank, labels in natural
 * identity-name order, seeded splits, and the manifest records. Strings live in a chunked arena
 * (no allocation per file); the file lists are sorted once per modality. */
#include "bio/scan.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bio/rng.h"
#include "free_list.h"

/* ---- arena: strings that live as long as the scan ---- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t cap, used;
	char data[];
};

struct arena {
	struct arena_chunk *head;
};

#define ARENA_CHUNK (1u << 20)

static char *arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	char *p = c->data + c->used;
	c->used += n;
	return p;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
}

/* ---- growable arrays ---- */

static int grow(void **items, size_t *cap, size_t need, size_t elem_bytes)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64;
	while (n < need) {
		if (n > SIZE_MAX / 2 / elem_bytes)
			return BIO_ENOMEM;
		n *= 2;
	}
	void *p = realloc(*items, n * elem_bytes);
	if (!p)
		return BIO_ENOMEM;
	*items = p;
	*cap = n;
	return 0;
}

#define GROW(arr, cap, need) grow((void **)&(arr), &(cap), (need), sizeof *(arr))

/* ---- data ---- */

struct scan_file {
	const char *rel;   /* path relative to the modality folder */
	const char *ident; /* identity key */
	const char *key;   /* pairing key */
	uint32_t spans;    /* index of this file's first span in the modality's span array */
	uint32_t dup;      /* 1: duplicate of an earlier file */
};

struct scan_span {
	int32_t so, eo; /* byte range of a capture group in rel; so < 0: group did not match */
};

struct scan_modality {
	char *name, *root, *dir, *pattern, *base;
	char **fields; /* n_fields names (may be "") */
	size_t n_fields;
	size_t *ident_groups, *pair_groups; /* 0-based field indexes */
	size_t n_ident, n_pair;
	char **ident_names, **pair_names;
	regex_t re;
	int re_ok;
	struct scan_file *files;
	size_t n_files, cap_files;
	struct scan_span *spans;
	size_t n_spans, cap_spans;
};

struct scan_ref {
	uint32_t m, i; /* modality; file index, or arena string for unparsed/skipped */
	uint32_t aux;  /* unpaired: reason; duplicate: index of the kept file */
	uint32_t missing;
	const char *rel;
};

struct scan_record {
	uint32_t file[BIO_SCAN_MAX_MODALITIES];
	uint32_t label;
	uint32_t split;
};

struct bio_scan {
	struct bio_scan_options opt;
	struct arena arena;
	struct scan_modality mod[BIO_SCAN_MAX_MODALITIES];
	size_t n_mod;
	size_t n_files_seen;
	struct scan_ref *unparsed, *unpaired, *dups, *skipped;
	size_t n_unparsed, cap_unparsed, n_unpaired, cap_unpaired, n_dups, cap_dups, n_skipped,
		cap_skipped;
	struct scan_record *recs;
	size_t n_recs, cap_recs;
	const char **labels;
	size_t n_labels, cap_labels;
	char *root; /* scan.root, for the meta (NULL: the first modality's root) */
	size_t split_counts[3];
	int built;
	regmatch_t pm[BIO_SCAN_MAX_FIELDS + 1];
	char *buf; /* scratch for paths and ids */
	size_t buf_cap;
};

/* ---- natural order ---- */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int bio_scan_strcmp_natural(const char *a, const char *b)
{
	const char *p = a, *q = b;
	while (*p && *q) {
		if (is_digit(*p) && is_digit(*q)) {
			while (*p == '0' && is_digit(p[1]))
				p++;
			while (*q == '0' && is_digit(q[1]))
				q++;
			size_t lp = 0, lq = 0;
			while (is_digit(p[lp]))
				lp++;
			while (is_digit(q[lq]))
				lq++;
			if (lp != lq)
				return lp < lq ? -1 : 1;
			int c = memcmp(p, q, lp);
			if (c)
				return c < 0 ? -1 : 1;
			p += lp;
			q += lq;
			continue;
		}
		if (*p != *q)
			return (unsigned char)*p < (unsigned char)*q ? -1 : 1;
		p++;
		q++;
	}
	if (*p || *q)
		return *p ? 1 : -1;
	int c = strcmp(a, b);
	return c < 0 ? -1 : c > 0;
}

/* ---- construction ---- */

struct bio_scan *bio_scan_new(const struct bio_scan_options *opt, struct bio_error *err)
{
	if (!(opt->val >= 0 && opt->val <= 1) || !(opt->test >= 0 && opt->test <= 1) ||
	    opt->val + opt->test > 1 + 1e-12) {
		bio_error_set(err, BIO_EINVAL,
			      "split fractions val %g and test %g must lie in [0, 1] with a sum <= 1",
			      opt->val, opt->test);
		return NULL;
	}
	if (opt->split_mode != BIO_SCAN_STRATIFIED && opt->split_mode != BIO_SCAN_DISJOINT) {
		bio_error_set(err, BIO_EINVAL, "unknown split mode %d", (int)opt->split_mode);
		return NULL;
	}
	struct bio_scan *s = calloc(1, sizeof *s);
	if (!s) {
		bio_error_set(err, BIO_ENOMEM, "scan: out of memory");
		return NULL;
	}
	s->opt = *opt;
	return s;
}

static void modality_destroy(struct scan_modality *m)
{
	if (m->re_ok)
		regfree(&m->re);
	bio_free_strs(m->fields, m->n_fields);
	bio_free_strs(m->ident_names, m->n_ident);
	bio_free_strs(m->pair_names, m->n_pair);
	BIO_FREE(m->ident_groups, m->pair_groups, m->name, m->root, m->dir, m->pattern, m->base,
		 m->files, m->spans);
}

void bio_scan_free(struct bio_scan *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_mod; i++)
		modality_destroy(&s->mod[i]);
	BIO_FREE(s->unparsed, s->unpaired, s->dups, s->skipped, s->recs, s->labels, s->buf, s->root);
	arena_free(&s->arena);
	free(s);
}

static const char *const reserved_keys[] = {"id", "label", "identity", "split", "fields", "end"};

/* Resolves names[] to field indexes of m; message names the first unknown field. */
static int resolve_fields(struct scan_modality *m, const char *const *names, size_t n,
			  size_t **groups_out, char ***names_out, struct bio_error *err)
{
	size_t *g = calloc(n ? n : 1, sizeof *g);
	char **nm = calloc(n ? n : 1, sizeof *nm);
	*groups_out = g;
	*names_out = nm;
	if (!g || !nm)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		size_t j;
		for (j = 0; j < m->n_fields; j++)
			if (m->fields[j][0] && strcmp(m->fields[j], names[i]) == 0)
				break;
		if (j == m->n_fields)
			return bio_error_set(err, BIO_EINVAL,
					     "field '%s' is not among the fields of modality '%s'",
					     names[i], m->name);
		g[i] = j;
		nm[i] = strdup(names[i]);
		if (!nm[i])
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	return 0;
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* Adds a modality; the message does not name the modality or the member (callers add that). */
static int add_modality_impl(struct bio_scan *s, const struct bio_scan_modality_spec *sp,
			     enum bio_scan_spec_part *part, struct bio_error *err)
{
	*part = BIO_SCAN_PART_NAME;
	if (s->built)
		return bio_error_set(err, BIO_EINVAL, "scan already built");
	if (!sp->name || !sp->name[0])
		return bio_error_set(err, BIO_EINVAL, "empty modality name");
	for (size_t i = 0; i < sizeof reserved_keys / sizeof reserved_keys[0]; i++)
		if (strcmp(sp->name, reserved_keys[i]) == 0)
			return bio_error_set(err, BIO_EINVAL,
					     "modality name '%s' is a reserved record key",
					     sp->name);
	for (size_t i = 0; i < s->n_mod; i++)
		if (strcmp(s->mod[i].name, sp->name) == 0)
			return bio_error_set(err, BIO_EINVAL, "modality '%s' given twice",
					     sp->name);
	if (s->n_mod == BIO_SCAN_MAX_MODALITIES)
		return bio_error_set(err, BIO_ELIMIT, "more than %d modalities",
				     BIO_SCAN_MAX_MODALITIES);
	if (!sp->root || !sp->root[0])
		return bio_error_set(err, BIO_EINVAL, "modality '%s' has no data root", sp->name);

	struct scan_modality *m = &s->mod[s->n_mod];
	memset(m, 0, sizeof *m);
	s->n_mod++; /* from here modality_destroy cleans up on failure */
	int rc;
	m->name = strdup(sp->name);
	m->root = dup_or_empty(sp->root);
	m->dir = dup_or_empty(sp->dir);
	m->pattern = dup_or_empty(sp->pattern);
	if (!m->name || !m->root || !m->dir || !m->pattern) {
		rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
		goto out;
	}
	/* base = root, or root/dir without doubled or trailing slashes */
	size_t rl = strlen(m->root);
	while (rl > 1 && m->root[rl - 1] == '/')
		rl--;
	const char *d = m->dir;
	while (d[0] == '.' && d[1] == '/')
		d += 2;
	while (*d == '/')
		d++;
	if (strcmp(d, ".") == 0)
		d = "";
	size_t dl = strlen(d);
	while (dl > 0 && d[dl - 1] == '/')
		dl--;
	m->base = malloc(rl + 1 + dl + 1);
	if (!m->base) {
		rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(m->base, m->root, rl);
	m->base[rl] = '\0';
	if (dl) {
		if (!(rl == 1 && m->root[0] == '/'))
			m->base[rl++] = '/';
		memcpy(m->base + rl, d, dl);
		m->base[rl + dl] = '\0';
	}

	*part = BIO_SCAN_PART_PATTERN;
	if (!m->pattern[0]) {
		rc = bio_error_set(err, BIO_EINVAL, "empty pattern");
		goto out;
	}
	int rr = regcomp(&m->re, m->pattern, REG_EXTENDED);
	if (rr != 0) {
		char msg[256];
		regerror(rr, &m->re, msg, sizeof msg);
		rc = bio_error_set(err, BIO_EINVAL, "invalid regular expression '%s': %s",
				   m->pattern, msg);
		goto out;
	}
	m->re_ok = 1;

	*part = BIO_SCAN_PART_FIELDS;
	if (sp->n_fields > BIO_SCAN_MAX_FIELDS) {
		rc = bio_error_set(err, BIO_ELIMIT, "%zu fields, at most %d", sp->n_fields,
				   BIO_SCAN_MAX_FIELDS);
		goto out;
	}
	if (sp->n_fields > m->re.re_nsub) {
		rc = bio_error_set(err, BIO_EINVAL,
				   "names %zu capture groups but the pattern has %zu "
				   "(field '%s' would be group %zu)",
				   sp->n_fields, (size_t)m->re.re_nsub, sp->fields[m->re.re_nsub],
				   (size_t)m->re.re_nsub + 1);
		goto out;
	}
	m->fields = calloc(sp->n_fields ? sp->n_fields : 1, sizeof *m->fields);
	if (!m->fields) {
		rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < sp->n_fields; i++) {
		const char *f = sp->fields[i] ? sp->fields[i] : "";
		if (strcmp(f, "-") == 0)
			f = "";
		m->fields[i] = strdup(f);
		m->n_fields = i + 1;
		if (!m->fields[i]) {
			rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
			goto out;
		}
		for (size_t j = 0; f[0] && j < i; j++)
			if (strcmp(m->fields[j], f) == 0) {
				rc = bio_error_set(err, BIO_EINVAL, "field '%s' named twice", f);
				goto out;
			}
	}

	*part = BIO_SCAN_PART_IDENTITY;
	if (sp->n_identity == 0) {
		rc = bio_error_set(err, BIO_EINVAL, "no identity fields");
		goto out;
	}
	rc = resolve_fields(m, sp->identity, sp->n_identity, &m->ident_groups, &m->ident_names,
			    err);
	m->n_ident = m->ident_names ? sp->n_identity : 0;
	if (rc)
		goto out;
	*part = BIO_SCAN_PART_PAIR_BY;
	rc = resolve_fields(m, sp->pair_by, sp->n_pair_by, &m->pair_groups, &m->pair_names, err);
	m->n_pair = m->pair_names ? sp->n_pair_by : 0;
	if (rc)
		goto out;
	*part = BIO_SCAN_PART_NONE;
	return 0;
out:
	/* ident/pair name arrays are calloc'ed: a partially filled one frees cleanly */
	modality_destroy(m);
	memset(m, 0, sizeof *m);
	s->n_mod--;
	return rc;
}

static const char *part_name(enum bio_scan_spec_part p)
{
	switch (p) {
	case BIO_SCAN_PART_PATTERN: return "pattern";
	case BIO_SCAN_PART_FIELDS: return "fields";
	case BIO_SCAN_PART_IDENTITY: return "identity";
	case BIO_SCAN_PART_PAIR_BY: return "pair_by";
	default: return "modality";
	}
}

int bio_scan_add_modality(struct bio_scan *s, const struct bio_scan_modality_spec *spec,
			  enum bio_scan_spec_part *part, struct bio_error *err)
{
	enum bio_scan_spec_part p;
	int rc = add_modality_impl(s, spec, &p, err);
	if (part)
		*part = p;
	if (rc)
		bio_error_prefix(err, "%s: %s", spec->name ? spec->name : "", part_name(p));
	return rc;
}

/* ---- from the configuration ---- */

struct name_list {
	const char **items;
	size_t n;
};

/* Reads the sequence of strings at path into *out (items borrowed from the config). */
static int cfg_list(const struct bio_config *c, const char *path, struct name_list *out,
		    struct bio_error *err)
{
	out->items = NULL;
	out->n = 0;
	size_t n = bio_config_count(c, path);
	if (n == 0) {
		const char *v = NULL;
		/* a scalar here is a mistake (a list is expected); an empty list is fine */
		if (bio_config_has(c, path) && bio_config_get_str(c, path, &v, NULL) == 0 &&
		    v && v[0])
			return bio_config_error(c, path, err, BIO_EINVAL,
						"expected a list of names, got '%s'", v);
		return 0;
	}
	if (n > BIO_SCAN_MAX_FIELDS)
		return bio_config_error(c, path, err, BIO_ELIMIT, "%zu items, at most %d", n,
					BIO_SCAN_MAX_FIELDS);
	out->items = calloc(n, sizeof *out->items);
	if (!out->items)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *v = bio_config_item_at(c, path, i);
		if (!v) {
			free(out->items);
			out->items = NULL;
			return bio_config_error(c, path, err, BIO_EINVAL,
						"item %zu: expected a name", i + 1);
		}
		out->items[i] = v;
	}
	out->n = n;
	return 0;
}

/* A modality's own root, dir and pattern (scan.<name>.<leaf>) are optional (a modality a config
 * adds need not name them): "" when absent. */
static int mod_str(const struct bio_config *cfg, const char *name, const char *leaf,
		   const char **out, struct bio_error *err)
{
	char key[256];
	snprintf(key, sizeof key, "scan.%s.%s", name, leaf);
	*out = "";
	return bio_config_has(cfg, key) ? bio_config_get_str(cfg, key, out, err) : 0;
}

/* The list of names scan.<name>.<leaf> of modality name (cfg_list). */
static int mod_list(const struct bio_config *cfg, const char *name, const char *leaf,
		    struct name_list *out, struct bio_error *err)
{
	char key[256];
	snprintf(key, sizeof key, "scan.%s.%s", name, leaf);
	return cfg_list(cfg, key, out, err);
}

int bio_scan_from_config(struct bio_scan **out, const struct bio_config *cfg,
			 const char *root_override, struct bio_error *err)
{
	*out = NULL;
	struct bio_scan *s = NULL;
	struct name_list mods = {0}, ident = {0}, pair = {0}, fields = {0}, m_ident = {0},
			 m_pair = {0};
	char key[256];
	int rc;
	const char *root = NULL, *mode = NULL;
	struct bio_scan_options opt = {0};
	int64_t seed = 0;

	if ((rc = bio_config_get_str(cfg, "scan.root", &root, err)))
		goto out;
	if (root_override)
		root = root_override;
	if ((rc = bio_config_get_bool(cfg, "scan.chimeric", &opt.chimeric, err)) ||
	    (rc = bio_config_get_str(cfg, "scan.split.mode", &mode, err)) ||
	    (rc = bio_config_get_double_range(cfg, "scan.split.val", 0.0, 1.0, &opt.val,
					      err)) ||
	    (rc = bio_config_get_double_range(cfg, "scan.split.test", 0.0, 1.0, &opt.test,
					      err)) ||
	    (rc = bio_config_get_int(cfg, "scan.split.seed", &seed, err)))
		goto out;
	if (strcmp(mode, "stratified") == 0) {
		opt.split_mode = BIO_SCAN_STRATIFIED;
	} else if (strcmp(mode, "disjoint") == 0) {
		opt.split_mode = BIO_SCAN_DISJOINT;
	} else {
		rc = bio_config_error(cfg, "scan.split.mode", err, BIO_EINVAL,
				      "expected stratified or disjoint, got '%s'", mode);
		goto out;
	}
	if (opt.val + opt.test > 1.0) {
		rc = bio_config_error(cfg, "scan.split.test", err, BIO_EINVAL,
				      "val %g + test %g exceeds 1", opt.val, opt.test);
		goto out;
	}
	opt.seed = (uint64_t)seed;
	s = bio_scan_new(&opt, err);
	if (!s) {
		rc = err ? err->code : BIO_ENOMEM;
		goto out;
	}
	s->root = strdup(root);
	if (!s->root) {
		rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = cfg_list(cfg, "scan.modalities", &mods, err)) ||
	    (rc = cfg_list(cfg, "scan.identity", &ident, err)) ||
	    (rc = cfg_list(cfg, "scan.pair_by", &pair, err)))
		goto out;
	if (mods.n == 0) {
		rc = bio_config_error(cfg, "scan.modalities", err, BIO_EINVAL,
				      "no modalities to scan");
		goto out;
	}
	if (opt.chimeric && mods.n < 2) {
		rc = bio_config_error(cfg, "scan.chimeric", err, BIO_EINVAL,
				      "chimeric pairing needs at least two modalities");
		goto out;
	}
	for (size_t i = 0; i < mods.n; i++) {
		const char *name = mods.items[i];
		const char *m_root = NULL, *dir = NULL, *pattern = NULL;
		if (strlen(name) > 64 || strchr(name, '.') || !name[0]) {
			rc = bio_config_error(cfg, "scan.modalities", err, BIO_EINVAL,
					      "bad modality name '%s'", name);
			goto out;
		}
		snprintf(key, sizeof key, "scan.%s", name);
		if (!bio_config_has(cfg, key) || bio_config_key_at(cfg, key, 0) == NULL) {
			rc = bio_config_error(cfg, "scan.modalities", err, BIO_EINVAL,
					      "modality '%s' has no settings (%s.dir, .pattern, "
					      ".fields)",
					      name, key);
			goto out;
		}
		if ((rc = mod_str(cfg, name, "root", &m_root, err)) ||
		    (rc = mod_str(cfg, name, "dir", &dir, err)) ||
		    (rc = mod_str(cfg, name, "pattern", &pattern, err)))
			goto out;
		free(fields.items);
		free(m_ident.items);
		free(m_pair.items);
		fields.items = m_ident.items = m_pair.items = NULL;
		if ((rc = mod_list(cfg, name, "fields", &fields, err)) ||
		    (rc = mod_list(cfg, name, "identity", &m_ident, err)) ||
		    (rc = mod_list(cfg, name, "pair_by", &m_pair, err)))
			goto out;
		struct bio_scan_modality_spec sp = {
			.name = name,
			.root = m_root[0] ? m_root : root,
			.dir = dir,
			.pattern = pattern,
			.fields = fields.items,
			.n_fields = fields.n,
			.identity = m_ident.n ? m_ident.items : ident.items,
			.n_identity = m_ident.n ? m_ident.n : ident.n,
			.pair_by = m_pair.n ? m_pair.items : pair.items,
			.n_pair_by = m_pair.n ? m_pair.n : pair.n,
		};
		if (!sp.root || !sp.root[0]) {
			rc = bio_config_error(cfg, "scan.root", err, BIO_EINVAL, "empty data root");
			goto out;
		}
		enum bio_scan_spec_part part;
		rc = add_modality_impl(s, &sp, &part, err);
		if (rc) {
			/* the key of the part at fault: the modality's own, or the scan-wide identity
			 * and pair_by lists it fell back to */
			const char *leaf = part == BIO_SCAN_PART_PATTERN    ? "pattern"
					   : part == BIO_SCAN_PART_FIELDS   ? "fields"
					   : part == BIO_SCAN_PART_IDENTITY ? "identity"
					   : part == BIO_SCAN_PART_PAIR_BY  ? "pair_by"
									    : NULL;
			int own = (part != BIO_SCAN_PART_IDENTITY || m_ident.n) &&
				  (part != BIO_SCAN_PART_PAIR_BY || m_pair.n);
			if (!leaf)
				snprintf(key, sizeof key, "scan.modalities");
			else if (own)
				snprintf(key, sizeof key, "scan.%s.%s", name, leaf);
			else
				snprintf(key, sizeof key, "scan.%s", leaf);
			char msg[BIO_ERROR_MSG_MAX], pkey[256];
			snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
			snprintf(pkey, sizeof pkey, "scan.%s.pattern", name);
			if (part == BIO_SCAN_PART_FIELDS &&
			    strcmp(bio_config_origin(cfg, pkey), bio_config_origin(cfg, key)) != 0)
				/* name both ends when they come from different places */
				rc = bio_config_error(cfg, key, err, rc, "%s; %s is from %s", msg,
						      pkey, bio_config_origin(cfg, pkey));
			else
				rc = bio_config_error(cfg, key, err, rc, "%s", msg);
			goto out;
		}
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	free(mods.items);
	free(ident.items);
	free(pair.items);
	free(fields.items);
	free(m_ident.items);
	free(m_pair.items);
	bio_scan_free(s);
	return rc;
}

/* ---- adding files ---- */

static int add_ref(struct scan_ref **arr, size_t *n, size_t *cap, struct scan_ref r,
		   struct bio_error *err)
{
	if (GROW(*arr, *cap, *n + 1))
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	(*arr)[(*n)++] = r;
	return 0;
}

/* Joins the values of groups[] of a parsed file with '_' into the arena. */
static const char *join_fields(struct bio_scan *s, const struct scan_modality *m,
			       const char *rel, const struct scan_span *sp, const size_t *groups,
			       size_t n)
{
	size_t len = n ? n - 1 : 0;
	for (size_t i = 0; i < n; i++) {
		const struct scan_span *g = &sp[groups[i]];
		if (g->so >= 0)
			len += (size_t)(g->eo - g->so);
	}
	char *p = arena_alloc(&s->arena, len + 1);
	if (!p)
		return NULL;
	char *q = p;
	for (size_t i = 0; i < n; i++) {
		const struct scan_span *g = &sp[groups[i]];
		if (i)
			*q++ = '_';
		if (g->so >= 0) {
			memcpy(q, rel + g->so, (size_t)(g->eo - g->so));
			q += g->eo - g->so;
		}
	}
	*q = '\0';
	(void)m;
	return p;
}

int bio_scan_add_path(struct bio_scan *s, size_t mi, const char *rel, struct bio_error *err)
{
	BIO_ASSERT(mi < s->n_mod && !s->built);
	struct scan_modality *m = &s->mod[mi];
	size_t len = strlen(rel);
	if (s->n_files_seen >= BIO_SCAN_MAX_FILES)
		return bio_error_set(err, BIO_ELIMIT, "%s: more than %u files", m->base,
				     BIO_SCAN_MAX_FILES);
	if (len > INT32_MAX / 2)
		return bio_error_set(err, BIO_ELIMIT, "%s: path too long", m->base);
	s->n_files_seen++;
	char *copy = arena_strndup(&s->arena, rel, len);
	if (!copy)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	if (regexec(&m->re, copy, m->n_fields + 1, s->pm, 0) != 0) {
		struct scan_ref r = {.m = (uint32_t)mi, .rel = copy};
		int rc = add_ref(&s->unparsed, &s->n_unparsed, &s->cap_unparsed, r, err);
		return rc ? rc : 0;
	}
	if (GROW(m->files, m->cap_files, m->n_files + 1) ||
	    GROW(m->spans, m->cap_spans, m->n_spans + m->n_fields))
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	if (m->n_spans > UINT32_MAX - m->n_fields)
		return bio_error_set(err, BIO_ELIMIT, "%s: too many files", m->base);
	struct scan_span *sp = m->spans + m->n_spans;
	for (size_t i = 0; i < m->n_fields; i++) {
		sp[i].so = (int32_t)s->pm[i + 1].rm_so;
		sp[i].eo = (int32_t)s->pm[i + 1].rm_eo;
		if (s->pm[i + 1].rm_so < 0)
			sp[i].so = sp[i].eo = -1;
	}
	struct scan_file *f = &m->files[m->n_files];
	f->rel = copy;
	f->spans = (uint32_t)m->n_spans;
	f->dup = 0;
	f->ident = join_fields(s, m, copy, sp, m->ident_groups, m->n_ident);
	f->key = join_fields(s, m, copy, sp, m->pair_groups, m->n_pair);
	if (!f->ident || !f->key)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	m->n_spans += m->n_fields;
	m->n_files++;
	return 1;
}

/* ---- walking ---- */

struct name_ent {
	size_t off;       /* of the name in the folder's name buffer, which may move while growing */
	const char *name; /* set once all names are read */
	unsigned char type;
};

static int cmp_name_ent(const void *a, const void *b)
{
	return strcmp(((const struct name_ent *)a)->name, ((const struct name_ent *)b)->name);
}

static int path_set(struct bio_scan *s, size_t at, const char *name, struct bio_error *err)
{
	size_t n = strlen(name);
	if (GROW(s->buf, s->buf_cap, at + n + 2))
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	memcpy(s->buf + at, name, n + 1);
	return 0;
}

static int skip_entry(struct bio_scan *s, size_t mi, size_t base_len, struct bio_error *err)
{
	const char *rel = s->buf + base_len + 1;
	char *copy = arena_strndup(&s->arena, rel, strlen(rel));
	if (!copy)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	struct scan_ref r = {.m = (uint32_t)mi, .rel = copy};
	return add_ref(&s->skipped, &s->n_skipped, &s->cap_skipped, r, err);
}

/* Walks the folder whose path is s->buf[0..len) (base_len: length of the modality folder). */
static int walk_dir(struct bio_scan *s, size_t mi, size_t len, size_t base_len, int depth,
		    struct bio_error *err)
{
	if (depth > BIO_SCAN_MAX_DEPTH)
		return bio_error_set(err, BIO_ELIMIT, "%.*s: folders nested deeper than %d",
				     (int)len, s->buf, BIO_SCAN_MAX_DEPTH);
	DIR *d = opendir(s->buf);
	if (!d)
		return bio_error_set(err, BIO_EIO, "%s: %s", s->buf, strerror(errno));
	char *chars = NULL;
	size_t n_chars = 0, cap_chars = 0;
	struct name_ent *ents = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		const char *nm = e->d_name;
		if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
			continue;
		size_t l = strlen(nm);
		if (GROW(chars, cap_chars, n_chars + l + 1) || GROW(ents, cap, n + 1)) {
			rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(chars + n_chars, nm, l + 1);
		ents[n].off = n_chars;
		ents[n].type = e->d_type;
		n_chars += l + 1;
		n++;
		errno = 0;
	}
	if (errno) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", s->buf, strerror(errno));
		goto out;
	}
	closedir(d);
	d = NULL;
	for (size_t i = 0; i < n; i++)
		ents[i].name = chars + ents[i].off;
	if (n > 1)
		qsort(ents, n, sizeof *ents, cmp_name_ent);
	for (size_t i = 0; i < n; i++) {
		s->buf[len] = '/';
		if ((rc = path_set(s, len + 1, ents[i].name, err)))
			goto out;
		size_t sub_len = len + 1 + strlen(ents[i].name);
		unsigned char t = ents[i].type;
		int is_reg = t == DT_REG, is_dir = t == DT_DIR;
		if (t == DT_UNKNOWN || t == DT_LNK) {
			struct stat st;
			if (lstat(s->buf, &st) != 0) {
				rc = bio_error_set(err, BIO_EIO, "%s: %s", s->buf, strerror(errno));
				goto out;
			}
			if (S_ISLNK(st.st_mode)) {
				/* follow links to files, never to folders (no cycles) */
				is_dir = 0;
				is_reg = stat(s->buf, &st) == 0 && S_ISREG(st.st_mode);
			} else {
				is_reg = S_ISREG(st.st_mode);
				is_dir = S_ISDIR(st.st_mode);
			}
		}
		if (is_dir) {
			rc = walk_dir(s, mi, sub_len, base_len, depth + 1, err);
		} else if (is_reg) {
			rc = bio_scan_add_path(s, mi, s->buf + base_len + 1, err);
			rc = rc < 0 ? rc : 0;
		} else {
			rc = skip_entry(s, mi, base_len, err);
		}
		if (rc)
			goto out;
	}
	s->buf[len] = '\0';
out:
	if (d)
		closedir(d);
	free(chars);
	free(ents);
	return rc;
}

int bio_scan_walk(struct bio_scan *s, struct bio_error *err)
{
	for (size_t mi = 0; mi < s->n_mod; mi++) {
		struct scan_modality *m = &s->mod[mi];
		struct stat st;
		if (stat(m->root, &st) != 0)
			return bio_error_set(err, BIO_EIO, "%s: %s", m->root, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return bio_error_set(err, BIO_EIO, "%s: %s", m->root, strerror(ENOTDIR));
		if (stat(m->base, &st) != 0)
			return bio_error_set(err, BIO_EIO, "%s: %s", m->base, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return bio_error_set(err, BIO_EIO, "%s: %s", m->base, strerror(ENOTDIR));
		if (path_set(s, 0, m->base, err))
			return err ? err->code : BIO_ENOMEM;
		size_t len = strlen(m->base);
		int rc = walk_dir(s, mi, len, len, 0, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- building: sort, pair, label, split ---- */

static int cmp_file(const void *a, const void *b)
{
	const struct scan_file *x = a, *y = b;
	int c = bio_scan_strcmp_natural(x->ident, y->ident);
	if (c)
		return c;
	c = bio_scan_strcmp_natural(x->key, y->key);
	if (c)
		return c;
	return strcmp(x->rel, y->rel);
}

/* Order of (identity, key) pairs; 0 only when both are byte-equal. */
static int cmp_key(const struct scan_file *x, const struct scan_file *y)
{
	int c = bio_scan_strcmp_natural(x->ident, y->ident);
	return c ? c : bio_scan_strcmp_natural(x->key, y->key);
}

static int add_unpaired(struct bio_scan *s, size_t m, size_t i, uint32_t reason, uint32_t missing,
			struct bio_error *err)
{
	struct scan_ref r = {.m = (uint32_t)m, .i = (uint32_t)i, .aux = reason, .missing = missing};
	return add_ref(&s->unpaired, &s->n_unpaired, &s->cap_unpaired, r, err);
}

static int add_record(struct bio_scan *s, const uint32_t *file, struct bio_error *err)
{
	if (GROW(s->recs, s->cap_recs, s->n_recs + 1))
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	struct scan_record *r = &s->recs[s->n_recs++];
	memset(r, 0, sizeof *r);
	memcpy(r->file, file, s->n_mod * sizeof *file);
	return 0;
}

static int add_label(struct bio_scan *s, const char *name, struct bio_error *err)
{
	if (GROW(s->labels, s->cap_labels, s->n_labels + 1))
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	s->labels[s->n_labels++] = name;
	return 0;
}

/* Next non-duplicate file index of modality m at or after i (n_files when none). */
static size_t next_kept(const struct scan_modality *m, size_t i)
{
	while (i < m->n_files && m->files[i].dup)
		i++;
	return i;
}

static int pair_by_key(struct bio_scan *s, struct bio_error *err)
{
	size_t cur[BIO_SCAN_MAX_MODALITIES];
	uint32_t file[BIO_SCAN_MAX_MODALITIES];
	for (size_t m = 0; m < s->n_mod; m++)
		cur[m] = next_kept(&s->mod[m], 0);
	for (;;) {
		const struct scan_file *min = NULL;
		for (size_t m = 0; m < s->n_mod; m++) {
			if (cur[m] == s->mod[m].n_files)
				continue;
			const struct scan_file *f = &s->mod[m].files[cur[m]];
			if (!min || cmp_key(f, min) < 0)
				min = f;
		}
		if (!min)
			return 0;
		uint32_t present = 0;
		for (size_t m = 0; m < s->n_mod; m++)
			if (cur[m] < s->mod[m].n_files &&
			    cmp_key(&s->mod[m].files[cur[m]], min) == 0)
				present |= 1u << m;
		uint32_t all = (s->n_mod == 32 ? 0u : (1u << s->n_mod)) - 1u;
		if (present == all) {
			for (size_t m = 0; m < s->n_mod; m++)
				file[m] = (uint32_t)cur[m];
			int rc = add_record(s, file, err);
			if (rc)
				return rc;
			/* label: records arrive in identity order */
			const char *ident = s->mod[0].files[cur[0]].ident;
			if (s->n_labels == 0 || strcmp(s->labels[s->n_labels - 1], ident) != 0)
				if ((rc = add_label(s, ident, err)))
					return rc;
			s->recs[s->n_recs - 1].label = (uint32_t)(s->n_labels - 1);
		} else {
			for (size_t m = 0; m < s->n_mod; m++)
				if (present & (1u << m)) {
					int rc = add_unpaired(s, m, cur[m], BIO_SCAN_NO_PARTNER,
							      all & ~present, err);
					if (rc)
						return rc;
				}
		}
		for (size_t m = 0; m < s->n_mod; m++)
			if (present & (1u << m))
				cur[m] = next_kept(&s->mod[m], cur[m] + 1);
	}
}

/* Chimeric: the i-th identity (sorted) of every modality forms label i; samples pair by rank. */
static int pair_chimeric(struct bio_scan *s, struct bio_error *err)
{
	size_t cur[BIO_SCAN_MAX_MODALITIES], end[BIO_SCAN_MAX_MODALITIES];
	uint32_t file[BIO_SCAN_MAX_MODALITIES];
	int rc;
	for (size_t m = 0; m < s->n_mod; m++)
		cur[m] = next_kept(&s->mod[m], 0);
	for (;;) {
		/* identity run [cur, end) in every modality */
		int any_done = 0;
		for (size_t m = 0; m < s->n_mod; m++) {
			const struct scan_modality *md = &s->mod[m];
			if (cur[m] == md->n_files) {
				any_done = 1;
				continue;
			}
			size_t e = cur[m];
			while (e < md->n_files &&
			       (md->files[e].dup ||
				strcmp(md->files[e].ident, md->files[cur[m]].ident) == 0))
				e++;
			end[m] = e;
		}
		if (any_done)
			break;
		size_t len = 0;
		for (size_t m = 0; m < s->n_mod; m++)
			len += strlen(s->mod[m].files[cur[m]].ident) + 1;
		char *name = arena_alloc(&s->arena, len);
		if (!name)
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
		name[0] = '\0';
		char *q = name;
		for (size_t m = 0; m < s->n_mod; m++) {
			const char *id = s->mod[m].files[cur[m]].ident;
			size_t l = strlen(id);
			if (m)
				*q++ = '+';
			memcpy(q, id, l);
			q += l;
		}
		*q = '\0';
		if ((rc = add_label(s, name, err)))
			return rc;
		for (;;) {
			int have_all = 1;
			for (size_t m = 0; m < s->n_mod; m++)
				if (cur[m] == end[m])
					have_all = 0;
			if (!have_all)
				break;
			for (size_t m = 0; m < s->n_mod; m++) {
				file[m] = (uint32_t)cur[m];
				cur[m] = next_kept(&s->mod[m], cur[m] + 1);
			}
			if ((rc = add_record(s, file, err)))
				return rc;
			s->recs[s->n_recs - 1].label = (uint32_t)(s->n_labels - 1);
		}
		for (size_t m = 0; m < s->n_mod; m++)
			for (; cur[m] < end[m]; cur[m] = next_kept(&s->mod[m], cur[m] + 1))
				if ((rc = add_unpaired(s, m, cur[m], BIO_SCAN_EXTRA_SAMPLE, 0, err)))
					return rc;
	}
	for (size_t m = 0; m < s->n_mod; m++)
		for (; cur[m] < s->mod[m].n_files; cur[m] = next_kept(&s->mod[m], cur[m] + 1))
			if ((rc = add_unpaired(s, m, cur[m], BIO_SCAN_EXTRA_IDENTITY, 0, err)))
				return rc;
	return 0;
}

static uint64_t hash_str(const char *str)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Number of items of n for fraction f, rounded half up. */
static size_t frac_count(double f, size_t n)
{
	double x = floor(f * (double)n + 0.5);
	return x <= 0 ? 0 : x >= (double)n ? n : (size_t)x;
}

/* val and test counts out of n, leaving at least one for training (val gives way first on a
 * tie). */
static void split_counts(double val, double test, size_t n, size_t *n_val, size_t *n_test)
{
	*n_val = frac_count(val, n);
	*n_test = frac_count(test, n);
	while (n > 0 && *n_val + *n_test > n - 1) {
		if (*n_val >= *n_test && *n_val > 0)
			(*n_val)--;
		else
			(*n_test)--;
	}
	if (n == 0)
		*n_val = *n_test = 0;
}

static int assign_splits(struct bio_scan *s, struct bio_error *err)
{
	uint32_t *perm = NULL;
	size_t n_perm = 0;
	struct bio_rng rng;
	if (s->opt.split_mode == BIO_SCAN_DISJOINT) {
		size_t n = s->n_labels, n_val, n_test;
		if (n > UINT32_MAX)
			return bio_error_set(err, BIO_ELIMIT, "too many identities");
		perm = malloc((n ? n : 1) * sizeof *perm);
		uint8_t *label_split = malloc(n ? n : 1);
		if (!perm || !label_split) {
			free(perm);
			free(label_split);
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
		}
		bio_rng_seed(&rng, s->opt.seed);
		bio_rng_permutation(&rng, perm, (uint32_t)n);
		split_counts(s->opt.val, s->opt.test, n, &n_val, &n_test);
		for (size_t k = 0; k < n; k++)
			label_split[perm[k]] = k < n_test		? BIO_SCAN_TEST
					       : k < n_test + n_val ? BIO_SCAN_VAL
								    : BIO_SCAN_TRAIN;
		for (size_t r = 0; r < s->n_recs; r++)
			s->recs[r].split = label_split[s->recs[r].label];
		free(label_split);
	} else {
		for (size_t a = 0; a < s->n_recs;) {
			size_t b = a;
			while (b < s->n_recs && s->recs[b].label == s->recs[a].label)
				b++;
			size_t n = b - a, n_val, n_test;
			if (n > n_perm) {
				free(perm);
				n_perm = n;
				perm = malloc(n * sizeof *perm);
				if (!perm)
					return bio_error_set(err, BIO_ENOMEM, "out of memory");
			}
			/* a stream per identity: adding identities leaves the others' splits */
			bio_rng_seed1(&rng, s->opt.seed, hash_str(s->labels[s->recs[a].label]));
			bio_rng_permutation(&rng, perm, (uint32_t)n);
			split_counts(s->opt.val, s->opt.test, n, &n_val, &n_test);
			for (size_t k = 0; k < n; k++)
				s->recs[a + perm[k]].split = k < n_test		 ? BIO_SCAN_TEST
							     : k < n_test + n_val ? BIO_SCAN_VAL
										  : BIO_SCAN_TRAIN;
			a = b;
		}
	}
	free(perm);
	for (size_t r = 0; r < s->n_recs; r++)
		s->split_counts[s->recs[r].split]++;
	return 0;
}

int bio_scan_build(struct bio_scan *s, struct bio_error *err)
{
	if (s->built)
		return bio_error_set(err, BIO_EINVAL, "scan already built");
	s->built = 1;
	for (size_t mi = 0; mi < s->n_mod; mi++) {
		struct scan_modality *m = &s->mod[mi];
		if (m->n_files > 1)
			qsort(m->files, m->n_files, sizeof *m->files, cmp_file);
		size_t kept = 0;
		for (size_t i = 1; i < m->n_files; i++) {
			if (strcmp(m->files[i].ident, m->files[kept].ident) == 0 &&
			    strcmp(m->files[i].key, m->files[kept].key) == 0) {
				m->files[i].dup = 1;
				struct scan_ref r = {.m = (uint32_t)mi, .i = (uint32_t)i,
						     .aux = (uint32_t)kept};
				if (add_ref(&s->dups, &s->n_dups, &s->cap_dups, r, err))
					return err ? err->code : BIO_ENOMEM;
			} else {
				kept = i;
			}
		}
	}
	int rc = s->opt.chimeric && s->n_mod > 1 ? pair_chimeric(s, err) : pair_by_key(s, err);
	if (rc)
		return rc;
	return assign_splits(s, err);
}

/* ---- results ---- */

size_t bio_scan_n_modalities(const struct bio_scan *s)
{
	return s->n_mod;
}

const char *bio_scan_modality_name(const struct bio_scan *s, size_t m)
{
	return m < s->n_mod ? s->mod[m].name : NULL;
}

const char *bio_scan_modality_base(const struct bio_scan *s, size_t m)
{
	return m < s->n_mod ? s->mod[m].base : NULL;
}

size_t bio_scan_n_labels(const struct bio_scan *s)
{
	return s->n_labels;
}

const char *bio_scan_label_name(const struct bio_scan *s, size_t label)
{
	return label < s->n_labels ? s->labels[label] : NULL;
}

size_t bio_scan_n_records(const struct bio_scan *s)
{
	return s->n_recs;
}

size_t bio_scan_record_label(const struct bio_scan *s, size_t r)
{
	BIO_ASSERT(r < s->n_recs);
	return s->recs[r].label;
}

enum bio_scan_split_name bio_scan_record_split(const struct bio_scan *s, size_t r)
{
	BIO_ASSERT(r < s->n_recs);
	return (enum bio_scan_split_name)s->recs[r].split;
}

static size_t join_path(const struct scan_modality *m, const char *rel, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", m->base, rel);
	return n < 0 ? 0 : (size_t)n;
}

size_t bio_scan_record_path(const struct bio_scan *s, size_t r, size_t m, char *buf,
			    size_t buf_len)
{
	BIO_ASSERT(r < s->n_recs && m < s->n_mod);
	return join_path(&s->mod[m], s->mod[m].files[s->recs[r].file[m]].rel, buf, buf_len);
}

const char *bio_scan_record_key(const struct bio_scan *s, size_t r, size_t m)
{
	BIO_ASSERT(r < s->n_recs && m < s->n_mod);
	return s->mod[m].files[s->recs[r].file[m]].key;
}

size_t bio_scan_split_count(const struct bio_scan *s, enum bio_scan_split_name sp)
{
	return (unsigned)sp < 3 ? s->split_counts[sp] : 0;
}

const char *bio_scan_split_str(enum bio_scan_split_name sp)
{
	switch (sp) {
	case BIO_SCAN_TRAIN: return "train";
	case BIO_SCAN_VAL: return "val";
	case BIO_SCAN_TEST: return "test";
	}
	return "?";
}

size_t bio_scan_n_files(const struct bio_scan *s)
{
	return s->n_files_seen;
}

size_t bio_scan_n_unparsed(const struct bio_scan *s)
{
	return s->n_unparsed;
}

size_t bio_scan_n_unpaired(const struct bio_scan *s)
{
	return s->n_unpaired;
}

size_t bio_scan_n_duplicates(const struct bio_scan *s)
{
	return s->n_dups;
}

size_t bio_scan_n_skipped(const struct bio_scan *s)
{
	return s->n_skipped;
}

size_t bio_scan_unparsed_path(const struct bio_scan *s, size_t i, char *buf, size_t buf_len)
{
	BIO_ASSERT(i < s->n_unparsed);
	return join_path(&s->mod[s->unparsed[i].m], s->unparsed[i].rel, buf, buf_len);
}

size_t bio_scan_skipped_path(const struct bio_scan *s, size_t i, char *buf, size_t buf_len)
{
	BIO_ASSERT(i < s->n_skipped);
	return join_path(&s->mod[s->skipped[i].m], s->skipped[i].rel, buf, buf_len);
}

size_t bio_scan_unpaired_path(const struct bio_scan *s, size_t i, char *buf, size_t buf_len,
			      enum bio_scan_unpaired_reason *reason, unsigned *missing)
{
	BIO_ASSERT(i < s->n_unpaired);
	const struct scan_ref *r = &s->unpaired[i];
	if (reason)
		*reason = (enum bio_scan_unpaired_reason)r->aux;
	if (missing)
		*missing = r->missing;
	return join_path(&s->mod[r->m], s->mod[r->m].files[r->i].rel, buf, buf_len);
}

size_t bio_scan_duplicate_path(const struct bio_scan *s, size_t i, char *buf, size_t buf_len,
			       char *kept, size_t kept_len)
{
	BIO_ASSERT(i < s->n_dups);
	const struct scan_ref *r = &s->dups[i];
	const struct scan_modality *m = &s->mod[r->m];
	if (kept && kept_len)
		join_path(m, m->files[r->aux].rel, kept, kept_len);
	return join_path(m, m->files[r->i].rel, buf, buf_len);
}

/* ---- manifest ---- */

size_t bio_scan_n_meta(const struct bio_scan *s)
{
	(void)s;
	return 9;
}

static int pack_names(struct bio_stream_writer *w, char *const *names, size_t n)
{
	int rc = bio_pack_array(w, n);
	for (size_t i = 0; i < n && !rc; i++)
		rc = bio_pack_str(w, names[i]);
	return rc;
}

int bio_scan_pack_meta(const struct bio_scan *s, struct bio_stream_writer *w)
{
	int rc = 0;
	const struct scan_modality *m0 = &s->mod[0];
	BIO_ASSERT(s->n_mod > 0);
	rc |= bio_pack_kv_str(w, "root", s->root ? s->root : m0->root);
	rc |= bio_pack_str(w, "modalities");
	rc |= bio_pack_array(w, s->n_mod);
	for (size_t m = 0; m < s->n_mod; m++)
		rc |= bio_pack_str(w, s->mod[m].name);
	rc |= bio_pack_str(w, "labels");
	rc |= bio_pack_array(w, s->n_labels);
	for (size_t i = 0; i < s->n_labels; i++)
		rc |= bio_pack_str(w, s->labels[i]);
	rc |= bio_pack_str(w, "identity");
	rc |= pack_names(w, m0->ident_names, m0->n_ident);
	rc |= bio_pack_str(w, "pair_by");
	rc |= pack_names(w, m0->pair_names, m0->n_pair);
	rc |= bio_pack_str(w, "chimeric");
	rc |= bio_pack_bool(w, s->opt.chimeric && s->n_mod > 1);
	rc |= bio_pack_str(w, "split");
	rc |= bio_pack_map(w, 4);
	rc |= bio_pack_kv_str(w, "mode",
			      s->opt.split_mode == BIO_SCAN_DISJOINT ? "disjoint" : "stratified");
	rc |= bio_pack_kv_double(w, "val", s->opt.val);
	rc |= bio_pack_kv_double(w, "test", s->opt.test);
	rc |= bio_pack_kv_int(w, "seed", (int64_t)s->opt.seed);
	rc |= bio_pack_str(w, "layout");
	rc |= bio_pack_map(w, s->n_mod);
	for (size_t mi = 0; mi < s->n_mod; mi++) {
		const struct scan_modality *m = &s->mod[mi];
		rc |= bio_pack_str(w, m->name);
		rc |= bio_pack_map(w, 7);
		rc |= bio_pack_kv_str(w, "root", m->root);
		rc |= bio_pack_kv_str(w, "dir", m->dir);
		rc |= bio_pack_kv_str(w, "base", m->base);
		rc |= bio_pack_kv_str(w, "pattern", m->pattern);
		rc |= bio_pack_str(w, "fields");
		rc |= pack_names(w, m->fields, m->n_fields);
		rc |= bio_pack_str(w, "identity");
		rc |= pack_names(w, m->ident_names, m->n_ident);
		rc |= bio_pack_str(w, "pair_by");
		rc |= pack_names(w, m->pair_names, m->n_pair);
	}
	rc |= bio_pack_str(w, "counts");
	rc |= bio_pack_map(w, 10);
	rc |= bio_pack_kv_int(w, "files", (int64_t)s->n_files_seen);
	rc |= bio_pack_kv_int(w, "unparsed", (int64_t)s->n_unparsed);
	rc |= bio_pack_kv_int(w, "unpaired", (int64_t)s->n_unpaired);
	rc |= bio_pack_kv_int(w, "duplicates", (int64_t)s->n_dups);
	rc |= bio_pack_kv_int(w, "skipped", (int64_t)s->n_skipped);
	rc |= bio_pack_kv_int(w, "records", (int64_t)s->n_recs);
	rc |= bio_pack_kv_int(w, "identities", (int64_t)s->n_labels);
	rc |= bio_pack_kv_int(w, "train", (int64_t)s->split_counts[BIO_SCAN_TRAIN]);
	rc |= bio_pack_kv_int(w, "val", (int64_t)s->split_counts[BIO_SCAN_VAL]);
	rc |= bio_pack_kv_int(w, "test", (int64_t)s->split_counts[BIO_SCAN_TEST]);
	return rc ? (rc < 0 ? rc : BIO_EIO) : 0;
}

/* Appends n bytes to s->buf at *len (kept NUL-terminated). */
static int buf_put(struct bio_scan *s, size_t *len, const char *p, size_t n)
{
	if (GROW(s->buf, s->buf_cap, *len + n + 1))
		return BIO_ENOMEM;
	memcpy(s->buf + *len, p, n);
	*len += n;
	s->buf[*len] = '\0';
	return 0;
}

/* Record id: identity "/" pairing key (chimeric: the keys joined by "+"). */
static int record_id(struct bio_scan *s, const struct scan_record *r, size_t *len)
{
	const char *label = s->labels[r->label];
	int rc = buf_put(s, len, label, strlen(label));
	size_t n_keys = s->opt.chimeric && s->n_mod > 1 ? s->n_mod : 1;
	rc |= buf_put(s, len, "/", 1);
	for (size_t m = 0; m < n_keys && !rc; m++) {
		const char *k = s->mod[m].files[r->file[m]].key;
		if (m)
			rc = buf_put(s, len, "+", 1);
		rc |= buf_put(s, len, k, strlen(k));
	}
	return rc;
}

int bio_scan_pack_records(const struct bio_scan *cs, struct bio_stream_writer *w,
			  struct bio_error *err)
{
	struct bio_scan *s = (struct bio_scan *)cs; /* only the scratch buffer changes */
	size_t n_named[BIO_SCAN_MAX_MODALITIES];
	for (size_t mi = 0; mi < s->n_mod; mi++) {
		n_named[mi] = 0;
		for (size_t i = 0; i < s->mod[mi].n_fields; i++)
			n_named[mi] += s->mod[mi].fields[i][0] != '\0';
	}
	for (size_t ri = 0; ri < s->n_recs; ri++) {
		const struct scan_record *r = &s->recs[ri];
		size_t len = 0;
		if (record_id(s, r, &len))
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
		int rc = bio_stream_begin_record(w);
		rc |= bio_pack_map(w, 5 + s->n_mod);
		rc |= bio_pack_str(w, "id");
		rc |= bio_pack_strn(w, s->buf, len);
		rc |= bio_pack_kv_int(w, "label", r->label);
		rc |= bio_pack_kv_str(w, "identity", s->labels[r->label]);
		rc |= bio_pack_kv_str(w, "split", bio_scan_split_str(r->split));
		for (size_t mi = 0; mi < s->n_mod; mi++) {
			const struct scan_modality *m = &s->mod[mi];
			const char *rel = m->files[r->file[mi]].rel;
			size_t bl = strlen(m->base), pl = 0;
			if (buf_put(s, &pl, m->base, bl) || buf_put(s, &pl, "/", 1) ||
			    buf_put(s, &pl, rel, strlen(rel)))
				return bio_error_set(err, BIO_ENOMEM, "out of memory");
			rc |= bio_pack_str(w, m->name);
			rc |= bio_pack_strn(w, s->buf, pl);
		}
		rc |= bio_pack_str(w, "fields");
		rc |= bio_pack_map(w, s->n_mod);
		for (size_t mi = 0; mi < s->n_mod; mi++) {
			const struct scan_modality *m = &s->mod[mi];
			const struct scan_file *f = &m->files[r->file[mi]];
			const struct scan_span *sp = m->spans + f->spans;
			rc |= bio_pack_str(w, m->name);
			rc |= bio_pack_map(w, n_named[mi]);
			for (size_t i = 0; i < m->n_fields; i++) {
				if (!m->fields[i][0])
					continue;
				rc |= bio_pack_str(w, m->fields[i]);
				if (sp[i].so >= 0)
					rc |= bio_pack_strn(w, f->rel + sp[i].so,
							    (size_t)(sp[i].eo - sp[i].so));
				else
					rc |= bio_pack_strn(w, "", 0);
			}
		}
		if (rc)
			return bio_error_set(err, rc < 0 ? rc : BIO_EIO,
					     "writing record %zu: %s", ri,
					     bio_error_name(rc < 0 ? rc : BIO_EIO));
	}
	return 0;
}
