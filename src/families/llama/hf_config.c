/* Hugging Face config.json <-> fipsc_config for the Llama family (see src/families/llama/hf.h).
 *
 * Every key is checked for its JSON type and range, and every failure names the file and the
 * key. Defaults are the ones transformers applies when a key is absent, so that a config.json
 * means here what it means to transformers. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "families/llama/hf.h"

typedef enum { FAMILY_LLAMA, FAMILY_MISTRAL, FAMILY_QWEN2, FAMILY_GEMMA, FAMILY_GEMMA2, FAMILY_PHI3 } family;

static const struct {
    const char *architecture, *model_type;
    family fam;
    int default_max_positions; /* transformers' default max_position_embeddings */
    int default_bos, default_eos;
} families[] = {
    {"LlamaForCausalLM", "llama", FAMILY_LLAMA, 2048, 1, 2},
    {"MistralForCausalLM", "mistral", FAMILY_MISTRAL, 4096 * 32, 1, 2},
    {"Qwen2ForCausalLM", "qwen2", FAMILY_QWEN2, 32768, -1, -1},
    {"GemmaForCausalLM", "gemma", FAMILY_GEMMA, 8192, 2, 1},
    {"Gemma2ForCausalLM", "gemma2", FAMILY_GEMMA2, 8192, 2, 1},
    {"Phi3ForCausalLM", "phi3", FAMILY_PHI3, 4096, 1, 32000},
};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

/* Upper bounds that keep every size product far inside int64 and catch garbage early. */
#define MAX_DIM (1 << 20)
#define MAX_LAYERS 4096
#define MAX_VOCAB (1 << 24)

/* A token id: absent keeps *out, null means none (-1), a list keeps its first entry. */
static fipsc_status get_token(const cJSON *root, const char *origin, const char *key, int *out,
                              fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return FIPSC_OK;
    if (cJSON_IsNull(v)) {
        *out = -1;
        return FIPSC_OK;
    }
    const cJSON *first = v;
    if (cJSON_IsArray(v)) {
        first = cJSON_GetArrayItem(v, 0);
        if (!first) {
            *out = -1;
            return FIPSC_OK;
        }
    }
    double d = cJSON_IsNumber(first) ? first->valuedouble : NAN;
    if (!cJSON_IsNumber(first) || d != floor(d) || d < 0 || d >= MAX_VOCAB) {
        char got[64];
        fipsc_json_brief(v, got, sizeof got);
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: key '%s' must be a token id (or a list of them, or null), got %s",
                          origin, key, got);
    }
    *out = (int)d;
    return FIPSC_OK;
}

/* Finds the family from "architectures" (or "model_type" when architectures is absent). */
static fipsc_status get_family(const cJSON *root, const char *origin, int *index, fipsc_error *err)
{
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (archs && !cJSON_IsNull(archs)) {
        const cJSON *first = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
        if (!cJSON_IsString(first)) {
            char got[64];
            fipsc_json_brief(archs, got, sizeof got);
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: key 'architectures' must be a non-empty list of strings, got %s",
                              origin, got);
        }
        for (int i = 0; i < N_FAMILIES; i++)
            if (strcmp(first->valuestring, families[i].architecture) == 0) {
                *index = i;
                return FIPSC_OK;
            }
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: architecture '%s' is not supported (expected LlamaForCausalLM, "
                          "MistralForCausalLM, Qwen2ForCausalLM, Phi3ForCausalLM, GemmaForCausalLM or "
                          "Gemma2ForCausalLM)",
                          origin, first->valuestring);
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(type)) {
        for (int i = 0; i < N_FAMILIES; i++)
            if (strcmp(type->valuestring, families[i].model_type) == 0) {
                *index = i;
                return FIPSC_OK;
            }
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: model_type '%s' is not supported (expected llama, mistral, qwen2, phi3, gemma or gemma2)",
                          origin, type->valuestring);
    }
    return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: missing required key 'architectures'", origin);
}

/* Rejects configuration features that the Llama runtime does not implement, instead of silently
 * computing something else. */
