/* The compressed file's layout (__metadata__ "fipsc_compression", docs/FORMAT.md): parsed and
 * validated into plain structs before any tensor is read (compressed_read.c, step 2). Every
 * field's type and range is checked; groups are disjoint, matrices sit inside their group and
 * no weight is listed twice. Messages name the file and the JSON path
 * ("groups[1].matrices[0].nnz"). */
#ifndef FIPSC_COMPRESSED_LAYOUT_H
#define FIPSC_COMPRESSED_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "model/compressed.h"
#include "model/family.h"

enum { CF_MAX_NAME = 512 };

typedef struct rd_matrix {
    char weight[CF_MAX_NAME];
    int layer;
    fipsc_mlp_role role;
    bool expanding;
    int out, in, f;
    int64_t nnz;
    double sparsity;
    fipsc_dtype source_dtype; /* optional "source_dtype": F32 (absent), F16 or BF16 */
} rd_matrix;

typedef struct rd_group {
    int first, last, d, r;
    bool identity;
    fipsc_dtype u_dtype;
    fipsc_dtype v_dtype; /* optional "v_dtype" (version 2): F32 (absent), F16 or BF16 */
    char method[32];
    fipsc_v_storage storage;
    int nm_n, nm_m;
    int n_mats;
    rd_matrix *mats;
} rd_group;

typedef struct rd_layout {
    const fipsc_family *family;
    int n_groups;
    rd_group *groups;
} rd_layout;

/* Parses the layout JSON text of file `path`; the family is looked up by its "architecture". */
fipsc_status cf_layout_parse(const char *path, const char *text, fipsc_family_lookup find, rd_layout *l,
                             fipsc_error *err);
void cf_layout_free(rd_layout *l);

/* What version 2 added (bitmap storage, F16/BF16 V values) must not appear in a file of an
 * earlier `version`. */
fipsc_status cf_layout_check_version(const rd_layout *l, long version, const char *path, fipsc_error *err);

#endif
