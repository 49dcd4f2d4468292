/* Error messages for libbio: the struct bio_error filled by every fallible function. */
#include "bio/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bio_error_set(struct bio_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->code = code;
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

int bio_error_prefix(struct bio_error *err, const char *fmt, ...)
{
	if (!err)
		return 0;
	char prefix[BIO_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return err->code;
	size_t plen = strlen(prefix);
	memcpy(prefix + plen, ": ", 3);
	plen += 2;
	size_t mlen = strnlen(err->msg, sizeof err->msg - 1);
	if (plen + mlen > sizeof err->msg - 1)
		mlen = sizeof err->msg - 1 - plen;
	memmove(err->msg + plen, err->msg, mlen);
	memcpy(err->msg, prefix, plen);
	err->msg[plen + mlen] = '\0';
	return err->code;
}

const char *bio_error_name(int code)
{
	switch (code) {
	case BIO_OK: return "success";
	case BIO_EIO: return "I/O error";
	case BIO_EFORMAT: return "malformed input";
	case BIO_ELIMIT: return "limit exceeded";
	case BIO_ENOMEM: return "out of memory";
	case BIO_EINVAL: return "invalid argument";
	case BIO_ETRUNC: return "truncated input";
	case BIO_ENOTFOUND: return "not found";
	case BIO_EUNSUPPORTED: return "unsupported";
	case BIO_EPIPE: return "broken pipe";
	case BIO_ENAN: return "non-finite value";
	default: return "unknown error";
	}
}

void bio_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
	abort();
}
