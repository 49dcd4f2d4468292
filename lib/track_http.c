/* Tracking to an MLflow tracking server over its REST API (mlflow/server/handlers.py,
 * mlflow/protos/service.proto), journaled in a local file store (the spool) so that nothing is
 * lost while the server is slow or down.
 *
 * Every logging call of a server run goes to a file-store run of the spool (track.c); a flush
 * compares that run with what the server acknowledged, recorded in <run dir>/bio-remote.json, and
 * sends the difference: experiments/get-by-name (+ create) and runs/create for a run not created
 * yet, runs/log-batch (at most 100 params, 100 tags, 1000 metrics a call), artifacts through the
 * server's proxy (PUT /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>),
 * registered-models/create, model-versions/create and registered-models/alias, runs/update.
 * Metric points are not idempotent on the server (MLflow stores a repeated point again), so the
 * acknowledged count of each metric is kept, and a metric whose send may have been applied
 * without an answer (a timeout, a crash) is compared with metrics/get-history before more is
 * sent: each point arrives once. Params and tags may be resent (same values); runs/create and
 * model-versions/create are looked up by search after an unanswered try. */
#include "bio/track.h"
#include "bio/config.h"
#include "bio/http.h"
#include "track_priv.h"

#include "bio/clock.h"
#include "bio/fs.h"
#include "bio/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "free_list.h"

#define STATE_FILE "bio-remote.json"
#define MAX_BATCH_METRICS 1000
#define MAX_BATCH_PARAMS 100
#define MAX_BATCH_TAGS 100
#define HISTORY_PAGE 25000
#define FLUSH_WAIT_MAX_MS 60000

struct remote {
	struct bio_http *http;
	char *state_path;
	char *spool_root;
	char *local_id;
	json_t *st;            /* the acknowledged state, as in STATE_FILE */
	int64_t next_try_ms;   /* after a failure, no try before this */
	int64_t wait_ms;
	int retries;           /* of a request, when not failing */
	struct bio_error refusal; /* an entry the server refused, reported by the flush's end */
	struct bio_error last; /* the failure that set next_try_ms */
};

static const char *const status_names[] = {"", "RUNNING", "SCHEDULED", "FINISHED", "FAILED",
					   "KILLED"};

static int nomem(struct bio_error *err)
{
	return bio_error_set(err, BIO_ENOMEM, "out of memory (tracking server client)");
}

/* "<prefix><raw, URL-escaped><suffix>", the path of a GET with one query value (new; NULL when
 * out of memory or raw is NULL). */
static char *endpoint(const char *prefix, const char *raw, const char *suffix)
{
	char *q = raw ? bio_http_escape(raw, 0) : NULL;
	char *ep = q ? bio_str_fmt("%s%s%s", prefix, q, suffix) : NULL;
	free(q);
	return ep;
}

int bio_track_uri_is_server(const char *uri)
{
	return uri && (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0);
}

void bio_track_opts_init(struct bio_track_opts *o)
{
	struct bio_http_opts h; /* the HTTP client's own defaults, one table for both */
	bio_http_opts_init(&h);
	memset(o, 0, sizeof *o);
	o->timeout_s = h.timeout_s;
	o->connect_timeout_s = h.connect_timeout_s;
	o->retries = h.retries;
	o->backoff_s = h.backoff_s;
}

int bio_track_opts_from_config(struct bio_track_opts *o, const struct bio_config *cfg,
			       struct bio_error *err)
{
	bio_track_opts_init(o);
	int64_t retries;
	int rc = bio_config_get_double_range(cfg, "tracking.timeout", 0.001, 86400,
					     &o->timeout_s, err);
	if (!rc)
		rc = bio_config_get_double_range(cfg, "tracking.connect_timeout", 0.001, 86400,
						 &o->connect_timeout_s, err);
	if (!rc)
		rc = bio_config_get_int_range(cfg, "tracking.retries", 0, 100, &retries,
					      err);
	if (!rc) {
		o->retries = (int)retries;
		rc = bio_config_get_double_range(cfg, "tracking.backoff", 0, 3600,
						 &o->backoff_s, err);
	}
	if (!rc)
		rc = bio_config_get_str(cfg, "tracking.cache_dir", &o->cache_dir, err);
	return rc;
}

/* The cache directory (new string). */
static char *cache_dir(const struct bio_track_opts *o)
{
	if (o && o->cache_dir && *o->cache_dir)
		return strdup(o->cache_dir);
	const char *x = getenv("XDG_CACHE_HOME");
	if (x && *x == '/')
		return bio_str_fmt("%s/biopipe", x);
	const char *home = getenv("HOME");
	return bio_str_fmt("%s/.cache/biopipe", home && *home ? home : "/tmp");
}

static struct bio_http *http_for(const char *uri, const struct bio_track_opts *o,
				 struct bio_error *err)
{
	struct bio_track_opts d;
	if (!o) {
		bio_track_opts_init(&d);
		o = &d;
	}
	struct bio_http_opts ho;
	bio_http_opts_init(&ho);
	ho.timeout_s = o->timeout_s > 0 ? o->timeout_s : 30;
	ho.connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 5;
	ho.retries = o->retries >= 0 ? o->retries : 0;
	ho.backoff_s = o->backoff_s >= 0 ? o->backoff_s : 0;
	return bio_http_new(uri, &ho, err);
}

/* ---- the REST API ---- */

/* A request to /api/2.0/mlflow/<endpoint>; body taken (may be NULL). */
static int api(json_t **resp, enum bio_http_fate *fate, struct bio_http *h, const char *method,
	       const char *endpoint, json_t *body, int idempotent, struct bio_error *err)
{
	char *path = bio_str_fmt("/api/2.0/mlflow/%s", endpoint);
	if (!path) {
		json_decref(body);
		return nomem(err);
	}
	int rc = bio_http_json(resp, NULL, fate, h, method, path, body, idempotent, err);
	json_decref(body);
	free(path);
	return rc;
}

static int already_exists(const struct bio_error *e)
{
	return e && e->code == BIO_EINVAL && strstr(e->msg, "RESOURCE_ALREADY_EXISTS");
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* An integer field that proto JSON may give as a number or a string. */
static int64_t jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

/* A double field: a number or "NaN"/"Infinity"/"-Infinity". */
static double jdouble(const json_t *v)
{
	if (json_is_number(v))
		return json_number_value(v);
	const char *s = json_string_value(v);
	if (!s)
		return 0;
	if (strcmp(s, "NaN") == 0)
		return NAN;
	if (strcmp(s, "Infinity") == 0)
		return INFINITY;
	if (strcmp(s, "-Infinity") == 0)
		return -INFINITY;
	return strtod(s, NULL);
}

static json_t *jdouble_new(double v)
{
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v < 0 ? "-Infinity" : "Infinity");
	return json_real(v);
}

/* The proxy path of an artifact URI ("mlflow-artifacts:/0/<run>/artifacts" or
 * "mlflow-artifacts://host:port/0/..." -> "0/<run>/artifacts"); new, or NULL when the URI is
 * not one the server proxies. */
