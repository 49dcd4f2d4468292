/* Fingerprint segmentation, crop and contrast normalisation (include/bio/segment.h). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bio/segment.h"

int bio_fp_segment_params_from_config(struct bio_fp_segment_params *p, const struct bio_config *c,
				      struct bio_error *err)
{
	int64_t block, margin;
	int rc;
	memset(p, 0, sizeof *p);
	if ((rc = bio_config_get_bool(c, "prep.fingerprint.segment", &p->enabled, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.fingerprint.block", 4, 128, &block, err)) < 0 ||
	    (rc = bio_config_get_double_range(c, "prep.fingerprint.threshold", 0.0, 1.0,
					      &p->threshold, err)) < 0 ||
	    (rc = bio_config_get_double_range(c, "prep.fingerprint.min_foreground", 0.0, 1.0,
					      &p->min_foreground, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.fingerprint.margin", 0, 64, &margin, err)) < 0)
		return rc;
	p->block = (int)block;
	p->margin = (int)margin;
	return 0;
}

/* The 3 x 3 erosion (erode != 0: every cell of the window set, cells outside counting as unset)
 * or dilation (any cell set) of mask [hb][wb] into out. */
static void morph3(uint8_t *out, const uint8_t *mask, int hb, int wb, int erode)
{
	for (int y = 0; y < hb; y++)
		for (int x = 0; x < wb; x++) {
			int all = 1, any = 0;
			for (int dy = -1; dy <= 1; dy++)
				for (int dx = -1; dx <= 1; dx++) {
					int yy = y + dy, xx = x + dx;
					int v = yy >= 0 && yy < hb && xx >= 0 && xx < wb &&
						mask[(size_t)yy * wb + xx];
					all &= v;
					any |= v;
				}
			out[(size_t)y * wb + x] = (uint8_t)(erode ? all : any);
		}
}

