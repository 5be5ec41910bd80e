/* Small JSON helpers (see src/core/json.h). */
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>

cJSON *fipsc_json_float(float f)
{
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}
