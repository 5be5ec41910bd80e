/* The AVX-512 BF16 level's one-row kernel for bitmap lists with BF16 values (declared in
 * ops/factored_gather.h, driven by gather_vector in ops/factored_kernels.c): y[o] = Σ value ·
 * input[position] over list o, with the input rounded to bfloat16 (fipsc_gather_bits16_dot_input,
 * in its natural order, padded with zeros to whole words) and every product exact in VDPBF16PS,
 * which multiplies 16 pairs of bfloat16 lanes and adds each pair's sum to a float32 lane.
 *
 * A list is taken 64 positions (one bitmap word, c set bits) a step, one of two ways, chosen per
 * matrix when its lists are laid out (fipsc_factored_linear.bits_gather, ops/factored_linear.c):
 *
 *   expand (the values spread to the input): twice, for positions 0-31 and 32-63 of the word,
 *     lanes = the next values expand-loaded under the 32 bits           bfloat16 [32]
 *     acc  += VDPBF16PS(lanes, input[64w + 32h .. +31])                 float32 [16]
 *   gather (the input gathered to the values):
 *     pos   = compress(iota 0..63) under the word's 64 bits             c kept positions, bytes
 *     xs    = permute(input[64w .. 64w+63], pos widened to 16 bits)     bfloat16 [32]
 *     vs    = the next c values, lanes past c zero                      bfloat16 [32]
 *     acc  += VDPBF16PS(vs, xs)                                         float32 [16]
 *     and when c > 32 the same again on entries 32..c-1 of pos.
 *
 * Zen 4 runs one compress or expand per ~2.6 cycles and a permute or widening per cycle, so a
 * gather step costs about one expand where an expand step costs two: on lists with 25 % of
 * positions kept at random, 6.6-6.8 -> 5.6-5.9 cycles a word in L2 (an ad-hoc harness). But a
 * word with more than 32 kept positions takes the gather step's second half behind a branch, and
 * where such words are common and unpredictable — fips-init's V, whose first positions (the
 * largest singular directions) keep ~50 %, or whole lists that keep ~50 % — mispredictions cost
 * more than the compress saves (the 1B-shaped model decoded 5 % slower than with expand steps).
 * Hence the choice: gather where at most one word in 64 keeps more than 32 positions.
 *
 * Unused lanes hold value 0 against a finite input (the input is checked), so they add 0. Four
 * accumulators per list, word w into accumulator w % 4 (a dot product waits for its accumulator's
 * previous one; four words of work hide that), then one fixed sum (fipsc_sum16_fixed). */
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "ops/factored_gather.h"

#if FIPSC_HAVE_AVX2_KERNELS
#include "ops/x86_vectors.h"

FIPSC_TARGET_AVX512_BF16 uint16_t *fipsc_gather_bits16_dot_input(const fipsc_factored_linear *fl, const float *x,
                                                                  int n_in)
{
    const size_t padded = (size_t)fl->words * 64;
    uint16_t *xb = aligned_alloc(64, padded * sizeof *xb);
    if (!xb) return NULL;
    for (int i = 0; i < n_in; i++) xb[i] = fipsc_f32_to_bf16(x[i]);
    memset(xb + n_in, 0, (padded - (size_t)n_in) * sizeof *xb);
    if (fipsc_first_nonfinite16(FIPSC_BF16, xb, (size_t)n_in) >= 0) { /* inf or NaN, before or after rounding */
        free(xb);
        return NULL;
    }
    return xb;
}

/* Mask of lanes 0 .. c - 1 of 32 (c >= 0). */
static inline __mmask32 first_lanes(int c)
{
    return c >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << c) - 1);
}

/* acc += the values under bitmap word m · the input window lo:hi (64 bfloat16) at its set
 * positions, the expand way or the gather way (above); v advances past the word's values. */
#define EXPAND_WORD(acc, m, v, lo, hi)                                                                        \
    do {                                                                                                     \
        const uint64_t m_ = (m);                                                                             \
        const uint32_t k0_ = (uint32_t)m_, k1_ = (uint32_t)(m_ >> 32);                                       \
        const __m512i l0_ = _mm512_mask_expandloadu_epi16(fipsc_fresh_zero512(), k0_, v);                    \
        acc = _mm512_dpbf16_ps(acc, (__m512bh)l0_, (__m512bh)(lo));                                          \
        const __m512i l1_ = _mm512_mask_expandloadu_epi16(fipsc_fresh_zero512(), k1_, v + __builtin_popcount(k0_)); \
        acc = _mm512_dpbf16_ps(acc, (__m512bh)l1_, (__m512bh)(hi));                                          \
        v += __builtin_popcountll(m_);                                                                       \
    } while (0)
