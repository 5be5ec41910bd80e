/* The ViT / DeiT forward over a batch of images (see src/families/vit/vit.h for the network).
 *
 * Images travel as a matrix of token rows x [rows, d] (image-major), so every projection — patch
 * embedding, q/k/v/o, the MLP, the classifier — is one GEMM over all rows of a chunk
 * (fipsc_linear_apply / fipsc_mlp_forward, which also run FiPS-compressed MLP slots).
 *
 * Threads: a batch is cut into chunks of about CHUNK_ROWS rows (a partition fixed by the batch
 * size and the model). Several chunks run one per OpenMP thread, single-threaded inside: one
 * parallel region per call instead of a dozen per block, which keeps small models from drowning
 * in OpenMP barriers, especially on a busy machine. A lone chunk (one large image, say) runs
 * with LayerNorm row by row, attention (image, head) by (image, head), the elementwise loops and
 * the GEMM panels (src/ops/gemm.h) on OpenMP threads. Every output number is produced by
 * one thread in a fixed order, so the result does not depend on the thread count. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/linear.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/mlp_forward.h"
#include "families/vit/vit.h"

/* Token rows per chunk when a batch is spread over threads (see fipsc_vit_forward). */
enum { CHUNK_ROWS = 256 };


/* Multi-head self-attention over the T tokens of each image, no mask:
 *   ctx_h = softmax(q_h·k_hᵀ / sqrt(hd))·v_h   for every head h (columns h·hd .. h·hd + hd − 1)
 * q, k, v, ctx are [n·T, d]. Each (image, head) is one span (src/ops/attention.h), computed by one
 * thread. */
static fipsc_status attention(const float *q, const float *k, const float *v, float *ctx, int n,
                              int T, int d, int n_heads, fipsc_error *err)
{
    int hd = d / n_heads;
    float scale = 1.0f / sqrtf((float)hd);
    long long tasks = (long long)n * n_heads;
    int failed = 0;
#pragma omp parallel if (tasks > 1)
    {
        float *p = malloc((size_t)T * T * sizeof *p); /* one span's attention weights */
        if (!p) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (long long t = 0; t < tasks; t++) {
            if (!p) continue;
            size_t off = (size_t)(t / n_heads) * T * d + (size_t)(t % n_heads) * hd;
            fipsc_attention_span(T, hd, scale, false, q + off, k + off, v + off, d, p, ctx + off, d);
        }
        free(p);
    }
    if (failed) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory in attention");
    return FIPSC_OK;
}

static fipsc_status get_vit(const fipsc_model *m, const fipsc_vit **v, fipsc_error *err)
{
    *v = fipsc_model_vit(m);
    if (*v) return FIPSC_OK;
    return fipsc_fail(err, FIPSC_ERR_ARG, "%s is not a ViT/DeiT image classifier",
                      m && m->arch_name[0] ? m->arch_name : "the model");
}

static float *alloc_floats(size_t n, fipsc_error *err)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory (%zu floats) in the ViT forward", n);
    return p;
}

fipsc_status fipsc_vit_embed(const fipsc_model *m, const float *pixels, int n, float *x,
                             fipsc_error *err)
{
    const fipsc_vit *v;
    fipsc_status st = get_vit(m, &v, err);
    if (st) return st;
    if (n < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "ViT forward over %d images", n);
    if (n == 0) return FIPSC_OK;
    int C = v->channels, H = v->image_h, W = v->image_w, ph = v->patch_h, pw = v->patch_w;
    int d = v->dim, T = v->n_tokens, P = v->n_prefix, N = v->n_patches, K = C * ph * pw;
    long long rows = (long long)n * N;

    /* im2col: row (img, gy, gx) holds the patch's pixels in (c, i, j) order, matching the
     * convolution weight [d, C, ph, pw] flattened; the stride-p convolution is then a GEMM. */
    float *cols = alloc_floats((size_t)rows * K, err);
    float *emb = cols ? alloc_floats((size_t)rows * d, err) : NULL;
    if (!emb) {
        free(cols);
        return FIPSC_ERR_NOMEM;
    }
#pragma omp parallel for schedule(static) if (rows * K > (1 << 14))
    for (long long r = 0; r < rows; r++) {
        long long img = r / N;
        int patch = (int)(r % N), gy = patch / v->grid_w, gx = patch % v->grid_w;
        float *dst = cols + r * K;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < ph; i++)
                memcpy(dst + (c * ph + i) * pw,
                       pixels + ((img * C + c) * H + (long long)gy * ph + i) * W + (long long)gx * pw,
                       (size_t)pw * sizeof *dst);
    }
    st = fipsc_linear_apply(&v->patch_embed, (int)rows, cols, emb, err);
    free(cols);
    if (st) {
        free(emb);
        return st;
    }
    /* tokens [CLS, (DIST,) patches] + position embeddings */
