/* One trainer for the end-to-end distillation of every family (ALGORITHM.md §9, "optional
 * end-to-end fine-tuning, knowledge distillation against the original model").
 *
 * Block-wise training fits each compressed MLP to its own outputs; distillation trains all of
 * them together on what the model is used for: a language model's next-token distribution, an
 * image classifier's logits, a sentence encoder's embedding. What is trained is the same for every
 * family — every group's basis U [d, r] and the kept entries of every V_i [r, f] (an entry that
 * is zero stays zero: the sparsity and the file size do not change) — and so is how: AdamW with a
 * cosine learning rate over shuffled batches of examples, the model restored if the loss stops
 * being finite. What differs is the objective, which each family writes as a forward and a
 * hand-written backward over dense weights:
 *
 *   densify   W_i = (U·V_i)ᵀ [f, d] for an expanding matrix (up, gate), U·V_i [d, f] for a
 *             contracting one (down): 2·d·r·f multiply-adds each, far below a batch's GEMMs, so
 *             the objective runs plain GEMMs
 *   objective L over a batch of examples and dL/dW_i into every matrix's dw
 *   chain     dM_i = dW_iᵀ (expanding) or dW_i,  dU += dM_i·V_iᵀ,  dV_i = Uᵀ·dM_i at kept entries
 *   AdamW     on U and the kept entries, then densify again
 *
 * fipsc_distill_params holds the parameters (this file's first half); fipsc_distill_objective is
 * a family's loss; fipsc_distill_train the loop. Used by src/families/use/distill*.c (embedding
 * cosine), src/families/llama/distill*.c (next-token KL) and src/families/vit/distill*.c (logit
 * KL). */
#ifndef FIPSC_MODEL_DISTILL_H
#define FIPSC_MODEL_DISTILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/family.h"
#include "ops/factored.h"
#include "ops/mlp.h"

/* ------------------------------------------------------------------ parameters */

/* One group's basis U [d, r] (the model's array, trained in place, in float32). */
typedef struct fipsc_distill_basis {
    fipsc_compressed_group *group;
    float *dU, *m, *v; /* [d, r] gradient and AdamW moments */
    float *saved;      /* U at the start, to restore after a failure */
} fipsc_distill_basis;

/* One compressed matrix: the kept values of V_i (the model's array) and their dense positions,
 * and the dense weight W_i the objective's forward reads and its gradient dW_i. */
typedef struct fipsc_distill_matrix {
    fipsc_factored_linear *fl;
    int basis;        /* index into the bases */
    int64_t nnz;      /* stored entries */
    int64_t *pos;     /* [nnz] k·f + j of entry e in V_i [r, f] */
    uint64_t *keep;   /* [⌈nnz/64⌉] bits: entry e may move (nonzero at the start) */
    float *g, *m, *v; /* [nnz] gradient and AdamW moments */
    float *saved;     /* [nnz] values at the start */
    float *dense;     /* [out, in] W_i, as the model's linear would apply it */
    float *dw;        /* [out, in] dL/dW_i: the objective writes all of it */
} fipsc_distill_matrix;

typedef struct fipsc_distill_params {
    fipsc_distill_basis *bases;
    int n_bases;
    fipsc_distill_matrix *mats;
    int n_mats, cap;   /* cap: matrices the arrays hold (pointers into them stay valid) */
    int64_t params;    /* Σ d·r of the bases + Σ movable entries of V */
    float *vdense, *vgrad; /* [r_max, f_max] scratch of the chain */
    int64_t scratch;   /* floats in each */
    bool stale;        /* values changed since the dense weights were made */
} fipsc_distill_params;

/* Room for up to max_matrices compressed matrices. */
fipsc_status fipsc_distill_params_init(fipsc_distill_params *P, int max_matrices, fipsc_error *err);
void fipsc_distill_params_free(fipsc_distill_params *P);

/* Adds lin's factored matrix (its basis too, the first time): *out = the matrix, or NULL when lin
 * is dense (not trained). Fails when the basis is not dense of width d, or V is n:m-packed. The
 * basis and V are widened to float32 in the model (written back in their dtypes). */
