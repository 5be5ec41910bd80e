/* Test fixture: small Llama-family models with random weights built in memory under Hugging Face
 * tensor names, and a naive double-precision forward pass to check the runtime against.
 *
 * The naive forward is written from the formulas (HF LlamaDecoderLayer), one token at a time,
 * sharing no code with src/model. */
#ifndef FIPSC_TEST_LLAMA_FIXTURE_H
#define FIPSC_TEST_LLAMA_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama.h"
#include "model/model.h"

typedef struct fixture_shape {
    int dim, hidden, layers, heads, kv_heads, head_dim, vocab, max_seq;
    float eps, theta;
    int tied, qkv_bias;
} fixture_shape;

static uint64_t fixture_rng_state __attribute__((unused));

static inline double fixture_uniform(void) /* in [-1, 1) */
{
    fixture_rng_state = fixture_rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(fixture_rng_state >> 11) * 0x1.0p-52 - 1.0;
}

static inline float *fixture_random(size_t n, double scale, double offset)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(offset + scale * fixture_uniform());
    return p;
}

static inline void fixture_add(fipsc_model *m, const char *name, int64_t rows, int64_t cols, double scale,
                        double offset)
{
    int64_t shape[2] = {rows, cols};
    fipsc_error err = {0};
    float *data = fixture_random((size_t)(rows * (cols ? cols : 1)), scale, offset);
    if (fipsc_model_add_tensor(m, name, cols ? 2 : 1, shape, data, true, FIPSC_F32, &err)) {
        fprintf(stderr, "fixture: %s\n", err.message);
        exit(2);
    }
}

/* A model with random weights: linear weights uniform in ±1/sqrt(in), norms around 1. */
static inline fipsc_model *fixture_llama(const fixture_shape *s, uint64_t seed)
{
    fixture_rng_state = seed;
    fipsc_model *m = fipsc_model_new();
    fipsc_config cfg = {.bos_token = 1, .eos_token = 2}, *c = &cfg;
    snprintf(c->arch_name, sizeof c->arch_name, "LlamaForCausalLM");
    c->dim = s->dim;
    c->hidden_dim = s->hidden;
    c->n_layers = s->layers;
    c->n_heads = s->heads;
    c->n_kv_heads = s->kv_heads;
    c->head_dim = s->head_dim;
    c->vocab_size = s->vocab;
    c->max_seq_len = s->max_seq;
    c->norm_eps = s->eps;
    c->rope_theta = s->theta;
    c->tie_embeddings = s->tied;
    c->qkv_bias = s->qkv_bias;
    fipsc_error cerr = {0};
    if (fipsc_llama_configure(m, c, &cerr)) {
        fprintf(stderr, "fixture: %s\n", cerr.message);
        exit(2);
    }
    int q = s->heads * s->head_dim, kv = s->kv_heads * s->head_dim;
    double wd = 1.0 / sqrt(s->dim), wq = 1.0 / sqrt(q), wf = 1.0 / sqrt(s->hidden);
    char name[256];
    fixture_add(m, "model.embed_tokens.weight", s->vocab, s->dim, 1.0, 0.0);
    for (int l = 0; l < s->layers; l++) {
#define N(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
        fixture_add(m, N("input_layernorm.weight"), s->dim, 0, 0.3, 1.0);
        fixture_add(m, N("self_attn.q_proj.weight"), q, s->dim, 2 * wd, 0.0);
        fixture_add(m, N("self_attn.k_proj.weight"), kv, s->dim, 2 * wd, 0.0);
        fixture_add(m, N("self_attn.v_proj.weight"), kv, s->dim, wd, 0.0);
        fixture_add(m, N("self_attn.o_proj.weight"), s->dim, q, wq, 0.0);
        if (s->qkv_bias) {
            fixture_add(m, N("self_attn.q_proj.bias"), q, 0, 0.5, 0.0);
            fixture_add(m, N("self_attn.k_proj.bias"), kv, 0, 0.5, 0.0);
            fixture_add(m, N("self_attn.v_proj.bias"), kv, 0, 0.5, 0.0);
        }
        fixture_add(m, N("post_attention_layernorm.weight"), s->dim, 0, 0.3, 1.0);
        fixture_add(m, N("mlp.gate_proj.weight"), s->hidden, s->dim, 2 * wd, 0.0);
        fixture_add(m, N("mlp.up_proj.weight"), s->hidden, s->dim, 2 * wd, 0.0);
        fixture_add(m, N("mlp.down_proj.weight"), s->dim, s->hidden, wf, 0.0);
#undef N
    }
    fixture_add(m, "model.norm.weight", s->dim, 0, 0.3, 1.0);
    if (!s->tied) fixture_add(m, "lm_head.weight", s->vocab, s->dim, wd, 0.0);
    fipsc_error err = {0};
    if (fipsc_llama_bind(m, &err)) {
        fprintf(stderr, "fixture: %s\n", err.message);
        exit(2);
    }
    return m;
}

/* ---- naive reference forward, double precision ------------------------------------------- */

