/* Resizing of 8-bit gray images as PIL 9.4's Image.resize((w, h), BILINEAR | BOX) does
 * (libImaging/Resample.c): separable convolution, horizontal pass first; the filter support is
 * scaled by the downscale factor (antialiasing); each output's weights are normalised to sum 1
 * and quantised to 22-bit fixed point; the horizontal pass is rounded to 8 bits. The float
 * output is PIL's last accumulator divided by 2^22, before PIL's final rounding (to the nearest
 * float, or one ulp off at a near-tie), so floorf(v + 0.5f) is exactly PIL's 8-bit pixel
 * (bio_image_resize_planned_u8 returns those bytes).
 * Coefficient tables are built once per (in size, out size, filter) in a bio_resize_plan. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

#define PRECISION_BITS (32 - 8 - 2)

struct bio_resize_axis {
	uint32_t n_out;
	int ksize;        /* coefficients per output (some trailing ones are zero) */
	int32_t *bounds;  /* [n_out][2]: first input index, number of inputs */
	int32_t *kk;      /* [n_out][ksize]: fixed-point weights */
};

struct bio_resize_plan {
	uint32_t in_w, in_h, out_w, out_h;
	enum bio_resize_filter filter;
	int need_h, need_v;
	uint32_t y_first, y_last; /* input rows the horizontal pass must produce */
	struct bio_resize_axis h, v;
};

static double filter_bilinear(double x)
{
	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return 1.0 - x;
	return 0.0;
}

static double filter_box(double x)
{
	if (x > -0.5 && x <= 0.5)
		return 1.0;
	return 0.0;
}

/* PIL's precompute_coeffs + normalize_coeffs_8bpc for in_size -> out_size over the whole axis. */
static int axis_init(struct bio_resize_axis *a, uint32_t in_size, uint32_t out_size,
		     enum bio_resize_filter filter)
{
	double (*fn)(double) = filter == BIO_RESIZE_AREA ? filter_box : filter_bilinear;
	double support0 = filter == BIO_RESIZE_AREA ? 0.5 : 1.0;
	double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
	double support = support0 * filterscale;
	int ksize = (int)ceil(support) * 2 + 1;
	a->n_out = out_size;
	a->ksize = ksize;
	a->bounds = malloc(sizeof *a->bounds * 2 * out_size);
	a->kk = malloc(sizeof *a->kk * (size_t)ksize * out_size);
	double *k = malloc(sizeof *k * (size_t)ksize);
	if (!a->bounds || !a->kk || !k) {
		free(k);
		return -1;
	}
	for (uint32_t xx = 0; xx < out_size; xx++) {
		double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
		int xmin = (int)(center - support + 0.5);
		if (xmin < 0)
			xmin = 0;
		int xmax = (int)(center + support + 0.5);
		if (xmax > (int)in_size)
			xmax = (int)in_size;
		xmax -= xmin;
		if (xmax > ksize)
			xmax = ksize;
		int x;
		for (x = 0; x < xmax; x++) {
			double w = fn((x + xmin - center + 0.5) * ss);
			k[x] = w;
			ww += w;
		}
		for (x = 0; x < xmax; x++)
			if (ww != 0.0)
				k[x] /= ww;
		for (; x < ksize; x++)
			k[x] = 0;
		int32_t *kq = a->kk + (size_t)xx * ksize;
		for (x = 0; x < ksize; x++)
			kq[x] = (int32_t)(k[x] < 0 ? -0.5 + k[x] * (1 << PRECISION_BITS)
						   : 0.5 + k[x] * (1 << PRECISION_BITS));
		a->bounds[2 * xx] = xmin;
		a->bounds[2 * xx + 1] = xmax;
	}
	free(k);
	return 0;
}

static void axis_destroy(struct bio_resize_axis *a)
{
	free(a->bounds);
	free(a->kk);
}

void bio_image_resize_plan_free(struct bio_resize_plan *plan)
{
	if (!plan)
		return;
	axis_destroy(&plan->h);
	axis_destroy(&plan->v);
	free(plan);
}

