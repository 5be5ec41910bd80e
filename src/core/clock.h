/* Wall-clock time for progress, ETAs and reports: seconds on the monotonic clock (never jumps
 * with the system time; only differences mean anything). */
#ifndef FIPSC_CORE_CLOCK_H
#define FIPSC_CORE_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC), nanosecond resolution. */
double fipsc_seconds_now(void);

#endif
