/* The Universal Sentence Encoder Lite forward (the network is in src/families/use/use.h).
 *
 * Sentences go through in consecutive chunks of at most CHUNK_ROWS tokens, cut by the input order
 * alone. Inside a chunk every sentence's tokens are rows of one matrix: projections and MLPs are
 * single GEMMs over all rows, the attention is two small GEMMs per (sentence, head) around a
 * softmax, and the timing signal, norms and pooling are plain loops. Threads take whole chunks,
 * and BLAS runs single-threaded throughout:
 * OpenBLAS's multithreaded sgemm rounds differently with different thread counts (it splits the
 * work into differently blocked pieces), whereas one thread per GEMM gives every number the same
 * bits whatever the thread count. A lone chunk still spreads its loops over the threads.
 *
 * Four shortcuts, exact up to float rounding:
 *   - the last layer's fc2 runs once per sentence on the mean hidden activations (mlp_block_pooled),
 *   - a ReLU MLP's dense fc2 skips the hidden activations that are zero (sparse_down),
 *   - q, k and v come out of one GEMM with the three weights stacked (use_encode_prepare),
 *   - dense GEMMs start from the bias (linear).
 * The MLPs go through fipsc_mlp_forward / fipsc_linear_apply whenever a slot is not a dense
 * matrix, so compressed (factored) MLP weights run unchanged.
 *
 * Float32 throughout like the TF.js graph, with its association where it matters: the query is
 * scaled before the dot products, the embedding is added as e + (e + timing), LayerNorm computes
 * the mean first and then the variance of the centred values.
 *
 * This file holds the forward of one chunk; encoder_batch.c cuts the sentences into chunks, runs
 * them on threads and holds the entry points, the two sharing src/families/use/encoder_internal.h. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/linear.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/mlp_forward.h"
#include "families/use/use.h"
#include "families/use/encoder_internal.h"

/* ------------------------------------------------------------------ prepared weights */

/* A ReLU MLP with a dense fc2 leaves most hidden activations exactly zero (93% of them on STS-B
 * for this model), so its fc2 can skip them: see sparse_down. */
static bool sparse_down_applies(const fipsc_mlp *mlp)
{
    return mlp->kind == FIPSC_MLP_PLAIN && mlp->act == FIPSC_ACT_RELU && mlp->down.w && !mlp->down.factored &&
           mlp->down.out == mlp->d && mlp->down.in == mlp->f;
}

void use_encode_prepared_free(const fipsc_use *u, prepared *p)
{
    for (int l = 0; l < u->n_layers; l++) {
        if (p->down_t) free(p->down_t[l]);
        if (p->qkv) {
            free((float *)p->qkv[l].w);
            free((float *)p->qkv[l].bias);
        }
    }
    free(p->down_t);
    free(p->qkv);
}

fipsc_status use_encode_prepare(const fipsc_use *u, prepared *p, fipsc_error *err)
{
    p->down_t = calloc((size_t)u->n_layers, sizeof *p->down_t);
    p->qkv = calloc((size_t)u->n_layers, sizeof *p->qkv);
    if (!p->down_t || !p->qkv) goto nomem;
    for (int l = 0; l < u->n_layers; l++) {
        const fipsc_use_layer *L = &u->layers[l];
        const fipsc_mlp *mlp = &L->mlp;
        if (sparse_down_applies(mlp)) {
            if (!(p->down_t[l] = malloc((size_t)mlp->f * (size_t)mlp->d * sizeof(float)))) goto nomem;
            const float *wd = mlp->down.w; /* [d, f] */
            for (int i = 0; i < mlp->d; i++)
                for (int j = 0; j < mlp->f; j++) p->down_t[l][(size_t)j * mlp->d + i] = wd[(size_t)i * mlp->f + j];
        }
        const fipsc_linear *parts[3] = {&L->q, &L->k, &L->v};
        bool stackable = true;
        for (int i = 0; i < 3; i++) stackable &= parts[i]->w && !parts[i]->factored && parts[i]->bias;
        if (!stackable) continue;
        const size_t block = (size_t)L->d_in * L->d_in;
        float *wq = malloc(3 * block * sizeof *wq), *bq = malloc(3 * (size_t)L->d_in * sizeof *bq);
        p->qkv[l] = (fipsc_linear){.out = 3 * L->d_in, .in = L->d_in, .w = wq, .bias = bq,
                                   .weight_name = L->q.weight_name};
        if (!wq || !bq) goto nomem;
        for (int i = 0; i < 3; i++) {
            memcpy(wq + i * block, parts[i]->w, block * sizeof *wq);
            memcpy(bq + (size_t)i * L->d_in, parts[i]->bias, (size_t)L->d_in * sizeof *bq);
        }
    }
    return FIPSC_OK;
nomem:
    use_encode_prepared_free(u, p);
    memset(p, 0, sizeof *p);
    return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory preparing the encoder's weights");
}