static inline void naive_linear(const fipsc_linear *lin, const double *x, double *y)
{
    for (int i = 0; i < lin->out; i++) {
        double acc = lin->bias ? lin->bias[i] : 0.0;
        for (int j = 0; j < lin->in; j++) acc += (double)lin->w[(size_t)i * lin->in + j] * x[j];
        y[i] = acc;
    }
}

static inline void naive_rmsnorm(const double *x, const float *w, double *out, int n, double eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double scale = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = w[i] * x[i] * scale;
}

static inline void naive_rope(double *v, int heads, int hd, int pos, double theta)
{
    for (int h = 0; h < heads; h++)
        for (int j = 0; j < hd / 2; j++) {
            double angle = pos * pow(theta, -2.0 * j / hd);
            double *a = v + h * hd + j, *b = a + hd / 2, x0 = *a, x1 = *b;
            *a = x0 * cos(angle) - x1 * sin(angle);
            *b = x1 * cos(angle) + x0 * sin(angle);
        }
}

/* Logits [len, vocab] of one sequence; when mlp_x/mlp_y are given, also each layer's MLP input
 * and output rows ([layers, len, dim] each). */
static inline void naive_forward(const fipsc_model *m, const int32_t *tokens, int len, double *logits,
                          double *mlp_x, double *mlp_y)
{
    const fipsc_llama *view = fipsc_model_llama(m);
    const fipsc_config *c = &view->cfg;
    const int d = c->dim, hd = c->head_dim, q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd;
    double *x = calloc((size_t)len * d, sizeof *x), *xn = malloc(sizeof(double) * (d > q_dim ? d : q_dim));
    double *K = malloc(sizeof(double) * len * kv_dim), *Vv = malloc(sizeof(double) * len * kv_dim);
    double *Q = malloc(sizeof(double) * len * q_dim), *att = malloc(sizeof(double) * q_dim);
    double *o = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * c->hidden_dim);
    double *u = malloc(sizeof(double) * c->hidden_dim), *sc = malloc(sizeof(double) * len);
    for (int t = 0; t < len; t++)
        for (int i = 0; i < d; i++) x[(size_t)t * d + i] = view->tok_embeddings.w[(size_t)tokens[t] * d + i];
    for (int l = 0; l < c->n_layers; l++) {
        const fipsc_llama_layer *L = &view->layers[l];
        for (int t = 0; t < len; t++) {
            naive_rmsnorm(x + (size_t)t * d, L->attn_norm, xn, d, c->norm_eps);
            naive_linear(&L->q, xn, Q + (size_t)t * q_dim);
            naive_linear(&L->k, xn, K + (size_t)t * kv_dim);
            naive_linear(&L->v, xn, Vv + (size_t)t * kv_dim);
            naive_rope(Q + (size_t)t * q_dim, c->n_heads, hd, t, c->rope_theta);
            naive_rope(K + (size_t)t * kv_dim, c->n_kv_heads, hd, t, c->rope_theta);
        }
        for (int t = 0; t < len; t++) {
            for (int h = 0; h < c->n_heads; h++) {
                int kvh = h / (c->n_heads / c->n_kv_heads);
                double mx = -INFINITY, sum = 0.0;
                for (int s = 0; s <= t; s++) {
                    double dot = 0.0;
                    for (int j = 0; j < hd; j++) dot += Q[(size_t)t * q_dim + h * hd + j] * K[(size_t)s * kv_dim + kvh * hd + j];
                    sc[s] = dot / sqrt((double)hd);
                    if (sc[s] > mx) mx = sc[s];
                }
                for (int s = 0; s <= t; s++) sum += sc[s] = exp(sc[s] - mx);
                for (int j = 0; j < hd; j++) {
                    double acc = 0.0;
                    for (int s = 0; s <= t; s++) acc += sc[s] / sum * Vv[(size_t)s * kv_dim + kvh * hd + j];
                    att[h * hd + j] = acc;
                }
            }
            naive_linear(&L->o, att, o);
            for (int i = 0; i < d; i++) x[(size_t)t * d + i] += o[i];
        }
        for (int t = 0; t < len; t++) {
            double *xt = x + (size_t)t * d;
            naive_rmsnorm(xt, L->ffn_norm, xn, d, c->norm_eps);
            naive_linear(&L->mlp.gate, xn, g);
            naive_linear(&L->mlp.up, xn, u);
            for (int i = 0; i < c->hidden_dim; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            naive_linear(&L->mlp.down, g, o);
            for (int i = 0; i < d; i++) {
                if (mlp_x) mlp_x[((size_t)l * len + t) * d + i] = xn[i];
                if (mlp_y) mlp_y[((size_t)l * len + t) * d + i] = o[i];
                xt[i] += o[i];
            }
        }
    }
    for (int t = 0; t < len; t++) {
        naive_rmsnorm(x + (size_t)t * d, view->final_norm, xn, d, c->norm_eps);
        naive_linear(&view->lm_head, xn, logits + (size_t)t * c->vocab_size);
    }
    free(x); free(xn); free(K); free(Vv); free(Q); free(att); free(o); free(g); free(u); free(sc);
}

#endif
