/* Compares libbio's nn/model/optim against PyTorch reference cases written by
 * tests/python/torch_parity.py (one bio-stream per case: named tensors, meta says the case).
 * For each compared tensor the error is max|ours - torch| / max|torch| (relative to the tensor's
 * scale); the case fails when it exceeds the tolerance:
 *   forward outputs and loss   1e-5      gradients   1e-4      batch-norm buffers   1e-5
 *   optimizer parameters       1e-5      learning rates   1e-9
 * A gradient's scale is at least 1e-3 x the case's largest gradient (see compare_floor); conv
 * biases before training-mode batch norm (zero gradient in exact arithmetic) use 1 x.
 * Usage: nn_parity [-v] CASE.bs...   prints one line per case (worst error), exit 1 on failure.
 *        nn_parity --logits CKPT SAMPLES OUT   eval-mode logits of a checkpoint on every record
 *        of a samples stream, written to OUT as a stream with one record {name: "logits"}.
 *        nn_parity --bench-infer CKPT BATCH N THREADS   eval-mode samples/s of N batches (bench) */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bio/checkpoint.h"
#include "bio/model.h"
#include "bio/nn.h"
#include "bio/optim.h"
#include "bio/rng.h"
#include "bio/stream.h"

#define TOL_FWD 1e-5
#define TOL_GRAD 1e-4
#define TOL_OPT 1e-5
#define TOL_LR 1e-9

/* "nn_parity: " and the message on stderr, then exit 1. */
__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("nn_parity: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

struct named {
	char *name;
	int n_dims;
	int64_t shape[8];
	size_t numel;
	double *v; /* values converted to double */
};

struct table {
	struct named *t;
	size_t n;
};

static int verbose;
static double worst;
static int failed;

static const struct named *get(const struct table *tb, const char *name)
{
	for (size_t i = 0; i < tb->n; i++)
		if (strcmp(tb->t[i].name, name) == 0)
			return &tb->t[i];
	return NULL;
}

static const struct named *need(const struct table *tb, const char *name)
{
	const struct named *t = get(tb, name);
	if (!t)
		die("missing tensor '%s'", name);
	return t;
}

/* floor: the smallest scale an error is measured against (gradients that are zero in exact
 * arithmetic, e.g. a conv bias before training-mode batch norm, are compared with the scale of
 * the case's other gradients instead of their own rounding noise). */
static void compare_floor(const char *what, const float *ours, const double *ref, size_t n,
			  double tol, double floor)
{
	double maxd = 0.0, maxr = floor;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)ours[i] - ref[i]);
		if (!(d <= maxd))
			maxd = d;
		if (fabs(ref[i]) > maxr)
			maxr = fabs(ref[i]);
	}
	double rel = maxd / (maxr > 1e-30 ? maxr : 1e-30);
	if (rel > worst || isnan(rel))
		worst = rel;
	if (!(rel <= tol)) {
		fprintf(stderr, "  %s: relative error %.3g > %.1g\n", what, rel, tol);
		failed = 1;
	} else if (verbose) {
		fprintf(stderr, "  %s: %.3g\n", what, rel);
	}
}

static void compare(const char *what, const float *ours, const double *ref, size_t n, double tol)
{
	compare_floor(what, ours, ref, n, tol, 0.0);
}

