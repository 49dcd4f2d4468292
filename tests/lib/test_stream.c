/* Unit tests of the bio-stream reader and writer: value and tensor round trips, multi-part and
 * concatenated streams, kind and count mismatches, truncation at every byte, limits on hostile
 * lengths and nesting, random access by offset, and sticky writer errors. */
#include "bio/stream.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

/* A writer into a growing memory buffer. */
struct membuf {
	char *data;
	size_t len;
	FILE *f;
	struct bio_stream_writer *w;
};

static void mb_open(struct membuf *m)
{
	memset(m, 0, sizeof *m);
	m->f = open_memstream(&m->data, &m->len);
	BIO_ASSERT(m->f);
	m->w = bio_stream_writer_new(m->f, NULL);
	BIO_ASSERT(m->w);
}

static void mb_close(struct membuf *m)
{
	bio_stream_writer_free(m->w);
	fclose(m->f);
}

/* Closes m and reads back its bytes: a reader named name (NULL on error, with err set). */
static struct bio_stream_reader *mb_reader(struct membuf *m, const char *name,
					   const struct bio_stream_limits *lim, struct bio_error *err)
{
	mb_close(m);
	return bio_stream_reader_open_mem(m->data, m->len, name, lim, err);
}

static void write_header(struct bio_stream_writer *w, const char *kind)
{
	bio_stream_begin_header(w, kind);
	bio_pack_map(w, 1);
	bio_pack_kv_str(w, "producer", "test_stream");
}

/* A stream of n records {"id": "r<i>", "label": i, "x": f32 tensor [i%3+1]} of kind kind. */
static void write_simple(struct membuf *m, const char *kind, int n, int64_t failed)
{
	write_header(m->w, kind);
	for (int i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof id, "r%d", i);
		bio_stream_begin_record(m->w);
		bio_pack_map(m->w, 3);
		bio_pack_kv_str(m->w, "id", id);
		bio_pack_kv_int(m->w, "label", i);
		float x[3] = {(float)i, (float)i + 0.5f, -1.0f};
		int64_t shape[1] = {i % 3 + 1};
		struct bio_tensor t;
		bio_tensor_view(&t, BIO_DTYPE_F32, 1, shape, x);
		bio_pack_str(m->w, "x");
		bio_pack_tensor(m->w, &t);
	}
	const char *keys[1] = {"failed"};
	int64_t vals[1] = {failed};
	CHECK_EQ(bio_stream_finish(m->w, failed ? 1 : 0, keys, vals, NULL), 0);
}

/* m opened, holding write_simple's stream, closed: its bytes in m->data. */
static void simple_stream(struct membuf *m, const char *kind, int n, int64_t failed)
{
	mb_open(m);
	write_simple(m, kind, n, failed);
	mb_close(m);
}

/* Reads everything; returns the final status (0 clean end, < 0 error); *n_out records. */
static int read_all(struct bio_stream_reader *r, int64_t *n_out, struct bio_error *err)
{
	const struct bio_value *rec;
	int rc;
	int64_t n = 0;
	while ((rc = bio_stream_read_record(r, &rec, err)) == 1)
		n++;
	*n_out = n;
	return rc;
}

