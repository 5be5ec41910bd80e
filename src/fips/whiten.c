/* Activation-aware ("whitened") SVD initialisation — beyond the paper (ALGORITHM.md §5.1).
 *
 * The plain initialisation (init.c) makes U·V the best rank-r approximation of W_cat in the
 * Frobenius norm: every direction of R^d counts the same. But a gate or up matrix only ever sees
 * the MLP inputs x, and its error on them is
 *     Σ_x ‖(M − U·V)ᵀ·x‖² = N·tr((M − U·V)ᵀ·C·(M − U·V)) = N·‖S·(M − U·V)‖²_F,   S² = C,
 * with C = (1/N)·Σ_x x·xᵀ [d, d] the inputs' second moments and S its symmetric square root.
 * Directions the inputs hardly use may be approximated badly at no cost; directions they use
 * heavily must be right. So the SVD is taken of the whitened matrix S·W_cat (as SVD-LLM does for
 * one matrix and Basis Sharing for a basis shared by layers) and mapped back:
 *     S·W_cat ≈ U'·V'  (rank r, Eckart–Young in the whitened metric)
 *     U = S⁻¹·U',  V = V'   ⇒   U·V = S⁻¹·U'·U'ᵀ·S·W_cat,
 * the rank-r factors minimising ‖S·(W_cat − U·V)‖_F. The group's MLPs share U, so C pools the
 * inputs of all of them (each row counted once).
 *
 * Strength α (ASVD's exponent): S = (C / c̄)^(α/2), c̄ = mean(diag C). α = 1 is the full
 * whitening above: exactly the pre-activation error of gate and up on the calibration inputs. But
 * the down matrices' inputs are the hidden activations (their side is V's, not U's), and a shared
 * U has only one metric on R^d: theirs is the inputs' one too, which weights their output error by
 * C — an approximation, not an optimum. Measured (BENCHMARKS.md), full whitening lowers every
 * model's block output errors yet can lose end to end (DeiT-MNIST, USE-Lite) while α = 0.5, ASVD's
 * published choice, does not; so α = 0.5 is the default, and α = 0 would be the plain SVD.
 *
 * Conditioning: C + δ·I with δ = 0.01·c̄ (GPTQ's damping) keeps S invertible when the inputs span
 * fewer than d directions (fewer rows than d, dead features) and bounds S's condition number by
 * (100·d)^(α/2). C is accumulated and decomposed in double (dsyevd, one thread); S and S⁻¹ are
 * applied in float through fipsc_gemm (W_cat is float anyway; the same bits for any thread count).
 * White inputs (C = c·I) give S = I: the plain initialisation, exactly.
 *
 * Scale: U = S⁻¹·U' has columns of length ~(c̄/λ)^(α/2); each is scaled to unit length and the
 * factor moved into V's row, so U starts at the plain initialisation's scale (the default
 * learning rate assumes it) and U·V is unchanged. Signs are then fixed as in init.c and the
 * over-complete padding rows (r > rank) redone from the final V. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "fips/fips_internal.h"
#include "ops/gemm.h"

/* Rows of calibration inputs per double-precision chunk of the moments, and elements per float
 * slab of W_cat whitened at a time (~64 MB each). */
#define CHUNK_ELEMENTS ((int64_t)1 << 23)
#define SLAB_ELEMENTS ((int64_t)1 << 24)

