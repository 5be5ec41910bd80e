/* One FiPS training step of a realistic group, against the GEMM peak of the same run.
 *
 *   bench_fips_step [--d D] [--f F] [--mlps K] [--rows N] [--steps S] [--threads T]
 *
 * Default group: two gated (SwiGLU) MLPs of d 2048, f 5632 (TinyLlama-1.1B's shapes), so
 * P = 6·5632 = 33792; r from a budget of 0.5 at sparsity 0.75: r = floor(0.5·d·P/(d + 0.25·P))
 * = 3296; V pruned to 75% (masked-dense: the GEMMs are dense); 2048 calibration rows per MLP, all
 * in one batch. A step is forward + backward of both MLPs + AdamW on U and every V_i (joint mode);
 * its FLOPs are those of its GEMMs, 10·n·d·r + 18·n·r·f per gated MLP. The first step (which also
 * applies the mask schedule) is a warm-up; the next S steps are timed, none of them touches the
 * mask.
 *
 * Peak: the best of three GEMMs for each of the step's two GEMM shapes (n × f × r and n × r × d)
 * and a square 2048³, through fipsc_gemm — the step's own GEMM: OpenBLAS's sgemm on one thread
 * per column panel, the panels on fipsc's threads (fipsc runs OpenBLAS single-threaded, so a bare
 * cblas_sgemm call here would measure one core) — measured before and again after the timed
 * steps; the larger is used, so a machine busy with other work during one of the two makes the
 * ratio smaller, not larger. On a machine shared with other work, wall-clock rates swing with
 * the other processes' load, so the same ratio is also given per CPU-second of this process
 * (CLOCK_PROCESS_CPUTIME_ID, all its threads): GFLOP per CPU-second of the step over that of the
 * best sgemm call, which time-slicing by other processes barely affects. Peak memory is
 * getrusage's ru_maxrss. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "fips/fips.h"
#include "ops/gemm.h"
#include "core/threads.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double best_cpu_rate; /* the best sgemm GFLOP per CPU-second seen */

static _Noreturn void die(const char *what, const fipsc_error *err)
{
    fprintf(stderr, "bench_fips_step: %s: %s\n", what, err->message);
    exit(1);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        x[i] = scale * ((float)(rng >> 40) / 8388608.0f - 1.0f); /* uniform [-scale, scale) */
    }
}