static char *proxy_path(const char *uri)
{
	const char *p;
	if (strncmp(uri, "mlflow-artifacts:", 17) == 0) {
		p = uri + 17;
		if (strncmp(p, "//", 2) == 0) {
			p = strchr(p + 2, '/');
			if (!p)
				return strdup("");
		}
	} else if ((p = strstr(uri, "/api/2.0/mlflow-artifacts/artifacts")) &&
		   bio_track_uri_is_server(uri)) {
		p += strlen("/api/2.0/mlflow-artifacts/artifacts");
	} else {
		return NULL;
	}
	while (*p == '/')
		p++;
	char *s = strdup(p);
	size_t n = s ? strlen(s) : 0;
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

/* ---- the acknowledged state ---- */

static int state_save(struct remote *rm, struct bio_error *err)
{
	char *text = json_dumps(rm->st, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (!text)
		return nomem(err);
	int rc = bio_fs_write_atomic(rm->state_path, text, strlen(text), NULL, 0, err);
	free(text);
	return rc;
}

static json_t *state_obj(struct remote *rm, const char *key)
{
	json_t *o = json_object_get(rm->st, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(rm->st, key, o);
	}
	return o;
}

static void remote_free(void *ud)
{
	struct remote *rm = ud;
	if (!rm)
		return;
	bio_http_free(rm->http);
	json_decref(rm->st);
	BIO_FREE(rm->state_path, rm->spool_root, rm->local_id, rm);
}

static const char *server_id(const struct remote *rm)
{
	return jstr(rm->st, "run_id");
}

/* ---- walking the journal ---- */

typedef int (*file_fn)(void *ud, const char *rel, const char *path, struct bio_error *err);

/* Calls fn for every regular file under dir (recursively, hidden names skipped) with its path
 * relative to dir; sorted by name so that sends are reproducible. */
static int walk(const char *dir, const char *rel, file_fn fn, void *ud, struct bio_error *err)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : bio_error_set(err, BIO_EIO, "%s: %s", dir, strerror(errno));
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;
		if (!rc && nm[0] != '.') {
			char *p = bio_str_fmt("%s/%s", dir, nm);
			char *r = *rel ? bio_str_fmt("%s/%s", rel, nm) : strdup(nm);
			struct stat st;
			int ok = p && r && stat(p, &st) == 0;
			if (!p || !r)
				rc = nomem(err);
			else if (ok && S_ISDIR(st.st_mode))
				rc = walk(p, r, fn, ud, err);
			else if (ok && S_ISREG(st.st_mode))
				rc = fn(ud, r, p, err);
			free(p);
			free(r);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static char *slurp(const char *path, size_t max, struct bio_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(max + 1);
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf) {
		nomem(err);
		return NULL;
	}
	if (bad || n > max) {
		free(buf);
		bio_error_set(err, BIO_ELIMIT, "%s: unreadable or larger than %zu bytes", path, max);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- run creation ---- */

static int experiment_id(char **id, struct remote *rm, const char *name, struct bio_error *err)
{
	*id = NULL;
	char *ep = endpoint("experiments/get-by-name?experiment_name=", name, "");
	if (!ep)
		return nomem(err);
	json_t *resp = NULL;
	int rc = api(&resp, NULL, rm->http, "GET", ep, NULL, 1, err);
	if (rc == BIO_ENOTFOUND) {
		json_t *body = json_pack("{s:s}", "name", name);
		rc = api(&resp, NULL, rm->http, "POST", "experiments/create", body, 0, err);
		if (rc == 0) {
			const char *v = jstr(resp, "experiment_id");
			*id = v ? strdup(v) : NULL;
		} else if (already_exists(err)) { /* created meanwhile */
			rc = api(&resp, NULL, rm->http, "GET", ep, NULL, 1, err);
		}
	}
	if (rc == 0 && !*id) {
		const char *v = jstr(json_object_get(resp, "experiment"), "experiment_id");
		*id = v ? strdup(v) : NULL;
		if (!*id)
			rc = bio_error_set(err, BIO_EFORMAT, "%s: experiment %s: no experiment_id in "
					   "the answer", bio_http_base(rm->http), name);
	}
	json_decref(resp);
	free(ep);
	return rc;
}

static void state_set_run(json_t *st, const json_t *info)
{
	json_object_set_new(st, "run_id", json_string(jstr(info, "run_id")));
	const char *au = jstr(info, "artifact_uri");
	if (au)
		json_object_set_new(st, "artifact_uri", json_string(au));
	const char *exp = jstr(info, "experiment_id");
	if (exp)
		json_object_set_new(st, "experiment_id", json_string(exp));
}

/* A run created by an unanswered runs/create: found by its tag bio.spool_run_id. */
static int find_created(struct remote *rm, const char *exp_id, struct bio_error *err)
{
	char *filter = bio_str_fmt("tags.`bio.spool_run_id` = '%s'", rm->local_id);
	if (!filter)
		return nomem(err);
	json_t *body = json_pack("{s:[s],s:s,s:i}", "experiment_ids", exp_id, "filter", filter,
				 "max_results", 1);
	free(filter);
	json_t *resp = NULL;
	int rc = api(&resp, NULL, rm->http, "POST", "runs/search", body, 1, err);
	json_t *runs = json_object_get(resp, "runs");
	if (rc == 0 && json_array_size(runs) > 0)
		state_set_run(rm->st, json_object_get(json_array_get(runs, 0), "info"));
	json_decref(resp);
	return rc;
}

static int ensure_run(struct remote *rm, const struct bio_track_run *run, struct bio_error *err)
{
	if (server_id(rm))
		return 0;
	struct bio_track_run_info info;
	bio_track_run_info(run, &info);
	const char *exp_name = jstr(rm->st, "experiment");
	char *exp_id = NULL;
	int rc = experiment_id(&exp_id, rm, exp_name && *exp_name ? exp_name : "Default", err);
	if (rc)
		return rc;
	if (json_is_true(json_object_get(rm->st, "create_sent"))) {
		rc = find_created(rm, exp_id, err);
		if (rc || server_id(rm))
			goto out;
	}
	json_object_set_new(rm->st, "create_sent", json_true());
	if ((rc = state_save(rm, err)) != 0)
		goto out;
	json_t *body = json_pack("{s:s,s:s,s:s,s:I,s:[{s:s,s:s}]}", "experiment_id", exp_id,
				 "run_name", info.run_name, "user_id", info.user_id, "start_time",
				 (json_int_t)info.start_time, "tags", "key", "bio.spool_run_id",
				 "value", rm->local_id);
	json_t *resp = NULL;
	enum bio_http_fate fate = BIO_HTTP_OK;
	rc = api(&resp, &fate, rm->http, "POST", "runs/create", body, 0, err);
	if (rc == 0) {
		const json_t *ri = json_object_get(json_object_get(resp, "run"), "info");
		if (!jstr(ri, "run_id")) {
			rc = bio_error_set(err, BIO_EFORMAT, "%s: runs/create: no run_id in the answer",
					   bio_http_base(rm->http));
		} else {
			state_set_run(rm->st, ri);
			json_object_set_new(rm->st, "status", json_string("RUNNING"));
		}
	}
	if (rc == 0 || fate == BIO_HTTP_NOT_SENT || fate == BIO_HTTP_REFUSED)
		json_object_del(rm->st, "create_sent");
	json_decref(resp);
	int rc2 = state_save(rm, err);
	if (!rc)
		rc = rc2;
out:
	free(exp_id);
	return rc;
}

/* ---- params and tags ---- */

struct kv_ctx {
	struct remote *rm;
	const char *kind;    /* "params" or "tags" */
	json_t *acked;       /* state object key -> value */
	json_t *batch;       /* array of {key, value} not yet acknowledged */
	json_t *batch_vals;  /* key -> value of batch */
};

/* Sends the batch; a batch the server refuses (a 4xx: a param it will not change, a value too
 * long for it) is sent again one entry at a time, and an entry still refused is recorded in the
 * state ("refused") and not sent again, since it would block the rest of the run forever; the
 * first refusal is reported once, by the end of the flush. */
static int send_kv_batch(struct kv_ctx *c, struct bio_error *err)
{
	if (json_array_size(c->batch) == 0)
		return 0;
	json_t *body = json_pack("{s:s,s:O}", "run_id", server_id(c->rm), c->kind, c->batch);
	enum bio_http_fate fate = BIO_HTTP_OK;
	int rc = api(NULL, &fate, c->rm->http, "POST", "runs/log-batch", body, 1, err);
	if (rc == 0) {
		json_object_update(c->acked, c->batch_vals);
	} else if (fate == BIO_HTTP_REFUSED && rc == BIO_EINVAL) {
		rc = 0;
		json_t *refused = state_obj(c->rm, "refused");
		for (size_t i = 0; !rc && i < json_array_size(c->batch); i++) {
			json_t *one = json_array_get(c->batch, i);
			const char *k = jstr(one, "key");
			struct bio_error e1 = {0};
			enum bio_http_fate f1 = BIO_HTTP_OK;
			int r1 = api(NULL, &f1, c->rm->http, "POST", "runs/log-batch",
				     json_pack("{s:s,s:[O]}", "run_id", server_id(c->rm), c->kind, one),
				     1, &e1);
			if (r1 && !(f1 == BIO_HTTP_REFUSED && r1 == BIO_EINVAL)) {
				rc = r1;
				if (err)
					*err = e1;
				break;
			}
			json_object_set(c->acked, k, json_object_get(one, "value"));
			if (r1) {
				char *rk = bio_str_fmt("%s/%s", c->kind, k);
				if (rk)
					json_object_set_new(refused, rk, json_string(e1.msg));
				free(rk);
				if (!c->rm->refusal.code)
					bio_error_set(&c->rm->refusal, BIO_EINVAL, "the server refused %s "
						      "'%s' (not sent again): %s", c->kind, k, e1.msg);
			}
		}
	}
	int r2 = state_save(c->rm, rc ? NULL : err);
	if (!rc)
		rc = r2;
	json_array_clear(c->batch);
	json_object_clear(c->batch_vals);
	return rc;
}

static int kv_file(void *ud, const char *rel, const char *path, struct bio_error *err)
{
	struct kv_ctx *c = ud;
	char *v = slurp(path, BIO_TRACK_MAX_PARAM_VALUE + 16, err);
	if (!v)
		return err ? err->code : BIO_EIO;
	const char *old = jstr(c->acked, rel);
	int rc = 0;
	if (!old || strcmp(old, v) != 0) {
		json_array_append_new(c->batch, json_pack("{s:s,s:s}", "key", rel, "value", v));
		json_object_set_new(c->batch_vals, rel, json_string(v));
		if (json_array_size(c->batch) >= (strcmp(c->kind, "params") == 0 ? MAX_BATCH_PARAMS
										  : MAX_BATCH_TAGS))
			rc = send_kv_batch(c, err);
	}
	free(v);
	return rc;
}

static int send_kv(struct remote *rm, const struct bio_track_run *run, const char *kind,
		   struct bio_error *err)
{
	char *dir = bio_str_fmt("%s/%s", bio_track_run_dir(run), kind);
	struct kv_ctx c = {rm, kind, state_obj(rm, kind), json_array(), json_object()};
	int rc = dir && c.batch && c.batch_vals ? 0 : nomem(err);
	if (!rc)
		rc = walk(dir, "", kv_file, &c, err);
	if (!rc)
		rc = send_kv_batch(&c, err);
	json_decref(c.batch);
	json_decref(c.batch_vals);
	free(dir);
	return rc;
}

/* ---- metrics ---- */

struct point {
	int64_t ts, step;
	double value;
};

/* Parses a metric file of "<ts> <value> <step>" lines. */
static int read_points(struct point **out, size_t *n_out, const char *path, struct bio_error *err)
{
	*out = NULL;
	*n_out = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
	size_t n = 0, cap = 0;
	struct point *p = NULL;
	char line[256];
	int rc = 0;
	while (fgets(line, sizeof line, f)) {
		if (!strchr(line, '\n'))
			break; /* a line being appended: not yet complete */
		char *a = line, *end;
		struct point q;
		q.ts = strtoll(a, &end, 10);
		if (end == a)
			continue;
		a = end;
		q.value = strtod(a, &end);
		if (end == a)
			continue;
		a = end;
		q.step = strtoll(a, &end, 10);
		if (end == a)
			q.step = 0;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			struct point *np = realloc(p, cap * sizeof *p);
			if (!np) {
				rc = nomem(err);
				break;
			}
			p = np;
		}
		p[n++] = q;
	}
	fclose(f);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	*n_out = n;
	return 0;
}

/* MLflow's SQL store keeps +-inf as +-DBL_MAX. */
static double stored_value(double v)
{
	return isinf(v) ? (v < 0 ? -DBL_MAX : DBL_MAX) : v;
}

static int same_point(const struct point *a, const struct point *b)
{
	double x = stored_value(a->value), y = stored_value(b->value);
	return a->ts == b->ts && a->step == b->step && (x == y || (isnan(x) && isnan(y)));
}

/* The server's history of metric key (every page). */
static int get_history(struct point **out, size_t *n_out, struct remote *rm, const char *key,
		       struct bio_error *err)
{
	*out = NULL;
	*n_out = 0;
	char *rid = bio_http_escape(server_id(rm), 0), *k = bio_http_escape(key, 0);
	char *token = NULL;
	struct point *p = NULL;
	size_t n = 0;
	int rc = rid && k ? 0 : nomem(err);
	while (!rc) {
		char *tq = token ? bio_http_escape(token, 0) : NULL;
		char *ep = bio_str_fmt("metrics/get-history?run_id=%s&metric_key=%s&max_results=%d%s%s",
				       rid, k, HISTORY_PAGE, tq ? "&page_token=" : "", tq ? tq : "");
		free(tq);
		json_t *resp = NULL;
		rc = ep ? api(&resp, NULL, rm->http, "GET", ep, NULL, 1, err) : nomem(err);
		free(ep);
		if (rc) {
			json_decref(resp);
			break;
		}
		json_t *ms = json_object_get(resp, "metrics");
		size_t m = json_array_size(ms);
		struct point *np = m ? realloc(p, (n + m) * sizeof *p) : p;
		if (m && !np) {
			json_decref(resp);
			rc = nomem(err);
			break;
		}
		p = np;
		for (size_t i = 0; i < m; i++) {
			json_t *e = json_array_get(ms, i);
			p[n].ts = jint(e, "timestamp");
			p[n].step = jint(e, "step");
			p[n].value = jdouble(json_object_get(e, "value"));
			n++;
		}
		free(token);
		const char *nt = jstr(resp, "next_page_token");
		token = nt && *nt && m ? strdup(nt) : NULL;
		json_decref(resp);
		if (!token)
			break;
	}
	free(token);
	free(rid);
	free(k);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	*n_out = n;
	return 0;
}

struct mkey {
	char *key;
	struct point *pts;
	size_t n;        /* points in the journal */
	size_t acked;    /* first not acknowledged */
	unsigned char *skip; /* [n]: already on the server (found by get-history) */
};

struct metric_ctx {
	struct remote *rm;
	struct mkey *keys;
	size_t n_keys, cap;
};

static int metric_file(void *ud, const char *rel, const char *path, struct bio_error *err)
{
	struct metric_ctx *c = ud;
	if (c->n_keys == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 32;
		struct mkey *nk = realloc(c->keys, cap * sizeof *nk);
		if (!nk)
			return nomem(err);
		c->keys = nk;
		c->cap = cap;
	}
	struct mkey *k = &c->keys[c->n_keys];
	memset(k, 0, sizeof *k);
	k->key = strdup(rel);
	if (!k->key)
		return nomem(err);
	c->n_keys++;
	int rc = read_points(&k->pts, &k->n, path, err);
	if (rc)
		return rc;
	json_int_t a = json_integer_value(json_object_get(state_obj(c->rm, "metrics"), rel));
	k->acked = a > 0 && (size_t)a <= k->n ? (size_t)a : (a > 0 ? k->n : 0);
	return 0;
}

/* Marks the journal points of k already on the server (beyond the acknowledged ones). */
static int reconcile(struct remote *rm, struct mkey *k, struct bio_error *err)
{
	struct point *srv = NULL;
	size_t n_srv = 0;
	int rc = get_history(&srv, &n_srv, rm, k->key, err);
	if (rc)
		return rc;
	unsigned char *used = calloc(n_srv + 1, 1);
	k->skip = calloc(k->n + 1, 1);
	if (!used || !k->skip) {
		free(used);
		free(srv);
		return nomem(err);
	}
	/* every journal point matches one server point, in journal order */
	for (size_t i = 0; i < k->n; i++)
		for (size_t j = 0; j < n_srv; j++)
			if (!used[j] && same_point(&k->pts[i], &srv[j])) {
				used[j] = 1;
				k->skip[i] = 1;
				break;
			}
	free(used);
	free(srv);
	while (k->acked < k->n && k->skip[k->acked])
		k->acked++;
	return 0;
}

static int send_metrics(struct remote *rm, const struct bio_track_run *run, struct bio_error *err)
{
	char *dir = bio_str_fmt("%s/metrics", bio_track_run_dir(run));
	struct metric_ctx c = {rm, NULL, 0, 0};
	int rc = dir ? walk(dir, "", metric_file, &c, err) : nomem(err);
	free(dir);
	json_t *acked = state_obj(rm, "metrics");
	json_t *unsure = json_object_get(rm->st, "unsure");
	if (!json_is_object(unsure)) {
		unsure = json_object();
		json_object_set_new(rm->st, "unsure", unsure);
	}
	/* metrics whose last send got no answer: what did the server store? */
	for (size_t i = 0; !rc && i < c.n_keys; i++)
		if (json_object_get(unsure, c.keys[i].key) && c.keys[i].acked < c.keys[i].n) {
			rc = reconcile(rm, &c.keys[i], err);
			if (!rc) {
				json_object_set_new(acked, c.keys[i].key,
						    json_integer((json_int_t)c.keys[i].acked));
				if (c.keys[i].acked == c.keys[i].n)
					json_object_del(unsure, c.keys[i].key);
			}
		}
	while (!rc) {
		json_t *batch = json_array();
		size_t *upto = calloc(c.n_keys + 1, sizeof *upto);
		if (!batch || !upto) {
			json_decref(batch);
			free(upto);
			rc = nomem(err);
			break;
		}
		for (size_t i = 0; i < c.n_keys && json_array_size(batch) < MAX_BATCH_METRICS; i++) {
			struct mkey *k = &c.keys[i];
			size_t j = k->acked;
			for (; j < k->n && json_array_size(batch) < MAX_BATCH_METRICS; j++) {
				if (k->skip && k->skip[j])
					continue;
				json_t *m = json_pack("{s:s,s:o,s:I,s:I}", "key", k->key, "value",
						      jdouble_new(k->pts[j].value), "timestamp",
						      (json_int_t)k->pts[j].ts, "step",
						      (json_int_t)k->pts[j].step);
				json_array_append_new(batch, m);
			}
			upto[i] = j;
			if (j > k->acked)
				json_object_set_new(unsure, k->key, json_true());
		}
		if (json_array_size(batch) == 0) {
			json_decref(batch);
			free(upto);
			break;
		}
		if ((rc = state_save(rm, err)) != 0) {
			json_decref(batch);
			free(upto);
			break;
		}
		json_t *body = json_pack("{s:s,s:o}", "run_id", server_id(rm), "metrics", batch);
		enum bio_http_fate fate = BIO_HTTP_OK;
		rc = api(NULL, &fate, rm->http, "POST", "runs/log-batch", body, 0, err);
		for (size_t i = 0; i < c.n_keys; i++) {
			struct mkey *k = &c.keys[i];
			if (upto[i] <= k->acked)
				continue;
			if (rc == 0) {
				k->acked = upto[i];
				json_object_set_new(acked, k->key, json_integer((json_int_t)k->acked));
			}
			if (rc == 0 || fate == BIO_HTTP_NOT_SENT || fate == BIO_HTTP_REFUSED)
				json_object_del(unsure, k->key);
		}
		free(upto);
		int rc2 = state_save(rm, err);
		if (!rc)
			rc = rc2;
	}
	for (size_t i = 0; i < c.n_keys; i++) {
		free(c.keys[i].key);
		free(c.keys[i].pts);
		free(c.keys[i].skip);
	}
	free(c.keys);
	return rc;
}

/* ---- artifacts ---- */

struct art_ctx {
	struct remote *rm;
	char *base; /* proxy path of the run's artifact root */
	json_t *acked;
};

static int art_file(void *ud, const char *rel, const char *path, struct bio_error *err)
{
	struct art_ctx *c = ud;
	struct stat st;
	if (stat(path, &st) != 0)
		return bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
	char sig[96];
	snprintf(sig, sizeof sig, "%lld:%lld.%09ld", (long long)st.st_size,
		 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	const char *old = jstr(c->acked, rel);
	if (old && strcmp(old, sig) == 0)
		return 0;
	char *full = bio_str_fmt("%s/%s", c->base, rel);
	char *esc = full ? bio_http_escape(full, 1) : NULL;
	char *url = esc ? bio_str_fmt("/api/2.0/mlflow-artifacts/artifacts/%s", esc) : NULL;
	int rc = url ? bio_http_put_file(c->rm->http, url, path, err) : nomem(err);
	if (rc == 0) {
		json_object_set_new(c->acked, rel, json_string(sig));
		rc = state_save(c->rm, err);
	}
	free(url);
	free(esc);
	free(full);
	return rc;
}

static int send_artifacts(struct remote *rm, const struct bio_track_run *run,
			  struct bio_error *err)
{
	const char *au = jstr(rm->st, "artifact_uri");
	char *base = au ? proxy_path(au) : NULL;
	if (!base)
		return bio_error_set(err, BIO_EUNSUPPORTED, "%s: run %s: artifact_uri '%s' is not "
				     "served by the tracking server (start it with "
				     "--serve-artifacts); artifacts are kept in %s",
				     bio_http_base(rm->http), server_id(rm), au ? au : "",
				     bio_track_run_artifact_dir(run));
	struct art_ctx c = {rm, base, state_obj(rm, "artifacts")};
	/* a journal moved with its checkpoint directory: meta.yaml's artifact_uri names the old
	 * place, the artifacts are under the run directory */
	const char *adir = bio_track_run_artifact_dir(run);
	char *here = bio_str_fmt("%s/artifacts", bio_track_run_dir(run));
	struct stat st;
	if (here && stat(adir, &st) != 0 && stat(here, &st) == 0)
		adir = here;
	int rc = here ? walk(adir, "", art_file, &c, err) : nomem(err);
	free(here);
	free(base);
	return rc;
}

/* ---- registrations ---- */

static int find_version(int64_t *version, struct remote *rm, const char *name, const char *source,
			struct bio_error *err)
{
	*version = 0;
	char *f = bio_str_fmt("name='%s' and run_id='%s'", name, server_id(rm));
	char *ep = endpoint("model-versions/search?filter=", f, "&max_results=1000");
	free(f);
	if (!ep)
		return nomem(err);
	json_t *resp = NULL;
	int rc = api(&resp, NULL, rm->http, "GET", ep, NULL, 1, err);
	free(ep);
	json_t *mvs = json_object_get(resp, "model_versions");
	for (size_t i = 0; !rc && i < json_array_size(mvs); i++) {
		json_t *mv = json_array_get(mvs, i);
		const char *s = jstr(mv, "source");
		if (s && strcmp(s, source) == 0)
			*version = jint(mv, "version");
	}
	json_decref(resp);
	return rc;
}

static int send_registration(struct remote *rm, json_t *reg, struct bio_error *err)
{
	const char *name = jstr(reg, "name"), *path = jstr(reg, "path"), *alias = jstr(reg, "alias");
	int64_t version = jint(reg, "version");
	int rc = 0;
	if (version == 0) {
		json_t *resp = NULL;
		rc = api(NULL, NULL, rm->http, "POST", "registered-models/create",
			 json_pack("{s:s}", "name", name), 0, err);
		if (rc && already_exists(err))
			rc = 0;
		if (rc)
			return rc;
		char *source = bio_str_fmt("runs:/%s/%s", server_id(rm), path);
		if (!source)
			return nomem(err);
		if (json_is_true(json_object_get(reg, "create_sent")))
			rc = find_version(&version, rm, name, source, err);
		if (!rc && version == 0) {
			json_object_set_new(reg, "create_sent", json_true());
			if ((rc = state_save(rm, err)) != 0) {
				free(source);
				return rc;
			}
			enum bio_http_fate fate = BIO_HTTP_OK;
			rc = api(&resp, &fate, rm->http, "POST", "model-versions/create",
				 json_pack("{s:s,s:s,s:s}", "name", name, "source", source, "run_id",
					   server_id(rm)),
				 0, err);
			if (rc == 0)
				version = jint(json_object_get(resp, "model_version"), "version");
			if (rc == 0 || fate == BIO_HTTP_NOT_SENT || fate == BIO_HTTP_REFUSED)
				json_object_del(reg, "create_sent");
			json_decref(resp);
		}
		free(source);
		if (!rc && version <= 0)
			rc = bio_error_set(err, BIO_EFORMAT, "%s: model-versions/create %s: no version "
					   "in the answer", bio_http_base(rm->http), name);
		if (rc) {
			state_save(rm, NULL);
			return rc;
		}
		json_object_set_new(reg, "version", json_integer((json_int_t)version));
		if ((rc = state_save(rm, err)) != 0)
			return rc;
	}
	json_t *more = json_object_get(reg, "aliases");
	for (size_t i = 0; i < json_array_size(more) && !json_is_true(json_object_get(reg, "aliases_set"));
	     i++) {
		char num[32];
		snprintf(num, sizeof num, "%" PRId64, version);
		rc = api(NULL, NULL, rm->http, "POST", "registered-models/alias",
			 json_pack("{s:s,s:s,s:s}", "name", name, "alias",
				   json_string_value(json_array_get(more, i)), "version", num),
			 1, err);
		if (rc)
			return rc;
		if (i + 1 == json_array_size(more)) {
			json_object_set_new(reg, "aliases_set", json_true());
			if ((rc = state_save(rm, err)) != 0)
				return rc;
		}
	}
	if (alias && *alias && !json_is_true(json_object_get(reg, "alias_set"))) {
		char num[32];
		snprintf(num, sizeof num, "%" PRId64, version);
		rc = api(NULL, NULL, rm->http, "POST", "registered-models/alias",
			 json_pack("{s:s,s:s,s:s}", "name", name, "alias", alias, "version", num), 1,
			 err);
		if (rc)
			return rc;
		json_object_set_new(reg, "alias_set", json_true());
		rc = state_save(rm, err);
	}
	return rc;
}

static int send_registrations(struct remote *rm, struct bio_error *err)
{
	json_t *regs = json_object_get(rm->st, "register");
	for (size_t i = 0; i < json_array_size(regs); i++) {
		int rc = send_registration(rm, json_array_get(regs, i), err);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- status ---- */

static int send_status(struct remote *rm, const struct bio_track_run *run, struct bio_error *err)
{
	struct bio_track_run_info info;
	bio_track_run_info(run, &info);
	if (info.status < 1 || info.status > 5)
		return 0;
	const char *want = status_names[info.status];
	const char *sent = jstr(rm->st, "status");
	int64_t sent_end = jint(rm->st, "end_time");
	if (json_is_true(json_object_get(rm->st, "attached")) && info.status == BIO_TRACK_RUNNING)
		return 0;
	if (sent && strcmp(sent, want) == 0 && sent_end == (info.end_time > 0 ? info.end_time : 0))
		return 0;
	json_t *body = json_pack("{s:s,s:s,s:s}", "run_id", server_id(rm), "status", want,
				 "run_name", info.run_name);
	if (info.end_time > 0)
		json_object_set_new(body, "end_time", json_integer((json_int_t)info.end_time));
	int rc = api(NULL, NULL, rm->http, "POST", "runs/update", body, 1, err);
	if (rc)
		return rc;
	json_object_set_new(rm->st, "status", json_string(want));
	json_object_set_new(rm->st, "end_time",
			    json_integer((json_int_t)(info.end_time > 0 ? info.end_time : 0)));
	return state_save(rm, err);
}

/* ---- flush ---- */

/* One process at a time sends a journal (bio-train and a --sync-tracking of the same directory
 * could otherwise both send a point): an flock on <state>.lock, and the state re-read under it. */
static int flush_all(struct remote *rm, struct bio_track_run *run, struct bio_error *err)
{
	char *lock = bio_str_fmt("%s.lock", rm->state_path);
	int fd = lock ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666) : -1;
	free(lock);
	if (fd < 0)
		return bio_error_set(err, BIO_EIO, "%s.lock: %s", rm->state_path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return bio_error_set(err, BIO_EIO, "%s: another process is sending this run",
				     rm->state_path);
	}
	json_error_t je;
	json_t *st = json_load_file(rm->state_path, 0, &je);
	if (json_is_object(st)) {
		json_decref(rm->st);
		rm->st = st;
	} else {
		json_decref(st);
	}
	int rc = ensure_run(rm, run, err);
	if (!rc)
		rc = send_kv(rm, run, "params", err);
	if (!rc)
		rc = send_kv(rm, run, "tags", err);
	if (!rc)
		rc = send_metrics(rm, run, err);
	if (!rc) {
		/* a server that cannot take artifacts still gets the run's status */
		rc = send_artifacts(rm, run, err);
		if (!rc)
			rc = send_registrations(rm, err);
		struct bio_error e2;
		int rc2 = send_status(rm, run, rc ? &e2 : err);
		if (!rc)
			rc = rc2;
	}
	if (!rc && rm->refusal.code) { /* reported once: the rest went on */
		rc = rm->refusal.code;
		if (err)
			*err = rm->refusal;
	}
	rm->refusal.code = 0;
	close(fd);
	return rc;
}

static int remote_flush(void *ud, struct bio_track_run *run, int now, struct bio_error *err)
{
	struct remote *rm = ud;
	int64_t t = bio_clock_now_ms();
	if (!now && rm->next_try_ms && t < rm->next_try_ms) {
		if (err)
			*err = rm->last;
		return rm->last.code ? rm->last.code : BIO_EIO;
	}
	/* while the server fails, a flush in passing tries each request once: the wait between
	 * flushes is the retry schedule, and it grows with what a failed try cost (a server that
	 * stalls until the timeout costs a training at most a fifth of its time) */
	bio_http_set_retries(rm->http, rm->wait_ms && !now ? 0 : rm->retries);
	struct bio_error e = {0};
	int rc = flush_all(rm, run, &e);
	bio_http_set_retries(rm->http, rm->retries);
	int64_t cost = bio_clock_now_ms() - t;
	if (rc == 0) {
		rm->next_try_ms = 0;
		rm->wait_ms = 0;
		return 0;
	}
	bio_error_prefix(&e, "tracking server");
	size_t n = strlen(e.msg);
	snprintf(e.msg + n, sizeof e.msg - n, " (kept in %s: bio-train --sync-tracking %s sends it)",
		 rm->spool_root, rm->spool_root);
	rm->wait_ms = rm->wait_ms ? rm->wait_ms * 2 : 2000;
	if (rm->wait_ms > FLUSH_WAIT_MAX_MS)
		rm->wait_ms = FLUSH_WAIT_MAX_MS;
	rm->next_try_ms = bio_clock_now_ms() + (rm->wait_ms > 4 * cost ? rm->wait_ms : 4 * cost);
	rm->last = e;
	if (err)
		*err = e;
	return rc;
}

static const struct bio_track_hooks remote_hooks = {remote_flush, remote_free};

const char *bio_track_run_server_id(const struct bio_track_run *run)
{
	const struct remote *rm = bio_track_run_hook_data(run);
	return rm ? server_id(rm) : NULL;
}

/* Attaches a remote to the journal run; state NULL: load <run dir>/STATE_FILE. Takes state. */
static int attach(struct bio_track_run *run, const char *uri, json_t *state,
		  const struct bio_track_opts *o, struct bio_error *err)
{
	struct remote *rm = calloc(1, sizeof *rm);
	if (!rm) {
		json_decref(state);
		return nomem(err);
	}
	struct bio_track_run_info info;
	bio_track_run_info(run, &info);
	rm->state_path = bio_str_fmt("%s/%s", bio_track_run_dir(run), STATE_FILE);
	rm->spool_root = strdup(info.root);
	rm->local_id = strdup(bio_track_run_id(run));
	if (!rm->state_path || !rm->spool_root || !rm->local_id) {
		json_decref(state);
		remote_free(rm);
		return nomem(err);
	}
	if (!state) {
		json_error_t je;
		state = json_load_file(rm->state_path, 0, &je);
		if (!json_is_object(state)) {
			json_decref(state);
			int rc = bio_error_set(err, BIO_EFORMAT, "%s: %s", rm->state_path, je.text);
			remote_free(rm);
			return rc;
		}
	}
	rm->st = state;
	const char *u = uri ? uri : jstr(state, "uri");
	if (!u) {
		remote_free(rm);
		return bio_error_set(err, BIO_EFORMAT, "%s: no server uri", rm->state_path);
	}
	rm->retries = o ? (o->retries > 0 ? o->retries : 0) : 3;
	rm->http = http_for(u, o, err);
	if (!rm->http) {
		remote_free(rm);
		return err ? err->code : BIO_EINVAL;
	}
	bio_track_run_set_hooks(run, &remote_hooks, rm);
	return state_save(rm, err);
}

static char *spool_of(const struct bio_track_opts *o)
{
	if (o && o->spool_dir && *o->spool_dir)
		return strdup(o->spool_dir);
	char *c = cache_dir(o);
	char *s = c ? bio_str_fmt("%s/spool", c) : NULL;
	free(c);
	return s;
}

/* The journal folder (spool_of), created; NULL with err set on failure. */
static char *spool_made(const struct bio_track_opts *o, struct bio_error *err)
{
	char *spool = spool_of(o);
	if (!spool || bio_fs_mkdir_p(spool, err) != 0) {
		if (!spool)
			nomem(err);
		free(spool);
		return NULL;
	}
	return spool;
}

struct bio_track_run *bio_track_run_start_opts(const char *uri, const struct bio_track_opts *o,
					       const char *experiment_name, const char *run_name,
					       struct bio_error *err)
{
	if (!bio_track_uri_is_server(uri))
		return bio_track_run_start(uri, experiment_name, run_name, err);
	char *spool = spool_made(o, err);
	if (!spool)
		return NULL;
	/* the journal's own experiment is the Default one: names belong to the server */
	struct bio_track_run *run = bio_track_run_start(spool, NULL, run_name, err);
	free(spool);
	if (!run)
		return NULL;
	json_t *st = json_pack("{s:s,s:s}", "uri", uri, "experiment",
			       experiment_name && *experiment_name ? experiment_name : "Default");
	if (!st || attach(run, uri, st, o, err) != 0) {
		bio_track_run_free(run);
		return NULL;
	}
	bio_track_flush_now(run, NULL); /* create it now when the server answers */
	return run;
}

/* The server run whose tag bio.spool_run_id is id, in any experiment (*run new, or NULL). */
static int find_by_spool_id(json_t **run, struct bio_http *h, const char *id,
			    struct bio_error *err)
{
	*run = NULL;
	json_t *resp = NULL;
	int rc = api(&resp, NULL, h, "POST", "experiments/search",
		     json_pack("{s:i}", "max_results", 1000), 1, err);
	json_t *exps = json_object_get(resp, "experiments"), *ids = json_array();
	for (size_t i = 0; !rc && i < json_array_size(exps); i++)
		json_array_append_new(ids, json_string(jstr(json_array_get(exps, i), "experiment_id")));
	json_decref(resp);
	resp = NULL;
	char *filter = bio_str_fmt("tags.`bio.spool_run_id` = '%s'", id);
	if (!rc && filter && json_array_size(ids))
		rc = api(&resp, NULL, h, "POST", "runs/search",
			 json_pack("{s:O,s:s,s:i}", "experiment_ids", ids, "filter", filter,
				   "max_results", 1),
			 1, err);
	json_t *runs = json_object_get(resp, "runs");
	if (!rc && json_array_size(runs))
		*run = json_incref(json_array_get(runs, 0));
	json_decref(resp);
	json_decref(ids);
	free(filter);
	return rc;
}

struct bio_track_run *bio_track_run_open_opts(const char *uri, const struct bio_track_opts *o,
					      const char *run_id, struct bio_error *err)
{
	if (!bio_track_uri_is_server(uri))
		return bio_track_run_open(uri, run_id, err);
	char *spool = spool_made(o, err);
	if (!spool)
		return NULL;
	struct bio_track_run *run = bio_track_run_open(spool, run_id, NULL);
	if (run) { /* a journal of ours */
		free(spool);
		if (attach(run, uri, NULL, o, err) != 0) {
			bio_track_run_free(run);
			return NULL;
		}
		bio_track_flush_now(run, NULL);
		return run;
	}
	/* a server run (or the server run of a journal elsewhere, found by its tag
	 * bio.spool_run_id): check it exists, then journal what is logged to it */
	struct bio_http *h = http_for(uri, o, err);
	char *q = bio_http_escape(run_id, 0);
	char *ep = q ? bio_str_fmt("runs/get?run_id=%s", q) : NULL;
	json_t *resp = NULL;
	int rc = !h ? (err ? err->code : BIO_EINVAL)
	       : ep ? api(&resp, NULL, h, "GET", ep, NULL, 1, err)
		    : nomem(err);
	if (rc == BIO_ENOTFOUND) {
		struct bio_error e2;
		json_t *found = NULL;
		if (find_by_spool_id(&found, h, run_id, &e2) == 0 && found) {
			json_decref(resp);
			resp = json_pack("{s:o}", "run", found);
			rc = 0;
		}
	}
	free(q);
	free(ep);
	bio_http_free(h);
	if (rc) {
		json_decref(resp);
		free(spool);
		return NULL;
	}
	const json_t *info = json_object_get(json_object_get(resp, "run"), "info");
	run = bio_track_run_start(spool, NULL, jstr(info, "run_name"), err);
	free(spool);
	if (!run) {
		json_decref(resp);
		return NULL;
	}
	/* the journal's own tags (name, user, source type) are not the server run's */
	json_t *tags = json_object();
	json_t *st = json_pack("{s:s,s:b,s:s}", "uri", uri, "attached", 1, "status", "RUNNING");
	json_object_set_new(st, "tags", tags);
	char *tdir = bio_str_fmt("%s/tags", bio_track_run_dir(run));
	DIR *d = tdir ? opendir(tdir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *p = bio_str_fmt("%s/%s", tdir, de->d_name);
		char *v = p ? slurp(p, BIO_TRACK_MAX_TAG_VALUE + 16, NULL) : NULL;
		if (v)
			json_object_set_new(tags, de->d_name, json_string(v));
		free(v);
		free(p);
	}
	if (d)
		closedir(d);
	free(tdir);
	state_set_run(st, info);
	json_decref(resp);
	if (attach(run, uri, st, o, err) != 0) {
		bio_track_run_free(run);
		return NULL;
	}
	return run;
}

int bio_track_run_register(int64_t *version, struct bio_track_run *run, const char *name,
			   const char *artifact_path, const char *alias, struct bio_error *err)
{
	*version = 0;
	int rc = alias ? bio_track_check_alias(alias, err) : 0;
	if (rc)
		return rc;
	struct remote *rm = bio_track_run_hook_data(run);
	if (!rm) {
		struct bio_track_run_info info;
		bio_track_run_info(run, &info);
		char *src = bio_str_fmt("runs:/%s/%s", bio_track_run_id(run), artifact_path);
		if (!src)
			return nomem(err);
		rc = bio_track_register_model(version, info.root, name, src, bio_track_run_id(run),
					      err);
		free(src);
		if (!rc && alias)
			rc = bio_track_set_alias(info.root, name, alias, *version, err);
		return rc;
	}
	if (!name || !*name || strchr(name, '/') || strchr(name, '%'))
		return bio_error_set(err, BIO_EINVAL, "'%s' is not a valid registered model name "
				     "(no '/' or '%%')", name ? name : "");
	json_t *regs = json_object_get(rm->st, "register");
	if (!json_is_array(regs)) {
		regs = json_array();
		json_object_set_new(rm->st, "register", regs);
	}
	json_t *reg = json_pack("{s:s,s:s}", "name", name, "path", artifact_path);
	if (!reg)
		return nomem(err);
	if (alias)
		json_object_set_new(reg, "alias", json_string(alias));
	size_t idx = json_array_size(regs);
	json_array_append_new(regs, reg);
	if ((rc = state_save(rm, err)) != 0)
		return rc;
	/* a flush re-reads the state: look the entry up again */
	if (bio_track_flush_now(run, err) == 0)
		*version = jint(json_array_get(json_object_get(rm->st, "register"), idx), "version");
	return 0;
}

/* ---- sync ---- */

int bio_track_sync(size_t *n_runs, size_t *n_pending, const char *spool_dir,
		   const struct bio_track_opts *o, struct bio_error *err)
{
	*n_runs = *n_pending = 0;
	DIR *d = opendir(spool_dir);
	if (!d)
		return bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s",
				     spool_dir, strerror(errno));
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "models") == 0)
			continue;
		char *exp = bio_str_fmt("%s/%s", spool_dir, e->d_name);
		DIR *rd = exp ? opendir(exp) : NULL;
		struct dirent *re;
		while (rd && (re = readdir(rd))) {
			if (re->d_name[0] == '.')
				continue;
			char *sp = bio_str_fmt("%s/%s/%s", exp, re->d_name, STATE_FILE);
			int have = sp && access(sp, F_OK) == 0;
			free(sp);
			if (!have)
				continue;
			(*n_runs)++;
			struct bio_error e2 = {0};
			struct bio_track_run *run = bio_track_run_load(spool_dir, re->d_name, &e2);
			int r2 = run ? attach(run, NULL, NULL, o, &e2) : e2.code;
			if (!r2)
				r2 = bio_track_flush_now(run, &e2);
			if (r2) {
				(*n_pending)++;
				if (!rc) {
					rc = r2;
					if (err)
						*err = e2;
				}
			}
			bio_track_run_free(run);
		}
		if (rd)
			closedir(rd);
		free(exp);
	}
	closedir(d);
	return rc;
}

/* ---- pushing a file store ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir (not hidden), sorted; *n_out of them, a new array of new strings. */
static int list_dir(char ***out, size_t *n_out, const char *dir, struct bio_error *err)
{
	*out = NULL;
	*n_out = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : bio_error_set(err, BIO_EIO, "%s: %s", dir, strerror(errno));
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int rc = 0;
	while (!rc && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			char **nv = realloc(v, cap * sizeof *v);
			if (!nv) {
				rc = nomem(err);
				break;
			}
			v = nv;
		}
		if (!(v[n] = strdup(e->d_name)))
			rc = nomem(err);
		else
			n++;
	}
	closedir(d);
	if (!rc && n)
		qsort(v, n, sizeof *v, name_cmp);
	*out = v;
	*n_out = n;
	return rc;
}

