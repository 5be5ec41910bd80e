/* How much memory this process has held: the peak resident set size so far.
 *
 * The kernel keeps one peak per process (getrusage's ru_maxrss); it only grows. Reports read it at
 * the end of each phase (model loaded, calibration captured, each group compressed), so the phase
 * that set the process's peak is the first whose value reaches it. (Linux can reset the peak,
 * /proc/self/clear_refs, but that would also hide it from `time -v` and every other observer of
 * the process, so fipsc never does.) */
#ifndef FIPSC_MEMORY_H
#define FIPSC_MEMORY_H

#include <stdint.h>

/* Peak resident set size of this process so far, in bytes; -1 if the system does not say. */
int64_t fipsc_peak_rss_bytes(void);

#endif
