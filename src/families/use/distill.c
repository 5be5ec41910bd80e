/* End-to-end distillation of a compressed sentence encoder (src/families/use/distill.h).
 *
 * Parameters. Each compressed MLP matrix is M_i = U·V_i (d × f, src/ops/factored.h) with
 * the model weight W_i = M_iᵀ [f, d] for fc1 (expanding) and W_i = M_i [d, f] for fc2. A step
 * densifies every W_i, runs the network on the dense weights keeping what the backward needs,
 * gets dL/dW_i, and chains it to the factors:
 *     dM_i = dW_iᵀ (fc1) or dW_i (fc2),   dU += dM_i·V_iᵀ,   dV_i = Uᵀ·dM_i  (kept entries only).
 * Densifying costs 2·d·r·f per matrix, far less than the batch's GEMMs, and lets every layer of
 * the network run as plain GEMMs.
 *
 * Gradients, row-major with one token per row (y = x·Wᵀ + b for a linear [out, in]):
 *   linear        dx = dy·W,  dW = dyᵀ·x
 *   LayerNorm     x̂ = (x − μ)·ρ, y = γ⊙x̂ + β:  g = γ⊙dy,  dx = ρ·(g − mean(g) − x̂·mean(g⊙x̂))
 *   attention     per sentence and head: S = (s·q)·kᵀ, P = softmax(S) by row, O = P·v
 *                 dv = Pᵀ·dO, dP = dO·vᵀ, dS = P⊙(dP − rowsum(dP⊙P)), dq = s·dS·k, dk = dSᵀ·(s·q)
 *   pooling       p_i = mean_t x_t:  dx_t = dp_i / len_i
 *   output        z = P·p + b, y = tanh z, e = y/‖y‖:  dy = (de − e·(e·de))/‖y‖,  dz = dy⊙(1 − y²)
 *   loss          L = mean_i (1 − e_i·t_i) with t_i the original (unit) embedding:  de_i = −t_i/B
 * The rows entering the first compressed MLP block do not depend on any trained parameter, so
 * they are computed once for every sentence and the backward stops there. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "families/use/distill_internal.h"
#include "fips/fips.h"
#include "ops/activation.h"
#include "ops/factored.h"
#include "ops/linear.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/mlp_forward.h"
#include "ops/sample.h"
#include "core/threads.h"
#include "families/use/use.h"
#include "families/use/distill.h"
#include "ops/gemm.h"

/* Sentences per pass when computing the fixed rows and the cosines over all sentences. */
enum { PASS_SENTENCES = 256 };

/* Elementwise loops run on OpenMP threads only above this many elements. */
#define PARALLEL_MIN ((int64_t)1 << 18)

/* ------------------------------------------------------------------ parameters */

/* One group's basis U [d, r] (the model's array, trained in place). */
typedef struct basis {
    fipsc_compressed_group *group;
    float *dU, *m, *v; /* [d, r] */
    float *saved;      /* U at the start, to restore after a failure */
} basis;

/* One compressed matrix: the kept values of V_i (the model's array) and their dense positions. */
typedef struct vparam {
    fipsc_factored_linear *fl;
    int basis;            /* index into the bases */
    int64_t nnz;
    int64_t *pos;         /* [nnz] k·f + j of entry e in V_i [r, f] */
    uint8_t *keep;        /* [nnz] 1 where the entry may move (nonzero at the start) */
    float *g, *m, *v;     /* [nnz] gradient and AdamW moments */
    float *saved;         /* [nnz] values at the start */
    float *dense;         /* [out, in] W_i for the forward */
    float *dw;            /* [out, in] dL/dW_i */
} vparam;

/* ------------------------------------------------------------------ per-layer activations */

typedef struct layer_cache {
    /* attention block (layers after the first trained one) */
    float *xhat_a, *rstd_a; /* LN_att: normalised rows [rows, d], 1/σ [rows] */
    float *h_a;             /* LN_att output [rows, d] */
    float *qkv;             /* [rows, 3d]: s·q | k | v */
    float *probs;           /* per sentence and head: P [len, len], at poff[i]·heads + h·len² */
    float *att;             /* [rows, d] attention output, heads side by side */
    /* MLP block */
    float *xhat_m, *rstd_m, *h_m; /* LN_mlp */
    float *pre, *act;       /* [rows, f] fc1 output and its activation */
} layer_cache;

typedef struct mlp_view {
    const float *w1, *b1, *w2, *b2; /* fc1 [f, d], fc2 [d, f] as the forward uses them */
    vparam *p1, *p2;                /* the trained matrices, or NULL when dense */
} mlp_view;

