/* Heap-formatted strings (see str.h). */
#include "bio/str.h"

#include <stdarg.h>
#include <stdio.h>

char *bio_str_fmt(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}
