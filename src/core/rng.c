/* Seeded random numbers (see src/core/rng.h). */
#include "core/rng.h"

static uint64_t splitmix64(uint64_t *state)
{
    return fipsc_mix64(*state += 0x9E3779B97F4A7C15ULL);
}

void fipsc_rng_seed(fipsc_rng *rng, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&st);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t fipsc_rng_next(fipsc_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double fipsc_rng_uniform(fipsc_rng *rng) { return (double)(fipsc_rng_next(rng) >> 11) * 0x1.0p-53; }

uint64_t fipsc_rng_below(fipsc_rng *rng, uint64_t n)
{
    /* draws above the largest multiple of n would bias small values */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = fipsc_rng_next(rng);
    while (x >= limit);
    return x % n;
}

