/* Half (F16) and bfloat16 conversions used by the safetensors reader and writer
 * (src/core/dtype.c): exact round trips, round-to-nearest-even at ties, subnormals, overflow to
 * infinity, NaN kept NaN, and an independent nearest-value search on many random floats. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/tensor.h"
#include "testutil.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static bool is_half_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

static void test_f16_exhaustive_round_trip(void)
{
    int mismatches = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fipsc_f16_to_f32((uint16_t)h);
        uint16_t back = fipsc_f32_to_f16(f);
        if (is_half_nan((uint16_t)h)) {
            if (!isnan(f) || !is_half_nan(back)) mismatches++;
        } else if (back != h) {
            mismatches++;
        }
    }
    CHECK_MSG(mismatches == 0, "%d of 65536 halves do not round-trip", mismatches);
}

static void test_f16_values(void)
{
    CHECK(fipsc_f32_to_f16(1.0f) == 0x3c00);
    CHECK(fipsc_f32_to_f16(-2.0f) == 0xc000);
    CHECK(fipsc_f32_to_f16(0.0f) == 0x0000);
    CHECK(fipsc_f32_to_f16(-0.0f) == 0x8000);
    CHECK(fipsc_f32_to_f16(65504.0f) == 0x7bff);          /* largest finite half */
    CHECK(fipsc_f32_to_f16(65519.996f) == 0x7bff);        /* below the tie: stays finite */
    CHECK(fipsc_f32_to_f16(65520.0f) == 0x7c00);          /* tie with 65536 rounds to even: inf */
    CHECK(fipsc_f32_to_f16(1e9f) == 0x7c00);
    CHECK(fipsc_f32_to_f16(-1e9f) == 0xfc00);
    CHECK(fipsc_f32_to_f16(INFINITY) == 0x7c00);
    CHECK(fipsc_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(is_half_nan(fipsc_f32_to_f16(NAN)));
    CHECK(is_half_nan(fipsc_f32_to_f16(from_bits(0x7f800001u)))); /* payload only in low bits */
    CHECK(is_half_nan(fipsc_f32_to_f16(from_bits(0xffc00000u))));

    /* normal ties: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 */
    CHECK(fipsc_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);              /* to even (down) */
    CHECK(fipsc_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);          /* to even (up) */
    CHECK(fipsc_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);   /* above the tie */
    CHECK(fipsc_f32_to_f16(2047.5f) == fipsc_f32_to_f16(2048.0f));   /* mantissa carry */
    CHECK(fipsc_f32_to_f16(2047.5f) == 0x6800);

    /* subnormal halves: value = m * 2^-24 */
    CHECK(fipsc_f32_to_f16(0x1p-24f) == 0x0001);
    CHECK(fipsc_f32_to_f16(0x1p-25f) == 0x0000);                 /* tie with 0: even is 0 */
    CHECK(fipsc_f32_to_f16(0x1p-25f + 0x1p-40f) == 0x0001);      /* just above the tie */
    CHECK(fipsc_f32_to_f16(1.5f * 0x1p-24f) == 0x0002);          /* tie 1|2: even is 2 */
    CHECK(fipsc_f32_to_f16(2.5f * 0x1p-24f) == 0x0002);          /* tie 2|3: even is 2 */
    CHECK(fipsc_f32_to_f16(-3.0f * 0x1p-24f) == 0x8003);
    CHECK(fipsc_f32_to_f16(1023.5f * 0x1p-24f) == 0x0400);       /* tie rolls into the smallest normal */
    CHECK(fipsc_f32_to_f16(0x1p-14f) == 0x0400);
    CHECK(fipsc_f32_to_f16(0x1p-30f) == 0x0000);
    CHECK(fipsc_f32_to_f16(from_bits(0x00000001u)) == 0x0000);   /* float32 subnormal */

    CHECK(fipsc_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(fipsc_f16_to_f32(0x03ff) == 1023.0f * 0x1p-24f);
    CHECK(fipsc_f16_to_f32(0x8001) == -0x1p-24f);
    CHECK(fipsc_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(bits(fipsc_f16_to_f32(0x8000)) == 0x80000000u);
    CHECK(isinf(fipsc_f16_to_f32(0x7c00)) && fipsc_f16_to_f32(0x7c00) > 0);
    CHECK(isinf(fipsc_f16_to_f32(0xfc00)) && fipsc_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(fipsc_f16_to_f32(0x7e00)));
    CHECK(isnan(fipsc_f16_to_f32(0x7c01)));
}

/* Nearest half to x by search over all finite halves, ties to the even encoding: an
 * implementation independent of the bit manipulation under test. */
static uint16_t nearest_half(float x)
{
    double ax = fabs((double)x);
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    /* positive halves 0x0000..0x7bff increase monotonically: binary search the neighbours */
    uint32_t lo = 0, hi = 0x7bff;
    if (ax >= (double)fipsc_f16_to_f32(0x7bff)) {
        double max = 65504.0, next = 65536.0; /* the would-be next value decides the overflow */
        if (ax - max < next - ax) return sign | 0x7bff;
        return sign | 0x7c00; /* above, or exactly at the tie (0x7bff is odd) */
    }
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if ((double)fipsc_f16_to_f32((uint16_t)mid) <= ax) lo = mid;
        else hi = mid;
    }
    double dlo = ax - (double)fipsc_f16_to_f32((uint16_t)lo);
    double dhi = (double)fipsc_f16_to_f32((uint16_t)hi) - ax;
    uint32_t pick = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);
    return sign | (uint16_t)pick;
}

