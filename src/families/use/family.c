/* The sentence-encoder family as a plug-in (src/model/family.h): the Universal Sentence Encoder
 * Lite, from its TF.js graph model or from the .safetensors file `fipsc import-tfjs` writes. */
#include <stdio.h>
#include <stdlib.h>

#include "core/json.h"
#include "families/use/compressed.h"
#include "families/use/distill.h"
#include "families/use/use.h"

static fipsc_probe probe(const char *path, fipsc_error *why)
{
    (void)why;
    return fipsc_use_path_is_use(path) ? FIPSC_PROBE_YES : FIPSC_PROBE_NO;
}

static fipsc_status describe(const fipsc_model *m, cJSON **json, char **text, fipsc_error *err)
{
    const fipsc_use *u = fipsc_model_use(m);
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "name", m->arch_name);
    cJSON_AddNumberToObject(a, "embed_dim", u->embed_dim);
    cJSON_AddNumberToObject(a, "dim", u->dim);
    cJSON_AddNumberToObject(a, "hidden_dim", u->hidden);
    cJSON_AddNumberToObject(a, "n_layers", u->n_layers);
    cJSON_AddNumberToObject(a, "n_heads", u->n_heads);
    cJSON_AddNumberToObject(a, "vocab_size", u->vocab_size);
    cJSON_AddNumberToObject(a, "max_tokens", u->max_tokens);
    cJSON_AddItemToObject(a, "norm_eps", fipsc_json_float(u->ln_eps));
    cJSON_AddStringToObject(a, "activation", "relu");
    char *t = malloc(512);
    if (!t) {
        cJSON_Delete(a);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    snprintf(t, 512,
             "architecture %s: dim %d, hidden %d, %d layers, %d heads, embeddings %d wide, vocab %d\n"
             "  max_tokens %d, layer_norm_eps %g, activation relu, mean pooling, tanh dense, L2 norm\n",
             m->arch_name, u->dim, u->hidden, u->n_layers, u->n_heads, u->embed_dim, u->vocab_size, u->max_tokens,
             cJSON_GetNumberValue(cJSON_GetObjectItem(a, "norm_eps")));
    *json = a;
    *text = t;
    return FIPSC_OK;
}

static fipsc_status export_dense(const fipsc_model *m, const char *path, bool overwrite, fipsc_error *err)
{
    (void)overwrite; /* one file, replaced atomically */
    return fipsc_use_write_safetensors(m, path, err);
}

/* ---- the sentence-encoder capability -------------------------------------------------------- */

static void encoder_info(const fipsc_model *m, fipsc_encoder_info *out)
{
    const fipsc_use *u = fipsc_model_use(m);
    *out = (fipsc_encoder_info){.dim = u->dim, .max_tokens = u->max_tokens};
}

static const fipsc_encoder_ops encoder = {
    .info = encoder_info,
    .tokenize = fipsc_use_tokenize,
    .encode = fipsc_use_encode,
    .embed = fipsc_use_embed,
    .distill = fipsc_use_distill,
};

/* Tuned on STS-B (BENCHMARKS.md): one basis for both MLPs. */
static const fipsc_family_defaults defaults = {
    .groups = "0-1", .schedule = FIPSC_FIPS_MASK_GMP, .mode = FIPSC_FIPS_JOINT, .sparsity = 0.75,
    .steps = 400, .batch_rows = 2048, .lr = 1e-3f, .lr_min = 1e-5f, .weight_decay = 0.0f,
    .lr_width = 512, /* USE-Lite's d */
};

const fipsc_family fipsc_family_use = {
    .name = USE_CF_ARCH_NAME,
    .title = "Universal Sentence Encoder Lite (TF.js graph model, or its import)",
    .probe = probe,
    .load = fipsc_use_load,
    .config_to_json = use_cf_config_to_json,
    .config_from_json = use_cf_config_from_json,
    .is_tensor = use_cf_is_tensor,
    .bind = use_cf_bind,
    .describe = describe,
    .export_dense = export_dense,
    .export_form = "one .safetensors file",
    .defaults = &defaults,
    .encoder = &encoder,
};
