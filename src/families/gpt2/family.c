/* GPT-2 as a plug-in (src/model/family.h): Hugging Face GPT2LMHeadModel checkpoints, a language
 * model (logits, MLP capture, KV-cached sessions), exported back as a Hugging Face directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "families/gpt2/gpt2.h"

static fipsc_status config_to_json(const fipsc_model *m, char **out, fipsc_error *err)
{
    const fipsc_gpt2 *v = fipsc_model_gpt2(m);
    if (!v || !v->cfg.config_text || !(*out = strdup(v->cfg.config_text)))
        return fipsc_fail(err, v ? FIPSC_ERR_NOMEM : FIPSC_ERR_ARG, "%s: no GPT-2 configuration text", m->arch_name);
    return FIPSC_OK;
}

static bool is_tensor(const fipsc_model *m, const char *name)
{
    const fipsc_gpt2 *v = fipsc_model_gpt2(m);
    return v && fipsc_gpt2_is_tensor(name, &v->cfg);
}

static fipsc_status describe(const fipsc_model *m, cJSON **json, char **text, fipsc_error *err)
{
    const fipsc_gpt2_config *c = &fipsc_model_gpt2(m)->cfg;
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "name", m->arch_name);
    cJSON_AddNumberToObject(a, "dim", c->dim);
    cJSON_AddNumberToObject(a, "hidden_dim", c->hidden);
    cJSON_AddNumberToObject(a, "n_layers", c->n_layers);
    cJSON_AddNumberToObject(a, "n_heads", c->n_heads);
    cJSON_AddNumberToObject(a, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(a, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(a, "max_seq_len", c->n_positions);
    cJSON_AddItemToObject(a, "norm_eps", fipsc_json_float(c->ln_eps));
    cJSON_AddStringToObject(a, "activation", fipsc_activation_name(c->act));
    cJSON_AddBoolToObject(a, "tie_embeddings", c->tie_embeddings);
    cJSON_AddNumberToObject(a, "bos_token", c->bos_token);
    cJSON_AddNumberToObject(a, "eos_token", c->eos_token);
    char *t = malloc(512);
    if (!t) {
        cJSON_Delete(a);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    snprintf(t, 512,
             "architecture %s: dim %d, hidden %d, %d layers, %d heads, vocab %d, %d positions\n"
             "  head_dim %d, layer_norm_epsilon %g, activation %s, %s head, attention scale %s%s, bos %d, eos %d\n",
             m->arch_name, c->dim, c->hidden, c->n_layers, c->n_heads, c->vocab_size, c->n_positions, c->head_dim,
             cJSON_GetNumberValue(cJSON_GetObjectItem(a, "norm_eps")), fipsc_activation_name(c->act),
             c->tie_embeddings ? "tied" : "separate", c->scale_attn ? "1/sqrt(head_dim)" : "1",
             c->scale_by_layer ? " / (layer + 1)" : "", c->bos_token, c->eos_token);
    *json = a;
    *text = t;
    return FIPSC_OK;
}

/* ---- the language-model capability --------------------------------------------------------- */

static void lm_info(const fipsc_model *m, fipsc_lm_info *out)
{
    const fipsc_gpt2_config *c = &fipsc_model_gpt2(m)->cfg;
    *out = (fipsc_lm_info){.vocab_size = c->vocab_size, .context = c->n_positions, .bos_token = c->bos_token,
                           .eos_token = c->eos_token,
                           .cache_bytes_per_position = 2LL * c->n_layers * c->dim * (int64_t)sizeof(float)};
}

/* The family's sessions are fipsc_gpt2_session; the capability table sees them opaque. */
static fipsc_status session_new(const fipsc_model *m, int max_len, fipsc_lm_session **out, fipsc_error *err)
{
    return fipsc_gpt2_session_new(m, max_len, (fipsc_gpt2_session **)out, err);
}
static void session_free(fipsc_lm_session *s) { fipsc_gpt2_session_free((fipsc_gpt2_session *)s); }
static void session_reset(fipsc_lm_session *s) { fipsc_gpt2_session_reset((fipsc_gpt2_session *)s); }
static fipsc_status session_prefill(fipsc_lm_session *s, const int32_t *tokens, int n, float *last_logits,
                                    fipsc_error *err)
{
    return fipsc_gpt2_session_prefill((fipsc_gpt2_session *)s, tokens, n, last_logits, err);
}
static fipsc_status session_decode(fipsc_lm_session *s, int32_t token, float *logits, fipsc_error *err)
{
    return fipsc_gpt2_session_prefill((fipsc_gpt2_session *)s, &token, 1, logits, err);
}

static const fipsc_lm_ops lm = {
    .info = lm_info,
    .forward = fipsc_gpt2_forward,
    .session_new = session_new,
    .session_free = session_free,
    .session_reset = session_reset,
    .session_prefill = session_prefill,
    .session_decode = session_decode,
};

/* The language-model settings tuned on stories260K (BENCHMARKS.md); not yet tuned for GPT-2. */
static const fipsc_family_defaults defaults = {
    .groups = "2", .schedule = FIPSC_FIPS_MASK_GMP, .mode = FIPSC_FIPS_JOINT, .sparsity = 0.75,
    .steps = 4000, .batch_rows = 128, .lr = 1e-2f, .lr_min = 1e-4f, .weight_decay = 0.0f,
    .lr_width = 64, /* stories260K's d */
};

const fipsc_family fipsc_family_gpt2 = {
    .name = "gpt2",
    .title = "GPT-2 (GPT2LMHeadModel)",
    .probe = fipsc_gpt2_probe,
    .load = fipsc_gpt2_load,
    .config_to_json = config_to_json,
    .config_from_json = fipsc_gpt2_configure_text,
    .is_tensor = is_tensor,
    .bind = fipsc_gpt2_bind,
    .tensor_role = fipsc_gpt2_tensor_role,
    .describe = describe,
    .export_dense = fipsc_gpt2_export,
    .export_form = "a Hugging Face checkpoint directory",
    .export_is_directory = true,
    .defaults = &defaults,
    .lm = &lm,
};
