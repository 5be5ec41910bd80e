/* Names and per-architecture hooks of the compressed format (see compressed_format.h).
 *
 * Only the Llama family is wired: its configuration is the Hugging Face config.json. ViT and the
 * sentence encoder (plain MLPs with biases, reached through fipsc_model.mlps like every MLP) need
 * three things to join: a config-to-JSON function (the encoder has fipsc_use_config_to_json; ViT
 * has none yet), their tensor-name predicate, and a bind that looks weights up through
 * fipsc_model_bind_weight so that compressed weights bind to their factored form. */
#include "model/compressed_format.h"

#include <stdio.h>
#include <string.h>

#include "families/llama/hf.h"
#include "families/use/compressed.h"
#include "families/vit/compressed.h"

bool cf_v_name(char *buf, size_t cap, const char *weight_name, const char *suffix)
{
    size_t n = strlen(weight_name);
    static const char weight[] = ".weight";
    if (n >= sizeof weight - 1 && strcmp(weight_name + n - (sizeof weight - 1), weight) == 0)
        n -= sizeof weight - 1;
    int written = snprintf(buf, cap, "%.*s%s", (int)n, weight_name, suffix);
    return written >= 0 && (size_t)written < cap;
}

void cf_u_name(char *buf, size_t cap, int group) { snprintf(buf, cap, "fips.groups.%d.U", group); }

/* ---------------------------------------------------------------- Llama family */

static fipsc_status llama_config_to_json(const fipsc_model *m, char **out, fipsc_error *err)
{
    return fipsc_hf_config_to_json(&m->cfg, out, err);
}

static fipsc_status llama_config_from_json(fipsc_model *m, const char *text, const char *origin,
                                           fipsc_error *err)
{
    return fipsc_hf_parse_config(text, origin, &m->cfg, err);
}

static bool llama_is_tensor(const fipsc_model *m, const char *name)
{
    return fipsc_hf_llama_is_tensor(name, &m->cfg);
}

static const cf_arch cf_arches[] = {
    {"llama", FIPSC_ARCH_LLAMA, llama_config_to_json, llama_config_from_json, llama_is_tensor,
     fipsc_model_bind_llama},
    /* the sentence encoder: configuration and vocabulary in one entry (families/use/compressed.h) */
    {USE_CF_ARCH_NAME, FIPSC_ARCH_USE, use_cf_config_to_json, use_cf_config_from_json, use_cf_is_tensor,
     use_cf_bind},
    /* ViT / DeiT: config.json with the preprocessing embedded (families/vit/compressed.h) */
    {VIT_CF_ARCH_NAME, FIPSC_ARCH_VIT, vit_cf_config_to_json, vit_cf_config_from_json, vit_cf_is_tensor,
     vit_cf_bind},
};
static const int n_arches = (int)(sizeof cf_arches / sizeof cf_arches[0]);

const cf_arch *cf_arch_of_model(const fipsc_model *m, fipsc_error *err)
{
    for (int i = 0; i < n_arches; i++)
        if (cf_arches[i].arch == m->cfg.arch) return &cf_arches[i];
    fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
               "%s: the compressed format does not support this architecture yet",
               m->cfg.arch_name[0] ? m->cfg.arch_name : "model");
    return NULL;
}

const cf_arch *cf_arch_named(const char *name)
{
    for (int i = 0; i < n_arches; i++)
        if (strcmp(cf_arches[i].name, name) == 0) return &cf_arches[i];
    return NULL;
}
