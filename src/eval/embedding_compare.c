/* Comparing a sentence encoder with its original (src/eval/embedding_compare.h).
 *
 * The sentences go through in passes: the reference embeds a pass while recording every MLP's
 * rows, m embeds it too (unless its embeddings were given), then m's MLPs run on the recorded
 * inputs and their outputs are compared with the recorded outputs. Sums are kept in double and
 * accumulated in a fixed order, so the result does not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/capture.h"
#include "ops/mlp_forward.h"
#include "eval/sts.h"
#include "model/family.h"
#include "eval/embedding_compare.h"

/* Sentences per pass: bounds the captured rows (≤ 128 tokens each). */
#define SENTENCES_PER_PASS 256

void fipsc_embedding_comparison_free(fipsc_embedding_comparison *c)
{
    if (!c) return;
    free(c->mlp_rel_err);
    memset(c, 0, sizeof *c);
}

static fipsc_status check_pair(const fipsc_model *ref, const fipsc_model *m, const fipsc_encoder_ops **enc,
                               fipsc_encoder_info *info, fipsc_error *err)
{
    const fipsc_encoder_ops *a = fipsc_model_encoder(ref), *b = fipsc_model_encoder(m);
    if (!a || !b)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "comparing embeddings needs two sentence encoders; %s is '%s'",
                          a ? "the model" : "the reference", (a ? m : ref)->arch_name);
    fipsc_encoder_info ia, ib;
    a->info(ref, &ia);
    b->info(m, &ib);
    if (ref->family != m->family || ia.dim != ib.dim || ia.max_tokens != ib.max_tokens || ref->n_mlps != m->n_mlps)
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "the model (%s, d %d, %d layers) and the reference (%s, d %d, %d layers) are not the same "
                          "encoder",
                          m->arch_name, ib.dim, m->n_mlps, ref->arch_name, ia.dim, ref->n_mlps);
    *enc = a;
    *info = ia;
    return FIPSC_OK;
}

/* Adds Σ (MLP_l(x) − y)² and Σ y² over the rows of cl to num, den. */
static fipsc_status mlp_sums(const fipsc_mlp *mlp, const fipsc_capture_layer *cl, float *yhat, float *scratch,
                             double *num, double *den, fipsc_error *err)
{
    if (cl->rows == 0) return FIPSC_OK;
    fipsc_status st = fipsc_mlp_forward(mlp, (int)cl->rows, cl->x, yhat, scratch, err);
    if (st) return st;
    const int64_t n = cl->rows * cl->d;
    for (int64_t e = 0; e < n; e++) {
        double diff = (double)yhat[e] - (double)cl->y[e];
        *num += diff * diff;
        *den += (double)cl->y[e] * (double)cl->y[e];
    }
    return FIPSC_OK;
}

fipsc_status fipsc_embedding_compare(const fipsc_model *ref, const fipsc_model *m, int n,
                               const char *const *texts, const float *m_embeddings,
                               fipsc_embedding_comparison *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    const fipsc_encoder_ops *enc = NULL;
    fipsc_encoder_info u = {0};
    fipsc_status st = check_pair(ref, m, &enc, &u, err);
    if (st) return st;
    if (n < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "comparing embeddings needs at least one sentence");
    const int d = u.dim, L = ref->n_mlps, pass = SENTENCES_PER_PASS;
    const int64_t max_rows = (int64_t)pass * u.max_tokens;

    int *layers = malloc((size_t)L * sizeof *layers);
    double *num = calloc((size_t)L, sizeof *num), *den = calloc((size_t)L, sizeof *den);
    float *e_ref = malloc((size_t)pass * (size_t)d * sizeof *e_ref);
    float *e_m = malloc((size_t)pass * (size_t)d * sizeof *e_m);
    float *yhat = malloc((size_t)max_rows * (size_t)d * sizeof *yhat);
    size_t scratch_floats = 0;
    for (int l = 0; l < L; l++) {
        size_t s = fipsc_mlp_scratch_floats(m->mlps[l], (int)max_rows);
        if (s > scratch_floats) scratch_floats = s;
    }
    float *scratch = malloc(scratch_floats * sizeof *scratch);
    int32_t **ids = calloc((size_t)pass, sizeof *ids);
    int *lens = calloc((size_t)pass, sizeof *lens);
    out->mlp_rel_err = calloc((size_t)L, sizeof *out->mlp_rel_err);
    fipsc_capture cap = {0};
    if (!layers || !num || !den || !e_ref || !e_m || !yhat || !scratch || !ids || !lens || !out->mlp_rel_err)
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory comparing %d sentences", n);
    for (int l = 0; !st && l < L; l++) layers[l] = l;
    if (!st) st = fipsc_capture_init(&cap, ref, layers, L, 0, err);

    double cos_sum = 0.0, cos_min = INFINITY;
    for (int first = 0; !st && first < n; first += pass) {
        const int cnt = n - first < pass ? n - first : pass;
        for (int k = 0; k < cnt && !st; k++) {
            free(ids[k]);
            ids[k] = NULL;
            st = enc->tokenize(ref, texts[first + k], strlen(texts[first + k]), &ids[k], &lens[k], err);
            if (st) fipsc_fail_context(err, "sentence %d: ", first + k + 1);
        }
        fipsc_capture_clear(&cap);
        if (!st) st = enc->encode(ref, cnt, (const int32_t *const *)ids, lens, e_ref, &cap, err);
        const float *em = m_embeddings ? m_embeddings + (size_t)first * d : e_m;
        if (!st && !m_embeddings) st = enc->encode(m, cnt, (const int32_t *const *)ids, lens, e_m, NULL, err);
        for (int k = 0; !st && k < cnt; k++) {
            double c = fipsc_cosine(e_ref + (size_t)k * d, em + (size_t)k * d, d);
            cos_sum += c;
            if (c < cos_min) cos_min = c;
        }
        for (int l = 0; !st && l < L; l++)
            st = mlp_sums(m->mlps[l], &cap.layers[l], yhat, scratch, &num[l], &den[l], err);
        if (!st) out->rows += cap.layers[0].rows;
    }
    if (!st) {
        out->sentences = n;
        out->mean_cosine = cos_sum / n;
        out->min_cosine = cos_min;
        out->n_mlps = L;
        for (int l = 0; l < L; l++) out->mlp_rel_err[l] = den[l] > 0 ? sqrt(num[l] / den[l]) : NAN;
    }
    fipsc_capture_free(&cap);
    for (int k = 0; ids && k < pass; k++) free(ids[k]);
    free(ids);
    free(lens);
    free(layers);
    free(num);
    free(den);
    free(e_ref);
    free(e_m);
    free(yhat);
    free(scratch);
    if (st) fipsc_embedding_comparison_free(out);
    return st;
}