int bio_image_resize_plan_new(struct bio_resize_plan **plan, uint32_t in_w, uint32_t in_h,
			      uint32_t out_w, uint32_t out_h, enum bio_resize_filter filter,
			      struct bio_error *err)
{
	*plan = NULL;
	if (filter != BIO_RESIZE_BILINEAR && filter != BIO_RESIZE_AREA)
		return bio_error_set(err, BIO_EINVAL, "resize: unknown filter %d", (int)filter);
	if (!in_w || !in_h || !out_w || !out_h || in_w > 0x7fffffff || in_h > 0x7fffffff ||
	    out_w > 0x7fffffff / 2 || out_h > 0x7fffffff / 2)
		return bio_error_set(err, BIO_EINVAL, "resize: bad size %ux%u -> %ux%u", in_w, in_h,
				     out_w, out_h);
	/* ksize * n_out coefficients: ksize ~ 2 * in / out + 3, so this is ~2 * in + 3 * out */
	struct bio_resize_plan *p = calloc(1, sizeof *p);
	if (!p)
		return bio_error_set(err, BIO_ENOMEM, "resize: out of memory");
	p->in_w = in_w;
	p->in_h = in_h;
	p->out_w = out_w;
	p->out_h = out_h;
	p->filter = filter;
	p->need_h = in_w != out_w;
	p->need_v = in_h != out_h;
	if (axis_init(&p->h, in_w, out_w, filter) < 0 || axis_init(&p->v, in_h, out_h, filter) < 0) {
		bio_image_resize_plan_free(p);
		return bio_error_set(err, BIO_ENOMEM, "resize: out of memory");
	}
	p->y_first = (uint32_t)p->v.bounds[0];
	p->y_last = (uint32_t)(p->v.bounds[2 * out_h - 2] + p->v.bounds[2 * out_h - 1]);
	*plan = p;
	return 0;
}

static inline uint8_t clip8(int32_t ss)
{
	ss >>= PRECISION_BITS;
	return (uint8_t)(ss < 0 ? 0 : ss > 255 ? 255 : ss);
}

/* ss / 2^22 as a float in 0..255; float32 cannot hold values within 2^-17 of a .5 tie apart,
 * so such a value is moved by one ulp to the side PIL rounds it to. */
static inline float to_float(int32_t ss)
{
	float f = (float)ss * (1.0f / (float)(1 << PRECISION_BITS));
	f = f < 0.0f ? 0.0f : f > 255.0f ? 255.0f : f;
	float q = (float)clip8(ss + (1 << (PRECISION_BITS - 1)));
	while (floorf(f + 0.5f) < q)
		f = nextafterf(f, 256.0f);
	while (floorf(f + 0.5f) > q)
		f = nextafterf(f, -1.0f);
	return f;
}

/* Horizontal pass over input rows [y0, y1): 8-bit (rounded as PIL) into tmp, or unrounded
 * floats into out_f when there is no vertical pass. */
static void pass_h(uint8_t *tmp, float *out_f, const struct bio_resize_plan *p,
		   const uint8_t *in, uint32_t y0, uint32_t y1)
{
	const struct bio_resize_axis *a = &p->h;
	for (uint32_t y = y0; y < y1; y++) {
		const uint8_t *src = in + (size_t)y * p->in_w;
		for (uint32_t xx = 0; xx < p->out_w; xx++) {
			const int32_t *k = a->kk + (size_t)xx * a->ksize;
			const uint8_t *s = src + a->bounds[2 * xx];
			int32_t n = a->bounds[2 * xx + 1], ss = 0;
			for (int32_t x = 0; x < n; x++)
				ss += s[x] * k[x];
			size_t o = (size_t)(y - y0) * p->out_w + xx;
			if (out_f)
				out_f[o] = to_float(ss);
			else
				tmp[o] = clip8(ss + (1 << (PRECISION_BITS - 1)));
		}
	}
}

/* Vertical pass from src (rows offset by y_off, width out_w) to floats or exact 8-bit; acc holds
 * out_w accumulators. */
