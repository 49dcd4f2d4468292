/* What eval.c (reading, computing), eval_report.c (report, summary), eval_files.c (curves, plots)
 * and eval_track.c (tracking) share: one predictions stream and its figures, and the
 * evaluation of the input with its enrolment and dev sets. Not installed. */
#ifndef BIO_EVAL_PRIV_H
#define BIO_EVAL_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "bio/eval.h"
#include "bio/header.h"
#include "bio/metrics.h"

/* Report sections: each modality of the input (its header's meta.modalities, else the emb_*
 * keys of record 0), then "fused"; EVAL_N_MOD_MAX bounds them. */
#define EVAL_N_MOD_MAX (BIO_HEADER_MAX_MODS + 1)

/* One section: its embeddings and figures. */
struct eval_section {
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
	/* dev set: the threshold at eval.dev_fmr on the dev set, and the rates it gives here */
	int has_dev;
	char dev_reason[BIO_ERROR_MSG_MAX];
	double dev_thr, dev_fmr_dev, dev_fnmr_dev, dev_fmr, dev_fnmr;
};

/* One predictions stream (the input, its enrolment or its dev set), the settings it is
 * evaluated with, and its figures. */
struct eval_set {
	int n_threads;
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
	struct eval_section mod[EVAL_N_MOD_MAX];
	/* score-level fusion of the modalities: each modality's comparison scores z-normalised by
	 * its impostor scores' mean and standard deviation, then summed comparison by comparison */
	struct eval_section sfuse;
	uint32_t *units;            /* the bootstrap's subjects: the labels present, ascending */
	size_t n_units, n_boot_labels;
	/* results */
	size_t n_classes;
	size_t n_labelled, n_unknown;
	int has_closed;
	char closed_reason[256];
	struct bio_confusion conf;
	struct eval_set *enrol; /* the gallery's predictions, or NULL */
	const char *enrol_path;
	struct eval_set *dev;   /* the predictions the thresholds are set on, or NULL */
	const char *dev_path;
	/* provenance: what the input's header says made it (NULL when it does not say) */
	char *src_program, *src_version, *src_model, *src_digest;
	char *src;              /* the reader's name of the input */
	char *const *inputs;    /* the input files as given ("-": standard input) */
	int n_inputs;
	char config_digest[65]; /* of this run's eval.* configuration */
};

/* The tracking run to log to. */
struct eval_track {
	char *root, *run_id, *run_dir;
	const char *server; /* tracking.uri of a tracking server (then only run_id is set) */
};

/* Curve and plot files written to a temp beside their final name, renamed together. */
struct eval_pending {
	char **tmp, **path;
	size_t n, cap;
	char *dirs[4]; /* folders made for them, removed when left empty */
	size_t n_dirs;
	int done;
};

struct bio_eval {
	const struct bio_config *cfg;
	struct eval_set in, en, dv; /* the input, its enrolment, its dev set */
	struct eval_track track;
	struct eval_pending pending;
};

/* The smaller of the eval.topk asked and the top-k length every record has. */
static inline size_t eval_topk_k(const struct eval_set *e)
{
	return (size_t)e->topk < e->topk_seen ? (size_t)e->topk : e->topk_seen;
}

/* Writes the report of e to f (eval_report.c). */
void eval_write_report(const struct eval_set *e, FILE *f);
/* Removes the pending files and the folders made for them (eval_files.c). */
void eval_pending_discard(struct eval_pending *p);

#endif
