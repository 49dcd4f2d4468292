/* Unit tests for lib/rng.c: reference outputs of splitmix64 and xoshiro256** (including jump),
 * keyed stream derivation, bounded integers without bias, distributions, shuffles and state
 * save/restore. Reference numbers: splitmix64 from the published seed-1234567 sequence; xoshiro256**
 * from the reference C code's state {1,2,3,4}, cross-checked with an independent Python model. */
#include <stdint.h>

#include "bio/rng.h"
#include "test.h"

TEST(splitmix64_reference)
{
	static const uint64_t want[5] = {6457827717110365317ull, 3203168211198807973ull,
					 9817491932198370423ull, 4593380528125082431ull,
					 16408922859458223821ull};
	uint64_t s = 1234567;
	for (int i = 0; i < 5; i++)
		CHECK(bio_splitmix64(&s) == want[i]);
}

/* The next n outputs of r are want[0..n). */
static void check_next(struct bio_rng *r, const uint64_t *want, int n)
{
	for (int i = 0; i < n; i++)
		CHECK(bio_rng_next(r) == want[i]);
}

TEST(xoshiro_reference)
{
	static const uint64_t want[6] = {11520ull, 0ull, 1509978240ull, 1215971899390074240ull,
					 1216172134540287360ull, 607988272756665600ull};
	struct bio_rng r;
	const uint64_t st[4] = {1, 2, 3, 4};
	CHECK_EQ(bio_rng_set_state(&r, st), 0);
	check_next(&r, want, 6);
}

TEST(seed_reference)
{
	static const uint64_t want[4] = {1546998764402558742ull, 6990951692964543102ull,
					 12544586762248559009ull, 17057574109182124193ull};
	struct bio_rng r;
	bio_rng_seed(&r, 42);
	check_next(&r, want, 4);
}

TEST(jump_reference)
{
	static const uint64_t want[4] = {10122426448480695249ull, 8079205330032121950ull,
					 7289065458748526725ull, 9477464255293849680ull};
	struct bio_rng r;
	const uint64_t st[4] = {1, 2, 3, 4};
	bio_rng_set_state(&r, st);
	bio_rng_jump(&r);
	for (int i = 0; i < 4; i++)
		CHECK(r.s[i] == want[i]);
	CHECK(bio_rng_next(&r) == 13534147089533256664ull);
}

TEST(state_roundtrip)
{
	struct bio_rng a, b;
	bio_rng_seed(&a, 7);
	for (int i = 0; i < 10; i++)
		bio_rng_next(&a);
	uint64_t saved[4] = {a.s[0], a.s[1], a.s[2], a.s[3]};
	uint64_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = bio_rng_next(&a);
	CHECK_EQ(bio_rng_set_state(&b, saved), 0);
	check_next(&b, x, 8);
	const uint64_t zero[4] = {0, 0, 0, 0};
	uint64_t before = b.s[0];
	CHECK_EQ(bio_rng_set_state(&b, zero), -1);
	CHECK(b.s[0] == before);
}

static int popcount64(uint64_t x)
{
	int n = 0;
	for (; x; x &= x - 1)
		n++;
	return n;
}

