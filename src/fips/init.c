/* SVD initialisation of the shared basis and the factors (ALGORITHM.md §5).
 *
 * W_cat = A·Σ·Bᵀ (thin SVD, k = min(d, P) = rank). U = A[:, :r] (orthonormal columns) and
 * V = (Σ·Bᵀ)[:r, :]: every singular value goes into V, so U·V is the best rank-r approximation
 * of W_cat and each V_i (its columns) the best coefficients of M_i in the basis U.
 *
 * Two routes to A and Σ·Bᵀ:
 *   gesdd: the thin SVD itself, O(d·P·k) with a large constant and a k × P copy of Bᵀ.
 *   Gram:  W_cat·W_catᵀ = A·Σ²·Aᵀ (d × d, dsyrk + dsyevd), then Σ·Bᵀ = Aᵀ·W_cat (one sgemm).
 *          Far cheaper when P ≫ d (Llama-3-8B group of 4: d = 4096, P = 172032). The Gram matrix
 *          squares the condition number, so it is accumulated and decomposed in double (float
 *          would lose every direction below ~3e-4·σ_max); V = Aᵀ·W_cat is computed from W_cat
 *          itself, so U·V is an exact orthogonal projection of W_cat onto span(U).
 *
 * Thread count: OpenBLAS rounds a threaded call differently for each thread count (it splits the
 * work by it), and the results must be the same for any --threads. So the LAPACK calls (gesdd,
 * dsyevd: O(d³) at most, small next to training) run on OpenBLAS's one thread; the Gram
 * product, O(d²·P), is cut into fixed d-tiles of G computed on OpenMP threads by single-threaded
 * dsyrk/dgemm calls, and Aᵀ·W_cat goes through fipsc_gemm's fixed column panels.
 *
 * r > rank (over-complete basis, e.g. DeiT-B d = 768, r = 1365): U gets r − rank zero columns and
 * V row rank + j = V row (j mod rank) / τ, τ = 32, as the reference does. U·V is unchanged, and the
 * new columns of U get non-zero gradients at once (their V rows are not zero), so they learn. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fips/fips_internal.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "ops/gemm.h"

static int imin(int64_t a, int64_t b)
{
    return (int)(a < b ? a : b);
}

/* Makes the largest-magnitude entry of each of U's first k columns positive (flipping the
 * matching V row when V is given), so both routes and every LAPACK give the same signs. U is
 * walked row by row (first maximum wins), since its columns are strided. False when out of
 * memory. */
bool fips_fix_signs(float *U, int d, int r, int k, float *V, int64_t P)
{
    float *best = calloc((size_t)k, sizeof(float)), *sign = malloc((size_t)k * sizeof(float));
    if (!best || !sign) {
        free(best);
        free(sign);
        return false;
    }
    for (int j = 0; j < k; j++) sign[j] = 1.0f;
    for (int64_t a = 0; a < d; a++)
        for (int j = 0; j < k; j++) {
            float u = U[a * r + j];
            if (fabsf(u) > best[j]) {
                best[j] = fabsf(u);
                sign[j] = u < 0.0f ? -1.0f : 1.0f;
            }
        }
    for (int64_t a = 0; a < d; a++)
        for (int j = 0; j < k; j++) U[a * r + j] *= sign[j];
    if (V)
        for (int j = 0; j < k; j++)
            if (sign[j] < 0.0f) cblas_sscal((int)P, -1.0f, V + (int64_t)j * P, 1);
    free(best);
    free(sign);
    return true;
}

/* The r > rank padding: U columns k..r-1 stay zero; V row k + q = V row (q mod k) / τ. */
void fips_pad_rows(fipsc_fips_factors *F, int k)
{
#pragma omp parallel for schedule(static) if ((int64_t)(F->r - k) * F->P >= FIPS_PARALLEL_MIN)
    for (int row = k; row < F->r; row++) {
        const float *src = F->V + (int64_t)((row - k) % k) * F->P;
        float *dst = F->V + (int64_t)row * F->P;
        for (int64_t c = 0; c < F->P; c++) dst[c] = src[c] / FIPSC_FIPS_PAD_TAU;
    }
}

