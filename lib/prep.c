/* Sample preprocessing for bio-prep: decode, gray, resize, normalise into S*S floats (bio-prep
 * runs it on bio/thread.h's ordered map). */
#include "bio/prep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sample preprocessing ---- */

#define PREP_N_PLANS 4

struct prep_plan {
	uint32_t in_w, in_h, out;
	enum bio_resize_filter filter;
	uint64_t last_used;
	struct bio_resize_plan *plan;
};

struct bio_prep_scratch {
	struct bio_image_reader reader; /* file buffer reused across loads */
	struct prep_plan plans[PREP_N_PLANS];
	uint64_t clock;
	uint8_t *u8;     /* resized 8-bit image */
	size_t u8_bytes;
	float lut_mean, lut_std; /* the table below is for these (lut_std 0: not built) */
	float lut[256];
};

struct bio_prep_scratch *bio_prep_scratch_new(void)
{
	return calloc(1, sizeof(struct bio_prep_scratch));
}

void bio_prep_scratch_free(struct bio_prep_scratch *s)
{
	if (!s)
		return;
	for (int i = 0; i < PREP_N_PLANS; i++)
		bio_image_resize_plan_free(s->plans[i].plan);
	bio_image_reader_destroy(&s->reader);
	free(s->u8);
	free(s);
}

/* The cached plan for img -> size x size (least recently used one replaced), or NULL with err. */
static const struct bio_resize_plan *scratch_plan(struct bio_prep_scratch *s,
						  const struct bio_image *img,
						  const struct bio_prep_params *p,
						  struct bio_error *err)
{
	struct prep_plan *victim = &s->plans[0];
	s->clock++;
	for (int i = 0; i < PREP_N_PLANS; i++) {
		struct prep_plan *e = &s->plans[i];
		if (e->plan && e->in_w == img->width && e->in_h == img->height && e->out == p->size &&
		    e->filter == p->filter) {
			e->last_used = s->clock;
			return e->plan;
		}
		if (!e->plan || (victim->plan && e->last_used < victim->last_used))
			victim = e;
	}
	struct bio_resize_plan *plan;
	if (bio_image_resize_plan_new(&plan, img->width, img->height, p->size, p->size, p->filter,
				      err) < 0)
		return NULL;
	bio_image_resize_plan_free(victim->plan);
	*victim = (struct prep_plan){img->width, img->height, p->size, p->filter, s->clock, plan};
	return plan;
}

void bio_prep_params_default(struct bio_prep_params *p)
{
	memset(p, 0, sizeof(*p));
	p->size = 64;
	p->filter = BIO_RESIZE_BILINEAR;
	p->mean = 0.5f;
	p->std = 0.5f;
	p->quantize = 1;
	bio_image_limits_default(&p->limits);
}

int bio_prep_params_from_config(struct bio_prep_params *p, const struct bio_config *c,
				struct bio_error *err)
{
	int64_t size, w, h, px, fb;
	double mean, std;
	static const char *const filters[] = {[BIO_RESIZE_BILINEAR] = "bilinear",
					      [BIO_RESIZE_AREA] = "area"};
	int filter, quantize, rc;

	bio_prep_params_default(p);
	if ((rc = bio_config_get_int_range(c, "prep.size", 1, 4096, &size, err)) < 0 ||
	    (rc = bio_config_get_choice(c, "prep.resize", filters, 2, &filter, err)) < 0 ||
	    (rc = bio_config_get_double(c, "prep.mean", &mean, err)) < 0 ||
	    (rc = bio_config_get_double_range(c, "prep.std", 1e-12, 1e12, &std, err)) < 0 ||
	    (rc = bio_config_get_bool(c, "prep.quantize", &quantize, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.max_width", 1,
					   UINT32_MAX, &w, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.max_height", 1,
					   UINT32_MAX, &h, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.max_pixels", 1,
					   (int64_t)1 << 40, &px, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.max_file_bytes", 1, (int64_t)1 << 40,
					   &fb, err)) < 0)
		return rc;
	p->filter = (enum bio_resize_filter)filter;
	if (!isfinite(mean))
		return bio_config_error(c, "prep.mean", err, BIO_EINVAL, "not a finite number");
	p->size = (uint32_t)size;
	p->mean = (float)mean;
	p->std = (float)std;
	p->quantize = quantize;
	p->limits.max_width = (uint32_t)w;
	p->limits.max_height = (uint32_t)h;
	p->limits.max_pixels = (uint64_t)px;
	p->limits.max_file_bytes = (size_t)fb;
	return 0;
}

int bio_prep_params_for_modality(struct bio_prep_params *p, const struct bio_config *c,
				 const char *modality, struct bio_error *err)
{
	int rc = bio_prep_params_from_config(p, c, err);
	if (rc < 0)
		return rc;
	if (strcmp(modality, "iris") == 0)
		return bio_iris_segment_params_from_config(&p->iris, c, err);
	if (strcmp(modality, "fingerprint") != 0)
		return rc;
	return bio_fp_segment_params_from_config(&p->fp, c, err);
}

