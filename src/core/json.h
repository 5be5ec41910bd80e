/* Small JSON helpers shared by the writers, the reports and the configuration readers (cJSON does
 * the parsing and printing). */
#ifndef FIPSC_CORE_JSON_H
#define FIPSC_CORE_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

/* f as the shortest decimal that reads back as the same float (1e-05, not 9.99999974e-06). */
cJSON *fipsc_json_float(float f);

/* ---- reading a configuration (config.json): every key type- and range-checked, each failure
 * FIPSC_ERR_FORMAT worded "ORIGIN: key 'KEY' must be WANT, got VALUE" ---- */

/* The first entry of a config.json's "architectures" ("GPT2LMHeadModel"), or NULL; *model_type
 * gets its "model_type" ("gpt2"), or NULL. */
const char *fipsc_json_architecture(const cJSON *root, const char **model_type);

/* v printed compactly into buf, cut to 40 characters ("..." at the end), for messages. */
void fipsc_json_brief(const cJSON *v, char *buf, size_t cap);

/* The failure above for v, which is not what key must be (want: "a positive number"). */
fipsc_status fipsc_json_bad_key(const char *origin, const char *key, const char *want, const cJSON *v,
                                fipsc_error *err);

/* An integer key in [lo, hi]. present NULL: the key is required ("missing required key 'KEY'");
 * else an absent or null key sets *present false and keeps *out. */
fipsc_status fipsc_json_int(const cJSON *root, const char *origin, const char *key, long long lo, long long hi,
                            bool *present, int *out, fipsc_error *err);

/* An optional boolean, and an optional positive finite number (tested as a float: 1e-50 is 0):
 * absent or null keeps *out. */
fipsc_status fipsc_json_bool(const cJSON *root, const char *origin, const char *key, bool *out, fipsc_error *err);
fipsc_status fipsc_json_positive(const cJSON *root, const char *origin, const char *key, float *out,
                                 fipsc_error *err);

#endif
