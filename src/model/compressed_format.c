/* Names of the compressed format (see compressed_format.h). */
#include "model/compressed_format.h"

#include <stdio.h>
#include <string.h>


bool cf_v_name(char *buf, size_t cap, const char *weight_name, const char *suffix)
{
    size_t n = strlen(weight_name);
    static const char weight[] = ".weight";
    if (n >= sizeof weight - 1 && strcmp(weight_name + n - (sizeof weight - 1), weight) == 0)
        n -= sizeof weight - 1;
    int written = snprintf(buf, cap, "%.*s%s", (int)n, weight_name, suffix);
    return written >= 0 && (size_t)written < cap;
}

void cf_u_name(char *buf, size_t cap, int group) { snprintf(buf, cap, "fips.groups.%d.U", group); }
