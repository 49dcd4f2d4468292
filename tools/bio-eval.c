/* bio-eval: reads a predictions stream and measures it the way biometrics engineers do: closed-set
 * accuracy, top-k, per-class precision/recall and the confusion matrix from the predictions; for
 * each embedding present (emb_<modality> of the input's modalities, emb_fused) verification from
 * genuine/impostor cosine scores, of every pair or of probes against enrolled templates (ROC,
 * DET, EER, FNMR at FMR 1%, 0.1%, 0, ZeroFNMR, AUC, histograms), identification with a
 * gallery/probe split (CMC, rank-1, rank-5), subjects-bootstrap 95% intervals, and thresholds set
 * on a dev set (--dev) with the FMR, FNMR and HTER they give. Writes a YAML report, optional
 * CSV curves and PNG plots, and a side-by-side summary on stderr. The whole input is read and every
 * figure computed before anything is written, so bad input leaves no output behind. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bio/csv.h"
#include "bio/fs.h"
#include "bio/header.h"
#include "bio/metrics.h"
#include "bio/plot.h"
#include "bio/stale.h"
#include "bio/stream.h"
#include "bio/track.h"
#include "tool.h"

/* Report sections: each modality of the input (its header's meta.modalities, else the emb_*
 * keys of record 0), then "fused"; N_MOD_MAX bounds them. */
#define N_MOD_MAX (BIO_HEADER_MAX_MODS + 1)

#define MAX_DIM 65536
#define MAX_RECORDS 50000000u

struct modality {
	char *name; /* "iris", ..., "fused" */
	char *key;  /* "emb_<name>" */
	int present;
	size_t dim;
	float *emb; /* n_records x dim */
	size_t cap; /* floats allocated */
	/* results */
	struct bio_scores scores;
	int has_verif;
	char verif_reason[BIO_ERROR_MSG_MAX];
	struct bio_verif v;
	struct bio_roc_point *roc;
	size_t n_roc;
	int has_cmc;
	char cmc_reason[BIO_ERROR_MSG_MAX];
	struct bio_cmc cmc;
	uint64_t *hist_gen, *hist_imp;
	double hist_lo, hist_hi;
	struct bio_scores raw;     /* the scores in comparison order (score fusion) */
	double zmean, zstd;        /* score fusion: its impostor scores' mean and deviation */
	struct bio_boot_ci ci[BIO_BOOT_N_VERIF], ci_rank1; /* bootstrap 95% intervals */
	int has_ci, has_ci_rank1;
	/* --dev: the threshold at eval.dev_fmr on the dev set, and the rates it gives here */
	int has_dev;
	char dev_reason[BIO_ERROR_MSG_MAX];
	double dev_thr, dev_fmr_dev, dev_fnmr_dev, dev_fmr, dev_fnmr;
};

struct eval {
	struct bio_tool *t;
	/* settings */
	int64_t topk, gallery, bins, max_pairs, width, height;
	double resolution;
	enum bio_pair_protocol protocol;
	const char *protocol_name;
	const char *template_name; /* eval.template: pairs, mean or all */
	int templates;             /* mean or all: probe-versus-template comparison */
	enum bio_template_kind template_kind;
	int64_t n_boot, boot_seed;
	double dev_target;         /* eval.dev_fmr */
	/* input */
	struct bio_header h;  /* the input's header (label names, modalities) */
	char **label_names;   /* = h.labels */
	size_t n_label_names; /* = h.n_labels */
	int64_t meta_topk;    /* header meta 'topk' (at most n_label_names), -1 when absent */
	size_t topk_len;      /* length of the topk lists seen */
	size_t n_records, cap_records;
	int64_t *labels, *preds;
	int64_t *topk_ids; /* n_records x topk, -1 padded */
	size_t topk_seen;  /* smallest k over records */
	int64_t max_label;
	int n_mod;                  /* sections: the modalities, then "fused" (the last) */
	struct modality mod[N_MOD_MAX];
	/* score-level fusion of the modalities: each modality's comparison scores z-normalised by
	 * its impostor scores' mean and standard deviation, then summed comparison by comparison */
	struct modality sfuse;
	uint32_t *units;            /* the bootstrap's subjects: the labels present, ascending */
	size_t n_units, n_boot_labels;
	/* results */
	size_t n_classes;
	size_t n_labelled, n_unknown;
	int has_closed;
	char closed_reason[256];
	struct bio_confusion conf;
	struct eval *enrol;     /* --enrol: the gallery's predictions, or NULL */
	const char *enrol_path;
	struct eval *dev;       /* --dev: the predictions the thresholds are set on, or NULL */
	const char *dev_path;
	/* provenance: what the input's header says made it (NULL when it does not say) */
	char *src_program, *src_version, *src_model, *src_digest;
	char **inputs;          /* the input files as given ("-": standard input) */
	int n_inputs;
	char config_digest[65]; /* of this run's eval.* configuration */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-eval [OPTIONS] [PREDICTIONS...]\n"
		"Evaluate a predictions stream (standard input when no file or '-' is given):\n"
		"closed-set accuracy, verification (ROC, DET, EER, FNMR at FMR) and identification\n"
		"(CMC) for each modality's embeddings (the input's modalities) and the fused ones, with\n"
		"bootstrap 95%% confidence intervals. The report (YAML) goes to -o or standard output,\n"
		"a summary table to standard error.\n"
		"\n"
		"      --curves DIR       write roc_/det_/cmc_/hist_<modality>.csv, confusion.csv and\n"
		"                         per_class.csv into DIR\n"
		"      --scores           with --curves: also every score, DIR/scores_<modality>.csv\n"
		"      --plots DIR        write det.png, roc.png, cmc.png, hist_<modality>.png (gnuplot)\n"
		"      --run-dir DIR      a tracking run (mlruns/<exp>/<run>): plot its metrics as\n"
		"                         DIR/../training_curves.png in --plots DIR\n"
		"      --track-run RUN    log the figures (metrics eval_*) and the report, curves and\n"
		"                         plots (artifacts eval/) to a tracking run: its directory,\n"
		"                         or its id in the store at tracking.uri; with --plots, its\n"
		"                         training curves are drawn too\n"
		"      --protocol P       verification pairs: all or fvc (default eval.protocol)\n"
		"      --gallery N        samples per identity enrolled for identification\n"
		"      --enrol FILE       take the gallery from the predictions in FILE (e.g. of the\n"
		"                         training split); every input record is then a probe\n"
		"      --template T       verification: pairs (every pair), mean (probes against each\n"
		"                         identity's mean template of --gallery samples) or all\n"
		"                         (against all of them, best score) (eval.template)\n"
		"      --dev FILE         set a threshold at eval.dev_fmr on the predictions in FILE\n"
		"                         and report FMR, FNMR and HTER at it on the input\n"
		"      --bootstrap N      replicates of the subjects bootstrap (eval.bootstrap; 0 = no\n"
		"                         confidence intervals)\n"
		"  -q, --quiet            no summary table\n"
		BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: eval.topk, eval.gallery, eval.template, eval.bootstrap,\n"
		"eval.bootstrap_seed, eval.dev_fmr, eval.histogram_bins, eval.protocol,\n"
		"eval.max_pairs, eval.curve_resolution, eval.plot_width, eval.plot_height.\n"
		"See bio-eval(1).\n");
}

static void *xrealloc(struct eval *e, void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		bio_tool_die(e->t, "out of memory");
	void *q = realloc(p, (n * size) != 0 ? n * size : 1);
	if (!q)
		bio_tool_die(e->t, "out of memory (%zu bytes)", n * size);
	return q;
}

/* ---- input ---- */

static void add_section(struct eval *e, const char *name, size_t len)
{
	if (e->n_mod >= N_MOD_MAX)
		bio_tool_die(e->t, "more than %d embeddings per record", N_MOD_MAX);
	struct modality *md = &e->mod[e->n_mod++];
	md->name = strndup(name, len);
	md->key = xrealloc(e, NULL, len + 5, 1);
	if (!md->name)
		bio_tool_die(e->t, "out of memory");
	snprintf(md->key, len + 5, "emb_%s", md->name);
}

/* The sections from the header's modalities, then "fused". */
static void sections_from_header(struct eval *e)
{
	for (int m = 0; m < e->h.n_mod; m++)
		if (strcmp(e->h.modalities[m], "fused") != 0)
			add_section(e, e->h.modalities[m], strlen(e->h.modalities[m]));
	add_section(e, "fused", 5);
}

/* Without header modalities: the emb_* keys of record 0 in their order, then "fused". */
static void sections_from_record(struct eval *e, const struct bio_value *rec)
{
	for (size_t i = 0; i < bio_value_len(rec); i++) {
		const char *k;
		size_t len;
		bio_value_map_at(rec, i, &k, &len);
		if (k && len > 4 && memcmp(k, "emb_", 4) == 0 &&
		    !(len == 9 && memcmp(k + 4, "fused", 5) == 0) && !memchr(k, 0, len))
			add_section(e, k + 4, len - 4);
	}
	add_section(e, "fused", 5);
}

/* Dies unless other (an --enrol or --dev stream) has the same sections as e. */
static void same_sections(struct eval *e, const struct eval *other, const char *path,
			  const char *opt)
{
	int same = other->n_mod == e->n_mod;
	for (int m = 0; same && m < e->n_mod; m++)
		same = strcmp(other->mod[m].name, e->mod[m].name) == 0;
	if (same)
		return;
	char a[256] = "", b[256] = "";
	for (int m = 0; m < e->n_mod - 1; m++)
		snprintf(a + strlen(a), sizeof a - strlen(a), "%s%s", m ? ", " : "", e->mod[m].name);
	for (int m = 0; m < other->n_mod - 1; m++)
		snprintf(b + strlen(b), sizeof b - strlen(b), "%s%s", m ? ", " : "",
			 other->mod[m].name);
	bio_tool_die(e->t, "%s (%s): its modalities [%s] differ from the input's [%s]", path, opt,
		     b, a);
}

/* The predictions header: label names are needed (labels and predictions are checked against
 * them); meta.topk, when present, is the length every topk list must have. */
static void read_meta(struct eval *e, struct bio_stream_reader *r)
{
	struct bio_error err;
	if (bio_header_read(&e->h, r, "predictions", BIO_HEADER_LABELS, &err) < 0)
		bio_tool_die_err(e->t, &err);
	e->src_program = bio_value_strdup(bio_value_get(e->h.meta, "program"));
	e->src_version = bio_value_strdup(bio_value_get(e->h.meta, "version"));
	e->src_model = bio_value_strdup(bio_value_get(e->h.meta, "model"));
	e->src_digest = bio_value_strdup(bio_value_get(e->h.meta, "config_digest"));
	e->label_names = e->h.labels;
	e->n_label_names = e->h.n_labels;
	e->meta_topk = -1;
	const struct bio_value *k = bio_value_get(e->h.meta, "topk");
	if (k && (bio_value_int(k, &e->meta_topk) < 0 || e->meta_topk < 1))
		bio_tool_die(e->t, "%s: header meta 'topk': expected a positive count",
			     bio_stream_reader_source(r));
	if (e->meta_topk > (int64_t)e->n_label_names)
		e->meta_topk = (int64_t)e->n_label_names; /* the k best of fewer labels: all */
	if (e->h.n_mod > 0)
		sections_from_header(e);
}