static int read_table(struct table *tb, const char *path, char *case_name, size_t case_len,
		      struct bio_value const **meta_out, struct bio_stream_reader **r_out)
{
	struct bio_error err;
	const char *paths[1] = {path};
	struct bio_stream_reader *r = bio_stream_reader_open(paths, 1, NULL, &err);
	if (!r || bio_stream_read_header(r, "checkpoint", meta_out, &err))
		die("%s", err.msg);
	const struct bio_value *c = bio_value_get(*meta_out, "case");
	const char *s;
	size_t len;
	if (bio_value_str(c, &s, &len) || len >= case_len)
		die("%s: no case", path);
	memcpy(case_name, s, len);
	case_name[len] = 0;
	const struct bio_value *rec;
	int rc;
	while ((rc = bio_stream_read_record(r, &rec, &err)) == 1) {
		struct bio_tensor t;
		if (bio_record_get_tensor(&t, r, rec, "tensor", -1, 0, &err))
			die("%s", err.msg);
		tb->t = realloc(tb->t, (tb->n + 1) * sizeof *tb->t);
		struct named *nm = &tb->t[tb->n++];
		nm->name = bio_value_strdup(bio_value_get(rec, "name"));
		nm->n_dims = t.n_dims;
		memcpy(nm->shape, t.shape, sizeof t.shape);
		nm->numel = bio_tensor_numel(&t);
		nm->v = malloc((nm->numel + 1) * sizeof(double));
		const unsigned char *d = t.data;
		for (size_t i = 0; i < nm->numel; i++) {
			if (t.dtype == BIO_DTYPE_F32) {
				float f;
				memcpy(&f, d + 4 * i, 4);
				nm->v[i] = f;
			} else if (t.dtype == BIO_DTYPE_F64) {
				memcpy(&nm->v[i], d + 8 * i, 8);
			} else if (t.dtype == BIO_DTYPE_I64) {
				int64_t x;
				memcpy(&x, d + 8 * i, 8);
				nm->v[i] = (double)x;
			} else {
				die("unexpected dtype");
			}
		}
	}
	if (rc < 0)
		die("%s", err.msg);
	*r_out = r;
	return 0;
}

static int64_t meta_int(const struct bio_value *meta, const char *key)
{
	int64_t v = 0;
	if (bio_value_int(bio_value_get(meta, key), &v))
		die("meta key '%s' missing", key);
	return v;
}

static double meta_double(const struct bio_value *meta, const char *key)
{
	double v = 0;
	if (bio_value_double(bio_value_get(meta, key), &v))
		die("meta key '%s' missing", key);
	return v;
}

static float *to_float(const struct named *t)
{
	float *f = malloc((t->numel + 1) * sizeof(float));
	for (size_t i = 0; i < t->numel; i++)
		f[i] = (float)t->v[i];
	return f;
}