struct use_distiller {
    fipsc_model *m;
    const fipsc_use *u;
    int d, f, first, last;   /* trained layers first..last (last = the encoder's last) */

    basis *bases;
    int n_bases;
    vparam *vps;
    int n_vps;
    mlp_view *mlps;          /* [n_layers] (first..last used) */
    int64_t params;

    /* sentences with tokens */
    int n;
    int *len;                /* [n] kept tokens */
    int64_t *row0;           /* [n + 1] first row of each in stream */
    float *stream;           /* [rows, d] rows entering layer first's MLP block */
    const float **target;    /* [n] original embeddings */

    /* batch buffers */
    int batch_cap;
    int64_t rows_cap, probs_cap;
    int *offset;             /* [batch_cap + 1] */
    int64_t *poff;           /* [batch_cap + 1] Σ len² before sentence i */
    layer_cache *cache;      /* [n_layers] */
    float *x, *dx, *tmp_d, *tmp_3d, *tmp_f; /* [rows_cap, d / 3d / f] */
    float *pooled, *y, *e, *nrm, *dp, *tb; /* [batch_cap, d] (nrm [batch_cap]); tb: the targets */
    float *gram;             /* [batch_cap, batch_cap] Δ of the relational term */
    float relational;        /* λ */
    /* the hidden-state term: the stream after each trained layer, as the original computes it */
    float hidden;            /* μ (0: off) */
    float **hid;             /* [n_layers]: [rows, d] for every sentence's rows, first..last, or NULL */
    double *hid_scale;       /* [n_layers]: 1 / mean over rows of ‖s_o‖² */
    float **hdiff;           /* [n_layers]: [rows_cap, d] s_c − s_o of the batch */
    bool capture;            /* forward copies the layers' outputs into hid (consecutive sentences) */
    double batch_cos;        /* mean cos of the last batch */
    float *vdense, *vgrad;   /* [r_max, f_max] scratch */
    bool stale;              /* the parameters changed since the dense weights were made */
};

/* ------------------------------------------------------------------ small pieces */

/* y = x·Wᵀ + b for rows × [out, in] (deterministic for any thread count). */
static void linear_fwd(int rows, int out, int in, const float *x, const float *w, const float *b, float *y)
{
    if (rows == 0) return;
    fipsc_gemm(false, true, rows, out, in, x, in, w, in, 0.0f, y, out);
    if (b) {
#pragma omp parallel for schedule(static) if ((int64_t)rows * out >= PARALLEL_MIN)
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < out; j++) y[(size_t)r * out + j] += b[j];
    }
}



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
        fipsc_attention_span(len, hd, 1.0f, q, k, v, ld, probs + poff[i] * heads + (int64_t)h * len * len,
                                 att + (size_t)base * dw + h * hd, dw);
    }
}

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

static void add_rows(float *x, const float *y, int64_t count)
{
#pragma omp parallel for schedule(static) if (count >= PARALLEL_MIN)
    for (int64_t e = 0; e < count; e++) x[e] += y[e];
}

/* ------------------------------------------------------------------ forward and backward */

/* x [rows, d] += W_o·MultiHead(LN_att(x)) + b_o for layer l, keeping activations in c. */
static void attention_block_fwd(use_distiller *D, int l, int nb, int rows, float *x, layer_cache *c)
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
    linear_fwd(rows, d, d, c->att, L->o.w, L->o.bias, D->tmp_d);
    add_rows(x, D->tmp_d, (int64_t)rows * d);
}

/* x [rows, d] += MLP(LN_mlp(x)) for layer l on the weights of D->mlps[l]. */
static void mlp_block_fwd(use_distiller *D, int l, int rows, float *x, layer_cache *c)
{
    const fipsc_use *u = D->u;
    const fipsc_use_layer *L = &u->layers[l];
    const mlp_view *mv = &D->mlps[l];
    const int d = D->d, f = D->f;
    fipsc_layernorm(x, c->h_m, rows, d, L->mlp_norm_w, L->mlp_norm_b, u->ln_eps, FIPSC_LN_FLOAT32, c->xhat_m, c->rstd_m);
    linear_fwd(rows, f, d, c->h_m, mv->w1, mv->b1, c->pre);
    const int64_t total = (int64_t)rows * f;
#pragma omp parallel for schedule(static) if (total >= PARALLEL_MIN)
    for (int r = 0; r < rows; r++)
        fipsc_activation_apply(L->mlp.act, c->pre + (size_t)r * f, c->act + (size_t)r * f, (size_t)f);
    linear_fwd(rows, d, f, c->act, mv->w2, mv->b2, D->tmp_d);
    add_rows(x, D->tmp_d, (int64_t)rows * d);
}

