/* The language-model distiller's blocks (src/families/llama/distill_state.h): forward over a
 * batch keeping what the backward needs, and the backward.
 *
 * Forward of layer l (src/families/llama/runtime.h), rows of a batch:
 *   attention  n = RMSNorm(x)·w_a;  q, k, v = n·W_qᵀ (+b), n·W_kᵀ, n·W_vᵀ;  q, k rotated (RoPE);
 *              per sequence and head h (key/value head g = h / (heads/kv_heads)):
 *              P = softmax_causal(s·q_h·k_gᵀ), o_h = P·v_g;  x += o·W_oᵀ
 *   MLP        n = RMSNorm(x)·w_m;  a = act(n·W_gateᵀ) ⊙ (n·W_upᵀ);  x += a·W_downᵀ
 * Backward, dy = dL/d(block output) (the residual passes it through unchanged):
 *   linear     y = x·Wᵀ:  dx = dy·W,  dW = dyᵀ·x
 *   SwiGLU     da → dgate = da ⊙ up ⊙ act'(gate),  dup = da ⊙ act(gate)
 *   attention  fipsc_attention_span_backward per head (P is 0 above the diagonal); key/value
 *              heads sum over the query heads that read them
 *   RoPE       the rotation's transpose (by minus the angles)
 *   RMSNorm    fipsc_rmsnorm_backward
 * Only the MLP matrices are trained: the attention's dW are never formed. */
#include <omp.h>
#include <string.h>

#include "families/llama/distill_state.h"
#include "families/llama/internal.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/norm.h"

/* Rotates q and k of every row by its position's angles (transpose: back). */
static void rope_batch(const lm_distiller *D, int nb, float *qkv, bool transpose)
{
    const int half = D->hd / 2;
#pragma omp parallel for schedule(static) if ((int64_t)D->offset[nb] * D->W >= LM_PARALLEL_MIN)
    for (int b = 0; b < nb; b++)
        for (int r = D->offset[b]; r < D->offset[b + 1]; r++) {
            const size_t pos = (size_t)(r - D->offset[b]);
            float *row = qkv + (size_t)r * D->W;
            llama_rope_row(row, D->heads, D->hd, D->rope_cos + pos * half, D->rope_sin + pos * half, transpose);
            llama_rope_row(row + D->q_dim, D->kv_heads, D->hd, D->rope_cos + pos * half, D->rope_sin + pos * half,
                           transpose);
        }
}

void lm_attention_fwd(lm_distiller *D, int l, int nb, int rows, float *x, lm_layer_cache *c)
{
    const fipsc_llama_layer *L = &D->v->layers[l];
    const int d = D->d, W = D->W, hd = D->hd, group = D->heads / D->kv_heads;
    memcpy(c->x_a, x, (size_t)rows * d * sizeof *x);
    float *n = D->tmp_d, *att = D->tmp_w; /* att [R, q_dim] in the first columns' rows of stride q_dim */
    fipsc_rmsnorm(x, L->attn_norm, n, rows, d, D->eps);
    fipsc_linear_rows(rows, D->q_dim, d, n, d, L->q.w, L->q.bias, c->qkv, W);
    fipsc_linear_rows(rows, D->kv_dim, d, n, d, L->k.w, L->k.bias, c->qkv + D->q_dim, W);
    fipsc_linear_rows(rows, D->kv_dim, d, n, d, L->v.w, L->v.bias, c->qkv + D->q_dim + D->kv_dim, W);
    rope_batch(D, nb, c->qkv, false);
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < nb * D->heads; job++) {
        const int b = job / D->heads, h = job % D->heads, g = h / group, base = D->offset[b];
        const int len = D->offset[b + 1] - base;
        const float *q = c->qkv + (size_t)base * W + (size_t)h * hd;
        const float *k = c->qkv + (size_t)base * W + D->q_dim + (size_t)g * hd, *v = k + D->kv_dim;
        float *p = c->probs + D->poff[b] * D->heads + (int64_t)h * len * len;
        fipsc_attention_span(len, hd, D->scale, true, q, k, v, W, p, att + (size_t)base * D->q_dim + (size_t)h * hd,
                             D->q_dim);
    }
    /* x += att·W_oᵀ */
    fipsc_gemm(false, true, rows, d, D->q_dim, att, D->q_dim, L->o.w, D->q_dim, 1.0f, x, d);
}

void lm_mlp_fwd(lm_distiller *D, int l, int rows, float *x, lm_layer_cache *c)
{
    const fipsc_llama_layer *L = &D->v->layers[l];
    const lm_mlp_view *mv = &D->mlps[l];
    const int d = D->d, f = D->f;
    memcpy(c->x_m, x, (size_t)rows * d * sizeof *x);
    fipsc_rmsnorm(x, L->ffn_norm, c->n_m, rows, d, D->eps);
    fipsc_gemm(false, true, rows, f, d, c->n_m, d, mv->gate, d, 0.0f, c->gate, f);
    fipsc_gemm(false, true, rows, f, d, c->n_m, d, mv->up, d, 0.0f, c->up, f);
    const int64_t total = (int64_t)rows * f;
    const fipsc_activation act = L->mlp.act;
#pragma omp parallel for schedule(static) if (total >= LM_PARALLEL_MIN)
    for (int64_t e = 0; e < total; e++) c->act[e] = fipsc_activation_value(act, c->gate[e]) * c->up[e];
    fipsc_gemm(false, true, rows, d, f, c->act, f, mv->down, f, 1.0f, x, d);
}

