/* MLflow-compatible experiment tracking: writes the local file store (`mlruns/`) as MLflow's
 * FileStore does (mlflow/store/tracking/file_store.py and model_registry/file_store.py): experiment
 * and run meta.yaml emitted like PyYAML's safe_dump (block style, sorted keys, the same quoting),
 * one file per param and tag holding the raw value, metric files of "<ts_ms> <value> <step>" lines,
 * artifacts copied under the run, and registered model versions under models/. meta.yaml files
 * are read back with libyaml. No fixed-size path buffers: every path is built with asprintf. */
#include "bio/track.h"
#include "track_priv.h"

#include "bio/clock.h"
#include "bio/fs.h"
#include "bio/str.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pwd.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <yaml.h>

#include "free_list.h"

struct bio_track_run {
	char *root;          /* absolute path of the store */
	char *exp_id;
	char *run_id;
	char *run_dir;
	char *artifact_dir;
	char *artifact_uri;
	char *run_name;
	char *user_id;
	char *lifecycle;
	int64_t start_time;
	int64_t end_time;    /* -1: null */
	int status;
	const struct bio_track_hooks *hooks; /* a run journaled for a server (track_http.c) */
	void *hook_ud;
};

/* ---- small helpers ---- */

static int nomem(struct bio_error *err)
{
	return bio_error_set(err, BIO_ENOMEM, "out of memory in the tracking store");
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads a whole small file (at most max bytes) into a new NUL-terminated buffer. */
static int read_small(char **out, size_t *len_out, const char *path, size_t max,
		      struct bio_error *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s", path,
				     strerror(errno));
	char *buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return nomem(err);
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			close(fd);
			free(buf);
			return bio_error_set(err, BIO_ELIMIT, "%s: larger than %zu bytes", path, max);
		}
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	if (len_out)
		*len_out = len;
	return 0;
}

/* n random bytes from /dev/urandom. */
static int random_bytes(void *buf, size_t n, struct bio_error *err)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bio_error_set(err, BIO_EIO, "/dev/urandom: %s", strerror(errno));
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			return bio_error_set(err, BIO_EIO, "/dev/urandom: short read");
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
}

/* A uuid4 as 32 lowercase hex digits (uuid.uuid4().hex). */
static int uuid4_hex(char out[33], struct bio_error *err)
{
	uint8_t b[16];
	int rc = random_bytes(b, sizeof b, err);
	if (rc)
		return rc;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* "file://" URI of an absolute path, percent-encoding like pathlib's as_uri. */
static char *path_to_uri(const char *path)
{
	size_t n = strlen(path);
	char *u = malloc(7 + 3 * n + 1);
	if (!u)
		return NULL;
	char *o = u + sprintf(u, "file://");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("/-._~!$&'()*+,;=:@", *p))
			*o++ = (char)*p;
		else
			o += sprintf(o, "%%%02X", *p);
	}
	*o = '\0';
	return u;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Local path of a file:// URI (percent-decoded), or NULL. */
static char *uri_to_path(const char *uri)
{
	const char *p;
	if (strncmp(uri, "file://", 7) == 0)
		p = uri + 7;
	else if (strncmp(uri, "file:", 5) == 0)
		p = uri + 5;
	else
		return NULL;
	if (strncmp(p, "localhost/", 10) == 0)
		p += 9;
	char *out = malloc(strlen(p) + 1), *o = out;
	if (!out)
		return NULL;
	for (; *p; p++) {
		int hi = *p == '%' && p[1] ? hexval(p[1]) : -1;
		int lo = hi >= 0 && p[2] ? hexval(p[2]) : -1;
		if (hi >= 0 && lo >= 0) {
			*o++ = (char)(hi * 16 + lo);
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* ---- YAML writing, like PyYAML's safe_dump(default_flow_style=False, sort_keys=True) ---- */

/* True when a plain scalar s would be read back as something other than a string by PyYAML's
 * YAML 1.1 resolvers (bool, int, float, null, timestamp, merge, value). */
static int resolves_to_non_str(const char *s)
{
	static const char *const pats[] = {
		"^(yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
		"^([-+]?[0-9][0-9_]*\\.[0-9_]*([eE][-+][0-9]+)?|\\.[0-9][0-9_]*([eE][-+][0-9]+)?|"
		"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN))$",
		"^([-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|"
		"[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+)$",
		"^(~|null|Null|NULL)$",
		"^([0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
		"([Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](\\.[0-9]*)?"
		"(([ \t]*)Z|[ \t]*[-+][0-9][0-9]?(:[0-9][0-9])?)?)$",
		"^(<<|=)$",
	};
	for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
		regex_t re;
		if (regcomp(&re, pats[i], REG_EXTENDED | REG_NOSUB) != 0)
			return 1; /* cannot tell: quote */
		int m = regexec(&re, s, 0, NULL, 0) == 0;
		regfree(&re);
		if (m)
			return 1;
	}
	return 0;
}

/* PyYAML's emitter for one string value of a top-level block mapping key (safe_dump with
 * allow_unicode=True, width 80, indent 2): the style chosen by analyze_scalar/choose_scalar_style
 * and the writers write_plain, write_single_quoted and write_double_quoted, folding included.
 * Works on code points; the input is valid UTF-8 (checked by the callers). */

static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	int n = (s[0] >> 5) == 6 ? 1 : (s[0] >> 4) == 14 ? 2 : 3;
	uint32_t c = s[0] & (n == 1 ? 0x1f : n == 2 ? 0x0f : 0x07);
	for (int k = 1; k <= n; k++)
		c = (c << 6) | (s[k] & 0x3f);
	*cp = c;
	return (size_t)n + 1;
}

static void put_cp(FILE *f, uint32_t c)
{
	if (c < 0x80) {
		fputc((int)c, f);
	} else if (c < 0x800) {
		fputc((int)(0xc0 | (c >> 6)), f);
		fputc((int)(0x80 | (c & 0x3f)), f);
	} else if (c < 0x10000) {
		fputc((int)(0xe0 | (c >> 12)), f);
		fputc((int)(0x80 | ((c >> 6) & 0x3f)), f);
		fputc((int)(0x80 | (c & 0x3f)), f);
	} else {
		fputc((int)(0xf0 | (c >> 18)), f);
		fputc((int)(0x80 | ((c >> 12) & 0x3f)), f);
		fputc((int)(0x80 | ((c >> 6) & 0x3f)), f);
		fputc((int)(0x80 | (c & 0x3f)), f);
	}
}

static int y_is_break(uint32_t c)
{
	return c == '\n' || c == 0x85 || c == 0x2028 || c == 0x2029;
}

static int y_is_ws(uint32_t c)
{
	return c == 0 || c == ' ' || c == '\t' || c == '\r' || y_is_break(c);
}

enum { Y_PLAIN, Y_SINGLE, Y_DOUBLE };

/* analyze_scalar + choose_scalar_style for a block mapping value. */
static int yaml_style(const char *s, const uint32_t *t, size_t n)
{
	if (n == 0)
		return Y_SINGLE;
	int block_ind = 0, line_breaks = 0, special = 0;
	int lead_sp = 0, lead_br = 0, trail_sp = 0, trail_br = 0, break_space = 0, space_break = 0;
	if (n >= 3 && ((t[0] == '-' && t[1] == '-' && t[2] == '-') ||
		       (t[0] == '.' && t[1] == '.' && t[2] == '.')))
		block_ind = 1;
	int preceded_ws = 1, followed_ws = n == 1 || y_is_ws(t[1]);
	int prev_sp = 0, prev_br = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t ch = t[i];
		if (i == 0) {
			if (ch < 0x80 && strchr("#,[]{}&*!|>'\"%@`", (int)ch) && ch)
				block_ind = 1;
			if ((ch == '?' || ch == ':') && followed_ws)
				block_ind = 1;
			if (ch == '-' && followed_ws)
				block_ind = 1;
		} else {
			if (ch == ':' && followed_ws)
				block_ind = 1;
			if (ch == '#' && preceded_ws)
				block_ind = 1;
		}
		if (y_is_break(ch))
			line_breaks = 1;
		if (!(ch == '\n' || (ch >= 0x20 && ch <= 0x7e))) {
			int unicode_ok = (ch == 0x85 || (ch >= 0xa0 && ch <= 0xd7ff) ||
					  (ch >= 0xe000 && ch <= 0xfffd) ||
					  (ch >= 0x10000 && ch < 0x10ffff)) && ch != 0xfeff;
			if (!unicode_ok)
				special = 1;
		}
		if (ch == ' ') {
			if (i == 0)
				lead_sp = 1;
			if (i == n - 1)
				trail_sp = 1;
			if (prev_br)
				break_space = 1;
			prev_sp = 1;
			prev_br = 0;
		} else if (y_is_break(ch)) {
			if (i == 0)
				lead_br = 1;
			if (i == n - 1)
				trail_br = 1;
			if (prev_sp)
				space_break = 1;
			prev_sp = 0;
			prev_br = 1;
		} else {
			prev_sp = prev_br = 0;
		}
		preceded_ws = y_is_ws(ch);
		followed_ws = i + 2 >= n || y_is_ws(t[i + 2]);
	}
	int block_plain = 1, single = 1;
	if (lead_sp || lead_br || trail_sp || trail_br)
		block_plain = 0;
	if (break_space)
		block_plain = single = 0;
	if (space_break || special)
		block_plain = single = 0;
	if (line_breaks || block_ind)
		block_plain = 0;
	if (block_plain && !resolves_to_non_str(s))
		return Y_PLAIN;
	return single ? Y_SINGLE : Y_DOUBLE;
}