/* Best GFLOP/s of three C = A·B calls of shape m × n × k. */
static double sgemm_gflops(int m, int n, int k)
{
    float *a = malloc((size_t)m * k * sizeof(float)), *b = malloc((size_t)k * n * sizeof(float));
    float *c = malloc((size_t)m * n * sizeof(float));
    fill(a, (size_t)m * k, 1.0f);
    fill(b, (size_t)k * n, 1.0f);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now(), c0 = cpu_now();
        fipsc_gemm(false, false, m, n, k, a, k, b, n, 0.0f, c, n);
        double g = 2.0 * m * n * k / (now() - t0) / 1e9;
        double gc = 2.0 * m * n * k / (cpu_now() - c0) / 1e9;
        if (g > best) best = g;
        if (gc > best_cpu_rate) best_cpu_rate = gc;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

typedef struct timing {
    int steps, sparse;
    double warm, best, best_cpu, total, loss;
} timing;

/* A fresh trainer on F: one warm-up step (the mask applied), then `steps` timed ones. */
static timing time_steps(const fipsc_fips_group *g, fipsc_fips_factors *F, const fipsc_fips_calib *calib,
                         const fipsc_fips_train_opts *o, int steps, double *flops)
{
    fipsc_error err = {0};
    fipsc_fips_trainer *tr;
    if (fipsc_fips_trainer_new(g, F, calib, o, -1, &tr, &err)) die("trainer", &err);
    *flops = fipsc_fips_trainer_step_flops(tr);
    timing t = {.steps = steps, .best = 1e300, .best_cpu = 1e300};
    double t0 = now();
    if (fipsc_fips_trainer_step(tr, &t.loss, &err)) die("warm-up step", &err);
    t.warm = now() - t0;
    for (int s = 0; s < steps; s++) {
        t0 = now();
        double c0 = cpu_now();
        if (fipsc_fips_trainer_step(tr, &t.loss, &err)) die("step", &err);
        double dt = now() - t0, tc = cpu_now() - c0;
        t.total += dt;
        if (dt < t.best) t.best = dt;
        if (tc < t.best_cpu) t.best_cpu = tc;
    }
    t.sparse = fipsc_fips_trainer_sparse_steps(tr);
    fipsc_fips_trainer_free(tr);
    return t;
}

int main(int argc, char **argv)
{
    int d = 2048, f = 5632, n_mlps = 2, rows = 2048, steps = 3, threads = 0, products = 2;
    double sparsity = 0.75;
    static const struct option longopts[] = {
        {"d", required_argument, 0, 'd'},     {"f", required_argument, 0, 'f'},
        {"mlps", required_argument, 0, 'k'},  {"rows", required_argument, 0, 'n'},
        {"steps", required_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"v-products", required_argument, 0, 'v'}, {"sparsity", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': d = atoi(optarg); break;
        case 'f': f = atoi(optarg); break;
        case 'k': n_mlps = atoi(optarg); break;
        case 'n': rows = atoi(optarg); break;
        case 's': steps = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'p': sparsity = atof(optarg); break;
        case 'v':
            products = !strcmp(optarg, "dense") ? 0 : !strcmp(optarg, "sparse") ? 1 : !strcmp(optarg, "both") ? 2 : -1;
            if (products < 0) {
                fprintf(stderr, "bench_fips_step: --v-products takes dense, sparse or both\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: bench_fips_step [--d D] [--f F] [--mlps K] [--rows N] [--steps S] "
                            "[--threads T] [--sparsity S] [--v-products dense|sparse|both]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (d < 1 || f < 1 || n_mlps < 1 || n_mlps > 16 || rows < 1 || steps < 1 || !(sparsity > 0.0 && sparsity < 1.0)) {
        fprintf(stderr, "bench_fips_step: sizes must be positive (at most 16 MLPs), the sparsity in (0, 1)\n");
        return 2;
    }
    if (threads > 0) fipsc_threads_set(threads);
    fipsc_error err = {0};

    /* The group. Only the weights' shapes matter for a step, so every matrix shares one buffer. */
    float *w = malloc((size_t)d * f * sizeof(float));
    fill(w, (size_t)d * f, 0.02f);
    fipsc_mlp mlps[16];
    for (int j = 0; j < n_mlps; j++)
        mlps[j] = (fipsc_mlp){.kind = FIPSC_MLP_GATED, .act = FIPSC_ACT_SILU, .d = d, .f = f,
                              .gate = {.out = f, .in = d, .w = w}, .up = {.out = f, .in = d, .w = w},
                              .down = {.out = d, .in = f, .w = w}};
    fipsc_fips_group g;
    if (fipsc_fips_group_init(&g, mlps, n_mlps, &err)) die("group", &err);
    int r;
    if (fipsc_fips_rank_from_budget(d, g.P, 0.5, sparsity, 0, &r, &err)) die("rank", &err);

    /* Factors: U with unit-norm columns, V scaled so that every product keeps unit RMS. */
    fipsc_fips_factors F;
    if (fipsc_fips_factors_alloc(&F, d, r, g.P, &err)) die("factors", &err);
    fill(F.U, (size_t)d * r, 1.7f / (float)sqrt((double)d));
    fill(F.V, (size_t)r * g.P, 1.7f / (float)sqrt((1.0 - sparsity) * r));
    if (fipsc_fips_prune_magnitude(&g, &F, NULL, 0, fipsc_fips_keep_count((int64_t)r * g.P, sparsity), &err))
        die("prune", &err);

    /* Calibration rows: inputs of unit RMS, targets of unit scale. */
    fipsc_fips_calib calib[16];
    float *xy = malloc((size_t)2 * n_mlps * rows * d * sizeof(float));
    fill(xy, (size_t)2 * n_mlps * rows * d, 1.7f);
    for (int j = 0; j < n_mlps; j++)
        calib[j] = (fipsc_fips_calib){rows, xy + (size_t)2 * j * rows * d, xy + (size_t)(2 * j + 1) * rows * d};

    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.batch_rows = rows;
    o.mask = FIPSC_FIPS_MASK_STATIC; /* the sparsity from the first step on */
    o.sparsity = sparsity;
    o.evaluate = false;

    float *U0 = malloc((size_t)d * r * sizeof(float)), *V0 = malloc((size_t)r * g.P * sizeof(float));
    if (!U0 || !V0) {
        fprintf(stderr, "bench_fips_step: out of memory for a copy of the factors\n");
        return 1;
    }
    memcpy(U0, F.U, (size_t)d * r * sizeof(float));
    memcpy(V0, F.V, (size_t)r * g.P * sizeof(float));
    double peaks[2][3];
    peaks[0][0] = sgemm_gflops(rows, f, r);
    peaks[0][1] = sgemm_gflops(rows, r, d);
    peaks[0][2] = sgemm_gflops(2048, 2048, 2048);
    const fipsc_fips_v_products kinds[2] = {FIPSC_FIPS_V_DENSE, FIPSC_FIPS_V_SPARSE};
    const char *names[2] = {"dense GEMMs over the masked V", "V-sparse (kept entries only)"};
    timing runs[2] = {{0}};
    double flops = 0.0;
    for (int k = 0; k < 2; k++) {
        if (products != 2 && products != k) continue;
        o.v_products = kinds[k];
        memcpy(F.U, U0, (size_t)d * r * sizeof(float)); /* both runs start from the same factors */
        memcpy(F.V, V0, (size_t)r * g.P * sizeof(float));
        runs[k] = time_steps(&g, &F, calib, &o, steps, &flops);
    }
    peaks[1][0] = sgemm_gflops(rows, f, r);
    peaks[1][1] = sgemm_gflops(rows, r, d);
    peaks[1][2] = sgemm_gflops(2048, 2048, 2048);
    double peak = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            if (peaks[a][b] > peak) peak = peaks[a][b];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    printf("group: %d gated MLPs, d %d, f %d, P %lld, r %d (budget 0.5, sparsity %.2f), %d rows per MLP\n",
           n_mlps, d, f, (long long)g.P, r, sparsity, rows);
    printf("threads: %d (OpenMP; OpenBLAS runs one thread per panel)\n", fipsc_threads_get());
    printf("sgemm peak: %.1f GFLOP/s (before: n×f×r %.1f, n×r×d %.1f, 2048³ %.1f; after: %.1f, %.1f, %.1f)\n",
           peak, peaks[0][0], peaks[0][1], peaks[0][2], peaks[1][0], peaks[1][1], peaks[1][2]);
    printf("step GEMM work (dense products): %.1f GFLOP\n", flops / 1e9);
    for (int k = 0; k < 2; k++) {
        const timing *t = &runs[k];
        if (!t->steps) continue;
        printf("%s: warm-up %.3f s; step best %.3f s, mean %.3f s over %d (%d V-sparse) -> %.1f GFLOP/s "
               "= %.1f%% of the sgemm peak; per CPU-second %.1f%% of the sgemm rate; last loss %.6g\n",
               names[k], t->warm, t->best, t->total / t->steps, t->steps, t->sparse - (t->sparse > t->steps), flops / t->best / 1e9,
               100.0 * flops / t->best / 1e9 / peak, 100.0 * flops / t->best_cpu / 1e9 / best_cpu_rate, t->loss);
    }
    if (runs[0].steps && runs[1].steps)
        printf("V-sparse step vs dense: %.2fx faster (best step %.3f s vs %.3f s)\n", runs[0].best / runs[1].best,
               runs[1].best, runs[0].best);
    printf("peak memory (ru_maxrss): %.2f GB\n", (double)ru.ru_maxrss * 1024.0 / 1e9);

    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&g);
    free(xy);
    free(w);
    free(U0);
    free(V0);
    return 0;
}
