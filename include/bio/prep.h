/* Sample preprocessing (decode -> gray -> resize -> normalise into a float tensor [1,S,S]) and
 * an ordered parallel map: items submitted in sequence are processed by a pool of threads and
 * collected in submission order, so output built from them is identical for every thread count.
 * At most `window` items are in flight, so memory does not grow with the number of items. */
#ifndef BIO_PREP_H
#define BIO_PREP_H

#include <stddef.h>
#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/image.h"

/* ---- ordered parallel map ---- */

/* Work function: processes the caller's item `slot` (results and errors go into the slot).
 * Called from worker threads with the map's ud and the worker's index in [0, n_threads) (0 when
 * running without threads), so per-worker scratch needs no locking; must not touch other
 * shared state without locking. */
typedef void (*bio_omap_fn)(void *ud, int worker, void *slot);

struct bio_omap;

/* New map with n_threads workers (n_threads <= 1: no threads, fn runs inside submit) and at
 * most window (>= 1) items in flight. Returns NULL with err set on failure. */
struct bio_omap *bio_omap_new(int n_threads, size_t window, bio_omap_fn fn, void *ud,
			      struct bio_error *err);
/* Waits for items in flight to finish, joins the threads, frees m (NULL is a no-op). Slots not
 * collected yet are simply dropped (they remain the caller's). */
void bio_omap_free(struct bio_omap *m);
/* Submits slot (borrowed until collected) as the next item. The caller must keep
 * bio_omap_in_flight(m) < window (collect first when full): a full map is a programmer error. */
void bio_omap_submit(struct bio_omap *m, void *slot);
/* Waits for the oldest item in flight and returns its slot, or NULL when none is in flight. */
void *bio_omap_collect(struct bio_omap *m);
/* Items submitted but not yet collected. */
size_t bio_omap_in_flight(const struct bio_omap *m);
/* The window given to bio_omap_new. */
size_t bio_omap_window(const struct bio_omap *m);

/* ---- sample preprocessing ---- */

struct bio_prep_params {
	uint32_t size;                 /* output side S (square) */
	enum bio_resize_filter filter; /* bilinear | area */
	float mean, std;               /* out = (x/255 - mean) / std */
	int quantize;                  /* 1: round resized pixels to 8-bit levels as PIL does */
	struct bio_image_limits limits;
};

/* Per-thread scratch of the preprocessing: a reused file buffer, cached resize plans (one per
 * input size met recently) and buffers, so a stream of same-sized images builds no tables and
 * allocates little. */
struct bio_prep_scratch;

/* New empty scratch, or NULL when out of memory. */
struct bio_prep_scratch *bio_prep_scratch_new(void);
/* Frees s (NULL is a no-op). */
void bio_prep_scratch_free(struct bio_prep_scratch *s);

/* Defaults: S 64, bilinear, mean 0.5, std 0.5, quantize 1, default image limits. */
void bio_prep_params_default(struct bio_prep_params *p);
/* Reads prep.size, prep.resize, prep.mean, prep.std, prep.quantize, prep.max_width and
 * prep.max_height from c (c borrowed); errors name the key and file:line. */
int bio_prep_params_from_config(struct bio_prep_params *p, const struct bio_config *c,
				struct bio_error *err);
/* Turns img (borrowed, 8-bit gray) into p->size * p->size normalised floats in out. s (borrowed,
 * one per thread) may be NULL: then the resize tables are built for this call alone. */
int bio_prep_image(float *out, const struct bio_image *img, const struct bio_prep_params *p,
		   struct bio_prep_scratch *s, struct bio_error *err);
/* Loads and decodes the file at path, then as bio_prep_image. Messages name the path. */
int bio_prep_file(float *out, const char *path, const struct bio_prep_params *p,
		  struct bio_prep_scratch *s, struct bio_error *err);

#endif