/* write_plain / write_single_quoted from column col (after the opening quote for single). */
static void yaml_write_folded(FILE *f, const uint32_t *t, size_t n, size_t col, int single)
{
	for (size_t i = 0; i < n;) {
		if (t[i] == ' ') {
			size_t j = i;
			while (j < n && t[j] == ' ')
				j++;
			if (j - i == 1 && col > 80 && (!single || (i != 0 && j != n))) {
				fputs("\n  ", f);
				col = 2;
			} else {
				for (size_t k = i; k < j; k++)
					fputc(' ', f);
				col += j - i;
			}
			i = j;
		} else if (single && y_is_break(t[i])) {
			if (t[i] == '\n')
				fputc('\n', f); /* a break run led by '\n' gets an extra line break */
			for (; i < n && y_is_break(t[i]); i++)
				put_cp(f, t[i]);
			fputs("  ", f);
			col = 2;
		} else {
			if (single && t[i] == '\'') {
				fputc('\'', f);
				col++;
			}
			put_cp(f, t[i]);
			col++;
			i++;
		}
	}
}

/* write_double_quoted from column col (after the opening quote). */
static void yaml_write_double(FILE *f, const uint32_t *t, size_t n, size_t col)
{
	static const uint32_t from[] = {0, 7, 8, 9, 10, 11, 12, 13, 27, '"', '\\', 0x85, 0xa0,
					0x2028, 0x2029};
	static const char to[] = "0abtnvfre\"\\N_LP";
	size_t start = 0;
	for (size_t end = 0; end <= n; end++) {
		int have = end < n;
		uint32_t ch = have ? t[end] : 0;
		int esc = !have || ch == '"' || ch == '\\' || ch == 0x85 || ch == 0x2028 ||
			  ch == 0x2029 || ch == 0xfeff ||
			  !((ch >= 0x20 && ch <= 0x7e) || (ch >= 0xa0 && ch <= 0xd7ff) ||
			    (ch >= 0xe000 && ch <= 0xfffd));
		if (esc) {
			for (size_t k = start; k < end; k++)
				put_cp(f, t[k]);
			col += end - start;
			start = end;
			if (have) {
				char data[16];
				size_t e = 0;
				while (e < sizeof from / sizeof from[0] && from[e] != ch)
					e++;
				if (e < sizeof from / sizeof from[0])
					snprintf(data, sizeof data, "\\%c", to[e]);
				else if (ch <= 0xff)
					snprintf(data, sizeof data, "\\x%02X", (unsigned)ch);
				else if (ch <= 0xffff)
					snprintf(data, sizeof data, "\\u%04X", (unsigned)ch);
				else
					snprintf(data, sizeof data, "\\U%08X", (unsigned)ch);
				fputs(data, f);
				col += strlen(data);
				start = end + 1;
			}
		}
		if (end > 0 && end + 1 < n && (ch == ' ' || start >= end) && col + (end - start) > 80) {
			for (size_t k = start; k < end; k++)
				put_cp(f, t[k]);
			fputc('\\', f);
			if (start < end)
				start = end;
			fputs("\n  ", f);
			col = 2;
			if (t[start] == ' ') {
				fputc('\\', f);
				col++;
			}
		}
	}
}

/* Writes s as PyYAML would as the value of a top-level key of key_len bytes (ASCII keys). */
static void yaml_put_str(FILE *f, const char *s, size_t key_len)
{
	size_t len = strlen(s), n = 0;
	uint32_t *t = malloc((len + 1) * sizeof *t);
	if (!t) { /* cannot analyse: double quotes are always valid (no folding) */
		fputs("\"", f);
		for (const char *p = s; *p; p++)
			fprintf(f, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
		fputs("\"", f);
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; n++)
		p += utf8_decode(p, &t[n]);
	switch (yaml_style(s, t, n)) {
	case Y_PLAIN: yaml_write_folded(f, t, n, key_len + 2, 0); break;
	case Y_SINGLE:
		fputc('\'', f);
		yaml_write_folded(f, t, n, key_len + 3, 1);
		fputc('\'', f);
		break;
	default:
		fputc('"', f);
		yaml_write_double(f, t, n, key_len + 3);
		fputc('"', f);
		break;
	}
	free(t);
}

enum yv_type { YV_STR, YV_INT, YV_NULL, YV_EMPTY_LIST };

struct yv {
	const char *key;
	enum yv_type type;
	const char *s;
	int64_t i;
};

static int yv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct yv *)a)->key, ((const struct yv *)b)->key);
}

/* Renders a flat mapping as PyYAML would; returns a new buffer (NULL: out of memory). */
static char *yaml_render(struct yv *kv, size_t n, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	qsort(kv, n, sizeof *kv, yv_cmp);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s: ", kv[i].key);
		switch (kv[i].type) {
		case YV_STR:
			if (kv[i].s)
				yaml_put_str(f, kv[i].s, strlen(kv[i].key));
			else
				fputs("null", f);
			break;
		case YV_INT: fprintf(f, "%" PRId64, kv[i].i); break;
		case YV_NULL: fputs("null", f); break;
		case YV_EMPTY_LIST: fputs("[]", f); break;
		}
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int yaml_write(const char *tmp_dir, const char *path, struct yv *kv, size_t n,
		      struct bio_error *err)
{
	size_t len;
	char *y = yaml_render(kv, n, &len);
	if (!y)
		return nomem(err);
	int rc = bio_fs_write_atomic(path, y, len, tmp_dir, 0, err); /* like MLflow: no fsync */
	free(y);
	return rc;
}

/* ---- YAML reading (libyaml): the top-level scalars of a meta.yaml ---- */

struct ymeta {
	size_t n;
	char **keys;
	char **vals; /* NULL: null or not a scalar */
};

static void ymeta_free(struct ymeta *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->keys[i]);
		free(m->vals[i]);
	}
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}

static const char *ymeta_get(const struct ymeta *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->keys[i], key) == 0)
			return m->vals[i];
	return NULL;
}

static int ymeta_has(const struct ymeta *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->keys[i], key) == 0)
			return 1;
	return 0;
}

static int ymeta_int(const struct ymeta *m, const char *key, int64_t *out)
{
	const char *v = ymeta_get(m, key);
	if (!v || !*v)
		return -1;
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (*end || errno)
		return -1;
	*out = x;
	return 0;
}

static int ymeta_read(struct ymeta *m, const char *path, struct bio_error *err)
{
	memset(m, 0, sizeof *m);
	char *text;
	size_t len;
	int rc = read_small(&text, &len, path, 1 << 20, err);
	if (rc)
		return rc;
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p)) {
		free(text);
		return nomem(err);
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	int depth = 0, want_key = 1, done = 0;
	char *key = NULL;
	rc = 0;
	while (!done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			rc = bio_error_set(err, BIO_EFORMAT, "%s:%zu: %s", path,
					   (size_t)p.problem_mark.line + 1,
					   p.problem ? p.problem : "YAML error");
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT: done = 1; break;
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (depth == 1 && !want_key) { /* a non-scalar value */
				m->keys[m->n] = key;
				m->vals[m->n] = NULL;
				m->n++;
				key = NULL;
				want_key = 1;
			}
			depth++;
			if (depth > 64)
				rc = bio_error_set(err, BIO_ELIMIT, "%s: nested too deeply", path);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT: depth--; break;
		case YAML_SCALAR_EVENT:
			if (depth != 1)
				break;
			if (want_key) {
				key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
				char **nk = realloc(m->keys, (m->n + 1) * sizeof *nk);
				char **nv = nk ? realloc(m->vals, (m->n + 1) * sizeof *nv) : NULL;
				if (nk)
					m->keys = nk;
				if (nv)
					m->vals = nv;
				if (!key || !nk || !nv)
					rc = nomem(err);
				want_key = 0;
			} else {
				const char *v = (const char *)ev.data.scalar.value;
				int is_null = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
					      (!*v || !strcmp(v, "~") || !strcmp(v, "null") ||
					       !strcmp(v, "Null") || !strcmp(v, "NULL"));
				m->keys[m->n] = key;
				m->vals[m->n] = is_null ? NULL : strndup(v, ev.data.scalar.length);
				m->n++;
				key = NULL;
				want_key = 1;
			}
			break;
		default: break;
		}
		yaml_event_delete(&ev);
		if (rc)
			break;
	}
	free(key);
	yaml_parser_delete(&p);
	free(text);
	if (rc)
		ymeta_free(m);
	return rc;
}

