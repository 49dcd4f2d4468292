/* Layered YAML configuration. Each layer is parsed with libyaml's event parser into a small tree
 * of nodes (maps keep key order, every node remembers the "file:line" it came from); anchors are
 * expanded by copying, with the total node count and the depth bounded so that alias bombs and
 * deep nesting fail fast. The base layer defines the known keys; an overlay is first checked
 * against the tree (unknown keys, type changes) and only then merged, so a failed overlay leaves
 * the configuration unchanged. Dump, leaf iteration and digest walk the same tree. */
#include "bio/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "free_list.h"

enum node_kind { NODE_SCALAR, NODE_SEQ, NODE_MAP };

struct node {
	enum node_kind kind;
	char *key;          /* key in the parent map; NULL for the root and sequence items */
	char *value;        /* scalar text (never NULL for scalars) */
	int quoted;         /* scalar was quoted or tagged !!str: a string, never null */
	int open;           /* map whose keys are free (empty in the base, or below such a map) */
	char *origin;       /* "file:line" or "--set" */
	struct node **kids; /* map entries or sequence items, in order */
	size_t n_kids, cap_kids;
};

struct bio_config {
	struct node *root; /* NULL until the base is loaded */
};

/* ---- nodes ---- */

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_kids; i++)
		node_free(n->kids[i]);
	BIO_FREE(n->kids, n->key, n->value, n->origin, n);
}

static struct node *node_new(enum node_kind kind, const char *origin)
{
	struct node *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	n->kind = kind;
	n->origin = strdup(origin);
	if (!n->origin) {
		free(n);
		return NULL;
	}
	return n;
}

static int node_add(struct node *parent, struct node *kid)
{
	if (parent->n_kids == parent->cap_kids) {
		size_t cap = parent->cap_kids ? 2 * parent->cap_kids : 4;
		struct node **k = realloc(parent->kids, cap * sizeof *k);
		if (!k)
			return BIO_ENOMEM;
		parent->kids = k;
		parent->cap_kids = cap;
	}
	parent->kids[parent->n_kids++] = kid;
	return 0;
}

static struct node *map_find(const struct node *map, const char *key, size_t key_len)
{
	if (!map || map->kind != NODE_MAP)
		return NULL;
	for (size_t i = 0; i < map->n_kids; i++)
		if (strlen(map->kids[i]->key) == key_len &&
		    memcmp(map->kids[i]->key, key, key_len) == 0)
			return map->kids[i];
	return NULL;
}

static size_t node_height(const struct node *n)
{
	size_t h = 0;
	for (size_t i = 0; i < n->n_kids; i++) {
		size_t k = node_height(n->kids[i]);
		if (k > h)
			h = k;
	}
	return n->kind == NODE_SCALAR ? 0 : h + 1;
}

static size_t node_count(const struct node *n)
{
	size_t c = 1;
	for (size_t i = 0; i < n->n_kids; i++)
		c += node_count(n->kids[i]);
	return c;
}

/* Bytes of text below n (keys of its entries and scalar values). */
static size_t node_bytes(const struct node *n)
{
	size_t b = n->value ? strlen(n->value) : 0;
	for (size_t i = 0; i < n->n_kids; i++)
		b += node_bytes(n->kids[i]) + (n->kids[i]->key ? strlen(n->kids[i]->key) : 0);
	return b;
}

/* Deep copy of n (key included); NULL when out of memory. */
static struct node *node_copy(const struct node *n)
{
	struct node *c = node_new(n->kind, n->origin);
	if (!c)
		return NULL;
	c->quoted = n->quoted;
	c->open = n->open;
	if ((n->key && !(c->key = strdup(n->key))) || (n->value && !(c->value = strdup(n->value))))
		goto fail;
	for (size_t i = 0; i < n->n_kids; i++) {
		struct node *k = node_copy(n->kids[i]);
		if (!k || node_add(c, k) != 0) {
			node_free(k);
			goto fail;
		}
	}
	return c;
fail:
	node_free(c);
	return NULL;
}

static void node_set_open(struct node *n)
{
	if (n->kind == NODE_MAP)
		n->open = 1;
	for (size_t i = 0; i < n->n_kids; i++)
		node_set_open(n->kids[i]);
}

