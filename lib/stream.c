/* bio-stream v1 reader and writer on msgpack-c's streaming unpacker and packer. Reading holds one
 * record in memory at a time: before msgpack-c sees an object, a small scanner of our own walks
 * its encoding in the unpacker's buffer and checks every declared length, item count and the
 * nesting depth against struct bio_stream_limits, and tells how many bytes the object needs, so
 * nothing is allocated for sizes the input merely claims. Records are parsed into a zone reused
 * from record to record; tensor data misaligned in the read buffer is moved to an aligned scratch
 * block so that borrowed tensor views can be read as their element type. Writers pack straight
 * into the FILE (tensor data is never copied on our side) and keep the first write error. */
#include "bio/stream.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "free_list.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bio-stream tensors are little-endian; this host is not (byte swapping is not implemented)"
#endif

/* msgpack-c's C unpacker keeps a fixed stack of this many open containers. */
#define STREAM_MSGPACK_MAX_DEPTH 32
#define STREAM_READ_CHUNK (64 * 1024)
#define STREAM_MAX_LIMIT_DEPTH 4096
#define STREAM_MAX_OPEN_PARTS 64

void bio_stream_limits_default(struct bio_stream_limits *lim)
{
	lim->max_object_bytes = (size_t)256 << 20;
	lim->max_tensor_bytes = (size_t)256 << 20;
	lim->max_str_bytes = (size_t)1 << 20;
	lim->max_items = (size_t)16 << 20;
	lim->max_depth = 32;
}

/* ---- values ---- */

static const msgpack_object *mo(const struct bio_value *v)
{
	return (const msgpack_object *)(const void *)v;
}

static const struct bio_value *bv(const msgpack_object *o)
{
	return (const struct bio_value *)(const void *)o;
}

enum bio_vtype bio_value_type(const struct bio_value *v)
{
	if (!v)
		return BIO_V_NIL;
	const msgpack_object *o = mo(v);
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return BIO_V_NIL;
	case MSGPACK_OBJECT_BOOLEAN: return BIO_V_BOOL;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return o->via.u64 <= (uint64_t)INT64_MAX ? BIO_V_INT : BIO_V_OTHER;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return BIO_V_INT;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return BIO_V_FLOAT;
	case MSGPACK_OBJECT_STR: return BIO_V_STR;
	case MSGPACK_OBJECT_BIN: return BIO_V_BIN;
	case MSGPACK_OBJECT_ARRAY: return BIO_V_ARRAY;
	case MSGPACK_OBJECT_MAP: return BIO_V_MAP;
	default: return BIO_V_OTHER;
	}
}

static const char *vtype_name(const struct bio_value *v)
{
	if (!v)
		return "nothing";
	static const char *const names[] = {
		[BIO_V_NIL] = "nil",	 [BIO_V_BOOL] = "bool", [BIO_V_INT] = "int",
		[BIO_V_FLOAT] = "float", [BIO_V_STR] = "str",	[BIO_V_BIN] = "bin",
		[BIO_V_ARRAY] = "array", [BIO_V_MAP] = "map",	[BIO_V_OTHER] = "ext or uint64",
	};
	return names[bio_value_type(v)];
}

size_t bio_value_len(const struct bio_value *v)
{
	if (!v)
		return 0;
	const msgpack_object *o = mo(v);
	switch (o->type) {
	case MSGPACK_OBJECT_STR: return o->via.str.size;
	case MSGPACK_OBJECT_BIN: return o->via.bin.size;
	case MSGPACK_OBJECT_ARRAY: return o->via.array.size;
	case MSGPACK_OBJECT_MAP: return o->via.map.size;
	default: return 0;
	}
}

/* msgpack-c leaves the pointer of an empty str or bin NULL: callers get "" instead. */
static const char empty_bytes[8] __attribute__((aligned(8)));

static int key_eq(const msgpack_object *k, const char *key, size_t klen)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
	       (klen == 0 || memcmp(k->via.str.ptr, key, klen) == 0);
}

const struct bio_value *bio_value_get(const struct bio_value *map, const char *key)
{
	if (!map || mo(map)->type != MSGPACK_OBJECT_MAP)
		return NULL;
	const msgpack_object_map *m = &mo(map)->via.map;
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < m->size; i++)
		if (key_eq(&m->ptr[i].key, key, klen))
			return bv(&m->ptr[i].val);
	return NULL;
}

const struct bio_value *bio_value_at(const struct bio_value *arr, size_t i)
{
	if (!arr || mo(arr)->type != MSGPACK_OBJECT_ARRAY || i >= mo(arr)->via.array.size)
		return NULL;
	return bv(&mo(arr)->via.array.ptr[i]);
}

const struct bio_value *bio_value_map_at(const struct bio_value *map, size_t i, const char **key,
					 size_t *key_len)
{
	*key = NULL;
	*key_len = 0;
	if (!map || mo(map)->type != MSGPACK_OBJECT_MAP || i >= mo(map)->via.map.size)
		return NULL;
	const msgpack_object_kv *kv = &mo(map)->via.map.ptr[i];
	if (kv->key.type == MSGPACK_OBJECT_STR) {
		*key = kv->key.via.str.size ? kv->key.via.str.ptr : empty_bytes;
		*key_len = kv->key.via.str.size;
	}
	return bv(&kv->val);
}

int bio_value_bool(const struct bio_value *v, int *out)
{
	if (!v || mo(v)->type != MSGPACK_OBJECT_BOOLEAN)
		return BIO_EFORMAT;
	*out = mo(v)->via.boolean ? 1 : 0;
	return 0;
}

int bio_value_int(const struct bio_value *v, int64_t *out)
{
	if (!v)
		return BIO_EFORMAT;
	const msgpack_object *o = mo(v);
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
		*out = (int64_t)o->via.u64;
		return 0;
	}
	return BIO_EFORMAT;
}

int bio_value_double(const struct bio_value *v, double *out)
{
	if (!v)
		return BIO_EFORMAT;
	const msgpack_object *o = mo(v);
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
	default: return BIO_EFORMAT;
	}
}

int bio_value_str(const struct bio_value *v, const char **s, size_t *len)
{
	if (!v || mo(v)->type != MSGPACK_OBJECT_STR)
		return BIO_EFORMAT;
	*len = mo(v)->via.str.size;
	*s = *len ? mo(v)->via.str.ptr : empty_bytes;
	return 0;
}

int bio_value_bin(const struct bio_value *v, const void **data, size_t *len)
{
	if (!v || mo(v)->type != MSGPACK_OBJECT_BIN)
		return BIO_EFORMAT;
	*len = mo(v)->via.bin.size;
	*data = *len ? (const void *)mo(v)->via.bin.ptr : (const void *)empty_bytes;
	return 0;
}

char *bio_value_strdup(const struct bio_value *v)
{
	const char *s;
	size_t len;
	if (bio_value_str(v, &s, &len))
		return NULL;
	char *c = malloc(len + 1);
	if (!c)
		return NULL;
	if (len)
		memcpy(c, s, len);
	c[len] = '\0';
	return c;
}

int bio_value_str_eq(const struct bio_value *v, const char *s)
{
	const char *p;
	size_t len;
	if (bio_value_str(v, &p, &len))
		return 0;
	return strlen(s) == len && (len == 0 || memcmp(p, s, len) == 0);
}

/* Writes a printable, truncated copy of a str value for messages. */
static const char *str_for_msg(char *buf, size_t cap, const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 4 < cap; i++)
		buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n < len && n + 4 <= cap) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