static void run_model(const struct table *tb, const struct bio_value *meta)
{
	struct bio_model_spec s = {0};
	s.input_size = (int)meta_int(meta, "input_size");
	const struct bio_value *ch = bio_value_get(meta, "channels");
	s.n_blocks = (int)bio_value_len(ch);
	for (int i = 0; i < s.n_blocks; i++) {
		int64_t c;
		bio_value_int(bio_value_at(ch, i), &c);
		s.channels[i] = (int)c;
	}
	s.kernel = 3;
	s.hidden = (int)meta_int(meta, "hidden");
	s.embedding = (int)meta_int(meta, "embedding");
	s.dropout = (float)meta_double(meta, "dropout");
	char *fu = bio_value_strdup(bio_value_get(meta, "fusion"));
	bio_fusion_parse(&s.fusion, fu);
	free(fu);
	if (s.fusion == BIO_FUSION_ATTENTION)
		s.attention_temperature = (float)meta_double(meta, "attention_temperature");
	const struct bio_value *mods = bio_value_get(meta, "modalities");
	s.n_mod = (int)bio_value_len(mods);
	for (int i = 0; i < s.n_mod; i++) {
		char *mn = bio_value_strdup(bio_value_at(mods, i));
		snprintf(s.modalities[i], sizeof s.modalities[i], "%s", mn);
		free(mn);
	}
	s.n_classes = (int)meta_int(meta, "n_classes");
	char *lo = bio_value_strdup(bio_value_get(meta, "loss")); /* absent: softmax */
	if (lo && bio_loss_parse(&s.loss, lo))
		die("unknown loss '%s'", lo);
	free(lo);
	if (s.loss != BIO_LOSS_SOFTMAX) {
		s.margin = (float)meta_double(meta, "margin");
		s.scale = (float)meta_double(meta, "scale");
	}
	int n = (int)meta_int(meta, "batch"), training = (int)meta_int(meta, "training");
	struct bio_error err;
	struct bio_model *m = bio_model_new(&s, n, &err);
	if (!m)
		die("%s", err.msg);
	char name[128];
	for (size_t i = 0; i < m->n_tensors; i++) {
		struct bio_model_tensor *t = &m->tensors[i];
		snprintf(name, sizeof name, "param:%s", t->name);
		const struct named *src = need(tb, name);
		if (src->numel != (t->role == BIO_ROLE_COUNT ? 1 : t->numel))
			die("%s: size mismatch", t->name);
		if (t->role == BIO_ROLE_COUNT)
			*t->count = (int64_t)src->v[0];
		else
			for (size_t j = 0; j < t->numel; j++)
				t->data[j] = (float)src->v[j];
	}
	float *inputs[BIO_MODEL_MAX_MODS];
	for (int b = 0; b < s.n_mod; b++) {
		snprintf(name, sizeof name, "input:%s", s.modalities[b]);
		inputs[b] = to_float(need(tb, name));
		if (training && s.dropout > 0) {
			snprintf(name, sizeof name, "mask:%s", s.modalities[b]);
			const struct named *mk = need(tb, name);
			float *dst = bio_model_dropout_mask(m, b);
			for (size_t j = 0; j < mk->numel; j++)
				dst[j] = (float)mk->v[j];
		}
	}
	const struct named *lab = need(tb, "labels");
	int64_t *labels = malloc(n * sizeof(int64_t));
	for (int i = 0; i < n; i++)
		labels[i] = (int64_t)lab->v[i];
	bio_model_zero_grad(m);
	bio_model_forward(m, (const float *const *)inputs, n, training);
	compare("logits", m->logits, need(tb, "expect:logits")->v, (size_t)n * s.n_classes, TOL_FWD);
	double loss = bio_model_loss(m, labels, n, 1.0f, NULL);
	float lossf = (float)loss;
	compare("loss", &lossf, need(tb, "expect:loss")->v, 1, TOL_FWD);
	bio_model_backward(m, n, training);
	double gscale = 0.0; /* largest reference gradient of the case */
	for (size_t i = 0; i < tb->n; i++)
		if (strncmp(tb->t[i].name, "grad:", 5) == 0)
			for (size_t j = 0; j < tb->t[i].numel; j++)
				if (fabs(tb->t[i].v[j]) > gscale)
					gscale = fabs(tb->t[i].v[j]);
	for (size_t i = 0; i < m->n_tensors; i++) {
		struct bio_model_tensor *t = &m->tensors[i];
		if (t->role == BIO_ROLE_PARAM) {
			snprintf(name, sizeof name, "grad:%s", t->name);
			/* a conv bias before training-mode batch norm has gradient 0 in exact
			 * arithmetic: both sides hold rounding noise, measured against the
			 * case's gradient scale */
			size_t ln = strlen(t->name);
			int zero = training && strstr(t->name, ".conv") && ln > 5 &&
				   strcmp(t->name + ln - 5, ".bias") == 0;
			compare_floor(name, t->grad, need(tb, name)->v, t->numel, TOL_GRAD,
				      (zero ? 1.0 : 1e-3) * gscale);
		} else if (t->role == BIO_ROLE_BUFFER) {
			snprintf(name, sizeof name, "after:%s", t->name);
			compare(name, t->data, need(tb, name)->v, t->numel, TOL_FWD);
		} else {
			snprintf(name, sizeof name, "after:%s", t->name);
			if ((double)*t->count != need(tb, name)->v[0]) {
				fprintf(stderr, "  %s: %lld\n", name, (long long)*t->count);
				failed = 1;
			}
		}
	}
	for (int b = 0; b < s.n_mod; b++)
		free(inputs[b]);
	free(labels);
	bio_model_free(m);
}

