/* Biometric evaluation metrics: confusion matrices, cosine pair scores (threaded, in a fixed
 * order), a radix sort for scores, bob.measure-compatible EER, FVC-style FNMR at fixed FMR, ROC/DET
 * points, NIST ppndf, numpy-compatible histograms and bob.measure-compatible CMC. */
#include "bio/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bio/rng.h"
#include "bio/thread.h"
#include "free_list.h"

const double bio_fmr_targets[BIO_N_FMR_TARGETS] = {1e-2, 1e-3, 0.0};

/* ---- closed-set classification ---- */

int bio_confusion_init(struct bio_confusion *c, size_t n_classes, struct bio_error *err)
{
	memset(c, 0, sizeof *c);
	if (n_classes == 0)
		return bio_error_set(err, BIO_EINVAL, "confusion matrix: no classes");
	if (n_classes > 65536)
		return bio_error_set(err, BIO_ELIMIT, "confusion matrix: %zu classes (limit 65536)",
				     n_classes);
	c->counts = calloc(n_classes * n_classes, sizeof *c->counts);
	if (!c->counts)
		return bio_error_set(err, BIO_ENOMEM, "confusion matrix: out of memory");
	c->n_classes = n_classes;
	return 0;
}

void bio_confusion_destroy(struct bio_confusion *c)
{
	free(c->counts);
	memset(c, 0, sizeof *c);
}

int bio_confusion_add(struct bio_confusion *c, int64_t label, int64_t pred, int topk_hit,
		      struct bio_error *err)
{
	if (label < 0 || (uint64_t)label >= c->n_classes)
		return bio_error_set(err, BIO_EINVAL, "label %lld outside the %zu classes",
				     (long long)label, c->n_classes);
	if (pred < 0 || (uint64_t)pred >= c->n_classes)
		return bio_error_set(err, BIO_EINVAL, "prediction %lld outside the %zu classes",
				     (long long)pred, c->n_classes);
	c->counts[(size_t)label * c->n_classes + (size_t)pred]++;
	c->n_total++;
	c->n_correct += label == pred;
	c->n_topk += topk_hit != 0;
	return 0;
}

void bio_confusion_class(const struct bio_confusion *c, size_t k, double *precision,
			 double *recall, uint64_t *support, uint64_t *predicted)
{
	BIO_ASSERT(k < c->n_classes);
	uint64_t tp = c->counts[k * c->n_classes + k], sup = 0, pr = 0;
	for (size_t j = 0; j < c->n_classes; j++) {
		sup += c->counts[k * c->n_classes + j];
		pr += c->counts[j * c->n_classes + k];
	}
	*precision = pr ? (double)tp / (double)pr : 0.0;
	*recall = sup ? (double)tp / (double)sup : 0.0;
	*support = sup;
	*predicted = pr;
}

int bio_topk_hit(const int64_t *topk, size_t n_topk, size_t k, int64_t label)
{
	if (k > n_topk)
		k = n_topk;
	for (size_t i = 0; i < k; i++)
		if (topk[i] == label)
			return 1;
	return 0;
}

/* ---- threads: run fn(ctx + i * ctx_bytes) for i < n, in parallel, results independent of n ---- */

struct par_jobs {
	void *(*fn)(void *);
	char *ctx;
	size_t ctx_bytes;
};

static void par_range(void *arg, size_t begin, size_t end, int thread)
{
	const struct par_jobs *p = arg;
	(void)thread;
	for (size_t i = begin; i < end; i++)
		p->fn(p->ctx + i * p->ctx_bytes);
}

static void run_parallel(void *(*fn)(void *), void *ctx, size_t ctx_bytes, int n)
{
	struct par_jobs p = {fn, ctx, ctx_bytes};
	bio_thread_run(n, (size_t)(n > 0 ? n : 0), par_range, &p);
}

/* ---- scores ---- */

/* Dot product in double with 8 partial sums in a fixed order (vectorisable without reordering
 * anything the compiler is not told; the same result on every run and thread count). */
static double dot_f32(const float *a, const float *b, size_t dim)
{
	double s[8] = {0};
	size_t k = 0;
	for (; k + 8 <= dim; k += 8)
		for (int j = 0; j < 8; j++)
			s[j] += (double)a[k + (size_t)j] * (double)b[k + (size_t)j];
	for (; k < dim; k++)
		s[0] += (double)a[k] * (double)b[k];
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static double cosine_from(double dot, double n2a, double n2b)
{
	double d = n2a * n2b;
	if (!(d > 0.0))
		return 0.0;
	return dot / sqrt(d);
}

double bio_cosine(const float *a, const float *b, size_t dim)
{
	return cosine_from(dot_f32(a, b, dim), dot_f32(a, a, dim), dot_f32(b, b, dim));
}

void bio_scores_destroy(struct bio_scores *s)
{
	BIO_FREE(s->genuine, s->impostor, s->gen_id, s->imp_id);
	memset(s, 0, sizeof *s);
}


static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The labelled samples (label >= 0) in input order: idx[a] = sample index, id[a] = dense identity
 * id numbered by first appearance; *n_ids identities. Arrays returned new. */
static int dense_ids(size_t **idx_out, size_t **id_out, size_t *m_out, size_t *n_ids_out,
		     const int64_t *labels, size_t n, struct bio_error *err)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		m += labels[i] >= 0;
	size_t cap = m ? m : 1;
	size_t *idx = malloc(cap * sizeof *idx);
	size_t *id = malloc(cap * sizeof *id);
	int64_t *uniq = malloc(cap * sizeof *uniq);
	size_t *order = malloc(cap * sizeof *order);
	if (!idx || !id || !uniq || !order) {
		BIO_FREE(idx, id, uniq, order);
		return bio_error_set(err, BIO_ENOMEM, "scores: out of memory");
	}
	size_t j = 0;
	for (size_t i = 0; i < n; i++)
		if (labels[i] >= 0) {
			idx[j] = i;
			uniq[j++] = labels[i];
		}
	qsort(uniq, m, sizeof *uniq, cmp_i64);
	size_t n_uniq = 0;
	for (size_t a = 0; a < m; a++)
		if (a == 0 || uniq[a] != uniq[a - 1])
			uniq[n_uniq++] = uniq[a];
	for (size_t u = 0; u < n_uniq; u++)
		order[u] = SIZE_MAX;
	size_t next = 0;
	for (size_t a = 0; a < m; a++) {
		int64_t l = labels[idx[a]];
		size_t lo = 0, hi = n_uniq;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (uniq[mid] < l)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (order[lo] == SIZE_MAX)
			order[lo] = next++;
		id[a] = order[lo];
	}
	free(uniq);
	free(order);
	*idx_out = idx;
	*id_out = id;
	*m_out = m;
	*n_ids_out = next;
	return 0;
}

struct pair_job {
	const float *emb;
	size_t dim;
	const size_t *idx, *id;
	const unsigned char *is_first;
	const double *norm2;
	size_t m;
	int fvc;
	size_t row_begin, row_end;
	const size_t *gen_off, *imp_off; /* where row a's scores start */
	double *gen, *imp;
	const int64_t *labels;
	uint32_t *gen_id, *imp_id; /* NULL without ids */
};