/* ------------------------------------------------------------------ steps */

/* x[r] = e + (e + timing(t)) for each token row: e = W_emb[id], t its position in the sentence,
 * timing(t) = [sin(t·τ_j) for j < E/2, cos(t·τ_j) for j < E/2]. */
void fipsc_use_embed_tokens(const fipsc_use *u, int n, const int32_t *const *ids, const int *offset, float *x)
{
    const int E = u->embed_dim, half = E / 2;
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < offset[i + 1] - offset[i]; t++) {
            const float *e = u->word_embeddings + (size_t)ids[i][t] * E;
            float *row = x + (size_t)(offset[i] + t) * E;
            const float pos = (float)t;
            for (int j = 0; j < half; j++) {
                float angle = pos * u->inv_timescales[j];
                row[j] = e[j] + (e[j] + sinf(angle));
                row[half + j] = e[half + j] + (e[half + j] + cosf(angle));
            }
        }
    }
}



/* a = per sentence and head: softmax((scale·q)·kᵀ)·v. q, k, v are rows of stride ld (heads·hd
 * wide each), a has rows of heads·hd. Each sentence attends only to its own tokens (the graph
 * masks other positions with −1e9: weight exactly 0). q is scaled in place first, as the graph
 * does; the two products run on (single-threaded) BLAS, the softmax in between. */
static fipsc_status attention(int n, const int *offset, int heads, int hd, float *q, const float *k,
                              const float *v, int ld, float *a, int max_len, fipsc_error *err)
{
    const int dw = heads * hd, threads = omp_get_max_threads(), per = max_len * max_len;
    const float scale = (float)(1.0 / sqrt((double)hd));
    float *scratch = malloc((size_t)threads * (size_t)per * sizeof *scratch);
    if (!scratch) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for attention scratch");
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int job = 0; job < n * heads; job++) {
        const int i = job / heads, h = job % heads, base = offset[i], len = offset[i + 1] - base;
        if (len == 0) continue;
        float *p = scratch + (size_t)omp_get_thread_num() * per; /* [len, len] */
        float *qh = q + (size_t)base * ld + h * hd;
        const float *kh = k + (size_t)base * ld + h * hd, *vh = v + (size_t)base * ld + h * hd;
        for (int t = 0; t < len; t++)
            for (int j = 0; j < hd; j++) qh[(size_t)t * ld + j] *= scale;
        fipsc_attention_span(len, hd, 1.0f, false, qh, kh, vh, ld, p, a + (size_t)base * dw + h * hd, dw);
    }
    free(scratch);
    return FIPSC_OK;
}

/* Rows per block of sparse_down: the block's outputs (128 × d floats, 256 KiB) stay in L2. */
enum { DOWN_BLOCK = 128 };

/* fc2 of a ReLU MLP over rows of pre-activations h [rows, f], skipping the zeros:
 *   y[r] = Σ_{j : relu(h[r,j]) > 0} relu(h[r,j]) · Wᵀ[j, :]  + b
 * with Wᵀ [f, d] the transposed fc2 weight. Memory, not arithmetic, is the cost here (Wᵀ is 3 MB,
 * and each row of h needs ~7% of its rows), so the rows go in blocks of DOWN_BLOCK: the block's
 * nonzeros are gathered by column j, and each needed row Wᵀ[j, :] is read once per block and added
 * into every output row of the block that uses it. The same sum as the GEMM over the nonzero
 * terms only, in increasing j, then the bias. */
