/* Resizing of 8-bit gray images as PIL 9.4's Image.resize((w, h), BILINEAR | BOX) does
 * (libImaging/Resample.c): separable convolution, horizontal pass first; the filter support is
 * scaled by the downscale factor (antialiasing); each output's weights are normalised to sum 1
 * and quantised to 22-bit fixed point; the horizontal pass is rounded to 8 bits. The float
 * output is PIL's last accumulator divided by 2^22, before PIL's final rounding (to the nearest
 * float, or one ulp off at a near-tie), so floorf(v + 0.5f) is exactly PIL's 8-bit pixel
 * (bio_image_resize_planned_u8 returns those bytes).
 * Coefficient tables are built once per (in size, out size, filter) in a bio_resize_plan.
 *
 * Speed: on x86-64 both passes use SSE2's pmaddwd (16 x 16 -> 32-bit multiply-adds). The 22-bit
 * weights do not fit 16 bits, so each is split as k = kh * 2^11 + kl and the two partial sums are
 * recombined as (sum_h << 11) + sum_l: the same integers PIL computes, in any summation order.
 * The horizontal pass does four rows per coefficient load; the vertical pass takes taps in
 * pairs over interleaved rows. Windows that would read past a row end, and machines without
 * SSE2, use the scalar loops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "free_list.h"
#include "image_internal.h"

#if defined(__SSE2__) && !defined(BIO_RESIZE_NO_SIMD)
#include <emmintrin.h>
#define BIO_RESIZE_SSE2 1
#endif

#define PRECISION_BITS (32 - 8 - 2)
#define SPLIT_BITS 11
#define MAX_SIMD_TAPS 1024 /* keeps the 32-bit partial sums of kl (< 2^11) * 255 from overflowing */

struct bio_resize_axis {
	uint32_t n_out;
	int ksize;        /* coefficients per output (some trailing ones are zero) */
	int32_t *bounds;  /* [n_out][2]: first input index, number of inputs */
	int32_t *kk;      /* [n_out][ksize]: fixed-point weights */
	int kpad;         /* max taps rounded up to 8 (0: no SIMD for this axis) */
	int16_t *kh, *kl; /* [n_out][kpad]: high and low 11 bits of kk, zero past the taps */
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
	int max_n = 0;
	for (uint32_t xx = 0; xx < out_size; xx++)
		max_n = a->bounds[2 * xx + 1] > max_n ? a->bounds[2 * xx + 1] : max_n;
	a->kpad = (max_n + 7) / 8 * 8;
	if (a->kpad > MAX_SIMD_TAPS) {
		a->kpad = 0;
		return 0;
	}
	a->kh = calloc((size_t)a->kpad * out_size, sizeof *a->kh);
	a->kl = calloc((size_t)a->kpad * out_size, sizeof *a->kl);
	if (!a->kh || !a->kl)
		return -1;
	for (uint32_t xx = 0; xx < out_size; xx++)
		for (int x = 0; x < a->bounds[2 * xx + 1]; x++) {
			int32_t kq = a->kk[(size_t)xx * ksize + x]; /* >= 0: the filters are >= 0 */
			a->kh[(size_t)xx * a->kpad + x] = (int16_t)(kq >> SPLIT_BITS);
			a->kl[(size_t)xx * a->kpad + x] = (int16_t)(kq & ((1 << SPLIT_BITS) - 1));
		}
	return 0;
}

