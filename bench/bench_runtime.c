/* Runtime throughput: prefill and decode tokens/s, with achieved GFLOP/s against the cblas_sgemm
 * peak measured in the same run.
 *
 *   bench_runtime [--model PATH] [--quick] [--tiny]
 *
 * --quick: fewer repetitions and a shorter synthetic prefill; --tiny: stories260K only.
 *
 * Models: stories260K (models/stories260K.bin, or --model) and a synthetic Llama-shaped model the
 * benchmark builds with random weights: d 1024, f 2816, 8 layers, 16 heads (head_dim 64, no
 * grouping), vocab 32000, untied head — 134 M parameters in its matrices, big enough for the
 * GEMMs to dominate. FLOPs count 2 per multiply-add: every projection, the head, and causal
 * attention (q·k and a·v over the positions each token sees).
 *
 * Peak: cblas_sgemm (OpenBLAS on as many threads as the run) of a shape like the model's biggest
 * prefill GEMM — rows × hidden × dim: 2048 × 172 × 64 for stories260K, 512 × 2816 × 1024 for the
 * synthetic model — timed in alternation with the run itself (best of each), so that both see
 * the same machine even when other work comes and goes. Decoding one token is a matrix-vector
 * product per weight matrix, bound by memory bandwidth rather than FLOPs: for it the table also
 * gives GB/s of weights streamed. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "families/llama/llama.h"
#include "families/registry.h"
#include "model/generate.h"
#include "model/model.h"
#include "families/llama/runtime.h"
#include "ops/sample.h"
#include "core/threads.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static _Noreturn void die(const char *what, const fipsc_error *err)
{
    fprintf(stderr, "bench_runtime: %s: %s\n", what, err->message);
    exit(1);
}

/* ---- FLOP counts ---------------------------------------------------------------------------- */

/* Multiply-adds of the matrices for one token row: projections, MLP, head. */
static double matrix_macs_per_row(const fipsc_config *c)
{
    double d = c->dim, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double per_layer = d * q + 2 * d * kv + q * d + 3 * d * c->hidden_dim;
    return c->n_layers * per_layer + (double)c->vocab_size * d;
}

/* Attention multiply-adds of one token that sees `ctx` positions: q·k and a·v per head. */
static double attention_macs(const fipsc_config *c, double ctx)
{
    return (double)c->n_layers * c->n_heads * c->head_dim * 2.0 * ctx;
}

static double matrix_bytes(const fipsc_config *c) { return 4.0 * matrix_macs_per_row(c); }

/* ---- synthetic model ------------------------------------------------------------------------ */

static uint64_t lcg = 88172645463325252ULL;
static float *random_tensor(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_runtime: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        lcg ^= lcg << 13, lcg ^= lcg >> 7, lcg ^= lcg << 17;
        p[i] = scale * ((float)(lcg >> 40) * 0x1.0p-24f * 2.0f - 1.0f);
    }
    return p;
}

static void add(fipsc_model *m, const char *name, int64_t rows, int64_t cols, float scale, float offset)
{
    fipsc_error err = {0};
    int64_t shape[2] = {rows, cols};
    size_t n = (size_t)(rows * (cols ? cols : 1));
    float *p = random_tensor(n, scale);
    for (size_t i = 0; offset != 0.0f && i < n; i++) p[i] += offset;
    if (fipsc_model_add_tensor(m, name, cols ? 2 : 1, shape, p, true, FIPSC_F32, &err)) die(name, &err);
}

static fipsc_model *synthetic_llama(void)
{
    fipsc_model *m = fipsc_model_new();
    fipsc_config cfg = {.bos_token = 1, .eos_token = 2, .rope_theta = 10000.0f, .norm_eps = 1e-5f}, *c = &cfg;
    snprintf(c->arch_name, sizeof c->arch_name, "synthetic");
    c->dim = 1024, c->hidden_dim = 2816, c->n_layers = 8, c->n_heads = 16, c->n_kv_heads = 16;
    c->head_dim = 64, c->vocab_size = 32000, c->max_seq_len = 2048;
    c->tie_embeddings = false;
    fipsc_error cerr = {0};
    if (fipsc_llama_configure(m, c, &cerr)) die("configuring the synthetic model", &cerr);
    const int d = c->dim, f = c->hidden_dim;
    const float sd = 1.0f / sqrtf((float)d), sf = 1.0f / sqrtf((float)f);
    char name[128];
    add(m, "model.embed_tokens.weight", c->vocab_size, d, 1.0f, 0.0f);
    for (int l = 0; l < c->n_layers; l++) {
#define N(s) (snprintf(name, sizeof name, "model.layers.%d.%s", l, s), name)
        add(m, N("input_layernorm.weight"), d, 0, 0.1f, 1.0f);
        add(m, N("self_attn.q_proj.weight"), d, d, sd, 0.0f);
        add(m, N("self_attn.k_proj.weight"), d, d, sd, 0.0f);
        add(m, N("self_attn.v_proj.weight"), d, d, sd, 0.0f);
        add(m, N("self_attn.o_proj.weight"), d, d, sd, 0.0f);
        add(m, N("post_attention_layernorm.weight"), d, 0, 0.1f, 1.0f);
        add(m, N("mlp.gate_proj.weight"), f, d, sd, 0.0f);
        add(m, N("mlp.up_proj.weight"), f, d, sd, 0.0f);
        add(m, N("mlp.down_proj.weight"), d, f, sf, 0.0f);
#undef N
    }
    add(m, "model.norm.weight", d, 0, 0.1f, 1.0f);
    add(m, "lm_head.weight", c->vocab_size, d, sd, 0.0f);
    fipsc_error err = {0};
    if (fipsc_llama_bind(m, &err)) die("binding the synthetic model", &err);
    return m;
}

