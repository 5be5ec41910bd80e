/* The ViT distiller's loss for a batch (src/families/vit/distill.h): the batch's fixed rows
 * through the trained blocks (distill_blocks.c), the final LayerNorm of the CLS (and DIST) rows,
 * the classifier, the KL to the original's logits, and back.
 *
 * Per image, with z the compressed model's logits, lc = log_softmax(z) and lo the original's:
 *     KL = Σ_c p_o,c·(lo_c − lc_c),   L = (1/nb)·Σ_images KL,   dL/dz = (softmax(z) − p_o)/nb,
 * then z = LN_final(x_CLS)·Hᵀ + b (DeiT with teacher: the mean with the DIST row's head, each
 * getting dz/2):  dn = dz·H, and back through LN_final to the CLS (DIST) rows of the stream. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "families/vit/distill_state.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/norm.h"

fipsc_status vit_distill_batch(void *self, int nb, const int *idx, bool want_grad, double *loss, fipsc_error *err)
{
    vit_distiller *D = self;
    if (nb < 1 || nb > D->batch_cap)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation batch of %d images (1..%d)", nb, D->batch_cap);
    const fipsc_vit *v = D->v;
    const int d = D->d, T = D->T, L = D->labels;
    const size_t rows_d = (size_t)T * d;
    for (int b = 0; b < nb; b++) {
        if (idx[b] < 0 || idx[b] >= D->n) return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: no image %d", idx[b]);
        memcpy(D->x + b * rows_d, D->stream + (size_t)idx[b] * rows_d, rows_d * sizeof(float));
    }
    fipsc_status st = FIPSC_OK;
    for (int l = D->first; l <= D->last && !st; l++) {
        if (l > D->first) st = vit_attention_fwd(D, l, nb, D->x, &D->cache[l], err);
        if (!st) st = vit_mlp_fwd(D, l, nb, D->x, &D->cache[l], err);
    }
    if (st) return st;
    /* the head: the CLS rows (then the DIST rows) through LN_final and their classifiers */
    const bool two = v->kind == FIPSC_VIT_DEIT_TEACHER;
    const int hrows = two ? 2 * nb : nb;
    for (int b = 0; b < nb; b++) {
        memcpy(D->heads_in + (size_t)b * d, D->x + b * rows_d, (size_t)d * sizeof(float));
        if (two) memcpy(D->heads_in + (size_t)(nb + b) * d, D->x + b * rows_d + d, (size_t)d * sizeof(float));
    }
    fipsc_layernorm(D->heads_in, D->heads_in, hrows, d, v->final_ln_w, v->final_ln_b, v->ln_eps, FIPSC_LN_DOUBLE,
                    D->heads_xhat, D->heads_rstd);
    if ((st = fipsc_linear_apply(&v->head, nb, D->heads_in, D->logits, err))) return st;
    if (two) {
        if ((st = fipsc_linear_apply(&v->dist_head, nb, D->heads_in + (size_t)nb * d, D->logits2, err))) return st;
        for (size_t q = 0; q < (size_t)nb * L; q++) D->logits[q] = (D->logits[q] + D->logits2[q]) / 2.0f;
    }
    double total = 0.0;
    for (int b = 0; b < nb; b++)
        total += fipsc_distill_kl(D->logits + (size_t)b * L, D->teacher + (size_t)idx[b] * L, L, want_grad, 1.0 / nb);
    *loss = total / nb;
    if (!want_grad || !isfinite(*loss)) return FIPSC_OK;
    /* dn = dz·H (each head's share), back through LN_final into the CLS (DIST) rows of dx */
    const float share = two ? 0.5f : 1.0f;
    for (size_t q = 0; q < (size_t)nb * L; q++) D->logits[q] *= share;
    float *dn = D->tmp_d, *dh = D->tmp_d2;
    fipsc_gemm(false, false, nb, d, L, D->logits, L, v->head.w, d, 0.0f, dn, d);
    if (two) fipsc_gemm(false, false, nb, d, L, D->logits, L, v->dist_head.w, d, 0.0f, dn + (size_t)nb * d, d);
    memset(dh, 0, (size_t)hrows * d * sizeof(float));
    fipsc_layernorm_backward(dn, D->heads_xhat, D->heads_rstd, v->final_ln_w, hrows, d, dh);
    memset(D->dx, 0, (size_t)nb * rows_d * sizeof(float));
    for (int b = 0; b < nb; b++) {
        memcpy(D->dx + b * rows_d, dh + (size_t)b * d, (size_t)d * sizeof(float));
        if (two) memcpy(D->dx + b * rows_d + d, dh + (size_t)(nb + b) * d, (size_t)d * sizeof(float));
    }
    for (int l = D->last; l >= D->first; l--) {
        vit_mlp_bwd(D, l, nb, D->dx, &D->cache[l]);
        if (l > D->first) vit_attention_bwd(D, l, nb, D->dx, &D->cache[l]);
    }
    return FIPSC_OK;
}

fipsc_status vit_distill_score(void *self, double *kl, fipsc_error *err)
{
    vit_distiller *D = self;
    return fipsc_distill_mean_loss(&D->objective, NULL, kl, err);
}

fipsc_status vit_distiller_loss_grad(vit_distiller *D, int nb, const int *img, bool want_grad, double *loss,
                                     fipsc_error *err)
{
    return fipsc_distill_loss_grad(&D->P, &D->objective, nb, img, want_grad, loss, err);
}

int vit_distiller_first_layer(const vit_distiller *D) { return D->first; }
int vit_distiller_block_count(const vit_distiller *D) { return fipsc_distill_params_blocks(&D->P); }
float *vit_distiller_block(vit_distiller *D, int k, int64_t *len, const float **grad)
{
    return fipsc_distill_params_block(&D->P, k, len, grad);
}
void vit_distiller_changed(vit_distiller *D) { fipsc_distill_params_changed(&D->P); }

fipsc_status fipsc_vit_distill(fipsc_model *m, const fipsc_model *original, const float *pixels, int n,
                               const fipsc_distill_opts *o, fipsc_distill_report *rep, fipsc_error *err)
{
    memset(rep, 0, sizeof *rep);
    fipsc_status st = fipsc_distill_check_opts(o, err);
    if (st) return st;
    if (o->relational > 0.0f || o->hidden > 0.0f)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation of an image classifier: the relational and hidden-state "
                          "terms are the sentence encoder's (give 0)");
    const double t0 = fipsc_seconds_now();
    vit_distiller *D;
    if ((st = vit_distiller_new(m, original, pixels, n, o->batch, &D, err))) return st;
    rep->steps = o->steps;
    rep->items = D->n;
    rep->rows = (int64_t)D->n * D->T;
    rep->params = D->P.params;
    rep->first_layer = D->first;
    st = fipsc_distill_train(&D->P, &D->objective, o, &rep->score_before, &rep->score_after, err);
    vit_distiller_free(D);
    rep->seconds = fipsc_seconds_now() - t0;
    return st;
}
