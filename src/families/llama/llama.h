/* The Llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Phi3ForCausalLM,
 * GemmaForCausalLM, Gemma2ForCausalLM, llama2.c checkpoints): its configuration and its view of a model's tensors.
 *
 *   x = embed[token];  per block: x += o·attn(rope(q·rms(x)), rope(k·rms(x)), v·rms(x))
 *                                 x += down·(silu(gate·rms(x)) ⊙ up·rms(x))
 *   logits = lm_head·rms(x)
 *
 * Phi-3 is Llama with fused projections in its checkpoints (split on loading) and a sliding window
 * on every layer. Gemma differs in ways the configuration switches on (all off for the others):
 *   - embeddings scaled by √dim;  RMSNorm weights stored as w and applied as (1 + w);
 *   - GeGLU MLPs: gelu (tanh approximation) instead of silu;
 * and Gemma-2 further:
 *   - norms after attention and after the MLP as well as before each:
 *       x += post_attn_norm(o·attn(...));  x += post_ffn_norm(mlp(pre_ffn_norm(x)))
 *   - attention scores scaled by query_pre_attn_scalar^-1/2 and soft-capped, s ← c·tanh(s/c);
 *   - sliding-window attention (the last `sliding_window` positions) on even layers;
 *   - final logits soft-capped the same way.
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

typedef enum fipsc_rope_scaling { FIPSC_ROPE_NONE = 0, FIPSC_ROPE_LINEAR, FIPSC_ROPE_LLAMA3, FIPSC_ROPE_YARN } fipsc_rope_scaling;

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
    /* Gemma and Gemma-2 (see the top of this file); zero/false for the other architectures. */
    bool gemma;           /* √dim embedding scale, (1 + w) norms, GeGLU (gelu tanh) MLPs */
    bool post_norms;      /* Gemma-2's post-attention and pre/post-feedforward norms */
    float query_pre_attn_scalar; /* Gemma-2: scores scaled by its −1/2 power; 0: by head_dim^−1/2 */
    float attn_softcap;   /* 0: none */
    float final_softcap;  /* 0: none */
    int sliding_window;   /* Gemma-2: window of the even layers (Phi-3: of every layer); 0: none */
    bool window_all_layers; /* Phi-3: the window applies to every layer */
    bool fused_proj;      /* Phi-3: checkpoints fuse qkv_proj and gate_up_proj (families/llama/fused.h) */
    /* RoPE frequency scaling (config.json rope_scaling): see fipsc_llama_rope_inv_freq */
    fipsc_rope_scaling rope_scaling;
    float rope_factor;           /* linear, llama3, yarn */
    float rope_low_freq_factor;  /* llama3 */
    float rope_high_freq_factor; /* llama3 */
    int rope_original_context;   /* llama3, yarn: original_max_position_embeddings */
    float rope_beta_fast, rope_beta_slow; /* yarn: 32 and 1 unless the configuration says */
} fipsc_config;

/* The inverse frequency of RoPE pair j (0 <= j < head_dim/2), in float32 as transformers computes
 * it: base = 1 / θ^(2j/head_dim); with rope_scaling
 *   linear   base / factor
 *   llama3   (Llama 3.1/3.2) by the pair's wavelength λ = 2π / base, with the original context C:
 *            λ < C / high_freq_factor: base;  λ > C / low_freq_factor: base / factor;  between,
 *            with s = (C/λ − low) / (high − low):  (1 − s)·base/factor + s·base.
 *   yarn     (YaRN, Qwen2.5 and others) pairs that turn fast within the original context C keep
 *            base, slow ones are interpolated to base / factor, with a linear ramp between: the
 *            pair index where a wavelength fits b times into C is d(b) = D·ln(C / (2π b)) / (2 ln θ)
 *            (D = head_dim); lo = max(0, ⌊d(beta_fast)⌋), hi = min(D − 1, ⌈d(beta_slow)⌉),
 *            r = clamp((j − lo) / (hi − lo), 0, 1):  r·base/factor + (1 − r)·base.
 * (transformers' _compute_yarn_parameters with truncation and the configured factor, and
 * llama.cpp's ggml_rope_yarn_corr_dims / rope_yarn_ramp, which agree.) */
float fipsc_llama_rope_inv_freq(const fipsc_config *c, int j);

/* "linear", "llama3", "yarn" (the config.json and GGUF name), or "none". */
const char *fipsc_llama_rope_scaling_name(fipsc_rope_scaling s);

/* YaRN's attention factor, which multiplies RoPE's cos and sin (so the scores by its square):
 * 0.1·ln(factor) + 1 for yarn, 1 for every other scaling. */
float fipsc_llama_rope_mscale(const fipsc_config *c);

/* One block, pointing into the model's tensors. */
typedef struct fipsc_llama_layer {
    const float *attn_norm;      /* [dim] (Gemma: 1 + w, held by the view) */
    fipsc_linear q, k, v, o;
    const float *post_attn_norm; /* [dim] Gemma-2; NULL otherwise */
    const float *ffn_norm;       /* [dim] */
    const float *post_ffn_norm;  /* [dim] Gemma-2; NULL otherwise */
    fipsc_mlp mlp;
    int window;                  /* positions attended to; 0: all (causal) */
} fipsc_llama_layer;

/* The family's view of a model (fipsc_model.view). */
typedef struct fipsc_llama {
    fipsc_config cfg;
    fipsc_linear tok_embeddings; /* [vocab, dim]: rows looked up (fipsc_linear_weight_row); a
                                  * linear so that it may stay in its stored 16 bits */
    fipsc_llama_layer *layers;   /* [n_layers] */
    const float *final_norm;     /* [dim] */
    fipsc_linear lm_head;        /* [vocab, dim]; the embeddings' weight when tied */
    float *norm_weights;         /* Gemma: every norm's 1 + w, owned here (the tensors keep w) */
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