/* NCHW (torch) <-> CNHW (ours) */
static float *nchw_to_cnhw(const double *src, int n, int c, size_t hw)
{
	float *d = malloc((size_t)n * c * hw * sizeof(float) + 4);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < c; j++)
			for (size_t k = 0; k < hw; k++)
				d[((size_t)j * n + i) * hw + k] = (float)src[((size_t)i * c + j) * hw + k];
	return d;
}

static double *cnhw_ref(const double *src, int n, int c, size_t hw)
{
	double *d = malloc((size_t)n * c * hw * sizeof(double) + 8);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < c; j++)
			for (size_t k = 0; k < hw; k++)
				d[((size_t)j * n + i) * hw + k] = src[((size_t)i * c + j) * hw + k];
	return d;
}

static void run_conv(const struct table *tb, const struct bio_value *meta)
{
	struct bio_conv2d l;
	int cin = (int)meta_int(meta, "c_in"), cout = (int)meta_int(meta, "c_out");
	int n = (int)meta_int(meta, "n"), h = (int)meta_int(meta, "h"), w = (int)meta_int(meta, "w");
	bio_conv2d_setup(&l, cin, cout, (int)meta_int(meta, "k"), (int)meta_int(meta, "stride"),
			 (int)meta_int(meta, "pad"), h, w);
	size_t hwo = (size_t)l.h_out * l.w_out, hwi = (size_t)h * w;
	l.w = to_float(need(tb, "w"));
	l.b = to_float(need(tb, "b"));
	l.dw = calloc(need(tb, "w")->numel, sizeof(float));
	l.db = calloc(cout, sizeof(float));
	l.col_floats = bio_conv2d_col_floats(&l) * 2; /* chunks of 2 samples */
	l.col = malloc(l.col_floats * sizeof(float));
	float *x = nchw_to_cnhw(need(tb, "x")->v, n, cin, hwi);
	float *dy = nchw_to_cnhw(need(tb, "dy")->v, n, cout, hwo);
	float *y = malloc((size_t)n * cout * hwo * sizeof(float));
	float *dx = malloc((size_t)n * cin * hwi * sizeof(float));
	bio_conv2d_forward(&l, y, x, n);
	double *ry = cnhw_ref(need(tb, "expect:y")->v, n, cout, hwo);
	double *rdx = cnhw_ref(need(tb, "grad:x")->v, n, cin, hwi);
	compare("y", y, ry, (size_t)n * cout * hwo, TOL_FWD);
	bio_conv2d_backward(&l, dx, dy, x, n);
	compare("grad:w", l.dw, need(tb, "grad:w")->v, need(tb, "w")->numel, TOL_GRAD);
	compare("grad:b", l.db, need(tb, "grad:b")->v, cout, TOL_GRAD);
	compare("grad:x", dx, rdx, (size_t)n * cin * hwi, TOL_GRAD);
	free(l.w);
	free(l.b);
	free(l.dw);
	free(l.db);
	free(l.col);
	free(x);
	free(dy);
	free(y);
	free(dx);
	free(ry);
	free(rdx);
}

static void run_optim(const struct table *tb, const struct bio_value *meta)
{
	struct bio_optim o = {0};
	char *kind = bio_value_strdup(bio_value_get(meta, "optimizer"));
	bio_optim_parse(&o.kind, kind);
	free(kind);
	o.lr = meta_double(meta, "lr");
	o.momentum = meta_double(meta, "momentum");
	o.nesterov = (int)meta_int(meta, "nesterov");
	o.weight_decay = meta_double(meta, "weight_decay");
	o.beta1 = meta_double(meta, "beta1");
	o.beta2 = meta_double(meta, "beta2");
	o.eps = meta_double(meta, "eps");
	double clip = meta_double(meta, "clip");
	const struct named *p0 = need(tb, "p0");
	size_t n = p0->numel;
	float *p = to_float(p0);
	o.n = n;
	o.m = calloc(n, sizeof(float));
	o.v = calloc(n, sizeof(float));
	int steps = (int)meta_int(meta, "steps");
	char name[64];
	for (int t = 0; t < steps; t++) {
		snprintf(name, sizeof name, "grad%d", t);
		float *g = to_float(need(tb, name));
		if (clip > 0)
			bio_clip_grad_norm(g, n, clip);
		bio_optim_step(&o, p, g, n);
		snprintf(name, sizeof name, "expect:p%d", t);
		compare(name, p, need(tb, name)->v, n, TOL_OPT);
		free(g);
	}
	free(p);
	free(o.m);
	free(o.v);
}

