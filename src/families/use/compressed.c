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

/* The configuration waits in the model's view until use_cf_bind: fipsc_model_bind_use builds the
 * view in that same allocation (it reuses a registered view). */
fipsc_status use_cf_config_from_json(fipsc_model *m, const char *text, const char *origin,
                                     fipsc_error *err)
{
    if (m->view) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: the model has a view already", origin);
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
        fipsc_sp_free(u->tokenizer);
        free(u->vocab_json);
        free(u);
        return st;
    }
    return fipsc_use_set_view(m, u, err); /* takes u, even when it fails */
}

bool use_cf_is_tensor(const fipsc_model *m, const char *name)
{
    const fipsc_use *u = fipsc_model_use(m);
    return u && fipsc_use_is_tensor(u, name);
}

fipsc_status use_cf_bind(fipsc_model *m, fipsc_error *err)
{
    fipsc_use *u = m->family == &fipsc_family_use ? m->view : NULL;
    if (!u) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "use_cf_bind: no configuration was read");
    return fipsc_model_bind_use(m, u, err);
}