fipsc_status fipsc_fips_input_moments(const fipsc_fips_group *g, const fipsc_fips_calib *rows,
                                      double *C, fipsc_error *err)
{
    const int d = g->d;
    int64_t N = 0;
    for (int j = 0; j < g->n_mlps; j++) {
        if (rows[j].n < 0 || (rows[j].n > 0 && !rows[j].x))
            return fipsc_fail(err, FIPSC_ERR_ARG, "whitened init: MLP %d has no calibration inputs", j);
        N += rows[j].n;
    }
    if (N == 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "whitened init: the group has no calibration rows to whiten by");
    int64_t cw = CHUNK_ELEMENTS / d;
    if (cw < 256) cw = 256;
    if (cw > N) cw = N;
    double *chunk = malloc((size_t)d * (size_t)cw * sizeof(double));
    if (!chunk)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "whitened init: out of memory for %lld × %d input rows",
                          (long long)cw, d);
    /* C = Σ over row chunks X_c of X_cᵀ·X_c: each chunk transposed into [d, n] (one column per
     * row) so that the Gram kernel of the plain initialisation accumulates it. */
    bool first = true;
    for (int j = 0; j < g->n_mlps; j++)
        for (int64_t r0 = 0; r0 < rows[j].n; r0 += cw) {
            const int64_t n = rows[j].n - r0 < cw ? rows[j].n - r0 : cw;
            const float *x = rows[j].x + r0 * d;
#pragma omp parallel for schedule(static) if (d * n >= FIPS_PARALLEL_MIN)
            for (int64_t a = 0; a < d; a++)
                for (int64_t c = 0; c < n; c++) chunk[a * n + c] = x[c * d + a];
            fips_gram_accumulate(C, d, chunk, n, first);
            first = false;
        }
    free(chunk);
    for (int64_t a = 0; a < d; a++)
        for (int64_t b = a; b < d; b++) {
            const double v = C[a * d + b] / (double)N;
            if (!isfinite(v))
                return fipsc_fail(err, FIPSC_ERR_NUMERIC, "whitened init: the calibration inputs of the "
                                  "group are not finite (their second moment [%lld, %lld] is %g)",
                                  (long long)a, (long long)b, v);
            C[a * d + b] = C[b * d + a] = v;
        }
    return FIPSC_OK;
}

/* S = (C_δ / c̄)^(α/2) and S⁻¹ [d, d] in float, C_δ = C + δ·c̄·I = Q·Λ·Qᵀ. */
static fipsc_status whitening_roots(const double *C, int d, double alpha, float *S, float *S_inv,
                                    fipsc_error *err)
{
    double mean = 0.0;
    for (int64_t a = 0; a < d; a++) mean += C[a * d + a];
    mean /= d;
    if (!(mean > 0.0) || !isfinite(mean))
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "whitened init: the calibration inputs' mean square is "
                          "%g: there is nothing to whiten by (use the plain SVD initialisation)", mean);
    double *Q = malloc((size_t)d * (size_t)d * sizeof(double)), *lambda = malloc((size_t)d * sizeof(double));
    double *e = malloc((size_t)d * sizeof(double));
    float *q = malloc((size_t)d * (size_t)d * sizeof(float)), *qe = malloc((size_t)d * (size_t)d * sizeof(float));
    fipsc_status st = FIPSC_OK;
    if (!Q || !lambda || !e || !q || !qe) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "whitened init: out of memory for a %d × %d matrix", d, d);
        goto done;
    }
    memcpy(Q, C, (size_t)d * (size_t)d * sizeof(double));
    for (int64_t a = 0; a < d; a++) Q[a * d + a] += FIPSC_FIPS_WHITEN_DAMP * mean;
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, Q, d, lambda);
    if (info != 0) {
        st = fipsc_fail(err, info > 0 ? FIPSC_ERR_NUMERIC : FIPSC_ERR_INTERNAL,
                        "whitened init: LAPACKE_dsyevd on the inputs' second moments [%d, %d] failed "
                        "(info %d%s)", d, d, (int)info, info > 0 ? ": did not converge" : "");
        goto done;
    }
    /* The damping keeps every eigenvalue ≥ δ·c̄ in exact arithmetic; clamp rounding below it. */
    for (int64_t j = 0; j < d; j++) lambda[j] = fmax(lambda[j], FIPSC_FIPS_WHITEN_DAMP * mean) / mean;
    for (int64_t a = 0; a < d * d; a++) q[a] = (float)Q[a];
    for (int pass = 0; pass < 2; pass++) { /* S = Q·E·Qᵀ, E = Λ^(α/2); then S⁻¹ with E⁻¹ */
        for (int64_t j = 0; j < d; j++) e[j] = pow(lambda[j], (pass ? -alpha : alpha) / 2.0);
        for (int64_t a = 0; a < d; a++)
            for (int64_t j = 0; j < d; j++) qe[a * d + j] = (float)(Q[a * d + j] * e[j]);
        fipsc_gemm(false, true, d, d, d, qe, d, q, d, 0.0f, pass ? S_inv : S, d);
    }