/* Given dx = dL/d(the block's output stream) [rows, d]: the trained matrices' dW and, unless this
 * is the first trained layer, dx becomes dL/d(the block's input stream). */
static void mlp_block_bwd(use_distiller *D, int l, int rows, float *dx, const layer_cache *c)
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
static void attention_block_bwd(use_distiller *D, int l, int nb, int rows, float *dx, const layer_cache *c)
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

/* Densifies every trained matrix into its dense buffer (the forward's weights) when the
 * parameters changed since the last time: passes over all sentences reuse them batch after batch. */
static fipsc_status densify_all(use_distiller *D, fipsc_error *err)
{
    if (!D->stale) return FIPSC_OK;
    for (int k = 0; k < D->n_vps; k++) {
        fipsc_status st = fipsc_factored_densify(D->vps[k].fl, D->vps[k].dense, err);
        if (st) return st;
    }
    D->stale = false;
    return FIPSC_OK;
}

void use_distiller_changed(use_distiller *D) { D->stale = true; }

/* Chains dW_i to dV_i (kept entries) and adds dM_i·V_iᵀ to its basis's dU. */
static void chain_to_factors(use_distiller *D, vparam *p)
{
    const fipsc_factored_linear *fl = p->fl;
    const int d = fl->d, r = fl->r, f = fl->f;
    basis *b = &D->bases[p->basis];
    const float *U = b->group->U;
    float *V = D->vdense, *G = D->vgrad;
    memset(V, 0, (size_t)r * f * sizeof *V);
    for (int64_t e = 0; e < p->nnz; e++) V[p->pos[e]] = fl->val[e];
    fipsc_fips_chain_dense_grad(d, r, f, fl->expanding, U, V, p->dw, b->dU, G);
    for (int64_t e = 0; e < p->nnz; e++) p->g[e] = p->keep[e] ? G[p->pos[e]] : 0.0f;
}

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
    if (nb < 1 || nb > D->batch_cap)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation batch of %d sentences (1..%d)", nb, D->batch_cap);
    const fipsc_use *u = D->u;
    const int d = D->d;
    fipsc_status st = densify_all(D, err);
    if (st) return st;
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
        if (l > D->first) attention_block_fwd(D, l, nb, rows, D->x, &D->cache[l]);
        mlp_block_fwd(D, l, rows, D->x, &D->cache[l]);
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
    linear_fwd(nb, d, d, D->pooled, u->pooler.w, u->pooler.bias, D->y);
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
    if (emb) memcpy(emb, D->e, (size_t)nb * d * sizeof *emb);
    if (!isfinite(*loss))
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "distillation: the loss is not finite (%g)", *loss);
    if (!want_grad) return FIPSC_OK;

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
        mlp_block_bwd(D, l, rows, D->dx, &D->cache[l]);
        if (l > D->first) attention_block_bwd(D, l, nb, rows, D->dx, &D->cache[l]);
    }
    for (int k = 0; k < D->n_bases; k++) {
        const fipsc_compressed_group *g = D->bases[k].group;
        memset(D->bases[k].dU, 0, (size_t)g->d * g->r * sizeof(float));
    }
    for (int k = 0; k < D->n_vps; k++) chain_to_factors(D, &D->vps[k]);
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ set-up */

