/* FiPS-compressed models in memory: attaching compressed groups to a model, running them
 * without densifying, writing and reading the compressed safetensors format (docs/FORMAT.md).
 *
 * A group covers consecutive blocks. Each of its MLP matrices M_i (oriented d × f: expanding
 * gate/up/fc1 transposed, contracting down/fc2 as stored) is represented as M_i ≈ U·V_i with
 * U [d, r] dense and shared by the group and V_i [r, f] sparse. The runtime computes
 *   expanding   (W = M_iᵀ, [f, d]):  h = V_iᵀ·(Uᵀ·x)
 *   contracting (W = M_i,  [d, f]):  y = U·(V_i·h)
 * An identity basis (U == NULL, r == d) stores a plain sparse matrix: the magnitude baseline.
 *
 * The in-memory form, its kernels and the model's registry of groups are in
 * src/ops/factored.h; the file format is specified in docs/FORMAT.md.
 *
 * Changes to this contract (announced for the compressor):
 *   - fipsc_compressed_write_opts / fipsc_compressed_write_ex: U stored as F16 or BF16.
 *   - fipsc_group_spec.u_dtype / v_dtype: a group's U and V values stored as F16 or BF16, and
 *     storage FIPSC_V_BITMAP (format version 2).
 *   - fipsc_compressed_read / fipsc_compressed_is_file: reading (fipsc_model_load calls them).
 *   - attach also validates: groups may not overlap earlier groups, a matrix may not already be
 *     compressed, V must be finite; the dense weights are freed, so anything still pointing at
 *     them (e.g. a fipsc_fips_group built on these MLPs) must not be used afterwards. */
#ifndef FIPSC_COMPRESSED_H
#define FIPSC_COMPRESSED_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "ops/factored.h"

/* One matrix of a group, as the compressor hands it over. */
typedef struct fipsc_group_matrix {
    int layer;            /* block index (index into fipsc_model.mlps) */
    fipsc_mlp_role role;
    const float *V;       /* [r, f] row-major, pruned entries exactly 0 (copied by attach) */
} fipsc_group_matrix;

typedef struct fipsc_group_spec {
    int first_layer, last_layer; /* the consecutive blocks the group covers (inclusive) */
    int d, r;
    const float *U;              /* [d, r] row-major (copied); NULL = identity basis, r == d */
    int n_matrices;
    const fipsc_group_matrix *matrices;
    fipsc_v_storage storage;
    int nm_n, nm_m;              /* FIPSC_V_NM only */
    const char *method;          /* "fips", "fips-init", "shared-svd", "svd", "magnitude" */
    fipsc_dtype u_dtype, v_dtype; /* how U and the V values will be stored: F32 (0), F16 or BF16;
                                    attach rounds them to it, so the model runs what the file holds */
} fipsc_group_spec;

/* Replaces the listed MLP matrices of m by their compressed form: copies U and converts each V
 * to the requested storage (checking n:m validity), points the matching fipsc_linear's
 * `factored` at it (clearing `w`), and drops the dense weight tensors. Biases are untouched. */
fipsc_status fipsc_model_attach_group(fipsc_model *m, const fipsc_group_spec *g, fipsc_error *err);

/* Writes m (with its compressed groups) as a compressed safetensors file, atomically.
 * extra_metadata: optional NULL-terminated key/value pairs added to __metadata__. */
fipsc_status fipsc_compressed_write(const fipsc_model *m, const char *path,
                                    const char *const *extra_metadata, fipsc_error *err);

/* Options of fipsc_compressed_write_ex; zero-initialised means the defaults. */
typedef struct fipsc_compressed_write_opts {
    fipsc_dtype u_dtype; /* FIPSC_F16 or FIPSC_BF16: every U stored so; FIPSC_F32 (0): each
                            group's own u_dtype (F32 unless its spec or file said otherwise) */
    fipsc_dtype v_dtype; /* the same for the V values */
} fipsc_compressed_write_opts;

/* fipsc_compressed_write with options (opts may be NULL). A model without compressed groups is
 * written too (then the file holds the dense MLP weights and an empty group list). */
fipsc_status fipsc_compressed_write_ex(const fipsc_model *m, const char *path,
                                       const char *const *extra_metadata,
                                       const fipsc_compressed_write_opts *opts, fipsc_error *err);

/* Whether path is a safetensors file whose __metadata__ marks it as a fipsc compressed file
 * ("fipsc_format": "compressed"). Unreadable files answer false. */
bool fipsc_compressed_is_file(const char *path);

/* Reads a compressed file (validating every tensor and every metadata entry; a corrupt file
 * fails with FIPSC_ERR_FORMAT naming the tensor or key) into a model whose MLP slots point at
 * factored linears: nothing is densified. Non-MLP tensors are used in place from the memory map
 * when they are aligned F32. */
struct fipsc_family;
/* The family a compressed file's layout names ("llama"), or NULL when this fipsc has none by that
 * name: the registry's fipsc_family_named. */
typedef const struct fipsc_family *(*fipsc_family_lookup)(const char *name);
fipsc_status fipsc_compressed_read(const char *path, fipsc_family_lookup find, fipsc_model **out, fipsc_error *err);

/* Replaces every compressed matrix by its dense reconstruction U·V_i (oriented back to
 * [out, in]) so the model can be exported as a standard checkpoint. */
fipsc_status fipsc_model_densify(fipsc_model *m, fipsc_error *err);

/* Storage accounting of one model's MLPs. */
typedef struct fipsc_mlp_footprint {
    long long dense_params;     /* what the original MLP matrices held */
    long long kept_params;      /* Σ d·r over groups + Σ nnz(V_i) (the paper's count) */
    long long dense_bytes;      /* dense_params × 4 */
    long long stored_bytes;     /* real bytes of U + V values + indices + pointers (U at the
                                   dtype it was read from, F32 when attached), plus 4 per
                                   parameter of MLP matrices left dense */
} fipsc_mlp_footprint;
fipsc_mlp_footprint fipsc_model_mlp_footprint(const fipsc_model *m);

/* ------------------------------------------------------------------ the model's registry */

/* Groups and factored linears a model owns (attached or read from a compressed file). Binding an
 * architecture's view (fipsc_model_bind_weight) finds the factored form of a weight that has no
 * dense tensor here. */
int fipsc_model_group_count(const fipsc_model *m);
const fipsc_compressed_group *fipsc_model_group(const fipsc_model *m, int i);
int fipsc_model_factored_count(const fipsc_model *m);
const fipsc_factored_linear *fipsc_model_factored_at(const fipsc_model *m, int i);

/* Hands a group / a linear to the model (taken over, also on failure). A linear's weight name
 * must be new to the registry. */
fipsc_status fipsc_model_register_group(fipsc_model *m, fipsc_compressed_group *g,
                                        fipsc_error *err);
fipsc_status fipsc_model_register_factored(fipsc_model *m, fipsc_factored_linear *fl,
                                           fipsc_error *err);

/* Frees every group and factored linear (after fipsc_model_densify has rebound the views). */
void fipsc_model_clear_compressed(fipsc_model *m);

/* Σ over groups with a basis of d·r, plus Σ nnz over factored linears: the compressed MLP
 * parameters (the paper's count; fipsc_model_count_params adds them to `mlp`). */
long long fipsc_model_factored_params(const fipsc_model *m);

/* The MLP slot (gate/up/down linear) of block `layer`, or NULL when the block has none. */
fipsc_linear *fipsc_model_mlp_slot(fipsc_model *m, int layer, fipsc_mlp_role role);

#endif
