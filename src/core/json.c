/* Small JSON helpers (see src/core/json.h). */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *fipsc_json_float(float f)
{
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

const char *fipsc_json_architecture(const cJSON *root, const char **model_type)
{
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    *model_type = cJSON_IsString(mt) ? mt->valuestring : NULL;
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *first = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    return cJSON_IsString(first) ? first->valuestring : NULL;
}

void fipsc_json_brief(const cJSON *v, char *buf, size_t cap)
{
    char *text = cJSON_PrintUnformatted(v);
    if (!text) {
        snprintf(buf, cap, "(unprintable)");
        return;
    }
    if (strlen(text) > 40) memcpy(text + 37, "...", 4);
    snprintf(buf, cap, "%s", text);
    free(text);
}

fipsc_status fipsc_json_bad_key(const char *origin, const char *key, const char *want, const cJSON *v,
                                fipsc_error *err)
{
    char got[64];
    fipsc_json_brief(v, got, sizeof got);
    return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: key '%s' must be %s, got %s", origin, key, want, got);
}

fipsc_status fipsc_json_int(const cJSON *root, const char *origin, const char *key, long long lo, long long hi,
                            bool *present, int *out, fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || (present && cJSON_IsNull(v))) {
        if (!present) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: missing required key '%s'", origin, key);
        *present = false;
        return FIPSC_OK;
    }
    const double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < (double)lo || d > (double)hi) {
        char want[80];
        snprintf(want, sizeof want, "an integer in [%lld, %lld]", lo, hi);
        return fipsc_json_bad_key(origin, key, want, v, err);
    }
    if (present) *present = true;
    *out = (int)d;
    return FIPSC_OK;
}

fipsc_status fipsc_json_bool(const cJSON *root, const char *origin, const char *key, bool *out, fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return FIPSC_OK;
    if (!cJSON_IsBool(v)) return fipsc_json_bad_key(origin, key, "true or false", v, err);
    *out = cJSON_IsTrue(v);
    return FIPSC_OK;
}

fipsc_status fipsc_json_positive(const cJSON *root, const char *origin, const char *key, float *out,
                                 fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return FIPSC_OK;
    if (!cJSON_IsNumber(v) || !((float)v->valuedouble > 0) || !isfinite((float)v->valuedouble))
        return fipsc_json_bad_key(origin, key, "a positive number", v, err);
    *out = (float)v->valuedouble;
    return FIPSC_OK;
}
