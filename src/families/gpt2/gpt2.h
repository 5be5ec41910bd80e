/* GPT-2: Hugging Face GPT2LMHeadModel checkpoints, their view into fipsc_model, and the forward.
 *
 * The network (transformers' GPT2Model + LM head; E = n_embd, H = n_head, hd = E / H,
 * F = n_inner or 4E):
 *   x_i    = wte[token_i] + wpe[position_i]                       learned positions [n_positions, E]
 *   block  h   = x + c_proj(Attention(LN_1(x)))                     pre-LayerNorm, with biases
 *          out = h + MLP(LN_2(h)),  MLP(z) = c_proj(act(c_fc·z + b_fc)) + b_proj,  act = gelu_new
 *          (the tanh approximation) unless activation_function says otherwise
 *   head   logits = LN_f(x)·wteᵀ (the head is tied to the token embeddings), or lm_head when untied
 * Attention: c_attn maps a row to [q | k | v] (3E), split into H heads of hd each; causal softmax
 * of q·kᵀ·s with s = 1/sqrt(hd) (scale_attn_weights, the default; else 1), further divided by
 * (layer + 1) when scale_attn_by_inverse_layer_idx. LayerNorm(z) = (z − μ)/sqrt(σ² + ε)·γ + β with
 * ε = layer_norm_epsilon (1e-5).
 *
 * Weights: GPT-2 stores its four projections as Conv1D, [in, out] ("transformer.h.0.mlp.c_fc.weight"
 * is [E, F]). fipsc holds every linear weight as [out, in] (src/ops/linear.h), so the loader
 * transposes these four on the way in and the export transposes them back: inside fipsc (and in
 * its compressed files) "transformer.h.0.mlp.c_fc.weight" is [F, E]. Names are those of
 * GPT2LMHeadModel's state dict ("transformer." + GPT2Model's names); checkpoints saved from a bare
 * GPT2Model (names without "transformer.", as the original openai-community/gpt2 files) load too,
 * and the causal-mask buffers some of them carry ("attn.bias", "attn.masked_bias") are skipped.
 *
 * config.json keys: architectures ["GPT2LMHeadModel"] (or model_type "gpt2"), vocab_size,
 * n_positions, n_embd, n_layer, n_head, n_inner, activation_function, layer_norm_epsilon,
 * scale_attn_weights, scale_attn_by_inverse_layer_idx, tie_word_embeddings, bos_token_id,
 * eos_token_id; reorder_and_upcast_attn changes nothing here (fipsc computes attention in float32
 * anyway); add_cross_attention is refused. */
#ifndef FIPSC_FAMILIES_GPT2_H
#define FIPSC_FAMILIES_GPT2_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "model/capture.h"
#include "model/family.h"
#include "model/model.h"
#include "ops/mlp.h"

typedef struct fipsc_gpt2_config {
    int vocab_size, n_positions;
    int dim, hidden, n_layers, n_heads, head_dim; /* E, F, layers, H, hd = E / H */
    float ln_eps;
    fipsc_activation act;
    bool scale_attn;          /* scale_attn_weights: scores times 1/sqrt(hd) */
    bool scale_by_layer;      /* scale_attn_by_inverse_layer_idx: and times 1/(layer + 1) */
    bool tie_embeddings;      /* the head is wte (tie_word_embeddings, the default) */
    int bos_token, eos_token; /* -1: none */
    char *config_text;        /* the config.json text it was parsed from (owned): what an export
                                 writes back and the compressed format stores */
} fipsc_gpt2_config;

/* One block, pointing into the model's tensors. */
typedef struct fipsc_gpt2_block {
    const float *ln_1_w, *ln_1_b; /* [E] */
    fipsc_linear c_attn;          /* [3E, E] + bias [3E]: rows [q | k | v] */
    fipsc_linear attn_proj;       /* attn.c_proj [E, E] + bias */
    const float *ln_2_w, *ln_2_b; /* [E] */
    fipsc_mlp mlp;                /* plain: up = mlp.c_fc [F, E], down = mlp.c_proj [E, F], biases */
} fipsc_gpt2_block;

/* The family's view of a model (fipsc_model.view). */
typedef struct fipsc_gpt2 {
    fipsc_gpt2_config cfg;
    const float *wte;          /* [vocab, E] */
    const float *wpe;          /* [n_positions, E] */
    fipsc_gpt2_block *blocks;  /* [n_layers]; fipsc_model.mlps points at their MLPs */
    const float *ln_f_w, *ln_f_b;
    const float *lm_head;      /* [vocab, E]; == wte when tied */
} fipsc_gpt2;

