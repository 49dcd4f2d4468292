/* Evaluation of predictions streams, part one (see eval.h): the settings, reading the input and
 * its enrolment and dev sets into flat arrays (labels, predictions, top-k lists, one embedding
 * matrix per section), and computing every figure: closed-set, verification, identification,
 * bootstrap intervals, score-level fusion and dev-set thresholds. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_priv.h"
#include "free_list.h"

#define MAX_DIM 65536
#define MAX_RECORDS 50000000u

/* realloc of n items of size (0 bytes: 1), NULL with err set when out of memory. */
static void *eval_realloc(void *p, size_t n, size_t size, struct bio_error *err)
{
	if (size && n > SIZE_MAX / size) {
		bio_error_set(err, BIO_ENOMEM, "out of memory");
		return NULL;
	}
	void *q = realloc(p, (n * size) != 0 ? n * size : 1);
	if (!q)
		bio_error_set(err, BIO_ENOMEM, "out of memory (%zu bytes)", n * size);
	return q;
}

/* rc, with "<context>: " put before err's message. */
static int prefixed(int rc, struct bio_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int prefixed(int rc, struct bio_error *err, const char *fmt, ...)
{
	if (!err)
		return rc;
	char ctx[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof ctx, fmt, ap);
	va_end(ap);
	bio_error_prefix(err, "%s", ctx);
	return rc;
}

/* ---- settings ---- */

static int read_settings(struct eval_set *e, const struct bio_config *cfg, struct bio_error *err)
{
	const char *proto;
	int rc;
	if ((rc = bio_config_get_int_range(cfg, "eval.topk", 1, 1000, &e->topk, err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "eval.gallery", 1, 1000000, &e->gallery, err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "eval.histogram_bins", 1, 100000, &e->bins,
					   err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "eval.max_pairs", 1, INT64_MAX / 16,
					   &e->max_pairs, err)) < 0 ||
	    (rc = bio_config_get_double_range(cfg, "eval.curve_resolution", 0.0, 1.0,
					      &e->resolution, err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "eval.plot_width", 200, 8000, &e->width,
					   err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "eval.plot_height", 150, 8000, &e->height,
					   err)) < 0 ||
	    (rc = bio_config_get_str(cfg, "eval.protocol", &proto, err)) < 0 ||
	    (rc = bio_config_get_str(cfg, "eval.template", &e->template_name, err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "eval.bootstrap", 0, 1000000, &e->n_boot,
					   err)) < 0 ||
	    (rc = bio_config_get_int(cfg, "eval.bootstrap_seed", &e->boot_seed, err)) < 0 ||
	    (rc = bio_config_get_double_range(cfg, "eval.dev_fmr", 0.0, 1.0, &e->dev_target,
					      err)) < 0)
		return rc;
	if (strcmp(e->template_name, "mean") == 0) {
		e->templates = 1;
		e->template_kind = BIO_TEMPLATE_MEAN;
	} else if (strcmp(e->template_name, "all") == 0) {
		e->templates = 1;
		e->template_kind = BIO_TEMPLATE_MAX;
	} else if (strcmp(e->template_name, "pairs") != 0) {
		return bio_config_error(cfg, "eval.template", err, BIO_EINVAL,
					"expected pairs, mean or all, got '%s'", e->template_name);
	}
	if (strcmp(proto, "all") != 0 && strcmp(proto, "fvc") != 0)
		return bio_config_error(cfg, "eval.protocol", err, BIO_EINVAL,
					"'%s' is not all or fvc", proto);
	e->protocol = strcmp(proto, "fvc") == 0 ? BIO_PAIRS_FVC : BIO_PAIRS_ALL;
	e->protocol_name = e->protocol == BIO_PAIRS_FVC ? "fvc" : "all";
	static const char *const eval_keys[] = {"eval"};
	return bio_config_digest(cfg, eval_keys, 1, e->config_digest, err);
}

struct bio_eval *bio_eval_new(const struct bio_config *cfg, int n_threads, struct bio_error *err)
{
	struct bio_eval *ev = calloc(1, sizeof *ev);
	if (!ev) {
		bio_error_set(err, BIO_ENOMEM, "out of memory");
		return NULL;
	}
	ev->cfg = cfg;
	struct eval_set *e = &ev->in;
	e->n_threads = n_threads;
	if (read_settings(e, cfg, err) < 0) {
		free(ev);
		return NULL;
	}
	static char *stdin_name[] = {"-"};
	e->inputs = stdin_name;
	e->n_inputs = 1;
	/* the enrolment is only read; the dev set is evaluated as the input is, without the
	 * bootstrap (nothing is read yet: e holds only settings) */
	ev->en = ev->dv = *e;
	ev->dv.n_boot = 0;
	return ev;
}

void bio_eval_set_inputs(struct bio_eval *ev, char *const *names, int n_names)
{
	ev->in.inputs = names;
	ev->in.n_inputs = n_names;
}

static void free_set(struct eval_set *e)
{
	BIO_FREE(e->src_program, e->src_version, e->src_model, e->src_digest, e->src);
	bio_header_destroy(&e->h);
	BIO_FREE(e->labels, e->preds, e->topk_ids);
	for (int m = 0; m < e->n_mod; m++) {
		struct eval_section *md = &e->mod[m];
		free(md->emb);
		bio_scores_destroy(&md->scores);
		free(md->roc);
		bio_cmc_destroy(&md->cmc);
		free(md->hist_gen);
		free(md->hist_imp);
		bio_scores_destroy(&md->raw);
		free(md->name);
		free(md->key);
	}
	bio_scores_destroy(&e->sfuse.scores);
	free(e->units);
	if (e->has_closed)
		bio_confusion_destroy(&e->conf);
}

void bio_eval_free(struct bio_eval *ev)
{
	if (!ev)
		return;
	eval_pending_discard(&ev->pending);
	free_set(&ev->in);
	free_set(&ev->en);
	free_set(&ev->dv);
	BIO_FREE(ev->track.root, ev->track.run_id, ev->track.run_dir, ev);
}

/* ---- input ---- */

static int add_section(struct eval_set *e, const char *name, size_t len, struct bio_error *err)
{
	if (e->n_mod >= EVAL_N_MOD_MAX)
		return bio_error_set(err, BIO_ELIMIT, "more than %d embeddings per record",
				     EVAL_N_MOD_MAX);
	struct eval_section *md = &e->mod[e->n_mod++];
	md->name = strndup(name, len);
	md->key = malloc(len + 5);
	if (!md->name || !md->key)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	snprintf(md->key, len + 5, "emb_%s", md->name);
	return 0;
}

/* The sections from the header's modalities, then "fused". */
static int sections_from_header(struct eval_set *e, struct bio_error *err)
{
	for (int m = 0; m < e->h.n_mod; m++) {
		int rc = strcmp(e->h.modalities[m], "fused") == 0
				 ? 0
				 : add_section(e, e->h.modalities[m], strlen(e->h.modalities[m]), err);
		if (rc < 0)
			return rc;
	}
	return add_section(e, "fused", 5, err);
}

/* Without header modalities: the emb_* keys of record 0 in their order, then "fused". */
static int sections_from_record(struct eval_set *e, const struct bio_value *rec,
				struct bio_error *err)
{
	for (size_t i = 0; i < bio_value_len(rec); i++) {
		const char *k;
		size_t len;
		bio_value_map_at(rec, i, &k, &len);
		if (k && len > 4 && memcmp(k, "emb_", 4) == 0 &&
		    !(len == 9 && memcmp(k + 4, "fused", 5) == 0) && !memchr(k, 0, len)) {
			int rc = add_section(e, k + 4, len - 4, err);
			if (rc < 0)
				return rc;
		}
	}
	return add_section(e, "fused", 5, err);
}

/* Fails unless other (an enrol or dev stream) has the same sections as e. */
static int same_sections(const struct eval_set *e, const struct eval_set *other,
			 const char *path, const char *opt, struct bio_error *err)
{
	int same = other->n_mod == e->n_mod;
	for (int m = 0; same && m < e->n_mod; m++)
		same = strcmp(other->mod[m].name, e->mod[m].name) == 0;
	if (same)
		return 0;
	char a[256] = "", b[256] = "";
	for (int m = 0; m < e->n_mod - 1; m++)
		snprintf(a + strlen(a), sizeof a - strlen(a), "%s%s", m ? ", " : "", e->mod[m].name);
	for (int m = 0; m < other->n_mod - 1; m++)
		snprintf(b + strlen(b), sizeof b - strlen(b), "%s%s", m ? ", " : "",
			 other->mod[m].name);
	return bio_error_set(err, BIO_EINVAL, "%s (%s): its modalities [%s] differ from the "
			     "input's [%s]", path, opt, b, a);
}

/* The predictions header: label names are needed (labels and predictions are checked against
 * them); meta.topk, when present, is the length every topk list must have. */
static int read_meta(struct eval_set *e, struct bio_stream_reader *r, struct bio_error *err)
{
	int rc = bio_header_read(&e->h, r, "predictions", BIO_HEADER_LABELS, err);
	if (rc < 0)
		return rc;
	e->src_program = bio_value_strdup(bio_value_get(e->h.meta, "program"));
	e->src_version = bio_value_strdup(bio_value_get(e->h.meta, "version"));
	e->src_model = bio_value_strdup(bio_value_get(e->h.meta, "model"));
	e->src_digest = bio_value_strdup(bio_value_get(e->h.meta, "config_digest"));
	e->label_names = e->h.labels;
	e->n_label_names = e->h.n_labels;
	e->meta_topk = -1;
	const struct bio_value *k = bio_value_get(e->h.meta, "topk");
	if (k && (bio_value_int(k, &e->meta_topk) < 0 || e->meta_topk < 1))
		return bio_error_set(err, BIO_EFORMAT, "%s: header meta 'topk': expected a "
				     "positive count", bio_stream_reader_source(r));
	if (e->meta_topk > (int64_t)e->n_label_names)
		e->meta_topk = (int64_t)e->n_label_names; /* the k best of fewer labels: all */
	return e->h.n_mod > 0 ? sections_from_header(e, err) : 0;
}

/* The optional top-k list of record i (i64 [k], its scores f32 [k]) into e->topk_ids. */
static int read_topk(struct eval_set *e, struct bio_stream_reader *r, const struct bio_value *rec,
		     size_t i, struct bio_error *err)
{
	const char *src = bio_stream_reader_source(r);
	unsigned long long ri = (unsigned long long)bio_stream_reader_record_index(r);
	int64_t *tk = e->topk_ids + i * (size_t)e->topk;
	for (int64_t k = 0; k < e->topk; k++)
		tk[k] = -1;
	if (!bio_value_get(rec, "topk")) {
		e->topk_seen = 0;
		return 0;
	}
	struct bio_tensor t, ts;
	int rc = bio_record_get_tensor(&t, r, rec, "topk", BIO_DTYPE_I64, 1, err);
	if (rc < 0)
		return rc;
	size_t k = bio_tensor_numel(&t);
	size_t want = e->meta_topk > 0 ? (size_t)e->meta_topk : i == 0 ? k : e->topk_len;
	if (k != want || k < 1 || k > e->n_label_names)
		return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: key 'topk': %zu labels "
				     "where %s has %zu", src, ri, k,
				     e->meta_topk > 0 ? "the header's topk" : "record 0", want);
	e->topk_len = k;
	if ((rc = bio_record_check_labels(&e->h, r, "topk", t.data, k, 0, err)) < 0)
		return rc;
	if (bio_value_get(rec, "topk_scores")) {
		if ((rc = bio_record_get_tensor(&ts, r, rec, "topk_scores", BIO_DTYPE_F32, 1,
						err)) < 0 ||
		    (rc = bio_record_check_finite(&ts, r, "topk_scores", err)) < 0)
			return rc;
		if (bio_tensor_numel(&ts) != k)
			return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: key 'topk_scores': "
					     "%zu scores for %zu topk labels", src, ri,
					     bio_tensor_numel(&ts), k);
	}
	if (k < e->topk_seen)
		e->topk_seen = k;
	for (size_t j = 0; j < k && j < (size_t)e->topk; j++) {
		int64_t v;
		memcpy(&v, (const char *)t.data + j * 8, 8);
		tk[j] = v;
	}
	return 0;
}

