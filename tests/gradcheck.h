/* Judging an analytic gradient against central differences of a float32 loss, robustly.
 *
 * A central difference (L(p+h) − L(p−h)) / 2h of a loss computed in float carries two errors:
 * truncation, O(h²·L'''), and rounding, |ε₊ − ε₋| / 2h ≤ ε/h where ε bounds the rounding error of
 * one loss evaluation. ε depends on the CPU (vector width, FMA contraction, OpenBLAS's kernels),
 * so a fixed relative tolerance judged on the single worst entry holds on one CPU and not on
 * another (issue 14: 4.3 % against 3 % on a Zen 4). Instead:
 *   - ε is measured where the check runs: the loss is re-evaluated after moving single parameters
 *     by a few ulps (a true change far below rounding), and the largest residual is taken, times a
 *     safety factor. Each entry's numeric gradient then has a noise bound n = ε/h;
 *   - an entry's error is what rounding cannot explain: max(0, |numeric − analytic| − n) / |analytic|;
 *     entries are chosen where n is small against |analytic| (callers keep n ≤ 5 % of it), so a
 *     gradient 10 % off still shows an error of at least 5 %;
 *   - the verdict is over many entries: the cosine between the analytic and numeric vectors, the
 *     median and the 90th percentile of the relative errors, and a loose bound on the worst one
 *     (a gross error in one entry still fails).
 * A wrong gradient still fails: tests run a negative control (the analytic gradient scaled by 1.1,
 * or one entry's sign flipped) through the same judge and check that it is rejected.
 * Header-only (static functions); include it from one test file each. */
#ifndef FIPSC_TEST_GRADCHECK_H
#define FIPSC_TEST_GRADCHECK_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct grad_sample {
    double analytic; /* the gradient under test */
    double numeric;  /* central difference */
    double noise;    /* bound of the numeric value's rounding error, 2ε/(2h) */
} grad_sample;

typedef struct grad_limits {
    double min_cosine; /* cos(analytic, numeric) over the samples */
    double max_median; /* median relative error */
    double max_p90;    /* 90th percentile */
    double max_worst;  /* every entry */
} grad_limits;

/* Limits that the float32 distiller meets with a wide margin on every CPU and OpenBLAS kernel set
 * checked (see the closing note of issue 14), and that a 10 % scale error or a flipped sign breaks. */
static const grad_limits GRAD_LIMITS_DEFAULT = {.min_cosine = 0.999, .max_median = 0.02, .max_p90 = 0.05,
                                                .max_worst = 0.5};

typedef struct grad_verdict {
    int n;
    double cosine, median, p90, worst;
    bool ok;
} grad_verdict;

static int grad_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double grad_relative_error(const grad_sample *s)
{
    return fmax(0.0, fabs(s->numeric - s->analytic) - s->noise) / (fabs(s->analytic) + 1e-300);
}

static grad_verdict grad_judge(const grad_sample *s, int n, const grad_limits *lim)
{
    grad_verdict v = {.n = n};
    double *rel = malloc((size_t)(n > 0 ? n : 1) * sizeof *rel);
    double aa = 0.0, nn = 0.0, an = 0.0;
    for (int i = 0; i < n; i++) {
        rel[i] = grad_relative_error(&s[i]);
        aa += s[i].analytic * s[i].analytic;
        nn += s[i].numeric * s[i].numeric;
        an += s[i].analytic * s[i].numeric;
    }
    qsort(rel, (size_t)n, sizeof *rel, grad_compare_double);
    v.cosine = aa > 0.0 && nn > 0.0 ? an / sqrt(aa * nn) : 0.0;
    v.median = n ? rel[n / 2] : INFINITY;
    v.p90 = n ? rel[(int)(0.9 * (n - 1) + 0.5)] : INFINITY;
    v.worst = n ? rel[n - 1] : INFINITY;
    v.ok = n >= 8 && v.cosine >= lim->min_cosine && v.median <= lim->max_median && v.p90 <= lim->max_p90 &&
           v.worst <= lim->max_worst;
    free(rel);
    return v;
}

static void grad_print(FILE *fp, const char *what, const grad_verdict *v)
{
    fprintf(fp, "%s: %d entries, cosine %.6f, relative error median %.2e, p90 %.2e, worst %.2e: %s\n", what, v->n,
            v->cosine, v->median, v->p90, v->worst, v->ok ? "ok" : "REJECTED");
}

#endif
