/* The distiller's loss and its gradient for one batch (src/families/use/distill_internal.h): the
 * batch's fixed rows through the trained layers (distill_forward.c), mean pooling, the output
 * head, the loss with its relational and hidden-state terms, then back through the head and the
 * layers (distill_backward.c) to every parameter's gradient. Also the forward over every
 * sentence, for the cosines before and after and the original's hidden states.
 *
 * Gradients of the head, per sentence i of a batch of B:
 *   pooling       p_i = mean_t x_t:  dx_t = dp_i / len_i
 *   output        z = P·p + b, y = tanh z, e = y/‖y‖:  dy = (de − e·(e·de))/‖y‖,  dz = dy⊙(1 − y²)
 *   loss          L = mean_i (1 − e_i·t_i) with t_i the original (unit) embedding:  de_i = −t_i/B
 * and of the extra terms: relational λ·mean_ij Δ_ij² with Δ = E·Eᵀ − T·Tᵀ adds (4λ/B²)·Δ·E to
 * de; hidden-state μ·scale_l·mean_t ‖s_c − s_o‖² adds 2μ·scale_l·(s_c − s_o)/rows to the stream's
 * gradient after layer l. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/use/distill_state.h"
#include "ops/gemm.h"
#include "ops/linear.h"

void use_distiller_changed(use_distiller *D) { fipsc_distill_params_changed(&D->P); }

/* scale_l · mean over the batch's rows of ‖s_c − s_o‖² for the stream after layer l (D->x), keeping
 * the difference for the backward. */
static double hidden_term(use_distiller *D, int l, int nb, const int *sent, int rows)
{
    const int d = D->d;
    float *diff = D->hdiff[l];
    for (int b = 0; b < nb; b++) {
        const int64_t n = (int64_t)(D->offset[b + 1] - D->offset[b]) * d;
        const float *xs = D->x + (size_t)D->offset[b] * d, *ts = D->hid[l] + D->row0[sent[b]] * d;
        float *ds = diff + (size_t)D->offset[b] * d;
        for (int64_t q = 0; q < n; q++) ds[q] = xs[q] - ts[q];
    }
    double sum = 0.0;
    for (int64_t q = 0; q < (int64_t)rows * d; q++) sum += (double)diff[q] * diff[q];
    return D->hid_scale[l] * sum / rows;
}

fipsc_status use_distiller_loss_grad(use_distiller *D, int nb, const int *sent, bool want_grad,
                                     double *loss, float *emb, fipsc_error *err)
{
    fipsc_status st = fipsc_distill_loss_grad(&D->P, &D->objective, nb, sent, want_grad, loss, err);
    if (!st && emb) memcpy(emb, D->e, (size_t)nb * D->d * sizeof *emb);
    return st;
}