static int scalar_is_null(const struct node *n)
{
	if (n->kind != NODE_SCALAR || n->quoted)
		return 0;
	const char *v = n->value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static const char *kind_name(enum node_kind k)
{
	return k == NODE_MAP ? "a map" : k == NODE_SEQ ? "a sequence" : "a scalar";
}

/* ---- growing string buffer (for paths, flow strings and the canonical form) ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void sb_addc(struct sbuf *b, char c)
{
	sb_addn(b, &c, 1);
}

static const char *sb_str(const struct sbuf *b)
{
	return b->p ? b->p : "";
}

/* ---- sorted index of a map's keys (duplicate checks and merges stay O(n log n)) ---- */

static int cmp_kid_index(const void *a, const void *b, void *arg)
{
	const struct node *const *kids = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(kids[i]->key, kids[j]->key);
	return c ? c : (i > j) - (i < j);
}

/* Returns a new array of the indices of map's entries, ordered by key then position. */
static size_t *map_index(const struct node *map)
{
	size_t *idx = malloc((map->n_kids ? map->n_kids : 1) * sizeof *idx);
	if (!idx)
		return NULL;
	for (size_t i = 0; i < map->n_kids; i++)
		idx[i] = i;
	qsort_r(idx, map->n_kids, sizeof *idx, cmp_kid_index, map->kids);
	return idx;
}

/* Position in map->kids of key, found through idx (from map_index, covering the first n_idx
 * entries); SIZE_MAX when absent. */
static size_t map_index_find(const struct node *map, const size_t *idx, size_t n_idx,
			     const char *key)
{
	size_t lo = 0, hi = n_idx;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(map->kids[idx[mid]]->key, key);
		if (c == 0)
			return idx[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

/* ---- parsing one layer ---- */

struct anchor {
	char *name;
	const struct node *node;
};

struct parse {
	yaml_parser_t yp;
	const char *name; /* file name for messages */
	size_t n_nodes;   /* nodes made so far, aliases expanded */
	size_t n_bytes;   /* bytes of keys and scalar values so far, aliases expanded */
	size_t n_aliases; /* aliases expanded so far */
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	struct bio_error *err;
	struct sbuf path; /* dotted path of the node being parsed, for messages */
};

/* Formats "file:line" of mark m into buf (512 bytes); returns buf. */
static const char *ps_origin(char *buf, const struct parse *ps, const yaml_mark_t *m)
{
	snprintf(buf, 512, "%s:%zu", ps->name, m->line + 1);
	return buf;
}

static int ps_syntax_error(struct parse *ps, const char *text, size_t len)
{
	yaml_parser_t *yp = &ps->yp;
	const char *problem = yp->problem ? yp->problem : "malformed YAML";
	size_t line = yp->problem_mark.line + 1;
	size_t off = yp->problem_mark.index;
	if (yp->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset; count the lines before it. */
		line = 1;
		for (size_t i = 0; i < yp->problem_offset && i < len; i++)
			line += text[i] == '\n';
		return bio_error_set(ps->err, BIO_EFORMAT, "%s:%zu: %s (byte %zu)", ps->name, line,
				     problem, yp->problem_offset);
	}
	if (off < len && text[off] == '\t')
		return bio_error_set(ps->err, BIO_EFORMAT,
				     "%s:%zu: tab character where YAML allows only spaces "
				     "(indent with spaces)",
				     ps->name, line);
	if (yp->context && yp->context_mark.line + 1 != line)
		return bio_error_set(ps->err, BIO_EFORMAT,
				     "%s:%zu: YAML syntax error: %s %s (started at line %zu)", ps->name,
				     line, problem, yp->context, yp->context_mark.line + 1);
	if (yp->context)
		return bio_error_set(ps->err, BIO_EFORMAT, "%s:%zu: YAML syntax error: %s %s",
				     ps->name, line, problem, yp->context);
	return bio_error_set(ps->err, BIO_EFORMAT, "%s:%zu: YAML syntax error: %s", ps->name,
			     line, problem);
}

/* Counts n more nodes holding n_bytes more bytes of text; fails past the limits, which an alias
 * bomb (many nodes, or many copies of one long string) reaches quickly. */
static int ps_count(struct parse *ps, size_t n, size_t n_bytes, const yaml_mark_t *m)
{
	ps->n_nodes += n;
	ps->n_bytes += n_bytes;
	const char *bomb = ps->n_aliases ? " (aliases expanded); refusing a possible alias bomb" : "";
	if (ps->n_nodes > BIO_CONFIG_MAX_NODES)
		return bio_error_set(ps->err, BIO_ELIMIT, "%s:%zu: more than %d nodes%s", ps->name,
				     m->line + 1, BIO_CONFIG_MAX_NODES, bomb);
	if (ps->n_bytes > BIO_CONFIG_MAX_BYTES)
		return bio_error_set(ps->err, BIO_ELIMIT, "%s:%zu: more than %u bytes of text%s",
				     ps->name, m->line + 1, BIO_CONFIG_MAX_BYTES, bomb);
	return 0;
}

static int ps_next(struct parse *ps, yaml_event_t *ev, const char *text, size_t len)
{
	if (!yaml_parser_parse(&ps->yp, ev))
		return ps_syntax_error(ps, text, len);
	return 0;
}

/* Parses past one event whose content is not needed (a stream or document marker). */
static int ps_skip(struct parse *ps, const char *text, size_t len)
{
	yaml_event_t ev;
	int rc = ps_next(ps, &ev, text, len);
	if (rc == 0)
		yaml_event_delete(&ev);
	return rc;
}

static int tag_ok(const yaml_char_t *tag, enum node_kind kind, int *is_str)
{
	static const char pre[] = "tag:yaml.org,2002:";
	*is_str = 0;
	if (!tag || !strcmp((const char *)tag, "!"))
		return 1;
	const char *t = (const char *)tag;
	if (strncmp(t, pre, sizeof pre - 1) != 0)
		return 0;
	t += sizeof pre - 1;
	if (kind == NODE_MAP)
		return !strcmp(t, "map");
	if (kind == NODE_SEQ)
		return !strcmp(t, "seq");
	*is_str = !strcmp(t, "str");
	return *is_str || !strcmp(t, "int") || !strcmp(t, "float") || !strcmp(t, "bool") ||
	       !strcmp(t, "null");
}

static int ps_anchor(struct parse *ps, const yaml_char_t *name, const struct node *n)
{
	if (!name)
		return 0;
	if (ps->n_anchors == ps->cap_anchors) {
		size_t cap = ps->cap_anchors ? 2 * ps->cap_anchors : 8;
		struct anchor *a = realloc(ps->anchors, cap * sizeof *a);
		if (!a)
			return bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", ps->name);
		ps->anchors = a;
		ps->cap_anchors = cap;
	}
	char *s = strdup((const char *)name);
	if (!s)
		return bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", ps->name);
	ps->anchors[ps->n_anchors].name = s;
	ps->anchors[ps->n_anchors].node = n;
	ps->n_anchors++;
	return 0;
}

/* Fails when the map n (complete, at ps->path) holds a key twice. */
static int check_duplicates(struct parse *ps, const struct node *n)
{
	if (n->n_kids < 2)
		return 0;
	size_t *idx = map_index(n);
	if (!idx)
		return bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", ps->name);
	int rc = 0;
	for (size_t i = 1; i < n->n_kids; i++) {
		const struct node *a = n->kids[idx[i - 1]], *b = n->kids[idx[i]];
		if (strcmp(a->key, b->key) != 0)
			continue;
		/* idx is ordered by position among equal keys: b is the later one. */
		rc = bio_error_set(ps->err, BIO_EFORMAT, "%s: %s%s%s: duplicate key (first at %s)",
				   b->origin, sb_str(&ps->path), ps->path.len ? "." : "", b->key,
				   a->origin);
		break;
	}
	free(idx);
	return rc;
}

/* Parses the node that starts with *ev (already read; this function deletes it) at depth
 * (number of enclosing collections). On success *out is a new node without a key. */
static int ps_node(struct parse *ps, yaml_event_t *ev, size_t depth, const char *text, size_t len,
		   struct node **out)
{
	int rc = 0;
	struct node *n = NULL;
	yaml_mark_t mark = ev->start_mark;
	char where[512], kw[512];
	ps_origin(where, ps, &mark);
	*out = NULL;

	switch (ev->type) {
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)ev->data.alias.anchor;
		const struct node *a = NULL;
		for (size_t i = ps->n_anchors; i-- > 0;)
			if (!strcmp(ps->anchors[i].name, name)) {
				a = ps->anchors[i].node;
				break;
			}
		if (!a) {
			rc = bio_error_set(ps->err, BIO_EFORMAT, "%s: alias '*%s' to an unknown anchor",
					   where, name);
			goto out;
		}
		ps->n_aliases++;
		if ((rc = ps_count(ps, node_count(a), node_bytes(a), &mark)) != 0)
			goto out;
		if (depth + node_height(a) > BIO_CONFIG_MAX_DEPTH) {
			rc = bio_error_set(ps->err, BIO_ELIMIT, "%s: nesting deeper than %d levels",
					   where, BIO_CONFIG_MAX_DEPTH);
			goto out;
		}
		if (!(n = node_copy(a))) {
			rc = bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", where);
			goto out;
		}
		free(n->key);
		n->key = NULL;
		char *o = strdup(where);
		if (!o) {
			rc = bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", where);
			goto out;
		}
		free(n->origin);
		n->origin = o;
		break;
	}
	case YAML_SCALAR_EVENT: {
		int is_str;
		if (!tag_ok(ev->data.scalar.tag, NODE_SCALAR, &is_str)) {
			rc = bio_error_set(ps->err, BIO_EUNSUPPORTED, "%s: unsupported YAML tag '%s'",
					   where, (const char *)ev->data.scalar.tag);
			goto out;
		}
		if ((rc = ps_count(ps, 1, ev->data.scalar.length, &mark)) != 0)
			goto out;
		if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length) {
			rc = bio_error_set(ps->err, BIO_EFORMAT, "%s: NUL character in a value", where);
			goto out;
		}
		if (!(n = node_new(NODE_SCALAR, where)) ||
		    !(n->value = strdup((const char *)ev->data.scalar.value))) {
			rc = bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", where);
			goto out;
		}
		n->quoted = is_str || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		if ((rc = ps_anchor(ps, ev->data.scalar.anchor, n)) != 0)
			goto out;
		break;
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		int is_map = ev->type == YAML_MAPPING_START_EVENT;
		enum node_kind kind = is_map ? NODE_MAP : NODE_SEQ;
		const yaml_char_t *tag = is_map ? ev->data.mapping_start.tag
						: ev->data.sequence_start.tag;
		int is_str;
		if (!tag_ok(tag, kind, &is_str)) {
			rc = bio_error_set(ps->err, BIO_EUNSUPPORTED, "%s: unsupported YAML tag '%s'",
					   where, (const char *)tag);
			goto out;
		}
		if (depth + 1 > BIO_CONFIG_MAX_DEPTH) {
			rc = bio_error_set(ps->err, BIO_ELIMIT, "%s: nesting deeper than %d levels",
					   where, BIO_CONFIG_MAX_DEPTH);
			goto out;
		}
		if ((rc = ps_count(ps, 1, 0, &mark)) != 0)
			goto out;
		if (!(n = node_new(kind, where))) {
			rc = bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", where);
			goto out;
		}
		yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor
					     : ev->data.sequence_start.anchor;
		char *anchor_copy = anchor ? strdup((const char *)anchor) : NULL;
		if (anchor && !anchor_copy) {
			rc = bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", where);
			goto out;
		}
		yaml_event_delete(ev);
		size_t path_len = ps->path.len;
		for (;;) {
			if ((rc = ps_next(ps, ev, text, len)) != 0)
				break;
			if (ev->type == YAML_SEQUENCE_END_EVENT || ev->type == YAML_MAPPING_END_EVENT)
				break;
			char *key = NULL;
			if (is_map) {
				ps_origin(kw, ps, &ev->start_mark);
				if (ev->type != YAML_SCALAR_EVENT) {
					rc = bio_error_set(ps->err, BIO_EFORMAT,
							   "%s: %s%skeys must be plain strings",
							   kw, sb_str(&ps->path),
							   ps->path.len ? ": " : "");
					break;
				}
				const char *k = (const char *)ev->data.scalar.value;
				if (!*k || strchr(k, '.') || strlen(k) != ev->data.scalar.length) {
					rc = bio_error_set(ps->err, BIO_EFORMAT,
							   "%s: key '%s': keys must be non-empty and "
							   "contain no '.'",
							   kw, k);
					break;
				}
				if (ps->path.len)
					sb_addc(&ps->path, '.');
				sb_add(&ps->path, k);
				if (!strcmp(k, "<<")) {
					rc = bio_error_set(ps->err, BIO_EUNSUPPORTED,
							   "%s: %s: YAML merge keys are not supported",
							   kw, sb_str(&ps->path));
					break;
				}
				ps->n_bytes += ev->data.scalar.length;
				if (!(key = strdup(k))) {
					rc = bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", kw);
					break;
				}
				yaml_event_delete(ev);
				if ((rc = ps_next(ps, ev, text, len)) != 0) {
					free(key);
					break;
				}
			}
			struct node *kid;
			rc = ps_node(ps, ev, depth + 1, text, len, &kid);
			ps->path.len = path_len;
			if (ps->path.p)
				ps->path.p[path_len] = '\0';
			if (rc != 0) {
				free(key);
				break;
			}
			kid->key = key;
			if (is_map) { /* a value was set where its key is written */
				char *o = strdup(kw);
				if (!o) {
					node_free(kid);
					rc = bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", kw);
					break;
				}
				free(kid->origin);
				kid->origin = o;
			}
			if (node_add(n, kid) != 0) {
				node_free(kid);
				rc = bio_error_set(ps->err, BIO_ENOMEM, "%s: out of memory", where);
				break;
			}
		}
		if (rc == 0 && is_map)
			rc = check_duplicates(ps, n);
		if (rc == 0 && anchor_copy)
			rc = ps_anchor(ps, (const yaml_char_t *)anchor_copy, n);
		free(anchor_copy);
		if (rc != 0)
			goto out;
		break;
	}
	default:
		rc = bio_error_set(ps->err, BIO_EFORMAT, "%s: unexpected YAML event", where);
		goto out;
	}
out:
	yaml_event_delete(ev);
	if (rc != 0) {
		node_free(n);
		return rc;
	}
	*out = n;
	return 0;
}

