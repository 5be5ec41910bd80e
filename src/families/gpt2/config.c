/* GPT-2's configuration (config.json, transformers' GPT2Config) and its tensor names (see
 * src/families/gpt2/gpt2.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "families/gpt2/gpt2.h"

/* Bounds that keep size products far inside int and catch garbage early. */
#define MAX_DIM (1 << 16)
#define MAX_LAYERS 1024
#define MAX_VOCAB (1 << 24)
#define MAX_POSITIONS (1 << 20)

bool fipsc_gpt2_config_is_gpt2(const char *json_text)
{
    cJSON *root = cJSON_Parse(json_text);
    const char *model_type = NULL, *arch = cJSON_IsObject(root) ? fipsc_json_architecture(root, &model_type) : NULL;
    bool yes = cJSON_IsObject(root) &&
               (arch ? strcmp(arch, "GPT2LMHeadModel") == 0 : model_type && strcmp(model_type, "gpt2") == 0);
    cJSON_Delete(root);
    return yes;
}

void fipsc_gpt2_config_free(fipsc_gpt2_config *c)
{
    if (!c) return;
    free(c->config_text);
    c->config_text = NULL;
}

/* The parts after the defaults: every key, then the checks between keys. */
static fipsc_status parse_keys(const cJSON *root, const char *origin, fipsc_gpt2_config *c, fipsc_error *err)
{
    fipsc_status st;
    bool cross = false, given; /* given: whether an optional key was there (absent keeps the default) */
    int inner = 0;
    if ((st = fipsc_json_int(root, origin, "vocab_size", 1, MAX_VOCAB, &given, &c->vocab_size, err)) ||
        (st = fipsc_json_int(root, origin, "n_positions", 1, MAX_POSITIONS, &given, &c->n_positions, err)) ||
        (st = fipsc_json_int(root, origin, "n_embd", 1, MAX_DIM, &given, &c->dim, err)) ||
        (st = fipsc_json_int(root, origin, "n_layer", 1, MAX_LAYERS, &given, &c->n_layers, err)) ||
        (st = fipsc_json_int(root, origin, "n_head", 1, MAX_DIM, &given, &c->n_heads, err)) ||
        (st = fipsc_json_int(root, origin, "n_inner", 1, 1 << 20, &given, &inner, err)) ||
        (st = fipsc_json_int(root, origin, "bos_token_id", 0, MAX_VOCAB, &given, &c->bos_token, err)) ||
        (st = fipsc_json_int(root, origin, "eos_token_id", 0, MAX_VOCAB, &given, &c->eos_token, err)) ||
        (st = fipsc_json_bool(root, origin, "scale_attn_weights", &c->scale_attn, err)) ||
        (st = fipsc_json_bool(root, origin, "scale_attn_by_inverse_layer_idx", &c->scale_by_layer, err)) ||
        (st = fipsc_json_bool(root, origin, "tie_word_embeddings", &c->tie_embeddings, err)) ||
        (st = fipsc_json_bool(root, origin, "add_cross_attention", &cross, err)))
        return st;
    c->hidden = inner ? inner : 4 * c->dim;
    if (cross) return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: add_cross_attention is not supported", origin);
    if ((st = fipsc_json_positive(root, origin, "layer_norm_epsilon", &c->ln_eps, err))) return st;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) return fipsc_json_bad_key(origin, "activation_function", "a string", v, err);
        if (!fipsc_activation_parse(v->valuestring, &c->act))
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: activation_function '%s' is not supported", origin,
                              v->valuestring);
    }
    if (c->dim % c->n_heads)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: n_embd %d is not a multiple of n_head %d", origin, c->dim,
                          c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    if (c->bos_token >= c->vocab_size || c->eos_token >= c->vocab_size)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: bos_token_id %d / eos_token_id %d outside the vocabulary of %d",
                          origin, c->bos_token, c->eos_token, c->vocab_size);
    return FIPSC_OK;
}

fipsc_status fipsc_gpt2_parse_config(const char *json_text, const char *origin, fipsc_gpt2_config *c,
                                     fipsc_error *err)
{
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a JSON object", origin);
    }
    const char *model_type, *arch = fipsc_json_architecture(root, &model_type);
    fipsc_status st = FIPSC_OK;
    if (arch ? strcmp(arch, "GPT2LMHeadModel") != 0 : !model_type || strcmp(model_type, "gpt2") != 0) {
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: architecture '%s' is not GPT2LMHeadModel", origin,
                        arch ? arch : model_type ? model_type : "(no 'architectures' key)");
    } else {
        /* transformers' GPT2Config defaults (the 124M model) */
        *c = (fipsc_gpt2_config){.vocab_size = 50257, .n_positions = 1024, .dim = 768, .n_layers = 12,
                                 .n_heads = 12, .ln_eps = 1e-5f, .act = FIPSC_ACT_GELU_TANH, .scale_attn = true,
                                 .tie_embeddings = true, .bos_token = 50256, .eos_token = 50256};
        st = parse_keys(root, origin, c, err);
        if (!st && !(c->config_text = strdup(json_text))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(root);
    if (st) fipsc_gpt2_config_free(c);
    return st;
}

/* ------------------------------------------------------------------ tensor names */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool fipsc_gpt2_is_conv1d_weight(const char *name)
{
    return strncmp(name, "transformer.h.", 14) == 0 &&
           (ends_with(name, ".attn.c_attn.weight") || ends_with(name, ".attn.c_proj.weight") ||
            ends_with(name, ".mlp.c_fc.weight") || ends_with(name, ".mlp.c_proj.weight"));
}

bool fipsc_gpt2_is_tensor(const char *name, const fipsc_gpt2_config *c)
{
    if (strcmp(name, "lm_head.weight") == 0) return !c->tie_embeddings;
    static const char top[] = "transformer.";
    if (strncmp(name, top, sizeof top - 1) != 0) return false;
    const char *rest = name + sizeof top - 1;
    static const char *const global[] = {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"};
    for (size_t i = 0; i < sizeof global / sizeof *global; i++)
        if (strcmp(rest, global[i]) == 0) return true;
    if (strncmp(rest, "h.", 2) != 0) return false;
    char *end;
    long l = strtol(rest + 2, &end, 10);
    if (end == rest + 2 || *end != '.' || l < 0 || l >= c->n_layers) return false;
    char canonical[32];
    int n = snprintf(canonical, sizeof canonical, "h.%ld.", l);
    if (strncmp(rest, canonical, (size_t)n) != 0) return false; /* "h.01." is not block 1 */
    static const char *const per_block[] = {
        "ln_1.weight",      "ln_1.bias",      "attn.c_attn.weight", "attn.c_attn.bias",  "attn.c_proj.weight",
        "attn.c_proj.bias", "ln_2.weight",    "ln_2.bias",          "mlp.c_fc.weight",   "mlp.c_fc.bias",
        "mlp.c_proj.weight", "mlp.c_proj.bias"};
    for (size_t i = 0; i < sizeof per_block / sizeof *per_block; i++)
        if (strcmp(rest + n, per_block[i]) == 0) return true;
    return false;
}
