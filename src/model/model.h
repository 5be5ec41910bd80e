/* The in-memory model: one representation for every checkpoint format fipsc reads.
 *
 * A model is a set of named float32 tensors under the names of its family's standard checkpoint
 * ("model.layers.0.mlp.up_proj.weight", [out, in]) plus its family's view that points into
 * those tensors (for the Llama family: per-layer norms, attention projections and the MLP; see
 * src/model/family.h). Loaders for other formats (llama2.c .bin, TF.js) translate names and
 * layouts on the way in, so the runtime, the compressor and the writers only ever see this form.
 * Every block's MLP is reachable without knowing the family, through m->mlps. */
#ifndef FIPSC_MODEL_H
#define FIPSC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "ops/mlp.h"
#include "core/status.h"
#include "core/tensor.h"

/* A named tensor, held either as float32 (`data`) or, for a checkpoint's F16/BF16 weight kept as
 * stored, as 16-bit floats of dtype source_dtype (`half`; data NULL). Whichever is set is owned
 * (malloc'ed) or borrowed from a mapping that the model keeps alive (see fipsc_model_keep); a
 * tensor loaded for its shape alone has neither. `source_dtype` is what the file stored.
 *
 * Why 16-bit: a Llama-3-8B checkpoint is 16 GB in BF16 and 32 GB as float32. Linear weights stay
 * 16-bit (mapped from the file, paged in as used) and the kernels convert panels as they multiply
 * (src/ops/gemm.h); a tensor the runtime needs as float32 (norms, the FiPS group being compressed)
 * is converted when asked for (fipsc_model_require). */
typedef struct fipsc_tensor {
    char *name;
    int ndim;
    int64_t shape[FIPSC_MAX_DIMS];
    float *data;
    uint16_t *half;
    bool owned;
    fipsc_dtype source_dtype;
} fipsc_tensor;

struct fipsc_family;

typedef struct fipsc_model {
    /* The family that knows this architecture (src/model/family.h) and its view of the tensors
     * (the family's own struct: fipsc_llama, fipsc_vit, ...), owned through view_free. NULL
     * family: a bare set of tensors. */
    const struct fipsc_family *family;
    void *view;
    void (*view_free)(void *view);
    char arch_name[64]; /* what the checkpoint calls its architecture: "LlamaForCausalLM", "llama2.c" */

    fipsc_tensor *tensors;
    int n_tensors, cap_tensors;

    /* Every block's MLP, whatever the architecture, in block order (filled by the family's bind).
     * The compressor and the MLP runtime reach MLPs only through these. */
    fipsc_mlp **mlps;
    int n_mlps;

    /* FiPS-compressed MLP matrices (src/ops/factored.h): the groups and factored linears
     * the model owns, NULL when nothing is compressed. Released through `resources`. */
    struct fipsc_compressed_registry *compressed;

    /* resources (mappings, parsed files) released with the model, last kept first */
    struct fipsc_resource *resources;
    char source_path[4096];
} fipsc_model;

/* An empty model; free with fipsc_model_free. */
fipsc_model *fipsc_model_new(void);
/* Records where the model came from (shown in messages); FIPSC_ERR_ARG if it does not fit. */
fipsc_status fipsc_model_set_source_path(fipsc_model *m, const char *path, fipsc_error *err);
void fipsc_model_free(fipsc_model *m);

/* Adds a tensor. `data` must hold numel(shape) floats; with owned=true the model frees it
 * (also when this call fails). Fails on a duplicate name. */
fipsc_status fipsc_model_add_tensor(fipsc_model *m, const char *name, int ndim,
                                    const int64_t *shape, float *data, bool owned,
                                    fipsc_dtype source_dtype, fipsc_error *err);

/* Adds a tensor held in its 16-bit form: numel(shape) values of dtype (F16 or BF16) at half,
 * owned or borrowed as above. Fails on a duplicate name or another dtype. */
fipsc_status fipsc_model_add_tensor16(fipsc_model *m, const char *name, int ndim, const int64_t *shape,
                                      uint16_t *half, bool owned, fipsc_dtype dtype, fipsc_error *err);

