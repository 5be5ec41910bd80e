/* The Llama-family runtime: batched prefill and KV-cached decoding.
 *
 * Per block (Hugging Face LlamaDecoderLayer, also Mistral and Qwen2):
 *   h   = x + o_proj(Attention(RoPE(q_proj(n1)), RoPE(k_proj(n1)), v_proj(n1))),  n1 = RMSNorm(x)
 *   out = h + MLP(RMSNorm(h))                                    (SwiGLU, through fipsc_mlp_forward)
 * RMSNorm(x) = w ⊙ x / sqrt(mean(x²) + eps). RoPE rotates, inside each head, dimension j with
 * j + head_dim/2 by the angle pos·θ^(−2j/head_dim) (θ = rope_theta). Attention is causal, scaled by
 * 1/sqrt(head_dim), with grouped-query heads: query head h reads key/value head
 * h / (n_heads / n_kv_heads). q/k/v biases are added when the model has them. The logits are
 * RMSNorm(x_final)·lm_headᵀ (lm_head = the token embeddings when tied).
 *
 * Projections and the head run on BLAS GEMMs over all rows at once (src/ops/gemm.h); norms,
 * RoPE and attention run on OpenMP threads. Every number is computed by one thread in a fixed
 * order, so the output is the same bit for bit whatever OMP_NUM_THREADS / OPENBLAS_NUM_THREADS /
 * fipsc_threads_set say. (Across different batch shapes a row may round differently in the last
 * bit, as GEMM kernels block rows by the shape; logits agree to float precision.)
 *
 * Positions are limited to the model's context (cfg.max_seq_len). */
#ifndef FIPSC_RUNTIME_H
#define FIPSC_RUNTIME_H

#include <stdint.h>

#include "model/capture.h"
#include "model/model.h"
#include "core/status.h"

/* Prefill: runs `batch` sequences of `len` tokens (tokens [batch, len], row-major), each from
 * position 0. logits: NULL (no head is computed) or [batch, len, vocab] — the row for position i
 * predicts token i + 1. capture: NULL or the MLPs to record (see capture.h); with logits NULL
 * the forward stops after the last captured block. */
fipsc_status fipsc_llama_forward(const fipsc_model *m, const int32_t *tokens, int batch, int len,
                                 float *logits, fipsc_capture *capture, fipsc_error *err);

/* A decoding session: one sequence with a KV cache of up to max_len positions. */
typedef struct fipsc_llama_session fipsc_llama_session;

/* max_len <= cfg.max_seq_len (0 means cfg.max_seq_len). The model must outlive the session. */
fipsc_status fipsc_llama_session_new(const fipsc_model *m, int max_len, fipsc_llama_session **out,
                                     fipsc_error *err);
void fipsc_llama_session_free(fipsc_llama_session *s);

/* Forgets every position (the next token is position 0 again). */
void fipsc_llama_session_reset(fipsc_llama_session *s);

/* Positions fed so far. */
int fipsc_llama_session_length(const fipsc_llama_session *s);

/* Feeds n tokens at the next positions in one batched pass (a prompt) and writes the logits
 * after the last of them, [vocab], into last_logits (may be NULL). */
fipsc_status fipsc_llama_session_prefill(fipsc_llama_session *s, const int32_t *tokens, int n,
                                         float *last_logits, fipsc_error *err);

/* Feeds one token at the next position and writes its logits, [vocab] (may be NULL). */
fipsc_status fipsc_llama_decode(fipsc_llama_session *s, int32_t token, float *logits,
                                fipsc_error *err);

/* A lockstep session: `batch` sequences, each with its own cache of max_len positions, all fed
 * one token a step (so all at the same position): fipsc_llama_batch_step feeds tokens[b] to
 * sequence b and writes logits [batch, vocab] (may be NULL). Each step is one pass over batch
 * rows: the weights are read once for all the sequences. A row's logits are those of the same
 * token decoded alone up to the last bits (the products' blocking depends on the row count;
 * src/ops/gemm.h); for a given batch they do not depend on the thread count. Prefill and decode
 * refuse a lockstep session; free and reset as above. */
fipsc_status fipsc_llama_batch_session_new(const fipsc_model *m, int batch, int max_len, fipsc_llama_session **out,
                                           fipsc_error *err);
fipsc_status fipsc_llama_batch_step(fipsc_llama_session *s, const int32_t *tokens, float *logits, fipsc_error *err);

#endif