TEST(value_round_trip)
{
	struct membuf m;
	mb_open(&m);
	bio_stream_begin_header(m.w, "manifest");
	bio_pack_map(m.w, 11);
	bio_pack_str(m.w, "nil");
	bio_pack_nil(m.w);
	bio_pack_str(m.w, "t");
	bio_pack_bool(m.w, 1);
	bio_pack_str(m.w, "f");
	bio_pack_bool(m.w, 0);
	bio_pack_kv_int(m.w, "neg", -1234567890123LL);
	bio_pack_kv_int(m.w, "big", INT64_MAX);
	bio_pack_kv_double(m.w, "pi", 3.14159265358979);
	bio_pack_str(m.w, "half");
	bio_pack_float(m.w, 0.5f);
	bio_pack_str(m.w, "s");
	bio_pack_strn(m.w, "a\0b", 3);
	bio_pack_str(m.w, "bin");
	bio_pack_bin(m.w, "\x01\x02\x03", 3);
	bio_pack_str(m.w, "arr");
	bio_pack_array(m.w, 2);
	bio_pack_int(m.w, 7);
	bio_pack_str(m.w, "seven");
	bio_pack_str(m.w, "map");
	bio_pack_map(m.w, 1);
	bio_pack_kv_int(m.w, "k", 1);
	bio_stream_begin_record(m.w);
	bio_pack_map(m.w, 1);
	bio_pack_kv_str(m.w, "id", "only");
	CHECK_EQ(bio_stream_writer_count(m.w), 1);
	CHECK_EQ(bio_stream_finish(m.w, 0, NULL, NULL, NULL), 0);
	mb_close(&m);

	struct bio_error err = {0};
	struct bio_stream_reader *r = bio_stream_reader_open_mem(m.data, m.len, "mem", NULL, &err);
	const struct bio_value *meta;
	CHECK_EQ(bio_stream_read_header(r, "manifest", &meta, &err), 0);
	CHECK_EQ(bio_value_type(meta), BIO_V_MAP);
	CHECK_EQ(bio_value_len(meta), 11);
	CHECK_EQ(bio_value_type(bio_value_get(meta, "nil")), BIO_V_NIL);
	int b = -1;
	CHECK_EQ(bio_value_bool(bio_value_get(meta, "t"), &b), 0);
	CHECK_EQ(b, 1);
	CHECK_EQ(bio_value_bool(bio_value_get(meta, "f"), &b), 0);
	CHECK_EQ(b, 0);
	int64_t i;
	CHECK_EQ(bio_value_int(bio_value_get(meta, "neg"), &i), 0);
	CHECK_EQ(i, -1234567890123LL);
	CHECK_EQ(bio_value_int(bio_value_get(meta, "big"), &i), 0);
	CHECK(i == INT64_MAX);
	double d;
	CHECK_EQ(bio_value_double(bio_value_get(meta, "pi"), &d), 0);
	CHECK(d == 3.14159265358979);
	CHECK_EQ(bio_value_double(bio_value_get(meta, "half"), &d), 0);
	CHECK(d == 0.5);
	CHECK_EQ(bio_value_double(bio_value_get(meta, "neg"), &d), 0); /* ints as doubles */
	CHECK(d == -1234567890123.0);
	CHECK_EQ(bio_value_int(bio_value_get(meta, "pi"), &i), BIO_EFORMAT);
	const char *s;
	size_t len;
	CHECK_EQ(bio_value_str(bio_value_get(meta, "s"), &s, &len), 0);
	CHECK_EQ(len, 3);
	CHECK(memcmp(s, "a\0b", 3) == 0);
	const void *bin;
	CHECK_EQ(bio_value_bin(bio_value_get(meta, "bin"), &bin, &len), 0);
	CHECK_EQ(len, 3);
	CHECK(memcmp(bin, "\x01\x02\x03", 3) == 0);
	const struct bio_value *arr = bio_value_get(meta, "arr");
	CHECK_EQ(bio_value_type(arr), BIO_V_ARRAY);
	CHECK_EQ(bio_value_len(arr), 2);
	CHECK_EQ(bio_value_int(bio_value_at(arr, 0), &i), 0);
	CHECK_EQ(i, 7);
	CHECK(bio_value_str_eq(bio_value_at(arr, 1), "seven"));
	CHECK(!bio_value_str_eq(bio_value_at(arr, 1), "seve"));
	CHECK(bio_value_at(arr, 2) == NULL);
	char *dup = bio_value_strdup(bio_value_at(arr, 1));
	CHECK_STR(dup, "seven");
	free(dup);
	CHECK(bio_value_strdup(bio_value_at(arr, 0)) == NULL);
	const char *key;
	size_t klen;
	const struct bio_value *v = bio_value_map_at(bio_value_get(meta, "map"), 0, &key, &klen);
	CHECK(key && klen == 1 && key[0] == 'k');
	CHECK_EQ(bio_value_int(v, &i), 0);
	CHECK(bio_value_get(meta, "absent") == NULL);
	CHECK(bio_value_get(arr, "k") == NULL);

	const struct bio_value *rec;
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
	CHECK(bio_value_str_eq(bio_value_get(rec, "id"), "only"));
	CHECK_EQ(bio_stream_reader_record_index(r), 0);
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 0);
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 0); /* stays at the end */

	/* copying a value forward reproduces its encoding */
	struct membuf m2;
	mb_open(&m2);
	bio_stream_begin_header(m2.w, "manifest");
	CHECK_EQ(bio_pack_value(m2.w, meta), 0);
	bio_stream_begin_record(m2.w);
	bio_pack_map(m2.w, 1);
	bio_pack_kv_str(m2.w, "id", "only");
	bio_stream_finish(m2.w, 0, NULL, NULL, NULL);
	mb_close(&m2);
	CHECK_EQ(m2.len, m.len);
	CHECK(m2.len == m.len && memcmp(m2.data, m.data, m.len) == 0);
	free(m2.data);
	bio_stream_reader_free(r);
	free(m.data);
}

TEST(tensor_every_dtype)
{
	struct membuf m;
	mb_open(&m);
	write_header(m.w, "checkpoint");
	for (int dt = BIO_DTYPE_U8; dt <= BIO_DTYPE_F64; dt++) {
		for (int pad = 0; pad < 8; pad++) { /* shifts the data to every alignment */
			int64_t shape[3] = {2, 3, pad + 1};
			struct bio_tensor t;
			CHECK_EQ(bio_tensor_init(&t, (enum bio_dtype)dt, 3, shape, NULL), 0);
			for (size_t k = 0; k < t.data_bytes; k++)
				((uint8_t *)t.data)[k] = (uint8_t)(k * 7 + (size_t)dt);
			char name[16];
			snprintf(name, sizeof name, "%.*s", pad + 1, "abcdefgh");
			bio_stream_begin_record(m.w);
			bio_pack_map(m.w, 2);
			bio_pack_kv_str(m.w, "name", name);
			bio_pack_str(m.w, "tensor");
			bio_pack_tensor(m.w, &t);
			bio_tensor_destroy(&t);
		}
	}
	bio_stream_finish(m.w, 0, NULL, NULL, NULL);
	mb_close(&m);

	struct bio_error err = {0};
	struct bio_stream_reader *r = bio_stream_reader_open_mem(m.data, m.len, "mem", NULL, &err);
	CHECK_EQ(bio_stream_read_header(r, "checkpoint", NULL, &err), 0);
	for (int dt = BIO_DTYPE_U8; dt <= BIO_DTYPE_F64; dt++) {
		for (int pad = 0; pad < 8; pad++) {
			const struct bio_value *rec;
			CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
			struct bio_tensor t;
			CHECK_EQ(bio_record_get_tensor(&t, r, rec, "tensor", dt, 3, &err), 0);
			CHECK_EQ(t.dtype, dt);
			CHECK_EQ(t.shape[2], pad + 1);
			CHECK_EQ(t.data_bytes, (size_t)(6 * (pad + 1)) * bio_dtype_size(t.dtype));
			CHECK_EQ((uintptr_t)t.data % bio_dtype_size(t.dtype), 0);
			int ok = 1;
			for (size_t k = 0; k < t.data_bytes; k++)
				ok &= ((uint8_t *)t.data)[k] == (uint8_t)(k * 7 + (size_t)dt);
			CHECK(ok);
			/* a wrong dtype or rank is reported with the key */
			int other = dt == BIO_DTYPE_F32 ? BIO_DTYPE_F64 : BIO_DTYPE_F32;
			CHECK_EQ(bio_record_get_tensor(&t, r, rec, "tensor", other, 0, &err),
				 BIO_EFORMAT);
			CHECK(strstr(err.msg, "mem: record") && strstr(err.msg, "key 'tensor'"));
			CHECK_EQ(bio_record_get_tensor(&t, r, rec, "tensor", -1, 4, &err), BIO_EFORMAT);
			CHECK(strstr(err.msg, "rank 3, expected 4") != NULL);
		}
	}
	int64_t n;
	CHECK_EQ(read_all(r, &n, &err), 0);
	CHECK_EQ(n, 0);
	bio_stream_reader_free(r);
	free(m.data);
}