extern const fipsc_family fipsc_family_gpt2;

/* ------------------------------------------------------------------ configuration (config.c) */

/* Whether config.json text names GPT2LMHeadModel (or, without architectures, model_type "gpt2"). */
bool fipsc_gpt2_config_is_gpt2(const char *json_text);

/* Parses config.json text (transformers' GPT2Config defaults for absent keys), keeping the text.
 * A key of the wrong type or out of range fails with FIPSC_ERR_FORMAT naming it; what the runtime
 * would get wrong (cross-attention, an unknown activation) with FIPSC_ERR_UNSUPPORTED. */
fipsc_status fipsc_gpt2_parse_config(const char *json_text, const char *origin, fipsc_gpt2_config *c,
                                     fipsc_error *err);
void fipsc_gpt2_config_free(fipsc_gpt2_config *c);

/* Whether name (canonical: "transformer."-prefixed, lm_head only when untied) is a tensor of the
 * model c describes. */
bool fipsc_gpt2_is_tensor(const char *name, const fipsc_gpt2_config *c);

/* Whether name is one of the four Conv1D weights stored [in, out] in a Hugging Face checkpoint. */
bool fipsc_gpt2_is_conv1d_weight(const char *name);

/* ------------------------------------------------------------------ the view (model.c) */

/* m's view, or NULL when m is not a GPT-2. */
fipsc_gpt2 *fipsc_model_gpt2(const fipsc_model *m);

/* Makes m a GPT-2 with configuration c (taken over: *c is left empty) and a view without weights. */
fipsc_status fipsc_gpt2_configure(fipsc_model *m, fipsc_gpt2_config *c, fipsc_error *err);

/* The same from configuration text (the compressed format's "config" entry). */
fipsc_status fipsc_gpt2_configure_text(fipsc_model *m, const char *text, const char *origin, fipsc_error *err);

/* (Re)builds the view and m->mlps from m's tensors, checking every shape against the
 * configuration; MLP weights without a dense tensor bind to their factored forms. */
fipsc_status fipsc_gpt2_bind(fipsc_model *m, fipsc_error *err);

/* Where a tensor's parameters count: wte, wpe and lm_head are embeddings. */
fipsc_tensor_role fipsc_gpt2_tensor_role(const fipsc_model *m, const char *name);

/* ------------------------------------------------------------------ checkpoints (checkpoint.c) */

/* A directory or .safetensors file whose configuration names GPT-2. */
fipsc_probe fipsc_gpt2_probe(const char *path, fipsc_error *why);

/* Loads a Hugging Face GPT-2 checkpoint: a directory (config.json + model.safetensors or a
 * sharded index) or a .safetensors file (configuration in __metadata__ "config" or beside it).
 * Conv1D weights are transposed to [out, in]; F16/BF16 converted; NaN/Inf, unknown tensors and
 * every shape checked. */
fipsc_status fipsc_gpt2_load(const char *path, fipsc_model **out, fipsc_error *err);

/* Writes m (dense MLPs) as a Hugging Face directory that transformers' GPT2LMHeadModel loads:
 * its config.json and model.safetensors with the Conv1D weights back in [in, out]. */
fipsc_status fipsc_gpt2_export(const fipsc_model *m, const char *dir, bool overwrite, fipsc_error *err);

/* ------------------------------------------------------------------ running (forward.c) */

/* logits [batch·len, vocab] (NULL: none) of batch sequences of len tokens from position 0;
 * capture (NULL: none) records the captured blocks' MLP rows. Every number is computed by one
 * thread in a fixed order: the output does not depend on the thread count. */
fipsc_status fipsc_gpt2_forward(const fipsc_model *m, const int32_t *tokens, int batch, int len, float *logits,
                                fipsc_capture *capture, fipsc_error *err);

/* A decoding session: one sequence with a KV cache of up to max_len positions (0: n_positions). */
typedef struct fipsc_gpt2_session fipsc_gpt2_session;
fipsc_status fipsc_gpt2_session_new(const fipsc_model *m, int max_len, fipsc_gpt2_session **out, fipsc_error *err);
void fipsc_gpt2_session_free(fipsc_gpt2_session *s);
void fipsc_gpt2_session_reset(fipsc_gpt2_session *s);
/* Feeds n tokens at the next positions; last_logits [vocab] (may be NULL) after the last one. */
fipsc_status fipsc_gpt2_session_prefill(fipsc_gpt2_session *s, const int32_t *tokens, int n, float *last_logits,
                                        fipsc_error *err);

#endif