static void axis_destroy(struct bio_resize_axis *a)
{
	BIO_FREE(a->bounds, a->kk, a->kh, a->kl);
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

static inline void store_out(uint8_t *tmp, float *out_f, size_t o, int32_t ss)
{
	if (out_f)
		out_f[o] = to_float(ss);
	else
		tmp[o] = clip8(ss + (1 << (PRECISION_BITS - 1)));
}

/* One output of the horizontal pass for one row, scalar. */
static inline int32_t dot_h(const struct bio_resize_axis *a, const uint8_t *src, uint32_t xx)
{
	const int32_t *k = a->kk + (size_t)xx * a->ksize;
	const uint8_t *s = src + a->bounds[2 * xx];
	int32_t n = a->bounds[2 * xx + 1], ss = 0;
	for (int32_t x = 0; x < n; x++)
		ss += s[x] * k[x];
	return ss;
}

#ifdef BIO_RESIZE_SSE2
/* Four dot products with one window of kp taps (weights split in kh, kl) over the bytes at
 * l0..l3: the exact sums of v * k, as a vector. */
static inline __m128i dot4(const uint8_t *l0, const uint8_t *l1, const uint8_t *l2,
			   const uint8_t *l3, const int16_t *kh, const int16_t *kl, int kp)
{
	const __m128i zero = _mm_setzero_si128();
	__m128i h0 = zero, h1 = zero, h2 = zero, h3 = zero;
	__m128i g0 = zero, g1 = zero, g2 = zero, g3 = zero;
	for (int c = 0; c < kp; c += 8) {
		__m128i vh = _mm_loadu_si128((const __m128i *)(kh + c));
		__m128i vl = _mm_loadu_si128((const __m128i *)(kl + c));
		__m128i p0 = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(l0 + c)), zero);
		__m128i p1 = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(l1 + c)), zero);
		__m128i p2 = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(l2 + c)), zero);
		__m128i p3 = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(l3 + c)), zero);
		h0 = _mm_add_epi32(h0, _mm_madd_epi16(p0, vh));
		g0 = _mm_add_epi32(g0, _mm_madd_epi16(p0, vl));
		h1 = _mm_add_epi32(h1, _mm_madd_epi16(p1, vh));
		g1 = _mm_add_epi32(g1, _mm_madd_epi16(p1, vl));
		h2 = _mm_add_epi32(h2, _mm_madd_epi16(p2, vh));
		g2 = _mm_add_epi32(g2, _mm_madd_epi16(p2, vl));
		h3 = _mm_add_epi32(h3, _mm_madd_epi16(p3, vh));
		g3 = _mm_add_epi32(g3, _mm_madd_epi16(p3, vl));
	}
	/* per lane (h << 11) + l, then the four horizontal sums as one vector */
	__m128i s0 = _mm_add_epi32(_mm_slli_epi32(h0, SPLIT_BITS), g0);
	__m128i s1 = _mm_add_epi32(_mm_slli_epi32(h1, SPLIT_BITS), g1);
	__m128i s2 = _mm_add_epi32(_mm_slli_epi32(h2, SPLIT_BITS), g2);
	__m128i s3 = _mm_add_epi32(_mm_slli_epi32(h3, SPLIT_BITS), g3);
	__m128i t01 = _mm_add_epi32(_mm_unpacklo_epi32(s0, s1), _mm_unpackhi_epi32(s0, s1));
	__m128i t23 = _mm_add_epi32(_mm_unpacklo_epi32(s2, s3), _mm_unpackhi_epi32(s2, s3));
	return _mm_add_epi32(_mm_unpacklo_epi64(t01, t23), _mm_unpackhi_epi64(t01, t23));
}

/* PIL's rounding of four sums to bytes (clip8 of ss + 2^21), packed in an int. */
static inline int32_t round4_u8(__m128i sum)
{
	__m128i v = _mm_srai_epi32(_mm_add_epi32(sum, _mm_set1_epi32(1 << (PRECISION_BITS - 1))),
				   PRECISION_BITS);
	v = _mm_packs_epi32(v, v);
	return _mm_cvtsi128_si32(_mm_packus_epi16(v, v));
}

