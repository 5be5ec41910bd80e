/* The Llama family's view of a model: configuration, and binding it to the tensors under Hugging
 * Face names (see src/families/llama/llama.h). */
#include "families/llama/llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/path.h"

static void view_free(void *p)
{
    fipsc_llama *v = p;
    if (!v) return;
    free(v->layers);
    free(v->norm_weights);
    free(v);
}

float fipsc_llama_rope_inv_freq(const fipsc_config *c, int j)
{
    const float base = 1.0f / powf(c->rope_theta, (float)(2 * j) / (float)c->head_dim);
    if (c->rope_scaling == FIPSC_ROPE_LINEAR) return base / c->rope_factor;
    if (c->rope_scaling == FIPSC_ROPE_YARN) {
        /* transformers: extrapolation 1/pos, interpolation 1/(factor·pos) with pos = θ^(2j/D) */
        const float pos = powf(c->rope_theta, (float)(2 * j) / (float)c->head_dim);
        const float extrapolation = 1.0f / pos, interpolation = 1.0f / (c->rope_factor * pos);
        const double D = c->head_dim, C = c->rope_original_context, ln_theta = log((double)c->rope_theta);
        double lo = floor(D * log(C / ((double)c->rope_beta_fast * 2.0 * M_PI)) / (2.0 * ln_theta));
        double hi = ceil(D * log(C / ((double)c->rope_beta_slow * 2.0 * M_PI)) / (2.0 * ln_theta));
        if (lo < 0) lo = 0;
        if (hi > D - 1) hi = D - 1;
        if (lo == hi) hi += 0.001;
        float ramp = ((float)j - (float)lo) / (float)(hi - lo);
        ramp = ramp < 0.0f ? 0.0f : ramp > 1.0f ? 1.0f : ramp;
        const float extrapolation_factor = 1.0f - ramp;
        return interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
    if (c->rope_scaling != FIPSC_ROPE_LLAMA3) return base;
    const float wavelen = 2.0f * (float)M_PI / base, context = (float)c->rope_original_context;
    const float low_wavelen = context / c->rope_low_freq_factor, high_wavelen = context / c->rope_high_freq_factor;
    if (wavelen < high_wavelen) return base;
    if (wavelen > low_wavelen) return base / c->rope_factor;
    const float s = (context / wavelen - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
    return (1.0f - s) * base / c->rope_factor + s * base;
}

const char *fipsc_llama_rope_scaling_name(fipsc_rope_scaling s)
{
    return s == FIPSC_ROPE_LINEAR ? "linear" : s == FIPSC_ROPE_LLAMA3 ? "llama3" : s == FIPSC_ROPE_YARN ? "yarn" : "none";
}

float fipsc_llama_rope_mscale(const fipsc_config *c)
{
    if (c->rope_scaling != FIPSC_ROPE_YARN || c->rope_factor <= 1.0f) return 1.0f;
    return (float)(0.1 * log((double)c->rope_factor) + 1.0);
}

fipsc_llama *fipsc_model_llama(const fipsc_model *m)
{
    return m && m->family == &fipsc_family_llama ? m->view : NULL;
}

fipsc_status fipsc_llama_configure(fipsc_model *m, const fipsc_config *cfg, fipsc_error *err)
{
    fipsc_llama *v = fipsc_model_llama(m);
    if (!v) {
        if (m->view) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "the model has another family's view already");
        if (!(v = calloc(1, sizeof *v))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the model view");
        fipsc_model_set_view(m, &fipsc_family_llama, v, view_free);
    }
    v->cfg = *cfg;
    return fipsc_path_format(m->arch_name, sizeof m->arch_name, err, "%s", cfg->arch_name);
}

/* Looks up "model.layers.<l>.<suffix>" with the given shape. */
static fipsc_status require_layer(const fipsc_model *m, int l, const char *suffix, int ndim,
                                  int64_t d0, int64_t d1, const float **data, fipsc_error *err)
{
    char name[256];
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);
    int64_t shape[2] = {d0, d1};
    return fipsc_model_require(m, name, ndim, shape, data, err);
}

/* Optional bias: absent is fine when the configuration says there is none. */
static fipsc_status bind_linear(const fipsc_model *m, int l, const char *proj, int out, int in,
                                bool bias, fipsc_linear *lin, fipsc_error *err)
{
    char suffix[128];
    memset(lin, 0, sizeof *lin);
    char name[256];
    snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, proj);
    fipsc_status st = fipsc_model_bind_weight(m, name, out, in, lin, err);
    if (st) return st;
    if (!bias) return FIPSC_OK;
    snprintf(suffix, sizeof suffix, "%s.bias", proj);
    return require_layer(m, l, suffix, 1, out, 0, &lin->bias, err);
}

/* Gemma applies RMSNorm weights as (1 + w), computed in float32 as transformers does: the view
 * points every norm at its own copy of 1 + w, so the runtime's RMSNorm stays the one kernel. */
