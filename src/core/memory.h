/* How much memory this process has held (the peak resident set size so far) and the machine has.
 *
 * The kernel keeps one peak per process (getrusage's ru_maxrss); it only grows. Reports read it at
 * the end of each phase (model loaded, calibration captured, each group compressed), so the phase
 * that set the process's peak is the first whose value reaches it. (Linux can reset the peak,
 * /proc/self/clear_refs, but that would also hide it from `time -v` and every other observer of
 * the process, so fipsc never does.) */
#ifndef FIPSC_MEMORY_H
#define FIPSC_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Peak resident set size of this process so far, in bytes; -1 if the system does not say. */
int64_t fipsc_peak_rss_bytes(void);

/* The machine's physical memory in bytes; -1 if the system does not say. */
int64_t fipsc_physical_memory_bytes(void);

/* bytes as "12.34 GB", "5.6 MB" or "789 kB" (decimal units) into buf; returns buf. */
const char *fipsc_bytes_text(int64_t bytes, char *buf, size_t cap);

/* Parses a memory size: a number with an optional unit K, M, G, T (powers of 1024; "KiB", "GiB"
 * ... and "KB", "GB" ... powers of 1000) or none (bytes), e.g. "20G", "1.5GiB", "800MB".
 * false for anything else or a size below 1 byte. */
bool fipsc_parse_memory_size(const char *text, int64_t *bytes);

#endif
