/* Unit tests of the typed stream header (bio/header.h) and of CRC-32C: header parsing (unique,
 * non-reserved modalities, label names, shape bounds, what a reader needs), the record checks
 * (labels against the names, -1 only where allowed, sample shapes, finite values) with their
 * messages, and CRC-32C's reference vectors. */
#include "bio/header.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bio/crc32c.h"
#include "test.h"

struct membuf {
	char *data;
	size_t len;
	FILE *f;
	struct bio_stream_writer *w;
};

/* A samples stream: meta with the given modalities (NULL-terminated), n_labels names (0: none)
 * and shape [1,h,w] (h 0: none); records with label labels[i] and an iris tensor [1,th,tw]
 * whose element 0 is x0. */
static void make_stream(struct membuf *m, const char *const *mods, int n_labels, int h, int w,
			const int64_t *labels, int n_rec, int th, int tw, float x0)
{
	memset(m, 0, sizeof *m);
	m->f = open_memstream(&m->data, &m->len);
	m->w = bio_stream_writer_new(m->f, NULL);
	BIO_ASSERT(m->f && m->w);
	int n_mods = 0;
	while (mods && mods[n_mods])
		n_mods++;
	bio_stream_begin_header(m->w, "samples");
	bio_pack_map(m->w, (size_t)(!!mods + (n_labels > 0) + (h > 0)));
	if (mods) {
		bio_pack_str(m->w, "modalities");
		bio_pack_array(m->w, (size_t)n_mods);
		for (int i = 0; i < n_mods; i++)
			bio_pack_str(m->w, mods[i]);
	}
	if (n_labels > 0) {
		bio_pack_str(m->w, "labels");
		bio_pack_array(m->w, (size_t)n_labels);
		for (int i = 0; i < n_labels; i++) {
			char name[16];
			snprintf(name, sizeof name, "id%d", i);
			bio_pack_str(m->w, name);
		}
	}
	if (h > 0) {
		bio_pack_str(m->w, "shape");
		bio_pack_array(m->w, 3);
		bio_pack_int(m->w, 1);
		bio_pack_int(m->w, h);
		bio_pack_int(m->w, w);
	}
	float *px = calloc((size_t)(th * tw), sizeof(float));
	BIO_ASSERT(px);
	px[0] = x0;
	for (int i = 0; i < n_rec; i++) {
		bio_stream_begin_record(m->w);
		bio_pack_map(m->w, 2);
		bio_pack_kv_int(m->w, "label", labels[i]);
		struct bio_tensor t;
		int64_t shape[3] = {1, th, tw};
		bio_tensor_view(&t, BIO_DTYPE_F32, 3, shape, px);
		bio_pack_str(m->w, "iris");
		bio_pack_tensor(m->w, &t);
	}
	BIO_ASSERT(bio_stream_finish(m->w, 0, NULL, NULL, NULL) == 0);
	bio_stream_writer_free(m->w);
	fclose(m->f);
	free(px);
}

/* Reads the header with need; on success reads every record, checking label and iris. Returns
 * the first error code (0 when all passed) with its message in err. */
static int check_stream(const struct membuf *m, unsigned need, int allow_unknown,
			struct bio_error *err)
{
	struct bio_stream_reader *r = bio_stream_reader_open_mem(m->data, m->len, "s.bs", NULL, err);
	BIO_ASSERT(r);
	struct bio_header h;
	int rc = bio_header_read(&h, r, "samples", need, err);
	const struct bio_value *rec;
	while (rc == 0 && (rc = bio_stream_read_record(r, &rec, err)) == 1) {
		int64_t label;
		struct bio_tensor t;
		rc = bio_record_get_label(&label, &h, r, rec, "label", allow_unknown, err);
		if (rc == 0 && h.has_shape)
			rc = bio_record_get_sample(&t, &h, r, rec, "iris", 0, err);
	}
	bio_header_destroy(&h);
	bio_stream_reader_free(r);
	return rc;
}

static const char *const iris_fp[] = {"iris", "fingerprint", NULL};

TEST(good_header_and_records)
{
	struct membuf m;
	int64_t labels[3] = {0, 2, 1};
	make_stream(&m, iris_fp, 3, 4, 5, labels, 3, 4, 5, 1.0f);
	struct bio_error err = {0};
	CHECK_EQ(check_stream(&m, BIO_HEADER_MODALITIES | BIO_HEADER_LABELS | BIO_HEADER_SHAPE, 0,
			      &err), 0);
	struct bio_stream_reader *r = bio_stream_reader_open_mem(m.data, m.len, "s.bs", NULL, &err);
	struct bio_header h;
	CHECK_EQ(bio_header_read(&h, r, "samples", 0, &err), 0);
	CHECK_EQ(h.n_mod, 2);
	CHECK_STR(h.modalities[1], "fingerprint");
	CHECK_EQ(bio_header_modality(&h, "fingerprint"), 1);
	CHECK_EQ(bio_header_modality(&h, "face"), -1);
	CHECK_EQ(h.n_labels, 3);
	CHECK_STR(h.labels[2], "id2");
	CHECK_EQ(h.shape[2], 5);
	CHECK_EQ(h.pixels, 20);
	char *same[3] = {"id0", "id1", "id2"}, *other[3] = {"id0", "x", "id2"};
	CHECK_EQ(bio_header_same_labels(&h, same, 3, "w", &err), 0);
	CHECK_EQ(bio_header_same_labels(&h, other, 3, "w", &err), BIO_EINVAL);
	CHECK_STR(err.msg, "w: label 1 is 'id1' where 'x' was expected: not the same label set");
	CHECK_EQ(bio_header_same_labels(&h, same, 2, "w", &err), BIO_EINVAL);
	bio_header_destroy(&h);
	bio_header_destroy(&h); /* twice: a no-op */
	bio_stream_reader_free(r);
	free(m.data);
}

