/* The process's peak resident set size (see src/core/memory.h). */
#include "core/memory.h"

#include <sys/resource.h>

int64_t fipsc_peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss <= 0) return -1;
    return (int64_t)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
}
