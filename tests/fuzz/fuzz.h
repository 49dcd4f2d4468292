/* What the stream harnesses share: a reader over the fuzz input with limits lowered (1 MiB
 * objects and tensors, 65536 items) so that one input cannot make a run slow or large. */
#ifndef BIO_FUZZ_H
#define BIO_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "bio/stream.h"

/* A reader named "fuzz" over data (borrowed; it must outlive the reader); never NULL. */
static inline struct bio_stream_reader *fuzz_reader_open(const uint8_t *data, size_t size,
							 struct bio_error *err)
{
	struct bio_stream_limits lim;
	bio_stream_limits_default(&lim);
	lim.max_object_bytes = 1 << 20;
	lim.max_tensor_bytes = 1 << 20;
	lim.max_items = 1 << 16;
	struct bio_stream_reader *r = bio_stream_reader_open_mem(data, size, "fuzz", &lim, err);
	BIO_ASSERT(r != NULL);
	return r;
}

#endif
