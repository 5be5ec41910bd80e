/* End-to-end distillation of a compressed sentence encoder (ALGORITHM.md §9: "optional end-to-end
 * fine-tuning, knowledge distillation against the original model").
 *
 * Block-wise training (fipsc_compress_run) fits each compressed MLP to its own original outputs
 * on the original inputs. What a sentence encoder is used for is its embedding, and errors of the
 * first MLP pass through the next layer's attention before they reach it: on STS-B the
 * block-wise result at budget 0.25 keeps 0.44 relative error in layer 0 and loses 0.016 of dev
 * Spearman. Distillation trains the compressed parameters — every group's basis U and the kept
 * entries of every V_i (the sparsity pattern stays: an entry that is zero stays zero) — on
 *     L = mean over a batch of sentences of (1 − cos(e_c, e_o)),
 * e_c the compressed model's embedding and e_o the original's, plus optionally (λ > 0) a
 * relational term that asks the batch's sentences to keep their similarities to each other,
 *     λ · mean over pairs i, j of the batch of (cos(e_c,i, e_c,j) − cos(e_o,i, e_o,j))²,
 * which is what a semantic-similarity task scores, and optionally (μ > 0) a hidden-state term
 * that asks every token's residual stream after each trained layer to stay the original's,
 *     μ · Σ_l mean over the batch's tokens of ‖s_c,l − s_o,l‖² / mean ‖s_o,l‖²,
 * a target per token rather than per sentence (more to learn from, less to overfit), with gradients through the whole
 * network above the first compressed MLP: that MLP block, every later layer's attention and MLP
 * blocks, the mean pooling, tanh(P·p + b) and the L2 normalisation. Everything else (attention,
 * norms, biases, the pooler, uncompressed MLPs) stays as it is. AdamW with a cosine learning
 * rate, batches of whole sentences drawn by a seeded shuffle, one epoch after another.
 *
 * Measured on STS-B (BENCHMARKS.md): the embeddings come closer to the original's (mean cosine on
 * dev 0.881 → 0.907 at budget 0.25) while the dev Spearman moves by −0.003 to +0.002 across
 * budgets: distillation does not recover what block-wise compression loses on that task.
 *
 * The forward here recomputes the encoder exactly as fipsc_use_encode does (the same float
 * operations up to GEMM blocking; tested to agree within 1e-5), keeping what the backward needs. */
#ifndef FIPSC_USE_DISTILL_H
#define FIPSC_USE_DISTILL_H

#include <stdint.h>

#include "fips/fips.h"
#include "model/family.h"
#include "model/model.h"
#include "core/status.h"

/* The options, progress and report are the generic ones of src/model/family.h
 * (fipsc_distill_opts, fipsc_distill_defaults); this is the sentence encoder's distiller, its
 * encoder capability's `distill`. */

/* Distils m, a sentence encoder with FiPS-compressed MLP matrices (fipsc_compress_run's result or
 * a loaded compressed file), towards target [n, d]: the original model's embeddings of the n
 * tokenized sentences (ids[i] holds lens[i] ids; beyond max_tokens ignored). The values of m's
 * compressed groups change in place. original: the uncompressed encoder m was made from, needed
 * for the hidden-state term (NULL otherwise; refused when other weights differ). Fails with FIPSC_ERR_ARG when m has no compressed MLP or
 * no sentence has a token, FIPSC_ERR_UNSUPPORTED for n:m-packed V (its unused slots must stay
 * zero at their offsets: not handled), FIPSC_ERR_NUMERIC (naming the step) when the loss stops
 * being finite — m is then restored to its state before the call. */
fipsc_status fipsc_use_distill(fipsc_model *m, const fipsc_model *original, int n, const int32_t *const *ids,
                               const int *lens, const float *target, const fipsc_distill_opts *o,
                               fipsc_distill_report *rep, fipsc_error *err);

#endif