/* to_float of four sums into out[0..3]. */
static inline void store4_float(float *out, __m128i sum)
{
	__m128 f = _mm_mul_ps(_mm_cvtepi32_ps(sum), _mm_set1_ps(1.0f / (float)(1 << PRECISION_BITS)));
	f = _mm_min_ps(_mm_max_ps(f, _mm_setzero_ps()), _mm_set1_ps(255.0f));
	__m128i q = _mm_srai_epi32(_mm_add_epi32(sum, _mm_set1_epi32(1 << (PRECISION_BITS - 1))),
				   PRECISION_BITS);
	q = _mm_min_epi16(_mm_max_epi16(q, _mm_setzero_si128()), _mm_set1_epi32(255));
	__m128i r = _mm_cvttps_epi32(_mm_add_ps(f, _mm_set1_ps(0.5f)));
	_mm_storeu_ps(out, f);
	if (_mm_movemask_epi8(_mm_cmpeq_epi32(q, r)) != 0xffff) { /* a near-tie: nudge it */
		int32_t ss[4];
		_mm_storeu_si128((__m128i *)ss, sum);
		for (int i = 0; i < 4; i++)
			out[i] = to_float(ss[i]);
	}
}

/* Horizontal pass of rows [y0, y1) into tmpT transposed: tmpT[xx * ts + (y - y0)], rounded to
 * 8 bits as PIL does. */
static void pass_h_t(uint8_t *tmpT, size_t ts, const struct bio_resize_plan *p,
		     const uint8_t *in, uint32_t y0, uint32_t y1)
{
	const struct bio_resize_axis *a = &p->h;
	const int kp = a->kpad;
	uint32_t y = y0;
	for (; y + 4 <= y1; y += 4) {
		const uint8_t *r0 = in + (size_t)y * p->in_w;
		const uint8_t *r1 = r0 + p->in_w, *r2 = r1 + p->in_w, *r3 = r2 + p->in_w;
		for (uint32_t xx = 0; xx < p->out_w; xx++) {
			uint8_t *dst = tmpT + (size_t)xx * ts + (y - y0);
			int32_t start = a->bounds[2 * xx];
			if ((uint32_t)start + (uint32_t)kp > p->in_w) {
				dst[0] = clip8(dot_h(a, r0, xx) + (1 << (PRECISION_BITS - 1)));
				dst[1] = clip8(dot_h(a, r1, xx) + (1 << (PRECISION_BITS - 1)));
				dst[2] = clip8(dot_h(a, r2, xx) + (1 << (PRECISION_BITS - 1)));
				dst[3] = clip8(dot_h(a, r3, xx) + (1 << (PRECISION_BITS - 1)));
				continue;
			}
			int32_t packed = round4_u8(dot4(r0 + start, r1 + start, r2 + start,
							r3 + start, a->kh + (size_t)xx * kp,
							a->kl + (size_t)xx * kp, kp));
			memcpy(dst, &packed, 4);
		}
	}
	for (; y < y1; y++) {
		const uint8_t *src = in + (size_t)y * p->in_w;
		for (uint32_t xx = 0; xx < p->out_w; xx++)
			tmpT[(size_t)xx * ts + (y - y0)] =
				clip8(dot_h(a, src, xx) + (1 << (PRECISION_BITS - 1)));
	}
}

/* Vertical pass from tmpT (rows of ts bytes, one per output column, zero past the used rows) to
 * floats or PIL's bytes, row-major. */
static void pass_v_t(float *out_f, uint8_t *out_u8, const struct bio_resize_plan *p,
		     const uint8_t *tmpT, size_t ts, uint32_t y_off)
{
	const struct bio_resize_axis *a = &p->v;
	const int kp = a->kpad;
	uint32_t w = p->out_w;
	for (uint32_t yy = 0; yy < p->out_h; yy++) {
		int32_t start = a->bounds[2 * yy] - (int32_t)y_off, n = a->bounds[2 * yy + 1];
		const int16_t *kh = a->kh + (size_t)yy * kp, *kl = a->kl + (size_t)yy * kp;
		uint32_t xx = 0;
		for (; xx + 4 <= w; xx += 4) {
			const uint8_t *l0 = tmpT + (size_t)xx * ts + start;
			__m128i sum = dot4(l0, l0 + ts, l0 + 2 * ts, l0 + 3 * ts, kh, kl, kp);
			if (out_f) {
				store4_float(out_f + (size_t)yy * w + xx, sum);
			} else {
				int32_t packed = round4_u8(sum);
				memcpy(out_u8 + (size_t)yy * w + xx, &packed, 4);
			}
		}
		const int32_t *k = a->kk + (size_t)yy * a->ksize;
		for (; xx < w; xx++) {
			int32_t ss = 0;
			for (int32_t y = 0; y < n; y++)
				ss += tmpT[(size_t)xx * ts + start + y] * k[y];
			store_out(out_u8, out_f, (size_t)yy * w + xx, ss);
		}
	}
}
#endif

