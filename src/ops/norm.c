/* Normalisations over rows (see src/ops/norm.h). */
#include "ops/norm.h"

#include <math.h>
#include <stddef.h>

/* Elements below which a normalisation stays on the calling thread: entering a parallel region
 * costs about a microsecond, more than a small model's whole row (decoding). */
#define PARALLEL_ELEMENTS (1LL << 14)

static void layernorm_row(const float *xr, float *yr, int d, const float *w, const float *b, float eps,
                          fipsc_ln_arith arith, float *xhat, float *rstd)
{
    float mean, rho;
    if (arith == FIPSC_LN_DOUBLE) {
        double sum = 0.0;
        for (int i = 0; i < d; i++) sum += xr[i];
        double dm = sum / d, sq = 0.0;
        for (int i = 0; i < d; i++) {
            double c = xr[i] - dm;
            sq += c * c;
        }
        rho = (float)(1.0 / sqrt(sq / d + eps));
        mean = (float)dm;
        if (xhat) {
            for (int i = 0; i < d; i++) xhat[i] = (xr[i] - mean) * rho;
            *rstd = rho;
        }
        for (int i = 0; i < d; i++) yr[i] = (xr[i] - mean) * rho * w[i] + b[i];
    } else {
        float sum = 0.0f, ss = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < d; j++) sum += xr[j];
        mean = sum / (float)d;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < d; j++) ss += (xr[j] - mean) * (xr[j] - mean);
        rho = 1.0f / sqrtf(ss / (float)d + eps);
        if (xhat) {
            for (int j = 0; j < d; j++) xhat[j] = rho * (xr[j] - mean);
            *rstd = rho;
        }
#pragma omp simd
        for (int j = 0; j < d; j++) yr[j] = w[j] * rho * (xr[j] - mean) + b[j];
    }
}

void fipsc_layernorm(const float *x, float *y, int64_t rows, int d, const float *gamma, const float *beta, float eps,
                     fipsc_ln_arith arith, float *xhat, float *rstd)
{
#pragma omp parallel for schedule(static) if (rows * d > PARALLEL_ELEMENTS)
    for (int64_t r = 0; r < rows; r++)
        layernorm_row(x + r * d, y + r * d, d, gamma, beta, eps, arith, xhat ? xhat + r * d : NULL,
                      xhat ? rstd + r : NULL);
}

void fipsc_layernorm_backward(const float *dy, const float *xhat, const float *rstd, const float *gamma,
                              int64_t rows, int d, float *dx)
{
#pragma omp parallel for schedule(static) if (rows * d > PARALLEL_ELEMENTS)
    for (int64_t r = 0; r < rows; r++) {
        const float *dyr = dy + r * d, *xr = xhat + r * d;
        double mg = 0.0, mgx = 0.0;
        for (int j = 0; j < d; j++) {
            const double g = (double)dyr[j] * gamma[j];
            mg += g;
            mgx += g * xr[j];
        }
        mg /= d;
        mgx /= d;
        float *dxr = dx + r * d;
        for (int j = 0; j < d; j++) dxr[j] += (float)(rstd[r] * ((double)dyr[j] * gamma[j] - mg - xr[j] * mgx));
    }
}

static void rmsnorm_row(const float *x, const float *w, float *out, int d, float eps)
{
    double ss = 0.0;
    for (int i = 0; i < d; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / d + (double)eps));
    for (int i = 0; i < d; i++) out[i] = w[i] * (scale * x[i]);
}

void fipsc_rmsnorm(const float *x, const float *w, float *out, int64_t rows, int d, float eps)
{
#pragma omp parallel for schedule(static) if (rows * d > PARALLEL_ELEMENTS)
    for (int64_t r = 0; r < rows; r++) rmsnorm_row(x + r * d, w, out + r * d, d, eps);
}

/* y = w⊙x·ρ, ρ = (mean(x²) + ε)^(−1/2):  dy → g = w⊙dy,  dx = ρ·g − x·ρ³·mean(g⊙x)
 * (dρ/dx_i = −ρ³·x_i/d; ρ and the mean in double, as the forward's ρ). */
static void rmsnorm_backward_row(const float *dy, const float *x, const float *w, int d, float eps, float *dx)
{
    double ss = 0.0, gx = 0.0;
    for (int i = 0; i < d; i++) {
        ss += (double)x[i] * x[i];
        gx += (double)w[i] * dy[i] * x[i];
    }
    const double rho = 1.0 / sqrt(ss / d + (double)eps), c = rho * rho * rho * gx / d;
    for (int i = 0; i < d; i++) dx[i] += (float)(rho * w[i] * dy[i] - c * x[i]);
}

void fipsc_rmsnorm_backward(const float *dy, const float *x, const float *w, int64_t rows, int d, float eps, float *dx)
{
#pragma omp parallel for schedule(static) if (rows * d > PARALLEL_ELEMENTS)
    for (int64_t r = 0; r < rows; r++) rmsnorm_backward_row(dy + r * d, x + r * d, w, d, eps, dx + r * d);
}