/* (v / 255 - mean) / std for every 8-bit level v: the same float operations as numpy on a
 * float32 array. */
static void build_lut(float lut[256], float mean, float std)
{
	for (int v = 0; v < 256; v++)
		lut[v] = ((float)v / 255.0f - mean) / std;
}

int bio_prep_image_info(float *out, const struct bio_image *img, const struct bio_prep_params *p,
			struct bio_prep_scratch *s, struct bio_fp_segment_info *fp,
			struct bio_iris_segment_info *iris, struct bio_error *err)
{
	if (p->iris.enabled || p->fp.enabled) {
		/* the iris unwrapped into its strip, or the print cropped and normalised, first;
		 * then as any image */
		struct bio_image pre;
		struct bio_prep_params q = *p;
		int rc;
		if (!img || !img->pixels || !img->width || !img->height)
			return bio_error_set(err, BIO_EINVAL, "prep: empty image");
		rc = p->iris.enabled ? bio_iris_segment(&pre, img, &p->iris, iris, err)
				     : bio_fp_segment(&pre, img, &p->fp, fp, err);
		if (rc < 0)
			return rc;
		q.iris.enabled = q.fp.enabled = 0;
		rc = bio_prep_image_info(out, &pre, &q, s, NULL, NULL, err);
		bio_image_destroy(&pre);
		return rc;
	}
	size_t n = (size_t)p->size * p->size;
	struct bio_resize_plan *own_plan = NULL;
	const struct bio_resize_plan *plan;
	uint8_t *u8 = NULL;
	int rc = 0;

	if (!img || !img->pixels || !img->width || !img->height)
		return bio_error_set(err, BIO_EINVAL, "prep: empty image");
	if (s) {
		plan = scratch_plan(s, img, p, err);
		if (!plan)
			return err ? err->code : BIO_ENOMEM;
	} else {
		if ((rc = bio_image_resize_plan_new(&own_plan, img->width, img->height, p->size,
						    p->size, p->filter, err)) < 0)
			return rc;
		plan = own_plan;
	}
	if (!p->quantize) {
		if ((rc = bio_image_resize_planned(out, plan, img, err)) < 0)
			goto out;
		const float mean = p->mean, std = p->std;
		for (size_t i = 0; i < n; i++)
			out[i] = (out[i] / 255.0f - mean) / std;
		goto out;
	}
	/* Quantised: PIL's exact 8-bit result through a table of the normalised levels. */
	float own_lut[256];
	const float *lut = own_lut;
	if (s) {
		if (s->u8_bytes < n) {
			uint8_t *b = realloc(s->u8, n);
			if (!b) {
				rc = bio_error_set(err, BIO_ENOMEM, "prep: out of memory");
				goto out;
			}
			s->u8 = b;
			s->u8_bytes = n;
		}
		u8 = s->u8;
		if (s->lut_std == 0.0f || s->lut_mean != p->mean || s->lut_std != p->std) {
			build_lut(s->lut, p->mean, p->std);
			s->lut_mean = p->mean;
			s->lut_std = p->std;
		}
		lut = s->lut;
	} else {
		u8 = malloc(n);
		if (!u8) {
			rc = bio_error_set(err, BIO_ENOMEM, "prep: out of memory");
			goto out;
		}
		build_lut(own_lut, p->mean, p->std);
	}
	if ((rc = bio_image_resize_planned_u8(u8, plan, img, err)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		out[i] = lut[u8[i]];
out:
	if (!s)
		free(u8);
	bio_image_resize_plan_free(own_plan);
	return rc;
}

int bio_prep_image(float *out, const struct bio_image *img, const struct bio_prep_params *p,
		   struct bio_prep_scratch *s, struct bio_error *err)
{
	return bio_prep_image_info(out, img, p, s, NULL, NULL, err);
}

int bio_prep_file(float *out, const char *path, const struct bio_prep_params *p,
		  struct bio_prep_scratch *s, struct bio_error *err)
{
	return bio_prep_file_info(out, path, p, s, NULL, NULL, err);
}

int bio_prep_file_info(float *out, const char *path, const struct bio_prep_params *p,
		       struct bio_prep_scratch *s, struct bio_fp_segment_info *fp,
		       struct bio_iris_segment_info *iris, struct bio_error *err)
{
	struct bio_image img = {0};
	int rc = s ? bio_image_reader_load(&img, &s->reader, path, &p->limits, err)
		   : bio_image_load(&img, path, &p->limits, err);
	if (rc == 0) {
		rc = bio_prep_image_info(out, &img, p, s, fp, iris, err);
		if (rc < 0)
			bio_error_prefix(err, "%s", path);
	}
	bio_image_destroy(&img);
	return rc;
}
