/* FiPS schedules against their formulas (GMP ending exactly at s_final, RigL's cosine-decayed
 * drop fraction, the cosine learning rate) and AdamW against a hand computation. */
#include <math.h>
#include <string.h>

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

int main(void)
{
    test_gmp();
    test_rigl();
    test_cosine_lr();
    test_adamw();
    return test_summary("test_fips_schedule");
}
