/* Finite-difference checks of a distiller's gradients (src/model/distill.h), for the tests of every
 * family's objective: a distiller is seen through its parameter blocks and its loss on one batch,
 * and judged as tests/gradcheck.h explains. Header-only; include it from one test file each. */
#ifndef FIPSC_TEST_DISTILL_GRADCHECK_H
#define FIPSC_TEST_DISTILL_GRADCHECK_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

/* A distiller under test: its parameter blocks (values in place, the gradient of its last
 * loss_grad with want_grad), the call after values change, and its loss on the batch checked. */
typedef struct distill_probe {
    void *self;
    int (*blocks)(const void *self);
    float *(*block)(void *self, int k, int64_t *len, const float **grad);
    void (*changed)(void *self);
    double (*loss)(void *self); /* at the current values, on the batch under test */
} distill_probe;

/* A small deterministic generator for picking entries. */
static uint64_t pick_state = 0x9e3779b97f4a7c15ull;
static int64_t pick(int64_t n)
{
    pick_state = pick_state * 6364136223846793005ull + 1442695040888963407ull;
    return (int64_t)((pick_state >> 33) % (uint64_t)n);
}

static double loss_at(const distill_probe *d)
{
    d->changed(d->self);
    return d->loss(d->self);
}

/* The rounding error ε of one loss evaluation, measured (tests/gradcheck.h): moving one entry by
 * 4 ulps changes the true loss by g·δ, far below float rounding, so what the loss moves beyond g·δ
 * is rounding. Two entries of every block; the largest residual times 4, and at least one float
 * ulp of the loss. */
static double loss_noise(const distill_probe *d, const float *const *grads, double base)
{
    double worst = 0.0;
    for (int k = 0; k < d->blocks(d->self); k++) {
        int64_t len;
        const float *unused;
        float *p = d->block(d->self, k, &len, &unused);
        for (int probe = 0; probe < 2; probe++) {
            int64_t e = pick(len);
            for (int tries = 0; tries < 64 && p[e] == 0.0f; tries++) e = pick(len); /* a kept entry */
            const float saved = p[e];
            float moved = saved;
            for (int u = 0; u < 4; u++) moved = nextafterf(moved, INFINITY);
            p[e] = moved;
            double l = loss_at(d);
            p[e] = saved;
            worst = fmax(worst, fabs(l - base - (double)grads[k][e] * ((double)moved - saved)));
        }
    }
    d->changed(d->self);
    return fmax(4.0 * worst, fabs(base) * 0x1p-24);
}

enum { TOP_PER_BLOCK = 4, RANDOM_PER_BLOCK = 4, PER_BLOCK = TOP_PER_BLOCK + RANDOM_PER_BLOCK };

/* The central-difference step for a value: relative, with a floor for values near zero. */
static float fd_step(float value) { return 3e-3f * fmaxf(fabsf(value), 1e-2f); }

/* Central differences against the gradient of the distiller's last loss_grad (want_grad) on
 * the same batch, judged as tests/gradcheck.h explains. Entries of every block whose difference
 * the loss's rounding cannot blur by more than 5 % (2ε/2h ≤ 0.05·|g|): the TOP_PER_BLOCK with the
 * largest gradients and RANDOM_PER_BLOCK more drawn at random. With negative_control, also checks
 * that a gradient scaled by 1.1 and one with the basis's sign flipped are rejected by the same
 * judge. */