static void test_f16_against_search(void)
{
    uint64_t state = 0x9e3779b97f4a7c15ull;
    int mismatches = 0;
    for (int i = 0; i < 200000; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        /* exponents around the half range: -30 .. +17, random sign and mantissa */
        uint32_t exp = (uint32_t)(97 + (state >> 33) % 48);
        uint32_t man = (uint32_t)(state >> 8) & 0x7fffffu;
        if (i % 4 == 0) man &= ~0x0fffu; /* many exact ties and near ties */
        uint32_t sign = (uint32_t)(state >> 63) << 31;
        float x = from_bits(sign | exp << 23 | man);
        uint16_t got = fipsc_f32_to_f16(x), want = nearest_half(x);
        if (got != want && mismatches++ < 5)
            fprintf(stderr, "f32_to_f16(%a) = 0x%04x, nearest is 0x%04x\n", (double)x, got, want);
    }
    CHECK_MSG(mismatches == 0, "%d mismatches against the nearest-value search", mismatches);
}

static void test_bf16(void)
{
    int mismatches = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = fipsc_bf16_to_f32((uint16_t)b);
        if (isnan(f)) continue;
        if (fipsc_f32_to_bf16(f) != b) mismatches++;
    }
    CHECK_MSG(mismatches == 0, "%d bfloat16 values do not round-trip", mismatches);

    CHECK(fipsc_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(fipsc_f32_to_bf16(-1.0f) == 0xbf80);
    CHECK(fipsc_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);              /* tie: to even (down) */
    CHECK(fipsc_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);          /* tie: to even (up) */
    CHECK(fipsc_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);   /* above the tie */
    CHECK(fipsc_f32_to_bf16(from_bits(0x7f7fffffu)) == 0x7f80);      /* FLT_MAX rounds to inf */
    CHECK(fipsc_f32_to_bf16(from_bits(0x7f7f7fffu)) == 0x7f7f);      /* below the tie: finite */
    CHECK(fipsc_f32_to_bf16(INFINITY) == 0x7f80);
    CHECK(fipsc_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(fipsc_f32_to_bf16(-0.0f) == 0x8000);
    /* float32 subnormals are bfloat16 subnormals: same rounding */
    CHECK(fipsc_f32_to_bf16(from_bits(0x00008000u)) == 0x0000);     /* tie: to even */
    CHECK(fipsc_f32_to_bf16(from_bits(0x00018000u)) == 0x0002);     /* tie: to even */
    CHECK(fipsc_f32_to_bf16(from_bits(0x00008001u)) == 0x0001);
    /* NaN stays NaN, even one whose payload sits only in the dropped bits */
    uint16_t n = fipsc_f32_to_bf16(from_bits(0x7f800001u));
    CHECK(isnan(fipsc_bf16_to_f32(n)));
    CHECK(isnan(fipsc_bf16_to_f32(fipsc_f32_to_bf16(NAN))));
    CHECK(bits(fipsc_bf16_to_f32(0x3f81)) == 0x3f810000u);
}

static void test_convert_bytes(void)
{
    /* little-endian bytes of F16 1.0, -2.0, 2^-24 and BF16 1.0, -inf */
    const unsigned char f16[] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00};
    const unsigned char bf16[] = {0x80, 0x3f, 0x80, 0xff};
    float out[3];
    fipsc_error err = {0};
    CHECK_OK(fipsc_convert_to_f32(FIPSC_F16, f16, 3, out, &err), &err);
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0x1p-24f);
    CHECK_OK(fipsc_convert_to_f32(FIPSC_BF16, bf16, 2, out, &err), &err);
    CHECK(out[0] == 1.0f && isinf(out[1]) && out[1] < 0);
    CHECK_FAILS(fipsc_convert_to_f32(FIPSC_I32, f16, 1, out, &err), FIPSC_ERR_UNSUPPORTED, "I32",
                &err);
}

int main(void)
{
    test_f16_exhaustive_round_trip();
    test_f16_values();
    test_f16_against_search();
    test_bf16();
    test_convert_bytes();
    return test_summary("test_safetensors_dtypes");
}