#define GATHER_WORD(acc, m, v, lo, hi)                                                                        \
    do {                                                                                                     \
        const uint64_t m_ = (m);                                                                             \
        const int c_ = __builtin_popcountll(m_);                                                             \
        const __m512i pos_ = _mm512_mask_compress_epi8(fipsc_fresh_zero512(), _cvtu64_mask64(m_), iota);     \
        const __m512i xs_ = _mm512_permutex2var_epi16(lo, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(pos_)), hi); \
        const __m512i vs_ = _mm512_maskz_loadu_epi16(first_lanes(c_), v);                                    \
        acc = _mm512_dpbf16_ps(acc, (__m512bh)vs_, (__m512bh)xs_);                                           \
        if (c_ > 32) {                                                                                       \
            const __m512i xs2_ = _mm512_permutex2var_epi16(                                                  \
                lo, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(pos_, 1)), hi);                           \
            const __m512i vs2_ = _mm512_maskz_loadu_epi16(first_lanes(c_ - 32), v + 32);                     \
            acc = _mm512_dpbf16_ps(acc, (__m512bh)vs2_, (__m512bh)xs2_);                                     \
        }                                                                                                    \
        v += c_;                                                                                             \
    } while (0)

/* The sums of list a and, when b >= 0, of list b, word by word together: one input window serves
 * both, and one core reads two places of V at once (why: gather_vector). Each list has its own
 * accumulators and final sum, so a list's sum has the same bits taken alone or with another. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512_BF16 void bits16_dot_lists(
    const fipsc_factored_linear *fl, const uint16_t *xb, int a, int b, bool gather, float *sum_a, float *sum_b)
{
    const bool two = b >= 0;
    const __m512i iota = _mm512_set_epi8(63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46,
                                         45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28,
                                         27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
                                         9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const uint64_t *bits_a = fl->bits + (size_t)a * fl->words, *bits_b = fl->bits + (size_t)(two ? b : a) * fl->words;
    const uint16_t *va = fl->val16 + fl->ptr[a], *vb = fl->val16 + fl->ptr[two ? b : a];
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
/* word w of both lists into accumulator k of each */
#define STEP(k, w)                                                                                            \
    do {                                                                                                     \
        const __m512i lo = _mm512_load_si512((const void *)(xb + 64 * (size_t)(w)));                         \
        const __m512i hi = _mm512_load_si512((const void *)(xb + 64 * (size_t)(w) + 32));                    \
        if (gather) {                                                                                        \
            GATHER_WORD(a##k, bits_a[w], va, lo, hi);                                                        \
            if (two) GATHER_WORD(b##k, bits_b[w], vb, lo, hi);                                               \
        } else {                                                                                             \
            EXPAND_WORD(a##k, bits_a[w], va, lo, hi);                                                        \
            if (two) EXPAND_WORD(b##k, bits_b[w], vb, lo, hi);                                               \
        }                                                                                                    \
    } while (0)
    int w = 0;
    for (; w + 4 <= fl->words; w += 4) {
        /* values advance ~128 bytes in four words at 25 % kept: ask for each list every two */
        FIPSC_PREFETCH_AHEAD(va, bits_a + w);
        if (two) FIPSC_PREFETCH_AHEAD(vb, bits_b + w);
        STEP(0, w);
        STEP(1, w + 1);
        FIPSC_PREFETCH_AHEAD(va, bits_a + w + 2);
        if (two) FIPSC_PREFETCH_AHEAD(vb, bits_b + w + 2);
        STEP(2, w + 2);
        STEP(3, w + 3);
    }
    if (w < fl->words) STEP(0, w);
    if (w + 1 < fl->words) STEP(1, w + 1);
    if (w + 2 < fl->words) STEP(2, w + 2);
#undef STEP
    *sum_a = fipsc_sum16_fixed(a0, a1, a2, a3);
    if (two) *sum_b = fipsc_sum16_fixed(b0, b1, b2, b3);
}
#undef EXPAND_WORD
#undef GATHER_WORD

/* Lists [a0, a1) and [b0, b1), list a0 + i together with list b0 + i (the longer range's rest
 * alone), each step the gather way or the expand way. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512_BF16 void ranges(
    const fipsc_factored_linear *fl, const uint16_t *xb, float *y, int a0, int a1, int b0, int b1, bool accumulate,
    bool gather)
{
    for (int a = a0, b = b0; a < a1 || b < b1; a++, b++) {
        float sum[2] = {0, 0};
        if (a < a1 && b < b1) {
            bits16_dot_lists(fl, xb, a, b, gather, &sum[0], &sum[1]);
            y[a] = accumulate ? y[a] + sum[0] : sum[0];
            y[b] = accumulate ? y[b] + sum[1] : sum[1];
        } else {
            const int o = a < a1 ? a : b;
            bits16_dot_lists(fl, xb, o, -1, gather, &sum[0], NULL);
            y[o] = accumulate ? y[o] + sum[0] : sum[0];
        }
    }
}

FIPSC_TARGET_AVX512_BF16 void fipsc_gather_ranges_bits16_dot(const fipsc_factored_linear *fl, const uint16_t *xb,
                                                             float *y, int a0, int a1, int b0, int b1,
                                                             bool accumulate)
{
    if (fl->bits_gather) ranges(fl, xb, y, a0, a1, b0, b1, accumulate, true);
    else ranges(fl, xb, y, a0, a1, b0, b1, accumulate, false);
}
#endif