static void cache_free(layer_cache *c)
{
    float *bufs[] = {c->xhat_a, c->rstd_a, c->h_a, c->qkv, c->probs, c->att, c->xhat_m, c->rstd_m, c->h_m, c->pre, c->act};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

void use_distiller_free(use_distiller *D)
{
    if (!D) return;
    for (int k = 0; k < D->n_bases; k++) {
        free(D->bases[k].dU);
        free(D->bases[k].m);
        free(D->bases[k].v);
        free(D->bases[k].saved);
    }
    free(D->bases);
    for (int k = 0; k < D->n_vps; k++) {
        vparam *p = &D->vps[k];
        free(p->pos);
        free(p->keep);
        free(p->g);
        free(p->m);
        free(p->v);
        free(p->saved);
        free(p->dense);
        free(p->dw);
    }
    free(D->vps);
    free(D->mlps);
    for (int l = 0; D->u && l < D->u->n_layers; l++) {
        if (D->hid) free(D->hid[l]);
        if (D->hdiff) free(D->hdiff[l]);
    }
    free(D->hid);
    free(D->hdiff);
    free(D->hid_scale);
    free(D->len);
    free(D->row0);
    free(D->stream);
    free(D->target);
    free(D->offset);
    free(D->poff);
    if (D->cache && D->u)
        for (int l = 0; l < D->u->n_layers; l++) cache_free(&D->cache[l]);
    free(D->cache);
    float *bufs[] = {D->x, D->dx, D->tmp_d, D->tmp_3d, D->tmp_f, D->pooled, D->y, D->e, D->nrm, D->dp, D->tb, D->gram, D->vdense, D->vgrad};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(D);
}

/* Positions k·f + j in V [r, f] of the stored entries, in the kernel layout's order. */
static fipsc_status vparam_positions(vparam *p, fipsc_error *err)
{
    const fipsc_factored_linear *fl = p->fl;
    p->nnz = fl->nnz;
    if (!(p->pos = malloc((size_t)(p->nnz > 0 ? p->nnz : 1) * sizeof *p->pos)))
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    switch (fl->layout) {
    case FIPSC_VK_CSC:
    case FIPSC_VK_CSR:
        for (int list = 0; list < fl->n_lists; list++)
            for (uint32_t e = fl->ptr[list]; e < fl->ptr[list + 1]; e++) {
                const int64_t at = fl->idx16 ? fl->idx16[e] : fl->idx32[e];
                p->pos[e] = fl->layout == FIPSC_VK_CSC ? at * fl->f + list : (int64_t)list * fl->f + at;
            }
        return FIPSC_OK;
    case FIPSC_VK_DENSE:
        for (int64_t e = 0; e < p->nnz; e++) p->pos[e] = e;
        return FIPSC_OK;
    case FIPSC_VK_NM:
        break;
    }
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "%s: distillation of n:m-packed V is not supported (compress without --nm, or "
                      "distil before packing)", fl->weight_name);
}

static fipsc_status add_vparam(use_distiller *D, const fipsc_linear *lin, vparam **out, fipsc_error *err)
{
    *out = NULL;
    if (!lin->factored) return FIPSC_OK;
    fipsc_factored_linear *fl = (fipsc_factored_linear *)lin->factored; /* owned by D->m's registry */
    if (!fl->group->U || fl->group->d != D->d)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: distillation needs a dense basis U of width %d",
                          fl->weight_name, D->d);
    int b = 0;
    while (b < D->n_bases && D->bases[b].group != fl->group) b++;
    if (b == D->n_bases) {
        basis *B = &D->bases[D->n_bases++];
        B->group = (fipsc_compressed_group *)fl->group; /* owned by D->m's registry */
        const size_t n = (size_t)B->group->d * B->group->r;
        B->dU = malloc(n * sizeof(float));
        B->m = calloc(n, sizeof(float));
        B->v = calloc(n, sizeof(float));
        B->saved = malloc(n * sizeof(float));
        if (!B->dU || !B->m || !B->v || !B->saved) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        memcpy(B->saved, B->group->U, n * sizeof(float));
        D->params += (int64_t)n;
    }
    vparam *p = &D->vps[D->n_vps++];
    p->fl = fl;
    p->basis = b;
    fipsc_status st = vparam_positions(p, err);
    if (st) return st;
    const size_t nz = (size_t)(p->nnz > 0 ? p->nnz : 1), dense = (size_t)fl->out * fl->in;
    p->keep = malloc(nz);
    p->g = malloc(nz * sizeof(float));
    p->m = calloc(nz, sizeof(float));
    p->v = calloc(nz, sizeof(float));
    p->saved = malloc(nz * sizeof(float));
    p->dense = malloc(dense * sizeof(float));
    p->dw = malloc(dense * sizeof(float));
    if (!p->keep || !p->g || !p->m || !p->v || !p->saved || !p->dense || !p->dw)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int64_t e = 0; e < p->nnz; e++) {
        p->keep[e] = fl->val[e] != 0.0f;
        D->params += p->keep[e];
    }
    memcpy(p->saved, fl->val, (size_t)p->nnz * sizeof(float));
    *out = p;
    return FIPSC_OK;
}

/* Rows entering layer `first`'s MLP block for sentences [s0, s0 + cnt) (all with tokens), by the
 * original network below it: embedding, whole layers, then layer first's attention block. Uses
 * the batch buffers; writes into D->stream. */
static fipsc_status fixed_rows(use_distiller *D, const int32_t *const *ids, int s0, int cnt, fipsc_error *err)
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

