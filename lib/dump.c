/* bio-stream objects as JSON lines (see dump.h). */
#include "bio/dump.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bio/tensor.h"

/* One conversion: the dump and the first error met (the conversion stops there). */
struct conv {
	const struct bio_dump *dump;
	struct bio_stream_reader *r;
	int full, failed;
	struct bio_error *err;
};

/* Records the first error; NULL for the caller to return. */
static json_t *fail(struct conv *d, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static json_t *fail(struct conv *d, int code, const char *fmt, ...)
{
	if (d->failed)
		return NULL;
	d->failed = code ? code : BIO_EFORMAT;
	if (d->err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->err->msg, sizeof d->err->msg, fmt, ap);
		va_end(ap);
		d->err->code = d->failed;
	}
	return NULL;
}

static json_t *oom(struct conv *d)
{
	return fail(d, BIO_ENOMEM, "out of memory");
}

/* j, or NULL (j released) when the conversion failed inside it. */
static json_t *done(struct conv *d, json_t *j)
{
	if (!d->failed)
		return j;
	json_decref(j);
	return NULL;
}

/* A JSON string of len bytes; invalid UTF-8 bytes become U+FFFD (jansson takes valid UTF-8 only). */
static json_t *jstr(struct conv *d, const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	if (j)
		return j;
	char *buf = malloc(len * 3 + 1);
	if (!buf)
		return oom(d);
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		/* the longest valid UTF-8 prefix of length 1..4 starting here */
		size_t k = 0;
		for (size_t m = 1; m <= 4 && i + m <= len; m++) {
			json_t *probe = json_stringn(s + i, m);
			if (probe) {
				json_decref(probe);
				k = m;
				break;
			}
		}
		if (k) {
			memcpy(buf + n, s + i, k);
			n += k;
			i += k;
		} else {
			memcpy(buf + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		}
	}
	j = json_stringn(buf, n);
	free(buf);
	return j ? j : oom(d);
}

static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jhex(struct conv *d, const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *buf = malloc(len * 2 + 1);
	if (!buf)
		return oom(d);
	for (size_t i = 0; i < len; i++) {
		buf[2 * i] = digits[((const unsigned char *)data)[i] >> 4];
		buf[2 * i + 1] = digits[((const unsigned char *)data)[i] & 15];
	}
	json_t *j = json_stringn(buf, len * 2);
	free(buf);
	return j;
}

static double elem(const struct bio_tensor *t, size_t i)
{
	const unsigned char *p = (const unsigned char *)t->data + i * bio_dtype_size(t->dtype);
	switch (t->dtype) {
	case BIO_DTYPE_U8: return *p;
	case BIO_DTYPE_I32: { int32_t v; memcpy(&v, p, 4); return v; }
	case BIO_DTYPE_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
	case BIO_DTYPE_F16: { uint16_t v; memcpy(&v, p, 2); return bio_f16_to_f32(v); }
	case BIO_DTYPE_F32: { float v; memcpy(&v, p, 4); return v; }
	case BIO_DTYPE_F64: { double v; memcpy(&v, p, 8); return v; }
	}
	return 0;
}

static json_t *jtensor(struct conv *d, const struct bio_tensor *t)
{
	json_t *o = json_object(), *shape = json_array();
	if (!o || !shape) {
		json_decref(o);
		json_decref(shape);
		return oom(d);
	}
	for (int k = 0; k < t->n_dims; k++)
		json_array_append_new(shape, json_integer(t->shape[k]));
	json_object_set_new(o, "dtype", json_string(bio_dtype_name(t->dtype)));
	json_object_set_new(o, "shape", shape);
	size_t n = bio_tensor_numel(t), nonfinite = 0, finite = 0;
	double lo = INFINITY, hi = -INFINITY, sum = 0;
	int integral = t->dtype == BIO_DTYPE_U8 || t->dtype == BIO_DTYPE_I32 ||
		       t->dtype == BIO_DTYPE_I64;
	json_t *data = d->full ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		double v = elem(t, i);
		if (data) {
			if (integral && t->dtype == BIO_DTYPE_I64) {
				int64_t iv;
				memcpy(&iv, (const char *)t->data + i * 8, 8);
				json_array_append_new(data, json_integer(iv));
			} else {
				json_array_append_new(data, integral ? json_integer((json_int_t)v)
								     : jnum(v));
			}
		}
		if (!isfinite(v)) {
			nonfinite++;
			continue;
		}
		finite++;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
		sum += v;
	}
	json_object_set_new(o, "min", finite ? jnum(lo) : json_null());
	json_object_set_new(o, "max", finite ? jnum(hi) : json_null());
	json_object_set_new(o, "mean", finite ? jnum(sum / (double)finite) : json_null());
	json_object_set_new(o, "nonfinite", json_integer((json_int_t)nonfinite));
	if (data)
		json_object_set_new(o, "data", data);
	return o;
}