int bio_value_tensor(struct bio_tensor *out, const struct bio_value *v, const char *what,
		     struct bio_error *err)
{
	memset(out, 0, sizeof *out);
	if (!v || mo(v)->type != MSGPACK_OBJECT_MAP)
		return bio_error_set(err, BIO_EFORMAT, "%s: tensor is not a map (got %s)", what,
				     vtype_name(v));
	const struct bio_value *dt = bio_value_get(v, "dtype");
	const struct bio_value *sh = bio_value_get(v, "shape");
	const struct bio_value *da = bio_value_get(v, "data");
	const char *s;
	size_t len;
	enum bio_dtype dtype;
	if (bio_value_str(dt, &s, &len))
		return bio_error_set(err, BIO_EFORMAT, "%s: tensor 'dtype' is not a string (got %s)",
				     what, vtype_name(dt));
	if (bio_dtype_parse(&dtype, s, len)) {
		char buf[40];
		return bio_error_set(err, BIO_EFORMAT, "%s: unknown tensor dtype '%s'", what,
				     str_for_msg(buf, sizeof buf, s, len));
	}
	if (!sh || mo(sh)->type != MSGPACK_OBJECT_ARRAY)
		return bio_error_set(err, BIO_EFORMAT, "%s: tensor 'shape' is not an array (got %s)",
				     what, vtype_name(sh));
	size_t n_dims = mo(sh)->via.array.size;
	if (n_dims > BIO_TENSOR_MAX_DIMS)
		return bio_error_set(err, BIO_ELIMIT, "%s: tensor rank %zu exceeds %d", what, n_dims,
				     BIO_TENSOR_MAX_DIMS);
	int64_t shape[BIO_TENSOR_MAX_DIMS];
	for (size_t i = 0; i < n_dims; i++) {
		const struct bio_value *d = bio_value_at(sh, i);
		if (bio_value_int(d, &shape[i]))
			return bio_error_set(err, BIO_EFORMAT,
					     "%s: tensor shape[%zu] is not an integer (got %s)", what,
					     i, vtype_name(d));
		if (shape[i] < 0)
			return bio_error_set(err, BIO_EFORMAT,
					     "%s: tensor shape[%zu] is negative (%" PRId64 ")", what,
					     i, shape[i]);
	}
	size_t numel;
	int rc = bio_shape_numel(&numel, (int)n_dims, shape, err);
	if (rc)
		return bio_error_prefix(err, "%s", what);
	size_t item = bio_dtype_size(dtype);
	if (numel > SIZE_MAX / item)
		return bio_error_set(err, BIO_ELIMIT, "%s: tensor size overflows size_t", what);
	const void *data;
	size_t data_len;
	if (bio_value_bin(da, &data, &data_len))
		return bio_error_set(err, BIO_EFORMAT, "%s: tensor 'data' is not bin (got %s)", what,
				     vtype_name(da));
	if (data_len != numel * item)
		return bio_error_set(err, BIO_EFORMAT,
				     "%s: tensor data has %zu bytes, shape and dtype %s need %zu",
				     what, data_len, bio_dtype_name(dtype), numel * item);
	if (data_len && ((uintptr_t)data % item) != 0) /* the reader aligns tensors; a bug if not */
		return bio_error_set(err, BIO_EFORMAT, "%s: tensor data misaligned", what);
	out->dtype = dtype;
	out->n_dims = (int)n_dims;
	for (size_t i = 0; i < n_dims; i++)
		out->shape[i] = shape[i];
	out->data = (void *)(uintptr_t)data;
	out->data_bytes = data_len;
	out->owns_data = 0;
	return 0;
}

/* ---- reader ---- */

enum src_kind { SRC_FD, SRC_FILE, SRC_MEM };

struct stream_part {
	enum src_kind kind;
	char *name;        /* for messages */
	int fd;            /* SRC_FD: -1 while closed; opened when first read */
	int own_fd;        /* SRC_FD from a path (name): opened lazily, closed once read through */
	FILE *f;           /* SRC_FILE: borrowed */
	const uint8_t *mem; /* SRC_MEM: borrowed */
	size_t mem_len;
	int seekable;      /* pread works (regular file) or memory */
	uint64_t base;     /* file offset where reading started */
	uint64_t n_read;   /* bytes read from this part so far */
	int eof;
};

struct trailer_sum {
	char *key;
	int64_t sum;
};

enum rstate { ST_START, ST_HEADER_DONE, ST_AFTER_TRAILER, ST_END, ST_FAILED };

struct bio_stream_reader {
	struct bio_stream_limits lim;
	int depth_limit;
	struct stream_part *parts;
	size_t n_parts;
	size_t cur;             /* part being read */
	msgpack_unpacker unp;
	int unp_ok;
	msgpack_unpacked header; /* first header: lives as long as the reader */
	int have_header;
	char *kind;
	enum rstate state;
	uint64_t n_records;      /* records returned, all parts */
	uint64_t part_records;   /* records in the current part stream */
	uint64_t last_offset;    /* file offset of the last returned record */
	size_t last_part;
	int last_random;         /* the last record came from read_record_at */
	int fail_code;           /* sticky error after a failed read */
	struct trailer_sum *sums;
	size_t n_sums;
	uint64_t *stack;         /* scanner: items left per open container */
	uint8_t *scratch;        /* aligned copies of misaligned tensor data */
	size_t scratch_cap;
	size_t scratch_used;
	/* read_record_at */
	uint8_t *ra_buf;
	size_t ra_cap;
	size_t ra_hint;          /* bytes to read first: the last record's size (records are alike) */
	msgpack_zone *ra_zone;
	msgpack_object ra_obj;
	msgpack_object cur_obj;  /* the last sequential record (its parts live in the zone) */
};

const char *bio_stream_reader_source(const struct bio_stream_reader *r)
{
	size_t i = r->last_random ? r->last_part : r->cur;
	if (i >= r->n_parts)
		i = r->n_parts - 1;
	return r->parts[i].name;
}

uint64_t bio_stream_reader_record_index(const struct bio_stream_reader *r)
{
	return r->n_records ? r->n_records - 1 : 0;
}

int64_t bio_stream_reader_trailer_sum(const struct bio_stream_reader *r, const char *key)
{
	for (size_t i = 0; i < r->n_sums; i++)
		if (strcmp(r->sums[i].key, key) == 0)
			return r->sums[i].sum;
	return 0;
}

/* "record N" or "record at byte N" for messages on the last record. */
static const char *record_desc(char *buf, size_t cap, const struct bio_stream_reader *r)
{
	if (r->last_random)
		snprintf(buf, cap, "record at byte %" PRIu64, r->last_offset);
	else
		snprintf(buf, cap, "record %" PRIu64, bio_stream_reader_record_index(r));
	return buf;
}

static struct bio_stream_reader *reader_alloc(size_t n_parts, const struct bio_stream_limits *lim,
					      struct bio_error *err)
{
	struct bio_stream_reader *r = calloc(1, sizeof *r);
	if (!r)
		goto nomem;
	if (lim)
		r->lim = *lim;
	else
		bio_stream_limits_default(&r->lim);
	if (r->lim.max_depth < 1 || r->lim.max_depth > STREAM_MAX_LIMIT_DEPTH) {
		bio_error_set(err, BIO_EINVAL, "stream limit max_depth %d outside 1..%d",
			      r->lim.max_depth, STREAM_MAX_LIMIT_DEPTH);
		free(r);
		return NULL;
	}
	r->depth_limit = r->lim.max_depth < STREAM_MSGPACK_MAX_DEPTH ? r->lim.max_depth
								      : STREAM_MSGPACK_MAX_DEPTH;
	r->parts = calloc(n_parts ? n_parts : 1, sizeof *r->parts);
	r->stack = calloc((size_t)r->depth_limit + 1, sizeof *r->stack);
	if (!r->parts || !r->stack)
		goto nomem;
	for (size_t i = 0; i < n_parts; i++)
		r->parts[i].fd = -1;
	r->n_parts = n_parts;
	if (!msgpack_unpacker_init(&r->unp, STREAM_READ_CHUNK))
		goto nomem;
	r->unp_ok = 1;
	msgpack_unpacked_init(&r->header);
	return r;
nomem:
	bio_error_set(err, BIO_ENOMEM, "out of memory opening a stream reader");
	bio_stream_reader_free(r);
	return NULL;
}