static fipsc_status check_unsupported(const cJSON *root, const char *origin, family fam,
                                      fipsc_error *err)
{
    const cJSON *v = NULL;
    if (fam == FAMILY_GEMMA || fam == FAMILY_GEMMA2) {
        /* transformers' Gemma MLPs use hidden_activation (absent: gelu_pytorch_tanh) and ignore
         * hidden_act */
        v = cJSON_GetObjectItemCaseSensitive(root, "hidden_activation");
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && strcmp(v->valuestring, "gelu_pytorch_tanh") == 0)) {
            char got[64];
            fipsc_json_brief(v, got, sizeof got);
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "%s: hidden_activation %s is not supported (Gemma's MLP uses \"gelu_pytorch_tanh\")",
                              origin, got);
        }
        return FIPSC_OK;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && strcmp(v->valuestring, "silu") == 0)) {
        char got[64];
        fipsc_json_brief(v, got, sizeof got);
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: hidden_act %s is not supported (the Llama MLP uses \"silu\")", origin, got);
    }
    bool flag = false;
    fipsc_status st;
    if (fam != FAMILY_QWEN2) {
        /* transformers' Llama puts attention_bias on q, k, v and o alike; fipsc's model has no
         * o_proj bias. Qwen2 always has q/k/v biases and never an o_proj one. */
        if ((st = fipsc_json_bool(root, origin, "attention_bias", &flag, err))) return st;
        if (flag)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "%s: attention_bias true (biases on q/k/v/o_proj) is not supported", origin);
    }
    if ((st = fipsc_json_bool(root, origin, "mlp_bias", &flag, err))) return st;
    if (flag)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: mlp_bias true is not supported", origin);
    return FIPSC_OK;
}

/* Phi-3: fused projections, a sliding window on every layer (null or absent: none), RoPE over the
 * whole head (a partial_rotary_factor other than 1 is refused). */
static fipsc_status parse_phi3(const cJSON *root, const char *origin, family fam, fipsc_config *c, fipsc_error *err)
{
    if (fam != FAMILY_PHI3) return FIPSC_OK;
    c->fused_proj = true;
    float partial = 1.0f;
    fipsc_status st = fipsc_json_positive(root, origin, "partial_rotary_factor", &partial, err);
    if (st) return st;
    if (partial != 1.0f)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: partial_rotary_factor %g is not supported (RoPE over the "
                          "whole head only)", origin, (double)partial);
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    if (!w || cJSON_IsNull(w)) return FIPSC_OK;
    bool present;
    if ((st = fipsc_json_int(root, origin, "sliding_window", 1, 1 << 30, &present, &c->sliding_window, err))) return st;
    c->window_all_layers = true;
    return FIPSC_OK;
}

/* A soft-capping value: absent keeps *out, null turns it off (0), else a positive number. */
static fipsc_status get_softcap(const cJSON *root, const char *origin, const char *key, float *out, fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (v && cJSON_IsNull(v)) {
        *out = 0;
        return FIPSC_OK;
    }
    return fipsc_json_positive(root, origin, key, out, err);
}

/* Gemma's and Gemma-2's keys, with transformers' defaults (Gemma2Config: query_pre_attn_scalar
 * 256, attn_logit_softcapping 50, final_logit_softcapping 30, sliding_window 4096). */
static fipsc_status parse_gemma(const cJSON *root, const char *origin, family fam, fipsc_config *c, fipsc_error *err)
{
    if (fam != FAMILY_GEMMA && fam != FAMILY_GEMMA2) return FIPSC_OK;
    c->gemma = true;
    if (fam == FAMILY_GEMMA) return FIPSC_OK;
    c->post_norms = true;
    c->query_pre_attn_scalar = 256.0f;
    c->attn_softcap = 50.0f;
    c->final_softcap = 30.0f;
    c->sliding_window = 4096;
    fipsc_status st;
    bool present;
    if ((st = fipsc_json_positive(root, origin, "query_pre_attn_scalar", &c->query_pre_attn_scalar, err)) ||
        (st = get_softcap(root, origin, "attn_logit_softcapping", &c->attn_softcap, err)) ||
        (st = get_softcap(root, origin, "final_logit_softcapping", &c->final_softcap, err)) ||
        (st = fipsc_json_int(root, origin, "sliding_window", 1, 1 << 30, &present, &c->sliding_window, err)))
        return st;
    return FIPSC_OK;
}

