/* The sentence-encoder distiller's state and the pieces its files share (internal to
 * src/families/use/; distill_internal.h is its step-level interface, distill.h the entry point):
 *   distill_setup.c     creating it: the trained parameters, the fixed rows, the batch buffers;
 *                       the relational and hidden-state terms
 *   distill_forward.c   the forward over a batch, keeping what the backward needs
 *   distill_backward.c  the backward through the blocks to dL/dW_i and on to the factors
 *   distill_step.c      the loss and its gradient for one batch, and over every sentence
 *   distill.c           the training loop (fipsc_use_distill) */
#ifndef FIPSC_USE_DISTILL_STATE_H
#define FIPSC_USE_DISTILL_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "families/use/distill_internal.h"
#include "families/use/use.h"
#include "model/distill.h"
#include "ops/factored.h"
#include "ops/linear.h"

/* Elementwise loops run on OpenMP threads only above this many elements. */
#define PARALLEL_MIN ((int64_t)1 << 18)

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
    fipsc_distill_matrix *p1, *p2;  /* the trained matrices, or NULL when dense */
} mlp_view;

struct use_distiller {
    fipsc_model *m;
    const fipsc_use *u;
    int d, f, first, last;   /* trained layers first..last (last = the encoder's last) */

    fipsc_distill_params P;  /* the trained parameters (src/model/distill.h) */
    fipsc_distill_objective objective; /* this distiller's loss for the shared trainer */
    mlp_view *mlps;          /* [n_layers] (first..last used) */

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
};

/* ------------------------------------------------------------------ shared steps */

/* x [rows, d] += W_o·MultiHead(LN_att(x)) + b_o for layer l, keeping activations in c. */
void use_distill_attention_block_fwd(use_distiller *D, int l, int nb, int rows, float *x, layer_cache *c);

/* x [rows, d] += MLP(LN_mlp(x)) for layer l on the weights of D->mlps[l]. */
void use_distill_mlp_block_fwd(use_distiller *D, int l, int rows, float *x, layer_cache *c);

/* Rows entering layer `first`'s MLP block for sentences [s0, s0 + cnt) (all with tokens), by the
 * original network below it, into D->stream (uses the batch buffers). */
fipsc_status use_distill_fixed_rows(use_distiller *D, const int32_t *const *ids, int s0, int cnt, fipsc_error *err);

/* Given dx = dL/d(the block's output stream) [rows, d]: the trained matrices' dW and, unless this
 * is the first trained layer, dx becomes dL/d(the block's input stream). distill_backward.c */
void use_distill_mlp_block_bwd(use_distiller *D, int l, int rows, float *dx, const layer_cache *c);

/* dx [rows, d] (output stream of layer l's attention block) += through the block to its input. */
void use_distill_attention_block_bwd(use_distiller *D, int l, int nb, int rows, float *dx, const layer_cache *c);

/* The objective of the shared trainer (src/model/distill.h) over sentences idx[0..nb): the
 * loss and, when want_grad, every trained matrix's dW. distill_step.c */
fipsc_status use_distill_batch(void *self, int nb, const int *idx, bool want_grad, double *loss, fipsc_error *err);

/* The forward over every sentence in consecutive batches (D->capture: keeping the original's
 * streams): *mean_cos = mean cos(e_c, e_o) at the current parameters (the objective's score). */
fipsc_status use_distill_forward_all(void *self, double *mean_cos, fipsc_error *err);

#endif