done:
    free(Q);
    free(lambda);
    free(e);
    free(q);
    free(qe);
    return st;
}

fipsc_status fipsc_fips_whitened_init(float *wcat, const double *C, double alpha,
                                      fipsc_fips_svd_method method, fipsc_fips_factors *F, fipsc_error *err)
{
    if (!wcat || !C || !F->U || !F->V)
        return fipsc_fail(err, FIPSC_ERR_ARG, "whitened init: W_cat, the moments and allocated factors are required");
    if (!(alpha > 0.0 && alpha <= 1.0))
        return fipsc_fail(err, FIPSC_ERR_ARG, "whitened init: strength %g is not in (0, 1]", alpha);
    const int d = F->d, r = F->r;
    const int64_t P = F->P;
    int64_t bad = fipsc_first_nonfinite(wcat, (size_t)d * (size_t)P);
    if (bad >= 0)
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "SVD init: W_cat[%lld, %lld] is not finite",
                          (long long)(bad / P), (long long)(bad % P));
    int64_t slab = SLAB_ELEMENTS / d;
    if (slab < 256) slab = 256;
    if (slab > P) slab = P;
    const int64_t tmp_elements = d * (slab > r ? slab : r);
    float *S = malloc((size_t)d * (size_t)d * sizeof(float)), *S_inv = malloc((size_t)d * (size_t)d * sizeof(float));
    float *tmp = malloc((size_t)tmp_elements * sizeof(float));
    fipsc_status st = FIPSC_OK;
    if (!S || !S_inv || !tmp) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "whitened init: out of memory for a %d × %d matrix", d, d);
        goto done;
    }
    if ((st = whitening_roots(C, d, alpha, S, S_inv, err))) goto done;
    /* W_cat ← S·W_cat, slab by slab of columns through a copy. */
    for (int64_t c0 = 0; c0 < P; c0 += slab) {
        const int64_t w = P - c0 < slab ? P - c0 : slab;
        for (int64_t a = 0; a < d; a++) memcpy(tmp + a * w, wcat + a * P + c0, (size_t)w * sizeof(float));
        fipsc_gemm(false, false, d, (int)w, d, S, d, tmp, (int)w, 0.0f, wcat + c0, (int)P);
    }
    if ((st = fipsc_fips_svd_init(wcat, method, F, NULL, err))) goto done;
    /* U ← S⁻¹·U'. */
    memcpy(tmp, F->U, (size_t)d * (size_t)r * sizeof(float));
    fipsc_gemm(false, false, d, r, d, S_inv, d, tmp, r, 0.0f, F->U, r);
    /* Unit columns of U, the length moved into V's row (U·V unchanged). */
    const int k = (int)(d < P ? d : P), kk = r < k ? r : k;
    for (int j = 0; j < kk; j++) {
        double ss = 0.0;
        for (int64_t a = 0; a < d; a++) ss += (double)F->U[a * r + j] * F->U[a * r + j];
        if (!(ss > 0.0)) continue;
        const float len = (float)sqrt(ss);
        for (int64_t a = 0; a < d; a++) F->U[a * r + j] /= len;
        cblas_sscal((int)P, len, F->V + (int64_t)j * P, 1);
    }
    if (!fips_fix_signs(F->U, d, r, kk, F->V, P)) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "whitened init: out of memory");
        goto done;
    }
    if (r > k) fips_pad_rows(F, k);
    bad = fipsc_first_nonfinite(F->U, (size_t)d * (size_t)r);
    if (bad >= 0)
        st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "whitened init: U[%lld, %lld] is not finite",
                        (long long)(bad / r), (long long)(bad % r));
done:
    free(S);
    free(S_inv);
    free(tmp);
    return st;
}
