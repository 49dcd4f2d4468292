/* Tensors: a dtype, a shape and a flat little-endian row-major data block, as carried in
 * bio-streams ({"dtype", "shape", "data"}). Also f16 <-> f32 conversion. */
#ifndef BIO_TENSOR_H
#define BIO_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"

enum bio_dtype {
	BIO_DTYPE_U8,
	BIO_DTYPE_I32,
	BIO_DTYPE_I64,
	BIO_DTYPE_F16,
	BIO_DTYPE_F32,
	BIO_DTYPE_F64,
};

#define BIO_TENSOR_MAX_DIMS 8

struct bio_tensor {
	enum bio_dtype dtype;
	int n_dims;
	int64_t shape[BIO_TENSOR_MAX_DIMS];
	void *data;        /* n_elems * itemsize bytes */
	size_t data_bytes;
	int owns_data;     /* 1: bio_tensor_destroy frees data; 0: a borrowed view */
};

/* Bytes per element of dtype. */
size_t bio_dtype_size(enum bio_dtype dtype);
/* Stream name of dtype: "u8", "i32", "i64", "f16", "f32", "f64". */
const char *bio_dtype_name(enum bio_dtype dtype);
/* Parses a stream dtype name of len bytes into *out; BIO_EFORMAT when unknown. */
int bio_dtype_parse(enum bio_dtype *out, const char *name, size_t len);

/* Number of elements of shape[0..n_dims) into *out, overflow-checked (BIO_ELIMIT). */
int bio_shape_numel(size_t *out, int n_dims, const int64_t *shape, struct bio_error *err);

/* Allocates a zeroed tensor of the given dtype and shape (caller-owned storage t). */
int bio_tensor_init(struct bio_tensor *t, enum bio_dtype dtype, int n_dims, const int64_t *shape,
		    struct bio_error *err);
/* Makes t a borrowed view of data (no copy, not freed by destroy). */
void bio_tensor_view(struct bio_tensor *t, enum bio_dtype dtype, int n_dims, const int64_t *shape,
		     void *data);
/* Frees t's data when owned; t may be zeroed or already destroyed. */
void bio_tensor_destroy(struct bio_tensor *t);
/* Number of elements (product of the shape). */
size_t bio_tensor_numel(const struct bio_tensor *t);

/* IEEE 754 half <-> single conversion, round to nearest even. */
uint16_t bio_f32_to_f16(float f);
float bio_f16_to_f32(uint16_t h);

#endif