static int int64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Journal state for a run of a pushed store: a new one naming the experiment, or the one there. */
static int push_state(json_t **st, const char *run_dir, const char *exp_dir, const char *uri,
		      struct bio_error *err)
{
	*st = NULL;
	char *sp = bio_str_fmt("%s/%s", run_dir, STATE_FILE);
	if (!sp)
		return nomem(err);
	if (access(sp, F_OK) == 0) {
		json_error_t je;
		*st = json_load_file(sp, 0, &je);
		free(sp);
		if (!json_is_object(*st))
			return bio_error_set(err, BIO_EFORMAT, "%s/%s: %s", run_dir, STATE_FILE, je.text);
		const char *was = jstr(*st, "uri");
		if (!was || strcmp(was, uri) != 0) {
			json_decref(*st);
			*st = NULL;
			return bio_error_set(err, BIO_EINVAL, "%s: already sent to %s, not %s", run_dir,
					     was ? was : "?", uri);
		}
		return 0;
	}
	free(sp);
	char *meta = bio_str_fmt("%s/meta.yaml", exp_dir), *name = NULL;
	int rc = meta ? bio_track_meta_get(&name, meta, "name", err) : nomem(err);
	free(meta);
	if (rc)
		return rc;
	*st = json_pack("{s:s,s:s}", "uri", uri, "experiment", name);
	free(name);
	return *st ? 0 : nomem(err);
}