static void *pair_worker(void *arg)
{
	struct pair_job *j = arg;
	for (size_t a = j->row_begin; a < j->row_end; a++) {
		const float *ea = j->emb + j->idx[a] * j->dim;
		double *g = j->gen + j->gen_off[a], *im = j->imp + j->imp_off[a];
		uint32_t *gi = j->gen_id ? j->gen_id + j->gen_off[a] : NULL;
		uint32_t *ii = j->imp_id ? j->imp_id + 2 * j->imp_off[a] : NULL;
		uint32_t la = (uint32_t)j->labels[j->idx[a]];
		int fa = j->is_first[a];
		for (size_t b = a + 1; b < j->m; b++) {
			int same = j->id[a] == j->id[b];
			if (!same && j->fvc && !(fa && j->is_first[b]))
				continue;
			const float *eb = j->emb + j->idx[b] * j->dim;
			double s = cosine_from(dot_f32(ea, eb, j->dim), j->norm2[a], j->norm2[b]);
			if (same) {
				*g++ = s;
				if (gi)
					*gi++ = la;
			} else {
				*im++ = s;
				if (ii) {
					*ii++ = la;
					*ii++ = (uint32_t)j->labels[j->idx[b]];
				}
			}
		}
	}
	return NULL;
}

static int clamp_threads(int n_threads, size_t work)
{
	if (n_threads < 1)
		n_threads = 1;
	if (n_threads > 64)
		n_threads = 64;
	if ((size_t)n_threads > work)
		n_threads = work ? (int)work : 1;
	return n_threads;
}

/* n_threads clamped to the work and a zeroed array of that many jobs of job_size bytes, the
 * caller's to free; NULL when out of memory (err set, naming what). */
static void *alloc_jobs(int *n_threads, size_t work, size_t job_size, const char *what,
			struct bio_error *err)
{
	*n_threads = clamp_threads(*n_threads, work);
	void *jobs = calloc((size_t)*n_threads, job_size);
	if (!jobs)
		bio_error_set(err, BIO_ENOMEM, "%s: out of memory", what);
	return jobs;
}

int bio_scores_pairs(struct bio_scores *s, const float *emb, size_t n, size_t dim,
		     const int64_t *labels, enum bio_pair_protocol protocol, uint64_t max_pairs,
		     int with_ids, int n_threads, struct bio_error *err)
{
	memset(s, 0, sizeof *s);
	size_t *idx = NULL, *id = NULL, *cnt = NULL, *gen_off = NULL, *imp_off = NULL;
	unsigned char *is_first = NULL;
	double *norm2 = NULL;
	struct pair_job *jobs = NULL;
	size_t m, n_ids;
	int rc = dense_ids(&idx, &id, &m, &n_ids, labels, n, err);
	if (rc)
		return rc;
	int fvc = protocol == BIO_PAIRS_FVC;
	uint64_t total = fvc ? 0 : (uint64_t)m * (m ? m - 1 : 0) / 2;
	if (!fvc && total > max_pairs) {
		rc = bio_error_set(err, BIO_ELIMIT,
				   "%zu samples make %llu pairs, more than eval.max_pairs (%llu); "
				   "use eval.protocol: fvc",
				   m, (unsigned long long)total, (unsigned long long)max_pairs);
		goto out;
	}
	size_t cap = m ? m : 1;
	cnt = calloc(n_ids ? n_ids : 1, sizeof *cnt);
	gen_off = malloc((cap + 1) * sizeof *gen_off);
	imp_off = malloc((cap + 1) * sizeof *imp_off);
	is_first = calloc(cap, 1);
	norm2 = malloc(cap * sizeof *norm2);
	if (!cnt || !gen_off || !imp_off || !is_first || !norm2) {
		rc = bio_error_set(err, BIO_ENOMEM, "scores: out of memory");
		goto out;
	}
	/* first sample of each identity */
	for (size_t a = 0; a < m; a++) {
		if (cnt[id[a]] == 0)
			is_first[a] = 1;
		cnt[id[a]]++;
		norm2[a] = dot_f32(emb + idx[a] * dim, emb + idx[a] * dim, dim);
	}
	/* per-row pair counts, from the end: same-identity samples after a, firsts after a */
	memset(cnt, 0, (n_ids ? n_ids : 1) * sizeof *cnt);
	size_t firsts_after = 0;
	uint64_t n_gen = 0, n_imp = 0;
	for (size_t a = m; a-- > 0;) {
		size_t g = cnt[id[a]];
		size_t im = fvc ? (is_first[a] ? firsts_after : 0) : (m - 1 - a) - g;
		gen_off[a] = g; /* counts for now */
		imp_off[a] = im;
		n_gen += g;
		n_imp += im;
		cnt[id[a]]++;
		firsts_after += is_first[a];
	}
	if (n_gen + n_imp > max_pairs) {
		rc = bio_error_set(err, BIO_ELIMIT,
				   "%llu genuine + %llu impostor pairs, more than eval.max_pairs (%llu)",
				   (unsigned long long)n_gen, (unsigned long long)n_imp,
				   (unsigned long long)max_pairs);
		goto out;
	}
	/* counts -> offsets */
	size_t go = 0, io = 0;
	for (size_t a = 0; a < m; a++) {
		size_t g = gen_off[a], im = imp_off[a];
		gen_off[a] = go;
		imp_off[a] = io;
		go += g;
		io += im;
	}
	gen_off[m] = go;
	imp_off[m] = io;
	s->genuine = malloc((go ? go : 1) * sizeof *s->genuine);
	s->impostor = malloc((io ? io : 1) * sizeof *s->impostor);
	if (!s->genuine || !s->impostor) {
		rc = bio_error_set(err, BIO_ENOMEM, "scores: out of memory for %zu + %zu scores",
				   go, io);
		goto out;
	}
	s->n_genuine = go;
	s->n_impostor = io;
	if (with_ids) {
		s->gen_id = malloc((go ? go : 1) * sizeof *s->gen_id);
		s->imp_id = malloc((io ? 2 * io : 1) * sizeof *s->imp_id);
		if (!s->gen_id || !s->imp_id) {
			rc = bio_error_set(err, BIO_ENOMEM, "scores: out of memory for their ids");
			goto out;
		}
	}
	/* split rows so that each thread scores about the same number of pairs */
	jobs = alloc_jobs(&n_threads, m, sizeof *jobs, "scores", err);
	if (!jobs) {
		rc = BIO_ENOMEM;
		goto out;
	}
	{
		uint64_t work_total = fvc ? (uint64_t)m * (m ? m - 1 : 0) / 2 : total, acc = 0;
		size_t a = 0;
		for (int t = 0; t < n_threads; t++) {
			struct pair_job *j = &jobs[t];
			*j = (struct pair_job){emb, dim, idx, id, is_first, norm2, m, fvc, a, a,
					       gen_off, imp_off, s->genuine, s->impostor, labels,
					       s->gen_id, s->imp_id};
			uint64_t target = work_total * (uint64_t)(t + 1) / (uint64_t)n_threads;
			while (a < m && (acc < target || t == n_threads - 1)) {
				acc += m - 1 - a;
				a++;
			}
			j->row_end = a;
		}
	}
	run_parallel(pair_worker, jobs, sizeof *jobs, n_threads);
out:
	BIO_FREE(idx, id, cnt, gen_off, imp_off, is_first, norm2, jobs);
	if (rc)
		bio_scores_destroy(s);
	return rc;
}