/* Empty strings, bins and tensors: msgpack-c leaves their pointers NULL; the accessors must
 * still hand out usable (non-NULL) pointers. */
TEST(empty_values)
{
	struct membuf m;
	mb_open(&m);
	bio_stream_begin_header(m.w, "samples");
	bio_pack_map(m.w, 0);
	bio_stream_begin_record(m.w);
	bio_pack_map(m.w, 4);
	bio_pack_kv_str(m.w, "", "");
	bio_pack_str(m.w, "b");
	bio_pack_bin(m.w, NULL, 0);
	bio_pack_str(m.w, "t");
	int64_t shape[2] = {0, 3};
	struct bio_tensor t;
	bio_tensor_view(&t, BIO_DTYPE_F64, 2, shape, NULL);
	bio_pack_tensor(m.w, &t);
	bio_pack_kv_str(m.w, "s", "");
	const char *keys[1] = {""};
	int64_t vals[1] = {4};
	CHECK_EQ(bio_stream_finish(m.w, 1, keys, vals, NULL), 0);
	struct bio_error err = {0};
	struct bio_stream_reader *r = mb_reader(&m, "e", NULL, &err);
	const struct bio_value *rec;
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
	const char *s = NULL, *key = NULL;
	size_t len = 9, klen = 9;
	CHECK_EQ(bio_value_str(bio_value_get(rec, ""), &s, &len), 0);
	CHECK(s != NULL && len == 0);
	CHECK(bio_value_str_eq(bio_value_get(rec, "s"), ""));
	char *d = bio_value_strdup(bio_value_get(rec, "s"));
	CHECK_STR(d, "");
	free(d);
	bio_value_map_at(rec, 0, &key, &klen);
	CHECK(key != NULL && klen == 0);
	const void *bin = NULL;
	CHECK_EQ(bio_value_bin(bio_value_get(rec, "b"), &bin, &len), 0);
	CHECK(bin != NULL && len == 0);
	CHECK_EQ(bio_record_get_tensor(&t, r, rec, "t", BIO_DTYPE_F64, 2, &err), 0);
	CHECK(t.data != NULL && t.data_bytes == 0 && t.shape[1] == 3);
	struct membuf c;
	mb_open(&c);
	CHECK_EQ(bio_pack_value(c.w, rec), 0);
	mb_close(&c);
	free(c.data);
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 0);
	CHECK_EQ(bio_stream_reader_trailer_sum(r, ""), 4);
	bio_stream_reader_free(r);
	free(m.data);
}

TEST(f16_values)
{
	float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.9604645e-08f};
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
		CHECK(bio_f16_to_f32(bio_f32_to_f16(vals[i])) == vals[i]);
}

TEST(record_getters)
{
	struct membuf m;
	simple_stream(&m, "samples", 3, 0);
	struct bio_error err = {0};
	struct bio_stream_reader *r = bio_stream_reader_open_mem(m.data, m.len, "s.bin", NULL, &err);
	const struct bio_value *rec;
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1); /* header read implicitly */
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
	int64_t label;
	CHECK_EQ(bio_record_get_int(&label, r, rec, "label", &err), 0);
	CHECK_EQ(label, 1);
	const char *s;
	size_t len;
	CHECK_EQ(bio_record_get_str(&s, &len, r, rec, "id", &err), 0);
	CHECK(len == 2 && memcmp(s, "r1", 2) == 0);
	CHECK_EQ(bio_record_get_int(&label, r, rec, "id", &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bin: record 1: key 'id': not an integer (got str)");
	CHECK_EQ(bio_record_get_str(&s, &len, r, rec, "nope", &err), BIO_ENOTFOUND);
	CHECK_STR(err.msg, "s.bin: record 1: key 'nope': missing");
	struct bio_tensor t;
	CHECK_EQ(bio_record_get_tensor(&t, r, rec, "x", BIO_DTYPE_F32, 1, &err), 0);
	CHECK_EQ(t.shape[0], 2);
	CHECK(((float *)t.data)[1] == 1.5f);
	CHECK_EQ(bio_record_get_tensor(&t, r, rec, "label", -1, 0, &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "not a map") != NULL);
	/* split selection: every record without a split asked for, else by the "split" key */
	CHECK_EQ(bio_record_in_split(r, rec, NULL, &err), 1);
	CHECK_EQ(bio_record_in_split(r, rec, "train", &err), BIO_ENOTFOUND);
	CHECK_STR(err.msg, "s.bin: record 1: key 'split': missing");
	/* the error of a check beyond the types */
	CHECK_EQ(bio_record_error(r, &err, BIO_EINVAL, "x", "%d too many", 3), BIO_EINVAL);
	CHECK_STR(err.msg, "s.bin: record 1: key 'x': 3 too many");
	bio_stream_reader_free(r);
	free(m.data);
}

static char *write_tmp(const char *dir, const char *name, const void *data, size_t len)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	BIO_ASSERT(f);
	fwrite(data, 1, len, f);
	fclose(f);
	return path;
}

