/* The Llama family in GGUF files (llama.cpp's format): `llama`, `qwen2`, `gemma`, `gemma2` in
 * and out (src/families/llama/gguf_names.c says how names, RoPE row order and the vocabulary map). */
#ifndef FIPSC_FAMILIES_LLAMA_GGUF_H
#define FIPSC_FAMILIES_LLAMA_GGUF_H

#include <stdbool.h>

#include "core/status.h"
#include "formats/ggml_blocks.h"
#include "model/family.h"
#include "model/model.h"

/* YES for a GGUF file of an architecture the family reads, MAYBE for another GGUF file (the
 * loader says why), NO for anything else. */
fipsc_probe fipsc_llama_gguf_probe(const char *path, fipsc_error *why);

/* Loads a GGUF file: F32 tensors that need no change are used in place from the map (kept by the
 * model), the others converted to float32; q/k rows in the Hugging Face order. */
fipsc_status fipsc_llama_gguf_load(const char *path, fipsc_model **out, fipsc_error *err);
/* Names and shapes only (fipsc_family.load_shapes); fused files (phi3) load whole. */
fipsc_status fipsc_llama_gguf_load_shapes(const char *path, fipsc_model **out, fipsc_error *err);
/* The same from size bytes in memory (fuzzing); name stands for the path in messages. */
fipsc_status fipsc_llama_gguf_load_buffer(const void *bytes, size_t size, const char *name, fipsc_model **out,
                                          fipsc_error *err);

/* Writes m (dense MLPs) as a GGUF v3 file whose matrices are stored as type (1-D tensors F32; a
 * matrix whose rows are not whole blocks of a block type F16), atomically. The vocabulary: vocab,
 * a GGUF file whose tokenizer.* keys are copied (its tokenizer.ggml.tokens must have the model's
 * vocabulary size); else tok, a Hugging Face tokenizer written as llama.cpp's vocabulary
 * (gguf_vocab.c); else, both NULL, the placeholder vocabulary. */
fipsc_status fipsc_llama_gguf_export(const fipsc_model *m, const char *path, fipsc_ggml_type type,
                                     const fipsc_gguf *vocab, const struct fipsc_tokenizer *tok, bool overwrite,
                                     fipsc_error *err);

#endif