/* Adds to the state of every pushed run the registered versions of the store whose source is
 * runs:/<that run>/PATH, with their aliases (each once: keyed by the store's name and version). */
static int push_registry(json_t *states, const char *root, struct bio_error *err)
{
	char *models = bio_str_fmt("%s/models", root);
	char **names = NULL;
	size_t n_names = 0;
	int rc = models ? list_dir(&names, &n_names, models, err) : nomem(err);
	for (size_t i = 0; !rc && i < n_names; i++) {
		char *mdir = bio_str_fmt("%s/%s", models, names[i]);
		char **vs = NULL, **as = NULL;
		size_t n_vs = 0, n_as = 0;
		char *adir = mdir ? bio_str_fmt("%s/aliases", mdir) : NULL;
		rc = adir ? list_dir(&vs, &n_vs, mdir, err) : nomem(err);
		if (!rc)
			rc = list_dir(&as, &n_as, adir, err);
		/* versions in number order */
		int64_t *nums = calloc(n_vs + 1, sizeof *nums);
		size_t n_nums = 0;
		if (!nums && !rc)
			rc = nomem(err);
		for (size_t k = 0; !rc && k < n_vs; k++) {
			char *end;
			long long v = strncmp(vs[k], "version-", 8) == 0 ? strtoll(vs[k] + 8, &end, 10) : 0;
			if (v > 0 && !*end)
				nums[n_nums++] = v;
		}
		if (n_nums)
			qsort(nums, n_nums, sizeof *nums, int64_cmp);
		for (size_t k = 0; !rc && k < n_nums; k++) {
			int64_t want = nums[k];
			char vname[32];
			snprintf(vname, sizeof vname, "version-%" PRId64, want);
			char *meta = bio_str_fmt("%s/%s/meta.yaml", mdir, vname);
			char *src = NULL, *stage = NULL;
			struct bio_error e2;
			if (!meta || bio_track_meta_get(&src, meta, "source", &e2) != 0 ||
			    strncmp(src, "runs:/", 6) != 0) {
				free(meta);
				free(src);
				continue;
			}
			if (bio_track_meta_get(&stage, meta, "current_stage", &e2) == 0 &&
			    strcmp(stage, "Deleted_Internal") == 0) {
				free(stage);
				free(meta);
				free(src);
				continue;
			}
			free(stage);
			free(meta);
			const char *spec = src + 6;
			size_t idlen = strcspn(spec, "/");
			char *id = strndup(spec, idlen);
			json_t *st = id ? json_object_get(states, id) : NULL;
			free(id);
			const char *path = spec + idlen;
			while (*path == '/')
				path++;
			if (st) {
				json_t *regs = json_object_get(st, "register");
				if (!json_is_array(regs)) {
					regs = json_array();
					json_object_set_new(st, "register", regs);
				}
				int have = 0;
				for (size_t r = 0; r < json_array_size(regs); r++) {
					json_t *g = json_array_get(regs, r);
					const char *gn = jstr(g, "name");
					have |= gn && strcmp(gn, names[i]) == 0 &&
						jint(g, "store_version") == want;
				}
				if (!have) {
					json_t *g = json_pack("{s:s,s:s,s:I}", "name", names[i], "path",
							      path, "store_version", (json_int_t)want);
					json_t *al = json_array();
					for (size_t a = 0; a < n_as; a++) {
						char *ap = bio_str_fmt("%s/%s", adir, as[a]);
						char *txt = ap ? slurp(ap, 64, NULL) : NULL;
						if (txt && strtoll(txt, NULL, 10) == want)
							json_array_append_new(al, json_string(as[a]));
						free(txt);
						free(ap);
					}
					json_object_set_new(g, "aliases", al);
					json_array_append_new(regs, g);
				}
			}
			free(src);
		}
		free(nums);
		free_list(vs, n_vs);
		free_list(as, n_as);
		free(adir);
		free(mdir);
	}
	free_list(names, n_names);
	free(models);
	return rc;
}

