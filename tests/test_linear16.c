/* Linear layers over weights kept in 16 bits (F16/BF16 as a checkpoint stores them): the GEMM
 * converts each block of the weight as it goes (fipsc_gemm_nt16) and must give exactly what
 * fipsc_gemm_nt gives on the converted float32 matrix — for one row (decode), a few rows, many
 * rows of a narrow weight (the row-block partition), on one thread and on several; and the same
 * for products with a 16-bit right-hand matrix not transposed (fipsc_gemm_nn16 against fipsc_gemm). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "testutil.h"

/* Every 16-bit pattern converts as the scalar conversion says (the vectorised F16 path included). */
static void test_conversion_exact(void)
{
    static uint16_t all[65536];
    static float got[65536];
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    fipsc_dtype dts[2] = {FIPSC_F16, FIPSC_BF16};
    for (int k = 0; k < 2; k++) {
        fipsc_convert16_to_f32(dts[k], all, 65536, got);
        int bad = 0;
        for (int i = 0; i < 65536; i++) {
            float want = k ? fipsc_bf16_to_f32(all[i]) : fipsc_f16_to_f32(all[i]);
            if (memcmp(&want, &got[i], sizeof want) != 0) bad++;
        }
        CHECK_MSG(bad == 0, "%s: %d of 65536 patterns convert differently", fipsc_dtype_name(dts[k]), bad);
        /* non-finite: exactly the all-ones exponents */
        int64_t first = fipsc_first_nonfinite16(dts[k], all, 65536);
        CHECK(first == (k ? 0x7f80 : 0x7c00));
        CHECK(fipsc_first_nonfinite16(dts[k], all, (size_t)first) == -1);
    }
}

static void random_fill(fipsc_rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(2.0 * fipsc_rng_uniform(rng) - 1.0);
}

/* C from a 16-bit right-hand matrix equals C from its float32 conversion, bit for bit, with 1 and
 * 2 threads, and is the product (against double sums): B [n, k] transposed (fipsc_gemm_nt16, a
 * linear layer's weight) or, with nn, B [k, n] as it is (fipsc_gemm_nn16, a compressed group's
 * basis U). */
static void check_product(int m, int n, int k, fipsc_dtype dt, float beta, bool nn)
{
    fipsc_rng rng;
    fipsc_rng_seed(&rng, (uint64_t)(m * 7919 + n * 31 + k + (nn ? 104729 : 0)));
    float *a = malloc((size_t)m * k * sizeof *a), *bf = malloc((size_t)n * k * sizeof *bf);
    uint16_t *b16 = malloc((size_t)n * k * sizeof *b16);
    float *c0 = malloc((size_t)m * n * sizeof *c0), *c1 = malloc((size_t)m * n * sizeof *c1);
    random_fill(&rng, a, (size_t)m * k);
    random_fill(&rng, bf, (size_t)n * k);
    for (size_t i = 0; i < (size_t)n * k; i++)
        b16[i] = dt == FIPSC_BF16 ? fipsc_f32_to_bf16(bf[i]) : fipsc_f32_to_f16(bf[i]);
    fipsc_convert16_to_f32(dt, b16, (size_t)n * k, bf);
    const char *form = nn ? "" : "ᵀ";
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        random_fill(&rng, c0, (size_t)m * n);
        memcpy(c1, c0, (size_t)m * n * sizeof *c1);
        fipsc_error err = {0};
        if (nn) {
            fipsc_gemm(false, false, m, n, k, a, k, bf, n, beta, c0, n);
            CHECK_OK(fipsc_gemm_nn16(m, n, k, a, k, b16, dt, n, beta, c1, n, &err), &err);
        } else {
            fipsc_gemm_nt(m, n, k, a, k, bf, k, beta, c0, n);
            CHECK_OK(fipsc_gemm_nt16(m, n, k, a, k, b16, dt, k, beta, c1, n, &err), &err);
        }
        CHECK_MSG(memcmp(c0, c1, (size_t)m * n * sizeof *c0) == 0,
                  "%s [%d x %d]·B%s (B of %d x %d), beta %g, %d threads: differs from the float32 product",
                  fipsc_dtype_name(dt), m, k, form, n, k, (double)beta, threads);
        double worst = 0.0;
        for (int i = 0; i < m && beta == 0.0f; i++)
            for (int j = 0; j < n; j++) {
                double ref = 0.0, mag = 0.0;
                for (int q = 0; q < k; q++) {
                    const double t = (double)a[(size_t)i * k + q] * (nn ? bf[(size_t)q * n + j] : bf[(size_t)j * k + q]);
                    ref += t;
                    mag += fabs(t);
                }
                const double e = fabs(c1[(size_t)i * n + j] - ref) / (mag > 0 ? mag : 1.0);
                worst = e > worst ? e : worst;
            }
        CHECK_MSG(worst < 1e-5, "%s [%d x %d]·B%s: error %.3g of the sum of magnitudes", fipsc_dtype_name(dt), m, k,
                  form, worst);
    }
    omp_set_num_threads(2);
    free(a);
    free(bf);
    free(b16);
    free(c0);
    free(c1);
}

