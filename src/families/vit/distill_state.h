/* The ViT distiller's state and the pieces its files share (internal to src/families/vit/;
 * distill.h is its interface):
 *   distill_blocks.c  the blocks' forward (keeping what the backward needs) and backward
 *   distill_step.c    creation: checks, parameters, the original's logits, fixed rows, buffers
 *   distill_loss.c    the head, the KL and its gradient for a batch, the score, the entry point
 * A batch of nb images is R = nb·T token rows, image-major; d the width, f the MLP width. */
#ifndef FIPSC_VIT_DISTILL_STATE_H
#define FIPSC_VIT_DISTILL_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "families/vit/distill.h"
#include "families/vit/vit.h"
#include "model/distill.h"

/* What block l's backward needs, for the rows of a batch. */
typedef struct vit_layer_cache {
    float *xhat_a, *rstd_a;  /* LN_before: [R, d], [R] */
    float *q, *k, *v;        /* [R, d] each */
    float *probs;            /* per image and head: P [T, T] at (i·heads + h)·T² */
    float *xhat_m, *rstd_m;  /* LN_after: [R, d], [R] */
    float *h_m;              /* [R, d] LN_after's output: fc1's input */
    float *pre, *act;        /* [R, f] fc1's output and its activation: fc2's input */
} vit_layer_cache;

/* Block l's MLP as the distiller runs it: fc1 [f, d] and fc2 [d, f] with their biases, dense
 * (the trained matrices' W_i, or the model's own), and the trained matrices (NULL when dense). */
typedef struct vit_mlp_view {
    fipsc_linear fc1, fc2;
    fipsc_distill_matrix *p1, *p2;
} vit_mlp_view;

struct vit_distiller {
    fipsc_model *m;
    const fipsc_vit *v;
    int d, f, T, heads, hd, labels, first, last;
    float scale;

    fipsc_distill_params P;
    fipsc_distill_objective objective;
    vit_mlp_view *mlps;       /* [n_layers] */

    int n;                    /* images */
    float *stream;            /* [n·T, d] rows entering block first's MLP */
    float *teacher;           /* [n, labels] the original's log-probabilities */

    int batch_cap;
    vit_layer_cache *cache;   /* [n_layers], first..last allocated */
    float *x, *dx, *tmp_d, *tmp_d2, *tmp_d3; /* [R, d] */
    float *tmp_f;             /* [R, f] */
    float *heads_in, *heads_xhat, *heads_rstd; /* [2·batch, d], [2·batch, d], [2·batch]: CLS (DIST) rows */
    float *logits, *logits2;  /* [batch, labels] */
    float *scratch;           /* per thread [T²] */
};

/* ------------------------------------------------------------------ distill_blocks.c */

/* x [R, d] += o(Attention(LN_before(x))) of block l for nb images, keeping c. */
fipsc_status vit_attention_fwd(vit_distiller *D, int l, int nb, float *x, vit_layer_cache *c, fipsc_error *err);
/* x [R, d] += MLP(LN_after(x)) of block l on D->mlps[l], keeping c. */
fipsc_status vit_mlp_fwd(vit_distiller *D, int l, int nb, float *x, vit_layer_cache *c, fipsc_error *err);
/* Given dx = dL/d(the block's output stream): the trained matrices' dW and, unless this is the
 * first trained block, dx += through the block to its input. */
void vit_mlp_bwd(vit_distiller *D, int l, int nb, float *dx, const vit_layer_cache *c);
void vit_attention_bwd(vit_distiller *D, int l, int nb, float *dx, const vit_layer_cache *c);

/* ------------------------------------------------------------------ distill_loss.c */

fipsc_status vit_distill_batch(void *self, int nb, const int *idx, bool want_grad, double *loss, fipsc_error *err);
fipsc_status vit_distill_score(void *self, double *kl, fipsc_error *err);

#endif
