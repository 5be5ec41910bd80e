/* Loading Hugging Face Llama-family checkpoints (see src/families/llama/hf.h).
 *
 * The configuration comes from config.json (or the safetensors __metadata__); the weights from a
 * safetensors set (one file or the shards of an index). Every tensor is checked on the way in:
 * floating dtype, finite values, a name that belongs to the configured architecture; then the
 * Llama view is bound, which checks every shape against the configuration. Each error names the
 * file involved. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "families/llama/fused.h"
#include "families/llama/hf.h"
#include "formats/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/ingest.h"
#include "core/path.h"

static void close_set(void *set) { fipsc_st_set_close(set); }

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Whether name is a tensor of the Llama architecture that cfg describes. Buffers such as
 * rotary_emb.inv_freq are handled by the caller. */
static bool is_llama_tensor(const char *name, const fipsc_config *cfg)
{
    if (strcmp(name, "model.embed_tokens.weight") == 0 || strcmp(name, "model.norm.weight") == 0)
        return true;
    if (strcmp(name, "lm_head.weight") == 0) return !cfg->tie_embeddings;
    static const char prefix[] = "model.layers.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0) return false;
    char *end;
    long l = strtol(name + sizeof prefix - 1, &end, 10);
    if (end == name + sizeof prefix - 1 || *end != '.' || l < 0 || l >= cfg->n_layers) return false;
    /* reject non-canonical spellings ("model.layers.01."): bind_llama would not find them */
    char canonical[64];
    int n = snprintf(canonical, sizeof canonical, "model.layers.%ld.", l);
    if (strncmp(name, canonical, (size_t)n) != 0) return false;
    const char *suffix = name + n;
    static const char *const always[] = {
        "input_layernorm.weight",  "post_attention_layernorm.weight", "self_attn.q_proj.weight",
        "self_attn.k_proj.weight", "self_attn.v_proj.weight",         "self_attn.o_proj.weight",
        "mlp.gate_proj.weight",    "mlp.up_proj.weight",              "mlp.down_proj.weight"};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (strcmp(suffix, always[i]) == 0) return true;
    if (cfg->fused_proj && (strcmp(suffix, "self_attn.qkv_proj.weight") == 0 || strcmp(suffix, "mlp.gate_up_proj.weight") == 0))
        return true;
    if (cfg->post_norms && (strcmp(suffix, "pre_feedforward_layernorm.weight") == 0 ||
                            strcmp(suffix, "post_feedforward_layernorm.weight") == 0))
        return true;
    if (cfg->qkv_bias)
        return strcmp(suffix, "self_attn.q_proj.bias") == 0 || strcmp(suffix, "self_attn.k_proj.bias") == 0 ||
               strcmp(suffix, "self_attn.v_proj.bias") == 0;
    return false;
}

bool fipsc_hf_llama_is_tensor(const char *name, const fipsc_config *cfg)
{
    return is_llama_tensor(name, cfg);
}

/* Adds every tensor of the set to m: aligned F32 in place (the set is kept by m), F16/BF16 as
 * stored (fused Phi-3 projections, split at load, converted); with shapes_only, names and shapes alone (data NULL). `config_origin` names where
 * the configuration came from, for messages. */
static fipsc_status add_tensors(fipsc_model *m, const fipsc_st_set *set, const char *config_origin,
                                bool shapes_only, fipsc_error *err)
{
    int n = fipsc_st_set_count(set);
    for (int i = 0; i < n; i++) {
        const fipsc_st_tensor *t = fipsc_st_set_at(set, i);
        /* Older checkpoints store RoPE's inverse frequencies; they follow from rope_theta. */
        if (ends_with(t->name, ".rotary_emb.inv_freq")) continue;
        const fipsc_config *c = &fipsc_model_llama(m)->cfg;
        if (!is_llama_tensor(t->name, c))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: unexpected tensor '%s': not part of the %s with %d layers%s that "
                              "%s describes",
                              t->file, t->name, c->arch_name, c->n_layers,
                              c->tie_embeddings ? " and tied embeddings" : "", config_origin);
        fipsc_status st = shapes_only ? fipsc_model_add_tensor(m, t->name, t->ndim, t->shape, NULL, false, t->dtype, err)
                                      : fipsc_model_ingest(m, t, FIPSC_ERR_UNSUPPORTED, !c->fused_proj, err);
        if (st) return st;
    }
    return FIPSC_OK;
}

/* Builds the model from an opened set (which it takes over) and a parsed configuration. */
static fipsc_status build(fipsc_st_set *set, const fipsc_config *cfg, const char *source,
                          const char *config_origin, bool shapes_only, fipsc_model **out, fipsc_error *err)
{
    fipsc_model *m = fipsc_model_new();
    if (!m) {
        fipsc_st_set_close(set);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", source);
    }
    fipsc_status st = fipsc_model_keep(m, set, close_set, err);
    if (!st) st = fipsc_llama_configure(m, cfg, err);
    if (!st) st = fipsc_model_set_source_path(m, source, err);
    if (!st) st = add_tensors(m, set, config_origin, shapes_only, err);
    if (!st && cfg->fused_proj) st = fipsc_llama_split_fused(m, err);
    if (!st && (st = fipsc_llama_bind(m, err))) {
        const char *weights = fipsc_st_set_index_path(set);
        if (!weights) weights = fipsc_st_path(fipsc_st_set_shard(set, 0));
        fipsc_fail_context(err, "%s (configuration: %s): ", weights, config_origin);
    }
    if (st) {
        fipsc_model_free(m);
        return st;
    }
    *out = m;
    return FIPSC_OK;
}

/* The configuration of a checkpoint path, parsed; for a .safetensors path *set is the opened
 * file (NULL for a directory, which the caller opens as a set). */
static fipsc_status find_config(const char *path, fipsc_config *cfg, char *origin, size_t cap, fipsc_st_set **set,
                                fipsc_error *err)
{
    char *text;
    fipsc_status st = fipsc_hf_config_text(path, &text, origin, cap, set, err);
    if (st) return st;
    st = fipsc_hf_parse_config(text, origin, cfg, err);
    free(text);
    if (st) {
        fipsc_st_set_close(*set);
        *set = NULL;
    }
    return st;
}

fipsc_status fipsc_hf_find_config(const char *path, fipsc_config *cfg, fipsc_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    char origin[4200];
    fipsc_st_set *set;
    fipsc_status st = find_config(path, cfg, origin, sizeof origin, &set, err);
    fipsc_st_set_close(set);
    return st;
}

static fipsc_status load_path(const char *path, bool shapes_only, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    char origin[4200];
    fipsc_config cfg;
    fipsc_st_set *set;
    fipsc_status st = find_config(path, &cfg, origin, sizeof origin, &set, err);
    if (st) return st;
    if (!set && (st = fipsc_st_set_open(path, &set, err))) return st;
    /* Fused projections are split from their data: those checkpoints load whole. */
    return build(set, &cfg, path, origin, shapes_only && !cfg.fused_proj, out, err);
}

fipsc_status fipsc_hf_load_dir(const char *dir, fipsc_model **out, fipsc_error *err)
{
    return load_path(dir, false, out, err);
}

fipsc_status fipsc_hf_load_shapes(const char *path, fipsc_model **out, fipsc_error *err)
{
    return load_path(path, true, out, err);
}

fipsc_status fipsc_hf_load_safetensors(const char *path, fipsc_model **out, fipsc_error *err)
{
    return fipsc_hf_load_dir(path, out, err);
}