/* ---- sorting ---- */

static inline uint64_t f64_key(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	if (u == 0x8000000000000000ull) /* -0.0 sorts as +0.0 */
		u = 0;
	return (u >> 63) ? ~u : u | 0x8000000000000000ull;
}

static inline double key_f64(uint64_t k)
{
	uint64_t u = (k >> 63) ? k & 0x7fffffffffffffffull : ~k;
	double d;
	memcpy(&d, &u, sizeof d);
	return d;
}

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)
#define RADIX_PASSES 6

/* The keys live in the scores' own storage (bit patterns copied with memcpy), so the sort needs
 * one extra array of n, not two. */
static inline uint64_t load_u64(const double *p)
{
	uint64_t u;
	memcpy(&u, p, sizeof u);
	return u;
}

static inline void store_u64(double *p, uint64_t u)
{
	memcpy(p, &u, sizeof u);
}

int bio_sort_scores(double *x, size_t n, struct bio_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (isnan(x[i]))
			return bio_error_set(err, BIO_ENAN, "score %zu is NaN", i);
	if (n < 2)
		return 0;
	double *b = malloc(n * sizeof *b);
	size_t(*hist)[RADIX_SIZE] = calloc(RADIX_PASSES, sizeof *hist);
	if (!b || !hist) {
		free(b);
		free(hist);
		return bio_error_set(err, BIO_ENOMEM, "sorting %zu scores: out of memory", n);
	}
	double *a = x;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = f64_key(x[i]);
		store_u64(&x[i], k);
		for (int p = 0; p < RADIX_PASSES; p++)
			hist[p][(k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1)]++;
	}
	for (int p = 0; p < RADIX_PASSES; p++) {
		size_t *h = hist[p];
		int skip = 0;
		for (size_t d = 0; d < RADIX_SIZE; d++)
			if (h[d] == n)
				skip = 1;
		if (skip)
			continue;
		size_t sum = 0;
		for (size_t d = 0; d < RADIX_SIZE; d++) {
			size_t c = h[d];
			h[d] = sum;
			sum += c;
		}
		int shift = p * RADIX_BITS;
		for (size_t i = 0; i < n; i++) {
			uint64_t k = load_u64(&a[i]);
			store_u64(&b[h[(k >> shift) & (RADIX_SIZE - 1)]++], k);
		}
		double *t = a;
		a = b;
		b = t;
	}
	/* a holds the sorted keys (x itself or the extra array) */
	for (size_t i = 0; i < n; i++)
		x[i] = key_f64(load_u64(&a[i]));
	free(a == x ? b : a);
	free(hist);
	return 0;
}

/* ---- verification ---- */

/* The number of values in sorted x below t, or with at_most, not above t. */
static size_t count_sorted(const double *x, size_t n, double t, int at_most)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (x[mid] < t || (at_most && x[mid] == t))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t count_below(const double *x, size_t n, double t)
{
	return count_sorted(x, n, t, 0);
}

static size_t count_at_most(const double *x, size_t n, double t)
{
	return count_sorted(x, n, t, 1);
}

void bio_fmr_fnmr(double *fmr, double *fnmr, const double *gen_sorted, size_t ng,
		  const double *imp_sorted, size_t ni, double t)
{
	BIO_ASSERT(ng > 0 && ni > 0);
	*fmr = (double)(ni - count_below(imp_sorted, ni, t)) / (double)ni;
	*fnmr = (double)count_below(gen_sorted, ng, t) / (double)ng;
}

/* bob.measure _minimizing_threshold with the "absolute-difference" criterion; the rates are
 * computed from exact counts instead of bob's running sums of 1/n. */
static double eer_threshold(const double *neg, size_t nn, const double *pos, size_t np)
{
	double min_pred = 1e8, min_thr = 1e8;
	double far = 1.0, frr = 0.0;
	size_t pi = 0, ni = 0;
	double cur = neg[0] < pos[0] ? neg[0] : pos[0];
	while (pi < np && ni < nn) {
		double pred = fabs(far - frr);
		if (pred <= min_pred) {
			min_pred = pred;
			min_thr = cur;
		}
		if (pos[pi] >= neg[ni])
			cur = neg[ni++];
		else
			cur = pos[pi++];
		while (ni < nn && cur == neg[ni])
			ni++;
		while (pi < np && cur == pos[pi])
			pi++;
		far = (double)(nn - ni) / (double)nn;
		frr = (double)pi / (double)np;
		if (ni < nn || pi < np) {
			if (ni < nn && pi < np)
				cur += neg[ni] < pos[pi] ? neg[ni] : pos[pi];
			else if (ni < nn)
				cur += neg[ni];
			else
				cur += pos[pi];
			cur /= 2;
		}
	}
	double pred = fabs(far - frr);
	if (pred < min_pred) {
		min_pred = pred;
		min_thr = cur;
	}
	if (ni < nn || pi < np) {
		double last = ni < nn ? nextafter(neg[nn - 1], INFINITY)
				      : nextafter(pos[np - 1], INFINITY);
		if (1.0 < min_pred)
			min_thr = last;
	}
	return min_thr;
}

/* Lowest FNMR over thresholds with FMR <= target; *thr = the lowest such threshold (a score of
 * either set, or just above every score). */
static void fnmr_at_fmr(double *fnmr, double *thr, double *fmr_reached, const double *gen,
			size_t ng, const double *imp, size_t ni, double target)
{
	/* walk the groups of equal impostor values down from the top while accepting them all
	 * keeps FMR <= target; impostors at index >= top are accepted */
	size_t top = ni;
	while (top > 0) {
		size_t first_v = top - 1;
		while (first_v > 0 && imp[first_v - 1] == imp[top - 1])
			first_v--;
		if ((double)(ni - first_v) / (double)ni <= target)
			top = first_v;
		else
			break;
	}
	int all_allowed = top == 0;
	double v = all_allowed ? 0.0 : imp[top - 1]; /* the largest rejected impostor value */
	if (all_allowed) {
		/* every threshold is allowed: the lowest score accepts everything */
		double lo = gen[0] < imp[0] ? gen[0] : imp[0];
		*fnmr = 0.0;
		*thr = lo;
		*fmr_reached = 1.0;
		return;
	}
	size_t g_le = count_at_most(gen, ng, v);
	*fnmr = (double)g_le / (double)ng;
	*fmr_reached = (double)(ni - top) / (double)ni;
	/* the smallest score above v: the next impostor value or the next genuine score */
	double t = nextafter(v, INFINITY);
	int have = 0;
	if (top < ni) {
		t = imp[top];
		have = 1;
	}
	if (g_le < ng && (!have || gen[g_le] < t))
		t = gen[g_le];
	*thr = t;
}

double bio_threshold_at_fmr(double *fnmr, double *fmr_reached, const double *gen_sorted,
			    size_t ng, const double *imp_sorted, size_t ni, double target)
{
	BIO_ASSERT(ng > 0 && ni > 0);
	double thr;
	fnmr_at_fmr(fnmr, &thr, fmr_reached, gen_sorted, ng, imp_sorted, ni, target);
	return thr;
}

