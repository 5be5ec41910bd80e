/* The chain rule from a dense weight's gradient to its factors (see src/fips/fips.h).
 *
 * In d × f orientation M = U·V (ALGORITHM.md §3), so for a loss L with gradient dM = dL/dM:
 *   dL/dU = dM·Vᵀ  [d, r],   dL/dV = Uᵀ·dM  [r, f].
 * An expanding matrix (gate, up, fc1) is stored [f, d] = Mᵀ, so dM = dWᵀ; a contracting one (down,
 * fc2) is stored [d, f] = M, so dM = dW. The transposition is folded into the GEMMs. */
#include "fips/fips.h"
#include "ops/gemm.h"

void fipsc_fips_chain_dense_grad(int d, int r, int f, bool expanding, const float *U, const float *V, const float *dW,
                                 float *dU, float *dV)
{
    if (expanding) {
        fipsc_gemm(true, true, d, r, f, dW, d, V, f, 1.0f, dU, r); /* dU += dWᵀ·Vᵀ, dW [f, d] */
        fipsc_gemm(true, true, r, f, d, U, r, dW, d, 0.0f, dV, f); /* dV = Uᵀ·dWᵀ */
    } else {
        fipsc_gemm(false, true, d, r, f, dW, f, V, f, 1.0f, dU, r); /* dU += dW·Vᵀ, dW [d, f] */
        fipsc_gemm(true, false, r, f, d, U, r, dW, f, 0.0f, dV, f); /* dV = Uᵀ·dW */
    }
}