static fipsc_status init_gesdd(const float *wcat, fipsc_fips_factors *F, float *sigma,
                               fipsc_error *err)
{
    int d = F->d, r = F->r;
    int64_t P = F->P;
    int k = imin(d, P), kk = imin(r, k);
    float *a = malloc((size_t)d * (size_t)P * sizeof(float));
    float *s = malloc((size_t)k * sizeof(float));
    float *u = malloc((size_t)d * (size_t)k * sizeof(float));
    float *vt = malloc((size_t)k * (size_t)P * sizeof(float));
    fipsc_status st = FIPSC_OK;
    if (!a || !s || !u || !vt) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "SVD init (gesdd): out of memory for a %d × %lld matrix",
                        d, (long long)P);
        goto done;
    }
    memcpy(a, wcat, (size_t)d * (size_t)P * sizeof(float)); /* gesdd destroys its input */
    lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', d, (lapack_int)P, a, (lapack_int)P,
                                     s, u, k, vt, (lapack_int)P);
    if (info != 0) {
        st = fipsc_fail(err, info > 0 ? FIPSC_ERR_NUMERIC : FIPSC_ERR_INTERNAL,
                        "SVD init: LAPACKE_sgesdd on W_cat [%d, %lld] failed (info %d%s)", d,
                        (long long)P, (int)info, info > 0 ? ": did not converge" : "");
        goto done;
    }
    for (int64_t row = 0; row < d; row++)
        memcpy(F->U + row * r, u + row * k, (size_t)kk * sizeof(float));
    for (int j = 0; j < kk; j++) {
        float *dst = F->V + (int64_t)j * P;
        const float *src = vt + (int64_t)j * P;
        for (int64_t c = 0; c < P; c++) dst[c] = s[j] * src[c];
    }
    if (!fips_fix_signs(F->U, d, r, kk, F->V, P)) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "SVD init: out of memory");
        goto done;
    }
    if (sigma) memcpy(sigma, s, (size_t)k * sizeof(float));
done:
    free(a);
    free(s);
    free(u);
    free(vt);
    return st;
}

/* Rows and columns per tile of the Gram matrix, and the work (multiply-adds per chunk) from
 * which its tiles spread over threads. */
enum { GRAM_TILE = 256 };
#define GRAM_PARALLEL_WORK ((int64_t)1 << 22)

void fips_gram_accumulate(double *G, int d, const double *chunk, int64_t n, bool first)
{
    const int nb = (d + GRAM_TILE - 1) / GRAM_TILE, tiles = nb * (nb + 1) / 2;
    const double beta = first ? 0.0 : 1.0;
    /* Tile t of the upper triangle, row-block bi ≤ column-block bj (fixed by d alone). */
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1 && (int64_t)d * d * n >= GRAM_PARALLEL_WORK)
    for (int t = 0; t < tiles; t++) {
        int bi = 0, rest = t;
        while (rest >= nb - bi) rest -= nb - bi++;
        const int bj = bi + rest, i0 = bi * GRAM_TILE, j0 = bj * GRAM_TILE;
        const int mi = d - i0 < GRAM_TILE ? d - i0 : GRAM_TILE;
        const int mj = d - j0 < GRAM_TILE ? d - j0 : GRAM_TILE;
        if (bi == bj)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, mi, (int)n, 1.0,
                        chunk + (int64_t)i0 * n, (int)n, beta, G + (int64_t)i0 * d + i0, d);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, mj, (int)n, 1.0,
                        chunk + (int64_t)i0 * n, (int)n, chunk + (int64_t)j0 * n, (int)n, beta,
                        G + (int64_t)i0 * d + j0, d);
    }
}