/* The embedding of section md in record i: present in every record or in none, of one size. */
static int read_embedding(struct eval_section *md, struct bio_stream_reader *r,
			  const struct bio_value *rec, size_t i, struct bio_error *err)
{
	const char *src = bio_stream_reader_source(r);
	unsigned long long ri = (unsigned long long)bio_stream_reader_record_index(r);
	const char *mkey = md->key;
	const struct bio_value *ev = bio_value_get(rec, mkey);
	if (i == 0)
		md->present = ev != NULL;
	if ((ev != NULL) != md->present)
		return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: key '%s' %s, unlike record "
				     "0", src, ri, mkey, ev ? "present" : "missing");
	if (!ev)
		return 0;
	struct bio_tensor t;
	int rc = bio_record_get_tensor(&t, r, rec, mkey, BIO_DTYPE_F32, 1, err);
	if (rc < 0)
		return rc;
	size_t d = bio_tensor_numel(&t);
	if (i == 0) {
		if (d < 1 || d > MAX_DIM)
			return bio_error_set(err, BIO_ELIMIT, "%s: record %llu: key '%s': %zu values "
					     "(1 to %d allowed)", src, ri, mkey, d, MAX_DIM);
		md->dim = d;
	} else if (d != md->dim) {
		return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: key '%s': %zu values, "
				     "record 0 has %zu", src, ri, mkey, d, md->dim);
	}
	if ((i + 1) * d > md->cap) {
		size_t cap = md->cap ? 2 * md->cap : 1024 * d;
		while (cap < (i + 1) * d)
			cap *= 2;
		float *p = eval_realloc(md->emb, cap, sizeof(float), err);
		if (!p)
			return BIO_ENOMEM;
		md->emb = p;
		md->cap = cap;
	}
	float *dst = md->emb + i * d;
	memcpy(dst, t.data, d * sizeof(float));
	for (size_t k = 0; k < d; k++)
		if (!isfinite(dst[k]))
			return bio_error_set(err, BIO_ENAN, "%s: record %llu: key '%s': value %zu is "
					     "not finite", src, ri, mkey, k);
	return 0;
}