static void part_seek_info(struct stream_part *p, int fd)
{
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(fd, 0, SEEK_CUR);
		if (pos >= 0) {
			p->seekable = 1;
			p->base = (uint64_t)pos;
		}
	}
}

struct bio_stream_reader *bio_stream_reader_open(const char *const *paths, size_t n_paths,
						 const struct bio_stream_limits *lim,
						 struct bio_error *err)
{
	if (n_paths == 0) {
		bio_error_set(err, BIO_EINVAL, "no stream input given");
		return NULL;
	}
	struct bio_stream_reader *r = reader_alloc(n_paths, lim, err);
	if (!r)
		return NULL;
	for (size_t i = 0; i < n_paths; i++) {
		struct stream_part *p = &r->parts[i];
		int is_stdin = strcmp(paths[i], "-") == 0;
		p->kind = SRC_FD;
		p->name = strdup(is_stdin ? "<stdin>" : paths[i]);
		if (!p->name) {
			bio_error_set(err, BIO_ENOMEM, "out of memory opening a stream reader");
			goto fail;
		}
		if (is_stdin) {
			p->fd = STDIN_FILENO;
			part_seek_info(p, p->fd);
			continue;
		}
		/* checked now, opened when reached: any number of shards can be joined */
		struct stat st;
		if (stat(paths[i], &st) != 0 || access(paths[i], R_OK) != 0) {
			bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s",
				      paths[i], strerror(errno));
			goto fail;
		}
		if (S_ISDIR(st.st_mode)) {
			bio_error_set(err, BIO_EIO, "%s: %s", paths[i], strerror(EISDIR));
			goto fail;
		}
		p->own_fd = 1;
		p->seekable = S_ISREG(st.st_mode);
	}
	return r;
fail:
	bio_stream_reader_free(r);
	return NULL;
}

/* A reader of one part: a copy of init (its name unset) named name (copied). */
static struct bio_stream_reader *reader_one(const char *name, const struct stream_part *init,
					    const struct bio_stream_limits *lim,
					    struct bio_error *err)
{
	struct bio_stream_reader *r = reader_alloc(1, lim, err);
	if (!r)
		return NULL;
	r->parts[0] = *init;
	if (!(r->parts[0].name = strdup(name))) {
		bio_error_set(err, BIO_ENOMEM, "out of memory opening a stream reader");
		bio_stream_reader_free(r);
		return NULL;
	}
	return r;
}

struct bio_stream_reader *bio_stream_reader_open_file(FILE *f, const char *name,
						      const struct bio_stream_limits *lim,
						      struct bio_error *err)
{
	struct stream_part p = {.kind = SRC_FILE, .fd = -1, .f = f};
	struct stat st;
	int fd = fileno(f);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = ftello(f);
		if (pos >= 0) {
			p.seekable = 1;
			p.base = (uint64_t)pos;
		}
	}
	return reader_one(name ? name : "<stream>", &p, lim, err);
}

struct bio_stream_reader *bio_stream_reader_open_mem(const void *buf, size_t len, const char *name,
						     const struct bio_stream_limits *lim,
						     struct bio_error *err)
{
	const struct stream_part p = {.kind = SRC_MEM, .fd = -1, .mem = buf, .mem_len = len,
				      .seekable = 1};
	return reader_one(name ? name : "<memory>", &p, lim, err);
}

void bio_stream_reader_free(struct bio_stream_reader *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_parts; i++) {
		if (r->parts[i].own_fd && r->parts[i].fd >= 0)
			close(r->parts[i].fd);
		free(r->parts[i].name);
	}
	free(r->parts);
	msgpack_unpacked_destroy(&r->header);
	if (r->unp_ok)
		msgpack_unpacker_destroy(&r->unp);
	for (size_t i = 0; i < r->n_sums; i++)
		free(r->sums[i].key);
	BIO_FREE(r->sums, r->kind, r->stack, r->scratch, r->ra_buf);
	if (r->ra_zone)
		msgpack_zone_free(r->ra_zone);
	free(r);
}

/* ---- the scanner: extent and limits of one encoded object, before msgpack-c parses it ---- */

enum scan_result { SCAN_DONE, SCAN_MORE, SCAN_ERROR };

struct scan {
	size_t len;  /* SCAN_DONE: bytes of the object */
	size_t need; /* SCAN_MORE: bytes needed at least */
	int code;    /* SCAN_ERROR */
	char msg[160];
};

static uint64_t be_read(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static enum scan_result scan_fail(struct scan *sc, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum scan_result scan_fail(struct scan *sc, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sc->msg, sizeof sc->msg, fmt, ap);
	va_end(ap);
	sc->code = code;
	return SCAN_ERROR;
}

/* Walks the object starting at p (avail bytes present). Never reads past avail. */
static enum scan_result scan_object(struct bio_stream_reader *r, const uint8_t *p, size_t avail,
				    struct scan *sc)
{
	const struct bio_stream_limits *lim = &r->lim;
	uint64_t *left = r->stack;
	int top = 0; /* open containers */
	size_t pos = 0;
	uint64_t pending_root = 1;
	for (;;) {
		/* pop finished containers */
		while (top > 0 && left[top] == 0)
			top--;
		if (top == 0) {
			if (pending_root == 0) {
				sc->len = pos;
				return SCAN_DONE;
			}
			pending_root--;
		} else {
			left[top]--;
		}
		if (pos >= avail) {
			sc->need = pos + 1;
			return SCAN_MORE;
		}
		uint8_t b = p[pos];
		size_t hdr = 1, body = 0; /* header bytes (incl. type), then payload */
		int lenbytes = 0;         /* length field size for str/bin/ext/array/map */
		enum { K_SCALAR, K_STR, K_BIN, K_EXT, K_ARRAY, K_MAP } k = K_SCALAR;
		uint64_t n = 0;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			hdr = 1;
		} else if (b >= 0x80 && b <= 0x8f) {
			k = K_MAP;
			n = b & 0x0f;
		} else if (b >= 0x90 && b <= 0x9f) {
			k = K_ARRAY;
			n = b & 0x0f;
		} else if (b >= 0xa0 && b <= 0xbf) {
			k = K_STR;
			n = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4: k = K_BIN; lenbytes = 1; break;
			case 0xc5: k = K_BIN; lenbytes = 2; break;
			case 0xc6: k = K_BIN; lenbytes = 4; break;
			case 0xc7: k = K_EXT; lenbytes = 1; break;
			case 0xc8: k = K_EXT; lenbytes = 2; break;
			case 0xc9: k = K_EXT; lenbytes = 4; break;
			case 0xca: hdr = 5; break;
			case 0xcb: hdr = 9; break;
			case 0xcc: case 0xd0: hdr = 2; break;
			case 0xcd: case 0xd1: hdr = 3; break;
			case 0xce: case 0xd2: hdr = 5; break;
			case 0xcf: case 0xd3: hdr = 9; break;
			case 0xd4: hdr = 3; break;
			case 0xd5: hdr = 4; break;
			case 0xd6: hdr = 6; break;
			case 0xd7: hdr = 10; break;
			case 0xd8: hdr = 18; break;
			case 0xd9: k = K_STR; lenbytes = 1; break;
			case 0xda: k = K_STR; lenbytes = 2; break;
			case 0xdb: k = K_STR; lenbytes = 4; break;
			case 0xdc: k = K_ARRAY; lenbytes = 2; break;
			case 0xdd: k = K_ARRAY; lenbytes = 4; break;
			case 0xde: k = K_MAP; lenbytes = 2; break;
			case 0xdf: k = K_MAP; lenbytes = 4; break;
			default:
				return scan_fail(sc, BIO_EFORMAT, "invalid msgpack type byte 0x%02x at byte %zu",
						 b, pos);
			}
		}
		if (lenbytes) {
			hdr = 1 + (size_t)lenbytes + (k == K_EXT ? 1 : 0);
			if (pos + 1 + (size_t)lenbytes > avail) {
				sc->need = pos + hdr;
				return SCAN_MORE;
			}
			n = be_read(p + pos + 1, lenbytes);
		}
		switch (k) {
		case K_STR:
		case K_BIN:
		case K_EXT: {
			/* a bin is a tensor's data; strings and exts share the string limit */
			size_t max = k == K_BIN ? lim->max_tensor_bytes : lim->max_str_bytes;
			if (n > max)
				return scan_fail(sc, BIO_ELIMIT,
						 "%s of %" PRIu64 " bytes exceeds the %s of %zu",
						 k == K_STR ? "string" : k == K_BIN ? "bin" : "ext", n,
						 k == K_BIN ? "tensor limit" : "limit", max);
			body = (size_t)n;
			break;
		}
		case K_ARRAY:
		case K_MAP:
			if (n > lim->max_items)
				return scan_fail(sc, BIO_ELIMIT,
						 "%s of %" PRIu64 " items exceeds the limit of %zu",
						 k == K_MAP ? "map" : "array", n, lim->max_items);
			if (top + 1 > r->depth_limit)
				return scan_fail(sc, BIO_ELIMIT, "nesting deeper than %d levels",
						 r->depth_limit);
			break;
		case K_SCALAR: break;
		}
		if (pos >= lim->max_object_bytes || hdr + body > lim->max_object_bytes - pos)
			return scan_fail(sc, BIO_ELIMIT, "object larger than the limit of %zu bytes",
					 lim->max_object_bytes);
		pos += hdr + body;
		if (k == K_ARRAY || k == K_MAP) {
			uint64_t items = k == K_MAP ? 2 * n : n;
			/* every item takes at least one byte: a count beyond the object limit is a lie */
			if (items > lim->max_object_bytes - pos)
				return scan_fail(sc, BIO_ELIMIT,
						 "%s of %" PRIu64 " items cannot fit the object limit of %zu bytes",
						 k == K_MAP ? "map" : "array", n, lim->max_object_bytes);
			top++;
			left[top] = items;
		}
		if (pos > avail) {
			sc->need = pos;
			return SCAN_MORE;
		}
	}
}