/* Parses one YAML document into *out (a map; NULL for an empty document). */
static int parse_layer(struct node **out, const char *name, const char *text, size_t len,
		       struct bio_error *err)
{
	struct parse ps;
	memset(&ps, 0, sizeof ps);
	ps.name = name;
	ps.err = err;
	*out = NULL;
	if (len > BIO_CONFIG_MAX_BYTES)
		return bio_error_set(err, BIO_ELIMIT, "%s: larger than %u bytes", name,
				     BIO_CONFIG_MAX_BYTES);
	if (!yaml_parser_initialize(&ps.yp))
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
	yaml_parser_set_input_string(&ps.yp, (const unsigned char *)text, len);

	int rc = 0;
	struct node *root = NULL;
	yaml_event_t ev;
	int have_ev = 0;
	if ((rc = ps_skip(&ps, text, len)) != 0) /* STREAM_START */
		goto out;
	if ((rc = ps_next(&ps, &ev, text, len)) != 0)
		goto out;
	have_ev = 1;
	if (ev.type == YAML_STREAM_END_EVENT)
		goto out; /* empty file: an empty layer */
	/* DOCUMENT_START */
	yaml_event_delete(&ev);
	have_ev = 0;
	if ((rc = ps_next(&ps, &ev, text, len)) != 0)
		goto out;
	yaml_mark_t mark = ev.start_mark;
	int null_doc = ev.type == YAML_SCALAR_EVENT && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		       !ev.data.scalar.tag && (ev.data.scalar.length == 0 ||
					       !strcmp((char *)ev.data.scalar.value, "~") ||
					       !strcmp((char *)ev.data.scalar.value, "null"));
	if ((rc = ps_node(&ps, &ev, 0, text, len, &root)) != 0)
		goto out;
	if (null_doc) {
		node_free(root);
		root = NULL;
	} else if (root->kind != NODE_MAP) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s:%zu: the top level must be a map, not %s",
				   name, mark.line + 1, kind_name(root->kind));
		goto out;
	}
	if ((rc = ps_skip(&ps, text, len)) != 0) /* DOCUMENT_END */
		goto out;
	if ((rc = ps_next(&ps, &ev, text, len)) != 0)
		goto out;
	have_ev = 1;
	if (ev.type != YAML_STREAM_END_EVENT) {
		rc = bio_error_set(err, BIO_EFORMAT,
				   "%s:%zu: more than one YAML document (only one is allowed)", name,
				   ev.start_mark.line + 1);
		goto out;
	}
