/* Synthetic iris and fingerprint images. An identity model is drawn from a stream keyed by
 * (seed, modality, subject, side[, finger]); each sample draws its capture conditions from a
 * stream keyed by the identity and the sample number, so output never depends on threads or
 * order.
 *
 * Iris: the identity texture lives in normalised polar ("rubber sheet") coordinates, so it stays
 * the same when the pupil dilates: a random angular x radial Fourier series, radial furrows,
 * crypts and a collarette. A sample places the eye (shift, scale, rotation), sets the pupil
 * size and the eyelid opening, adds eyelashes, a specular highlight, blur, contrast changes and
 * sensor noise.
 *
 * Fingerprint: the identity has an orientation field from a zero-pole (Sherlock-Monro) model
 * with 0-2 cores and 0-2 deltas by class (arch, tented arch, loops, whorl) plus a smooth random
 * perturbation, and a ridge period; ridges are grown from identity noise by iterated oriented
 * (Gabor) filtering with saturation, which leaves identity-specific minutiae. A sample places the
 * finger (translation, rotation), distorts it elastically, sets pressure (ridge thickness and
 * contact area), cuts a partial contact, adds dryness, blur and noise. */
#include "bio/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bio/rng.h"

#define PI 3.14159265358979323846

/* Domain keys that keep the streams of each use of the seed apart. */
enum {
	KEY_IRIS_ID = 0x69726973,   /* "iris" */
	KEY_IRIS_SAMPLE = 0x69727370,
	KEY_PRINT_ID = 0x66707269,  /* "fpri" */
	KEY_PRINT_SAMPLE = 0x66707370,
};

/* ---------------------------------------------------------------- shared helpers ---- */

static const char *const side_names[2] = {"L", "R"};
static const char *const finger_names[BIO_SYNTH_N_FINGERS] = {"thumb", "index", "middle", "ring",
							      "little"};

void bio_synth_params_default(struct bio_synth_params *p)
{
	p->size = 128;
	p->seed = 42;
	p->noise = 0.04;
	p->eyelashes = 1;
	p->variation = 1;
}

int bio_synth_params_check(const struct bio_synth_params *p, struct bio_error *err)
{
	if (p->size < BIO_SYNTH_MIN_SIZE || p->size > BIO_SYNTH_MAX_SIZE)
		return bio_error_set(err, BIO_EINVAL, "synth size %u: must be %d..%d", p->size,
				     BIO_SYNTH_MIN_SIZE, BIO_SYNTH_MAX_SIZE);
	if (!(p->noise >= 0 && p->noise <= 1))
		return bio_error_set(err, BIO_EINVAL, "synth noise %g: must be 0..1", p->noise);
	if (!(p->variation >= 0 && p->variation <= 2))
		return bio_error_set(err, BIO_EINVAL, "synth variation %g: must be 0..2",
				     p->variation);
	return 0;
}

const char *bio_synth_side_name(int side)
{
	return side == 0 || side == 1 ? side_names[side] : NULL;
}

const char *bio_synth_finger_name(int finger)
{
	return finger >= 0 && finger < BIO_SYNTH_N_FINGERS ? finger_names[finger] : NULL;
}

int bio_synth_finger_parse(const char *name)
{
	for (int i = 0; i < BIO_SYNTH_N_FINGERS; i++)
		if (strcmp(name, finger_names[i]) == 0)
			return i;
	return -1;
}

int bio_synth_fingers_check(const char *list, char *bad, size_t bad_size)
{
	int fingers[BIO_SYNTH_N_FINGERS], n_fingers = 0;
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char name[32];
		if (len == 0 || len >= sizeof name) {
			snprintf(bad, bad_size, "%.*s", (int)(len < 31 ? len : 31), p);
			return -1;
		}
		memcpy(name, p, len);
		name[len] = 0;
		int f = bio_synth_finger_parse(name);
		if (f < 0) {
			snprintf(bad, bad_size, "%s", name);
			return -1;
		}
		for (int k = 0; k < n_fingers; k++)
			if (fingers[k] == f) {
				snprintf(bad, bad_size, "%s (repeated)", name);
				return -1;
			}
		fingers[n_fingers++] = f;
		p += len;
		if (*p == ',' && !*++p) {
			snprintf(bad, bad_size, "(empty)");
			return -1;
		}
	}
	return n_fingers ? 0 : (snprintf(bad, bad_size, "(empty)"), -1);
}

