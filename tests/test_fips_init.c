/* FiPS SVD initialisation: the gesdd and Gram routes agree (U up to column sign — the library
 * fixes the signs, so they agree outright — and U·V equal), U is orthonormal, U·V is the best
 * rank-r approximation (error = the dropped singular values), full rank reproduces W_cat, and the
 * r > rank padding rule (zero U columns, V rows = top rows / 32 repeated); both routes give the
 * same bits on 1 and 2 threads. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fips/fips.h"
#include "core/threads.h"
#include "testutil.h"
#include "wcat_fixture.h"

/* ‖U·V − W‖_F / ‖W‖_F in double */
static double recon_error(const fipsc_fips_factors *F, const float *w)
{
    double num = 0, den = 0;
    for (int a = 0; a < F->d; a++)
        for (int64_t c = 0; c < F->P; c++) {
            double s = 0;
            for (int k = 0; k < F->r; k++) s += (double)F->U[a * F->r + k] * F->V[k * F->P + c];
            double t = w[a * F->P + c];
            num += (s - t) * (s - t);
            den += t * t;
        }
    return sqrt(num / den);
}

static double frob(const float *w, int64_t n)
{
    double s = 0;
    for (int64_t e = 0; e < n; e++) s += (double)w[e] * w[e];
    return sqrt(s);
}

static void check_routes(int d, int64_t P, int r)
{
    fipsc_error err = {0};
    float *w = make_wcat(d, P);
    int k = d < P ? d : (int)P;
    fipsc_fips_factors A, B;
    CHECK_OK(fipsc_fips_factors_alloc(&A, d, r, P, &err), &err);
    CHECK_OK(fipsc_fips_factors_alloc(&B, d, r, P, &err), &err);
    float *sa = malloc((size_t)k * sizeof(float)), *sb = malloc((size_t)k * sizeof(float));
    CHECK_OK(fipsc_fips_svd_init(w, FIPSC_FIPS_SVD_GESDD, &A, sa, &err), &err);
    CHECK_OK(fipsc_fips_svd_init(w, FIPSC_FIPS_SVD_GRAM, &B, sb, &err), &err);
    int kk = r < k ? r : k;

    /* singular values: descending, equal between routes (relative to σ_max) */
    bool desc = true;
    double smax = sa[0], sdiff = 0;
    for (int j = 0; j < k; j++) {
        if (j > 0) desc &= sa[j] <= sa[j - 1];
        sdiff = fmax(sdiff, fabs(sa[j] - sb[j]));
    }
    CHECK(desc);
    CHECK_MSG(sdiff < 1e-5 * smax, "d %d P %lld: singular values differ by %g (σ_max %g)", d,
              (long long)P, sdiff, smax);
    for (int j = 0; j < k; j++) CHECK_NEAR(sa[j], 1.0 / (1.0 + 0.15 * j), 1e-5);

    /* U: orthonormal columns; routes equal up to column sign (and, with the sign rule, equal) */
    double orth = 0, udiff = 0, udiff_signed = 0;
    for (int i = 0; i < kk; i++)
        for (int j = 0; j < kk; j++) {
            double s = 0;
            for (int a = 0; a < d; a++) s += (double)A.U[a * r + i] * A.U[a * r + j];
            orth = fmax(orth, fabs(s - (i == j)));
        }
    for (int j = 0; j < kk; j++) {
        double dp = 0, dm = 0, ds = 0;
        for (int a = 0; a < d; a++) {
            dp = fmax(dp, fabs(A.U[a * r + j] - B.U[a * r + j]));
            dm = fmax(dm, fabs(A.U[a * r + j] + B.U[a * r + j]));
        }
        ds = dp;
        udiff = fmax(udiff, fmin(dp, dm));
        udiff_signed = fmax(udiff_signed, ds);
    }
    CHECK_MSG(orth < 1e-5, "U not orthonormal: %g", orth);
    CHECK_MSG(udiff < 1e-4, "d %d P %lld r %d: U differs by %g up to sign", d, (long long)P, r, udiff);
    CHECK_MSG(udiff_signed < 1e-4, "sign rule: U differs by %g", udiff_signed);

    /* U·V equal between routes, and equal to the best rank-kk error √(Σ_{j≥kk} σ_j²)/‖W‖ */
    double ea = recon_error(&A, w), eb = recon_error(&B, w);
    double tail = 0;
    for (int j = kk; j < k; j++) tail += (double)sa[j] * sa[j];
    double best = sqrt(tail) / frob(w, (int64_t)d * P);
    CHECK_MSG(fabs(ea - best) < 1e-4 + 1e-3 * best, "gesdd: error %g, best rank-%d %g", ea, kk, best);
    CHECK_MSG(fabs(eb - best) < 1e-4 + 1e-3 * best, "Gram: error %g, best rank-%d %g", eb, kk, best);
    /* full rank: float rounding only (a few 1e-7 for these sizes, with LAPACK's and OpenBLAS's
     * kernels of any CPU); 1e-5 leaves room for them and still catches a lost rank (≥ 1e-3 here) */
    if (kk == k) CHECK_MSG(ea < 1e-5 && eb < 1e-5, "full rank: errors %g, %g", ea, eb);

    /* the mask is untouched */
    bool ones = true;
    for (int64_t e = 0; e < (int64_t)r * P; e++) ones &= fipsc_fips_kept(&A, e);
    CHECK(ones);

    /* padding rule when r > rank */
    if (r > k) {
        for (fipsc_fips_factors *F = &A; F; F = F == &A ? &B : NULL) {
            bool zero = true, rows = true;
            for (int a = 0; a < d; a++)
                for (int j = k; j < r; j++) zero &= F->U[a * r + j] == 0.0f;
            for (int j = k; j < r; j++)
                for (int64_t c = 0; c < P; c++)
                    rows &= F->V[j * P + c] == F->V[((j - k) % k) * P + c] / 32.0f;
            CHECK(zero);
            CHECK(rows);
        }
        /* and the product is still the full-rank reconstruction */
        CHECK(ea < 1e-5);
    }
    free(sa);
    free(sb);
    free(w);
    fipsc_fips_factors_free(&A);
    fipsc_fips_factors_free(&B);
}

