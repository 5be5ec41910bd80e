/* FiPS schedules against their formulas (GMP ending exactly at s_final, RigL's cosine-decayed
 * drop fraction, the cosine learning rate) and AdamW against a hand computation, with float32 and
 * with bfloat16 moments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "core/threads.h"
#include "fips/fips.h"
#include "testutil.h"

static void test_gmp(void)
{
    /* t_accel 25, t_end 75, Δt 10, 0.05 → 0.5 → 0.8 */
    fipsc_fips_gmp s = {25, 75, 10, 0.05, 0.5, 0.8};
    CHECK(fipsc_fips_gmp_sparsity(&s, 0) == 0.05);
    CHECK(fipsc_fips_gmp_sparsity(&s, 24) == 0.05);
    CHECK_NEAR(fipsc_fips_gmp_sparsity(&s, 25), 0.5, 1e-15);
    for (int t = 25; t < 75; t++) {
        double x = 1.0 - (t - 25) / 50.0;
        CHECK_NEAR(fipsc_fips_gmp_sparsity(&s, t), 0.8 + (0.5 - 0.8) * x * x * x, 1e-15);
    }
    CHECK_NEAR(fipsc_fips_gmp_sparsity(&s, 50), 0.8 - 0.3 * 0.125, 1e-15);
    /* Ends at exactly s_final (the reference, dividing by t_end, would give 0.8 − 0.3·(1/3)³). */
    CHECK(fipsc_fips_gmp_sparsity(&s, 75) == 0.8);
    CHECK(fipsc_fips_gmp_sparsity(&s, 1000) == 0.8);
    CHECK(fipsc_fips_gmp_sparsity(&s, 74) < 0.8);
    CHECK(fipsc_fips_gmp_sparsity(&s, 74) > 0.7999);
    /* monotone */
    for (int t = 1; t < 100; t++)
        CHECK(fipsc_fips_gmp_sparsity(&s, t) >= fipsc_fips_gmp_sparsity(&s, t - 1));
    /* mask updates: every Δt below t_end, and at t_end */
    for (int t = 0; t <= 100; t++) {
        bool want = (t % 10 == 0 && t < 75) || t == 75;
        CHECK_MSG(fipsc_fips_gmp_prunes_at(&s, t) == want, "t = %d", t);
    }
    /* A final sparsity below the accelerated one never overshoots it. */
    fipsc_fips_gmp low = {25, 75, 10, 0.05, 0.5, 0.3};
    CHECK(fipsc_fips_gmp_sparsity(&low, 0) == 0.05);
    CHECK(fipsc_fips_gmp_sparsity(&low, 30) == 0.3);
    CHECK(fipsc_fips_gmp_sparsity(&low, 75) == 0.3);
    fipsc_fips_gmp tiny = {25, 75, 10, 0.05, 0.5, 0.02};
    CHECK(fipsc_fips_gmp_sparsity(&tiny, 0) == 0.02);
    /* t_accel ≥ t_end: initial until t_end, then final */
    fipsc_fips_gmp late = {80, 75, 10, 0.05, 0.5, 0.8};
    CHECK(fipsc_fips_gmp_sparsity(&late, 74) == 0.05);
    CHECK(fipsc_fips_gmp_sparsity(&late, 75) == 0.8);
}

static void test_rigl(void)
{
    CHECK_NEAR(fipsc_fips_rigl_fraction(0.1, 0, 100), 0.1, 1e-15);
    CHECK_NEAR(fipsc_fips_rigl_fraction(0.1, 50, 100), 0.05, 1e-15);
    CHECK_NEAR(fipsc_fips_rigl_fraction(0.1, 25, 100), 0.05 * (1.0 + cos(M_PI / 4)), 1e-15);
    CHECK_NEAR(fipsc_fips_rigl_fraction(0.1, 100, 100), 0.0, 1e-15);
    CHECK(fipsc_fips_rigl_fraction(0.1, 101, 100) == 0.0);
    for (int t = 0; t <= 120; t++) {
        bool want = t > 0 && t < 100 && t % 20 == 0;
        CHECK_MSG(fipsc_fips_rigl_updates_at(t, 100, 20) == want, "t = %d", t);
    }
}