/* ---- reading objects ---- */

/* Opens a path part that is closed (not yet reached, or read through already). */
static int part_open(struct stream_part *p, struct bio_error *err)
{
	if (p->kind != SRC_FD || p->fd >= 0 || !p->own_fd)
		return 0;
	p->fd = open(p->name, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0)
		return bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s",
				     p->name, strerror(errno));
	p->seekable = 0;
	part_seek_info(p, p->fd);
	return 0;
}

static void part_close(struct stream_part *p)
{
	if (p->kind == SRC_FD && p->own_fd && p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
}

/* Reads more bytes of the current part into the unpacker; want = free space wanted.
 * Returns bytes read (0 at EOF) or < 0 with err set. */
static int64_t part_fill(struct bio_stream_reader *r, size_t want, struct bio_error *err)
{
	struct stream_part *p = &r->parts[r->cur];
	if (p->eof)
		return 0;
	int rc = part_open(p, err);
	if (rc)
		return rc;
	if (want < STREAM_READ_CHUNK)
		want = STREAM_READ_CHUNK;
	if (!msgpack_unpacker_reserve_buffer(&r->unp, want))
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory reading %zu bytes", p->name,
				     want);
	char *buf = msgpack_unpacker_buffer(&r->unp);
	size_t cap = msgpack_unpacker_buffer_capacity(&r->unp);
	size_t got = 0;
	switch (p->kind) {
	case SRC_MEM: {
		size_t left = p->mem_len - (size_t)p->n_read;
		got = left < cap ? left : cap;
		memcpy(buf, p->mem + p->n_read, got);
		break;
	}
	case SRC_FILE:
		got = fread(buf, 1, cap, p->f);
		if (got == 0 && ferror(p->f))
			return bio_error_set(err, BIO_EIO, "%s: %s", p->name, strerror(errno));
		break;
	case SRC_FD: {
		ssize_t n;
		do
			n = read(p->fd, buf, cap);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return bio_error_set(err, BIO_EIO, "%s: %s", p->name, strerror(errno));
		got = (size_t)n;
		break;
	}
	}
	if (got == 0)
		p->eof = 1;
	msgpack_unpacker_buffer_consumed(&r->unp, got);
	p->n_read += got;
	return (int64_t)got;
}

static size_t unp_pending(const struct bio_stream_reader *r)
{
	return r->unp.used - r->unp.off;
}

/* File offset (in the current part) of the next unparsed byte. */
static uint64_t unp_offset(const struct bio_stream_reader *r)
{
	const struct stream_part *p = &r->parts[r->cur];
	return p->base + p->n_read - unp_pending(r);
}

enum { OBJ_OK = 1, OBJ_EOF = 0 };

/* Makes sure one complete object is buffered and within the limits. Returns OBJ_OK with its
 * length in *len, OBJ_EOF when the part ends cleanly before an object, or < 0 (*partial set when
 * the part ended inside an object). */
static int buffer_object(struct bio_stream_reader *r, size_t *len, int *partial,
			 struct bio_error *err, const char *what)
{
	*partial = 0;
	for (;;) {
		struct scan sc;
		size_t avail = unp_pending(r);
		enum scan_result res = SCAN_MORE;
		if (avail > 0) {
			res = scan_object(r, (const uint8_t *)r->unp.buffer + r->unp.off, avail, &sc);
			if (res == SCAN_DONE) {
				*len = sc.len;
				return OBJ_OK;
			}
			if (res == SCAN_ERROR)
				return bio_error_set(err, sc.code, "%s: %s: %s",
						     r->parts[r->cur].name, what, sc.msg);
		} else {
			sc.need = 1;
		}
		int64_t got = part_fill(r, sc.need - avail, err);
		if (got < 0)
			return (int)got;
		if (got == 0) {
			if (avail == 0)
				return OBJ_EOF;
			*partial = 1;
			return BIO_ETRUNC;
		}
	}
}

/* Parses the buffered object (checked by buffer_object) with msgpack-c. keep: into r->header
 * (own zone, lives on); else into the unpacker's zone, valid until the next read. */
static int parse_object(struct bio_stream_reader *r, int keep, const msgpack_object **out,
			struct bio_error *err, const char *what)
{
	if (keep) {
		msgpack_unpack_return ret = msgpack_unpacker_next(&r->unp, &r->header);
		if (ret != MSGPACK_UNPACK_SUCCESS)
			return bio_error_set(err, ret == MSGPACK_UNPACK_NOMEM_ERROR ? BIO_ENOMEM : BIO_EFORMAT,
					     "%s: %s: msgpack-c could not parse the object (%d)",
					     r->parts[r->cur].name, what, (int)ret);
		*out = &r->header.data;
		return 0;
	}
	int ret = msgpack_unpacker_execute(&r->unp);
	if (ret <= 0) {
		msgpack_unpacker_reset(&r->unp);
		return bio_error_set(err, ret == MSGPACK_UNPACK_NOMEM_ERROR ? BIO_ENOMEM : BIO_EFORMAT,
				     "%s: %s: msgpack-c could not parse the object (%d)",
				     r->parts[r->cur].name, what, ret);
	}
	r->cur_obj = msgpack_unpacker_data(&r->unp); /* its items live in the unpacker's zone */
	msgpack_unpacker_reset(&r->unp);
	*out = &r->cur_obj;
	return 0;
}