/* True when s is valid UTF-8 (MLflow reads every file as UTF-8). */
static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p++;
		int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
		if (n < 0 || (n == 1 && c < 0xc2))
			return 0;
		unsigned cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
		for (int k = 0; k < n; k++, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
	}
	return 1;
}

static int not_utf8(struct bio_error *err, const char *what)
{
	return bio_error_set(err, BIO_EINVAL, "%s is not valid UTF-8", what);
}

/* ---- keys ---- */

int bio_track_sanitize_key(char *out, size_t cap, const char *key)
{
	size_t n = 0;
	int at_part_start = 1;
	const char *p = key;
	if (cap < 2)
		return BIO_ELIMIT;
	while (*p && n < BIO_TRACK_MAX_KEY && n + 1 < cap) {
		if (*p == '/') {
			if (!at_part_start) { /* drop repeated and leading slashes */
				out[n++] = '/';
				at_part_start = 1;
			}
			p++;
			continue;
		}
		/* a "." or ".." path part becomes "_" */
		size_t plen = strcspn(p, "/");
		if (at_part_start && ((plen == 1 && p[0] == '.') || (plen == 2 && p[0] == '.' && p[1] == '.'))) {
			out[n++] = '_';
			p += plen;
			at_part_start = 0;
			continue;
		}
		unsigned char c = (unsigned char)*p++;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			 c == '_' || c == '-' || c == '.' || c == ' ';
		out[n++] = ok ? (char)c : '_';
		at_part_start = 0;
	}
	while (n > 0 && out[n - 1] == '/')
		n--;
	if (n == 0)
		out[n++] = '_';
	out[n] = '\0';
	if (*p && n + 1 >= cap && n < BIO_TRACK_MAX_KEY)
		return BIO_ELIMIT;
	return 0;
}

/* ---- the store ---- */

static char *root_path(const char *root_uri, struct bio_error *err)
{
	char *p;
	if (!root_uri || !*root_uri)
		root_uri = "mlruns";
	if (strncmp(root_uri, "file:", 5) == 0) {
		p = uri_to_path(root_uri);
	} else if (strstr(root_uri, "://")) {
		bio_error_set(err, BIO_EUNSUPPORTED,
			      "%s: only local tracking stores (a path or file:// URI) are supported",
			      root_uri);
		return NULL;
	} else {
		p = strdup(root_uri);
	}
	if (!p)
		nomem(err);
	return p;
}

/* Opens (creating when new) the store; returns its absolute path. */
static char *store_open(const char *root_uri, int create, struct bio_error *err)
{
	char *p = root_path(root_uri, err);
	if (!p)
		return NULL;
	int is_new = !is_dir(p);
	if (is_new && !create) {
		bio_error_set(err, BIO_ENOTFOUND, "%s: no tracking store there", p);
		free(p);
		return NULL;
	}
	if (is_new && bio_fs_mkdir_p(p, err) != 0) {
		free(p);
		return NULL;
	}
	char *abs = realpath(p, NULL);
	if (!abs) {
		bio_error_set(err, BIO_EIO, "%s: %s", p, strerror(errno));
		free(p);
		return NULL;
	}
	free(p);
	char *trash = bio_str_fmt("%s/.trash", abs);
	if (!trash || (mkdir(trash, 0777) != 0 && errno != EEXIST)) {
		bio_error_set(err, BIO_EIO, "%s: %s", trash ? trash : abs, strerror(errno));
		free(trash);
		free(abs);
		return NULL;
	}
	free(trash);
	return abs;
}

/* Writes an experiment's directory and meta.yaml. */
static int experiment_create(const char *root, const char *id, const char *name,
			     struct bio_error *err)
{
	char *dir = bio_str_fmt("%s/%s", root, id);
	char *meta = bio_str_fmt("%s/%s/meta.yaml", root, id);
	char *uri = path_to_uri(root);
	char *loc = uri ? bio_str_fmt("%s/%s", uri, id) : NULL;
	int rc;
	if (!dir || !meta || !loc) {
		rc = nomem(err);
		goto out;
	}
	if (mkdir(dir, 0777) != 0) {
		rc = bio_error_set(err, errno == EEXIST ? BIO_EINVAL : BIO_EIO,
				   "%s: cannot create experiment: %s", dir, strerror(errno));
		goto out;
	}
	int64_t t = bio_clock_now_ms();
	struct yv kv[] = {
		{"artifact_location", YV_STR, loc, 0}, {"creation_time", YV_INT, NULL, t},
		{"experiment_id", YV_STR, id, 0},       {"last_update_time", YV_INT, NULL, t},
		{"lifecycle_stage", YV_STR, "active", 0}, {"name", YV_STR, name, 0},
	};
	rc = yaml_write(dir, meta, kv, sizeof kv / sizeof kv[0], err);
out:
	free(dir);
	free(meta);
	free(uri);
	free(loc);
	return rc;
}

/* Finds the experiment named name under parent (the store or its .trash); *id new or NULL. */
static int experiment_find(char **id, const char *parent, const char *name, struct bio_error *err)
{
	*id = NULL;
	DIR *d = opendir(parent);
	if (!d)
		return bio_error_set(err, BIO_EIO, "%s: %s", parent, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "models") == 0)
			continue;
		char *meta = bio_str_fmt("%s/%s/meta.yaml", parent, e->d_name);
		if (!meta) {
			rc = nomem(err);
			break;
		}
		struct ymeta m;
		struct bio_error e2;
		if (ymeta_read(&m, meta, &e2) == 0) {
			const char *n = ymeta_get(&m, "name");
			const char *i = ymeta_get(&m, "experiment_id");
			if (n && i && strcmp(n, name) == 0 && strcmp(i, e->d_name) == 0) {
				*id = strdup(e->d_name);
				if (!*id)
					rc = nomem(err);
			}
			ymeta_free(&m);
		}
		free(meta);
		if (*id || rc)
			break;
	}
	closedir(d);
	return rc;
}

static int experiment_get_or_create(char **id, const char *root, const char *name,
				    struct bio_error *err)
{
	int rc = experiment_find(id, root, name, err);
	if (rc || *id)
		return rc;
	char *trash = bio_str_fmt("%s/.trash", root);
	if (!trash)
		return nomem(err);
	char *deleted = NULL;
	rc = experiment_find(&deleted, trash, name, err);
	free(trash);
	if (!rc && deleted) {
		rc = bio_error_set(err, BIO_EINVAL,
				   "%s: experiment '%s' exists in deleted state (id %s, in .trash): "
				   "restore it or remove it from .trash",
				   root, name, deleted);
		free(deleted);
	}
	if (rc)
		return rc;
	/* a new id like MLflow's: a random positive 63-bit integer in decimal */
	for (int attempt = 0; attempt < 8; attempt++) {
		uint64_t r;
		rc = random_bytes(&r, sizeof r, err);
		if (rc)
			return rc;
		r &= INT64_MAX;
		if (r < 100000000000000000ULL)
			r += 100000000000000000ULL;
		*id = bio_str_fmt("%" PRIu64, r);
		if (!*id)
			return nomem(err);
		rc = experiment_create(root, *id, name, err);
		if (rc != BIO_EINVAL) /* EINVAL: that id exists already; draw again */
			break;
		free(*id);
		*id = NULL;
	}
	if (rc) {
		free(*id);
		*id = NULL;
	}
	return rc;
}

static const char *user_name(void)
{
	const char *vars[] = {"LOGNAME", "USER", "LNAME", "USERNAME"};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return v;
	}
	struct passwd *pw = getpwuid(getuid());
	return pw && pw->pw_name ? pw->pw_name : "unknown";
}

