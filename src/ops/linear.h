/* Running one linear layer over a batch of rows: Y = X·Wᵀ + b.
 *
 * Orientation (Hugging Face): W is [out, in] row-major, X is [n, in] row-major (one row per token
 * or image patch), Y is [n, out] row-major, b is [out] or absent. Dense weights run on
 * fipsc_gemm_nt (src/ops/gemm.h): single-threaded sgemm calls over fixed column panels
 * spread on OpenMP threads, or for a single row an in-library matrix-vector kernel. Results are
 * therefore identical for any thread count (for a given n: the GEMM kernels may round a row
 * differently when it is computed among a different number of rows). */
#ifndef FIPSC_LINEAR_H
#define FIPSC_LINEAR_H

#include <stddef.h>

#include "ops/mlp.h"
#include "core/status.h"

/* y[n, out] = x[n, in]·Wᵀ + b. y must not overlap x. A factored (FiPS-compressed) linear runs
 * on its sparse kernels without densifying (fipsc_factored_apply, src/ops/factored.h). */
fipsc_status fipsc_linear_apply(const fipsc_linear *lin, int n, const float *x, float *y,
                                fipsc_error *err);

/* y[n, out] += x[n, in]·Wᵀ + b (for residual connections). */
fipsc_status fipsc_linear_apply_add(const fipsc_linear *lin, int n, const float *x, float *y,
                                    fipsc_error *err);

/* y [rows, out] (row stride ldy) = x [rows, in] (row stride ldx)·Wᵀ + b for a float32 W [out, in]
 * and b [out] or NULL: the product of a weight the caller holds densely (the distillers' W_i and
 * attention weights), on fipsc_gemm — the same bits for any thread count. */
void fipsc_linear_rows(int rows, int out, int in, const float *x, int ldx, const float *w, const float *b, float *y,
                       int ldy);

/* Row `row` of a dense linear's weight ([in] values) as float32 into dst: an embedding lookup
 * when the weight is a token-embedding table [vocab, dim]. */
void fipsc_linear_weight_row(const fipsc_linear *lin, int row, float *dst);

/* x[n] += y[n]: a residual connection (on OpenMP threads when n is large; exact either way). */
void fipsc_residual_add(float *x, const float *y, size_t n);

#endif