static json_t *jvalue(struct conv *d, const struct bio_value *v, const char *where)
{
	int64_t i;
	double x;
	int b;
	const char *s;
	const void *bin;
	size_t len;
	switch (bio_value_type(v)) {
	case BIO_V_NIL: return json_null();
	case BIO_V_BOOL: bio_value_bool(v, &b); return json_boolean(b);
	case BIO_V_INT: bio_value_int(v, &i); return json_integer(i);
	case BIO_V_FLOAT: bio_value_double(v, &x); return jnum(x);
	case BIO_V_STR: bio_value_str(v, &s, &len); return jstr(d, s, len);
	case BIO_V_BIN: {
		bio_value_bin(v, &bin, &len);
		json_t *o = json_object();
		if (!o)
			return oom(d);
		json_object_set_new(o, "bin", json_integer((json_int_t)len));
		if (d->full)
			json_object_set_new(o, "hex", jhex(d, bin, len));
		return o;
	}
	case BIO_V_ARRAY: {
		json_t *a = json_array();
		if (!a)
			return oom(d);
		for (size_t k = 0; k < bio_value_len(v) && !d->failed; k++)
			json_array_append_new(a, jvalue(d, bio_value_at(v, k), where));
		return done(d, a);
	}
	case BIO_V_MAP: {
		if (bio_value_get(v, "dtype")) {
			/* a tensor map: checked as every reader checks one */
			struct bio_tensor t;
			struct bio_error e = {0};
			if (bio_value_tensor(&t, v, where, &e) != 0)
				return fail(d, e.code, "%s: %s", bio_stream_reader_source(d->r), e.msg);
			return jtensor(d, &t);
		}
		json_t *o = json_object();
		if (!o)
			return oom(d);
		for (size_t k = 0; k < bio_value_len(v) && !d->failed; k++) {
			const char *key;
			size_t klen;
			const struct bio_value *e = bio_value_map_at(v, k, &key, &klen);
			if (!key || memchr(key, 0, klen)) {
				json_decref(o);
				return fail(d, BIO_EFORMAT, "%s: %s: a map key is not a plain string",
					    bio_stream_reader_source(d->r), where);
			}
			json_t *je = jvalue(d, e, where);
			json_t *jk = jstr(d, key, klen); /* keys must be valid UTF-8 as well */
			if (jk)
				json_object_set_new(o, json_string_value(jk), je);
			else
				json_decref(je);
			json_decref(jk);
		}
		return done(d, o);
	}
	default: return json_null();
	}
}

/* Writes j (taken) as one line. */
static int emit(struct conv *c, json_t *j)
{
	int bad = json_dumpf(j, c->dump->out, JSON_COMPACT | JSON_REAL_PRECISION(9) |
					       JSON_PRESERVE_ORDER) != 0 ||
		  fputc('\n', c->dump->out) == EOF;
	json_decref(j);
	return bad ? bio_error_set(c->err, BIO_EIO, "%s: write error", c->dump->out_name) : 0;
}

int bio_dump_header(const struct bio_dump *d, const struct bio_value *meta,
		    struct bio_error *err)
{
	struct conv c = {d, d->r, d->full, 0, err};
	json_t *h = json_object();
	if (!h)
		return oom(&c), c.failed;
	json_object_set_new(h, "bio-stream", json_integer(1));
	json_object_set_new(h, "kind", json_string(bio_stream_reader_kind(d->r)));
	json_object_set_new(h, "meta", jvalue(&c, meta, "header"));
	if (!(h = done(&c, h)))
		return c.failed;
	return emit(&c, h);
}

int bio_dump_record(const struct bio_dump *d, const struct bio_value *rec, uint64_t n,
		    int write, struct bio_error *err)
{
	struct conv c = {d, d->r, d->full, 0, err};
	char where[64];
	snprintf(where, sizeof where, "record %" PRIu64, n);
	json_t *j = jvalue(&c, rec, where);
	if (c.failed)
		return c.failed;
	if (!write) {
		json_decref(j);
		return 0;
	}
	return emit(&c, j);
}

int bio_dump_trailer(const struct bio_dump *d, uint64_t n_records, struct bio_error *err)
{
	struct conv c = {d, d->r, d->full, 0, err};
	json_t *e = json_object();
	if (!e)
		return oom(&c), c.failed;
	json_object_set_new(e, "end", json_integer((json_int_t)n_records));
	int64_t failed = bio_stream_reader_trailer_sum(d->r, "failed");
	if (failed)
		json_object_set_new(e, "failed", json_integer(failed));
	return emit(&c, e);
}
