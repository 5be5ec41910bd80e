/* The run-time instruction set choice (src/core/isa.h) and the kernels it switches outside the
 * factored linears (those are in test_compressed_kernels.c): short- and long-row GEMV against a
 * double reference, and the F16/BF16 conversion against the scalar one for all 65536 patterns, at
 * every level this CPU has. Also: names, parsing, and refusal of a level the CPU lacks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "core/tensor.h"
#include "ops/gemm.h"
#include "testutil.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static float uniform(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

/* y = W·x for widths either side of the short-row kernel's limit (512) and row counts that leave
 * partial groups of 8 and 4, against double sums; beta adds to y. */
static void check_gemv(const char *level)
{
    const int widths[] = {1, 7, 8, 64, 300, 512, 513, 1000}, row_counts[] = {1, 3, 8, 13, 70};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (size_t ri = 0; ri < sizeof row_counts / sizeof *row_counts; ri++) {
            const int k = widths[wi], n = row_counts[ri];
            float *w = malloc((size_t)n * k * sizeof *w), *x = malloc((size_t)k * sizeof *x);
            float *y = malloc((size_t)n * sizeof *y), *y0 = malloc((size_t)n * sizeof *y0);
            for (int i = 0; i < n * k; i++) w[i] = uniform();
            for (int i = 0; i < k; i++) x[i] = uniform();
            for (int i = 0; i < n; i++) y[i] = y0[i] = uniform();
            fipsc_gemv(n, k, w, k, x, 0.5f, y);
            double worst = 0.0;
            for (int i = 0; i < n; i++) {
                double s = 0.5 * y0[i], mag = fabs(s);
                for (int j = 0; j < k; j++) {
                    s += (double)w[(size_t)i * k + j] * x[j];
                    mag += fabs((double)w[(size_t)i * k + j] * x[j]);
                }
                worst = fmax(worst, fabs(y[i] - s) / mag);
            }
            CHECK_MSG(worst <= 1e-6, "%s gemv %d x %d: relative error %.3g", level, n, k, worst);
            free(w), free(x), free(y), free(y0);
        }
}

/* Every 16-bit pattern converts as the scalar conversion does (NaN to a NaN). */
static void check_convert(const char *level)
{
    enum { N = 65536 + 5 }; /* a tail past the last full vector */
    uint16_t *src = malloc(N * sizeof *src);
    float *dst = malloc(N * sizeof *dst);
    for (int i = 0; i < N; i++) src[i] = (uint16_t)i;
    const fipsc_dtype types[] = {FIPSC_F16, FIPSC_BF16};
    for (int t = 0; t < 2; t++) {
        fipsc_convert16_to_f32(types[t], src, N, dst);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            float want = types[t] == FIPSC_F16 ? fipsc_f16_to_f32(src[i]) : fipsc_bf16_to_f32(src[i]);
            if (isnan(want) ? !isnan(dst[i]) : memcmp(&want, &dst[i], sizeof want) != 0) bad++;
        }
        CHECK_MSG(bad == 0, "%s %s conversion: %d patterns differ", level, fipsc_dtype_name(types[t]), bad);
    }
    free(src), free(dst);
}

int main(void)
{
    fipsc_error err = {0};
    fipsc_isa isa;
    CHECK(fipsc_isa_supported(FIPSC_ISA_PORTABLE));
    CHECK(fipsc_isa_active() == fipsc_isa_best());
    CHECK_OK(fipsc_isa_parse("best", &isa, &err), &err);
    CHECK(isa == fipsc_isa_best());
    CHECK_FAILS(fipsc_isa_parse("sse9", &isa, &err), FIPSC_ERR_ARG, "unknown instruction set 'sse9'", &err);
    CHECK_FAILS(fipsc_isa_set(FIPSC_ISA_COUNT, &err), FIPSC_ERR_ARG, "does not exist", &err);
    for (int level = 0; level < FIPSC_ISA_COUNT; level++) {
        const char *name = fipsc_isa_name((fipsc_isa)level);
        CHECK_OK(fipsc_isa_parse(name, &isa, &err), &err);
        CHECK(isa == (fipsc_isa)level);
        if (!fipsc_isa_supported((fipsc_isa)level)) {
            CHECK_FAILS(fipsc_isa_set((fipsc_isa)level, &err), FIPSC_ERR_UNSUPPORTED, "this CPU does not run", &err);
            printf("%s: not run (this CPU does not have it)\n", name);
            continue;
        }
        CHECK_OK(fipsc_isa_set((fipsc_isa)level, &err), &err);
        CHECK(fipsc_isa_active() == (fipsc_isa)level);
        printf("%s\n", name);
        check_gemv(name);
        check_convert(name);
    }
    return test_summary("test_isa");
}
