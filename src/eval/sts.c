/* STS evaluation: cosine scores, Spearman and Pearson correlations
 * (see src/eval/sts.h). */
#include "eval/sts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "model/family.h"

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
    const fipsc_encoder_ops *enc;
    fipsc_status st = fipsc_model_need_encoder(m, &enc, err);
    if (st) return st;
    fipsc_encoder_info info;
    enc->info(m, &info);
    const int n = set->n, d = info.dim;
    const char **texts = malloc(2 * (size_t)n * sizeof *texts);
    float *emb = malloc(2 * (size_t)n * (size_t)d * sizeof *emb);
    double *cos = malloc((size_t)n * sizeof *cos);
    if (!texts || !emb || !cos) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory embedding %d sentence pairs", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        texts[2 * i] = set->s1[i];
        texts[2 * i + 1] = set->s2[i];
    }
    if ((st = enc->embed(m, 2 * n, texts, NULL, emb, err))) goto done;
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
