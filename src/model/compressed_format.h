/* The compressed safetensors format's names, shared by its writer (compressed_write.c) and reader
 * (compressed_read.c). The format itself: docs/FORMAT.md. What it needs to know of an
 * architecture (its configuration as JSON, its tensors, binding its view) is the family's
 * (src/model/family.h); the layout names the family. */
#ifndef FIPSC_COMPRESSED_FORMAT_H
#define FIPSC_COMPRESSED_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "model/compressed.h"

/* __metadata__ keys and values */
#define CF_KEY_FORMAT "fipsc_format"       /* = CF_FORMAT_VALUE: marks a compressed file */
#define CF_FORMAT_VALUE "compressed"
#define CF_KEY_VERSION "fipsc_format_version" /* decimal integer */
#define CF_VERSION 2        /* the newest version; a file that uses nothing version 2 added (bitmap
                               storage, F16/BF16 V values) is written as version 1, which older
                               readers read */
#define CF_VERSION_MIN 1
#define CF_KEY_CONFIG "config"             /* the model configuration (config.json text) */
#define CF_KEY_LAYOUT "fipsc_compression"  /* JSON: architecture and groups */

/* Tensor name suffixes of V_i, appended to the weight name without its ".weight" */
#define CF_CSC_VALUES ".fips_v.values"
#define CF_CSC_ROWS ".fips_v.row_indices"
#define CF_CSC_COLPTR ".fips_v.col_ptr"
#define CF_NM_VALUES ".fips_v.nm_values"
#define CF_NM_INDICES ".fips_v.nm_indices"
#define CF_DENSE ".fips_v.dense"
#define CF_BITMAP ".fips_v.bitmap"          /* storage bitmap (version 2); values: CF_CSC_VALUES */

/* "<weight name without a trailing .weight><suffix>" into buf; false if it does not fit. */
bool cf_v_name(char *buf, size_t cap, const char *weight_name, const char *suffix);
/* "fips.groups.<g>.U" */
void cf_u_name(char *buf, size_t cap, int group);

#endif