static void pass_v(float *out_f, uint8_t *out_u8, int32_t *acc, const struct bio_resize_plan *p,
		   const uint8_t *src, uint32_t y_off)
{
	const struct bio_resize_axis *a = &p->v;
	uint32_t w = p->out_w;
	for (uint32_t yy = 0; yy < p->out_h; yy++) {
		const int32_t *k = a->kk + (size_t)yy * a->ksize;
		int32_t ymin = a->bounds[2 * yy] - (int32_t)y_off, n = a->bounds[2 * yy + 1];
		memset(acc, 0, sizeof *acc * w);
		for (int32_t y = 0; y < n; y++) {
			const uint8_t *row = src + (size_t)(ymin + y) * w;
			int32_t ky = k[y];
			for (uint32_t xx = 0; xx < w; xx++)
				acc[xx] += row[xx] * ky;
		}
		if (out_f)
			for (uint32_t xx = 0; xx < w; xx++)
				out_f[(size_t)yy * w + xx] = to_float(acc[xx]);
		else
			for (uint32_t xx = 0; xx < w; xx++)
				out_u8[(size_t)yy * w + xx] =
					clip8(acc[xx] + (1 << (PRECISION_BITS - 1)));
	}
}

static int resize_run(float *out_f, uint8_t *out_u8, const struct bio_resize_plan *p,
		      const struct bio_image *in, struct bio_error *err)
{
	if (!in || !in->pixels || in->width != p->in_w || in->height != p->in_h)
		return bio_error_set(err, BIO_EINVAL,
				     "resize: image of %ux%u given to a plan for %ux%u",
				     in ? in->width : 0, in ? in->height : 0, p->in_w, p->in_h);
	size_t n_out = (size_t)p->out_w * p->out_h;
	if (!p->need_h && !p->need_v) {
		for (size_t i = 0; i < n_out; i++) {
			if (out_f)
				out_f[i] = in->pixels[i];
			else
				out_u8[i] = in->pixels[i];
		}
		return 0;
	}
	if (!p->need_v) {
		pass_h(out_u8, out_f, p, in->pixels, 0, p->in_h);
		return 0;
	}
	/* scratch: out_w accumulators, then the horizontal pass's rows y_first..y_last */
	size_t tmp_bytes = p->need_h ? (size_t)p->out_w * (p->y_last - p->y_first) : 0;
	int32_t *acc = malloc(sizeof *acc * p->out_w + tmp_bytes);
	if (!acc)
		return bio_error_set(err, BIO_ENOMEM, "resize: out of memory");
	if (p->need_h) {
		uint8_t *tmp = (uint8_t *)(acc + p->out_w);
		pass_h(tmp, NULL, p, in->pixels, p->y_first, p->y_last);
		pass_v(out_f, out_u8, acc, p, tmp, p->y_first);
	} else {
		pass_v(out_f, out_u8, acc, p, in->pixels, 0);
	}
	free(acc);
	return 0;
}

int bio_image_resize_planned(float *out, const struct bio_resize_plan *plan,
			     const struct bio_image *in, struct bio_error *err)
{
	return resize_run(out, NULL, plan, in, err);
}

int bio_image_resize_planned_u8(uint8_t *out, const struct bio_resize_plan *plan,
				const struct bio_image *in, struct bio_error *err)
{
	return resize_run(NULL, out, plan, in, err);
}

int bio_image_resize(float *out, uint32_t out_w, uint32_t out_h, const struct bio_image *in,
		     enum bio_resize_filter filter, struct bio_error *err)
{
	struct bio_resize_plan *plan;
	if (!in || !in->pixels)
		return bio_error_set(err, BIO_EINVAL, "resize: no image");
	int rc = bio_image_resize_plan_new(&plan, in->width, in->height, out_w, out_h, filter, err);
	if (rc < 0)
		return rc;
	rc = bio_image_resize_planned(out, plan, in, err);
	bio_image_resize_plan_free(plan);
	return rc;
}