/* Aligned scratch space of at least n bytes from the per-record scratch block. */
static void *scratch_take(struct bio_stream_reader *r, size_t n)
{
	size_t start = (r->scratch_used + 15) & ~(size_t)15;
	if (start + n > r->scratch_cap)
		return NULL;
	r->scratch_used = start + n;
	return r->scratch + start;
}

/* Moves data of tensor maps ({"dtype","data"}) that is misaligned for its dtype to aligned
 * memory: from the zone (keep) or the scratch block. Depth is bounded by the scanner. */
static int align_tensors(struct bio_stream_reader *r, msgpack_object *o, msgpack_zone *zone)
{
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (align_tensors(r, &o->via.array.ptr[i], zone))
				return BIO_ENOMEM;
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_MAP)
		return 0;
	msgpack_object *dtype = NULL, *data = NULL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		msgpack_object_kv *kv = &o->via.map.ptr[i];
		if (key_eq(&kv->key, "dtype", 5))
			dtype = &kv->val;
		else if (key_eq(&kv->key, "data", 4))
			data = &kv->val;
		else if (align_tensors(r, &kv->val, zone))
			return BIO_ENOMEM;
	}
	enum bio_dtype dt;
	if (!dtype || !data || dtype->type != MSGPACK_OBJECT_STR || data->type != MSGPACK_OBJECT_BIN ||
	    bio_dtype_parse(&dt, dtype->via.str.ptr, dtype->via.str.size))
		return 0;
	size_t item = bio_dtype_size(dt);
	if (data->via.bin.size == 0 || (uintptr_t)data->via.bin.ptr % item == 0)
		return 0;
	void *dst = zone ? msgpack_zone_malloc(zone, data->via.bin.size)
			 : scratch_take(r, data->via.bin.size);
	if (!dst || (uintptr_t)dst % item != 0)
		return BIO_ENOMEM;
	memcpy(dst, data->via.bin.ptr, data->via.bin.size);
	data->via.bin.ptr = dst;
	return 0;
}

/* Prepares scratch for one record of len encoded bytes, then aligns its tensors. */
static int align_record(struct bio_stream_reader *r, msgpack_object *o, size_t len,
			msgpack_zone *zone, struct bio_error *err)
{
	size_t need = len + 16 * 64; /* tensor payloads are part of len; slack for alignment */
	if (need > r->scratch_cap) {
		free(r->scratch);
		r->scratch_cap = 0;
		r->scratch = aligned_alloc(16, (need + 15) & ~(size_t)15);
		if (!r->scratch)
			return bio_error_set(err, BIO_ENOMEM, "%s: out of memory (%zu bytes)",
					     bio_stream_reader_source(r), need);
		r->scratch_cap = (need + 15) & ~(size_t)15;
	}
	r->scratch_used = 0;
	if (align_tensors(r, o, NULL)) {
		/* more tensors than the slack allows: fall back to the (record) zone */
		if (!zone || align_tensors(r, o, zone))
			return bio_error_set(err, BIO_ENOMEM, "%s: out of memory aligning tensors",
					     bio_stream_reader_source(r));
	}
	return 0;
}

/* Frees what the previous record held in the unpacker's zone (msgpack-c creates it lazily). */
static void reset_record_zone(struct bio_stream_reader *r)
{
	if (r->unp.z)
		msgpack_unpacker_reset_zone(&r->unp);
}

static int has_key(const msgpack_object *o, const char *key)
{
	return bio_value_get(bv(o), key) != NULL;
}

/* Checks a header object; sets *kind_out (borrowed) on success. */
static int check_header(struct bio_stream_reader *r, const msgpack_object *o, const char **kind,
			size_t *kind_len, struct bio_error *err)
{
	const char *src = r->parts[r->cur].name;
	if (o->type != MSGPACK_OBJECT_MAP)
		return bio_error_set(err, BIO_EFORMAT, "%s: header: not a map (got %s); not a bio-stream",
				     src, vtype_name(bv(o)));
	const struct bio_value *ver = bio_value_get(bv(o), "bio-stream");
	int64_t v;
	if (!ver)
		return bio_error_set(err, BIO_EFORMAT, "%s: header: no \"bio-stream\" key; not a bio-stream",
				     src);
	if (bio_value_int(ver, &v))
		return bio_error_set(err, BIO_EFORMAT, "%s: header: \"bio-stream\" is not an integer (got %s)",
				     src, vtype_name(ver));
	if (v != BIO_STREAM_VERSION)
		return bio_error_set(err, BIO_EUNSUPPORTED,
				     "%s: header: bio-stream version %" PRId64 " (this reader knows %d)",
				     src, v, BIO_STREAM_VERSION);
	const struct bio_value *k = bio_value_get(bv(o), "kind");
	if (bio_value_str(k, kind, kind_len))
		return bio_error_set(err, BIO_EFORMAT, "%s: header: \"kind\" is not a string (got %s)",
				     src, vtype_name(k));
	const struct bio_value *meta = bio_value_get(bv(o), "meta");
	if (!meta || bio_value_type(meta) != BIO_V_MAP)
		return bio_error_set(err, BIO_EFORMAT, "%s: header: \"meta\" is not a map (got %s)", src,
				     vtype_name(meta));
	return 0;
}

static int add_trailer_sums(struct bio_stream_reader *r, const msgpack_object *o)
{
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		int64_t v;
		if (kv->key.type != MSGPACK_OBJECT_STR || key_eq(&kv->key, "end", 3) ||
		    bio_value_int(bv(&kv->val), &v))
			continue;
		size_t j;
		for (j = 0; j < r->n_sums; j++)
			if (strlen(r->sums[j].key) == kv->key.via.str.size &&
			    (kv->key.via.str.size == 0 ||
			     memcmp(r->sums[j].key, kv->key.via.str.ptr, kv->key.via.str.size) == 0))
				break;
		if (j == r->n_sums) {
			struct trailer_sum *ns = realloc(r->sums, (r->n_sums + 1) * sizeof *ns);
			if (!ns)
				return BIO_ENOMEM;
			r->sums = ns;
			ns[j].key = kv->key.via.str.size ? strndup(kv->key.via.str.ptr, kv->key.via.str.size)
							 : strdup("");
			if (!ns[j].key)
				return BIO_ENOMEM;
			ns[j].sum = 0;
			r->n_sums++;
		}
		r->sums[j].sum += v;
	}
	return 0;
}

static int reader_fail(struct bio_stream_reader *r, int rc)
{
	r->state = ST_FAILED;
	r->fail_code = rc;
	return rc;
}

const char *bio_stream_reader_kind(const struct bio_stream_reader *r)
{
	return r ? r->kind : NULL;
}

int bio_stream_read_header(struct bio_stream_reader *r, const char *want_kind,
			   const struct bio_value **meta, struct bio_error *err)
{
	if (r->state == ST_FAILED)
		return bio_error_set(err, r->fail_code, "%s: stream already failed",
				     bio_stream_reader_source(r));
	if (r->have_header) {
		if (want_kind && strcmp(want_kind, r->kind) != 0)
			return bio_error_set(err, BIO_EFORMAT, "%s: stream kind is '%s', expected '%s'",
					     r->parts[0].name, r->kind, want_kind);
		if (meta)
			*meta = bio_value_get(bv(&r->header.data), "meta");
		return 0;
	}
	size_t len;
	int partial;
	int rc = buffer_object(r, &len, &partial, err, "header");
	if (rc == OBJ_EOF)
		return reader_fail(r, bio_error_set(err, BIO_ETRUNC, "%s: empty stream (no header)",
						    r->parts[r->cur].name));
	if (rc < 0) {
		if (partial)
			bio_error_set(err, BIO_ETRUNC, "%s: truncated stream (inside the header)",
				      r->parts[r->cur].name);
		return reader_fail(r, rc);
	}
	const msgpack_object *o = NULL;
	rc = parse_object(r, 1, &o, err, "header");
	if (rc)
		return reader_fail(r, rc);
	const char *kind;
	size_t kind_len;
	rc = check_header(r, o, &kind, &kind_len, err);
	if (rc)
		return reader_fail(r, rc);
	if (align_tensors(r, &r->header.data, r->header.zone))
		return reader_fail(r, bio_error_set(err, BIO_ENOMEM, "%s: out of memory",
						    r->parts[0].name));
	r->kind = strndup(kind, kind_len);
	if (!r->kind)
		return reader_fail(r, bio_error_set(err, BIO_ENOMEM, "out of memory"));
	r->have_header = 1;
	r->state = ST_HEADER_DONE;
	r->part_records = 0;
	if (want_kind && strcmp(want_kind, r->kind) != 0) {
		char buf[64];
		return reader_fail(r, bio_error_set(err, BIO_EFORMAT,
						    "%s: stream kind is '%s', expected '%s'",
						    r->parts[0].name,
						    str_for_msg(buf, sizeof buf, kind, kind_len),
						    want_kind));
	}
	if (meta)
		*meta = bio_value_get(bv(&r->header.data), "meta");
	return 0;
}

