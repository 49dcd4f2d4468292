/* SHA-256 (FIPS 180-4): one-shot to hex, and incremental. Used for config digests and
 * checksums. */
#ifndef BIO_SHA256_H
#define BIO_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of len bytes, as lowercase hex (65 bytes with NUL). */
void bio_sha256_hex(char out_hex[65], const void *data, size_t len);

/* Incremental SHA-256 (caller-owned state): init, update any number of times, then final. */
struct bio_sha256 {
	uint32_t h[8];
	uint64_t n_bytes;
	unsigned char buf[64];
	size_t n_buf;
};
void bio_sha256_init(struct bio_sha256 *s);
void bio_sha256_update(struct bio_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest (or 64 hex chars + NUL); s must be re-initialised before reuse. */
void bio_sha256_final(unsigned char out[32], struct bio_sha256 *s);
void bio_sha256_final_hex(char out_hex[65], struct bio_sha256 *s);

#endif
