/* HTTP for the tracking client over libcurl: JSON requests (jansson), streamed file upload and
 * download, timeouts, retries with exponential backoff, bearer/basic authentication. One curl easy
 * handle per client, reused so that connections stay open between requests. Only this file talks
 * to libcurl. */
#include "bio/http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "free_list.h"

struct bio_http {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE]; /* libcurl's detail of the last failure */
	char *base;
	char *token, *username, *password, *ca_file;
	struct bio_http_opts o;
};

#define RESP_MAX (64u << 20) /* a JSON answer larger than this is refused */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int env_true(const char *name)
{
	const char *v = getenv(name);
	return v && (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "1") == 0);
}

static const char *env_str(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

void bio_http_opts_init(struct bio_http_opts *o)
{
	memset(o, 0, sizeof *o);
	o->timeout_s = 30;
	o->connect_timeout_s = 5;
	o->retries = 3;
	o->backoff_s = 0.5;
	o->token = env_str("MLFLOW_TRACKING_TOKEN");
	o->username = env_str("MLFLOW_TRACKING_USERNAME");
	o->password = env_str("MLFLOW_TRACKING_PASSWORD");
	o->insecure = env_true("MLFLOW_TRACKING_INSECURE_TLS");
	o->ca_file = env_str("MLFLOW_TRACKING_SERVER_CERT_PATH");
}

static char *dup_or_null(const char *s, int *bad)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*bad = 1;
	return d;
}

void bio_http_free(struct bio_http *h)
{
	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	BIO_FREE(h->base, h->token, h->username, h->password, h->ca_file, h);
}

struct bio_http *bio_http_new(const char *base_url, const struct bio_http_opts *opts,
			      struct bio_error *err)
{
	if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0) {
		bio_error_set(err, BIO_EINVAL, "%s: not an http:// or https:// URL", base_url);
		return NULL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		bio_error_set(err, BIO_EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	struct bio_http *h = calloc(1, sizeof *h);
	int bad = 0;
	if (!h) {
		bio_error_set(err, BIO_ENOMEM, "out of memory");
		return NULL;
	}
	h->o = *opts;
	h->base = dup_or_null(base_url, &bad);
	h->token = dup_or_null(opts->token, &bad);
	h->username = dup_or_null(opts->username, &bad);
	h->password = dup_or_null(opts->password, &bad);
	h->ca_file = dup_or_null(opts->ca_file, &bad);
	h->curl = curl_easy_init();
	if (bad || !h->curl) {
		bio_http_free(h);
		bio_error_set(err, BIO_ENOMEM, "out of memory (HTTP client)");
		return NULL;
	}
	size_t n = strlen(h->base);
	while (n > 0 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	return h;
}

int bio_http_set_retries(struct bio_http *h, int retries)
{
	int old = h->o.retries;
	h->o.retries = retries < 0 ? 0 : retries;
	return old;
}

const char *bio_http_base(const struct bio_http *h)
{
	return h->base;
}

char *bio_http_escape(const char *s, int keep_slash)
{
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;
	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p) || (keep_slash && *p == '/'))
			*o++ = (char)*p;
		else
			o += sprintf(o, "%%%02X", *p);
	}
	*o = '\0';
	return out;
}

/* ---- one transfer ---- */

struct membuf {
	char *data;
	size_t len, cap;
	int over;
};

static size_t mem_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct membuf *b = ud;
	size_t n = size * nmemb;
	if (b->len + n > RESP_MAX) {
		b->over = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

struct body_src {
	const char *data;
	size_t len, off;
};

static size_t mem_read(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body_src *s = ud;
	size_t n = size * nmemb, left = s->len - s->off;
	if (n > left)
		n = left;
	memcpy(ptr, s->data + s->off, n);
	s->off += n;
	return n;
}

/* A file transfer (stream) may take long: its timeout bounds a stall (under 1 byte/s), not the
 * whole transfer. */
static void setup(struct bio_http *h, const char *url, struct curl_slist *hdrs, int stream)
{
	CURL *c = h->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	h->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	if (stream) {
		long s = (long)(h->o.timeout_s + 0.999);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s > 0 ? s : 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(h->o.timeout_s * 1000));
	}
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(h->o.connect_timeout_s * 1000));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "biopipe/" BIO_VERSION);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (h->username && !h->token) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, h->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, h->password ? h->password : "");
	}
	if (h->o.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
}

