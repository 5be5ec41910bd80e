/* The GPT-2 forward (see src/families/gpt2/gpt2.h): batched prefill over many token rows, and
 * KV-cached decoding sessions, built on the shared kernels (src/ops/).
 *
 * One pass runs `batch` sequences of `len` new tokens starting at position start_pos; rows are
 * sequence-major ([batch·len, E]). Per block:
 *   xn  = LN_1(x)                          fipsc_layernorm, PyTorch's arithmetic (FIPSC_LN_DOUBLE)
 *   qkv = c_attn(xn)       [rows, 3E]      one GEMM; row = [q | k | v]
 *   k, v of the new rows   -> the cache    ([n_layers, max_len, E] each; stateless: this pass only)
 *   att = causal attention [rows, E]       fipsc_attention_row per (row, head), over positions
 *                                          0 .. its own
 *   x  += attn.c_proj(att)
 *   xn  = LN_2(x);  y = MLP(xn);  x += y   fipsc_mlp_forward (a compressed MLP runs its factored
 *                                          kernels); capture records (xn, y)
 * Every number is computed by one thread in a fixed order: the thread count changes nothing. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "families/gpt2/gpt2.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/mlp_forward.h"
#include "ops/norm.h"


typedef struct workspace {
    int rows_cap, ctx_cap, score_threads;
    float *x, *xn;           /* [rows, E] */
    float *qkv;              /* [rows, 3E] */
    float *att;              /* [rows, E] */
    float *mlp_out;          /* [rows, E] */
    float *mlp_scratch;      /* fipsc_mlp_scratch_floats(rows) */
    float *k, *v;            /* [rows, E]: keys/values of a stateless pass */
    float *scores;           /* [score_threads, ctx_cap] */
} workspace;

typedef struct pass {
    const int32_t *tokens; /* [batch, len] */
    int batch, len, start_pos;
    float *k_cache, *v_cache; /* sessions (batch 1): [n_layers, cache_rows, E]; NULL: stateless */
    int cache_rows;
    float *logits;            /* NULL, [batch·len, vocab], or [batch, vocab] when last_only */
    bool last_only;
    fipsc_capture *capture;
} pass;

static fipsc_status grow(float **p, size_t n, fipsc_error *err)
{
    float *q = realloc(*p, (n ? n : 1) * sizeof *q);
    if (!q) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the runtime's scratch (%zu floats)", n);
    *p = q;
    return FIPSC_OK;
}

static fipsc_status reserve(workspace *ws, const fipsc_gpt2 *v, int rows, int ctx, fipsc_error *err)
{
    const size_t E = (size_t)v->cfg.dim, r = (size_t)rows;
    fipsc_status st;
    if (rows > ws->rows_cap) {
        size_t mlp = 0;
        for (int l = 0; l < v->cfg.n_layers; l++) {
            size_t need = fipsc_mlp_scratch_floats(&v->blocks[l].mlp, rows);
            if (need > mlp) mlp = need;
        }
        if ((st = grow(&ws->x, r * E, err)) || (st = grow(&ws->xn, r * E, err)) ||
            (st = grow(&ws->qkv, 3 * r * E, err)) || (st = grow(&ws->att, r * E, err)) ||
            (st = grow(&ws->mlp_out, r * E, err)) || (st = grow(&ws->mlp_scratch, mlp, err)) ||
            (st = grow(&ws->k, r * E, err)) || (st = grow(&ws->v, r * E, err)))
            return st;
        ws->rows_cap = rows;
    }
    const int threads = omp_get_max_threads();
    if (ctx > ws->ctx_cap || threads > ws->score_threads) {
        const int new_ctx = ctx > ws->ctx_cap ? ctx : ws->ctx_cap;
        if ((st = grow(&ws->scores, (size_t)threads * new_ctx, err))) return st;
        ws->ctx_cap = new_ctx;
        ws->score_threads = threads;
    }
    return FIPSC_OK;
}

static void workspace_free(workspace *ws)
{
    free(ws->x);
    free(ws->xn);
    free(ws->qkv);
    free(ws->att);
    free(ws->mlp_out);
    free(ws->mlp_scratch);
    free(ws->k);
    free(ws->v);
    free(ws->scores);
    memset(ws, 0, sizeof *ws);
}

