/* Deterministic random numbers for every stage that needs them (synthesis, splits, shuffling,
 * initialisation, dropout): xoshiro256** seeded through splitmix64, keyed streams so that results
 * never depend on the number of threads, unbiased bounded integers and shuffles. */
#include "bio/rng.h"

#include <math.h>
#include <string.h>

#include "bio/error.h"

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ull

uint64_t bio_rng_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t bio_splitmix64(uint64_t *state)
{
	*state += GOLDEN_GAMMA;
	return bio_rng_mix64(*state);
}

void bio_rng_seed(struct bio_rng *r, uint64_t seed)
{
	uint64_t sm = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = bio_splitmix64(&sm);
	/* Four consecutive splitmix64 outputs are distinct (the mixer is a bijection), so at most
	 * one is zero and the state is never all zero. */
}

void bio_rng_seed_keys(struct bio_rng *r, uint64_t seed, const uint64_t *keys, size_t n_keys)
{
	if (n_keys == 0) {
		bio_rng_seed(r, seed);
		return;
	}
	/* Fold each key with its position into a running hash, then the count, so that tuples
	 * differing in any key, in order or in length hash apart. */
	uint64_t h = bio_rng_mix64(seed + GOLDEN_GAMMA);
	for (size_t i = 0; i < n_keys; i++) {
		uint64_t k = bio_rng_mix64(keys[i] + (uint64_t)(i + 1) * 0xd1b54a32d192ed03ull);
		h = bio_rng_mix64(h ^ k) + GOLDEN_GAMMA;
	}
	h = bio_rng_mix64(h ^ ((uint64_t)n_keys * 0x8cb92ba72f3d8dd7ull));
	bio_rng_seed(r, h);
}

void bio_rng_seed1(struct bio_rng *r, uint64_t seed, uint64_t k0)
{
	bio_rng_seed_keys(r, seed, &k0, 1);
}

void bio_rng_seed2(struct bio_rng *r, uint64_t seed, uint64_t k0, uint64_t k1)
{
	uint64_t k[2] = {k0, k1};
	bio_rng_seed_keys(r, seed, k, 2);
}

void bio_rng_seed3(struct bio_rng *r, uint64_t seed, uint64_t k0, uint64_t k1, uint64_t k2)
{
	uint64_t k[3] = {k0, k1, k2};
	bio_rng_seed_keys(r, seed, k, 3);
}

int bio_rng_set_state(struct bio_rng *r, const uint64_t s[4])
{
	if ((s[0] | s[1] | s[2] | s[3]) == 0)
		return -1;
	memcpy(r->s, s, sizeof r->s);
	return 0;
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t bio_rng_next(struct bio_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint32_t bio_rng_u32(struct bio_rng *r)
{
	return (uint32_t)(bio_rng_next(r) >> 32);
}

/* Full 64x64 -> 128-bit product: high word returned, low word in *lo. */
static uint64_t mul_128(uint64_t a, uint64_t b, uint64_t *lo)
{
	uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
	uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
	uint64_t p0 = a_lo * b_lo, p1 = a_lo * b_hi, p2 = a_hi * b_lo, p3 = a_hi * b_hi;
	uint64_t mid = (p0 >> 32) + (p1 & 0xffffffffu) + (p2 & 0xffffffffu);
	*lo = (mid << 32) | (p0 & 0xffffffffu);
	return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

uint64_t bio_rng_below(struct bio_rng *r, uint64_t n)
{
	BIO_ASSERT(n > 0);
	uint64_t lo, hi = mul_128(bio_rng_next(r), n, &lo);
	if (lo < n) {
		uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
		while (lo < threshold)
			hi = mul_128(bio_rng_next(r), n, &lo);
	}
	return hi;
}

int64_t bio_rng_int(struct bio_rng *r, int64_t lo, int64_t hi)
{
	BIO_ASSERT(lo <= hi);
	uint64_t span = (uint64_t)hi - (uint64_t)lo;
	uint64_t v = span == UINT64_MAX ? bio_rng_next(r) : bio_rng_below(r, span + 1);
	return (int64_t)((uint64_t)lo + v);
}

double bio_rng_uniform(struct bio_rng *r)
{
	return (double)(bio_rng_next(r) >> 11) * 0x1.0p-53;
}

float bio_rng_uniform_f(struct bio_rng *r)
{
	return (float)(bio_rng_next(r) >> 40) * 0x1.0p-24f;
}

double bio_rng_range(struct bio_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * bio_rng_uniform(r);
}

int bio_rng_bernoulli(struct bio_rng *r, double p)
{
	return bio_rng_uniform(r) < p;
}

double bio_rng_normal(struct bio_rng *r)
{
	double u1 = 1.0 - bio_rng_uniform(r); /* (0, 1]: log is finite */
	double u2 = bio_rng_uniform(r);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void bio_rng_shuffle(struct bio_rng *r, void *base, size_t n, size_t elem_bytes)
{
	unsigned char *b = base;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)bio_rng_below(r, i);
		if (j == i - 1)
			continue;
		unsigned char *x = b + (i - 1) * elem_bytes, *y = b + j * elem_bytes;
		for (size_t k = 0; k < elem_bytes; k++) {
			unsigned char t = x[k];
			x[k] = y[k];
			y[k] = t;
		}
	}
}

void bio_rng_permutation(struct bio_rng *r, uint32_t *perm, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		perm[i] = i;
	bio_rng_shuffle(r, perm, n, sizeof *perm);
}

void bio_rng_jump(struct bio_rng *r)
{
	static const uint64_t jump[4] = {0x180ec6d33cfd0abaull, 0xd5a61266f0c9392cull,
					 0xa9582618e03fc9aaull, 0x39abdc4529b1661cull};
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 64; b++) {
			if (jump[i] & (1ull << b)) {
				s0 ^= r->s[0];
				s1 ^= r->s[1];
				s2 ^= r->s[2];
				s3 ^= r->s[3];
			}
			bio_rng_next(r);
		}
	r->s[0] = s0;
	r->s[1] = s1;
	r->s[2] = s2;
	r->s[3] = s3;
}