/* Horizontal pass over input rows [y0, y1): 8-bit (rounded as PIL) into tmp, or unrounded
 * floats into out_f when there is no vertical pass. */
static void pass_h(uint8_t *tmp, float *out_f, const struct bio_resize_plan *p,
		   const uint8_t *in, uint32_t y0, uint32_t y1)
{
	const struct bio_resize_axis *a = &p->h;
	uint32_t y = y0;
#ifdef BIO_RESIZE_SSE2
	const int kp = a->kpad;
	for (; kp && y + 4 <= y1; y += 4) {
		const uint8_t *r0 = in + (size_t)y * p->in_w;
		const uint8_t *r1 = r0 + p->in_w, *r2 = r1 + p->in_w, *r3 = r2 + p->in_w;
		size_t o = (size_t)(y - y0) * p->out_w;
		for (uint32_t xx = 0; xx < p->out_w; xx++) {
			int32_t start = a->bounds[2 * xx];
			if ((uint32_t)start + (uint32_t)kp > p->in_w) { /* window would pass the row end */
				store_out(tmp, out_f, o + xx, dot_h(a, r0, xx));
				store_out(tmp, out_f, o + p->out_w + xx, dot_h(a, r1, xx));
				store_out(tmp, out_f, o + 2 * p->out_w + xx, dot_h(a, r2, xx));
				store_out(tmp, out_f, o + 3 * p->out_w + xx, dot_h(a, r3, xx));
				continue;
			}
			__m128i sum = dot4(r0 + start, r1 + start, r2 + start, r3 + start,
					   a->kh + (size_t)xx * kp, a->kl + (size_t)xx * kp, kp);
			int32_t ss[4];
			_mm_storeu_si128((__m128i *)ss, sum);
			store_out(tmp, out_f, o + xx, ss[0]);
			store_out(tmp, out_f, o + p->out_w + xx, ss[1]);
			store_out(tmp, out_f, o + 2 * p->out_w + xx, ss[2]);
			store_out(tmp, out_f, o + 3 * p->out_w + xx, ss[3]);
		}
	}
#endif
	for (; y < y1; y++) {
		const uint8_t *src = in + (size_t)y * p->in_w;
		size_t o = (size_t)(y - y0) * p->out_w;
		for (uint32_t xx = 0; xx < p->out_w; xx++)
			store_out(tmp, out_f, o + xx, dot_h(a, src, xx));
	}
}

/* Vertical pass from src (rows offset by y_off, width out_w) to floats or exact 8-bit; acc holds
 * 2 * out_w accumulators. */
