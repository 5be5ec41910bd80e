/* Hugging Face Llama-family checkpoints: config.json, loading and writing.
 *
 * Supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Phi3ForCausalLM
 * (fused projections split on loading: families/llama/fused.h), GemmaForCausalLM, Gemma2ForCausalLM
 * (whose extra keys and norms families/llama/llama.h describes). Tensors use
 * the standard transformers names ("model.layers.0.mlp.up_proj.weight", linear weights [out, in]).
 *
 * Three on-disk forms load into the one fipsc_model:
 *   DIR/config.json + DIR/model.safetensors
 *   DIR/config.json + DIR/model.safetensors.index.json + the shards it names
 *   FILE.safetensors whose __metadata__ holds the config.json text under the key "config"
 *     (FIPSC_HF_METADATA_CONFIG_KEY; fipsc_hf_write_dir puts it into every model.safetensors it
 *     writes, so that file alone is a complete checkpoint).
 * F16 and BF16 weights are converted to float32; aligned F32 weights are used in place from the
 * memory map, which the model keeps alive. */
#ifndef FIPSC_HF_H
#define FIPSC_HF_H

#include <stdbool.h>

#include "core/status.h"
#include "families/llama/llama.h"
#include "model/hf_write.h"
#include "model/model.h"

/* Parses the text of a config.json into cfg. `origin` names the file in
 * error messages ("DIR/config.json"). Required keys: architectures (or, failing that, model_type),
 * hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size. Absent keys
 * take the transformers defaults: num_key_value_heads = num_attention_heads, head_dim =
 * hidden_size / num_attention_heads, rms_norm_eps = 1e-6, rope_theta = 10000,
 * tie_word_embeddings = false, max_position_embeddings = 2048 (Llama) / 131072 (Mistral) / 32768
 * (Qwen2), bos/eos_token_id = 1/2 (Llama, Mistral) or none (Qwen2); "none" (absent or null) is
 * stored as -1, and a list of eos ids keeps the first. q/k/v biases: always for Qwen2 (as in
 * transformers), never for Llama/Mistral. A missing required key or
 * a value of the wrong type fails with FIPSC_ERR_FORMAT naming the key; rope_scaling of type
 * linear or llama3 (Llama 3.1/3.2) is computed; features the runtime would silently get wrong
 * (other rope_scaling types, attention_bias on Llama/Mistral — it adds an o_proj
 * bias — mlp_bias, a hidden_act other than silu) fail with FIPSC_ERR_UNSUPPORTED. A Mistral
 * sliding_window caps max_seq_len: within the window, full attention is the same computation. */
fipsc_status fipsc_hf_parse_config(const char *json_text, const char *origin, fipsc_config *cfg,
                                   fipsc_error *err);

/* Serialises a Llama-family configuration as config.json text (malloc'ed, NUL-terminated, pretty
 * printed): architectures, model_type, hidden_act "silu", torch_dtype "float32" and every field
 * of cfg. A llama2.c model becomes LlamaForCausalLM. Parsing the result gives cfg back exactly
 * (floats are printed with the fewest digits that round-trip). */
fipsc_status fipsc_hf_config_to_json(const fipsc_config *cfg, char **out, fipsc_error *err);

/* Whether name is one of the tensors of the Llama-family model cfg describes (the strict
 * unknown-tensor check of the loaders; the compressed-file reader applies it to the tensors it
 * does not itself decode). */
bool fipsc_hf_llama_is_tensor(const char *name, const fipsc_config *cfg);

/* Loads a Hugging Face directory: DIR/config.json and the weights fipsc_st_set_open(DIR) finds
 * (model.safetensors.index.json and its shards, else model.safetensors, ...). Every tensor must
 * be F32/F16/BF16, finite, and one of the architecture's tensors for this configuration (a
 * stored rotary_emb.inv_freq buffer is skipped); then the Llama view is bound, checking every
 * shape against config.json. Errors name the file and the tensor or key. */
fipsc_status fipsc_hf_load_dir(const char *dir, fipsc_model **out, fipsc_error *err);

/* Loads a single .safetensors file. The configuration is the config.json text in its
 * __metadata__ under FIPSC_HF_METADATA_CONFIG_KEY or, when there is no such entry, the
 * config.json beside the file (a model.safetensors inside a Hugging Face directory). */
fipsc_status fipsc_hf_load_safetensors(const char *path, fipsc_model **out, fipsc_error *err);

/* A directory or .safetensors file as the two above, but names and shapes only (see
 * fipsc_family.load_shapes); a checkpoint with fused projections (Phi-3) is loaded whole. */
fipsc_status fipsc_hf_load_shapes(const char *path, fipsc_model **out, fipsc_error *err);

/* Finds and parses the configuration that fipsc_hf_load_dir (path a directory) or
 * fipsc_hf_load_safetensors (path a file) would use, without loading weights. Fails with
 * FIPSC_ERR_NOT_FOUND when there is none, FIPSC_ERR_UNSUPPORTED for another architecture. */
fipsc_status fipsc_hf_find_config(const char *path, fipsc_config *cfg, fipsc_error *err);

/* Writes m (Llama family, dense MLPs) as a Hugging Face checkpoint directory: DIR/config.json
 * (fipsc_hf_config_to_json) and DIR/model.safetensors, atomically as fipsc_hf_write_dir says. The
 * family's export_dense. */
fipsc_status fipsc_hf_write_llama_dir(const fipsc_model *m, const char *dir, bool overwrite, fipsc_error *err);

#endif