static void run_sched(const struct table *tb, const struct bio_value *meta)
{
	struct bio_sched s = {0};
	char *kind = bio_value_strdup(bio_value_get(meta, "scheduler"));
	s.kind = strcmp(kind, "step") == 0     ? BIO_SCHED_STEP
		 : strcmp(kind, "cosine") == 0 ? BIO_SCHED_COSINE
					       : BIO_SCHED_PLATEAU;
	free(kind);
	s.base_lr = s.lr = meta_double(meta, "lr");
	s.step_size = meta_int(meta, "step_size");
	s.gamma = meta_double(meta, "gamma");
	s.t_max = meta_int(meta, "t_max");
	s.min_lr = meta_double(meta, "min_lr");
	s.factor = meta_double(meta, "factor");
	s.patience = meta_int(meta, "patience");
	s.plateau_max = (int)meta_int(meta, "mode_max");
	s.best = s.plateau_max ? -INFINITY : INFINITY;
	int epochs = (int)meta_int(meta, "epochs");
	const struct named *metrics = need(tb, "metrics"), *lr = need(tb, "expect:lr");
	float *ours = malloc(epochs * sizeof(float));
	double maxrel = 0.0;
	for (int e = 0; e < epochs; e++) {
		double v = bio_sched_epoch_end(&s, metrics->v[e]);
		double rel = fabs(v - lr->v[e]) / fabs(lr->v[e] > 0 ? lr->v[e] : 1.0);
		if (rel > maxrel)
			maxrel = rel;
		ours[e] = (float)v;
	}
	if (maxrel > worst)
		worst = maxrel;
	if (!(maxrel <= TOL_LR)) {
		fprintf(stderr, "  lr: relative error %.3g\n", maxrel);
		for (int e = 0; e < epochs; e++)
			fprintf(stderr, "    epoch %d: ours %.9g torch %.9g\n", e, ours[e], lr->v[e]);
		failed = 1;
	}
	free(ours);
}