int bio_track_push(size_t *n_runs, size_t *n_pending, const char *store, const char *uri,
		   const struct bio_track_opts *o, struct bio_error *err)
{
	*n_runs = *n_pending = 0;
	if (!bio_track_uri_is_server(uri))
		return bio_error_set(err, BIO_EINVAL, "%s: not a tracking server URI (http:// or "
				     "https://)", uri);
	const char *root = strncmp(store, "file://", 7) == 0 ? store + 7 : store;
	char **exps = NULL;
	size_t n_exps = 0;
	json_t *states = json_object(); /* run id -> state */
	json_t *dirs = json_object();   /* run id -> run dir */
	int rc = states && dirs ? list_dir(&exps, &n_exps, root, err) : nomem(err);
	for (size_t i = 0; !rc && i < n_exps; i++) {
		if (strcmp(exps[i], "models") == 0)
			continue;
		char *edir = bio_str_fmt("%s/%s", root, exps[i]);
		char **runs = NULL;
		size_t n_r = 0;
		rc = edir ? list_dir(&runs, &n_r, edir, err) : nomem(err);
		for (size_t j = 0; !rc && j < n_r; j++) {
			char *rdir = bio_str_fmt("%s/%s", edir, runs[j]);
			char *meta = rdir ? bio_str_fmt("%s/meta.yaml", rdir) : NULL;
			char *life = NULL;
			struct bio_error e2;
			if (!meta || access(meta, F_OK) != 0 ||
			    (bio_track_meta_get(&life, meta, "lifecycle_stage", &e2) == 0 &&
			     strcmp(life, "active") != 0)) {
				free(life);
				free(meta);
				free(rdir);
				continue;
			}
			free(life);
			free(meta);
			json_t *st = NULL;
			rc = push_state(&st, rdir, edir, uri, err);
			if (!rc) {
				json_object_set_new(states, runs[j], st);
				json_object_set_new(dirs, runs[j], json_string(rdir));
			}
			free(rdir);
		}
		free_list(runs, n_r);
		free(edir);
	}
	free_list(exps, n_exps);
	if (!rc)
		rc = push_registry(states, root, err);
	const char *id;
	json_t *st;
	json_object_foreach(states, id, st) {
		if (rc)
			break;
		(*n_runs)++;
		struct bio_error e2 = {0};
		struct bio_track_run *run = bio_track_run_load(root, id, &e2);
		int r2 = run ? attach(run, jstr(st, "uri"), json_incref(st), o, &e2) : e2.code;
		if (!r2)
			r2 = bio_track_flush_now(run, &e2);
		if (r2) {
			(*n_pending)++;
			if (err && *n_pending == 1)
				*err = e2;
		}
		bio_track_run_free(run);
	}
	json_decref(states);
	json_decref(dirs);
	if (!rc && *n_pending)
		rc = err ? err->code : BIO_EIO;
	return rc;
}