static int read_records(struct eval_set *e, struct bio_stream_reader *r, struct bio_error *err)
{
	e->topk_seen = SIZE_MAX;
	e->max_label = -1;
	for (;;) {
		const struct bio_value *rec;
		int rc = bio_stream_read_record(r, &rec, err);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		const char *src = bio_stream_reader_source(r);
		unsigned long long ri = (unsigned long long)bio_stream_reader_record_index(r);
		size_t i = e->n_records;
		if (i == 0 && e->n_mod == 0 && (rc = sections_from_record(e, rec, err)) < 0)
			return rc;
		if (i >= MAX_RECORDS)
			return bio_error_set(err, BIO_ELIMIT, "%s: more than %u records", src,
					     MAX_RECORDS);
		if (i == e->cap_records) {
			size_t cap = e->cap_records ? 2 * e->cap_records : 1024;
			int64_t *l = eval_realloc(e->labels, cap, sizeof *l, err);
			if (l)
				e->labels = l;
			int64_t *p = l ? eval_realloc(e->preds, cap, sizeof *p, err) : NULL;
			if (p)
				e->preds = p;
			int64_t *t = p ? eval_realloc(e->topk_ids, cap * (size_t)e->topk, sizeof *t, err)
				       : NULL;
			if (!t)
				return BIO_ENOMEM;
			e->topk_ids = t;
			e->cap_records = cap;
		}
		int64_t label, pred;
		if ((rc = bio_record_get_label(&label, &e->h, r, rec, "label", 1, err)) < 0 ||
		    (rc = bio_record_get_label(&pred, &e->h, r, rec, "pred", 0, err)) < 0)
			return rc;
		const struct bio_value *sv = bio_value_get(rec, "score");
		double score;
		if (sv && (bio_value_double(sv, &score) < 0 || !isfinite(score)))
			return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: key 'score': not a "
					     "finite number", src, ri);
		e->labels[i] = label;
		e->preds[i] = pred;
		if (label > e->max_label)
			e->max_label = label;
		if (pred > e->max_label)
			e->max_label = pred;
		if ((rc = read_topk(e, r, rec, i, err)) < 0)
			return rc;
		for (int m = 0; m < e->n_mod; m++)
			if ((rc = read_embedding(&e->mod[m], r, rec, i, err)) < 0)
				return rc;
		e->n_records++;
	}
	if (e->topk_seen == SIZE_MAX)
		e->topk_seen = 0;
	return 0;
}