int bio_verif_compute(struct bio_verif *v, const double *gen, size_t ng, const double *imp,
		      size_t ni, struct bio_error *err)
{
	memset(v, 0, sizeof *v);
	v->n_genuine = ng;
	v->n_impostor = ni;
	if (ng == 0 && ni == 0)
		return bio_error_set(err, BIO_EINVAL, "no genuine and no impostor scores");
	if (ng == 0)
		return bio_error_set(err, BIO_EINVAL,
				     "no genuine scores (no identity has two samples)");
	if (ni == 0)
		return bio_error_set(err, BIO_EINVAL,
				     "no impostor scores (a single identity)");
	v->eer_threshold = eer_threshold(imp, ni, gen, ng);
	bio_fmr_fnmr(&v->eer_fmr, &v->eer_fnmr, gen, ng, imp, ni, v->eer_threshold);
	v->eer = (v->eer_fmr + v->eer_fnmr) / 2.0;
	for (int k = 0; k < BIO_N_FMR_TARGETS; k++)
		fnmr_at_fmr(&v->fnmr_at_fmr[k], &v->threshold_at_fmr[k], &v->fmr_at_target[k], gen,
			    ng, imp, ni, bio_fmr_targets[k]);
	v->zero_fnmr_threshold = gen[0];
	v->zero_fnmr = (double)(ni - count_below(imp, ni, gen[0])) / (double)ni;
	/* AUC = P(genuine > impostor) + P(equal) / 2, by a merged walk */
	uint64_t twice = 0;
	size_t lt = 0, le = 0;
	for (size_t i = 0; i < ng; i++) {
		while (lt < ni && imp[lt] < gen[i])
			lt++;
		if (le < lt)
			le = lt;
		while (le < ni && imp[le] <= gen[i])
			le++;
		twice += 2 * (uint64_t)lt + (uint64_t)(le - lt);
	}
	v->auc = (double)twice / (2.0 * (double)ng * (double)ni);
	return 0;
}

static int moved(size_t now, size_t last, size_t n, double r)
{
	size_t d = now > last ? now - last : last - now;
	size_t near = last < n - last ? last : n - last;
	return (double)d > r * (double)near;
}

int bio_roc_curve(struct bio_roc_point **pts_out, size_t *n_out, const double *gen, size_t ng,
		  const double *imp, size_t ni, double resolution, struct bio_error *err)
{
	*pts_out = NULL;
	*n_out = 0;
	if (ng == 0 || ni == 0)
		return bio_error_set(err, BIO_EINVAL, "ROC: no %s scores",
				     ng == 0 ? "genuine" : "impostor");
	size_t cap = 1024, n = 0;
	struct bio_roc_point *pts = malloc(cap * sizeof *pts);
	if (!pts)
		return bio_error_set(err, BIO_ENOMEM, "ROC: out of memory");
	size_t gi = 0, ii = 0;          /* scores below the current threshold */
	size_t last_fa = SIZE_MAX, last_fr = SIZE_MAX;
	for (;;) {
		int end = gi == ng && ii == ni;
		double t;
		if (end)
			t = nextafter(gen[ng - 1] > imp[ni - 1] ? gen[ng - 1] : imp[ni - 1], INFINITY);
		else if (gi == ng)
			t = imp[ii];
		else if (ii == ni)
			t = gen[gi];
		else
			t = gen[gi] < imp[ii] ? gen[gi] : imp[ii];
		size_t fa = ni - ii, fr = gi;
		int keep = end || last_fa == SIZE_MAX || resolution <= 0.0 ||
			   moved(fa, last_fa, ni, resolution) || moved(fr, last_fr, ng, resolution);
		if (keep) {
			if (n == cap) {
				struct bio_roc_point *p2 = realloc(pts, 2 * cap * sizeof *pts);
				if (!p2) {
					free(pts);
					return bio_error_set(err, BIO_ENOMEM, "ROC: out of memory");
				}
				pts = p2;
				cap *= 2;
			}
			pts[n++] = (struct bio_roc_point){t, (double)fa / (double)ni,
							  (double)fr / (double)ng};
			last_fa = fa;
			last_fr = fr;
		}
		if (end)
			break;
		while (gi < ng && gen[gi] == t)
			gi++;
		while (ii < ni && imp[ii] == t)
			ii++;
	}
	*pts_out = pts;
	*n_out = n;
	return 0;
}

double bio_ppndf(double p)
{
	const double eps = 2.220446049250313e-16;
	if (p >= 1.0)
		p = 1.0 - eps;
	if (p <= 0.0)
		p = eps;
	double q = p - 0.5;
	if (fabs(q) <= 0.42) {
		double r = q * q;
		return q * (((-25.4410604963 * r + 41.3911977353) * r + -18.6150006252) * r +
			    2.5066282388) /
		       ((((3.1308290983 * r + -21.0622410182) * r + 23.0833674374) * r +
			 -8.4735109309) * r + 1.0);
	}
	double r = q > 0 ? 1.0 - p : p;
	r = sqrt(-log(r));
	double v = (((2.3212127685 * r + 4.8501412713) * r + -2.2979647913) * r + -2.7871893113) /
		   ((1.6370678189 * r + 3.5438892476) * r + 1.0);
	return q < 0 ? -v : v;
}

void bio_histogram(uint64_t *counts, size_t n_bins, double lo, double hi, const double *x,
		   size_t n)
{
	memset(counts, 0, n_bins * sizeof *counts);
	if (n_bins == 0)
		return;
	if (lo == hi) {
		lo -= 0.5;
		hi += 0.5;
	}
	/* numpy: edges = linspace(lo, hi, n_bins + 1); index = int((x - lo) * n_bins / (hi - lo)),
	 * then corrected against the edges */
	double norm = (double)n_bins / (hi - lo);
	double step = (hi - lo) / (double)n_bins;
	for (size_t i = 0; i < n; i++) {
		double v = x[i];
		if (!(v >= lo && v <= hi))
			continue;
		double f = (v - lo) * norm;
		size_t k = f >= (double)n_bins ? n_bins : (size_t)f;
		if (k == n_bins)
			k--;
		double e_k = k == n_bins ? hi : lo + (double)k * step;
		double e_k1 = k + 1 == n_bins ? hi : lo + (double)(k + 1) * step;
		if (v < e_k && k > 0)
			k--;
		else if (v >= e_k1 && k != n_bins - 1)
			k++;
		counts[k]++;
	}
}

/* ---- identification ---- */

size_t bio_probe_rank(const double *neg, size_t n_neg, const double *pos, size_t n_pos)
{
	BIO_ASSERT(n_pos > 0);
	double best = pos[0];
	for (size_t i = 1; i < n_pos; i++)
		if (pos[i] > best)
			best = pos[i];
	size_t r = 0;
	for (size_t i = 0; i < n_neg; i++)
		r += neg[i] >= best;
	return r;
}

struct cmc_job {
	const float *emb;
	size_t dim;
	const size_t *gal_idx, *gal_id, *probe_idx, *probe_id;
	const double *gal_n2;
	size_t n_gal;
	size_t p_begin, p_end;
	size_t *rank;
};

