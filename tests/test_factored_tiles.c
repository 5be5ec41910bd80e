/* Sparse products on row tiles (src/ops/factored_tiles.h), against double-precision references
 * built from the dense V: the gather through CSC lists (h = t·V) and CSR lists (z = h·Vᵀ), with
 * 16- and 32-bit positions, overwriting and accumulating, at every instruction set level this CPU
 * runs; the SDDMM (the gradient at V's stored entries, in either list orientation, in list
 * order); batch sizes around the tile (1, a partial tile, whole tiles, several with a
 * partial last one); the same bits on 1 and 2 threads. */
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "core/threads.h"
#include "ops/factored_tiles.h"
#include "testutil.h"

enum { R = 37, F = 53 };

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static double uniform(void) /* [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

/* V [R, F] with about a third of its entries kept, and its lists per column or per row. */
static float V[R * F];

static fipsc_factored_linear lists(bool by_col, bool wide)
{
    const int n_lists = by_col ? F : R, extent = by_col ? R : F;
    fipsc_factored_linear fl = {.weight_name = "test V", .expanding = by_col, .r = R, .f = F,
                                .layout = by_col ? FIPSC_VK_CSC : FIPSC_VK_CSR, .n_lists = n_lists};
    fl.ptr = calloc((size_t)n_lists + 1, sizeof *fl.ptr);
    fl.val = malloc(sizeof(float) * R * F);
    if (wide) fl.idx32 = malloc(sizeof(uint32_t) * R * F);
    else fl.idx16 = malloc(sizeof(uint16_t) * R * F);
    uint32_t p = 0;
    for (int o = 0; o < n_lists; o++) {
        fl.ptr[o] = p;
        for (int q = 0; q < extent; q++) {
            const float v = by_col ? V[q * F + o] : V[o * F + q];
            if (v == 0.0f) continue;
            fl.val[p] = v;
            if (wide) fl.idx32[p] = (uint32_t)q;
            else fl.idx16[p] = (uint16_t)q;
            p++;
        }
    }
    fl.ptr[n_lists] = p;
    fl.nnz = p;
    return fl;
}

static void free_lists(fipsc_factored_linear *fl)
{
    free(fl->ptr);
    free(fl->val);
    free(fl->idx16);
    free(fl->idx32);
}

static float *tiles_of(int n, int width, const float *x)
{
    float *xT = aligned_alloc(64, fipsc_tiles_floats(n, width) * sizeof(float));
    fipsc_tiles_from_rows(n, width, x, xT);
    return xT;
}

static float *random_rows(int n, int width)
{
    float *x = malloc(sizeof(float) * (size_t)n * width);
    for (int e = 0; e < n * width; e++) x[e] = (float)uniform();
    return x;
}

/* The gather of fl on x [n, inputs] against Σ in double, overwriting and accumulating. */
static void check_gather(const fipsc_factored_linear *fl, int n, const char *label)
{
    const bool by_col = fl->layout == FIPSC_VK_CSC;
    const int in_w = by_col ? R : F, out_w = by_col ? F : R;
    float *x = random_rows(n, in_w), *xT = tiles_of(n, in_w, x), *y = random_rows(n, out_w);
    float *y0 = malloc(sizeof(float) * (size_t)n * out_w);
    memcpy(y0, y, sizeof(float) * (size_t)n * out_w);
    double worst = 0.0, worst_acc = 0.0;
    fipsc_tiles_gather(fl, n, xT, y, false);
    float *ya = malloc(sizeof(float) * (size_t)n * out_w);
    memcpy(ya, y0, sizeof(float) * (size_t)n * out_w);
    fipsc_tiles_gather(fl, n, xT, ya, true);
    for (int row = 0; row < n; row++)
        for (int o = 0; o < out_w; o++) {
            double s = 0.0;
            for (int q = 0; q < in_w; q++) s += (double)x[row * in_w + q] * (by_col ? V[q * F + o] : V[o * F + q]);
            worst = fmax(worst, fabs(y[row * out_w + o] - s));
            worst_acc = fmax(worst_acc, fabs(ya[row * out_w + o] - (s + y0[row * out_w + o])));
        }
    CHECK_MSG(worst < 1e-5 && worst_acc < 1e-5, "%s, n %d: gather off by %.3g (accumulating %.3g)", label, n, worst,
              worst_acc);
    free(x);
    free(xT);
    free(y);
    free(y0);
    free(ya);
}

/* The SDDMM of fl: out [n, lists], in [n, inputs]; one value per stored entry, in list order,
 * against a double dot product; nothing written past the last entry. */