int bio_eval_read(struct bio_eval *ev, enum bio_eval_role role, struct bio_stream_reader *r,
		  const char *path, struct bio_error *err)
{
	struct eval_set *e = &ev->in;
	struct eval_set *x = role == BIO_EVAL_INPUT ? e : role == BIO_EVAL_ENROL ? &ev->en : &ev->dv;
	int rc;
	if ((rc = read_meta(x, r, err)) < 0 || (rc = read_records(x, r, err)) < 0)
		return rc;
	if (role == BIO_EVAL_INPUT) {
		e->src = strdup(bio_stream_reader_source(r));
		if (!e->src)
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
		if (e->n_records == 0)
			return bio_error_set(err, BIO_EINVAL, "%s: no records to evaluate", e->src);
		return 0;
	}
	const char *opt = role == BIO_EVAL_ENROL ? "--enrol" : "--dev";
	if (x->n_records == 0)
		return bio_error_set(err, BIO_EINVAL, "%s: no records %s (%s)", path,
				     role == BIO_EVAL_ENROL ? "to enrol" : "to set thresholds on",
				     opt);
	if ((rc = same_sections(e, x, path, opt, err)) < 0)
		return rc;
	if (role == BIO_EVAL_ENROL) {
		int same = x->n_label_names == e->n_label_names;
		for (size_t i = 0; same && i < e->n_label_names; i++)
			same = strcmp(x->label_names[i], e->label_names[i]) == 0;
		if (!same)
			return bio_error_set(err, BIO_EINVAL, "%s: its label names differ from the "
					     "input's: not the same identities", path);
		x->n_classes = x->n_label_names ? x->n_label_names : (size_t)(x->max_label + 1);
		e->enrol = ev->dv.enrol = x;
		e->enrol_path = ev->dv.enrol_path = path;
		return 0;
	}
	for (int m = 0; m < e->n_mod; m++)
		if (x->mod[m].present && e->mod[m].present && x->mod[m].dim != e->mod[m].dim)
			return bio_error_set(err, BIO_EINVAL, "%s (--dev): %s has %zu values, the "
					     "input %zu", path, e->mod[m].key, x->mod[m].dim,
					     e->mod[m].dim);
	e->dev = x;
	e->dev_path = path;
	return 0;
}

/* ---- computation ---- */