out:
	if (have_ev)
		yaml_event_delete(&ev);
	yaml_parser_delete(&ps.yp);
	for (size_t i = 0; i < ps.n_anchors; i++)
		free(ps.anchors[i].name);
	free(ps.anchors);
	free(ps.path.p);
	if (rc != 0) {
		node_free(root);
		return rc;
	}
	*out = root;
	return 0;
}

/* ---- layers ---- */

struct bio_config *bio_config_new(void)
{
	return calloc(1, sizeof(struct bio_config));
}

void bio_config_free(struct bio_config *c)
{
	if (!c)
		return;
	node_free(c->root);
	free(c);
}

static void mark_open_maps(struct node *n)
{
	if (n->kind == NODE_MAP && n->n_kids == 0)
		n->open = 1;
	for (size_t i = 0; i < n->n_kids; i++)
		mark_open_maps(n->kids[i]);
}

int bio_config_load_base(struct bio_config *c, const char *name, const char *text, size_t len,
			 struct bio_error *err)
{
	if (c->root)
		return bio_error_set(err, BIO_EINVAL, "%s: a base layer is already loaded", name);
	struct node *root;
	int rc = parse_layer(&root, name, text, len, err);
	if (rc != 0)
		return rc;
	if (!root) {
		char o[512];
		snprintf(o, sizeof o, "%s:1", name);
		if (!(root = node_new(NODE_MAP, o)))
			return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", name);
	}
	mark_open_maps(root);
	c->root = root;
	return 0;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* Cuts the dotted path back to its first keep bytes. */
static void path_cut(struct sbuf *path, size_t keep)
{
	path->len = keep;
	if (path->p)
		path->p[keep] = '\0';
}

/* Sets the dotted path to its first keep bytes (a map's path) and ".key" (one of its keys). */
static void path_child(struct sbuf *path, size_t keep, const char *key)
{
	path_cut(path, keep);
	if (keep)
		sb_addc(path, '.');
	sb_add(path, key);
}

/* Looks for a known key named like key elsewhere in the tree (first in base order). */
static int find_key_anywhere(const struct node *n, const char *key, struct sbuf *path)
{
	if (n->kind != NODE_MAP)
		return 0;
	size_t keep = path->len;
	for (size_t i = 0; i < n->n_kids; i++) {
		path_child(path, keep, n->kids[i]->key);
		if (!strcmp(n->kids[i]->key, key))
			return 1;
	}
	for (size_t i = 0; i < n->n_kids; i++) {
		path_child(path, keep, n->kids[i]->key);
		if (find_key_anywhere(n->kids[i], key, path))
			return 1;
	}
	path_cut(path, keep);
	return 0;
}

static int unknown_key(const struct node *root, const struct node *parent, const char *parent_path,
		       const struct node *ov, const char *path, struct bio_error *err)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < parent->n_kids; i++) {
		size_t d = edit_distance(ov->key, parent->kids[i]->key);
		if (d < best_d) {
			best_d = d;
			best = parent->kids[i]->key;
		}
	}
	if (best)
		return bio_error_set(err, BIO_ENOTFOUND,
				     "%s: %s: unknown key (did you mean '%s%s%s'?)", ov->origin, path,
				     parent_path, *parent_path ? "." : "", best);
	struct sbuf where = {0};
	if (find_key_anywhere(root, ov->key, &where) && !where.oom) {
		int rc = bio_error_set(err, BIO_ENOTFOUND, "%s: %s: unknown key (did you mean '%s'?)",
				       ov->origin, path, sb_str(&where));
		free(where.p);
		return rc;
	}
	free(where.p);
	return bio_error_set(err, BIO_ENOTFOUND, "%s: %s: unknown key", ov->origin, path);
}

