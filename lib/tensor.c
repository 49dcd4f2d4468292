/* Tensors: dtype names and sizes, overflow-checked shapes, allocation, f16 conversion. */
#include "bio/tensor.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[BIO_DTYPE_U8] = {"u8", 1},   [BIO_DTYPE_I32] = {"i32", 4}, [BIO_DTYPE_I64] = {"i64", 8},
	[BIO_DTYPE_F16] = {"f16", 2}, [BIO_DTYPE_F32] = {"f32", 4}, [BIO_DTYPE_F64] = {"f64", 8},
};

size_t bio_dtype_size(enum bio_dtype dtype)
{
	BIO_ASSERT((unsigned)dtype <= BIO_DTYPE_F64);
	return dtypes[dtype].size;
}

const char *bio_dtype_name(enum bio_dtype dtype)
{
	BIO_ASSERT((unsigned)dtype <= BIO_DTYPE_F64);
	return dtypes[dtype].name;
}

int bio_dtype_parse(enum bio_dtype *out, const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
		if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0) {
			*out = (enum bio_dtype)i;
			return 0;
		}
	}
	return BIO_EFORMAT;
}

int bio_shape_numel(size_t *out, int n_dims, const int64_t *shape, struct bio_error *err)
{
	if (n_dims < 0 || n_dims > BIO_TENSOR_MAX_DIMS)
		return bio_error_set(err, BIO_ELIMIT, "tensor rank %d outside 0..%d", n_dims,
				     BIO_TENSOR_MAX_DIMS);
	size_t n = 1;
	for (int i = 0; i < n_dims; i++) {
		if (shape[i] < 0)
			return bio_error_set(err, BIO_EFORMAT, "negative tensor dimension %lld",
					     (long long)shape[i]);
		if (shape[i] != 0 && n > SIZE_MAX / (uint64_t)shape[i])
			return bio_error_set(err, BIO_ELIMIT, "tensor shape overflows size_t");
		n *= (size_t)shape[i];
	}
	*out = n;
	return 0;
}

int bio_tensor_init(struct bio_tensor *t, enum bio_dtype dtype, int n_dims, const int64_t *shape,
		    struct bio_error *err)
{
	size_t n;
	memset(t, 0, sizeof *t);
	int rc = bio_shape_numel(&n, n_dims, shape, err);
	if (rc)
		return rc;
	size_t item = bio_dtype_size(dtype);
	if (n > SIZE_MAX / item)
		return bio_error_set(err, BIO_ELIMIT, "tensor size overflows size_t");
	t->dtype = dtype;
	t->n_dims = n_dims;
	for (int i = 0; i < n_dims; i++)
		t->shape[i] = shape[i];
	t->data_bytes = n * item;
	t->data = calloc(t->data_bytes ? t->data_bytes : 1, 1);
	if (!t->data)
		return bio_error_set(err, BIO_ENOMEM, "out of memory allocating %zu tensor bytes",
				     t->data_bytes);
	t->owns_data = 1;
	return 0;
}

void bio_tensor_view(struct bio_tensor *t, enum bio_dtype dtype, int n_dims, const int64_t *shape,
		     void *data)
{
	BIO_ASSERT(n_dims >= 0 && n_dims <= BIO_TENSOR_MAX_DIMS);
	memset(t, 0, sizeof *t);
	t->dtype = dtype;
	t->n_dims = n_dims;
	size_t n = 1;
	for (int i = 0; i < n_dims; i++) {
		t->shape[i] = shape[i];
		n *= (size_t)shape[i];
	}
	t->data = data;
	t->data_bytes = n * bio_dtype_size(dtype);
	t->owns_data = 0;
}

void bio_tensor_destroy(struct bio_tensor *t)
{
	if (!t)
		return;
	if (t->owns_data)
		free(t->data);
	t->data = NULL;
	t->data_bytes = 0;
	t->owns_data = 0;
}

size_t bio_tensor_numel(const struct bio_tensor *t)
{
	size_t n = 1;
	for (int i = 0; i < t->n_dims; i++)
		n *= (size_t)t->shape[i];
	return n;
}

uint16_t bio_f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t exp = (x >> 23) & 0xffu;
	uint32_t man = x & 0x7fffffu;
	if (exp == 0xff) /* inf or nan (keep a quiet nan payload bit) */
		return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
	int e = (int)exp - 127 + 15;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00u);
	if (e <= 0) { /* subnormal half or zero */
		if (e < -10)
			return (uint16_t)sign;
		man |= 0x800000u;
		int shift = 14 - e;
		uint32_t half = man >> shift;
		uint32_t rem = man & ((1u << shift) - 1);
		uint32_t mid = 1u << (shift - 1);
		if (rem > mid || (rem == mid && (half & 1)))
			half++;
		return (uint16_t)(sign | half);
	}
	uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
	uint32_t rem = man & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
		half++; /* may carry into the exponent, giving inf correctly */
	return (uint16_t)half;
}

float bio_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;
	uint32_t x;
	if (exp == 0) {
		if (man == 0) {
			x = sign;
		} else { /* subnormal: normalise */
			int e = -1;
			do {
				man <<= 1;
				e++;
			} while (!(man & 0x400u));
			x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
		}
	} else if (exp == 31) {
		x = sign | 0x7f800000u | (man << 13);
	} else {
		x = sign | ((exp + 127 - 15) << 23) | (man << 13);
	}
	float f;
	memcpy(&f, &x, 4);
	return f;
}
