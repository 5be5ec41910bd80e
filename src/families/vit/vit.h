/* Vision Transformers: Hugging Face ViTForImageClassification, DeiTForImageClassification and
 * DeiTForImageClassificationWithTeacher checkpoints, their view into fipsc_model, and the forward.
 *
 * The network (transformers' ViTModel/DeiTModel; all linear weights [out, in]):
 *   patches   the image [C, H, W] cut into a grid of (H / p_h) × (W / p_w) patches (floor, as the
 *             stride-p convolution), each flattened in (c, i, j) order and embedded:
 *             e = W_patch·patch + b, W_patch = the conv weight [d, C, p_h, p_w] viewed [d, C·p_h·p_w]
 *   tokens    [CLS, (DIST,) e_0 .. e_{N-1}] (patches row-major) + position_embeddings [T, d]
 *   blocks    pre-LayerNorm: h = x + o(Attention(LN_before(x))), out = h + MLP(LN_after(h))
 *             Attention: per head softmax(q·kᵀ / sqrt(d / heads))·v over all T tokens;
 *             MLP: fc2(act(fc1·x + b1)) + b2 (intermediate.dense, output.dense), act = hidden_act
 *             (exact-erf "gelu" for ViT/DeiT)
 *   head      LN_final, then
 *               ViT, DeiT:           logits = classifier(x_CLS)
 *               DeiT with teacher:   logits = (cls_classifier(x_CLS) + distillation_classifier(x_DIST)) / 2
 * LayerNorm(x) = (x − mean(x)) / sqrt(var(x) + eps) ⊙ w + b (biased variance).
 *
 * Tensor names are transformers': "<p>.embeddings.cls_token" [1, 1, d],
 * "<p>.embeddings.distillation_token" [1, 1, d] (DeiT), "<p>.embeddings.position_embeddings"
 * [1, T, d], "<p>.embeddings.patch_embeddings.projection.{weight,bias}",
 * "<p>.encoder.layer.<l>.{layernorm_before, attention.attention.{query,key,value},
 * attention.output.dense, layernorm_after, intermediate.dense, output.dense}.{weight,bias}",
 * "<p>.layernorm.{weight,bias}", and "classifier" or "cls_classifier" + "distillation_classifier",
 * with <p> = "vit" or "deit". "<p>.pooler.dense.*" and "<p>.embeddings.mask_token" are accepted
 * and unused. timm checkpoint names are not read.
 *
 * config.json keys: architectures, hidden_size, num_hidden_layers, num_attention_heads,
 * intermediate_size, image_size and patch_size (an integer or [height, width], as transformers'
 * patch embedding accepts), num_channels (default 3), layer_norm_eps (1e-12), qkv_bias (true),
 * hidden_act ("gelu"), id2label (label names; default "LABEL_<i>"). */
#ifndef FIPSC_VIT_H
#define FIPSC_VIT_H

#include <stdbool.h>

#include "model/capture.h"
#include "formats/image.h"
#include "model/family.h"
#include "model/model.h"
#include "core/status.h"

typedef enum fipsc_vit_kind {
    FIPSC_VIT_PLAIN = 0,     /* ViTForImageClassification: CLS token, "classifier" */
    FIPSC_VIT_DEIT,          /* DeiTForImageClassification: CLS + DIST tokens, "classifier" on CLS */
    FIPSC_VIT_DEIT_TEACHER   /* DeiTForImageClassificationWithTeacher: mean of both heads */
} fipsc_vit_kind;

/* One encoder block, pointing into the model's tensors. */
typedef struct fipsc_vit_block {
    const float *ln_before_w, *ln_before_b; /* [d] */
    fipsc_linear q, k, v;                   /* [d, d]; biases when qkv_bias */
    fipsc_linear o;                         /* attention.output.dense [d, d] with bias */
    const float *ln_after_w, *ln_after_b;   /* [d] */
    fipsc_mlp mlp; /* plain: up = intermediate.dense [f, d], down = output.dense [d, f], biases */
} fipsc_vit_block;

typedef struct fipsc_vit {
    /* configuration */
    fipsc_vit_kind kind;
    char prefix[8];         /* "vit" or "deit" */
    int channels;           /* num_channels */
    int image_h, image_w;   /* input size */
    int patch_h, patch_w;
    int grid_h, grid_w;     /* image / patch (floor) */
    int n_patches;          /* grid_h · grid_w */
    int n_prefix;           /* 1 (CLS) or 2 (CLS, DIST) */
    int n_tokens;           /* n_prefix + n_patches */
    int dim, hidden, n_layers, n_heads, head_dim;
    float ln_eps;
    fipsc_activation act;
    bool qkv_bias;
    int n_labels;
    char **labels;          /* [n_labels] from id2label */
    fipsc_image_preproc preproc; /* preprocessor_config.json, or fipsc_image_preproc_default */
    char *config_text;      /* the config.json text this configuration was parsed from (owned;
                               without FIPSC_VIT_PREPROC_KEY): what a dense export writes back */
    char *preproc_text;     /* the preprocessor_config.json text (owned), NULL when there was none */

    /* weights */
    fipsc_linear patch_embed;         /* conv weight viewed [d, C·p_h·p_w], bias [d] */
    const float *cls_token;           /* [d] */
    const float *dist_token;          /* [d], DeiT only */
    const float *pos_embed;           /* [n_tokens, d] */
    fipsc_vit_block *blocks;          /* [n_layers]; fipsc_model.mlps points at their MLPs */
    const float *final_ln_w, *final_ln_b;
    fipsc_linear head;                /* classifier or cls_classifier [n_labels, d] */
    fipsc_linear dist_head;           /* distillation_classifier (DEIT_TEACHER only) */
} fipsc_vit;

