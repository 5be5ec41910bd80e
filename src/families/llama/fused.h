/* Phi-3 checkpoints fuse q/k/v into self_attn.qkv_proj and gate/up into mlp.gate_up_proj. fipsc's
 * Llama model holds the parts (so that every MLP matrix is one FiPS matrix and the runtime stays
 * one): the loaders split fused weights, and the writers fuse them again. */
#ifndef FIPSC_FAMILIES_LLAMA_FUSED_H
#define FIPSC_FAMILIES_LLAMA_FUSED_H

#include "core/status.h"
#include "families/llama/llama.h"
#include "model/model.h"

/* Replaces every block's qkv_proj and gate_up_proj weight of m by its parts (checked shapes). */
fipsc_status fipsc_llama_split_fused(fipsc_model *m, fipsc_error *err);

/* A model with m's configuration whose tensors are m's (borrowed) except that each block's q/k/v
 * and gate/up weights are fused into new qkv_proj and gate_up_proj tensors: what a writer
 * writes for a Phi-3 model. The model is not bound; free it before m. */
fipsc_status fipsc_llama_fused_copy(const fipsc_model *m, fipsc_model **out, fipsc_error *err);

#endif
