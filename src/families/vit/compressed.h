/* The Vision Transformer's hooks for the compressed format (model/compressed_format.h, cf_arch).
 *
 * A compressed ViT/DeiT needs its preprocessing as well as its configuration, and the format has
 * one configuration entry (__metadata__ "config"). So for this architecture that entry is the
 * checkpoint's config.json with one more member, FIPSC_VIT_PREPROC_KEY
 * ("fipsc_preprocessor_config"): the preprocessor_config.json object, when the checkpoint had one
 * (fipsc_vit_config_json). Reading parses both into a view without weights
 * (fipsc_vit_configure); the bind hook then binds the weights, the MLP matrices the layout names
 * to their factored forms (fipsc_vit_rebind, fipsc_model_bind_weight). */
#ifndef FIPSC_IO_VIT_COMPRESSED_H
#define FIPSC_IO_VIT_COMPRESSED_H

#include <stdbool.h>

#include "model/model.h"
#include "core/status.h"

/* The layout's "architecture" value for ViT / DeiT classifiers. */
#define VIT_CF_ARCH_NAME "vit"

fipsc_status vit_cf_config_to_json(const fipsc_model *m, char **out, fipsc_error *err);
fipsc_status vit_cf_config_from_json(fipsc_model *m, const char *text, const char *origin,
                                     fipsc_error *err);
bool vit_cf_is_tensor(const fipsc_model *m, const char *name);
fipsc_status vit_cf_bind(fipsc_model *m, fipsc_error *err);

#endif