static fipsc_status gemma_norms(fipsc_llama *view, fipsc_error *err)
{
    const fipsc_config *c = &view->cfg;
    const int per_layer = c->post_norms ? 4 : 2;
    const size_t n = ((size_t)c->n_layers * per_layer + 1) * (size_t)c->dim;
    float *w = malloc(n * sizeof *w);
    if (!w) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the norm weights");
    free(view->norm_weights);
    view->norm_weights = w;
    const float **norms[5];
    for (int l = -1; l < c->n_layers; l++) {
        fipsc_llama_layer *L = l >= 0 ? &view->layers[l] : NULL;
        int k = 0;
        if (!L) norms[k++] = &view->final_norm;
        else {
            norms[k++] = &L->attn_norm;
            norms[k++] = &L->ffn_norm;
            if (c->post_norms) norms[k++] = &L->post_attn_norm, norms[k++] = &L->post_ffn_norm;
        }
        for (int i = 0; i < k; i++) {
            if (!*norms[i]) continue; /* a model loaded for its shapes alone has no values */
            for (int j = 0; j < c->dim; j++) w[j] = 1.0f + (*norms[i])[j];
            *norms[i] = w;
            w += c->dim;
        }
    }
    return FIPSC_OK;
}

fipsc_status fipsc_llama_bind(fipsc_model *m, fipsc_error *err)
{
    fipsc_llama *view = fipsc_model_llama(m);
    if (!view) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "fipsc_llama_bind: not a Llama-family model");
    const fipsc_config *c = &view->cfg;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->head_dim <= 0)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "invalid configuration: dim %d, hidden %d, layers %d, heads %d, kv heads "
                          "%d, head_dim %d, vocab %d (all must be positive)",
                          c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                          c->head_dim, c->vocab_size);
    if (c->n_heads % c->n_kv_heads != 0)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "invalid configuration: %d attention heads is not a multiple of %d "
                          "key/value heads",
                          c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2 != 0)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "invalid configuration: head_dim %d is odd (RoPE pairs dimensions)",
                          c->head_dim);

    fipsc_llama_layer *layers = calloc((size_t)c->n_layers, sizeof *layers);
    fipsc_mlp **mlps = calloc((size_t)c->n_layers, sizeof *mlps);
    if (!layers || !mlps) {
        free(layers);
        free(mlps);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory binding %d layers", c->n_layers);
    }
    free(view->layers);
    view->layers = layers;
    fipsc_model_set_mlps(m, mlps, c->n_layers);
    for (int l = 0; l < c->n_layers; l++) mlps[l] = &layers[l].mlp;

    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    int64_t norm_shape[1] = {c->dim};
    fipsc_status st = fipsc_model_bind_weight(m, "model.embed_tokens.weight", c->vocab_size, c->dim,
                                              &view->tok_embeddings, err);
    if (st) return st;
    if ((st = fipsc_model_require(m, "model.norm.weight", 1, norm_shape, &view->final_norm, err)))
        return st;
    if (c->tie_embeddings) {
        if (fipsc_model_find(m, "lm_head.weight"))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "tie_word_embeddings is true but the checkpoint also has 'lm_head.weight'");
        view->lm_head = view->tok_embeddings;
        view->lm_head.weight_name = "model.embed_tokens.weight (tied head)";
    } else if ((st = fipsc_model_bind_weight(m, "lm_head.weight", c->vocab_size, c->dim, &view->lm_head, err))) {
        return fipsc_fail_context(err, "tie_word_embeddings is false: ");
    }

    /* Gemma-2 names its pre-MLP norm pre_feedforward_layernorm; its post_attention_layernorm
     * follows the attention instead (Llama's post_attention_layernorm is the pre-MLP norm). */
    const char *ffn_norm_name = c->post_norms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight";
    for (int l = 0; l < c->n_layers; l++) {
        fipsc_llama_layer *L = &layers[l];
        L->window = c->sliding_window > 0 && (c->window_all_layers || l % 2 == 0) ? c->sliding_window : 0;
        if (c->post_norms &&
            ((st = require_layer(m, l, "post_attention_layernorm.weight", 1, c->dim, 0, &L->post_attn_norm, err)) ||
             (st = require_layer(m, l, "post_feedforward_layernorm.weight", 1, c->dim, 0, &L->post_ffn_norm, err))))
            return st;
        if ((st = require_layer(m, l, "input_layernorm.weight", 1, c->dim, 0, &L->attn_norm, err)) ||
            (st = require_layer(m, l, ffn_norm_name, 1, c->dim, 0, &L->ffn_norm, err)) ||
            (st = bind_linear(m, l, "self_attn.q_proj", q_dim, c->dim, c->qkv_bias, &L->q, err)) ||
            (st = bind_linear(m, l, "self_attn.k_proj", kv_dim, c->dim, c->qkv_bias, &L->k, err)) ||
            (st = bind_linear(m, l, "self_attn.v_proj", kv_dim, c->dim, c->qkv_bias, &L->v, err)) ||
            (st = bind_linear(m, l, "self_attn.o_proj", c->dim, q_dim, false, &L->o, err)))
            return st;
        fipsc_mlp *mlp = &L->mlp;
        mlp->kind = FIPSC_MLP_GATED;
        mlp->act = c->gemma ? FIPSC_ACT_GELU_TANH : FIPSC_ACT_SILU;
        mlp->d = c->dim;
        mlp->f = c->hidden_dim;
        if ((st = bind_linear(m, l, "mlp.gate_proj", c->hidden_dim, c->dim, false, &mlp->gate, err)) ||
            (st = bind_linear(m, l, "mlp.up_proj", c->hidden_dim, c->dim, false, &mlp->up, err)) ||
            (st = bind_linear(m, l, "mlp.down_proj", c->dim, c->hidden_dim, false, &mlp->down, err)))
            return st;
    }
    return c->gemma ? gemma_norms(view, err) : FIPSC_OK;
}