TEST(multi_part_and_concatenated)
{
	char dir[] = "/tmp/test_stream.XXXXXX";
	BIO_ASSERT(mkdtemp(dir));
	struct membuf a, b, c;
	simple_stream(&a, "samples", 3, 1);
	simple_stream(&b, "samples", 0, 0);
	simple_stream(&c, "samples", 4, 2);
	char *pa = write_tmp(dir, "a", a.data, a.len);
	char *pb = write_tmp(dir, "b", b.data, b.len);
	/* c is the concatenation of c and a in one file */
	char *cat = malloc(c.len + a.len);
	memcpy(cat, c.data, c.len);
	memcpy(cat + c.len, a.data, a.len);
	char *pc = write_tmp(dir, "c", cat, c.len + a.len);
	const char *paths[3] = {pa, pb, pc};
	struct bio_error err = {0};
	struct bio_stream_reader *r = bio_stream_reader_open(paths, 3, NULL, &err);
	CHECK(r != NULL);
	CHECK_EQ(bio_stream_read_header(r, "samples", NULL, &err), 0);
	const struct bio_value *rec;
	const char *want_src[10] = {pa, pa, pa, pc, pc, pc, pc, pc, pc, pc};
	const char *want_id[10] = {"r0", "r1", "r2", "r0", "r1", "r2", "r3", "r0", "r1", "r2"};
	for (int k = 0; k < 10; k++) {
		CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
		CHECK_EQ(bio_stream_reader_record_index(r), k);
		CHECK_STR(bio_stream_reader_source(r), want_src[k]);
		CHECK(bio_value_str_eq(bio_value_get(rec, "id"), want_id[k]));
	}
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 0);
	CHECK_EQ(bio_stream_reader_trailer_sum(r, "failed"), 1 + 2 + 1);
	CHECK_EQ(bio_stream_reader_trailer_sum(r, "absent"), 0);
	bio_stream_reader_free(r);

	/* the same from memory: one buffer holding a, b and c back to back */
	size_t total = a.len + b.len + c.len + a.len;
	char *all = malloc(total);
	memcpy(all, a.data, a.len);
	memcpy(all + a.len, b.data, b.len);
	memcpy(all + a.len + b.len, cat, c.len + a.len);
	r = bio_stream_reader_open_mem(all, total, "all", NULL, &err);
	int64_t n;
	CHECK_EQ(read_all(r, &n, &err), 0);
	CHECK_EQ(n, 10);
	bio_stream_reader_free(r);

	/* missing file */
	const char *missing[2] = {pa, "/nonexistent/x.bin"};
	r = bio_stream_reader_open(missing, 2, NULL, &err);
	CHECK(r == NULL);
	CHECK_EQ(err.code, BIO_ENOTFOUND);
	CHECK(strstr(err.msg, "/nonexistent/x.bin") != NULL);

	/* an empty file among the parts is an error, not a short dataset */
	char *pe = write_tmp(dir, "empty", "", 0);
	const char *pe2[2] = {pa, pe};
	r = bio_stream_reader_open(pe2, 2, NULL, &err);
	CHECK_EQ(read_all(r, &n, &err), BIO_ETRUNC);
	CHECK(strstr(err.msg, "empty") != NULL);
	bio_stream_reader_free(r);

	free(all);
	free(cat);
	remove(pa);
	remove(pb);
	remove(pc);
	remove(pe);
	remove(dir);
	free(pa);
	free(pb);
	free(pc);
	free(pe);
	free(a.data);
	free(b.data);
	free(c.data);
}

/* More parts than the process may hold file descriptors (the limit is lowered to 128 here):
 * parts are opened when reached and closed once read through. */
