/* Linear layers, the deterministic GEMM/GEMV and the MLP interface against naive double-precision
 * loops: gated and plain MLPs, all four activations, with and without biases, one row and many,
 * internal and caller scratch; results identical for 1 and 2 threads; shape and factored errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/mlp_forward.h"
#include "core/threads.h"
#include "testutil.h"

static uint64_t rng = 12345;
static float urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static float *rand_vec(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = scale * urand();
    return p;
}

static double naive_dot(const float *w, const float *x, int n)
{
    double s = 0.0;
    for (int j = 0; j < n; j++) s += (double)w[j] * x[j];
    return s;
}

/* y = x·Wᵀ + b, the reference. */
static void naive_linear(const fipsc_linear *l, int n, const float *x, double *y)
{
    for (int r = 0; r < n; r++)
        for (int i = 0; i < l->out; i++)
            y[(size_t)r * l->out + i] = naive_dot(l->w + (size_t)i * l->in, x + (size_t)r * l->in, l->in) +
                                        (l->bias ? l->bias[i] : 0.0);
}

static double max_rel(const float *got, const double *want, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

static void test_linear(void)
{
    /* Shapes that take every path: one row (short rows in 8-row blocks with column and row tails,
     * long rows, chunks), many rows in one panel, many rows across several panels with a narrower
     * last one, many rows of a narrow layer in row blocks. */
    const int shapes[][3] = {{1, 7, 5},     {1, 300, 301},  {1, 70, 64},   {1, 1100, 1000},
                             {6, 40, 33},   {37, 1300, 96}, {600, 100, 64}};
    fipsc_error err = {0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int n = shapes[s][0], out = shapes[s][1], in = shapes[s][2];
        float *w = rand_vec((size_t)out * in, 0.5f), *b = rand_vec((size_t)out, 1.0f);
        float *x = rand_vec((size_t)n * in, 1.0f), *y = malloc(sizeof(float) * n * out);
        double *want = malloc(sizeof(double) * n * out);
        fipsc_linear lin = {.out = out, .in = in, .w = w, .weight_name = "test.weight"};
        CHECK_OK(fipsc_linear_apply(&lin, n, x, y, &err), &err);
        naive_linear(&lin, n, x, want);
        CHECK_MSG(max_rel(y, want, (size_t)n * out) < 1e-5, "linear %dx%dx%d without bias", n, out, in);
        lin.bias = b;
        CHECK_OK(fipsc_linear_apply(&lin, n, x, y, &err), &err);
        naive_linear(&lin, n, x, want);
        CHECK_MSG(max_rel(y, want, (size_t)n * out) < 1e-5, "linear %dx%dx%d with bias", n, out, in);
        /* apply_add: y += x·Wᵀ + b on top of the previous result = twice the result. */
        CHECK_OK(fipsc_linear_apply_add(&lin, n, x, y, &err), &err);
        for (size_t i = 0; i < (size_t)n * out; i++) want[i] *= 2.0;
        CHECK_MSG(max_rel(y, want, (size_t)n * out) < 1e-5, "linear_apply_add %dx%dx%d", n, out, in);

        /* The same bits with one thread and with two. */
        float *y1 = malloc(sizeof(float) * n * out);
        fipsc_threads_set(1);
        CHECK_OK(fipsc_linear_apply(&lin, n, x, y1, &err), &err);
        fipsc_threads_set(2);
        CHECK_OK(fipsc_linear_apply(&lin, n, x, y, &err), &err);
        CHECK_MSG(memcmp(y, y1, sizeof(float) * n * out) == 0, "linear %dx%dx%d differs between 1 and 2 threads", n, out, in);
        free(y1);
        free(w); free(b); free(x); free(y); free(want);
    }
    /* A big enough NT GEMM to run several panels on both threads. */
    const int m = 64, n = 2100, k = 300;
    CHECK(fipsc_gemm_panel_width(n) % 16 == 0 && fipsc_gemm_panel_width(n) < n);
    CHECK(fipsc_gemm_panel_width(100) == 100);
    float *a = rand_vec((size_t)m * k, 1.0f), *bm = rand_vec((size_t)n * k, 1.0f);
    float *c1 = calloc((size_t)m * n, sizeof(float)), *c2 = calloc((size_t)m * n, sizeof(float));
    fipsc_threads_set(1);
    fipsc_gemm_nt(m, n, k, a, k, bm, k, 0.0f, c1, n);
    fipsc_threads_set(2);
    fipsc_gemm_nt(m, n, k, a, k, bm, k, 0.0f, c2, n);
    CHECK_MSG(memcmp(c1, c2, sizeof(float) * m * n) == 0, "gemm differs between 1 and 2 threads");
    double worst = 0.0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j += 97) {
            double e = fabs(c2[(size_t)i * n + j] - naive_dot(a + (size_t)i * k, bm + (size_t)j * k, k));
            if (e > worst) worst = e;
        }
    CHECK_MSG(worst < 1e-3, "gemm error %g", worst);
    free(a); free(bm); free(c1); free(c2);

    /* A linear without weights is a broken invariant, reported rather than dereferenced. */
    float xx[2] = {1, 2}, yy[3];
    fipsc_linear none = {.out = 3, .in = 2};
    CHECK_FAILS(fipsc_linear_apply(&none, 1, xx, yy, &err), FIPSC_ERR_INTERNAL, "no weights", &err);
}

