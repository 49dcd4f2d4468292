/* Typed stream headers: the one parser of the meta keys that travel between stages (modalities,
 * labels, shape) and the record checks that depend on them (label ranges, sample shapes, finite
 * values), so every tool rejects the same bad input with the same message. */
#include "bio/header.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_modalities(struct bio_header *h, const struct bio_value *mods, const char *src,
			    struct bio_error *err)
{
	size_t n = bio_value_len(mods);
	if (bio_value_type(mods) != BIO_V_ARRAY || n < 1 || n > BIO_HEADER_MAX_MODS)
		return bio_error_set(err, BIO_EFORMAT,
				     "%s: header meta 'modalities': expected a list of 1 to %d names",
				     src, BIO_HEADER_MAX_MODS);
	for (size_t m = 0; m < n; m++) {
		const char *s;
		size_t len;
		if (bio_value_str(bio_value_at(mods, m), &s, &len) < 0 || len == 0 || len > 255 ||
		    memchr(s, 0, len))
			return bio_error_set(err, BIO_EFORMAT,
					     "%s: header meta 'modalities': item %zu is not a name",
					     src, m);
		static const char *const reserved[] = {"id", "label", "identity", "split", "end"};
		for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
			if (strlen(reserved[k]) == len && memcmp(reserved[k], s, len) == 0)
				return bio_error_set(err, BIO_EFORMAT,
						     "%s: header meta 'modalities': '%s' is a reserved "
						     "record key", src, reserved[k]);
		for (size_t k = 0; k < m; k++)
			if (strlen(h->modalities[k]) == len && memcmp(h->modalities[k], s, len) == 0)
				return bio_error_set(err, BIO_EFORMAT,
						     "%s: header meta 'modalities': '%s' is listed "
						     "twice (items %zu and %zu)",
						     src, h->modalities[k], k, m);
		if (!(h->modalities[m] = bio_value_strdup(bio_value_at(mods, m))))
			return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", src);
		h->n_mod = (int)m + 1;
	}
	return 0;
}

static int parse_labels(struct bio_header *h, const struct bio_value *labels, const char *src,
			struct bio_error *err)
{
	size_t n = bio_value_len(labels);
	if (bio_value_type(labels) != BIO_V_ARRAY || n < 1)
		return bio_error_set(err, BIO_EFORMAT,
				     "%s: header meta 'labels': expected a list of label names", src);
	if (n > BIO_HEADER_MAX_LABELS)
		return bio_error_set(err, BIO_ELIMIT,
				     "%s: header meta 'labels': %zu names exceed the limit of %d", src,
				     n, BIO_HEADER_MAX_LABELS);
	if (!(h->labels = calloc(n, sizeof *h->labels)))
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", src);
	h->n_labels = n;
	for (size_t i = 0; i < n; i++) {
		const struct bio_value *v = bio_value_at(labels, i);
		const char *s;
		size_t len;
		if (bio_value_str(v, &s, &len) < 0 || memchr(s, 0, len))
			return bio_error_set(err, BIO_EFORMAT,
					     "%s: header meta 'labels': item %zu is not a name", src, i);
		if (!(h->labels[i] = bio_value_strdup(v)))
			return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", src);
	}
	return 0;
}

static int parse_shape(struct bio_header *h, const struct bio_value *shape, const char *src,
		       struct bio_error *err)
{
	if (bio_value_type(shape) != BIO_V_ARRAY || bio_value_len(shape) != 3)
		return bio_error_set(err, BIO_EFORMAT, "%s: header meta 'shape': expected [1, H, W]",
				     src);
	for (int d = 0; d < 3; d++) {
		int64_t v;
		if (bio_value_int(bio_value_at(shape, (size_t)d), &v) < 0 || v < 1 || v > 65536 ||
		    (d == 0 && v != 1))
			return bio_error_set(err, BIO_EFORMAT,
					     "%s: header meta 'shape': expected [1, H, W] with H and "
					     "W in 1..65536",
					     src);
		h->shape[d] = v;
	}
	h->has_shape = 1;
	h->pixels = (size_t)h->shape[1] * (size_t)h->shape[2];
	return 0;
}

int bio_header_parse(struct bio_header *h, const struct bio_value *meta, const char *source,
		     unsigned need, struct bio_error *err)
{
	memset(h, 0, sizeof *h);
	h->meta = meta;
	static const struct {
		unsigned bit;
		const char *key;
		int (*parse)(struct bio_header *, const struct bio_value *, const char *,
			     struct bio_error *);
	} parts[] = {
		{BIO_HEADER_MODALITIES, "modalities", parse_modalities},
		{BIO_HEADER_LABELS, "labels", parse_labels},
		{BIO_HEADER_SHAPE, "shape", parse_shape},
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0] && rc == 0; i++) {
		const struct bio_value *v = bio_value_get(meta, parts[i].key);
		if (v)
			rc = parts[i].parse(h, v, source, err);
		else if (need & parts[i].bit)
			rc = bio_error_set(err, BIO_EFORMAT, "%s: header meta has no '%s'", source,
					   parts[i].key);
	}
	if (rc < 0)
		bio_header_destroy(h);
	return rc;
}

int bio_header_read(struct bio_header *h, struct bio_stream_reader *r, const char *kind,
		    unsigned need, struct bio_error *err)
{
	const struct bio_value *meta;
	memset(h, 0, sizeof *h);
	int rc = bio_stream_read_header(r, kind, &meta, err);
	if (rc < 0)
		return rc;
	return bio_header_parse(h, meta, bio_stream_reader_source(r), need, err);
}