/* Writes the run's meta.yaml; with_deleted adds "deleted_time: null" as MLflow does at creation. */
static int run_write_meta(const struct bio_track_run *r, int with_deleted, struct bio_error *err)
{
	char *meta = bio_str_fmt("%s/meta.yaml", r->run_dir);
	if (!meta)
		return nomem(err);
	struct yv kv[16] = {
		{"artifact_uri", YV_STR, r->artifact_uri, 0},
		{"end_time", r->end_time < 0 ? YV_NULL : YV_INT, NULL, r->end_time},
		{"entry_point_name", YV_STR, "", 0},
		{"experiment_id", YV_STR, r->exp_id, 0},
		{"lifecycle_stage", YV_STR, r->lifecycle, 0},
		{"run_id", YV_STR, r->run_id, 0},
		{"run_name", YV_STR, r->run_name, 0},
		{"run_uuid", YV_STR, r->run_id, 0},
		{"source_name", YV_STR, "", 0},
		{"source_type", YV_INT, NULL, 4},
		{"source_version", YV_STR, "", 0},
		{"start_time", YV_INT, NULL, r->start_time},
		{"status", YV_INT, NULL, r->status},
		{"tags", YV_EMPTY_LIST, NULL, 0},
		{"user_id", YV_STR, r->user_id, 0},
	};
	size_t n = 15;
	if (with_deleted)
		kv[n++] = (struct yv){"deleted_time", YV_NULL, NULL, 0};
	int rc = yaml_write(r->run_dir, meta, kv, n, err);
	free(meta);
	return rc;
}

void bio_track_run_free(struct bio_track_run *r)
{
	if (!r)
		return;
	if (r->hooks && r->hooks->free)
		r->hooks->free(r->hook_ud);
	BIO_FREE(r->root, r->exp_id, r->run_id, r->run_dir, r->artifact_dir, r->artifact_uri,
		 r->run_name, r->user_id, r->lifecycle, r);
}

const char *bio_track_run_id(const struct bio_track_run *r) { return r->run_id; }
const char *bio_track_run_experiment_id(const struct bio_track_run *r) { return r->exp_id; }
const char *bio_track_run_dir(const struct bio_track_run *r) { return r->run_dir; }
const char *bio_track_run_artifact_dir(const struct bio_track_run *r) { return r->artifact_dir; }

/* Writes a tag file without the mlflow.runName side effect. */
static int tag_write(struct bio_track_run *r, const char *key, const char *value,
		     struct bio_error *err)
{
	char k[BIO_TRACK_MAX_KEY + 1];
	bio_track_sanitize_key(k, sizeof k, key);
	if (!utf8_ok(value))
		return not_utf8(err, "tag value");
	if (strlen(value) > BIO_TRACK_MAX_TAG_VALUE)
		return bio_error_set(err, BIO_ELIMIT, "%s: tag '%s': value of %zu bytes exceeds %d",
				     r->run_dir, k, strlen(value), BIO_TRACK_MAX_TAG_VALUE);
	char *path = bio_str_fmt("%s/tags/%s", r->run_dir, k);
	if (!path)
		return nomem(err);
	int rc = bio_fs_write_atomic(path, value, strlen(value), r->run_dir, 0, err);
	free(path);
	return rc;
}

struct bio_track_run *bio_track_run_start(const char *root_uri, const char *experiment_name,
					  const char *run_name, struct bio_error *err)
{
	if ((experiment_name && !utf8_ok(experiment_name)) || (run_name && !utf8_ok(run_name))) {
		not_utf8(err, "experiment or run name");
		return NULL;
	}
	struct bio_track_run *r = calloc(1, sizeof *r);
	if (!r) {
		nomem(err);
		return NULL;
	}
	int rc;
	char *root_rel = root_path(root_uri, err);
	if (!root_rel)
		goto fail;
	int is_new = !is_dir(root_rel);
	free(root_rel);
	r->root = store_open(root_uri, 1, err);
	if (!r->root)
		goto fail;
	char *zero = bio_str_fmt("%s/0", r->root);
	if (!zero) {
		nomem(err);
		goto fail;
	}
	int have_zero = is_dir(zero);
	free(zero);
	if ((is_new || !have_zero) && experiment_create(r->root, "0", "Default", err) != 0)
		goto fail;
	if (!experiment_name || !*experiment_name || strcmp(experiment_name, "Default") == 0) {
		r->exp_id = strdup("0");
		if (!r->exp_id) {
			nomem(err);
			goto fail;
		}
	} else {
		if (strlen(experiment_name) > BIO_TRACK_MAX_EXPERIMENT_NAME) {
			bio_error_set(err, BIO_ELIMIT, "experiment name longer than %d characters",
				      BIO_TRACK_MAX_EXPERIMENT_NAME);
			goto fail;
		}
		if (experiment_get_or_create(&r->exp_id, r->root, experiment_name, err) != 0)
			goto fail;
	}
	char id[33];
	if (uuid4_hex(id, err) != 0)
		goto fail;
	r->run_id = strdup(id);
	r->run_dir = bio_str_fmt("%s/%s/%s", r->root, r->exp_id, id);
	r->artifact_dir = bio_str_fmt("%s/artifacts", r->run_dir ? r->run_dir : "");
	char *root_uri_s = path_to_uri(r->root);
	r->artifact_uri = root_uri_s ? bio_str_fmt("%s/%s/%s/artifacts", root_uri_s, r->exp_id, id) : NULL;
	free(root_uri_s);
	r->run_name = run_name && *run_name ? strdup(run_name) : bio_str_fmt("run-%.8s", id);
	r->user_id = strdup(user_name());
	r->lifecycle = strdup("active");
	if (!r->run_id || !r->run_dir || !r->artifact_dir || !r->artifact_uri || !r->run_name ||
	    !r->user_id || !r->lifecycle) {
		nomem(err);
		goto fail;
	}
	r->start_time = bio_clock_now_ms();
	r->end_time = -1;
	r->status = BIO_TRACK_RUNNING;
	if (mkdir(r->run_dir, 0777) != 0) {
		bio_error_set(err, BIO_EIO, "%s: %s", r->run_dir, strerror(errno));
		goto fail;
	}
	rc = run_write_meta(r, 1, err);
	const char *subdirs[] = {"metrics", "params", "artifacts", "tags"};
	for (size_t i = 0; !rc && i < sizeof subdirs / sizeof subdirs[0]; i++) {
		char *d = bio_str_fmt("%s/%s", r->run_dir, subdirs[i]);
		rc = d ? bio_fs_mkdir_p(d, err) : nomem(err);
		free(d);
	}
	if (!rc)
		rc = tag_write(r, "mlflow.runName", r->run_name, err);
	if (!rc)
		rc = tag_write(r, "mlflow.user", r->user_id, err);
	if (!rc)
		rc = tag_write(r, "mlflow.source.type", "LOCAL", err);
	if (rc)
		goto fail;
	return r;
fail:
	bio_track_run_free(r);
	return NULL;
}

/* Finds the directory of run run_id in the store (active experiments, then .trash). */
static char *run_find(const char *root, const char *run_id, char **exp_id, struct bio_error *err)
{
	const char *parents[2] = {"", "/.trash"};
	for (int k = 0; k < 2; k++) {
		char *parent = bio_str_fmt("%s%s", root, parents[k]);
		DIR *d = parent ? opendir(parent) : NULL;
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.' || strcmp(e->d_name, "models") == 0)
				continue;
			char *meta = bio_str_fmt("%s/%s/%s/meta.yaml", parent, e->d_name, run_id);
			if (meta && access(meta, F_OK) == 0) {
				*exp_id = strdup(e->d_name);
				char *dir = bio_str_fmt("%s/%s/%s", parent, e->d_name, run_id);
				free(meta);
				closedir(d);
				free(parent);
				if (!dir || !*exp_id) {
					free(dir);
					nomem(err);
					return NULL;
				}
				return dir;
			}
			free(meta);
		}
		if (d)
			closedir(d);
		free(parent);
	}
	bio_error_set(err, BIO_ENOTFOUND, "%s: no run with id '%s'", root, run_id);
	return NULL;
}

