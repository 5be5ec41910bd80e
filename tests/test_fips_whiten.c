/* The whitened SVD initialisation (src/fips/whiten.c):
 *   - white inputs (C = c·I) give the plain SVD initialisation;
 *   - on anisotropic inputs U·V is the optimum of the whitened objective of strength α (1 and
 *     0.5): its error tr((W − U·V)ᵀ·M·(W − U·V)), M = ((C + δ·c̄·I)/c̄)^α, equals the sum of the
 *     dropped squared singular values of Lᵀ·W with L·Lᵀ = M (computed here independently, in
 *     double), and the plain initialisation's is larger;
 *   - the inputs' second moments equal a direct sum; the over-complete case keeps the padding rule
 *     and reproduces W; the same bits on 1 and 2 threads; clear errors for no, zero or NaN inputs. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "fips/fips.h"
#include "testutil.h"
#include "wcat_fixture.h"

/* tr(Eᵀ·M·E) with E = W − U·V [d, P] and M [d, d], in double. */
static double metric_error(const fipsc_fips_factors *F, const float *w, const double *M)
{
    const int d = F->d, r = F->r;
    const int64_t P = F->P;
    double *E = malloc((size_t)d * P * sizeof(double));
    for (int a = 0; a < d; a++)
        for (int64_t c = 0; c < P; c++) {
            double s = 0;
            for (int k = 0; k < r; k++) s += (double)F->U[a * r + k] * F->V[k * P + c];
            E[a * P + c] = w[a * P + c] - s;
        }
    double t = 0;
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            double s = 0;
            for (int64_t c = 0; c < P; c++) s += E[a * P + c] * E[b * P + c];
            t += M[a * d + b] * s;
        }
    free(E);
    return t;
}

/* Moments of a strongly anisotropic input distribution: C = AᵀA/n for n random rows of Z·A,
 * A = diagonal scales spread over two decades times a random rotation. */
static double *anisotropic_moments(int d)
{
    double *q = random_orthonormal(d, d), *C = calloc((size_t)d * d, sizeof(double));
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            double s = 0;
            for (int j = 0; j < d; j++) {
                double scale = pow(100.0, -(double)j / (d - 1)); /* 1 … 0.01 */
                s += q[a * d + j] * scale * scale * q[b * d + j];
            }
            C[a * d + b] = s;
        }
    free(q);
    return C;
}

/* The metric M = ((C + δ·c̄·I) / c̄)^α [d, d] that the whitened initialisation of strength α
 * optimises (‖S·E‖² = tr(Eᵀ·M·E) for S² = M), by its own eigendecomposition in double. */
static double *metric(const double *C, int d, double alpha)
{
    double *Q = malloc((size_t)d * d * sizeof(double)), *lam = malloc((size_t)d * sizeof(double)), mean = 0;
    double *M = calloc((size_t)d * d, sizeof(double));
    memcpy(Q, C, (size_t)d * d * sizeof(double));
    for (int a = 0; a < d; a++) mean += C[a * d + a] / d;
    for (int a = 0; a < d; a++) Q[a * d + a] += FIPSC_FIPS_WHITEN_DAMP * mean;
    LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, Q, d, lam);
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++)
            for (int j = 0; j < d; j++) M[a * d + b] += Q[a * d + j] * pow(lam[j] / mean, alpha) * Q[b * d + j];
    free(Q);
    free(lam);
    return M;
}

/* Σ_{j ≥ r} σ_j² of Lᵀ·W with L·Lᵀ = M (dpotrf + dgesdd, double): the least tr(Eᵀ·M·E) of any
 * rank-r approximation (Eckart–Young in the metric M). */