TEST(many_parts)
{
	struct rlimit old_lim, low;
	BIO_ASSERT(getrlimit(RLIMIT_NOFILE, &old_lim) == 0);
	low = old_lim;
	low.rlim_cur = 128;
	char dir[] = "/tmp/test_stream_many.XXXXXX";
	BIO_ASSERT(mkdtemp(dir));
	struct membuf m;
	simple_stream(&m, "samples", 1, 1);
	enum { N = 400 };
	char **paths = calloc(N, sizeof *paths);
	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof name, "p%04d", i);
		paths[i] = write_tmp(dir, name, m.data, m.len);
	}
	struct bio_error err = {0};
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	struct bio_stream_reader *r =
		bio_stream_reader_open((const char *const *)paths, N, NULL, &err);
	CHECK(r != NULL);
	if (!r) {
		fprintf(stderr, "%s\n", err.msg);
		setrlimit(RLIMIT_NOFILE, &old_lim);
		return;
	}
	int64_t n = 0;
	const struct bio_value *rec;
	size_t part = 0;
	uint64_t off = 0;
	int rc;
	while ((rc = bio_stream_read_record(r, &rec, &err)) == 1) {
		n++;
		if (n == 7)
			bio_stream_reader_tell(r, &part, &off);
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(n, N);
	CHECK_EQ(bio_stream_reader_trailer_sum(r, "failed"), N);
	CHECK_EQ(part, 6);
	CHECK_EQ(bio_stream_read_record_at(r, part, off, &rec, &err), 1); /* reopened */
	CHECK(bio_value_str_eq(bio_value_get(rec, "id"), "r0"));
	CHECK_STR(bio_stream_reader_source(r), paths[6]);
	/* random access over every part stays within the descriptor limit */
	for (int k = 0; k < N; k++) {
		int i = (k * 37) % N;
		if (bio_stream_read_record_at(r, (size_t)i, off, &rec, &err) != 1) {
			fprintf(stderr, "part %d: %s\n", i, err.msg);
			CHECK(0);
			break;
		}
	}
	bio_stream_reader_free(r);
	CHECK(setrlimit(RLIMIT_NOFILE, &old_lim) == 0);
	for (int i = 0; i < N; i++) {
		remove(paths[i]);
		free(paths[i]);
	}
	free(paths);
	remove(dir);
	free(m.data);
}

TEST(kind_mismatch)
{
	struct membuf a, b;
	simple_stream(&a, "samples", 2, 0);
	simple_stream(&b, "batches", 1, 0);
	struct bio_error err = {0};
	struct bio_stream_reader *r = bio_stream_reader_open_mem(a.data, a.len, "a", NULL, &err);
	CHECK_EQ(bio_stream_read_header(r, "manifest", NULL, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "a: stream kind is 'samples', expected 'manifest'");
	bio_stream_reader_free(r);

	char *cat = malloc(a.len + b.len);
	memcpy(cat, a.data, a.len);
	memcpy(cat + a.len, b.data, b.len);
	r = bio_stream_reader_open_mem(cat, a.len + b.len, "cat", NULL, &err);
	int64_t n;
	CHECK_EQ(read_all(r, &n, &err), BIO_EFORMAT);
	CHECK_EQ(n, 2);
	CHECK(strstr(err.msg, "kind 'batches' follows a stream of kind 'samples'") != NULL);
	bio_stream_reader_free(r);
	free(cat);
	free(a.data);
	free(b.data);
}

TEST(truncation_every_byte)
{
	struct membuf m;
	simple_stream(&m, "samples", 3, 1);
	int n_bad = 0;
	for (size_t cut = 0; cut < m.len; cut++) {
		struct bio_error err = {0};
		struct bio_stream_reader *r =
			bio_stream_reader_open_mem(m.data, cut, "cut", NULL, &err);
		int64_t n;
		int rc = bio_stream_read_header(r, "samples", NULL, &err);
		if (rc == 0)
			rc = read_all(r, &n, &err);
		if (rc >= 0 || err.code != rc || strncmp(err.msg, "cut: ", 5) != 0) {
			fprintf(stderr, "cut at %zu: rc %d (%s)\n", cut, rc, err.msg);
			n_bad++;
		}
		if (rc == BIO_ETRUNC && cut > 40 && !strstr(err.msg, "truncated stream"))
			n_bad++;
		bio_stream_reader_free(r);
	}
	CHECK_EQ(n_bad, 0);
	/* a stream that stops right after records names the count */
	struct membuf p;
	mb_open(&p);
	write_header(p.w, "samples");
	for (int i = 0; i < 2; i++) {
		bio_stream_begin_record(p.w);
		bio_pack_map(p.w, 1);
		bio_pack_kv_int(p.w, "label", i);
	}
	struct bio_error err = {0};
	struct bio_stream_reader *r = mb_reader(&p, "<stdin>", NULL, &err);
	int64_t n;
	CHECK_EQ(read_all(r, &n, &err), BIO_ETRUNC);
	CHECK_EQ(n, 2);
	CHECK_STR(err.msg, "<stdin>: truncated stream (no trailer after 2 records)");
	const struct bio_value *rec;
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), BIO_ETRUNC); /* sticky */
	bio_stream_reader_free(r);
	free(p.data);
	free(m.data);
}

