/* The two-branch model of DESIGN.md on the layers of nn.c: construction from config, the
 * state_dict table (PyTorch names and layouts), PyTorch-default initialisation, forward, loss and
 * backward over preallocated blocks. Activation memory: per conv block only the normalised conv
 * output (for batch-norm backward), the pooled output and a byte of arg-max per pooled element are
 * kept; batch-norm output and ReLU are fused into the pool, and in backward the block's xhat is
 * overwritten by its gradient; scratch is shared by the branches. */
#include "bio/model.h"
#include "bio/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "free_list.h"

const char *const bio_model_timer_names[BIO_MODEL_N_TIMERS] = {
	"conv_forward", "bn_relu_pool_forward", "dense_forward", "head_forward",
	"conv_backward", "bn_relu_pool_backward", "dense_backward", "head_backward",
};

struct bio_model_branch {
	struct bio_conv2d conv[BIO_MODEL_MAX_BLOCKS];
	struct bio_batchnorm bn[BIO_MODEL_MAX_BLOCKS];
	float *bn_stats;                      /* mean, invstd per block: 2 * sum(channels) */
	float *xhat[BIO_MODEL_MAX_BLOCKS];    /* [c][n][h][w] normalised conv output */
	float *pool[BIO_MODEL_MAX_BLOCKS];    /* [c][n][h/2][w/2] */
	uint8_t *argmax[BIO_MODEL_MAX_BLOCKS];
	struct bio_linear fc1, fc2;
	float *flat;                          /* [n][F] */
	float *h1;                            /* [n][hidden] ReLU(fc1) */
	float *mask;                          /* [n][hidden] dropout mask */
	float *h1d;                           /* [n][hidden] after dropout */
	float *emb;                           /* [n][embedding] */
	const float *input;                   /* borrowed by the last forward */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- spec ---- */

/* Config key into *out: an integer in lo..hi. */
static int spec_int(int *out, const struct bio_config *cfg, const char *key, int64_t lo,
		    int64_t hi, struct bio_error *err)
{
	int64_t v;
	int rc = bio_config_get_int_range(cfg, key, lo, hi, &v, err);
	if (rc == 0)
		*out = (int)v;
	return rc;
}

/* The length of list key into *n: 1 to max items (things names them in the error). */
static int spec_list(int *n, const struct bio_config *cfg, const char *key, int max,
		     const char *things, struct bio_error *err)
{
	size_t len = bio_config_count(cfg, key);
	if (len < 1 || len > (size_t)max)
		return bio_config_error(cfg, key, err, BIO_EINVAL, "expected a list of 1 to %d %s",
					max, things);
	*n = (int)len;
	return 0;
}

int bio_model_spec_from_config(struct bio_model_spec *spec, const struct bio_config *cfg,
			       struct bio_error *err)
{
	const char *s;
	double dropout, temperature, margin, scale;
	int rc;
	memset(spec, 0, sizeof *spec);
	if ((rc = spec_int(&spec->input_size, cfg, "model.input_size", 4, 1024, err)) ||
	    (rc = spec_int(&spec->kernel, cfg, "model.kernel", 1, 15, err)))
		return rc;
	if (spec->kernel % 2 == 0)
		return bio_config_error(cfg, "model.kernel", err, BIO_EINVAL,
					"kernel must be odd, got %d", spec->kernel);
	if ((rc = spec_list(&spec->n_blocks, cfg, "model.channels", BIO_MODEL_MAX_BLOCKS,
			    "channel counts", err)))
		return rc;
	for (int i = 0; i < spec->n_blocks; i++) {
		const char *item = bio_config_item_at(cfg, "model.channels", (size_t)i);
		char *end;
		long c = item ? strtol(item, &end, 10) : 0;
		if (!item || *end || c < 1 || c > 4096)
			return bio_config_error(cfg, "model.channels", err, BIO_EINVAL,
						"item %d: expected a channel count in 1..4096, got '%s'",
						i, item ? item : "");
		spec->channels[i] = (int)c;
	}
	if ((rc = spec_int(&spec->hidden, cfg, "model.hidden", 1, 65536, err)) ||
	    (rc = spec_int(&spec->embedding, cfg, "model.embedding", 1, 65536, err)) ||
	    (rc = bio_config_get_double_range(cfg, "model.dropout", 0.0, 0.99, &dropout, err)) ||
	    (rc = bio_config_get_str(cfg, "model.fusion", &s, err)))
		return rc;
	if (bio_fusion_parse(&spec->fusion, s))
		return bio_config_error(cfg, "model.fusion", err, BIO_EINVAL,
					"expected concat, attention or weighted, got '%s'", s);
	if ((rc = bio_config_get_double_range(cfg, "model.attention_temperature", 0.05, 100.0,
					      &temperature, err)) ||
	    (rc = bio_config_get_str(cfg, "training.loss", &s, err)))
		return rc;
	if (bio_loss_parse(&spec->loss, s))
		return bio_config_error(cfg, "training.loss", err, BIO_EINVAL,
					"expected softmax, cosface or arcface, got '%s'", s);
	if ((rc = bio_config_get_double_range(cfg, "training.margin", 0.0, 1.5, &margin, err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.scale", 1.0, 1024.0, &scale, err)) ||
	    (rc = spec_list(&spec->n_mod, cfg, "model.modalities", BIO_MODEL_MAX_MODS,
			    "modality names", err)))
		return rc;
	for (int i = 0; i < spec->n_mod; i++) {
		const char *item = bio_config_item_at(cfg, "model.modalities", (size_t)i);
		if (!item || !*item || strlen(item) >= sizeof spec->modalities[0] ||
		    strspn(item, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(item))
			return bio_config_error(cfg, "model.modalities", err, BIO_EINVAL,
						"item %d: bad modality name '%s'", i,
						item ? item : "");
		for (int j = 0; j < i; j++)
			if (strcmp(spec->modalities[j], item) == 0)
				return bio_config_error(cfg, "model.modalities", err, BIO_EINVAL,
							"modality '%s' listed twice", item);
		strcpy(spec->modalities[i], item);
	}
	spec->dropout = (float)dropout;
	spec->attention_temperature = (float)temperature;
	spec->margin = (float)margin;
	spec->scale = (float)scale;
	return bio_model_spec_check(spec, err);
}

static int feature_side(const struct bio_model_spec *spec)
{
	int s = spec->input_size;
	for (int i = 0; i < spec->n_blocks; i++)
		s /= 2;
	return s;
}

int bio_model_spec_check(const struct bio_model_spec *spec, struct bio_error *err)
{
	if (spec->input_size < 2 || spec->input_size > 1024)
		return bio_error_set(err, BIO_EINVAL, "model input size %d outside 2..1024",
				     spec->input_size);
	if (spec->n_blocks < 1 || spec->n_blocks > BIO_MODEL_MAX_BLOCKS)
		return bio_error_set(err, BIO_EINVAL, "model has %d conv blocks (1..%d)",
				     spec->n_blocks, BIO_MODEL_MAX_BLOCKS);
	if (spec->kernel < 1 || spec->kernel > 15 || spec->kernel % 2 == 0)
		return bio_error_set(err, BIO_EINVAL, "model kernel %d is not odd in 1..15",
				     spec->kernel);
	for (int i = 0; i < spec->n_blocks; i++)
		if (spec->channels[i] < 1 || spec->channels[i] > 4096)
			return bio_error_set(err, BIO_EINVAL, "model channels %d outside 1..4096",
					     spec->channels[i]);
	if (feature_side(spec) < 1)
		return bio_error_set(err, BIO_EINVAL,
				     "model input size %d is too small for %d pooling blocks",
				     spec->input_size, spec->n_blocks);
	if (spec->hidden < 1 || spec->hidden > 65536 || spec->embedding < 1 ||
	    spec->embedding > 65536)
		return bio_error_set(err, BIO_EINVAL, "model hidden/embedding size out of range");
	if (!(spec->dropout >= 0.0f && spec->dropout < 1.0f))
		return bio_error_set(err, BIO_EINVAL, "model dropout %g outside [0, 1)",
				     (double)spec->dropout);
	if (spec->n_mod < 1 || spec->n_mod > BIO_MODEL_MAX_MODS)
		return bio_error_set(err, BIO_EINVAL, "model has %d modalities (1..%d)",
				     spec->n_mod, BIO_MODEL_MAX_MODS);
	if (spec->fusion != BIO_FUSION_CONCAT && spec->fusion != BIO_FUSION_ATTENTION &&
	    spec->fusion != BIO_FUSION_WEIGHTED)
		return bio_error_set(err, BIO_EINVAL, "unknown fusion");
	if (spec->fusion == BIO_FUSION_ATTENTION &&
	    !(spec->attention_temperature >= 0.05f && spec->attention_temperature <= 100.0f))
		return bio_error_set(err, BIO_EINVAL, "model attention temperature %g outside "
				     "0.05..100", (double)spec->attention_temperature);
	if (spec->loss != BIO_LOSS_SOFTMAX && spec->loss != BIO_LOSS_COSFACE &&
	    spec->loss != BIO_LOSS_ARCFACE)
		return bio_error_set(err, BIO_EINVAL, "unknown loss");
	if (spec->loss != BIO_LOSS_SOFTMAX &&
	    (!(spec->margin >= 0.0f && spec->margin <= 1.5f) ||
	     !(spec->scale >= 1.0f && spec->scale <= 1024.0f)))
		return bio_error_set(err, BIO_EINVAL, "model %s margin %g (0..1.5) or scale %g "
				     "(1..1024) out of range", bio_loss_name(spec->loss),
				     (double)spec->margin, (double)spec->scale);
	if (spec->n_classes < 0 || spec->n_classes > 1000000)
		return bio_error_set(err, BIO_EINVAL, "model has %d classes (2..1000000)",
				     spec->n_classes);
	double flat = (double)spec->channels[spec->n_blocks - 1] * feature_side(spec) *
		      feature_side(spec);
	if (flat * spec->hidden > 1e9)
		return bio_error_set(err, BIO_ELIMIT, "model too large: %.0f x %d first linear layer",
				     flat, spec->hidden);
	return 0;
}

int bio_model_spec_equal(const struct bio_model_spec *a, const struct bio_model_spec *b)
{
	if (a->input_size != b->input_size || a->n_blocks != b->n_blocks ||
	    a->kernel != b->kernel || a->hidden != b->hidden || a->embedding != b->embedding ||
	    a->dropout != b->dropout || a->fusion != b->fusion || a->n_mod != b->n_mod ||
	    a->n_classes != b->n_classes || a->loss != b->loss)
		return 0;
	if (a->loss != BIO_LOSS_SOFTMAX && (a->margin != b->margin || a->scale != b->scale))
		return 0;
	if (a->fusion == BIO_FUSION_ATTENTION &&
	    a->attention_temperature != b->attention_temperature)
		return 0;
	for (int i = 0; i < a->n_blocks; i++)
		if (a->channels[i] != b->channels[i])
			return 0;
	for (int i = 0; i < a->n_mod; i++)
		if (strcmp(a->modalities[i], b->modalities[i]) != 0)
			return 0;
	return 1;
}

double bio_model_train_flops(const struct bio_model_spec *spec)
{
	double f = 0.0;
	int side = spec->input_size, cin = 1;
	for (int i = 0; i < spec->n_blocks; i++) {
		double conv = 2.0 * side * side * spec->channels[i] * cin * spec->kernel * spec->kernel;
		f += conv * (i == 0 ? 2.0 : 3.0); /* forward, weight grad, input grad (not first) */
		cin = spec->channels[i];
		side /= 2;
	}
	double flat = (double)cin * side * side;
	f += 3.0 * 2.0 * (flat * spec->hidden + (double)spec->hidden * spec->embedding);
	f *= spec->n_mod;
	int fused = spec->fusion == BIO_FUSION_CONCAT ? spec->n_mod * spec->embedding : spec->embedding;
	f += 3.0 * 2.0 * fused * spec->n_classes;
	return f;
}

/* ---- construction ---- */

struct layout {
	size_t n_params, n_buffers, n_counts, n_tensors;
	struct bio_model_tensor *t; /* NULL in the counting pass */
};

static void add_tensor(struct layout *lo, const char *prefix, const char *name,
		       enum bio_tensor_role role, int n_dims, int64_t d0, int64_t d1, int64_t d2,
		       int64_t d3)
{
	int64_t dims[4] = {d0, d1, d2, d3};
	size_t numel = 1;
	for (int i = 0; i < n_dims; i++)
		numel *= (size_t)dims[i];
	if (lo->t) {
		struct bio_model_tensor *t = &lo->t[lo->n_tensors];
		memset(t, 0, sizeof *t);
		snprintf(t->name, sizeof t->name, "%.40s%.20s", prefix, name);
		t->role = role;
		t->n_dims = n_dims;
		memcpy(t->shape, dims, sizeof dims);
		t->numel = numel;
		t->offset = role == BIO_ROLE_PARAM ? lo->n_params
			    : role == BIO_ROLE_BUFFER ? lo->n_buffers : lo->n_counts;
	}
	lo->n_tensors++;
	if (role == BIO_ROLE_PARAM)
		lo->n_params += numel;
	else if (role == BIO_ROLE_BUFFER)
		lo->n_buffers += numel;
	else
		lo->n_counts++;
}

static void make_layout(struct layout *lo, const struct bio_model_spec *spec)
{
	char pre[48];
	int fs = feature_side(spec), k = spec->kernel;
	for (int m = 0; m < spec->n_mod; m++) {
		int cin = 1;
		for (int i = 0; i < spec->n_blocks; i++) {
			int c = spec->channels[i];
			snprintf(pre, sizeof pre, "%.31s.conv%d.", spec->modalities[m], (i + 1) & 15);
			add_tensor(lo, pre, "weight", BIO_ROLE_PARAM, 4, c, cin, k, k);
			add_tensor(lo, pre, "bias", BIO_ROLE_PARAM, 1, c, 0, 0, 0);
			snprintf(pre, sizeof pre, "%.31s.bn%d.", spec->modalities[m], (i + 1) & 15);
			add_tensor(lo, pre, "weight", BIO_ROLE_PARAM, 1, c, 0, 0, 0);
			add_tensor(lo, pre, "bias", BIO_ROLE_PARAM, 1, c, 0, 0, 0);
			add_tensor(lo, pre, "running_mean", BIO_ROLE_BUFFER, 1, c, 0, 0, 0);
			add_tensor(lo, pre, "running_var", BIO_ROLE_BUFFER, 1, c, 0, 0, 0);
			add_tensor(lo, pre, "num_batches_tracked", BIO_ROLE_COUNT, 0, 0, 0, 0, 0);
			cin = c;
		}
		int64_t flat = (int64_t)cin * fs * fs;
		snprintf(pre, sizeof pre, "%.31s.fc1.", spec->modalities[m]);
		add_tensor(lo, pre, "weight", BIO_ROLE_PARAM, 2, spec->hidden, flat, 0, 0);
		add_tensor(lo, pre, "bias", BIO_ROLE_PARAM, 1, spec->hidden, 0, 0, 0);
		snprintf(pre, sizeof pre, "%.31s.fc2.", spec->modalities[m]);
		add_tensor(lo, pre, "weight", BIO_ROLE_PARAM, 2, spec->embedding, spec->hidden, 0, 0);
		add_tensor(lo, pre, "bias", BIO_ROLE_PARAM, 1, spec->embedding, 0, 0, 0);
	}
	if (spec->fusion == BIO_FUSION_ATTENTION) {
		add_tensor(lo, "fusion.score.", "weight", BIO_ROLE_PARAM, 2, 1, spec->embedding, 0, 0);
		add_tensor(lo, "fusion.score.", "bias", BIO_ROLE_PARAM, 1, 1, 0, 0, 0);
	} else if (spec->fusion == BIO_FUSION_WEIGHTED) {
		add_tensor(lo, "fusion.", "weights", BIO_ROLE_PARAM, 1, spec->n_mod, 0, 0, 0);
	}
	int fused = spec->fusion == BIO_FUSION_CONCAT ? spec->n_mod * spec->embedding : spec->embedding;
	add_tensor(lo, "classifier.", "weight", BIO_ROLE_PARAM, 2, spec->n_classes, fused, 0, 0);
	if (spec->loss == BIO_LOSS_SOFTMAX) /* the cosine classifier has no bias */
		add_tensor(lo, "classifier.", "bias", BIO_ROLE_PARAM, 1, spec->n_classes, 0, 0, 0);
}

/* Floats allocated with a running total of bytes. */
static float *falloc(size_t n, size_t *total)
{
	*total += n * sizeof(float);
	return calloc(n ? n : 1, sizeof(float));
}

const struct bio_model_tensor *bio_model_find(const struct bio_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].name, name) == 0)
			return &m->tensors[i];
	return NULL;
}

/* Data (or gradient) of "<mod>.<layer><i>.<field>". */
static float *param(struct bio_model *m, const char *mod, const char *layer, int i,
		    const char *field, int grad)
{
	char name[BIO_MODEL_NAME_MAX];
	snprintf(name, sizeof name, "%.31s.%.4s%d.%.12s", mod, layer, i & 15, field);
	const struct bio_model_tensor *t = bio_model_find(m, name);
	BIO_ASSERT(t);
	return grad ? t->grad : t->data;
}

struct bio_model *bio_model_new(const struct bio_model_spec *spec, int max_batch,
				struct bio_error *err)
{
	if (bio_model_spec_check(spec, err))
		return NULL;
	if (spec->n_classes < 2) {
		bio_error_set(err, BIO_EINVAL, "model needs at least 2 classes, got %d",
			      spec->n_classes);
		return NULL;
	}
	if (max_batch < 1 || max_batch > 65536) {
		bio_error_set(err, BIO_EINVAL, "batch size %d outside 1..65536", max_batch);
		return NULL;
	}
	/* Largest activation: bound it so the size arithmetic below cannot overflow. */
	double biggest = (double)max_batch * spec->input_size * spec->input_size *
			 spec->channels[0];
	for (int i = 1; i < spec->n_blocks; i++) {
		double s = spec->input_size >> i;
		if ((double)max_batch * s * s * spec->channels[i] > biggest)
			biggest = (double)max_batch * s * s * spec->channels[i];
	}
	if (biggest > 4e9) {
		bio_error_set(err, BIO_ELIMIT, "model activations too large for batch size %d",
			      max_batch);
		return NULL;
	}
	struct bio_model *m = calloc(1, sizeof *m);
	if (!m)
		goto nomem;
	m->spec = *spec;
	m->max_batch = max_batch;
	m->n_threads = 1;
	struct layout lo = {0};
	make_layout(&lo, spec);
	m->tensors = calloc(lo.n_tensors, sizeof *m->tensors);
	if (!m->tensors)
		goto nomem;
	lo = (struct layout){.t = m->tensors};
	make_layout(&lo, spec);
	m->n_tensors = lo.n_tensors;
	m->n_params = lo.n_params;
	m->n_buffers = lo.n_buffers;
	m->params = calloc(lo.n_params, sizeof(float));
	m->grads = calloc(lo.n_params, sizeof(float));
	m->moments = calloc(2 * lo.n_params, sizeof(float));
	m->buffers = calloc(lo.n_buffers ? lo.n_buffers : 1, sizeof(float));
	m->counts = calloc(lo.n_counts ? lo.n_counts : 1, sizeof(int64_t));
	if (!m->params || !m->grads || !m->moments || !m->buffers || !m->counts)
		goto nomem;
	for (size_t i = 0; i < m->n_tensors; i++) {
		struct bio_model_tensor *t = &m->tensors[i];
		if (t->role == BIO_ROLE_PARAM) {
			t->data = m->params + t->offset;
			t->grad = m->grads + t->offset;
		} else if (t->role == BIO_ROLE_BUFFER) {
			t->data = m->buffers + t->offset;
		} else {
			t->count = m->counts + t->offset;
		}
	}