static struct curl_slist *headers(const struct bio_http *h, const char *content_type, int *bad)
{
	struct curl_slist *l = NULL, *t;
	char buf[64];
	if (content_type) {
		snprintf(buf, sizeof buf, "Content-Type: %s", content_type);
		if (!(t = curl_slist_append(l, buf)))
			goto fail;
		l = t;
	}
	if (!(t = curl_slist_append(l, "Expect:")))
		goto fail;
	l = t;
	if (h->token) {
		size_t n = strlen(h->token) + 32;
		char *a = malloc(n);
		if (!a)
			goto fail;
		snprintf(a, n, "Authorization: Bearer %s", h->token);
		t = curl_slist_append(l, a);
		free(a);
		if (!t)
			goto fail;
		l = t;
	}
	return l;
fail:
	curl_slist_free_all(l);
	*bad = 1;
	return NULL;
}

static enum bio_http_fate fate_of(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		return BIO_HTTP_NOT_SENT;
	default:
		return BIO_HTTP_UNKNOWN;
	}
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Error code and message for an HTTP error status with the server's JSON error (MLflow's
 * {"error_code": ..., "message": ...}) or text body. */
static int status_error(struct bio_error *err, const char *method, const char *url, long status,
			const char *body)
{
	const char *code = NULL, *msg = NULL;
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	if (json_is_object(j)) {
		code = json_string_value(json_object_get(j, "error_code"));
		msg = json_string_value(json_object_get(j, "message"));
	}
	int rc = status == 404 || (code && strcmp(code, "RESOURCE_DOES_NOT_EXIST") == 0)
			 ? BIO_ENOTFOUND
		 : status >= 500 ? BIO_EIO
				 : BIO_EINVAL;
	if (code || msg)
		bio_error_set(err, rc, "%s %s: HTTP %ld %s: %.300s", method, url, status,
			      code ? code : "", msg ? msg : "");
	else
		bio_error_set(err, rc, "%s %s: HTTP %ld%s%.200s", method, url, status,
			      body && *body ? ": " : "", body ? body : "");
	json_decref(j);
	return rc;
}

/* One request with retries. Body from memory (data/len, NULL = none) or from the open file
 * upload (size upload_len); the answer into mem, or into the open file download. */
static int transfer(long *status_out, enum bio_http_fate *fate_out, struct bio_http *h,
		    const char *method, const char *path, const char *content_type,
		    const char *data, size_t len, FILE *upload, long long upload_len,
		    struct membuf *mem, FILE *download, int idempotent, struct bio_error *err)
{
	size_t n = strlen(h->base) + strlen(path) + 1;
	char *url = malloc(n);
	int bad = 0;
	struct curl_slist *hdrs = headers(h, content_type, &bad);
	if (!url || bad) {
		free(url);
		curl_slist_free_all(hdrs);
		return bio_error_set(err, BIO_ENOMEM, "out of memory (HTTP request)");
	}
	snprintf(url, n, "%s%s", h->base, path);
	int rc = 0;
	enum bio_http_fate fate = BIO_HTTP_OK;
	long status = 0;
	double wait = h->o.backoff_s;
	for (int attempt = 0;; attempt++) {
		setup(h, url, hdrs, upload || download);
		CURL *c = h->curl;
		struct body_src src = {data, len, 0};
		if (mem) {
			mem->len = 0;
			mem->over = 0;
			if (mem->data)
				mem->data[0] = '\0';
			curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
			curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
		} else if (download) {
			if (fseek(download, 0, SEEK_SET) != 0 || ftruncate(fileno(download), 0) != 0) {
				rc = bio_error_set(err, BIO_EIO, "download file: %s", strerror(errno));
				break;
			}
			curl_easy_setopt(c, CURLOPT_WRITEDATA, download);
		}
		if (strcmp(method, "GET") == 0) {
			curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		} else if (upload) {
			rewind(upload);
			curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(c, CURLOPT_READDATA, upload);
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)upload_len);
			if (strcmp(method, "PUT") != 0)
				curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		} else {
			if (strcmp(method, "POST") == 0) {
				curl_easy_setopt(c, CURLOPT_POST, 1L);
			} else {
				curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
				curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
			}
			curl_easy_setopt(c, CURLOPT_READFUNCTION, mem_read);
			curl_easy_setopt(c, CURLOPT_READDATA, &src);
			if (strcmp(method, "POST") == 0)
				curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
			else
				curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
		}
		CURLcode cr = curl_easy_perform(c);
		int transient;
		if (cr != CURLE_OK) {
			fate = fate_of(cr);
			rc = bio_error_set(err, BIO_EIO, "%s %s: %s", method, url,
					   mem && mem->over ? "answer too large"
					   : h->errbuf[0]   ? h->errbuf
							    : curl_easy_strerror(cr));
			transient = fate == BIO_HTTP_NOT_SENT || idempotent;
			if (mem && mem->over)
				transient = 0;
		} else {
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
			if (status >= 200 && status < 300) {
				rc = 0;
				fate = BIO_HTTP_OK;
				break;
			}
			fflush(download);
			rc = status_error(err, method, url, status, mem ? mem->data : NULL);
			/* 5xx and 429 may be overload; a 5xx may also have applied part of it */
			fate = status >= 500 ? BIO_HTTP_UNKNOWN : BIO_HTTP_REFUSED;
			transient = status == 429 || status == 503 || (status >= 500 && idempotent);
		}
		if (!transient || attempt >= h->o.retries)
			break;
		sleep_s(wait);
		wait = wait * 2 > 30 ? 30 : wait * 2;
	}
	if (status_out)
		*status_out = status;
	if (fate_out)
		*fate_out = fate;
	curl_slist_free_all(hdrs);
	free(url);
	return rc;
}