/* ---- measurements --------------------------------------------------------------------------- */

/* A cblas_sgemm C[m,n] = A[m,k]·B[n,k]ᵀ to time against. */
typedef struct peak_gemm {
    int m, n, k;
    float *a, *b, *c;
} peak_gemm;

static peak_gemm peak_new(int m, int n, int k)
{
    peak_gemm g = {m, n, k, random_tensor((size_t)m * k, 1.0f), random_tensor((size_t)n * k, 1.0f),
                   random_tensor((size_t)m * n, 0.0f)};
    return g;
}

/* Seconds of one sgemm on the current thread count. */
static double peak_time(const peak_gemm *g)
{
    openblas_set_num_threads(fipsc_threads_get()); /* OpenBLAS's own threads for the reference */
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->m, g->n, g->k, 1.0f, g->a, g->k, g->b,
                g->k, 0.0f, g->c, g->n);
    double t = now() - t0;
    openblas_set_num_threads(1); /* back to what fipsc runs with (src/core/threads.h) */
    return t;
}

static double peak_gflops(const peak_gemm *g, double seconds) { return 2.0 * g->m * g->n * g->k / seconds / 1e9; }

static void peak_free(peak_gemm *g)
{
    free(g->a);
    free(g->b);
    free(g->c);
}

static int n_rows;
typedef struct row {
    char what[96];
    double tokens, seconds, gflop;
    double bytes;      /* weight bytes streamed (decode), or 0 */
    double peak;       /* GFLOP/s of the reference sgemm, timed alongside */
    char peak_shape[32];
} row;
static row rows[32];

static row *new_row(const peak_gemm *g, double peak_seconds)
{
    row *r = &rows[n_rows++];
    memset(r, 0, sizeof *r);
    r->peak = peak_gflops(g, peak_seconds);
    snprintf(r->peak_shape, sizeof r->peak_shape, "%d×%d×%d", g->m, g->n, g->k);
    return r;
}


/* Prefill of batch × len random tokens; best of reps. */
static void bench_prefill(const char *label, const fipsc_model *m, const peak_gemm *g, int batch,
                          int len, int reps)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    int32_t *tokens = malloc(sizeof(int32_t) * batch * len);
    for (int i = 0; i < batch * len; i++) tokens[i] = (int32_t)((i * 7919u + 13u) % (unsigned)c->vocab_size);
    float *logits = malloc(sizeof(float) * batch * len * c->vocab_size);
    fipsc_error err = {0};
    double best = 1e30, best_peak = 1e30;
    for (int r = 0; r < reps; r++) {
        double tp = peak_time(g);
        best_peak = tp < best_peak ? tp : best_peak;
        double t0 = now();
        if (fipsc_llama_forward(m, tokens, batch, len, logits, NULL, &err)) die("prefill", &err);
        double t = now() - t0;
        if (t < best) best = t;
    }
    double macs = (double)batch * len * matrix_macs_per_row(c) + batch * attention_macs(c, len * (len + 1) / 2.0);
    row *r = new_row(g, best_peak);
    snprintf(r->what, sizeof r->what, "%s prefill %d×%d, %d thread%s", label, batch, len, fipsc_threads_get(),
             fipsc_threads_get() > 1 ? "s" : "");
    r->tokens = (double)batch * len;
    r->seconds = best;
    r->gflop = 2.0 * macs / 1e9;
    free(tokens);
    free(logits);
}

/* Greedy decoding of n tokens after BOS, one session; best of reps. */
static void bench_decode(const char *label, const fipsc_model *m, const peak_gemm *g, int n, int reps)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    float *logits = malloc(sizeof(float) * c->vocab_size);
    fipsc_error err = {0};
    fipsc_llama_session *s = NULL;
    if (fipsc_llama_session_new(m, n + 1, &s, &err)) die("session", &err);
    double best = 1e30, best_peak = 1e30;
    for (int r = 0; r < reps; r++) {
        double tp = peak_time(g);
        best_peak = tp < best_peak ? tp : best_peak;
        fipsc_llama_session_reset(s);
        int32_t tok = c->bos_token;
        double t0 = now();
        for (int i = 0; i < n; i++) {
            if (fipsc_llama_decode(s, tok, logits, &err)) die("decode", &err);
            tok = fipsc_argmax(logits, c->vocab_size);
        }
        double t = now() - t0;
        if (t < best) best = t;
    }
    double macs = n * matrix_macs_per_row(c) + attention_macs(c, n * (n + 1) / 2.0);
    row *r = new_row(g, best_peak);
    snprintf(r->what, sizeof r->what, "%s decode %d tokens, %d thread%s", label, n, fipsc_threads_get(),
             fipsc_threads_get() > 1 ? "s" : "");
    r->tokens = n;
    r->seconds = best;
    r->gflop = 2.0 * macs / 1e9;
    r->bytes = n * matrix_bytes(c);
    fipsc_llama_session_free(s);
    free(logits);
}

