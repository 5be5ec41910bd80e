/* The sentence encoder as one safetensors file: the tensors under fipsc's names ([out, in]),
 * the configuration and the SentencePiece vocabulary in __metadata__ (see src/families/use/use.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "families/use/use.h"

bool fipsc_use_is_tensor(const fipsc_use *u, const char *name)
{
    static const char *const fixed[] = {"embeddings.word_embeddings.weight",
                                        "embeddings.timing_inv_timescales", "pooler.dense.weight",
                                        "pooler.dense.bias"};
    static const char *const per_layer[] = {
        "attention_norm.weight", "attention_norm.bias", "attention.query.weight",
        "attention.query.bias", "attention.key.weight", "attention.key.bias",
        "attention.value.weight", "attention.value.bias", "attention.output.weight",
        "attention.output.bias", "mlp_norm.weight", "mlp_norm.bias", "mlp.fc1.weight",
        "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(name, fixed[i]) == 0) return true;
    int l, used = 0;
    if (sscanf(name, "encoder.layer.%d.%n", &l, &used) != 1 || used == 0 || l < 0 || l >= u->n_layers)
        return false;
    const char *rest = name + used;
    char check[64];
    snprintf(check, sizeof check, "encoder.layer.%d.", l);
    if (strncmp(name, check, strlen(check)) != 0) return false; /* "encoder.layer.01." */
    for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++)
        if (strcmp(rest, per_layer[i]) == 0) return true;
    bool projected = (l == 0 ? u->embed_dim : u->dim) != u->dim;
    return projected && (strcmp(rest, "residual_projection.weight") == 0 ||
                         strcmp(rest, "residual_projection.bias") == 0);
}

static void close_file(void *f) { fipsc_st_close(f); }

static fipsc_status load(fipsc_model *m, fipsc_st_file *f, const char *path, fipsc_error *err)
{
    fipsc_use u;
    memset(&u, 0, sizeof u);
    const char *config = fipsc_st_meta(f, FIPSC_USE_METADATA_CONFIG_KEY);
    const char *vocab = fipsc_st_meta(f, FIPSC_USE_METADATA_VOCAB_KEY);
    if (!config || !vocab)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: __metadata__ lacks the \"%s\" entry of a sentence encoder",
                          path, config ? FIPSC_USE_METADATA_VOCAB_KEY : FIPSC_USE_METADATA_CONFIG_KEY);
    char origin[4200];
    snprintf(origin, sizeof origin, "%s: __metadata__ \"%s\"", path, FIPSC_USE_METADATA_CONFIG_KEY);
    fipsc_status st = fipsc_use_parse_config(config, origin, &u, err);
    if (st) return st;
    for (int i = 0; i < fipsc_st_count(f); i++) {
        const fipsc_st_tensor *t = fipsc_st_at(f, i);
        if (!fipsc_use_is_tensor(&u, t->name))
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: unexpected tensor '%s' for a %s", path, t->name,
                              FIPSC_USE_ARCH_NAME);
        const float *view = fipsc_st_f32_view(t);
        float *owned = NULL;
        if (!view && (st = fipsc_st_to_f32(t, &owned, err))) return st;
        if ((st = fipsc_model_add_tensor(m, t->name, t->ndim, t->shape, owned ? owned : (float *)view,
                                         owned != NULL, t->dtype, err)))
            return st;
    }
    snprintf(origin, sizeof origin, "%s: __metadata__ \"%s\"", path, FIPSC_USE_METADATA_VOCAB_KEY);
    u.vocab_json_len = strlen(vocab);
    if (!(u.vocab_json = strdup(vocab))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory loading %s", path);
    if ((st = fipsc_sp_load_vocab(u.vocab_json, u.vocab_json_len, origin, u.tokenizer_reserved, &u.tokenizer, err))) {
        free(u.vocab_json);
        return st;
    }
    return fipsc_model_bind_use(m, &u, err);
}

fipsc_status fipsc_use_load_safetensors(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_st_file *f = NULL;
    fipsc_status st = fipsc_st_open(path, &f, err);
    if (st) return st;
    fipsc_model *m = fipsc_model_new();
    if (!m) {
        fipsc_st_close(f);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory loading %s", path);
    }
    /* The model borrows F32 tensors from the map: it keeps the file open until it is freed. */
    if ((st = fipsc_model_keep(m, f, close_file, err)) || (st = load(m, f, path, err)) ||
        (st = fipsc_model_check_finite(m, err))) {
        fipsc_model_free(m);
        return st;
    }
    if ((st = fipsc_model_set_source_path(m, path, err))) {
        fipsc_model_free(m);
        return st;
    }
    *out = m;
    return FIPSC_OK;
}

fipsc_status fipsc_use_write_safetensors(const fipsc_model *m, const char *path, fipsc_error *err)
{
    const fipsc_use *u = fipsc_model_use(m);
    if (!u) return fipsc_fail(err, FIPSC_ERR_ARG, "%s: the model is not a %s", path, FIPSC_USE_ARCH_NAME);
    for (int i = 0; i < m->n_mlps; i++)
        if (m->mlps[i]->up.factored || m->mlps[i]->down.factored)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "%s: MLP %d is FiPS-compressed; write it with the compressed-model writer",
                              path, i);
    fipsc_st_writer *w = fipsc_st_writer_new();
    if (!w) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory writing %s", path);
    char *config = NULL;
    fipsc_status st = fipsc_use_config_to_json(u, &config, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "format", "pt", err);
    if (!st) st = fipsc_st_writer_set_meta(w, FIPSC_USE_METADATA_CONFIG_KEY, config, err);
    if (!st) st = fipsc_st_writer_set_meta(w, FIPSC_USE_METADATA_VOCAB_KEY, u->vocab_json, err);
    for (int i = 0; !st && i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        st = fipsc_st_writer_add(w, t->name, FIPSC_F32, t->ndim, t->shape, t->data, err);
    }
    if (!st) st = fipsc_st_writer_write(w, path, err);
    free(config);
    fipsc_st_writer_free(w);
    return st;
}
