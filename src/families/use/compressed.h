/* The sentence encoder's hooks for the compressed format (model/compressed_format.h, cf_arch).
 *
 * A compressed sentence encoder needs its tokenizer as well as its configuration, and the format
 * has one configuration entry (__metadata__ "config"). So for this architecture that entry is the
 * encoder's configuration JSON (fipsc_use_config_to_json) with one more member,
 * "sentencepiece_vocab": the vocabulary's JSON text (vocab.json, verbatim) as a JSON string.
 * Reading parses both and keeps them in the model until the bind hook builds the view; the MLP
 * weights the layout names then bind to their factored forms (fipsc_model_bind_weight). */
#ifndef FIPSC_IO_USE_COMPRESSED_H
#define FIPSC_IO_USE_COMPRESSED_H

#include <stdbool.h>

#include "model/model.h"
#include "core/status.h"

/* The layout's "architecture" value for the sentence encoder. */
#define USE_CF_ARCH_NAME "use-lite"

fipsc_status use_cf_config_to_json(const fipsc_model *m, char **out, fipsc_error *err);
fipsc_status use_cf_config_from_json(fipsc_model *m, const char *text, const char *origin,
                                     fipsc_error *err);
bool use_cf_is_tensor(const fipsc_model *m, const char *name);
fipsc_status use_cf_bind(fipsc_model *m, fipsc_error *err);

#endif