/* Checks (apply == 0) or merges (apply == 1) overlay map ov into map dst at path. */
static int merge_map(const struct node *root, struct node *dst, struct node *ov, struct sbuf *path,
		     int apply, struct bio_error *err)
{
	size_t keep = path->len;
	int rc = 0;
	size_t n_idx = dst->n_kids;
	size_t *idx = map_index(dst);
	if (!idx)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	for (size_t i = 0; i < ov->n_kids && rc == 0; i++) {
		struct node *o = ov->kids[i];
		path_cut(path, keep);
		char *parent_path = strdup(sb_str(path));
		if (!parent_path) {
			rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
			break;
		}
		if (keep)
			sb_addc(path, '.');
		sb_add(path, o->key);
		if (path->oom) {
			free(parent_path);
			rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
			break;
		}
		size_t pos = map_index_find(dst, idx, n_idx, o->key);
		struct node *d = pos == SIZE_MAX ? NULL : dst->kids[pos];
		if (!d) {
			if (!dst->open) {
				rc = unknown_key(root, dst, parent_path, o, sb_str(path), err);
			} else if (apply) {
				struct node *copy = node_copy(o);
				if (!copy || node_add(dst, copy) != 0) {
					node_free(copy);
					rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
				} else {
					node_set_open(copy);
				}
			}
			free(parent_path);
			continue;
		}
		free(parent_path);
		if (d->kind != o->kind) {
			if (dst->open) {
				if (apply) {
					struct node *copy = node_copy(o);
					if (!copy) {
						rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
						continue;
					}
					node_set_open(copy);
					dst->kids[pos] = copy;
					node_free(d);
				}
				continue;
			}
			rc = bio_error_set(err, BIO_EINVAL, "%s: %s: expected %s (as in %s), got %s",
					   o->origin, sb_str(path), kind_name(d->kind), d->origin,
					   kind_name(o->kind));
			continue;
		}
		if (d->kind == NODE_MAP) {
			/* A map keeps the origin of its definition: that is where its shape is. */
			rc = merge_map(root, d, o, path, apply, err);
			continue;
		}
		if (!apply)
			continue;
		/* Scalars and sequences are replaced whole. */
		struct node *copy = node_copy(o);
		if (!copy) {
			rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
			continue;
		}
		if (dst->open)
			node_set_open(copy);
		dst->kids[pos] = copy;
		node_free(d);
	}
	path_cut(path, keep);
	free(idx);
	return rc;
}

/* Merges overlay tree ov (a map, taken) into c: checked first, so a failure changes nothing. */
static int merge_layer(struct bio_config *c, struct node *ov, struct bio_error *err)
{
	struct sbuf path = {0};
	int rc = merge_map(c->root, c->root, ov, &path, 0, err);
	if (rc == 0)
		rc = merge_map(c->root, c->root, ov, &path, 1, err);
	free(path.p);
	node_free(ov);
	return rc;
}

int bio_config_load_overlay(struct bio_config *c, const char *name, const char *text, size_t len,
			    struct bio_error *err)
{
	if (!c->root)
		return bio_error_set(err, BIO_EINVAL, "%s: no base configuration loaded", name);
	struct node *ov;
	int rc = parse_layer(&ov, name, text, len, err);
	if (rc != 0 || !ov)
		return rc;
	return merge_layer(c, ov, err);
}

int bio_config_load_file(struct bio_config *c, const char *path, struct bio_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s", path,
				     strerror(errno));
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int rc = 0;
	if (!buf) {
		rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		if (len == cap) {
			if (cap > BIO_CONFIG_MAX_BYTES) {
				rc = bio_error_set(err, BIO_ELIMIT, "%s: larger than %u bytes", path,
						   BIO_CONFIG_MAX_BYTES);
				goto out;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = bio_config_load_overlay(c, path, buf, len, err);
out:
	free(buf);
	close(fd);
	return rc;
}

/* True when s is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
static int valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		int n = *p >= 0xc2 && *p <= 0xdf ? 1 : *p >= 0xe0 && *p <= 0xef ? 2
			: *p >= 0xf0 && *p <= 0xf4 ? 3 : -1;
		if (n < 0)
			return 0;
		for (int i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		if ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] >= 0xa0) ||
		    (*p == 0xf0 && p[1] < 0x90) || (*p == 0xf4 && p[1] >= 0x90))
			return 0;
		p += n + 1;
	}
	return 1;
}

static void node_set_origin(struct node *n, const char *origin)
{
	char *o = strdup(origin);
	if (o) {
		free(n->origin);
		n->origin = o;
	}
	for (size_t i = 0; i < n->n_kids; i++)
		node_set_origin(n->kids[i], origin);
}

int bio_config_set(struct bio_config *c, const char *assignment, struct bio_error *err)
{
	if (!c->root)
		return bio_error_set(err, BIO_EINVAL, "--set: no base configuration loaded");
	const char *eq = strchr(assignment, '=');
	if (!eq)
		return bio_error_set(err, BIO_EINVAL, "--set: '%s': expected KEY=VALUE", assignment);
	size_t key_len = (size_t)(eq - assignment);
	const char *value = eq + 1;
	if (key_len == 0)
		return bio_error_set(err, BIO_EINVAL, "--set: '%s': empty key", assignment);
	for (size_t i = 0; i < key_len; i++) {
		char ch = assignment[i];
		if ((ch == '.' && (i == 0 || i + 1 == key_len || assignment[i + 1] == '.')) ||
		    ch == ' ' || ch == '\t')
			return bio_error_set(err, BIO_EINVAL, "--set: '%.*s': malformed key",
					     (int)key_len, assignment);
	}
	if (!valid_utf8(assignment))
		return bio_error_set(err, BIO_EINVAL, "--set: '%.*s': value is not valid UTF-8",
				     (int)key_len, assignment);

	/* The value: YAML when it starts with a flow or quote character, else taken literally. */
	struct node *val = NULL;
	int rc = 0;
	if (*value == '[' || *value == '{' || *value == '"' || *value == '\'') {
		size_t vlen = strlen(value);
		char *doc = malloc(vlen + 4);
		if (!doc)
			return bio_error_set(err, BIO_ENOMEM, "--set: out of memory");
		memcpy(doc, "v: ", 3);
		memcpy(doc + 3, value, vlen + 1);
		struct node *wrap = NULL;
		rc = parse_layer(&wrap, "--set", doc, vlen + 3, err);
		free(doc);
		if (rc != 0) {
			/* "--set:N: cause" -> "--set: key: cause" */
			size_t skip = 6;
			while (err && isdigit((unsigned char)err->msg[skip]))
				skip++;
			if (err && !strncmp(err->msg, "--set:", 6) && skip > 6 &&
			    !strncmp(err->msg + skip, ": ", 2)) {
				char msg[BIO_ERROR_MSG_MAX];
				snprintf(msg, sizeof msg, "%s", err->msg + skip + 2);
				bio_error_set(err, rc, "--set: %.*s: %s", (int)key_len, assignment,
					      msg);
			}
			return rc;
		}
		if (!wrap || wrap->n_kids != 1) {
			node_free(wrap);
			return bio_error_set(err, BIO_EINVAL,
					     "--set: %.*s: the value must be one YAML scalar or "
					     "flow collection",
					     (int)key_len, assignment);
		}
		val = wrap->kids[0];
		wrap->n_kids = 0;
		node_free(wrap);
		free(val->key);
		val->key = NULL;
		node_set_origin(val, "--set");
	} else {
		if (!(val = node_new(NODE_SCALAR, "--set")) || !(val->value = strdup(value))) {
			node_free(val);
			return bio_error_set(err, BIO_ENOMEM, "--set: out of memory");
		}
	}
	/* Wrap the value in maps, innermost last component first. */
	struct node *tree = val;
	size_t end = key_len;
	for (;;) {
		size_t start = end;
		while (start > 0 && assignment[start - 1] != '.')
			start--;
		if (!(tree->key = strndup(assignment + start, end - start))) {
			node_free(tree);
			return bio_error_set(err, BIO_ENOMEM, "--set: out of memory");
		}
		struct node *m = node_new(NODE_MAP, "--set");
		if (!m || node_add(m, tree) != 0) {
			node_free(m);
			node_free(tree);
			return bio_error_set(err, BIO_ENOMEM, "--set: out of memory");
		}
		tree = m;
		if (start == 0)
			break;
		end = start - 1;
	}
	return merge_layer(c, tree, err);
}

/* ---- lookup and typed getters ---- */

static const struct node *lookup(const struct bio_config *c, const char *path)
{
	if (!c || !c->root || !path)
		return NULL;
	const struct node *n = c->root;
	if (!*path)
		return n;
	const char *p = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		n = map_find(n, p, len);
		if (!n || !dot)
			return n;
		p = dot + 1;
	}
}

