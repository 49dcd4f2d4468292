/* A small HTTP client for JSON REST APIs (an MLflow tracking server) over libcurl: one base URL,
 * request and connect timeouts, retries with exponential backoff for failures that cannot have
 * reached the server (or for every transient failure of an idempotent request), bearer or basic
 * authentication, and file upload and download by streaming (no whole-file buffers). JSON bodies
 * are jansson values. The module never prints; errors name the method, the URL and the cause. */
#ifndef BIO_HTTP_H
#define BIO_HTTP_H

#include <jansson.h>

#include "bio/error.h"

struct bio_http_opts {
	double timeout_s;         /* a JSON request; for a file transfer, a stall (< 1 byte/s) */
	double connect_timeout_s; /* connection set-up, > 0 */
	int retries;              /* further tries after a transient failure, >= 0 */
	double backoff_s;         /* wait before the first retry; doubles each time (at most 30 s) */
	const char *token;        /* bearer token, or NULL */
	const char *username;     /* basic authentication (with password), or NULL */
	const char *password;
	int insecure;             /* skip TLS certificate verification */
	const char *ca_file;      /* CA bundle for TLS, or NULL for the system's */
};

/* Fills opts with the defaults (30 s, 5 s, 3 retries, 0.5 s backoff) and the credentials of the
 * environment as MLflow's clients read them: MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME and
 * MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_INSECURE_TLS=true, MLFLOW_TRACKING_SERVER_CERT_PATH.
 * The strings are borrowed from the environment. */
void bio_http_opts_init(struct bio_http_opts *opts);

struct bio_http;

/* A client for base_url ("http://host:port[/prefix]", trailing '/' ignored); opts is copied
 * (its strings too). Returns a new client (free with bio_http_free) or NULL with err set. */
struct bio_http *bio_http_new(const char *base_url, const struct bio_http_opts *opts,
			      struct bio_error *err);
void bio_http_free(struct bio_http *h);
/* Sets the retries of later requests (>= 0); returns the previous value. */
int bio_http_set_retries(struct bio_http *h, int retries);
/* The base URL without a trailing '/' (borrowed). */
const char *bio_http_base(const struct bio_http *h);

/* What a failed request left behind, for callers that must not repeat a non-idempotent one. */
enum bio_http_fate {
	BIO_HTTP_OK = 0,
	BIO_HTTP_NOT_SENT,  /* never reached the server (no connection): safe to repeat */
	BIO_HTTP_UNKNOWN,   /* sent, no answer (timeout, reset): the server may have applied it */
	BIO_HTTP_REFUSED,   /* answered with an error status: not applied */
};

/* Sends method ("GET", "POST", ...) to base + path (path starts with '/', query included, its
 * values already escaped) with body as JSON (borrowed; NULL = none) and parses the JSON answer
 * into *resp (new, caller json_decref's; may be NULL when not wanted). idempotent: retry every
 * transient failure (timeouts, 5xx, 429), else only those of BIO_HTTP_NOT_SENT. Returns 0;
 * BIO_ENOTFOUND for 404 / RESOURCE_DOES_NOT_EXIST; BIO_EINVAL for another 4xx (the message
 * carries the server's error_code and message, and *status the HTTP status); BIO_EIO for a
 * transport failure or 5xx. *fate (may be NULL) says whether the server may have applied it. */
int bio_http_json(json_t **resp, long *status, enum bio_http_fate *fate, struct bio_http *h,
		  const char *method, const char *path, const json_t *body, int idempotent,
		  struct bio_error *err);
/* PUTs the contents of the local file src to base + path (idempotent: retried). */
int bio_http_put_file(struct bio_http *h, const char *path, const char *src,
		      struct bio_error *err);
/* GETs base + path into the local file dst, written atomically (temp file beside it, rename). */
int bio_http_get_file(struct bio_http *h, const char *path, const char *dst,
		      struct bio_error *err);
/* Percent-encodes s for a URL path (keep_slash: '/' stays) or a query value; new string. */
char *bio_http_escape(const char *s, int keep_slash);

#endif
