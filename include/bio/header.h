/* Typed stream headers and the record checks that depend on them: one place where every reader
 * of samples, batches, predictions and checkpoint streams validates the header's modalities
 * (1..8 distinct non-empty names), label names (strings, 1..1000000) and sample shape ([1,H,W],
 * 1 <= H,W <= 65536), and where records are checked against it: labels inside [0, n_labels)
 * (or -1 where "unknown" is allowed), tensors of the header's shape, every value finite.
 * Messages name the source, the record index and the key: "<src>: record 7: key 'label': ...". */
#ifndef BIO_HEADER_H
#define BIO_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"
#include "bio/stream.h"
#include "bio/tensor.h"

#define BIO_HEADER_MAX_MODS 8
#define BIO_HEADER_MAX_LABELS 1000000

/* What a reader needs from the header (bio_header_parse fails when one is absent). */
enum {
	BIO_HEADER_LABELS = 1,     /* meta.labels */
	BIO_HEADER_MODALITIES = 2, /* meta.modalities */
	BIO_HEADER_SHAPE = 4,      /* meta.shape */
};

struct bio_header {
	const struct bio_value *meta; /* borrowed: valid for the reader's life */
	int n_mod;                    /* 0 when absent */
	char *modalities[BIO_HEADER_MAX_MODS];
	size_t n_labels;              /* 0 with labels == NULL when absent */
	char **labels;
	int has_shape;
	int64_t shape[3]; /* [1, H, W] */
	size_t pixels;    /* H * W */
};

/* Parses and checks meta (borrowed) into h (caller storage, zeroed here). `need` is a mask of
 * BIO_HEADER_*; what is present is checked even when not needed. source names the input. */
int bio_header_parse(struct bio_header *h, const struct bio_value *meta, const char *source,
		     unsigned need, struct bio_error *err);
/* Reads the stream header of kind (bio_stream_read_header) and parses it as above. */
int bio_header_read(struct bio_header *h, struct bio_stream_reader *r, const char *kind,
		    unsigned need, struct bio_error *err);
/* Frees what h holds (not h); safe on a zeroed or destroyed header. */
void bio_header_destroy(struct bio_header *h);

/* Index of modality name in the header, or -1. */
int bio_header_modality(const struct bio_header *h, const char *name);
/* 0 when a and b hold the same label names in the same order; else BIO_EINVAL with a message
 * "<what>: <cause>" naming the first difference. */
int bio_header_same_labels(const struct bio_header *a, char *const *labels, size_t n_labels,
			   const char *what, struct bio_error *err);

/* Reads integer key of rec (borrowed) as a label: inside [0, n_labels) of the header, or -1 when
 * allow_unknown. With no label names in the header only the lower bound is checked. */
int bio_record_get_label(int64_t *out, const struct bio_header *h, struct bio_stream_reader *r,
			 const struct bio_value *rec, const char *key, int allow_unknown,
			 struct bio_error *err);
/* Checks n labels (e.g. a batch's label tensor) as bio_record_get_label does. */
int bio_record_check_labels(const struct bio_header *h, struct bio_stream_reader *r,
			    const char *key, const int64_t *labels, size_t n, int allow_unknown,
			    struct bio_error *err);
/* Borrowed view of the f32 tensor `key` of rec with the header's sample shape: [1,H,W] when
 * n_batch is 0, [n_batch,1,H,W] otherwise; every value finite. */
int bio_record_get_sample(struct bio_tensor *out, const struct bio_header *h,
			  struct bio_stream_reader *r, const struct bio_value *rec, const char *key,
			  int64_t n_batch, struct bio_error *err);
/* Fails with BIO_ENAN naming rec's key and the element when an f32/f64 tensor holds a NaN or an
 * infinity (other dtypes pass). */
int bio_record_check_finite(const struct bio_tensor *t, struct bio_stream_reader *r,
			    const char *key, struct bio_error *err);

#endif
