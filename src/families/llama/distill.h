/* End-to-end distillation of a compressed Llama-family language model against the original's
 * next-token distributions (ALGORITHM.md §9; the trainer is src/model/distill.h's, shared with
 * the other families).
 *
 * Block-wise training fits each compressed MLP to its own outputs on the original's inputs; the
 * errors of the early MLPs then pass through every later block before they reach the logits, and
 * at low budgets they add up (stories260K at budget 0.5: every MLP misses its own outputs by
 * 17–29 %, the logits' KL is ~1.9 nats). Distillation trains every basis U and the kept entries of
 * every V_i together on
 *     L = mean over the scored positions of KL(p_o ‖ p_c),
 * p_o the original's and p_c the compressed model's next-token distribution at a position of a
 * calibration sequence (positions 0..len−2 of each: those with a next token, as `fipsc eval`
 * scores them), with gradients through the whole network above the first compressed MLP: RMSNorms,
 * causal grouped-query attention with RoPE, SwiGLU MLPs, the final norm and the head. Everything
 * but the compressed matrices stays as it is.
 *
 * Llama, Mistral, Qwen2 and the models fipsc's Llama family reads with those blocks; not Gemma-2
 * (its post-norms, softcaps and sliding windows have no backward here: refused). The dense
 * weights above the first compressed MLP must be float32 (a BF16 checkpoint: refused). */
#ifndef FIPSC_LLAMA_DISTILL_H
#define FIPSC_LLAMA_DISTILL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "formats/corpus.h"
#include "model/family.h"
#include "model/model.h"

/* Distils m (compressed from `original`) on the sequences of c (sequences of fewer than two tokens
 * are skipped; each at most the model's context). The values of m's compressed groups change in
 * place; on failure they are restored. rep: items = sequences used, rows = their scored positions,
 * score_before/score_after the mean KL over them before and after. */
fipsc_status fipsc_llama_distill(fipsc_model *m, const fipsc_model *original, const fipsc_corpus *c,
                                 const fipsc_distill_opts *o, fipsc_distill_report *rep, fipsc_error *err);

/* The step-level interface, for the finite-difference test of the gradients. */
typedef struct lm_distiller lm_distiller;

fipsc_status lm_distiller_new(fipsc_model *m, const fipsc_model *original, const fipsc_corpus *c, int batch_cap,
                              lm_distiller **out, fipsc_error *err);
void lm_distiller_free(lm_distiller *D);
int lm_distiller_sequences(const lm_distiller *D);
int lm_distiller_first_layer(const lm_distiller *D);
/* The parameters as blocks of floats (src/model/distill.h's fipsc_distill_params_block). */
int lm_distiller_block_count(const lm_distiller *D);
float *lm_distiller_block(lm_distiller *D, int k, int64_t *len, const float **grad);
void lm_distiller_changed(lm_distiller *D);
/* Mean KL over the scored positions of sequences seq[0..nb) and, if want_grad, every block's
 * gradient. */
fipsc_status lm_distiller_loss_grad(lm_distiller *D, int nb, const int *seq, bool want_grad, double *loss,
                                    fipsc_error *err);
/* Mean KL over every scored position of every sequence (the report's score). */
fipsc_status lm_distiller_score(lm_distiller *D, double *kl, fipsc_error *err);

#endif
