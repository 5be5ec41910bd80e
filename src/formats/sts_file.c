/* STS Benchmark files (see src/formats/sts_file.h). */
#include "formats/sts_file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

void fipsc_sts_free(fipsc_sts_set *set)
{
    if (!set) return;
    for (int i = 0; i < set->n; i++) {
        free(set->s1[i]);
        free(set->s2[i]);
    }
    free(set->s1);
    free(set->s2);
    free(set->score);
    memset(set, 0, sizeof *set);
}

/* Splits line (modified in place) at tabs into at most max fields; returns the field count. */
static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    fields[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = '\0';
            fields[n++] = p + 1;
        }
    return n;
}

fipsc_status fipsc_sts_read(const char *path, fipsc_sts_set *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    char *text;
    size_t size;
    fipsc_status st = fipsc_read_file(path, &text, &size, err);
    if (st) return st;
    int cap = 0;
    for (size_t i = 0; i < size; i++) cap += text[i] == '\n';
    cap += 1;
    out->score = malloc((size_t)cap * sizeof *out->score);
    out->s1 = calloc((size_t)cap, sizeof *out->s1);
    out->s2 = calloc((size_t)cap, sizeof *out->s2);
    if (!out->score || !out->s1 || !out->s2) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %s", path);
        goto done;
    }
    char *line = text, *end = text + size;
    for (int lineno = 1; line < end; lineno++) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl : end;
        *stop = '\0';
        if (stop > line && stop[-1] == '\r') stop[-1] = '\0';
        char *next = nl ? nl + 1 : end;
        if (strlen(line) != (size_t)(stop - line) && strlen(line) + 1 != (size_t)(stop - line)) {
            st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: line %d contains a NUL byte", path, lineno);
            goto done;
        }
        if (*line) {
            char *f[8];
            int nf = split_tabs(line, f, 8);
            if (nf < 7) {
                st = fipsc_fail(err, FIPSC_ERR_FORMAT,
                                "%s: line %d has %d tab-separated columns; expected genre, file, year, id, "
                                "score, sentence 1, sentence 2",
                                path, lineno, nf);
                goto done;
            }
            char *e;
            errno = 0;
            double score = strtod(f[4], &e);
            if (e == f[4] || *e || errno || !isfinite(score)) {
                st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: line %d: the score '%s' is not a number", path,
                                lineno, f[4]);
                goto done;
            }
            if (nf > 7) out->extra_column_rows++;
            int i = out->n;
            out->score[i] = score;
            out->s1[i] = strdup(f[5]);
            out->s2[i] = strdup(f[6]);
            out->n++;
            if (!out->s1[i] || !out->s2[i]) {
                st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %s", path);
                goto done;
            }
        }
        line = next;
    }
    if (out->n < 2)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: %d sentence pair(s); a correlation needs at least 2", path,
                        out->n);
done:
    free(text);
    if (st) fipsc_sts_free(out);
    return st;
}