/* Handles a header seen where a following part may start (after a trailer). */
static int next_part_header(struct bio_stream_reader *r, const msgpack_object *o,
			    struct bio_error *err)
{
	const char *kind;
	size_t kind_len;
	int rc = check_header(r, o, &kind, &kind_len, err);
	if (rc)
		return rc;
	if (strlen(r->kind) != kind_len || memcmp(r->kind, kind, kind_len) != 0) {
		char buf[64];
		return bio_error_set(err, BIO_EFORMAT,
				     "%s: stream part of kind '%s' follows a stream of kind '%s'",
				     r->parts[r->cur].name, str_for_msg(buf, sizeof buf, kind, kind_len),
				     r->kind);
	}
	r->part_records = 0;
	r->state = ST_HEADER_DONE;
	return 0;
}

/* Handles a trailer: checks its count, adds its counters. */
static int take_trailer(struct bio_stream_reader *r, const msgpack_object *o, struct bio_error *err)
{
	const char *src = r->parts[r->cur].name;
	int64_t n;
	const struct bio_value *end = bio_value_get(bv(o), "end");
	if (bio_value_int(end, &n))
		return bio_error_set(err, BIO_EFORMAT, "%s: trailer: \"end\" is not an integer (got %s)",
				     src, vtype_name(end));
	if (n < 0 || (uint64_t)n != r->part_records)
		return bio_error_set(err, BIO_EFORMAT,
				     "%s: trailer says %" PRId64 " records, the stream had %" PRIu64,
				     src, n, r->part_records);
	if (add_trailer_sums(r, o))
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	r->state = ST_AFTER_TRAILER;
	return 0;
}

int bio_stream_read_record(struct bio_stream_reader *r, const struct bio_value **rec,
			   struct bio_error *err)
{
	*rec = NULL;
	if (r->state == ST_END)
		return 0;
	if (r->state == ST_FAILED)
		return bio_error_set(err, r->fail_code, "%s: stream already failed",
				     bio_stream_reader_source(r));
	if (!r->have_header) {
		int rc = bio_stream_read_header(r, NULL, NULL, err);
		if (rc)
			return rc;
	}
	r->last_random = 0;
	/* the previous record's zone memory (and buffers it pinned) is released here */
	reset_record_zone(r);
	for (;;) {
		char what[48];
		if (r->state == ST_START || r->state == ST_AFTER_TRAILER)
			snprintf(what, sizeof what, "header");
		else
			snprintf(what, sizeof what, "record %" PRIu64, r->n_records);
		uint64_t offset = unp_offset(r);
		size_t len;
		int partial;
		int rc = buffer_object(r, &len, &partial, err, what);
		if (rc == OBJ_EOF || (rc < 0 && partial)) {
			if (r->state == ST_AFTER_TRAILER && rc == OBJ_EOF) {
				if (r->cur + 1 == r->n_parts) {
					r->state = ST_END;
					return 0;
				}
				/* next file: a fresh stream begins with its header */
				part_close(&r->parts[r->cur]);
				r->cur++;
				r->state = ST_START;
				continue;
			}
			if (r->state == ST_START)
				return reader_fail(r, bio_error_set(err, BIO_ETRUNC,
								    "%s: %s stream (no header)",
								    r->parts[r->cur].name,
								    rc == OBJ_EOF ? "empty" : "truncated"));
			if (r->state == ST_AFTER_TRAILER)
				return reader_fail(r, bio_error_set(err, BIO_ETRUNC,
								    "%s: truncated stream (incomplete "
								    "header after a trailer)",
								    r->parts[r->cur].name));
			return reader_fail(r, bio_error_set(err, BIO_ETRUNC,
							    "%s: truncated stream (no trailer after %" PRIu64
							    " records)",
							    r->parts[r->cur].name, r->part_records));
		}
		if (rc < 0)
			return reader_fail(r, rc);
		const msgpack_object *o = NULL;
		rc = parse_object(r, 0, &o, err, what);
		if (rc)
			return reader_fail(r, rc);
		const char *src = r->parts[r->cur].name;
		if (o->type != MSGPACK_OBJECT_MAP)
			return reader_fail(r, bio_error_set(err, BIO_EFORMAT,
							    "%s: %s: not a map (got %s)", src, what,
							    vtype_name(bv(o))));
		if (r->state == ST_START || r->state == ST_AFTER_TRAILER) {
			/* only a header of the same kind may follow */
			rc = next_part_header(r, o, err);
			if (rc)
				return reader_fail(r, rc);
			reset_record_zone(r);
			continue;
		}
		if (has_key(o, "bio-stream"))
			return reader_fail(r, bio_error_set(err, BIO_ETRUNC,
							    "%s: truncated stream (no trailer after %" PRIu64
							    " records, then a new header)",
							    src, r->part_records));
		if (has_key(o, "end")) {
			rc = take_trailer(r, o, err);
			if (rc)
				return reader_fail(r, rc);
			reset_record_zone(r);
			continue;
		}
		for (uint32_t i = 0; i < o->via.map.size; i++)
			if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
				return reader_fail(r, bio_error_set(err, BIO_EFORMAT,
								    "%s: %s: key %u is not a string (got %s)",
								    src, what, (unsigned)i,
								    vtype_name(bv(&o->via.map.ptr[i].key))));
		rc = align_record(r, &r->cur_obj, len, r->unp.z, err);
		if (rc)
			return reader_fail(r, rc);
		r->part_records++;
		r->n_records++;
		r->last_offset = offset;
		r->last_part = r->cur;
		*rec = bv(&r->cur_obj);
		return 1;
	}
}

int bio_stream_reader_tell(const struct bio_stream_reader *r, size_t *part, uint64_t *offset)
{
	if (!r->n_records && !r->last_random)
		return BIO_EINVAL;
	if (!r->parts[r->last_part].seekable)
		return BIO_EUNSUPPORTED;
	*part = r->last_part;
	*offset = r->last_offset;
	return 0;
}