/* ---- models from a server ---- */

static int model_version(json_t **mv, struct bio_http *h, const char *spec, const char *uri,
			 struct bio_error *err)
{
	*mv = NULL;
	const char *slash = strrchr(spec, '/'), *at = strrchr(spec, '@');
	if (at && (!slash || slash < at))
		slash = at;
	if (!slash || slash == spec || !slash[1])
		return bio_error_set(err, BIO_EINVAL, "%s: expected models:/NAME/VERSION, "
				     "models:/NAME@ALIAS or models:/NAME/latest", uri);
	char *name = strndup(spec, (size_t)(slash - spec));
	char *qn = name ? bio_http_escape(name, 0) : NULL;
	char *qv = bio_http_escape(slash + 1, 0);
	char *ep = NULL;
	json_t *resp = NULL;
	int rc = 0;
	if (!qn || !qv) {
		rc = nomem(err);
		goto out;
	}
	if (*slash == '@') {
		ep = bio_str_fmt("registered-models/alias?name=%s&alias=%s", qn, qv);
	} else if (strcmp(slash + 1, "latest") == 0) {
		char *f = bio_str_fmt("name='%s'", name);
		ep = endpoint("model-versions/search?filter=", f, "&max_results=1000");
		free(f);
	} else {
		char *end;
		long long v = strtoll(slash + 1, &end, 10);
		if (*end || v <= 0) {
			rc = bio_error_set(err, BIO_EINVAL, "%s: version '%s' is not a positive integer "
					   "or 'latest'", uri, slash + 1);
			goto out;
		}
		ep = bio_str_fmt("model-versions/get?name=%s&version=%s", qn, qv);
	}
	if (!ep) {
		rc = nomem(err);
		goto out;
	}
	rc = api(&resp, NULL, h, "GET", ep, NULL, 1, err);
	if (rc == BIO_ENOTFOUND || (rc == BIO_EINVAL && strstr(err ? err->msg : "", "not found")))
		bio_error_prefix(err, "%s", uri);
	if (rc)
		goto out;
	if (strcmp(slash + 1, "latest") == 0 && *slash == '/') {
		json_t *mvs = json_object_get(resp, "model_versions"), *best = NULL;
		for (size_t i = 0; i < json_array_size(mvs); i++) {
			json_t *m = json_array_get(mvs, i);
			if (!best || jint(m, "version") > jint(best, "version"))
				best = m;
		}
		if (!best) {
			rc = bio_error_set(err, BIO_ENOTFOUND, "%s: no versions of model '%s' on %s",
					   uri, name, bio_http_base(h));
			goto out;
		}
		*mv = json_incref(best);
	} else {
		*mv = json_incref(json_object_get(resp, "model_version"));
		if (!*mv)
			rc = bio_error_set(err, BIO_EFORMAT, "%s: no model_version in the answer", uri);
	}
out:
	json_decref(resp);
	free(ep);
	free(qn);
	free(qv);
	free(name);
	return rc;
}

