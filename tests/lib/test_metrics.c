/* Unit tests of lib/metrics.c on small hand-computed cases: EER (bob.measure's threshold sweep) with
 * ties, equal scores, perfect separation; FNMR at fixed FMR (FVC definitions); AUC with ties; ROC
 * points; ppndf; numpy-compatible histograms; pair scoring for both protocols and any thread count;
 * CMC ranks with ties, one class and no probes; confusion matrices; the radix sort; probe-versus-
 * template scores (mean and all); the subjects bootstrap against a brute-force repetition of the
 * drawn subjects' scores; numpy's percentile rule. */
#include "bio/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bio/rng.h"

#include "test.h"

TEST(eer_perfect_separation)
{
	const double gen[] = {0.8, 0.9}, imp[] = {0.1, 0.2, 0.3};
	struct bio_verif v;
	struct bio_error err = {0};
	CHECK_EQ(bio_verif_compute(&v, gen, 2, imp, 3, &err), 0);
	CHECK_NEAR(v.eer_threshold, 0.55, 1e-15);
	CHECK_NEAR(v.eer, 0.0, 0);
	CHECK_NEAR(v.fnmr_at_fmr[0], 0.0, 0);
	CHECK_NEAR(v.threshold_at_fmr[0], 0.8, 0);
	CHECK_NEAR(v.fnmr_at_fmr[2], 0.0, 0);
	CHECK_NEAR(v.zero_fnmr, 0.0, 0);
	CHECK_NEAR(v.auc, 1.0, 0);
}

TEST(eer_with_ties)
{
	/* worked by hand in bob.measure's loop: thresholds 0.3, 0.4, 0.55 (|FMR-FNMR| = 1, 3/4,
	 * 5/12), then 0.65 with 2/3 (not better): EER threshold 0.55, FMR 1/4, FNMR 2/3 */
	const double gen[] = {0.5, 0.5, 0.7}, imp[] = {0.3, 0.5, 0.5, 0.6};
	struct bio_verif v;
	CHECK_EQ(bio_verif_compute(&v, gen, 3, imp, 4, NULL), 0);
	CHECK_NEAR(v.eer_threshold, 0.55, 1e-15);
	CHECK_NEAR(v.eer_fmr, 0.25, 0);
	CHECK_NEAR(v.eer_fnmr, 2.0 / 3.0, 1e-15);
	CHECK_NEAR(v.eer, (0.25 + 2.0 / 3.0) / 2, 1e-15);
	/* no impostor may be accepted: threshold just above 0.6 -> the genuine 0.7 */
	CHECK_NEAR(v.fnmr_at_fmr[0], 2.0 / 3.0, 1e-15);
	CHECK_NEAR(v.threshold_at_fmr[0], 0.7, 0);
	CHECK_NEAR(v.fmr_at_target[0], 0.0, 0);
	/* FNMR = 0 needs threshold <= 0.5, which accepts three impostors (two tie at 0.5) */
	CHECK_NEAR(v.zero_fnmr, 0.75, 0);
	CHECK_NEAR(v.zero_fnmr_threshold, 0.5, 0);
	/* Mann-Whitney with ties as one half: (1 + 2/2) + (1 + 2/2) + 4 over 12 */
	CHECK_NEAR(v.auc, 8.0 / 12.0, 1e-15);
}

TEST(eer_all_scores_equal)
{
	const double gen[] = {0.5, 0.5}, imp[] = {0.5, 0.5, 0.5};
	struct bio_verif v;
	CHECK_EQ(bio_verif_compute(&v, gen, 2, imp, 3, NULL), 0);
	CHECK_NEAR(v.eer_threshold, 0.5, 0);
	CHECK_NEAR(v.eer_fmr, 1.0, 0);
	CHECK_NEAR(v.eer_fnmr, 0.0, 0);
	CHECK_NEAR(v.eer, 0.5, 0);
	CHECK_NEAR(v.fnmr_at_fmr[0], 1.0, 0);
	CHECK(v.threshold_at_fmr[0] > 0.5);
	CHECK_NEAR(v.zero_fnmr, 1.0, 0);
	CHECK_NEAR(v.auc, 0.5, 0);
}