/* Reads len bytes at off of a seekable part into dst; returns bytes read (short at EOF). */
static int64_t part_pread(struct stream_part *p, void *dst, size_t len, uint64_t off,
			  struct bio_error *err)
{
	if (p->kind == SRC_MEM) {
		if (off >= p->mem_len)
			return 0;
		size_t n = p->mem_len - (size_t)off < len ? p->mem_len - (size_t)off : len;
		memcpy(dst, p->mem + off, n);
		return (int64_t)n;
	}
	int fd = p->kind == SRC_FILE ? fileno(p->f) : p->fd;
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, (char *)dst + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bio_error_set(err, BIO_EIO, "%s: %s", p->name, strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (int64_t)got;
}

int bio_stream_read_record_at(struct bio_stream_reader *r, size_t part, uint64_t offset,
			      const struct bio_value **rec, struct bio_error *err)
{
	*rec = NULL;
	if (part >= r->n_parts)
		return bio_error_set(err, BIO_EINVAL, "stream part %zu out of range (%zu parts)", part,
				     r->n_parts);
	struct stream_part *p = &r->parts[part];
	if (!p->seekable)
		return bio_error_set(err, BIO_EUNSUPPORTED,
				     "%s: random access needs a regular file, not a pipe", p->name);
	if (p->kind == SRC_FD && p->own_fd && p->fd < 0) {
		/* random access over many parts: hold at most STREAM_MAX_OPEN_PARTS open */
		size_t n_open = 0;
		for (size_t i = 0; i < r->n_parts; i++)
			n_open += r->parts[i].own_fd && r->parts[i].fd >= 0;
		if (n_open >= STREAM_MAX_OPEN_PARTS)
			for (size_t i = 0; i < r->n_parts; i++)
				if (i != r->cur)
					part_close(&r->parts[i]);
	}
	int orc = part_open(p, err);
	if (orc)
		return orc;
	if (!r->ra_zone) {
		r->ra_zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
		if (!r->ra_zone)
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	msgpack_zone_clear(r->ra_zone);
	r->last_random = 1;
	r->last_part = part;
	r->last_offset = offset;
	char what[64];
	snprintf(what, sizeof what, "record at byte %" PRIu64, offset);
	size_t have = 0, want = r->ra_hint > 4096 ? r->ra_hint : 4096;
	for (;;) {
		if (want > r->ra_cap) {
			size_t cap = r->ra_cap ? r->ra_cap : 4096;
			while (cap < want)
				cap *= 2;
			uint8_t *nb = realloc(r->ra_buf, cap);
			if (!nb)
				return bio_error_set(err, BIO_ENOMEM, "%s: %s: out of memory", p->name,
						     what);
			r->ra_buf = nb;
			r->ra_cap = cap;
		}
		int64_t got = part_pread(p, r->ra_buf + have, want - have, offset + have, err);
		if (got < 0)
			return (int)got;
		have += (size_t)got;
		struct scan sc;
		enum scan_result res = scan_object(r, r->ra_buf, have, &sc);
		if (res == SCAN_ERROR)
			return bio_error_set(err, sc.code, "%s: %s: %s", p->name, what, sc.msg);
		if (res == SCAN_DONE) {
			size_t off = 0;
			msgpack_unpack_return ret =
				msgpack_unpack((const char *)r->ra_buf, sc.len, &off, r->ra_zone, &r->ra_obj);
			if (ret != MSGPACK_UNPACK_SUCCESS)
				return bio_error_set(err, BIO_EFORMAT,
						     "%s: %s: msgpack-c could not parse the object",
						     p->name, what);
			if (r->ra_obj.type != MSGPACK_OBJECT_MAP || has_key(&r->ra_obj, "end") ||
			    has_key(&r->ra_obj, "bio-stream"))
				return bio_error_set(err, BIO_EFORMAT, "%s: %s: not a record", p->name,
						     what);
			int rc = align_record(r, &r->ra_obj, sc.len, r->ra_zone, err);
			if (rc)
				return rc;
			r->ra_hint = sc.len < ((size_t)16 << 20) ? sc.len + 64 : 0;
			*rec = bv(&r->ra_obj);
			return 1;
		}
		if (got == 0 && have < sc.need)
			return bio_error_set(err, BIO_ETRUNC, "%s: %s: file ends inside the record",
					     p->name, what);
		want = sc.need > have + 4096 ? sc.need : have + 4096;
	}
}

/* ---- typed record getters ---- */

int bio_record_error(struct bio_stream_reader *r, struct bio_error *err, int code,
		     const char *key, const char *fmt, ...)
{
	if (!err)
		return code;
	char cause[BIO_ERROR_MSG_MAX / 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cause, sizeof cause, fmt, ap);
	va_end(ap);
	char rd[64];
	return bio_error_set(err, code, "%s: %s: key '%s': %s", bio_stream_reader_source(r),
			     record_desc(rd, sizeof rd, r), key, cause);
}

int bio_record_in_split(struct bio_stream_reader *r, const struct bio_value *rec,
			const char *split, struct bio_error *err)
{
	if (!split)
		return 1;
	const char *s;
	size_t len;
	int rc = bio_record_get_str(&s, &len, r, rec, "split", err);
	if (rc < 0)
		return rc;
	return len == strlen(split) && memcmp(s, split, len) == 0;
}

int bio_record_get_int(int64_t *out, struct bio_stream_reader *r, const struct bio_value *rec,
		       const char *key, struct bio_error *err)
{
	const struct bio_value *v = bio_value_get(rec, key);
	if (!v)
		return bio_record_error(r, err, BIO_ENOTFOUND, key, "missing");
	if (bio_value_int(v, out))
		return bio_record_error(r, err, BIO_EFORMAT, key, "not an integer (got %s)", vtype_name(v));
	return 0;
}

int bio_record_get_str(const char **s, size_t *len, struct bio_stream_reader *r,
		       const struct bio_value *rec, const char *key, struct bio_error *err)
{
	const struct bio_value *v = bio_value_get(rec, key);
	if (!v)
		return bio_record_error(r, err, BIO_ENOTFOUND, key, "missing");
	if (bio_value_str(v, s, len))
		return bio_record_error(r, err, BIO_EFORMAT, key, "not a string (got %s)", vtype_name(v));
	return 0;
}

int bio_record_get_tensor(struct bio_tensor *out, struct bio_stream_reader *r,
			  const struct bio_value *rec, const char *key, int dtype, int n_dims,
			  struct bio_error *err)
{
	const struct bio_value *v = bio_value_get(rec, key);
	if (!v) {
		memset(out, 0, sizeof *out);
		return bio_record_error(r, err, BIO_ENOTFOUND, key, "missing");
	}
	struct bio_error e;
	int rc = bio_value_tensor(out, v, "tensor", &e);
	if (rc)
		return bio_record_error(r, err, rc, key, "%s", e.msg + strlen("tensor: "));
	if (dtype >= 0 && (int)out->dtype != dtype)
		return bio_record_error(r, err, BIO_EFORMAT, key, "dtype %s, expected %s",
				  bio_dtype_name(out->dtype), bio_dtype_name((enum bio_dtype)dtype));
	if (n_dims > 0 && out->n_dims != n_dims)
		return bio_record_error(r, err, BIO_EFORMAT, key, "rank %d, expected %d", out->n_dims,
				  n_dims);
	return 0;
}

/* ---- writer ---- */

struct bio_stream_writer {
	FILE *f;
	const char *name;       /* for messages (borrowed), or NULL */
	msgpack_packer pk;
	uint64_t n_records;
	int err_code;           /* sticky */
	int err_errno;
};

static int writer_cb(void *data, const char *buf, size_t len)
{
	struct bio_stream_writer *w = data;
	if (w->err_code)
		return -1;
	errno = 0;
	if (len && fwrite(buf, 1, len, w->f) != len) {
		w->err_errno = errno ? errno : EIO;
		w->err_code = w->err_errno == EPIPE ? BIO_EPIPE : BIO_EIO;
		return -1;
	}
	return 0;
}

struct bio_stream_writer *bio_stream_writer_new(FILE *f, struct bio_error *err)
{
	struct bio_stream_writer *w = calloc(1, sizeof *w);
	if (!w) {
		bio_error_set(err, BIO_ENOMEM, "out of memory creating a stream writer");
		return NULL;
	}
	w->f = f;
	msgpack_packer_init(&w->pk, w, writer_cb);
	return w;
}

void bio_stream_writer_set_name(struct bio_stream_writer *w, const char *name)
{
	w->name = name;
}

void bio_stream_writer_free(struct bio_stream_writer *w)
{
	free(w);
}

static int wr(struct bio_stream_writer *w, int ret)
{
	if (w->err_code)
		return w->err_code;
	if (ret) { /* cannot happen without a callback failure; be safe */
		w->err_code = BIO_EIO;
		w->err_errno = EIO;
	}
	return w->err_code;
}

int bio_pack_map(struct bio_stream_writer *w, size_t n)
{
	BIO_ASSERT(n <= UINT32_MAX);
	return wr(w, msgpack_pack_map(&w->pk, n));
}

int bio_pack_array(struct bio_stream_writer *w, size_t n)
{
	BIO_ASSERT(n <= UINT32_MAX);
	return wr(w, msgpack_pack_array(&w->pk, n));
}

int bio_pack_strn(struct bio_stream_writer *w, const char *s, size_t len)
{
	BIO_ASSERT(len <= UINT32_MAX);
	int ret = msgpack_pack_str(&w->pk, len);
	if (!ret)
		ret = msgpack_pack_str_body(&w->pk, s, len);
	return wr(w, ret);
}

int bio_pack_str(struct bio_stream_writer *w, const char *s)
{
	return bio_pack_strn(w, s, strlen(s));
}

int bio_pack_int(struct bio_stream_writer *w, int64_t v)
{
	return wr(w, msgpack_pack_int64(&w->pk, v));
}

int bio_pack_double(struct bio_stream_writer *w, double v)
{
	return wr(w, msgpack_pack_double(&w->pk, v));
}

int bio_pack_float(struct bio_stream_writer *w, float v)
{
	return wr(w, msgpack_pack_float(&w->pk, v));
}

int bio_pack_bool(struct bio_stream_writer *w, int v)
{
	return wr(w, v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk));
}

int bio_pack_nil(struct bio_stream_writer *w)
{
	return wr(w, msgpack_pack_nil(&w->pk));
}

int bio_pack_bin(struct bio_stream_writer *w, const void *data, size_t len)
{
	BIO_ASSERT(len <= UINT32_MAX);
	int ret = msgpack_pack_bin(&w->pk, len);
	if (!ret && len)
		ret = msgpack_pack_bin_body(&w->pk, data, len);
	return wr(w, ret);
}

int bio_pack_tensor(struct bio_stream_writer *w, const struct bio_tensor *t)
{
	BIO_ASSERT(t->n_dims >= 0 && t->n_dims <= BIO_TENSOR_MAX_DIMS);
	BIO_ASSERT(t->data_bytes == bio_tensor_numel(t) * bio_dtype_size(t->dtype));
	bio_pack_map(w, 3);
	bio_pack_kv_str(w, "dtype", bio_dtype_name(t->dtype));
	bio_pack_str(w, "shape");
	bio_pack_array(w, (size_t)t->n_dims);
	for (int i = 0; i < t->n_dims; i++)
		bio_pack_int(w, t->shape[i]);
	bio_pack_str(w, "data");
	return bio_pack_bin(w, t->data, t->data_bytes); /* straight from the tensor, no copy */
}

int bio_pack_value(struct bio_stream_writer *w, const struct bio_value *v)
{
	const msgpack_object *o = mo(v);
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return bio_pack_nil(w);
	case MSGPACK_OBJECT_BOOLEAN: return bio_pack_bool(w, o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return wr(w, msgpack_pack_uint64(&w->pk, o->via.u64));
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return bio_pack_int(w, o->via.i64);
	case MSGPACK_OBJECT_FLOAT32: return bio_pack_float(w, (float)o->via.f64);
	case MSGPACK_OBJECT_FLOAT64: return bio_pack_double(w, o->via.f64);
	case MSGPACK_OBJECT_STR: return bio_pack_strn(w, o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN: return bio_pack_bin(w, o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_ARRAY:
		bio_pack_array(w, o->via.array.size);
		for (uint32_t i = 0; i < o->via.array.size; i++)
			bio_pack_value(w, bv(&o->via.array.ptr[i]));
		return wr(w, 0);
	case MSGPACK_OBJECT_MAP:
		bio_pack_map(w, o->via.map.size);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			bio_pack_value(w, bv(&o->via.map.ptr[i].key));
			bio_pack_value(w, bv(&o->via.map.ptr[i].val));
		}
		return wr(w, 0);
	case MSGPACK_OBJECT_EXT: {
		int ret = msgpack_pack_ext(&w->pk, o->via.ext.size, o->via.ext.type);
		if (!ret && o->via.ext.size)
			ret = msgpack_pack_ext_body(&w->pk, o->via.ext.ptr, o->via.ext.size);
		return wr(w, ret);
	}
	}
	return wr(w, msgpack_pack_nil(&w->pk));
}

int bio_pack_kv_str(struct bio_stream_writer *w, const char *key, const char *val)
{
	bio_pack_str(w, key);
	return bio_pack_str(w, val);
}

int bio_pack_kv_int(struct bio_stream_writer *w, const char *key, int64_t val)
{
	bio_pack_str(w, key);
	return bio_pack_int(w, val);
}

int bio_pack_kv_double(struct bio_stream_writer *w, const char *key, double val)
{
	bio_pack_str(w, key);
	return bio_pack_double(w, val);
}

int bio_stream_begin_header(struct bio_stream_writer *w, const char *kind)
{
	bio_pack_map(w, 3);
	bio_pack_kv_int(w, "bio-stream", BIO_STREAM_VERSION);
	bio_pack_kv_str(w, "kind", kind);
	return bio_pack_str(w, "meta");
}

/* 1 when meta's entry i has a string key not in own[0..n_own) (then *key, *len are set). */
static int carried(const struct bio_value *meta, size_t i, const char *const *own, size_t n_own,
		   const char **key, size_t *len)
{
	bio_value_map_at(meta, i, key, len);
	if (!*key)
		return 0;
	for (size_t k = 0; k < n_own; k++)
		if (strlen(own[k]) == *len && memcmp(own[k], *key, *len) == 0)
			return 0;
	return 1;
}

int bio_stream_begin_header_carry(struct bio_stream_writer *w, const char *kind,
				  const struct bio_value *meta, const char *const *own,
				  size_t n_own, size_t n_new)
{
	const size_t n = meta ? bio_value_len(meta) : 0;
	const char *key;
	size_t len, n_keep = 0;
	for (size_t i = 0; i < n; i++)
		n_keep += (size_t)carried(meta, i, own, n_own, &key, &len);
	bio_stream_begin_header(w, kind);
	int rc = bio_pack_map(w, n_keep + n_new);
	for (size_t i = 0; i < n; i++)
		if (carried(meta, i, own, n_own, &key, &len)) {
			bio_pack_strn(w, key, len);
			rc = bio_pack_value(w, bio_value_map_at(meta, i, &key, &len));
		}
	return rc;
}

int bio_stream_begin_record(struct bio_stream_writer *w)
{
	w->n_records++;
	return w->err_code;
}

uint64_t bio_stream_writer_count(const struct bio_stream_writer *w)
{
	return w->n_records;
}

int bio_stream_finish(struct bio_stream_writer *w, size_t n_extra, const char *const *extra_keys,
		      const int64_t *extra_values, struct bio_error *err)
{
	bio_pack_map(w, 1 + n_extra);
	bio_pack_str(w, "end");
	BIO_ASSERT(w->n_records <= (uint64_t)INT64_MAX);
	bio_pack_int(w, (int64_t)w->n_records);
	for (size_t i = 0; i < n_extra; i++)
		bio_pack_kv_int(w, extra_keys[i], extra_values[i]);
	errno = 0;
	if (!w->err_code && (fflush(w->f) != 0 || ferror(w->f))) {
		w->err_errno = errno ? errno : EIO;
		w->err_code = w->err_errno == EPIPE ? BIO_EPIPE : BIO_EIO;
	}
	if (w->err_code)
		return bio_error_set(err, w->err_code, "%s: write error: %s",
				     w->name ? w->name : "writing stream", strerror(w->err_errno));
	return 0;
}
