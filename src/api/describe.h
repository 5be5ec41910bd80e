/* The JSON description of a path behind `fipsc inspect` and fipsc_describe: see describe.c. */
#ifndef FIPSC_API_DESCRIBE_H
#define FIPSC_API_DESCRIBE_H

#include <cjson/cJSON.h>

#include "core/status.h"

/* *doc: the description (free with cJSON_Delete); *arch_text: the architecture in words, two
 * lines (malloc'ed), or NULL when no family claims the path. */
fipsc_status fipsc_describe_doc(const char *path, cJSON **doc, char **arch_text, fipsc_error *err);

#endif