TEST(count_mismatch)
{
	struct membuf m;
	mb_open(&m);
	write_header(m.w, "samples");
	bio_stream_begin_record(m.w);
	bio_pack_map(m.w, 1);
	bio_pack_kv_int(m.w, "label", 0);
	bio_pack_map(m.w, 1);
	bio_pack_kv_int(m.w, "end", 2);
	struct bio_error err = {0};
	struct bio_stream_reader *r = mb_reader(&m, "m", NULL, &err);
	int64_t n;
	CHECK_EQ(read_all(r, &n, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "m: trailer says 2 records, the stream had 1");
	bio_stream_reader_free(r);
	free(m.data);
}

/* Reads raw bytes (after a valid header) as one record and returns the status. */
static int read_raw_record(const void *raw, size_t raw_len, const struct bio_stream_limits *lim,
			   struct bio_error *err)
{
	struct membuf m;
	mb_open(&m);
	write_header(m.w, "samples");
	fflush(m.f);
	fwrite(raw, 1, raw_len, m.f);
	struct bio_stream_reader *r = mb_reader(&m, "raw", lim, err);
	const struct bio_value *rec;
	int rc = bio_stream_read_record(r, &rec, err);
	bio_stream_reader_free(r);
	free(m.data);
	return rc;
}

TEST(limits)
{
	struct bio_error err = {0};
	/* declared lengths far beyond the input: refused before any allocation */
	const uint8_t bin32[] = {0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff, 0};
	CHECK_EQ(read_raw_record(bin32, sizeof bin32, NULL, &err), BIO_ELIMIT);
	CHECK(strstr(err.msg, "raw: record 0: bin of 4294967295 bytes exceeds") != NULL);
	const uint8_t str32[] = {0x81, 0xa1, 'x', 0xdb, 0x7f, 0xff, 0xff, 0xff};
	CHECK_EQ(read_raw_record(str32, sizeof str32, NULL, &err), BIO_ELIMIT);
	const uint8_t arr32[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
	CHECK_EQ(read_raw_record(arr32, sizeof arr32, NULL, &err), BIO_ELIMIT);
	const uint8_t map32[] = {0xdf, 0x0f, 0xff, 0xff, 0xff};
	CHECK_EQ(read_raw_record(map32, sizeof map32, NULL, &err), BIO_ELIMIT);
	/* within the default item limit but impossible in a small object limit */
	struct bio_stream_limits lim;
	bio_stream_limits_default(&lim);
	lim.max_object_bytes = 1000;
	const uint8_t arr16[] = {0x81, 0xa1, 'x', 0xdc, 0xff, 0xff};
	CHECK_EQ(read_raw_record(arr16, sizeof arr16, &lim, &err), BIO_ELIMIT);
	/* the explicit limits */
	uint8_t big[2100];
	memset(big, 0, sizeof big);
	big[0] = 0x81;
	big[1] = 0xa1;
	big[2] = 'x';
	big[3] = 0xc5; /* bin16 of 2000 bytes */
	big[4] = 2000 >> 8;
	big[5] = 2000 & 0xff;
	CHECK_EQ(read_raw_record(big, 6 + 2000, NULL, &err), 1);
	lim.max_object_bytes = 1500;
	CHECK_EQ(read_raw_record(big, 6 + 2000, &lim, &err), BIO_ELIMIT);
	CHECK(strstr(err.msg, "larger than the limit of 1500 bytes") != NULL);
	bio_stream_limits_default(&lim);
	lim.max_tensor_bytes = 1999;
	CHECK_EQ(read_raw_record(big, 6 + 2000, &lim, &err), BIO_ELIMIT);
	big[3] = 0xda; /* str16 */
	bio_stream_limits_default(&lim);
	lim.max_str_bytes = 100;
	CHECK_EQ(read_raw_record(big, 6 + 2000, &lim, &err), BIO_ELIMIT);
	CHECK(strstr(err.msg, "string of 2000 bytes") != NULL);
	bio_stream_limits_default(&lim);
	lim.max_items = 2;
	const uint8_t arr3[] = {0x81, 0xa1, 'x', 0x93, 1, 2, 3};
	CHECK_EQ(read_raw_record(arr3, sizeof arr3, &lim, &err), BIO_ELIMIT);
	lim.max_items = 3;
	CHECK_EQ(read_raw_record(arr3, sizeof arr3, &lim, &err), 1);
	/* nesting: a map at depth 1 holding arrays to depth D */
	for (int depth = 30; depth <= 40; depth++) {
		uint8_t nest[64];
		size_t k = 0;
		nest[k++] = 0x81;
		nest[k++] = 0xa1;
		nest[k++] = 'x';
		for (int d = 1; d < depth; d++)
			nest[k++] = 0x91;
		nest[k++] = 0xc0;
		int rc = read_raw_record(nest, k, NULL, &err);
		if (depth <= 32)
			CHECK_EQ(rc, 1);
		else {
			CHECK_EQ(rc, BIO_ELIMIT);
			CHECK(strstr(err.msg, "nesting deeper than 32") != NULL);
		}
	}
	bio_stream_limits_default(&lim);
	lim.max_depth = 3;
	const uint8_t d4[] = {0x81, 0xa1, 'x', 0x91, 0x91, 0x90};
	CHECK_EQ(read_raw_record(d4, sizeof d4, &lim, &err), BIO_ELIMIT);
	lim.max_depth = 4;
	CHECK_EQ(read_raw_record(d4, sizeof d4, &lim, &err), 1);
	/* malformed bytes and records */
	const uint8_t c1[] = {0x81, 0xa1, 'x', 0xc1};
	CHECK_EQ(read_raw_record(c1, sizeof c1, NULL, &err), BIO_EFORMAT);
	const uint8_t notmap[] = {0x93, 1, 2, 3};
	CHECK_EQ(read_raw_record(notmap, sizeof notmap, NULL, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "raw: record 0: not a map (got array)");
	const uint8_t intkey[] = {0x81, 0x01, 0x02};
	CHECK_EQ(read_raw_record(intkey, sizeof intkey, NULL, &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "key 0 is not a string") != NULL);
	lim.max_depth = 0;
	CHECK(bio_stream_reader_open_mem("", 0, "x", &lim, &err) == NULL);
	CHECK_EQ(err.code, BIO_EINVAL);
}

TEST(bad_tensors)
{
	struct {
		const char *dtype;
		int n_dims;
		int64_t shape[3];
		size_t bytes;
		const char *msg;
	} cases[] = {
		{"f32", 2, {2, 3}, 24, NULL},
		{"f32", 2, {2, 3}, 20, "tensor data has 20 bytes, shape and dtype f32 need 24"},
		{"f32", 2, {-2, 3}, 24, "shape[0] is negative"},
		{"q7", 1, {3}, 3, "unknown tensor dtype 'q7'"},
		{"u8", 3, {1 << 30, 1 << 30, 1 << 30}, 8, "overflows"},
		{"i64", 3, {1 << 20, 1 << 20, 0}, 8, "need 0"},
		{"f64", 3, {INT64_MAX, 4, 0}, 0, "overflows"},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct membuf m;
		mb_open(&m);
		write_header(m.w, "samples");
		bio_stream_begin_record(m.w);
		bio_pack_map(m.w, 1);
		bio_pack_str(m.w, "t");
		bio_pack_map(m.w, 3);
		bio_pack_kv_str(m.w, "dtype", cases[c].dtype);
		bio_pack_str(m.w, "shape");
		bio_pack_array(m.w, (size_t)cases[c].n_dims);
		for (int d = 0; d < cases[c].n_dims; d++)
			bio_pack_int(m.w, cases[c].shape[d]);
		bio_pack_str(m.w, "data");
		char zeros[64] = {0};
		bio_pack_bin(m.w, zeros, cases[c].bytes);
		bio_stream_finish(m.w, 0, NULL, NULL, NULL);
		struct bio_error err = {0};
		struct bio_stream_reader *r = mb_reader(&m, "m", NULL, &err);
		const struct bio_value *rec;
		CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
		struct bio_tensor t;
		int rc = bio_record_get_tensor(&t, r, rec, "t", -1, 0, &err);
		if (!cases[c].msg) {
			CHECK_EQ(rc, 0);
		} else {
			CHECK(rc < 0);
			if (!strstr(err.msg, cases[c].msg) || !strstr(err.msg, "m: record 0: key 't'"))
				fprintf(stderr, "case %zu: %s\n", c, err.msg);
			CHECK(strstr(err.msg, cases[c].msg) != NULL);
		}
		bio_stream_reader_free(r);
		free(m.data);
	}
}

TEST(tell_and_read_at)
{
	char path[] = "/tmp/test_stream_ra.XXXXXX";
	int fd = mkstemp(path);
	BIO_ASSERT(fd >= 0);
	FILE *f = fdopen(fd, "wb");
	struct bio_stream_writer *w = bio_stream_writer_new(f, NULL);
	write_header(w, "samples");
	enum { N = 40 };
	for (int i = 0; i < N; i++) {
		bio_stream_begin_record(w);
		bio_pack_map(w, 2);
		bio_pack_kv_int(w, "label", i);
		int64_t shape[1] = {(i * 997) % 3000 + 1}; /* records of very different sizes */
		struct bio_tensor t;
		bio_tensor_init(&t, BIO_DTYPE_F32, 1, shape, NULL);
		for (int64_t k = 0; k < shape[0]; k++)
			((float *)t.data)[k] = (float)(i * 10000 + k);
		bio_pack_str(w, "x");
		bio_pack_tensor(w, &t);
		bio_tensor_destroy(&t);
	}
	CHECK_EQ(bio_stream_finish(w, 0, NULL, NULL, NULL), 0);
	bio_stream_writer_free(w);
	fclose(f);

	struct bio_error err = {0};
	const char *paths[2] = {path, path};
	struct bio_stream_reader *r = bio_stream_reader_open(paths, 2, NULL, &err);
	size_t parts[2 * N];
	uint64_t offs[2 * N];
	const struct bio_value *rec;
	size_t part;
	uint64_t off;
	CHECK_EQ(bio_stream_reader_tell(r, &part, &off), BIO_EINVAL);
	for (int i = 0; i < 2 * N; i++) {
		CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
		CHECK_EQ(bio_stream_reader_tell(r, &parts[i], &offs[i]), 0);
	}
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 0);
	CHECK_EQ(parts[0], 0);
	CHECK_EQ(parts[N], 1);
	CHECK_EQ(offs[0], offs[N]);
	/* shuffled re-reads */
	for (int j = 0; j < 2 * N; j++) {
		int i = (j * 37) % (2 * N);
		CHECK_EQ(bio_stream_read_record_at(r, parts[i], offs[i], &rec, &err), 1);
		int64_t label;
		CHECK_EQ(bio_record_get_int(&label, r, rec, "label", &err), 0);
		CHECK_EQ(label, i % N);
		struct bio_tensor t;
		CHECK_EQ(bio_record_get_tensor(&t, r, rec, "x", BIO_DTYPE_F32, 1, &err), 0);
		CHECK_EQ(t.shape[0], ((i % N) * 997) % 3000 + 1);
		CHECK(((float *)t.data)[t.shape[0] - 1] == (float)((i % N) * 10000 + t.shape[0] - 1));
		CHECK_EQ(bio_stream_reader_tell(r, &part, &off), 0);
		CHECK_EQ(off, offs[i]);
	}
	/* a bad offset is an error, not a crash */
	CHECK(bio_stream_read_record_at(r, 0, offs[1] + 1, &rec, &err) < 0);
	CHECK(bio_stream_read_record_at(r, 0, 1u << 30, &rec, &err) == BIO_ETRUNC);
	CHECK(bio_stream_read_record_at(r, 0, 0, &rec, &err) == BIO_EFORMAT); /* the header */
	CHECK(bio_stream_read_record_at(r, 5, 0, &rec, &err) == BIO_EINVAL);
	bio_stream_reader_free(r);

	/* pipes have no random access */
	int pfd[2];
	BIO_ASSERT(pipe(pfd) == 0);
	FILE *src = fopen(path, "rb");
	char *buf = malloc(1 << 20);
	size_t n = fread(buf, 1, 1 << 20, src);
	fclose(src);
	FILE *wp = fdopen(pfd[1], "wb");
	FILE *rp = fdopen(pfd[0], "rb");
	pid_t pid = fork();
	if (pid == 0) {
		fclose(rp);
		fwrite(buf, 1, n, wp);
		fclose(wp);
		_exit(0);
	}
	fclose(wp);
	free(buf);
	r = bio_stream_reader_open_file(rp, "<pipe>", NULL, &err);
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
	CHECK_EQ(bio_stream_reader_tell(r, &part, &off), BIO_EUNSUPPORTED);
	CHECK_EQ(bio_stream_read_record_at(r, 0, 0, &rec, &err), BIO_EUNSUPPORTED);
	int64_t cnt;
	CHECK_EQ(read_all(r, &cnt, &err), 0);
	CHECK_EQ(cnt, N - 1);
	bio_stream_reader_free(r);
	fclose(rp);
	remove(path);
}

TEST(writer_errors)
{
	FILE *full = fopen("/dev/full", "wb");
	if (full) {
		struct bio_stream_writer *w = bio_stream_writer_new(full, NULL);
		write_header(w, "samples");
		struct bio_error err = {0};
		CHECK_EQ(bio_stream_finish(w, 0, NULL, NULL, &err), BIO_EIO);
		CHECK(strstr(err.msg, "No space left on device") != NULL);
		bio_stream_writer_free(w);
		fclose(full);
	}
	/* a reader that went away: EPIPE, sticky */
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int pfd[2];
	BIO_ASSERT(pipe(pfd) == 0);
	close(pfd[0]);
	FILE *f = fdopen(pfd[1], "wb");
	setvbuf(f, NULL, _IONBF, 0);
	struct bio_stream_writer *w = bio_stream_writer_new(f, NULL);
	CHECK_EQ(bio_stream_begin_header(w, "samples"), BIO_EPIPE);
	CHECK_EQ(bio_pack_int(w, 1), BIO_EPIPE);
	struct bio_error err = {0};
	CHECK_EQ(bio_stream_finish(w, 0, NULL, NULL, &err), BIO_EPIPE);
	CHECK(strstr(err.msg, "Broken pipe") != NULL);
	bio_stream_writer_free(w);
	fclose(f);
	signal(SIGPIPE, old);
}

TEST(header_errors)
{
#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1
	struct {
		const uint8_t *bytes;
		size_t len;
		int code;
		const char *msg;
	} cases[] = {
		{BYTES("\x93\x01\x02\x03"), BIO_EFORMAT, "h: header: not a map (got array)"},
		{BYTES("\x81\xa1k\x01"), BIO_EFORMAT, "no \"bio-stream\" key"},
		{BYTES("\x83\xaa" "bio-stream\x02\xa4kind\xa1x\xa4meta\x80"), BIO_EUNSUPPORTED,
		 "bio-stream version 2"},
		{BYTES("\x83\xaa" "bio-stream\x01\xa4kind\x07\xa4meta\x80"), BIO_EFORMAT,
		 "\"kind\" is not a string (got int)"},
		{BYTES("\x82\xaa" "bio-stream\x01\xa4kind\xa1x"), BIO_EFORMAT,
		 "\"meta\" is not a map (got nothing)"},
		{BYTES("\x83\xaa" "bio-stream\xc3\xa4kind\xa1x\xa4meta\x80"), BIO_EFORMAT,
		 "\"bio-stream\" is not an integer (got bool)"},
		{BYTES(""), BIO_ETRUNC, "h: empty stream (no header)"},
		{BYTES("\x83\xaa" "bio-stream\x01\xa4kind"), BIO_ETRUNC, "h: truncated stream (inside the header)"},
	};
#undef BYTES
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct bio_error err = {0};
		struct bio_stream_reader *r =
			bio_stream_reader_open_mem(cases[c].bytes, cases[c].len, "h", NULL, &err);
		CHECK_EQ(bio_stream_read_header(r, NULL, NULL, &err), cases[c].code);
		if (!strstr(err.msg, cases[c].msg))
			fprintf(stderr, "case %zu: %s\n", c, err.msg);
		CHECK(strstr(err.msg, cases[c].msg) != NULL);
		bio_stream_reader_free(r);
	}
}

int main(void)
{
	RUN(value_round_trip);
	RUN(tensor_every_dtype);
	RUN(empty_values);
	RUN(f16_values);
	RUN(record_getters);
	RUN(multi_part_and_concatenated);
	RUN(many_parts);
	RUN(kind_mismatch);
	RUN(truncation_every_byte);
	RUN(count_mismatch);
	RUN(limits);
	RUN(bad_tensors);
	RUN(tell_and_read_at);
	RUN(writer_errors);
	RUN(header_errors);
	return test_summary();
}