static void read_records(struct eval *e, struct bio_stream_reader *r)
{
	struct bio_error err = {0};
	e->topk_seen = SIZE_MAX;
	e->max_label = -1;
	for (;;) {
		const struct bio_value *rec;
		int rc = bio_stream_read_record(r, &rec, &err);
		if (rc < 0)
			bio_tool_die_err(e->t, &err);
		if (rc == 0)
			break;
		const char *src = bio_stream_reader_source(r);
		unsigned long long ri = (unsigned long long)bio_stream_reader_record_index(r);
		size_t i = e->n_records;
		if (i == 0 && e->n_mod == 0)
			sections_from_record(e, rec);
		if (i >= MAX_RECORDS)
			bio_tool_die(e->t, "%s: more than %u records", src, MAX_RECORDS);
		if (i == e->cap_records) {
			e->cap_records = e->cap_records ? 2 * e->cap_records : 1024;
			e->labels = xrealloc(e, e->labels, e->cap_records, sizeof *e->labels);
			e->preds = xrealloc(e, e->preds, e->cap_records, sizeof *e->preds);
			e->topk_ids = xrealloc(e, e->topk_ids, e->cap_records * (size_t)e->topk,
					       sizeof *e->topk_ids);
		}
		int64_t label, pred;
		if (bio_record_get_label(&label, &e->h, r, rec, "label", 1, &err) < 0 ||
		    bio_record_get_label(&pred, &e->h, r, rec, "pred", 0, &err) < 0)
			bio_tool_die_err(e->t, &err);
		const struct bio_value *sv = bio_value_get(rec, "score");
		double score;
		if (sv && (bio_value_double(sv, &score) < 0 || !isfinite(score)))
			bio_tool_die(e->t, "%s: record %llu: key 'score': not a finite number", src, ri);
		e->labels[i] = label;
		e->preds[i] = pred;
		if (label > e->max_label)
			e->max_label = label;
		if (pred > e->max_label)
			e->max_label = pred;
		/* top-k: optional, i64 [k] */
		int64_t *tk = e->topk_ids + i * (size_t)e->topk;
		for (int64_t k = 0; k < e->topk; k++)
			tk[k] = -1;
		if (bio_value_get(rec, "topk")) {
			struct bio_tensor t, ts;
			if (bio_record_get_tensor(&t, r, rec, "topk", BIO_DTYPE_I64, 1, &err) < 0)
				bio_tool_die_err(e->t, &err);
			size_t k = bio_tensor_numel(&t);
			size_t want = e->meta_topk > 0 ? (size_t)e->meta_topk
				      : i == 0       ? k
						     : e->topk_len;
			if (k != want || k < 1 || k > e->n_label_names)
				bio_tool_die(e->t, "%s: record %llu: key 'topk': %zu labels where %s "
					     "has %zu", src, ri, k,
					     e->meta_topk > 0 ? "the header's topk" : "record 0",
					     want);
			e->topk_len = k;
			if (bio_record_check_labels(&e->h, r, "topk", t.data, k, 0, &err) < 0)
				bio_tool_die_err(e->t, &err);
			if (bio_value_get(rec, "topk_scores")) {
				if (bio_record_get_tensor(&ts, r, rec, "topk_scores", BIO_DTYPE_F32, 1,
							  &err) < 0 ||
				    bio_record_check_finite(&ts, r, "topk_scores", &err) < 0)
					bio_tool_die_err(e->t, &err);
				if (bio_tensor_numel(&ts) != k)
					bio_tool_die(e->t, "%s: record %llu: key 'topk_scores': %zu "
						     "scores for %zu topk labels", src, ri,
						     bio_tensor_numel(&ts), k);
			}
			if (k < e->topk_seen)
				e->topk_seen = k;
			for (size_t j = 0; j < k && j < (size_t)e->topk; j++) {
				int64_t v;
				memcpy(&v, (const char *)t.data + j * 8, 8);
				tk[j] = v;
			}
		} else {
			e->topk_seen = 0;
		}
		/* embeddings */
		for (int m = 0; m < e->n_mod; m++) {
			struct modality *md = &e->mod[m];
			const char *mkey = md->key;
			const struct bio_value *ev = bio_value_get(rec, mkey);
			if (i == 0)
				md->present = ev != NULL;
			if ((ev != NULL) != md->present)
				bio_tool_die(e->t, "%s: record %llu: key '%s' %s, unlike record 0", src,
					     ri, mkey, ev ? "present" : "missing");
			if (!ev)
				continue;
			struct bio_tensor t;
			if (bio_record_get_tensor(&t, r, rec, mkey, BIO_DTYPE_F32, 1, &err) < 0)
				bio_tool_die_err(e->t, &err);
			size_t d = bio_tensor_numel(&t);
			if (i == 0) {
				if (d < 1 || d > MAX_DIM)
					bio_tool_die(e->t, "%s: record %llu: key '%s': %zu values "
							   "(1 to %d allowed)",
						     src, ri, mkey, d, MAX_DIM);
				md->dim = d;
			} else if (d != md->dim) {
				bio_tool_die(e->t, "%s: record %llu: key '%s': %zu values, record 0 "
						   "has %zu",
					     src, ri, mkey, d, md->dim);
			}
			if ((i + 1) * d > md->cap) {
				md->cap = md->cap ? 2 * md->cap : 1024 * d;
				while (md->cap < (i + 1) * d)
					md->cap *= 2;
				md->emb = xrealloc(e, md->emb, md->cap, sizeof(float));
			}
			float *dst = md->emb + i * d;
			memcpy(dst, t.data, d * sizeof(float));
			for (size_t k = 0; k < d; k++)
				if (!isfinite(dst[k]))
					bio_tool_die(e->t, "%s: record %llu: key '%s': value %zu is "
							   "not finite",
						     src, ri, mkey, k);
		}
		e->n_records++;
	}
	if (e->topk_seen == SIZE_MAX)
		e->topk_seen = 0;
}

/* Reads the second input path (--enrol, --dev; option names it) into x: not empty ("<path>: no
 * records <purpose> (<option>)"), with the sections of e. */
static void read_side(struct eval *e, struct eval *x, const char *path, const char *purpose,
		      const char *option)
{
	char *arg[] = {(char *)path};
	struct bio_stream_reader *r = bio_tool_open_inputs(e->t, 1, arg, 0);
	read_meta(x, r);
	read_records(x, r);
	bio_stream_reader_free(r);
	if (x->n_records == 0)
		bio_tool_die(e->t, "%s: no records %s (%s)", path, purpose, option);
	same_sections(e, x, path, option);
}

/* ---- computation ---- */

static void compute_closed(struct eval *e)
{
	struct bio_error err = {0};
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
		return;
	}
	if (bio_confusion_init(&e->conf, e->n_classes, &err) < 0)
		bio_tool_die(e->t, "confusion matrix: %s", err.msg);
	size_t k = (size_t)e->topk < e->topk_seen ? (size_t)e->topk : e->topk_seen;
	for (size_t i = 0; i < e->n_records; i++) {
		if (e->labels[i] < 0)
			continue;
		int hit = bio_topk_hit(e->topk_ids + i * (size_t)e->topk, k, k, e->labels[i]);
		if (bio_confusion_add(&e->conf, e->labels[i], e->preds[i], hit, &err) < 0)
			bio_tool_die(e->t, "record %zu: %s", i, err.msg);
	}
	e->has_closed = 1;
}

/* The comparison set of md for identification with an enrolment and for templates: the
 * enrolment stream's embeddings (--enrol, its first eval.gallery samples per identity enrolled,
 * the others left out) followed by the input's (all probes), or without --enrol the input alone
 * with its first eval.gallery samples per identity enrolled. Arrays returned new (*n entries);
 * 0, or -1 with err set when the enrolment has no such embeddings. */
