/* Several calibration files with weights (see src/compress/calibration_list.h). */
#include "compress/calibration_list.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void calib_list_free(calib_list *l)
{
    for (int i = 0; l && i < l->n; i++) free(l->items[i].path);
    if (l) memset(l, 0, sizeof *l);
}

/* The weight after the last ':' of part [p, p + len), if the whole suffix is a number. */
static bool weight_suffix(const char *p, size_t len, size_t *colon, double *weight)
{
    size_t c = len;
    while (c > 0 && p[c - 1] != ':') c--;
    if (c == 0 || c == len) return false;
    char buf[64];
    if (len - c >= sizeof buf) return false;
    memcpy(buf, p + c, len - c);
    buf[len - c] = '\0';
    char *end;
    errno = 0;
    double w = strtod(buf, &end);
    if (end == buf || *end != '\0' || errno) return false;
    *colon = c - 1;
    *weight = w;
    return true;
}

fipsc_status calib_list_parse(const char *option, const char *spec, calib_list *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    if (!spec || !spec[0]) return fipsc_fail(err, FIPSC_ERR_ARG, "%s: no file given", option);
    for (const char *p = spec;;) {
        const char *comma = strchr(p, ',');
        const size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (out->n == CALIB_LIST_MAX) {
            calib_list_free(out);
            return fipsc_fail(err, FIPSC_ERR_ARG, "%s: more than %d files", option, CALIB_LIST_MAX);
        }
        calib_item *it = &out->items[out->n];
        size_t colon = len;
        double w = 1.0;
        it->weighted = weight_suffix(p, len, &colon, &w);
        if (it->weighted && !(w > 0.0 && isfinite(w))) {
            calib_list_free(out);
            return fipsc_fail(err, FIPSC_ERR_ARG, "%s: the weight of '%.*s' must be a positive number", option,
                              (int)len, p);
        }
        const size_t path_len = it->weighted ? colon : len;
        if (path_len == 0) {
            calib_list_free(out);
            return fipsc_fail(err, FIPSC_ERR_ARG, "%s '%s': an empty file name", option, spec);
        }
        if (!(it->path = malloc(path_len + 1))) {
            calib_list_free(out);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        }
        memcpy(it->path, p, path_len);
        it->path[path_len] = '\0';
        it->weight = w;
        out->n++;
        if (!comma) break;
        p = comma + 1;
    }
    return FIPSC_OK;
}

void calib_list_shares(const calib_list *l, int64_t total, int64_t *shares)
{
    double sum = 0.0;
    for (int i = 0; i < l->n; i++) sum += l->items[i].weight;
    /* Largest remainder: floors first, then one more to the largest fractions (earlier first). */
    int64_t given = 0;
    double frac[CALIB_LIST_MAX];
    for (int i = 0; i < l->n; i++) {
        const double exact = (double)total * l->items[i].weight / sum;
        shares[i] = (int64_t)floor(exact);
        frac[i] = exact - (double)shares[i];
        given += shares[i];
    }
    while (given < total) {
        int best = 0;
        for (int i = 1; i < l->n; i++)
            if (frac[i] > frac[best]) best = i;
        shares[best]++;
        frac[best] = -1.0;
        given++;
    }
}

void calib_interleave(const int *counts, int n, int *source)
{
    int next[CALIB_LIST_MAX] = {0};
    int64_t total = 0;
    for (int k = 0; k < n; k++) total += counts[k];
    for (int64_t pos = 0; pos < total; pos++) {
        /* The source whose next item has the smallest fractional rank (2j + 1) / (2·count), compared
         * exactly by cross-multiplication; ties to the earlier source. */
        int best = -1;
        for (int k = 0; k < n; k++) {
            if (next[k] >= counts[k]) continue;
            if (best < 0 || (int64_t)(2 * next[k] + 1) * counts[best] < (int64_t)(2 * next[best] + 1) * counts[k])
                best = k;
        }
        source[pos] = best;
        next[best]++;
    }
}