static void *cmc_worker(void *arg)
{
	struct cmc_job *j = arg;
	for (size_t p = j->p_begin; p < j->p_end; p++) {
		const float *ep = j->emb + j->probe_idx[p] * j->dim;
		double pn2 = dot_f32(ep, ep, j->dim);
		/* best positive first, then count negatives >= it (bob.measure rank) */
		double best = -INFINITY;
		for (size_t g = 0; g < j->n_gal; g++)
			if (j->gal_id[g] == j->probe_id[p]) {
				double s = cosine_from(dot_f32(ep, j->emb + j->gal_idx[g] * j->dim,
							       j->dim),
						       pn2, j->gal_n2[g]);
				if (s > best)
					best = s;
			}
		size_t r = 0;
		for (size_t g = 0; g < j->n_gal; g++)
			if (j->gal_id[g] != j->probe_id[p]) {
				double s = cosine_from(dot_f32(ep, j->emb + j->gal_idx[g] * j->dim,
							       j->dim),
						       pn2, j->gal_n2[g]);
				r += s >= best;
			}
		j->rank[p] = r;
	}
	return NULL;
}

/* Gallery by roles (is_gallery) or, when it is NULL, the first gallery_per_id samples of each
 * identity. */
static int cmc_core(struct bio_cmc *cmc, const float *emb, size_t n, size_t dim,
		    const int64_t *labels, const unsigned char *is_gallery, size_t gallery_per_id,
		    int n_threads, struct bio_error *err)
{
	memset(cmc, 0, sizeof *cmc);
	if (!is_gallery && gallery_per_id == 0)
		return bio_error_set(err, BIO_EINVAL, "identification: gallery size per identity is 0");
	size_t *idx = NULL, *id = NULL, *cnt = NULL, *gal_idx = NULL, *gal_id = NULL;
	size_t *probe_idx = NULL, *probe_id = NULL, *rank = NULL, *gal_per = NULL;
	double *gal_n2 = NULL;
	struct cmc_job *jobs = NULL;
	size_t m, n_ids;
	int rc = dense_ids(&idx, &id, &m, &n_ids, labels, n, err);
	if (rc)
		return rc;
	size_t cap = m ? m : 1;
	cnt = calloc(n_ids ? n_ids : 1, sizeof *cnt);
	gal_idx = malloc(cap * sizeof *gal_idx);
	gal_id = malloc(cap * sizeof *gal_id);
	probe_idx = malloc(cap * sizeof *probe_idx);
	probe_id = malloc(cap * sizeof *probe_id);
	rank = malloc(cap * sizeof *rank);
	gal_n2 = malloc(cap * sizeof *gal_n2);
	if (!cnt || !gal_idx || !gal_id || !probe_idx || !probe_id || !rank || !gal_n2) {
		rc = bio_error_set(err, BIO_ENOMEM, "identification: out of memory");
		goto out;
	}
	size_t n_gal = 0, n_probe = 0;
	for (size_t a = 0; a < m; a++) {
		int gal = is_gallery ? is_gallery[idx[a]] != 0 : cnt[id[a]] < gallery_per_id;
		if (gal) {
			cnt[id[a]]++;
			gal_idx[n_gal] = idx[a];
			gal_id[n_gal] = id[a];
			gal_n2[n_gal] = dot_f32(emb + idx[a] * dim, emb + idx[a] * dim, dim);
			n_gal++;
		} else {
			if (!is_gallery)
				cnt[id[a]]++;
			probe_idx[n_probe] = idx[a];
			probe_id[n_probe++] = id[a];
		}
	}
	if (is_gallery) {
		/* leave out probes whose identity has no gallery sample */
		size_t kept = 0;
		for (size_t p = 0; p < n_probe; p++) {
			if (cnt[probe_id[p]] == 0) {
				cmc->n_unmated++;
				continue;
			}
			probe_idx[kept] = probe_idx[p];
			probe_id[kept++] = probe_id[p];
		}
		n_probe = kept;
	}
	cmc->n_gallery = n_gal;
	cmc->n_ids = n_ids;
	cmc->n_probes = n_probe;
	if (is_gallery && n_gal == 0) {
		rc = bio_error_set(err, BIO_EINVAL, "no gallery samples");
		goto out;
	}
	if (n_probe == 0) {
		if (is_gallery)
			rc = bio_error_set(err, BIO_EINVAL,
					   "no probes with an enrolled identity (%zu unmated)",
					   cmc->n_unmated);
		else
			rc = bio_error_set(err, BIO_EINVAL,
					   "no probes: no identity has more than %zu sample%s "
					   "(eval.gallery)",
					   gallery_per_id, gallery_per_id == 1 ? "" : "s");
		goto out;
	}
	jobs = alloc_jobs(&n_threads, n_probe, sizeof *jobs, "identification", err);
	if (!jobs) {
		rc = BIO_ENOMEM;
		goto out;
	}
	for (int t = 0; t < n_threads; t++)
		jobs[t] = (struct cmc_job){emb, dim, gal_idx, gal_id, probe_idx, probe_id, gal_n2,
					   n_gal, n_probe * (size_t)t / (size_t)n_threads,
					   n_probe * (size_t)(t + 1) / (size_t)n_threads, rank};
	run_parallel(cmc_worker, jobs, sizeof *jobs, n_threads);
	/* bob.measure cmc: length = largest number of negatives + 1 */
	gal_per = calloc(n_ids ? n_ids : 1, sizeof *gal_per);
	if (!gal_per) {
		rc = bio_error_set(err, BIO_ENOMEM, "identification: out of memory");
		goto out;
	}
	for (size_t g = 0; g < n_gal; g++)
		gal_per[gal_id[g]]++;
	size_t max_neg = 0;
	for (size_t p = 0; p < n_probe; p++)
		if (n_gal - gal_per[probe_id[p]] > max_neg)
			max_neg = n_gal - gal_per[probe_id[p]];
	cmc->n_ranks = max_neg + 1;
	cmc->rate = calloc(cmc->n_ranks, sizeof *cmc->rate);
	if (!cmc->rate) {
		rc = bio_error_set(err, BIO_ENOMEM, "identification: out of memory");
		goto out;
	}
	for (size_t p = 0; p < n_probe; p++)
		cmc->rate[rank[p]] += 1.0;
	double acc = 0.0;
	for (size_t r = 0; r < cmc->n_ranks; r++) {
		acc += cmc->rate[r];
		cmc->rate[r] = acc / (double)n_probe;
	}
	cmc->probe_id = malloc(n_probe * sizeof *cmc->probe_id);
	if (!cmc->probe_id) {
		rc = bio_error_set(err, BIO_ENOMEM, "identification: out of memory");
		goto out;
	}
	for (size_t p = 0; p < n_probe; p++)
		cmc->probe_id[p] = (uint32_t)labels[probe_idx[p]];
	cmc->probe_rank = rank;
	rank = NULL;
out:
	BIO_FREE(idx, id, cnt, gal_idx, gal_id, probe_idx, probe_id, rank, gal_n2, gal_per, jobs);
	if (rc) {
		size_t keep_p = cmc->n_probes, keep_g = cmc->n_gallery, keep_i = cmc->n_ids;
		size_t keep_u = cmc->n_unmated;
		bio_cmc_destroy(cmc);
		cmc->n_probes = keep_p;
		cmc->n_gallery = keep_g;
		cmc->n_ids = keep_i;
		cmc->n_unmated = keep_u;
	}
	return rc;
}