static int run_logits(const char *ckpt, const char *samples, const char *out)
{
	struct bio_error err;
	struct bio_model *m;
	if (bio_checkpoint_load(&m, NULL, NULL, NULL, ckpt, 16, &err)) {
		fprintf(stderr, "nn_parity: %s\n", err.msg);
		return 1;
	}
	const char *paths[1] = {samples};
	struct bio_stream_reader *r = bio_stream_reader_open(paths, 1, NULL, &err);
	const struct bio_value *meta, *rec;
	if (!r || bio_stream_read_header(r, "samples", &meta, &err)) {
		fprintf(stderr, "nn_parity: %s\n", err.msg);
		return 1;
	}
	size_t side2 = (size_t)m->spec.input_size * m->spec.input_size, n = 0;
	int nc = m->spec.n_classes;
	float *logits = NULL;
	float *in[BIO_MODEL_MAX_MODS];
	for (int b = 0; b < m->spec.n_mod; b++)
		in[b] = malloc(side2 * sizeof(float));
	while (bio_stream_read_record(r, &rec, &err) == 1) {
		for (int b = 0; b < m->spec.n_mod; b++) {
			struct bio_tensor t;
			if (bio_record_get_tensor(&t, r, rec, m->spec.modalities[b], BIO_DTYPE_F32, 3,
						  &err) || bio_tensor_numel(&t) != side2) {
				fprintf(stderr, "nn_parity: bad sample\n");
				return 1;
			}
			memcpy(in[b], t.data, side2 * sizeof(float));
		}
		bio_model_forward(m, (const float *const *)in, 1, 0);
		logits = realloc(logits, (n + 1) * nc * sizeof(float));
		memcpy(logits + n * nc, m->logits, nc * sizeof(float));
		n++;
	}
	FILE *f = fopen(out, "wb");
	struct bio_stream_writer *w = bio_stream_writer_new(f, &err);
	bio_stream_begin_header(w, "checkpoint");
	bio_pack_map(w, 0);
	bio_stream_begin_record(w);
	bio_pack_map(w, 2);
	bio_pack_kv_str(w, "name", "logits");
	bio_pack_str(w, "tensor");
	struct bio_tensor t;
	int64_t shape[2] = {(int64_t)n, nc};
	bio_tensor_view(&t, BIO_DTYPE_F32, 2, shape, logits);
	bio_pack_tensor(w, &t);
	int rc = bio_stream_finish(w, 0, NULL, NULL, &err);
	bio_stream_writer_free(w);
	fclose(f);
	for (int b = 0; b < m->spec.n_mod; b++)
		free(in[b]);
	free(logits);
	bio_stream_reader_free(r);
	bio_model_free(m);
	return rc ? 1 : 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench_infer(const char *ckpt, int batch, int n, int threads)
{
	struct bio_error err;
	struct bio_model *m;
	bio_nn_set_threads(threads);
	if (bio_checkpoint_load(&m, NULL, NULL, NULL, ckpt, batch, &err)) {
		fprintf(stderr, "nn_parity: %s\n", err.msg);
		return 1;
	}
	bio_model_freeze(m); /* (as bio-infer: the weights packed once) */
	size_t side2 = (size_t)m->spec.input_size * m->spec.input_size;
	float *in[BIO_MODEL_MAX_MODS];
	struct bio_rng r;
	bio_rng_seed(&r, 3);
	for (int b = 0; b < m->spec.n_mod; b++) {
		in[b] = malloc(batch * side2 * sizeof(float));
		for (size_t i = 0; i < batch * side2; i++)
			in[b][i] = (float)bio_rng_range(&r, -1, 1);
	}
	bio_model_forward(m, (const float *const *)in, batch, 0); /* warm-up */
	double t0 = now_s();
	for (int i = 0; i < n; i++)
		bio_model_forward(m, (const float *const *)in, batch, 0);
	double dt = now_s() - t0;
	printf("%.1f\n", (double)batch * n / dt);
	for (int b = 0; b < m->spec.n_mod; b++)
		free(in[b]);
	bio_model_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	int any_failed = 0, i = 1;
	if (argc == 5 && strcmp(argv[1], "--logits") == 0)
		return run_logits(argv[2], argv[3], argv[4]);
	if (argc == 6 && strcmp(argv[1], "--bench-infer") == 0)
		return bench_infer(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = 1;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: nn_parity [-v] CASE.bs...\n");
		return 2;
	}
	bio_nn_set_threads(1);
	for (; i < argc; i++) {
		struct table tb = {0};
		char case_name[32];
		const struct bio_value *meta;
		struct bio_stream_reader *r;
		read_table(&tb, argv[i], case_name, sizeof case_name, &meta, &r);
		worst = 0.0;
		failed = 0;
		if (strcmp(case_name, "model") == 0)
			run_model(&tb, meta);
		else if (strcmp(case_name, "conv") == 0)
			run_conv(&tb, meta);
		else if (strcmp(case_name, "optim") == 0)
			run_optim(&tb, meta);
		else if (strcmp(case_name, "sched") == 0)
			run_sched(&tb, meta);
		else {
			fprintf(stderr, "nn_parity: %s: unknown case '%s'\n", argv[i], case_name);
			return 1;
		}
		printf("%s %s worst relative error %.3g\n", failed ? "FAIL" : "ok", argv[i], worst);
		any_failed |= failed;
		for (size_t j = 0; j < tb.n; j++) {
			free(tb.t[j].name);
			free(tb.t[j].v);
		}
		free(tb.t);
		bio_stream_reader_free(r);
	}
	return any_failed;
}