static fipsc_status init_gram(const float *wcat, fipsc_fips_factors *F, float *sigma,
                              fipsc_error *err)
{
    int d = F->d, r = F->r;
    int64_t P = F->P;
    int k = imin(d, P), kk = imin(r, k);
    /* Column chunks of W_cat converted to double, ~64 MB each. */
    int64_t cw = ((int64_t)1 << 23) / d;
    if (cw < 256) cw = 256;
    if (cw > P) cw = P;
    double *G = malloc((size_t)d * (size_t)d * sizeof(double));
    double *lambda = malloc((size_t)d * sizeof(double));
    double *chunk = malloc((size_t)d * (size_t)cw * sizeof(double));
    if (!G || !lambda || !chunk) {
        free(G);
        free(lambda);
        free(chunk);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "SVD init (Gram): out of memory for a %d × %d matrix",
                          d, d);
    }
    /* G = W_cat·W_catᵀ = Σ over column chunks C of C·Cᵀ (upper triangle), in double: in float
     * the rounding of G (~1e-7·σ_max²) would swamp every direction with σ < ~3e-4·σ_max. */
    for (int64_t c0 = 0; c0 < P; c0 += cw) {
        int64_t n = P - c0 < cw ? P - c0 : cw;
#pragma omp parallel for schedule(static) if (d * n >= FIPS_PARALLEL_MIN)
        for (int64_t a = 0; a < d; a++)
            for (int64_t c = 0; c < n; c++) chunk[a * n + c] = wcat[a * P + c0 + c];
        fips_gram_accumulate(G, d, chunk, n, c0 == 0);
    }
    free(chunk);
    /* G = A·Λ·Aᵀ, eigenvalues ascending, eigenvectors in G's columns. */
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, G, d, lambda);
    if (info != 0) {
        free(G);
        free(lambda);
        return fipsc_fail(err, info > 0 ? FIPSC_ERR_NUMERIC : FIPSC_ERR_INTERNAL,
                          "SVD init: LAPACKE_dsyevd on W_cat·W_catᵀ [%d, %d] failed (info %d%s)", d,
                          d, (int)info, info > 0 ? ": did not converge" : "");
    }
    /* U[:, j] = eigenvector of the j-th largest eigenvalue. */
    for (int64_t a = 0; a < d; a++)
        for (int j = 0; j < kk; j++) F->U[a * r + j] = (float)G[a * d + (d - 1 - j)];
    if (sigma)
        for (int j = 0; j < k; j++) {
            double l = lambda[d - 1 - j];
            sigma[j] = l > 0.0 ? (float)sqrt(l) : 0.0f; /* rounding can leave tiny negative λ */
        }
    free(G);
    free(lambda);
    if (!fips_fix_signs(F->U, d, r, kk, NULL, P))
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "SVD init: out of memory");
    /* Σ·Bᵀ = Aᵀ·W_cat, first kk rows. */
    fipsc_gemm(true, false, kk, (int)P, d, F->U, r, wcat, (int)P, 0.0f, F->V, (int)P);
    return FIPSC_OK;
}

fipsc_status fipsc_fips_svd_init(const float *wcat, fipsc_fips_svd_method method,
                                 fipsc_fips_factors *F, float *sigma, fipsc_error *err)
{
    if (!wcat || !F->U || !F->V)
        return fipsc_fail(err, FIPSC_ERR_ARG, "SVD init: W_cat and allocated factors are required");
    if (F->P > 2147483647)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "SVD init: P = %lld columns exceed LAPACK's int",
                          (long long)F->P);
    int64_t bad = fipsc_first_nonfinite(wcat, (size_t)F->d * (size_t)F->P);
    if (bad >= 0)
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "SVD init: W_cat[%lld, %lld] is not finite",
                          (long long)(bad / F->P), (long long)(bad % F->P));
    if (method == FIPSC_FIPS_SVD_AUTO)
        method = (double)F->d * (double)F->P <= 4194304.0 ? FIPSC_FIPS_SVD_GESDD : FIPSC_FIPS_SVD_GRAM;
    memset(F->U, 0, (size_t)F->d * (size_t)F->r * sizeof(float));
    if (method != FIPSC_FIPS_SVD_GESDD && method != FIPSC_FIPS_SVD_GRAM)
        return fipsc_fail(err, FIPSC_ERR_ARG, "SVD init: unknown method %d", (int)method);
    fipsc_status st = method == FIPSC_FIPS_SVD_GESDD ? init_gesdd(wcat, F, sigma, err)
                                                     : init_gram(wcat, F, sigma, err);
    if (st) return st;
    int k = imin(F->d, F->P);
    if (F->r > k) fips_pad_rows(F, k);
    return FIPSC_OK;
}

fipsc_status fipsc_fips_init_group(const fipsc_fips_group *g, int r, fipsc_fips_svd_method method,
                                   const fipsc_fips_calib *whiten, double alpha, fipsc_fips_factors *F,
                                   fipsc_error *err)
{
    fipsc_status st = fipsc_fips_factors_alloc(F, g->d, r, g->P, err);
    if (st) return st;
    float *wcat = malloc((size_t)g->d * (size_t)g->P * sizeof(float));
    double *C = whiten ? malloc((size_t)g->d * (size_t)g->d * sizeof(double)) : NULL;
    if (!wcat || (whiten && !C)) {
        free(wcat);
        free(C);
        fipsc_fips_factors_free(F);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "SVD init: out of memory for W_cat [%d, %lld]",
                          g->d, (long long)g->P);
    }
    if (whiten) st = fipsc_fips_input_moments(g, whiten, C, err);
    if (!st) st = fipsc_fips_concat(g, wcat, err);
    if (!st) st = whiten ? fipsc_fips_whitened_init(wcat, C, alpha, method, F, err)
                         : fipsc_fips_svd_init(wcat, method, F, NULL, err);
    free(wcat);
    free(C);
    if (st) fipsc_fips_factors_free(F);
    return st;
}
