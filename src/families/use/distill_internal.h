/* The sentence-encoder distiller's step-level interface (src/families/use/distill.h is the
 * public entry point), exposed for the finite-difference test of its gradients. */
#ifndef FIPSC_USE_DISTILL_INTERNAL_H
#define FIPSC_USE_DISTILL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "core/status.h"

typedef struct use_distiller use_distiller;

/* Prepares distilling m towards target [n, d] (see fipsc_use_distill): finds the trained
 * parameters, computes the rows entering the first compressed MLP block for every sentence, and
 * allocates for batches of at most batch_cap sentences. */
fipsc_status use_distiller_new(fipsc_model *m, int n, const int32_t *const *ids, const int *lens,
                               const float *target, int batch_cap, use_distiller **out,
                               fipsc_error *err);
void use_distiller_free(use_distiller *d);

/* The trained parameters as blocks of floats: block k's values (in the model, changed in place)
 * and the gradient the last use_distiller_loss_grad wrote for them; *len their count. After
 * writing into a block, call use_distiller_changed: the forward's dense weights are remade only
 * then. */
int use_distiller_block_count(const use_distiller *d);
float *use_distiller_block(use_distiller *d, int k, int64_t *len, const float **grad);
void use_distiller_changed(use_distiller *d);

/* The weight λ of the relational term (0 at creation). */
void use_distiller_set_relational(use_distiller *d, float lambda);

/* The weight μ of the hidden-state term (0 at creation) and the original model it compares with:
 * computes the original's stream after every trained layer for every sentence's rows. Fails
 * when orig is not the model m was compressed from (other weights differ). */
fipsc_status use_distiller_set_hidden(use_distiller *d, const fipsc_model *orig, float mu, fipsc_error *err);

/* The first layer with a compressed MLP, and the sentences / rows / trained parameters. */
int use_distiller_first_layer(const use_distiller *d);
int use_distiller_sentences(const use_distiller *d);
int64_t use_distiller_rows(const use_distiller *d);
int64_t use_distiller_params(const use_distiller *d);

/* The loss mean_i (1 − cos(e_c,i, e_o,i)) + λ·mean_ij (cos(e_c,i, e_c,j) − cos(e_o,i, e_o,j))² over
 * sentences sent[0..nb) (+ the hidden-state term when set) (indices among those with
 * tokens, < use_distiller_sentences) at the current parameter values, and, if want_grad, its
 * gradient into every block's grad. emb: NULL or [nb, d] for the compressed embeddings. */
fipsc_status use_distiller_loss_grad(use_distiller *d, int nb, const int *sent, bool want_grad,
                                     double *loss, float *emb, fipsc_error *err);

#endif