static int descending(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

static fipsc_status alloc_batch(use_distiller *D, fipsc_error *err)
{
    const fipsc_use *u = D->u;
    const int d = D->d, f = D->f, wide = d > u->embed_dim ? d : u->embed_dim;
    /* the batch_cap longest sentences bound the rows and the attention matrices of any batch */
    int *sorted = malloc((size_t)D->n * sizeof *sorted);
    if (!sorted) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    memcpy(sorted, D->len, (size_t)D->n * sizeof *sorted);
    qsort(sorted, (size_t)D->n, sizeof *sorted, descending);
    D->rows_cap = 0;
    D->probs_cap = 0;
    for (int i = 0; i < D->batch_cap && i < D->n; i++) {
        D->rows_cap += sorted[i];
        D->probs_cap += (int64_t)sorted[i] * sorted[i];
    }
    free(sorted);
    /* attention_bwd keeps one max_len² scratch per thread in tmp_f */
    const int64_t threads = omp_get_max_threads(), scratch = threads * u->max_tokens * u->max_tokens;
    const int64_t f_rows = D->rows_cap * f > scratch ? D->rows_cap * f : scratch;
    int max_heads = 1;
    for (int l = 0; l < u->n_layers; l++) max_heads = u->layers[l].n_heads > max_heads ? u->layers[l].n_heads : max_heads;
    const size_t R = (size_t)D->rows_cap, B = (size_t)D->batch_cap;
    D->offset = malloc((B + 1) * sizeof *D->offset);
    D->poff = malloc((B + 1) * sizeof *D->poff);
    D->cache = calloc((size_t)u->n_layers, sizeof *D->cache);
    D->x = malloc(R * wide * sizeof(float));
    D->dx = malloc(R * d * sizeof(float));
    D->tmp_d = malloc(R * wide * sizeof(float));
    D->tmp_3d = malloc(3 * R * wide * sizeof(float));
    D->tmp_f = malloc((size_t)f_rows * sizeof(float));
    D->pooled = malloc(B * d * sizeof(float));
    D->y = malloc(B * d * sizeof(float));
    D->e = malloc(B * d * sizeof(float));
    D->nrm = malloc(B * sizeof(float));
    D->dp = malloc(B * d * sizeof(float));
    D->tb = malloc(B * d * sizeof(float));
    D->gram = malloc(B * B * sizeof(float));
    bool ok = D->offset && D->poff && D->cache && D->x && D->dx && D->tmp_d && D->tmp_3d && D->tmp_f && D->pooled &&
              D->y && D->e && D->nrm && D->dp && D->tb && D->gram;
    for (int l = 0; ok && l < u->n_layers; l++) {
        if (l < D->first && l != D->last) continue;
        layer_cache *c = &D->cache[l];
        c->xhat_a = malloc(R * d * sizeof(float));
        c->rstd_a = malloc(R * sizeof(float));
        c->h_a = malloc(R * wide * sizeof(float));
        c->qkv = malloc(3 * R * wide * sizeof(float));
        c->probs = malloc((size_t)(D->probs_cap > 0 ? D->probs_cap : 1) * max_heads * sizeof(float));
        c->att = malloc(R * wide * sizeof(float));
        c->xhat_m = malloc(R * d * sizeof(float));
        c->rstd_m = malloc(R * sizeof(float));
        c->h_m = malloc(R * d * sizeof(float));
        c->pre = malloc(R * f * sizeof(float) + fipsc_mlp_scratch_floats(&u->layers[l].mlp, (int)R) * sizeof(float));
        c->act = malloc(R * f * sizeof(float));
        ok = c->xhat_a && c->rstd_a && c->h_a && c->qkv && c->probs && c->att && c->xhat_m && c->rstd_m && c->h_m &&
             c->pre && c->act;
    }
    int r_max = 1;
    for (int k = 0; k < D->n_bases; k++) r_max = D->bases[k].group->r > r_max ? D->bases[k].group->r : r_max;
    D->vdense = malloc((size_t)r_max * f * sizeof(float));
    D->vgrad = malloc((size_t)r_max * f * sizeof(float));
    ok = ok && D->vdense && D->vgrad;
    return ok ? FIPSC_OK : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for distillation batches of %d sentences",
                                      D->batch_cap);
}