/* fipsc_fips_init_group on a real-shaped group goes through concat: U·V_i reproduces each
 * original matrix at full rank. */
static void test_init_group(void)
{
    enum { D = 10, Fh = 7 };
    float wg[Fh * D], wu[Fh * D], wd[D * Fh];
    for (int e = 0; e < Fh * D; e++) wg[e] = urand(), wu[e] = urand(), wd[e] = urand();
    fipsc_mlp m = {.kind = FIPSC_MLP_GATED, .act = FIPSC_ACT_SILU, .d = D, .f = Fh,
                   .gate = {.out = Fh, .in = D, .w = wg}, .up = {.out = Fh, .in = D, .w = wu},
                   .down = {.out = D, .in = Fh, .w = wd}};
    fipsc_fips_group g;
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_group_init(&g, &m, 1, &err), &err);
    fipsc_fips_factors F;
    CHECK_OK(fipsc_fips_init_group(&g, D, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &F, &err), &err);
    const float *orig[3] = {wg, wu, wd};
    for (int i = 0; i < 3; i++) {
        float back[Fh * D];
        CHECK_OK(fipsc_fips_factors_dense(&g, &F, i, back, &err), &err);
        double md = 0;
        for (int e = 0; e < Fh * D; e++) md = fmax(md, fabs(back[e] - orig[i][e]));
        CHECK_MSG(md < 1e-5, "matrix %d reproduced to %g", i, md);
    }
    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&g);
}

static void test_errors(void)
{
    fipsc_error err = {0};
    float *w = make_wcat(6, 9);
    w[13] = NAN;
    fipsc_fips_factors F;
    CHECK_OK(fipsc_fips_factors_alloc(&F, 6, 3, 9, &err), &err);
    CHECK_FAILS(fipsc_fips_svd_init(w, FIPSC_FIPS_SVD_GRAM, &F, NULL, &err), FIPSC_ERR_NUMERIC,
                "W_cat[1, 4]", &err);
    CHECK_FAILS(fipsc_fips_svd_init(w, (fipsc_fips_svd_method)7, &F, NULL, &err), FIPSC_ERR_NUMERIC,
                "not finite", &err);
    w[13] = 0.5f;
    CHECK_FAILS(fipsc_fips_svd_init(w, (fipsc_fips_svd_method)7, &F, NULL, &err), FIPSC_ERR_ARG,
                "unknown method", &err);
    fipsc_fips_factors_free(&F);
    free(w);
}

/* Both routes give the same bits on 1 and 2 threads (OpenMP and OpenBLAS, set together by
 * fipsc_threads_set as --threads does): d spans several Gram tiles, and the work is large enough
 * for every parallel path to run threaded. */
static void test_thread_independence(void)
{
    enum { D = 520, R = 300 };
    const int64_t P = 2048;
    fipsc_error err = {0};
    float *w = malloc((size_t)D * P * sizeof(float));
    for (int64_t e = 0; e < (int64_t)D * P; e++) w[e] = urand();
    const int saved = fipsc_threads_get();
    const fipsc_fips_svd_method methods[2] = {FIPSC_FIPS_SVD_GESDD, FIPSC_FIPS_SVD_GRAM};
    for (int m = 0; m < 2; m++) {
        fipsc_fips_factors F[2];
        float sigma[2][D];
        for (int t = 0; t < 2; t++) {
            fipsc_threads_set(t + 1);
            CHECK_OK(fipsc_fips_factors_alloc(&F[t], D, R, P, &err), &err);
            CHECK_OK(fipsc_fips_svd_init(w, methods[m], &F[t], sigma[t], &err), &err);
        }
        CHECK_MSG(memcmp(F[0].U, F[1].U, (size_t)D * R * sizeof(float)) == 0,
                  "method %d: U differs between 1 and 2 threads", (int)methods[m]);
        CHECK_MSG(memcmp(F[0].V, F[1].V, (size_t)R * P * sizeof(float)) == 0,
                  "method %d: V differs between 1 and 2 threads", (int)methods[m]);
        CHECK_MSG(memcmp(sigma[0], sigma[1], sizeof sigma[0]) == 0,
                  "method %d: singular values differ between 1 and 2 threads", (int)methods[m]);
        fipsc_fips_factors_free(&F[0]);
        fipsc_fips_factors_free(&F[1]);
    }
    fipsc_threads_set(saved);
    free(w);
}

int main(void)
{
    check_routes(12, 60, 8);   /* r < rank, wide */
    check_routes(12, 60, 12);  /* r = rank */
    check_routes(12, 60, 30);  /* r > rank: padding, more than one round of copies */
    check_routes(40, 12, 9);   /* P < d: rank = P */
    check_routes(40, 12, 20);  /* P < d, padded */
    check_routes(48, 400, 40); /* larger */
    test_init_group();
    test_errors();
    test_thread_independence();
    return test_summary("test_fips_init");
}
