/* libFuzzer harness for the bio-stream reader: reads a stream from memory to its end, walks every
 * value of the header and of each record, validates every tensor-like map, re-reads each record
 * by its offset, and copies values through the writer. Besides "no crash" under ASan/UBSan it
 * parses the header as the typed header (bio/header.h) and runs its record checks, and
 * asserts the reader's contract: a status is 1, 0 or a negative BIO_E code with a message naming
 * the input; a failed or finished reader stays so; a re-read by offset gives the same encoding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bio/header.h"
#include "bio/stream.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct bio_value *v, int depth)
{
	BIO_ASSERT(depth <= 40);
	enum bio_vtype t = bio_value_type(v);
	size_t n = bio_value_len(v);
	int64_t i;
	double d;
	int b;
	const char *s;
	const void *bin;
	size_t len;
	switch (t) {
	case BIO_V_INT: BIO_ASSERT(bio_value_int(v, &i) == 0 && bio_value_double(v, &d) == 0); break;
	case BIO_V_FLOAT: BIO_ASSERT(bio_value_double(v, &d) == 0); break;
	case BIO_V_BOOL: BIO_ASSERT(bio_value_bool(v, &b) == 0 && (b == 0 || b == 1)); break;
	case BIO_V_STR: {
		BIO_ASSERT(bio_value_str(v, &s, &len) == 0 && len == n);
		char *c = bio_value_strdup(v);
		BIO_ASSERT(c && strlen(c) <= len);
		free(c);
		break;
	}
	case BIO_V_BIN:
		BIO_ASSERT(bio_value_bin(v, &bin, &len) == 0 && len == n);
		break;
	case BIO_V_ARRAY:
		for (size_t k = 0; k < n; k++)
			walk(bio_value_at(v, k), depth + 1);
		BIO_ASSERT(bio_value_at(v, n) == NULL);
		break;
	case BIO_V_MAP: {
		for (size_t k = 0; k < n; k++) {
			const char *key;
			size_t klen;
			const struct bio_value *e = bio_value_map_at(v, k, &key, &klen);
			BIO_ASSERT(e != NULL);
			walk(e, depth + 1);
		}
		struct bio_tensor tt;
		struct bio_error err = {0};
		int rc = bio_value_tensor(&tt, v, "t", &err);
		if (rc == 0) {
			size_t numel;
			BIO_ASSERT(bio_shape_numel(&numel, tt.n_dims, tt.shape, NULL) == 0);
			BIO_ASSERT(numel * bio_dtype_size(tt.dtype) == tt.data_bytes);
			BIO_ASSERT((uintptr_t)tt.data % bio_dtype_size(tt.dtype) == 0);
			volatile uint8_t sum = 0; /* touch every byte: ASan checks the view */
			for (size_t k = 0; k < tt.data_bytes; k++)
				sum ^= ((const uint8_t *)tt.data)[k];
			(void)sum;
		} else {
			BIO_ASSERT(rc < 0 && err.code == rc && strncmp(err.msg, "t: ", 3) == 0);
		}
		break;
	}
	default: break;
	}
}

/* Encodes v into *buf (malloc'ed, caller frees). */
static size_t encode(const struct bio_value *v, char **buf)
{
	size_t len = 0;
	*buf = NULL;
	FILE *f = open_memstream(buf, &len);
	BIO_ASSERT(f);
	struct bio_stream_writer *w = bio_stream_writer_new(f, NULL);
	BIO_ASSERT(w);
	BIO_ASSERT(bio_pack_value(w, v) == 0);
	bio_stream_writer_free(w);
	fclose(f);
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bio_error err = {0};
	struct bio_stream_reader *r = fuzz_reader_open(data, size, &err);
	const struct bio_value *meta = NULL;
	int rc = bio_stream_read_header(r, NULL, &meta, &err);
	if (rc < 0) {
		BIO_ASSERT(err.code == rc && strncmp(err.msg, "fuzz: ", 6) == 0);
		const struct bio_value *rec;
		BIO_ASSERT(bio_stream_read_record(r, &rec, &err) < 0); /* stays failed */
		bio_stream_reader_free(r);
		return 0;
	}
	BIO_ASSERT(rc == 0 && meta && bio_value_type(meta) == BIO_V_MAP);
	walk(meta, 0);
	/* the typed header: parsed or refused with a message naming the input */
	struct bio_header h;
	struct bio_error herr = {0};
	int hrc = bio_header_parse(&h, meta, "fuzz", 0, &herr);
	BIO_ASSERT(hrc == 0 || (hrc == herr.code && strncmp(herr.msg, "fuzz: ", 6) == 0));
	if (hrc == 0) {
		BIO_ASSERT(h.n_mod >= 0 && h.n_mod <= BIO_HEADER_MAX_MODS);
		for (int m = 0; m < h.n_mod; m++)
			BIO_ASSERT(h.modalities[m][0] && bio_header_modality(&h, h.modalities[m]) == m);
		BIO_ASSERT(!h.has_shape || (h.shape[0] == 1 && h.pixels ==
					    (size_t)h.shape[1] * (size_t)h.shape[2]));
	}
	uint64_t n = 0;
	const struct bio_value *rec;
	while ((rc = bio_stream_read_record(r, &rec, &err)) == 1) {
		BIO_ASSERT(bio_value_type(rec) == BIO_V_MAP);
		BIO_ASSERT(bio_stream_reader_record_index(r) == n);
		n++;
		walk(rec, 0);
		char *a, *b;
		size_t alen = encode(rec, &a);
		size_t part;
		uint64_t off;
		BIO_ASSERT(bio_stream_reader_tell(r, &part, &off) == 0 && part == 0 && off < size);
		const struct bio_value *again;
		BIO_ASSERT(bio_stream_read_record_at(r, part, off, &again, &err) == 1);
		size_t blen = encode(again, &b);
		BIO_ASSERT(alen == blen && memcmp(a, b, alen) == 0);
		free(a);
		free(b);
		/* the getters never crash on whatever the keys hold */
		int64_t i;
		const char *s;
		size_t len;
		struct bio_tensor t;
		bio_record_get_int(&i, r, again, "label", &err);
		bio_record_get_str(&s, &len, r, again, "id", &err);
		bio_record_get_tensor(&t, r, again, "iris", BIO_DTYPE_F32, 3, &err);
		/* and the header's record checks */
		if (hrc == 0) {
			struct bio_error rerr = {0};
			int lrc = bio_record_get_label(&i, &h, r, again, "label", 1, &rerr);
			BIO_ASSERT(lrc < 0 || (i >= -1 && (!h.labels || i < (int64_t)h.n_labels)));
			for (int m = 0; m < h.n_mod && h.has_shape; m++)
				if (bio_record_get_sample(&t, &h, r, again, h.modalities[m], 0, &rerr) == 0)
					BIO_ASSERT(bio_tensor_numel(&t) == h.pixels);
			if (bio_record_get_tensor(&t, r, again, "label", BIO_DTYPE_I64, 1, &rerr) == 0)
				bio_record_check_labels(&h, r, "label", t.data, bio_tensor_numel(&t), 0,
							&rerr);
		}
	}
	bio_header_destroy(&h);
	if (rc < 0)
		BIO_ASSERT(err.code == rc && strncmp(err.msg, "fuzz: ", 6) == 0);
	else
		BIO_ASSERT(rc == 0 && bio_stream_read_record(r, &rec, &err) == 0);
	bio_stream_reader_free(r);
	return 0;
}
