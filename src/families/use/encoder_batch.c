/* Running the Universal Sentence Encoder Lite over many sentences (src/families/use/use.h): the
 * entry points (tokenize, encode, embed), the cut of the sentences into consecutive chunks by the
 * input order alone, one workspace per thread, and the chunks' captured rows appended in chunk
 * order. The forward of a chunk is in encoder.c, whose opening comment says why threads take
 * whole chunks and BLAS runs single-threaded (the same bits whatever the thread count). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/mlp_forward.h"
#include "families/use/use.h"
#include "families/use/encoder_internal.h"

/* Token rows per chunk: GEMMs of this height run near BLAS peak (each GEMM packs its weight once
 * per chunk: smaller chunks pay that more often), the activations stay a few MB, and some 60
 * sentences already make several chunks to share among threads. A longer sentence (at most
 * max_tokens) still gets a chunk of its own. */
enum { CHUNK_ROWS = 1024 };

/* ------------------------------------------------------------------ workspaces */

static void workspace_free(workspace *w)
{
    free(w->x);
    free(w->x2);
    free(w->h);
    free(w->qkv);
    free(w->a);
    free(w->y);
    free(w->mlp);
    free(w->pooled);
    free(w->hmean);
    free(w->offset);
    for (int i = 0; i < w->n_cap; i++) {
        if (w->cap_x) free(w->cap_x[i]);
        if (w->cap_y) free(w->cap_y[i]);
    }
    free(w->cap_x);
    free(w->cap_y);
    free(w->cap_rows);
}

static fipsc_status workspace_init(workspace *w, const fipsc_use *u, int rows, int sentences,
                                   const prepared *prep, int n_cap, const int *cap_layer, fipsc_error *err)
{
    memset(w, 0, sizeof *w);
    w->prep = prep;
    w->n_cap = n_cap;
    w->cap_layer = cap_layer;
    size_t wide = (size_t)rows * (size_t)(u->dim > u->embed_dim ? u->dim : u->embed_dim);
    size_t rd = (size_t)rows * (size_t)u->dim, scratch = 0;
    for (int l = 0; l < u->n_layers; l++) {
        size_t s = fipsc_mlp_scratch_floats(&u->layers[l].mlp, rows);
        if (s > scratch) scratch = s;
    }
    w->x = malloc(wide * sizeof(float));
    w->x2 = malloc(rd * sizeof(float));
    w->h = malloc(wide * sizeof(float));
    w->qkv = malloc(3 * wide * sizeof(float));
    w->a = malloc(wide * sizeof(float));
    w->y = malloc(rd * sizeof(float));
    w->mlp = malloc((scratch + 1) * sizeof(float));
    w->pooled = malloc((size_t)sentences * (size_t)u->dim * sizeof(float));
    w->hmean = malloc((size_t)sentences * (size_t)u->hidden * sizeof(float));
    w->offset = malloc(((size_t)sentences + 1) * sizeof(int));
    bool ok = w->x && w->x2 && w->h && w->qkv && w->a && w->y && w->mlp && w->pooled &&
              w->hmean && w->offset;
    if (ok && n_cap > 0) {
        w->cap_x = calloc((size_t)n_cap, sizeof *w->cap_x);
        w->cap_y = calloc((size_t)n_cap, sizeof *w->cap_y);
        w->cap_rows = calloc((size_t)n_cap, sizeof *w->cap_rows);
        ok = w->cap_x && w->cap_y && w->cap_rows;
        for (int i = 0; ok && i < n_cap; i++)
            ok = (w->cap_x[i] = malloc(rd * sizeof(float))) && (w->cap_y[i] = malloc(rd * sizeof(float)));
    }
    if (!ok) {
        workspace_free(w);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the sentence encoder's activations (%d tokens)",
                          rows);
    }
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ entry points */

fipsc_status fipsc_use_tokenize(const fipsc_model *m, const char *text, size_t len, int32_t **ids,
                                int *n_ids, fipsc_error *err)
{
    const fipsc_use *u = fipsc_model_use(m);
    if (!u) return fipsc_fail(err, FIPSC_ERR_ARG, "the model is not a %s", FIPSC_USE_ARCH_NAME);
    return fipsc_sp_encode(u->tokenizer, text, len, ids, n_ids, err);
}