TEST(fnmr_at_fmr_fvc)
{
	double imp[100];
	for (int i = 0; i < 100; i++)
		imp[i] = i / 100.0;
	const double gen[] = {0.5, 0.985, 0.995, 2.0};
	struct bio_verif v;
	CHECK_EQ(bio_verif_compute(&v, gen, 4, imp, 100, NULL), 0);
	/* FMR <= 1%: one impostor (0.99) may pass, the threshold drops to the next score above 0.98 */
	CHECK_NEAR(v.fnmr_at_fmr[0], 0.25, 0);
	CHECK_NEAR(v.threshold_at_fmr[0], 0.985, 0);
	CHECK_NEAR(v.fmr_at_target[0], 0.01, 0);
	/* FMR <= 0.1% and FMR = 0: no impostor may pass */
	CHECK_NEAR(v.fnmr_at_fmr[1], 0.5, 0);
	CHECK_NEAR(v.threshold_at_fmr[1], 0.995, 0);
	CHECK_NEAR(v.fnmr_at_fmr[2], 0.5, 0);
	CHECK_NEAR(v.fmr_at_target[2], 0.0, 0);
	/* ZeroFNMR: threshold 0.5 accepts impostors 0.50..0.99 */
	CHECK_NEAR(v.zero_fnmr, 0.5, 0);
}

TEST(verif_degenerate)
{
	const double s[] = {0.1, 0.2};
	struct bio_verif v;
	struct bio_error err = {0};
	CHECK_EQ(bio_verif_compute(&v, s, 2, NULL, 0, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "no impostor") != NULL);
	CHECK_EQ(v.n_genuine, 2);
	CHECK_EQ(bio_verif_compute(&v, NULL, 0, s, 2, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "no genuine") != NULL);
	struct bio_roc_point *pts = NULL;
	size_t n = 0;
	CHECK_EQ(bio_roc_curve(&pts, &n, s, 2, NULL, 0, 0.0, &err), BIO_EINVAL);
	CHECK(pts == NULL);
}

TEST(roc_points)
{
	const double gen[] = {0.5, 0.5, 0.7}, imp[] = {0.3, 0.5, 0.5, 0.6};
	struct bio_roc_point *p = NULL;
	size_t n = 0;
	CHECK_EQ(bio_roc_curve(&p, &n, gen, 3, imp, 4, 0.0, NULL), 0);
	CHECK_EQ(n, 5);
	if (n == 5) {
		const double thr[] = {0.3, 0.5, 0.6, 0.7}, fmr[] = {1, 0.75, 0.25, 0, 0},
			     fnmr[] = {0, 0, 2.0 / 3, 2.0 / 3, 1};
		for (size_t i = 0; i < 5; i++) {
			if (i < 4)
				CHECK_NEAR(p[i].threshold, thr[i], 0);
			CHECK_NEAR(p[i].fmr, fmr[i], 1e-15);
			CHECK_NEAR(p[i].fnmr, fnmr[i], 1e-15);
		}
		CHECK(p[4].threshold > 0.7);
	}
	free(p);
	/* decimation keeps the ends and far fewer points, monotone */
	enum { N = 20000 };
	static double g[N], im[N];
	for (int i = 0; i < N; i++) {
		g[i] = 0.5 + i / (double)N;
		im[i] = i / (double)N;
	}
	CHECK_EQ(bio_roc_curve(&p, &n, g, N, im, N, 0.05, NULL), 0);
	CHECK(n > 10 && n < 2000);
	CHECK_NEAR(p[0].fmr, 1.0, 0);
	CHECK_NEAR(p[n - 1].fnmr, 1.0, 0);
	for (size_t i = 1; i < n; i++)
		CHECK(p[i].fmr <= p[i - 1].fmr && p[i].fnmr >= p[i - 1].fnmr);
	free(p);
}

TEST(ppndf)
{
	CHECK_NEAR(bio_ppndf(0.001), -3.090, 1e-3);
	CHECK_NEAR(bio_ppndf(0.01), -2.326, 1e-3);
	CHECK_NEAR(bio_ppndf(0.1), -1.282, 1e-3);
	CHECK_NEAR(bio_ppndf(0.5), 0.0, 1e-12);
	CHECK_NEAR(bio_ppndf(0.9), 1.282, 1e-3);
	CHECK_NEAR(bio_ppndf(0.999), 3.090, 1e-3);
	CHECK(isfinite(bio_ppndf(0.0)) && bio_ppndf(0.0) < -7);
	CHECK(isfinite(bio_ppndf(1.0)) && bio_ppndf(1.0) > 7);
}