static void test_cosine_lr(void)
{
    CHECK(fipsc_fips_cosine_lr(1e-3f, 1e-6f, 0, 800) == 1e-3f);
    CHECK_NEAR(fipsc_fips_cosine_lr(1e-3f, 1e-6f, 400, 800), (1e-3 + 1e-6) / 2, 1e-10);
    for (int t = 0; t < 800; t += 37) {
        double want = 1e-6 + (1e-3 - 1e-6) * 0.5 * (1.0 + cos(M_PI * t / 800.0));
        CHECK_NEAR(fipsc_fips_cosine_lr(1e-3f, 1e-6f, t, 800), want, 1e-9);
    }
    CHECK(fipsc_fips_cosine_lr(1e-3f, 1e-6f, 800, 800) == 1e-6f);
    CHECK(fipsc_fips_cosine_lr(1e-3f, 1e-6f, 799, 800) > 1e-6f);
}

static void test_adamw(void)
{
    fipsc_adamw o = {0.9f, 0.999f, 1e-8f, 0.1f};
    /* 2 × 3 block inside a wider array (ld 4), moments with ld 3, gradient with ld 5 */
    float p[8] = {1, -2, 0.5f, 9, 3, 0, -1, 9};
    float m[6] = {0}, v[6] = {0};
    const float g[10] = {0.1f, -0.3f, 2, 7, 7, 0, 0.5f, -4, 7, 7};
    const uint64_t mask[1] = {0xDF}; /* bits 0-7 of the 2 × 4 block's rows: all but bit 5 */
    double pd[6] = {1, -2, 0.5, 3, 0, -1}, md[6] = {0}, vd[6] = {0};
    const double gd[6] = {0.1, -0.3, 2, 0, 0.5, -4};
    const float lr = 0.01f;
    for (int t = 1; t <= 3; t++) {
        fipsc_adamw_step(&o, t, lr, 2, 3, p, mask, 0, 4, m, v, 3, g, 5);
        for (int e = 0; e < 6; e++) {
            if (e == 4) continue; /* masked */
            md[e] = 0.9 * md[e] + 0.1 * gd[e];
            vd[e] = 0.999 * vd[e] + 0.001 * gd[e] * gd[e];
            double mh = md[e] / (1 - pow(0.9, t)), vh = vd[e] / (1 - pow(0.999, t));
            pd[e] = pd[e] * (1 - 0.01 * 0.1) - 0.01 * mh / (sqrt(vh) + 1e-8);
        }
    }
    int map[6] = {0, 1, 2, 4, 5, 6};
    for (int e = 0; e < 6; e++) {
        if (e == 4) continue;
        CHECK_NEAR(p[map[e]], pd[e], 1e-6);
        CHECK_NEAR(m[e], md[e], 1e-6);
        CHECK_NEAR(v[e], vd[e], 1e-4 * vd[e]); /* 1 − 0.999f is not 0.001 in float */
    }
    CHECK(p[5] == 0.0f && m[4] == 0.0f && v[4] == 0.0f); /* masked: held at zero */
    CHECK(p[3] == 9 && p[7] == 9);                       /* outside the block */
    /* First step moves every kept weight by about lr (Adam's normalised step). */
    float q[2] = {0, 0}, mq[2] = {0}, vq[2] = {0};
    const float gq[2] = {1e-4f, -50};
    fipsc_adamw noreg = {0.9f, 0.999f, 1e-8f, 0.0f};
    fipsc_adamw_step(&noreg, 1, 0.01f, 1, 2, q, NULL, 0, 2, mq, vq, 2, gq, 2);
    CHECK_NEAR(q[0], -0.01, 1e-5);
    CHECK_NEAR(q[1], 0.01, 1e-6);
}

/* BF16 moments: the step follows float32 AdamW closely, masked entries stay zero, the bits depend
 * only on the seed (not on threads), and stochastic rounding keeps the second moment growing
 * where rounding to nearest would stall it (v ← 0.999·v + 0.001 moves v by less than half a
 * bfloat16 ulp once v > ~0.25). */
