/* A bio-stream as JSON lines (bio-dump's engine; JSON from jansson): one JSON object per msgpack
 * object, the header, each record, the trailer. Tensors are summarised (dtype, shape, min, max,
 * mean, count of non-finite values; with full also their values), bin values by their length
 * (full: hex), non-finite numbers as null, invalid UTF-8 as U+FFFD. Each tensor map is checked as
 * every reader checks one, so converting every record validates the stream. */
#ifndef BIO_DUMP_H
#define BIO_DUMP_H

#include <stdint.h>
#include <stdio.h>

#include "bio/error.h"
#include "bio/stream.h"

/* Where the lines go and what they show (all borrowed). */
struct bio_dump {
	struct bio_stream_reader *r; /* the stream read; names it in messages */
	FILE *out;                   /* the lines */
	const char *out_name;        /* out in messages ("<stdout>") */
	int full;                    /* tensors with their values ("data"), bin values as hex */
};

/* Writes the header line {"bio-stream": 1, "kind", "meta"} of meta (borrowed). */
int bio_dump_header(const struct bio_dump *d, const struct bio_value *meta,
		    struct bio_error *err);
/* Converts record rec (borrowed), the n-th (0-based), checking it; writes its line when write
 * is 1. Fails on a bad tensor or map key, naming the stream and the record. */
int bio_dump_record(const struct bio_dump *d, const struct bio_value *rec, uint64_t n,
		    int write, struct bio_error *err);
/* Writes the trailer line {"end": n_records[, "failed": N]} (failed summed over the inputs). */
int bio_dump_trailer(const struct bio_dump *d, uint64_t n_records, struct bio_error *err);

#endif
