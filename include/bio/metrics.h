/* Biometric evaluation metrics: closed-set classification (accuracy, top-k, confusion, per-class
 * precision/recall), verification (genuine/impostor cosine scores, ROC/DET, EER, FNMR at fixed FMR,
 * ZeroFNMR, AUC, histograms) and closed-set identification (CMC, rank-k).
 *
 * Conventions (../shared/REFERENCE.md section 3): higher score = more similar; a comparison is a
 * match when score >= threshold, so FMR(t) = #impostor >= t / n_impostor and
 * FNMR(t) = #genuine < t / n_genuine (bob.measure's farfrr). The EER threshold is bob.measure's
 * eer_threshold (sweep over the merged sorted scores, midpoints between distinct scores, minimise
 * |FMR - FNMR|, last minimum wins) and the EER is (FMR + FNMR) / 2 there. FNMR at FMR = x is FVC's
 * FMR100/FMR1000/ZeroFMR: the lowest FNMR over all thresholds with FMR <= x. ZeroFNMR is the lowest
 * FMR with FNMR = 0. CMC ranks follow bob.measure: rank index = number of negatives >= the best
 * positive. */
#ifndef BIO_METRICS_H
#define BIO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bio/error.h"

/* ---- closed-set classification ---- */

struct bio_confusion {
	size_t n_classes;
	uint64_t *counts;   /* [n_classes][n_classes]: row = true label, column = predicted label */
	uint64_t n_total;   /* samples added */
	uint64_t n_correct; /* pred == label */
	uint64_t n_topk;    /* label among the top k */
};

/* Allocates a zeroed n_classes x n_classes matrix (caller-owned storage c). */
int bio_confusion_init(struct bio_confusion *c, size_t n_classes, struct bio_error *err);
void bio_confusion_destroy(struct bio_confusion *c);
/* Adds one sample; label and pred must lie in [0, n_classes) (BIO_EINVAL otherwise). */
int bio_confusion_add(struct bio_confusion *c, int64_t label, int64_t pred, int topk_hit,
		      struct bio_error *err);
/* Per-class figures of class k (scikit-learn's precision_recall_fscore_support with
 * zero_division=0): precision = tp / predicted (0 when nothing was predicted as k), recall =
 * tp / support (0 when k has no samples). *support = samples of k, *predicted = predictions of k. */
void bio_confusion_class(const struct bio_confusion *c, size_t k, double *precision,
			 double *recall, uint64_t *support, uint64_t *predicted);
/* 1 when label is among the first k entries of topk (n_topk entries available), else 0. */
int bio_topk_hit(const int64_t *topk, size_t n_topk, size_t k, int64_t label);

/* ---- scores ---- */

enum bio_pair_protocol {
	BIO_PAIRS_ALL, /* every pair i < j of labelled samples */
	BIO_PAIRS_FVC, /* genuine: every pair within an identity; impostor: the first sample of each
			* identity against the first sample of every other identity (FVC 2002) */
};

struct bio_scores {
	double *genuine;
	size_t n_genuine;
	double *impostor;
	size_t n_impostor;
	/* with_ids: who was compared (labels, for the subject bootstrap), in the scores' order:
	 * gen_id[i] = the identity of genuine score i; imp_id[2i], imp_id[2i+1] = the identities of
	 * impostor score i (the first sample or the probe, then the other or the template) */
	uint32_t *gen_id, *imp_id;
};

/* Cosine similarity dot(a,b) / sqrt(|a|^2 |b|^2) accumulated in double; 0 when a norm is 0. */
double bio_cosine(const float *a, const float *b, size_t dim);
/* Scores every pair of the protocol among n embeddings (emb: n x dim, borrowed) with labels >= 0
 * (samples with label < 0 are skipped). Fails with BIO_ELIMIT when more than max_pairs pairs
 * would be scored. Scores are listed in pair order (i, then j), whatever n_threads; with_ids
 * fills s->gen_id/imp_id too (labels must then be < 2^32). s is caller-owned storage; free with
 * bio_scores_destroy. */
int bio_scores_pairs(struct bio_scores *s, const float *emb, size_t n, size_t dim,
		     const int64_t *labels, enum bio_pair_protocol protocol, uint64_t max_pairs,
		     int with_ids, int n_threads, struct bio_error *err);

enum bio_template_kind {
	BIO_TEMPLATE_MEAN, /* one template per identity: the mean of its L2-normalised embeddings */
	BIO_TEMPLATE_MAX,  /* every enrolled sample kept: the best cosine with any of them */
};