fipsc_status use_distill_batch(void *self, int nb, const int *sent, bool want_grad, double *loss, fipsc_error *err)
{
    use_distiller *D = self;
    if (nb < 1 || nb > D->batch_cap)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation batch of %d sentences (1..%d)", nb, D->batch_cap);
    const fipsc_use *u = D->u;
    const int d = D->d;
    /* gather the batch's fixed rows */
    D->offset[0] = 0;
    D->poff[0] = 0;
    for (int b = 0; b < nb; b++) {
        const int i = sent[b];
        if (i < 0 || i >= D->n) return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: no sentence %d", i);
        D->offset[b + 1] = D->offset[b] + D->len[i];
        D->poff[b + 1] = D->poff[b] + (int64_t)D->len[i] * D->len[i];
        if (D->offset[b + 1] > D->rows_cap)
            return fipsc_fail(err, FIPSC_ERR_INTERNAL, "distillation batch exceeds its %lld rows",
                              (long long)D->rows_cap);
        memcpy(D->x + (size_t)D->offset[b] * d, D->stream + D->row0[i] * d, (size_t)D->len[i] * d * sizeof(float));
    }
    const int rows = D->offset[nb];

    /* forward, layer by layer, with the hidden-state term after each */
    double hid_loss = 0.0;
    for (int l = D->first; l <= D->last; l++) {
        if (l > D->first) use_distill_attention_block_fwd(D, l, nb, rows, D->x, &D->cache[l]);
        use_distill_mlp_block_fwd(D, l, rows, D->x, &D->cache[l]);
        if (D->capture) memcpy(D->hid[l] + D->row0[sent[0]] * d, D->x, (size_t)rows * d * sizeof(float));
        if (D->hidden > 0.0f && !D->capture) hid_loss += hidden_term(D, l, nb, sent, rows);
    }
    for (int b = 0; b < nb; b++) {
        float *p = D->pooled + (size_t)b * d;
        const int len = D->offset[b + 1] - D->offset[b];
        memset(p, 0, (size_t)d * sizeof *p);
        for (int t = 0; t < len; t++) {
            const float *row = D->x + (size_t)(D->offset[b] + t) * d;
            for (int j = 0; j < d; j++) p[j] += row[j];
        }
        for (int j = 0; j < d; j++) p[j] /= (float)len;
    }
    fipsc_linear_rows(nb, d, d, D->pooled, d, u->pooler.w, u->pooler.bias, D->y, d);
    double total = 0.0;
    for (int b = 0; b < nb; b++) {
        float *y = D->y + (size_t)b * d, *e = D->e + (size_t)b * d;
        float ss = 0.0f;
        for (int j = 0; j < d; j++) {
            y[j] = tanhf(y[j]);
            ss += y[j] * y[j];
        }
        D->nrm[b] = sqrtf(ss > u->l2_eps ? ss : u->l2_eps);
        const float *t = D->target[sent[b]];
        memcpy(D->tb + (size_t)b * d, t, (size_t)d * sizeof(float));
        double dot = 0.0;
        for (int j = 0; j < d; j++) {
            e[j] = y[j] / D->nrm[b];
            dot += (double)e[j] * t[j];
        }
        total += 1.0 - dot;
    }
    D->batch_cos = 1.0 - total / nb;
    /* the relational term: Δ = E·Eᵀ − T·Tᵀ, the batch's cosine matrices */
    double rel = 0.0;
    if (D->relational > 0.0f) {
        /* T·Tᵀ first, then E·Eᵀ − (that): fipsc_gemm computes op(A)·op(B) + beta·C */
        fipsc_gemm(false, true, nb, nb, d, D->tb, d, D->tb, d, 0.0f, D->gram, nb);
        fipsc_gemm(false, true, nb, nb, d, D->e, d, D->e, d, -1.0f, D->gram, nb);
        for (int64_t q = 0; q < (int64_t)nb * nb; q++) rel += (double)D->gram[q] * D->gram[q];
        rel /= (double)nb * nb;
    }
    *loss = total / nb + D->relational * rel + D->hidden * hid_loss;
    if (!want_grad || !isfinite(*loss)) return FIPSC_OK;

    /* de = −t/B (cosine term) + (4λ/B²)·Δ·E (relational term) */
    if (D->relational > 0.0f) {
        const float c = (float)(4.0 * D->relational / ((double)nb * nb));
        fipsc_gemm(false, false, nb, d, nb, D->gram, nb, D->e, d, 0.0f, D->dp, d);
        for (int64_t q = 0; q < (int64_t)nb * d; q++) D->dp[q] = c * D->dp[q] - (float)(1.0 / nb) * D->tb[q];
    } else {
        for (int64_t q = 0; q < (int64_t)nb * d; q++) D->dp[q] = (float)(-1.0 / nb) * D->tb[q];
    }
    /* backward through the normalisation and tanh: de -> dz, in place */
    for (int b = 0; b < nb; b++) {
        const float *y = D->y + (size_t)b * d, *e = D->e + (size_t)b * d;
        float *dz = D->dp + (size_t)b * d;
        float ede = 0.0f;
        for (int j = 0; j < d; j++) ede += e[j] * dz[j];
        const bool clamped = D->nrm[b] * D->nrm[b] <= u->l2_eps;
        for (int j = 0; j < d; j++) {
            const float dy = (clamped ? dz[j] : dz[j] - e[j] * ede) / D->nrm[b];
            dz[j] = dy * (1.0f - y[j] * y[j]);
        }
    }
    /* dp = dz·P, spread over each sentence's rows */
    fipsc_gemm(false, false, nb, d, d, D->dp, d, u->pooler.w, d, 0.0f, D->pooled, d);
    for (int b = 0; b < nb; b++) {
        const int len = D->offset[b + 1] - D->offset[b];
        const float *dp = D->pooled + (size_t)b * d;
        for (int t = 0; t < len; t++) {
            float *row = D->dx + (size_t)(D->offset[b] + t) * d;
            for (int j = 0; j < d; j++) row[j] = dp[j] / (float)len;
        }
    }
    for (int l = D->last; l >= D->first; l--) {
        if (D->hidden > 0.0f) { /* d(μ·scale·mean_t ‖s_c − s_o‖²)/ds_c = 2μ·scale·(s_c − s_o)/rows */
            const float c = (float)(2.0 * D->hidden * D->hid_scale[l] / rows);
            const float *diff = D->hdiff[l];
            for (int64_t q = 0; q < (int64_t)rows * d; q++) D->dx[q] += c * diff[q];
        }
        use_distill_mlp_block_bwd(D, l, rows, D->dx, &D->cache[l]);
        if (l > D->first) use_distill_attention_block_bwd(D, l, nb, rows, D->dx, &D->cache[l]);
    }
    return FIPSC_OK;
}

/* The forward over every sentence in consecutive batches (D->capture: keeping the original's
 * streams): *mean_cos = mean cos(e_c, e_o) at the current parameters. */
fipsc_status use_distill_forward_all(void *self, double *mean_cos, fipsc_error *err)
{
    use_distiller *D = self;
    int *all = malloc((size_t)D->batch_cap * sizeof *all);
    if (!all) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    double sum = 0.0;
    fipsc_status st = FIPSC_OK;
    for (int s0 = 0; s0 < D->n && !st; s0 += D->batch_cap) {
        const int cnt = D->n - s0 < D->batch_cap ? D->n - s0 : D->batch_cap;
        for (int b = 0; b < cnt; b++) all[b] = s0 + b;
        double loss;
        st = use_distiller_loss_grad(D, cnt, all, false, &loss, NULL, err);
        sum += D->batch_cos * cnt;
    }
    free(all);
    *mean_cos = sum / D->n;
    return st;
}
