/* The Llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, llama2.c checkpoints):
 * its configuration and its view of a model's tensors.
 *
 *   x = embed[token];  per block: x += o·attn(rope(q·rms(x)), rope(k·rms(x)), v·rms(x))
 *                                 x += down·(silu(gate·rms(x)) ⊙ up·rms(x))
 *   logits = lm_head·rms(x)
 *
 * Tensors use the Hugging Face names ("model.layers.0.mlp.up_proj.weight", [out, in]). Rotary
 * embeddings follow the Hugging Face convention: dimension j of a head is paired with
 * j + head_dim/2. llama2.c pairs (2j, 2j+1); its loader permutes q/k rows accordingly. */
#ifndef FIPSC_FAMILIES_LLAMA_H
#define FIPSC_FAMILIES_LLAMA_H

#include <stdbool.h>

#include "core/status.h"
#include "model/family.h"
#include "model/model.h"
#include "ops/mlp.h"

typedef struct fipsc_config {
    char arch_name[64];   /* the config.json "architectures" entry, or "llama2.c" */
    int dim;              /* hidden_size */
    int hidden_dim;       /* intermediate_size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int vocab_size;
    int max_seq_len;      /* max_position_embeddings / llama2.c seq_len */
    float norm_eps;       /* rms_norm_eps */
    float rope_theta;
    bool tie_embeddings;  /* lm_head shares model.embed_tokens */
    bool qkv_bias;        /* q/k/v projections carry biases (Qwen2) */
    int bos_token;        /* 1 for llama2.c; -1: none */
    int eos_token;
} fipsc_config;

/* One block, pointing into the model's tensors. */
typedef struct fipsc_llama_layer {
    const float *attn_norm; /* [dim] */
    fipsc_linear q, k, v, o;
    const float *ffn_norm;  /* [dim] */
    fipsc_mlp mlp;
} fipsc_llama_layer;

/* The family's view of a model (fipsc_model.view). */
typedef struct fipsc_llama {
    fipsc_config cfg;
    const float *tok_embeddings; /* [vocab, dim] */
    fipsc_llama_layer *layers;   /* [n_layers] */
    const float *final_norm;     /* [dim] */
    const float *lm_head;        /* [vocab, dim]; == tok_embeddings when tied */
} fipsc_llama;

extern const fipsc_family fipsc_family_llama;

/* m's view, or NULL when m is not of the Llama family. */
fipsc_llama *fipsc_model_llama(const fipsc_model *m);

/* Makes m a Llama-family model with configuration cfg and a view without weights (the loaders
 * call it before adding tensors, then fipsc_llama_bind). */
fipsc_status fipsc_llama_configure(fipsc_model *m, const fipsc_config *cfg, fipsc_error *err);

/* Builds the view from the tensors under Hugging Face names, checking every shape against the
 * configuration; compressed weights bind to their factored forms. Call again after replacing
 * tensors. */
fipsc_status fipsc_llama_bind(fipsc_model *m, fipsc_error *err);

#endif