int bio_config_has(const struct bio_config *c, const char *path)
{
	return lookup(c, path) != NULL;
}

int bio_config_error(const struct bio_config *c, const char *path, struct bio_error *err, int code,
		     const char *fmt, ...)
{
	if (!err)
		return code;
	char msg[BIO_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *origin = bio_config_origin(c, path);
	if (*origin)
		return bio_error_set(err, code, "%s: %s: %s", origin, path, msg);
	return bio_error_set(err, code, "%s: %s", path, msg);
}

/* Finds the scalar at path: 1 = found (*out set), 0 = null, <0 error. A key absent from the
 * merged configuration is an error: configs/base.yaml defines every key a program reads (its
 * value is the default; tests/python/check_config_keys.py checks the sources against it), so
 * an absent one is a bug, or a configuration not built on the base. */
static int get_scalar(const struct bio_config *c, const char *path, const char *what,
		      const struct node **out, struct bio_error *err)
{
	const struct node *n = lookup(c, path);
	*out = n;
	if (!n)
		return bio_error_set(err, BIO_ENOTFOUND,
				     "%s: not in the configuration (configs/base.yaml defines every "
				     "key the programs read)", path);
	if (scalar_is_null(n))
		return 0;
	if (n->kind != NODE_SCALAR)
		return bio_config_error(c, path, err, BIO_EINVAL, "expected %s, got %s", what,
					kind_name(n->kind));
	return 1;
}

/* A null value (an empty --set key=) of a typed key is an error naming where it was set. */
static int null_error(const struct bio_config *c, const char *path, const char *what,
		      struct bio_error *err)
{
	return bio_config_error(c, path, err, BIO_EINVAL, "expected %s, got an empty value", what);
}

int bio_config_get_str(const struct bio_config *c, const char *path, const char **out,
		       struct bio_error *err)
{
	const struct node *n;
	int rc = get_scalar(c, path, "a string", &n, err);
	*out = rc > 0 ? n->value : "";
	return rc < 0 ? rc : 0;
}

int bio_config_get_choice(const struct bio_config *c, const char *path,
			  const char *const *names, int n, int *out, struct bio_error *err)
{
	const char *s;
	int rc = bio_config_get_str(c, path, &s, err);
	if (rc)
		return rc;
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	char list[512];
	size_t len = 0;
	list[0] = '\0';
	for (int i = 0; i < n && len < sizeof list; i++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
					i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
	return bio_config_error(c, path, err, BIO_EINVAL, "expected %s, got '%s'", list, s);
}

/* out: an int64_t. */
static int parse_int(const char *s, void *out_v)
{
	int64_t *out = out_v;
	const char *p = s;
	int neg = 0;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!isdigit((unsigned char)*p))
		return BIO_EINVAL;
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (lim - d) / 10)
			return BIO_ELIMIT;
		v = v * 10 + d;
	}
	if (*p)
		return BIO_EINVAL;
	*out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	return 0;
}

/* The scalar at path parsed by parse (0, BIO_ELIMIT out of range, else not of the type) into
 * out; what names the type ("an integer"), noun its values ("integer") in messages. */