/* rope_scaling: null or absent (plain RoPE), {"rope_type" (or "type"): "linear", "factor"},
 * Llama 3.1/3.2's {"rope_type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
 * "original_max_position_embeddings"}, or {"rope_type": "yarn", "factor",
 * "original_max_position_embeddings" (default: max_position_embeddings), "beta_fast" (32),
 * "beta_slow" (1)} with the attention factor 0.1·ln(factor) + 1, as current transformers and
 * llama.cpp compute it. YaRN variants the two disagree on or that llama.cpp's llama architecture
 * does not compute ("attention_factor", "mscale", "mscale_all_dim", "truncate": false) are refused
 * by name, as are other types (dynamic, longrope, ...). */
static fipsc_status parse_yarn(const cJSON *v, const char *where, int max_positions, fipsc_config *c, fipsc_error *err)
{
    static const char *const refused[] = {"attention_factor", "mscale", "mscale_all_dim"};
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, refused[k]);
        if (x && !cJSON_IsNull(x))
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s of type yarn with \"%s\" is not supported (fipsc "
                              "computes the attention factor 0.1·ln(factor) + 1, as llama.cpp does)", where, refused[k]);
    }
    const cJSON *truncate = cJSON_GetObjectItemCaseSensitive(v, "truncate");
    if (cJSON_IsFalse(truncate))
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s of type yarn with \"truncate\": false is not supported", where);
    c->rope_scaling = FIPSC_ROPE_YARN;
    c->rope_factor = 0;
    c->rope_beta_fast = 32.0f;
    c->rope_beta_slow = 1.0f;
    c->rope_original_context = max_positions;
    bool present = false;
    fipsc_status st;
    if ((st = fipsc_json_positive(v, where, "factor", &c->rope_factor, err)) ||
        (st = fipsc_json_positive(v, where, "beta_fast", &c->rope_beta_fast, err)) ||
        (st = fipsc_json_positive(v, where, "beta_slow", &c->rope_beta_slow, err)) ||
        (st = fipsc_json_int(v, where, "original_max_position_embeddings", 1, 1 << 30, &present, &c->rope_original_context,
                             err)))
        return st;
    if (!(c->rope_factor >= 1.0f) || c->rope_original_context <= 0 || !(c->rope_beta_fast > c->rope_beta_slow))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s of type yarn needs a factor of at least 1, beta_fast > beta_slow and "
                          "an original context (original_max_position_embeddings or max_position_embeddings)", where);
    return FIPSC_OK;
}

