/* Synthetic biometric images for demos, tests and benchmarks: iris images (pupil, textured
 * annulus, eyelids, eyelashes, highlight) and fingerprints (ridge flow from an orientation field
 * with cores and deltas, grown by oriented filtering). An identity is (subject, side) for irises
 * and (subject, side, finger) for fingerprints; its model is built once from the seed and reused
 * for every sample; each sample then draws its own capture conditions (pose, pupil dilation,
 * eyelid opening, pressure, contact, distortion, blur, noise) from a stream keyed by the sample
 * number. Everything is a pure function of (params, identity, sample): the same arguments give the
 * same pixels in any thread and any order. No I/O. */
#ifndef BIO_SYNTH_H
#define BIO_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"

enum bio_synth_side { BIO_SYNTH_LEFT = 0, BIO_SYNTH_RIGHT = 1 };

enum bio_synth_finger {
	BIO_SYNTH_THUMB,
	BIO_SYNTH_INDEX,
	BIO_SYNTH_MIDDLE,
	BIO_SYNTH_RING,
	BIO_SYNTH_LITTLE,
	BIO_SYNTH_N_FINGERS,
};

#define BIO_SYNTH_MIN_SIZE 16
#define BIO_SYNTH_MAX_SIZE 4096

struct bio_synth_params {
	uint32_t size;    /* image side in pixels, BIO_SYNTH_MIN_SIZE..BIO_SYNTH_MAX_SIZE */
	uint64_t seed;    /* master seed */
	double noise;     /* sensor noise standard deviation, fraction of full scale (0..1) */
	int eyelashes;    /* 1: draw eyelashes on iris images */
	double variation; /* scale of the per-sample capture changes (pose, pupil, eyelids,
			   * pressure, contact, distortion, dryness, contrast), 0..2: 0 gives
			   * every sample of an identity the same pose and conditions, 1 the
			   * default ranges; noise, blur, lashes and highlight are not scaled */
};

/* Defaults: size 128, seed 42, noise 0.04, eyelashes on, variation 1. */
void bio_synth_params_default(struct bio_synth_params *p);
/* Checks p's ranges; the message names the field ("synth size 8: must be 16..4096"). */
int bio_synth_params_check(const struct bio_synth_params *p, struct bio_error *err);

/* "L" / "R"; "thumb", "index", "middle", "ring", "little" (static strings; NULL when out of
 * range). */
const char *bio_synth_side_name(int side);
const char *bio_synth_finger_name(int finger);
/* Finger number of a name ("thumb", ...), or -1 when unknown. */
int bio_synth_finger_parse(const char *name);
/* Checks a comma-separated list of finger names ("thumb,index"): 0, or -1 with the bad name
 * (or "NAME (repeated)", "(empty)") in bad[bad_size]. */
int bio_synth_fingers_check(const char *list, char *bad, size_t bad_size);

struct bio_synth_iris;
struct bio_synth_print;

/* Builds the iris model of (subject, side): returned new in *out, free with
 * bio_synth_iris_free. Fails only on invalid params or memory. */
int bio_synth_iris_new(struct bio_synth_iris **out, const struct bio_synth_params *p,
		       uint32_t subject, int side, struct bio_error *err);
void bio_synth_iris_free(struct bio_synth_iris *m);
/* Renders sample number `sample` of the iris model m (borrowed, not modified: several threads
 * may render from one model) into out (caller buffer of size*size bytes, row-major). */
int bio_synth_iris_render(uint8_t *out, const struct bio_synth_iris *m, uint32_t sample,
			  struct bio_error *err);

/* Where sample `sample` of the iris model m (borrowed) draws its circles, in pixel-index
 * coordinates (pixel (0, 0)'s centre is (0, 0)): the limbus (iris) and the pupil boundary, each
 * as centre x, y and radius; the truth a segmentation is tested against. */
struct bio_synth_iris_truth {
	double iris_x, iris_y, iris_r;
	double pupil_x, pupil_y, pupil_r;
};
void bio_synth_iris_truth(const struct bio_synth_iris *m, uint32_t sample,
			  struct bio_synth_iris_truth *t);

/* Builds the fingerprint model of (subject, side, finger); free with bio_synth_print_free. */
int bio_synth_print_new(struct bio_synth_print **out, const struct bio_synth_params *p,
			uint32_t subject, int side, int finger, struct bio_error *err);
void bio_synth_print_free(struct bio_synth_print *m);
/* Renders sample number `sample` of the fingerprint model m (borrowed) into out (size*size). */
int bio_synth_print_render(uint8_t *out, const struct bio_synth_print *m, uint32_t sample,
			   struct bio_error *err);

/* Pattern class of a fingerprint model: 0 arch, 1 tented arch, 2 left loop, 3 right loop,
 * 4 whorl (for tests and statistics). */
int bio_synth_print_class(const struct bio_synth_print *m);

#endif
