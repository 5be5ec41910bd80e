/* The distiller's backward through the blocks (src/families/use/distill.c): from dL/d(stream)
 * to every trained matrix's dL/dW_i (src/model/distill_params.c chains it to the factors U and V_i).
 *
 * Gradients, row-major with one token per row (y = x·Wᵀ + b for a linear [out, in]):
 *   linear        dx = dy·W,  dW = dyᵀ·x
 *   LayerNorm     x̂ = (x − μ)·ρ, y = γ⊙x̂ + β:  g = γ⊙dy,  dx = ρ·(g − mean(g) − x̂·mean(g⊙x̂))
 *   attention     per sentence and head: S = (s·q)·kᵀ, P = softmax(S) by row, O = P·v
 *                 dv = Pᵀ·dO, dP = dO·vᵀ, dS = P⊙(dP − rowsum(dP⊙P)), dq = s·dS·k, dk = dSᵀ·(s·q)
 * (pooling, output and loss: distill_step.c). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "families/use/distill_state.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/gemm.h"

/* datt [rows, dw] -> dqkv [rows, 3·dw] (dq with respect to the unscaled q). */
static void attention_bwd(const use_distiller *D, int nb, int heads, int hd, float scale, const float *qkv,
                          const float *probs, const float *datt, float *dqkv)
{
    const int dw = heads * hd, ld = 3 * dw;
    const int *offset = D->offset;
    const int64_t *poff = D->poff;
    const int max_len = D->u->max_tokens;
    float *scratch = D->tmp_f; /* per thread [max_len²]: rows_cap·f ≥ threads·max_len² is checked at setup */
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < nb * heads; job++) {
        const int i = job / heads, h = job % heads, base = offset[i], len = offset[i + 1] - base;
        const float *q = qkv + (size_t)base * ld + h * hd, *k = q + dw, *v = q + 2 * dw;
        const float *p = probs + poff[i] * heads + (int64_t)h * len * len;
        const float *dO = datt + (size_t)base * dw + h * hd;
        float *dq = dqkv + (size_t)base * ld + h * hd, *dk = dq + dw, *dv = dq + 2 * dw;
        float *dS = scratch + (size_t)omp_get_thread_num() * max_len * max_len;
        fipsc_attention_span_backward(len, hd, 1.0f, scale, q, k, v, ld, p, dO, dw, dS, dq, dk, dv, ld);
    }
}

/* Given dx = dL/d(the block's output stream) [rows, d]: the trained matrices' dW and, unless this
 * is the first trained layer, dx becomes dL/d(the block's input stream). */
void use_distill_mlp_block_bwd(use_distiller *D, int l, int rows, float *dx, const layer_cache *c)
{
    const fipsc_use_layer *L = &D->u->layers[l];
    const mlp_view *mv = &D->mlps[l];
    const int d = D->d, f = D->f;
    float *dact = D->tmp_f;
    /* y = act·W2ᵀ + b2:  dact = dy·W2,  dW2 = dyᵀ·act */
    fipsc_gemm(false, false, rows, f, d, dx, d, mv->w2, f, 0.0f, dact, f);
    if (mv->p2) fipsc_gemm(true, false, d, f, rows, dx, d, c->act, f, 0.0f, mv->p2->dw, f);
    const int64_t total = (int64_t)rows * f;
#pragma omp parallel for schedule(static) if (total >= PARALLEL_MIN)
    for (int64_t e = 0; e < total; e++) dact[e] *= fipsc_activation_slope(L->mlp.act, c->pre[e]);
    /* pre = h·W1ᵀ + b1:  dW1 = dpreᵀ·h,  dh = dpre·W1 */
    if (mv->p1) fipsc_gemm(true, false, f, d, rows, dact, f, c->h_m, d, 0.0f, mv->p1->dw, d);
    if (l == D->first) return;
    fipsc_gemm(false, false, rows, d, f, dact, f, mv->w1, d, 0.0f, D->tmp_d, d);
    fipsc_layernorm_backward(D->tmp_d, c->xhat_m, c->rstd_m, L->mlp_norm_w, rows, d, dx);
}

/* dx [rows, d] (output stream of layer l's attention block) += through the block to its input. */
void use_distill_attention_block_bwd(use_distiller *D, int l, int nb, int rows, float *dx, const layer_cache *c)
{
    const fipsc_use_layer *L = &D->u->layers[l];
    const int d = D->d, heads = L->n_heads, hd = L->head_dim;
    /* out = att·W_oᵀ:  datt = dx·W_o */
    float *datt = D->tmp_d, *dqkv = D->tmp_3d;
    fipsc_gemm(false, false, rows, d, d, dx, d, L->o.w, d, 0.0f, datt, d);
    attention_bwd(D, nb, heads, hd, (float)(1.0 / sqrt((double)hd)), c->qkv, c->probs, datt, dqkv);
    /* dh = dq·W_q + dk·W_k + dv·W_v (datt is free again) */
    const fipsc_linear *parts[3] = {&L->q, &L->k, &L->v};
    for (int k = 0; k < 3; k++)
        fipsc_gemm(false, false, rows, d, d, dqkv + k * d, 3 * d, parts[k]->w, d, k ? 1.0f : 0.0f, datt, d);
    fipsc_layernorm_backward(datt, c->xhat_a, c->rstd_a, L->attn_norm_w, rows, d, dx);
}
