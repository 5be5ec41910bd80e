/* End-to-end distillation of a compressed Vision Transformer against the original's logits
 * (ALGORITHM.md §9; the trainer is src/model/distill.h's, shared with the other families).
 *
 * Every basis U and the kept entries of every V_i are trained together on
 *     L = mean over the images of KL(softmax(z_o) ‖ softmax(z_c)),
 * z_o the original's and z_c the compressed model's logits (the head's, as `fipsc classify`
 * gives them; DeiT with teacher: the mean of both heads), with gradients through every block
 * above the first compressed MLP — LayerNorms, multi-head attention over each image's tokens, the
 * GELU MLPs — the final LayerNorm of the CLS (and DIST) rows and the classifier. The original's
 * logits are computed once. Labels are never used: the original is the teacher. */
#ifndef FIPSC_VIT_DISTILL_H
#define FIPSC_VIT_DISTILL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "model/family.h"
#include "model/model.h"

/* Distils m (compressed from `original`) on n preprocessed images pixels [n, C, H, W]. The values
 * of m's compressed groups change in place; on failure they are restored. rep: items = images,
 * rows = their token rows, score_before/score_after the mean KL over them. */
fipsc_status fipsc_vit_distill(fipsc_model *m, const fipsc_model *original, const float *pixels, int n,
                               const fipsc_distill_opts *o, fipsc_distill_report *rep, fipsc_error *err);

/* The step-level interface, for the finite-difference test of the gradients. */
typedef struct vit_distiller vit_distiller;

fipsc_status vit_distiller_new(fipsc_model *m, const fipsc_model *original, const float *pixels, int n,
                               int batch_cap, vit_distiller **out, fipsc_error *err);
void vit_distiller_free(vit_distiller *D);
int vit_distiller_first_layer(const vit_distiller *D);
int vit_distiller_block_count(const vit_distiller *D);
float *vit_distiller_block(vit_distiller *D, int k, int64_t *len, const float **grad);
void vit_distiller_changed(vit_distiller *D);
/* Mean KL over images img[0..nb) and, if want_grad, every block's gradient. */
fipsc_status vit_distiller_loss_grad(vit_distiller *D, int nb, const int *img, bool want_grad, double *loss,
                                     fipsc_error *err);

#endif
