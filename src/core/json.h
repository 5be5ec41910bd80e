/* Small JSON helpers shared by the writers and reports (cJSON does the parsing and printing). */
#ifndef FIPSC_CORE_JSON_H
#define FIPSC_CORE_JSON_H

#include <cjson/cJSON.h>

/* f as the shortest decimal that reads back as the same float (1e-05, not 9.99999974e-06). */
cJSON *fipsc_json_float(float f);

#endif
