/* The compressed safetensors format's names and per-architecture hooks, shared by its writer
 * (compressed_write.c) and reader (compressed_read.c). The format itself: docs/FORMAT.md. */
#ifndef FIPSC_COMPRESSED_FORMAT_H
#define FIPSC_COMPRESSED_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "model/compressed.h"

/* __metadata__ keys and values */
#define CF_KEY_FORMAT "fipsc_format"       /* = CF_FORMAT_VALUE: marks a compressed file */
#define CF_FORMAT_VALUE "compressed"
#define CF_KEY_VERSION "fipsc_format_version" /* decimal integer */
#define CF_VERSION 1
#define CF_KEY_CONFIG "config"             /* the model configuration (config.json text) */
#define CF_KEY_LAYOUT "fipsc_compression"  /* JSON: architecture and groups */

/* Tensor name suffixes of V_i, appended to the weight name without its ".weight" */
#define CF_CSC_VALUES ".fips_v.values"
#define CF_CSC_ROWS ".fips_v.row_indices"
#define CF_CSC_COLPTR ".fips_v.col_ptr"
#define CF_NM_VALUES ".fips_v.nm_values"
#define CF_NM_INDICES ".fips_v.nm_indices"
#define CF_DENSE ".fips_v.dense"

/* "<weight name without a trailing .weight><suffix>" into buf; false if it does not fit. */
bool cf_v_name(char *buf, size_t cap, const char *weight_name, const char *suffix);
/* "fips.groups.<g>.U" */
void cf_u_name(char *buf, size_t cap, int group);

/* What the format needs to know about an architecture. Extend cf_arches (compressed_format.c)
 * to support another one. */
typedef struct cf_arch {
    const char *name; /* the "architecture" value in the layout JSON: "llama" */
    fipsc_arch arch;
    /* the configuration as JSON text (malloc'ed) for the CF_KEY_CONFIG entry */
    fipsc_status (*config_to_json)(const fipsc_model *m, char **out, fipsc_error *err);
    /* parses that text into m's configuration (origin names it in messages) */
    fipsc_status (*config_from_json)(fipsc_model *m, const char *text, const char *origin,
                                     fipsc_error *err);
    /* whether name is one of the architecture's tensors for m's configuration */
    bool (*is_tensor)(const fipsc_model *m, const char *name);
    /* builds the view (and m->mlps), binding compressed weights to their factored forms */
    fipsc_status (*bind)(fipsc_model *m, fipsc_error *err);
} cf_arch;

/* The entry for m's architecture, or NULL (err says which architecture is missing). */
const cf_arch *cf_arch_of_model(const fipsc_model *m, fipsc_error *err);
/* The entry called name, or NULL. */
const cf_arch *cf_arch_named(const char *name);

#endif