/* The proxy path (e.g. "1/<run>/artifacts/checkpoints") of a source URI. */
static int source_path(char **ppath, struct bio_http *h, const char *src, int depth,
		       struct bio_error *err)
{
	*ppath = NULL;
	if (bio_track_uri_depth_check(src, depth, err))
		return BIO_ELIMIT;
	if (strncmp(src, "models:/", 8) == 0) {
		json_t *mv = NULL;
		int rc = model_version(&mv, h, src + 8, src, err);
		const char *s = rc ? NULL : jstr(mv, "source");
		if (!rc && !s)
			rc = bio_error_set(err, BIO_EFORMAT, "%s: version without source", src);
		if (!rc)
			rc = source_path(ppath, h, s, depth + 1, err);
		json_decref(mv);
		return rc;
	}
	if (strncmp(src, "runs:/", 6) == 0) {
		const char *spec = src + 6;
		size_t idlen = strcspn(spec, "/");
		char *id = strndup(spec, idlen);
		char *ep = endpoint("runs/get?run_id=", id, "");
		free(id);
		if (!ep)
			return nomem(err);
		json_t *resp = NULL;
		int rc = api(&resp, NULL, h, "GET", ep, NULL, 1, err);
		free(ep);
		const char *au = rc ? NULL
				    : jstr(json_object_get(json_object_get(resp, "run"), "info"),
					   "artifact_uri");
		char *base = au ? proxy_path(au) : NULL;
		if (!rc && !base)
			rc = bio_error_set(err, BIO_EUNSUPPORTED, "%s: artifact_uri '%s' is not served "
					   "by the tracking server", src, au ? au : "");
		if (!rc && !(*ppath = bio_track_artifact_path(base, spec + idlen)))
			rc = nomem(err);
		free(base);
		json_decref(resp);
		return rc;
	}
	*ppath = proxy_path(src);
	if (!*ppath)
		return bio_error_set(err, BIO_EUNSUPPORTED, "%s: a source the tracking server does "
				     "not serve", src);
	return 0;
}