static fipsc_status parse_rope_scaling(const cJSON *root, const char *origin, fipsc_config *c, fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!v || cJSON_IsNull(v)) return FIPSC_OK;
    char where[512];
    snprintf(where, sizeof where, "%s: rope_scaling", origin);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "rope_type");
    if (!type) type = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (!cJSON_IsObject(v) || !cJSON_IsString(type)) {
        char got[64];
        fipsc_json_brief(v, got, sizeof got);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s must be an object with a \"rope_type\", got %s", where, got);
    }
    fipsc_status st;
    if (strcmp(type->valuestring, "default") == 0) return FIPSC_OK;
    if (strcmp(type->valuestring, "linear") == 0) {
        c->rope_scaling = FIPSC_ROPE_LINEAR;
        c->rope_factor = 0;
        if ((st = fipsc_json_positive(v, where, "factor", &c->rope_factor, err))) return st;
        if (c->rope_factor <= 0) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s needs a \"factor\"", where);
        return FIPSC_OK;
    }
    if (strcmp(type->valuestring, "yarn") == 0) return parse_yarn(v, where, c->max_seq_len, c, err);
    if (strcmp(type->valuestring, "llama3") != 0)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s type \"%s\" is not supported (fipsc computes \"linear\", \"llama3\" and \"yarn\")", where,
                          type->valuestring);
    c->rope_scaling = FIPSC_ROPE_LLAMA3;
    c->rope_factor = c->rope_low_freq_factor = c->rope_high_freq_factor = 0;
    bool present = false;
    if ((st = fipsc_json_positive(v, where, "factor", &c->rope_factor, err)) ||
        (st = fipsc_json_positive(v, where, "low_freq_factor", &c->rope_low_freq_factor, err)) ||
        (st = fipsc_json_positive(v, where, "high_freq_factor", &c->rope_high_freq_factor, err)) ||
        (st = fipsc_json_int(v, where, "original_max_position_embeddings", 1, 1 << 30, &present,
                             &c->rope_original_context, err)))
        return st;
    if (c->rope_factor <= 0 || c->rope_low_freq_factor <= 0 || !present ||
        !(c->rope_high_freq_factor > c->rope_low_freq_factor))
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s of type llama3 needs factor, low_freq_factor < high_freq_factor and "
                          "original_max_position_embeddings",
                          where);
    return FIPSC_OK;
}

static fipsc_status parse_root(const cJSON *root, const char *origin, fipsc_config *cfg,
                               fipsc_error *err)
{
    if (!cJSON_IsObject(root))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: the configuration is not a JSON object", origin);
    int fi = 0;
    fipsc_status st = get_family(root, origin, &fi, err);
    if (st) return st;
    family fam = families[fi].fam;
    if ((st = check_unsupported(root, origin, fam, err))) return st;

    fipsc_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch_name, sizeof c.arch_name, "%s", families[fi].architecture);
    if ((st = fipsc_json_int(root, origin, "hidden_size", 1, MAX_DIM, NULL, &c.dim, err)) ||
        (st = fipsc_json_int(root, origin, "intermediate_size", 1, MAX_DIM, NULL, &c.hidden_dim, err)) ||
        (st = fipsc_json_int(root, origin, "num_hidden_layers", 1, MAX_LAYERS, NULL, &c.n_layers, err)) ||
        (st = fipsc_json_int(root, origin, "num_attention_heads", 1, MAX_DIM, NULL, &c.n_heads, err)) ||
        (st = fipsc_json_int(root, origin, "vocab_size", 1, MAX_VOCAB, NULL, &c.vocab_size, err)))
        return st;

    bool present;
    if ((st = fipsc_json_int(root, origin, "num_key_value_heads", 1, MAX_DIM, &present, &c.n_kv_heads, err)))
        return st;
    if (!present) c.n_kv_heads = c.n_heads;
    if (c.n_heads % c.n_kv_heads != 0)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                          origin, c.n_heads, c.n_kv_heads);
    if ((st = fipsc_json_int(root, origin, "head_dim", 1, MAX_DIM, &present, &c.head_dim, err))) return st;
    if (!present && (fam == FAMILY_GEMMA || fam == FAMILY_GEMMA2)) c.head_dim = 256, present = true; /* Gemma's default */
    if (!present) {
        if (c.dim % c.n_heads != 0)
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: hidden_size %d is not divisible by num_attention_heads %d and "
                              "there is no head_dim key",
                              origin, c.dim, c.n_heads);
        c.head_dim = c.dim / c.n_heads;
    }
    if (c.head_dim % 2 != 0)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: head_dim %d is odd (rotary embeddings rotate pairs of dimensions)",
                          origin, c.head_dim);

    if ((st = fipsc_json_int(root, origin, "max_position_embeddings", 1, 1 << 30, &present, &c.max_seq_len, err)))
        return st;
    if (!present) c.max_seq_len = families[fi].default_max_positions;

    /* Sliding-window attention equals full attention over any context no longer than the window,
     * so capping the context at the window keeps the runtime exact. Mistral's default window is
     * 4096 (absent key); Qwen2 only slides when use_sliding_window is true. */
    bool slides = fam == FAMILY_MISTRAL;
    if (fam == FAMILY_QWEN2 && (st = fipsc_json_bool(root, origin, "use_sliding_window", &slides, err))) return st;
    if (slides) {
        int window = 4096;
        if ((st = fipsc_json_int(root, origin, "sliding_window", 1, 1 << 30, &present, &window, err))) return st;
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
        bool disabled = w && cJSON_IsNull(w);
        if (!disabled && window < c.max_seq_len) c.max_seq_len = window;
    }

    c.norm_eps = 1e-6f;
    c.rope_theta = 10000.0f;
    c.tie_embeddings = fam == FAMILY_GEMMA || fam == FAMILY_GEMMA2; /* Gemma's configs tie by default */
    if ((st = parse_gemma(root, origin, fam, &c, err)) || (st = parse_rope_scaling(root, origin, &c, err)) ||
        (st = parse_phi3(root, origin, fam, &c, err)))
        return st;
    c.qkv_bias = fam == FAMILY_QWEN2;
    c.bos_token = families[fi].default_bos;
    c.eos_token = families[fi].default_eos;
    if ((st = fipsc_json_positive(root, origin, "rms_norm_eps", &c.norm_eps, err)) ||
        (st = fipsc_json_positive(root, origin, "rope_theta", &c.rope_theta, err)) ||
        (st = fipsc_json_bool(root, origin, "tie_word_embeddings", &c.tie_embeddings, err)) ||
        (st = get_token(root, origin, "bos_token_id", &c.bos_token, err)) ||
        (st = get_token(root, origin, "eos_token_id", &c.eos_token, err)))
        return st;
    *cfg = c;
    return FIPSC_OK;
}