TEST(histogram)
{
	const double x[] = {0.0, 0.25, 0.5, 1.0, -0.1, 1.1};
	uint64_t c[2];
	bio_histogram(c, 2, 0.0, 1.0, x, 6);
	CHECK_EQ(c[0], 2);
	CHECK_EQ(c[1], 2);
	const double y[] = {3.0, 3.0};
	uint64_t one[1];
	bio_histogram(one, 1, 3.0, 3.0, y, 2);
	CHECK_EQ(one[0], 2);
}

TEST(pairs_protocols)
{
	/* labels 0 0 1 1 (and one unknown), 2-D embeddings */
	const float emb[] = {1, 0, 1, 1, 0, 1, -1, 0, 5, 5};
	const int64_t lab[] = {0, 0, 1, 1, -1};
	struct bio_scores s;
	for (int threads = 1; threads <= 3; threads++) {
		CHECK_EQ(bio_scores_pairs(&s, emb, 5, 2, lab, BIO_PAIRS_ALL, 100, 0, threads, NULL), 0);
		CHECK_EQ(s.n_genuine, 2);
		CHECK_EQ(s.n_impostor, 4);
		if (s.n_genuine == 2 && s.n_impostor == 4) {
			CHECK_NEAR(s.genuine[0], sqrt(0.5), 1e-15);
			CHECK_NEAR(s.genuine[1], 0.0, 0);
			const double want[] = {0.0, -1.0, sqrt(0.5), -sqrt(0.5)};
			for (int i = 0; i < 4; i++)
				CHECK_NEAR(s.impostor[i], want[i], 1e-15);
		}
		bio_scores_destroy(&s);
	}
	CHECK_EQ(bio_scores_pairs(&s, emb, 5, 2, lab, BIO_PAIRS_FVC, 100, 0, 2, NULL), 0);
	CHECK_EQ(s.n_genuine, 2);
	CHECK_EQ(s.n_impostor, 1);
	if (s.n_impostor == 1)
		CHECK_NEAR(s.impostor[0], 0.0, 0);
	bio_scores_destroy(&s);
	struct bio_error err = {0};
	CHECK_EQ(bio_scores_pairs(&s, emb, 5, 2, lab, BIO_PAIRS_ALL, 5, 0, 1, &err), BIO_ELIMIT);
	CHECK(strstr(err.msg, "max_pairs") != NULL);
	/* one class: no impostors */
	const int64_t one[] = {3, 3, 3, 3, 3};
	CHECK_EQ(bio_scores_pairs(&s, emb, 5, 2, one, BIO_PAIRS_ALL, 100, 0, 2, NULL), 0);
	CHECK_EQ(s.n_genuine, 10);
	CHECK_EQ(s.n_impostor, 0);
	bio_scores_destroy(&s);
	/* zero vector: cosine 0, never NaN */
	const float z[] = {0, 0, 1, 0};
	CHECK_NEAR(bio_cosine(z, z + 2, 2), 0.0, 0);
}

TEST(cmc_ranks_and_ties)
{
	const double neg[] = {0.5, 0.4}, pos[] = {0.5, 0.1};
	CHECK_EQ(bio_probe_rank(neg, 2, pos, 2), 1);
	CHECK_EQ(bio_probe_rank(neg, 0, pos, 2), 0);
	/* gallery: id 0 (1,0), id 1 (0,1), id 2 (-1,0); probes: id 0 (1,.1) rank 0;
	 * id 1 (1,.2): (1,0) beats it, rank 1; id 2 (0,-1): ties with (1,0) at 0, rank 1 */
	const float emb[] = {1, 0, 0, 1, -1, 0, 1, 0.1f, 1, 0.2f, 0, -1};
	const int64_t lab[] = {7, 8, 9, 7, 8, 9};
	struct bio_cmc c;
	CHECK_EQ(bio_cmc_compute(&c, emb, 6, 2, lab, 1, 2, NULL), 0);
	CHECK_EQ(c.n_probes, 3);
	CHECK_EQ(c.n_gallery, 3);
	CHECK_EQ(c.n_ranks, 3);
	CHECK_NEAR(bio_cmc_rank(&c, 1), 1.0 / 3, 1e-15);
	CHECK_NEAR(bio_cmc_rank(&c, 2), 1.0, 0);
	CHECK_NEAR(bio_cmc_rank(&c, 5), 1.0, 0);
	bio_cmc_destroy(&c);
	/* one class: no negatives, every probe at rank 1 */
	const int64_t one[] = {1, 1, 1, 1, 1, 1};
	CHECK_EQ(bio_cmc_compute(&c, emb, 6, 2, one, 1, 1, NULL), 0);
	CHECK_EQ(c.n_ranks, 1);
	CHECK_NEAR(bio_cmc_rank(&c, 1), 1.0, 0);
	bio_cmc_destroy(&c);
	/* no probes */
	const int64_t distinct[] = {1, 2, 3, 4, 5, 6};
	struct bio_error err = {0};
	CHECK_EQ(bio_cmc_compute(&c, emb, 6, 2, distinct, 1, 1, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "no probes") != NULL);
	CHECK_EQ(c.n_gallery, 6);
	bio_cmc_destroy(&c);
}

