/* Rank from a parameter budget, and what the compressed group costs (ALGORITHM.md §4).
 *
 * Keeping the fraction p of the group's d·P dense weights with V at sparsity s:
 *     d·r + (1 − s)·r·P ≤ p·d·P   ⇔   r ≤ p·d·P / (d + (1 − s)·P),
 * so r = floor(p·d·P / (d + (1 − s)·P)) for any f, gated or plain (P = Σ f over the matrices).
 * (The reference hard-codes P = 8·d per block, i.e. f = 4d and two matrices.) The paper counts
 * parameters only; the real cost of a sparse V also includes its indices, reported as bytes. */
#include <math.h>

#include "fips/fips_internal.h"
#include "ops/factored.h"

fipsc_status fipsc_fips_rank_from_budget(int d, int64_t P, double keep, double sparsity,
                                         int multiple, int *r, fipsc_error *err)
{
    if (d < 1 || P < 1)
        return fipsc_fail(err, FIPSC_ERR_ARG, "rank from budget: d = %d and P = %lld must be positive",
                          d, (long long)P);
    if (!(keep > 0.0 && keep <= 1.0))
        return fipsc_fail(err, FIPSC_ERR_ARG, "rank from budget: kept fraction %g is not in (0, 1]", keep);
    if (!(sparsity >= 0.0 && sparsity < 1.0))
        return fipsc_fail(err, FIPSC_ERR_ARG, "rank from budget: sparsity %g is not in [0, 1)", sparsity);
    if (multiple < 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "rank from budget: multiple %d is negative", multiple);
    long double num = (long double)keep * d * (long double)P;
    long double den = d + (1.0L - (long double)sparsity) * (long double)P;
    long double q = num / den;
    /* A quotient a hair below an integer because 0.1-style decimals are inexact in binary counts
     * as that integer: 1e-12 relative is far below any real change of budget. */
    long double rr = floorl(q * (1.0L + 1e-12L));
    if (rr > 2147483647.0L)
        return fipsc_fail(err, FIPSC_ERR_ARG, "rank from budget: r = %.0Lf does not fit an int", rr);
    long long rank = (long long)rr;
    if (multiple > 1) rank -= rank % multiple;
    if (rank < 1)
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "rank from budget: keeping %g of d = %d, P = %lld at sparsity %g gives "
                          "r = %.3Lf, which is 0 after rounding down to a multiple of %d",
                          keep, d, (long long)P, sparsity, q, multiple > 1 ? multiple : 1);
    *r = (int)rank;
    return FIPSC_OK;
}

int64_t fipsc_fips_keep_count(int64_t total, double sparsity)
{
    if (sparsity <= 0.0) return total;
    if (sparsity >= 1.0) return 0;
    int64_t pruned = (int64_t)llroundl((long double)sparsity * (long double)total);
    return total - pruned;
}

int64_t fipsc_fips_csc_bytes(int r, int cols, int64_t nnz)
{
    return fipsc_v_stored_bytes(FIPSC_V_CSC, r, cols, nnz, 4);
}

int64_t fipsc_fips_nm_bytes(int r, int cols, int n, int m)
{
    return fipsc_v_stored_bytes(FIPSC_V_NM, r, cols, (int64_t)(r / m) * n * cols, 4);
}

fipsc_status fipsc_fips_cost_predict(const fipsc_fips_group *g, int r, double sparsity, int nm_n,
                                     int nm_m, fipsc_fips_cost *out, fipsc_error *err)
{
    if (r < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS cost: rank %d must be positive", r);
    bool nm = nm_m > 0;
    if (nm) {
        if (nm_n < 1 || nm_n > nm_m || nm_m > 255)
            return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS cost: %d:%d is not a valid n:m (1 ≤ n ≤ m ≤ 255)",
                              nm_n, nm_m);
        if (r % nm_m)
            return fipsc_fail(err, FIPSC_ERR_ARG,
                              "FiPS cost: rank r = %d is not a multiple of m = %d (round r to a "
                              "multiple of m)", r, nm_m);
    } else if (!(sparsity >= 0.0 && sparsity < 1.0)) {
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS cost: sparsity %g is not in [0, 1)", sparsity);
    }
    out->dense_params = (int64_t)g->d * g->P;
    out->u_params = (int64_t)g->d * r;
    out->dense_bytes = out->dense_params * 4;
    int64_t nnz = 0, ptr_bytes = 0, nm_bytes = 0;
    for (int i = 0; i < g->n_matrices; i++) {
        int cols = g->matrices[i].cols;
        ptr_bytes += ((int64_t)cols + 1) * 4;
        if (nm) {
            nnz += (int64_t)(r / nm_m) * nm_n * cols;
            nm_bytes += fipsc_fips_nm_bytes(r, cols, nm_n, nm_m);
        }
    }
    if (!nm) nnz = fipsc_fips_keep_count((int64_t)r * g->P, sparsity);
    out->nnz = nnz;
    out->kept_params = out->u_params + nnz;
    out->csc_bytes = out->u_params * 4 + nnz * (4 + fipsc_v_csc_index_bytes(r)) + ptr_bytes;
    out->nm_bytes = nm ? out->u_params * 4 + nm_bytes : -1;
    return FIPSC_OK;
}

void fipsc_fips_cost_measure(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                             fipsc_fips_cost *out)
{
    out->dense_params = (int64_t)g->d * g->P;
    out->u_params = (int64_t)g->d * F->r;
    out->dense_bytes = out->dense_params * 4;
    out->nnz = 0;
    out->csc_bytes = out->u_params * 4;
    for (int i = 0; i < g->n_matrices; i++) {
        int64_t nnz = fipsc_fips_count_active(g, F, &i, 1);
        out->nnz += nnz;
        out->csc_bytes += fipsc_fips_csc_bytes(F->r, g->matrices[i].cols, nnz);
    }
    out->kept_params = out->u_params + out->nnz;
    out->nm_bytes = -1;
}