static int run_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 256 ||
	    !((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') || (id[0] >= '0' && id[0] <= '9')))
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Opens run run_id of the store; reopen: make it RUNNING again (else leave meta.yaml as it is). */
static struct bio_track_run *run_load(const char *root_uri, const char *run_id, int reopen,
				      struct bio_error *err)
{
	if (!run_id_ok(run_id)) {
		bio_error_set(err, BIO_EINVAL, "'%s' is not a run id", run_id);
		return NULL;
	}
	struct bio_track_run *r = calloc(1, sizeof *r);
	if (!r) {
		nomem(err);
		return NULL;
	}
	struct ymeta m = {0};
	char *meta = NULL;
	r->root = store_open(root_uri, 0, err);
	if (!r->root)
		goto fail;
	r->run_dir = run_find(r->root, run_id, &r->exp_id, err);
	if (!r->run_dir)
		goto fail;
	meta = bio_str_fmt("%s/meta.yaml", r->run_dir);
	if (!meta || ymeta_read(&m, meta, err) != 0)
		goto fail;
	const char *v;
	if (!(v = ymeta_get(&m, "experiment_id")) || strcmp(v, r->exp_id) != 0) {
		bio_error_set(err, BIO_EFORMAT, "%s: experiment_id does not match its directory", meta);
		goto fail;
	}
	if (ymeta_int(&m, "start_time", &r->start_time) != 0) {
		bio_error_set(err, BIO_EFORMAT, "%s: no integer start_time", meta);
		goto fail;
	}
	const char *name = ymeta_get(&m, "run_name");
	const char *user = ymeta_get(&m, "user_id");
	const char *auri = ymeta_get(&m, "artifact_uri");
	const char *life = ymeta_get(&m, "lifecycle_stage");
	r->run_id = strdup(run_id);
	r->run_name = strdup(name ? name : "");
	r->user_id = strdup(user ? user : user_name());
	r->lifecycle = strdup(life ? life : "active");
	r->artifact_uri = auri ? strdup(auri) : NULL;
	char *ad = auri ? uri_to_path(auri) : NULL;
	r->artifact_dir = ad ? ad : bio_str_fmt("%s/artifacts", r->run_dir);
	if (!r->run_id || !r->run_name || !r->user_id || !r->lifecycle || !r->artifact_dir) {
		nomem(err);
		goto fail;
	}
	if (!r->artifact_uri) {
		char *u = path_to_uri(r->artifact_dir);
		r->artifact_uri = u;
		if (!u) {
			nomem(err);
			goto fail;
		}
	}
	if (strcmp(r->lifecycle, "active") != 0) {
		bio_error_set(err, BIO_EINVAL, "%s: the run is deleted", r->run_dir);
		goto fail;
	}
	if (!reopen) {
		int64_t st = BIO_TRACK_RUNNING, et = -1;
		ymeta_int(&m, "status", &st);
		if (ymeta_int(&m, "end_time", &et) != 0)
			et = -1;
		r->status = (int)st;
		r->end_time = et;
		ymeta_free(&m);
		free(meta);
		return r;
	}
	r->status = BIO_TRACK_RUNNING;
	r->end_time = -1;
	if (run_write_meta(r, ymeta_has(&m, "deleted_time"), err) != 0)
		goto fail;
	ymeta_free(&m);
	free(meta);
	return r;
fail:
	ymeta_free(&m);
	free(meta);
	bio_track_run_free(r);
	return NULL;
}

struct bio_track_run *bio_track_run_open(const char *root_uri, const char *run_id,
					 struct bio_error *err)
{
	return run_load(root_uri, run_id, 1, err);
}

struct bio_track_run *bio_track_run_load(const char *root_uri, const char *run_id,
					 struct bio_error *err)
{
	return run_load(root_uri, run_id, 0, err);
}

void bio_track_run_set_hooks(struct bio_track_run *r, const struct bio_track_hooks *hooks,
			     void *ud)
{
	r->hooks = hooks;
	r->hook_ud = ud;
}

void *bio_track_run_hook_data(const struct bio_track_run *r)
{
	return r->hook_ud;
}

void bio_track_run_info(const struct bio_track_run *r, struct bio_track_run_info *info)
{
	info->root = r->root;
	info->run_name = r->run_name;
	info->user_id = r->user_id;
	info->start_time = r->start_time;
	info->end_time = r->end_time;
	info->status = r->status;
}

int bio_track_meta_get(char **value, const char *meta_path, const char *key,
		       struct bio_error *err)
{
	*value = NULL;
	struct ymeta m;
	int rc = ymeta_read(&m, meta_path, err);
	if (rc)
		return rc;
	const char *v = ymeta_get(&m, key);
	if (!v)
		rc = bio_error_set(err, BIO_ENOTFOUND, "%s: no %s", meta_path, key);
	else if (!(*value = strdup(v)))
		rc = nomem(err);
	ymeta_free(&m);
	return rc;
}

int bio_track_flush(struct bio_track_run *r, struct bio_error *err)
{
	return r->hooks && r->hooks->flush ? r->hooks->flush(r->hook_ud, r, 0, err) : 0;
}

int bio_track_flush_now(struct bio_track_run *r, struct bio_error *err)
{
	return r->hooks && r->hooks->flush ? r->hooks->flush(r->hook_ud, r, 1, err) : 0;
}

int bio_track_log_param(struct bio_track_run *r, const char *key, const char *value,
			struct bio_error *err)
{
	char k[BIO_TRACK_MAX_KEY + 1];
	bio_track_sanitize_key(k, sizeof k, key);
	size_t len = strlen(value);
	if (!utf8_ok(value))
		return not_utf8(err, "param value");
	if (len > BIO_TRACK_MAX_PARAM_VALUE)
		return bio_error_set(err, BIO_ELIMIT, "%s: param '%s': value of %zu bytes exceeds %d",
				     r->run_dir, k, len, BIO_TRACK_MAX_PARAM_VALUE);
	char *path = bio_str_fmt("%s/params/%s", r->run_dir, k);
	if (!path)
		return nomem(err);
	char *old;
	size_t old_len;
	struct bio_error e2;
	int rc = read_small(&old, &old_len, path, BIO_TRACK_MAX_PARAM_VALUE + 16, &e2);
	if (rc == 0) {
		if (old_len != len || memcmp(old, value, len) != 0)
			rc = bio_error_set(err, BIO_EINVAL,
					   "%s: param '%s' was already logged with value '%.200s', "
					   "params cannot change (new value '%.200s')",
					   r->run_dir, k, old, value);
		free(old);
		free(path);
		return rc;
	}
	rc = bio_fs_write_atomic(path, value, len, r->run_dir, 0, err);
	free(path);
	return rc;
}

/* Formats v as Python's repr(float) does. */
static void format_double(char *out, size_t cap, double v)
{
	if (isnan(v)) {
		snprintf(out, cap, "nan");
		return;
	}
	if (isinf(v)) {
		snprintf(out, cap, v < 0 ? "-inf" : "inf");
		return;
	}
	char e[40];
	int prec = 1;
	for (; prec <= 17; prec++) {
		snprintf(e, sizeof e, "%.*e", prec - 1, v);
		if (strtod(e, NULL) == v)
			break;
	}
	/* e = [-]d[.ddd]e[+-]XX */
	const char *p = e;
	int neg = *p == '-';
	if (neg)
		p++;
	char digits[24];
	size_t nd = 0;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	int exp = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	char *o = out;
	size_t left = cap;
#define PUT(...)                                                              \
	do {                                                                  \
		int w_ = snprintf(o, left, __VA_ARGS__);                      \
		if (w_ < 0 || (size_t)w_ >= left)                             \
			return;                                               \
		o += w_;                                                      \
		left -= (size_t)w_;                                           \
	} while (0)
	if (neg)
		PUT("-");
	if (exp >= -4 && exp < 16) {
		if (exp >= 0) {
			if ((int)nd <= exp + 1) {
				PUT("%s", digits);
				for (int i = (int)nd; i < exp + 1; i++)
					PUT("0");
				PUT(".0");
			} else {
				PUT("%.*s.%s", exp + 1, digits, digits + exp + 1);
			}
		} else {
			PUT("0.");
			for (int i = 0; i < -exp - 1; i++)
				PUT("0");
			PUT("%s", digits);
		}
	} else {
		PUT("%c", digits[0]);
		if (nd > 1)
			PUT(".%s", digits + 1);
		PUT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	}
#undef PUT
}

int bio_track_log_metric(struct bio_track_run *r, const char *key, double value, int64_t step,
			 int64_t timestamp_ms, struct bio_error *err)
{
	char k[BIO_TRACK_MAX_KEY + 1];
	bio_track_sanitize_key(k, sizeof k, key);
	if (timestamp_ms == 0)
		timestamp_ms = bio_clock_now_ms();
	if (timestamp_ms < 0)
		return bio_error_set(err, BIO_EINVAL, "metric '%s': negative timestamp", k);
	char *path = bio_str_fmt("%s/metrics/%s", r->run_dir, k);
	if (!path)
		return nomem(err);
	int rc = bio_fs_mkdir_parent(path, err);
	if (rc) {
		free(path);
		return rc;
	}
	char num[64], line[128];
	format_double(num, sizeof num, value);
	int n = snprintf(line, sizeof line, "%" PRId64 " %s %" PRId64 "\n", timestamp_ms, num, step);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0 || bio_fs_write_all(fd, line, (size_t)n) != 0) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return rc;
	}
	if (close(fd) != 0)
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
	free(path);
	return rc;
}