TEST(cmc_roles)
{
	/* gallery: id 0 (1,0), id 1 (0,1) from an enrolment set; probes: id 0 rank 0, id 1 rank 1
	 * ((1,0) beats its mate), id 2 has no gallery sample: left out */
	const float emb[] = {1, 0, 0, 1, 1, 0.1f, 1, 0.2f, 0, -1};
	const int64_t lab[] = {0, 1, 0, 1, 2};
	const unsigned char gal[] = {1, 1, 0, 0, 0};
	struct bio_cmc c;
	CHECK_EQ(bio_cmc_compute_roles(&c, emb, 5, 2, lab, gal, 2, NULL), 0);
	CHECK_EQ(c.n_probes, 2);
	CHECK_EQ(c.n_unmated, 1);
	CHECK_EQ(c.n_gallery, 2);
	CHECK_NEAR(bio_cmc_rank(&c, 1), 0.5, 0);
	CHECK_NEAR(bio_cmc_rank(&c, 2), 1.0, 0);
	bio_cmc_destroy(&c);
	const unsigned char none[] = {0, 0, 0, 0, 0};
	struct bio_error err = {0};
	CHECK_EQ(bio_cmc_compute_roles(&c, emb, 5, 2, lab, none, 1, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "no gallery") != NULL);
	bio_cmc_destroy(&c);
}