static double metric_tail(const float *w, int d, int64_t P, const double *M, int r)
{
    double *L = malloc((size_t)d * d * sizeof(double));
    memcpy(L, M, (size_t)d * d * sizeof(double));
    LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', d, L, d);
    double *X = malloc((size_t)d * P * sizeof(double));
    for (int a = 0; a < d; a++) /* (Lᵀ·W)[a, c] = Σ_{b ≥ a} L[b, a]·W[b, c] */
        for (int64_t c = 0; c < P; c++) {
            double s = 0;
            for (int b = a; b < d; b++) s += L[b * d + a] * w[b * P + c];
            X[a * P + c] = s;
        }
    int k = d < P ? d : (int)P;
    double *sv = malloc((size_t)k * sizeof(double));
    LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', d, (lapack_int)P, X, (lapack_int)P, sv, NULL, d, NULL, (lapack_int)P);
    double tail = 0;
    for (int j = r; j < k; j++) tail += sv[j] * sv[j];
    free(L);
    free(X);
    free(sv);
    return tail;
}

/* C = c·I: the whitened initialisation is the plain one (U, V equal to float rounding). */
static void test_white_is_plain(int d, int64_t P, int r, double alpha)
{
    fipsc_error err = {0};
    float *w = make_wcat(d, P), *ww = malloc((size_t)d * P * sizeof(float));
    memcpy(ww, w, (size_t)d * P * sizeof(float));
    double *C = calloc((size_t)d * d, sizeof(double));
    for (int a = 0; a < d; a++) C[a * d + a] = 2.5;
    fipsc_fips_factors A, B;
    CHECK_OK(fipsc_fips_factors_alloc(&A, d, r, P, &err), &err);
    CHECK_OK(fipsc_fips_factors_alloc(&B, d, r, P, &err), &err);
    CHECK_OK(fipsc_fips_svd_init(w, FIPSC_FIPS_SVD_AUTO, &A, NULL, &err), &err);
    CHECK_OK(fipsc_fips_whitened_init(ww, C, alpha, FIPSC_FIPS_SVD_AUTO, &B, &err), &err);
    double du = 0, dv = 0, vmax = 0;
    for (int64_t e = 0; e < (int64_t)d * r; e++) du = fmax(du, fabs(A.U[e] - B.U[e]));
    for (int64_t e = 0; e < (int64_t)r * P; e++) {
        dv = fmax(dv, fabs(A.V[e] - B.V[e]));
        vmax = fmax(vmax, fabs(A.V[e]));
    }
    CHECK_MSG(du < 1e-4, "d %d P %lld r %d: white inputs, U differs from the plain SVD by %g", d,
              (long long)P, r, du);
    CHECK_MSG(dv < 1e-4 * vmax, "d %d P %lld r %d: white inputs, V differs by %g (max %g)", d,
              (long long)P, r, dv, vmax);
    fipsc_fips_factors_free(&A);
    fipsc_fips_factors_free(&B);
    free(C);
    free(w);
    free(ww);
}

/* Anisotropic inputs: the whitened factors reach the optimum of their objective, and the plain
 * ones do markedly worse on it. Over-complete r: W reproduced, padding rule kept. */
