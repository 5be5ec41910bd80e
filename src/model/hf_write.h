/* Writing a model with dense MLPs as a Hugging Face checkpoint directory: config.json,
 * model.safetensors and, for image models, preprocessor_config.json. The family supplies the
 * texts (its export_dense hook calls this). */
#ifndef FIPSC_MODEL_HF_WRITE_H
#define FIPSC_MODEL_HF_WRITE_H

#include <stdbool.h>

#include "core/status.h"
#include "model/model.h"

/* The __metadata__ key under which every model.safetensors fipsc writes carries its config.json
 * text, so that the file alone is a complete checkpoint. */
#define FIPSC_HF_METADATA_CONFIG_KEY "config"

/* Writes DIR/config.json (config_text), DIR/model.safetensors (every tensor of m as F32 — one the
 * model keeps in its checkpoint's F16/BF16 as it is —, in the model's order, with __metadata__ {"format": "pt", "config": config_text}) and, when
 * preproc_text is not NULL, DIR/preprocessor_config.json. Every MLP must be dense.
 *
 * Atomicity: when DIR does not exist or is an empty directory, the files are written into a
 * fresh temporary directory beside DIR ("DIR.tmp-..."), fsynced, and the temporary directory is
 * renamed onto DIR: DIR appears complete or not at all. When DIR exists and is not empty the call
 * fails with FIPSC_ERR_IO unless `overwrite` is set; then each file is replaced atomically on its
 * own (model.safetensors first, config.json last), and a DIR that holds a sharded checkpoint
 * (model.safetensors.index.json) is refused, since its shards would go stale. */
fipsc_status fipsc_hf_write_dir(const fipsc_model *m, const char *dir, bool overwrite, const char *config_text,
                                const char *preproc_text, fipsc_error *err);

#endif