static fipsc_status run(const fipsc_model *m, workspace *ws, const pass *p, fipsc_error *err)
{
    const fipsc_gpt2 *v = fipsc_model_gpt2(m);
    const fipsc_gpt2_config *c = &v->cfg;
    const int E = c->dim, rows = p->batch * p->len;
    const size_t row_bytes = (size_t)E * sizeof(float);
    fipsc_status st;

    /* The blocks to run: all of them for logits or a cache; for a capture, up to its deepest
     * block — or, streaming, the stream's range, from the residual it holds (residual_stream.h). */
    fipsc_forward_span span;
    if ((st = fipsc_capture_forward_span(p->capture, p->logits || p->k_cache, c->n_layers, rows, E, &span, err)))
        return st;
    if (span.first > 0) fipsc_residual_stream_load(span.stream, span.at, rows, ws->x);
    else /* x = wte[token] + wpe[position] */
        for (int r = 0; r < rows; r++) {
            const int32_t tok = p->tokens[r];
            const int pos = p->start_pos + r % p->len;
            if (tok < 0 || tok >= c->vocab_size)
                return fipsc_fail(err, FIPSC_ERR_ARG, "token id %d (sequence %d, position %d) is outside the vocabulary [0, %d)",
                                  (int)tok, r / p->len, pos, c->vocab_size);
            float *x = ws->x + (size_t)r * E;
            const float *te = v->wte + (size_t)tok * E, *pe = v->wpe + (size_t)pos * E;
            for (int i = 0; i < E; i++) x[i] = te[i] + pe[i];
        }

    for (int l = span.first; l <= span.last; l++) {
        const fipsc_gpt2_block *B = &v->blocks[l];
        float *k = ws->k, *vv = ws->v;
        size_t seq_stride = (size_t)p->len * E;
        if (p->k_cache) { /* batch 1: the new keys go into the cache after the old ones */
            k = p->k_cache + (size_t)l * p->cache_rows * E;
            vv = p->v_cache + (size_t)l * p->cache_rows * E;
            seq_stride = 0;
        }
        fipsc_layernorm(ws->x, ws->xn, rows, E, B->ln_1_w, B->ln_1_b, c->ln_eps, FIPSC_LN_DOUBLE, NULL, NULL);
        if ((st = fipsc_linear_apply(&B->c_attn, rows, ws->xn, ws->qkv, err))) return st;
        for (int r = 0; r < rows; r++) { /* row r's key/value at its place: position start_pos + r (batch 1) or r */
            const size_t at = p->k_cache ? (size_t)(p->start_pos + r) : (size_t)r;
            memcpy(k + at * E, ws->qkv + (size_t)r * 3 * E + E, row_bytes);
            memcpy(vv + at * E, ws->qkv + (size_t)r * 3 * E + 2 * (size_t)E, row_bytes);
        }
        float scale = c->scale_attn ? 1.0f / sqrtf((float)c->head_dim) : 1.0f;
        if (c->scale_by_layer) scale /= (float)(l + 1);
        const fipsc_causal_attention att = {.q = ws->qkv, .k = k, .v = vv, .out = ws->att, .q_stride = 3 * (size_t)E,
                                            .out_stride = (size_t)E, .seq_stride = seq_stride, .kv_stride = E,
                                            .heads = c->n_heads, .kv_heads = c->n_heads, .hd = c->head_dim,
                                            .len = p->len, .start_pos = p->start_pos, .scale = scale};
        fipsc_attention_causal(&att, rows, ws->scores, ws->ctx_cap);
        if ((st = fipsc_linear_apply_add(&B->attn_proj, rows, ws->att, ws->x, err))) return st;

        fipsc_layernorm(ws->x, ws->xn, rows, E, B->ln_2_w, B->ln_2_b, c->ln_eps, FIPSC_LN_DOUBLE, NULL, NULL);
        if ((st = fipsc_mlp_forward(&B->mlp, rows, ws->xn, ws->mlp_out, ws->mlp_scratch, err)))
            return fipsc_fail_context(err, "block %d MLP: ", l);
        fipsc_capture_layer *cl = fipsc_capture_find(p->capture, l);
        if (cl && (st = fipsc_capture_append(p->capture, cl, ws->xn, ws->mlp_out, rows, err))) return st;
        fipsc_residual_add(ws->x, ws->mlp_out, (size_t)rows * E);
    }
    if (span.stream) fipsc_residual_stream_store(span.stream, span.at, rows, ws->x);
    if (!p->logits) return FIPSC_OK;

    /* Head: all rows, or the last row of each sequence gathered into xn's first rows. */
    int head_rows = rows;
    if (p->last_only) {
        head_rows = p->batch;
        for (int b = 0; b < p->batch; b++)
            fipsc_layernorm(ws->x + ((size_t)b * p->len + p->len - 1) * E, ws->xn + (size_t)b * E, 1, E, v->ln_f_w,
                            v->ln_f_b, c->ln_eps, FIPSC_LN_DOUBLE, NULL, NULL);
    } else {
        fipsc_layernorm(ws->x, ws->xn, rows, E, v->ln_f_w, v->ln_f_b, c->ln_eps, FIPSC_LN_DOUBLE, NULL, NULL);
    }
    const fipsc_linear head = {.out = c->vocab_size, .in = E, .w = v->lm_head,
                               .weight_name = v->lm_head == v->wte ? "transformer.wte.weight (tied head)" : "lm_head.weight"};
    return fipsc_linear_apply(&head, head_rows, ws->xn, p->logits, err);
}