TEST(keyed_streams)
{
	struct bio_rng a, b;
	/* No keys: the plain seed. */
	bio_rng_seed(&a, 99);
	bio_rng_seed_keys(&b, 99, NULL, 0);
	CHECK(bio_rng_next(&a) == bio_rng_next(&b));
	/* Same tuple: same stream; convenience forms equal the array form. */
	uint64_t k3[3] = {5, 6, 7};
	bio_rng_seed3(&a, 99, 5, 6, 7);
	bio_rng_seed_keys(&b, 99, k3, 3);
	for (int i = 0; i < 4; i++)
		CHECK(bio_rng_next(&a) == bio_rng_next(&b));
	/* Order, length, seed and each key matter. */
	uint64_t first[6];
	bio_rng_seed2(&a, 99, 5, 6);
	first[0] = bio_rng_next(&a);
	bio_rng_seed2(&a, 99, 6, 5);
	first[1] = bio_rng_next(&a);
	bio_rng_seed1(&a, 99, 5);
	first[2] = bio_rng_next(&a);
	bio_rng_seed3(&a, 99, 5, 6, 0);
	first[3] = bio_rng_next(&a);
	bio_rng_seed2(&a, 98, 5, 6);
	first[4] = bio_rng_next(&a);
	bio_rng_seed(&a, 99);
	first[5] = bio_rng_next(&a);
	for (int i = 0; i < 6; i++)
		for (int j = i + 1; j < 6; j++)
			CHECK(first[i] != first[j]);
	/* Neighbouring keys give unrelated streams: the first outputs of streams k and k+1 differ
	 * in about half their bits, and their low bits are balanced. */
	long bits = 0, ones = 0;
	const int n = 4000;
	for (int k = 0; k < n; k++) {
		bio_rng_seed2(&a, 1, 0, (uint64_t)k);
		bio_rng_seed2(&b, 1, 0, (uint64_t)k + 1);
		uint64_t x = bio_rng_next(&a);
		bits += popcount64(x ^ bio_rng_next(&b));
		ones += (long)(x & 1);
	}
	CHECK_NEAR((double)bits / n, 32.0, 0.5);
	CHECK_NEAR((double)ones / n, 0.5, 0.04);
}

/* Chi-square statistic of counts against a uniform expectation. */
static double chi_square(const long *counts, int k, long total)
{
	double e = (double)total / k, x = 0;
	for (int i = 0; i < k; i++)
		x += ((double)counts[i] - e) * ((double)counts[i] - e) / e;
	return x;
}

TEST(below_uniform)
{
	struct bio_rng r;
	bio_rng_seed(&r, 2024);
	long counts[10] = {0};
	const long n = 200000;
	int out_of_range = 0;
	for (long i = 0; i < n; i++) {
		uint64_t v = bio_rng_below(&r, 10);
		if (v >= 10)
			out_of_range++;
		else
			counts[v]++;
	}
	CHECK_EQ(out_of_range, 0);
	/* 9 degrees of freedom: p = 0.001 at 27.9. */
	CHECK(chi_square(counts, 10, n) < 27.9);
	for (int i = 0; i < 100; i++)
		CHECK(bio_rng_below(&r, 1) == 0);
	/* A bound near 2^64 (rejection is frequent there) stays in range. */
	const uint64_t big = (1ull << 63) + 12345;
	for (int i = 0; i < 1000; i++)
		CHECK(bio_rng_below(&r, big) < big);
	/* A bound of 3 * 2^62 would be visibly biased by a plain modulo: the lower third of the
	 * range would get half the draws instead of a third. */
	const uint64_t three = 3ull << 62;
	long low = 0;
	for (int i = 0; i < 30000; i++)
		low += bio_rng_below(&r, three) < (1ull << 62);
	CHECK_NEAR((double)low / 30000, 1.0 / 3, 0.02);
}

TEST(int_range)
{
	struct bio_rng r;
	bio_rng_seed(&r, 3);
	int seen[7] = {0};
	for (int i = 0; i < 2000; i++) {
		int64_t v = bio_rng_int(&r, -3, 3);
		CHECK(v >= -3 && v <= 3);
		if (v >= -3 && v <= 3)
			seen[v + 3] = 1;
	}
	for (int i = 0; i < 7; i++)
		CHECK(seen[i]);
	CHECK(bio_rng_int(&r, 5, 5) == 5);
	/* The full int64 range does not overflow. */
	int neg = 0;
	for (int i = 0; i < 1000; i++)
		neg += bio_rng_int(&r, INT64_MIN, INT64_MAX) < 0;
	CHECK(neg > 400 && neg < 600);
}