static int compute_closed(struct eval_set *e, struct bio_error *err)
{
	e->n_classes = e->n_label_names ? e->n_label_names : (size_t)(e->max_label + 1);
	for (size_t i = 0; i < e->n_records; i++) {
		if (e->labels[i] >= 0)
			e->n_labelled++;
		else
			e->n_unknown++;
	}
	if (e->n_labelled == 0) {
		snprintf(e->closed_reason, sizeof e->closed_reason,
			 "no record has a known label");
		return 0;
	}
	int rc = bio_confusion_init(&e->conf, e->n_classes, err);
	if (rc < 0)
		return prefixed(rc, err, "confusion matrix");
	e->has_closed = 1;
	size_t k = eval_topk_k(e);
	for (size_t i = 0; i < e->n_records; i++) {
		if (e->labels[i] < 0)
			continue;
		int hit = bio_topk_hit(e->topk_ids + i * (size_t)e->topk, k, k, e->labels[i]);
		if ((rc = bio_confusion_add(&e->conf, e->labels[i], e->preds[i], hit, err)) < 0)
			return prefixed(rc, err, "record %zu", i);
	}
	return 0;
}

/* The comparison set of md for identification with an enrolment and for templates: the
 * enrolment stream's embeddings (its first eval.gallery samples per identity enrolled, the
 * others left out) followed by the input's (all probes), or without an enrolment the input
 * alone with its first eval.gallery samples per identity enrolled. Arrays returned new (*n
 * entries); BIO_EINVAL when the enrolment has no such embeddings. */
