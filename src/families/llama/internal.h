/* The Llama forward core shared by the stateless prefill (forward.c) and the KV-cached
 * session (llama_decode.c). Private to src/model. */
#ifndef FIPSC_LLAMA_INTERNAL_H
#define FIPSC_LLAMA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/capture.h"
#include "model/model.h"
#include "core/status.h"

/* Scratch for passes of up to rows_cap token rows attending over up to ctx_cap positions.
 * All arrays row-major, one row per token. */
typedef struct llama_workspace {
    int rows_cap, ctx_cap;
    float *x;            /* [rows, dim] residual stream */
    float *xn;           /* [rows, dim] normalised input of attention / MLP */
    float *q;            /* [rows, n_heads·head_dim] queries */
    float *att;          /* [rows, n_heads·head_dim] attention output, before o_proj */
    float *mlp_out;      /* [rows, dim] */
    float *mlp_scratch;  /* fipsc_mlp_scratch_floats(rows) */
    float *k, *v;        /* [rows, kv_dim]: keys/values of a stateless pass */
    float *rope_cos, *rope_sin; /* [ctx_cap, head_dim/2]: cos/sin(pos·inv_freq[j]) */
    float *scores;       /* [score_threads, ctx_cap]: one attention row per thread */
    int score_threads;
} llama_workspace;

/* One pass over `batch` sequences of `len` new tokens that start at position start_pos. */
typedef struct llama_pass {
    const int32_t *tokens; /* [batch, len] */
    int batch, len, start_pos;
    /* KV cache (sessions): per layer l and sequence b, keys at
     * k_cache + (l·batch + b)·cache_rows·kv_dim, row = position. NULL: stateless, keys live in
     * the workspace for one layer at a time. */
    float *k_cache, *v_cache;
    int cache_rows;
    float *logits;         /* NULL, or [batch, len, vocab], or [batch, vocab] when last_only */
    bool last_only;
    fipsc_capture *capture;
} llama_pass;

/* Makes ws large enough (keeps what it has when large enough). */
fipsc_status llama_workspace_reserve(llama_workspace *ws, const fipsc_model *m, int rows, int ctx,
                                     fipsc_error *err);
void llama_workspace_free(llama_workspace *ws);

fipsc_status llama_run(const fipsc_model *m, llama_workspace *ws, const llama_pass *p,
                       fipsc_error *err);

/* RoPE tables for positions [from, to) (cosv, sinv [to, head_dim/2]), as Hugging Face computes
 * them, and the rotation of one row's heads by them (transpose: by minus the angles). forward.c */
struct fipsc_config;
void llama_fill_rope(const struct fipsc_config *c, float *cosv, float *sinv, int from, int to);
void llama_rope_row(float *v, int heads, int head_dim, const float *cs, const float *sn, bool transpose);

/* Checks that m carries a bound Llama view. */
fipsc_status llama_check_model(const fipsc_model *m, fipsc_error *err);

#endif
