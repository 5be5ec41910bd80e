/* The distiller's forward over a batch (src/families/use/distill.c): layer by layer on the dense
 * weights, every sentence's tokens rows of one matrix, keeping in each layer's cache what the
 * backward needs (normalised rows and 1/σ of both LayerNorms, q | k | v, the attention
 * probabilities P, the MLP's pre-activations and activations). Also the fixed rows: what enters
 * the first trained MLP block, computed once by the original network below it. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "families/use/distill_state.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/mlp_forward.h"
#include "ops/gemm.h"
#include "ops/linear.h"

/* ------------------------------------------------------------------ small pieces */

/* Multi-head attention forward over the batch: qkv [rows, 3·dw] with q already scaled; keeps P. */
static void attention_fwd(const use_distiller *D, int nb, int heads, int hd, const float *qkv, float *probs,
                          float *att)
{
    const int dw = heads * hd, ld = 3 * dw;
    const int *offset = D->offset;
    const int64_t *poff = D->poff;
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < nb * heads; job++) {
        const int i = job / heads, h = job % heads, base = offset[i], len = offset[i + 1] - base;
        const float *q = qkv + (size_t)base * ld + h * hd, *k = q + dw, *v = q + 2 * dw;
        fipsc_attention_span(len, hd, 1.0f, false, q, k, v, ld, probs + poff[i] * heads + (int64_t)h * len * len,
                                 att + (size_t)base * dw + h * hd, dw);
    }
}

static void add_rows(float *x, const float *y, int64_t count)
{
#pragma omp parallel for schedule(static) if (count >= PARALLEL_MIN)
    for (int64_t e = 0; e < count; e++) x[e] += y[e];
}

/* ------------------------------------------------------------------ the blocks */

/* x [rows, d] += W_o·MultiHead(LN_att(x)) + b_o for layer l, keeping activations in c. */
void use_distill_attention_block_fwd(use_distiller *D, int l, int nb, int rows, float *x, layer_cache *c)
{
    const fipsc_use *u = D->u;
    const fipsc_use_layer *L = &u->layers[l];
    const int d = D->d, heads = L->n_heads, hd = L->head_dim;
    fipsc_layernorm(x, c->h_a, rows, d, L->attn_norm_w, L->attn_norm_b, u->ln_eps, FIPSC_LN_FLOAT32, c->xhat_a, c->rstd_a);
    /* q | k | v side by side: three GEMMs into the strided columns */
    const fipsc_linear *parts[3] = {&L->q, &L->k, &L->v};
    for (int k = 0; k < 3; k++) {
        fipsc_gemm(false, true, rows, d, d, c->h_a, d, parts[k]->w, d, 0.0f, c->qkv + k * d, 3 * d);
        const float *b = parts[k]->bias;
#pragma omp parallel for schedule(static) if ((int64_t)rows * d >= PARALLEL_MIN)
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < d; j++) c->qkv[(size_t)r * 3 * d + k * d + j] += b ? b[j] : 0.0f;
    }
    const float scale = (float)(1.0 / sqrt((double)hd));
#pragma omp parallel for schedule(static) if ((int64_t)rows * d >= PARALLEL_MIN)
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < d; j++) c->qkv[(size_t)r * 3 * d + j] *= scale;
    attention_fwd(D, nb, heads, hd, c->qkv, c->probs, c->att);
    fipsc_linear_rows(rows, d, d, c->att, d, L->o.w, L->o.bias, D->tmp_d, d);
    add_rows(x, D->tmp_d, (int64_t)rows * d);
}

