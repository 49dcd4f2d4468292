/* Clocks: seconds on a monotonic clock for durations, and wall-clock milliseconds since the
 * epoch for timestamps (the tracking store's). */
#ifndef BIO_CLOCK_H
#define BIO_CLOCK_H

#include <stdint.h>

/* Seconds on CLOCK_MONOTONIC: only differences mean anything. */
double bio_clock_now_s(void);
/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t bio_clock_now_ms(void);

#endif