fipsc_status fipsc_hf_parse_config(const char *json_text, const char *origin, fipsc_config *cfg,
                                   fipsc_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json_text, &end, 1);
    if (!root) {
        size_t at = end && end >= json_text ? (size_t)(end - json_text) : 0;
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: invalid JSON near byte %zu", origin, at);
    }
    fipsc_status st = parse_root(root, origin, cfg, err);
    cJSON_Delete(root);
    return st;
}

fipsc_status fipsc_hf_config_to_json(const fipsc_config *cfg, char **out, fipsc_error *err)
{
    *out = NULL;
    int fi = 0; /* llama2.c and anything else of the Llama family: LlamaForCausalLM */
    for (int i = 0; i < N_FAMILIES; i++)
        if (strcmp(cfg->arch_name, families[i].architecture) == 0) fi = i;
    if (cfg->qkv_bias && families[fi].fam != FAMILY_QWEN2)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s with q/k/v biases has no config.json form (only Qwen2 has them)",
                          families[fi].architecture);

    cJSON *root = cJSON_CreateObject();
    cJSON *archs = cJSON_CreateArray();
    bool ok = root && archs && cJSON_AddItemToObject(root, "architectures", archs);
    if (!ok) cJSON_Delete(archs);
    ok = ok && cJSON_AddItemToArray(archs, cJSON_CreateString(families[fi].architecture)) &&
         cJSON_AddStringToObject(root, "model_type", families[fi].model_type) &&
         cJSON_AddNumberToObject(root, "hidden_size", cfg->dim) &&
         cJSON_AddNumberToObject(root, "intermediate_size", cfg->hidden_dim) &&
         cJSON_AddNumberToObject(root, "num_hidden_layers", cfg->n_layers) &&
         cJSON_AddNumberToObject(root, "num_attention_heads", cfg->n_heads) &&
         cJSON_AddNumberToObject(root, "num_key_value_heads", cfg->n_kv_heads) &&
         cJSON_AddNumberToObject(root, "head_dim", cfg->head_dim) &&
         cJSON_AddStringToObject(root, cfg->gemma ? "hidden_activation" : "hidden_act",
                                 cfg->gemma ? "gelu_pytorch_tanh" : "silu") &&
         cJSON_AddItemToObject(root, "rms_norm_eps", fipsc_json_float(cfg->norm_eps)) &&
         cJSON_AddItemToObject(root, "rope_theta", fipsc_json_float(cfg->rope_theta)) &&
         cJSON_AddBoolToObject(root, "tie_word_embeddings", cfg->tie_embeddings) &&
         cJSON_AddNumberToObject(root, "vocab_size", cfg->vocab_size) &&
         cJSON_AddNumberToObject(root, "max_position_embeddings", cfg->max_seq_len) &&
         (cfg->bos_token >= 0 ? cJSON_AddNumberToObject(root, "bos_token_id", cfg->bos_token) != NULL
                              : cJSON_AddNullToObject(root, "bos_token_id") != NULL) &&
         (cfg->eos_token >= 0 ? cJSON_AddNumberToObject(root, "eos_token_id", cfg->eos_token) != NULL
                              : cJSON_AddNullToObject(root, "eos_token_id") != NULL) &&
         cJSON_AddStringToObject(root, "torch_dtype", "float32");
    /* Explicit so that the file means the same to every transformers version. */
    if (ok && families[fi].fam == FAMILY_LLAMA)
        ok = cJSON_AddFalseToObject(root, "attention_bias") && cJSON_AddFalseToObject(root, "mlp_bias");
    if (ok && families[fi].fam == FAMILY_MISTRAL) ok = cJSON_AddNullToObject(root, "sliding_window");
    if (ok && cfg->rope_scaling != FIPSC_ROPE_NONE) {
        cJSON *rs = cJSON_AddObjectToObject(root, "rope_scaling");
        ok = rs && cJSON_AddStringToObject(rs, "rope_type", fipsc_llama_rope_scaling_name(cfg->rope_scaling)) &&
             cJSON_AddItemToObject(rs, "factor", fipsc_json_float(cfg->rope_factor));
        if (ok && cfg->rope_scaling == FIPSC_ROPE_LLAMA3)
            ok = cJSON_AddItemToObject(rs, "low_freq_factor", fipsc_json_float(cfg->rope_low_freq_factor)) &&
                 cJSON_AddItemToObject(rs, "high_freq_factor", fipsc_json_float(cfg->rope_high_freq_factor)) &&
                 cJSON_AddNumberToObject(rs, "original_max_position_embeddings", cfg->rope_original_context);
        if (ok && cfg->rope_scaling == FIPSC_ROPE_YARN)
            ok = cJSON_AddNumberToObject(rs, "original_max_position_embeddings", cfg->rope_original_context) &&
                 cJSON_AddItemToObject(rs, "beta_fast", fipsc_json_float(cfg->rope_beta_fast)) &&
                 cJSON_AddItemToObject(rs, "beta_slow", fipsc_json_float(cfg->rope_beta_slow));
    }
    if (ok && families[fi].fam == FAMILY_PHI3)
        ok = cfg->sliding_window > 0 ? cJSON_AddNumberToObject(root, "sliding_window", cfg->sliding_window) != NULL
                                     : cJSON_AddNullToObject(root, "sliding_window") != NULL;
    if (ok && families[fi].fam == FAMILY_GEMMA2) {
        ok = cJSON_AddItemToObject(root, "query_pre_attn_scalar", fipsc_json_float(cfg->query_pre_attn_scalar)) &&
             (cfg->attn_softcap > 0 ? cJSON_AddItemToObject(root, "attn_logit_softcapping", fipsc_json_float(cfg->attn_softcap))
                                    : cJSON_AddNullToObject(root, "attn_logit_softcapping") != NULL) &&
             (cfg->final_softcap > 0 ? cJSON_AddItemToObject(root, "final_logit_softcapping", fipsc_json_float(cfg->final_softcap))
                                     : cJSON_AddNullToObject(root, "final_logit_softcapping") != NULL) &&
             cJSON_AddNumberToObject(root, "sliding_window", cfg->sliding_window);
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory writing config.json");
    /* cJSON allocates with malloc (default hooks), so the caller's free() is correct. */
    *out = text;
    return FIPSC_OK;
}
