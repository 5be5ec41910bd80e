/* Normalisations over the rows of a matrix: LayerNorm and RMSNorm, with their backwards.
 *
 * LayerNorm: y = (x − μ)·ρ ⊙ γ + β, ρ = 1/sqrt(σ² + ε), σ² the biased variance of the row.
 * The same maths rounds differently depending on how μ and σ² are summed and how the products are
 * associated; fipsc runs each family the way its reference framework does, so that outputs agree
 * with it to the last few bits (tests compare with PyTorch and TF.js to ~1e-6):
 *   FIPSC_LN_DOUBLE   μ, σ² summed in double; y = ((x − μ)·ρ)·γ + β           (PyTorch: ViT, GPT-2)
 *   FIPSC_LN_FLOAT32  μ, σ² summed in float (vectorised); y = γ·ρ·(x − μ) + β (the TF.js graph: USE)
 * Rows are independent; a large call spreads them over OpenMP threads (same bits either way). */
#ifndef FIPSC_OPS_NORM_H
#define FIPSC_OPS_NORM_H

#include <stdint.h>

typedef enum fipsc_ln_arith { FIPSC_LN_DOUBLE = 0, FIPSC_LN_FLOAT32 } fipsc_ln_arith;

/* y [rows, d] = LayerNorm(x [rows, d]) (y may equal x). When xhat is not NULL, also
 * xhat [rows, d] = (x − μ)·ρ and rstd [rows] = ρ, for fipsc_layernorm_backward. */
void fipsc_layernorm(const float *x, float *y, int64_t rows, int d, const float *gamma, const float *beta, float eps,
                     fipsc_ln_arith arith, float *xhat, float *rstd);

/* dx [rows, d] += the gradient through LayerNorm of dy [rows, d], from the forward's xhat and rstd:
 *   dx = ρ·(g − mean(g) − x̂·mean(g ⊙ x̂)),  g = dy ⊙ γ   (the row means in double). */
void fipsc_layernorm_backward(const float *dy, const float *xhat, const float *rstd, const float *gamma,
                              int64_t rows, int d, float *dx);

/* out [rows, d] = w ⊙ x / sqrt(mean(x²) + ε) per row, the mean accumulated in double (out may equal x). */
void fipsc_rmsnorm(const float *x, const float *w, float *out, int64_t rows, int d, float eps);

/* dx [rows, d] += the gradient through fipsc_rmsnorm of dy [rows, d] at its input x:
 *   dx = ρ·(w⊙dy) − x·ρ³·mean(w⊙dy⊙x),  ρ = (mean(x²) + ε)^(−1/2)   (ρ and the mean in double). */
void fipsc_rmsnorm_backward(const float *dy, const float *x, const float *w, int64_t rows, int d, float eps, float *dx);

#endif