static fipsc_status sparse_down(const float *h, int rows, int f, const float *wt, const float *bias, int d,
                                float *y, fipsc_error *err)
{
    const int threads = omp_get_max_threads(), blocks = (rows + DOWN_BLOCK - 1) / DOWN_BLOCK;
    const size_t per = (size_t)f + 1 + 2 * (size_t)DOWN_BLOCK * f; /* col_start, row_of, value */
    int *scratch = malloc((size_t)threads * per * sizeof *scratch);
    if (!scratch) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the sparse fc2");
#pragma omp parallel for schedule(static) num_threads(threads) if (blocks > 1)
    for (int blk = 0; blk < blocks; blk++) {
        const int r0 = blk * DOWN_BLOCK, r1 = r0 + DOWN_BLOCK < rows ? r0 + DOWN_BLOCK : rows;
        int *col_start = scratch + (size_t)omp_get_thread_num() * per, *row_of = col_start + f + 1;
        float *value = (float *)(row_of + (size_t)DOWN_BLOCK * f);
        /* gather the block's nonzeros by column (rows increasing within a column) */
        memset(col_start, 0, ((size_t)f + 1) * sizeof *col_start);
        for (int r = r0; r < r1; r++) {
            const float *hr = h + (size_t)r * f;
            for (int j = 0; j < f; j++) col_start[j + 1] += hr[j] > 0.0f; /* relu(h) != 0 */
        }
        for (int j = 0; j < f; j++) col_start[j + 1] += col_start[j];
        for (int r = r0; r < r1; r++) {
            const float *hr = h + (size_t)r * f;
            for (int j = 0; j < f; j++)
                if (hr[j] > 0.0f) {
                    row_of[col_start[j]] = r;
                    value[col_start[j]++] = hr[j];
                }
        }
        for (int j = f; j > 0; j--) col_start[j] = col_start[j - 1]; /* undo the fill's advance */
        col_start[0] = 0;
        for (int r = r0; r < r1; r++) memset(y + (size_t)r * d, 0, (size_t)d * sizeof *y);
        for (int j = 0; j < f; j++) {
            const float *wj = wt + (size_t)j * d;
            for (int e = col_start[j]; e < col_start[j + 1]; e++) {
                const float a = value[e];
                float *yr = y + (size_t)row_of[e] * d;
#pragma omp simd
                for (int k = 0; k < d; k++) yr[k] += a * wj[k];
            }
        }
        if (bias)
            for (int r = r0; r < r1; r++)
                for (int k = 0; k < d; k++) y[(size_t)r * d + k] += bias[k];
    }
    free(scratch);
    return FIPSC_OK;
}

/* y = x·Wᵀ + b (accumulate: y += x·Wᵀ + b) for n rows. A dense weight calls sgemm with the bias
 * already in y and beta = 1, which saves OpenBLAS's beta = 0 pass over y and a separate bias
 * pass; anything else (a factored, compressed weight; one row) goes through fipsc_linear_apply. */
