/* KV-cached decoding sessions (see src/families/llama/runtime.h).
 *
 * The cache holds, per layer and sequence, the rotated keys and the values of every position fed
 * so far: [n_layers, batch, max_len, kv_dim] each (batch 1 but for lockstep sessions, whose
 * sequences all stand at the same position: one token of each is one GEMM over batch rows, so
 * the weights are read once per step for all of them). Feeding tokens runs the shared forward core over just the new
 * rows, writing their keys/values into the cache and attending over all cached positions; a
 * one-token step thus costs one matrix-vector product per projection plus attention over the
 * context. The workspace is allocated once per session, so a decode step allocates nothing. */
#include <stdlib.h>

#include "families/llama/llama.h"
#include "families/llama/runtime.h"
#include "families/llama/internal.h"

struct fipsc_llama_session {
    const fipsc_model *m;
    int batch, max_len, pos;
    float *k_cache, *v_cache; /* [n_layers, batch, max_len, kv_dim] */
    llama_workspace ws;
};

fipsc_status fipsc_llama_session_new(const fipsc_model *m, int max_len, fipsc_llama_session **out,
                                     fipsc_error *err)
{
    return fipsc_llama_batch_session_new(m, 1, max_len, out, err);
}

fipsc_status fipsc_llama_batch_session_new(const fipsc_model *m, int batch, int max_len, fipsc_llama_session **out,
                                           fipsc_error *err)
{
    *out = NULL;
    if (batch < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "a session of %d sequences is impossible", batch);
    fipsc_status st = llama_check_model(m, err);
    if (st) return st;
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    if (max_len == 0) max_len = c->max_seq_len;
    if (max_len <= 0 || (c->max_seq_len > 0 && max_len > c->max_seq_len))
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "a session of %d positions is impossible: the model's context is %d positions",
                          max_len, c->max_seq_len);
    fipsc_llama_session *s = calloc(1, sizeof *s);
    if (!s) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a decoding session");
    s->m = m;
    s->batch = batch;
    s->max_len = max_len;
    size_t cache = (size_t)c->n_layers * batch * max_len * c->n_kv_heads * c->head_dim;
    s->k_cache = malloc(cache * sizeof(float));
    s->v_cache = malloc(cache * sizeof(float));
    if (!s->k_cache || !s->v_cache) {
        fipsc_llama_session_free(s);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a KV cache of %d x %d positions (%zu MiB)",
                          batch, max_len, 2 * cache * sizeof(float) >> 20);
    }
    if ((st = llama_workspace_reserve(&s->ws, m, batch, max_len, err))) {
        fipsc_llama_session_free(s);
        return st;
    }
    *out = s;
    return FIPSC_OK;
}

void fipsc_llama_session_free(fipsc_llama_session *s)
{
    if (!s) return;
    free(s->k_cache);
    free(s->v_cache);
    llama_workspace_free(&s->ws);
    free(s);
}

void fipsc_llama_session_reset(fipsc_llama_session *s) { s->pos = 0; }

int fipsc_llama_session_length(const fipsc_llama_session *s) { return s->pos; }

/* Feeds n tokens to each of the session's sequences (tokens [batch, n]) at the next positions. */
static fipsc_status feed(fipsc_llama_session *s, const int32_t *tokens, int n, float *last_logits, fipsc_error *err)
{
    if (n <= 0) return fipsc_fail(err, FIPSC_ERR_ARG, "feeding %d tokens to a session", n);
    if (n > s->max_len - s->pos)
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "feeding %d tokens at position %d overflows the session's %d positions", n,
                          s->pos, s->max_len);
    /* Reserving again also picks up a thread count raised since the session was made. */
    fipsc_status st = llama_workspace_reserve(&s->ws, s->m, s->batch * n, s->max_len, err);
    if (st) return st;
    llama_pass pass = {.tokens = tokens, .batch = s->batch, .len = n, .start_pos = s->pos,
                       .k_cache = s->k_cache, .v_cache = s->v_cache, .cache_rows = s->max_len,
                       .logits = last_logits, .last_only = true};
    if ((st = llama_run(s->m, &s->ws, &pass, err))) return st;
    s->pos += n;
    return FIPSC_OK;
}

fipsc_status fipsc_llama_session_prefill(fipsc_llama_session *s, const int32_t *tokens, int n,
                                         float *last_logits, fipsc_error *err)
{
    if (s->batch != 1)
        return fipsc_fail(err, FIPSC_ERR_ARG, "a session of %d sequences is fed one token per sequence a step",
                          s->batch);
    return feed(s, tokens, n, last_logits, err);
}

fipsc_status fipsc_llama_decode(fipsc_llama_session *s, int32_t token, float *logits, fipsc_error *err)
{
    return fipsc_llama_session_prefill(s, &token, 1, logits, err);
}

fipsc_status fipsc_llama_batch_step(fipsc_llama_session *s, const int32_t *tokens, float *logits, fipsc_error *err)
{
    return feed(s, tokens, 1, logits, err);
}
