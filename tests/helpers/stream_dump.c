/* stream_dump: reads bio-streams with libbio and prints a summary, for the bats tests.
 *
 *   stream_dump [--kind K] [--reverse] [--max-object BYTES] [--copy OUT] FILE...  ("-" = stdin)
 *
 * Prints "kind K" (K as given by --kind, else "(any)": stream.h has no kind getter),
 * "meta KEY..." (the meta map's keys), one line per record
 * "record N: key=value ..." (ints and floats as numbers, strings quoted, tensors as
 * dtype[shape]#fnv1a64-of-data-bytes, arrays as [n], maps as {n}), then "end N" and any trailer
 * sums ("failed=F"). --reverse re-reads the records by their offsets (last first) after the
 * sequential pass and prints them again as "again N: ...". On any error: one line
 * "stream_dump: <message>" on stderr, exit 1. --copy OUT also writes the stream again with the
 * libbio writer (the header's meta, every record, tensors through bio_pack_tensor, the trailer
 * with the "failed" sum), so that a Python-written stream can be compared with its C copy. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bio/stream.h"

static uint64_t fnv1a64(const void *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= ((const uint8_t *)p)[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void print_value(const struct bio_value *v)
{
	int64_t i;
	double d;
	int b;
	const char *s;
	size_t len;
	struct bio_tensor t;
	switch (bio_value_type(v)) {
	case BIO_V_NIL: printf("nil"); break;
	case BIO_V_BOOL: bio_value_bool(v, &b); printf("%s", b ? "true" : "false"); break;
	case BIO_V_INT: bio_value_int(v, &i); printf("%" PRId64, i); break;
	case BIO_V_FLOAT: bio_value_double(v, &d); printf("%.9g", d); break;
	case BIO_V_STR:
		bio_value_str(v, &s, &len);
		printf("\"%.*s\"", (int)(len > 60 ? 60 : len), s);
		break;
	case BIO_V_BIN: printf("bin(%zu)", bio_value_len(v)); break;
	case BIO_V_ARRAY: printf("[%zu]", bio_value_len(v)); break;
	case BIO_V_MAP:
		if (bio_value_tensor(&t, v, "tensor", NULL) == 0) {
			printf("%s[", bio_dtype_name(t.dtype));
			for (int k = 0; k < t.n_dims; k++)
				printf("%s%" PRId64, k ? "," : "", t.shape[k]);
			printf("]#%016" PRIx64, fnv1a64(t.data, t.data_bytes));
		} else {
			printf("{%zu}", bio_value_len(v));
		}
		break;
	default: printf("other"); break;
	}
}

/* Prints a record; a map value with a "dtype" key must be a valid tensor, else exits 1. */
static void print_record(struct bio_stream_reader *r, const char *tag, uint64_t n,
			 const struct bio_value *rec)
{
	for (size_t k = 0; k < bio_value_len(rec); k++) {
		const char *key;
		size_t klen;
		const struct bio_value *v = bio_value_map_at(rec, k, &key, &klen);
		if (bio_value_type(v) == BIO_V_MAP && bio_value_get(v, "dtype")) {
			char name[256];
			snprintf(name, sizeof name, "%.*s", (int)klen, key);
			struct bio_tensor t;
			struct bio_error err = {0};
			if (bio_record_get_tensor(&t, r, rec, name, -1, 0, &err) != 0) {
				fflush(stdout);
				fprintf(stderr, "stream_dump: %s\n", err.msg);
				exit(1);
			}
		}
	}
	printf("%s %" PRIu64 ":", tag, n);
	for (size_t k = 0; k < bio_value_len(rec); k++) {
		const char *key;
		size_t klen;
		const struct bio_value *v = bio_value_map_at(rec, k, &key, &klen);
		printf(" %.*s=", (int)klen, key ? key : "?");
		print_value(v);
	}
	printf("\n");
}

/* Writes rec again: tensors through bio_pack_tensor, anything else through bio_pack_value. */
static void copy_record(struct bio_stream_writer *w, const struct bio_value *rec)
{
	bio_stream_begin_record(w);
	bio_pack_map(w, bio_value_len(rec));
	for (size_t k = 0; k < bio_value_len(rec); k++) {
		const char *key;
		size_t klen;
		const struct bio_value *v = bio_value_map_at(rec, k, &key, &klen);
		bio_pack_strn(w, key, klen);
		struct bio_tensor t;
		if (bio_value_tensor(&t, v, "tensor", NULL) == 0)
			bio_pack_tensor(w, &t);
		else
			bio_pack_value(w, v);
	}
}