TEST(bad_headers)
{
	struct membuf m;
	struct bio_error err = {0};
	int64_t l0[1] = {0};
	const char *twice[] = {"iris", "fingerprint", "iris", NULL};
	make_stream(&m, twice, 2, 4, 4, l0, 1, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 0, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bs: header meta 'modalities': 'iris' is listed twice (items 0 and 2)");
	free(m.data);
	const char *reserved[] = {"iris", "label", NULL};
	make_stream(&m, reserved, 2, 4, 4, l0, 1, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 0, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bs: header meta 'modalities': 'label' is a reserved record key");
	free(m.data);
	const char *empty[] = {"iris", "", NULL};
	make_stream(&m, empty, 2, 4, 4, l0, 1, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 0, &err), BIO_EFORMAT);
	free(m.data);
	make_stream(&m, NULL, 2, 4, 4, l0, 1, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 0, &err), 0); /* not needed */
	CHECK_EQ(check_stream(&m, BIO_HEADER_MODALITIES, 0, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bs: header meta has no 'modalities'");
	free(m.data);
	make_stream(&m, iris_fp, 0, 4, 4, l0, 1, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, BIO_HEADER_LABELS, 0, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bs: header meta has no 'labels'");
	free(m.data);
	make_stream(&m, iris_fp, 2, 70000, 4, l0, 1, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 0, &err), BIO_EFORMAT);
	free(m.data);
}

TEST(record_checks)
{
	struct membuf m;
	struct bio_error err = {0};
	int64_t labels[3] = {0, 1, 3};
	make_stream(&m, iris_fp, 3, 4, 4, labels, 3, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 0, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bs: record 2: key 'label': label 3 outside the 3 label names of the "
			   "header");
	free(m.data);
	int64_t unknown[2] = {0, -1};
	make_stream(&m, iris_fp, 3, 4, 4, unknown, 2, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 0, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bs: record 1: key 'label': label -1 is negative");
	CHECK_EQ(check_stream(&m, 0, 1, &err), 0);
	free(m.data);
	int64_t neg[1] = {-2};
	make_stream(&m, iris_fp, 3, 4, 4, neg, 1, 4, 4, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 1, &err), BIO_EFORMAT);
	free(m.data);
	int64_t ok[2] = {0, 1};
	make_stream(&m, iris_fp, 3, 4, 4, ok, 2, 4, 4, NAN);
	CHECK_EQ(check_stream(&m, 0, 0, &err), BIO_ENAN);
	CHECK_STR(err.msg, "s.bs: record 0: key 'iris': non-finite value nan at element 0");
	free(m.data);
	make_stream(&m, iris_fp, 3, 4, 4, ok, 2, 4, 5, 0.0f);
	CHECK_EQ(check_stream(&m, 0, 0, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bs: record 0: key 'iris': shape [1,4,5], expected [1,4,4] (header "
			   "shape)");
	free(m.data);
	/* a list of labels */
	make_stream(&m, iris_fp, 3, 4, 4, ok, 1, 4, 4, 0.0f);
	struct bio_stream_reader *r = bio_stream_reader_open_mem(m.data, m.len, "s.bs", NULL, &err);
	struct bio_header h;
	const struct bio_value *rec;
	CHECK_EQ(bio_header_read(&h, r, "samples", 0, &err), 0);
	CHECK_EQ(bio_stream_read_record(r, &rec, &err), 1);
	int64_t list[4] = {0, 2, 5, 1};
	CHECK_EQ(bio_record_check_labels(&h, r, "label", list, 2, 0, &err), 0);
	CHECK_EQ(bio_record_check_labels(&h, r, "label", list, 4, 0, &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.bs: record 0: key 'label': item 2: label 5 outside the 3 label names "
			   "of the header");
	bio_header_destroy(&h);
	bio_stream_reader_free(r);
	free(m.data);
}

TEST(crc32c_reference)
{
	CHECK_EQ(bio_crc32c(0, "123456789", 9), 0xE3069283u);
	CHECK_EQ(bio_crc32c(0, "", 0), 0);
	unsigned char zeros[32] = {0}, ones[32];
	memset(ones, 0xFF, sizeof ones);
	CHECK_EQ(bio_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
	CHECK_EQ(bio_crc32c(0, ones, 32), 0x62A8AB43u);
	/* incremental == one pass, at every split */
	const char *s = "The quick brown fox jumps over the lazy dog";
	uint32_t whole = bio_crc32c(0, s, strlen(s));
	for (size_t k = 0; k <= strlen(s); k++)
		CHECK_EQ(bio_crc32c(bio_crc32c(0, s, k), s + k, strlen(s) - k), whole);
}

int main(void)
{
	RUN(good_header_and_records);
	RUN(bad_headers);
	RUN(record_checks);
	RUN(crc32c_reference);
	return test_summary();
}