static void test_optimal(int d, int64_t P, int r, double alpha)
{
    fipsc_error err = {0};
    float *w = make_wcat(d, P), *ww = malloc((size_t)d * P * sizeof(float));
    memcpy(ww, w, (size_t)d * P * sizeof(float));
    double *C = anisotropic_moments(d), *M = metric(C, d, alpha);
    fipsc_fips_factors A, B;
    CHECK_OK(fipsc_fips_factors_alloc(&A, d, r, P, &err), &err);
    CHECK_OK(fipsc_fips_factors_alloc(&B, d, r, P, &err), &err);
    CHECK_OK(fipsc_fips_svd_init(w, FIPSC_FIPS_SVD_AUTO, &A, NULL, &err), &err);
    CHECK_OK(fipsc_fips_whitened_init(ww, C, alpha, FIPSC_FIPS_SVD_AUTO, &B, &err), &err);
    const int k = d < P ? d : (int)P;
    const double total = metric_tail(w, d, P, M, 0), best = metric_tail(w, d, P, M, r);
    const double eb = metric_error(&B, w, M), ea = metric_error(&A, w, M);
    if (r < k) {
        CHECK_MSG(fabs(eb - best) < 1e-3 * best + 1e-6 * total,
                  "d %d P %lld r %d α %g: whitened error %g, optimum %g", d, (long long)P, r, alpha, eb, best);
        CHECK_MSG(ea > 1.2 * best, "d %d P %lld r %d α %g: plain SVD's error %g not above the optimum %g",
                  d, (long long)P, r, alpha, ea, best);
    } else {
        CHECK_MSG(eb < 1e-8 * total, "d %d P %lld r %d: full rank, error %g of %g", d, (long long)P, r, eb, total);
    }
    /* unit columns of U below the rank; zero columns and the padding rule above it */
    double unit = 0;
    for (int j = 0; j < (r < k ? r : k); j++) {
        double s = 0;
        for (int a = 0; a < d; a++) s += (double)B.U[a * r + j] * B.U[a * r + j];
        unit = fmax(unit, fabs(sqrt(s) - 1.0));
    }
    CHECK_MSG(unit < 1e-5, "U's columns are not unit: off by %g", unit);
    if (r > k) {
        bool zero = true, rows = true;
        for (int a = 0; a < d; a++)
            for (int j = k; j < r; j++) zero &= B.U[a * r + j] == 0.0f;
        for (int j = k; j < r; j++)
            for (int64_t c = 0; c < P; c++) rows &= B.V[j * P + c] == B.V[((j - k) % k) * P + c] / 32.0f;
        CHECK(zero);
        CHECK(rows);
    }
    fipsc_fips_factors_free(&A);
    fipsc_fips_factors_free(&B);
    free(C);
    free(M);
    free(w);
    free(ww);
}

/* A gated MLP pair sharing a basis (d 16, f 24), its inputs, moments and init_group. */
static void test_group(void)
{
    enum { D = 16, Fh = 24, N0 = 40, N1 = 70 };
    static float wg[2][Fh * D], wu[2][Fh * D], wd[2][D * Fh], x0[N0 * D], x1[N1 * D], y[N1 * D];
    for (int m = 0; m < 2; m++)
        for (int e = 0; e < Fh * D; e++) wg[m][e] = urand(), wu[m][e] = urand(), wd[m][e] = urand();
    for (int e = 0; e < N0 * D; e++) x0[e] = urand() * (float)(1 + e % D);
    for (int e = 0; e < N1 * D; e++) x1[e] = urand() * (float)(1 + (e % D) % 3);
    fipsc_mlp mlps[2];
    for (int m = 0; m < 2; m++)
        mlps[m] = (fipsc_mlp){.kind = FIPSC_MLP_GATED, .act = FIPSC_ACT_SILU, .d = D, .f = Fh,
                              .gate = {.out = Fh, .in = D, .w = wg[m]}, .up = {.out = Fh, .in = D, .w = wu[m]},
                              .down = {.out = D, .in = Fh, .w = wd[m]}};
    fipsc_fips_group g;
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_group_init(&g, mlps, 2, &err), &err);
    fipsc_fips_calib rows[2] = {{N0, x0, y}, {N1, x1, y}};
    double C[D * D];
    CHECK_OK(fipsc_fips_input_moments(&g, rows, C, &err), &err);
    double worst = 0;
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            double s = 0;
            for (int n = 0; n < N0; n++) s += (double)x0[n * D + a] * x0[n * D + b];
            for (int n = 0; n < N1; n++) s += (double)x1[n * D + a] * x1[n * D + b];
            worst = fmax(worst, fabs(C[a * D + b] - s / (N0 + N1)));
        }
    CHECK_MSG(worst < 1e-12, "moments differ from the direct sum by %g", worst);
    /* full rank through init_group: every matrix reproduced */
    fipsc_fips_factors F;
    CHECK_OK(fipsc_fips_init_group(&g, D, FIPSC_FIPS_SVD_AUTO, rows, 1.0, &F, &err), &err);
    for (int i = 0; i < g.n_matrices; i++) {
        float back[Fh * D];
        CHECK_OK(fipsc_fips_factors_dense(&g, &F, i, back, &err), &err);
        const float *orig = i % 3 == 0 ? wg[i / 3] : i % 3 == 1 ? wu[i / 3] : wd[i / 3];
        double md = 0;
        for (int e = 0; e < Fh * D; e++) md = fmax(md, fabs(back[e] - orig[e]));
        CHECK_MSG(md < 1e-4, "matrix %d reproduced to %g", i, md);
    }
    fipsc_fips_factors_free(&F);
    /* errors: no rows, zero rows, a NaN input */
    static float zeros[N0 * D];
    fipsc_fips_calib none[2] = {{0, NULL, NULL}, {0, NULL, NULL}}, zero[2] = {{N0, zeros, y}, {0, NULL, NULL}};
    CHECK_FAILS(fipsc_fips_init_group(&g, 8, FIPSC_FIPS_SVD_AUTO, none, 0.5, &F, &err), FIPSC_ERR_ARG,
                "no calibration rows", &err);
    CHECK_FAILS(fipsc_fips_init_group(&g, 8, FIPSC_FIPS_SVD_AUTO, zero, 0.5, &F, &err), FIPSC_ERR_NUMERIC,
                "nothing to whiten by", &err);
    x1[5 * D + 3] = NAN;
    CHECK_FAILS(fipsc_fips_init_group(&g, 8, FIPSC_FIPS_SVD_AUTO, rows, 0.5, &F, &err), FIPSC_ERR_NUMERIC,
                "not finite", &err);
    fipsc_fips_group_free(&g);
}