void bio_header_destroy(struct bio_header *h)
{
	for (int m = 0; m < BIO_HEADER_MAX_MODS; m++)
		free(h->modalities[m]);
	if (h->labels)
		for (size_t i = 0; i < h->n_labels; i++)
			free(h->labels[i]);
	free(h->labels);
	memset(h, 0, sizeof *h);
}

int bio_header_modality(const struct bio_header *h, const char *name)
{
	for (int m = 0; m < h->n_mod; m++)
		if (strcmp(h->modalities[m], name) == 0)
			return m;
	return -1;
}

int bio_header_same_labels(const struct bio_header *a, char *const *labels, size_t n_labels,
			   const char *what, struct bio_error *err)
{
	if (a->n_labels != n_labels)
		return bio_error_set(err, BIO_EINVAL, "%s: %zu label names where %zu were expected: "
				     "not the same label set", what, a->n_labels, n_labels);
	for (size_t i = 0; i < n_labels; i++)
		if (strcmp(a->labels[i], labels[i]) != 0)
			return bio_error_set(err, BIO_EINVAL, "%s: label %zu is '%s' where '%s' was "
					     "expected: not the same label set", what, i,
					     a->labels[i], labels[i]);
	return 0;
}

/* item: the index in a list of labels, or -1 for a single one. */
static int check_label(const struct bio_header *h, struct bio_stream_reader *r, const char *key,
		       int64_t label, long long item, int allow_unknown, struct bio_error *err)
{
	char at[48] = "";
	if (item >= 0)
		snprintf(at, sizeof at, "item %lld: ", item);
	if (label == -1 && allow_unknown)
		return 0;
	if (label < 0)
		return bio_record_error(r, err, BIO_EFORMAT, key, "%slabel %" PRId64 " is negative%s", at,
			       label, allow_unknown ? " (only -1, unknown, is allowed)" : "");
	if (h->labels && label >= (int64_t)h->n_labels)
		return bio_record_error(r, err, BIO_EFORMAT, key,
			       "%slabel %" PRId64 " outside the %zu label names of the header", at,
			       label, h->n_labels);
	return 0;
}

int bio_record_get_label(int64_t *out, const struct bio_header *h, struct bio_stream_reader *r,
			 const struct bio_value *rec, const char *key, int allow_unknown,
			 struct bio_error *err)
{
	int rc = bio_record_get_int(out, r, rec, key, err);
	if (rc < 0)
		return rc;
	return check_label(h, r, key, *out, -1, allow_unknown, err);
}

int bio_record_check_labels(const struct bio_header *h, struct bio_stream_reader *r,
			    const char *key, const int64_t *labels, size_t n, int allow_unknown,
			    struct bio_error *err)
{
	for (size_t i = 0; i < n; i++) {
		int rc = check_label(h, r, key, labels[i], (long long)i, allow_unknown, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int bio_record_check_finite(const struct bio_tensor *t, struct bio_stream_reader *r,
			    const char *key, struct bio_error *err)
{
	size_t n = bio_tensor_numel(t);
	if (t->dtype == BIO_DTYPE_F32) {
		const float *p = t->data;
		for (size_t i = 0; i < n; i++)
			if (!isfinite(p[i]))
				return bio_record_error(r, err, BIO_ENAN, key, "non-finite value %g at element %zu",
					       (double)p[i], i);
	} else if (t->dtype == BIO_DTYPE_F64) {
		const double *p = t->data;
		for (size_t i = 0; i < n; i++)
			if (!isfinite(p[i]))
				return bio_record_error(r, err, BIO_ENAN, key, "non-finite value %g at element %zu",
					       p[i], i);
	}
	return 0;
}

int bio_record_get_sample(struct bio_tensor *out, const struct bio_header *h,
			  struct bio_stream_reader *r, const struct bio_value *rec, const char *key,
			  int64_t n_batch, struct bio_error *err)
{
	BIO_ASSERT(h->has_shape);
	int n_dims = n_batch > 0 ? 4 : 3;
	int rc = bio_record_get_tensor(out, r, rec, key, BIO_DTYPE_F32, n_dims, err);
	if (rc < 0)
		return rc;
	const int64_t *s = out->shape + (n_batch > 0);
	if ((n_batch > 0 && out->shape[0] != n_batch) ||
	    memcmp(s, h->shape, sizeof h->shape) != 0) {
		char got[96], want[96];
		if (n_batch > 0) {
			snprintf(got, sizeof got, "[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]",
				 out->shape[0], s[0], s[1], s[2]);
			snprintf(want, sizeof want, "[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]",
				 n_batch, h->shape[0], h->shape[1], h->shape[2]);
		} else {
			snprintf(got, sizeof got, "[%" PRId64 ",%" PRId64 ",%" PRId64 "]", s[0], s[1],
				 s[2]);
			snprintf(want, sizeof want, "[%" PRId64 ",%" PRId64 ",%" PRId64 "]",
				 h->shape[0], h->shape[1], h->shape[2]);
		}
		return bio_record_error(r, err, BIO_EFORMAT, key, "shape %s, expected %s (header shape)", got,
			       want);
	}
	return bio_record_check_finite(out, r, key, err);
}