static void pass_v(float *out_f, uint8_t *out_u8, int32_t *acc, const struct bio_resize_plan *p,
		   const uint8_t *src, uint32_t y_off)
{
	const struct bio_resize_axis *a = &p->v;
	uint32_t w = p->out_w;
	(void)acc; /* used by the SSE2 loop only */
	for (uint32_t yy = 0; yy < p->out_h; yy++) {
		const int32_t *k = a->kk + (size_t)yy * a->ksize;
		int32_t ymin = a->bounds[2 * yy] - (int32_t)y_off, n = a->bounds[2 * yy + 1];
		uint32_t xx = 0;
#ifdef BIO_RESIZE_SSE2
		if (a->kpad && w >= 8) {
			int32_t *acc_h = acc, *acc_l = acc + w;
			const int16_t *kh = a->kh + (size_t)yy * a->kpad;
			const int16_t *kl = a->kl + (size_t)yy * a->kpad;
			memset(acc, 0, sizeof *acc * 2 * w);
			const __m128i zero = _mm_setzero_si128();
			for (int32_t y = 0; y < n; y += 2) {
				const uint8_t *ra = src + (size_t)(ymin + y) * w;
				const uint8_t *rb = y + 1 < n ? ra + w : ra;
				int32_t hb = y + 1 < n ? kh[y + 1] : 0, lb = y + 1 < n ? kl[y + 1] : 0;
				__m128i vh = _mm_set1_epi32((int32_t)((uint32_t)(uint16_t)kh[y] |
								      (uint32_t)hb << 16));
				__m128i vl = _mm_set1_epi32((int32_t)((uint32_t)(uint16_t)kl[y] |
								      (uint32_t)lb << 16));
				for (xx = 0; xx + 8 <= w; xx += 8) {
					__m128i ab = _mm_unpacklo_epi8(
						_mm_loadl_epi64((const __m128i *)(ra + xx)),
						_mm_loadl_epi64((const __m128i *)(rb + xx)));
					__m128i lo = _mm_unpacklo_epi8(ab, zero);
					__m128i hi = _mm_unpackhi_epi8(ab, zero);
					__m128i *ph = (__m128i *)(acc_h + xx);
					__m128i *pl = (__m128i *)(acc_l + xx);
					__m128i mlh = _mm_madd_epi16(lo, vh), mhh = _mm_madd_epi16(hi, vh);
					__m128i mll = _mm_madd_epi16(lo, vl), mhl = _mm_madd_epi16(hi, vl);
					_mm_storeu_si128(ph, _mm_add_epi32(_mm_loadu_si128(ph), mlh));
					_mm_storeu_si128(ph + 1,
							 _mm_add_epi32(_mm_loadu_si128(ph + 1), mhh));
					_mm_storeu_si128(pl, _mm_add_epi32(_mm_loadu_si128(pl), mll));
					_mm_storeu_si128(pl + 1,
							 _mm_add_epi32(_mm_loadu_si128(pl + 1), mhl));
				}
			}
			for (xx = 0; xx < w / 8 * 8; xx++) {
				int32_t ss = (acc_h[xx] << SPLIT_BITS) + acc_l[xx];
				store_out(out_u8, out_f, (size_t)yy * w + xx, ss);
			}
			xx = w / 8 * 8;
		}
#endif
		for (; xx < w; xx++) {
			int32_t ss = 0;
			for (int32_t y = 0; y < n; y++)
				ss += src[(size_t)(ymin + y) * w + xx] * k[y];
			store_out(out_u8, out_f, (size_t)yy * w + xx, ss);
		}
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
#ifdef BIO_RESIZE_SSE2
	if (p->need_h && p->h.kpad && p->v.kpad) {
		/* transposed intermediate: one row per output column, zero-padded by kpad */
		uint32_t n_rows = p->y_last - p->y_first;
		size_t ts = n_rows + (size_t)p->v.kpad;
		uint8_t *tmpT = malloc(ts * p->out_w);
		if (!tmpT)
			return bio_error_set(err, BIO_ENOMEM, "resize: out of memory");
		for (uint32_t xx = 0; xx < p->out_w; xx++)
			memset(tmpT + xx * ts + n_rows, 0, (size_t)p->v.kpad);
		pass_h_t(tmpT, ts, p, in->pixels, p->y_first, p->y_last);
		pass_v_t(out_f, out_u8, p, tmpT, ts, p->y_first);
		free(tmpT);
		return 0;
	}
#endif
	/* scratch: 2 * out_w accumulators, then the horizontal pass's rows y_first..y_last */
	size_t tmp_bytes = p->need_h ? (size_t)p->out_w * (p->y_last - p->y_first) : 0;
	int32_t *acc = malloc(sizeof *acc * 2 * p->out_w + tmp_bytes);
	if (!acc)
		return bio_error_set(err, BIO_ENOMEM, "resize: out of memory");
	if (p->need_h) {
		uint8_t *tmp = (uint8_t *)(acc + 2 * p->out_w);
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