static void test_adamw_bf16(void)
{
    fipsc_adamw o = {0.9f, 0.999f, 1e-8f, 0.1f};
    float p32[6] = {1, -2, 0.5f, 3, 0, -1}, p16[6] = {1, -2, 0.5f, 3, 0, -1}, m32[6] = {0}, v32[6] = {0};
    uint16_t m16[6] = {0}, v16[6] = {0};
    const float g[6] = {0.1f, -0.3f, 2, 0, 0.5f, -4};
    const uint64_t mask[1] = {0x37}; /* all but entry 3 */
    for (int t = 1; t <= 20; t++) {
        fipsc_adamw_step(&o, t, 0.01f, 2, 3, p32, mask, 0, 3, m32, v32, 3, g, 3);
        fipsc_adamw_step_bf16(&o, t, 0.01f, 2, 3, p16, mask, 0, 3, m16, v16, 3, g, 3, 7);
    }
    for (int e = 0; e < 6; e++) CHECK_NEAR(p16[e], p32[e], 2e-3);
    CHECK(p16[3] == 0.0f && m16[3] == 0 && v16[3] == 0);

    /* unbiased second moment: 4096 entries, constant gradient 1, 3000 steps */
    enum { N = 4096, T = 3000 };
    static float q[N], q2[N];
    static uint16_t mq[N], vq[N], mq2[N], vq2[N];
    static float gq[N];
    for (int e = 0; e < N; e++) gq[e] = 1.0f;
    fipsc_adamw noreg = {0.9f, 0.999f, 1e-8f, 0.0f};
    for (int t = 1; t <= T; t++) fipsc_adamw_step_bf16(&noreg, t, 1e-3f, 1, N, q, NULL, 0, N, mq, vq, N, gq, N, 11);
    double mean_v = 0;
    for (int e = 0; e < N; e++) mean_v += fipsc_bf16_to_f32(vq[e]) / N;
    const double want = 1.0 - pow(0.999, T); /* 0.9503 */
    CHECK_MSG(fabs(mean_v - want) < 0.01 * want, "bf16 v after %d steps: mean %g, expected %g", T, mean_v, want);
    /* the same seed gives the same bits on 1 and 2 threads; another seed other bits */
    const int saved = fipsc_threads_get();
    enum { R = 128, C = 4096 };
    float *pa = calloc((size_t)R * C, sizeof(float)), *pb = calloc((size_t)R * C, sizeof(float));
    float *gr = malloc((size_t)R * C * sizeof(float));
    uint16_t *ma = calloc((size_t)R * C, 2), *va = calloc((size_t)R * C, 2), *mb = calloc((size_t)R * C, 2),
             *vb = calloc((size_t)R * C, 2);
    for (int64_t e = 0; e < (int64_t)R * C; e++) gr[e] = (float)sin((double)e);
    for (int t = 1; t <= 3; t++) {
        fipsc_threads_set(1);
        fipsc_adamw_step_bf16(&o, t, 0.01f, R, C, pa, NULL, 0, C, ma, va, C, gr, C, 5);
        fipsc_threads_set(2);
        fipsc_adamw_step_bf16(&o, t, 0.01f, R, C, pb, NULL, 0, C, mb, vb, C, gr, C, 5);
    }
    fipsc_threads_set(saved);
    CHECK(memcmp(pa, pb, (size_t)R * C * sizeof(float)) == 0);
    CHECK(memcmp(va, vb, (size_t)R * C * 2) == 0 && memcmp(ma, mb, (size_t)R * C * 2) == 0);
    for (int t = 1; t <= T; t++) fipsc_adamw_step_bf16(&noreg, t, 1e-3f, 1, N, q2, NULL, 0, N, mq2, vq2, N, gq, N, 12);
    CHECK(memcmp(vq, vq2, sizeof vq) != 0);
    free(pa);
    free(pb);
    free(gr);
    free(ma);
    free(va);
    free(mb);
    free(vb);
}

int main(void)
{
    test_gmp();
    test_rigl();
    test_cosine_lr();
    test_adamw();
    test_adamw_bf16();
    return test_summary("test_fips_schedule");
}