int main(int argc, char **argv)
{
	const char *kind = NULL, *copy = NULL;
	FILE *copy_f = NULL;
	struct bio_stream_writer *w = NULL;
	int reverse = 0;
	struct bio_stream_limits lim;
	bio_stream_limits_default(&lim);
	int a = 1;
	for (; a < argc; a++) {
		if (strcmp(argv[a], "--kind") == 0 && a + 1 < argc) {
			kind = argv[++a];
		} else if (strcmp(argv[a], "--reverse") == 0) {
			reverse = 1;
		} else if (strcmp(argv[a], "--copy") == 0 && a + 1 < argc) {
			copy = argv[++a];
		} else if (strcmp(argv[a], "--max-object") == 0 && a + 1 < argc) {
			lim.max_object_bytes = strtoull(argv[++a], NULL, 10);
		} else {
			break;
		}
	}
	if (a >= argc) {
		fprintf(stderr, "usage: stream_dump [--kind K] [--reverse] [--max-object N] [--copy OUT] "
				"FILE...\n");
		return 2;
	}
	struct bio_error err = {0};
	struct bio_stream_reader *r =
		bio_stream_reader_open((const char *const *)argv + a, (size_t)(argc - a), &lim, &err);
	if (!r) {
		fprintf(stderr, "stream_dump: %s\n", err.msg);
		return 1;
	}
	const struct bio_value *meta, *rec;
	int rc = bio_stream_read_header(r, kind, &meta, &err);
	size_t n_pos = 0, cap_pos = 0;
	size_t *parts = NULL;
	uint64_t *offs = NULL;
	uint64_t n = 0;
	if (rc == 0) {
		printf("kind %s\nmeta", kind ? kind : "(any)");
		for (size_t k = 0; k < bio_value_len(meta); k++) {
			const char *key;
			size_t klen;
			bio_value_map_at(meta, k, &key, &klen);
			printf(" %.*s", (int)klen, key ? key : "?");
		}
		printf("\n");
		if (copy) {
			copy_f = fopen(copy, "wb");
			if (!copy_f) {
				perror(copy);
				return 1;
			}
			w = bio_stream_writer_new(copy_f, &err);
			bio_stream_begin_header(w, kind ? kind : "unknown");
			bio_pack_value(w, meta);
		}
		while ((rc = bio_stream_read_record(r, &rec, &err)) == 1) {
			print_record(r, "record", n++, rec);
			if (w)
				copy_record(w, rec);
			if (reverse) {
				if (n_pos == cap_pos) {
					cap_pos = cap_pos ? 2 * cap_pos : 64;
					parts = realloc(parts, cap_pos * sizeof *parts);
					offs = realloc(offs, cap_pos * sizeof *offs);
					if (!parts || !offs) {
						fprintf(stderr, "stream_dump: out of memory\n");
						return 1;
					}
				}
				if (bio_stream_reader_tell(r, &parts[n_pos], &offs[n_pos]) != 0) {
					fprintf(stderr, "stream_dump: %s: no random access\n",
						bio_stream_reader_source(r));
					return 1;
				}
				n_pos++;
			}
		}
	}
	if (rc < 0) {
		fprintf(stderr, "stream_dump: %s\n", err.msg);
		bio_stream_reader_free(r);
		return 1;
	}
	int64_t failed = bio_stream_reader_trailer_sum(r, "failed");
	printf("end %" PRIu64 " failed=%" PRId64 "\n", n, failed);
	if (w) {
		const char *keys[1] = {"failed"};
		if (bio_stream_finish(w, 1, keys, &failed, &err) != 0 || fclose(copy_f) != 0) {
			fprintf(stderr, "stream_dump: %s: %s\n", copy, err.msg);
			return 1;
		}
		bio_stream_writer_free(w);
	}
	for (size_t k = n_pos; k-- > 0;) {
		if (bio_stream_read_record_at(r, parts[k], offs[k], &rec, &err) != 1) {
			fprintf(stderr, "stream_dump: %s\n", err.msg);
			return 1;
		}
		print_record(r, "again", k, rec);
	}
	free(parts);
	free(offs);
	bio_stream_reader_free(r);
	if (fclose(stdout) != 0) {
		perror("stream_dump: stdout");
		return 1;
	}
	return 0;
}
