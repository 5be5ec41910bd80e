/* STS evaluation: reading STS-B style files, cosine scores, Spearman and Pearson correlations
 * (see src/eval/sts.h). */
#include "eval/sts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "families/use/use.h"

/* ------------------------------------------------------------------ correlations */

double fipsc_pearson(const double *x, const double *y, int n)
{
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (sxx == 0 || syy == 0) return NAN;
    return sxy / sqrt(sxx * syy);
}

typedef struct ranked {
    double value;
    int index;
} ranked;

static int by_value_then_index(const void *a, const void *b)
{
    const ranked *p = a, *q = b;
    if (p->value < q->value) return -1;
    if (p->value > q->value) return 1;
    return (p->index > q->index) - (p->index < q->index);
}

fipsc_status fipsc_average_ranks(const double *x, int n, double *ranks, fipsc_error *err)
{
    ranked *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    if (!r) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory ranking %d values", n);
    for (int i = 0; i < n; i++) r[i] = (ranked){x[i], i};
    qsort(r, (size_t)n, sizeof *r, by_value_then_index);
    /* positions i..j hold equal values: each gets the mean rank (i + j) / 2 + 1 */
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && r[j + 1].value == r[i].value) j++;
        for (int k = i; k <= j; k++) ranks[r[k].index] = (i + j) / 2.0 + 1.0;
        i = j + 1;
    }
    free(r);
    return FIPSC_OK;
}

fipsc_status fipsc_spearman(const double *x, const double *y, int n, double *out, fipsc_error *err)
{
    double *rx = malloc((size_t)(n > 0 ? n : 1) * sizeof *rx), *ry = malloc((size_t)(n > 0 ? n : 1) * sizeof *ry);
    fipsc_status st = FIPSC_OK;
    if (!rx || !ry) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory ranking %d values", n);
    if (!st) st = fipsc_average_ranks(x, n, rx, err);
    if (!st) st = fipsc_average_ranks(y, n, ry, err);
    if (!st) *out = fipsc_pearson(rx, ry, n);
    free(rx);
    free(ry);
    return st;
}

/* ------------------------------------------------------------------ files */

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

/* ------------------------------------------------------------------ evaluation */

double fipsc_cosine(const float *a, const float *b, int d)
{
    double ab = 0, aa = 0, bb = 0;
    for (int j = 0; j < d; j++) {
        ab += (double)a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += (double)b[j] * b[j];
    }
    return ab / sqrt(aa * bb);
}

fipsc_status fipsc_sts_evaluate(const fipsc_model *m, const fipsc_sts_set *set, fipsc_sts_result *res,
                                double *cosines, float *embeddings, fipsc_error *err)
{
    const fipsc_use *u = fipsc_model_use(m);
    if (!u)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "STS evaluation needs a sentence encoder (%s); this model is %s",
                          FIPSC_USE_ARCH_NAME, m->cfg.arch_name);
    const int n = set->n, d = u->dim;
    const char **texts = malloc(2 * (size_t)n * sizeof *texts);
    float *emb = malloc(2 * (size_t)n * (size_t)d * sizeof *emb);
    double *cos = malloc((size_t)n * sizeof *cos);
    fipsc_status st = FIPSC_OK;
    if (!texts || !emb || !cos) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory embedding %d sentence pairs", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        texts[2 * i] = set->s1[i];
        texts[2 * i + 1] = set->s2[i];
    }
    if ((st = fipsc_use_embed(m, 2 * n, texts, NULL, emb, err))) goto done;
    for (int i = 0; i < n; i++) {
        const float *a = emb + 2 * (size_t)i * d;
        cos[i] = fipsc_cosine(a, a + d, d);
        if (!isfinite(cos[i])) {
            st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "pair %d: the cosine similarity is not finite", i);
            goto done;
        }
    }
    res->pairs = n;
    res->pearson = fipsc_pearson(cos, set->score, n);
    if ((st = fipsc_spearman(cos, set->score, n, &res->spearman, err))) goto done;
    if (cosines) memcpy(cosines, cos, (size_t)n * sizeof *cos);
    if (embeddings) memcpy(embeddings, emb, 2 * (size_t)n * (size_t)d * sizeof *emb);
done:
    free(texts);
    free(emb);
    free(cos);
    return st;
}