/* A run of consecutive sentences encoded together. */
typedef struct chunk {
    int first, count;
    int rows; /* their kept tokens */
} chunk;

/* Cuts sentences [0, n) into chunks of at most rows_cap kept tokens and sent_cap sentences, in
 * input order: the cut depends on the input alone. */
static int plan_chunks(const fipsc_use *u, int n, const int *lens, int rows_cap, int sent_cap, chunk *chunks)
{
    int n_chunks = 0;
    for (int first = 0; first < n;) {
        int count = 0, rows = 0;
        while (first + count < n && count < sent_cap) {
            int len = lens[first + count] < u->max_tokens ? lens[first + count] : u->max_tokens;
            if (rows + len > rows_cap) break;
            rows += len;
            count++;
        }
        chunks[n_chunks++] = (chunk){first, count, rows};
        first += count;
    }
    return n_chunks;
}

/* Appends a finished chunk's captured rows to the capture (in chunk order by the caller). */
static fipsc_status flush_capture(fipsc_capture *capture, const workspace *w, fipsc_error *err)
{
    for (int i = 0; i < w->n_cap; i++) {
        fipsc_capture_layer *cl = fipsc_capture_find(capture, w->cap_layer[i]);
        fipsc_status st = fipsc_capture_append(capture, cl, w->cap_x[i], w->cap_y[i], w->cap_rows[i], err);
        if (st) return st;
    }
    return FIPSC_OK;
}

fipsc_status fipsc_use_encode(const fipsc_model *m, int n, const int32_t *const *ids,
                              const int *lens, float *out, fipsc_capture *capture,
                              fipsc_error *err)
{
    const fipsc_use *u = fipsc_model_use(m);
    if (!u) return fipsc_fail(err, FIPSC_ERR_ARG, "the model is not a %s", FIPSC_USE_ARCH_NAME);
    if (n < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "%d sentences", n);
    for (int i = 0; i < n; i++) {
        if (lens[i] < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "sentence %d has %d tokens", i, lens[i]);
        int kept = lens[i] < u->max_tokens ? lens[i] : u->max_tokens;
        for (int t = 0; t < kept; t++)
            if (ids[i][t] < 0 || ids[i][t] >= u->vocab_size)
                return fipsc_fail(err, FIPSC_ERR_ARG, "sentence %d, token %d: id %d is outside the vocabulary [0, %d)",
                                  i, t, ids[i][t], u->vocab_size);
    }
    if (n == 0) return FIPSC_OK;
    const int rows_cap = CHUNK_ROWS > u->max_tokens ? CHUNK_ROWS : u->max_tokens;
    const int sent_cap = n < rows_cap ? n : rows_cap; /* empty sentences still take a slot */
    /* the captured layers that belong to this model */
    int n_cap = 0, cap_layer[64];
    for (int i = 0; capture && i < capture->n_layers && n_cap < 64; i++)
        if (capture->layers[i].layer >= 0 && capture->layers[i].layer < u->n_layers)
            cap_layer[n_cap++] = capture->layers[i].layer;
    chunk *chunks = malloc((size_t)n * sizeof *chunks);
    prepared prep = {0};
    if (!chunks) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory planning %d sentences", n);
    fipsc_status st = use_encode_prepare(u, &prep, err);
    const int n_chunks = st ? 0 : plan_chunks(u, n, lens, rows_cap, sent_cap, chunks);
    const int threads = omp_get_max_threads(), team = threads < n_chunks ? threads : n_chunks;
    fipsc_status *chunk_st = calloc((size_t)n_chunks + 1, sizeof *chunk_st);
    fipsc_error *chunk_err = calloc((size_t)n_chunks + 1, sizeof *chunk_err);
    workspace *ws = calloc((size_t)team + 1, sizeof *ws);
    if (!st && (!chunk_st || !chunk_err || !ws)) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %d chunks", n_chunks);
    int ready = 0; /* workspaces initialised */
    for (; !st && ready < team; ready++)
        st = workspace_init(&ws[ready], u, rows_cap, sent_cap, &prep, n_cap, cap_layer, err);
    /* Streaming (model/residual_stream.h): the call's rows of the stream, chunk by chunk in order. */
    fipsc_residual_stream *stream = capture ? capture->stream : NULL;
    int64_t *chunk_at = stream ? malloc((size_t)n_chunks * sizeof *chunk_at) : NULL;
    if (!st && stream && !chunk_at) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %d chunks", n_chunks);
    for (int c = 0; !st && stream && c < n_chunks; c++)
        st = fipsc_residual_stream_claim(stream, chunks[c].rows, u->dim, &chunk_at[c], err);
    for (int i = 0; i < ready; i++) ws[i].stream = stream;
    /* Without capture every chunk is independent; with capture (rows recorded, or the stream's
     * rows claimed) the chunks run in waves of `team`, one workspace per chunk, whose rows are
     * appended in chunk order after each wave. */
    const bool ordered = n_cap > 0 || stream;
    const int wave = ordered ? team : n_chunks;
    for (int c0 = 0; !st && c0 < n_chunks; c0 += wave) {
        const int c1 = c0 + wave < n_chunks ? c0 + wave : n_chunks;
        if (team == 1) {
            for (int c = c0; c < c1; c++) {
                if (stream) ws[0].stream_at = chunk_at[c];
                chunk_st[c] = use_encode_chunk(u, chunks[c].count, ids + chunks[c].first, lens + chunks[c].first,
                                               out + (size_t)chunks[c].first * u->dim, &ws[0], &chunk_err[c]);
            }
        } else {
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
            for (int c = c0; c < c1; c++) {
                workspace *w = ordered ? &ws[c - c0] : &ws[omp_get_thread_num()];
                if (stream) w->stream_at = chunk_at[c];
                chunk_st[c] = use_encode_chunk(u, chunks[c].count, ids + chunks[c].first, lens + chunks[c].first,
                                               out + (size_t)chunks[c].first * u->dim, w, &chunk_err[c]);
            }
        }
        for (int c = c0; c < c1 && !st; c++) {
            if (chunk_st[c]) {
                *err = chunk_err[c];
                st = chunk_st[c];
            } else if (n_cap > 0) {
                st = flush_capture(capture, &ws[team == 1 ? 0 : c - c0], err);
            }
        }
        /* (team == 1 with capture: wave == 1, so ws[0] holds exactly chunk c0) */
    }
    for (int i = 0; i < ready; i++) workspace_free(&ws[i]);
    free(ws);
    free(chunk_at);
    free(chunk_st);
    free(chunk_err);
    use_encode_prepared_free(u, &prep);
    free(chunks);
    return st;
}