static int enrolment_set(struct eval *e, const struct modality *md, float **emb_out,
			 int64_t **labels_out, unsigned char **gal_out, size_t *n_out,
			 struct bio_error *err)
{
	const struct eval *en = e->enrol;
	const struct modality *em = en ? &en->mod[md - e->mod] : NULL;
	if (em && !em->present)
		return bio_error_set(err, BIO_EINVAL, "%s: no %s to enrol", e->enrol_path, md->key);
	if (em && em->dim != md->dim)
		return bio_error_set(err, BIO_EINVAL, "%s: %s has %zu values, the input %zu",
				     e->enrol_path, md->key, em->dim, md->dim);
	size_t n_en = en ? en->n_records : 0, n = n_en + e->n_records;
	float *emb = xrealloc(e, NULL, n * md->dim, sizeof(float));
	int64_t *labels = xrealloc(e, NULL, n, sizeof(int64_t));
	unsigned char *gal = xrealloc(e, NULL, n, 1);
	if (en)
		memcpy(emb, em->emb, n_en * md->dim * sizeof(float));
	memcpy(emb + n_en * md->dim, md->emb, e->n_records * md->dim * sizeof(float));
	/* count enrolled samples per label; labels are < n_classes (checked on input) */
	size_t n_lab = e->n_classes;
	if (en && en->n_classes > n_lab)
		n_lab = en->n_classes;
	size_t *cnt = calloc(n_lab ? n_lab : 1, sizeof *cnt);
	if (!cnt)
		bio_tool_die(e->t, "out of memory");
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

/* Identification with the gallery from the enrolment stream (its first eval.gallery samples per
 * identity) and every labelled input record as a probe. */
static int cmc_enrolled(struct eval *e, struct modality *md, struct bio_error *err)
{
	float *emb;
	int64_t *labels;
	unsigned char *gal;
	size_t n;
	if (enrolment_set(e, md, &emb, &labels, &gal, &n, err) < 0)
		return -1;
	int rc = bio_cmc_compute_roles(&md->cmc, emb, n, md->dim, labels, gal, e->t->n_threads,
				       err);
	free(emb);
	free(labels);
	free(gal);
	return rc;
}

/* Probe-versus-template scores and identification (eval.template mean or all). */
static int score_templates(struct eval *e, struct modality *md, struct bio_error *err)
{
	float *emb;
	int64_t *labels;
	unsigned char *gal;
	size_t n;
	if (enrolment_set(e, md, &emb, &labels, &gal, &n, err) < 0)
		return -1;
	int rc = bio_scores_templates(&md->scores, &md->cmc, emb, n, md->dim, labels, gal,
				      e->template_kind, (uint64_t)e->max_pairs, e->t->n_threads, err);
	free(emb);
	free(labels);
	free(gal);
	return rc;
}

/* Sorts md's scores and computes its verification figures: 1, or 0 with verif_reason set. The
 * bootstrap intervals come first (they need the scores in comparison order, with their ids). */
static int verify_scores(struct eval *e, struct modality *md, const char *name)
{
	struct bio_error err = {0};
	struct bio_scores *s = &md->scores;
	if (e->n_boot > 0 && s->gen_id && s->n_genuine > 0 && s->n_impostor > 0) {
		if (bio_boot_verif(md->ci, s, e->units, e->n_units, e->n_boot_labels,
				   (size_t)e->n_boot, (uint64_t)e->boot_seed, e->t->n_threads,
				   &err) < 0)
			bio_tool_die(e->t, "%s bootstrap: %s", name, err.msg);
		md->has_ci = 1;
	}
	if (bio_sort_scores(s->genuine, s->n_genuine, &err) < 0 ||
	    bio_sort_scores(s->impostor, s->n_impostor, &err) < 0)
		bio_tool_die(e->t, "%s scores: %s", name, err.msg);
	if (bio_verif_compute(&md->v, s->genuine, s->n_genuine, s->impostor, s->n_impostor,
			      &err) < 0) {
		snprintf(md->verif_reason, sizeof md->verif_reason, "%s", err.msg);
		return 0;
	}
	md->has_verif = 1;
	return 1;
}

/* A copy of s's values in dst, and of ids' ids (NULL: none). */
static void copy_scores(struct eval *e, struct bio_scores *dst, const struct bio_scores *s,
			const struct bio_scores *ids)
{
	dst->n_genuine = s->n_genuine;
	dst->n_impostor = s->n_impostor;
	dst->genuine = xrealloc(e, NULL, s->n_genuine + 1, sizeof(double));
	dst->impostor = xrealloc(e, NULL, s->n_impostor + 1, sizeof(double));
	memcpy(dst->genuine, s->genuine, s->n_genuine * sizeof(double));
	memcpy(dst->impostor, s->impostor, s->n_impostor * sizeof(double));
	if (ids && ids->gen_id) {
		dst->gen_id = xrealloc(e, NULL, s->n_genuine + 1, sizeof(uint32_t));
		dst->imp_id = xrealloc(e, NULL, 2 * s->n_impostor + 1, sizeof(uint32_t));
		memcpy(dst->gen_id, ids->gen_id, s->n_genuine * sizeof(uint32_t));
		memcpy(dst->imp_id, ids->imp_id, 2 * s->n_impostor * sizeof(uint32_t));
	}
}

static void compute_modality(struct eval *e, struct modality *md)
{
	struct bio_error err = {0};
	if (!md->present) {
		snprintf(md->verif_reason, sizeof md->verif_reason,
			 "no embeddings in the predictions (bio-infer --embeddings)");
		memcpy(md->cmc_reason, md->verif_reason, sizeof md->cmc_reason);
		return;
	}
	if (e->n_labelled == 0) {
		snprintf(md->verif_reason, sizeof md->verif_reason, "no record has a known label");
		memcpy(md->cmc_reason, md->verif_reason, sizeof md->cmc_reason);
		return;
	}
	int rc;
	if (e->templates) {
		rc = score_templates(e, md, &err);
		if (rc == BIO_ENOMEM)
			bio_tool_die(e->t, "%s", err.msg);
		if (rc < 0) {
			snprintf(md->verif_reason, sizeof md->verif_reason, "%s", err.msg);
			snprintf(md->cmc_reason, sizeof md->cmc_reason, "%s", err.msg);
		} else {
			md->has_cmc = 1;
		}
	} else {
		rc = bio_scores_pairs(&md->scores, md->emb, e->n_records, md->dim, e->labels,
				      e->protocol, (uint64_t)e->max_pairs, e->n_boot > 0,
				      e->t->n_threads, &err);
		if (rc == BIO_ENOMEM)
			bio_tool_die(e->t, "%s", err.msg);
		if (rc < 0)
			snprintf(md->verif_reason, sizeof md->verif_reason, "%s", err.msg);
	}
	if (rc == 0) {
		if (md - e->mod < e->n_mod - 1) /* a modality: in comparison order, for the fusion */
			copy_scores(e, &md->raw, &md->scores, NULL);
		const struct bio_scores *s = &md->scores;
		if (verify_scores(e, md, md->name) &&
		    bio_roc_curve(&md->roc, &md->n_roc, s->genuine, s->n_genuine, s->impostor,
				  s->n_impostor, e->resolution, &err) < 0)
			bio_tool_die(e->t, "%s", err.msg);
		/* histograms over the range of all scores */
		if (s->n_genuine + s->n_impostor > 0) {
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
			md->hist_gen = xrealloc(e, NULL, (size_t)e->bins, sizeof(uint64_t));
			md->hist_imp = xrealloc(e, NULL, (size_t)e->bins, sizeof(uint64_t));
			bio_histogram(md->hist_gen, (size_t)e->bins, lo, hi, s->genuine, s->n_genuine);
			bio_histogram(md->hist_imp, (size_t)e->bins, lo, hi, s->impostor,
				      s->n_impostor);
			if (lo == hi) {
				md->hist_lo = lo - 0.5;
				md->hist_hi = hi + 0.5;
			}
		}
	}
	if (!e->templates) {
		if (e->enrol)
			rc = cmc_enrolled(e, md, &err);
		else
			rc = bio_cmc_compute(&md->cmc, md->emb, e->n_records, md->dim, e->labels,
					     (size_t)e->gallery, e->t->n_threads, &err);
		if (rc == BIO_ENOMEM)
			bio_tool_die(e->t, "%s", err.msg);
		if (rc < 0)
			snprintf(md->cmc_reason, sizeof md->cmc_reason, "%s", err.msg);
		else
			md->has_cmc = 1;
	}
	if (md->has_cmc && e->n_boot > 0) {
		if (bio_boot_rank1(&md->ci_rank1, &md->cmc, e->units, e->n_units, e->n_boot_labels,
				   (size_t)e->n_boot, (uint64_t)e->boot_seed, &err) < 0)
			bio_tool_die(e->t, "%s bootstrap: %s", md->name, err.msg);
		md->has_ci_rank1 = 1;
	}
}

/* Score-level fusion (ISO/IEC 19795 reports it beside feature-level fusion): z-norm per
 * modality (the impostor scores' mean and population standard deviation, in double, in
 * comparison order), the sum per comparison, then the same verification figures. Identification
 * is not scored this way (the CMC needs every probe-gallery score of every modality). */
static void compute_score_fusion(struct eval *e)
{
	struct modality *md = &e->sfuse;
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
		return;
	}
	md->present = 1;
	for (int k = 0; k < n; k++)
		if (!e->mod[k].raw.genuine) {
			snprintf(md->verif_reason, sizeof md->verif_reason, "%s",
				 e->mod[k].verif_reason);
			return;
		}
	const struct bio_scores *a = &e->mod[0].raw;
	for (int k = 1; k < n; k++)
		if (e->mod[k].raw.n_genuine != a->n_genuine ||
		    e->mod[k].raw.n_impostor != a->n_impostor)
			bio_tool_die(e->t, "score fusion: the modalities scored different pairs (a bug)");
	for (int k = 0; k < n; k++)
		if (!e->mod[k].has_verif) { /* e.g. no impostors: the modality's own reason */
			snprintf(md->verif_reason, sizeof md->verif_reason, "%s",
				 e->mod[k].verif_reason);
			return;
		}
	for (int k = 0; k < n; k++) {
		struct modality *x = &e->mod[k];
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
			return;
		}
	}
	struct bio_scores *f = &md->scores;
	/* the ids of the first modality's scores (sorting moved only their values) */
	copy_scores(e, f, a, &e->mod[0].scores);
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
	verify_scores(e, md, "score fusion");
}

/* --dev: each section's threshold at eval.dev_fmr on the dev set's scores, and the FMR, FNMR
 * (and HTER) it gives on the input's. */
