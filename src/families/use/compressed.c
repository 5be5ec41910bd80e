/* The sentence encoder in the compressed format: its configuration entry (configuration plus
 * vocabulary), its tensor names, and its bind (see families/use/compressed.h). */
#include "families/use/compressed.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/sentencepiece.h"
#include "families/use/use.h"

/* The member of the configuration entry that carries vocab.json's text. */
#define VOCAB_MEMBER FIPSC_USE_METADATA_VOCAB_KEY

fipsc_status use_cf_config_to_json(const fipsc_model *m, char **out, fipsc_error *err)
{
    *out = NULL;
    const fipsc_use *u = fipsc_model_use(m);
    if (!u) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "use_cf_config_to_json: not a sentence encoder");
    if (!u->vocab_json)
        return fipsc_fail(err, FIPSC_ERR_ARG, "the sentence encoder has no vocabulary text to write");
    char *config = NULL;
    fipsc_status st = fipsc_use_config_to_json(u, &config, err);
    if (st) return st;
    cJSON *root = cJSON_Parse(config);
    free(config);
    /* the vocabulary text may hold NULs only if it was never valid JSON: strings stop there */
    if (!root || !cJSON_AddStringToObject(root, VOCAB_MEMBER, u->vocab_json)) {
        cJSON_Delete(root);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the sentence encoder's configuration");
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the sentence encoder's configuration");
    *out = strdup(text);
    cJSON_free(text);
    return *out ? FIPSC_OK : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
}

/* The configuration waits in m->use until use_cf_bind: fipsc_model_bind_use builds the view in
 * that same allocation (it reuses a registered view), which this releases like the view's own. */
static void release_pending(void *p)
{
    fipsc_use *u = p;
    fipsc_sp_free(u->tokenizer);
    free(u->vocab_json);
    free(u->layers);
    free(u);
}

fipsc_status use_cf_config_from_json(fipsc_model *m, const char *text, const char *origin,
                                     fipsc_error *err)
{
    if (m->use) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: the model has a sentence encoder already", origin);
    fipsc_use *u = calloc(1, sizeof *u);
    if (!u) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    fipsc_status st = fipsc_use_parse_config(text, origin, u, err);
    cJSON *root = st ? NULL : cJSON_Parse(text);
    const char *vocab = root ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, VOCAB_MEMBER)) : NULL;
    if (!st && !vocab)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: no \"%s\" string (the SentencePiece vocabulary)", origin,
                        VOCAB_MEMBER);
    if (!st) {
        u->vocab_json_len = strlen(vocab);
        if (!(u->vocab_json = strdup(vocab))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    if (!st)
        st = fipsc_sp_load_vocab(u->vocab_json, u->vocab_json_len, origin, u->tokenizer_reserved, &u->tokenizer,
                                 err);
    cJSON_Delete(root);
    if (st) {
        release_pending(u);
        return st;
    }
    if ((st = fipsc_model_keep(m, u, release_pending, err))) return st; /* released u */
    m->use = u;
    m->cfg.arch = FIPSC_ARCH_USE;
    snprintf(m->cfg.arch_name, sizeof m->cfg.arch_name, "%s", FIPSC_USE_ARCH_NAME);
    m->cfg.n_layers = u->n_layers;
    return FIPSC_OK;
}

bool use_cf_is_tensor(const fipsc_model *m, const char *name)
{
    return m->use && fipsc_use_is_tensor(m->use, name);
}

fipsc_status use_cf_bind(fipsc_model *m, fipsc_error *err)
{
    if (!m->use) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "use_cf_bind: no configuration was read");
    return fipsc_model_bind_use(m, m->use, err);
}