static fipsc_status linear(const fipsc_linear *lin, int n, const float *x, float *y, bool accumulate,
                           fipsc_error *err)
{
    if (!lin->w || lin->factored || n < 2)
        return accumulate ? fipsc_linear_apply_add(lin, n, x, y, err) : fipsc_linear_apply(lin, n, x, y, err);
    const int out = lin->out, in = lin->in;
    if (lin->bias || !accumulate) {
        const float *b = lin->bias;
#pragma omp parallel for schedule(static) if ((long long)n * out > (1 << 16))
        for (int r = 0; r < n; r++) {
            float *row = y + (size_t)r * out;
            if (accumulate)
                for (int i = 0; i < out; i++) row[i] += b[i];
            else if (b)
                memcpy(row, b, (size_t)out * sizeof *row);
            else
                memset(row, 0, (size_t)out * sizeof *row);
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, lin->w, in, 1.0f, y, out);
    return FIPSC_OK;
}

/* The attention half of layer l over the chunk's `rows` token rows: x [rows, d_in] ->
 * out [rows, d] = (R·x + b_R, or x itself) + W_o·MultiHead(LN(x)) + b_o. out == x when the layer
 * has no residual projection (updated in place). */
static fipsc_status attention_block(const fipsc_use *u, int l, int n, const int *offset, int rows,
                                    const float *x, float *out, workspace *w, fipsc_error *err)
{
    const fipsc_use_layer *L = &u->layers[l];
    fipsc_status st;
    if (L->has_residual_projection && (st = linear(&L->residual, rows, x, out, false, err))) return st;
    fipsc_layernorm(x, w->h, rows, L->d_in, L->attn_norm_w, L->attn_norm_b, u->ln_eps, FIPSC_LN_FLOAT32, NULL, NULL);
    /* q | k | v side by side in each row (ld = 3·d_in), or as three blocks of rows (ld = d_in) */
    const int din = L->d_in;
    float *q = w->qkv, *k, *v;
    int ld;
    if (w->prep->qkv[l].w) {
        if ((st = linear(&w->prep->qkv[l], rows, w->h, w->qkv, false, err))) return st;
        k = q + din;
        v = q + 2 * din;
        ld = 3 * din;
    } else {
        k = q + (size_t)rows * din;
        v = k + (size_t)rows * din;
        ld = din;
        if ((st = linear(&L->q, rows, w->h, q, false, err)) || (st = linear(&L->k, rows, w->h, k, false, err)) ||
            (st = linear(&L->v, rows, w->h, v, false, err)))
            return st;
    }
    if ((st = attention(n, offset, L->n_heads, L->head_dim, q, k, v, ld, w->a, u->max_tokens, err)))
        return st;
    return linear(&L->o, rows, w->a, out, true, err);
}

/* The MLP half: x [rows, d] += MLP(LN(x)); the MLP's rows are kept when layer l is captured. */
static fipsc_status mlp_block(const fipsc_use *u, int l, int rows, float *x, workspace *w, fipsc_error *err)
{
    const fipsc_use_layer *L = &u->layers[l];
    fipsc_status st;
    fipsc_layernorm(x, w->h, rows, u->dim, L->mlp_norm_w, L->mlp_norm_b, u->ln_eps, FIPSC_LN_FLOAT32, NULL, NULL);
    if (w->prep->down_t[l]) {
        if ((st = linear(&L->mlp.up, rows, w->h, w->mlp, false, err)) ||
            (st = sparse_down(w->mlp, rows, L->mlp.f, w->prep->down_t[l], L->mlp.down.bias, u->dim, w->y, err)))
            return st;
    } else if ((st = fipsc_mlp_forward(&L->mlp, rows, w->h, w->y, w->mlp, err))) {
        return st;
    }
    for (int i = 0; i < w->n_cap; i++)
        if (w->cap_layer[i] == l) {
            memcpy(w->cap_x[i], w->h, (size_t)rows * u->dim * sizeof(float));
            memcpy(w->cap_y[i], w->y, (size_t)rows * u->dim * sizeof(float));
            w->cap_rows[i] = rows;
        }
    const size_t total = (size_t)rows * (size_t)u->dim;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (size_t i = 0; i < total; i++) x[i] += w->y[i];
    return FIPSC_OK;
}

/* pooled[i] = the mean of sentence i's rows of x [rows, d] (zero for an empty sentence). */
static void mean_pool(int n, const int *offset, const float *x, int d, float *pooled)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *p = pooled + (size_t)i * d;
        const int len = offset[i + 1] - offset[i];
        for (int j = 0; j < d; j++) p[j] = 0.0f;
        for (int t = 0; t < len; t++) {
            const float *row = x + (size_t)(offset[i] + t) * d;
            for (int j = 0; j < d; j++) p[j] += row[j];
        }
        const float div = (float)(len > 1 ? len : 1);
        for (int j = 0; j < d; j++) p[j] /= div;
    }
}

/* The MLP half of the last layer followed by the pooling, when only the pooled mean is needed:
 *   mean_t(x_t + fc2·relu(fc1·LN(x_t) + b1) + b2) = mean_t(x_t) + fc2·mean_t(relu(fc1·LN(x_t) + b1)) + b2
 * because fc2 is linear, so fc2 runs once per sentence instead of once per token (a sixth of the
 * encoder's arithmetic). Any linear slot works, dense or factored. */
