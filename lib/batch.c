/* Epoch orders for bio-batch: one independent RNG stream per (seed, epoch), so resuming at any
 * epoch reproduces the uninterrupted run's orders without replaying earlier epochs. */
#include "bio/batch.h"

#include "bio/rng.h"

/* Domain key: keeps these streams apart from other users of the same seed value ("batch"). */
#define BATCH_STREAM_KEY 0x6261746368ull

uint64_t bio_batch_count(uint64_t n_samples, uint64_t batch_size, int drop_last)
{
	if (batch_size == 0)
		return 0;
	return drop_last ? n_samples / batch_size : n_samples / batch_size + !!(n_samples % batch_size);
}

void bio_batch_epoch_order(uint32_t *perm, uint32_t n, uint64_t seed, uint64_t epoch)
{
	struct bio_rng r;
	bio_rng_seed2(&r, seed, BATCH_STREAM_KEY, epoch);
	bio_rng_permutation(&r, perm, n);
}
