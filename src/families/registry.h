/* The families fipsc knows, and loading a checkpoint by asking them (see src/model/family.h).
 *
 * The list is in src/families/registry.c, one line per family, in the order loading probes them:
 * the most specific first, the Llama family (which also reads llama2.c files and words the errors
 * for unknown Hugging Face architectures) last. */
#ifndef FIPSC_FAMILIES_REGISTRY_H
#define FIPSC_FAMILIES_REGISTRY_H

#include "core/status.h"
#include "model/family.h"
#include "model/model.h"

int fipsc_family_count(void);
const fipsc_family *fipsc_family_at(int i);
/* The family called name (fipsc_family.name), or NULL. */
const fipsc_family *fipsc_family_named(const char *name);

/* The family a path belongs to: the first whose probe says yes, else the first that says maybe
 * (with *probe = FIPSC_PROBE_MAYBE and why filled), else NULL (*probe = FIPSC_PROBE_NO).
 * A fipsc compressed file belongs to the family its layout names. */
const fipsc_family *fipsc_family_probe(const char *path, fipsc_probe *probe, fipsc_error *why);

/* Loads any supported checkpoint: a fipsc compressed .safetensors file, or whatever a family
 * recognises (a Hugging Face directory or .safetensors file, a llama2.c .bin, a TF.js model).
 * Weights are checked for NaN/Inf. */
fipsc_status fipsc_model_load(const char *path, fipsc_model **out, fipsc_error *err);

/* The same model described without its weights where its family can (fipsc_family.load_shapes:
 * tensors with NULL data, for describing only), else fipsc_model_load. */
fipsc_status fipsc_model_load_shapes(const char *path, fipsc_model **out, fipsc_error *err);

#endif