	const int n = max_batch, nm = spec->n_mod, k = spec->kernel;
	size_t *ab = &m->activation_bytes;
	m->c1_fused = k == 3 && spec->input_size % 2 == 0;
	size_t max_col = 0, max_pool = 0;
	m->branches = calloc(nm, sizeof *m->branches);
	m->emb = calloc(nm, sizeof *m->emb);
	m->d_emb = calloc(nm, sizeof *m->d_emb);
	if (!m->branches || !m->emb || !m->d_emb)
		goto nomem;
	int fs = feature_side(spec);
	int flat = spec->channels[spec->n_blocks - 1] * fs * fs;
	for (int b = 0; b < nm; b++) {
		struct bio_model_branch *br = &m->branches[b];
		const char *mod = spec->modalities[b];
		int side = spec->input_size, cin = 1, sum_c = 0;
		for (int i = 0; i < spec->n_blocks; i++)
			sum_c += spec->channels[i];
		br->bn_stats = falloc(2 * (size_t)sum_c, ab);
		if (!br->bn_stats)
			goto nomem;
		float *stats = br->bn_stats;
		for (int i = 0; i < spec->n_blocks; i++) {
			int c = spec->channels[i];
			struct bio_conv2d *cv = &br->conv[i];
			bio_conv2d_setup(cv, cin, c, k, 1, k / 2, side, side);
			cv->w = param(m, mod, "conv", i + 1, "weight", 0);
			cv->b = param(m, mod, "conv", i + 1, "bias", 0);
			cv->dw = param(m, mod, "conv", i + 1, "weight", 1);
			cv->db = param(m, mod, "conv", i + 1, "bias", 1);
			struct bio_batchnorm *bn = &br->bn[i];
			bn->c = c;
			bn->spatial = side * side;
			bn->eps = 1e-5f;
			bn->momentum = 0.1f;
			bn->gamma = param(m, mod, "bn", i + 1, "weight", 0);
			bn->beta = param(m, mod, "bn", i + 1, "bias", 0);
			bn->dgamma = param(m, mod, "bn", i + 1, "weight", 1);
			bn->dbeta = param(m, mod, "bn", i + 1, "bias", 1);
			bn->running_mean = param(m, mod, "bn", i + 1, "running_mean", 0);
			bn->running_var = param(m, mod, "bn", i + 1, "running_var", 0);
			char name[BIO_MODEL_NAME_MAX];
			snprintf(name, sizeof name, "%.31s.bn%d.num_batches_tracked", mod, (i + 1) & 15);
			bn->num_batches_tracked = bio_model_find(m, name)->count;
			bn->mean = stats;
			bn->invstd = stats + c;
			stats += 2 * c;
			size_t conv_n = (size_t)c * n * side * side;
			size_t pool_n = (size_t)c * n * (side / 2) * (side / 2);
			/* block 1's output (the largest) is not kept: with a 3x3 kernel the block is
			 * done in pieces (bio_c1_block_forward: no buffer), else one buffer serves
			 * every branch and backward recomputes it from the input */
			if (i == 0 && m->c1_fused)
				br->xhat[i] = NULL;
			else if (i > 0 || b == 0)
				br->xhat[i] = falloc(conv_n, ab);
			else
				br->xhat[i] = m->branches[0].xhat[0];
			br->pool[i] = falloc(pool_n, ab);
			br->argmax[i] = calloc(pool_n, 1);
			*ab += pool_n;
			if ((!br->xhat[i] && !(i == 0 && m->c1_fused)) || !br->pool[i] || !br->argmax[i])
				goto nomem;
			if (pool_n > max_pool)
				max_pool = pool_n;
			/* the direct kernels' packed weights (forward, input gradient) */
			size_t nw = BIO_CONV3X3_PACKED(cin, c);
			if (cin > 1 && (!(cv->wp = falloc(nw, ab)) || !(cv->wp_flip = falloc(nw, ab))))
				goto nomem;
			size_t col = bio_conv2d_col_floats(cv);
			if (col > max_col)
				max_col = col;
			cin = c;
			side /= 2;
		}
		br->fc1 = (struct bio_linear){flat, spec->hidden, param(m, mod, "fc", 1, "weight", 0),
					      param(m, mod, "fc", 1, "bias", 0),
					      param(m, mod, "fc", 1, "weight", 1),
					      param(m, mod, "fc", 1, "bias", 1), NULL, NULL};
		br->fc2 = (struct bio_linear){spec->hidden, spec->embedding,
					      param(m, mod, "fc", 2, "weight", 0),
					      param(m, mod, "fc", 2, "bias", 0),
					      param(m, mod, "fc", 2, "weight", 1),
					      param(m, mod, "fc", 2, "bias", 1), NULL, NULL};
		br->flat = falloc((size_t)n * flat, ab);
		br->h1 = falloc((size_t)n * spec->hidden, ab);
		br->mask = falloc((size_t)n * spec->hidden, ab);
		br->h1d = falloc((size_t)n * spec->hidden, ab);
		br->emb = falloc((size_t)n * spec->embedding, ab);
		m->d_emb[b] = falloc((size_t)n * spec->embedding, ab);
		if (!br->flat || !br->h1 || !br->mask || !br->h1d || !br->emb || !m->d_emb[b])
			goto nomem;
		m->emb[b] = br->emb;
	}
	/* im2col scratch, one buffer per thread: chunks of BIO_MODEL_CONV_CHUNK samples (fixed, so
	 * that results do not depend on the thread count); per-chunk weight-gradient partials */
	const int chunk = n < BIO_MODEL_CONV_CHUNK ? n : BIO_MODEL_CONV_CHUNK;
	const size_t n_chunks = (size_t)((n + chunk - 1) / chunk);
	size_t max_dw = 0;
	for (int i = 0, cin = 1; i < spec->n_blocks; cin = spec->channels[i], i++)
		if ((size_t)spec->channels[i] * cin * k * k > max_dw)
			max_dw = (size_t)spec->channels[i] * cin * k * k;
	m->col_floats = max_col * chunk; /* (taken per thread only where a layer needs im2col) */
	m->dw_part = falloc(max_dw * n_chunks, ab);
	/* d_scratch: gradients of pool outputs and dense layers (the gradient of a conv output
	 * reuses that block's xhat), in two halves that alternate (branch_backward): half 0 holds
	 * fc2's input gradient, then the last pool output's; half 1 fc1's input gradient; then
	 * each block writes the previous block's pool gradient into the other half. Each half as
	 * large as what it holds. */
	size_t need[2] = {(size_t)n * spec->hidden, (size_t)n * flat};
	{
		int side = spec->input_size >> (spec->n_blocks - 1);
		size_t last = (size_t)n * spec->channels[spec->n_blocks - 1] * (side / 2) * (side / 2);
		if (last > need[0])
			need[0] = last;
		for (int i = spec->n_blocks - 1, cur = 0; i >= 1; i--, cur = !cur) {
			int s = spec->input_size >> (i - 1);
			size_t pn = (size_t)n * spec->channels[i - 1] * (s / 2) * (s / 2);
			if (pn > need[!cur])
				need[!cur] = pn;
		}
	}
	/* the half block 1 reads its pool gradient from is d_scratch; the other one can live in
	 * block 1's normalised-output buffer when there is one, which backward only uses (to
	 * recompute it) at block 1, where that half is no longer needed */
	const int z = (spec->n_blocks - 1) % 2;
	size_t x0 = (size_t)spec->channels[0] * n * spec->input_size * spec->input_size;
	float *shared = need[!z] <= x0 && !m->c1_fused ? m->branches[0].xhat[0] : NULL;
	m->d_scratch = falloc(need[z] + (shared ? 0 : need[!z]), ab);
	if (!m->dw_part || !m->d_scratch)
		goto nomem;
	m->d_halves[z] = m->d_scratch;
	m->d_halves[!z] = shared ? shared : m->d_scratch + need[z];
	for (int b = 0; b < nm; b++)
		for (int i = 0; i < spec->n_blocks; i++) {
			m->branches[b].conv[i].col_floats = m->col_floats;
			m->branches[b].conv[i].chunk = chunk;
			m->branches[b].conv[i].dw_part = m->dw_part;
		}

