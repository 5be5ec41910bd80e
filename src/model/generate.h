/* Generating tokens with any language model (a family with the lm capability, src/model/family.h):
 * continuing a prompt, and sampling whole sequences from BOS (the token corpora that evaluation
 * and calibration use). Built on the family's decoding sessions. */
#ifndef FIPSC_MODEL_GENERATE_H
#define FIPSC_MODEL_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "ops/sample.h"
#include "core/status.h"

/* Feeds prompt[0..n_prompt) (n_prompt >= 1) and samples up to n_new tokens with `sampler`, each
 * fed back in turn, into out[0..n_new). *n_out is the number written: n_new, or fewer when
 * stop_at_eos and the model produced its EOS token (which is then the last one written).
 * n_prompt + n_new must fit in the model's context. */
fipsc_status fipsc_lm_generate(const fipsc_model *m, const int32_t *prompt, int n_prompt,
                               int n_new, fipsc_sampler *sampler, bool stop_at_eos,
                                  int32_t *out, int *n_out, fipsc_error *err);

/* The same, telling on_token(ctx, id) about each generated token as soon as it is drawn (for text
 * printed while it is generated). */
typedef void (*fipsc_token_fn)(void *ctx, int32_t token);
fipsc_status fipsc_lm_generate_streaming(const fipsc_model *m, const int32_t *prompt, int n_prompt, int n_new,
                                         fipsc_sampler *sampler, bool stop_at_eos, fipsc_token_fn on_token,
                                         void *ctx, int32_t *out, int *n_out, fipsc_error *err);

/* Progress of a long job: done of total tokens, after elapsed seconds. */
typedef void (*fipsc_sample_progress_fn)(void *ctx, long long done, long long total, double elapsed);

/* Samples n sequences of len tokens into ids [n, len]: each starts with the BOS token, the other
 * len − 1 tokens are sampled (temperature, top_p as in fipsc_sampler) and never stop at EOS.
 * Sequence i draws from its own stream, seeded fipsc_seed_derive(seed, i), so the result depends
 * on (model, n, len, temperature, top_p, seed) only, not on the machine or the thread count.
 * Small models (up to 2M parameters) sample several sequences at once on OpenMP threads, one
 * sequence per thread; larger ones decode up to 64 sequences at a time in lockstep where the
 * family can (fipsc_lm_ops.batch_step: every step one product over their rows, several times the
 * tokens per second of one sequence; as many as keep their KV caches within 2 GiB, fixed by the
 * model and len), else one at a time. A lockstep row's logits equal a lone
 * sequence's up to the last bits, so a large model's sampled tokens are not those of decoding
 * each sequence alone (fipsc's versions before lockstep sampling). progress (may be NULL) hears
 * the sampled tokens so far (a sequence's BOS counted), from one thread at a time. */
fipsc_status fipsc_lm_sample_sequences(const fipsc_model *m, int n, int len, float temperature, float top_p,
                                       uint64_t seed, int32_t *ids, fipsc_sample_progress_fn progress,
                                       void *progress_ctx, fipsc_error *err);

/* The memory fipsc_lm_sample_sequences holds beside the model for n sequences of len tokens:
 * the KV caches and logits of the sequences it decodes together (0 without the lm capability). */
int64_t fipsc_lm_sample_memory_bytes(const fipsc_model *m, int n, int len);

#endif
