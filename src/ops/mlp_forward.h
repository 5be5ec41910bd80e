/* Running an MLP (src/ops/mlp.h) over a batch of rows: the one entry point every runtime
 * (Llama, ViT, USE) uses for its feed-forward blocks, whatever the MLP's kind and activation.
 *
 *   gated:  y = down·(act(gate·x + b_gate) ⊙ (up·x + b_up)) + b_down
 *   plain:  y = down·act(up·x + b_up) + b_down
 * x [n, d] and y [n, d] are row-major (one row per token); weights are [out, in]; absent biases
 * count as zero. Each linear goes through fipsc_linear_apply, so a slot holding a factored
 * (compressed) matrix is handled there. */
#ifndef FIPSC_MLP_FORWARD_H
#define FIPSC_MLP_FORWARD_H

#include <stddef.h>

#include "ops/mlp.h"
#include "core/status.h"

/* Floats of scratch fipsc_mlp_forward needs for n rows: 2·n·f (gated) or n·f (plain). */
size_t fipsc_mlp_scratch_floats(const fipsc_mlp *mlp, int n);

/* y[n, d] = MLP(x[n, d]). y must not overlap x. scratch is NULL (allocated and freed inside) or
 * holds at least fipsc_mlp_scratch_floats(mlp, n) floats that the caller reuses across calls.
 * Fails with FIPSC_ERR_SHAPE if the linears disagree with d and f. */
fipsc_status fipsc_mlp_forward(const fipsc_mlp *mlp, int n, const float *x, float *y,
                               float *scratch, fipsc_error *err);

#endif