static void check_sddmm(const fipsc_factored_linear *fl, int n, const char *label)
{
    const bool by_col = fl->layout == FIPSC_VK_CSC;
    const int out_w = by_col ? F : R, in_w = by_col ? R : F;
    float *a = random_rows(n, out_w), *b = random_rows(n, in_w);
    float *aT = tiles_of(n, out_w, a), *bT = tiles_of(n, in_w, b);
    float *g = malloc(sizeof(float) * ((size_t)fl->nnz + 1));
    g[fl->nnz] = 1234.5f;
    fipsc_tiles_sddmm(fl, n, aT, bT, g);
    double worst = 0.0;
    for (int o = 0; o < fl->n_lists; o++)
        for (uint32_t p = fl->ptr[o]; p < fl->ptr[o + 1]; p++) {
            const int q = fl->idx16 ? fl->idx16[p] : (int)fl->idx32[p];
            double s = 0.0;
            for (int row = 0; row < n; row++) s += (double)a[row * out_w + o] * b[row * in_w + q];
            worst = fmax(worst, fabs(g[p] - s));
        }
    CHECK_MSG(worst < 1e-5, "%s, n %d: sddmm off by %.3g", label, n, worst);
    CHECK_MSG(g[fl->nnz] == 1234.5f, "%s, n %d: sddmm wrote past the last entry", label, n);
    free(a);
    free(b);
    free(aT);
    free(bT);
    free(g);
}

/* The same bits on 1 and 2 threads, for a batch large enough to run in parallel. */
static void check_threads(const fipsc_factored_linear *fl)
{
    enum { N = 4096 };
    const bool by_col = fl->layout == FIPSC_VK_CSC;
    const int in_w = by_col ? R : F, out_w = by_col ? F : R;
    float *x = random_rows(N, in_w), *xT = tiles_of(N, in_w, x), *o = random_rows(N, out_w);
    float *oT = tiles_of(N, out_w, o);
    float *y1 = malloc(sizeof(float) * N * out_w), *y2 = malloc(sizeof(float) * N * out_w);
    float *g1 = malloc(sizeof(float) * ((size_t)fl->nnz + 1)), *g2 = malloc(sizeof(float) * ((size_t)fl->nnz + 1));
    const int before = fipsc_threads_get();
    fipsc_threads_set(1);
    fipsc_tiles_gather(fl, N, xT, y1, false);
    fipsc_tiles_sddmm(fl, N, oT, xT, g1);
    fipsc_threads_set(2);
    fipsc_tiles_gather(fl, N, xT, y2, false);
    fipsc_tiles_sddmm(fl, N, oT, xT, g2);
    fipsc_threads_set(before);
    CHECK(memcmp(y1, y2, sizeof(float) * N * out_w) == 0);
    CHECK(memcmp(g1, g2, sizeof(float) * (size_t)fl->nnz) == 0);
    free(g1);
    free(g2);
    free(x);
    free(xT);
    free(o);
    free(oT);
    free(y1);
    free(y2);
}

int main(void)
{
    for (int e = 0; e < R * F; e++) V[e] = uniform() < -0.35 ? (float)uniform() : 0.0f;
    V[0] = 0.5f; /* list 0 of each orientation is not empty; the last column of V is */
    for (int k = 0; k < R; k++) V[k * F + F - 1] = 0.0f;
    const int sizes[] = {1, 5, 32, 64, 70};
    fipsc_error err = {0};
    const fipsc_isa best = fipsc_isa_active();
    for (int by_col = 0; by_col < 2; by_col++)
        for (int wide = 0; wide < 2; wide++) {
            fipsc_factored_linear fl = lists(by_col, wide);
            char label[96];
            for (int isa = FIPSC_ISA_PORTABLE; isa < FIPSC_ISA_COUNT; isa++) {
                if (!fipsc_isa_supported((fipsc_isa)isa)) continue;
                CHECK_OK(fipsc_isa_set((fipsc_isa)isa, &err), &err);
                snprintf(label, sizeof label, "%s lists, %s positions, %s", by_col ? "column" : "row",
                         wide ? "32-bit" : "16-bit", fipsc_isa_name((fipsc_isa)isa));
                for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                    check_gather(&fl, sizes[s], label);
                    check_sddmm(&fl, sizes[s], label);
                }
            }
            CHECK_OK(fipsc_isa_set(best, &err), &err);
            check_threads(&fl);
            free_lists(&fl);
        }
    return test_summary("test_factored_tiles");
}