int bio_fp_segment(struct bio_image *out, const struct bio_image *in,
		   const struct bio_fp_segment_params *p, struct bio_fp_segment_info *info,
		   struct bio_error *err)
{
	memset(out, 0, sizeof *out);
	if (info) {
		memset(info, 0, sizeof *info);
		info->failed = 1; /* until it succeeds */
	}
	const int b = p->block;
	if (!in || !in->pixels || in->width < (uint32_t)b || in->height < (uint32_t)b)
		return bio_error_set(err, BIO_EINVAL,
				     "fingerprint segmentation: image %ux%u is smaller than one %dx%d "
				     "block (prep.fingerprint.block)",
				     in ? in->width : 0, in ? in->height : 0, b, b);
	const int wb = (int)(in->width / (uint32_t)b), hb = (int)(in->height / (uint32_t)b);
	const size_t nb = (size_t)wb * hb, w = in->width;
	double *var = malloc(nb * sizeof(double));
	uint8_t *mask = calloc(nb, 1), *tmp = calloc(nb, 1);
	if (!var || !mask || !tmp) {
		free(var);
		free(mask);
		free(tmp);
		return bio_error_set(err, BIO_ENOMEM, "fingerprint segmentation: out of memory");
	}
	/* 1. block variances times n^2, exact: n sum(x^2) - sum(x)^2 */
	const int64_t n = (int64_t)b * b;
	double vmax = 0.0;
	for (int by = 0; by < hb; by++)
		for (int bx = 0; bx < wb; bx++) {
			int64_t s1 = 0, s2 = 0;
			for (int y = by * b; y < (by + 1) * b; y++) {
				const uint8_t *row = in->pixels + (size_t)y * w + (size_t)bx * b;
				for (int x = 0; x < b; x++) {
					s1 += row[x];
					s2 += (int64_t)row[x] * row[x];
				}
			}
			double v = (double)(n * s2 - s1 * s1);
			var[(size_t)by * wb + bx] = v;
			if (v > vmax)
				vmax = v;
		}
	const double t = p->threshold * p->threshold * vmax;
	for (size_t i = 0; i < nb; i++)
		tmp[i] = (uint8_t)(vmax > 0.0 && var[i] >= t);
	/* 2. opening */
	morph3(mask, tmp, hb, wb, 1);
	morph3(tmp, mask, hb, wb, 0);
	memcpy(mask, tmp, nb);
	/* 2b. holes filled: background blocks not reached from the border through background
	 * (4-neighbours) become foreground (a smudge or a pale patch inside the print) */
	{
		size_t *stack = malloc(nb * sizeof(size_t)), top = 0;
		if (!stack) {
			free(var);
			free(mask);
			free(tmp);
			return bio_error_set(err, BIO_ENOMEM, "fingerprint segmentation: out of memory");
		}
		memset(tmp, 0, nb); /* tmp: background reached from the border */
		for (int by = 0; by < hb; by++)
			for (int bx = 0; bx < wb; bx++) {
				size_t i = (size_t)by * wb + bx;
				if ((by == 0 || bx == 0 || by == hb - 1 || bx == wb - 1) && !mask[i]) {
					tmp[i] = 1;
					stack[top++] = i;
				}
			}
		while (top > 0) {
			size_t i = stack[--top];
			int by = (int)(i / (size_t)wb), bx = (int)(i % (size_t)wb);
			const int ny[4] = {by - 1, by + 1, by, by}, nx[4] = {bx, bx, bx - 1, bx + 1};
			for (int k = 0; k < 4; k++) {
				if (ny[k] < 0 || ny[k] >= hb || nx[k] < 0 || nx[k] >= wb)
					continue;
				size_t j = (size_t)ny[k] * wb + nx[k];
				if (!mask[j] && !tmp[j]) {
					tmp[j] = 1;
					stack[top++] = j;
				}
			}
		}
		for (size_t i = 0; i < nb; i++)
			mask[i] = (uint8_t)!tmp[i];
		free(stack);
	}
	/* 3. the share of foreground blocks, their bounding box */
	size_t n_fg = 0;
	int bx0 = wb, by0 = hb, bx1 = -1, by1 = -1;
	for (int by = 0; by < hb; by++)
		for (int bx = 0; bx < wb; bx++)
			if (mask[(size_t)by * wb + bx]) {
				n_fg++;
				bx0 = bx < bx0 ? bx : bx0;
				bx1 = bx > bx1 ? bx : bx1;
				by0 = by < by0 ? by : by0;
				by1 = by > by1 ? by : by1;
			}
	const double fg = (double)n_fg / (double)nb;
	int rc = 0;
	if (info)
		info->foreground = fg;
	if (n_fg == 0 || fg < p->min_foreground) {
		rc = bio_error_set(err, BIO_EINVAL,
				   "fingerprint segmentation failed: foreground %.1f%% of the image, "
				   "below prep.fingerprint.min_foreground %.1f%%",
				   100.0 * fg, 100.0 * p->min_foreground);
		goto done;
	}
	/* 5 (first half). mean and deviation of the foreground blocks' pixels, exact sums */
	uint64_t s1 = 0, s2 = 0, cnt = 0;
	for (int by = 0; by < hb; by++)
		for (int bx = 0; bx < wb; bx++) {
			if (!mask[(size_t)by * wb + bx])
				continue;
			for (int y = by * b; y < (by + 1) * b; y++) {
				const uint8_t *row = in->pixels + (size_t)y * w + (size_t)bx * b;
				for (int x = 0; x < b; x++) {
					s1 += row[x];
					s2 += (uint64_t)row[x] * row[x];
				}
			}
			cnt += (uint64_t)n;
		}
	const double mean = (double)s1 / (double)cnt;
	const double var_fg = (double)s2 / (double)cnt - mean * mean;
	const double sd = var_fg > 0.0 ? sqrt(var_fg) : 0.0;
	if (!(sd > 0.0)) {
		rc = bio_error_set(err, BIO_EINVAL,
				   "fingerprint segmentation failed: the foreground is flat");
		goto done;
	}
	/* 4. the crop, in pixels: the box grown by the margin, clamped, made square */
	int64_t x0 = (int64_t)(bx0 - p->margin) * b, y0 = (int64_t)(by0 - p->margin) * b;
	int64_t x1 = (int64_t)(bx1 + 1 + p->margin) * b, y1 = (int64_t)(by1 + 1 + p->margin) * b;
	x0 = x0 < 0 ? 0 : x0;
	y0 = y0 < 0 ? 0 : y0;
	x1 = x1 > (int64_t)in->width ? (int64_t)in->width : x1;
	y1 = y1 > (int64_t)in->height ? (int64_t)in->height : y1;
	const int64_t side = x1 - x0 > y1 - y0 ? x1 - x0 : y1 - y0;
	const int64_t cx = x0 - (side - (x1 - x0)) / 2, cy = y0 - (side - (y1 - y0)) / 2;
	out->pixels = malloc((size_t)side * (size_t)side);
	if (!out->pixels) {
		rc = bio_error_set(err, BIO_ENOMEM, "fingerprint segmentation: out of memory");
		goto done;
	}
	out->width = out->height = (uint32_t)side;
	/* 5. foreground pixels normalised, every other cell the background level */
	const double scale = 2.0 * sd;
	for (int64_t y = 0; y < side; y++) {
		uint8_t *o = out->pixels + (size_t)y * (size_t)side;
		const int64_t iy = cy + y, by = iy >= 0 ? iy / b : -1;
		for (int64_t x = 0; x < side; x++) {
			const int64_t ix = cx + x, bx = ix >= 0 ? ix / b : -1;
			if (iy < 0 || ix < 0 || by >= hb || bx >= wb ||
			    !mask[(size_t)by * wb + (size_t)bx]) {
				o[x] = 128;
				continue;
			}
			double v = floor(128.0 + 127.0 * (((double)in->pixels[(size_t)iy * w + ix] -
							    mean) / scale) + 0.5);
			o[x] = (uint8_t)(v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v);
		}
	}
	if (info) {
		info->failed = 0;
		info->foreground = fg;
		info->crop_x = cx;
		info->crop_y = cy;
		info->side = (uint32_t)side;
		info->mean = mean;
		info->std = sd;
	}
done:
	free(var);
	free(mask);
	free(tmp);
	return rc;
}