int bio_cmc_compute(struct bio_cmc *cmc, const float *emb, size_t n, size_t dim,
		    const int64_t *labels, size_t gallery_per_id, int n_threads,
		    struct bio_error *err)
{
	return cmc_core(cmc, emb, n, dim, labels, NULL, gallery_per_id, n_threads, err);
}

int bio_cmc_compute_roles(struct bio_cmc *cmc, const float *emb, size_t n, size_t dim,
			  const int64_t *labels, const unsigned char *is_gallery, int n_threads,
			  struct bio_error *err)
{
	return cmc_core(cmc, emb, n, dim, labels, is_gallery, 0, n_threads, err);
}

double bio_cmc_rank(const struct bio_cmc *cmc, size_t k)
{
	if (!cmc->rate || cmc->n_ranks == 0 || k == 0)
		return 0.0;
	if (k > cmc->n_ranks)
		k = cmc->n_ranks;
	return cmc->rate[k - 1];
}

void bio_cmc_destroy(struct bio_cmc *cmc)
{
	BIO_FREE(cmc->rate, cmc->probe_rank, cmc->probe_id);
	memset(cmc, 0, sizeof *cmc);
}

/* ---- probe-versus-template comparison ---- */

struct tmpl_job {
	const float *emb;
	size_t dim;
	const size_t *probe_idx;
	const uint32_t *probe_lab;
	size_t n_tpl;
	const uint32_t *tpl_lab;
	const size_t *tpl_off;  /* template t's rows in rows[tpl_off[t] .. tpl_off[t + 1]) */
	const float *rows;      /* the template vectors (means, or the enrolled samples) */
	const double *rows_n2;
	size_t p_begin, p_end;
	double *matrix; /* n_probes x n_tpl */
};

static void *tmpl_worker(void *arg)
{
	struct tmpl_job *j = arg;
	for (size_t p = j->p_begin; p < j->p_end; p++) {
		const float *ep = j->emb + j->probe_idx[p] * j->dim;
		double pn2 = dot_f32(ep, ep, j->dim);
		for (size_t t = 0; t < j->n_tpl; t++) {
			double best = -INFINITY;
			for (size_t r = j->tpl_off[t]; r < j->tpl_off[t + 1]; r++) {
				double sc = cosine_from(dot_f32(ep, j->rows + r * j->dim, j->dim), pn2,
							j->rows_n2[r]);
				if (sc > best)
					best = sc;
			}
			j->matrix[p * j->n_tpl + t] = best;
		}
	}
	return NULL;
}

struct lab_idx {
	uint32_t lab;
	size_t i;
};

static int cmp_lab_idx(const void *a, const void *b)
{
	const struct lab_idx *x = a, *y = b;
	if (x->lab != y->lab)
		return (x->lab > y->lab) - (x->lab < y->lab);
	return (x->i > y->i) - (x->i < y->i);
}

