/* A synthetic data set on disk: every subject's iris and fingerprint images under a root, in the
 * layout bio-scan's default patterns read (iris/SSS_E_KK.bmp, fingerprint/SSS_H_finger_KK.BMP,
 * .png for both in PNG), rendered by bio/synth.h on threads. Work is split by identity (its model
 * built once, its samples rendered from it); every file depends only on (set, identity, sample),
 * so the files are byte-identical for any thread count. */
#ifndef BIO_SYNTH_SET_H
#define BIO_SYNTH_SET_H

#include <stddef.h>
#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/synth.h"

#define BIO_SYNTH_MAX_SUBJECTS 100000
#define BIO_SYNTH_MAX_SAMPLES 10000

struct bio_synth_set {
	const char *root;               /* borrowed */
	struct bio_synth_params params;
	uint32_t n_subjects, n_samples; /* each subject: two eyes, two hands */
	int png;                        /* 1: PNG, 0: BMP */
	int do_iris, do_print;
	int fingers[BIO_SYNTH_N_FINGERS];
	int n_fingers;
	/* called (under a lock) after each image written, done of total; NULL: none */
	void (*progress)(void *ud, size_t done, size_t total);
	void *progress_ud;
};

/* Fills s from the synth section of c (synth.subjects, .samples, .size, .format, .noise,
 * .variation, .eyelashes, .fingers) and experiment.seed; both modalities, root NULL, no progress.
 * Errors name the key and its file:line. */
int bio_synth_set_from_config(struct bio_synth_set *s, const struct bio_config *c,
			      struct bio_error *err);
/* Image series per subject: 2 sides x (iris + the fingers). */
size_t bio_synth_set_series(const struct bio_synth_set *s);
/* Creates root, root/iris and root/fingerprint as needed and writes every image on n_threads;
 * *n_images (may be NULL) gets the count written. On failure the error is the one of the lowest
 * failed identity, whatever the thread count. */
int bio_synth_set_write(const struct bio_synth_set *s, int n_threads, size_t *n_images,
			struct bio_error *err);
/* ROOT/synth.yaml: the synth section of cfg (borrowed), the configuration the images under
 * root were made with, an overlay bio-scan carries forward in the manifest header so that what
 * trains on these images records how they were made. Written atomically. */
int bio_synth_set_write_provenance(const struct bio_config *cfg, const char *root,
				   struct bio_error *err);

#endif