#pragma omp parallel for schedule(static) if ((long long)n * T * d > (1 << 14))
    for (long long r = 0; r < (long long)n * T; r++) {
        long long img = r / T;
        int t = (int)(r % T);
        const float *src = t == 0 ? v->cls_token : (t < P ? v->dist_token : emb + (img * N + t - P) * d);
        const float *pos = v->pos_embed + (size_t)t * d;
        float *dst = x + r * d;
        for (int i = 0; i < d; i++) dst[i] = src[i] + pos[i];
    }
    free(emb);
    return FIPSC_OK;
}

fipsc_status fipsc_vit_block_forward(const fipsc_model *m, int layer, int n, float *x,
                                     fipsc_capture *capture, fipsc_error *err)
{
    const fipsc_vit *v;
    fipsc_status st = get_vit(m, &v, err);
    if (st) return st;
    if (layer < 0 || layer >= v->n_layers)
        return fipsc_fail(err, FIPSC_ERR_ARG, "block %d does not exist (the model has %d)", layer, v->n_layers);
    if (n < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "ViT forward over %d images", n);
    if (n == 0) return FIPSC_OK;
    const fipsc_vit_block *b = &v->blocks[layer];
    int d = v->dim, T = v->n_tokens;
    long long rows_ll = (long long)n * T;
    if (rows_ll > 0x7fffffff) return fipsc_fail(err, FIPSC_ERR_ARG, "%d images are too many for one batch", n);
    int rows = (int)rows_ll;
    size_t rd = (size_t)rows * d;
    size_t mlp_scratch = fipsc_mlp_scratch_floats(&b->mlp, rows);
    /* xn | q | k | v | ctx (the MLP output reuses q; the MLP scratch follows) */
    float *buf = alloc_floats(5 * rd + mlp_scratch, err);
    if (!buf) return FIPSC_ERR_NOMEM;
    float *xn = buf, *q = buf + rd, *k = buf + 2 * rd, *vv = buf + 3 * rd, *ctx = buf + 4 * rd;
    fipsc_layernorm(x, xn, rows, d, b->ln_before_w, b->ln_before_b, v->ln_eps, FIPSC_LN_DOUBLE, NULL, NULL);
    if ((st = fipsc_linear_apply(&b->q, rows, xn, q, err)) ||
        (st = fipsc_linear_apply(&b->k, rows, xn, k, err)) ||
        (st = fipsc_linear_apply(&b->v, rows, xn, vv, err)) ||
        (st = attention(q, k, vv, ctx, n, T, d, v->n_heads, err)) ||
        (st = fipsc_linear_apply_add(&b->o, rows, ctx, x, err)))
        goto done;
    fipsc_layernorm(x, xn, rows, d, b->ln_after_w, b->ln_after_b, v->ln_eps, FIPSC_LN_DOUBLE, NULL, NULL);
    float *y = q;
    if ((st = fipsc_mlp_forward(&b->mlp, rows, xn, y, buf + 5 * rd, err))) goto done;
    fipsc_capture_layer *cl = fipsc_capture_find(capture, layer);
    if (cl && (st = fipsc_capture_append(capture, cl, xn, y, rows, err))) goto done;
#pragma omp parallel for schedule(static) if (rd > (1 << 14))
    for (size_t i = 0; i < rd; i++) x[i] += y[i];
done:
    free(buf);
    return st;
}

fipsc_status fipsc_vit_head(const fipsc_model *m, int n, const float *x, float *logits,
                            fipsc_error *err)
{
    const fipsc_vit *v;
    fipsc_status st = get_vit(m, &v, err);
    if (st) return st;
    if (n <= 0) return n == 0 ? FIPSC_OK : fipsc_fail(err, FIPSC_ERR_ARG, "ViT head over %d images", n);
    int d = v->dim, T = v->n_tokens, L = v->n_labels;
    bool two = v->kind == FIPSC_VIT_DEIT_TEACHER;
    /* Only the CLS (and DIST) rows reach a classifier; LayerNorm is per row, so only those are
     * normalised. */
    float *cls = alloc_floats((size_t)n * d * (two ? 2 : 1), err);
    float *tmp = cls && two ? alloc_floats((size_t)n * L, err) : NULL;
    if (!cls || (two && !tmp)) {
        free(cls);
        return FIPSC_ERR_NOMEM;
    }
    float *dist = cls + (size_t)n * d;
    for (int i = 0; i < n; i++) {
        memcpy(cls + (size_t)i * d, x + (size_t)i * T * d, (size_t)d * sizeof *cls);
        if (two) memcpy(dist + (size_t)i * d, x + ((size_t)i * T + 1) * d, (size_t)d * sizeof *cls);
    }
    fipsc_layernorm(cls, cls, (long long)n * (two ? 2 : 1), d, v->final_ln_w, v->final_ln_b, v->ln_eps, FIPSC_LN_DOUBLE, NULL, NULL);
    st = fipsc_linear_apply(&v->head, n, cls, logits, err);
    if (!st && two && !(st = fipsc_linear_apply(&v->dist_head, n, dist, tmp, err)))
        for (size_t i = 0; i < (size_t)n * L; i++) logits[i] = (logits[i] + tmp[i]) / 2.0f;
    free(cls);
    free(tmp);
    return st;
}