fipsc_status use_distiller_new(fipsc_model *m, int n, const int32_t *const *ids, const int *lens,
                               const float *target, int batch_cap, use_distiller **out, fipsc_error *err)
{
    *out = NULL;
    const fipsc_use *u = fipsc_model_use(m);
    if (!u)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation needs a sentence encoder (%s); this model is '%s'",
                          FIPSC_USE_ARCH_NAME, m->arch_name);
    if (batch_cap < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "distillation batch of %d sentences", batch_cap);
    use_distiller *D = calloc(1, sizeof *D);
    if (!D) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    D->m = m;
    D->u = u;
    D->stale = true;
    D->d = u->dim;
    D->f = u->hidden;
    D->last = u->n_layers - 1;
    fipsc_status st = FIPSC_OK;

    /* the trained matrices, layer by layer */
    D->first = -1;
    D->bases = calloc((size_t)(2 * u->n_layers), sizeof *D->bases);
    D->vps = calloc((size_t)(2 * u->n_layers), sizeof *D->vps);
    D->mlps = calloc((size_t)u->n_layers, sizeof *D->mlps);
    if (!D->bases || !D->vps || !D->mlps) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int l = 0; l < u->n_layers && !st; l++) {
        const fipsc_use_layer *L = &u->layers[l];
        mlp_view *mv = &D->mlps[l];
        if (L->mlp.kind != FIPSC_MLP_PLAIN || L->mlp.d != D->d || L->mlp.f != D->f) {
            st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: layer %d's MLP is not a plain %d → %d MLP", l,
                            D->d, D->f);
            break;
        }
        if ((st = add_vparam(D, &L->mlp.up, &mv->p1, err)) || (st = add_vparam(D, &L->mlp.down, &mv->p2, err))) break;
        mv->w1 = mv->p1 ? mv->p1->dense : L->mlp.up.w;
        mv->w2 = mv->p2 ? mv->p2->dense : L->mlp.down.w;
        mv->b1 = L->mlp.up.bias;
        mv->b2 = L->mlp.down.bias;
        if ((mv->p1 || mv->p2) && D->first < 0) D->first = l;
    }
    if (!st && D->first < 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the model has no compressed MLP (compress it first)");
    for (int l = D->first + 1; !st && l <= D->last; l++) {
        const fipsc_use_layer *L = &u->layers[l];
        const fipsc_linear *parts[4] = {&L->q, &L->k, &L->v, &L->o};
        bool dense = !L->has_residual_projection && L->d_in == D->d && L->n_heads * L->head_dim == D->d;
        for (int k = 0; k < 4; k++) dense &= parts[k]->w && !parts[k]->factored;
        dense &= (D->mlps[l].p1 || L->mlp.up.w) && (D->mlps[l].p2 || L->mlp.down.w);
        if (!dense)
            st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: layer %d changes the width or has a "
                            "non-dense attention weight", l);
    }
    if (!st && (!u->pooler.w || u->pooler.factored))
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: the pooler is not a dense matrix");

    /* the sentences with tokens */
    if (!st) {
        D->len = malloc((size_t)(n > 0 ? n : 1) * sizeof *D->len);
        D->target = malloc((size_t)(n > 0 ? n : 1) * sizeof *D->target);
        D->row0 = malloc(((size_t)n + 1) * sizeof *D->row0);
        if (!D->len || !D->target || !D->row0) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    const int32_t **kept_ids = st ? NULL : malloc((size_t)(n > 0 ? n : 1) * sizeof *kept_ids);
    if (!st && !kept_ids) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st) {
        D->row0[0] = 0;
        for (int i = 0; i < n; i++) {
            const int len = lens[i] < u->max_tokens ? lens[i] : u->max_tokens;
            if (len < 1) continue;
            for (int t = 0; t < len && !st; t++)
                if (ids[i][t] < 0 || ids[i][t] >= u->vocab_size)
                    st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: sentence %d has token id %d (vocabulary %d)",
                                    i + 1, (int)ids[i][t], u->vocab_size);
            for (int j = 0; j < D->d && !st; j++)
                if (!isfinite(target[(size_t)i * D->d + j]))
                    st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "distillation: target embedding %d is not finite", i + 1);
            if (st) break;
            D->len[D->n] = len;
            D->target[D->n] = target + (size_t)i * D->d;
            kept_ids[D->n] = ids[i];
            D->row0[D->n + 1] = D->row0[D->n] + len;
            D->n++;
        }
        if (!st && D->n == 0) st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: no sentence has a token");
    }
    if (!st) {
        D->batch_cap = batch_cap < D->n ? batch_cap : D->n;
        /* fixed_rows runs PASS_SENTENCES at a time through the batch buffers */
        const int cap = D->batch_cap;
        D->batch_cap = cap > PASS_SENTENCES ? cap : (D->n < PASS_SENTENCES ? D->n : PASS_SENTENCES);
        st = alloc_batch(D, err);
        D->batch_cap = cap;
    }
    if (!st && !(D->stream = malloc((size_t)D->row0[D->n] * D->d * sizeof(float))))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %lld rows of the distillation set",
                        (long long)D->row0[D->n]);
    for (int s0 = 0; !st && s0 < D->n; s0 += PASS_SENTENCES) {
        const int cnt = D->n - s0 < PASS_SENTENCES ? D->n - s0 : PASS_SENTENCES;
        st = fixed_rows(D, kept_ids, s0, cnt, err);
    }
    free(kept_ids);
    if (st) {
        use_distiller_free(D);
        return st;
    }
    *out = D;
    return FIPSC_OK;
}

