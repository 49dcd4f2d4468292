/* Evaluation of predictions streams, the files (see eval.h): CSV curves (ROC, DET, CMC,
 * histograms, scores, confusion, per class) and PNG plots (DET, ROC, CMC, score distributions,
 * a tracking run's training curves). Curves and plots appear as one set or not at all: each file
 * is written to a temp beside its final name (".<name>.tmp<PID>", a dead writer's left-overs
 * removed first) and stays pending until bio_eval_commit_files renames them all; freeing the
 * evaluation before removes the temps and the folders made for them when left empty. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bio/csv.h"
#include "bio/fs.h"
#include "bio/plot.h"
#include "bio/stale.h"
#include "bio/track.h"
#include "eval_priv.h"
#include "free_list.h"

/* ---- pending files ---- */

void eval_pending_discard(struct eval_pending *p)
{
	if (!p->done) {
		for (size_t i = 0; i < p->n; i++)
			unlink(p->tmp[i]);
		for (size_t i = p->n_dirs; i-- > 0;)
			rmdir(p->dirs[i]);
	}
	for (size_t i = 0; i < p->n; i++) {
		free(p->tmp[i]);
		free(p->path[i]);
	}
	free(p->tmp);
	free(p->path);
	for (size_t i = 0; i < p->n_dirs; i++)
		free(p->dirs[i]);
	memset(p, 0, sizeof *p);
}

/* Adds tmp and path (both taken, freed on failure too) to the pending files. */
static int pending_add(struct eval_pending *p, char *tmp, char *path, struct bio_error *err)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 32;
		char **t = realloc(p->tmp, cap * sizeof *t);
		if (t)
			p->tmp = t;
		char **q = t ? realloc(p->path, cap * sizeof *q) : NULL;
		if (!q) {
			free(tmp);
			free(path);
			return bio_error_set(err, BIO_ENOMEM, "out of memory");
		}
		p->path = q;
		p->cap = cap;
	}
	p->tmp[p->n] = tmp;
	p->path[p->n++] = path;
	return 0;
}

int bio_eval_commit_files(struct bio_eval *ev, struct bio_error *err)
{
	struct eval_pending *p = &ev->pending;
	for (size_t i = 0; i < p->n; i++)
		if (rename(p->tmp[i], p->path[i]) != 0)
			return bio_error_set(err, BIO_EIO, "%s: %s", p->path[i], strerror(errno));
	p->done = 1;
	return 0;
}

