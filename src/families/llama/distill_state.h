/* The language-model distiller's state and the pieces its files share (internal to
 * src/families/llama/; distill.h is its interface):
 *   distill_setup.c   creating it: checks, the trained parameters, the sequences and their
 *                     fixed rows, the batch buffers
 *   distill_blocks.c  the blocks' forward (keeping what the backward needs) and backward
 *   distill_step.c    the head, the KL and its gradient for a batch; the score; the entry point
 *
 * Shapes: a batch of nb sequences is R = Σ len_b token rows, sequence-major (offset[b] its first
 * row); d the width, f the MLP width, q_dim = heads·hd, kv_dim = kv_heads·hd, W = q_dim + 2·kv_dim
 * (q | k | v side by side in one row). */
#ifndef FIPSC_LLAMA_DISTILL_STATE_H
#define FIPSC_LLAMA_DISTILL_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "families/llama/distill.h"
#include "families/llama/llama.h"
#include "model/distill.h"

/* Elementwise loops run on OpenMP threads only above this many elements. */
#define LM_PARALLEL_MIN ((int64_t)1 << 16)

/* What layer l's backward needs, for the rows of a batch. */
typedef struct lm_layer_cache {
    float *x_a;        /* [R, d] the stream entering the attention block */
    float *qkv;        /* [R, W] q, k after RoPE, v */
    float *probs;      /* per sequence b and head h: P [len, len] at poff[b]·heads + h·len² */
    float *x_m;        /* [R, d] the stream entering the MLP block */
    float *n_m;        /* [R, d] its RMSNorm: the input of gate and up */
    float *gate, *up;  /* [R, f] their outputs */
    float *act;        /* [R, f] act(gate) ⊙ up: the input of down */
} lm_layer_cache;

/* Layer l's MLP as the distiller runs it: dense weights (the trained matrices' W_i, or the
 * model's own) and the trained matrices (NULL when dense). */
typedef struct lm_mlp_view {
    const float *gate, *up, *down; /* [f, d], [f, d], [d, f] */
    fipsc_distill_matrix *p_gate, *p_up, *p_down;
} lm_mlp_view;

struct lm_distiller {
    fipsc_model *m;
    const fipsc_llama *v;
    const fipsc_model *orig;
    int d, f, vocab, heads, kv_heads, hd, q_dim, kv_dim, W;
    int first, last;          /* trained layers first..last (last = the model's last) */
    float eps, scale;         /* RMSNorm ε, attention scale 1/√hd */

    fipsc_distill_params P;
    fipsc_distill_objective objective;
    lm_mlp_view *mlps;        /* [n_layers] */

    /* sequences of two tokens or more */
    int n;
    int *len;
    const int32_t **ids;
    int64_t *row0;            /* [n + 1] first row of each in stream */
    int64_t scored;           /* Σ (len − 1): positions with a next token */
    float *stream;            /* [rows, d] rows entering layer first's MLP block */
    float *rope_cos, *rope_sin; /* [max_len, hd/2] */
    int max_len;

    /* batch buffers */
    int batch_cap;
    int64_t rows_cap, probs_cap;
    int *offset;              /* [batch_cap + 1] */
    int64_t *poff;            /* [batch_cap + 1] Σ len² before sequence b */
    lm_layer_cache *cache;    /* [n_layers], first..last allocated */
    float *x, *dx, *tmp_d;    /* [rows_cap, d] */
    float *tmp_w;             /* [rows_cap, W] */
    float *tmp_f, *tmp_f2;    /* [rows_cap, f] */
    float *logits, *teacher;  /* [rows_cap, vocab]: the compressed model's, the original's log p */
    int32_t *tokens;          /* [rows_cap] the batch's tokens */
    double *row_kl;           /* [rows_cap] each row's KL (0 for a sequence's last row) */
    float *scratch;           /* per thread: [max_len²] + [max_len, W] for the attention backward */
    int64_t scratch_per_thread;
};

/* ------------------------------------------------------------------ distill_blocks.c */

/* x [R, d] += Attention(RMSNorm(x)) of layer l for the batch (nb sequences), keeping c. */
void lm_attention_fwd(lm_distiller *D, int l, int nb, int rows, float *x, lm_layer_cache *c);

/* x [R, d] += MLP(RMSNorm(x)) of layer l on D->mlps[l], keeping c. */
void lm_mlp_fwd(lm_distiller *D, int l, int rows, float *x, lm_layer_cache *c);

/* Given dx = dL/d(the block's output stream): the trained matrices' dW and, unless this is the
 * first trained layer, dx += through the block to its input. */
void lm_mlp_bwd(lm_distiller *D, int l, int rows, float *dx, const lm_layer_cache *c);
void lm_attention_bwd(lm_distiller *D, int l, int nb, int rows, float *dx, const lm_layer_cache *c);

/* ------------------------------------------------------------------ distill_step.c */

fipsc_status lm_distill_batch(void *self, int nb, const int *idx, bool want_grad, double *loss, fipsc_error *err);
fipsc_status lm_distill_score(void *self, double *kl, fipsc_error *err);

#endif