static int path_safe(const char *p)
{
	if (*p == '/' || strstr(p, "//"))
		return 0;
	for (const char *s = p; *s;) {
		size_t n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		s += n;
		if (*s)
			s++;
	}
	return 1;
}

int bio_track_resolve_model_opts(char **path, const char *uri, const struct bio_track_opts *o,
				 const char *model_uri, struct bio_error *err)
{
	*path = NULL;
	if (!bio_track_uri_is_server(uri) ||
	    (strncmp(model_uri, "models:/", 8) != 0 && strncmp(model_uri, "runs:/", 6) != 0))
		return bio_track_resolve_model(path, bio_track_uri_is_server(uri) ? "mlruns" : uri,
					       model_uri, err);
	struct bio_http *h = http_for(uri, o, err);
	if (!h)
		return err ? err->code : BIO_EINVAL;
	char *pp = NULL, *file = NULL, *cache = NULL, *dst = NULL, *ep = NULL;
	json_t *resp = NULL;
	long long size = -1;
	int rc = source_path(&pp, h, model_uri, 0, err);
	if (rc)
		goto out;
	/* a directory (a listing with entries): its best.ckpt, else its only file */
	ep = endpoint("/api/2.0/mlflow-artifacts/artifacts?path=", pp, "");
	if (!ep) {
		rc = nomem(err);
		goto out;
	}
	rc = bio_http_json(&resp, NULL, NULL, h, "GET", ep, NULL, 1, err);
	if (rc)
		goto out;
	json_t *files = json_object_get(resp, "files"), *pick = NULL;
	size_t n_files = 0;
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		if (json_is_true(json_object_get(f, "is_dir")))
			continue;
		n_files++;
		const char *fp = jstr(f, "path");
		if (!pick || (fp && strcmp(fp, "best.ckpt") == 0))
			pick = f;
	}
	if (json_array_size(files) == 0) {
		file = strdup(pp);
	} else if (pick && (n_files == 1 || strcmp(jstr(pick, "path"), "best.ckpt") == 0)) {
		const char *fp = jstr(pick, "path");
		const char *base = strrchr(fp, '/');
		file = bio_str_fmt("%s/%s", pp, base ? base + 1 : fp);
		size = jint(pick, "file_size");
	} else {
		rc = bio_error_set(err, BIO_ENOTFOUND, "%s: %s holds no best.ckpt", model_uri, pp);
		goto out;
	}
	if (!file) {
		rc = nomem(err);
		goto out;
	}
	if (!path_safe(file)) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: unsafe artifact path '%s'", model_uri, file);
		goto out;
	}
	cache = cache_dir(o);
	dst = cache ? bio_str_fmt("%s/artifacts/%s", cache, file) : NULL;
	if (!dst) {
		rc = nomem(err);
		goto out;
	}
	struct stat st;
	if (stat(dst, &st) == 0 && S_ISREG(st.st_mode) && size >= 0 && st.st_size == size) {
		*path = dst;
		dst = NULL;
		goto out;
	}
	char *slash = strrchr(dst, '/');
	*slash = '\0';
	rc = bio_fs_mkdir_p(dst, err);
	*slash = '/';
	if (rc)
		goto out;
	char *qf = bio_http_escape(file, 1);
	char *url = qf ? bio_str_fmt("/api/2.0/mlflow-artifacts/artifacts/%s", qf) : NULL;
	free(qf);
	rc = url ? bio_http_get_file(h, url, dst, err) : nomem(err);
	free(url);
	if (!rc) {
		*path = dst;
		dst = NULL;
	}
out:
	json_decref(resp);
	free(ep);
	free(dst);
	free(cache);
	free(file);
	free(pp);
	bio_http_free(h);
	return rc;
}
