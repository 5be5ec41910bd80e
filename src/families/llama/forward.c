/* Llama-family forward pass over a batch of token rows (see src/families/llama/runtime.h).
 *
 * The pass works on all rows of all sequences at once: every projection is one GEMM over
 * batch·len rows, so weights are read once per layer rather than once per token. The other steps
 * (RMSNorm, RoPE, attention, residual adds) are row-local and run on OpenMP threads, each row (or
 * attention head of a row) computed whole by one thread in a fixed order: results are identical
 * for any thread count. Small passes (decoding one token) skip the threads entirely, since
 * starting a parallel region costs more than the work. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/linear.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/mlp_forward.h"
#include "families/llama/llama.h"
#include "families/llama/runtime.h"
#include "families/llama/internal.h"

/* Below this many multiply-adds a loop runs on the calling thread. */
#define PARALLEL_WORK 32768LL

fipsc_status llama_check_model(const fipsc_model *m, fipsc_error *err)
{
    const fipsc_llama *v = fipsc_model_llama(m);
    if (!v || !v->layers || !fipsc_linear_is_dense(&v->tok_embeddings) || !fipsc_linear_is_dense(&v->lm_head) || !v->final_norm)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: not a Llama-family model (architecture '%s'): the Llama runtime "
                          "cannot run it",
                          m->source_path[0] ? m->source_path : "model", m->arch_name);
    return FIPSC_OK;
}

/* ---- workspace --------------------------------------------------------------------------- */

static fipsc_status grow(float **p, size_t n, fipsc_error *err)
{
    float *q = realloc(*p, (n ? n : 1) * sizeof *q);
    if (!q) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the runtime's scratch (%zu floats)", n);
    *p = q;
    return FIPSC_OK;
}

/* RoPE angles for positions [from, to): inv_freq[j] = 1 / θ^(2j/head_dim) (scaled as the
 * configuration's rope_scaling says: fipsc_llama_rope_inv_freq), evaluated in float exactly as
 * Hugging Face (and llama2.c's run.c) do, so the tables match theirs bit for bit. */
void llama_fill_rope(const fipsc_config *c, float *cosv, float *sinv, int from, int to)
{
    int half = c->head_dim / 2;
    const float mscale = fipsc_llama_rope_mscale(c); /* YaRN's attention factor; 1 otherwise */
    for (int j = 0; j < half; j++) {
        float inv_freq = fipsc_llama_rope_inv_freq(c, j);
        for (int pos = from; pos < to; pos++) {
            float angle = (float)pos * inv_freq;
            cosv[(size_t)pos * half + j] = cosf(angle) * mscale;
            sinv[(size_t)pos * half + j] = sinf(angle) * mscale;
        }
    }
}

fipsc_status llama_workspace_reserve(llama_workspace *ws, const fipsc_model *m, int rows, int ctx,
                                     fipsc_error *err)
{
    const fipsc_llama *view = fipsc_model_llama(m);
    const fipsc_config *c = &view->cfg;
    const size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    fipsc_status st;
    if (rows > ws->rows_cap) {
        size_t r = (size_t)rows, mlp = 0;
        for (int l = 0; l < c->n_layers; l++) {
            size_t need = fipsc_mlp_scratch_floats(&view->layers[l].mlp, rows);
            if (need > mlp) mlp = need;
        }
        if ((st = grow(&ws->x, r * c->dim, err)) || (st = grow(&ws->xn, r * c->dim, err)) ||
            (st = grow(&ws->q, r * q_dim, err)) || (st = grow(&ws->att, r * q_dim, err)) ||
            (st = grow(&ws->mlp_out, r * c->dim, err)) || (st = grow(&ws->mlp_scratch, mlp, err)) ||
            (st = grow(&ws->k, r * kv_dim, err)) || (st = grow(&ws->v, r * kv_dim, err)))
            return st;
        ws->rows_cap = rows;
    }
    int threads = omp_get_max_threads();
    if (ctx > ws->ctx_cap || threads > ws->score_threads) {
        int new_ctx = ctx > ws->ctx_cap ? ctx : ws->ctx_cap;
        size_t half = (size_t)c->head_dim / 2;
        if ((st = grow(&ws->scores, (size_t)threads * new_ctx, err))) return st;
        ws->score_threads = threads;
        if (new_ctx > ws->ctx_cap) {
            if ((st = grow(&ws->rope_cos, (size_t)new_ctx * half, err)) ||
                (st = grow(&ws->rope_sin, (size_t)new_ctx * half, err)))
                return st;
            llama_fill_rope(c, ws->rope_cos, ws->rope_sin, ws->ctx_cap, new_ctx);
            ws->ctx_cap = new_ctx;
        }
    }
    return FIPSC_OK;
}

