/* The Llama family's GGUF mapping shared by its reader (gguf_load.c) and writer (gguf_export.c):
 * the architectures, the tensor names both ways, RoPE row order and factors (gguf_names.c says
 * how each maps). Private to src/families/llama. */
#ifndef FIPSC_FAMILIES_LLAMA_GGUF_INTERNAL_H
#define FIPSC_FAMILIES_LLAMA_GGUF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "families/llama/llama.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"

/* A GGUF architecture of the family: whether q/k rows are permuted, and the Hugging Face
 * architecture a file of it becomes. */
typedef struct gguf_arch {
    const char *name;
    bool permute_qk;
    bool qkv_bias;
    const char *hf_arch;
    bool gemma, post_norms; /* Gemma: norms stored as 1 + w; Gemma-2: post norms, soft-capping, windows */
    bool fused;             /* Phi-3: attn_qkv and ffn_up (gate and up) fused */
} gguf_arch;

/* The architecture called name, or NULL. */
const gguf_arch *llama_gguf_arch_named(const char *name);
/* The architecture fipsc writes for a model of configuration c. */
const gguf_arch *llama_gguf_arch_for(const fipsc_config *c);

/* Whether a Hugging Face tensor name is a norm weight (Gemma's GGUF norms hold 1 + w). */
bool llama_gguf_is_norm(const char *hf_name);

/* The name a tensor has on the other side (to_gguf: Hugging Face → GGUF, else back), whether its
 * rows are RoPE-permuted, and its block (-1: none). False when the architecture has no such
 * tensor for n_layers blocks. */
bool llama_gguf_translate_name(const char *name, bool to_gguf, const gguf_arch *a, int n_layers, char *out,
                               size_t cap, bool *rope, int *block);

/* Rows of a q or k tensor [heads·hd, cols] between the two RoPE orders, inside every head:
 * interleaved row 2i + s ↔ half-split row s·hd/2 + i. Rows are row_bytes long (any dtype). */
void llama_gguf_permute_rope_rows(void *dst, const void *src, int64_t rows, size_t row_bytes, int hd,
                                  bool to_interleaved);

/* The factors llama.cpp divides RoPE pair j's angle by (rope_freqs.weight, head_dim/2 of them)
 * for c's llama3 scaling. */
void llama_gguf_llama3_rope_factors(const fipsc_config *c, float *factors);

/* The tokenizer.* keys of tokenizer t for a model of configuration c (gguf_vocab.c). */
fipsc_status llama_gguf_add_tokenizer(fipsc_gguf_writer *w, const fipsc_config *c, const fipsc_tokenizer *t,
                                      fipsc_error *err);

#endif