/* dir/name and the temp to write it as (new, pending), a dead writer's temps removed. */
static int pending_names(struct eval_pending *p, const char *dir, const char *name, char **tmp,
			 char **path, struct bio_error *err)
{
	size_t n = strlen(dir) + strlen(name) + 32;
	*path = malloc(n);
	*tmp = malloc(n);
	if (!*path || !*tmp) {
		free(*path);
		free(*tmp);
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	snprintf(*path, n, "%s/%s", dir, name);
	snprintf(*tmp, n, ".%s.tmp", name);
	bio_remove_stale_temps(dir, *tmp); /* what a killed run left */
	snprintf(*tmp, n, "%s/.%s.tmp%ld", dir, name, (long)getpid());
	return pending_add(p, *tmp, *path, err);
}

/* A curve file being written. */
struct afile {
	FILE *f;
	char *tmp, *path;
};

static int afile_open(struct eval_pending *p, struct afile *a, const char *dir, const char *name,
		      struct bio_error *err)
{
	size_t n = strlen(dir) + strlen(name) + 32;
	a->path = malloc(n);
	a->tmp = malloc(n);
	if (!a->path || !a->tmp) {
		free(a->path);
		free(a->tmp);
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	snprintf(a->path, n, "%s/%s", dir, name);
	snprintf(a->tmp, n, ".%s.tmp", name);
	bio_remove_stale_temps(dir, a->tmp); /* what a killed run left */
	snprintf(a->tmp, n, "%s/.%s.tmp%ld", dir, name, (long)getpid());
	a->f = fopen(a->tmp, "w");
	if (!a->f) {
		int en = errno;
		bio_error_set(err, BIO_EIO, "%s: %s", a->path, strerror(en));
		free(a->tmp);
		free(a->path);
		return BIO_EIO;
	}
	int rc = pending_add(p, a->tmp, a->path, err);
	if (rc < 0)
		fclose(a->f);
	return rc;
}

/* Closes a curve file (pending until bio_eval_commit_files); a write error names the file. */
static int afile_close(struct afile *a, struct bio_error *err)
{
	int en = 0;
	errno = 0;
	if (fflush(a->f) != 0 || ferror(a->f))
		en = errno ? errno : EIO;
	if (fclose(a->f) != 0 && !en)
		en = errno ? errno : EIO;
	if (en)
		return bio_error_set(err, BIO_EIO, "%s: write error: %s", a->path, strerror(en));
	return 0;
}

/* mkdir -p dir; a folder made here is removed when left empty by a failed run. */
static int make_dir(struct eval_pending *p, const char *dir, struct bio_error *err)
{
	struct stat sb;
	const int existed = stat(dir, &sb) == 0;
	int rc = bio_fs_mkdir_p(dir, err);
	if (rc < 0)
		return rc;
	char *d = existed ? NULL : strdup(dir);
	if (d && p->n_dirs < sizeof p->dirs / sizeof p->dirs[0])
		p->dirs[p->n_dirs++] = d;
	else
		free(d);
	return 0;
}

/* ---- CSV curves ---- */

static void put_class_name(const struct eval_set *e, FILE *f, size_t k)
{
	if (k < e->n_label_names)
		bio_csv_put_field(f, e->label_names[k]);
	else
		fprintf(f, "%zu", k);
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

#define NUM(i, v) num_short(nbuf[i], (v))

/* dir/name: a "genuine,score" line per score of s (genuine 1, impostor 0). */
static int write_scores(struct eval_pending *p, const char *dir, const char *name,
			const struct bio_scores *s, struct bio_error *err)
{
	char nbuf[1][32];
	struct afile a;
	int rc = afile_open(p, &a, dir, name, err);
	if (rc < 0)
		return rc;
	fputs("genuine,score\n", a.f);
	for (size_t i = 0; i < s->n_genuine; i++)
		fprintf(a.f, "1,%s\n", NUM(0, s->genuine[i]));
	for (size_t i = 0; i < s->n_impostor; i++)
		fprintf(a.f, "0,%s\n", NUM(0, s->impostor[i]));
	return afile_close(&a, err);
}

/* What a curve's row function reads: the set and its section. */
struct curve {
	const struct eval_set *e;
	const struct eval_section *md;
};

static void roc_row(FILE *f, size_t i, const struct curve *c)
{
	char nbuf[4][32];
	const struct bio_roc_point *pt = &c->md->roc[i];
	fprintf(f, "%s,%s,%s,%s\n", NUM(0, pt->threshold), NUM(1, pt->fmr), NUM(2, pt->fnmr),
		NUM(3, 1.0 - pt->fnmr));
}

static void det_row(FILE *f, size_t i, const struct curve *c)
{
	char nbuf[5][32];
	const struct bio_roc_point *pt = &c->md->roc[i];
	fprintf(f, "%s,%s,%s,%s,%s\n", NUM(0, pt->threshold), NUM(1, pt->fmr), NUM(2, pt->fnmr),
		NUM(3, bio_ppndf(pt->fmr)), NUM(4, bio_ppndf(pt->fnmr)));
}

static void hist_row(FILE *f, size_t i, const struct curve *c)
{
	char nbuf[2][32];
	const struct eval_section *md = c->md;
	int64_t b = (int64_t)i, bins = c->e->bins;
	double step = (md->hist_hi - md->hist_lo) / (double)bins;
	fprintf(f, "%s,%s,%llu,%llu\n", NUM(0, md->hist_lo + (double)b * step),
		NUM(1, b + 1 == bins ? md->hist_hi : md->hist_lo + (double)(b + 1) * step),
		(unsigned long long)md->hist_gen[b], (unsigned long long)md->hist_imp[b]);
}

static void cmc_row(FILE *f, size_t r, const struct curve *c)
{
	char nbuf[1][32];
	fprintf(f, "%zu,%s\n", r + 1, NUM(0, c->md->cmc.rate[r]));
}

/* dir/<prefix>_<section>.csv: the header line, then row(f, i, c) for each i < n_rows. */
static int write_curve(struct eval_pending *p, const char *dir, const char *prefix,
		       const char *header, size_t n_rows,
		       void (*row)(FILE *f, size_t i, const struct curve *c), const struct curve *c,
		       struct bio_error *err)
{
	char name[64];
	struct afile a;
	snprintf(name, sizeof name, "%s_%s.csv", prefix, c->md->name);
	int rc = afile_open(p, &a, dir, name, err);
	if (rc < 0)
		return rc;
	fprintf(a.f, "%s\n", header);
	for (size_t i = 0; i < n_rows; i++)
		row(a.f, i, c);
	return afile_close(&a, err);
}

/* roc_, det_, hist_, cmc_ and (with_scores) scores_<section>.csv of section md. */
static int write_section_curves(struct eval_pending *p, const struct eval_set *e,
				const struct eval_section *md, const char *dir, int with_scores,
				struct bio_error *err)
{
	const struct curve c = {e, md};
	char name[64];
	int rc;
	if (md->has_verif &&
	    ((rc = write_curve(p, dir, "roc", "threshold,fmr,fnmr,tmr", md->n_roc, roc_row, &c,
			       err)) < 0 ||
	     (rc = write_curve(p, dir, "det", "threshold,fmr,fnmr,probit_fmr,probit_fnmr",
			       md->n_roc, det_row, &c, err)) < 0))
		return rc;
	if (md->hist_gen && (rc = write_curve(p, dir, "hist", "bin_lo,bin_hi,genuine,impostor",
					      (size_t)e->bins, hist_row, &c, err)) < 0)
		return rc;
	if (md->has_cmc &&
	    (rc = write_curve(p, dir, "cmc", "rank,rate", md->cmc.n_ranks, cmc_row, &c, err)) < 0)
		return rc;
	if (with_scores && md->present && md->scores.n_genuine + md->scores.n_impostor > 0) {
		snprintf(name, sizeof name, "scores_%s.csv", md->name);
		return write_scores(p, dir, name, &md->scores, err);
	}
	return 0;
}

/* confusion.csv and per_class.csv. */
static int write_closed_curves(struct eval_pending *p, const struct eval_set *e, const char *dir,
			       struct bio_error *err)
{
	char nbuf[2][32];
	size_t n = e->n_classes;
	struct afile a;
	int rc = afile_open(p, &a, dir, "confusion.csv", err);
	if (rc < 0)
		return rc;
	fputs("true\\pred", a.f);
	for (size_t j = 0; j < n; j++) {
		fputc(',', a.f);
		put_class_name(e, a.f, j);
	}
	fputc('\n', a.f);
	for (size_t i = 0; i < n; i++) {
		put_class_name(e, a.f, i);
		for (size_t j = 0; j < n; j++)
			fprintf(a.f, ",%llu", (unsigned long long)e->conf.counts[i * n + j]);
		fputc('\n', a.f);
	}
	if ((rc = afile_close(&a, err)) < 0 ||
	    (rc = afile_open(p, &a, dir, "per_class.csv", err)) < 0)
		return rc;
	fputs("label,name,support,predicted,precision,recall\n", a.f);
	for (size_t k = 0; k < n; k++) {
		double pr, rc_;
		uint64_t sup, npred;
		bio_confusion_class(&e->conf, k, &pr, &rc_, &sup, &npred);
		fprintf(a.f, "%zu,", k);
		put_class_name(e, a.f, k);
		fprintf(a.f, ",%llu,%llu,%s,%s\n", (unsigned long long)sup,
			(unsigned long long)npred, NUM(0, pr), NUM(1, rc_));
	}
	return afile_close(&a, err);
}

#undef NUM

int bio_eval_write_curves(struct bio_eval *ev, const char *dir, int with_scores,
			  struct bio_error *err)
{
	const struct eval_set *e = &ev->in;
	struct eval_pending *p = &ev->pending;
	int rc = make_dir(p, dir, err);
	if (rc < 0)
		return rc;
	for (int m = 0; m < e->n_mod; m++)
		if ((rc = write_section_curves(p, e, &e->mod[m], dir, with_scores, err)) < 0)
			return rc;
	if (with_scores && e->sfuse.has_verif &&
	    (rc = write_scores(p, dir, "scores_score_fusion.csv", &e->sfuse.scores, err)) < 0)
		return rc;
	return e->has_closed ? write_closed_curves(p, e, dir, err) : 0;
}

/* ---- plots ---- */

static int plot(struct eval_pending *p, const char *dir, const char *name,
		const struct bio_plot_panel *panels, size_t n, size_t cols, int w, int h,
		struct bio_error *err)
{
	char *tmp, *path;
	int rc = pending_names(p, dir, name, &tmp, &path, err);
	if (rc < 0)
		return rc;
	if ((rc = bio_plot_png(tmp, panels, n, cols, w, h, err)) < 0 && err) {
		/* the message names the temp file: say the final one */
		char m[BIO_ERROR_MSG_MAX];
		memcpy(m, err->msg, sizeof m);
		const char *rest = m;
		if (strncmp(rest, tmp, strlen(tmp)) == 0)
			rest += strlen(tmp);
		bio_error_set(err, rc, "%s%s", path, rest);
	}
	return rc;
}

/* Smallest power of ten at or below p, within [1e-6, 1e-2]. */
static double decade_floor(double p)
{
	double d = pow(10.0, floor(log10(p)));
	return d < 1e-6 ? 1e-6 : d > 1e-2 ? 1e-2 : d;
}

/* DET, ROC and CMC of every section, one series per section. */
static int plot_curves(struct eval_pending *p, const struct eval_set *e, const char *dir,
		       struct bio_error *err)
{
	int w = (int)e->width, h = (int)e->height, rc = 0;
	struct bio_plot_series det[EVAL_N_MOD_MAX], roc[EVAL_N_MOD_MAX], cmc[EVAL_N_MOD_MAX];
	double *buf[EVAL_N_MOD_MAX][4] = {{0}};
	char titles[EVAL_N_MOD_MAX][96];
	size_t n_det = 0, n_cmc = 0;
	double lo_x = 1e-2, lo_y = 1e-2; /* one decade below the finest FMR / FNMR step */
	for (int m = 0; m < e->n_mod && rc == 0; m++) {
		const struct eval_section *md = &e->mod[m];
		if (md->has_verif) {
			size_t n = md->n_roc;
			double *fmr = buf[m][0] = malloc((n ? n : 1) * sizeof(double));
			double *fnmr = buf[m][1] = malloc((n ? n : 1) * sizeof(double));
			double *tmr = buf[m][2] = malloc((n ? n : 1) * sizeof(double));
			if (!fmr || !fnmr || !tmr) {
				rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
				break;
			}
			for (size_t i = 0; i < n; i++) {
				fmr[i] = md->roc[i].fmr;
				fnmr[i] = md->roc[i].fnmr;
				tmr[i] = 1.0 - md->roc[i].fnmr;
			}
			snprintf(titles[m], sizeof titles[m], "%s (EER %.2f%%)", md->name,
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
			double *rank = buf[m][3] = malloc((n ? n : 1) * sizeof(double));
			if (!rank) {
				rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
				break;
			}
			for (size_t r = 0; r < n; r++)
				rank[r] = (double)(r + 1);
			cmc[n_cmc++] = (struct bio_plot_series){md->name, rank, md->cmc.rate, n,
								BIO_STYLE_LINESPOINTS};
		}
	}
	if (rc == 0 && n_det) {
		struct bio_plot_panel pd = {
			.title = "DET", .xlabel = "False match rate (FMR)",
			.ylabel = "False non-match rate (FNMR)", .xscale = BIO_SCALE_PROBIT,
			.yscale = BIO_SCALE_PROBIT, .has_xrange = 1, .has_yrange = 1, .xmin = lo_x,
			.xmax = 0.5, .ymin = lo_y, .ymax = 0.5, .series = det, .n_series = n_det,
			.diagonal = 1, .key_pos = "bottom left"};
		struct bio_plot_panel pr = {
			.title = "ROC", .xlabel = "False match rate (FMR, log scale)",
			.ylabel = "True match rate (1 - FNMR)", .xscale = BIO_SCALE_LOG,
			.yscale = BIO_SCALE_LINEAR, .has_xrange = 1, .has_yrange = 1, .xmin = lo_x,
			.xmax = 1.0, .ymin = 0.0, .ymax = 1.0, .series = roc, .n_series = n_det};
		if ((rc = plot(p, dir, "det.png", &pd, 1, 1, w, h, err)) == 0)
			rc = plot(p, dir, "roc.png", &pr, 1, 1, w, h, err);
	}
	if (rc == 0 && n_cmc) {
		struct bio_plot_panel pc = {
			.title = "CMC (closed-set identification)", .xlabel = "Rank",
			.ylabel = "Identification rate", .has_yrange = 1, .ymin = 0.0,
			.ymax = 1.02, .series = cmc, .n_series = n_cmc, .integer_x = 1};
		rc = plot(p, dir, "cmc.png", &pc, 1, 1, w, h, err);
	}
	for (int m = 0; m < e->n_mod; m++)
		for (int k = 0; k < 4; k++)
			free(buf[m][k]);
	return rc;
}

/* The genuine and impostor score densities of section md, with its EER threshold. */
static int plot_histogram(struct eval_pending *p, const struct eval_set *e,
			  const struct eval_section *md, const char *dir, struct bio_error *err)
{
	size_t nb = (size_t)e->bins;
	double *x = malloc(nb * sizeof(double));
	double *yg = malloc(nb * sizeof(double));
	double *yi = malloc(nb * sizeof(double));
	int rc = 0;
	if (!x || !yg || !yi) {
		rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
		goto out;
	}
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
	snprintf(title, sizeof title, "Score distributions: %s", md->name);
	snprintf(vt, sizeof vt, "EER threshold %.4g", md->v.eer_threshold);
	struct bio_plot_series s[2] = {{ti, x, yi, nb, BIO_STYLE_BOXES},
				       {tg, x, yg, nb, BIO_STYLE_BOXES}};
	struct bio_plot_panel ph = {
		.title = title, .xlabel = "Cosine similarity", .ylabel = "Density",
		.series = s, .n_series = 2, .has_vline = md->has_verif,
		.vline = md->v.eer_threshold, .vline_title = vt, .key_pos = "top left"};
	snprintf(name, sizeof name, "hist_%s.png", md->name);
	rc = plot(p, dir, name, &ph, 1, 1, (int)e->width, (int)e->height, err);
out:
	BIO_FREE(x, yg, yi);
	return rc;
}

int bio_eval_write_plots(struct bio_eval *ev, const char *dir, struct bio_error *err)
{
	const struct eval_set *e = &ev->in;
	struct eval_pending *p = &ev->pending;
	int rc;
	if ((rc = make_dir(p, dir, err)) < 0 || (rc = plot_curves(p, e, dir, err)) < 0)
		return rc;
	for (int m = 0; m < e->n_mod; m++)
		if (e->mod[m].hist_gen && (rc = plot_histogram(p, e, &e->mod[m], dir, err)) < 0)
			return rc;
	return 0;
}

/* ---- training curves from a tracking run ---- */

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

/* The panel of a metric key: losses, rates (accuracy, ...), throughput, learning rate; -1 for
 * none. */
static int metric_panel(const char *k)
{
	return strstr(k, "loss")                                        ? 0
	       : strstr(k, "acc") || strstr(k, "rank") || strstr(k, "eer") ? 1
	       : strstr(k, "samples_per_s")                             ? 2
	       : strcmp(k, "lr") == 0 || strstr(k, "learning_rate")     ? 3
									: -1;
}

int bio_eval_plot_training(struct bio_eval *ev, const char *dir, const char *run_dir,
			   int required, struct bio_error *err)
{
	const struct eval_set *e = &ev->in;
	struct bio_track_series *all = NULL;
	size_t n_all = 0;
	int rc = bio_track_run_read_metrics(&all, &n_all, run_dir, err);
	if (rc == BIO_ENOTFOUND && !required) {
		bio_error_set(err, BIO_ENOTFOUND, "%s: no metrics: no training curves", run_dir);
		return 1;
	}
	if (rc < 0 && err) {
		char m[BIO_ERROR_MSG_MAX];
		memcpy(m, err->msg, sizeof m);
		bio_error_set(err, rc, "%s (--run-dir must be a tracking run directory)", m);
	}
	if (rc < 0)
		return rc;
	/* the series by key (the store's order), epochs counted from 1 as bio-train prints
	 * them; our own figures (eval_*, logged at step 0) left out */
	static const char *const titles[4] = {"Loss", "Accuracy", "Throughput", "Learning rate"};
	static const char *const ylabels[4] = {"Loss", "Rate", "Samples/s", "lr"};
	double *xs[64];
	size_t n = 0;
	struct bio_plot_series group[4][64];
	size_t n_in[4] = {0};
	for (size_t i = 0; i < n_all && n < 64; i++) {
		if (strncmp(all[i].key, "eval_", 5) == 0 || all[i].n == 0)
			continue;
		double *x = xs[n] = malloc(all[i].n * sizeof(double));
		if (!x) {
			rc = bio_error_set(err, BIO_ENOMEM, "out of memory");
			goto out;
		}
		n++;
		for (size_t k = 0; k < all[i].n; k++)
			x[k] = (double)all[i].steps[k] + 1;
		int g = metric_panel(all[i].key);
		if (g >= 0)
			group[g][n_in[g]++] = (struct bio_plot_series){metric_label(all[i].key), x,
								       all[i].values, all[i].n,
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
	if (np == 0) {
		rc = 1;
		bio_error_set(err, BIO_ENOTFOUND, "%s: no metrics to plot", run_dir);
	} else {
		rc = plot(&ev->pending, dir, "training_curves.png", panels, np, cols,
			  (int)(e->width * (int64_t)cols * 3 / 4 + 100),
			  (int)(e->height * (int64_t)rows * 3 / 4 + (rows == 1 ? e->height / 4 : 0)),
			  err);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(xs[i]);
	bio_track_series_free(all, n_all);
	return rc;
}