static int get_parsed(const struct bio_config *c, const char *path, const char *what,
		      const char *noun, int (*parse)(const char *, void *), void *out,
		      struct bio_error *err)
{
	const struct node *n;
	int rc = get_scalar(c, path, what, &n, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return null_error(c, path, what, err);
	rc = parse(n->value, out);
	if (rc == BIO_ELIMIT)
		return bio_config_error(c, path, err, BIO_EINVAL, "%s '%s' out of range", noun,
					n->value);
	if (rc != 0)
		return bio_config_error(c, path, err, BIO_EINVAL, "expected %s, got '%s'", what,
					n->value);
	return 0;
}

int bio_config_get_int(const struct bio_config *c, const char *path, int64_t *out,
		       struct bio_error *err)
{
	*out = 0;
	return get_parsed(c, path, "an integer", "integer", parse_int, out, err);
}

/* Strict decimal floating point: [+-](digits[.digits]|.digits)[(e|E)[+-]digits]. */
/* out: a double. */
static int parse_double(const char *s, void *out_v)
{
	double *out = out_v;
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	size_t n_int = 0, n_frac = 0;
	while (isdigit((unsigned char)*p))
		p++, n_int++;
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p))
			p++, n_frac++;
	}
	if (n_int + n_frac == 0)
		return BIO_EINVAL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!isdigit((unsigned char)*p))
			return BIO_EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p)
		return BIO_EINVAL;
	errno = 0;
	double v = strtod(s, NULL);
	if (!isfinite(v))
		return BIO_ELIMIT;
	*out = v;
	return 0;
}

int bio_config_get_double(const struct bio_config *c, const char *path, double *out,
			  struct bio_error *err)
{
	*out = 0.0;
	return get_parsed(c, path, "a number", "number", parse_double, out, err);
}