static void test_gemm16(void)
{
    fipsc_dtype dts[2] = {FIPSC_F16, FIPSC_BF16};
    for (int q = 0; q < 2; q++) {
        check_product(1, 1000, 300, dts[q], 0.0f, false);  /* decode: GEMV chunks on threads */
        check_product(1, 70, 20, dts[q], 1.0f, false);     /* decode, small, accumulating */
        check_product(1, 203, 700, dts[q], 0.0f, false);   /* decode, long rows (4-row groups), a partial chunk */
        check_product(1, 67, 1037, dts[q], 1.0f, false);   /* decode, long rows, a column tail, accumulating */
        check_product(5, 1100, 257, dts[q], 0.0f, false);  /* column panels */
        check_product(3, 200, 64, dts[q], 1.0f, false);    /* one panel */
        check_product(600, 200, 96, dts[q], 0.0f, false);  /* one panel, many rows: row blocks */
    }
}

static void test_gemm_nn16(void)
{
    fipsc_dtype dts[2] = {FIPSC_F16, FIPSC_BF16};
    for (int q = 0; q < 2; q++) {
        check_product(1, 3000, 700, dts[q], 0.0f, true); /* decode: row-streamed, column slices on threads */
        check_product(1, 77, 23, dts[q], 1.0f, true);    /* decode, a column tail past 8, a row tail past 4 */
        check_product(1, 5, 6, dts[q], 0.0f, true);      /* fewer columns than a vector */
        check_product(7, 1100, 257, dts[q], 0.0f, true); /* column panels */
        check_product(40, 200, 64, dts[q], 1.0f, true);  /* one panel */
    }
}

/* fipsc_linear_apply (bias, accumulate) and the row lookup through a 16-bit weight. */
static void test_linear_apply16(void)
{
    enum { N = 4, OUT = 300, IN = 40 };
    fipsc_rng rng;
    fipsc_rng_seed(&rng, 5);
    static float x[N * IN], wf[OUT * IN], bias[OUT], y0[N * OUT], y1[N * OUT], row[IN];
    static uint16_t w16[OUT * IN];
    random_fill(&rng, x, N * IN);
    random_fill(&rng, wf, OUT * IN);
    random_fill(&rng, bias, OUT);
    for (int i = 0; i < OUT * IN; i++) w16[i] = fipsc_f32_to_bf16(wf[i]);
    fipsc_convert16_to_f32(FIPSC_BF16, w16, OUT * IN, wf);
    fipsc_linear dense = {.out = OUT, .in = IN, .weight_name = "dense", .w = wf, .bias = bias};
    fipsc_linear half = {.out = OUT, .in = IN, .weight_name = "half", .w16 = w16, .w16_dtype = FIPSC_BF16,
                         .bias = bias};
    fipsc_error err = {0};
    for (int acc = 0; acc < 2; acc++) {
        random_fill(&rng, y0, N * OUT);
        memcpy(y1, y0, sizeof y1);
        CHECK_OK((acc ? fipsc_linear_apply_add : fipsc_linear_apply)(&dense, N, x, y0, &err), &err);
        CHECK_OK((acc ? fipsc_linear_apply_add : fipsc_linear_apply)(&half, N, x, y1, &err), &err);
        CHECK(memcmp(y0, y1, sizeof y0) == 0);
    }
    fipsc_linear_weight_row(&half, 123, row);
    CHECK(memcmp(row, wf + 123 * IN, sizeof row) == 0);
    CHECK(fipsc_linear_is_dense(&half) && fipsc_linear_is_dense(&dense));
    fipsc_linear none = {.out = OUT, .in = IN, .weight_name = "none"};
    CHECK_FAILS(fipsc_linear_apply(&none, N, x, y0, &err), FIPSC_ERR_INTERNAL, "no weights", &err);
}

int main(void)
{
    /* at every instruction set level this CPU has: the AVX2 level reads long 16-bit rows without
     * converting them first, and must still give the float32 path's bits */
    fipsc_error err = {0};
    for (int level = 0; level < FIPSC_ISA_COUNT; level++) {
        if (!fipsc_isa_supported((fipsc_isa)level)) continue;
        CHECK_OK(fipsc_isa_set((fipsc_isa)level, &err), &err);
        printf("%s kernels\n", fipsc_isa_name((fipsc_isa)level));
        test_conversion_exact();
        test_gemm16();
        test_gemm_nn16();
        test_linear_apply16();
    }
    return test_summary("test_linear16");
}
