/* Comparing a sentence encoder with its original (src/eval/use_compare.h).
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
#include "families/use/use.h"
#include "eval/use_compare.h"

/* Sentences per pass: bounds the captured rows (≤ 128 tokens each). */
#define SENTENCES_PER_PASS 256

void fipsc_use_comparison_free(fipsc_use_comparison *c)
{
    if (!c) return;
    free(c->mlp_rel_err);
    memset(c, 0, sizeof *c);
}

static fipsc_status check_pair(const fipsc_model *ref, const fipsc_model *m, fipsc_error *err)
{
    const fipsc_use *a = fipsc_model_use(ref), *b = fipsc_model_use(m);
    if (!a || !b)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "comparing embeddings needs two sentence encoders (%s); %s is '%s'",
                          FIPSC_USE_ARCH_NAME, a ? "the model" : "the reference", (a ? m : ref)->cfg.arch_name);
    if (a->dim != b->dim || a->hidden != b->hidden || a->n_layers != b->n_layers || a->embed_dim != b->embed_dim ||
        a->vocab_size != b->vocab_size || a->max_tokens != b->max_tokens)
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "the model (d %d, f %d, %d layers, vocabulary %d) and the reference (d %d, f %d, %d "
                          "layers, vocabulary %d) are not the same encoder",
                          b->dim, b->hidden, b->n_layers, b->vocab_size, a->dim, a->hidden, a->n_layers,
                          a->vocab_size);
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

fipsc_status fipsc_use_compare(const fipsc_model *ref, const fipsc_model *m, int n,
                               const char *const *texts, const float *m_embeddings,
                               fipsc_use_comparison *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    fipsc_status st = check_pair(ref, m, err);
    if (st) return st;
    if (n < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "comparing embeddings needs at least one sentence");
    const fipsc_use *u = fipsc_model_use(ref);
    const int d = u->dim, L = u->n_layers, pass = SENTENCES_PER_PASS;
    const int64_t max_rows = (int64_t)pass * u->max_tokens;

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
            st = fipsc_use_tokenize(ref, texts[first + k], strlen(texts[first + k]), &ids[k], &lens[k], err);
            if (st) fipsc_fail_context(err, "sentence %d: ", first + k + 1);
        }
        fipsc_capture_clear(&cap);
        if (!st) st = fipsc_use_encode(ref, cnt, (const int32_t *const *)ids, lens, e_ref, &cap, err);
        const float *em = m_embeddings ? m_embeddings + (size_t)first * d : e_m;
        if (!st && !m_embeddings) st = fipsc_use_encode(m, cnt, (const int32_t *const *)ids, lens, e_m, NULL, err);
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
    if (st) fipsc_use_comparison_free(out);
    return st;
}