TEST(confusion)
{
	struct bio_confusion c;
	struct bio_error err = {0};
	CHECK_EQ(bio_confusion_init(&c, 3, NULL), 0);
	CHECK_EQ(bio_confusion_add(&c, 0, 0, 1, NULL), 0);
	CHECK_EQ(bio_confusion_add(&c, 0, 1, 1, NULL), 0);
	CHECK_EQ(bio_confusion_add(&c, 1, 1, 1, NULL), 0);
	CHECK_EQ(bio_confusion_add(&c, 2, 1, 0, NULL), 0);
	CHECK_EQ(bio_confusion_add(&c, 2, 3, 0, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "prediction 3") != NULL);
	CHECK_EQ(c.n_total, 4);
	CHECK_EQ(c.n_correct, 2);
	CHECK_EQ(c.n_topk, 3);
	double p, r;
	uint64_t sup, pr;
	bio_confusion_class(&c, 0, &p, &r, &sup, &pr);
	CHECK_NEAR(p, 1.0, 0);
	CHECK_NEAR(r, 0.5, 0);
	CHECK_EQ(sup, 2);
	bio_confusion_class(&c, 1, &p, &r, &sup, &pr);
	CHECK_NEAR(p, 1.0 / 3, 1e-15);
	CHECK_NEAR(r, 1.0, 0);
	CHECK_EQ(pr, 3);
	bio_confusion_class(&c, 2, &p, &r, &sup, &pr);
	CHECK_NEAR(p, 0.0, 0);
	CHECK_NEAR(r, 0.0, 0);
	bio_confusion_destroy(&c);
	const int64_t topk[] = {4, 2, 9};
	CHECK_EQ(bio_topk_hit(topk, 3, 2, 2), 1);
	CHECK_EQ(bio_topk_hit(topk, 3, 1, 2), 0);
	CHECK_EQ(bio_topk_hit(topk, 3, 10, 9), 1);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

TEST(sort)
{
	enum { N = 5000 };
	static double x[N], y[N];
	uint64_t s = 12345;
	for (int i = 0; i < N; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * (i % 7 ? 2.0 : 1e-300);
	}
	x[0] = -0.0;
	x[1] = 0.0;
	x[2] = INFINITY;
	x[3] = -INFINITY;
	x[4] = x[5];
	memcpy(y, x, sizeof x);
	CHECK_EQ(bio_sort_scores(x, N, NULL), 0);
	qsort(y, N, sizeof *y, cmp_d);
	int same = 1;
	for (int i = 0; i < N; i++)
		same &= x[i] == y[i];
	CHECK(same);
	double bad[] = {1.0, NAN};
	CHECK_EQ(bio_sort_scores(bad, 2, NULL), BIO_ENAN);
}

TEST(templates_mean_and_all)
{
	/* gallery: id1 (-1,0); id0 (1,0) and (0,1); probes p0 id0 (1,0), p1 id1 (-1,0.1),
	 * p2 id2 (0,-1) without a template */
	const float emb[] = {-1, 0, 1, 0, 1, 0, 0, 1, -1, 0.1f, 0, -1};
	const int64_t lab[] = {1, 0, 0, 0, 1, 2};
	const unsigned char gal[] = {1, 1, 0, 1, 0, 0};
	struct bio_scores s;
	struct bio_cmc c;
	struct bio_error err = {0};
	double n1 = sqrt((double)(-1.0f * -1.0f) + (double)0.1f * (double)0.1f);
	CHECK_EQ(bio_scores_templates(&s, &c, emb, 6, 2, lab, gal, BIO_TEMPLATE_MEAN, 100, 2, &err),
		 0);
	CHECK_EQ(s.n_genuine, 2);
	CHECK_EQ(s.n_impostor, 4);
	CHECK_NEAR(s.genuine[0], sqrt(0.5), 1e-7);
	CHECK_NEAR(s.genuine[1], 1.0 / n1, 1e-7);
	CHECK_NEAR(s.impostor[0], -1.0, 1e-12);
	CHECK_NEAR(s.impostor[1], (-0.5 + 0.5 * (double)0.1f) / (sqrt(0.5) * n1), 1e-7);
	CHECK_NEAR(s.impostor[2], -sqrt(0.5), 1e-7);
	CHECK_NEAR(s.impostor[3], 0.0, 1e-12);
	const uint32_t want_imp[] = {0, 1, 1, 0, 2, 0, 2, 1};
	CHECK(memcmp(s.imp_id, want_imp, sizeof want_imp) == 0);
	CHECK_EQ(s.gen_id[0], 0);
	CHECK_EQ(s.gen_id[1], 1);
	CHECK_EQ(c.n_probes, 2);
	CHECK_EQ(c.n_unmated, 1);
	CHECK_EQ(c.n_ids, 2);
	CHECK_EQ(c.n_gallery, 3);
	CHECK_NEAR(bio_cmc_rank(&c, 1), 1.0, 0);
	bio_scores_destroy(&s);
	bio_cmc_destroy(&c);
	CHECK_EQ(bio_scores_templates(&s, &c, emb, 6, 2, lab, gal, BIO_TEMPLATE_MAX, 100, 1, &err),
		 0);
	CHECK_NEAR(s.genuine[0], 1.0, 1e-12);
	CHECK_NEAR(s.impostor[1], (double)0.1f / n1, 1e-7); /* p1 vs (0,1), its best of id0 */
	CHECK_NEAR(s.impostor[2], 0.0, 1e-12);
	bio_scores_destroy(&s);
	bio_cmc_destroy(&c);
	/* too many comparisons; nothing to enrol */
	CHECK_EQ(bio_scores_templates(&s, &c, emb, 6, 2, lab, gal, BIO_TEMPLATE_MEAN, 5, 1, &err),
		 BIO_ELIMIT);
	const unsigned char none[6] = {0};
	CHECK_EQ(bio_scores_templates(&s, &c, emb, 6, 2, lab, none, BIO_TEMPLATE_MEAN, 100, 1, &err),
		 BIO_EINVAL);
}

TEST(percentile_numpy_rule)
{
	const double x[] = {1, 2, 3, 4};
	CHECK_NEAR(bio_percentile(x, 4, 0.025), 1.075, 1e-15);
	CHECK_NEAR(bio_percentile(x, 4, 0.975), 3.925, 1e-15);
	CHECK_NEAR(bio_percentile(x, 1, 0.5), 1.0, 0);
	CHECK_NEAR(bio_percentile(x, 4, 1.0), 4.0, 0);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

TEST(bootstrap_matches_repeated_scores)
{
	/* 6 subjects, 3 samples each, scores rounded to 0.1 (ties): the intervals equal those of
	 * bio_verif_compute on each replicate's scores repeated by their weights */
	enum { N_ID = 6, N_S = 3, N = N_ID * N_S, REP = 200 };
	float emb[N * 2];
	int64_t lab[N];
	struct bio_rng r;
	bio_rng_seed(&r, 5);
	for (int i = 0; i < N; i++) {
		lab[i] = i / N_S;
		emb[2 * i] = (float)(lab[i] + bio_rng_uniform(&r) * 2.5);
		emb[2 * i + 1] = 1.0f;
	}
	struct bio_scores s;
	CHECK_EQ(bio_scores_pairs(&s, emb, N, 2, lab, BIO_PAIRS_ALL, 1000, 1, 2, NULL), 0);
	for (size_t i = 0; i < s.n_genuine; i++)
		s.genuine[i] = round(s.genuine[i] * 10) / 10;
	for (size_t i = 0; i < s.n_impostor; i++)
		s.impostor[i] = round(s.impostor[i] * 10) / 10;
	const uint32_t units[N_ID] = {0, 1, 2, 3, 4, 5};
	struct bio_boot_ci ci[BIO_BOOT_N_VERIF];
	CHECK_EQ(bio_boot_verif(ci, &s, units, N_ID, N_ID, REP, 9, 3, NULL), 0);
	double vals[BIO_BOOT_N_VERIF][REP];
	size_t n_valid = 0;
	for (int b = 0; b < REP; b++) {
		uint32_t w[N_ID];
		bio_boot_weights(w, units, N_ID, N_ID, 9, (uint64_t)b);
		size_t ng = 0, ni = 0;
		double *g = malloc(s.n_genuine * 36 * sizeof *g + 8);
		double *im = malloc(s.n_impostor * 36 * sizeof *im + 8);
		for (size_t i = 0; i < s.n_genuine; i++)
			for (uint32_t k = 0; k < w[s.gen_id[i]]; k++)
				g[ng++] = s.genuine[i];
		for (size_t i = 0; i < s.n_impostor; i++)
			for (uint32_t k = 0; k < w[s.imp_id[2 * i]] * w[s.imp_id[2 * i + 1]]; k++)
				im[ni++] = s.impostor[i];
		if (ng && ni) {
			qsort(g, ng, sizeof *g, cmp_dbl);
			qsort(im, ni, sizeof *im, cmp_dbl);
			struct bio_verif v;
			CHECK_EQ(bio_verif_compute(&v, g, ng, im, ni, NULL), 0);
			vals[0][n_valid] = v.eer;
			for (int k = 0; k < BIO_N_FMR_TARGETS; k++)
				vals[1 + k][n_valid] = v.fnmr_at_fmr[k];
			n_valid++;
		}
		free(g);
		free(im);
	}
	CHECK(n_valid > REP / 2);
	for (int k = 0; k < BIO_BOOT_N_VERIF; k++) {
		qsort(vals[k], n_valid, sizeof(double), cmp_dbl);
		CHECK_EQ(ci[k].n_valid, n_valid);
		CHECK_NEAR(ci[k].lo, bio_percentile(vals[k], n_valid, 0.025), 1e-15);
		CHECK_NEAR(ci[k].hi, bio_percentile(vals[k], n_valid, 0.975), 1e-15);
	}
	/* the same draws whatever the thread count */
	struct bio_boot_ci ci1[BIO_BOOT_N_VERIF];
	CHECK_EQ(bio_boot_verif(ci1, &s, units, N_ID, N_ID, REP, 9, 1, NULL), 0);
	CHECK(memcmp(ci, ci1, sizeof ci) == 0);
	bio_scores_destroy(&s);
}

int main(void)
{
	RUN(eer_perfect_separation);
	RUN(eer_with_ties);
	RUN(eer_all_scores_equal);
	RUN(fnmr_at_fmr_fvc);
	RUN(verif_degenerate);
	RUN(roc_points);
	RUN(ppndf);
	RUN(histogram);
	RUN(pairs_protocols);
	RUN(cmc_ranks_and_ties);
	RUN(cmc_roles);
	RUN(confusion);
	RUN(sort);
	RUN(templates_mean_and_all);
	RUN(percentile_numpy_rule);
	RUN(bootstrap_matches_repeated_scores);
	return test_summary();
}