/* fipsc_llama_sample_sequences: small models decode several sequences at once, one per thread. */
static void bench_sampling(const char *label, const fipsc_model *m, const peak_gemm *g, int n, int len)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    int32_t *ids = malloc(sizeof(int32_t) * n * len);
    fipsc_error err = {0};
    double t = 1e30, best_peak = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double tp = peak_time(g);
        best_peak = tp < best_peak ? tp : best_peak;
        double t0 = now();
        if (fipsc_lm_sample_sequences(m, n, len, 1.0f, 1.0f, 1, ids, NULL, NULL, &err)) die("sampling", &err);
        double dt = now() - t0;
        t = dt < t ? dt : t;
    }
    double macs = (double)n * ((len - 1) * matrix_macs_per_row(c) + attention_macs(c, (len - 1) * len / 2.0));
    row *r = new_row(g, best_peak);
    snprintf(r->what, sizeof r->what, "%s sample %d×%d (decode + sampling), %d threads", label, n, len,
             fipsc_threads_get());
    r->tokens = (double)n * (len - 1);
    r->seconds = t;
    r->gflop = 2.0 * macs / 1e9;
    free(ids);
}

int main(int argc, char **argv)
{
    const char *model_path = "models/stories260K.bin";
    int quick = 0, tiny_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--tiny")) tiny_only = 1;
        else {
            fprintf(stderr, "usage: bench_runtime [--model stories260K.bin] [--quick] [--tiny]\n");
            return 2;
        }
    }
    const int threads = fipsc_threads_get();
    const int syn_batch = 2, syn_len = quick ? 128 : 256;

    /* 1. stories260K: peak on 2048 × 172 × 64, the shape of its gate/up projections. */
    fipsc_error err = {0};
    fipsc_model *tiny = NULL;
    if (fipsc_model_load(model_path, &tiny, &err)) die(model_path, &err);
    peak_gemm g_tiny = peak_new(8 * 256, fipsc_model_llama(tiny)->cfg.hidden_dim, fipsc_model_llama(tiny)->cfg.dim);
    fipsc_threads_set(threads);
    bench_prefill("stories260K", tiny, &g_tiny, 8, 256, quick ? 3 : 10);
    bench_sampling("stories260K", tiny, &g_tiny, 8, 256);
    fipsc_threads_set(1);
    bench_prefill("stories260K", tiny, &g_tiny, 8, 256, quick ? 3 : 10);
    bench_decode("stories260K", tiny, &g_tiny, 256, quick ? 3 : 10);
    fipsc_threads_set(threads);
    fipsc_model_free(tiny);
    peak_free(&g_tiny);

    /* 2. The synthetic model: peak on rows × 2816 × 1024. */
    if (!tiny_only) {
        double t0 = now();
        fipsc_model *syn = synthetic_llama();
        printf("synthetic model built in %.1f s\n", now() - t0);
        peak_gemm g_syn = peak_new(syn_batch * syn_len, fipsc_model_llama(syn)->cfg.hidden_dim, fipsc_model_llama(syn)->cfg.dim);
        peak_time(&g_syn); /* first-call warm-up */
        bench_prefill("synthetic", syn, &g_syn, syn_batch, syn_len, quick ? 1 : 3);
        bench_decode("synthetic", syn, &g_syn, quick ? 8 : 32, quick ? 1 : 2);
        fipsc_threads_set(1);
        bench_prefill("synthetic", syn, &g_syn, syn_batch, syn_len, quick ? 1 : 2);
        bench_decode("synthetic", syn, &g_syn, quick ? 8 : 32, 1);
        fipsc_threads_set(threads);
        fipsc_model_free(syn);
        peak_free(&g_syn);
    }

    printf("\n| run | tokens/s | ms/token | GFLOP/s | sgemm peak GFLOP/s (shape) | of peak | weights GB/s |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        double gflops = r->gflop / r->seconds;
        char bw[32] = "";
        if (r->bytes > 0) snprintf(bw, sizeof bw, "%.1f", r->bytes / r->seconds / 1e9);
        printf("| %s | %.0f | %.3f | %.1f | %.1f (%s) | %.0f%% | %s |\n", r->what, r->tokens / r->seconds,
               1e3 * r->seconds / r->tokens, gflops, r->peak, r->peak_shape, 100.0 * gflops / r->peak, bw);
    }
    return 0;
}