fipsc_status fipsc_distill_params_add(fipsc_distill_params *P, const fipsc_linear *lin, int d,
                                      fipsc_distill_matrix **out, fipsc_error *err);

/* Remakes every matrix's dense weight if the values changed since the last time. */
fipsc_status fipsc_distill_params_densify(fipsc_distill_params *P, fipsc_error *err);
void fipsc_distill_params_changed(fipsc_distill_params *P);

/* From every matrix's dw: every basis's dU (zeroed first) and every kept entry's g. */
void fipsc_distill_params_chain(fipsc_distill_params *P);

/* One AdamW step (t from 1) at learning rate lr on every basis and every kept entry. */
void fipsc_distill_params_step(fipsc_distill_params *P, const fipsc_adamw *o, int t, float lr);

/* Every value back to what it was when it was added. */
void fipsc_distill_params_restore(fipsc_distill_params *P);

/* The parameters as blocks of floats, bases first: block k's values (in the model) and their
 * gradient of the last chain; *len their count. After writing values, call ..._changed. */
int fipsc_distill_params_blocks(const fipsc_distill_params *P);
float *fipsc_distill_params_block(fipsc_distill_params *P, int k, int64_t *len, const float **grad);

/* ------------------------------------------------------------------ objective and loop */

/* A family's loss over examples (sentences, sequences, images) at the current dense weights. */
typedef struct fipsc_distill_objective {
    void *self;
    int items; /* examples the batches are drawn from */
    int batch; /* examples per step, ≤ items */
    /* L over examples idx[0..nb), and when want_grad dL/dW_i into every matrix's dw. */
    fipsc_status (*loss_grad)(void *self, int nb, const int *idx, bool want_grad, double *loss, fipsc_error *err);
    /* The report's score over every example at the current weights (a cosine, a KL, ...). */
    fipsc_status (*score)(void *self, double *score, fipsc_error *err);
} fipsc_distill_objective;

/* densify, the objective's loss and (want_grad) gradient, chain: the gradient of every block. */
fipsc_status fipsc_distill_loss_grad(fipsc_distill_params *P, const fipsc_distill_objective *obj, int nb,
                                     const int *idx, bool want_grad, double *loss, fipsc_error *err);

/* o->steps AdamW steps, each on obj->batch examples of a seeded shuffle (epoch after epoch; a
 * short tail is dropped), cosine learning rate o->lr → o->lr_min, progress as o says. *before and
 * *after: obj's score at the start and the end. On failure (FIPSC_ERR_NUMERIC naming the step when
 * the loss is not finite) every value is restored. */
fipsc_status fipsc_distill_train(fipsc_distill_params *P, const fipsc_distill_objective *obj,
                                 const fipsc_distill_opts *o, double *before, double *after, fipsc_error *err);

/* The mean of obj's loss over every example, in consecutive batches of obj->batch, a batch of the
 * examples [first, first + count) weighing weight(self, first, count) (NULL: count) — the score
 * of an objective whose loss is already the quantity reported. */
fipsc_status fipsc_distill_mean_loss(const fipsc_distill_objective *obj, double (*weight)(void *self, int first, int count),
                                     double *mean, fipsc_error *err);

/* ------------------------------------------------------------------ the KL of two distributions */

/* row [n] ← log_softmax(row), in double: a teacher's log-probabilities from its logits. */
void fipsc_distill_log_softmax(float *row, int n);

/* KL(p_o ‖ softmax(z)) = Σ_c p_o,c·(lo_c − log_softmax(z)_c) for logits z [n] and the teacher's
 * log-probabilities lo [n], in double; with want_grad, z ← grad_scale·(softmax(z) − p_o), its
 * gradient scaled (1/positions of the batch, or 0 for a row that is not scored). */
double fipsc_distill_kl(float *z, const float *lo, int n, bool want_grad, double grad_scale);

/* Whether two weights of n floats are the same (the same array, or equal bytes; NULL equals only
 * NULL): a distiller's check that the original is the model the compressed one was made from. */
bool fipsc_distill_same_weights(const float *a, const float *b, size_t n);

/* The common checks of o (steps, batch, learning rates, term weights). */
fipsc_status fipsc_distill_check_opts(const fipsc_distill_opts *o, fipsc_error *err);

#endif