/* ------------------------------------------------------------------- iris ---- */

int bio_iris_segment_params_from_config(struct bio_iris_segment_params *p,
					const struct bio_config *c, struct bio_error *err)
{
	int64_t sh, sw;
	int rc;
	memset(p, 0, sizeof *p);
	if ((rc = bio_config_get_bool(c, "prep.iris.segment", &p->enabled, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.iris.strip_height", 4, 1024, &sh, err)) < 0 ||
	    (rc = bio_config_get_int_range(c, "prep.iris.strip_width", 4, 1024, &sw, err)) < 0)
		return rc;
	p->strip_height = (int)sh;
	p->strip_width = (int)sw;
	return 0;
}

#define IRIS_PI 3.14159265358979323846

/* The smoothed image and its size. */
struct iris_img {
	int w, h;
	const double *v; /* [h][w] */
};

/* v at (x, y), bilinear, coordinates clamped to the image. */
static double iris_at(const struct iris_img *im, double x, double y)
{
	x = x < 0 ? 0 : x > im->w - 1 ? im->w - 1 : x;
	y = y < 0 ? 0 : y > im->h - 1 ? im->h - 1 : y;
	int x0 = (int)x, y0 = (int)y;
	int x1 = x0 + 1 < im->w ? x0 + 1 : x0, y1 = y0 + 1 < im->h ? y0 + 1 : y0;
	double tx = x - x0, ty = y - y0;
	const double *r0 = im->v + (size_t)y0 * im->w, *r1 = im->v + (size_t)y1 * im->w;
	double a = r0[x0] + (r0[x1] - r0[x0]) * tx, b = r1[x0] + (r1[x1] - r1[x0]) * tx;
	return a + (b - a) * ty;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The mean of the middle half of v[0..n) (sorted in place; insertion sort: n <= 64). */
static double mid_mean(double *v, int n)
{
	for (int i = 1; i < n; i++) {
		double x = v[i];
		int k = i;
		while (k > 0 && v[k - 1] > x) {
			v[k] = v[k - 1];
			k--;
		}
		v[k] = x;
	}
	int a = n / 4, b = n - n / 4;
	double s = 0;
	for (int i = a; i < b; i++)
		s += v[i];
	return s / (b - a);
}

/* The jump across the circle (cx, cy, r) at the angle of cosine c and sine s: the mean of 3
 * samples outside (r + 1..3) minus the mean of 3 inside (r - 3..1). */
static double iris_jump(const struct iris_img *im, double cx, double cy, double r, double c,
			double s)
{
	double d = 0;
	for (int k = 1; k <= 3; k++) {
		double ro = r + k, ri = r - k > 0 ? r - k : 0;
		d += iris_at(im, cx + ro * c, cy + ro * s) - iris_at(im, cx + ri * c, cy + ri * s);
	}
	return d / 3;
}

#define IRIS_N_ANGLES 64
#define IRIS_N_ARC 16

/* The cosines and sines of the angles the scores look at, computed once (the searches call the
 * scores millions of times per image): the full circle at 64 and at 32 angles, and the limbus
 * arcs (right, then left). */
static double ring64[IRIS_N_ANGLES][2], ring32[IRIS_N_ANGLES / 2][2], arcs[IRIS_N_ARC][2][2];
static pthread_once_t rings_once = PTHREAD_ONCE_INIT;

static void rings_init(void)
{
	for (int a = 0; a < IRIS_N_ANGLES; a++) {
		double th = 2 * IRIS_PI * a / IRIS_N_ANGLES;
		ring64[a][0] = cos(th);
		ring64[a][1] = sin(th);
	}
	for (int a = 0; a < IRIS_N_ANGLES / 2; a++) {
		double th = 2 * IRIS_PI * a / (IRIS_N_ANGLES / 2);
		ring32[a][0] = cos(th);
		ring32[a][1] = sin(th);
	}
	for (int a = 0; a < IRIS_N_ARC; a++) {
		double t = (-30.0 + 70.0 * a / (IRIS_N_ARC - 1)) * IRIS_PI / 180;
		arcs[a][0][0] = cos(t);
		arcs[a][0][1] = sin(t);
		arcs[a][1][0] = cos(IRIS_PI - t);
		arcs[a][1][1] = sin(IRIS_PI - t);
	}
}

/* The pupil score of the circle: the middle half of the jumps at n_angles (64 or 32) angles. */
static double pupil_score_n(const struct iris_img *im, double cx, double cy, double r,
			    int n_angles)
{
	pthread_once(&rings_once, rings_init);
	double(*ring)[2] = n_angles == IRIS_N_ANGLES ? ring64 : ring32;
	BIO_ASSERT(n_angles == IRIS_N_ANGLES || n_angles == IRIS_N_ANGLES / 2);
	double j[IRIS_N_ANGLES];
	for (int a = 0; a < n_angles; a++)
		j[a] = iris_jump(im, cx, cy, r, ring[a][0], ring[a][1]);
	return mid_mean(j, n_angles);
}

/* The limbus score of the circle: on each side the middle half of the jumps at 16 angles from
 * 30 degrees above the horizontal to 40 below; the smaller side. */
static double limbus_score(const struct iris_img *im, double cx, double cy, double r)
{
	pthread_once(&rings_once, rings_init);
	double jr[IRIS_N_ARC], jl[IRIS_N_ARC];
	for (int a = 0; a < IRIS_N_ARC; a++) {
		jr[a] = iris_jump(im, cx, cy, r, arcs[a][0][0], arcs[a][0][1]);
		jl[a] = iris_jump(im, cx, cy, r, arcs[a][1][0], arcs[a][1][1]);
	}
	double r_ = mid_mean(jr, IRIS_N_ARC), l_ = mid_mean(jl, IRIS_N_ARC);
	return r_ < l_ ? r_ : l_;
}

/* The sum of the image over pixels x0..x1, y0..y1 (inclusive) from its integral image ii
 * [h + 1][w + 1]. */
static double box_sum(const double *ii, int w, int x0, int y0, int x1, int y1)
{
	const size_t W = (size_t)w + 1;
	return ii[(size_t)(y1 + 1) * W + (size_t)(x1 + 1)] - ii[(size_t)y0 * W + (size_t)(x1 + 1)] -
	       ii[(size_t)(y1 + 1) * W + (size_t)x0] + ii[(size_t)y0 * W + (size_t)x0];
}

#define IRIS_N_CAND 6

/* A pupil candidate of the centre-surround search. */
struct pupil_cand {
	double score;
	int x, y, r;
};

/* Adds (x, y, r) with score to the best-first list c[0..*n) of at most IRIS_N_CAND: a
 * candidate whose centre lies within the larger radius of a better one is dropped, worse ones
 * within its own are removed. */
static void cand_add(struct pupil_cand *c, int *n, double score, int x, int y, int r)
{
	for (int i = 0; i < *n; i++) {
		int dx = c[i].x - x, dy = c[i].y - y, rr = c[i].r > r ? c[i].r : r;
		if (dx * dx + dy * dy <= rr * rr && c[i].score >= score)
			return;
	}
	int m = 0; /* drop worse overlapping ones */
	for (int i = 0; i < *n; i++) {
		int dx = c[i].x - x, dy = c[i].y - y, rr = c[i].r > r ? c[i].r : r;
		if (!(dx * dx + dy * dy <= rr * rr))
			c[m++] = c[i];
	}
	*n = m;
	if (*n == IRIS_N_CAND && c[*n - 1].score >= score)
		return;
	int k = *n < IRIS_N_CAND ? (*n)++ : *n - 1;
	while (k > 0 && c[k - 1].score < score) {
		c[k] = c[k - 1];
		k--;
	}
	c[k] = (struct pupil_cand){score, x, y, r};
}

/* The best pupil circle by its edge, centres within +-d px of (*cx, *cy) by 1 px, radii ra..rb
 * by 0.5 (those under 2 passed over), into (*cx, *cy, *cr); returns its score. */
static double search_pupil(const struct iris_img *im, int d, double ra, double rb, double *cx,
			   double *cy, double *cr)
{
	const double x0 = *cx, y0 = *cy;
	double s_best = -1e300;
	for (int dy = -d; dy <= d; dy++)
		for (int dx = -d; dx <= d; dx++)
			for (double r = ra; r <= rb; r += 0.5) {
				if (r < 2)
					continue;
				double sc = pupil_score_n(im, x0 + dx, y0 + dy, r, IRIS_N_ANGLES);
				if (sc > s_best) {
					s_best = sc;
					*cx = x0 + dx;
					*cy = y0 + dy;
					*cr = r;
				}
			}
	return s_best;
}

/* Refines the pupil circle (*cx, *cy, *cr) by its edge: centre +-0.3 r by 1 px, radius
 * 0.75..1.35 r by 0.5 (at most 0.27 side); returns the best circle's score. */
static double refine_pupil(const struct iris_img *im, int side, double *cx, double *cy,
			   double *cr)
{
	const double r0 = *cr, rb = 1.35 * r0 < 0.27 * side ? 1.35 * r0 : 0.27 * side;
	return search_pupil(im, (int)ceil(0.3 * r0), floor(0.75 * r0 * 2) / 2, rb, cx, cy, cr);
}

/* Refines (*cx, *cy, *cr): centre +-1 px, radius +-1 by 0.5, 64 angles; returns the score. */
static double refine_pupil_small(const struct iris_img *im, double *cx, double *cy, double *cr)
{
	return search_pupil(im, 1, *cr - 1, *cr + 1, cx, cy, cr);
}

/* The limbus around the pupil (px, py, pr): centre within 0.4 pr (every 2 px, then +-1),
 * radius 1.5..5.2 pr (every px, then +-1 by 0.5); returns its score, the circle in *ix, *iy,
 * *ir. */
static double find_limbus(const struct iris_img *im, int side, double px, double py, double pr,
			  double *ix, double *iy, double *ir)
{
	const int dc = (int)ceil(0.4 * pr);
	double r_min = 1.5 * pr > 0.15 * side ? 1.5 * pr : 0.15 * side;
	double r_max = 5.2 * pr < 0.5 * side ? 5.2 * pr : 0.5 * side, s_best = -1e300;
	*ix = px;
	*iy = py;
	*ir = r_min;
	for (int dy = -dc; dy <= dc; dy += 2)
		for (int dx = -dc; dx <= dc; dx += 2) {
			if (dx * dx + dy * dy > dc * dc)
				continue;
			for (double r = ceil(r_min); r <= r_max; r += 1) {
				double sc = limbus_score(im, px + dx, py + dy, r);
				if (sc > s_best) {
					s_best = sc;
					*ix = px + dx;
					*iy = py + dy;
					*ir = r;
				}
			}
		}
	const double x0 = *ix, y0 = *iy, r0 = *ir;
	for (int dy = -1; dy <= 1; dy++)
		for (int dx = -1; dx <= 1; dx++)
			for (double r = r0 - 1; r <= r0 + 1; r += 0.5) {
				double sc = limbus_score(im, x0 + dx, y0 + dy, r);
				if (sc > s_best) {
					s_best = sc;
					*ix = x0 + dx;
					*iy = y0 + dy;
					*ir = r;
				}
			}
	return s_best;
}

/* How dark a circle's inside is: the mean of the darker half of im at 0.25, 0.5 and 0.75 r
 * from (cx, cy), 8 angles each (a highlight inside the pupil does not count). */
static double inner_mean(const struct iris_img *im, double cx, double cy, double r)
{
	double v[24], s = 0;
	for (int k = 1; k <= 3; k++)
		for (int a = 0; a < 8; a++) {
			double th = 2 * IRIS_PI * a / 8;
			v[(k - 1) * 8 + a] =
			    iris_at(im, cx + 0.25 * k * r * cos(th), cy + 0.25 * k * r * sin(th));
		}
	qsort(v, 24, sizeof v[0], cmp_double);
	for (int i = 0; i < 12; i++)
		s += v[i];
	return s / 12;
}

/* The pupil inside the limbus (ix, iy, ir): centre within 0.1 ir (every px), radius
 * 0.18..0.7 ir (every 0.5 px); returns its score, the circle in *px, *py, *pr. */
static double pupil_in_limbus(const struct iris_img *im, int lo, double ix, double iy,
			      double ir, double *px, double *py, double *pr)
{
	const int d = (int)ceil(0.1 * ir);
	double s_best = -1e300, j_best = -1e300;
	for (int dy = -d; dy <= d; dy++)
		for (int dx = -d; dx <= d; dx++)
			for (double r = floor(0.18 * ir * 2) / 2; r <= 0.7 * ir; r += 0.5) {
				if (r < 2)
					continue;
				double j = pupil_score_n(im, ix + dx, iy + dy, r, 32);
				double sc = j / (inner_mean(im, ix + dx, iy + dy, r) - lo + 8.0);
				if (sc > s_best) {
					s_best = sc;
					j_best = j;
					*px = ix + dx;
					*py = iy + dy;
					*pr = r;
				}
			}
	return j_best;
}

/* The pupil (px, py, pr) and limbus (ix, iy, ir) circles into info. */
static void set_circles(struct bio_iris_segment_info *info, double px, double py, double pr,
			double ix, double iy, double ir)
{
	info->pupil[0] = px;
	info->pupil[1] = py;
	info->pupil[2] = pr;
	info->iris[0] = ix;
	info->iris[1] = iy;
	info->iris[2] = ir;
}

/* 1 when the pupil (px, py, pr) sits in the limbus (ix, iy, ir) as an eye's does: centres at
 * most 0.12 ir apart, pr 0.15..0.72 ir. */
static int circles_nest(double px, double py, double pr, double ix, double iy, double ir)
{
	double dx = px - ix, dy = py - iy, d = 0.12 * ir;
	return dx * dx + dy * dy <= d * d && pr >= 0.15 * ir && pr <= 0.72 * ir;
}

/* The least contrast of a pupil candidate and of a limbus jump, gray levels. */
#define IRIS_MIN_PUPIL_CONTRAST 4.0
#define IRIS_MIN_LIMBUS_JUMP 2.0

/* dst = the 3-tap mean of src along (dx, dy) = (1, 0) (rows) or (0, 1) (columns), the edges
 * replicated. */
static void box3_1d(double *dst, const double *src, int w, int h, int dx, int dy)
{
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			double s = 0;
			for (int d = -1; d <= 1; d++) {
				int xx = x + d * dx, yy = y + d * dy;
				xx = xx < 0 ? 0 : xx >= w ? w - 1 : xx;
				yy = yy < 0 ? 0 : yy >= h ? h - 1 : yy;
				s += src[(size_t)yy * w + xx];
			}
			dst[(size_t)y * w + x] = s / 3;
		}
}

int bio_iris_find(struct bio_iris_segment_info *info, const struct bio_image *in,
		  struct bio_error *err)
{
	memset(info, 0, sizeof *info);
	info->failed = 1;
	if (!in || !in->pixels || in->width < 16 || in->height < 16)
		return bio_error_set(err, BIO_EINVAL,
				     "iris segmentation: image %ux%u is smaller than 16x16",
				     in ? in->width : 0, in ? in->height : 0);
	const int w = (int)in->width, h = (int)in->height, side = w < h ? w : h;
	const size_t n = (size_t)w * h;
	double *v = malloc(n * sizeof *v), *t = malloc(n * sizeof *t);
	double *ii = malloc((size_t)(w + 1) * (size_t)(h + 1) * sizeof *ii);
	int rc = 0;
	if (!v || !t || !ii) {
		rc = bio_error_set(err, BIO_ENOMEM, "iris segmentation: out of memory");
		goto out;
	}
	/* 1. two 3 x 3 box passes, edges replicated */
	for (size_t i = 0; i < n; i++)
		v[i] = in->pixels[i];
	for (int pass = 0; pass < 2; pass++) {
		box3_1d(t, v, w, h, 1, 0);
		box3_1d(v, t, w, h, 0, 1);
	}
	const struct iris_img im = {w, h, v};
	size_t hist[256] = {0};
	for (size_t i = 0; i < n; i++) {
		int q = (int)floor(v[i] + 0.5);
		hist[q < 0 ? 0 : q > 255 ? 255 : q]++;
	}
	int lo = 0;
	{
		size_t c = 0;
		for (int q = 0; q < 256; q++) {
			c += hist[q];
			if (c * 1000 <= n * 2)
				lo = q;
		}
	}
	/* 2. the pupil: a centre-surround search over squares (integral image): the mean of the
	 * frame between half-sides 1.2 r and 1.6 r minus the mean of the square of half-side
	 * 0.7 r, centres every px over the middle 60% of the image, r every px; the best circle
	 * then refined by its edge (centre +-0.3 r, radius 0.75..1.35 r) */
	struct pupil_cand cand[IRIS_N_CAND];
	int n_cand = 0;
	{
		for (int y = 0; y <= h; y++)
			for (int x = 0; x <= w; x++)
				ii[(size_t)y * (w + 1) + x] =
				    x == 0 || y == 0 ? 0
						     : v[(size_t)(y - 1) * w + (x - 1)] +
						       ii[(size_t)(y - 1) * (w + 1) + x] +
						       ii[(size_t)y * (w + 1) + (x - 1)] -
						       ii[(size_t)(y - 1) * (w + 1) + (x - 1)];
		const int r_min = (int)ceil(0.045 * side > 3 ? 0.045 * side : 3);
		const int r_max = (int)floor(0.25 * side);
		const int x0 = (int)floor(w / 2.0 - 0.3 * side), x1 = (int)ceil(w / 2.0 + 0.3 * side);
		const int y0 = (int)floor(h / 2.0 - 0.3 * side), y1 = (int)ceil(h / 2.0 + 0.3 * side);
		for (int r = r_min; r <= r_max; r++) {
			const int a = (int)floor(0.7 * r + 0.5), b1 = (int)floor(1.2 * r + 0.5),
				  b2 = (int)floor(1.6 * r + 0.5);
			for (int y = y0 > b2 ? y0 : b2; y <= y1 && y + b2 < h; y++)
				for (int x = x0 > b2 ? x0 : b2; x <= x1 && x + b2 < w; x++) {
					double s_in = box_sum(ii, w, x - a, y - a, x + a, y + a);
					double n_in = (2.0 * a + 1) * (2.0 * a + 1);
					/* the frame's four sides: left and right full height, top
					 * and bottom between them */
					double n_lr = (double)(b2 - b1) * (2.0 * b2 + 1);
					double n_tb = (double)(b2 - b1) * (2.0 * b1 + 1);
					double f[4] = {
					    box_sum(ii, w, x - b2, y - b2, x - b1 - 1, y + b2) / n_lr,
					    box_sum(ii, w, x + b1 + 1, y - b2, x + b2, y + b2) / n_lr,
					    box_sum(ii, w, x - b1, y - b2, x + b1, y - b1 - 1) / n_tb,
					    box_sum(ii, w, x - b1, y + b1 + 1, x + b1, y + b2) / n_tb};
					qsort(f, 4, sizeof f[0], cmp_double);
					double m_in = s_in / n_in, dk = m_in - lo + 8.0;
					double sc = (f[1] - m_in) * r / (dk * dk);
					cand_add(cand, &n_cand, sc, x, y, r);
				}
		}
	}
	/* limbus-first candidates: lateral-arc circles of radius 0.2..0.5 side, centres every 2 px
	 * over the middle 40% */
	struct pupil_cand lcand[IRIS_N_CAND];
	int n_lcand = 0;
	{
		const int x0 = (int)floor(w / 2.0 - 0.2 * side), x1 = (int)ceil(w / 2.0 + 0.2 * side);
		const int y0 = (int)floor(h / 2.0 - 0.2 * side), y1 = (int)ceil(h / 2.0 + 0.2 * side);
		for (int y = y0; y <= y1; y += 2)
			for (int x = x0; x <= x1; x += 2)
				for (int r = (int)ceil(0.2 * side); r <= 0.5 * side; r++)
					cand_add(lcand, &n_lcand, limbus_score(&im, x, y, r), x, y, r);
	}
	/* 2b-3. each candidate refined, its limbus found; the best product of the two jumps */
	double best = -1e300;
	for (int i = 0; i < n_lcand; i++) {
		double px = 0, py = 0, pr = 0, ix = lcand[i].x, iy = lcand[i].y, ir = lcand[i].r;
		double pj = pupil_in_limbus(&im, lo, ix, iy, ir, &px, &py, &pr);
		pj = refine_pupil_small(&im, &px, &py, &pr);
		double lj = find_limbus(&im, side, px, py, pr, &ix, &iy, &ir);
		if (pj < IRIS_MIN_PUPIL_CONTRAST || lj < IRIS_MIN_LIMBUS_JUMP || pj * lj <= best ||
		    !circles_nest(px, py, pr, ix, iy, ir))
			continue;
		best = pj * lj;
		set_circles(info, px, py, pr, ix, iy, ir);
	}
	for (int i = 0; i < n_cand; i++) {
		double px = cand[i].x, py = cand[i].y, pr = cand[i].r, ix, iy, ir;
		double pj = refine_pupil(&im, side, &px, &py, &pr);
		double lj = find_limbus(&im, side, px, py, pr, &ix, &iy, &ir);
		if (lj >= IRIS_MIN_LIMBUS_JUMP) { /* the pupil again, inside that limbus */
			pj = pupil_in_limbus(&im, lo, ix, iy, ir, &px, &py, &pr);
			pj = refine_pupil_small(&im, &px, &py, &pr);
			lj = find_limbus(&im, side, px, py, pr, &ix, &iy, &ir);
		}
		if (pj < IRIS_MIN_PUPIL_CONTRAST || lj < IRIS_MIN_LIMBUS_JUMP ||
		    !circles_nest(px, py, pr, ix, iy, ir))
			continue;
		if (pj * lj > best) {
			best = pj * lj;
			set_circles(info, px, py, pr, ix, iy, ir);
		}
	}
	if (best < 0) {
		rc = bio_error_set(err, BIO_EINVAL,
				   "iris segmentation failed: no pupil inside a limbus (no dark circle "
				   "with an edge of %.0f gray levels inside one with %.0f on both "
				   "sides; prep.iris.segment)",
				   IRIS_MIN_PUPIL_CONTRAST, IRIS_MIN_LIMBUS_JUMP);
		goto out;
	}
	info->failed = 0;
out:
	free(v);
	free(t);
	free(ii);
	return rc;
}

int bio_iris_segment(struct bio_image *out, const struct bio_image *in,
		     const struct bio_iris_segment_params *p, struct bio_iris_segment_info *info,
		     struct bio_error *err)
{
	struct bio_iris_segment_info own;
	struct bio_iris_segment_info *f = info ? info : &own;
	memset(out, 0, sizeof *out);
	int rc = bio_iris_find(f, in, err);
	if (rc < 0)
		return rc;
	const int H = p->strip_height, W = p->strip_width;
	out->pixels = malloc((size_t)H * (size_t)W);
	if (!out->pixels) {
		f->failed = 1;
		return bio_error_set(err, BIO_ENOMEM, "iris segmentation: out of memory");
	}
	out->width = (uint32_t)W;
	out->height = (uint32_t)H;
	const int w = (int)in->width, h = (int)in->height;
	for (int j = 0; j < W; j++) {
		double th = 2 * IRIS_PI * j / W, c = cos(th), s = sin(th);
		double x0 = f->pupil[0] + f->pupil[2] * c, y0 = f->pupil[1] + f->pupil[2] * s;
		double x1 = f->iris[0] + f->iris[2] * c, y1 = f->iris[1] + f->iris[2] * s;
		for (int i = 0; i < H; i++) {
			double rho = (i + 0.5) / H;
			double x = x0 + (x1 - x0) * rho, y = y0 + (y1 - y0) * rho;
			x = x < 0 ? 0 : x > w - 1 ? w - 1 : x;
			y = y < 0 ? 0 : y > h - 1 ? h - 1 : y;
			int xa = (int)x, ya = (int)y;
			int xb = xa + 1 < w ? xa + 1 : xa, yb = ya + 1 < h ? ya + 1 : ya;
			double tx = x - xa, ty = y - ya;
			const uint8_t *ra = in->pixels + (size_t)ya * w, *rb = in->pixels + (size_t)yb * w;
			double a = ra[xa] + (ra[xb] - ra[xa]) * tx, b = rb[xa] + (rb[xb] - rb[xa]) * tx;
			double val = floor(a + (b - a) * ty + 0.5);
			out->pixels[(size_t)i * W + j] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val);
		}
	}
	return 0;
}