static int enrolment_set(const struct eval_set *e, const struct eval_section *md, float **emb_out,
			 int64_t **labels_out, unsigned char **gal_out, size_t *n_out,
			 struct bio_error *err)
{
	const struct eval_set *en = e->enrol;
	const struct eval_section *em = en ? &en->mod[md - e->mod] : NULL;
	if (em && !em->present)
		return bio_error_set(err, BIO_EINVAL, "%s: no %s to enrol", e->enrol_path, md->key);
	if (em && em->dim != md->dim)
		return bio_error_set(err, BIO_EINVAL, "%s: %s has %zu values, the input %zu",
				     e->enrol_path, md->key, em->dim, md->dim);
	size_t n_en = en ? en->n_records : 0, n = n_en + e->n_records;
	/* count enrolled samples per label; labels are < n_classes (checked on input) */
	size_t n_lab = e->n_classes;
	if (en && en->n_classes > n_lab)
		n_lab = en->n_classes;
	float *emb = eval_realloc(NULL, n * md->dim, sizeof(float), err);
	int64_t *labels = eval_realloc(NULL, n, sizeof(int64_t), err);
	unsigned char *gal = eval_realloc(NULL, n, 1, err);
	size_t *cnt = calloc(n_lab ? n_lab : 1, sizeof *cnt);
	if (!emb || !labels || !gal || !cnt) {
		BIO_FREE(emb, labels, gal, cnt);
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	if (en)
		memcpy(emb, em->emb, n_en * md->dim * sizeof(float));
	memcpy(emb + n_en * md->dim, md->emb, e->n_records * md->dim * sizeof(float));
	for (size_t i = 0; i < n_en; i++) {
		int64_t l = en->labels[i];
		int use = l >= 0 && (size_t)l < n_lab && cnt[l] < (size_t)e->gallery;
		if (use)
			cnt[l]++;
		labels[i] = use ? l : -1;
		gal[i] = 1;
	}
	for (size_t i = 0; i < e->n_records; i++) {
		int64_t l = e->labels[i];
		labels[n_en + i] = l;
		gal[n_en + i] = 0;
		if (!en && l >= 0 && cnt[l] < (size_t)e->gallery) {
			cnt[l]++;
			gal[n_en + i] = 1;
		}
	}
	free(cnt);
	*emb_out = emb;
	*labels_out = labels;
	*gal_out = gal;
	*n_out = n;
	return 0;
}

/* Identification with the gallery from the enrolment (templates 0), or probe-versus-template
 * scores and identification (templates 1: eval.template mean or all). */
static int score_enrolled(struct eval_set *e, struct eval_section *md, int templates,
			  struct bio_error *err)
{
	float *emb;
	int64_t *labels;
	unsigned char *gal;
	size_t n;
	int rc = enrolment_set(e, md, &emb, &labels, &gal, &n, err);
	if (rc < 0)
		return rc;
	if (templates)
		rc = bio_scores_templates(&md->scores, &md->cmc, emb, n, md->dim, labels, gal,
					  e->template_kind, (uint64_t)e->max_pairs, e->n_threads,
					  err);
	else
		rc = bio_cmc_compute_roles(&md->cmc, emb, n, md->dim, labels, gal, e->n_threads,
					   err);
	free(emb);
	free(labels);
	free(gal);
	return rc;
}

/* Sorts md's scores and computes its verification figures: md->has_verif, or verif_reason set.
 * The bootstrap intervals come first (they need the scores in comparison order, with their
 * ids). */
static int verify_scores(struct eval_set *e, struct eval_section *md, const char *name,
			 struct bio_error *err)
{
	struct bio_scores *s = &md->scores;
	int rc;
	if (e->n_boot > 0 && s->gen_id && s->n_genuine > 0 && s->n_impostor > 0) {
		if ((rc = bio_boot_verif(md->ci, s, e->units, e->n_units, e->n_boot_labels,
					 (size_t)e->n_boot, (uint64_t)e->boot_seed, e->n_threads,
					 err)) < 0)
			return prefixed(rc, err, "%s bootstrap", name);
		md->has_ci = 1;
	}
	if ((rc = bio_sort_scores(s->genuine, s->n_genuine, err)) < 0 ||
	    (rc = bio_sort_scores(s->impostor, s->n_impostor, err)) < 0)
		return prefixed(rc, err, "%s scores", name);
	struct bio_error why = {0};
	if (bio_verif_compute(&md->v, s->genuine, s->n_genuine, s->impostor, s->n_impostor,
			      &why) < 0) {
		memcpy(md->verif_reason, why.msg, sizeof md->verif_reason);
		return 0;
	}
	md->has_verif = 1;
	return 0;
}

/* A copy of s's values in dst, and of ids' ids (NULL: none). */
static int copy_scores(struct bio_scores *dst, const struct bio_scores *s,
		       const struct bio_scores *ids, struct bio_error *err)
{
	dst->n_genuine = s->n_genuine;
	dst->n_impostor = s->n_impostor;
	dst->genuine = eval_realloc(NULL, s->n_genuine + 1, sizeof(double), err);
	dst->impostor = eval_realloc(NULL, s->n_impostor + 1, sizeof(double), err);
	if (!dst->genuine || !dst->impostor)
		return BIO_ENOMEM;
	memcpy(dst->genuine, s->genuine, s->n_genuine * sizeof(double));
	memcpy(dst->impostor, s->impostor, s->n_impostor * sizeof(double));
	if (ids && ids->gen_id) {
		dst->gen_id = eval_realloc(NULL, s->n_genuine + 1, sizeof(uint32_t), err);
		dst->imp_id = eval_realloc(NULL, 2 * s->n_impostor + 1, sizeof(uint32_t), err);
		if (!dst->gen_id || !dst->imp_id)
			return BIO_ENOMEM;
		memcpy(dst->gen_id, ids->gen_id, s->n_genuine * sizeof(uint32_t));
		memcpy(dst->imp_id, ids->imp_id, 2 * s->n_impostor * sizeof(uint32_t));
	}
	return 0;
}

/* The genuine and impostor histograms of md's sorted scores, over the range of all of them. */
static int histograms(struct eval_set *e, struct eval_section *md, struct bio_error *err)
{
	const struct bio_scores *s = &md->scores;
	if (s->n_genuine + s->n_impostor == 0)
		return 0;
	double lo = INFINITY, hi = -INFINITY;
	if (s->n_genuine) {
		lo = fmin(lo, s->genuine[0]);
		hi = fmax(hi, s->genuine[s->n_genuine - 1]);
	}
	if (s->n_impostor) {
		lo = fmin(lo, s->impostor[0]);
		hi = fmax(hi, s->impostor[s->n_impostor - 1]);
	}
	md->hist_lo = lo;
	md->hist_hi = hi;
	md->hist_gen = eval_realloc(NULL, (size_t)e->bins, sizeof(uint64_t), err);
	md->hist_imp = eval_realloc(NULL, (size_t)e->bins, sizeof(uint64_t), err);
	if (!md->hist_gen || !md->hist_imp)
		return BIO_ENOMEM;
	bio_histogram(md->hist_gen, (size_t)e->bins, lo, hi, s->genuine, s->n_genuine);
	bio_histogram(md->hist_imp, (size_t)e->bins, lo, hi, s->impostor, s->n_impostor);
	if (lo == hi) {
		md->hist_lo = lo - 0.5;
		md->hist_hi = hi + 0.5;
	}
	return 0;
}

/* A failed figure: out of memory fails the run; anything else is the reason it is missing. */
static int reason(char *dst, size_t cap, int rc, const struct bio_error *why,
		  struct bio_error *err)
{
	if (rc == BIO_ENOMEM) {
		if (err)
			*err = *why;
		return rc;
	}
	snprintf(dst, cap, "%s", why->msg);
	return 0;
}

static int compute_section(struct eval_set *e, struct eval_section *md, struct bio_error *err)
{
	struct bio_error why = {0};
	if (!md->present) {
		snprintf(md->verif_reason, sizeof md->verif_reason,
			 "no embeddings in the predictions (bio-infer --embeddings)");
		memcpy(md->cmc_reason, md->verif_reason, sizeof md->cmc_reason);
		return 0;
	}
	if (e->n_labelled == 0) {
		snprintf(md->verif_reason, sizeof md->verif_reason, "no record has a known label");
		memcpy(md->cmc_reason, md->verif_reason, sizeof md->cmc_reason);
		return 0;
	}
	int rc, frc;
	if (e->templates) {
		rc = score_enrolled(e, md, 1, &why);
		if (rc < 0) {
			if ((frc = reason(md->verif_reason, sizeof md->verif_reason, rc, &why, err)) < 0)
				return frc;
			snprintf(md->cmc_reason, sizeof md->cmc_reason, "%s", why.msg);
		} else {
			md->has_cmc = 1;
		}
	} else {
		rc = bio_scores_pairs(&md->scores, md->emb, e->n_records, md->dim, e->labels,
				      e->protocol, (uint64_t)e->max_pairs, e->n_boot > 0,
				      e->n_threads, &why);
		if (rc < 0 &&
		    (frc = reason(md->verif_reason, sizeof md->verif_reason, rc, &why, err)) < 0)
			return frc;
	}
	if (rc == 0) {
		const struct bio_scores *s = &md->scores;
		/* a modality: in comparison order, for the fusion */
		if (md - e->mod < e->n_mod - 1 && (frc = copy_scores(&md->raw, s, NULL, err)) < 0)
			return frc;
		if ((frc = verify_scores(e, md, md->name, err)) < 0)
			return frc;
		if (md->has_verif &&
		    (frc = bio_roc_curve(&md->roc, &md->n_roc, s->genuine, s->n_genuine, s->impostor,
					 s->n_impostor, e->resolution, err)) < 0)
			return frc;
		if ((frc = histograms(e, md, err)) < 0)
			return frc;
	}
	if (!e->templates) {
		if (e->enrol)
			rc = score_enrolled(e, md, 0, &why);
		else
			rc = bio_cmc_compute(&md->cmc, md->emb, e->n_records, md->dim, e->labels,
					     (size_t)e->gallery, e->n_threads, &why);
		if (rc < 0 && (frc = reason(md->cmc_reason, sizeof md->cmc_reason, rc, &why, err)) < 0)
			return frc;
		md->has_cmc = rc == 0;
	}
	if (md->has_cmc && e->n_boot > 0) {
		if ((rc = bio_boot_rank1(&md->ci_rank1, &md->cmc, e->units, e->n_units,
					 e->n_boot_labels, (size_t)e->n_boot, (uint64_t)e->boot_seed,
					 err)) < 0)
			return prefixed(rc, err, "%s bootstrap", md->name);
		md->has_ci_rank1 = 1;
	}
	return 0;
}

/* Score-level fusion (ISO/IEC 19795 reports it beside feature-level fusion): z-norm per
 * modality (the impostor scores' mean and population standard deviation, in double, in
 * comparison order), the sum per comparison, then the same verification figures. Identification
 * is not scored this way (the CMC needs every probe-gallery score of every modality). */
static int compute_score_fusion(struct eval_set *e, struct bio_error *err)
{
	struct eval_section *md = &e->sfuse;
	int n = e->n_mod - 1; /* the modalities */
	snprintf(md->cmc_reason, sizeof md->cmc_reason,
		 "not computed for score-level fusion (verification only)");
	snprintf(md->dev_reason, sizeof md->dev_reason,
		 "not set for score-level fusion (its normalisation is estimated per set)");
	int all = n >= 2;
	for (int k = 0; k < n; k++)
		all &= e->mod[k].present;
	if (!all) {
		snprintf(md->verif_reason, sizeof md->verif_reason,
			 "needs the embeddings of two or more modalities (bio-infer --embeddings)");
		return 0;
	}
	md->present = 1;
	for (int k = 0; k < n; k++)
		if (!e->mod[k].raw.genuine) {
			memcpy(md->verif_reason, e->mod[k].verif_reason, sizeof md->verif_reason);
			return 0;
		}
	const struct bio_scores *a = &e->mod[0].raw;
	for (int k = 1; k < n; k++)
		BIO_ASSERT(e->mod[k].raw.n_genuine == a->n_genuine &&
			   e->mod[k].raw.n_impostor == a->n_impostor); /* the same pairs */
	for (int k = 0; k < n; k++)
		if (!e->mod[k].has_verif) { /* e.g. no impostors: the modality's own reason */
			memcpy(md->verif_reason, e->mod[k].verif_reason, sizeof md->verif_reason);
			return 0;
		}
	for (int k = 0; k < n; k++) {
		struct eval_section *x = &e->mod[k];
		double sum = 0.0, sq = 0.0;
		for (size_t i = 0; i < x->raw.n_impostor; i++)
			sum += x->raw.impostor[i];
		double mean = x->raw.n_impostor ? sum / (double)x->raw.n_impostor : 0.0;
		for (size_t i = 0; i < x->raw.n_impostor; i++)
			sq += (x->raw.impostor[i] - mean) * (x->raw.impostor[i] - mean);
		x->zmean = mean;
		x->zstd = x->raw.n_impostor ? sqrt(sq / (double)x->raw.n_impostor) : 0.0;
		if (!(x->zstd > 0.0)) {
			snprintf(md->verif_reason, sizeof md->verif_reason,
				 "%s: the impostor scores have no spread to normalise by", x->name);
			return 0;
		}
	}
	struct bio_scores *f = &md->scores;
	/* the ids of the first modality's scores (sorting moved only their values) */
	int rc = copy_scores(f, a, &e->mod[0].scores, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < f->n_genuine; i++) {
		double v = 0.0;
		for (int k = 0; k < n; k++)
			v += (e->mod[k].raw.genuine[i] - e->mod[k].zmean) / e->mod[k].zstd;
		f->genuine[i] = v;
	}
	for (size_t i = 0; i < f->n_impostor; i++) {
		double v = 0.0;
		for (int k = 0; k < n; k++)
			v += (e->mod[k].raw.impostor[i] - e->mod[k].zmean) / e->mod[k].zstd;
		f->impostor[i] = v;
	}
	return verify_scores(e, md, "score fusion", err);
}

/* Each section's threshold at eval.dev_fmr on the dev set's scores, and the FMR, FNMR (and
 * HTER) it gives on the input's. */
static void compute_dev(struct eval_set *e)
{
	for (int m = 0; m < e->n_mod; m++) {
		struct eval_section *md = &e->mod[m];
		const struct eval_section *dm = &e->dev->mod[m];
		if (!dm->has_verif) {
			snprintf(md->dev_reason, sizeof md->dev_reason, "%s: %s", e->dev_path,
				 dm->present ? dm->verif_reason : "no embeddings");
			continue;
		}
		if (!md->has_verif) {
			memcpy(md->dev_reason, md->verif_reason, sizeof md->dev_reason);
			continue;
		}
		const struct bio_scores *d = &dm->scores, *s = &md->scores;
		md->dev_thr = bio_threshold_at_fmr(&md->dev_fnmr_dev, &md->dev_fmr_dev, d->genuine,
						   d->n_genuine, d->impostor, d->n_impostor,
						   e->dev_target);
		bio_fmr_fnmr(&md->dev_fmr, &md->dev_fnmr, s->genuine, s->n_genuine, s->impostor,
			     s->n_impostor, md->dev_thr);
		md->has_dev = 1;
	}
}

/* Templates from the set itself: fails when eval.gallery leaves no identity a probe (every
 * sample enrolled), naming the set src, the largest count and the key. */
static int check_gallery(const struct eval_set *e, const char *src, struct bio_error *err)
{
	size_t n_lab = e->n_classes ? e->n_classes : 1, most = 0;
	size_t *cnt = calloc(n_lab, sizeof *cnt);
	if (!cnt)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->n_records; i++)
		if (e->labels[i] >= 0 && (size_t)e->labels[i] < n_lab &&
		    ++cnt[e->labels[i]] > most)
			most = cnt[e->labels[i]];
	free(cnt);
	if (most > 0 && most <= (size_t)e->gallery)
		return bio_error_set(err, BIO_EINVAL, "%s: eval.gallery %lld enrols every sample (an "
				     "identity has at most %zu): no probes are left; set "
				     "eval.gallery below %zu", src, (long long)e->gallery, most,
				     most);
	return 0;
}

