/* Where a Hugging Face checkpoint keeps its configuration: what every family that reads Hugging
 * Face checkpoints asks first (to probe a path, then to load it).
 *
 *   DIR                 DIR/config.json
 *   FILE.safetensors    its __metadata__ "config" entry (files fipsc writes carry one), else the
 *                       config.json beside the file (a model.safetensors taken from a directory)
 */
#ifndef FIPSC_MODEL_HF_CHECKPOINT_H
#define FIPSC_MODEL_HF_CHECKPOINT_H

#include <stddef.h>

#include "core/status.h"
#include "formats/safetensors.h"

/* The configuration text of path (malloc'ed into *text) and where it came from, for messages
 * ("DIR/config.json", "FILE (__metadata__ \"config\")"). For a .safetensors path the file is
 * opened as a set and handed back in *set (close it with fipsc_st_set_close; NULL for a
 * directory), so that a loader reads the header once. FIPSC_ERR_NOT_FOUND when there is no
 * configuration, FIPSC_ERR_FORMAT when the text holds a NUL byte. */
fipsc_status fipsc_hf_config_text(const char *path, char **text, char *origin, size_t origin_cap, fipsc_st_set **set,
                                  fipsc_error *err);

#endif
