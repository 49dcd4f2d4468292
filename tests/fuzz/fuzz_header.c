/* libFuzzer harness for the typed stream header (bio/header.h): reads a stream's header and
 * parses it needing every part, then runs each record through the checks a samples reader makes
 * (label against the names, every modality's sample tensor of the header's shape and finite).
 * Besides "no crash" under ASan/UBSan it asserts that what passes is what the checks promise:
 * distinct non-empty modalities, a label inside [0, n_labels), H x W finite values. Its corpus
 * tests/bad/header holds streams that lie in what readers pass on (bad_headers.py). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bio/header.h"
#include "bio/stream.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bio_error err = {0};
	struct bio_stream_reader *r = fuzz_reader_open(data, size, &err);
	struct bio_header h;
	int rc = bio_header_read(&h, r, NULL,
				 BIO_HEADER_LABELS | BIO_HEADER_MODALITIES | BIO_HEADER_SHAPE, &err);
	if (rc < 0) {
		BIO_ASSERT(err.code == rc && strncmp(err.msg, "fuzz: ", 6) == 0);
		bio_header_destroy(&h);
		bio_stream_reader_free(r);
		return 0;
	}
	BIO_ASSERT(h.n_mod >= 1 && h.labels && h.n_labels >= 1 && h.has_shape);
	for (int m = 0; m < h.n_mod; m++) {
		BIO_ASSERT(h.modalities[m][0]);
		for (int k = 0; k < m; k++)
			BIO_ASSERT(strcmp(h.modalities[k], h.modalities[m]) != 0);
	}
	const struct bio_value *rec;
	while ((rc = bio_stream_read_record(r, &rec, &err)) == 1) {
		int64_t label;
		if (bio_record_get_label(&label, &h, r, rec, "label", 0, &err) < 0) {
			BIO_ASSERT(strncmp(err.msg, "fuzz: record ", 13) == 0);
			continue;
		}
		BIO_ASSERT(label >= 0 && label < (int64_t)h.n_labels);
		for (int m = 0; m < h.n_mod; m++) {
			struct bio_tensor t;
			if (bio_record_get_sample(&t, &h, r, rec, h.modalities[m], 0, &err) < 0) {
				BIO_ASSERT(strncmp(err.msg, "fuzz: record ", 13) == 0);
				continue;
			}
			BIO_ASSERT(bio_tensor_numel(&t) == h.pixels);
			const float *p = t.data;
			for (size_t i = 0; i < h.pixels; i++)
				BIO_ASSERT(isfinite(p[i]));
		}
	}
	BIO_ASSERT(rc <= 0);
	bio_header_destroy(&h);
	bio_stream_reader_free(r);
	return 0;
}