int bio_track_set_tag(struct bio_track_run *r, const char *key, const char *value,
		      struct bio_error *err)
{
	int rc = tag_write(r, key, value, err);
	if (rc || strcmp(key, "mlflow.runName") != 0)
		return rc;
	char *name = strdup(value);
	if (!name)
		return nomem(err);
	free(r->run_name);
	r->run_name = name;
	return run_write_meta(r, 0, err);
}

/* A relative artifact subdirectory without "..", "." or empty parts. */
static int subdir_ok(const char *s)
{
	if (!s || !*s)
		return 1;
	if (s[0] == '/')
		return 0;
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

int bio_track_log_artifact(struct bio_track_run *r, const char *src_path, const char *subdir,
			   struct bio_error *err)
{
	if (!subdir_ok(subdir))
		return bio_error_set(err, BIO_EINVAL, "artifact directory '%s' must be relative, "
				     "without '.' or '..' parts", subdir);
	const char *base = strrchr(src_path, '/');
	base = base ? base + 1 : src_path;
	if (!*base)
		return bio_error_set(err, BIO_EINVAL, "%s: not a file name", src_path);
	char *dst = subdir && *subdir ? bio_str_fmt("%s/%s/%s", r->artifact_dir, subdir, base)
				      : bio_str_fmt("%s/%s", r->artifact_dir, base);
	char *tmp = bio_str_fmt("%s/.bio-tmp-XXXXXX", r->run_dir);
	int in = -1, out = -1, rc = 0;
	char *buf = malloc(1 << 16);
	if (!dst || !tmp || !buf) {
		rc = nomem(err);
		goto done;
	}
	in = open(src_path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		rc = bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s", src_path,
				   strerror(errno));
		goto done;
	}
	if ((rc = bio_fs_mkdir_parent(dst, err)) != 0)
		goto done;
	out = mkstemp(tmp);
	if (out < 0) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	for (;;) {
		ssize_t n = read(in, buf, 1 << 16);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = bio_error_set(err, BIO_EIO, "%s: %s", src_path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (bio_fs_write_all(out, buf, (size_t)n) != 0) {
			rc = bio_error_set(err, BIO_EIO, "%s: %s", dst, strerror(errno));
			break;
		}
	}
	fchmod(out, 0644);
	if (close(out) != 0 && !rc)
		rc = bio_error_set(err, BIO_EIO, "%s: %s", dst, strerror(errno));
	out = -1;
	if (!rc && rename(tmp, dst) != 0)
		rc = bio_error_set(err, BIO_EIO, "%s: %s", dst, strerror(errno));
	if (rc)
		unlink(tmp);
done:
	if (in >= 0)
		close(in);
	if (out >= 0) {
		close(out);
		unlink(tmp);
	}
	free(buf);
	free(dst);
	free(tmp);
	return rc;
}

int bio_track_run_end(struct bio_track_run *r, int status, struct bio_error *err)
{
	if (status != BIO_TRACK_FINISHED && status != BIO_TRACK_FAILED && status != BIO_TRACK_KILLED)
		return bio_error_set(err, BIO_EINVAL, "run end status %d is not FINISHED (3), "
				     "FAILED (4) or KILLED (5)", status);
	r->status = status;
	r->end_time = bio_clock_now_ms();
	if (r->end_time < r->start_time)
		r->end_time = r->start_time;
	return run_write_meta(r, 0, err);
}

int bio_track_run_close_stale(const char *root_uri, const char *run_id, struct bio_error *err)
{
	if (!run_id_ok(run_id))
		return bio_error_set(err, BIO_EINVAL, "'%s' is not a run id", run_id);
	char *exp_id = NULL, *meta = NULL, *run_dir = NULL;
	struct ymeta m = {0};
	int64_t status = 0;
	int rc = 0;
	char *root = store_open(root_uri, 0, err);
	if (!root)
		return err ? err->code : BIO_ENOTFOUND;
	if (!(run_dir = run_find(root, run_id, &exp_id, err)) ||
	    !(meta = bio_str_fmt("%s/meta.yaml", run_dir)) || ymeta_read(&m, meta, err) != 0) {
		rc = err && err->code ? err->code : BIO_ENOMEM;
		goto out;
	}
	if (ymeta_int(&m, "status", &status) == 0 && status == BIO_TRACK_RUNNING) {
		struct bio_track_run *r = bio_track_run_open(root_uri, run_id, err);
		rc = r ? bio_track_run_end(r, BIO_TRACK_KILLED, err) : err ? err->code : BIO_ENOMEM;
		bio_track_run_free(r);
		if (rc == 0)
			rc = 1;
	}
out:
	ymeta_free(&m);
	free(meta);
	free(run_dir);
	free(exp_id);
	free(root);
	return rc;
}

/* ---- model registry ---- */

static int model_name_ok(const char *name)
{
	return name && *name && !strchr(name, '/') && !strchr(name, '%') && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0 && strlen(name) <= 255;
}

/* Highest N of version-N directories under model_dir (0 when none); with skip_deleted, versions
 * whose stage is Deleted_Internal are passed over. */
static int64_t model_max_version(const char *model_dir, int skip_deleted)
{
	DIR *d = opendir(model_dir);
	if (!d)
		return 0;
	int64_t max = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "version-", 8) != 0)
			continue;
		char *end;
		long long v = strtoll(e->d_name + 8, &end, 10);
		if (*end || v <= 0 || v <= max)
			continue;
		if (skip_deleted) {
			char *meta = bio_str_fmt("%s/%s/meta.yaml", model_dir, e->d_name);
			struct ymeta m;
			struct bio_error e2;
			int ok = meta && ymeta_read(&m, meta, &e2) == 0;
			free(meta);
			if (!ok)
				continue;
			const char *st = ymeta_get(&m, "current_stage");
			int deleted = st && strcmp(st, "Deleted_Internal") == 0;
			ymeta_free(&m);
			if (deleted)
				continue;
		}
		max = v;
	}
	closedir(d);
	return max;
}

static int model_write_meta(const char *model_dir, const char *name, int64_t created,
			    int64_t updated, const char *description, struct bio_error *err)
{
	char *meta = bio_str_fmt("%s/meta.yaml", model_dir);
	if (!meta)
		return nomem(err);
	struct yv kv[] = {
		{"aliases", YV_EMPTY_LIST, NULL, 0},      {"creation_timestamp", YV_INT, NULL, created},
		{"description", YV_STR, description, 0}, {"last_updated_timestamp", YV_INT, NULL, updated},
		{"name", YV_STR, name, 0},
	};
	int rc = yaml_write(model_dir, meta, kv, sizeof kv / sizeof kv[0], err);
	free(meta);
	return rc;
}

int bio_track_register_model(int64_t *version, const char *root_uri, const char *name,
			     const char *source_uri, const char *run_id, struct bio_error *err)
{
	*version = 0;
	if (!model_name_ok(name))
		return bio_error_set(err, BIO_EINVAL,
				     "'%s' is not a valid registered model name (no '/' or '%%')",
				     name ? name : "");
	if (!source_uri || !*source_uri)
		return bio_error_set(err, BIO_EINVAL, "model '%s': empty source URI", name);
	if (!utf8_ok(name) || !utf8_ok(source_uri) || (run_id && !utf8_ok(run_id)))
		return not_utf8(err, "model name or source");
	char *root = store_open(root_uri, 1, err);
	if (!root)
		return err ? err->code : BIO_EIO;
	char *model_dir = bio_str_fmt("%s/models/%s", root, name);
	char *model_meta = model_dir ? bio_str_fmt("%s/meta.yaml", model_dir) : NULL;
	struct ymeta m = {0};
	int rc = 0;
	if (!model_dir || !model_meta) {
		rc = nomem(err);
		goto out;
	}
	if ((rc = bio_fs_mkdir_p(model_dir, err)) != 0)
		goto out;
	int64_t t = bio_clock_now_ms(), created = t;
	char *description = NULL;
	if (access(model_meta, F_OK) == 0) {
		if ((rc = ymeta_read(&m, model_meta, err)) != 0)
			goto out;
		ymeta_int(&m, "creation_timestamp", &created);
		const char *d = ymeta_get(&m, "description");
		description = d ? strdup(d) : NULL;
	}
	rc = model_write_meta(model_dir, name, created, t, description, err);
	free(description);
	if (rc)
		goto out;
	int64_t v = model_max_version(model_dir, 0) + 1;
	char *vdir = NULL;
	for (int attempt = 0; attempt < 16; attempt++, v++) {
		vdir = bio_str_fmt("%s/version-%" PRId64, model_dir, v);
		if (!vdir) {
			rc = nomem(err);
			goto out;
		}
		if (mkdir(vdir, 0777) == 0)
			break;
		int e = errno;
		free(vdir);
		vdir = NULL;
		if (e != EEXIST) {
			rc = bio_error_set(err, BIO_EIO, "%s: cannot create a version: %s", model_dir,
					   strerror(e));
			goto out;
		}
	}
	if (!vdir) {
		rc = bio_error_set(err, BIO_EIO, "%s: cannot allocate a new version", model_dir);
		goto out;
	}
	char *vmeta = bio_str_fmt("%s/meta.yaml", vdir);
	if (!vmeta) {
		free(vdir);
		rc = nomem(err);
		goto out;
	}
	struct yv kv[] = {
		{"aliases", YV_EMPTY_LIST, NULL, 0},
		{"creation_timestamp", YV_INT, NULL, t},
		{"current_stage", YV_STR, "None", 0},
		{"description", YV_NULL, NULL, 0},
		{"last_updated_timestamp", YV_INT, NULL, t},
		{"name", YV_STR, name, 0},
		{"run_id", run_id && *run_id ? YV_STR : YV_NULL, run_id, 0},
		{"run_link", YV_NULL, NULL, 0},
		{"source", YV_STR, source_uri, 0},
		{"status", YV_STR, "READY", 0},
		{"status_message", YV_NULL, NULL, 0},
		{"storage_location", YV_STR, source_uri, 0},
		{"user_id", YV_NULL, NULL, 0},
		{"version", YV_INT, NULL, v},
	};
	rc = yaml_write(vdir, vmeta, kv, sizeof kv / sizeof kv[0], err);
	free(vmeta);
	free(vdir);
	if (!rc)
		*version = v;
out:
	ymeta_free(&m);
	free(model_meta);
	free(model_dir);
	free(root);
	return rc;
}

