/* The in-memory model: named tensors, kept resources, the Llama view and parameter counts. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/factored.h"
#include "core/path.h"

struct fipsc_resource {
    void *ptr;
    void (*release)(void *);
    struct fipsc_resource *next;
};

fipsc_model *fipsc_model_new(void)
{
    fipsc_model *m = calloc(1, sizeof *m);
    if (m) {
        m->cfg.bos_token = 1;
        m->cfg.eos_token = 2;
        m->cfg.rope_theta = 10000.0f;
        m->cfg.norm_eps = 1e-5f;
    }
    return m;
}

fipsc_status fipsc_model_set_source_path(fipsc_model *m, const char *path, fipsc_error *err)
{
    return fipsc_path_format(m->source_path, sizeof m->source_path, err, "%s", path);
}

void fipsc_model_free(fipsc_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        if (m->tensors[i].owned) free(m->tensors[i].data);
    }
    free(m->tensors);
    free(m->layers);
    free(m->mlps);
    struct fipsc_resource *r = m->resources;
    while (r) {
        struct fipsc_resource *next = r->next;
        r->release(r->ptr);
        free(r);
        r = next;
    }
    free(m);
}

fipsc_status fipsc_model_add_tensor(fipsc_model *m, const char *name, int ndim,
                                    const int64_t *shape, float *data, bool owned,
                                    fipsc_dtype source_dtype, fipsc_error *err)
{
    if (ndim < 0 || ndim > FIPSC_MAX_DIMS) {
        if (owned) free(data);
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "tensor '%s': %d dimensions (at most %d)", name,
                          ndim, FIPSC_MAX_DIMS);
    }
    if (fipsc_model_find(m, name)) {
        if (owned) free(data);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "tensor '%s' appears twice", name);
    }
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : 64;
        fipsc_tensor *grown = realloc(m->tensors, (size_t)cap * sizeof *grown);
        if (!grown) {
            if (owned) free(data);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory adding tensor '%s'", name);
        }
        m->tensors = grown;
        m->cap_tensors = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        if (owned) free(data);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    }
    fipsc_tensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = copy;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->owned = owned;
    t->source_dtype = source_dtype;
    return FIPSC_OK;
}

const fipsc_tensor *fipsc_model_find(const fipsc_model *m, const char *name)
{
    /* Linear scan: models have at most a few thousand tensors and lookups happen at bind time. */
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

fipsc_status fipsc_model_remove_tensor(fipsc_model *m, const char *name, fipsc_error *err)
{
    for (int i = 0; i < m->n_tensors; i++) {
        fipsc_tensor *t = &m->tensors[i];
        if (strcmp(t->name, name) != 0) continue;
        free(t->name);
        if (t->owned) free(t->data);
        memmove(t, t + 1, (size_t)(m->n_tensors - i - 1) * sizeof *t);
        m->n_tensors--;
        return FIPSC_OK;
    }
    return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "cannot remove tensor '%s': the model has none", name);
}

fipsc_status fipsc_model_bind_weight(const fipsc_model *m, const char *name, int out, int in,
                                     fipsc_linear *lin, fipsc_error *err)
{
    lin->out = out;
    lin->in = in;
    lin->w = NULL;
    lin->factored = NULL;
    const struct fipsc_factored_linear *fl = fipsc_model_factored(m, name);
    if (fl && !fipsc_model_find(m, name)) {
        if (fl->out != out || fl->in != in)
            return fipsc_fail(err, FIPSC_ERR_SHAPE,
                              "compressed tensor '%s' stands for a [%d, %d] weight but the "
                              "configuration implies [%d, %d]",
                              name, fl->out, fl->in, out, in);
        lin->factored = fl;
        lin->weight_name = fl->weight_name;
        return FIPSC_OK;
    }
    int64_t shape[2] = {out, in};
    fipsc_status st = fipsc_model_require(m, name, 2, shape, &lin->w, err);
    if (st) return st;
    lin->weight_name = fipsc_model_find(m, name)->name;
    return FIPSC_OK;
}

fipsc_status fipsc_model_require(const fipsc_model *m, const char *name, int ndim,
                                 const int64_t *shape, const float **data, fipsc_error *err)
{
    const fipsc_tensor *t = fipsc_model_find(m, name);
    if (!t) return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "missing tensor '%s'", name);
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[128], have[128];
        fipsc_shape_format(ndim, shape, want, sizeof want);
        fipsc_shape_format(t->ndim, t->shape, have, sizeof have);
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "tensor '%s' has shape %s but the configuration implies %s", name, have,
                          want);
    }
    *data = t->data;
    return FIPSC_OK;
}

