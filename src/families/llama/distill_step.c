/* The language-model distiller's loss for a batch (src/families/llama/distill.h): the batch's
 * fixed rows through the trained layers (distill_blocks.c), the final RMSNorm and the head, the
 * KL to the original's next-token distribution, and back.
 *
 * Per scored position (a row with a next token; N of them in the batch), with z the compressed
 * model's logits and lc = log_softmax(z), lo = log_softmax(the original's logits):
 *     KL = Σ_v p_o,v·(lo_v − lc_v),   L = (1/N)·Σ_positions KL,
 *     dL/dz = (softmax(z) − p_o)/N    (0 at each sequence's last row, which is not scored),
 * then logits = RMSNorm(x)·w_f·Eᵀ:  dn = dz·E, and back through the RMSNorm to the stream.
 * The original's logits come from its own forward (fipsc_llama_forward) over the batch, each
 * step: nothing of size positions × vocabulary is kept between steps. */
#include <math.h>
#include <string.h>

#include "core/clock.h"
#include "families/llama/distill_state.h"
#include "families/llama/runtime.h"
#include "ops/gemm.h"
#include "ops/norm.h"

fipsc_status lm_distill_batch(void *self, int nb, const int *idx, bool want_grad, double *loss, fipsc_error *err)
{
    lm_distiller *D = self;
    if (nb < 1 || nb > D->batch_cap)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation batch of %d sequences (1..%d)", nb, D->batch_cap);
    const int d = D->d, vocab = D->vocab;
    D->offset[0] = 0;
    D->poff[0] = 0;
    for (int b = 0; b < nb; b++) {
        const int i = idx[b];
        if (i < 0 || i >= D->n) return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: no sequence %d", i);
        D->offset[b + 1] = D->offset[b] + D->len[i];
        D->poff[b + 1] = D->poff[b] + (int64_t)D->len[i] * D->len[i];
        if (D->offset[b + 1] > D->rows_cap)
            return fipsc_fail(err, FIPSC_ERR_INTERNAL, "distillation batch exceeds its %lld rows",
                              (long long)D->rows_cap);
        memcpy(D->x + (size_t)D->offset[b] * d, D->stream + D->row0[i] * d, (size_t)D->len[i] * d * sizeof(float));
        memcpy(D->tokens + D->offset[b], D->ids[i], (size_t)D->len[i] * sizeof *D->tokens);
    }
    const int rows = D->offset[nb];
    /* the original's logits: one pass over the batch when its sequences have one length (the
     * usual corpus), else a pass per sequence */
    bool one_length = true;
    for (int b = 1; b < nb; b++) one_length &= D->offset[b + 1] - D->offset[b] == D->offset[1];
    for (int b = 0; b < (one_length ? 1 : nb); b++) {
        const int len = D->offset[b + 1] - D->offset[b];
        fipsc_status st = fipsc_llama_forward(D->orig, D->tokens + D->offset[b], one_length ? nb : 1, len,
                                              D->teacher + (size_t)D->offset[b] * vocab, NULL, err);
        if (st) return fipsc_fail_context(err, "the original's forward: ");
    }
    for (int l = D->first; l <= D->last; l++) {
        if (l > D->first) lm_attention_fwd(D, l, nb, rows, D->x, &D->cache[l]);
        lm_mlp_fwd(D, l, rows, D->x, &D->cache[l]);
    }
    /* the head: logits = RMSNorm(x)·Eᵀ */
    const float *E = D->v->lm_head.w;
    fipsc_rmsnorm(D->x, D->v->final_norm, D->tmp_d, rows, d, D->eps);
    fipsc_gemm(false, true, rows, vocab, d, D->tmp_d, d, E, d, 0.0f, D->logits, vocab);
    int64_t scored = 0;
    for (int b = 0; b < nb; b++) scored += D->offset[b + 1] - D->offset[b] - 1;
    /* each row's KL on its own, summed in row order after: the same loss for any thread count */
#pragma omp parallel for schedule(static) if ((int64_t)rows * vocab >= LM_PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        float *t = D->teacher + (size_t)r * vocab;
        fipsc_distill_log_softmax(t, vocab);
        int b = 0;
        while (D->offset[b + 1] <= r) b++;
        const bool last = r == D->offset[b + 1] - 1; /* no next token: not scored */
        const double kl = fipsc_distill_kl(D->logits + (size_t)r * vocab, t, vocab, want_grad,
                                           last ? 0.0 : 1.0 / (double)scored);
        D->row_kl[r] = last ? 0.0 : kl;
    }
    double total = 0.0;
    for (int r = 0; r < rows; r++) total += D->row_kl[r];
    *loss = total / (double)scored;
    if (!want_grad || !isfinite(*loss)) return FIPSC_OK;
    /* dn = dz·E;  dx = through the final RMSNorm */
    fipsc_gemm(false, false, rows, d, vocab, D->logits, vocab, E, d, 0.0f, D->tmp_d, d);
    memset(D->dx, 0, (size_t)rows * d * sizeof(float));
    fipsc_rmsnorm_backward(D->tmp_d, D->x, D->v->final_norm, rows, d, D->eps, D->dx);
    for (int l = D->last; l >= D->first; l--) {
        lm_mlp_bwd(D, l, rows, D->dx, &D->cache[l]);
        if (l > D->first) lm_attention_bwd(D, l, nb, rows, D->dx, &D->cache[l]);
    }
    return FIPSC_OK;
}

/* A batch of sequences [first, first + count) weighs its scored positions. */
static double scored_positions(void *self, int first, int count)
{
    const lm_distiller *D = self;
    return (double)(D->row0[first + count] - D->row0[first] - count);
}

fipsc_status lm_distill_score(void *self, double *kl, fipsc_error *err)
{
    lm_distiller *D = self;
    return fipsc_distill_mean_loss(&D->objective, scored_positions, kl, err);
}

fipsc_status lm_distiller_score(lm_distiller *D, double *kl, fipsc_error *err)
{
    fipsc_status st = fipsc_distill_params_densify(&D->P, err);
    return st ? st : lm_distill_score(D, kl, err);
}

fipsc_status lm_distiller_loss_grad(lm_distiller *D, int nb, const int *seq, bool want_grad, double *loss,
                                    fipsc_error *err)
{
    return fipsc_distill_loss_grad(&D->P, &D->objective, nb, seq, want_grad, loss, err);
}

fipsc_status fipsc_llama_distill(fipsc_model *m, const fipsc_model *original, const fipsc_corpus *c,
                                 const fipsc_distill_opts *o, fipsc_distill_report *rep, fipsc_error *err)
{
    memset(rep, 0, sizeof *rep);
    fipsc_status st = fipsc_distill_check_opts(o, err);
    if (st) return st;
    if (o->relational > 0.0f || o->hidden > 0.0f)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation of a language model: the relational and hidden-state "
                          "terms are the sentence encoder's (give 0)");
    const double t0 = fipsc_seconds_now();
    lm_distiller *D;
    if ((st = lm_distiller_new(m, original, c, o->batch, &D, err))) return st;
    rep->steps = o->steps;
    rep->items = D->n;
    rep->rows = D->scored;
    rep->params = D->P.params;
    rep->first_layer = D->first;
    st = fipsc_distill_train(&D->P, &D->objective, o, &rep->score_before, &rep->score_after, err);
    lm_distiller_free(D);
    rep->seconds = fipsc_seconds_now() - t0;
    return st;
}
