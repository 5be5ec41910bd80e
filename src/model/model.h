/* The in-memory model: one representation for every checkpoint format fipsc reads.
 *
 * A model is a configuration plus a set of named float32 tensors under Hugging Face names
 * ("model.layers.0.mlp.up_proj.weight", [out, in]), and an architecture-specific view that
 * points into those tensors (for the Llama family: per-layer norms, attention projections and
 * the MLP). Loaders for other formats (llama2.c .bin, TF.js) translate names and layouts on the
 * way in, so the runtime, the compressor and the writers only ever see this one form.
 *
 * Rotary embeddings follow the Hugging Face convention: dimension j of a head is paired with
 * j + head_dim/2. llama2.c pairs (2j, 2j+1); its loader permutes q/k rows accordingly. */
#ifndef FIPSC_MODEL_H
#define FIPSC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "ops/mlp.h"
#include "core/status.h"
#include "core/tensor.h"

typedef enum fipsc_arch {
    FIPSC_ARCH_LLAMA = 0, /* LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, llama2.c */
    FIPSC_ARCH_VIT,       /* ViTForImageClassification, DeiTForImageClassificationWithTeacher */
    FIPSC_ARCH_USE        /* Universal Sentence Encoder Lite */
} fipsc_arch;

typedef struct fipsc_config {
    fipsc_arch arch;
    char arch_name[64];   /* the config.json "architectures" entry, or "llama2.c" */
    int dim;              /* hidden_size */
    int hidden_dim;       /* intermediate_size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int vocab_size;
    int max_seq_len;      /* max_position_embeddings / llama2.c seq_len */
    float norm_eps;       /* rms_norm_eps or layer_norm_eps */
    float rope_theta;
    bool tie_embeddings;  /* lm_head shares model.embed_tokens */
    bool qkv_bias;        /* q/k/v projections carry biases (Qwen2) */
    int bos_token;        /* 1 for llama2.c */
    int eos_token;
} fipsc_config;

/* A named float32 tensor. `data` is either owned (malloc'ed) or borrowed from a mapping that
 * the model keeps alive (see fipsc_model_keep). `source_dtype` is what the file stored. */
typedef struct fipsc_tensor {
    char *name;
    int ndim;
    int64_t shape[FIPSC_MAX_DIMS];
    float *data;
    bool owned;
    fipsc_dtype source_dtype;
} fipsc_tensor;

/* Llama-family block, pointing into the model's tensors. */
typedef struct fipsc_llama_layer {
    const float *attn_norm; /* [dim] */
    fipsc_linear q, k, v, o;
    const float *ffn_norm;  /* [dim] */
    fipsc_mlp mlp;
} fipsc_llama_layer;

typedef struct fipsc_model {
    fipsc_config cfg;
    fipsc_tensor *tensors;
    int n_tensors, cap_tensors;

    /* Llama view (filled by fipsc_model_bind_llama) */
    const float *tok_embeddings; /* [vocab, dim] */
    fipsc_llama_layer *layers;   /* [n_layers] */
    const float *final_norm;     /* [dim] */
    const float *lm_head;        /* [vocab, dim]; == tok_embeddings when tied */

    /* Every block's MLP, whatever the architecture, in block order (filled by the architecture's
     * bind function). The compressor and the MLP runtime reach MLPs only through these. */
    fipsc_mlp **mlps;
    int n_mlps;

    /* ViT view (src/families/vit/vit.h, filled by fipsc_model_bind_vit; NULL for other
     * architectures). Owned through `resources`, so fipsc_model_free releases it. */
    struct fipsc_vit *vit;

    /* Sentence-encoder view (src/families/use/use.h, filled by fipsc_model_bind_use; NULL for other
     * architectures). Owned through `resources`, so fipsc_model_free releases it. */
    struct fipsc_use *use;

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

/* The tensor called name, or NULL. */
const fipsc_tensor *fipsc_model_find(const fipsc_model *m, const char *name);

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

/* Finds name and checks its shape; a precise error names the tensor and both shapes. */
fipsc_status fipsc_model_require(const fipsc_model *m, const char *name, int ndim,
                                 const int64_t *shape, const float **data, fipsc_error *err);

/* Hands a resource (e.g. an mmapped file) to the model, released by fipsc_model_free with
 * release(ptr). If this fails, release(ptr) has been called. */
fipsc_status fipsc_model_keep(fipsc_model *m, void *ptr, void (*release)(void *), fipsc_error *err);

/* Checks every tensor for NaN/Inf; the error names the tensor and the first bad index. */
fipsc_status fipsc_model_check_finite(const fipsc_model *m, fipsc_error *err);

/* Builds the Llama view from the tensors under Hugging Face names, checking every shape against
 * cfg. Called by the loaders; call again after replacing tensors. */
fipsc_status fipsc_model_bind_llama(fipsc_model *m, fipsc_error *err);

/* Parameter counts by role, for reports and `inspect`. */
typedef struct fipsc_param_counts {
    long long mlp, attention, embeddings, other, total;
} fipsc_param_counts;
fipsc_param_counts fipsc_model_count_params(const fipsc_model *m);

/* Loads any supported checkpoint: a llama2.c .bin, a Hugging Face directory (config.json +
 * model.safetensors or a sharded index), or a single .safetensors file carrying its config in
 * __metadata__. Weights are checked for NaN/Inf. */
fipsc_status fipsc_model_load(const char *path, fipsc_model **out, fipsc_error *err);

/* llama2.c checkpoint (7-int header, see families/llama/llama2c.c). */
fipsc_status fipsc_load_llama2c(const char *path, fipsc_model **out, fipsc_error *err);
/* The same from size bytes in memory (e.g. for fuzzing); the bytes are copied, not kept.
 * `name` stands for the path in messages and in m->source_path. */
fipsc_status fipsc_load_llama2c_buffer(const void *bytes, size_t size, const char *name,
                                       fipsc_model **out, fipsc_error *err);

#endif