/* Images [first, first + count) through the blocks their span says (fipsc_capture_forward_span:
 * every block with logits, then the head; else those the capture needs) — with a capture that
 * streams (residual_stream.h), from the stream's rows when the span starts after block 0, and
 * back into the stream after its last block. */
static fipsc_status forward_range(const fipsc_model *m, const fipsc_vit *v, const float *pixels,
                                  int first, int count, float *logits, fipsc_capture *capture, fipsc_error *err)
{
    size_t per_image = (size_t)v->channels * v->image_h * v->image_w;
    const int64_t rows = (int64_t)count * v->n_tokens;
    fipsc_forward_span span;
    fipsc_status st = fipsc_capture_forward_span(capture, logits != NULL, v->n_layers, rows, v->dim, &span, err);
    if (st) return st;
    float *x = alloc_floats((size_t)rows * v->dim, err);
    if (!x) return FIPSC_ERR_NOMEM;
    if (span.first > 0) fipsc_residual_stream_load(span.stream, span.at, rows, x);
    else st = fipsc_vit_embed(m, pixels + (size_t)first * per_image, count, x, err);
    for (int l = span.first; !st && l <= span.last; l++) st = fipsc_vit_block_forward(m, l, count, x, capture, err);
    if (!st && span.stream) fipsc_residual_stream_store(span.stream, span.at, rows, x);
    if (!st && logits) st = fipsc_vit_head(m, count, x, logits + (size_t)first * v->n_labels, err);
    free(x);
    return st;
}

fipsc_status fipsc_vit_forward(const fipsc_model *m, const float *pixels, int n, float *logits,
                               fipsc_capture *capture, fipsc_error *err)
{
    const fipsc_vit *v;
    fipsc_status st = get_vit(m, &v, err);
    if (st) return st;
    if (n < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "ViT forward over %d images", n);
    if (n == 0) return FIPSC_OK;
    /* Without logits, only the blocks up to the last captured one are needed (streaming: the
     * stream's range): checked here, run by forward_range. */
    if (!logits) {
        int from, last;
        fipsc_capture_block_range(capture, &from, &last);
        if (last >= v->n_layers)
            return fipsc_fail(err, FIPSC_ERR_ARG, "capture lists block %d but the model has %d", last,
                              v->n_layers);
        if (last < 0) return FIPSC_OK;
    }

    /* The batch is cut into chunks of about CHUNK_ROWS token rows, a partition that depends on n
     * and the model only (see the top of this file). With a capture the chunks run in order, as
     * rows are appended image by image. (BLAS runs on one thread: src/core/threads.h.) */
    long long rows = (long long)n * v->n_tokens;
    int n_chunks = (int)((rows + CHUNK_ROWS - 1) / CHUNK_ROWS);
    if (n_chunks > n) n_chunks = n;
    int per_chunk = (n + n_chunks - 1) / n_chunks;
    n_chunks = (n + per_chunk - 1) / per_chunk;
    if (n_chunks == 1) return forward_range(m, v, pixels, 0, n, logits, capture, err);
    if (capture) {
        for (int c = 0; c < n_chunks && !st; c++) {
            int first = c * per_chunk, count = n - first < per_chunk ? n - first : per_chunk;
            st = forward_range(m, v, pixels, first, count, logits, capture, err);
        }
        return st;
    }
    fipsc_status *status = calloc((size_t)n_chunks, sizeof *status);
    fipsc_error *errors = calloc((size_t)n_chunks, sizeof *errors);
    if (!status || !errors) {
        free(status);
        free(errors);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory in the ViT forward");
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < n_chunks; c++) {
        int first = c * per_chunk, count = n - first < per_chunk ? n - first : per_chunk;
        status[c] = forward_range(m, v, pixels, first, count, logits, NULL, &errors[c]);
    }
    for (int c = 0; c < n_chunks && !st; c++)
        if ((st = status[c]) && err) *err = errors[c];
    free(status);
    free(errors);
    return st;
}
