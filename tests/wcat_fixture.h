/* Test matrices for the SVD initialisations (test_fips_init.c, test_fips_whiten.c): a fixed
 * pseudo-random sequence, random orthonormal columns, and a W_cat with known singular values. */
#ifndef FIPSC_TEST_WCAT_FIXTURE_H
#define FIPSC_TEST_WCAT_FIXTURE_H

#include <lapacke.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 99;
static inline float urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Orthonormal columns: Q of the QR factorisation of a random n × k matrix. */
static inline double *random_orthonormal(int n, int k)
{
    double *q = malloc((size_t)n * k * sizeof(double)), *tau = malloc((size_t)k * sizeof(double));
    for (int64_t e = 0; e < (int64_t)n * k; e++) q[e] = urand();
    LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n, k, q, k, tau);
    LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n, k, k, q, k, tau);
    free(tau);
    return q;
}

/* W_cat [d, P] = Q1·diag(σ)·Q2ᵀ with known, distinct singular values σ_j = 1/(1 + 0.15·j): a
 * decaying spectrum whose gaps keep every singular vector well defined in float. */
static inline float *make_wcat(int d, int64_t P)
{
    int k = d < P ? d : (int)P;
    double *a = random_orthonormal(d, k), *b = random_orthonormal((int)P, k);
    float *w = malloc((size_t)d * P * sizeof(float));
    for (int i = 0; i < d; i++)
        for (int64_t c = 0; c < P; c++) {
            double s = 0;
            for (int j = 0; j < k; j++) s += a[i * k + j] / (1.0 + 0.15 * j) * b[c * k + j];
            w[i * P + c] = (float)s;
        }
    free(a);
    free(b);
    return w;
}

#endif
