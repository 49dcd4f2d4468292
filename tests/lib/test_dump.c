/* Unit tests of lib/dump.c: a stream's header, records and trailer as JSON lines (tensors
 * summarised, with --full values, bin as length or hex, NaN as null, invalid UTF-8 as U+FFFD),
 * and a bad tensor as an error naming the stream and the record. */
#include "bio/dump.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

/* The test stream into w: header {n: 1}; record 0 {t: f32 [1.5, NaN], b: bin 2, s: "a\xff"};
 * record 1 {t: f32 of shape [3] with 8 bytes}; trailer. */
static void stream(struct bio_stream_writer *w)
{
	bio_stream_begin_header(w, "samples");
	bio_pack_map(w, 1);
	bio_pack_kv_int(w, "n", 1);
	float v[2] = {1.5f, NAN};
	int64_t two = 2, three = 3;
	struct bio_tensor t;
	bio_tensor_view(&t, BIO_DTYPE_F32, 1, &two, v);
	bio_stream_begin_record(w);
	bio_pack_map(w, 3);
	bio_pack_str(w, "t");
	bio_pack_tensor(w, &t);
	bio_pack_str(w, "b");
	bio_pack_bin(w, "\x01\xab", 2);
	bio_pack_kv_str(w, "s", "a\xff");
	bio_stream_begin_record(w);
	bio_pack_map(w, 1);
	bio_pack_str(w, "t");
	bio_pack_map(w, 3);
	bio_pack_kv_str(w, "dtype", "f32");
	bio_pack_str(w, "shape");
	bio_pack_array(w, 1);
	bio_pack_int(w, three);
	bio_pack_str(w, "data");
	bio_pack_bin(w, v, sizeof v);
	BIO_ASSERT(bio_stream_finish(w, 0, NULL, NULL, NULL) == 0);
}

/* The lines bio_dump writes for the header, record 0 (full or not) and the trailer of 2. */
static char *lines(const char *data, size_t len, int full)
{
	struct bio_error err = {0};
	char *text = NULL;
	size_t text_len = 0;
	struct bio_dump d = {.full = full, .out_name = "out"};
	d.out = open_memstream(&text, &text_len);
	d.r = bio_stream_reader_open_mem(data, len, "m.bs", NULL, &err);
	const struct bio_value *meta, *rec;
	BIO_ASSERT(d.out && d.r && bio_stream_read_header(d.r, NULL, &meta, &err) == 0);
	CHECK_EQ(bio_dump_header(&d, meta, &err), 0);
	CHECK_EQ(bio_stream_read_record(d.r, &rec, &err), 1);
	CHECK_EQ(bio_dump_record(&d, rec, 0, 1, &err), 0);
	CHECK_EQ(bio_stream_read_record(d.r, &rec, &err), 1);
	CHECK_EQ(bio_dump_record(&d, rec, 1, 0, &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "m.bs: record 1: ") == err.msg);
	CHECK_EQ(bio_dump_trailer(&d, 2, &err), 0);
	bio_stream_reader_free(d.r);
	fclose(d.out);
	return text;
}

TEST(json_lines)
{
	char *data, *text;
	size_t len;
	FILE *f = open_memstream(&data, &len);
	struct bio_stream_writer *w = f ? bio_stream_writer_new(f, NULL) : NULL;
	BIO_ASSERT(w);
	stream(w);
	bio_stream_writer_free(w);
	fclose(f);
	text = lines(data, len, 0);
	CHECK_STR(text, "{\"bio-stream\":1,\"kind\":\"samples\",\"meta\":{\"n\":1}}\n"
			"{\"t\":{\"dtype\":\"f32\",\"shape\":[2],\"min\":1.5,\"max\":1.5,"
			"\"mean\":1.5,\"nonfinite\":1},\"b\":{\"bin\":2},\"s\":\"a\xef\xbf\xbd\"}\n"
			"{\"end\":2}\n");
	free(text);
	text = lines(data, len, 1);
	CHECK(strstr(text, "\"nonfinite\":1,\"data\":[1.5,null]},"
			   "\"b\":{\"bin\":2,\"hex\":\"01ab\"}"));
	free(text);
	free(data);
}

int main(void)
{
	RUN(json_lines);
	return test_summary();
}
