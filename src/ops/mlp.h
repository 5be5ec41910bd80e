/* The MLP (feed-forward) module of a transformer block: the only part FiPS compresses.
 *
 * Two shapes, both written with three linear slots so that one code path serves all:
 *   gated (LLaMA/Mistral/Qwen SwiGLU, Gemma GeGLU):  y = down · (act(gate·x) ⊙ (up·x))
 *   plain (ViT/DeiT/BERT/USE):                       y = down · act(up·x + b_up) + b_down
 * with up/gate [f, d] ("expanding") and down [d, f] ("contracting"), row-major [out, in].
 * A plain MLP's fc1 is the `up` slot and fc2 the `down` slot; its `gate` slot is empty. */
#ifndef FIPSC_MLP_H
#define FIPSC_MLP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

typedef enum fipsc_activation {
    FIPSC_ACT_SILU = 0,  /* x·σ(x) */
    FIPSC_ACT_GELU_TANH, /* 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) */
    FIPSC_ACT_GELU,      /* exact: 0.5x(1 + erf(x/√2)) */
    FIPSC_ACT_RELU       /* max(x, 0) */
} fipsc_activation;

typedef enum fipsc_mlp_kind { FIPSC_MLP_GATED = 0, FIPSC_MLP_PLAIN } fipsc_mlp_kind;

/* The three linear slots by role: the compressor, the file format and the runtime name matrices
 * this way. Up and gate are expanding ([f, d]), down is contracting ([d, f]). */
typedef enum fipsc_mlp_role {
    FIPSC_ROLE_GATE = 0, /* gated MLPs only */
    FIPSC_ROLE_UP,       /* gated up_proj, or plain fc1 */
    FIPSC_ROLE_DOWN      /* gated down_proj, or plain fc2 */
} fipsc_mlp_role;

/* Role names, in files and messages: "gate", "up", "down". */
const char *fipsc_mlp_role_name(fipsc_mlp_role role);
bool fipsc_mlp_role_parse(const char *name, fipsc_mlp_role *out);

struct fipsc_factored_linear; /* a FiPS-compressed matrix U·V_i (see the compress module) */

/* One linear map Y = X·Wᵀ + b over a batch of rows. Exactly one of `w` (dense [out, in] float32),
 * `w16` (dense [out, in] in 16-bit floats of dtype w16_dtype, F16 or BF16, as the checkpoint
 * stored it) and `factored` is set. */
typedef struct fipsc_linear {
    int out, in;
    const char *weight_name; /* the checkpoint's tensor name ("model.layers.0.mlp.up_proj.weight") */
    const float *w;
    const uint16_t *w16;
    int w16_dtype; /* a fipsc_dtype (core/tensor.h) */
    const float *bias; /* [out] or NULL */
    const struct fipsc_factored_linear *factored;
} fipsc_linear;

/* Whether lin has a dense weight, float32 or 16-bit. */
static inline bool fipsc_linear_is_dense(const fipsc_linear *lin)
{
    return lin->w || lin->w16;
}

typedef struct fipsc_mlp {
    fipsc_mlp_kind kind;
    fipsc_activation act;
    int d, f;
    fipsc_linear gate; /* gated only */
    fipsc_linear up;   /* gated: up_proj; plain: fc1 */
    fipsc_linear down; /* gated: down_proj; plain: fc2 */
} fipsc_mlp;

/* The linear slot of mlp with this role; NULL for the gate of a plain MLP. Like strchr, it takes
 * a const MLP and returns a mutable slot, so one function serves readers and writers. */
fipsc_linear *fipsc_mlp_slot(const fipsc_mlp *mlp, fipsc_mlp_role role);

const char *fipsc_activation_name(fipsc_activation act);
bool fipsc_activation_parse(const char *name, fipsc_activation *out);

/* Number of dense weight parameters of the MLP's matrices (biases excluded): 3df or 2df. */
long long fipsc_mlp_dense_params(const fipsc_mlp *mlp);

#endif
