/* Sample preprocessing: decode -> gray -> resize -> normalise into a float tensor [1,S,S]. */
#ifndef BIO_PREP_H
#define BIO_PREP_H

#include <stddef.h>
#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/image.h"
#include "bio/segment.h"

struct bio_prep_params {
	uint32_t size;                 /* output side S (square) */
	enum bio_resize_filter filter; /* bilinear | area */
	float mean, std;               /* out = (x/255 - mean) / std */
	int quantize;                  /* 1: round resized pixels to 8-bit levels as PIL does */
	struct bio_image_limits limits;
	/* fingerprint segmentation, crop and contrast before the resize (bio/segment.h); enabled
	 * only for the modality bio_prep_params_for_modality names "fingerprint" */
	struct bio_fp_segment_params fp;
	/* iris segmentation and rubber-sheet strip before the resize (bio/segment.h); enabled only
	 * for the modality named "iris" */
	struct bio_iris_segment_params iris;
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
/* As bio_prep_params_from_config, then the settings of the modality: for "fingerprint",
 * prep.fingerprint.* (segmentation when prep.fingerprint.segment is true), for "iris",
 * prep.iris.* (segmentation when prep.iris.segment is true); other modalities get none. */
int bio_prep_params_for_modality(struct bio_prep_params *p, const struct bio_config *c,
				 const char *modality, struct bio_error *err);
/* Turns img (borrowed, 8-bit gray) into p->size * p->size normalised floats in out. s (borrowed,
 * one per thread) may be NULL: then the resize tables are built for this call alone. */
int bio_prep_image(float *out, const struct bio_image *img, const struct bio_prep_params *p,
		   struct bio_prep_scratch *s, struct bio_error *err);
/* Loads and decodes the file at path, then as bio_prep_image. Messages name the path. */
int bio_prep_file(float *out, const char *path, const struct bio_prep_params *p,
		  struct bio_prep_scratch *s, struct bio_error *err);
/* As bio_prep_image / bio_prep_file; when p->fp.enabled, *fp (may be NULL) receives what the
 * segmentation found (fp->failed set when it is what failed); likewise *iris (may be NULL)
 * when p->iris.enabled. */
int bio_prep_image_info(float *out, const struct bio_image *img, const struct bio_prep_params *p,
			struct bio_prep_scratch *s, struct bio_fp_segment_info *fp,
			struct bio_iris_segment_info *iris, struct bio_error *err);
int bio_prep_file_info(float *out, const char *path, const struct bio_prep_params *p,
		       struct bio_prep_scratch *s, struct bio_fp_segment_info *fp,
		       struct bio_iris_segment_info *iris, struct bio_error *err);

#endif
