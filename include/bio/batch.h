/* Epoch order and batch arithmetic for bio-batch: the order of an epoch depends only on (seed,
 * epoch), never on earlier epochs, so a run started at epoch k yields exactly the orders an
 * uninterrupted run would have had from epoch k on. */
#ifndef BIO_BATCH_H
#define BIO_BATCH_H

#include <stdint.h>

/* Number of batches in an epoch of n_samples: ceil(n / batch_size), or floor with drop_last. */
uint64_t bio_batch_count(uint64_t n_samples, uint64_t batch_size, int drop_last);
/* Fills perm[0..n) (caller buffer) with the sample order of `epoch`: a Fisher-Yates permutation
 * drawn from the RNG stream keyed by (seed, "batch", epoch). */
void bio_batch_epoch_order(uint32_t *perm, uint32_t n, uint64_t seed, uint64_t epoch);

#endif