struct bio_cmc;
/* Probe-versus-template comparison (open-set style enrolment). Samples with is_gallery[i] = 1 and
 * labels[i] >= 0 are enrolled: grouped by label into one template per identity (templates in
 * ascending label order); samples with is_gallery[i] = 0 and labels[i] >= 0 are probes. Every
 * probe (input order) is scored against every template: genuine when the labels agree, else
 * impostor (probes of identities without a template give impostor scores only). s gets the scores
 * in (probe, template) order with their ids; cmc (caller storage) the identification figures over
 * the templates: a mated probe's rank index is the number of other templates scoring >= its own
 * template; unmated probes are counted in n_unmated. Fails with BIO_EINVAL when no template or no
 * probe exists, BIO_ELIMIT beyond max_pairs comparisons. Free with bio_scores_destroy and
 * bio_cmc_destroy. */
int bio_scores_templates(struct bio_scores *s, struct bio_cmc *cmc, const float *emb, size_t n,
			 size_t dim, const int64_t *labels, const unsigned char *is_gallery,
			 enum bio_template_kind kind, uint64_t max_pairs, int n_threads,
			 struct bio_error *err);
void bio_scores_destroy(struct bio_scores *s);

/* Sorts x ascending (LSD radix sort on the IEEE bit patterns, O(n)). Fails with BIO_ENAN on a
 * NaN, BIO_ENOMEM. */
int bio_sort_scores(double *x, size_t n, struct bio_error *err);

/* ---- verification ---- */

#define BIO_N_FMR_TARGETS 3
/* FMR targets of fnmr_at_fmr[]: 1%, 0.1%, 0 (FVC's FMR100, FMR1000, ZeroFMR). */
extern const double bio_fmr_targets[BIO_N_FMR_TARGETS];

struct bio_verif {
	size_t n_genuine, n_impostor;
	double eer;           /* (FMR + FNMR) / 2 at eer_threshold */
	double eer_threshold; /* bob.measure eer_threshold */
	double eer_fmr, eer_fnmr;
	double fnmr_at_fmr[BIO_N_FMR_TARGETS];      /* lowest FNMR with FMR <= target */
	double threshold_at_fmr[BIO_N_FMR_TARGETS]; /* the lowest threshold reaching it */
	double fmr_at_target[BIO_N_FMR_TARGETS];    /* the FMR actually reached there */
	double zero_fnmr;           /* lowest FMR with FNMR = 0 */
	double zero_fnmr_threshold; /* the lowest genuine score */
	double auc;                 /* area under the ROC (ties count one half) */
};

/* The threshold set at an FMR target (FVC's FMR100 rule): the lowest threshold whose FMR <= target
 * over sorted scores, *fnmr the FNMR there (the same figures as bio_verif's fnmr_at_fmr). ng and
 * ni must be > 0. */
double bio_threshold_at_fmr(double *fnmr, double *fmr_reached, const double *gen_sorted,
			    size_t ng, const double *imp_sorted, size_t ni, double target);
/* FMR and FNMR at threshold t over sorted scores (binary search). ng and ni must be > 0. */
void bio_fmr_fnmr(double *fmr, double *fnmr, const double *gen_sorted, size_t ng,
		  const double *imp_sorted, size_t ni, double t);
/* Computes every verification figure from sorted scores. Fails with BIO_EINVAL and a message
 * ("no genuine scores", "no impostor scores") when either set is empty. */
int bio_verif_compute(struct bio_verif *v, const double *gen_sorted, size_t ng,
		      const double *imp_sorted, size_t ni, struct bio_error *err);

struct bio_roc_point {
	double threshold; /* accept when score >= threshold */
	double fmr, fnmr;
};

/* ROC/DET operating points from sorted scores, ascending threshold: one per distinct score, plus a
 * last one above every score (FMR 0, FNMR 1). resolution 0 keeps every point; r > 0 keeps a point
 * when the false-accept or false-reject count moved by more than r times its distance to the
 * nearer end since the last kept point (about 1/r points per decade on a log or probit axis),
 * always keeping the first and the last. *pts is returned new (caller frees). */
int bio_roc_curve(struct bio_roc_point **pts, size_t *n_pts, const double *gen_sorted, size_t ng,
		  const double *imp_sorted, size_t ni, double resolution, struct bio_error *err);

/* Normal deviate of cumulative probability p (NIST DETware 2.1 ppndf as in bob.measure; p is
 * clamped to [eps, 1 - eps]): 0.001 -> -3.090, 0.5 -> 0. */
double bio_ppndf(double p);

/* numpy.histogram(x, bins=n_bins, range=(lo, hi)) on n values: equal bins, the last one closed;
 * values outside [lo, hi] are not counted. counts has n_bins entries. When lo == hi the range
 * becomes [lo - 0.5, hi + 0.5] as numpy does. */
