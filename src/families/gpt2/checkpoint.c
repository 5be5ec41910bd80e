/* GPT-2 checkpoints in Hugging Face form: recognising, loading (names made canonical, Conv1D
 * weights transposed to [out, in]) and exporting (transposed back). See src/families/gpt2/gpt2.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "families/gpt2/gpt2.h"
#include "formats/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/hf_write.h"
#include "model/ingest.h"
#include "ops/transpose.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

fipsc_probe fipsc_gpt2_probe(const char *path, fipsc_error *why)
{
    (void)why;
    struct stat sb;
    if (stat(path, &sb) != 0 || (!S_ISDIR(sb.st_mode) && !ends_with(path, ".safetensors"))) return FIPSC_PROBE_NO;
    char *text, origin[4200];
    fipsc_st_set *set;
    fipsc_error e;
    bool yes = fipsc_hf_config_text(path, &text, origin, sizeof origin, &set, &e) == FIPSC_OK &&
               fipsc_gpt2_config_is_gpt2(text);
    fipsc_st_set_close(set);
    free(text);
    return yes ? FIPSC_PROBE_YES : FIPSC_PROBE_NO;
}

/* The canonical name of a checkpoint tensor (GPT2LMHeadModel's: "transformer." + GPT2Model's), or
 * NULL for a buffer that is no weight (the causal mask "attn.bias", "attn.masked_bias"). */
static const char *canonical_name(const char *name, char *buf, size_t cap)
{
    if (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias")) return NULL;
    if (strncmp(name, "transformer.", 12) == 0 || strcmp(name, "lm_head.weight") == 0) return name;
    snprintf(buf, cap, "transformer.%s", name);
    return buf;
}

static void free_model(void *m) { fipsc_model_free(m); }
static void close_set(void *set) { fipsc_st_set_close(set); }

/* Adds the tensors of set to m under canonical names. Each is first read into `raw` (converted
 * from F16/BF16, NaN/Inf checked: fipsc_model_ingest); m borrows it from there, except the Conv1D
 * weights, which m gets transposed (and raw drops at once, so a checkpoint is held about once). */
static fipsc_status add_tensors(fipsc_model *m, fipsc_model *raw, const fipsc_st_set *set,
                                const fipsc_gpt2_config *c, const char *origin, fipsc_error *err)
{
    char buf[512];
    for (int i = 0; i < fipsc_st_set_count(set); i++) {
        const fipsc_st_tensor *t = fipsc_st_set_at(set, i);
        const char *name = canonical_name(t->name, buf, sizeof buf);
        if (!name) continue;
        if (strcmp(name, "lm_head.weight") == 0 && c->tie_embeddings) continue; /* tied: transformers uses wte */
        if (!fipsc_gpt2_is_tensor(name, c))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: unexpected tensor '%s': not part of the GPT2LMHeadModel with %d layers%s that %s "
                              "describes",
                              t->file, t->name, c->n_layers, c->tie_embeddings ? " and a tied head" : "", origin);
        fipsc_status st = fipsc_model_ingest(raw, t, FIPSC_ERR_UNSUPPORTED, false, err);
        if (st) return st;
        const fipsc_tensor *r = &raw->tensors[raw->n_tensors - 1]; /* the one just ingested */
        if (!fipsc_gpt2_is_conv1d_weight(name) || r->ndim != 2) {
            st = fipsc_model_add_tensor(m, name, r->ndim, r->shape, r->data, false, r->source_dtype, err);
        } else {
            const int64_t shape[2] = {r->shape[1], r->shape[0]};
            float *w = malloc((size_t)(shape[0] * shape[1]) * sizeof *w);
            if (!w) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for '%s'", t->file, t->name);
            fipsc_transpose(r->data, r->shape[1], w, r->shape[0], r->shape[0], r->shape[1]);
            st = fipsc_model_add_tensor(m, name, 2, shape, w, true, r->source_dtype, err);
            if (!st) st = fipsc_model_remove_tensor(raw, t->name, err);
        }
        if (st) return st;
    }
    return FIPSC_OK;
}

fipsc_status fipsc_gpt2_load(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    char *text = NULL, origin[4200];
    fipsc_st_set *set = NULL;
    fipsc_gpt2_config c = {0};
    fipsc_model *m = NULL, *raw = NULL;
    fipsc_status st = fipsc_hf_config_text(path, &text, origin, sizeof origin, &set, err);
    if (!st) st = fipsc_gpt2_parse_config(text, origin, &c, err);
    free(text);
    if (!st && !set) st = fipsc_st_set_open(path, &set, err);
    if (!st && (!(m = fipsc_model_new()) || !(raw = fipsc_model_new())))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    const fipsc_st_set *tensors = set;
    if (!st) {
        /* raw keeps the mapping and m keeps raw, so borrowed tensors live as long as m; a failed
         * keep has released what it was given */
        st = fipsc_model_keep(raw, set, close_set, err);
        set = NULL;
        if (st) fipsc_model_free(raw);
        else st = fipsc_model_keep(m, raw, free_model, err);
        if (st) raw = NULL;
    }
    if (!st) st = fipsc_model_set_source_path(m, path, err);
    if (!st) st = add_tensors(m, raw, tensors, &c, origin, err);
    if (!st) st = fipsc_gpt2_configure(m, &c, err);
    if (!st && (st = fipsc_gpt2_bind(m, err))) fipsc_fail_context(err, "%s (configuration: %s): ", path, origin);
    fipsc_gpt2_config_free(&c);
    fipsc_st_set_close(set);
    if (st) {
        fipsc_model_free(m); /* and raw with it, once kept */
        return st;
    }
    *out = m;
    return FIPSC_OK;
}

fipsc_status fipsc_gpt2_export(const fipsc_model *m, const char *dir, bool overwrite, fipsc_error *err)
{
    const fipsc_gpt2 *v = fipsc_model_gpt2(m);
    if (!v) return fipsc_fail(err, FIPSC_ERR_ARG, "%s is not a GPT-2 model", m->arch_name);
    /* MLPs must be dense: a compressed one has no tensor to write. */
    for (int i = 0; i < m->n_mlps; i++)
        if (m->mlps[i]->up.factored || m->mlps[i]->down.factored)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "MLP %d is FiPS-compressed: a Hugging Face checkpoint needs dense weights", i);
    /* The checkpoint as transformers stores it: a model that borrows every tensor, except the
     * Conv1D weights, which it holds transposed back to [in, out]. */
    fipsc_model *hf = fipsc_model_new();
    if (!hf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    fipsc_status st = FIPSC_OK;
    for (int i = 0; !st && i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        if (!fipsc_gpt2_is_conv1d_weight(t->name) || t->ndim != 2) {
            st = fipsc_model_add_tensor(hf, t->name, t->ndim, t->shape, t->data, false, t->source_dtype, err);
            continue;
        }
        const int64_t shape[2] = {t->shape[1], t->shape[0]};
        float *w = malloc((size_t)(shape[0] * shape[1]) * sizeof *w);
        if (!w) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for '%s'", t->name);
            break;
        }
        fipsc_transpose(t->data, t->shape[1], w, t->shape[0], t->shape[0], t->shape[1]);
        st = fipsc_model_add_tensor(hf, t->name, 2, shape, w, true, t->source_dtype, err);
    }
    if (!st) st = fipsc_hf_write_dir(hf, dir, overwrite, v->cfg.config_text, NULL, err);
    fipsc_model_free(hf);
    return st;
}
