/* Small AVX2 / AVX-512 pieces that fipsc's x86 kernels (ops/gemm.c, ops/factored_gather_x86.c,
 * ops/factored_bits16_row.c) share, each written once: widening bfloat16, summing a vector's lanes
 * in a fixed order (so a result does not depend on how a compiler would reduce), a register that
 * is certainly fresh, and how far ahead the bitmap kernels ask for their streams.
 * Only for functions compiled with the matching target attribute (src/core/isa.h). */
#ifndef FIPSC_X86_VECTORS_H
#define FIPSC_X86_VECTORS_H

#include "core/isa.h"

#if FIPSC_HAVE_AVX2_KERNELS
#include <immintrin.h>

/* 8 bfloat16 values as float32: each is the high half of its float, so a zero-extension and a
 * 16-bit shift (exact). */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 __m256 fipsc_bf16x8_to_f32(__m128i h)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* The 8 lanes of a0 + a1, added pairwise in a fixed order, in registers. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 float fipsc_sum8_fixed(__m256 a0, __m256 a1)
{
    const __m256 t = _mm256_add_ps(a0, a1);
    const __m256 pairs = _mm256_hadd_ps(t, t);        /* t0+t1, t2+t3, ., . | t4+t5, t6+t7, ., . */
    const __m256 quads = _mm256_hadd_ps(pairs, pairs); /* (t0+t1)+(t2+t3) ... | (t4+t5)+(t6+t7) ... */
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
}

/* The 16 lanes of (a0 + a1) + (a2 + a3), halved 8, 4, 2, 1 in a fixed order: t[i] += t[i + 8],
 * then t[i] += t[i + 4], t[i] += t[i + 2], t[0] += t[1], in registers (a list of the one-row
 * kernels is 24 steps at r 3072, and summing through memory in a loop took ~6 % of its time). */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 float fipsc_sum16_fixed(__m512 a0, __m512 a1,
                                                                                         __m512 a2, __m512 a3)
{
    const __m512 t = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    const __m256 t8 = _mm256_add_ps(_mm512_castps512_ps256(t), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1)));
    const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

/* A zeroed register, by a zero idiom the compiler cannot see through (volatile: emitted at every
 * use, never hoisted), as the merge source of a masked expand-load. Zen 4 makes a zero-masked
 * expand-load wait for the last value of its destination register, and a compiler that reuses
 * one register for every step then chains each step to the one before (2.7x slower, measured);
 * merging into a fresh zero has no such dependency. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 __m512i fipsc_fresh_zero512(void)
{
    __m512i z;
    __asm__ volatile("vpxor %x0, %x0, %x0" : "=x"(z));
    return z;
}

/* Tables indexed by a byte k of a bitmap (8 positions), built by the compiler: BIT_(k, i) is bit i
 * of k, POP8_(k) its number of set bits; ROWS64_(R, k) lists R(k) .. R(k + 63), a quarter of a
 * 256-row table. */
#define BIT_(k, i) (((k) >> (i)) & 1)
#define POP8_(k) (BIT_(k, 0) + BIT_(k, 1) + BIT_(k, 2) + BIT_(k, 3) + BIT_(k, 4) + BIT_(k, 5) + BIT_(k, 6) + BIT_(k, 7))
#define ROWS4_(R, k) R(k), R((k) + 1), R((k) + 2), R((k) + 3)
#define ROWS16_(R, k) ROWS4_(R, k), ROWS4_(R, (k) + 4), ROWS4_(R, (k) + 8), ROWS4_(R, (k) + 12)
#define ROWS64_(R, k) ROWS16_(R, k), ROWS16_(R, (k) + 16), ROWS16_(R, (k) + 32), ROWS16_(R, (k) + 48)

/* The AVX-512 bitmap kernels read two streams, the bitmap and the values, at ~13 GB/s from memory
 * on one Zen 4 core without help; asking for the values 2 KB ahead and the bitmap 512 bytes ahead
 * (a prefetch per word; past the end it is dropped, never a fault) took a r 3072 x f 8192 BF16
 * matrix from 1.3-1.4 to 1.15-1.25 ms expanding and from 2.1-2.2 to 1.5 ms contracting, where
 * the hidden row's 32 KB does not stay in L1 beside the streams (measured; 1 KB / 256 B ahead and
 * 4 KB / 1 KB ahead were both slower). Same operations in the same order: same results. */
#define FIPSC_PREFETCH_AHEAD(values, word)                                            \
    do {                                                                              \
        _mm_prefetch((const char *)(values) + 2048, _MM_HINT_T0);                     \
        _mm_prefetch((const char *)(word) + 512, _MM_HINT_T0);                        \
    } while (0)

#endif

#endif
