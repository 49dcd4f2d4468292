/* Formatted strings on the heap, for the messages and paths the tracking store and the HTTP
 * client build (one vasprintf wrapper instead of a copy per file). */
#ifndef BIO_STR_H
#define BIO_STR_H

/* printf-formatted text as a new string (free it), or NULL when out of memory. */
char *bio_str_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
