/* Deterministic pseudo-random numbers: xoshiro256** (Blackman and Vigna) with explicit,
 * caller-owned state, seeded through splitmix64. Independent streams are derived from a master
 * seed and a tuple of keys (e.g. seed, subject, sample or seed, epoch), so work split over any
 * number of threads draws exactly the numbers a single thread would. The whole state is the four
 * words of struct bio_rng: copy them to save or restore a generator (checkpoints). Results are
 * identical on every platform for the integer functions; the floating-point ones use only
 * exactly rounded operations except bio_rng_normal, which calls log, sqrt and cos from libm. */
#ifndef BIO_RNG_H
#define BIO_RNG_H

#include <stddef.h>
#include <stdint.h>

struct bio_rng {
	uint64_t s[4]; /* never all zero */
};

/* One splitmix64 step: advances *state by the golden gamma and returns the mixed value. */
uint64_t bio_splitmix64(uint64_t *state);
/* Stateless 64-bit mixer (splitmix64's finaliser, a bijection): for hashing keys. */
uint64_t bio_rng_mix64(uint64_t x);

/* Seeds r from one 64-bit seed (state filled by four splitmix64 steps, Vigna's recipe). */
void bio_rng_seed(struct bio_rng *r, uint64_t seed);
/* Seeds r for the stream named by seed and keys[0..n_keys): different key tuples (including
 * tuples of different lengths, and keys in a different order) give unrelated streams.
 * keys may be NULL when n_keys is 0, which gives the same stream as bio_rng_seed(seed). */
void bio_rng_seed_keys(struct bio_rng *r, uint64_t seed, const uint64_t *keys, size_t n_keys);
/* Convenience forms of bio_rng_seed_keys with one, two or three keys. */
void bio_rng_seed1(struct bio_rng *r, uint64_t seed, uint64_t k0);
void bio_rng_seed2(struct bio_rng *r, uint64_t seed, uint64_t k0, uint64_t k1);
void bio_rng_seed3(struct bio_rng *r, uint64_t seed, uint64_t k0, uint64_t k1, uint64_t k2);
/* Sets the raw state (for restoring a checkpoint); returns 0, or -1 (r unchanged) when s is all
 * zero, the one state xoshiro256** cannot use. */
int bio_rng_set_state(struct bio_rng *r, const uint64_t s[4]);

/* Next 64 random bits. */
uint64_t bio_rng_next(struct bio_rng *r);
/* Next 32 random bits (the high half of bio_rng_next). */
uint32_t bio_rng_u32(struct bio_rng *r);
/* Uniform integer in [0, n), without bias (Lemire's multiply-and-reject); n must be > 0. */
uint64_t bio_rng_below(struct bio_rng *r, uint64_t n);
/* Uniform integer in [lo, hi] (inclusive; lo <= hi). */
int64_t bio_rng_int(struct bio_rng *r, int64_t lo, int64_t hi);
/* Uniform double in [0, 1) with 53 random bits. */
double bio_rng_uniform(struct bio_rng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float bio_rng_uniform_f(struct bio_rng *r);
/* Uniform double in [lo, hi). */
double bio_rng_range(struct bio_rng *r, double lo, double hi);
/* 1 with probability p (p <= 0: never, p >= 1: always), else 0. */
int bio_rng_bernoulli(struct bio_rng *r, double p);
/* Standard normal deviate (Box-Muller, one value per call: consumes exactly two draws). */
double bio_rng_normal(struct bio_rng *r);

/* Fisher-Yates shuffle of n elements of elem_bytes each at base, in place (uniform over all
 * permutations; draws n-1 numbers). */
void bio_rng_shuffle(struct bio_rng *r, void *base, size_t n, size_t elem_bytes);
/* Fills perm[0..n) with a uniform random permutation of 0..n-1. */
void bio_rng_permutation(struct bio_rng *r, uint32_t *perm, uint32_t n);

/* Advances r by 2^128 steps: calling it k times on copies of one generator gives 2^128
 * non-overlapping subsequences. */
void bio_rng_jump(struct bio_rng *r);

#endif