fipsc_status fipsc_model_keep(fipsc_model *m, void *ptr, void (*release)(void *), fipsc_error *err)
{
    struct fipsc_resource *r = malloc(sizeof *r);
    if (!r) {
        release(ptr);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    r->ptr = ptr;
    r->release = release;
    r->next = m->resources;
    m->resources = r;
    return FIPSC_OK;
}

fipsc_status fipsc_model_check_finite(const fipsc_model *m, fipsc_error *err)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        int64_t bad = fipsc_first_nonfinite(t->data, (size_t)fipsc_shape_numel(t->ndim, t->shape));
        if (bad >= 0)
            return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                              "tensor '%s' holds a non-finite value (%g) at flat index %lld",
                              t->name, (double)t->data[bad], (long long)bad);
    }
    return FIPSC_OK;
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

fipsc_status fipsc_model_bind_llama(fipsc_model *m, fipsc_error *err)
{
    const fipsc_config *c = &m->cfg;
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
    free(m->layers);
    free(m->mlps);
    m->layers = layers;
    m->mlps = mlps;
    m->n_mlps = c->n_layers;
    for (int l = 0; l < c->n_layers; l++) mlps[l] = &layers[l].mlp;

    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    int64_t emb_shape[2] = {c->vocab_size, c->dim}, norm_shape[1] = {c->dim};
    fipsc_status st = fipsc_model_require(m, "model.embed_tokens.weight", 2, emb_shape,
                                          &m->tok_embeddings, err);
    if (st) return st;
    if ((st = fipsc_model_require(m, "model.norm.weight", 1, norm_shape, &m->final_norm, err)))
        return st;
    if (c->tie_embeddings) {
        if (fipsc_model_find(m, "lm_head.weight"))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "tie_word_embeddings is true but the checkpoint also has 'lm_head.weight'");
        m->lm_head = m->tok_embeddings;
    } else if ((st = fipsc_model_require(m, "lm_head.weight", 2, emb_shape, &m->lm_head, err))) {
        return fipsc_fail_context(err, "tie_word_embeddings is false: ");
    }

    for (int l = 0; l < c->n_layers; l++) {
        fipsc_llama_layer *L = &layers[l];
        if ((st = require_layer(m, l, "input_layernorm.weight", 1, c->dim, 0, &L->attn_norm, err)) ||
            (st = require_layer(m, l, "post_attention_layernorm.weight", 1, c->dim, 0, &L->ffn_norm, err)) ||
            (st = bind_linear(m, l, "self_attn.q_proj", q_dim, c->dim, c->qkv_bias, &L->q, err)) ||
            (st = bind_linear(m, l, "self_attn.k_proj", kv_dim, c->dim, c->qkv_bias, &L->k, err)) ||
            (st = bind_linear(m, l, "self_attn.v_proj", kv_dim, c->dim, c->qkv_bias, &L->v, err)) ||
            (st = bind_linear(m, l, "self_attn.o_proj", c->dim, q_dim, false, &L->o, err)))
            return st;
        fipsc_mlp *mlp = &L->mlp;
        mlp->kind = FIPSC_MLP_GATED;
        mlp->act = FIPSC_ACT_SILU;
        mlp->d = c->dim;
        mlp->f = c->hidden_dim;
        if ((st = bind_linear(m, l, "mlp.gate_proj", c->hidden_dim, c->dim, false, &mlp->gate, err)) ||
            (st = bind_linear(m, l, "mlp.up_proj", c->hidden_dim, c->dim, false, &mlp->up, err)) ||
            (st = bind_linear(m, l, "mlp.down_proj", c->dim, c->hidden_dim, false, &mlp->down, err)))
            return st;
    }
    return FIPSC_OK;
}

/* Classifies a tensor by its Hugging Face name. */
static bool name_has(const char *name, const char *part) { return strstr(name, part) != NULL; }

fipsc_param_counts fipsc_model_count_params(const fipsc_model *m)
{
    fipsc_param_counts pc = {0};
    for (int i = 0; i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        long long n = fipsc_shape_numel(t->ndim, t->shape);
        const char *nm = t->name;
        /* MLP weight matrices only: biases and norms are "other", matching the paper's count of
         * compressible MLP parameters. */
        if (name_has(nm, "norm"))
            pc.other += n; /* input/post-attention/final norms, ViT layernorm_before/after */
        else if ((name_has(nm, ".mlp.") || name_has(nm, ".intermediate.dense.") ||
             name_has(nm, ".output.dense.") || name_has(nm, ".mlp_")) &&
            !name_has(nm, "attention") && t->ndim == 2)
            pc.mlp += n;
        else if (name_has(nm, "attn") || name_has(nm, "attention"))
            pc.attention += n;
        else if (name_has(nm, "embed") || name_has(nm, "lm_head") || name_has(nm, "embeddings"))
            pc.embeddings += n;
        else
            pc.other += n;
        pc.total += n;
    }
    /* FiPS-compressed matrices have no dense tensor: their kept parameters (d·r per basis + the
     * stored entries of every V_i) are MLP parameters. */
    long long compressed = fipsc_model_factored_params(m);
    pc.mlp += compressed;
    pc.total += compressed;
    return pc;
}