static fipsc_status mlp_block_pooled(const fipsc_use *u, int l, int n, const int *offset, int rows,
                                     const float *x, workspace *w, fipsc_error *err)
{
    const fipsc_mlp *mlp = &u->layers[l].mlp;
    const int d = u->dim, f = mlp->f;
    fipsc_status st;
    fipsc_layernorm(x, w->h, rows, d, u->layers[l].mlp_norm_w, u->layers[l].mlp_norm_b, u->ln_eps, FIPSC_LN_FLOAT32, NULL, NULL);
    if ((st = linear(&mlp->up, rows, w->h, w->mlp, false, err))) return st;
    const size_t total = (size_t)rows * (size_t)f;
    const long long chunks = (long long)((total + 4095) / 4096);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (long long c = 0; c < chunks; c++) {
        size_t lo = (size_t)c * 4096, len = total - lo < 4096 ? total - lo : 4096;
        fipsc_activation_apply(mlp->act, w->mlp + lo, w->mlp + lo, len);
    }
    mean_pool(n, offset, w->mlp, f, w->hmean);
    mean_pool(n, offset, x, d, w->pooled);
    if ((st = fipsc_linear_apply(&mlp->down, n, w->hmean, w->y, err))) return st;
    for (int i = 0; i < n; i++) {
        if (offset[i + 1] == offset[i]) continue; /* no tokens: the pooled state stays zero */
        float *p = w->pooled + (size_t)i * d;
        const float *y = w->y + (size_t)i * d;
        for (int j = 0; j < d; j++) p[j] += y[j];
    }
    return FIPSC_OK;
}

/* Embeds sentences [0, n) of the chunk into out [n, d]. */
fipsc_status use_encode_chunk(const fipsc_use *u, int n, const int32_t *const *ids, const int *lens,
                              float *out, workspace *w, fipsc_error *err)
{
    w->offset[0] = 0;
    for (int i = 0; i < n; i++) w->offset[i + 1] = w->offset[i] + (lens[i] < u->max_tokens ? lens[i] : u->max_tokens);
    const int rows = w->offset[n], d = u->dim;
    const int from = w->stream ? w->stream->from : 0, last = w->stream ? w->stream->to : u->n_layers - 1;
    fipsc_status st;
    if (from > 0) fipsc_residual_stream_load(w->stream, w->stream_at, rows, w->x);
    else fipsc_use_embed_tokens(u, n, ids, w->offset, w->x);
    float *x = w->x;
    for (int i = 0; i < w->n_cap; i++) w->cap_rows[i] = 0;
    for (int l = from; l <= last; l++) {
        /* a layer that changes the width writes into the other buffer */
        float *dst = u->layers[l].has_residual_projection ? (x == w->x ? w->x2 : w->x) : x;
        if ((st = attention_block(u, l, n, w->offset, rows, x, dst, w, err))) return st;
        x = dst;
        bool captured = false;
        for (int i = 0; i < w->n_cap; i++) captured |= w->cap_layer[i] == l;
        const bool pooled_shortcut = l == last && u->layers[l].mlp.kind == FIPSC_MLP_PLAIN && !captured && !w->stream;
        if (pooled_shortcut) {
            if ((st = mlp_block_pooled(u, l, n, w->offset, rows, x, w, err))) return st;
        } else {
            if ((st = mlp_block(u, l, rows, x, w, err))) return st;
            if (l == last && !w->stream) mean_pool(n, w->offset, x, d, w->pooled);
        }
    }
    if (w->stream) { /* the residual goes on to the next pass; no embedding comes out */
        fipsc_residual_stream_store(w->stream, w->stream_at, rows, x);
        return FIPSC_OK;
    }
    /* output: tanh(P·p + b), L2-normalised */
    if ((st = fipsc_linear_apply(&u->pooler, n, w->pooled, out, err))) return st;
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * d;
        float ss = 0.0f;
        for (int j = 0; j < d; j++) {
            o[j] = tanhf(o[j]);
            ss += o[j] * o[j];
        }
        const float scale = 1.0f / sqrtf(ss > u->l2_eps ? ss : u->l2_eps);
        for (int j = 0; j < d; j++) o[j] *= scale;
    }
    return FIPSC_OK;
}