/* ------------------------------------------------------------------ loading */

/* Whether config.json text names a supported ViT/DeiT architecture (or model_type "vit"/"deit"
 * when architectures is absent). */
bool fipsc_vit_config_is_vit(const char *config_json_text);

/* Whether path is a checkpoint for fipsc_vit_load: a directory whose config.json, or a
 * .safetensors file whose __metadata__ "config" entry or neighbouring config.json, names a
 * ViT/DeiT architecture. Unreadable inputs answer false (the generic loader reports them). */
bool fipsc_vit_path_is_vit(const char *path);

/* Loads a Hugging Face ViT/DeiT checkpoint: a directory (config.json + model.safetensors or a
 * sharded index, preprocessor_config.json when present) or a .safetensors file (configuration in
 * __metadata__ "config" or in a config.json beside it; preprocessor_config.json beside it when
 * present). Checks dtypes, NaN/Inf and every shape against the configuration; unknown tensors
 * fail naming the tensor. Makes m a ViT/DeiT model and binds the view. */
fipsc_status fipsc_vit_load(const char *path, fipsc_model **out, fipsc_error *err);

/* Key under which a configuration text may carry the preprocessor_config.json object, so that
 * one JSON text describes a checkpoint completely (the compressed format's "config" entry). */
#define FIPSC_VIT_PREPROC_KEY "fipsc_preprocessor_config"

/* The config.json "architectures" name of a kind ("DeiTForImageClassificationWithTeacher"). */
const char *fipsc_vit_architecture_name(fipsc_vit_kind kind);

/* Parses config.json text into a view's configuration fields (no weights), keeping the text in
 * vc->config_text. When the text holds a FIPSC_VIT_PREPROC_KEY object, that object is parsed as
 * the preprocessing (vc->preproc, vc->preproc_text) and config_text is the text without it. */
fipsc_status fipsc_vit_parse_config(const char *json_text, const char *origin, fipsc_vit *vc,
                                    fipsc_error *err);

/* The configuration of a ViT model m as one JSON text (malloc'ed): its config.json with, when
 * with_preproc and the checkpoint had a preprocessor_config.json, that object under
 * FIPSC_VIT_PREPROC_KEY. fipsc_vit_parse_config reads it back. */
fipsc_status fipsc_vit_config_json(const fipsc_model *m, bool with_preproc, char **out,
                                   fipsc_error *err);

/* For readers of other containers (the compressed format): parses the configuration text (as
 * fipsc_vit_config_json writes it) into m (the family, arch_name and a view without weights);
 * fipsc_vit_rebind then binds the weights once m holds its tensors. */
fipsc_status fipsc_vit_configure(fipsc_model *m, const char *json_text, const char *origin,
                                 fipsc_error *err);

/* Binds m's ViT view again from m's tensors, keeping its configuration: after tensors were
 * replaced, or after fipsc_vit_configure. MLP weights without a dense tensor bind to their
 * registered factored (FiPS-compressed) form (fipsc_model_bind_weight). */
fipsc_status fipsc_vit_rebind(fipsc_model *m, fipsc_error *err);

/* Whether name is a tensor of the architecture a parsed configuration describes (shapes are
 * checked by the bind). For readers of other containers, e.g. the compressed format. */
bool fipsc_vit_is_tensor(const char *name, const fipsc_vit *vc);

/* Builds m->vit from m's tensors for configuration vc (taken over: its labels and texts move
 * into the view), and points m->mlps at the blocks' MLPs. Called by the loader; after replacing
 * tensors, fipsc_vit_rebind. */
fipsc_status fipsc_model_bind_vit(fipsc_model *m, fipsc_vit *vc, fipsc_error *err);

/* Frees what a parsed configuration owns (labels, texts); for a vc not handed to bind. */
void fipsc_vit_config_free(fipsc_vit *vc);

/* The ViT view of m, or NULL when m is not a ViT. */
const fipsc_vit *fipsc_model_vit(const fipsc_model *m);

extern const fipsc_family fipsc_family_vit;

/* ------------------------------------------------------------------ forward */

/* Runs n images. pixels: [n, C, H, W] preprocessed (see fipsc_image_preprocess), H × W the
 * model's input size. logits: NULL or [n, n_labels]. capture: NULL or the MLPs to record (see
 * capture.h); rows are image-major, then token (CLS, DIST, patches). With logits NULL the forward
 * stops after the last captured block. Projections run as GEMMs over many token rows at once; a
 * large batch is split into chunks of about 256 rows that run one per OpenMP thread, a small one
 * runs norms, attention and GEMM panels on OpenMP threads. Each number is computed by one thread
 * in a fixed order: the output does not depend on the thread count. */
fipsc_status fipsc_vit_forward(const fipsc_model *m, const float *pixels, int n, float *logits,
                               fipsc_capture *capture, fipsc_error *err);

/* The pieces of fipsc_vit_forward, for block-wise training: the token rows x are [n · T, d].
 *   embed:  x = tokens + position embeddings of the n images
 *   block:  x <- block l applied to x in place (its MLP recorded into capture when listed)
 *   head:   logits [n, n_labels] from the final LayerNorm and the classifier(s) */
fipsc_status fipsc_vit_embed(const fipsc_model *m, const float *pixels, int n, float *x,
                             fipsc_error *err);
fipsc_status fipsc_vit_block_forward(const fipsc_model *m, int layer, int n, float *x,
                                     fipsc_capture *capture, fipsc_error *err);
fipsc_status fipsc_vit_head(const fipsc_model *m, int n, const float *x, float *logits,
                            fipsc_error *err);

#endif