void llama_workspace_free(llama_workspace *ws)
{
    free(ws->x);
    free(ws->xn);
    free(ws->q);
    free(ws->att);
    free(ws->mlp_out);
    free(ws->mlp_scratch);
    free(ws->k);
    free(ws->v);
    free(ws->rope_cos);
    free(ws->rope_sin);
    free(ws->scores);
    memset(ws, 0, sizeof *ws);
}

/* ---- row-local steps --------------------------------------------------------------------- */

/* Each loop below runs on OpenMP threads only when it has enough work: entering a parallel
 * region costs about a microsecond even when it is serialised by an `if` clause, more than a
 * whole row of a small model, so small passes (decoding) take the plain loop instead. */



/* Rotates each head of one row by the angles of its position (rotate-halves convention):
 *   v'[j] = v[j]·cos − v[j+half]·sin,   v'[j+half] = v[j+half]·cos + v[j]·sin,
 * or, transposed (the backward's rotation by −angle, cos² + sin² = mscale²):
 *   v'[j] = v[j]·cos + v[j+half]·sin,   v'[j+half] = v[j+half]·cos − v[j]·sin. */
void llama_rope_row(float *v, int heads, int head_dim, const float *cs, const float *sn, bool transpose)
{
    const int half = head_dim / 2;
    for (int h = 0; h < heads; h++) {
        float *a = v + (size_t)h * head_dim, *b = a + half;
        if (transpose) {
            for (int j = 0; j < half; j++) {
                float x0 = a[j], x1 = b[j];
                a[j] = x0 * cs[j] + x1 * sn[j];
                b[j] = x1 * cs[j] - x0 * sn[j];
            }
        } else {
            for (int j = 0; j < half; j++) {
                float x0 = a[j], x1 = b[j];
                a[j] = x0 * cs[j] - x1 * sn[j];
                b[j] = x1 * cs[j] + x0 * sn[j];
            }
        }
    }
}

/* Row r is token r % len of its sequence, at position start_pos + r % len. */
static void rope_rows(float *v, int rows, int heads, int head_dim, const llama_workspace *ws,
                      int len, int start_pos)
{
    const size_t half = (size_t)head_dim / 2, width = (size_t)heads * head_dim;
    if ((long long)rows * (long long)width > PARALLEL_WORK) {
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            size_t pos = (size_t)(start_pos + r % len);
            llama_rope_row(v + r * width, heads, head_dim, ws->rope_cos + pos * half, ws->rope_sin + pos * half, false);
        }
    } else {
        for (int r = 0; r < rows; r++) {
            size_t pos = (size_t)(start_pos + r % len);
            llama_rope_row(v + r * width, heads, head_dim, ws->rope_cos + pos * half, ws->rope_sin + pos * half, false);
        }
    }
}

/* ---- the pass ---------------------------------------------------------------------------- */

/* x [rows, dim] = the pass's token embeddings (× √dim for Gemma). */
static fipsc_status embed_tokens(const fipsc_llama *view, const llama_pass *p, int rows, float *x, fipsc_error *err)
{
    const fipsc_config *c = &view->cfg;
    const int dim = c->dim, vocab = c->vocab_size;
    for (int r = 0; r < rows; r++) {
        int32_t tok = p->tokens[r];
        if (tok < 0 || tok >= vocab)
            return fipsc_fail(err, FIPSC_ERR_ARG,
                              "token id %d (sequence %d, position %d) is outside the vocabulary [0, %d)",
                              (int)tok, r / p->len, p->start_pos + r % p->len, vocab);
        fipsc_linear_weight_row(&view->tok_embeddings, tok, x + (size_t)r * dim);
    }
    if (c->gemma) { /* Gemma: embeddings × √dim (transformers' normalizer, in float32) */
        const float scale = sqrtf((float)dim);
        for (size_t i = 0; i < (size_t)rows * dim; i++) x[i] *= scale;
    }
    return FIPSC_OK;
}