/* The MLP by its formula, in double, reusing naive_linear. */
static void naive_mlp(const fipsc_mlp *mlp, int n, const float *x, double *y)
{
    double *h = malloc(sizeof(double) * n * mlp->f), *u = malloc(sizeof(double) * n * mlp->f);
    float *hf = malloc(sizeof(float) * n * mlp->f);
    if (mlp->kind == FIPSC_MLP_GATED) {
        naive_linear(&mlp->gate, n, x, h);
        naive_linear(&mlp->up, n, x, u);
    } else {
        naive_linear(&mlp->up, n, x, h);
    }
    for (size_t i = 0; i < (size_t)n * mlp->f; i++) {
        double a = fipsc_activation_value(mlp->act, (float)h[i]); /* the scalar definition */
        hf[i] = (float)(mlp->kind == FIPSC_MLP_GATED ? a * u[i] : a);
    }
    naive_linear(&mlp->down, n, hf, y);
    free(h); free(u); free(hf);
}

static void test_mlp(void)
{
    fipsc_error err = {0};
    const fipsc_activation acts[] = {FIPSC_ACT_SILU, FIPSC_ACT_GELU_TANH, FIPSC_ACT_GELU, FIPSC_ACT_RELU};
    for (int kind = 0; kind < 2; kind++)
        for (int a = 0; a < 4; a++)
            for (int bias = 0; bias < 2; bias++) {
                const int d = 24, f = 70;
                fipsc_mlp mlp = {.kind = kind ? FIPSC_MLP_PLAIN : FIPSC_MLP_GATED, .act = acts[a], .d = d, .f = f};
                float *wg = rand_vec((size_t)f * d, 0.4f), *wu = rand_vec((size_t)f * d, 0.4f);
                float *wd = rand_vec((size_t)d * f, 0.2f), *bu = rand_vec(f, 0.5f), *bd = rand_vec(d, 0.5f), *bg = rand_vec(f, 0.5f);
                mlp.up = (fipsc_linear){.out = f, .in = d, .w = wu, .bias = bias ? bu : NULL};
                mlp.down = (fipsc_linear){.out = d, .in = f, .w = wd, .bias = bias ? bd : NULL};
                if (!kind) mlp.gate = (fipsc_linear){.out = f, .in = d, .w = wg, .bias = bias ? bg : NULL};
                CHECK(fipsc_mlp_scratch_floats(&mlp, 5) == (size_t)(kind ? 5 * f : 10 * f));
                for (int n = 1; n <= 9; n += 8) {
                    float *x = rand_vec((size_t)n * d, 2.0f), *y = malloc(sizeof(float) * n * d);
                    float *y2 = malloc(sizeof(float) * n * d);
                    double *want = malloc(sizeof(double) * n * d);
                    naive_mlp(&mlp, n, x, want);
                    CHECK_OK(fipsc_mlp_forward(&mlp, n, x, y, NULL, &err), &err);
                    CHECK_MSG(max_rel(y, want, (size_t)n * d) < 1e-5, "%s MLP, %s, bias %d, %d rows: error %g",
                              kind ? "plain" : "gated", fipsc_activation_name(acts[a]), bias, n,
                              max_rel(y, want, (size_t)n * d));
                    float *scratch = malloc(sizeof(float) * fipsc_mlp_scratch_floats(&mlp, n));
                    CHECK_OK(fipsc_mlp_forward(&mlp, n, x, y2, scratch, &err), &err);
                    CHECK(memcmp(y, y2, sizeof(float) * n * d) == 0);
                    free(scratch); free(x); free(y); free(y2); free(want);
                }
                free(wg); free(wu); free(wd); free(bu); free(bd); free(bg);
            }

    /* A wide MLP over many rows: the activation loop runs in chunks on both threads. */
    const int d = 64, f = 512, n = 40;
    float *w1 = rand_vec((size_t)f * d, 0.3f), *w2 = rand_vec((size_t)f * d, 0.3f), *w3 = rand_vec((size_t)d * f, 0.1f);
    fipsc_mlp big = {.kind = FIPSC_MLP_GATED, .act = FIPSC_ACT_SILU, .d = d, .f = f,
                     .gate = {.out = f, .in = d, .w = w1}, .up = {.out = f, .in = d, .w = w2},
                     .down = {.out = d, .in = f, .w = w3}};
    float *x = rand_vec((size_t)n * d, 1.0f), *y1 = malloc(sizeof(float) * n * d), *y2 = malloc(sizeof(float) * n * d);
    fipsc_threads_set(1);
    CHECK_OK(fipsc_mlp_forward(&big, n, x, y1, NULL, &err), &err);
    fipsc_threads_set(2);
    CHECK_OK(fipsc_mlp_forward(&big, n, x, y2, NULL, &err), &err);
    CHECK_MSG(memcmp(y1, y2, sizeof(float) * n * d) == 0, "MLP differs between 1 and 2 threads");

    /* Shapes that disagree name the projection. */
    big.down.in = f - 1;
    big.down.weight_name = "model.layers.0.mlp.down_proj.weight";
    CHECK_FAILS(fipsc_mlp_forward(&big, n, x, y1, NULL, &err), FIPSC_ERR_SHAPE,
                "MLP down projection model.layers.0.mlp.down_proj.weight is [64, 511] but an MLP with d 64, f 512 needs [64, 512]",
                &err);
    free(w1); free(w2); free(w3); free(x); free(y1); free(y2);
}

int main(void)
{
    test_linear();
    test_mlp();
    return test_summary("test_runtime_mlp");
}