static double clampd(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/* 0 below e0, 1 above e1, smooth in between (e0 < e1). */
static double smoothstep(double e0, double e1, double x)
{
	double t = clampd((x - e0) / (e1 - e0), 0, 1);
	return t * t * (3 - 2 * t);
}

/* Smooth random field: values on a (gw+1) x (gh+1) grid, interpolated with smoothstep weights;
 * sampled at (fx, fy) in [0, 1]. */
struct vnoise {
	int gw, gh;
	float v[33 * 33];
};

static void vnoise_init(struct vnoise *n, struct bio_rng *r, int gw, int gh)
{
	BIO_ASSERT(gw >= 1 && gh >= 1 && (gw + 1) * (gh + 1) <= 33 * 33);
	n->gw = gw;
	n->gh = gh;
	for (int i = 0; i < (gw + 1) * (gh + 1); i++)
		n->v[i] = (float)(2 * bio_rng_uniform(r) - 1);
}

static float vnoise_at(const struct vnoise *n, double fx, double fy)
{
	double x = clampd(fx, 0, 1) * n->gw, y = clampd(fy, 0, 1) * n->gh;
	int ix = (int)x, iy = (int)y;
	if (ix >= n->gw)
		ix = n->gw - 1;
	if (iy >= n->gh)
		iy = n->gh - 1;
	double tx = x - ix, ty = y - iy;
	tx = tx * tx * (3 - 2 * tx);
	ty = ty * ty * (3 - 2 * ty);
	const float *row0 = n->v + iy * (n->gw + 1), *row1 = row0 + n->gw + 1;
	double a = row0[ix] + (row0[ix + 1] - row0[ix]) * tx;
	double b = row1[ix] + (row1[ix + 1] - row1[ix]) * tx;
	return (float)(a + (b - a) * ty);
}

/* Separable Gaussian blur of a w x h float image in place (edges clamped); tmp holds w*h. */
static void blur(float *img, float *tmp, int w, int h, double sigma)
{
	if (sigma < 0.2)
		return;
	int rad = (int)ceil(3 * sigma);
	if (rad > 32)
		rad = 32;
	float k[65];
	double sum = 0;
	for (int i = -rad; i <= rad; i++)
		sum += k[i + rad] = (float)exp(-(double)i * i / (2 * sigma * sigma));
	for (int i = 0; i <= 2 * rad; i++)
		k[i] = (float)(k[i] / sum);
	for (int y = 0; y < h; y++) {
		const float *row = img + (size_t)y * w;
		float *o = tmp + (size_t)y * w;
		for (int x = 0; x < w; x++) {
			float acc = 0;
			if (x >= rad && x + rad < w) {
				for (int i = -rad; i <= rad; i++)
					acc += k[i + rad] * row[x + i];
			} else {
				for (int i = -rad; i <= rad; i++) {
					int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
					acc += k[i + rad] * row[xx];
				}
			}
			o[x] = acc;
		}
	}
	/* Vertical pass row by row (the inner loop runs along contiguous rows). */
	for (int y = 0; y < h; y++) {
		float *o = img + (size_t)y * w;
		for (int x = 0; x < w; x++)
			o[x] = 0;
		for (int i = -rad; i <= rad; i++) {
			int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
			const float *src = tmp + (size_t)yy * w;
			float kv = k[i + rad];
			for (int x = 0; x < w; x++)
				o[x] += kv * src[x];
		}
	}
}

/* Approximately normal deviate for sensor noise: the sum of four 16-bit uniforms (one draw),
 * centred and scaled to unit variance (bounded at +-3.46; much cheaper than Box-Muller). */
static double noise_normal(struct bio_rng *r)
{
	uint64_t x = bio_rng_next(r);
	double sum = (double)(x & 0xffff) + (double)((x >> 16) & 0xffff) +
		     (double)((x >> 32) & 0xffff) + (double)(x >> 48);
	return (sum / 65536.0 - 2.0) * 1.7320508075688772;
}

/* Contrast/brightness about mid-gray, Gaussian sensor noise, rounding to 8 bits. */
static void finish(uint8_t *out, const float *img, size_t n, double contrast, double brightness,
		   double noise_sd, struct bio_rng *r)
{
	for (size_t i = 0; i < n; i++) {
		double v = 128 + (img[i] - 128) * contrast + brightness;
		if (noise_sd > 0)
			v += noise_sd * noise_normal(r);
		v = floor(v + 0.5);
		out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

/* The end of every capture: the optics' blur (sigma 0.3..blur_hi x size/128), contrast 1 +- dc
 * and brightness +- db (both scaled by p->variation), sensor noise (p->noise), and img rounded
 * into out; r's draws in that order. */
static void capture_end(uint8_t *out, float *img, float *tmp, int s,
			const struct bio_synth_params *p, struct bio_rng *r, double blur_hi, double dc,
			double db)
{
	const double var = p->variation;
	blur(img, tmp, s, s, bio_rng_range(r, 0.3, blur_hi) * s / 128);
	double contrast = 1 + var * bio_rng_range(r, -dc, dc);
	double bright = var * bio_rng_range(r, -db, db);
	double noise_sd = p->noise * 255 * bio_rng_range(r, 0.7, 1.3);
	finish(out, img, (size_t)s * s, contrast, bright, noise_sd, r);
}

static int alloc_floats(float **out, size_t n, struct bio_error *err)
{
	*out = malloc(n * sizeof **out);
	if (!*out)
		return bio_error_set(err, BIO_ENOMEM, "synth: out of memory (%zu floats)", n);
	return 0;
}

/* One capture of the model m (size x size pixels) into out: draw fills the float plane img and
 * quantises it into out, with tmp (as large) for its scratch; both planes are this function's. */
static int render_planes(uint8_t *out, uint32_t size, const void *m, uint32_t sample,
			 void (*draw)(uint8_t *out, float *img, float *tmp, const void *m,
				      uint32_t sample),
			 struct bio_error *err)
{
	const size_t n = (size_t)size * size;
	float *img = NULL, *tmp = NULL;
	int rc = alloc_floats(&img, n, err);
	if (!rc)
		rc = alloc_floats(&tmp, n, err);
	if (!rc)
		draw(out, img, tmp, m, sample);
	free(img);
	free(tmp);
	return rc;
}

/* ---------------------------------------------------------------------- iris ---- */

#define IRIS_NR 64   /* radial samples of the texture, pupil (0) to limbus (1) */
#define IRIS_NA 512  /* angular samples */
#define IRIS_NM 40   /* angular harmonics */
#define IRIS_NN 6    /* radial harmonics */

struct bio_synth_iris {
	struct bio_synth_params p;
	uint32_t subject;
	int side;
	double radius;              /* iris radius / image side */
	double pupil;               /* pupil radius / iris radius at rest */
	double pupil_dx, pupil_dy;  /* pupil centre offset / iris radius */
	double iris_gray, tex_amp;  /* mean level of the annulus and texture amplitude */
	double sclera_gray, skin_gray, pupil_gray;
	double lid_upper, lid_lower; /* mean eyelid opening above/below the centre / iris radius */
	float tex[IRIS_NR * IRIS_NA];
};

/* Adds a dark radial furrow or a crypt: a Gaussian blob in (angle, radius) of the texture. */
static void iris_add_blob(float *tex, double a0, double r0, double wa, double wr, double depth,
			  double twist)
{
	int ra = (int)ceil(3 * wa / (2 * PI) * IRIS_NA) + 1;
	for (int ir = 0; ir < IRIS_NR; ir++) {
		double rho = (ir + 0.5) / IRIS_NR, dr = (rho - r0) / wr;
		if (dr * dr > 9)
			continue;
		double ac = a0 + twist * (rho - r0); /* furrows bend slightly */
		int ic = (int)floor(ac / (2 * PI) * IRIS_NA);
		for (int k = ic - ra; k <= ic + ra; k++) {
			int ia = ((k % IRIS_NA) + IRIS_NA) % IRIS_NA;
			double da = ((k + 0.5) * 2 * PI / IRIS_NA - ac) / wa;
			tex[ir * IRIS_NA + ia] -= (float)(depth * exp(-0.5 * (da * da + dr * dr)));
		}
	}
}

int bio_synth_iris_new(struct bio_synth_iris **out, const struct bio_synth_params *p,
		       uint32_t subject, int side, struct bio_error *err)
{
	*out = NULL;
	int rc = bio_synth_params_check(p, err);
	if (rc)
		return rc;
	struct bio_synth_iris *m = calloc(1, sizeof *m);
	if (!m)
		return bio_error_set(err, BIO_ENOMEM, "synth: out of memory (iris model)");
	struct bio_rng r;
	bio_rng_seed3(&r, p->seed, KEY_IRIS_ID, subject, (uint64_t)side);
	m->p = *p;
	m->subject = subject;
	m->side = side;
	m->radius = bio_rng_range(&r, 0.29, 0.35);
	m->pupil = bio_rng_range(&r, 0.32, 0.46);
	m->pupil_dx = bio_rng_range(&r, -0.05, 0.05);
	m->pupil_dy = bio_rng_range(&r, -0.04, 0.04);
	m->iris_gray = bio_rng_range(&r, 75, 145);
	m->tex_amp = bio_rng_range(&r, 28, 42);
	m->sclera_gray = bio_rng_range(&r, 175, 215);
	m->skin_gray = bio_rng_range(&r, 115, 165);
	m->pupil_gray = bio_rng_range(&r, 8, 30);
	m->lid_upper = bio_rng_range(&r, 0.65, 1.0);
	m->lid_lower = bio_rng_range(&r, 0.85, 1.2);

	/* Random Fourier series: sum over radial n and angular m of R_n(rho) (a cos m theta +
	 * b sin m theta), power falling with frequency. */
	float f[IRIS_NA], ctab[IRIS_NA];
	float rn[IRIS_NR];
	for (int a = 0; a < IRIS_NA; a++)
		ctab[a] = (float)cos(a * 2 * PI / IRIS_NA);
	for (int n = 0; n < IRIS_NN; n++) {
		for (int a = 0; a < IRIS_NA; a++)
			f[a] = 0;
		for (int k = 1; k <= IRIS_NM; k++) {
			double sd = 1.0 / (1.0 + k / 5.0) / (1.0 + n / 2.0);
			float ca = (float)(sd * bio_rng_normal(&r)), sa = (float)(sd * bio_rng_normal(&r));
			/* cos(k a 2pi/NA) and sin = cos(. - pi/2) from the table, index k*a mod NA. */
			for (int a = 0; a < IRIS_NA; a++) {
				int i = (k * a) % IRIS_NA;
				f[a] += ca * ctab[i] + sa * ctab[(i + 3 * IRIS_NA / 4) % IRIS_NA];
			}
		}
		double ph = bio_rng_range(&r, 0, 2 * PI);
		for (int i = 0; i < IRIS_NR; i++)
			rn[i] = (float)cos(n * PI * (i + 0.5) / IRIS_NR + (n ? ph : 0));
		for (int i = 0; i < IRIS_NR; i++)
			for (int a = 0; a < IRIS_NA; a++)
				m->tex[i * IRIS_NA + a] += 0.35f * rn[i] * f[a];
	}
	/* Fixed texture contrast: scale the series to an RMS of 1.1. */
	double ss = 0;
	for (int i = 0; i < IRIS_NR * IRIS_NA; i++)
		ss += (double)m->tex[i] * m->tex[i];
	float norm = (float)(1.1 / sqrt(ss / (IRIS_NR * IRIS_NA) + 1e-12));
	for (int i = 0; i < IRIS_NR * IRIS_NA; i++)
		m->tex[i] *= norm;
	/* Collarette: a wavy ring separating a brighter pupillary zone from the ciliary zone. */
	double col_r = bio_rng_range(&r, 0.25, 0.42), col_w[4], col_p[4];
	double inner = bio_rng_range(&r, -0.6, 0.9);
	for (int i = 0; i < 4; i++) {
		col_w[i] = bio_rng_range(&r, 0, 0.03);
		col_p[i] = bio_rng_range(&r, 0, 2 * PI);
	}
	for (int a = 0; a < IRIS_NA; a++) {
		double th = (a + 0.5) * 2 * PI / IRIS_NA, cr = col_r;
		for (int i = 0; i < 4; i++)
			cr += col_w[i] * sin((i + 3) * th + col_p[i]);
		for (int i = 0; i < IRIS_NR; i++) {
			double rho = (i + 0.5) / IRIS_NR, d = (rho - cr) / 0.03;
			m->tex[i * IRIS_NA + a] += (float)(inner * (1 - smoothstep(-1.5, 1.5, d)) +
							   0.8 * exp(-0.5 * d * d));
		}
	}
	/* Radial furrows and crypts. */
	int n_furrows = (int)bio_rng_int(&r, 10, 24);
	for (int i = 0; i < n_furrows; i++) {
		double a0 = bio_rng_range(&r, 0, 2 * PI), r0 = bio_rng_range(&r, 0.3, 0.7);
		iris_add_blob(m->tex, a0, r0, bio_rng_range(&r, 0.012, 0.03),
			      bio_rng_range(&r, 0.12, 0.35), bio_rng_range(&r, 0.8, 1.8),
			      bio_rng_range(&r, -0.4, 0.4));
	}
	int n_crypts = (int)bio_rng_int(&r, 6, 16);
	for (int i = 0; i < n_crypts; i++) {
		double a0 = bio_rng_range(&r, 0, 2 * PI), r0 = bio_rng_range(&r, 0.2, 0.85);
		iris_add_blob(m->tex, a0, r0, bio_rng_range(&r, 0.04, 0.1),
			      bio_rng_range(&r, 0.04, 0.09), bio_rng_range(&r, 1.2, 2.5), 0);
	}
	/* Bright spots (pigment freckles) and darkening toward the limbus. */
	int n_spots = (int)bio_rng_int(&r, 0, 6);
	for (int i = 0; i < n_spots; i++)
		iris_add_blob(m->tex, bio_rng_range(&r, 0, 2 * PI), bio_rng_range(&r, 0.3, 0.9),
			      0.03, 0.04, -bio_rng_range(&r, 1.0, 2.0), 0);
	for (int i = 0; i < IRIS_NR; i++) {
		double rho = (i + 0.5) / IRIS_NR, dark = 1.5 * smoothstep(0.75, 1.0, rho);
		for (int a = 0; a < IRIS_NA; a++)
			m->tex[i * IRIS_NA + a] -= (float)dark;
	}
	*out = m;
	return 0;
}

void bio_synth_iris_free(struct bio_synth_iris *m)
{
	free(m);
}

/* Texture at normalised radius rho in [0, 1] and angle th (radians), bilinear, periodic. */
static double iris_tex_at(const struct bio_synth_iris *m, double rho, double th)
{
	double fr = clampd(rho, 0, 1) * IRIS_NR - 0.5, fa = th / (2 * PI) * IRIS_NA - 0.5;
	fa -= floor(fa / IRIS_NA) * IRIS_NA;
	int r0 = (int)floor(fr), a0 = (int)fa;
	double tr = fr - r0, ta = fa - a0;
	int r1 = r0 + 1;
	if (r0 < 0)
		r0 = 0;
	if (r1 > IRIS_NR - 1)
		r1 = IRIS_NR - 1;
	if (a0 >= IRIS_NA)
		a0 = IRIS_NA - 1;
	int a1 = (a0 + 1) % IRIS_NA;
	const float *t = m->tex;
	double v0 = t[r0 * IRIS_NA + a0] + (t[r0 * IRIS_NA + a1] - t[r0 * IRIS_NA + a0]) * ta;
	double v1 = t[r1 * IRIS_NA + a0] + (t[r1 * IRIS_NA + a1] - t[r1 * IRIS_NA + a0]) * ta;
	return v0 + (v1 - v0) * tr;
}

/* Where a capture puts the eye (pixel-centre coordinates): the limbus (cx, cy, R), the pupil
 * (pcx, pcy, P), the rotation rot (radians). */
struct iris_pose {
	double cx, cy, R, pcx, pcy, P, rot;
};

/* The pose of sample: r seeded for the sample and advanced past the pose's draws (the first of
 * every capture, so the render and bio_synth_iris_truth agree). */
static void iris_pose(struct iris_pose *g, struct bio_rng *r, const struct bio_synth_iris *m,
		      uint32_t sample)
{
	const double S = m->p.size, var = m->p.variation;
	uint64_t keys[4] = {KEY_IRIS_SAMPLE, m->subject, (uint64_t)m->side, sample};
	bio_rng_seed_keys(r, m->p.seed, keys, 4);
	double scale = 1 + var * bio_rng_range(r, -0.05, 0.05);
	double R = m->radius * S * scale;
	double cx = S / 2 + var * bio_rng_range(r, -0.05, 0.05) * S;
	double cy = S / 2 + var * bio_rng_range(r, -0.04, 0.04) * S;
	double rot = var * bio_rng_range(r, -5, 5) * PI / 180;
	double pupil = clampd(m->pupil + var * bio_rng_range(r, -0.05, 0.05), 0.2, 0.65);
	double cr = cos(rot), sr = sin(rot);
	g->cx = cx;
	g->cy = cy;
	g->R = R;
	g->pcx = cx + (m->pupil_dx * cr - m->pupil_dy * sr) * R;
	g->pcy = cy + (m->pupil_dx * sr + m->pupil_dy * cr) * R;
	g->P = pupil * R;
	g->rot = rot;
}

void bio_synth_iris_truth(const struct bio_synth_iris *m, uint32_t sample,
			  struct bio_synth_iris_truth *t)
{
	struct bio_rng r;
	struct iris_pose g;
	iris_pose(&g, &r, m, sample);
	/* the render samples pixel (x, y) at (x + 0.5, y + 0.5) */
	t->iris_x = g.cx - 0.5;
	t->iris_y = g.cy - 0.5;
	t->iris_r = g.R;
	t->pupil_x = g.pcx - 0.5;
	t->pupil_y = g.pcy - 0.5;
	t->pupil_r = g.P;
}

/* The iris capture of sample into out, drawn on the float plane img (tmp its scratch). */
static void iris_draw(uint8_t *out, float *img, float *tmp, const void *model, uint32_t sample)
{
	const struct bio_synth_iris *m = model;
	const int s = (int)m->p.size;
	const double S = s;
	struct bio_rng r;
	struct iris_pose pose;
	iris_pose(&pose, &r, m, sample);
	const double var = m->p.variation; /* scales every capture change below */

	/* Capture conditions. */
	const double R = pose.R, cx = pose.cx, cy = pose.cy, rot = pose.rot, P = pose.P;
	const double pcx = pose.pcx, pcy = pose.pcy;
	double up = clampd(m->lid_upper + var * bio_rng_range(&r, -0.2, 0.2), 0.35, 1.3) * R;
	double lo = clampd(m->lid_lower + var * bio_rng_range(&r, -0.2, 0.2), 0.55, 1.4) * R;
	double lid_span = bio_rng_range(&r, 2.2, 2.8) * R; /* half width of the eye opening */
	double lid_tilt = var * bio_rng_range(&r, -0.08, 0.08);
	double light = var * bio_rng_range(&r, -0.15, 0.15); /* left-right illumination gradient */
	struct vnoise skin;
	vnoise_init(&skin, &r, 6, 6);

	const double edge = 0.6 + S / 256; /* anti-aliasing width in pixels */
	for (int y = 0; y < s; y++) {
		double py = y + 0.5;
		for (int x = 0; x < s; x++) {
			double px = x + 0.5, dx = px - cx, dy = py - cy;
			/* Eyelids: parabolas through the eye corners at +-lid_span. */
			double ux = dx / lid_span, yt = dy - lid_tilt * dx;
			double lid_u = -up * (1 - ux * ux), lid_l = lo * (1 - ux * ux);
			double open = smoothstep(-edge, edge, yt - lid_u) *
				      smoothstep(-edge, edge, lid_l - yt);
			double skin_v = m->skin_gray * (1 + light * dx / S) +
					18 * vnoise_at(&skin, px / S, py / S);
			double v = skin_v;
			if (open > 0) {
				double rr = sqrt(dx * dx + dy * dy), eye;
				/* Sclera, darker toward the corners. */
				double sclera = m->sclera_gray * (1 + light * dx / S) -
						25 * ux * ux;
				if (rr < R + 2 * edge) {
					/* Rubber sheet: from the pupil centre, radius 0 at the pupil
					 * edge, 1 at the limbus. */
					double qx = px - pcx, qy = py - pcy;
					double q = sqrt(qx * qx + qy * qy), iv;
					double ux2 = q > 1e-9 ? qx / q : 1, uy2 = q > 1e-9 ? qy / q : 0;
					double ox = pcx - cx, oy = pcy - cy;
					double b = ox * ux2 + oy * uy2;
					double lim = -b + sqrt(b * b - (ox * ox + oy * oy) + R * R);
					double rho = (q - P) / (lim - P);
					double th = atan2(qy, qx) - rot;
					iv = m->iris_gray + m->tex_amp * iris_tex_at(m, rho, th);
					double in_pupil = 1 - smoothstep(-edge, edge, q - P);
					iv = iv + (m->pupil_gray - iv) * in_pupil;
					double in_iris = 1 - smoothstep(-edge, edge, rr - R);
					eye = sclera + (iv - sclera) * in_iris;
				} else {
					eye = sclera;
				}
				/* Shadow of the upper lid. */
				double below = yt - lid_u;
				double sh = below / (0.12 * R);
				if (sh < 8)
					eye *= 1 - 0.35 * exp(-sh);
				v = skin_v + (eye - skin_v) * open;
			}
			/* Lash line: a dark band along the upper lid margin. */
			double dl = (yt + up * (1 - ux * ux)) / (0.025 * R + 0.5);
			if (fabs(ux) < 1 && fabs(dl) < 4)
				v -= 45 * exp(-0.5 * dl * dl) * (1 - ux * ux);
			img[y * s + x] = (float)v;
		}
	}
	/* Eyelashes: dark strokes from the upper lid margin, curving down and outward. */
	int n_lashes = m->p.eyelashes ? (int)bio_rng_int(&r, 0, 30) : 0;
	for (int i = 0; i < n_lashes; i++) {
		double u = bio_rng_range(&r, -0.85, 0.85);
		double x0 = cx + u * lid_span, y0 = cy - up * (1 - u * u) + lid_tilt * u * lid_span;
		double len = bio_rng_range(&r, 0.25, 0.6) * R;
		double ang = PI / 2 + u * 0.6 + bio_rng_range(&r, -0.25, 0.25);
		double bend = bio_rng_range(&r, -0.6, 0.6);
		double wid = bio_rng_range(&r, 0.4, 0.8) * (S / 128);
		double dark = bio_rng_range(&r, 0.5, 0.85);
		int steps = (int)(len * 2) + 2;
		for (int k = 0; k <= steps; k++) {
			double t = (double)k / steps;
			double a = ang + bend * t;
			double lx = x0 + cos(a) * len * t, ly = y0 + sin(a) * len * t;
			double w = wid * (1 - 0.6 * t) + 0.25;
			int rad = (int)ceil(2 * w) + 1;
			for (int yy = (int)ly - rad; yy <= (int)ly + rad; yy++)
				for (int xx = (int)lx - rad; xx <= (int)lx + rad; xx++) {
					if (xx < 0 || yy < 0 || xx >= s || yy >= s)
						continue;
					double ddx = xx + 0.5 - lx, ddy = yy + 0.5 - ly;
					double g = exp(-(ddx * ddx + ddy * ddy) / (2 * w * w));
					float *pv = &img[yy * s + xx];
					double target = 25;
					double nv = *pv + (target - *pv) * dark * g;
					if (nv < *pv)
						*pv = (float)nv;
				}
		}
	}
	/* Specular highlight of the light source, near the pupil. */
	{
		double a = bio_rng_range(&r, 0, 2 * PI), d = bio_rng_range(&r, 0.3, 1.1) * P;
		double hx = pcx + cos(a) * d, hy = pcy + sin(a) * d;
		double hr = bio_rng_range(&r, 0.012, 0.03) * S + 0.5;
		int rad = (int)ceil(3 * hr);
		for (int yy = (int)hy - rad; yy <= (int)hy + rad; yy++)
			for (int xx = (int)hx - rad; xx <= (int)hx + rad; xx++) {
				if (xx < 0 || yy < 0 || xx >= s || yy >= s)
					continue;
				double ddx = xx + 0.5 - hx, ddy = yy + 0.5 - hy;
				double g = exp(-(ddx * ddx + ddy * ddy) / (2 * hr * hr / 4));
				g = g > 0.5 ? 1 : g * 2;
				img[yy * s + xx] += (float)((250 - img[yy * s + xx]) * g);
			}
	}
	capture_end(out, img, tmp, s, &m->p, &r, 1.1, 0.2, 18);
}

int bio_synth_iris_render(uint8_t *out, const struct bio_synth_iris *m, uint32_t sample,
			  struct bio_error *err)
{
	return render_planes(out, m->p.size, m, sample, iris_draw, err);
}

/* --------------------------------------------------------------- fingerprint ---- */

#define FP_PERIOD 5.0     /* ridge period in template pixels */
#define FP_EXTENT 0.6     /* template covers finger coordinates [-0.6, 0.6] (image sides) */
#define FP_NO 24          /* orientations in the filter bank */
#define FP_KR 5           /* filter radius */
#define FP_KW (2 * FP_KR + 1)
#define FP_ITERS 7

enum { CLASS_ARCH, CLASS_TENTED, CLASS_LEFT_LOOP, CLASS_RIGHT_LOOP, CLASS_WHORL };

struct bio_synth_print {
	struct bio_synth_params p;
	uint32_t subject;
	int side, finger, klass;
	double period;       /* ridge period / image side */
	double ell_a, ell_b; /* contact ellipse half axes (image sides) */
	double ell_cy;       /* contact ellipse centre (vertical) */
	double ink, bg;      /* ridge and background gray */
	int n;               /* template side */
	double h;            /* template pixel size in finger coordinates */
	float *tmpl;         /* ridge signal in [-1, 1], n x n */
};

struct singular {
	int n_cores, n_deltas;
	double cu[2], cv[2], du[2], dv[2];
};

/* Orientation (radians, mod pi) of the ridges at finger coordinates (u, v), v down. */
static double print_orientation(int klass, const struct singular *sp, double rot,
				const double *pert, double u, double v)
{
	double th;
	if (klass == CLASS_ARCH) {
		/* Ridges v = v0 - H exp(-u^2/w^2): humps highest in the upper middle. */
		double w = pert[6], hgt = pert[7] * exp(-((v - pert[8]) * (v - pert[8])) / 0.18);
		th = atan(2 * hgt * u / (w * w) * exp(-u * u / (w * w)));
	} else {
		th = 0;
		for (int i = 0; i < sp->n_cores; i++)
			th += 0.5 * atan2(v - sp->cv[i], u - sp->cu[i]);
		for (int i = 0; i < sp->n_deltas; i++)
			th -= 0.5 * atan2(v - sp->dv[i], u - sp->du[i]);
	}
	/* Smooth perturbation (Vizcaya-Gerhardt-like correction). */
	th += pert[0] * sin(pert[1] * u + pert[2]) + pert[3] * sin(pert[4] * v + pert[5]);
	return th + rot;
}

int bio_synth_print_class(const struct bio_synth_print *m)
{
	return m->klass;
}

int bio_synth_print_new(struct bio_synth_print **out, const struct bio_synth_params *p,
			uint32_t subject, int side, int finger, struct bio_error *err)
{
	*out = NULL;
	int rc = bio_synth_params_check(p, err);
	if (rc)
		return rc;
	if (finger < 0 || finger >= BIO_SYNTH_N_FINGERS)
		return bio_error_set(err, BIO_EINVAL, "synth: finger %d out of range", finger);
	struct bio_synth_print *m = calloc(1, sizeof *m);
	float *a = NULL, *b = NULL, *bank = NULL;
	uint8_t *oidx = NULL;
	if (!m)
		return bio_error_set(err, BIO_ENOMEM, "synth: out of memory (fingerprint model)");
	struct bio_rng r;
	bio_rng_seed_keys(&r, p->seed,
			  (const uint64_t[4]){KEY_PRINT_ID, subject, (uint64_t)side, (uint64_t)finger},
			  4);
	m->p = *p;
	m->subject = subject;
	m->side = side;
	m->finger = finger;
	double c = bio_rng_uniform(&r);
	m->klass = c < 0.08 ? CLASS_ARCH : c < 0.15 ? CLASS_TENTED : c < 0.45 ? CLASS_LEFT_LOOP
		   : c < 0.75 ? CLASS_RIGHT_LOOP : CLASS_WHORL;
	m->period = bio_rng_range(&r, 0.8, 1.25) / 15;
	m->ell_a = bio_rng_range(&r, 0.30, 0.36);
	m->ell_b = bio_rng_range(&r, 0.40, 0.47);
	m->ell_cy = bio_rng_range(&r, -0.02, 0.06);
	m->ink = bio_rng_range(&r, 30, 80);
	m->bg = bio_rng_range(&r, 205, 240);

	struct singular sp = {0};
	double cu = bio_rng_range(&r, -0.08, 0.08), cv = bio_rng_range(&r, -0.12, 0.04);
	switch (m->klass) {
	case CLASS_TENTED:
		sp.n_cores = sp.n_deltas = 1;
		sp.cu[0] = cu;
		sp.cv[0] = cv;
		sp.du[0] = cu + bio_rng_range(&r, -0.03, 0.03);
		sp.dv[0] = cv + bio_rng_range(&r, 0.08, 0.16);
		break;
	case CLASS_LEFT_LOOP:
	case CLASS_RIGHT_LOOP: {
		double dir = m->klass == CLASS_LEFT_LOOP ? 1 : -1;
		sp.n_cores = sp.n_deltas = 1;
		sp.cu[0] = cu;
		sp.cv[0] = cv;
		sp.du[0] = cu + dir * bio_rng_range(&r, 0.12, 0.26);
		sp.dv[0] = cv + bio_rng_range(&r, 0.2, 0.34);
		break;
	}
	case CLASS_WHORL: {
		double hgt = bio_rng_range(&r, 0.02, 0.07), tw = bio_rng_range(&r, -0.05, 0.05);
		sp.n_cores = sp.n_deltas = 2;
		sp.cu[0] = cu - tw;
		sp.cv[0] = cv - hgt;
		sp.cu[1] = cu + tw;
		sp.cv[1] = cv + hgt;
		sp.du[0] = cu - bio_rng_range(&r, 0.18, 0.3);
		sp.dv[0] = cv + bio_rng_range(&r, 0.18, 0.32);
		sp.du[1] = cu + bio_rng_range(&r, 0.18, 0.3);
		sp.dv[1] = cv + bio_rng_range(&r, 0.18, 0.32);
		break;
	}
	default:
		break;
	}
	double pert[9];
	pert[0] = bio_rng_range(&r, 0, 0.3);
	pert[1] = bio_rng_range(&r, 2, 8);
	pert[2] = bio_rng_range(&r, 0, 2 * PI);
	pert[3] = bio_rng_range(&r, 0, 0.3);
	pert[4] = bio_rng_range(&r, 2, 8);
	pert[5] = bio_rng_range(&r, 0, 2 * PI);
	pert[6] = bio_rng_range(&r, 0.2, 0.35);   /* arch width */
	pert[7] = bio_rng_range(&r, 0.08, 0.18);  /* arch height */
	pert[8] = bio_rng_range(&r, -0.25, 0.0);  /* arch centre */
	double rot = bio_rng_range(&r, -0.15, 0.15);

	/* Template: FP_PERIOD pixels per ridge period. */
	m->h = m->period / FP_PERIOD;
	m->n = (int)ceil(2 * FP_EXTENT / m->h);
	const int n = m->n, w = n + 2 * FP_KR;
	rc = alloc_floats(&m->tmpl, (size_t)n * n, err);
	if (!rc)
		rc = alloc_floats(&a, (size_t)w * w, err);
	if (!rc)
		rc = alloc_floats(&b, (size_t)w * w, err);
	if (!rc)
		rc = alloc_floats(&bank, (size_t)FP_NO * FP_KW * FP_KW, err);
	if (!rc && !(oidx = malloc((size_t)n * n)))
		rc = bio_error_set(err, BIO_ENOMEM, "synth: out of memory (fingerprint template)");
	if (rc)
		goto out;

	/* Filter bank: Gabor filters across the ridges, elongated along them, zero mean,
	 * unit gain on a matched sinusoid. */
	for (int o = 0; o < FP_NO; o++) {
		double th = o * PI / FP_NO, tx = cos(th), ty = sin(th);
		float *k = bank + (size_t)o * FP_KW * FP_KW;
		double sum = 0, sum_env = 0;
		for (int y = -FP_KR; y <= FP_KR; y++)
			for (int x = -FP_KR; x <= FP_KR; x++) {
				double along = x * tx + y * ty, across = -x * ty + y * tx;
				double env = exp(-0.5 * (across * across / (1.9 * 1.9) +
							 along * along / (2.7 * 2.7)));
				double v = env * cos(2 * PI * across / FP_PERIOD);
				k[(y + FP_KR) * FP_KW + x + FP_KR] = (float)v;
				sum += v;
				sum_env += env;
			}
		double gain = 0;
		for (int y = -FP_KR; y <= FP_KR; y++)
			for (int x = -FP_KR; x <= FP_KR; x++) {
				double along = x * tx + y * ty, across = -x * ty + y * tx;
				double env = exp(-0.5 * (across * across / (1.9 * 1.9) +
							 along * along / (2.7 * 2.7)));
				float *kv = &k[(y + FP_KR) * FP_KW + x + FP_KR];
				*kv -= (float)(env * sum / sum_env);
				gain += *kv * cos(2 * PI * across / FP_PERIOD);
			}
		for (int i = 0; i < FP_KW * FP_KW; i++)
			k[i] = (float)(k[i] / gain);
	}
	for (int y = 0; y < n; y++)
		for (int x = 0; x < n; x++) {
			double u = -FP_EXTENT + (x + 0.5) * m->h, v = -FP_EXTENT + (y + 0.5) * m->h;
			double th = print_orientation(m->klass, &sp, rot, pert, u, v);
			double f = th / PI * FP_NO;
			long o = lround(f - floor(f / FP_NO) * FP_NO) % FP_NO;
			oidx[y * n + x] = (uint8_t)o;
		}
	/* Growth from identity noise. */
	memset(a, 0, (size_t)w * w * sizeof *a);
	memset(b, 0, (size_t)w * w * sizeof *b);
	for (int y = 0; y < n; y++)
		for (int x = 0; x < n; x++)
			a[(y + FP_KR) * w + x + FP_KR] = (float)(bio_rng_uniform(&r) * 2 - 1);
	for (int it = 0; it < FP_ITERS; it++) {
		for (int y = 0; y < n; y++)
			for (int x = 0; x < n; x++) {
				const float *k = bank + (size_t)oidx[y * n + x] * FP_KW * FP_KW;
				const float *src = a + (size_t)y * w + x;
				float acc = 0;
				for (int ky = 0; ky < FP_KW; ky++)
					for (int kx = 0; kx < FP_KW; kx++)
						acc += k[ky * FP_KW + kx] * src[ky * w + kx];
				acc *= 1.8f;
				b[(y + FP_KR) * w + x + FP_KR] = acc > 1 ? 1 : acc < -1 ? -1 : acc;
			}
		float *t = a;
		a = b;
		b = t;
	}
	for (int y = 0; y < n; y++)
		memcpy(m->tmpl + (size_t)y * n, a + (size_t)(y + FP_KR) * w + FP_KR,
		       (size_t)n * sizeof *a);
	*out = m;
	m = NULL;
out:
	free(a);
	free(b);
	free(bank);
	free(oidx);
	bio_synth_print_free(m);
	return rc;
}

void bio_synth_print_free(struct bio_synth_print *m)
{
	if (!m)
		return;
	free(m->tmpl);
	free(m);
}

static double print_tmpl_at(const struct bio_synth_print *m, double u, double v)
{
	double fx = (u + FP_EXTENT) / m->h - 0.5, fy = (v + FP_EXTENT) / m->h - 0.5;
	int n = m->n;
	if (fx < 0 || fy < 0 || fx >= n - 1 || fy >= n - 1)
		return 0;
	int x0 = (int)fx, y0 = (int)fy;
	double tx = fx - x0, ty = fy - y0;
	const float *t = m->tmpl + (size_t)y0 * n + x0;
	double a = t[0] + (t[1] - t[0]) * tx, b = t[n] + (t[n + 1] - t[n]) * tx;
	return a + (b - a) * ty;
}

/* The print capture of sample into out, drawn on the float plane img (tmp its scratch). */
static void print_draw(uint8_t *out, float *img, float *tmp, const void *model, uint32_t sample)
{
	const struct bio_synth_print *m = model;
	const int s = (int)m->p.size;
	const double S = s;
	struct bio_rng r;
	bio_rng_seed_keys(&r, m->p.seed,
			  (const uint64_t[5]){KEY_PRINT_SAMPLE, m->subject, (uint64_t)m->side,
					      (uint64_t)m->finger, sample},
			  5);
	const double var = m->p.variation; /* scales every capture change below */
	double tu = var * bio_rng_range(&r, -0.05, 0.05), tv = var * bio_rng_range(&r, -0.05, 0.05);
	double rot = var * bio_rng_range(&r, -5, 5) * PI / 180, cr = cos(rot), sr = sin(rot);
	double pressure = bio_rng_uniform(&r);
	double contact = 0.96 + var * 0.2 * (pressure - 0.5);
	double thick = var * ((pressure - 0.5) * 0.7 + bio_rng_range(&r, -0.1, 0.1));
	double dry = bio_rng_uniform(&r);
	dry = var * 0.25 * dry * dry;
	/* Elastic distortion: two smooth waves of displacement (image sides). */
	double da[2], dk[2][2], dp[2], dd[2][2];
	for (int i = 0; i < 2; i++) {
		da[i] = var * bio_rng_range(&r, 0, 0.012);
		double ang = bio_rng_range(&r, 0, 2 * PI), fr = bio_rng_range(&r, 2, 6);
		dk[i][0] = fr * cos(ang);
		dk[i][1] = fr * sin(ang);
		dp[i] = bio_rng_range(&r, 0, 2 * PI);
		double dir = bio_rng_range(&r, 0, 2 * PI);
		dd[i][0] = cos(dir);
		dd[i][1] = sin(dir);
	}
	/* Partial contact: a soft cut by a half plane. */
	int cut = bio_rng_bernoulli(&r, 0.15 * var);
	double cut_a = bio_rng_range(&r, 0, 2 * PI), cut_d = bio_rng_range(&r, 0.06, 0.2);
	struct vnoise dryness, shade;
	vnoise_init(&dryness, &r, 24, 24);
	vnoise_init(&shade, &r, 4, 4);
	double soft = 0.025;
	/* Along a row the undistorted coordinates move by (cr, -sr) / S per pixel, so each wave's
	 * phase advances by a constant: sines by the angle-addition recurrence. */
	double step_sin[2], step_cos[2];
	for (int i = 0; i < 2; i++) {
		double b = (dk[i][0] * cr - dk[i][1] * sr) / S;
		step_sin[i] = sin(b);
		step_cos[i] = cos(b);
	}
	for (int y = 0; y < s; y++) {
		double wsin[2], wcos[2];
		double qy = (y + 0.5) / S - 0.5 - tv, qx0 = 0.5 / S - 0.5 - tu;
		for (int i = 0; i < 2; i++) {
			double ph = dk[i][0] * (cr * qx0 + sr * qy) + dk[i][1] * (-sr * qx0 + cr * qy) +
				    dp[i];
			wsin[i] = sin(ph);
			wcos[i] = cos(ph);
		}
		for (int x = 0; x < s; x++) {
			/* Image to finger coordinates: undo translation and rotation, distort. */
			double qx = (x + 0.5) / S - 0.5 - tu;
			double u = cr * qx + sr * qy, v = -sr * qx + cr * qy;
			for (int i = 0; i < 2; i++) {
				double d = da[i] * wsin[i];
				u += d * dd[i][0];
				v += d * dd[i][1];
				double ns = wsin[i] * step_cos[i] + wcos[i] * step_sin[i];
				wcos[i] = wcos[i] * step_cos[i] - wsin[i] * step_sin[i];
				wsin[i] = ns;
			}
			double eu = u / (m->ell_a * contact), ev = (v - m->ell_cy) / (m->ell_b * contact);
			double er = sqrt(eu * eu + ev * ev);
			double mask = 1 - smoothstep(1 - soft / m->ell_a, 1 + soft / m->ell_a, er);
			if (cut) {
				double side_d = u * cos(cut_a) + v * sin(cut_a) - (m->ell_b - cut_d);
				mask *= 1 - smoothstep(-soft, soft, side_d);
			}
			double val = m->bg + 8 * vnoise_at(&shade, (x + 0.5) / S, (y + 0.5) / S);
			if (mask > 0) {
				double rs = print_tmpl_at(m, u, v);
				double ink = smoothstep(-0.3, 0.3, rs + thick);
				double dn = vnoise_at(&dryness, u + 0.5, v + 0.5);
				ink *= 1 - smoothstep(1 - dry, 1.3 - dry, 0.5 + 0.5 * dn + 0.3 * dry);
				/* Pressure fades toward the contact edge. */
				ink *= 0.55 + 0.45 * (1 - smoothstep(0.6, 1.0, er));
				val -= (val - m->ink) * ink * mask;
			}
			img[y * s + x] = (float)val;
		}
	}
	capture_end(out, img, tmp, s, &m->p, &r, 0.8, 0.15, 12);
}

int bio_synth_print_render(uint8_t *out, const struct bio_synth_print *m, uint32_t sample,
			   struct bio_error *err)
{
	return render_planes(out, m->p.size, m, sample, print_draw, err);
}