/* The same bits on 1 and 2 threads, both SVD routes, with several panels and Gram tiles. */
static void test_thread_independence(void)
{
    enum { D = 300, R = 200 };
    const int64_t P = 1100;
    fipsc_error err = {0};
    float *w = malloc((size_t)D * P * sizeof(float)), *ww = malloc((size_t)D * P * sizeof(float));
    for (int64_t e = 0; e < (int64_t)D * P; e++) w[e] = urand();
    double *C = anisotropic_moments(D);
    const int saved = fipsc_threads_get();
    const fipsc_fips_svd_method methods[2] = {FIPSC_FIPS_SVD_GESDD, FIPSC_FIPS_SVD_GRAM};
    for (int m = 0; m < 2; m++) {
        fipsc_fips_factors F[2];
        for (int t = 0; t < 2; t++) {
            fipsc_threads_set(t + 1);
            memcpy(ww, w, (size_t)D * P * sizeof(float));
            CHECK_OK(fipsc_fips_factors_alloc(&F[t], D, R, P, &err), &err);
            CHECK_OK(fipsc_fips_whitened_init(ww, C, 0.5, methods[m], &F[t], &err), &err);
        }
        CHECK_MSG(memcmp(F[0].U, F[1].U, (size_t)D * R * sizeof(float)) == 0,
                  "method %d: U differs between 1 and 2 threads", (int)methods[m]);
        CHECK_MSG(memcmp(F[0].V, F[1].V, (size_t)R * P * sizeof(float)) == 0,
                  "method %d: V differs between 1 and 2 threads", (int)methods[m]);
        fipsc_fips_factors_free(&F[0]);
        fipsc_fips_factors_free(&F[1]);
    }
    fipsc_threads_set(saved);
    free(C);
    free(w);
    free(ww);
}

int main(void)
{
    const double alphas[2] = {1.0, 0.5};
    for (int i = 0; i < 2; i++) {
        const double a = alphas[i];
        test_white_is_plain(12, 60, 8, a);
        test_white_is_plain(12, 60, 30, a); /* over-complete */
        test_white_is_plain(40, 12, 9, a);  /* P < d */
        test_white_is_plain(48, 400, 40, a);
        test_optimal(12, 60, 5, a);
        test_optimal(24, 300, 10, a);
        test_optimal(40, 12, 6, a);  /* P < d */
        test_optimal(12, 60, 30, a); /* over-complete: full rank */
    }
    test_group();
    test_thread_independence();
    return test_summary("test_fips_whiten");
}
