/* The process's peak resident set size, the machine's memory, memory sizes (see src/core/memory.h). */
#include "core/memory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int64_t fipsc_peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss <= 0) return -1;
    return (int64_t)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
}

int64_t fipsc_physical_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return -1;
    return (int64_t)pages * (int64_t)size;
}

bool fipsc_parse_memory_size(const char *text, int64_t *bytes)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = {
        {"", 1.0},      {"B", 1.0},       {"K", 0x1p10},    {"KiB", 0x1p10}, {"KB", 1e3},
        {"M", 0x1p20},  {"MiB", 0x1p20},  {"MB", 1e6},      {"G", 0x1p30},   {"GiB", 0x1p30},
        {"GB", 1e9},    {"T", 0x1p40},    {"TiB", 0x1p40},  {"TB", 1e12},
    };
    char *end;
    if (!text || !*text || *text == '-' || *text == '+') return false;
    double v = strtod(text, &end);
    if (end == text || !isfinite(v)) return false;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strcmp(end, units[i].unit) != 0) continue;
        const double b = floor(v * units[i].scale);
        if (!(b >= 1.0) || b > 9.0e18) return false;
        *bytes = (int64_t)b;
        return true;
    }
    return false;
}

const char *fipsc_bytes_text(int64_t bytes, char *buf, size_t cap)
{
    if (bytes >= 1000000000) snprintf(buf, cap, "%.2f GB", (double)bytes / 1e9);
    else if (bytes >= 1000000) snprintf(buf, cap, "%.1f MB", (double)bytes / 1e6);
    else snprintf(buf, cap, "%.0f kB", (double)bytes / 1e3);
    return buf;
}