int use_distiller_block_count(const use_distiller *D) { return D->n_bases + D->n_vps; }

float *use_distiller_block(use_distiller *D, int k, int64_t *len, const float **grad)
{
    if (k < D->n_bases) {
        *len = (int64_t)D->bases[k].group->d * D->bases[k].group->r;
        *grad = D->bases[k].dU;
        return D->bases[k].group->U;
    }
    vparam *p = &D->vps[k - D->n_bases];
    *len = p->nnz;
    *grad = p->g;
    return p->fl->val;
}

void use_distiller_set_relational(use_distiller *D, float lambda) { D->relational = lambda; }

/* The forward over every sentence in consecutive batches (D->capture: keeping the original's
 * streams): *mean_cos = mean cos(e_c, e_o) at the current parameters. */
static fipsc_status forward_all(use_distiller *D, double *mean_cos, fipsc_error *err)
{
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

/* The weights other than the MLPs' must be the same in both models (the same original). */
static bool same_weights(const float *a, const float *b, size_t n) { return a == b || memcmp(a, b, n * sizeof *a) == 0; }

fipsc_status use_distiller_set_hidden(use_distiller *D, const fipsc_model *orig, float mu, fipsc_error *err)
{
    D->hidden = 0.0f;
    if (mu <= 0.0f) return FIPSC_OK;
    const fipsc_use *o = orig ? fipsc_model_use(orig) : NULL, *u = D->u;
    if (!o || o->dim != u->dim || o->hidden != u->hidden || o->n_layers != u->n_layers)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "distillation: the hidden-state term needs the original encoder "
                          "of the same shape");
    const int d = D->d, f = D->f;
    for (int l = D->first; l <= D->last; l++) {
        const fipsc_use_layer *a = &u->layers[l], *b = &o->layers[l];
        bool same = a->d_in == b->d_in && b->mlp.up.w && b->mlp.down.w && !b->mlp.up.factored && !b->mlp.down.factored &&
                    same_weights(a->mlp_norm_w, b->mlp_norm_w, (size_t)d) && same_weights(a->mlp_norm_b, b->mlp_norm_b, (size_t)d);
        if (same && l > D->first) {
            const fipsc_linear *pa[4] = {&a->q, &a->k, &a->v, &a->o}, *pb[4] = {&b->q, &b->k, &b->v, &b->o};
            for (int k = 0; k < 4 && same; k++)
                same = pb[k]->w && same_weights(pa[k]->w, pb[k]->w, (size_t)d * d) && same_weights(pa[k]->bias, pb[k]->bias, (size_t)d);
            same = same && same_weights(a->attn_norm_w, b->attn_norm_w, (size_t)d);
        }
        if (!same)
            return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: layer %d of the original differs from the compressed "
                              "model outside its MLP matrices: not the model it was compressed from", l);
    }
    (void)f;
    if (!D->hid) {
        D->hid = calloc((size_t)u->n_layers, sizeof *D->hid);
        D->hdiff = calloc((size_t)u->n_layers, sizeof *D->hdiff);
        D->hid_scale = calloc((size_t)u->n_layers, sizeof *D->hid_scale);
        if (!D->hid || !D->hdiff || !D->hid_scale) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        for (int l = D->first; l <= D->last; l++) {
            D->hid[l] = malloc((size_t)D->row0[D->n] * d * sizeof(float));
            D->hdiff[l] = malloc((size_t)D->rows_cap * d * sizeof(float));
            if (!D->hid[l] || !D->hdiff[l])
                return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the original's hidden states (%lld rows)",
                                  (long long)D->row0[D->n]);
        }
    }
    /* the original's streams: the forward with the original MLP weights over every sentence */
    mlp_view *saved = malloc((size_t)u->n_layers * sizeof *saved);
    if (!saved) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    memcpy(saved, D->mlps, (size_t)u->n_layers * sizeof *saved);
    for (int l = D->first; l <= D->last; l++) {
        const fipsc_mlp *om = &o->layers[l].mlp;
        D->mlps[l] = (mlp_view){om->up.w, om->up.bias, om->down.w, om->down.bias, NULL, NULL};
    }
    D->capture = true;
    double unused;
    fipsc_status st = forward_all(D, &unused, err);
    D->capture = false;
    memcpy(D->mlps, saved, (size_t)u->n_layers * sizeof *saved);
    free(saved);
    if (st) return st;
    for (int l = D->first; l <= D->last; l++) {
        double ss = 0.0;
        for (int64_t q = 0; q < D->row0[D->n] * d; q++) ss += (double)D->hid[l][q] * D->hid[l][q];
        D->hid_scale[l] = ss > 0.0 ? (double)D->row0[D->n] / ss : 1.0;
    }
    D->hidden = mu;
    return FIPSC_OK;
}