TEST(uniform_and_normal)
{
	struct bio_rng r;
	bio_rng_seed(&r, 11);
	const int n = 200000;
	double sum = 0, sumf = 0, mn = 1, mx = 0;
	for (int i = 0; i < n; i++) {
		double u = bio_rng_uniform(&r);
		float f = bio_rng_uniform_f(&r);
		CHECK(u >= 0 && u < 1);
		CHECK(f >= 0 && f < 1);
		sum += u;
		sumf += f;
		mn = u < mn ? u : mn;
		mx = u > mx ? u : mx;
	}
	CHECK_NEAR(sum / n, 0.5, 0.003);
	CHECK_NEAR(sumf / n, 0.5, 0.003);
	CHECK(mn < 1e-4 && mx > 1 - 1e-4);
	double s1 = 0, s2 = 0, s4 = 0;
	for (int i = 0; i < n; i++) {
		double z = bio_rng_normal(&r);
		CHECK(isfinite(z));
		s1 += z;
		s2 += z * z;
		s4 += z * z * z * z;
	}
	CHECK_NEAR(s1 / n, 0.0, 0.01);
	CHECK_NEAR(s2 / n, 1.0, 0.015);
	CHECK_NEAR(s4 / n, 3.0, 0.1); /* kurtosis of a normal */
	for (int i = 0; i < 50; i++)
		CHECK(bio_rng_range(&r, -2.0, -1.0) >= -2.0);
	int hits = 0;
	for (int i = 0; i < 10000; i++) {
		CHECK(bio_rng_bernoulli(&r, 0.0) == 0);
		CHECK(bio_rng_bernoulli(&r, 1.0) == 1);
		hits += bio_rng_bernoulli(&r, 0.25);
	}
	CHECK_NEAR(hits / 10000.0, 0.25, 0.02);
}

TEST(shuffle_uniform)
{
	struct bio_rng r;
	bio_rng_seed(&r, 5);
	/* All 6 orders of 3 elements equally often (5 dof: p = 0.001 at 20.5). */
	long counts[6] = {0};
	const long n = 60000;
	for (long i = 0; i < n; i++) {
		int a[3] = {0, 1, 2};
		bio_rng_shuffle(&r, a, 3, sizeof a[0]);
		counts[a[0] * 2 + (a[1] > a[2])]++;
	}
	CHECK(chi_square(counts, 6, n) < 20.5);
	/* A permutation contains every index once; the same seed gives the same permutation. */
	uint32_t p[1000], q[1000];
	int seen[1000] = {0};
	bio_rng_seed(&r, 8);
	bio_rng_permutation(&r, p, 1000);
	for (int i = 0; i < 1000; i++)
		if (p[i] < 1000)
			seen[p[i]]++;
	int ok = 1, moved = 0;
	for (int i = 0; i < 1000; i++) {
		ok &= seen[i] == 1;
		moved += p[i] != (uint32_t)i;
	}
	CHECK(ok);
	CHECK(moved > 900);
	bio_rng_seed(&r, 8);
	bio_rng_permutation(&r, q, 1000);
	CHECK(memcmp(p, q, sizeof p) == 0);
	/* Wide elements move whole. */
	struct {
		uint64_t a, b;
	} w[50];
	for (int i = 0; i < 50; i++)
		w[i].a = w[i].b = (uint64_t)i;
	bio_rng_shuffle(&r, w, 50, sizeof w[0]);
	int whole = 1;
	for (int i = 0; i < 50; i++)
		whole &= w[i].a == w[i].b;
	CHECK(whole);
	bio_rng_shuffle(&r, w, 0, sizeof w[0]); /* empty: no-op */
}

int main(void)
{
	RUN(splitmix64_reference);
	RUN(xoshiro_reference);
	RUN(seed_reference);
	RUN(jump_reference);
	RUN(state_roundtrip);
	RUN(keyed_streams);
	RUN(below_uniform);
	RUN(int_range);
	RUN(uniform_and_normal);
	RUN(shuffle_uniform);
	return test_summary();
}
