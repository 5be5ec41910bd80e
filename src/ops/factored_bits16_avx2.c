/* The AVX2 level's one-row kernel for bitmap lists with BF16 values (declared in
 * ops/factored_gather.h, driven by gather_vector in ops/factored_kernels.c): y[o] = Σ value ·
 * input[position] over list o, 8 input positions (a byte k of the bitmap) a step:
 *
 *   src   = the next 8 values (16 bytes), the same in both 128-bit halves   bfloat16 [8] x 2
 *   lanes = VPSHUFB(src, widen[k])                                          float32 [8]
 *   acc  += lanes · input[8b .. 8b+7]                                       float32 [8]
 *
 * widen[k] puts value j (the j-th set bit's) into the high half of the lane of k's j-th set bit —
 * a bfloat16 in the high half of a zero float is that float — and zeros everywhere else, so one
 * shuffle both places and widens the values. The input is copied once per call into whole words of
 * zeros (fipsc_gather_bits16_avx2_input), so every step reads 8 floats without a mask; an unkept
 * position then meets a zero value, which is why the copy refuses a non-finite input (0 · inf)
 * and the caller uses the masked kernel (fipsc_gather_range_avx2) instead.
 *
 * Why: AVX2 has no expand instruction, and the masked kernel builds each step from a lane mask
 * (broadcast, and, compare), a permutation index (a table row widened), the values widened and
 * permuted, and a masked input: ~13 instructions where this one has ~8. Same products (an unkept
 * lane adds a zero product in both), same two accumulators (even and odd bytes) and final sum
 * (fipsc_sum8_fixed): the masked kernel's result. A r 3072 x f 8192 matrix's step on one Zen 4
 * core: 3.2-3.9 -> 2.0-2.3 ms (bench_factored --v-steps --isa avx2; BENCHMARKS.md). */
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "ops/factored_gather.h"

#if FIPSC_HAVE_AVX2_KERNELS
#include "ops/x86_vectors.h"

/* Row k of the widening table: for lane i, bytes 4i .. 4i+3 = {zero, zero, low and high byte of
 * value j} where bit i is k's j-th set bit (byte 2j, 2j + 1 of the 16 source bytes), else zeros
 * (0x80: VPSHUFB writes a zero byte). */
#define Z_ 0x80
#define LANE_(k, i) Z_, Z_, BIT_(k, i) ? 2 * POP8_((k) & ((1 << (i)) - 1)) : Z_, \
                    BIT_(k, i) ? 2 * POP8_((k) & ((1 << (i)) - 1)) + 1 : Z_
#define WIDEN_ROW_(k) {LANE_(k, 0), LANE_(k, 1), LANE_(k, 2), LANE_(k, 3), LANE_(k, 4), LANE_(k, 5), LANE_(k, 6), \
                       LANE_(k, 7)}
static const uint8_t widen[256][32] __attribute__((aligned(32))) = {
    ROWS64_(WIDEN_ROW_, 0), ROWS64_(WIDEN_ROW_, 64), ROWS64_(WIDEN_ROW_, 128), ROWS64_(WIDEN_ROW_, 192)};
#undef WIDEN_ROW_
#undef LANE_
#undef Z_

FIPSC_TARGET_AVX2 float *fipsc_gather_bits16_avx2_input(const fipsc_factored_linear *fl, const float *x, int n_in)
{
    if (fipsc_first_nonfinite(x, (size_t)n_in) >= 0) return NULL;
    const size_t padded = (size_t)fl->words * 64;
    float *xp = aligned_alloc(32, padded * sizeof *xp);
    if (!xp) return NULL;
    memcpy(xp, x, (size_t)n_in * sizeof *xp);
    memset(xp + n_in, 0, (padded - (size_t)n_in) * sizeof *xp);
    return xp;
}

FIPSC_TARGET_AVX2 void fipsc_gather_range_bits16_avx2(const fipsc_factored_linear *fl, const float *xp, float *y,
                                                      int o0, int o1, bool accumulate)
{
    for (int o = o0; o < o1; o++) {
        const unsigned char *bits = (const unsigned char *)(fl->bits + (size_t)o * fl->words);
        const uint16_t *v = fl->val16; /* 8 zeros after the last value: 8 from any p <= nnz read */
        uint32_t p = fl->ptr[o];
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
#define STEP8(acc, b)                                                                                            \
    do {                                                                                                         \
        const unsigned k_ = bits[b];                                                                             \
        const __m256i src_ = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(v + p))); \
        const __m256i lanes_ = _mm256_shuffle_epi8(src_, _mm256_load_si256((const __m256i *)(const void *)widen[k_])); \
        acc = _mm256_fmadd_ps(_mm256_castsi256_ps(lanes_), _mm256_load_ps(xp + 8 * (size_t)(b)), acc);         \
        p += (uint32_t)__builtin_popcount(k_);                                                                   \
    } while (0)
        for (int b = 0; b < 8 * fl->words; b += 8) { /* a word a pass; its values asked for ahead */
            FIPSC_PREFETCH_AHEAD(v + p, bits + b);
            STEP8(acc0, b);
            STEP8(acc1, b + 1);
            STEP8(acc0, b + 2);
            STEP8(acc1, b + 3);
            STEP8(acc0, b + 4);
            STEP8(acc1, b + 5);
            STEP8(acc0, b + 6);
            STEP8(acc1, b + 7);
        }
#undef STEP8
        const float sum = fipsc_sum8_fixed(acc0, acc1);
        y[o] = accumulate ? y[o] + sum : sum;
    }
}
#endif