/* MLflow's alias rule (validation.py): [\w-]+, at most 255, not "latest", not v<digits>. */
static int alias_ok(const char *a)
{
	size_t n = strlen(a);
	if (n == 0 || n > 255 || strcasecmp(a, "latest") == 0)
		return 0;
	int vdigits = (a[0] == 'v' || a[0] == 'V') && n > 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];
		if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
		if (i > 0 && !(c >= '0' && c <= '9'))
			vdigits = 0;
	}
	return !vdigits;
}

int bio_track_check_alias(const char *alias, struct bio_error *err)
{
	if (!alias || !alias_ok(alias))
		return bio_error_set(err, BIO_EINVAL, "'%s' is not a valid model alias (letters, "
				     "digits, '_' and '-'; not 'latest' or v<number>)",
				     alias ? alias : "");
	return 0;
}

int bio_track_set_alias(const char *root_uri, const char *name, const char *alias,
			int64_t version, struct bio_error *err)
{
	if (!model_name_ok(name))
		return bio_error_set(err, BIO_EINVAL, "'%s' is not a valid registered model name",
				     name ? name : "");
	int rc = bio_track_check_alias(alias, err);
	if (rc)
		return rc;
	char *root = store_open(root_uri, 0, err);
	if (!root)
		return err ? err->code : BIO_ENOTFOUND;
	char *model_dir = bio_str_fmt("%s/models/%s", root, name);
	char *vmeta = model_dir ? bio_str_fmt("%s/version-%" PRId64 "/meta.yaml", model_dir, version) : NULL;
	char *apath = model_dir ? bio_str_fmt("%s/aliases/%s", model_dir, alias) : NULL;
	char *mmeta = model_dir ? bio_str_fmt("%s/meta.yaml", model_dir) : NULL;
	char num[32];
	struct ymeta m = {0};
	if (!model_dir || !vmeta || !apath || !mmeta) {
		rc = nomem(err);
		goto out;
	}
	if (access(vmeta, F_OK) != 0) {
		rc = bio_error_set(err, BIO_ENOTFOUND, "model '%s' has no version %" PRId64 " in %s",
				   name, version, root);
		goto out;
	}
	snprintf(num, sizeof num, "%" PRId64, version);
	if ((rc = bio_fs_write_atomic(apath, num, strlen(num), model_dir, 0, err)) != 0)
		goto out;
	if ((rc = ymeta_read(&m, mmeta, err)) != 0)
		goto out;
	int64_t created = bio_clock_now_ms();
	ymeta_int(&m, "creation_timestamp", &created);
	rc = model_write_meta(model_dir, name, created, bio_clock_now_ms(), ymeta_get(&m, "description"), err);
out:
	ymeta_free(&m);
	free(mmeta);
	free(apath);
	free(vmeta);
	free(model_dir);
	free(root);
	return rc;
}

int bio_track_pick_model_file(char **path, const char *dir, struct bio_error *err)
{
	*path = NULL;
	char *best = bio_str_fmt("%s/best.ckpt", dir);
	if (!best)
		return nomem(err);
	if (access(best, R_OK) == 0) {
		*path = best;
		return 0;
	}
	free(best);
	DIR *d = opendir(dir);
	if (!d)
		return bio_error_set(err, BIO_EIO, "%s: %s", dir, strerror(errno));
	struct dirent *e;
	char *only = NULL;
	int n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = bio_str_fmt("%s/%s", dir, e->d_name);
		struct stat st;
		if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && n++ == 0) {
			only = p;
			continue;
		}
		free(p);
	}
	closedir(d);
	if (n == 1) {
		*path = only;
		return 0;
	}
	free(only);
	return bio_error_set(err, BIO_ENOTFOUND, "%s: a model directory without best.ckpt%s", dir,
			     n ? " (and more than one file)" : " (empty)");
}

static int resolve_uri(char **path, const char *root, const char *uri, int depth,
		       struct bio_error *err);

static int resolve_models_uri(char **path, const char *root, const char *uri, int depth,
			      struct bio_error *err)
{
	const char *spec = uri + strlen("models:/");
	const char *slash = strrchr(spec, '/');
	const char *at = strrchr(spec, '@');
	if (at && (!slash || slash < at))
		slash = at; /* models:/NAME@ALIAS */
	if (!slash || slash == spec || !slash[1])
		return bio_error_set(err, BIO_EINVAL, "%s: expected models:/NAME/VERSION, "
				     "models:/NAME@ALIAS or models:/NAME/latest", uri);
	char *name = strndup(spec, (size_t)(slash - spec));
	if (!name)
		return nomem(err);
	int rc = 0;
	char *model_dir = NULL, *meta = NULL;
	struct ymeta m = {0};
	if (!model_name_ok(name)) {
		rc = bio_error_set(err, BIO_EINVAL, "%s: bad model name", uri);
		goto out;
	}
	model_dir = bio_str_fmt("%s/models/%s", root, name);
	if (!model_dir) {
		rc = nomem(err);
		goto out;
	}
	int64_t v = 0;
	if (*slash == '@') {
		char *apath = bio_str_fmt("%s/aliases/%s", model_dir, slash + 1), *txt = NULL;
		if (!apath) {
			rc = nomem(err);
			goto out;
		}
		if (!alias_ok(slash + 1)) {
			rc = bio_error_set(err, BIO_EINVAL, "%s: '%s' is not a valid alias", uri, slash + 1);
		} else if (read_small(&txt, NULL, apath, 64, err) != 0) {
			rc = bio_error_set(err, BIO_ENOTFOUND, "%s: model '%s' has no alias '%s' in %s",
					   uri, name, slash + 1, root);
		} else {
			char *end;
			v = strtoll(txt, &end, 10);
			if (end == txt || v <= 0)
				rc = bio_error_set(err, BIO_EFORMAT, "%s: not a version number", apath);
		}
		free(txt);
		free(apath);
		if (rc)
			goto out;
	} else if (strcmp(slash + 1, "latest") == 0) {
		v = model_max_version(model_dir, 1);
		if (v == 0) {
			rc = bio_error_set(err, BIO_ENOTFOUND, "%s: no versions of model '%s' in %s",
					   uri, name, root);
			goto out;
		}
	} else {
		char *end;
		v = strtoll(slash + 1, &end, 10);
		if (*end || v <= 0) {
			rc = bio_error_set(err, BIO_EINVAL, "%s: version '%s' is not a positive integer "
					   "or 'latest'", uri, slash + 1);
			goto out;
		}
	}
	meta = bio_str_fmt("%s/version-%" PRId64 "/meta.yaml", model_dir, v);
	if (!meta) {
		rc = nomem(err);
		goto out;
	}
	if ((rc = ymeta_read(&m, meta, err)) != 0) {
		if (rc == BIO_ENOTFOUND)
			bio_error_set(err, rc, "%s: model '%s' has no version %" PRId64 " in %s", uri,
				      name, v, root);
		goto out;
	}
	const char *st = ymeta_get(&m, "current_stage");
	if (st && strcmp(st, "Deleted_Internal") == 0) {
		rc = bio_error_set(err, BIO_ENOTFOUND, "%s: version %" PRId64 " is deleted", uri, v);
		goto out;
	}
	const char *src = ymeta_get(&m, "storage_location");
	if (!src || !*src)
		src = ymeta_get(&m, "source");
	if (!src || !*src) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: no source", meta);
		goto out;
	}
	rc = resolve_uri(path, root, src, depth + 1, err);