	m->fusion.kind = spec->fusion;
	m->fusion.n_mod = nm;
	m->fusion.dim = spec->embedding;
	m->fusion.temperature = spec->attention_temperature;
	if (spec->fusion == BIO_FUSION_ATTENTION) {
		const struct bio_model_tensor *w = bio_model_find(m, "fusion.score.weight");
		const struct bio_model_tensor *bb = bio_model_find(m, "fusion.score.bias");
		m->fusion.w = w->data;
		m->fusion.dw = w->grad;
		m->fusion.b = bb->data;
		m->fusion.db = bb->grad;
	} else if (spec->fusion == BIO_FUSION_WEIGHTED) {
		const struct bio_model_tensor *w = bio_model_find(m, "fusion.weights");
		m->fusion.w = w->data;
		m->fusion.dw = w->grad;
	}
	m->fusion.alpha = falloc((size_t)n * nm, ab);
	int fused = bio_fusion_out_dim(&m->fusion);
	const struct bio_model_tensor *cw = bio_model_find(m, "classifier.weight");
	if (spec->loss == BIO_LOSS_SOFTMAX) {
		const struct bio_model_tensor *cb = bio_model_find(m, "classifier.bias");
		m->classifier = (struct bio_linear){fused, spec->n_classes, cw->data, cb->data,
						    cw->grad, cb->grad, NULL, NULL};
	} else {
		struct bio_cosine *h = &m->head;
		h->n_in = fused;
		h->n_out = spec->n_classes;
		h->scale = spec->scale;
		h->w = cw->data;
		h->dw = cw->grad;
		h->u = falloc((size_t)n * fused, ab);
		h->u_inv = falloc((size_t)n, ab);
		h->v = falloc((size_t)spec->n_classes * fused, ab);
		h->v_inv = falloc((size_t)spec->n_classes, ab);
		if (!h->u || !h->u_inv || !h->v || !h->v_inv)
			goto nomem;
	}
	m->fused = falloc((size_t)n * fused, ab);
	m->d_fused = falloc((size_t)n * fused, ab);
	m->logits = falloc((size_t)n * spec->n_classes, ab);
	m->d_logits = falloc((size_t)n * spec->n_classes, ab);
	if (!m->fusion.alpha || !m->fused || !m->d_fused || !m->logits || !m->d_logits)
		goto nomem;
	for (int i = 0; i < spec->n_blocks; i++)
		for (int c = 0; c < spec->channels[i]; c++)
			for (int b = 0; b < nm; b++)
				m->branches[b].bn[i].running_var[c] = 1.0f;
	return m;
nomem:
	bio_model_free(m);
	bio_error_set(err, BIO_ENOMEM, "out of memory building the model (batch %d)", max_batch);
	return NULL;
}

void bio_model_free(struct bio_model *m)
{
	if (!m)
		return;
	if (m->branches) {
		for (int b = 0; b < m->spec.n_mod; b++) {
			struct bio_model_branch *br = &m->branches[b];
			free(br->bn_stats);
			for (int i = 0; i < BIO_MODEL_MAX_BLOCKS; i++) {
				free(br->conv[i].wp);
				free(br->conv[i].wp_flip);
				if (i > 0 || b == 0)
					free(br->xhat[i]);
				free(br->pool[i]);
				free(br->argmax[i]);
			}
			BIO_FREE(br->flat, br->h1, br->mask, br->h1d, br->emb);
			if (m->d_emb)
				free(m->d_emb[b]);
		}
	}
	BIO_FREE(m->branches, m->emb, m->d_emb, m->dw_part);
	bio_nn_pool_free(m->pool);
	BIO_FREE(m->d_scratch, m->head.u, m->head.u_inv, m->head.v, m->head.v_inv, m->fusion.alpha,
		 m->fused, m->d_fused, m->logits, m->d_logits, m->params, m->grads, m->moments,
		 m->buffers, m->counts, m->tensors, m);
}

struct bio_model *bio_model_clone(const struct bio_model *src, int max_batch,
				  struct bio_error *err)
{
	struct bio_model *m = bio_model_new(&src->spec, max_batch, err);
	if (!m)
		return NULL;
	memcpy(m->params, src->params, src->n_params * sizeof *m->params);
	memcpy(m->buffers, src->buffers, src->n_buffers * sizeof *m->buffers);
	for (size_t i = 0; i < m->n_tensors; i++) /* the same spec: the same state_dict */
		if (m->tensors[i].role == BIO_ROLE_COUNT)
			*m->tensors[i].count = *src->tensors[i].count;
	return m;
}

void bio_model_init_params(struct bio_model *m, struct bio_rng *rng)
{
	for (size_t i = 0; i < m->n_tensors; i++) {
		struct bio_model_tensor *t = &m->tensors[i];
		if (t->role == BIO_ROLE_COUNT) {
			*t->count = 0;
			continue;
		}
		size_t len = strlen(t->name);
		int is_bn = strstr(t->name, ".bn") != NULL;
		int is_var = len > 11 && strcmp(t->name + len - 11, "running_var") == 0;
		if (t->role == BIO_ROLE_BUFFER) {
			for (size_t j = 0; j < t->numel; j++)
				t->data[j] = is_var ? 1.0f : 0.0f;
			continue;
		}
		int is_bias = len > 5 && strcmp(t->name + len - 5, ".bias") == 0;
		if (is_bn || strcmp(t->name, "fusion.weights") == 0) {
			float v = is_bn && !is_bias ? 1.0f : 0.0f;
			for (size_t j = 0; j < t->numel; j++)
				t->data[j] = v;
			continue;
		}
		/* conv / linear: the fan-in of the weight this tensor belongs to */
		double fan_in = 1.0;
		if (is_bias) {
			char wname[BIO_MODEL_NAME_MAX];
			snprintf(wname, sizeof wname, "%.*sweight", (int)(len - 4) & 63, t->name);
			const struct bio_model_tensor *w = bio_model_find(m, wname);
			BIO_ASSERT(w);
			fan_in = (double)w->numel / (double)w->shape[0];
		} else {
			fan_in = (double)t->numel / (double)t->shape[0];
		}
		/* U(-bound, bound) from 24 random bits per value: bound * (2k + 1 - 2^24) / 2^24 */
		const float bound = (float)(1.0 / sqrt(fan_in)), scale = bound / 16777216.0f;
		uint64_t r = 0;
		for (size_t j = 0; j < t->numel; j++) {
			/* two 24-bit draws per 64-bit number */
			if (j % 2 == 0)
				r = bio_rng_next(rng);
			int32_t k = (int32_t)((j % 2 == 0 ? r >> 40 : r >> 16) & 0xffffff);
			t->data[j] = scale * (float)(2 * k + 1 - 16777216);
		}
	}
}

void bio_model_set_dist(struct bio_model *m, const struct bio_nn_dist *dist)
{
	m->dist = dist;
	for (int b = 0; b < m->spec.n_mod; b++)
		for (int i = 0; i < m->spec.n_blocks; i++)
			m->branches[b].bn[i].dist = dist;
}

/* Where a parameter lies in params, and so its gradient in grads (the same layout). */
static size_t param_off(const struct bio_model *m, const float *param)
{
	return (size_t)(param - m->params);
}

void bio_model_zero_grad(struct bio_model *m)
{
	size_t b = 0;
	for (int i = 0; i < m->n_fused; i++) { /* (in ascending order) */
		memset(m->grads + b, 0, (m->fused_skip[2 * i] - b) * sizeof(float));
		b = m->fused_skip[2 * i + 1];
	}
	memset(m->grads + b, 0, (m->n_params - b) * sizeof(float));
}

void bio_model_fuse_adam(struct bio_model *m, float *mom_m, float *mom_v,
			 const struct bio_adam *c)
{
	m->n_fused = m->spec.n_mod;
	for (int b = 0; b < m->spec.n_mod; b++) {
		struct bio_linear *l = &m->branches[b].fc1;
		size_t off = param_off(m, l->w);
		m->fc1_fused[b] = (struct bio_lin_fused){c, mom_m + off, mom_v + off};
		m->fused_skip[2 * b] = off;
		m->fused_skip[2 * b + 1] = off + (size_t)l->n_in * l->n_out;
		l->fused = &m->fc1_fused[b];
		l->dw = NULL;
	}
}

float *bio_model_dropout_mask(struct bio_model *m, int branch)
{
	BIO_ASSERT(branch >= 0 && branch < m->spec.n_mod);
	return m->branches[branch].mask;
}

const float *bio_model_embedding(const struct bio_model *m, int branch)
{
	BIO_ASSERT(branch >= 0 && branch < m->spec.n_mod);
	return m->branches[branch].emb;
}

void bio_model_freeze(struct bio_model *m)
{
	for (int b = 0; b < m->spec.n_mod; b++)
		for (int i = 0; i < m->spec.n_blocks; i++)
			bio_conv2d_freeze(&m->branches[b].conv[i]);
}

int bio_model_set_threads(struct bio_model *m, int n_threads, struct bio_error *err)
{
	if (n_threads < 1)
		n_threads = 1;
	struct bio_nn_pool *pool = bio_nn_pool_new(n_threads);
	if (!pool)
		return bio_error_set(err, BIO_ENOMEM, "cannot start %d threads", n_threads);
	bio_nn_pool_free(m->pool);
	m->pool = pool;
	m->n_threads = n_threads;
	bio_nn_set_threads(1); /* the pool splits the GEMMs; OpenBLAS stays single-threaded */
	for (int b = 0; b < m->spec.n_mod; b++) {
		struct bio_model_branch *br = &m->branches[b];
		for (int i = 0; i < m->spec.n_blocks; i++) {
			br->conv[i].pool = pool;
			br->bn[i].pool = pool;
		}
		br->fc1.pool = pool;
		br->fc2.pool = pool;
	}
	m->classifier.pool = pool;
	return 0;
}

/* ---- forward / backward ---- */

struct pool_job {
	struct bio_model *m;
	struct bio_model_branch *br;
	int block, n;
	const float *d_pool;
	float *dy;
};

static void pool_forward_channels(void *ctx, size_t c0, size_t c1, int t)
{
	const struct pool_job *j = ctx;
	const int side = j->m->spec.input_size >> j->block;
	const size_t conv_c = (size_t)j->n * side * side, pool_c = (size_t)j->n * (side / 2) * (side / 2);
	const struct bio_batchnorm *bn = &j->br->bn[j->block];
	(void)t;
	bio_affine_relu_maxpool2_forward(j->br->pool[j->block] + c0 * pool_c,
					 j->br->argmax[j->block] + c0 * pool_c,
					 j->br->xhat[j->block] + c0 * conv_c, bn->gamma + c0,
					 bn->beta + c0, (int)(c1 - c0), j->n, side, side);
}


#define TIMED(m, idx, ...)                                                              \
	do {                                                                            \
		double t0_ = (m)->timing ? now_s() : 0.0;                               \
		__VA_ARGS__;                                                            \
		if ((m)->timing)                                                        \
			(m)->timers[idx] += now_s() - t0_;                              \
	} while (0)

static void branch_forward(struct bio_model *m, struct bio_model_branch *br, const float *input,
			   int n, int training, struct bio_rng *rng)
{
	const struct bio_model_spec *sp = &m->spec;
	const float *x = input;
	int side = sp->input_size;
	br->input = input;
	for (int i = 0; i < sp->n_blocks; i++) {
		int c = sp->channels[i];
		if (i == 0 && m->c1_fused) {
			BIO_ASSERT(bio_c1_block_fits(&br->conv[0], n));
			TIMED(m, 0, bio_c1_block_forward(&br->conv[0], &br->bn[0], br->pool[0],
							 br->argmax[0], x, n, training));
			x = br->pool[0];
			side /= 2;
			continue;
		}
		/* conv into xhat, normalised in place, then affine+ReLU+pool */
		TIMED(m, 0, bio_conv2d_forward(&br->conv[i], br->xhat[i], x, n));
		TIMED(m, 1, {
			bio_batchnorm_forward(&br->bn[i], NULL, br->xhat[i], br->xhat[i], n, training);
			struct pool_job pj = {m, br, i, n, NULL, NULL};
			bio_nn_parallel_for(m->pool, (size_t)c, pool_forward_channels, &pj);
		});
		x = br->pool[i];
		side /= 2;
	}
	TIMED(m, 2, {
		int c = sp->channels[sp->n_blocks - 1];
		bio_flatten_forward(br->flat, x, c, n, side * side);
		bio_linear_forward(&br->fc1, br->h1, br->flat, n);
		size_t nh = (size_t)n * sp->hidden;
		bio_relu_forward(br->h1, br->h1, nh);
		const float *h = br->h1;
		if (training && sp->dropout > 0.0f) {
			if (rng) {
				/* the masks of the whole global batch are drawn (in one process's
				 * order); this rank keeps its samples' rows */
				float scale = bio_dropout_scale(sp->dropout);
				double keep = 1.0 - sp->dropout;
				const struct bio_nn_dist *d = m->dist;
				size_t r0 = d ? (size_t)d->s0 * sp->hidden : 0;
				size_t all = d ? (size_t)d->n_global * sp->hidden : nh;
				for (size_t j = 0; j < all; j++) {
					float v = bio_rng_uniform(rng) < keep ? scale : 0.0f;
					if (j >= r0 && j - r0 < nh)
						br->mask[j - r0] = v;
				}
			}
			bio_dropout_forward(br->h1d, br->h1, br->mask, nh);
			h = br->h1d;
		}
		bio_linear_forward(&br->fc2, br->emb, h, n);
	});
}

void bio_model_forward_rng(struct bio_model *m, const float *const *inputs, int n_batch,
			   int training, struct bio_rng *rng)
{
	BIO_ASSERT(n_batch >= (m->dist ? 0 : 1) && n_batch <= m->max_batch);
	for (int b = 0; b < m->spec.n_mod; b++)
		branch_forward(m, &m->branches[b], inputs[b], n_batch, training, rng);
	TIMED(m, 3, {
		bio_fusion_forward(&m->fusion, m->fused, (const float *const *)m->emb, n_batch);
		if (m->spec.loss == BIO_LOSS_SOFTMAX)
			bio_linear_forward(&m->classifier, m->logits, m->fused, n_batch);
		else
			bio_cosine_forward(&m->head, m->logits, m->fused, n_batch);
	});
}

void bio_model_forward(struct bio_model *m, const float *const *inputs, int n_batch, int training)
{
	bio_model_forward_rng(m, inputs, n_batch, training, NULL);
}

double bio_model_loss(struct bio_model *m, const int64_t *labels, int n_batch, float scale,
		      int *n_correct)
{
	const struct bio_nn_dist *d = m->dist;
	const struct bio_model_spec *sp = &m->spec;
	if (!d) {
		if (n_batch <= 0) {
			if (n_correct)
				*n_correct = 0;
			return 0.0;
		}
		return bio_margin_ce_sum(m->d_logits, n_correct, m->logits, labels, n_batch,
					 sp->n_classes, sp->loss, sp->margin, sp->scale,
					 (double)scale / n_batch) / n_batch;
	}
	/* the sum over this rank's pieces, then over the ranks; the mean over the global batch */
	int correct = 0;
	double v[2];
	v[0] = bio_margin_ce_sum(m->d_logits, &correct, m->logits, labels, n_batch, sp->n_classes,
				 sp->loss, sp->margin, sp->scale, (double)scale / d->n_global);
	v[1] = correct;
	if (d->size > 1)
		d->allsum(d, v, 2);
	if (n_correct)
		*n_correct = (int)v[1];
	return v[0] / d->n_global;
}

double bio_model_loss_sum(const struct bio_model *m, const float *logits, const int64_t *labels,
			  int n_batch, int *n_correct)
{
	const struct bio_model_spec *sp = &m->spec;
	return bio_margin_ce_sum(NULL, n_correct, logits, labels, n_batch, sp->n_classes, sp->loss,
				 sp->margin, sp->scale, 1.0);
}

static void grads_ready(struct bio_model *m, size_t lo, size_t hi)
{
	if (m->grad_ready && hi > lo)
		m->grad_ready(m->grad_ready_ctx, lo, hi - lo);
}

static void branch_backward(struct bio_model *m, struct bio_model_branch *br, const float *d_emb,
			    int n, int training)
{
	const struct bio_model_spec *sp = &m->spec;
	const int nb = sp->n_blocks, fs = feature_side(sp);
	const size_t nh = (size_t)n * sp->hidden;
	const int drop = training && sp->dropout > 0.0f;
	/* two halves that alternate (bio_model_new): the gradient of a pool output is read from
	 * one while the conv backward writes the previous block's pool gradient into the other */
	float *half_a = m->d_halves[0], *half_b = m->d_halves[1];
	float *d_h = half_a, *d_flat = half_b, *dp = half_a;
	TIMED(m, 6, {
		bio_linear_backward(&br->fc2, d_h, d_emb, drop ? br->h1d : br->h1, n);
		if (drop)
			bio_dropout_backward(d_h, d_h, br->mask, nh);
		bio_relu_backward(d_h, d_h, br->h1, nh);
		bio_linear_backward(&br->fc1, d_flat, d_h, br->flat, n);
		bio_flatten_backward(dp, d_flat, sp->channels[nb - 1], n, fs * fs);
	});
	/* this branch's dense layers are final (most of the gradient's bytes), then its
	 * convolutions after the loop */
	const size_t lo = param_off(m, br->conv[0].w), mid = param_off(m, br->fc1.w);
	const size_t hi = param_off(m, br->fc2.b) + (size_t)sp->embedding;
	grads_ready(m, mid, hi);
	for (int i = nb - 1; i >= 0; i--) {
		if (i == 0 && m->c1_fused) {
			TIMED(m, 4, bio_c1_block_backward(&br->conv[0], &br->bn[0], dp, br->pool[0],
							  br->argmax[0], br->input, n, training));
			if (m->grad_ready)
				m->grad_ready(m->grad_ready_ctx, 0, 0);
			continue;
		}
		if (i == 0) /* recompute block 1's normalised conv output (bit-identical) */
			TIMED(m, 4, {
				bio_conv2d_forward(&br->conv[0], br->xhat[0], br->input, n);
				bio_batchnorm_renormalize(&br->bn[0], br->xhat[0], br->xhat[0], n);
			});
		/* xhat[i] becomes the gradient of the conv output */
		TIMED(m, 5, bio_bn_relu_pool_backward(&br->bn[i], br->xhat[i], dp, br->pool[i],
						       br->argmax[i], n, sp->input_size >> i,
						       sp->input_size >> i, training));
		float *dy = br->xhat[i];
		const float *in = i > 0 ? br->pool[i - 1] : br->input;
		float *dx = i > 0 ? (dp == half_a ? half_b : half_a) : NULL;
		TIMED(m, 4, bio_conv2d_backward(&br->conv[i], dx, dy, in, n));
		dp = dx;
		if (m->grad_ready)
			m->grad_ready(m->grad_ready_ctx, 0, 0);
	}
	grads_ready(m, lo, mid);
}

void bio_model_backward(struct bio_model *m, int n_batch, int training)
{
	const int nm = m->spec.n_mod;
	TIMED(m, 7, {
		if (m->spec.loss == BIO_LOSS_SOFTMAX)
			bio_linear_backward(&m->classifier, m->d_fused, m->d_logits, m->fused,
					    n_batch);
		else
			bio_cosine_backward(&m->head, m->d_fused, m->d_logits, n_batch);
		bio_fusion_backward(&m->fusion, m->d_emb, m->d_fused, (const float *const *)m->emb,
				    n_batch);
	});
	/* the layout (make_layout): per branch its convolutions and batch norms, fc1, fc2; then
	 * the fusion and the classifier */
	if (nm)
		grads_ready(m, param_off(m, m->branches[nm - 1].fc2.b) + (size_t)m->spec.embedding,
			    m->n_params);
	for (int b = 0; b < nm; b++)
		branch_backward(m, &m->branches[b], m->d_emb[b], n_batch, training);
}