void lm_mlp_bwd(lm_distiller *D, int l, int rows, float *dx, const lm_layer_cache *c)
{
    const fipsc_llama_layer *L = &D->v->layers[l];
    const lm_mlp_view *mv = &D->mlps[l];
    const int d = D->d, f = D->f;
    float *dg = D->tmp_f, *du = D->tmp_f2;
    /* y = a·W_downᵀ:  da = dy·W_down (into dg),  dW_down = dyᵀ·a */
    fipsc_gemm(false, false, rows, f, d, dx, d, mv->down, f, 0.0f, dg, f);
    if (mv->p_down) fipsc_gemm(true, false, d, f, rows, dx, d, c->act, f, 0.0f, mv->p_down->dw, f);
    const int64_t total = (int64_t)rows * f;
    const fipsc_activation act = L->mlp.act;
#pragma omp parallel for schedule(static) if (total >= LM_PARALLEL_MIN)
    for (int64_t e = 0; e < total; e++) {
        const float da = dg[e];
        du[e] = da * fipsc_activation_value(act, c->gate[e]);
        dg[e] = da * c->up[e] * fipsc_activation_slope(act, c->gate[e]);
    }
    /* gate = n·W_gateᵀ, up = n·W_upᵀ:  dW = dᵀ·n,  dn = dgate·W_gate + dup·W_up */
    if (mv->p_gate) fipsc_gemm(true, false, f, d, rows, dg, f, c->n_m, d, 0.0f, mv->p_gate->dw, d);
    if (mv->p_up) fipsc_gemm(true, false, f, d, rows, du, f, c->n_m, d, 0.0f, mv->p_up->dw, d);
    if (l == D->first) return;
    float *dn = D->tmp_d;
    fipsc_gemm(false, false, rows, d, f, dg, f, mv->gate, d, 0.0f, dn, d);
    fipsc_gemm(false, false, rows, d, f, du, f, mv->up, d, 1.0f, dn, d);
    fipsc_rmsnorm_backward(dn, c->x_m, L->ffn_norm, rows, d, D->eps, dx);
}

void lm_attention_bwd(lm_distiller *D, int l, int nb, int rows, float *dx, const lm_layer_cache *c)
{
    const fipsc_llama_layer *L = &D->v->layers[l];
    const int d = D->d, W = D->W, hd = D->hd, group = D->heads / D->kv_heads;
    float *datt = D->tmp_f, *dqkv = D->tmp_w; /* datt [R, q_dim] (f ≥ q_dim is checked at set-up) */
    /* x += att·W_oᵀ:  datt = dy·W_o */
    fipsc_gemm(false, false, rows, D->q_dim, d, dx, d, L->o.w, D->q_dim, 0.0f, datt, D->q_dim);
    /* one job per (sequence, key/value head): its query heads in order, the first writing dk and
     * dv, the others through the thread's scratch and added (the same sum for any thread count) */
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < nb * D->kv_heads; job++) {
        const int b = job / D->kv_heads, g = job % D->kv_heads, base = D->offset[b], len = D->offset[b + 1] - base;
        float *ds = D->scratch + (size_t)omp_get_thread_num() * D->scratch_per_thread, *spare = ds + (size_t)len * len;
        const float *k = c->qkv + (size_t)base * W + D->q_dim + (size_t)g * hd, *v = k + D->kv_dim;
        float *dk = dqkv + (size_t)base * W + D->q_dim + (size_t)g * hd, *dv = dk + D->kv_dim;
        for (int h = g * group; h < (g + 1) * group; h++) {
            const float *q = c->qkv + (size_t)base * W + (size_t)h * hd;
            const float *p = c->probs + D->poff[b] * D->heads + (int64_t)h * len * len;
            float *dq = dqkv + (size_t)base * W + (size_t)h * hd;
            const bool first = h == g * group;
            /* spare holds len rows of stride W: dk at column 0, dv at column kv_dim (dq, with the
             * same stride, goes straight to its place) */
            fipsc_attention_span_backward(len, hd, D->scale, 1.0f, q, k, v, W, p,
                                          datt + (size_t)base * D->q_dim + (size_t)h * hd, D->q_dim, ds, dq,
                                          first ? dk : spare, first ? dv : spare + D->kv_dim, W);
            if (first) continue;
            for (int t = 0; t < len; t++)
                for (int j = 0; j < hd; j++) {
                    dk[(size_t)t * W + j] += spare[(size_t)t * W + j];
                    dv[(size_t)t * W + j] += spare[(size_t)t * W + D->kv_dim + j];
                }
        }
    }
    rope_batch(D, nb, dqkv, true);
    /* dn = dq·W_q + dk·W_k + dv·W_v, then back through the RMSNorm */
    float *dn = D->tmp_d;
    fipsc_gemm(false, false, rows, d, D->q_dim, dqkv, W, L->q.w, d, 0.0f, dn, d);
    fipsc_gemm(false, false, rows, d, D->kv_dim, dqkv + D->q_dim, W, L->k.w, d, 1.0f, dn, d);
    fipsc_gemm(false, false, rows, d, D->kv_dim, dqkv + D->q_dim + D->kv_dim, W, L->v.w, d, 1.0f, dn, d);
    fipsc_rmsnorm_backward(dn, c->x_a, L->attn_norm, rows, d, D->eps, dx);
}
