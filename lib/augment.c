/* Training-time augmentation (include/bio/augment.h): similarity transforms resampled
 * bilinearly with the border replicated, circular shifts, contrast and brightness, each sample's
 * drawn from its own keyed RNG stream. */
#include "bio/augment.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bio/rng.h"

/* Domain key of the augmentation streams ("augment"), apart from other users of the seed. */
#define AUGMENT_STREAM_KEY 0x6175676d656e74ull

int bio_augment_from_config(struct bio_augment *a, const struct bio_config *cfg,
			    const char *modality, struct bio_error *err)
{
	memset(a, 0, sizeof *a);
	int on, rc;
	if ((rc = bio_config_get_bool(cfg, "augment.enabled", &on, err)))
		return rc;
	char key[96];
	snprintf(key, sizeof key, "augment.%.40s", modality);
	if (!on || !bio_config_has(cfg, key))
		return 0;
	static const char *const names[6] = {"rotate",   "translate",  "scale",
					     "contrast", "brightness", "shift"};
	static const double max[6] = {180.0, 0.5, 0.5, 0.9, 2.0, 1.0};
	double *dst[6] = {&a->rotate,   &a->translate,  &a->scale,
			  &a->contrast, &a->brightness, &a->shift};
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof key, "augment.%.40s.%s", modality, names[i]);
		if ((rc = bio_config_get_double_range(cfg, key, 0.0, max[i], dst[i], err)))
			return rc;
	}
	return 0;
}

int bio_augment_active(const struct bio_augment *a)
{
	return a->rotate > 0 || a->translate > 0 || a->scale > 0 || a->contrast > 0 ||
	       a->brightness > 0 || a->shift > 0;
}

void bio_augment_draw(struct bio_augment_params *p, const struct bio_augment *a, int h, int w,
		      uint64_t seed, uint64_t epoch, uint64_t sample, uint64_t modality)
{
	struct bio_rng r;
	const uint64_t keys[4] = {AUGMENT_STREAM_KEY, epoch, sample, modality};
	bio_rng_seed_keys(&r, seed, keys, 4);
	const double pi = 3.14159265358979323846;
	/* seven draws, always, in this order */
	double u[7];
	for (int i = 0; i < 7; i++)
		u[i] = 2.0 * bio_rng_uniform(&r) - 1.0; /* [-1, 1) */
	double th = u[0] * a->rotate * pi / 180.0, s = 1.0 + u[1] * a->scale;
	double tx = u[2] * a->translate * w, ty = u[3] * a->translate * h;
	p->gain = 1.0 + u[4] * a->contrast;
	p->bias = u[5] * a->brightness;
	p->shift = (int)lround(u[6] * a->shift * w);
	/* output -> input: src = c + R(-th) (dst - c - t) / s, c the centre */
	double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0, c = cos(th) / s, sn = sin(th) / s;
	p->m[0] = c;
	p->m[1] = sn;
	p->m[2] = cx - c * (cx + tx) - sn * (cy + ty);
	p->m[3] = -sn;
	p->m[4] = c;
	p->m[5] = cy + sn * (cx + tx) - c * (cy + ty);
}

static int clampi(long v, int n)
{
	return v < 0 ? 0 : v >= n ? n - 1 : (int)v;
}

void bio_augment_apply(float *out, const float *in, int h, int w,
		       const struct bio_augment_params *p)
{
	/* column x of the rolled image is column (x - shift) mod w of the input */
	int k = p->shift % w;
	if (k < 0)
		k += w;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			double sx = p->m[0] * x + p->m[1] * y + p->m[2];
			double sy = p->m[3] * x + p->m[4] * y + p->m[5];
			double fx0 = floor(sx), fy0 = floor(sy);
			double fx = sx - fx0, fy = sy - fy0;
			/* far outside: any clamped corner is the edge (and keeps long in range) */
			if (fx0 < -2.0 || fx0 > w + 1.0) {
				fx0 = fx0 < 0 ? -2.0 : w + 1.0;
				fx = 0.0;
			}
			if (fy0 < -2.0 || fy0 > h + 1.0) {
				fy0 = fy0 < 0 ? -2.0 : h + 1.0;
				fy = 0.0;
			}
			int xa = clampi((long)fx0, w), xb = clampi((long)fx0 + 1, w);
			int ya = clampi((long)fy0, h), yb = clampi((long)fy0 + 1, h);
			xa = (xa - k + w) % w;
			xb = (xb - k + w) % w;
			const float *ra = in + (size_t)ya * w, *rb = in + (size_t)yb * w;
			double v = (1.0 - fy) * ((1.0 - fx) * ra[xa] + fx * ra[xb]) +
				   fy * ((1.0 - fx) * rb[xa] + fx * rb[xb]);
			out[(size_t)y * w + x] = (float)(p->gain * v + p->bias);
		}
}

void bio_augment_params_pack(double *row, const struct bio_augment_params *p)
{
	memcpy(row, p->m, sizeof p->m);
	row[6] = p->gain;
	row[7] = p->bias;
	row[8] = p->shift;
}
