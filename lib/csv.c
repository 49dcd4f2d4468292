/* CSV fields for every program that writes CSV (bio-infer's predictions, bio-eval's curves). */
#include "bio/csv.h"

#include <string.h>

void bio_csv_put_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n\r")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void bio_csv_put_float(FILE *f, float v)
{
	fprintf(f, "%.9g", (double)v);
}