out:
	ymeta_free(&m);
	free(meta);
	free(model_dir);
	free(name);
	return rc;
}

char *bio_track_artifact_path(const char *base, const char *rest)
{
	while (*rest == '/')
		rest++;
	return *rest ? bio_str_fmt("%s/%s", base, rest) : strdup(base);
}

int bio_track_uri_depth_check(const char *uri, int depth, struct bio_error *err)
{
	return depth > 4 ? bio_error_set(err, BIO_ELIMIT, "%s: model URIs refer to each other too "
					 "deeply", uri)
			 : 0;
}

static int resolve_uri(char **path, const char *root, const char *uri, int depth,
		       struct bio_error *err)
{
	*path = NULL;
	if (bio_track_uri_depth_check(uri, depth, err))
		return BIO_ELIMIT;
	if (strncmp(uri, "models:/", 8) == 0)
		return resolve_models_uri(path, root, uri, depth, err);
	if (strncmp(uri, "runs:/", 6) == 0) {
		const char *spec = uri + 6;
		size_t idlen = strcspn(spec, "/");
		char *id = strndup(spec, idlen);
		if (!id)
			return nomem(err);
		if (!run_id_ok(id)) {
			free(id);
			return bio_error_set(err, BIO_EINVAL, "%s: bad run id", uri);
		}
		char *exp = NULL;
		char *dir = run_find(root, id, &exp, err);
		free(id);
		free(exp);
		if (!dir)
			return err ? err->code : BIO_ENOTFOUND;
		char *meta = bio_str_fmt("%s/meta.yaml", dir);
		struct ymeta m = {0};
		int rc = meta ? ymeta_read(&m, meta, err) : nomem(err);
		char *adir = NULL;
		if (!rc) {
			const char *au = ymeta_get(&m, "artifact_uri");
			adir = au ? uri_to_path(au) : bio_str_fmt("%s/artifacts", dir);
			if (!adir)
				rc = au ? bio_error_set(err, BIO_EUNSUPPORTED,
							"%s: artifact_uri '%s' is not local", meta, au)
					: nomem(err);
		}
		if (!rc && !(*path = bio_track_artifact_path(adir, spec + idlen)))
			rc = nomem(err);
		ymeta_free(&m);
		free(adir);
		free(meta);
		free(dir);
		return rc;
	}
	if (strncmp(uri, "file:", 5) == 0) {
		*path = uri_to_path(uri);
		return *path ? 0 : nomem(err);
	}
	if (strstr(uri, "://"))
		return bio_error_set(err, BIO_EUNSUPPORTED, "%s: not a local model URI", uri);
	*path = strdup(uri);
	return *path ? 0 : nomem(err);
}

int bio_track_resolve_model(char **path, const char *root_uri, const char *model_uri,
			    struct bio_error *err)
{
	*path = NULL;
	if (strncmp(model_uri, "models:/", 8) != 0 && strncmp(model_uri, "runs:/", 6) != 0)
		return resolve_uri(path, "", model_uri, 0, err);
	char *root = store_open(root_uri, 0, err);
	if (!root)
		return err ? err->code : BIO_ENOTFOUND;
	int rc = resolve_uri(path, root, model_uri, 0, err);
	free(root);
	if (rc == 0 && is_dir(*path)) { /* a directory source: its best.ckpt */
		char *file = NULL;
		rc = bio_track_pick_model_file(&file, *path, err);
		free(*path);
		*path = file;
	}
	return rc;
}

/* ---- reading a file-store run ---- */

int bio_track_run_find(char **run_dir, const char *root_uri, const char *run_id,
		       struct bio_error *err)
{
	*run_dir = NULL;
	if (!run_id_ok(run_id))
		return bio_error_set(err, BIO_EINVAL, "'%s' is not a run id", run_id);
	char *root = root_path(root_uri, err), *exp_id = NULL;
	if (!root)
		return err ? err->code : BIO_ENOMEM;
	*run_dir = run_find(root, run_id, &exp_id, err);
	free(exp_id);
	free(root);
	return *run_dir ? 0 : err ? err->code : BIO_ENOTFOUND;
}

int bio_track_run_read_status(int *status, const char *run_dir, struct bio_error *err)
{
	char *meta = bio_str_fmt("%s/meta.yaml", run_dir);
	if (!meta)
		return nomem(err);
	struct ymeta m;
	int rc = ymeta_read(&m, meta, err);
	int64_t st;
	if (rc == 0) {
		if (ymeta_int(&m, "status", &st) == 0 && st >= BIO_TRACK_RUNNING &&
		    st <= BIO_TRACK_KILLED)
			*status = (int)st;
		else
			rc = bio_error_set(err, BIO_EFORMAT, "%s: no valid status", meta);
		ymeta_free(&m);
	}
	free(meta);
	return rc;
}

void bio_track_series_free(struct bio_track_series *series, size_t n_series)
{
	for (size_t i = 0; series && i < n_series; i++) {
		free(series[i].key);
		free(series[i].timestamps);
		free(series[i].steps);
		free(series[i].values);
	}
	free(series);
}

/* One line "<timestamp_ms> <value> [<step>]\n"; 0, or -1 when it does not parse. */
static int metric_line(int64_t *ts, double *v, int64_t *step, const char *line)
{
	char *end;
	errno = 0;
	*ts = strtoll(line, &end, 10);
	if (end == line || *end != ' ' || errno)
		return -1;
	const char *p = end + 1;
	*v = strtod(p, &end);
	if (end == p)
		return -1;
	*step = 0;
	if (*end == ' ') {
		p = end + 1;
		*step = strtoll(p, &end, 10);
		if (end == p || errno)
			return -1;
	}
	return *end == '\n' ? 0 : -1; /* no line break: torn by a killed writer */
}

static int read_series(struct bio_track_series *s, const char *path, struct bio_error *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
	char *line = NULL;
	size_t line_cap = 0, cap = 0;
	int rc = 0;
	while (getline(&line, &line_cap, f) > 0) {
		int64_t ts, step;
		double v;
		if (metric_line(&ts, &v, &step, line) != 0)
			continue;
		if (s->n == cap) {
			if (cap >= BIO_TRACK_MAX_POINTS) {
				rc = bio_error_set(err, BIO_ELIMIT, "%s: more than %d points", path,
						   BIO_TRACK_MAX_POINTS);
				break;
			}
			cap = cap ? 2 * cap : 64;
			int64_t *t2 = realloc(s->timestamps, cap * sizeof *t2);
			if (t2)
				s->timestamps = t2;
			int64_t *s2 = realloc(s->steps, cap * sizeof *s2);
			if (s2)
				s->steps = s2;
			double *v2 = realloc(s->values, cap * sizeof *v2);
			if (v2)
				s->values = v2;
			if (!t2 || !s2 || !v2) {
				rc = nomem(err);
				break;
			}
		}
		s->timestamps[s->n] = ts;
		s->steps[s->n] = step;
		s->values[s->n++] = v;
	}
	if (rc == 0 && ferror(f))
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
	free(line);
	fclose(f);
	return rc;
}

static int series_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bio_track_series *)a)->key,
		      ((const struct bio_track_series *)b)->key);
}

int bio_track_run_read_metrics(struct bio_track_series **series, size_t *n_series,
			       const char *run_dir, struct bio_error *err)
{
	*series = NULL;
	*n_series = 0;
	char *mdir = bio_str_fmt("%s/metrics", run_dir);
	if (!mdir)
		return nomem(err);
	DIR *d = opendir(mdir);
	if (!d) {
		int rc = bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s", mdir,
				       strerror(errno));
		free(mdir);
		return rc;
	}
	struct bio_track_series *out = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = bio_str_fmt("%s/%s", mdir, e->d_name);
		struct stat st;
		if (!p) {
			rc = nomem(err);
			break;
		}
		if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(p);
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			struct bio_track_series *o2 = realloc(out, cap * sizeof *o2);
			if (!o2) {
				free(p);
				rc = nomem(err);
				break;
			}
			out = o2;
		}
		memset(&out[n], 0, sizeof out[n]);
		out[n].key = strdup(e->d_name);
		rc = out[n].key ? read_series(&out[n], p, err) : nomem(err);
		n++;
		free(p);
	}
	closedir(d);
	free(mdir);
	if (rc) {
		bio_track_series_free(out, n);
		return rc;
	}
	if (n)
		qsort(out, n, sizeof *out, series_cmp);
	*series = out;
	*n_series = n;
	return 0;
}
