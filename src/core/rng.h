/* Seeded random numbers, the same stream on every machine: xoshiro256** (Blackman & Vigna) with its
 * 256-bit state filled by SplitMix64 from a 64-bit seed (state[i] = SplitMix64 output i + 1 of the
 * sequence started at `seed`). Token sampling, calibration draws and minibatch shuffles all use
 * this one generator; nothing depends on thread counts. */
#ifndef FIPSC_CORE_RNG_H
#define FIPSC_CORE_RNG_H

#include <stdint.h>

typedef struct fipsc_rng {
    uint64_t s[4];
} fipsc_rng;

void fipsc_rng_seed(fipsc_rng *rng, uint64_t seed);
uint64_t fipsc_rng_next(fipsc_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double fipsc_rng_uniform(fipsc_rng *rng);
/* Uniform in [0, n) without modulo bias (rejection sampling). */
uint64_t fipsc_rng_below(fipsc_rng *rng, uint64_t n);

/* SplitMix64's output function: a bijective mix of 64 bits. */
static inline uint64_t fipsc_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A seed for stream `index` derived from a base seed (e.g. sequence i of a sampled corpus):
 * SplitMix64 of seed + (index + 1)·0x9E3779B97F4A7C15. Inline: also a counter-based hash, one
 * call per value where random bits are needed per entry (stochastic rounding). */
static inline uint64_t fipsc_seed_derive(uint64_t seed, uint64_t index)
{
    return fipsc_mix64(seed + (index + 1) * 0x9E3779B97F4A7C15ULL);
}

#endif