int use_distiller_first_layer(const use_distiller *D) { return D->first; }
int use_distiller_sentences(const use_distiller *D) { return D->n; }
int64_t use_distiller_rows(const use_distiller *D) { return D->row0[D->n]; }
int64_t use_distiller_params(const use_distiller *D) { return D->params; }

/* ------------------------------------------------------------------ the training loop */

static void restore(use_distiller *D)
{
    for (int k = 0; k < D->n_bases; k++)
        memcpy(D->bases[k].group->U, D->bases[k].saved, (size_t)D->bases[k].group->d * D->bases[k].group->r * sizeof(float));
    for (int k = 0; k < D->n_vps; k++) memcpy(D->vps[k].fl->val, D->vps[k].saved, (size_t)D->vps[k].nnz * sizeof(float));
    use_distiller_changed(D);
}

fipsc_status fipsc_use_distill(fipsc_model *m, const fipsc_model *original, int n, const int32_t *const *ids,
                               const int *lens, const float *target, const fipsc_distill_opts *o,
                               fipsc_distill_report *rep, fipsc_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (o->steps < 1 || o->batch_sentences < 1 || !(o->lr > 0.0f) || o->lr_min < 0.0f || o->lr_min > o->lr ||
        !(o->relational >= 0.0f) || !isfinite(o->relational) || !(o->hidden >= 0.0f) || !isfinite(o->hidden))
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: needs steps ≥ 1 (%d), a batch ≥ 1 (%d), "
                          "0 ≤ lr_min ≤ lr, lr > 0 (%g, %g) and finite term weights ≥ 0 (%g, %g)", o->steps,
                          o->batch_sentences, (double)o->lr_min, (double)o->lr, (double)o->relational,
                          (double)o->hidden);
    if (o->hidden > 0.0f && !original)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the hidden-state term needs the original model");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    use_distiller *D;
    fipsc_status st = use_distiller_new(m, n, ids, lens, target, o->batch_sentences, &D, err);
    if (st) return st;
    use_distiller_set_relational(D, o->relational);
    st = use_distiller_set_hidden(D, original, o->hidden, err);
    if (st) {
        use_distiller_free(D);
        return st;
    }
    rep->steps = o->steps;
    rep->sentences = D->n;
    rep->rows = use_distiller_rows(D);
    rep->params = D->params;
    rep->first_layer = D->first;
    int *order = malloc((size_t)D->n * sizeof *order);
    if (!order) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st) st = forward_all(D, &rep->cos_before, err);
    fipsc_rng rng;
    fipsc_rng_seed(&rng, o->seed);
    int next = D->n; /* position in the current shuffled epoch */
    const int nb = D->batch_cap;
    for (int t = 0; t < o->steps && !st; t++) {
        if (next + nb > D->n) { /* a new epoch: Fisher–Yates shuffle; a short tail is dropped */
            for (int i = 0; i < D->n; i++) order[i] = i;
            for (int i = D->n - 1; i > 0; i--) {
                int j = (int)(fipsc_rng_uniform(&rng) * (double)(i + 1));
                int tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
            next = 0;
        }
        double loss;
        st = use_distiller_loss_grad(D, nb, order + next, true, &loss, NULL, err);
        next += nb;
        if (st) {
            fipsc_fail_context(err, "step %d: ", t + 1);
            break;
        }
        const float lr = fipsc_fips_cosine_lr(o->lr, o->lr_min, t, o->steps);
        for (int k = 0; k < D->n_bases; k++) {
            basis *B = &D->bases[k];
            fipsc_adamw_step(&o->adamw, t + 1, lr, B->group->d, B->group->r, B->group->U, NULL, B->group->r, B->m, B->v,
                             B->group->r, B->dU, B->group->r);
        }
        for (int k = 0; k < D->n_vps; k++) {
            vparam *p = &D->vps[k];
            if (p->nnz > 0)
                fipsc_adamw_step(&o->adamw, t + 1, lr, 1, p->nnz, p->fl->val, p->keep, p->nnz, p->m, p->v, p->nnz,
                                 p->g, p->nnz);
        }
        use_distiller_changed(D);
        if (o->progress && ((o->progress_every > 0 && (t + 1) % o->progress_every == 0) || t + 1 == o->steps))
            o->progress(o->progress_user, &(fipsc_distill_progress){t + 1, o->steps, loss, lr});
    }
    if (!st) st = forward_all(D, &rep->cos_after, err);
    if (st) restore(D); /* no half-trained model after a failure */
    free(order);
    use_distiller_free(D);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rep->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return st;
}