static fipsc_status check_model(const fipsc_model *m, fipsc_error *err)
{
    const fipsc_gpt2 *v = fipsc_model_gpt2(m);
    if (!v || !v->blocks || !v->wte)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: not a bound GPT-2 model (architecture '%s')",
                          m->source_path[0] ? m->source_path : "model", m->arch_name);
    return FIPSC_OK;
}

fipsc_status fipsc_gpt2_forward(const fipsc_model *m, const int32_t *tokens, int batch, int len, float *logits,
                                fipsc_capture *capture, fipsc_error *err)
{
    fipsc_status st = check_model(m, err);
    if (st) return st;
    const fipsc_gpt2 *v = fipsc_model_gpt2(m);
    if (batch <= 0 || len <= 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "forward over %d sequences of %d tokens (both must be positive)", batch,
                          len);
    if (len > v->cfg.n_positions)
        return fipsc_fail(err, FIPSC_ERR_ARG, "sequences of %d tokens exceed the model's %d positions", len,
                          v->cfg.n_positions);
    if ((long long)batch * len > (1LL << 24))
        return fipsc_fail(err, FIPSC_ERR_ARG, "forward over %lld token rows at once is too many (at most %d)",
                          (long long)batch * len, 1 << 24);
    workspace ws = {0};
    if (!(st = reserve(&ws, v, batch * len, len, err))) {
        const pass p = {.tokens = tokens, .batch = batch, .len = len, .logits = logits, .capture = capture};
        st = run(m, &ws, &p, err);
    }
    workspace_free(&ws);
    return st;
}

/* ------------------------------------------------------------------ sessions */

struct fipsc_gpt2_session {
    const fipsc_model *m;
    int max_len, pos;
    float *k_cache, *v_cache; /* [n_layers, max_len, E] */
    workspace ws;
};

fipsc_status fipsc_gpt2_session_new(const fipsc_model *m, int max_len, fipsc_gpt2_session **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_status st = check_model(m, err);
    if (st) return st;
    const fipsc_gpt2_config *c = &fipsc_model_gpt2(m)->cfg;
    if (max_len == 0) max_len = c->n_positions;
    if (max_len < 0 || max_len > c->n_positions)
        return fipsc_fail(err, FIPSC_ERR_ARG, "a session of %d positions is impossible: the model has %d positions",
                          max_len, c->n_positions);
    fipsc_gpt2_session *s = calloc(1, sizeof *s);
    if (!s) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a decoding session");
    s->m = m;
    s->max_len = max_len;
    const size_t cache = (size_t)c->n_layers * max_len * c->dim;
    s->k_cache = malloc(cache * sizeof(float));
    s->v_cache = malloc(cache * sizeof(float));
    if (!s->k_cache || !s->v_cache) {
        fipsc_gpt2_session_free(s);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a KV cache of %d positions (%zu MiB)", max_len,
                          2 * cache * sizeof(float) >> 20);
    }
    if ((st = reserve(&s->ws, fipsc_model_gpt2(m), 1, max_len, err))) {
        fipsc_gpt2_session_free(s);
        return st;
    }
    *out = s;
    return FIPSC_OK;
}

void fipsc_gpt2_session_free(fipsc_gpt2_session *s)
{
    if (!s) return;
    free(s->k_cache);
    free(s->v_cache);
    workspace_free(&s->ws);
    free(s);
}

void fipsc_gpt2_session_reset(fipsc_gpt2_session *s) { s->pos = 0; }

fipsc_status fipsc_gpt2_session_prefill(fipsc_gpt2_session *s, const int32_t *tokens, int n, float *last_logits,
                                        fipsc_error *err)
{
    if (n <= 0) return fipsc_fail(err, FIPSC_ERR_ARG, "feeding %d tokens to a session", n);
    if (n > s->max_len - s->pos)
        return fipsc_fail(err, FIPSC_ERR_ARG, "feeding %d tokens at position %d overflows the session's %d positions", n,
                          s->pos, s->max_len);
    /* Reserving again also picks up a thread count raised since the session was made. */
    fipsc_status st = reserve(&s->ws, fipsc_model_gpt2(s->m), n, s->max_len, err);
    if (st) return st;
    const pass p = {.tokens = tokens, .batch = 1, .len = n, .start_pos = s->pos, .k_cache = s->k_cache,
                    .v_cache = s->v_cache, .cache_rows = s->max_len, .logits = last_logits, .last_only = true};
    if ((st = run(s->m, &s->ws, &p, err))) return st;
    s->pos += n;
    return FIPSC_OK;
}