fipsc_status fipsc_use_embed(const fipsc_model *m, int n, const char *const *texts,
                             const size_t *lens, float *out, fipsc_error *err)
{
    const fipsc_use *u = fipsc_model_use(m);
    if (!u) return fipsc_fail(err, FIPSC_ERR_ARG, "the model is not a %s", FIPSC_USE_ARCH_NAME);
    if (n < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "%d sentences", n);
    int32_t **ids = calloc((size_t)n + 1, sizeof *ids);
    int *n_ids = calloc((size_t)n + 1, sizeof *n_ids);
    fipsc_status *sts = calloc((size_t)n + 1, sizeof *sts);
    fipsc_status st = FIPSC_OK;
    if (!ids || !n_ids || !sts) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %d sentences", n);
        goto done;
    }
#pragma omp parallel for schedule(dynamic, 16)
    for (int i = 0; i < n; i++)
        sts[i] = fipsc_sp_encode(u->tokenizer, texts[i], lens ? lens[i] : strlen(texts[i]), &ids[i], &n_ids[i], NULL);
    for (int i = 0; i < n; i++)
        if (sts[i]) { /* tokenize it again, for the message */
            free(ids[i]);
            ids[i] = NULL;
            fipsc_error e = {0};
            fipsc_status again =
                fipsc_sp_encode(u->tokenizer, texts[i], lens ? lens[i] : strlen(texts[i]), &ids[i], &n_ids[i], &e);
            st = fipsc_fail(err, again ? again : sts[i], "sentence %d: %s", i,
                            again ? e.message : "tokenizing failed (out of memory?)");
            goto done;
        }
    st = fipsc_use_encode(m, n, (const int32_t *const *)ids, n_ids, out, NULL, err);
done:
    if (ids)
        for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(n_ids);
    free(sts);
    return st;
}
