/* Evaluation of predictions streams, the words (see eval.h): the YAML report (every figure of
 * every section, nulls with the reason where a figure is missing, provenance) and the summary
 * table, the sections side by side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval_priv.h"

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

/* A 95% interval as [lo, hi] (null when not computed or no replicate was valid). */
static void put_ci(FILE *f, const char *indent, const char *key, int ok,
		   const struct bio_boot_ci *ci)
{
	if (ok && ci->n_valid > 0)
		fprintf(f, "%s%s: [%.10g, %.10g]\n", indent, key, ci->lo, ci->hi);
	else
		fprintf(f, "%s%s: null\n", indent, key);
}

/* The verification block of a report section (figures, or nulls and the reason); with dev, the
 * threshold set on the dev set. */
static void put_verification(FILE *f, const struct eval_section *md, int dev)
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

void eval_write_report(const struct eval_set *e, FILE *f)
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
		const struct eval_section *md = &e->mod[m];
		fprintf(f, "%s:\n", e->mod[m].name);
		fprintf(f, "  embeddings: %s\n", md->present ? "true" : "false");
		if (md->present)
			fprintf(f, "  dim: %zu\n", md->dim);
		if (m == e->n_mod - 1) {
			/* closed-set figures come from pred/topk, i.e. the fused classifier */
			size_t k = eval_topk_k(e);
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
		const struct eval_section *md = &e->sfuse;
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
	const struct eval_set *src[3] = {e, e->enrol, e->dev};
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

static void write_summary(const struct eval_set *e, FILE *f)
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
	const struct eval_section *md = e->mod;
	fprintf(f, "%-16s", "accuracy");
	for (int m = 0; m < e->n_mod - 1; m++)
		cell(f, 0, 0, 1);
	cell(f, e->has_closed, e->has_closed ? (double)e->conf.n_correct / e->conf.n_total : 0, 1);
	char topk_row[32];
	snprintf(topk_row, sizeof topk_row, "top-%lld", (long long)e->topk);
	fprintf(f, "\n%-16s", topk_row);
	for (int m = 0; m < e->n_mod - 1; m++)
		cell(f, 0, 0, 1);
	size_t k = eval_topk_k(e);
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


void bio_eval_write_report(const struct bio_eval *ev, FILE *f)
{
	eval_write_report(&ev->in, f);
}

void bio_eval_write_summary(const struct bio_eval *ev, FILE *f)
{
	write_summary(&ev->in, f);
}