/* The tensor called name, or NULL. */
const fipsc_tensor *fipsc_model_find(const fipsc_model *m, const char *name);

/* Flat index of t's first NaN/Inf, or -1 (also for a shapes-only tensor); the value at flat index
 * i as a double (for messages). Either form, float32 or 16-bit. */
int64_t fipsc_tensor_first_nonfinite(const fipsc_tensor *t);
double fipsc_tensor_value(const fipsc_tensor *t, int64_t i);

/* The dtype a tensor is stored in when fipsc writes it, and what its bytes count in: F16 or BF16
 * when it came so, else F32. */
fipsc_dtype fipsc_tensor_stored_dtype(const fipsc_tensor *t);

/* The stored dtype of a linear's dense weight (fipsc_tensor_stored_dtype; F32 for a weight the
 * model holds no tensor for). */
fipsc_dtype fipsc_model_linear_stored_dtype(const fipsc_model *m, const fipsc_linear *lin);

/* Bytes of a linear's dense weight of model m in its stored dtype, and of an MLP's dense weights. */
int64_t fipsc_model_linear_weight_bytes(const fipsc_model *m, const fipsc_linear *lin);
int64_t fipsc_model_mlp_weight_bytes(const fipsc_model *m, const fipsc_mlp *mlp);

/* Removes the tensor called name, freeing its name and the data the model owns. Views pointing
 * at it must be rebound. FIPSC_ERR_NOT_FOUND when there is no such tensor. */
fipsc_status fipsc_model_remove_tensor(fipsc_model *m, const char *name, fipsc_error *err);

/* The factored (FiPS-compressed) form registered for the weight called name, or NULL. */
const struct fipsc_factored_linear *fipsc_model_factored(const fipsc_model *m, const char *name);

/* Binds lin (its out, in, weight_name and w or factored; bias left alone) to the weight called
 * name, [out, in]: the dense tensor when the model holds one, else its registered factored form
 * (loading a compressed file never densifies). Fails naming the tensor when neither exists or
 * the shapes disagree. Architectures bind every linear through this. */
fipsc_status fipsc_model_bind_weight(const fipsc_model *m, const char *name, int out, int in,
                                     fipsc_linear *lin, fipsc_error *err);

/* Finds name and checks its shape; a precise error names the tensor and both shapes. A tensor
 * held in 16 bits is converted to float32 here, once (the model keeps the float32 copy and drops
 * the 16-bit one): the model is logically const, its storage is not. */
fipsc_status fipsc_model_require(const fipsc_model *m, const char *name, int ndim,
                                 const int64_t *shape, const float **data, fipsc_error *err);

/* Converts every tensor held in 16 bits to float32 and rebinds the family's view: the model then
 * computes exactly as before (the kernels' conversion is exact) from float32 weights. */
fipsc_status fipsc_model_materialise_f32(fipsc_model *m, fipsc_error *err);

/* Number of tensors held in 16 bits. */
int fipsc_model_count_16bit(const fipsc_model *m);

/* Hands a resource (e.g. an mmapped file) to the model, released by fipsc_model_free with
 * release(ptr). If this fails, release(ptr) has been called. */
fipsc_status fipsc_model_keep(fipsc_model *m, void *ptr, void (*release)(void *), fipsc_error *err);

/* Checks every tensor for NaN/Inf; the error names the tensor and the first bad index. */
fipsc_status fipsc_model_check_finite(const fipsc_model *m, fipsc_error *err);


/* Parameter counts by role, for reports and `inspect`. */
typedef struct fipsc_param_counts {
    long long mlp, attention, embeddings, other, total;
} fipsc_param_counts;
fipsc_param_counts fipsc_model_count_params(const fipsc_model *m);

/* Gives m its view (freed with view_free when replaced or when m is freed). */
void fipsc_model_set_view(fipsc_model *m, const struct fipsc_family *family, void *view, void (*view_free)(void *));

/* Points m->mlps at n MLPs (the array is taken over). */
void fipsc_model_set_mlps(fipsc_model *m, fipsc_mlp **mlps, int n);

#endif
