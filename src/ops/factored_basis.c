/* A compressed group's shared basis U [d, r] in memory (src/ops/factored.h): float32, or the
 * 16-bit values themselves when the group stores U as F16 or BF16.
 *
 * Why hold it in 16 bits: U is the dense half of every compressed matrix, and a decode step reads
 * it twice per block (t = x·U for the expanding matrices, y = z·Uᵀ for the contracting one). As
 * float32 it was half of the bytes a compressed MLP moved per token at the Llama-3.2-1B shape
 * (2 × 25 MB of 97.6 MB per MLP pair of blocks): BF16 halves that and the memory U takes. The
 * products read the 16-bit values as they are (ops/gemm.h, fipsc_gemm_nn16 / fipsc_gemm_nt16),
 * with the float32 arithmetic on the exactly widened values, so nothing is lost: a group holding
 * BF16 U computes what the same group holding its float32 widening computes. */
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "ops/factored.h"
#include "ops/gemm.h"

static size_t basis_numel(const fipsc_compressed_group *g) { return (size_t)g->d * (size_t)g->r; }

bool fipsc_group_has_basis(const fipsc_compressed_group *g)
{
    return g->U != NULL || g->U16 != NULL;
}

int64_t fipsc_group_basis_bytes(const fipsc_compressed_group *g)
{
    return g->U16 ? 2 * (int64_t)basis_numel(g) : g->U ? 4 * (int64_t)basis_numel(g) : 0;
}

void fipsc_group_basis_f32(const fipsc_compressed_group *g, float *dst)
{
    if (g->U16) fipsc_convert16_to_f32(g->u_dtype, g->U16, basis_numel(g), dst);
    else if (g->U) memcpy(dst, g->U, basis_numel(g) * sizeof *dst);
}

fipsc_status fipsc_group_set_basis(fipsc_compressed_group *g, const float *U, fipsc_dtype dtype, int64_t *beyond,
                                   fipsc_error *err)
{
    const size_t n = basis_numel(g);
    *beyond = -1;
    if (dtype != FIPSC_F16 && dtype != FIPSC_BF16) {
        float *u = malloc(n * sizeof *u);
        if (!u) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a [%d, %d] basis U", g->d, g->r);
        memcpy(u, U, n * sizeof *u);
        g->U = u;
        g->u_dtype = FIPSC_F32;
        return FIPSC_OK;
    }
    uint16_t *h = malloc(n * sizeof *h);
    if (!h) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a [%d, %d] basis U", g->d, g->r);
    for (size_t i = 0; i < n; i++) h[i] = dtype == FIPSC_F16 ? fipsc_f32_to_f16(U[i]) : fipsc_f32_to_bf16(U[i]);
    if ((*beyond = fipsc_first_nonfinite16(dtype, h, n)) >= 0) {
        free(h);
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "U[%lld, %lld] = %g is beyond what %s can hold",
                          (long long)(*beyond / g->r), (long long)(*beyond % g->r), (double)U[*beyond],
                          fipsc_dtype_name(dtype));
    }
    g->U16 = h;
    g->u_dtype = dtype;
    return FIPSC_OK;
}

fipsc_status fipsc_group_widen_basis(fipsc_compressed_group *g, fipsc_error *err)
{
    if (!g->U16) return FIPSC_OK;
    float *u = malloc(basis_numel(g) * sizeof *u);
    if (!u) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a [%d, %d] float32 basis U", g->d, g->r);
    fipsc_group_basis_f32(g, u);
    free(g->U16);
    g->U16 = NULL;
    g->U = u;
    return FIPSC_OK;
}

void fipsc_group_free(fipsc_compressed_group *g)
{
    if (!g) return;
    free(g->U);
    free(g->U16);
    free(g);
}

fipsc_status fipsc_group_basis_in(const fipsc_compressed_group *g, int n, const float *x, float *t, fipsc_error *err)
{
    if (g->U16) return fipsc_gemm_nn16(n, g->r, g->d, x, g->d, g->U16, g->u_dtype, g->r, 0.0f, t, g->r, err);
    fipsc_gemm(false, false, n, g->r, g->d, x, g->d, g->U, g->r, 0.0f, t, g->r);
    return FIPSC_OK;
}

fipsc_status fipsc_group_basis_out(const fipsc_compressed_group *g, int n, const float *z, float beta, float *y,
                                   fipsc_error *err)
{
    if (g->U16) return fipsc_gemm_nt16(n, g->d, g->r, z, g->r, g->U16, g->u_dtype, g->r, beta, y, g->d, err);
    fipsc_gemm_nt(n, g->d, g->r, z, g->r, g->U, g->r, beta, y, g->d);
    return FIPSC_OK;
}