/* The bootstrap's subjects: every label of a labelled input record or enrolled sample. */
static int boot_units(struct eval_set *e, struct bio_error *err)
{
	size_t n_lab = e->n_classes;
	if (e->enrol && e->enrol->n_classes > n_lab)
		n_lab = e->enrol->n_classes;
	e->n_boot_labels = n_lab; /* the weights' index range */
	unsigned char *seen = calloc(n_lab ? n_lab : 1, 1);
	e->units = eval_realloc(NULL, n_lab + 1, sizeof *e->units, err);
	if (!seen || !e->units) {
		free(seen);
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < e->n_records; i++)
		if (e->labels[i] >= 0 && (size_t)e->labels[i] < n_lab)
			seen[e->labels[i]] = 1;
	for (size_t i = 0; e->enrol && i < e->enrol->n_records; i++)
		if (e->enrol->labels[i] >= 0 && (size_t)e->enrol->labels[i] < n_lab)
			seen[e->enrol->labels[i]] = 1;
	for (size_t l = 0; l < n_lab; l++)
		if (seen[l])
			e->units[e->n_units++] = (uint32_t)l;
	free(seen);
	return 0;
}

int bio_eval_compute(struct bio_eval *ev, struct bio_error *err)
{
	struct eval_set *e = &ev->in, *dv = e->dev;
	int rc;
	if ((rc = compute_closed(e, err)) < 0 ||
	    (e->templates && !e->enrol && (rc = check_gallery(e, e->src, err)) < 0) ||
	    (e->n_boot > 0 && (rc = boot_units(e, err)) < 0))
		return rc;
	for (int m = 0; m < e->n_mod; m++)
		if ((rc = compute_section(e, &e->mod[m], err)) < 0)
			return rc;
	if ((rc = compute_score_fusion(e, err)) < 0 || !dv)
		return rc;
	if ((rc = compute_closed(dv, err)) < 0 ||
	    (dv->templates && !dv->enrol && (rc = check_gallery(dv, e->dev_path, err)) < 0))
		return rc;
	for (int m = 0; m < dv->n_mod; m++)
		if ((rc = compute_section(dv, &dv->mod[m], err)) < 0)
			return rc;
	compute_dev(e);
	return 0;
}
