/* The ViT distiller's blocks (src/families/vit/distill_state.h): forward over a batch keeping
 * what the backward needs, and the backward.
 *
 * Forward of block l (src/families/vit/vit.h), the rows of a batch:
 *   attention  h = LN_before(x);  q, k, v = h·W_qᵀ + b_q, ...;  per image and head:
 *              P = softmax(s·q_h·k_hᵀ), o_h = P·v_h;  x += o·W_oᵀ + b_o
 *   MLP        h = LN_after(x);  a = act(h·W_1ᵀ + b_1);  x += a·W_2ᵀ + b_2
 * Backward, dy = dL/d(block output) (the residual passes it through unchanged):
 *   linear     y = x·Wᵀ + b:  dx = dy·W,  dW = dyᵀ·x
 *   activation dpre = da ⊙ act'(pre)
 *   attention  fipsc_attention_span_backward per image and head
 *   LayerNorm  fipsc_layernorm_backward
 * Only the MLP matrices are trained: the attention's dW and every bias gradient are never formed. */
#include <omp.h>
#include <string.h>

#include "families/vit/distill_state.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/norm.h"

/* Elementwise loops run on OpenMP threads only above this many elements. */
#define PARALLEL_MIN ((int64_t)1 << 16)

fipsc_status vit_attention_fwd(vit_distiller *D, int l, int nb, float *x, vit_layer_cache *c, fipsc_error *err)
{
    const fipsc_vit_block *b = &D->v->blocks[l];
    const int d = D->d, T = D->T, rows = nb * T;
    float *h = D->tmp_d, *ctx = D->tmp_d2;
    fipsc_layernorm(x, h, rows, d, b->ln_before_w, b->ln_before_b, D->v->ln_eps, FIPSC_LN_DOUBLE, c->xhat_a, c->rstd_a);
    fipsc_status st;
    if ((st = fipsc_linear_apply(&b->q, rows, h, c->q, err)) || (st = fipsc_linear_apply(&b->k, rows, h, c->k, err)) ||
        (st = fipsc_linear_apply(&b->v, rows, h, c->v, err)))
        return st;
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < nb * D->heads; job++) {
        const size_t off = (size_t)(job / D->heads) * T * d + (size_t)(job % D->heads) * D->hd;
        fipsc_attention_span(T, D->hd, D->scale, false, c->q + off, c->k + off, c->v + off, d,
                             c->probs + (size_t)job * T * T, ctx + off, d);
    }
    return fipsc_linear_apply_add(&b->o, rows, ctx, x, err);
}

fipsc_status vit_mlp_fwd(vit_distiller *D, int l, int nb, float *x, vit_layer_cache *c, fipsc_error *err)
{
    const fipsc_vit_block *b = &D->v->blocks[l];
    const vit_mlp_view *mv = &D->mlps[l];
    const int d = D->d, rows = nb * D->T;
    fipsc_layernorm(x, c->h_m, rows, d, b->ln_after_w, b->ln_after_b, D->v->ln_eps, FIPSC_LN_DOUBLE, c->xhat_m,
                    c->rstd_m);
    fipsc_status st = fipsc_linear_apply(&mv->fc1, rows, c->h_m, c->pre, err);
    if (st) return st;
    const int64_t total = (int64_t)rows * D->f;
    const fipsc_activation act = D->v->act;
#pragma omp parallel for schedule(static) if (total >= PARALLEL_MIN)
    for (int64_t e = 0; e < total; e++) c->act[e] = fipsc_activation_value(act, c->pre[e]);
    return fipsc_linear_apply_add(&mv->fc2, rows, c->act, x, err);
}

void vit_mlp_bwd(vit_distiller *D, int l, int nb, float *dx, const vit_layer_cache *c)
{
    const fipsc_vit_block *b = &D->v->blocks[l];
    const vit_mlp_view *mv = &D->mlps[l];
    const int d = D->d, f = D->f, rows = nb * D->T;
    float *dpre = D->tmp_f;
    /* y = a·W_2ᵀ + b_2:  da = dy·W_2,  dW_2 = dyᵀ·a */
    fipsc_gemm(false, false, rows, f, d, dx, d, mv->fc2.w, f, 0.0f, dpre, f);
    if (mv->p2) fipsc_gemm(true, false, d, f, rows, dx, d, c->act, f, 0.0f, mv->p2->dw, f);
    const int64_t total = (int64_t)rows * f;
    const fipsc_activation act = D->v->act;
#pragma omp parallel for schedule(static) if (total >= PARALLEL_MIN)
    for (int64_t e = 0; e < total; e++) dpre[e] *= fipsc_activation_slope(act, c->pre[e]);
    /* pre = h·W_1ᵀ + b_1:  dW_1 = dpreᵀ·h,  dh = dpre·W_1 */
    if (mv->p1) fipsc_gemm(true, false, f, d, rows, dpre, f, c->h_m, d, 0.0f, mv->p1->dw, d);
    if (l == D->first) return;
    fipsc_gemm(false, false, rows, d, f, dpre, f, mv->fc1.w, d, 0.0f, D->tmp_d, d);
    fipsc_layernorm_backward(D->tmp_d, c->xhat_m, c->rstd_m, b->ln_after_w, rows, d, dx);
}

void vit_attention_bwd(vit_distiller *D, int l, int nb, float *dx, const vit_layer_cache *c)
{
    const fipsc_vit_block *b = &D->v->blocks[l];
    const int d = D->d, T = D->T, rows = nb * T;
    float *dctx = D->tmp_d, *dq = D->tmp_d2, *dk = D->tmp_d3, *dv = D->tmp_f; /* dv: [R, d] of [R, f] */
    /* x += ctx·W_oᵀ + b_o:  dctx = dy·W_o */
    fipsc_gemm(false, false, rows, d, d, dx, d, b->o.w, d, 0.0f, dctx, d);
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < nb * D->heads; job++) {
        const size_t off = (size_t)(job / D->heads) * T * d + (size_t)(job % D->heads) * D->hd;
        float *ds = D->scratch + (size_t)omp_get_thread_num() * T * T;
        fipsc_attention_span_backward(T, D->hd, D->scale, 1.0f, c->q + off, c->k + off, c->v + off, d,
                                      c->probs + (size_t)job * T * T, dctx + off, d, ds, dq + off, dk + off, dv + off,
                                      d);
    }
    /* dh = dq·W_q + dk·W_k + dv·W_v (dctx is free again), then back through LN_before */
    fipsc_gemm(false, false, rows, d, d, dq, d, b->q.w, d, 0.0f, dctx, d);
    fipsc_gemm(false, false, rows, d, d, dk, d, b->k.w, d, 1.0f, dctx, d);
    fipsc_gemm(false, false, rows, d, d, dv, d, b->v.w, d, 1.0f, dctx, d);
    fipsc_layernorm_backward(dctx, c->xhat_a, c->rstd_a, b->ln_before_w, rows, d, dx);
}
