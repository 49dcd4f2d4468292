/* CSV output (RFC 4180): fields quoted only when they must be, numbers in a fixed form. */
#ifndef BIO_CSV_H
#define BIO_CSV_H

#include <stdio.h>

/* Writes s (borrowed) as one field: as it is, or in double quotes (inner quotes doubled) when it
 * holds a comma, a quote or a line break. */
void bio_csv_put_field(FILE *f, const char *s);
/* Writes a float as "%.9g": 9 significant digits, enough to read back the same float. */
void bio_csv_put_float(FILE *f, float v);

#endif