int bio_scores_templates(struct bio_scores *s, struct bio_cmc *cmc, const float *emb, size_t n,
			 size_t dim, const int64_t *labels, const unsigned char *is_gallery,
			 enum bio_template_kind kind, uint64_t max_pairs, int n_threads,
			 struct bio_error *err)
{
	memset(s, 0, sizeof *s);
	memset(cmc, 0, sizeof *cmc);
	int rc = 0;
	size_t n_gal = 0, n_probe = 0, n_tpl = 0, cap = n ? n : 1;
	struct lab_idx *gal = malloc(cap * sizeof *gal);
	size_t *probe_idx = malloc(cap * sizeof *probe_idx);
	uint32_t *lab32 = malloc(cap * sizeof *lab32), *probe_lab = malloc(cap * sizeof *probe_lab);
	size_t *tpl_off = malloc((cap + 1) * sizeof *tpl_off);
	uint32_t *tpl_lab = malloc(cap * sizeof *tpl_lab);
	float *rows = NULL;
	double *rows_n2 = NULL, *matrix = NULL;
	struct tmpl_job *jobs = NULL;
	if (!gal || !probe_idx || !lab32 || !probe_lab || !tpl_off || !tpl_lab) {
		rc = bio_error_set(err, BIO_ENOMEM, "templates: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (labels[i] < 0)
			continue;
		if (labels[i] > (int64_t)UINT32_MAX) {
			rc = bio_error_set(err, BIO_ELIMIT, "templates: label %lld too large",
					   (long long)labels[i]);
			goto out;
		}
		lab32[i] = (uint32_t)labels[i];
		if (is_gallery[i]) {
			gal[n_gal++] = (struct lab_idx){lab32[i], i};
		} else {
			probe_idx[n_probe] = i;
			probe_lab[n_probe++] = lab32[i];
		}
	}
	if (n_gal == 0) {
		rc = bio_error_set(err, BIO_EINVAL, "no enrolled samples (no templates)");
		goto out;
	}
	if (n_probe == 0) {
		rc = bio_error_set(err, BIO_EINVAL, "no probes (every sample is enrolled)");
		goto out;
	}
	/* enrolled samples by label (stable: input order within a label) */
	qsort(gal, n_gal, sizeof *gal, cmp_lab_idx);
	for (size_t a = 0; a < n_gal; a++)
		if (a == 0 || gal[a].lab != gal[a - 1].lab) {
			tpl_off[n_tpl] = a;
			tpl_lab[n_tpl++] = gal[a].lab;
		}
	tpl_off[n_tpl] = n_gal;
	if ((uint64_t)n_probe * n_tpl > max_pairs) {
		rc = bio_error_set(err, BIO_ELIMIT,
				   "%zu probes x %zu templates make more than eval.max_pairs (%llu) "
				   "comparisons", n_probe, n_tpl, (unsigned long long)max_pairs);
		goto out;
	}
	size_t n_rows = kind == BIO_TEMPLATE_MEAN ? n_tpl : n_gal;
	rows = malloc(n_rows * dim * sizeof *rows);
	rows_n2 = malloc(n_rows * sizeof *rows_n2);
	matrix = malloc((n_probe * n_tpl > 0 ? n_probe * n_tpl : 1) * sizeof *matrix);
	if (!rows || !rows_n2 || !matrix) {
		rc = bio_error_set(err, BIO_ENOMEM, "templates: out of memory");
		goto out;
	}
	if (kind == BIO_TEMPLATE_MEAN) {
		double *acc = calloc(dim, sizeof *acc);
		if (!acc) {
			rc = bio_error_set(err, BIO_ENOMEM, "templates: out of memory");
			goto out;
		}
		for (size_t t = 0; t < n_tpl; t++) {
			memset(acc, 0, dim * sizeof *acc);
			for (size_t a = tpl_off[t]; a < tpl_off[t + 1]; a++) {
				const float *e = emb + gal[a].i * dim;
				double n2 = dot_f32(e, e, dim);
				double inv = n2 > 0.0 ? 1.0 / sqrt(n2) : 0.0;
				for (size_t k = 0; k < dim; k++)
					acc[k] += (double)e[k] * inv;
			}
			double cnt = (double)(tpl_off[t + 1] - tpl_off[t]);
			for (size_t k = 0; k < dim; k++)
				rows[t * dim + k] = (float)(acc[k] / cnt);
			tpl_off[t] = t;
		}
		tpl_off[n_tpl] = n_tpl;
		free(acc);
	} else {
		for (size_t a = 0; a < n_gal; a++)
			memcpy(rows + a * dim, emb + gal[a].i * dim, dim * sizeof *rows);
	}
	for (size_t r = 0; r < n_rows; r++)
		rows_n2[r] = dot_f32(rows + r * dim, rows + r * dim, dim);
	jobs = alloc_jobs(&n_threads, n_probe, sizeof *jobs, "templates", err);
	if (!jobs) {
		rc = BIO_ENOMEM;
		goto out;
	}
	for (int t = 0; t < n_threads; t++)
		jobs[t] = (struct tmpl_job){emb, dim, probe_idx, probe_lab, n_tpl, tpl_lab, tpl_off,
					    rows, rows_n2, n_probe * (size_t)t / (size_t)n_threads,
					    n_probe * (size_t)(t + 1) / (size_t)n_threads, matrix};
	run_parallel(tmpl_worker, jobs, sizeof *jobs, n_threads);
	/* scores in (probe, template) order, their ids, and each mated probe's rank */
	size_t n_gen = 0, n_imp = 0, n_mated = 0;
	for (size_t p = 0; p < n_probe; p++)
		for (size_t t = 0; t < n_tpl; t++) {
			int g = tpl_lab[t] == probe_lab[p];
			n_gen += g;
			n_imp += !g;
			n_mated += g;
		}
	s->genuine = malloc((n_gen ? n_gen : 1) * sizeof *s->genuine);
	s->impostor = malloc((n_imp ? n_imp : 1) * sizeof *s->impostor);
	s->gen_id = malloc((n_gen ? n_gen : 1) * sizeof *s->gen_id);
	s->imp_id = malloc((n_imp ? 2 * n_imp : 1) * sizeof *s->imp_id);
	cmc->n_ranks = n_tpl;
	cmc->rate = calloc(n_tpl, sizeof *cmc->rate);
	cmc->probe_rank = malloc((n_mated ? n_mated : 1) * sizeof *cmc->probe_rank);
	cmc->probe_id = malloc((n_mated ? n_mated : 1) * sizeof *cmc->probe_id);
	if (!s->genuine || !s->impostor || !s->gen_id || !s->imp_id || !cmc->rate ||
	    !cmc->probe_rank || !cmc->probe_id) {
		rc = bio_error_set(err, BIO_ENOMEM, "templates: out of memory");
		goto out;
	}
	for (size_t p = 0; p < n_probe; p++) {
		const double *row = matrix + p * n_tpl;
		double own = NAN;
		for (size_t t = 0; t < n_tpl; t++) {
			if (tpl_lab[t] == probe_lab[p]) {
				own = row[t];
				s->gen_id[s->n_genuine] = probe_lab[p];
				s->genuine[s->n_genuine++] = row[t];
			} else {
				s->imp_id[2 * s->n_impostor] = probe_lab[p];
				s->imp_id[2 * s->n_impostor + 1] = tpl_lab[t];
				s->impostor[s->n_impostor++] = row[t];
			}
		}
		if (isnan(own)) {
			cmc->n_unmated++;
			continue;
		}
		size_t r = 0;
		for (size_t t = 0; t < n_tpl; t++)
			r += tpl_lab[t] != probe_lab[p] && row[t] >= own;
		cmc->probe_rank[cmc->n_probes] = r;
		cmc->probe_id[cmc->n_probes++] = probe_lab[p];
		cmc->rate[r] += 1.0;
	}
	cmc->n_gallery = n_gal;
	cmc->n_ids = n_tpl;
	if (cmc->n_probes == 0) {
		rc = bio_error_set(err, BIO_EINVAL, "no probes with an enrolled identity (%zu unmated)",
				   cmc->n_unmated);
		goto out;
	}
	double acc = 0.0;
	for (size_t r = 0; r < cmc->n_ranks; r++) {
		acc += cmc->rate[r];
		cmc->rate[r] = acc / (double)cmc->n_probes;
	}
out:
	BIO_FREE(gal, probe_idx, lab32, probe_lab, tpl_off, tpl_lab, rows, rows_n2, matrix, jobs);
	if (rc) {
		size_t keep[4] = {cmc->n_probes, cmc->n_gallery, cmc->n_ids, cmc->n_unmated};
		bio_cmc_destroy(cmc);
		cmc->n_probes = keep[0];
		cmc->n_gallery = keep[1];
		cmc->n_ids = keep[2];
		cmc->n_unmated = keep[3];
		bio_scores_destroy(s);
	}
	return rc;
}

/* ---- the subjects bootstrap ---- */

void bio_boot_weights(uint32_t *w, const uint32_t *units, size_t n_units, size_t n_labels,
		      uint64_t seed, uint64_t b)
{
	struct bio_rng r;
	memset(w, 0, n_labels * sizeof *w);
	bio_rng_seed1(&r, seed, b);
	for (size_t i = 0; i < n_units; i++)
		w[units[bio_rng_below(&r, n_units)]]++;
}

double bio_percentile(const double *x, size_t n, double q)
{
	BIO_ASSERT(n > 0);
	double h = q * (double)(n - 1);
	size_t lo = (size_t)floor(h);
	if (lo >= n - 1)
		return x[n - 1];
	return x[lo] + (h - (double)lo) * (x[lo + 1] - x[lo]);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* CI of vals[0..n) (NaN = invalid replicate); vals is reordered. */
static void boot_ci(struct bio_boot_ci *ci, double *vals, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!isnan(vals[i]))
			vals[k++] = vals[i];
	ci->n_valid = k;
	if (k == 0) {
		ci->lo = ci->hi = NAN;
		return;
	}
	qsort(vals, k, sizeof *vals, cmp_double);
	ci->lo = bio_percentile(vals, k, 0.025);
	ci->hi = bio_percentile(vals, k, 0.975);
}

/* One comparison of the bootstrap's merged, sorted list: its score and who was compared; a
 * genuine one has b = n_labels, whose weight is always 1 (so every weight is w[a] w[b], with no
 * branch in the passes). */
struct boot_cmp {
	double v;
	uint32_t a, b;
};

static int cmp_boot_cmp(const void *x, const void *y)
{
	const struct boot_cmp *p = x, *q = y;
	if (p->v != q->v)
		return (p->v > q->v) - (p->v < q->v);
	if (p->a != q->a)
		return (p->a > q->a) - (p->a < q->a);
	return (p->b > q->b) - (p->b < q->b);
}

static inline uint64_t boot_w(const struct boot_cmp *c, const uint32_t *w)
{
	return (uint64_t)w[c->a] * w[c->b];
}

/* bob.measure's eer_threshold sweep (see eer_threshold) over the merged comparisons, counts
 * replaced by weights: the state is evaluated before each group of equal scores is consumed
 * while both sets keep weight (last minimum wins), and once more after (strictly better only);
 * comparisons of weight 0 leave the state as it is. Returns (FMR + FNMR) / 2 at the minimum. */
static double boot_eer(const struct boot_cmp *c, size_t n, const uint32_t *w, uint32_t gen_b,
		       uint64_t tg, uint64_t ti)
{
	double min_pred = 1e8, best = NAN, far = 1.0, frr = 0.0;
	uint64_t cg = 0, cimp = 0;
	size_t i = 0;
	while (i < n && cg < tg && cimp < ti) {
		double pred = fabs(far - frr);
		if (pred <= min_pred) {
			min_pred = pred;
			best = (far + frr) / 2.0;
		}
		double v = c[i].v;
		for (; i < n && c[i].v == v; i++) {
			uint64_t x = boot_w(&c[i], w), g = c[i].b == gen_b;
			cg += x * g;
			cimp += x * (1 - g);
		}
		far = (double)(ti - cimp) / (double)ti;
		frr = (double)cg / (double)tg;
	}
	if (fabs(far - frr) < min_pred)
		best = (far + frr) / 2.0;
	return best;
}

/* fnmr_at_fmr over the merged comparisons with weights: walking down groups of equal scores,
 * impostor groups are accepted while the accepted impostor weight stays <= target; the FNMR is
 * the genuine weight at or below the first rejected impostor score. */
static double boot_fnmr_at(const struct boot_cmp *c, size_t n, const uint32_t *w,
			   uint32_t gen_b, uint64_t tg, uint64_t ti, double target)
{
	uint64_t acc_i = 0, above_g = 0;
	size_t top = n;
	while (top > 0) {
		double v = c[top - 1].v;
		uint64_t gw = 0, iw = 0;
		size_t first = top;
		while (first > 0 && c[first - 1].v == v) {
			first--;
			uint64_t x = boot_w(&c[first], w), g = c[first].b == gen_b;
			gw += x * g;
			iw += x * (1 - g);
		}
		if (iw > 0 && (double)(acc_i + iw) / (double)ti > target)
			return (double)(tg - above_g) / (double)tg;
		acc_i += iw;
		above_g += gw;
		top = first;
	}
	return 0.0; /* every impostor may be accepted */
}

struct boot_job {
	const struct boot_cmp *c;
	size_t n, n_labels, n_units;
	const uint32_t *units;
	uint64_t seed;
	size_t b_begin, b_end;
	double *out; /* [n_rep][BIO_BOOT_N_VERIF] */
	int failed;
};

static void *boot_worker(void *arg)
{
	struct boot_job *j = arg;
	uint32_t *w = malloc((j->n_labels + 1) * sizeof *w), gen_b = (uint32_t)j->n_labels;
	if (!w) {
		j->failed = 1;
		return NULL;
	}
	for (size_t b = j->b_begin; b < j->b_end; b++) {
		double *o = j->out + b * BIO_BOOT_N_VERIF;
		bio_boot_weights(w, j->units, j->n_units, j->n_labels, j->seed, b);
		w[gen_b] = 1;
		uint64_t tg = 0, ti = 0;
		for (size_t i = 0; i < j->n; i++) {
			uint64_t x = boot_w(&j->c[i], w), g = j->c[i].b == gen_b;
			tg += x * g;
			ti += x * (1 - g);
		}
		if (tg == 0 || ti == 0) {
			for (int k = 0; k < BIO_BOOT_N_VERIF; k++)
				o[k] = NAN;
			continue;
		}
		o[0] = boot_eer(j->c, j->n, w, gen_b, tg, ti);
		for (int k = 0; k < BIO_N_FMR_TARGETS; k++)
			o[1 + k] = boot_fnmr_at(j->c, j->n, w, gen_b, tg, ti, bio_fmr_targets[k]);
	}
	free(w);
	return NULL;
}

int bio_boot_verif(struct bio_boot_ci ci[BIO_BOOT_N_VERIF], const struct bio_scores *s,
		   const uint32_t *units, size_t n_units, size_t n_labels, size_t n_rep,
		   uint64_t seed, int n_threads, struct bio_error *err)
{
	int rc = 0;
	BIO_ASSERT(s->gen_id && s->imp_id);
	if (n_rep > SIZE_MAX / (BIO_BOOT_N_VERIF * sizeof(double)))
		return bio_error_set(err, BIO_ELIMIT, "bootstrap: too many replicates");
	if (n_labels >= UINT32_MAX)
		return bio_error_set(err, BIO_ELIMIT, "bootstrap: too many labels");
	size_t n = s->n_genuine + s->n_impostor;
	struct boot_cmp *c = malloc((n ? n : 1) * sizeof *c);
	double *out = malloc((n_rep ? n_rep : 1) * BIO_BOOT_N_VERIF * sizeof *out);
	double *col = malloc((n_rep ? n_rep : 1) * sizeof *col);
	n_threads = clamp_threads(n_threads, n_rep);
	struct boot_job *jobs = calloc((size_t)n_threads, sizeof *jobs);
	if (!c || !out || !col || !jobs) {
		rc = bio_error_set(err, BIO_ENOMEM, "bootstrap: out of memory");
		goto out;
	}
	/* one merged list sorted once: each replicate is then linear passes over it */
	for (size_t i = 0; i < s->n_genuine; i++)
		c[i] = (struct boot_cmp){s->genuine[i], s->gen_id[i], (uint32_t)n_labels};
	for (size_t i = 0; i < s->n_impostor; i++)
		c[s->n_genuine + i] = (struct boot_cmp){s->impostor[i], s->imp_id[2 * i],
						       s->imp_id[2 * i + 1]};
	qsort(c, n, sizeof *c, cmp_boot_cmp);
	for (int t = 0; t < n_threads; t++)
		jobs[t] = (struct boot_job){c, n, n_labels, n_units, units, seed,
					    n_rep * (size_t)t / (size_t)n_threads,
					    n_rep * (size_t)(t + 1) / (size_t)n_threads, out, 0};
	run_parallel(boot_worker, jobs, sizeof *jobs, n_threads);
	for (int t = 0; t < n_threads; t++)
		if (jobs[t].failed) {
			rc = bio_error_set(err, BIO_ENOMEM, "bootstrap: out of memory");
			goto out;
		}
	for (int k = 0; k < BIO_BOOT_N_VERIF; k++) {
		for (size_t b = 0; b < n_rep; b++)
			col[b] = out[b * BIO_BOOT_N_VERIF + (size_t)k];
		boot_ci(&ci[k], col, n_rep);
	}
out:
	BIO_FREE(c, out, col, jobs);
	return rc;
}

int bio_boot_rank1(struct bio_boot_ci *ci, const struct bio_cmc *cmc, const uint32_t *units,
		   size_t n_units, size_t n_labels, size_t n_rep, uint64_t seed,
		   struct bio_error *err)
{
	uint32_t *w = malloc((n_labels ? n_labels : 1) * sizeof *w);
	double *vals = malloc((n_rep ? n_rep : 1) * sizeof *vals);
	if (!w || !vals) {
		free(w);
		free(vals);
		return bio_error_set(err, BIO_ENOMEM, "bootstrap: out of memory");
	}
	for (size_t b = 0; b < n_rep; b++) {
		bio_boot_weights(w, units, n_units, n_labels, seed, b);
		uint64_t hit = 0, tot = 0;
		for (size_t p = 0; p < cmc->n_probes; p++) {
			uint64_t x = w[cmc->probe_id[p]];
			tot += x;
			hit += cmc->probe_rank[p] == 0 ? x : 0;
		}
		vals[b] = tot ? (double)hit / (double)tot : NAN;
	}
	boot_ci(ci, vals, n_rep);
	free(w);
	free(vals);
	return 0;
}
