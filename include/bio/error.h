/* Error reporting for libbio: functions return 0 or a negative BIO_E* code and fill an optional
 * struct bio_error with a one-line message that names the object (path, record, config key) and
 * the cause. The library never prints and never exits. */
#ifndef BIO_ERROR_H
#define BIO_ERROR_H

enum {
	BIO_OK = 0,
	BIO_EIO = -1,          /* a system call failed (open, read, write, rename, ...) */
	BIO_EFORMAT = -2,      /* malformed input data (image, stream, YAML) */
	BIO_ELIMIT = -3,       /* input exceeds a configured bound (size, depth, count) */
	BIO_ENOMEM = -4,       /* allocation failed */
	BIO_EINVAL = -5,       /* invalid argument or configuration value */
	BIO_ETRUNC = -6,       /* input ended early (truncated file, stream without trailer) */
	BIO_ENOTFOUND = -7,    /* a required key, file or name is missing */
	BIO_EUNSUPPORTED = -8, /* valid input that this build does not handle */
	BIO_EPIPE = -9,        /* the reader of our output went away (downstream closed) */
	BIO_ENAN = -10,        /* a non-finite number appeared where it must not */
};

#define BIO_ERROR_MSG_MAX 1024

struct bio_error {
	int code;
	char msg[BIO_ERROR_MSG_MAX];
};

/* Sets err (may be NULL) to code and the printf-style message; returns code. */
int bio_error_set(struct bio_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepends "<context>: " to err's message (no-op when err is NULL); returns err->code (or 0). */
int bio_error_prefix(struct bio_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Returns a static name for a BIO_E* code ("I/O error", "malformed input", ...). */
const char *bio_error_name(int code);

/* Always-on assertion for programmer errors (never for bad input): prints and aborts. */
#define BIO_ASSERT(cond)                                                        \
	do {                                                                    \
		if (!(cond))                                                    \
			bio_assert_fail(#cond, __FILE__, __LINE__);             \
	} while (0)
_Noreturn void bio_assert_fail(const char *expr, const char *file, int line);

#endif