fipsc_status llama_run(const fipsc_model *m, llama_workspace *ws, const llama_pass *p,
                       fipsc_error *err)
{
    const fipsc_llama *view = fipsc_model_llama(m);
    const fipsc_config *c = &view->cfg;
    const int dim = c->dim, hd = c->head_dim, vocab = c->vocab_size;
    const int rows = p->batch * p->len;
    const size_t kv_dim = (size_t)c->n_kv_heads * hd, q_dim = (size_t)c->n_heads * hd;
    fipsc_status st;

    if (rows > ws->rows_cap || p->start_pos + p->len > ws->ctx_cap || omp_get_max_threads() > ws->score_threads)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "runtime workspace too small for the pass");

    /* The blocks to run: all of them for logits or a cache; for a capture, up to its deepest
     * block — or, streaming, the stream's range, from the residual it holds (residual_stream.h). */
    fipsc_forward_span span;
    if ((st = fipsc_capture_forward_span(p->capture, p->logits || p->k_cache, c->n_layers, rows, dim, &span, err)))
        return st;
    if (span.first > 0) fipsc_residual_stream_load(span.stream, span.at, rows, ws->x);
    else if ((st = embed_tokens(view, p, rows, ws->x, err))) return st;

    for (int l = span.first; l <= span.last; l++) {
        const fipsc_llama_layer *L = &view->layers[l];
        float *k, *v;
        size_t seq_stride;
        if (p->k_cache) { /* cache [n_layers, batch, cache_rows, kv_dim] */
            size_t layer_off = (size_t)l * p->batch * p->cache_rows * kv_dim;
            k = p->k_cache + layer_off;
            v = p->v_cache + layer_off;
            seq_stride = (size_t)p->cache_rows * kv_dim;
        } else {
            k = ws->k;
            v = ws->v;
            seq_stride = (size_t)p->len * kv_dim;
        }
        /* The new keys and values: with one sequence straight into the cache after the old
         * ones; with several (a lockstep session) into ws->k/ws->v, then each row to its own
         * sequence's cache. */
        const bool scatter = p->k_cache && p->batch > 1;
        float *k_new = scatter ? ws->k : k + (size_t)p->start_pos * kv_dim;
        float *v_new = scatter ? ws->v : v + (size_t)p->start_pos * kv_dim;

        fipsc_rmsnorm(ws->x, L->attn_norm, ws->xn, rows, dim, c->norm_eps);
        if ((st = fipsc_linear_apply(&L->q, rows, ws->xn, ws->q, err)) ||
            (st = fipsc_linear_apply(&L->k, rows, ws->xn, k_new, err)) ||
            (st = fipsc_linear_apply(&L->v, rows, ws->xn, v_new, err)))
            return st;
        rope_rows(ws->q, rows, c->n_heads, hd, ws, p->len, p->start_pos);
        rope_rows(k_new, rows, c->n_kv_heads, hd, ws, p->len, p->start_pos);
        for (int r = 0; scatter && r < rows; r++) {
            const size_t at = (size_t)(r / p->len) * seq_stride + (size_t)(p->start_pos + r % p->len) * kv_dim;
            memcpy(k + at, k_new + (size_t)r * kv_dim, kv_dim * sizeof *k);
            memcpy(v + at, v_new + (size_t)r * kv_dim, kv_dim * sizeof *v);
        }
        const fipsc_causal_attention att = {.q = ws->q, .k = k, .v = v, .out = ws->att, .q_stride = q_dim,
                                            .out_stride = q_dim, .seq_stride = seq_stride, .kv_stride = (int)kv_dim,
                                            .heads = c->n_heads, .kv_heads = c->n_kv_heads, .hd = hd, .len = p->len,
                                            .start_pos = p->start_pos,
                                            .scale = c->query_pre_attn_scalar > 0 ? (float)(1.0 / sqrt((double)c->query_pre_attn_scalar))
                                                                                    : 1.0f / sqrtf((float)hd),
                                            .window = L->window, .softcap = c->attn_softcap};
        fipsc_attention_causal(&att, rows, ws->scores, ws->ctx_cap);
        if (L->post_attn_norm) { /* Gemma-2: x += post_attn_norm(o·att) */
            if ((st = fipsc_linear_apply(&L->o, rows, ws->att, ws->mlp_out, err))) return st;
            fipsc_rmsnorm(ws->mlp_out, L->post_attn_norm, ws->xn, rows, dim, c->norm_eps);
            fipsc_residual_add(ws->x, ws->xn, (size_t)rows * dim);
        } else if ((st = fipsc_linear_apply_add(&L->o, rows, ws->att, ws->x, err))) {
            return st;
        }

        fipsc_rmsnorm(ws->x, L->ffn_norm, ws->xn, rows, dim, c->norm_eps);
        if ((st = fipsc_mlp_forward(&L->mlp, rows, ws->xn, ws->mlp_out, ws->mlp_scratch, err)))
            return fipsc_fail_context(err, "layer %d MLP: ", l);
        fipsc_capture_layer *cl = fipsc_capture_find(p->capture, l);
        if (cl && (st = fipsc_capture_append(p->capture, cl, ws->xn, ws->mlp_out, rows, err))) return st;
        if (L->post_ffn_norm) { /* Gemma-2: x += post_ffn_norm(mlp(...)); the MLP's own output is what FiPS fits */
            fipsc_rmsnorm(ws->mlp_out, L->post_ffn_norm, ws->xn, rows, dim, c->norm_eps);
            fipsc_residual_add(ws->x, ws->xn, (size_t)rows * dim);
        } else {
            fipsc_residual_add(ws->x, ws->mlp_out, (size_t)rows * dim);
        }
    }
    if (span.stream) fipsc_residual_stream_store(span.stream, span.at, rows, ws->x);
    if (!p->logits) return FIPSC_OK;

    /* Head: all rows, or the last row of each sequence gathered into xn's first rows. */
    int head_rows = rows;
    if (p->last_only) {
        head_rows = p->batch;
        for (int b = 0; b < p->batch; b++)
            fipsc_rmsnorm(ws->x + ((size_t)b * p->len + p->len - 1) * dim, view->final_norm,
                         ws->xn + (size_t)b * dim, 1, dim, c->norm_eps);
    } else {
        fipsc_rmsnorm(ws->x, view->final_norm, ws->xn, rows, dim, c->norm_eps);
    }
    if ((st = fipsc_linear_apply(&view->lm_head, head_rows, ws->xn, p->logits, err))) return st;
    if (c->final_softcap > 0) { /* Gemma-2: logits ← cap·tanh(logits / cap) */
        const float cap = c->final_softcap;
        for (size_t i = 0; i < (size_t)head_rows * vocab; i++) p->logits[i] = cap * tanhf(p->logits[i] / cap);
    }
    return FIPSC_OK;
}

fipsc_status fipsc_llama_forward(const fipsc_model *m, const int32_t *tokens, int batch, int len,
                                 float *logits, fipsc_capture *capture, fipsc_error *err)
{
    fipsc_status st = llama_check_model(m, err);
    if (st) return st;
    if (batch <= 0 || len <= 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "forward over %d sequences of %d tokens (both must be positive)",
                          batch, len);
    const int context = fipsc_model_llama(m)->cfg.max_seq_len;
    if (context > 0 && len > context)
        return fipsc_fail(err, FIPSC_ERR_ARG, "sequences of %d tokens exceed the model's context of %d positions",
                          len, context);
    if ((long long)batch * len > (1LL << 24))
        return fipsc_fail(err, FIPSC_ERR_ARG, "forward over %lld token rows at once is too many (at most %d)",
                          (long long)batch * len, 1 << 24);
    llama_workspace ws = {0};
    if (!(st = llama_workspace_reserve(&ws, m, batch * len, len, err))) {
        llama_pass pass = {.tokens = tokens, .batch = batch, .len = len, .logits = logits, .capture = capture};
        st = llama_run(m, &ws, &pass, err);
    }
    llama_workspace_free(&ws);
    return st;
}