int bio_http_json(json_t **resp, long *status, enum bio_http_fate *fate, struct bio_http *h,
		  const char *method, const char *path, const json_t *body, int idempotent,
		  struct bio_error *err)
{
	if (resp)
		*resp = NULL;
	char *data = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body && !data)
		return bio_error_set(err, BIO_ENOMEM, "out of memory (JSON request)");
	struct membuf mem = {0};
	int rc = transfer(status, fate, h, method, path, data ? "application/json" : NULL, data,
			  data ? strlen(data) : 0, NULL, 0, &mem, NULL, idempotent, err);
	free(data);
	if (rc == 0 && resp) {
		json_error_t je;
		*resp = json_loadb(mem.data ? mem.data : "{}", mem.data ? mem.len : 2, 0, &je);
		if (!*resp)
			rc = bio_error_set(err, BIO_EFORMAT, "%s %s%s: answer is not JSON: %s", method,
					   h->base, path, je.text);
	}
	free(mem.data);
	return rc;
}

int bio_http_put_file(struct bio_http *h, const char *path, const char *src,
		      struct bio_error *err)
{
	FILE *f = fopen(src, "rb");
	if (!f)
		return bio_error_set(err, errno == ENOENT ? BIO_ENOTFOUND : BIO_EIO, "%s: %s", src,
				     strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0) {
		int e = errno;
		fclose(f);
		return bio_error_set(err, BIO_EIO, "%s: %s", src, strerror(e));
	}
	struct membuf mem = {0};
	int rc = transfer(NULL, NULL, h, "PUT", path, "application/octet-stream", NULL, 0, f,
			  (long long)st.st_size, &mem, NULL, 1, err);
	free(mem.data);
	fclose(f);
	return rc;
}

int bio_http_get_file(struct bio_http *h, const char *path, const char *dst,
		      struct bio_error *err)
{
	size_t n = strlen(dst) + 16;
	char *tmp = malloc(n);
	if (!tmp)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	snprintf(tmp, n, "%s.tmpXXXXXX", dst);
	int fd = mkstemp(tmp);
	FILE *f = fd >= 0 ? fdopen(fd, "w+b") : NULL;
	if (!f) {
		int rc = bio_error_set(err, BIO_EIO, "%s: %s", tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(tmp);
		return rc;
	}
	int rc = transfer(NULL, NULL, h, "GET", path, NULL, NULL, 0, NULL, 0, NULL, f, 1, err);
	if (fclose(f) != 0 && !rc)
		rc = bio_error_set(err, BIO_EIO, "%s: %s", tmp, strerror(errno));
	if (!rc) {
		if (chmod(tmp, 0644) != 0 || rename(tmp, dst) != 0)
			rc = bio_error_set(err, BIO_EIO, "%s: %s", dst, strerror(errno));
	}
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}