static void compute_dev(struct eval *e)
{
	for (int m = 0; m < e->n_mod; m++) {
		struct modality *md = &e->mod[m];
		const struct modality *dm = &e->dev->mod[m];
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

/* Templates from the input itself: dies when eval.gallery leaves no identity a probe (every
 * sample enrolled), naming the input, the largest count and the key. */
static void check_gallery(struct eval *e, const char *src)
{
	size_t n_lab = e->n_classes ? e->n_classes : 1, most = 0;
	size_t *cnt = calloc(n_lab, sizeof *cnt);
	if (!cnt)
		bio_tool_die(e->t, "out of memory");
	for (size_t i = 0; i < e->n_records; i++)
		if (e->labels[i] >= 0 && (size_t)e->labels[i] < n_lab &&
		    ++cnt[e->labels[i]] > most)
			most = cnt[e->labels[i]];
	free(cnt);
	if (most > 0 && most <= (size_t)e->gallery)
		bio_tool_die(e->t, "%s: eval.gallery %lld enrols every sample (an identity has at most "
			     "%zu): no probes are left; set eval.gallery below %zu", src,
			     (long long)e->gallery, most, most);
}

/* The bootstrap's subjects: every label of a labelled input record or enrolled sample. */
static void boot_units(struct eval *e)
{
	size_t n_lab = e->n_classes;
	if (e->enrol && e->enrol->n_classes > n_lab)
		n_lab = e->enrol->n_classes;
	e->n_boot_labels = n_lab; /* the weights' index range */
	unsigned char *seen = calloc(n_lab ? n_lab : 1, 1);
	if (!seen)
		bio_tool_die(e->t, "out of memory");
	for (size_t i = 0; i < e->n_records; i++)
		if (e->labels[i] >= 0 && (size_t)e->labels[i] < n_lab)
			seen[e->labels[i]] = 1;
	for (size_t i = 0; e->enrol && i < e->enrol->n_records; i++)
		if (e->enrol->labels[i] >= 0 && (size_t)e->enrol->labels[i] < n_lab)
			seen[e->enrol->labels[i]] = 1;
	e->units = xrealloc(e, NULL, n_lab + 1, sizeof *e->units);
	for (size_t l = 0; l < n_lab; l++)
		if (seen[l])
			e->units[e->n_units++] = (uint32_t)l;
	free(seen);
}

/* ---- report ---- */

static void put_qstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void put_rate(FILE *f, const char *indent, const char *key, int ok, double v)
{
	if (ok)
		fprintf(f, "%s%s: %.10g\n", indent, key, v);
	else
		fprintf(f, "%s%s: null\n", indent, key);
}

static void put_threshold(FILE *f, const char *indent, const char *key, int ok, double v)
{
	if (ok)
		fprintf(f, "%s%s: %.17g\n", indent, key, v);
	else
		fprintf(f, "%s%s: null\n", indent, key);
}

/* UTC time as ISO 8601 ("2026-12-02T14:20:00Z"), from SOURCE_DATE_EPOCH when set (reproducible
 * reports, as reproducible builds do), else now. */
static const char *iso_time(char *buf, size_t cap)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long v = sde && *sde ? strtoll(sde, &end, 10) : -1;
	time_t now = sde && *sde && !*end && v >= 0 ? (time_t)v : time(NULL);
	struct tm tm;
	if (!gmtime_r(&now, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, cap, "unknown");
	return buf;
}

/* The verification block of a report section (figures, or nulls and the reason). */
/* A 95% interval as [lo, hi] (null when not computed or no replicate was valid). */
static void put_ci(FILE *f, const char *indent, const char *key, int ok,
		   const struct bio_boot_ci *ci)
{
	if (ok && ci->n_valid > 0)
		fprintf(f, "%s%s: [%.10g, %.10g]\n", indent, key, ci->lo, ci->hi);
	else
		fprintf(f, "%s%s: null\n", indent, key);
}

static void put_verification(FILE *f, const struct modality *md, int dev)
{
	const struct bio_verif *v = &md->v;
	int ok = md->has_verif;
	fputs("  verification:\n", f);
	fprintf(f, "    n_genuine: %zu\n    n_impostor: %zu\n",
		md->scores.n_genuine, md->scores.n_impostor);
	put_rate(f, "    ", "eer", ok, v->eer);
	put_ci(f, "    ", "eer_ci95", ok && md->has_ci, &md->ci[0]);
	put_threshold(f, "    ", "eer_threshold", ok, v->eer_threshold);
	put_rate(f, "    ", "eer_fmr", ok, v->eer_fmr);
	put_rate(f, "    ", "eer_fnmr", ok, v->eer_fnmr);
	put_rate(f, "    ", "fnmr_at_fmr_1pct", ok, v->fnmr_at_fmr[0]);
	put_ci(f, "    ", "fnmr_at_fmr_1pct_ci95", ok && md->has_ci, &md->ci[1]);
	put_threshold(f, "    ", "threshold_at_fmr_1pct", ok, v->threshold_at_fmr[0]);
	put_rate(f, "    ", "fnmr_at_fmr_0_1pct", ok, v->fnmr_at_fmr[1]);
	put_ci(f, "    ", "fnmr_at_fmr_0_1pct_ci95", ok && md->has_ci, &md->ci[2]);
	put_threshold(f, "    ", "threshold_at_fmr_0_1pct", ok, v->threshold_at_fmr[1]);
	put_rate(f, "    ", "fnmr_at_fmr_0", ok, v->fnmr_at_fmr[2]);
	put_ci(f, "    ", "fnmr_at_fmr_0_ci95", ok && md->has_ci, &md->ci[3]);
	put_threshold(f, "    ", "threshold_at_fmr_0", ok, v->threshold_at_fmr[2]);
	put_rate(f, "    ", "zero_fnmr", ok, v->zero_fnmr);
	put_threshold(f, "    ", "zero_fnmr_threshold", ok, v->zero_fnmr_threshold);
	put_rate(f, "    ", "auc", ok, v->auc);
	if (!ok) {
		fputs("    reason: ", f);
		put_qstr(f, md->verif_reason);
		fputc('\n', f);
	}
	if (!dev)
		return;
	/* the threshold set on the dev set at eval.dev_fmr, applied here */
	fputs("    dev_threshold:\n", f);
	int d = md->has_dev;
	put_threshold(f, "      ", "threshold", d, md->dev_thr);
	put_rate(f, "      ", "dev_fmr", d, md->dev_fmr_dev);
	put_rate(f, "      ", "dev_fnmr", d, md->dev_fnmr_dev);
	put_rate(f, "      ", "fmr", d, md->dev_fmr);
	put_rate(f, "      ", "fnmr", d, md->dev_fnmr);
	put_rate(f, "      ", "hter", d, (md->dev_fmr + md->dev_fnmr) / 2.0);
	if (!d) {
		fputs("      reason: ", f);
		put_qstr(f, md->dev_reason);
		fputc('\n', f);
	}
}

static void write_report(struct eval *e, FILE *f)
{
	fprintf(f, "# bio-eval %s report\n", BIO_VERSION);
	fprintf(f, "records: %zu\nlabelled: %zu\nunknown: %zu\nclasses: %zu\n", e->n_records,
		e->n_labelled, e->n_unknown, e->n_classes);
	fprintf(f, "protocol: %s\ngallery_per_identity: %lld\n", e->protocol_name,
		(long long)e->gallery);
	fputs("gallery_from: ", f);
	put_qstr(f, e->enrol ? e->enrol_path : "input");
	fprintf(f, "\ntemplate: %s\n", e->template_name);
	fprintf(f, "bootstrap:\n  replicates: %lld\n  seed: %lld\n  unit: identity\n"
		"  subjects: %zu\n", (long long)e->n_boot, (long long)e->boot_seed, e->n_units);
	if (e->dev) {
		fputs("dev:\n  path: ", f);
		put_qstr(f, e->dev_path);
		fprintf(f, "\n  target_fmr: %.10g\n", e->dev_target);
	}
	for (int m = 0; m < e->n_mod; m++) {
		struct modality *md = &e->mod[m];
		fprintf(f, "%s:\n", e->mod[m].name);
		fprintf(f, "  embeddings: %s\n", md->present ? "true" : "false");
		if (md->present)
			fprintf(f, "  dim: %zu\n", md->dim);
		if (m == e->n_mod - 1) {
			/* closed-set figures come from pred/topk, i.e. the fused classifier */
			size_t k = (size_t)e->topk < e->topk_seen ? (size_t)e->topk : e->topk_seen;
			int ok = e->has_closed;
			put_rate(f, "  ", "accuracy", ok,
				 ok ? (double)e->conf.n_correct / (double)e->conf.n_total : 0);
			fprintf(f, "  topk: %lld\n", (long long)e->topk);
			char key[32];
			snprintf(key, sizeof key, "top%lld", (long long)e->topk);
			put_rate(f, "  ", key, ok && k == (size_t)e->topk,
				 ok ? (double)e->conf.n_topk / (double)e->conf.n_total : 0);
			if (ok && k < (size_t)e->topk) {
				fprintf(f, "  top_reason: ");
				char why[128];
				snprintf(why, sizeof why, "the records carry only %zu top-k entries", k);
				put_qstr(f, why);
				fputc('\n', f);
			}
			if (!ok) {
				fputs("  closed_set_reason: ", f);
				put_qstr(f, e->closed_reason);
				fputc('\n', f);
			}
		}
		put_verification(f, md, e->dev != NULL);
		fputs("  identification:\n", f);
		int ok = md->has_cmc;
		put_rate(f, "    ", "rank1", ok, bio_cmc_rank(&md->cmc, 1));
		put_ci(f, "    ", "rank1_ci95", ok && md->has_ci_rank1, &md->ci_rank1);
		put_rate(f, "    ", "rank5", ok, bio_cmc_rank(&md->cmc, 5));
		fprintf(f, "    n_gallery: %zu\n    n_probes: %zu\n", md->cmc.n_gallery,
			md->cmc.n_probes);
		if (e->enrol || e->templates)
			fprintf(f, "    n_unmated_probes: %zu\n", md->cmc.n_unmated);
		if (e->templates)
			fprintf(f, "    n_templates: %zu\n", md->cmc.n_ids);
		if (!ok) {
			fputs("    reason: ", f);
			put_qstr(f, md->cmc_reason);
			fputc('\n', f);
		}
	}
	/* score-level fusion, beside the model's feature-level fusion */
	{
		const struct modality *md = &e->sfuse;
		fputs("score_fusion:\n  method: \"z-norm (impostor mean and standard deviation of "
		      "each modality), sum\"\n", f);
		for (int k = 0; k < e->n_mod - 1 && md->has_verif; k++)
			fprintf(f, "  %s_znorm: [%.17g, %.17g]\n", e->mod[k].name, e->mod[k].zmean,
				e->mod[k].zstd);
		put_verification(f, md, e->dev != NULL);
	}
	/* provenance: this program, when, on what configuration, from which inputs and model */
	fputs("provenance:\n  program: bio-eval\n  version: ", f);
	put_qstr(f, BIO_VERSION);
	char when[32];
	fprintf(f, "\n  time: %s\n  config_digest: %s\n  inputs: [", iso_time(when, sizeof when),
		e->config_digest);
	for (int i = 0; i < e->n_inputs; i++) {
		fputs(i ? ", " : "", f);
		put_qstr(f, e->inputs[i]);
	}
	fputs("]\n", f);
	const struct eval *src[3] = {e, e->enrol, e->dev};
	const char *const paths[3] = {NULL, e->enrol_path, e->dev_path};
	static const char *const what[3] = {"predictions", "enrol", "dev"};
	for (int k = 0; k < 3; k++) {
		if (!src[k])
			continue;
		fprintf(f, "  %s:\n", what[k]);
		if (k > 0) {
			fputs("    path: ", f);
			put_qstr(f, paths[k]);
			fputc('\n', f);
		}
		const char *const vals[4] = {src[k]->src_program, src[k]->src_version,
					      src[k]->src_model, src[k]->src_digest};
		static const char *const keys[4] = {"program", "version", "model", "config_digest"};
		for (int v = 0; v < 4; v++) {
			fprintf(f, "    %s: ", keys[v]);
			if (vals[v])
				put_qstr(f, vals[v]);
			else
				fputs("~", f);
			fputc('\n', f);
		}
	}
}

/* ---- CSV curves ---- */

struct afile {
	FILE *f;
	char *tmp, *path;
};

/* Curves and plots appear as one set or not at all: each file is written to a temp beside its
 * final name and stays pending; pending_commit renames them all once every one is written (and
 * the report committed). A program that dies before (a full disk, a gnuplot failure) removes the
 * pending temps at exit, and the folders it created if they are left empty. */
static struct {
	char **tmp, **path;
	size_t n, cap;
	char *dirs[4]; /* folders made by make_dir, removed at exit when still empty */
	size_t n_dirs;
	int done;
} pending;

static void pending_cleanup(void)
{
	if (pending.done)
		return;
	for (size_t i = 0; i < pending.n; i++)
		unlink(pending.tmp[i]);
	for (size_t i = pending.n_dirs; i-- > 0;)
		rmdir(pending.dirs[i]);
}

static void pending_add(struct eval *e, char *tmp, char *path)
{
	static int registered;
	if (!registered && atexit(pending_cleanup) == 0)
		registered = 1;
	if (pending.n == pending.cap) {
		pending.cap = pending.cap ? 2 * pending.cap : 32;
		pending.tmp = xrealloc(e, pending.tmp, pending.cap, sizeof *pending.tmp);
		pending.path = xrealloc(e, pending.path, pending.cap, sizeof *pending.path);
	}
	pending.tmp[pending.n] = tmp;
	pending.path[pending.n++] = path;
}

/* Renames every pending file into place. */
static void pending_commit(struct eval *e)
{
	for (size_t i = 0; i < pending.n; i++)
		if (rename(pending.tmp[i], pending.path[i]) != 0)
			bio_tool_die(e->t, "%s: %s", pending.path[i], strerror(errno));
	pending.done = 1;
	for (size_t i = 0; i < pending.n; i++) {
		free(pending.tmp[i]);
		free(pending.path[i]);
	}
	free(pending.tmp);
	free(pending.path);
	for (size_t i = 0; i < pending.n_dirs; i++)
		free(pending.dirs[i]);
}

static FILE *afile_open(struct eval *e, struct afile *a, const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 32;
	a->path = xrealloc(e, NULL, n, 1);
	a->tmp = xrealloc(e, NULL, n, 1);
	snprintf(a->path, n, "%s/%s", dir, name);
	snprintf(a->tmp, n, ".%s.tmp", name);
	bio_remove_stale_temps(dir, a->tmp); /* what a killed run left */
	snprintf(a->tmp, n, "%s/.%s.tmp%ld", dir, name, (long)getpid());
	a->f = fopen(a->tmp, "w");
	if (!a->f) {
		int en = errno;
		free(a->tmp);
		bio_tool_die(e->t, "%s: %s", a->path, strerror(en));
	}
	pending_add(e, a->tmp, a->path);
	return a->f;
}

/* Closes a curve file (pending until pending_commit); a write error names the file and cause. */
static void afile_commit(struct eval *e, struct afile *a)
{
	int en = 0;
	errno = 0;
	if (fflush(a->f) != 0 || ferror(a->f))
		en = errno ? errno : EIO;
	if (fclose(a->f) != 0 && !en)
		en = errno ? errno : EIO;
	if (en)
		bio_tool_die(e->t, "%s: write error: %s", a->path, strerror(en));
}

static void make_dir(struct eval *e, const char *dir)
{
	struct stat sb;
	struct bio_error err = {0};
	const int existed = stat(dir, &sb) == 0;
	if (bio_fs_mkdir_p(dir, &err) < 0)
		bio_tool_die_err(e->t, &err);
	char *p = existed ? NULL : strdup(dir);
	if (p && pending.n_dirs < sizeof pending.dirs / sizeof pending.dirs[0])
		pending.dirs[pending.n_dirs++] = p; /* ours: removed at exit if left empty */
	else
		free(p);
}

static void put_class_name(struct eval *e, FILE *f, size_t k)
{
	if (k < e->n_label_names) {
		bio_csv_put_field(f, e->label_names[k]);
	} else {
		fprintf(f, "%zu", k);
	}
}

/* The shortest decimal form of v that reads back as the same double (%.17g gives
 * 0.10000000000000001 for 0.1): exact and short. */
static const char *num_short(char buf[32], double v)
{
	for (int prec = 6; prec < 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return buf;
	}
	snprintf(buf, 32, "%.17g", v);
	return buf;
}

static void write_curves(struct eval *e, const char *dir, int with_scores)
{
	char nbuf[5][32];
#define NUM(i, v) num_short(nbuf[i], (v))
	make_dir(e, dir);
	struct afile a;
	char name[64];
	for (int m = 0; m < e->n_mod; m++) {
		struct modality *md = &e->mod[m];
		if (md->has_verif) {
			snprintf(name, sizeof name, "roc_%s.csv", e->mod[m].name);
			FILE *f = afile_open(e, &a, dir, name);
			fputs("threshold,fmr,fnmr,tmr\n", f);
			for (size_t i = 0; i < md->n_roc; i++)
				fprintf(f, "%s,%s,%s,%s\n", NUM(0, md->roc[i].threshold),
					NUM(1, md->roc[i].fmr), NUM(2, md->roc[i].fnmr),
					NUM(3, 1.0 - md->roc[i].fnmr));
			afile_commit(e, &a);
			snprintf(name, sizeof name, "det_%s.csv", e->mod[m].name);
			f = afile_open(e, &a, dir, name);
			fputs("threshold,fmr,fnmr,probit_fmr,probit_fnmr\n", f);
			for (size_t i = 0; i < md->n_roc; i++)
				fprintf(f, "%s,%s,%s,%s,%s\n", NUM(0, md->roc[i].threshold),
					NUM(1, md->roc[i].fmr), NUM(2, md->roc[i].fnmr),
					NUM(3, bio_ppndf(md->roc[i].fmr)),
					NUM(4, bio_ppndf(md->roc[i].fnmr)));
			afile_commit(e, &a);
		}
		if (md->hist_gen) {
			snprintf(name, sizeof name, "hist_%s.csv", e->mod[m].name);
			FILE *f = afile_open(e, &a, dir, name);
			fputs("bin_lo,bin_hi,genuine,impostor\n", f);
			double step = (md->hist_hi - md->hist_lo) / (double)e->bins;
			for (int64_t b = 0; b < e->bins; b++)
				fprintf(f, "%s,%s,%llu,%llu\n", NUM(0, md->hist_lo + (double)b * step),
					NUM(1, b + 1 == e->bins ? md->hist_hi
								: md->hist_lo + (double)(b + 1) * step),
					(unsigned long long)md->hist_gen[b],
					(unsigned long long)md->hist_imp[b]);
			afile_commit(e, &a);
		}
		if (md->has_cmc) {
			snprintf(name, sizeof name, "cmc_%s.csv", e->mod[m].name);
			FILE *f = afile_open(e, &a, dir, name);
			fputs("rank,rate\n", f);
			for (size_t r = 0; r < md->cmc.n_ranks; r++)
				fprintf(f, "%zu,%s\n", r + 1, NUM(0, md->cmc.rate[r]));
			afile_commit(e, &a);
		}
		if (with_scores && md->present &&
		    md->scores.n_genuine + md->scores.n_impostor > 0) {
			snprintf(name, sizeof name, "scores_%s.csv", e->mod[m].name);
			FILE *f = afile_open(e, &a, dir, name);
			fputs("genuine,score\n", f);
			for (size_t i = 0; i < md->scores.n_genuine; i++)
				fprintf(f, "1,%s\n", NUM(0, md->scores.genuine[i]));
			for (size_t i = 0; i < md->scores.n_impostor; i++)
				fprintf(f, "0,%s\n", NUM(0, md->scores.impostor[i]));
			afile_commit(e, &a);
		}
	}
	if (with_scores && e->sfuse.has_verif) {
		const struct bio_scores *s = &e->sfuse.scores;
		FILE *f = afile_open(e, &a, dir, "scores_score_fusion.csv");
		fputs("genuine,score\n", f);
		for (size_t i = 0; i < s->n_genuine; i++)
			fprintf(f, "1,%s\n", NUM(0, s->genuine[i]));
		for (size_t i = 0; i < s->n_impostor; i++)
			fprintf(f, "0,%s\n", NUM(0, s->impostor[i]));
		afile_commit(e, &a);
	}
	if (e->has_closed) {
		size_t n = e->n_classes;
		FILE *f = afile_open(e, &a, dir, "confusion.csv");
		fputs("true\\pred", f);
		for (size_t j = 0; j < n; j++) {
			fputc(',', f);
			put_class_name(e, f, j);
		}
		fputc('\n', f);
		for (size_t i = 0; i < n; i++) {
			put_class_name(e, f, i);
			for (size_t j = 0; j < n; j++)
				fprintf(f, ",%llu", (unsigned long long)e->conf.counts[i * n + j]);
			fputc('\n', f);
		}
		afile_commit(e, &a);
		f = afile_open(e, &a, dir, "per_class.csv");
		fputs("label,name,support,predicted,precision,recall\n", f);
		for (size_t k = 0; k < n; k++) {
			double p, r;
			uint64_t sup, pr;
			bio_confusion_class(&e->conf, k, &p, &r, &sup, &pr);
			fprintf(f, "%zu,", k);
			put_class_name(e, f, k);
			fprintf(f, ",%llu,%llu,%s,%s\n", (unsigned long long)sup,
				(unsigned long long)pr, NUM(0, p), NUM(1, r));
		}
		afile_commit(e, &a);
	}
#undef NUM
}

/* ---- plots ---- */

static void plot_or_die(struct eval *e, const char *dir, const char *name,
			const struct bio_plot_panel *panels, size_t n, size_t cols, int w, int h)
{
	struct bio_error err = {0};
	size_t len = strlen(dir) + strlen(name) + 32;
	char *path = xrealloc(e, NULL, len, 1), *tmp = xrealloc(e, NULL, len, 1);
	snprintf(path, len, "%s/%s", dir, name);
	snprintf(tmp, len, ".%s.tmp", name);
	bio_remove_stale_temps(dir, tmp); /* what a killed run left */
	snprintf(tmp, len, "%s/.%s.tmp%ld", dir, name, (long)getpid());
	pending_add(e, tmp, path);
	if (bio_plot_png(tmp, panels, n, cols, w, h, &err) < 0) {
		/* the message names the temp file: say the final one */
		const char *m = err.msg;
		if (strncmp(m, tmp, strlen(tmp)) == 0)
			m += strlen(tmp);
		bio_tool_die(e->t, "%s%s", path, m);
	}
}

/* Smallest power of ten at or below p, within [1e-6, 1e-2]. */
static double decade_floor(double p)
{
	double d = pow(10.0, floor(log10(p)));
	return d < 1e-6 ? 1e-6 : d > 1e-2 ? 1e-2 : d;
}

static void write_plots(struct eval *e, const char *dir)
{
	make_dir(e, dir);
	int w = (int)e->width, h = (int)e->height;
	struct bio_plot_series det[N_MOD_MAX], roc[N_MOD_MAX], cmc[N_MOD_MAX];
	double *buf[N_MOD_MAX][4] = {{0}};
	char titles[N_MOD_MAX][96];
	size_t n_det = 0, n_cmc = 0;
	double lo_x = 1e-2, lo_y = 1e-2; /* one decade below the finest FMR / FNMR step */
	for (int m = 0; m < e->n_mod; m++) {
		struct modality *md = &e->mod[m];
		if (md->has_verif) {
			size_t n = md->n_roc;
			double *fmr = buf[m][0] = xrealloc(e, NULL, n, sizeof(double));
			double *fnmr = buf[m][1] = xrealloc(e, NULL, n, sizeof(double));
			double *tmr = buf[m][2] = xrealloc(e, NULL, n, sizeof(double));
			for (size_t i = 0; i < n; i++) {
				fmr[i] = md->roc[i].fmr;
				fnmr[i] = md->roc[i].fnmr;
				tmr[i] = 1.0 - md->roc[i].fnmr;
			}
			snprintf(titles[m], sizeof titles[m], "%s (EER %.2f%%)", e->mod[m].name,
				 100.0 * md->v.eer);
			det[n_det] = (struct bio_plot_series){titles[m], fmr, fnmr, n,
							      BIO_STYLE_LINES};
			roc[n_det++] = (struct bio_plot_series){titles[m], fmr, tmr, n,
								BIO_STYLE_LINES};
			lo_x = fmin(lo_x, decade_floor(0.5 / (double)md->v.n_impostor));
			lo_y = fmin(lo_y, decade_floor(0.5 / (double)md->v.n_genuine));
		}
		if (md->has_cmc) {
			size_t n = md->cmc.n_ranks < 50 ? md->cmc.n_ranks : 50;
			double *rank = buf[m][3] = xrealloc(e, NULL, n, sizeof(double));
			for (size_t r = 0; r < n; r++)
				rank[r] = (double)(r + 1);
			cmc[n_cmc++] = (struct bio_plot_series){e->mod[m].name, rank, md->cmc.rate, n,
								BIO_STYLE_LINESPOINTS};
		}
	}
	if (n_det) {
		struct bio_plot_panel p = {
			.title = "DET", .xlabel = "False match rate (FMR)",
			.ylabel = "False non-match rate (FNMR)", .xscale = BIO_SCALE_PROBIT,
			.yscale = BIO_SCALE_PROBIT, .has_xrange = 1, .has_yrange = 1, .xmin = lo_x,
			.xmax = 0.5, .ymin = lo_y, .ymax = 0.5, .series = det, .n_series = n_det,
			.diagonal = 1, .key_pos = "bottom left"};
		plot_or_die(e, dir, "det.png", &p, 1, 1, w, h);
		struct bio_plot_panel q = {
			.title = "ROC", .xlabel = "False match rate (FMR, log scale)",
			.ylabel = "True match rate (1 - FNMR)", .xscale = BIO_SCALE_LOG,
			.yscale = BIO_SCALE_LINEAR, .has_xrange = 1, .has_yrange = 1, .xmin = lo_x,
			.xmax = 1.0, .ymin = 0.0, .ymax = 1.0, .series = roc, .n_series = n_det};
		plot_or_die(e, dir, "roc.png", &q, 1, 1, w, h);
	}
	if (n_cmc) {
		struct bio_plot_panel p = {
			.title = "CMC (closed-set identification)", .xlabel = "Rank",
			.ylabel = "Identification rate", .has_yrange = 1, .ymin = 0.0,
			.ymax = 1.02, .series = cmc, .n_series = n_cmc, .integer_x = 1};
		plot_or_die(e, dir, "cmc.png", &p, 1, 1, w, h);
	}
	for (int m = 0; m < e->n_mod; m++) {
		struct modality *md = &e->mod[m];
		if (!md->hist_gen)
			continue;
		size_t nb = (size_t)e->bins;
		double *x = xrealloc(e, NULL, nb, sizeof(double));
		double *yg = xrealloc(e, NULL, nb, sizeof(double));
		double *yi = xrealloc(e, NULL, nb, sizeof(double));
		double step = (md->hist_hi - md->hist_lo) / (double)nb;
		for (size_t b = 0; b < nb; b++) {
			x[b] = md->hist_lo + ((double)b + 0.5) * step;
			yg[b] = md->scores.n_genuine ? (double)md->hist_gen[b] /
							       ((double)md->scores.n_genuine * step)
						     : 0.0;
			yi[b] = md->scores.n_impostor ? (double)md->hist_imp[b] /
								((double)md->scores.n_impostor * step)
						      : 0.0;
		}
		char tg[64], ti[64], title[96], vt[64], name[64];
		snprintf(tg, sizeof tg, "genuine (%zu)", md->scores.n_genuine);
		snprintf(ti, sizeof ti, "impostor (%zu)", md->scores.n_impostor);
		snprintf(title, sizeof title, "Score distributions: %s", e->mod[m].name);
		snprintf(vt, sizeof vt, "EER threshold %.4g", md->v.eer_threshold);
		struct bio_plot_series s[2] = {{ti, x, yi, nb, BIO_STYLE_BOXES},
					       {tg, x, yg, nb, BIO_STYLE_BOXES}};
		struct bio_plot_panel p = {
			.title = title, .xlabel = "Cosine similarity", .ylabel = "Density",
			.series = s, .n_series = 2, .has_vline = md->has_verif,
			.vline = md->v.eer_threshold, .vline_title = vt, .key_pos = "top left"};
		snprintf(name, sizeof name, "hist_%s.png", e->mod[m].name);
		plot_or_die(e, dir, name, &p, 1, 1, w, h);
		free(x);
		free(yg);
		free(yi);
	}
	for (int m = 0; m < e->n_mod; m++)
		for (int k = 0; k < 4; k++)
			free(buf[m][k]);
}

/* ---- training curves from a tracking run (MLflow file store: metrics/<key>, lines
 * "<timestamp_ms> <value> <step>") ---- */

struct metric_series {
	char *name;
	double *x, *y;
	size_t n;
};

/* The legend entry of a tracked metric: its words, not its key ("val_accuracy" is "validation
 * accuracy"); unknown keys as they are. */
static const char *metric_label(const char *key)
{
	static const char *const names[][2] = {
		{"train_loss", "training loss"},
		{"train_accuracy", "training accuracy"},
		{"val_loss", "validation loss"},
		{"val_accuracy", "validation accuracy"},
		{"samples_per_s", "samples per second"},
		{"lr", "learning rate"},
		{"learning_rate", "learning rate"},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(key, names[i][0]) == 0)
			return names[i][1];
	return key;
}

static void plot_training(struct eval *e, const char *plots, const char *run_dir, int required)
{
	struct bio_error err = {0};
	struct bio_track_series *all = NULL;
	size_t n_all = 0;
	int rc = bio_track_run_read_metrics(&all, &n_all, run_dir, &err);
	if (rc == BIO_ENOTFOUND && !required) {
		bio_tool_warn(e->t, "%s: no metrics: no training curves", run_dir);
		return;
	}
	if (rc < 0)
		bio_tool_die(e->t, "%s (--run-dir must be a tracking run directory)", err.msg);
	/* the series by key (the store's order), epochs counted from 1 as bio-train prints
	 * them; our own figures (eval_*, logged at step 0) left out */
	struct metric_series ser[64];
	size_t n = 0;
	for (size_t i = 0; i < n_all && n < 64; i++) {
		if (strncmp(all[i].key, "eval_", 5) == 0 || all[i].n == 0)
			continue;
		ser[n].name = all[i].key;
		ser[n].n = all[i].n;
		ser[n].x = xrealloc(e, NULL, all[i].n, sizeof(double));
		ser[n].y = all[i].values;
		for (size_t k = 0; k < all[i].n; k++)
			ser[n].x[k] = (double)all[i].steps[k] + 1;
		n++;
	}
	/* panels: losses, rates (accuracy, ...), throughput, learning rate */
	static const char *const titles[4] = {"Loss", "Accuracy", "Throughput", "Learning rate"};
	static const char *const ylabels[4] = {"Loss", "Rate", "Samples/s", "lr"};
	struct bio_plot_series group[4][64];
	size_t n_in[4] = {0};
	for (size_t i = 0; i < n; i++) {
		const char *k = ser[i].name;
		int g = strstr(k, "loss")                                      ? 0
			: strstr(k, "acc") || strstr(k, "rank") || strstr(k, "eer") ? 1
			: strstr(k, "samples_per_s")                            ? 2
			: strcmp(k, "lr") == 0 || strstr(k, "learning_rate")    ? 3
										: -1;
		if (g >= 0)
			group[g][n_in[g]++] = (struct bio_plot_series){metric_label(ser[i].name),
								       ser[i].x, ser[i].y, ser[i].n,
								       BIO_STYLE_LINESPOINTS};
	}
	struct bio_plot_panel panels[4];
	size_t np = 0;
	for (int g = 0; g < 4; g++)
		if (n_in[g])
			panels[np++] = (struct bio_plot_panel){
				.title = titles[g], .xlabel = "Epoch", .ylabel = ylabels[g],
				.series = group[g], .n_series = n_in[g],
				.key_pos = g == 1 ? "bottom right" : "top right", .integer_x = 1};
	size_t cols = np == 4 ? 2 : np;
	size_t rows = np == 4 ? 2 : 1;
	if (np == 0)
		bio_tool_warn(e->t, "%s: no metrics to plot", run_dir);
	else
		plot_or_die(e, plots, "training_curves.png", panels, np, cols,
			    (int)(e->width * (int64_t)cols * 3 / 4 + 100),
			    (int)(e->height * (int64_t)rows * 3 / 4 + (rows == 1 ? e->height / 4 : 0)));
	for (size_t i = 0; i < n; i++)
		free(ser[i].x);
	bio_track_series_free(all, n_all);
}

/* ---- tracking store ---- */

/* A --track-run argument resolved: the store root, the run id, the run directory. */
struct track_target {
	char *root, *run_id, *run_dir;
	const char *server; /* tracking.uri of a tracking server (then only run_id is set) */
};

/* Resolves RUN: a run directory (<store>/<experiment>/<run_id>, with meta.yaml) or a run id looked
 * up in the store at uri (tracking.uri). Dies when not found. */
static void track_resolve(struct eval *e, struct track_target *tt, const char *run,
			  const char *uri)
{
	struct stat sb;
	memset(tt, 0, sizeof *tt);
	if (stat(run, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		char *abs = realpath(run, NULL);
		if (!abs)
			bio_tool_die(e->t, "%s: %s", run, strerror(errno));
		char *slash = strrchr(abs, '/');
		if (!slash || slash == abs)
			bio_tool_die(e->t, "%s: not a run directory of a tracking store", run);
		tt->run_dir = abs;
		tt->run_id = strdup(slash + 1);
		char *up = strndup(abs, (size_t)(slash - abs));
		char *s2 = up ? strrchr(up, '/') : NULL;
		if (!tt->run_id || !up || !s2)
			bio_tool_die(e->t, "%s: not a run directory of a tracking store", run);
		*s2 = '\0';
		tt->root = up;
	} else {
		const char *root = strncmp(uri, "file://", 7) == 0 ? uri + 7 : uri;
		struct bio_error err = {0};
		tt->root = strdup(root);
		tt->run_id = strdup(run);
		if (!tt->root || !tt->run_id)
			bio_tool_die(e->t, "out of memory");
		int rc = strchr(run, '/') ? BIO_ENOTFOUND
					  : bio_track_run_find(&tt->run_dir, uri, run, &err);
		if (rc == BIO_ENOTFOUND)
			bio_tool_die(e->t, "--track-run %s: no such run in %s", run, tt->root);
		if (rc < 0)
			bio_tool_die(e->t, "--track-run %s: %s (tracking.uri)", run, err.msg);
	}
	size_t n = strlen(tt->run_dir) + 16;
	char *meta = xrealloc(e, NULL, n, 1);
	snprintf(meta, n, "%s/meta.yaml", tt->run_dir);
	if (access(meta, R_OK) != 0)
		bio_tool_die(e->t, "%s: %s (not a tracking run)", meta, strerror(errno));
	free(meta);
}

/* The status the run's meta.yaml holds now (RUNNING when unreadable). */
static int track_status(const struct track_target *tt)
{
	struct bio_error err = {0};
	int status = BIO_TRACK_RUNNING;
	if (bio_track_run_read_status(&status, tt->run_dir, &err) < 0)
		status = BIO_TRACK_RUNNING;
	return status;
}

static void track_metric(struct eval *e, struct bio_track_run *run, const char *mod,
			 const char *name, int ok, double v)
{
	struct bio_error err = {0};
	if (!ok)
		return;
	char key[128];
	if (mod)
		snprintf(key, sizeof key, "eval_%s_%s", mod, name);
	else
		snprintf(key, sizeof key, "eval_%s", name);
	if (bio_track_log_metric(run, key, v, 0, 0, &err) < 0)
		bio_tool_die_err(e->t, &err);
}

/* Logs every regular file of dir (not hidden) as an artifact under subdir. */
static void track_dir(struct eval *e, struct bio_track_run *run, const char *dir,
		      const char *subdir)
{
	struct bio_error err = {0};
	DIR *d = opendir(dir);
	if (!d)
		bio_tool_die(e->t, "%s: %s", dir, strerror(errno));
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		size_t n = strlen(dir) + strlen(de->d_name) + 2;
		char *p = xrealloc(e, NULL, n, 1);
		snprintf(p, n, "%s/%s", dir, de->d_name);
		struct stat sb;
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    bio_track_log_artifact(run, p, subdir, &err) < 0)
			bio_tool_die_err(e->t, &err);
		free(p);
	}
	closedir(d);
}

/* Logs the figures as metrics (step 0) and the report, curves and plots as artifacts under
 * eval/ of the run; the run keeps the status it had. */
static void track_log(struct eval *e, const struct track_target *tt, const char *report_path,
		      const char *curves, const char *plots)
{
	struct bio_error err = {0};
	int status = tt->server ? BIO_TRACK_RUNNING : track_status(tt);
	struct bio_track_opts o;
	if (bio_track_opts_from_config(&o, e->t->cfg, &err))
		bio_tool_die_err(e->t, &err);
	/* a server run: journaled in tracking.cache_dir's spool, its status left as it is */
	struct bio_track_run *run = tt->server
					    ? bio_track_run_open_opts(tt->server, &o, tt->run_id, &err)
					    : bio_track_run_open(tt->root, tt->run_id, &err);
	if (!run)
		bio_tool_die_err(e->t, &err);
	if (e->has_closed) {
		size_t k = (size_t)e->topk < e->topk_seen ? (size_t)e->topk : e->topk_seen;
		char name[32];
		snprintf(name, sizeof name, "top%lld", (long long)e->topk);
		track_metric(e, run, NULL, "accuracy", 1,
			     (double)e->conf.n_correct / (double)e->conf.n_total);
		track_metric(e, run, NULL, name, k == (size_t)e->topk,
			     (double)e->conf.n_topk / (double)e->conf.n_total);
	}
	for (int m = 0; m < e->n_mod; m++) {
		const struct modality *md = &e->mod[m];
		const struct bio_verif *v = &md->v;
		int ok = md->has_verif;
		track_metric(e, run, e->mod[m].name, "eer", ok, v->eer);
		track_metric(e, run, e->mod[m].name, "fnmr_at_fmr_1pct", ok, v->fnmr_at_fmr[0]);
		track_metric(e, run, e->mod[m].name, "fnmr_at_fmr_0_1pct", ok, v->fnmr_at_fmr[1]);
		track_metric(e, run, e->mod[m].name, "fnmr_at_fmr_0", ok, v->fnmr_at_fmr[2]);
		track_metric(e, run, e->mod[m].name, "zero_fnmr", ok, v->zero_fnmr);
		track_metric(e, run, e->mod[m].name, "auc", ok, v->auc);
		track_metric(e, run, e->mod[m].name, "rank1", md->has_cmc, bio_cmc_rank(&md->cmc, 1));
		track_metric(e, run, e->mod[m].name, "rank5", md->has_cmc, bio_cmc_rank(&md->cmc, 5));
		int ci = ok && md->has_ci && md->ci[0].n_valid > 0;
		track_metric(e, run, e->mod[m].name, "eer_ci95_lo", ci, md->ci[0].lo);
		track_metric(e, run, e->mod[m].name, "eer_ci95_hi", ci, md->ci[0].hi);
		track_metric(e, run, e->mod[m].name, "dev_fmr", md->has_dev, md->dev_fmr);
		track_metric(e, run, e->mod[m].name, "dev_fnmr", md->has_dev, md->dev_fnmr);
		track_metric(e, run, e->mod[m].name, "dev_hter", md->has_dev,
			     (md->dev_fmr + md->dev_fnmr) / 2.0);
	}
	if (bio_track_log_artifact(run, report_path, "eval", &err) < 0)
		bio_tool_die_err(e->t, &err);
	if (curves)
		track_dir(e, run, curves, "eval/curves");
	if (plots)
		track_dir(e, run, plots, "eval/plots");
	if (status >= BIO_TRACK_FINISHED && bio_track_run_end(run, status, &err) < 0)
		bio_tool_die_err(e->t, &err);
	if (tt->server && bio_track_flush_now(run, &err) < 0)
		bio_tool_warn(e->t, "%s", err.msg);
	bio_track_run_free(run);
}

/* ---- summary ---- */

static void cell(FILE *f, int ok, double v, int percent)
{
	if (!ok)
		fprintf(f, " %13s", "-");
	else if (percent)
		fprintf(f, " %12.2f%%", 100.0 * v);
	else
		fprintf(f, " %13.4f", v);
}

/* A 95% interval in percent, "lo-hi". */
static void ci_cell(FILE *f, int ok, const struct bio_boot_ci *ci)
{
	char buf[32];
	if (!ok || ci->n_valid == 0) {
		fprintf(f, " %13s", "-");
		return;
	}
	snprintf(buf, sizeof buf, "%.1f-%.1f%%", 100.0 * ci->lo, 100.0 * ci->hi);
	fprintf(f, " %13s", buf);
}

static void write_summary(struct eval *e, FILE *f)
{
	if (e->templates)
		fprintf(f, "bio-eval: %zu records (%zu labelled), %zu classes, probes against "
			"templates (%s of %lld/id)\n", e->n_records, e->n_labelled, e->n_classes,
			e->template_name, (long long)e->gallery);
	else
		fprintf(f, "bio-eval: %zu records (%zu labelled), %zu classes, %s pairs, gallery "
			"%lld/id\n", e->n_records, e->n_labelled, e->n_classes, e->protocol_name,
			(long long)e->gallery);
	fprintf(f, "%-16s", "");
	for (int m = 0; m < e->n_mod; m++)
		fprintf(f, " %13s", e->mod[m].name);
	fputc('\n', f);
	struct modality *md = e->mod;
	fprintf(f, "%-16s", "accuracy");
	for (int m = 0; m < e->n_mod - 1; m++)
		cell(f, 0, 0, 1);
	cell(f, e->has_closed, e->has_closed ? (double)e->conf.n_correct / e->conf.n_total : 0, 1);
	char topk_row[32];
	snprintf(topk_row, sizeof topk_row, "top-%lld", (long long)e->topk);
	fprintf(f, "\n%-16s", topk_row);
	for (int m = 0; m < e->n_mod - 1; m++)
		cell(f, 0, 0, 1);
	size_t k = (size_t)e->topk < e->topk_seen ? (size_t)e->topk : e->topk_seen;
	cell(f, e->has_closed && k == (size_t)e->topk,
	     e->has_closed ? (double)e->conf.n_topk / e->conf.n_total : 0, 1);
	static const char *rows[] = {"EER", "  95% CI", "FNMR@FMR=1%", "  95% CI",
				     "FNMR@FMR=0.1%", "FNMR@FMR=0", "ZeroFNMR (FMR)", "AUC",
				     "rank-1", "  95% CI", "rank-5", "dev threshold", "  FMR",
				     "  FNMR", "  HTER"};
	int n_rows = e->dev ? 15 : 11;
	for (int r = 0; r < n_rows; r++) {
		if ((r == 1 || r == 3 || r == 9) && e->n_boot == 0)
			continue;
		fprintf(f, "\n%-16s", rows[r]);
		for (int m = 0; m < e->n_mod; m++) {
			const struct bio_verif *v = &md[m].v;
			int ok = md[m].has_verif, d = md[m].has_dev;
			switch (r) {
			case 0: cell(f, ok, v->eer, 1); break;
			case 1: ci_cell(f, ok && md[m].has_ci, &md[m].ci[0]); break;
			case 2: cell(f, ok, v->fnmr_at_fmr[0], 1); break;
			case 3: ci_cell(f, ok && md[m].has_ci, &md[m].ci[1]); break;
			case 4: cell(f, ok, v->fnmr_at_fmr[1], 1); break;
			case 5: cell(f, ok, v->fnmr_at_fmr[2], 1); break;
			case 6: cell(f, ok, v->zero_fnmr, 1); break;
			case 7: cell(f, ok, v->auc, 0); break;
			case 8: cell(f, md[m].has_cmc, bio_cmc_rank(&md[m].cmc, 1), 1); break;
			case 9: ci_cell(f, md[m].has_ci_rank1, &md[m].ci_rank1); break;
			case 10: cell(f, md[m].has_cmc, bio_cmc_rank(&md[m].cmc, 5), 1); break;
			case 11: cell(f, d, md[m].dev_thr, 0); break;
			case 12: cell(f, d, md[m].dev_fmr, 1); break;
			case 13: cell(f, d, md[m].dev_fnmr, 1); break;
			default: cell(f, d, (md[m].dev_fmr + md[m].dev_fnmr) / 2.0, 1); break;
			}
		}
	}
	fprintf(f, "\n%-16s", "genuine pairs");
	for (int m = 0; m < e->n_mod; m++)
		fprintf(f, " %13zu", md[m].scores.n_genuine);
	fprintf(f, "\n%-16s", "impostor pairs");
	for (int m = 0; m < e->n_mod; m++)
		fprintf(f, " %13zu", md[m].scores.n_impostor);
	fputc('\n', f);
	if (e->sfuse.has_verif) {
		fprintf(f, "score-level fusion (z-norm sum of the modalities' scores): EER %.2f%%",
			100.0 * e->sfuse.v.eer);
		if (e->sfuse.has_ci && e->sfuse.ci[0].n_valid)
			fprintf(f, " [95%% CI %.2f-%.2f%%]", 100.0 * e->sfuse.ci[0].lo,
				100.0 * e->sfuse.ci[0].hi);
		fprintf(f, ", FNMR@FMR=1%% %.2f%%", 100.0 * e->sfuse.v.fnmr_at_fmr[0]);
		if (e->sfuse.has_ci && e->sfuse.ci[1].n_valid)
			fprintf(f, " [95%% CI %.2f-%.2f%%]", 100.0 * e->sfuse.ci[1].lo,
				100.0 * e->sfuse.ci[1].hi);
		fprintf(f, ", AUC %.4f\n", e->sfuse.v.auc);
	}
	if (e->n_boot > 0)
		fprintf(f, "95%% CI: %lld bootstrap replicates of the %zu subjects (seed %lld)\n",
			(long long)e->n_boot, e->n_units, (long long)e->boot_seed);
	if (e->dev)
		fprintf(f, "dev threshold: set at FMR %g on %s, applied here\n", e->dev_target,
			e->dev_path);
	for (int m = 0; m < e->n_mod; m++) {
		if (md[m].present && !md[m].has_verif)
			fprintf(f, "%s verification: %s\n", e->mod[m].name, md[m].verif_reason);
		if (md[m].present && !md[m].has_cmc)
			fprintf(f, "%s identification: %s\n", e->mod[m].name, md[m].cmc_reason);
	}
	int any = 0;
	for (int m = 0; m < e->n_mod; m++)
		any |= md[m].present;
	if (!any)
		fprintf(f, "no embeddings in the input (bio-infer --embeddings): verification and "
			   "identification skipped\n");
	if (!e->has_closed)
		fprintf(f, "closed-set: %s\n", e->closed_reason);
}

/* ---- main ---- */

static void free_eval(struct eval *e)
{
	free(e->src_program);
	free(e->src_version);
	free(e->src_model);
	free(e->src_digest);
	bio_header_destroy(&e->h);
	free(e->labels);
	free(e->preds);
	free(e->topk_ids);
	for (int m = 0; m < e->n_mod; m++) {
		struct modality *md = &e->mod[m];
		free(md->emb);
		bio_scores_destroy(&md->scores);
		free(md->roc);
		bio_cmc_destroy(&md->cmc);
		free(md->hist_gen);
		free(md->hist_imp);
	}
	for (int m = 0; m < e->n_mod; m++) {
		bio_scores_destroy(&e->mod[m].raw);
		free(e->mod[m].name);
		free(e->mod[m].key);
	}
	bio_scores_destroy(&e->sfuse.scores);
	free(e->units);
	if (e->has_closed)
		bio_confusion_destroy(&e->conf);
}

int main(int argc, char **argv)
{
	enum {
		OPT_CURVES = 0x2000,
		OPT_PLOTS,
		OPT_RUN_DIR,
		OPT_PROTOCOL,
		OPT_GALLERY,
		OPT_SCORES,
		OPT_TRACK,
		OPT_ENROL,
		OPT_DEV,
		OPT_TEMPLATE,
		OPT_BOOTSTRAP,
	};
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"curves", required_argument, 0, OPT_CURVES},
		{"plots", required_argument, 0, OPT_PLOTS},
		{"run-dir", required_argument, 0, OPT_RUN_DIR},
		{"protocol", required_argument, 0, OPT_PROTOCOL},
		{"gallery", required_argument, 0, OPT_GALLERY},
		{"scores", no_argument, 0, OPT_SCORES},
		{"track-run", required_argument, 0, OPT_TRACK},
		{"enrol", required_argument, 0, OPT_ENROL},
		{"enroll", required_argument, 0, OPT_ENROL},
		{"dev", required_argument, 0, OPT_DEV},
		{"template", required_argument, 0, OPT_TEMPLATE},
		{"bootstrap", required_argument, 0, OPT_BOOTSTRAP},
		{"quiet", no_argument, 0, 'q'},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	const char *curves = NULL, *plots = NULL, *run_dir = NULL, *protocol = NULL, *track = NULL;
	const char *enrol = NULL, *dev = NULL;
	long long gallery = -1;
	int quiet = 0, with_scores = 0, opt;

	bio_tool_init(&t, "bio-eval", argc, argv);
	while ((opt = getopt_long(argc, argv, BIO_TOOL_SHORT_OPTS "q", long_opts, NULL)) != -1) {
		if (bio_tool_common_opt(&t, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			usage(stdout);
			return BIO_EXIT_OK;
		case OPT_CURVES:
			curves = optarg;
			break;
		case OPT_PLOTS:
			plots = optarg;
			break;
		case OPT_RUN_DIR:
			run_dir = optarg;
			break;
		case OPT_PROTOCOL:
			protocol = optarg;
			bio_tool_option_key(&t, "--protocol", "eval.protocol", optarg);
			break;
		case OPT_GALLERY:
			gallery = bio_tool_parse_count(&t, "--gallery", optarg, 1, 1000000);
			bio_tool_option_key(&t, "--gallery", "eval.gallery", optarg);
			break;
		case OPT_SCORES:
			with_scores = 1;
			break;
		case OPT_TRACK:
			track = optarg;
			break;
		case OPT_ENROL:
			enrol = optarg;
			break;
		case OPT_DEV:
			dev = optarg;
			break;
		case OPT_TEMPLATE:
			bio_tool_option_key(&t, "--template", "eval.template", optarg);
			break;
		case OPT_BOOTSTRAP:
			bio_tool_parse_count(&t, "--bootstrap", optarg, 0, 1000000);
			bio_tool_option_key(&t, "--bootstrap", "eval.bootstrap", optarg);
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			bio_tool_bad_option(&t, argv, BIO_TOOL_SHORT_OPTS "q", long_opts);
		}
	}
	if (with_scores && !curves)
		bio_tool_usage_error(&t, "--scores needs --curves DIR");
	if (run_dir && !plots)
		bio_tool_usage_error(&t, "--run-dir needs --plots DIR");
	bio_tool_load_config(&t);

	struct eval e = {.t = &t};
	const char *proto_cfg;
	if (bio_config_get_int_range(t.cfg, "eval.topk", 1, 1000, &e.topk, &err) < 0 ||
	    bio_config_get_int_range(t.cfg, "eval.gallery", 1, 1000000, &e.gallery, &err) < 0 ||
	    bio_config_get_int_range(t.cfg, "eval.histogram_bins", 1, 100000, &e.bins, &err) <
		    0 ||
	    bio_config_get_int_range(t.cfg, "eval.max_pairs", 1, INT64_MAX / 16,
				     &e.max_pairs, &err) < 0 ||
	    bio_config_get_double_range(t.cfg, "eval.curve_resolution", 0.0, 1.0,
					&e.resolution, &err) < 0 ||
	    bio_config_get_int_range(t.cfg, "eval.plot_width", 200, 8000, &e.width, &err) <
		    0 ||
	    bio_config_get_int_range(t.cfg, "eval.plot_height", 150, 8000, &e.height, &err) <
		    0 ||
	    bio_config_get_str(t.cfg, "eval.protocol", &proto_cfg, &err) < 0 ||
	    bio_config_get_str(t.cfg, "eval.template", &e.template_name, &err) < 0 ||
	    bio_config_get_int_range(t.cfg, "eval.bootstrap", 0, 1000000, &e.n_boot, &err) < 0 ||
	    bio_config_get_int(t.cfg, "eval.bootstrap_seed", &e.boot_seed, &err) < 0 ||
	    bio_config_get_double_range(t.cfg, "eval.dev_fmr", 0.0, 1.0, &e.dev_target, &err) < 0)
		bio_tool_die_err(&t, &err);
	if (strcmp(e.template_name, "mean") == 0) {
		e.templates = 1;
		e.template_kind = BIO_TEMPLATE_MEAN;
	} else if (strcmp(e.template_name, "all") == 0) {
		e.templates = 1;
		e.template_kind = BIO_TEMPLATE_MAX;
	} else if (strcmp(e.template_name, "pairs") != 0) {
		bio_config_error(t.cfg, "eval.template", &err, BIO_EINVAL,
				 "expected pairs, mean or all, got '%s'", e.template_name);
		bio_tool_die_err(&t, &err);
	}
	if (gallery > 0)
		e.gallery = gallery;
	if (protocol) {
		if (strcmp(protocol, "all") != 0 && strcmp(protocol, "fvc") != 0)
			bio_tool_usage_error(&t, "--protocol: '%s' is not all or fvc", protocol);
		proto_cfg = protocol;
	} else if (strcmp(proto_cfg, "all") != 0 && strcmp(proto_cfg, "fvc") != 0) {
		bio_config_error(t.cfg, "eval.protocol", &err, BIO_EINVAL,
				 "'%s' is not all or fvc", proto_cfg);
		bio_tool_die_err(&t, &err);
	}
	e.protocol = strcmp(proto_cfg, "fvc") == 0 ? BIO_PAIRS_FVC : BIO_PAIRS_ALL;
	struct track_target tt = {0};
	if (track) {
		const char *uri;
		if (bio_config_get_str(t.cfg, "tracking.uri", &uri, &err) < 0)
			bio_tool_die_err(&t, &err);
		struct stat tsb;
		if (bio_track_uri_is_server(uri) && stat(track, &tsb) != 0) {
			tt.server = uri;
			tt.run_id = strdup(track);
			if (!tt.run_id)
				bio_tool_die(&t, "out of memory");
		} else {
			track_resolve(&e, &tt, track, uri);
			if (!run_dir)
				run_dir = tt.run_dir; /* training curves of the same run */
		}
	}
	e.protocol_name = e.protocol == BIO_PAIRS_FVC ? "fvc" : "all";
	static const char *const eval_keys[] = {"eval"};
	if (bio_config_digest(t.cfg, eval_keys, 1, e.config_digest, &err) < 0)
		bio_tool_die_err(&t, &err);
	static char *stdin_name[] = {"-"};
	e.inputs = optind < argc ? argv + optind : stdin_name;
	e.n_inputs = optind < argc ? argc - optind : 1;

	/* Read everything first: bad input fails before any output exists. */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	read_meta(&e, r);
	read_records(&e, r);
	char *src = strdup(bio_stream_reader_source(r));
	bio_stream_reader_free(r);
	if (!src)
		bio_tool_die(&t, "out of memory");
	if (e.n_records == 0)
		bio_tool_die(&t, "%s: no records to evaluate", src);

	struct eval en = {.t = &t, .topk = e.topk};
	if (enrol) {
		read_side(&e, &en, enrol, "to enrol", "--enrol");
		int same = en.n_label_names == e.n_label_names;
		for (size_t i = 0; same && i < e.n_label_names; i++)
			same = strcmp(en.label_names[i], e.label_names[i]) == 0;
		if (!same)
			bio_tool_die(&t, "%s: its label names differ from the input's: not the same "
					 "identities",
				     enrol);
		en.n_classes = en.n_label_names ? en.n_label_names : (size_t)(en.max_label + 1);
		e.enrol = &en;
		e.enrol_path = enrol;
	}
	/* --dev: the same comparisons on the dev set, for its thresholds */
	struct eval dv = {.t = &t, .topk = e.topk, .gallery = e.gallery, .bins = e.bins,
			  .max_pairs = e.max_pairs, .resolution = e.resolution,
			  .protocol = e.protocol, .templates = e.templates,
			  .template_kind = e.template_kind, .enrol = e.enrol,
			  .enrol_path = e.enrol_path};
	if (dev) {
		read_side(&e, &dv, dev, "to set thresholds on", "--dev");
		for (int m = 0; m < e.n_mod; m++)
			if (dv.mod[m].present && e.mod[m].present && dv.mod[m].dim != e.mod[m].dim)
				bio_tool_die(&t, "%s (--dev): %s has %zu values, the input %zu", dev,
					     e.mod[m].key, dv.mod[m].dim, e.mod[m].dim);
		e.dev = &dv;
		e.dev_path = dev;
	}
	compute_closed(&e);
	if (e.templates && !e.enrol)
		check_gallery(&e, src);
	free(src);
	if (e.n_boot > 0)
		boot_units(&e);
	for (int m = 0; m < e.n_mod; m++)
		compute_modality(&e, &e.mod[m]);
	compute_score_fusion(&e);
	if (dev) {
		compute_closed(&dv);
		if (dv.templates && !dv.enrol)
			check_gallery(&dv, dev);
		for (int m = 0; m < dv.n_mod; m++)
			compute_modality(&dv, &dv.mod[m]);
		compute_dev(&e);
	}
	if (plots && !bio_plot_available())
		bio_tool_die(&t, "--plots: cannot run %s (install gnuplot-nox, or set BIO_GNUPLOT)",
			     getenv("BIO_GNUPLOT") ? getenv("BIO_GNUPLOT") : "gnuplot");

	FILE *out = bio_tool_output_open(&t);
	if (curves)
		write_curves(&e, curves, with_scores);
	if (plots) {
		write_plots(&e, plots);
		if (run_dir)
			plot_training(&e, plots, run_dir, run_dir != tt.run_dir);
	}
	write_report(&e, out);
	bio_tool_output_commit(&t);
	pending_commit(&e);
	if (track) {
		/* the report as an artifact: the -o file, or a copy when it went to stdout */
		char tmpdir[] = "/tmp/bio-eval-XXXXXX", *copy = NULL;
		const char *report_path = t.output;
		if (!report_path) {
			if (!mkdtemp(tmpdir))
				bio_tool_die(&t, "temp directory: %s", strerror(errno));
			size_t n = strlen(tmpdir) + 16;
			copy = xrealloc(&e, NULL, n, 1);
			snprintf(copy, n, "%s/report.yaml", tmpdir);
			FILE *f = fopen(copy, "w");
			if (!f)
				bio_tool_die(&t, "%s: %s", copy, strerror(errno));
			write_report(&e, f);
			if (fclose(f) != 0)
				bio_tool_die(&t, "%s: write error", copy);
			report_path = copy;
		}
		track_log(&e, &tt, report_path, curves, plots);
		if (copy) {
			unlink(copy);
			rmdir(tmpdir);
			free(copy);
		}
		free(tt.root);
		free(tt.run_id);
		free(tt.run_dir);
	}
	if (!quiet)
		write_summary(&e, stderr);
	free_eval(&e);
	if (enrol)
		free_eval(&en);
	if (dev) {
		dv.enrol = NULL;
		free_eval(&dv);
	}
	bio_config_free(t.cfg);
	return BIO_EXIT_OK;
}
