/* The run-time instruction set choice (src/core/isa.h) and the kernels it switches outside the
 * factored linears (those are in test_compressed_kernels.c): short- and long-row GEMV against a
 * double reference, and the F16/BF16 conversion against the scalar one for all 65536 patterns, at
 * every level this CPU has; the AVX-512 level's one-row products give the AVX2 level's bits; the
 * x86 kernels' lane sums (ops/x86_vectors.h) add in their documented order. Also: names, parsing,
 * and refusal of a level the CPU lacks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "core/tensor.h"
#include "ops/gemm.h"
#include "ops/x86_vectors.h"
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

/* One row through W [n, k] (fipsc_gemv, fipsc_gemm_nt16) and through B [k, n] (fipsc_gemm with
 * m = 1, fipsc_gemm_nn16): the AVX-512 kernels run the AVX2 kernels' sums on 16-lane registers,
 * so both levels must give the same bits. Shapes leave tails past 16 and 8 columns and past a
 * pass of 8 rows. */
static void check_avx512_bits(void)
{
    const int shapes[][2] = {{13, 1037}, {70, 600}, {1, 2050}, {77, 23}, {3000, 700}, {5, 6}, {29, 515}};
    fipsc_error err = {0};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int n = shapes[s][0], k = shapes[s][1];
        float *w = malloc((size_t)n * k * sizeof *w), *x = malloc((size_t)k * sizeof *x);
        uint16_t *w16 = malloc((size_t)n * k * sizeof *w16);
        for (size_t i = 0; i < (size_t)n * k; i++) w16[i] = fipsc_f32_to_bf16(w[i] = uniform());
        for (int i = 0; i < k; i++) x[i] = uniform();
        float *y[2][4];
        for (int l = 0; l < 2; l++) {
            CHECK_OK(fipsc_isa_set(l ? FIPSC_ISA_AVX512 : FIPSC_ISA_AVX2, &err), &err);
            for (int p = 0; p < 4; p++) y[l][p] = calloc((size_t)n, sizeof **y);
            fipsc_gemv(n, k, w, k, x, 0.0f, y[l][0]);
            CHECK_OK(fipsc_gemm_nt16(1, n, k, x, k, w16, FIPSC_BF16, k, 0.0f, y[l][1], n, &err), &err);
            fipsc_gemm(false, false, 1, n, k, x, k, w, n, 0.0f, y[l][2], n); /* w as B [k, n] */
            CHECK_OK(fipsc_gemm_nn16(1, n, k, x, k, w16, FIPSC_BF16, n, 0.0f, y[l][3], n, &err), &err);
        }
        const char *what[4] = {"W·x", "W·x (BF16 W)", "x·B", "x·B (BF16 B)"};
        for (int p = 0; p < 4; p++)
            CHECK_MSG(memcmp(y[0][p], y[1][p], (size_t)n * sizeof **y) == 0, "%s, n %d k %d: AVX-512 differs from AVX2",
                      what[p], n, k);
        for (int l = 0; l < 2; l++)
            for (int p = 0; p < 4; p++) free(y[l][p]);
        free(w), free(x), free(w16);
    }
}

#if FIPSC_HAVE_AVX2_KERNELS
/* Values of magnitudes 1e-4 .. 1e3, so that another order of the additions rounds differently. */
static void spread(float *v, int n)
{
    static const float scale[8] = {1e-4f, 1e-3f, 1e-2f, 0.1f, 1.0f, 10.0f, 100.0f, 1e3f};
    for (int i = 0; i < n; i++) v[i] = uniform() * scale[(rng >> 20) % 8];
}

/* fipsc_sum8_fixed: ((t0 + t1) + (t2 + t3)) + ((t4 + t5) + (t6 + t7)) of t = a0 + a1. */
static FIPSC_TARGET_AVX2 void check_sum8(void)
{
    int differ = 0;
    for (int it = 0; it < 100000; it++) {
        float a[16], t[8];
        spread(a, 16);
        for (int i = 0; i < 8; i++) t[i] = a[i] + a[8 + i];
        const float want = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        const float got = fipsc_sum8_fixed(_mm256_loadu_ps(a), _mm256_loadu_ps(a + 8));
        differ += memcmp(&got, &want, sizeof got) != 0;
    }
    CHECK_MSG(differ == 0, "fipsc_sum8_fixed: %d of 100000 sums not in the documented order", differ);
}

/* fipsc_sum16_fixed: t = (a0 + a1) + (a2 + a3), then t[i] += t[i + w] for w = 8, 4, 2, 1. */
static FIPSC_TARGET_AVX512 void check_sum16(void)
{
    int differ = 0;
    for (int it = 0; it < 100000; it++) {
        float a[64], t[16];
        spread(a, 64);
        for (int i = 0; i < 16; i++) t[i] = (a[i] + a[16 + i]) + (a[32 + i] + a[48 + i]);
        for (int w = 8; w >= 1; w /= 2)
            for (int i = 0; i < w; i++) t[i] += t[i + w];
        const float got = fipsc_sum16_fixed(_mm512_loadu_ps(a), _mm512_loadu_ps(a + 16), _mm512_loadu_ps(a + 32),
                                            _mm512_loadu_ps(a + 48));
        differ += memcmp(&got, &t[0], sizeof got) != 0;
    }
    CHECK_MSG(differ == 0, "fipsc_sum16_fixed: %d of 100000 sums not in the documented order", differ);
}
#endif

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
    if (fipsc_isa_supported(FIPSC_ISA_AVX512)) check_avx512_bits();
#if FIPSC_HAVE_AVX2_KERNELS
    if (fipsc_isa_supported(FIPSC_ISA_AVX2)) check_sum8();
    if (fipsc_isa_supported(FIPSC_ISA_AVX512)) check_sum16();
#endif
    CHECK_OK(fipsc_isa_set(fipsc_isa_best(), &err), &err);
    return test_summary("test_isa");
}