/* x [rows, d] += MLP(LN_mlp(x)) for layer l on the weights of D->mlps[l]. */
void use_distill_mlp_block_fwd(use_distiller *D, int l, int rows, float *x, layer_cache *c)
{
    const fipsc_use *u = D->u;
    const fipsc_use_layer *L = &u->layers[l];
    const mlp_view *mv = &D->mlps[l];
    const int d = D->d, f = D->f;
    fipsc_layernorm(x, c->h_m, rows, d, L->mlp_norm_w, L->mlp_norm_b, u->ln_eps, FIPSC_LN_FLOAT32, c->xhat_m, c->rstd_m);
    fipsc_linear_rows(rows, f, d, c->h_m, d, mv->w1, mv->b1, c->pre, f);
    const int64_t total = (int64_t)rows * f;
#pragma omp parallel for schedule(static) if (total >= PARALLEL_MIN)
    for (int r = 0; r < rows; r++)
        fipsc_activation_apply(L->mlp.act, c->pre + (size_t)r * f, c->act + (size_t)r * f, (size_t)f);
    fipsc_linear_rows(rows, d, f, c->act, f, mv->w2, mv->b2, D->tmp_d, d);
    add_rows(x, D->tmp_d, (int64_t)rows * d);
}

/* ------------------------------------------------------------------ the fixed rows */

/* Rows entering layer `first`'s MLP block for sentences [s0, s0 + cnt) (all with tokens), by the
 * original network below it: embedding, whole layers, then layer first's attention block. Uses
 * the batch buffers; writes into D->stream. */
fipsc_status use_distill_fixed_rows(use_distiller *D, const int32_t *const *ids, int s0, int cnt, fipsc_error *err)
{
    const fipsc_use *u = D->u;
    const int d = D->d;
    D->offset[0] = 0;
    D->poff[0] = 0;
    for (int b = 0; b < cnt; b++) {
        D->offset[b + 1] = D->offset[b] + D->len[s0 + b];
        D->poff[b + 1] = D->poff[b] + (int64_t)D->len[s0 + b] * D->len[s0 + b];
    }
    const int rows = D->offset[cnt];
    fipsc_use_embed_tokens(u, cnt, ids + s0, D->offset, D->tmp_3d); /* [rows, E] */
    float *x = D->tmp_3d;
    layer_cache *c = &D->cache[D->last]; /* scratch: used again by every step */
    for (int l = 0; l <= D->first; l++) {
        const fipsc_use_layer *L = &u->layers[l];
        const int din = L->d_in, heads = L->n_heads, hd = L->head_dim;
        /* attention block: out = (R·x + b_R or x) + W_o·MultiHead(LN(x)) + b_o, into D->x */
        if (L->has_residual_projection) {
            fipsc_status st = fipsc_linear_apply(&L->residual, rows, x, D->x, err);
            if (st) return st;
        } else {
            memcpy(D->x, x, (size_t)rows * d * sizeof(float));
        }
        fipsc_layernorm(x, c->h_a, rows, din, L->attn_norm_w, L->attn_norm_b, u->ln_eps, FIPSC_LN_FLOAT32, NULL, NULL);
        const fipsc_linear *parts[3] = {&L->q, &L->k, &L->v};
        for (int k = 0; k < 3; k++) {
            fipsc_status st = fipsc_linear_apply(parts[k], rows, c->h_a, D->tmp_d, err);
            if (st) return st;
            for (int r = 0; r < rows; r++)
                memcpy(c->qkv + (size_t)r * 3 * din + k * din, D->tmp_d + (size_t)r * din, (size_t)din * sizeof(float));
        }
        const float scale = (float)(1.0 / sqrt((double)hd));
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < din; j++) c->qkv[(size_t)r * 3 * din + j] *= scale;
        attention_fwd(D, cnt, heads, hd, c->qkv, c->probs, c->att);
        fipsc_status st = fipsc_linear_apply_add(&L->o, rows, c->att, D->x, err);
        if (st) return st;
        if (l < D->first) {
            fipsc_layernorm(D->x, c->h_m, rows, d, L->mlp_norm_w, L->mlp_norm_b, u->ln_eps, FIPSC_LN_FLOAT32, NULL, NULL);
            if ((st = fipsc_mlp_forward(&L->mlp, rows, c->h_m, D->tmp_d, c->pre, err))) return st;
            add_rows(D->x, D->tmp_d, (int64_t)rows * d);
        }
        memcpy(D->tmp_3d, D->x, (size_t)rows * d * sizeof(float));
        x = D->tmp_3d;
    }
    memcpy(D->stream + D->row0[s0] * d, x, (size_t)rows * d * sizeof(float));
    return FIPSC_OK;
}