static void check_gradients(const distill_probe *d, const char *what, bool negative_control)
{
    const int nblocks = d->blocks(d->self);
    float **grads = calloc((size_t)nblocks, sizeof *grads);
    for (int k = 0; k < nblocks; k++) {
        int64_t len;
        const float *grad;
        d->block(d->self, k, &len, &grad);
        grads[k] = malloc((size_t)len * sizeof **grads);
        memcpy(grads[k], grad, (size_t)len * sizeof **grads);
    }
    const double base = loss_at(d);
    const double eps = loss_noise(d, (const float *const *)grads, base);
    grad_sample *samples = calloc((size_t)nblocks * PER_BLOCK, sizeof *samples);
    int *block_of = calloc((size_t)nblocks * PER_BLOCK, sizeof *block_of);
    int n = 0;
    for (int k = 0; k < nblocks; k++) {
        int64_t len;
        const float *unused;
        float *p = d->block(d->self, k, &len, &unused);
        const float *g = grads[k];
#define CLEAR(e) (g[e] != 0.0f && 2.0 * eps / (2.0 * fd_step(p[e])) <= 0.05 * fabsf(g[e]))
        int64_t chosen[PER_BLOCK];
        int nc = 0;
        for (int t = 0; t < TOP_PER_BLOCK; t++) {
            int64_t best = -1;
            for (int64_t e = 0; e < len; e++) {
                bool taken = false;
                for (int c = 0; c < nc; c++) taken |= chosen[c] == e;
                if (!taken && CLEAR(e) && (best < 0 || fabsf(g[e]) > fabsf(g[best]))) best = e;
            }
            if (best >= 0) chosen[nc++] = best;
        }
        for (int tries = 0; nc < PER_BLOCK && tries < 1000000; tries++) {
            int64_t e = pick(len);
            bool taken = false;
            for (int c = 0; c < nc; c++) taken |= chosen[c] == e;
            if (!taken && CLEAR(e)) chosen[nc++] = e;
        }
#undef CLEAR
        CHECK_MSG(nc == PER_BLOCK, "%s: block %d has only %d entries whose central difference is clear of rounding",
                  what, k, nc);
        for (int c = 0; c < nc; c++) {
            const int64_t e = chosen[c];
            const float saved = p[e], h = fd_step(saved);
            p[e] = saved + h;
            const double lp = loss_at(d);
            p[e] = saved - h;
            const double lm = loss_at(d);
            p[e] = saved;
            const double step = (double)(saved + h) - (double)(saved - h); /* as represented */
            samples[n] = (grad_sample){.analytic = g[e], .numeric = (lp - lm) / step, .noise = 2.0 * eps / step};
            block_of[n++] = k;
        }
    }
    d->changed(d->self);
    grad_verdict v = grad_judge(samples, n, &GRAD_LIMITS_DEFAULT);
    char label[128];
    snprintf(label, sizeof label, "%s (loss %.6g, rounding %.2e)", what, base, eps);
    if (!v.ok || getenv("FIPSC_TEST_VERBOSE")) {
        grad_print(stderr, label, &v);
        for (int i = 0; i < n && !v.ok; i++)
            fprintf(stderr, "  block %d: gradient %.6g, central difference %.6g, rounding bound %.2g, error %.3g\n",
                    block_of[i], samples[i].analytic, samples[i].numeric, samples[i].noise,
                    grad_relative_error(&samples[i]));
    }
    CHECK_MSG(v.ok, "%s: the gradient disagrees with central differences", what);
    if (negative_control) {
        grad_sample *wrong = malloc((size_t)n * sizeof *wrong);
        for (int i = 0; i < n; i++) wrong[i] = samples[i], wrong[i].analytic *= 1.1;
        grad_verdict vs = grad_judge(wrong, n, &GRAD_LIMITS_DEFAULT);
        if (getenv("FIPSC_TEST_VERBOSE")) grad_print(stderr, "negative control: gradient x 1.1", &vs);
        CHECK_MSG(!vs.ok, "%s: a gradient 10%% too large passes the check (median %.3g)", what, vs.median);
        for (int i = 0; i < n; i++) wrong[i] = samples[i], wrong[i].analytic *= block_of[i] == 0 ? -1.0 : 1.0;
        grad_verdict vf = grad_judge(wrong, n, &GRAD_LIMITS_DEFAULT);
        if (getenv("FIPSC_TEST_VERBOSE")) grad_print(stderr, "negative control: basis sign flipped", &vf);
        CHECK_MSG(!vf.ok, "%s: a gradient with the basis's sign flipped passes the check (cosine %.3g)", what,
                  vf.cosine);
        free(wrong);
    }
    free(samples);
    free(block_of);
    for (int k = 0; k < nblocks; k++) free(grads[k]);
    free(grads);
}

#endif
