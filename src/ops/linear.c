/* Dense linear layers (see src/ops/linear.h).
 *
 * Row-major X [n, in] times row-major W [out, in] transposed is one "NT" GEMM,
 * C = X·Wᵀ with lda = ldb = in: W's rows are read as the columns of Wᵀ without copying. */
#include "ops/linear.h"

#include <stddef.h>
#include <string.h>

#include "core/tensor.h"
#include "ops/factored.h"
#include "ops/gemm.h"

static fipsc_status linear_run(const fipsc_linear *lin, int n, const float *x, float *y,
                               int accumulate, fipsc_error *err)
{
    const char *name = lin->weight_name ? lin->weight_name : "(unnamed linear)";
    if (lin->factored) /* FiPS-compressed U·V_i: sparse kernels (ops/factored_kernels.c) */
        return fipsc_factored_apply(lin->factored, lin->bias, n, x, y, accumulate, err);
    if (!fipsc_linear_is_dense(lin))
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: linear layer has no weights", name);
    if (n < 0 || lin->out <= 0 || lin->in <= 0)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: invalid linear call (n %d, out %d, in %d)",
                          name, n, lin->out, lin->in);
    if (n == 0) return FIPSC_OK;
    const int out = lin->out, in = lin->in;
    if (lin->w16) { /* kept as the checkpoint stored it: panels converted as they are used */
        fipsc_status st = fipsc_gemm_nt16(n, out, in, x, in, lin->w16, lin->w16_dtype, in, accumulate ? 1.0f : 0.0f,
                                          y, out, err);
        if (st) return fipsc_fail_context(err, "%s: ", name);
    } else {
        fipsc_gemm_nt(n, out, in, x, in, lin->w, in, accumulate ? 1.0f : 0.0f, y, out);
    }
    if (lin->bias) /* rows are few or the GEMM dominates: no thread team for this */
        for (int r = 0; r < n; r++) {
            float *row = y + (size_t)r * out;
            for (int i = 0; i < out; i++) row[i] += lin->bias[i];
        }
    return FIPSC_OK;
}

fipsc_status fipsc_linear_apply(const fipsc_linear *lin, int n, const float *x, float *y,
                                fipsc_error *err)
{
    return linear_run(lin, n, x, y, 0, err);
}

fipsc_status fipsc_linear_apply_add(const fipsc_linear *lin, int n, const float *x, float *y,
                                    fipsc_error *err)
{
    return linear_run(lin, n, x, y, 1, err);
}

void fipsc_linear_rows(int rows, int out, int in, const float *x, int ldx, const float *w, const float *b, float *y,
                       int ldy)
{
    if (rows <= 0) return;
    fipsc_gemm(false, true, rows, out, in, x, ldx, w, in, 0.0f, y, ldy);
    if (!b) return;
#pragma omp parallel for schedule(static) if ((int64_t)rows * out >= ((int64_t)1 << 16))
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < out; j++) y[(size_t)r * ldy + j] += b[j];
}

void fipsc_residual_add(float *x, const float *y, size_t n)
{
    if (n > (size_t)262144) { /* below, a parallel region costs more than the adds */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) x[i] += y[i];
    } else {
        for (size_t i = 0; i < n; i++) x[i] += y[i];
    }
}

void fipsc_linear_weight_row(const fipsc_linear *lin, int row, float *dst)
{
    if (lin->w16)
        fipsc_convert16_to_f32((fipsc_dtype)lin->w16_dtype, lin->w16 + (size_t)row * lin->in, (size_t)lin->in, dst);
    else
        memcpy(dst, lin->w + (size_t)row * lin->in, (size_t)lin->in * sizeof *dst);
}
