/* bio-dump: shows what is inside a bio-stream, as JSON lines (one JSON object per msgpack object:
 * the header, each record, the trailer), like msgpack2json or pamfile. Tensors are summarised
 * (dtype, shape, min, max, mean, count of non-finite values; --full adds their values), bin values
 * by their length (--full: hex). Every record is checked as any reader checks it (framing,
 * trailer count, tensor maps against their shapes and the stream limits), so bio-dump is also a
 * validator: a bad stream gets one error line and exit 1. JSON comes from jansson. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bio/stream.h"
#include "bio/tensor.h"
#include "tool.h"

enum { OPT_HEADER = 0x2000, OPT_COUNT, OPT_RECORD, OPT_FULL };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-dump [OPTIONS] [FILE...]\n"
		"Show a bio-stream (FILEs read as one stream; standard input when none, or -) as JSON\n"
		"lines: the header, one line per record, then {\"end\": N}. Tensors are summarised as\n"
		"{\"dtype\", \"shape\", \"min\", \"max\", \"mean\", \"nonfinite\"}; non-finite numbers are\n"
		"null. The whole stream is checked as every reader checks it.\n"
		"\n"
		"      --header         print the header only\n"
		"      --count          print the number of records only (after checking them all)\n"
		"      --record N       print record N only (0-based)\n"
		"      --full           tensors with their values (\"data\"), bin values as hex\n"
		BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: stream.max_tensor_bytes, stream.max_str_bytes. See bio-dump(1).\n");
}

struct dump {
	struct bio_tool *t;
	struct bio_stream_reader *r;
	int full;
};

static _Noreturn void die_oom(struct dump *d)
{
	bio_tool_die(d->t, "out of memory");
}

/* A JSON string of len bytes; invalid UTF-8 bytes become U+FFFD (jansson takes valid UTF-8 only). */
static json_t *jstr(struct dump *d, const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	if (j)
		return j;
	char *buf = malloc(len * 3 + 1);
	if (!buf)
		die_oom(d);
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
	if (!j)
		die_oom(d);
	return j;
}

static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jhex(struct dump *d, const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *buf = malloc(len * 2 + 1);
	if (!buf)
		die_oom(d);
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

static json_t *jtensor(struct dump *d, const struct bio_tensor *t)
{
	json_t *o = json_object(), *shape = json_array();
	if (!o || !shape)
		die_oom(d);
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

static json_t *jvalue(struct dump *d, const struct bio_value *v, const char *where)
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
		json_object_set_new(o, "bin", json_integer((json_int_t)len));
		if (d->full)
			json_object_set_new(o, "hex", jhex(d, bin, len));
		return o;
	}
	case BIO_V_ARRAY: {
		json_t *a = json_array();
		if (!a)
			die_oom(d);
		for (size_t k = 0; k < bio_value_len(v); k++)
			json_array_append_new(a, jvalue(d, bio_value_at(v, k), where));
		return a;
	}
	case BIO_V_MAP: {
		if (bio_value_get(v, "dtype")) {
			/* a tensor map: checked as every reader checks one */
			struct bio_tensor t;
			struct bio_error err = {0};
			if (bio_value_tensor(&t, v, where, &err) != 0)
				bio_tool_die(d->t, "%s: %s", bio_stream_reader_source(d->r), err.msg);
			return jtensor(d, &t);
		}
		json_t *o = json_object();
		if (!o)
			die_oom(d);
		for (size_t k = 0; k < bio_value_len(v); k++) {
			const char *key;
			size_t klen;
			const struct bio_value *e = bio_value_map_at(v, k, &key, &klen);
			char kbuf[256];
			snprintf(kbuf, sizeof kbuf, "%.*s", key ? (int)(klen < 255 ? klen : 255) : 0,
				 key ? key : "");
			if (!key || memchr(key, 0, klen))
				bio_tool_die(d->t, "%s: %s: a map key is not a plain string",
					     bio_stream_reader_source(d->r), where);
			json_t *je = jvalue(d, e, where);
			json_t *jk = jstr(d, key, klen); /* keys must be valid UTF-8 as well */
			json_object_set_new(o, json_string_value(jk), je);
			json_decref(jk);
		}
		return o;
	}
	default: return json_null();
	}
}

static void emit(struct dump *d, FILE *out, json_t *j)
{
	if (json_dumpf(j, out, JSON_COMPACT | JSON_REAL_PRECISION(9) | JSON_PRESERVE_ORDER) != 0 ||
	    fputc('\n', out) == EOF)
		bio_tool_die(d->t, "%s: write error", d->t->output ? d->t->output : "<stdout>");
	json_decref(j);
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"header", no_argument, 0, OPT_HEADER},
		{"count", no_argument, 0, OPT_COUNT},
		{"record", required_argument, 0, OPT_RECORD},
		{"full", no_argument, 0, OPT_FULL},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	int opt, header_only = 0, count_only = 0;
	long long only = -1;
	struct dump d = {.t = &t};

	bio_tool_init(&t, "bio-dump", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS, long_opts, usage)) != -1)
		switch (opt) {
		case OPT_HEADER: header_only = 1; break;
		case OPT_COUNT: count_only = 1; break;
		case OPT_RECORD: only = bio_tool_parse_count(&t, "--record", optarg, 0, INT64_MAX); break;
		case OPT_FULL: d.full = 1; break;
		}
	if (header_only + count_only + (only >= 0) > 1)
		bio_tool_usage_error(&t, "--header, --count and --record exclude each other");
	bio_tool_load_config(&t);
	d.r = bio_tool_open_inputs(&t, argc, argv, optind);
	const struct bio_value *meta, *rec;
	if (bio_stream_read_header(d.r, NULL, &meta, &err) != 0)
		bio_tool_die_err(&t, &err);
	FILE *out = bio_tool_output_open(&t);
	if (!count_only && only < 0) {
		json_t *h = json_object();
		json_object_set_new(h, "bio-stream", json_integer(1));
		json_object_set_new(h, "kind", json_string(bio_stream_reader_kind(d.r)));
		json_object_set_new(h, "meta", jvalue(&d, meta, "header"));
		emit(&d, out, h);
	}
	uint64_t n = 0;
	int rc = 0;
	while (!header_only && (rc = bio_stream_read_record(d.r, &rec, &err)) == 1) {
		char where[64];
		snprintf(where, sizeof where, "record %" PRIu64, n);
		json_t *j = jvalue(&d, rec, where); /* every record is checked, printed or not */
		if (count_only || (only >= 0 && (uint64_t)only != n))
			json_decref(j);
		else
			emit(&d, out, j);
		n++;
	}
	if (rc < 0)
		bio_tool_die_err(&t, &err);
	if (only >= 0 && (uint64_t)only >= n)
		bio_tool_die(&t, "%s: --record %lld: the stream has %" PRIu64 " records",
			     bio_stream_reader_source(d.r), only, n);
	if (count_only) {
		if (fprintf(out, "%" PRIu64 "\n", n) < 0)
			bio_tool_die(&t, "write error");
	} else if (!header_only && only < 0) {
		json_t *e = json_object();
		json_object_set_new(e, "end", json_integer((json_int_t)n));
		int64_t failed = bio_stream_reader_trailer_sum(d.r, "failed");
		if (failed)
			json_object_set_new(e, "failed", json_integer(failed));
		emit(&d, out, e);
	}
	bio_stream_reader_free(d.r);
	bio_config_free(t.cfg);
	t.cfg = NULL;
	bio_tool_output_commit(&t);
	return BIO_EXIT_OK;
}