void bio_histogram(uint64_t *counts, size_t n_bins, double lo, double hi, const double *x,
		   size_t n);

/* ---- identification ---- */

/* bob.measure rank index of one probe: the number of negatives >= the best positive. */
size_t bio_probe_rank(const double *neg, size_t n_neg, const double *pos, size_t n_pos);

struct bio_cmc {
	size_t n_probes;
	size_t n_gallery;   /* gallery samples */
	size_t n_ids;       /* identities in the gallery */
	size_t n_unmated;   /* probes left out: no gallery sample of their identity */
	size_t n_ranks;     /* entries of rate[] (largest number of negatives + 1) */
	double *rate;       /* rate[r] = fraction of probes with rank index <= r */
	size_t *probe_rank; /* [n_probes] each scored probe's rank index, in probe order */
	uint32_t *probe_id; /* [n_probes] its label (for the subject bootstrap) */
};

/* Gallery/probe split in input order: the first gallery_per_id samples of each identity (label >=
 * 0) form the gallery, the rest are probes; each probe is compared (cosine) with every gallery
 * sample. Fails with BIO_EINVAL "no probes ..." when no identity has more than gallery_per_id
 * samples. cmc is caller-owned storage; free with bio_cmc_destroy. */
int bio_cmc_compute(struct bio_cmc *cmc, const float *emb, size_t n, size_t dim,
		    const int64_t *labels, size_t gallery_per_id, int n_threads,
		    struct bio_error *err);
/* The same with the roles given: is_gallery[i] 1 = gallery, 0 = probe (labels < 0 skipped).
 * Probes of an identity without gallery samples are left out and counted in n_unmated. Fails
 * with BIO_EINVAL when no probe or no gallery sample remains. */
int bio_cmc_compute_roles(struct bio_cmc *cmc, const float *emb, size_t n, size_t dim,
			  const int64_t *labels, const unsigned char *is_gallery, int n_threads,
			  struct bio_error *err);
/* Rank-k identification rate (k >= 1); rate of the last rank when k > n_ranks. */
double bio_cmc_rank(const struct bio_cmc *cmc, size_t k);
void bio_cmc_destroy(struct bio_cmc *cmc);

/* ---- confidence intervals: the subjects bootstrap ---- */

/* Figures of one replicate of bio_boot_verif: EER, then FNMR at each bio_fmr_targets[]. */
#define BIO_BOOT_N_VERIF (1 + BIO_N_FMR_TARGETS)

struct bio_boot_ci {
	double lo, hi;  /* 2.5 and 97.5 percentiles of the valid replicates (numpy's linear rule) */
	size_t n_valid; /* replicates where the figure is defined (0: lo = hi = NaN) */
};

/* Replicate b's weights: units[0..n_units) (distinct labels < n_labels) drawn n_units times with
 * replacement from the stream bio_rng_seed1(seed, b) (bio_rng_below(n_units) each); w[label] =
 * how often it was drawn (w has n_labels entries, zeroed here). */
void bio_boot_weights(uint32_t *w, const uint32_t *units, size_t n_units, size_t n_labels,
		      uint64_t seed, uint64_t b);
/* Percentile q in [0, 1] of sorted x (n > 0), linear between order statistics as
 * numpy.percentile's default: x[floor(h)] + (h - floor(h)) (x[floor(h) + 1] - x[floor(h)]),
 * h = q (n - 1). */
double bio_percentile(const double *sorted, size_t n, double q);
/* 95% intervals of the EER and of FNMR at each FMR target over n_rep replicates: each replicate
 * weighs genuine score i by w[gen_id[i]] and impostor score i by w[imp_id[2i]] w[imp_id[2i+1]]
 * (as if the drawn subjects' comparisons were repeated), then computes the figures as
 * bio_verif_compute would on the repeated scores; a replicate without genuine or impostor
 * weight is not valid. s must carry ids and be unsorted or sorted (it is not changed). Results
 * do not depend on n_threads. */
int bio_boot_verif(struct bio_boot_ci ci[BIO_BOOT_N_VERIF], const struct bio_scores *s,
		   const uint32_t *units, size_t n_units, size_t n_labels, size_t n_rep,
		   uint64_t seed, int n_threads, struct bio_error *err);
/* 95% interval of the rank-1 rate: each replicate weighs probe p by w[cmc->probe_id[p]] (the
 * gallery kept as it is). */
int bio_boot_rank1(struct bio_boot_ci *ci, const struct bio_cmc *cmc, const uint32_t *units,
		   size_t n_units, size_t n_labels, size_t n_rep, uint64_t seed,
		   struct bio_error *err);

#endif