int bio_config_get_bool(const struct bio_config *c, const char *path, int *out,
			struct bio_error *err)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
	const struct node *n;
	*out = 0;
	int rc = get_scalar(c, path, "a boolean", &n, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return null_error(c, path, "a boolean", err);
	for (size_t i = 0; i < 3; i++) {
		if (!strcasecmp(n->value, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(n->value, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return bio_config_error(c, path, err, BIO_EINVAL,
				"expected a boolean (true/false, yes/no, on/off), got '%s'",
				n->value);
}

int bio_config_get_int_range(const struct bio_config *c, const char *path, int64_t min,
			     int64_t max, int64_t *out, struct bio_error *err)
{
	int rc = bio_config_get_int(c, path, out, err);
	if (rc != 0)
		return rc;
	if (*out < min || *out > max)
		return bio_config_error(c, path, err, BIO_EINVAL,
					"%lld is out of range [%lld, %lld]", (long long)*out,
					(long long)min, (long long)max);
	return 0;
}

int bio_config_get_double_range(const struct bio_config *c, const char *path, double min,
				double max, double *out, struct bio_error *err)
{
	int rc = bio_config_get_double(c, path, out, err);
	if (rc != 0)
		return rc;
	if (!(*out >= min && *out <= max))
		return bio_config_error(c, path, err, BIO_EINVAL, "%g is out of range [%g, %g]",
					*out, min, max);
	return 0;
}

size_t bio_config_count(const struct bio_config *c, const char *path)
{
	const struct node *n = lookup(c, path);
	return n ? n->n_kids : 0;
}

const char *bio_config_key_at(const struct bio_config *c, const char *path, size_t i)
{
	const struct node *n = lookup(c, path);
	if (!n || n->kind != NODE_MAP || i >= n->n_kids)
		return NULL;
	return n->kids[i]->key;
}

const char *bio_config_item_at(const struct bio_config *c, const char *path, size_t i)
{
	const struct node *n = lookup(c, path);
	if (!n || n->kind != NODE_SEQ || i >= n->n_kids || n->kids[i]->kind != NODE_SCALAR)
		return NULL;
	return n->kids[i]->value;
}

const char *bio_config_origin(const struct bio_config *c, const char *path)
{
	const struct node *n = lookup(c, path);
	return n ? n->origin : "";
}

/* ---- dump, leaves, digest ---- */

/* True when s can be written as a plain scalar (in flow context when flow) and read back as the
 * same non-null string. */
static int plain_ok(const char *s, int flow)
{
	size_t len = strlen(s);
	if (!len || s[0] == ' ' || s[len - 1] == ' ' || s[len - 1] == ':')
		return 0;
	if (strchr("?:,[]{}#&*!|>'\"%@`", s[0]))
		return 0;
	if (s[0] == '-' && (len == 1 || s[1] == ' ' || s[1] == '-'))
		return 0;
	if (!strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return 0;
	if (!strncmp(s, "...", 3))
		return 0;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch >= 0x7f) /* non-ASCII goes quoted, where it can be escaped */
			return 0;
		if ((ch == ':' || ch == '#') && (p[ch == '#' ? -1 : 1] == ' '))
			return 0;
		if (ch == ':' && flow)
			return 0;
		if (flow && strchr(",[]{}", ch))
			return 0;
	}
	return 1;
}

/* Double-quoted YAML; escapes what a YAML reader would not take raw or would read as a line
 * break (C0/C1 controls, DEL, U+2028/2029, U+FEFF, U+FFFE/FFFF). s is valid UTF-8. */
static void emit_quoted(struct sbuf *b, const char *s)
{
	sb_addc(b, '"');
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		char esc[16];
		unsigned cp = *p;
		int n = 1;
		if (*p >= 0xc0 && *p < 0xe0 && (p[1] & 0xc0) == 0x80) {
			cp = (unsigned)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
			n = 2;
		} else if (*p >= 0xe0 && *p < 0xf0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
			cp = (unsigned)(p[0] & 0x0f) << 12 | (unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
			n = 3;
		}
		if (cp == '"' || cp == '\\') {
			sb_addc(b, '\\');
			sb_addc(b, (char)cp);
		} else if (cp == '\n') {
			sb_add(b, "\\n");
		} else if (cp == '\t') {
			sb_add(b, "\\t");
		} else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
			snprintf(esc, sizeof esc, "\\x%02x", cp);
			sb_add(b, esc);
		} else if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe ||
			   cp == 0xffff) {
			snprintf(esc, sizeof esc, "\\u%04x", cp);
			sb_add(b, esc);
		} else {
			sb_addn(b, (const char *)p, (size_t)n);
			p += n;
			continue;
		}
		p += n;
	}
	sb_addc(b, '"');
}

static void emit_string(struct sbuf *b, const char *s, int flow)
{
	if (plain_ok(s, flow))
		sb_add(b, s);
	else
		emit_quoted(b, s);
}

static void emit_scalar(struct sbuf *b, const struct node *n, int flow)
{
	if (scalar_is_null(n))
		sb_add(b, "~");
	else if (n->quoted)
		emit_quoted(b, n->value);
	else
		emit_string(b, n->value, flow);
}

static void emit_flow(struct sbuf *b, const struct node *n)
{
	if (n->kind == NODE_SCALAR) {
		emit_scalar(b, n, 1);
		return;
	}
	sb_addc(b, n->kind == NODE_MAP ? '{' : '[');
	for (size_t i = 0; i < n->n_kids; i++) {
		if (i)
			sb_add(b, ", ");
		if (n->kind == NODE_MAP) {
			emit_string(b, n->kids[i]->key, 1);
			sb_add(b, ": ");
		}
		emit_flow(b, n->kids[i]);
	}
	sb_addc(b, n->kind == NODE_MAP ? '}' : ']');
}

static void emit_block_map(struct sbuf *b, const struct node *map, int indent);

/* One key of a block map and its value, at indent. */
static void emit_block_entry(struct sbuf *b, const struct node *k, int indent)
{
	for (int j = 0; j < indent; j++)
		sb_addc(b, ' ');
	emit_string(b, k->key, 0);
	sb_addc(b, ':');
	if (k->kind == NODE_MAP && k->n_kids) {
		sb_addc(b, '\n');
		emit_block_map(b, k, indent + 2);
		return;
	}
	sb_addc(b, ' ');
	if (k->kind == NODE_SCALAR)
		emit_scalar(b, k, 0);
	else
		emit_flow(b, k);
	sb_addc(b, '\n');
}

static void emit_block_map(struct sbuf *b, const struct node *map, int indent)
{
	for (size_t i = 0; i < map->n_kids; i++)
		emit_block_entry(b, map->kids[i], indent);
}

int bio_config_dump_sections(const struct bio_config *c, FILE *f, const char *const *sections,
			     size_t n_sections, struct bio_error *err)
{
	struct sbuf b = {0};
	for (size_t i = 0; c->root && i < c->root->n_kids; i++) {
		const struct node *k = c->root->kids[i];
		int keep = sections == NULL;
		for (size_t j = 0; !keep && j < n_sections; j++)
			keep = strcmp(k->key, sections[j]) == 0;
		if (keep)
			emit_block_entry(&b, k, 0);
	}
	if (b.oom) {
		free(b.p);
		return bio_error_set(err, BIO_ENOMEM, "config dump: out of memory");
	}
	int rc = 0;
	if (b.len && fwrite(b.p, 1, b.len, f) != b.len)
		rc = bio_error_set(err, BIO_EIO, "config dump: %s", strerror(errno));
	free(b.p);
	return rc;
}

int bio_config_dump(const struct bio_config *c, FILE *f, struct bio_error *err)
{
	return bio_config_dump_sections(c, f, NULL, 0, err);
}

static int leaves(const struct node *n, struct sbuf *path, struct sbuf *val,
		  int (*fn)(void *ud, const char *path, const char *value), void *ud)
{
	if (n->kind != NODE_MAP) {
		val->len = 0;
		if (val->p)
			val->p[0] = '\0';
		if (n->kind == NODE_SCALAR)
			sb_add(val, scalar_is_null(n) ? "" : n->value);
		else
			emit_flow(val, n);
		if (path->oom || val->oom)
			return BIO_ENOMEM;
		return fn(ud, sb_str(path), sb_str(val));
	}
	size_t keep = path->len;
	for (size_t i = 0; i < n->n_kids; i++) {
		path_child(path, keep, n->kids[i]->key);
		int rc = leaves(n->kids[i], path, val, fn, ud);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int bio_config_foreach_leaf(const struct bio_config *c,
			    int (*fn)(void *ud, const char *path, const char *value), void *ud)
{
	if (!c->root)
		return 0;
	struct sbuf path = {0}, val = {0};
	int rc = leaves(c->root, &path, &val, fn, ud);
	free(path.p);
	free(val.p);
	return rc;
}

static void canon_string(struct sbuf *b, const char *s)
{
	sb_addc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			sb_addc(b, '\\');
			sb_addc(b, (char)*p);
		} else if (*p < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", *p);
			sb_add(b, esc);
		} else {
			sb_addc(b, (char)*p);
		}
	}
	sb_addc(b, '"');
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp((*(const struct node *const *)a)->key, (*(const struct node *const *)b)->key);
}

/* Canonical form: JSON-like, map keys sorted bytewise, scalars as strings (null as null). */
static void canon(struct sbuf *b, const struct node *n)
{
	if (n->kind == NODE_SCALAR) {
		if (scalar_is_null(n))
			sb_add(b, "null");
		else
			canon_string(b, n->value);
		return;
	}
	if (n->kind == NODE_SEQ) {
		sb_addc(b, '[');
		for (size_t i = 0; i < n->n_kids; i++) {
			if (i)
				sb_addc(b, ',');
			canon(b, n->kids[i]);
		}
		sb_addc(b, ']');
		return;
	}
	const struct node **sorted = malloc((n->n_kids ? n->n_kids : 1) * sizeof *sorted);
	if (!sorted) {
		b->oom = 1;
		return;
	}
	if (n->n_kids)
		memcpy(sorted, n->kids, n->n_kids * sizeof *sorted);
	qsort(sorted, n->n_kids, sizeof *sorted, cmp_key);
	sb_addc(b, '{');
	for (size_t i = 0; i < n->n_kids; i++) {
		if (i)
			sb_addc(b, ',');
		canon_string(b, sorted[i]->key);
		sb_addc(b, ':');
		canon(b, sorted[i]);
	}
	sb_addc(b, '}');
	free(sorted);
}

int bio_config_digest(const struct bio_config *c, const char *const *prefixes, size_t n_prefixes,
		      char out_hex[65], struct bio_error *err)
{
	struct sbuf b = {0};
	int rc = 0;
	if (n_prefixes == 0) {
		if (c->root)
			canon(&b, c->root);
	}
	for (size_t i = 0; i < n_prefixes; i++) {
		const struct node *n = lookup(c, prefixes[i]);
		if (!n) {
			rc = bio_error_set(err, BIO_ENOTFOUND, "config digest: %s: no such key",
					   prefixes[i]);
			goto out;
		}
		canon_string(&b, prefixes[i]);
		sb_addc(&b, '=');
		canon(&b, n);
		sb_addc(&b, '\n');
	}
	if (b.oom) {
		rc = bio_error_set(err, BIO_ENOMEM, "config digest: out of memory");
		goto out;
	}
	bio_sha256_hex(out_hex, sb_str(&b), b.len);
out:
	free(b.p);
	return rc;
}
