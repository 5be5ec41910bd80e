/* The AVX2 and AVX-512 sparse gather kernels (see src/ops/factored_gather.h), compiled with
 * function target attributes into every x86 build and called only where the CPU runs them.
 *
 * One row, AVX2: a list with 16-bit positions (or an n:m column) is summed 8 entries a step with
 * gathers; a bitmap list 8 input positions a step, the next values permuted onto the lanes of the
 * set bits by a table (with BF16 values and a finite input, ops/factored_bits16_avx2.c instead).
 * One row, AVX-512: a bitmap list 16 input positions a step (32 with BF16 values): the bits
 * select which lanes of the input (read in order) meet the next values (expand-loaded), one
 * multiply-add: nothing gathered, no position stored. Tiles: fused multiply-adds on whole tile
 * rows; at the AVX-512 BF16 level, bitmap lists with BF16 values on bfloat16 tiles, two entries
 * per dot product (that level's one-row kernel: ops/factored_bits16_row.c). Each level takes the
 * layouts it is written for and hands the others down a level. */
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "ops/factored_gather.h"

#if FIPSC_HAVE_AVX2_KERNELS
#include "ops/x86_vectors.h"

enum { TILE = FIPSC_FACTORED_TILE };
#define VALUE FIPSC_GATHER_VALUE
/* Values q .. q+7 of a list as 8 floats (bfloat16 widened by a shift), for the AVX2 gathers. */
#define VALUES8(q)                                                                              \
    (half ? fipsc_bf16x8_to_f32(_mm_loadu_si128((const __m128i *)(const void *)(v16 + (q)))) \
          : _mm256_loadu_ps(v32 + (q)))

/* The same sum for a CSC/CSR list with 16-bit positions, 8 entries a step: one AVX2 gather of
 * x at 8 positions, 8 values (bfloat16 widened by a shift), one FMA; two accumulators, the tail
 * scalar. The scalar loop above is bound by its cost per kept entry, not by bytes (BENCHMARKS.md,
 * bench_factored). The sum is in a fixed order per output, so it does not depend on the thread
 * count. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 float gather_one_avx2_as(const fipsc_factored_linear *fl, int o,
                                                                                        const float *x, bool half)
{
    uint32_t p = fl->ptr[o];
    const uint32_t hi = fl->ptr[o + 1];
    const uint16_t *idx = fl->idx16, *v16 = fl->val16;
    const float *v32 = fl->val;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
#define POSITIONS(q) _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(idx + (q))))
    for (; p + 16 <= hi; p += 16) {
        acc0 = _mm256_fmadd_ps(VALUES8(p), _mm256_i32gather_ps(x, POSITIONS(p), 4), acc0);
        acc1 = _mm256_fmadd_ps(VALUES8(p + 8), _mm256_i32gather_ps(x, POSITIONS(p + 8), 4), acc1);
    }
#undef POSITIONS
    float s = fipsc_sum8_fixed(acc0, acc1);
    for (; p < hi; p++) s += VALUE(p) * x[idx[p]];
    return s;
}

/* The sum of column o of an n:m layout with n a power of two, 8 slots a step: slot p is in run
 * p >> log2(n), at position run·m + offset; the 8 positions are computed from 8 offset bytes and
 * gathered, as above. Two accumulators, lanes then the tail in a fixed order. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 float gather_nm_avx2_as(const fipsc_factored_linear *fl, int o,
                                                                                      const float *x, bool half)
{
    FIPSC_GATHER_NM_LIST(fl, o, half);
    const int slots = runs * n, shift = __builtin_ctz((unsigned)n);
    const __m256i step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), mm = _mm256_set1_epi32(m);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
#define POSITIONS(q)                                                                                            \
    _mm256_add_epi32(_mm256_mullo_epi32(_mm256_srli_epi32(_mm256_add_epi32(_mm256_set1_epi32(q), step), shift), mm), \
                     _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(off + (q)))))
    int p = 0;
    for (; p + 16 <= slots; p += 16) {
        acc0 = _mm256_fmadd_ps(VALUES8(p), _mm256_i32gather_ps(x, POSITIONS(p), 4), acc0);
        acc1 = _mm256_fmadd_ps(VALUES8(p + 8), _mm256_i32gather_ps(x, POSITIONS(p + 8), 4), acc1);
    }
#undef POSITIONS
    float s = fipsc_sum8_fixed(acc0, acc1);
    for (; p < slots; p++) s += VALUE(p) * x[(p >> shift) * m + off[p]];
    return s;
}

/* Bitmap lists at the AVX2 level, which has no expand instruction: two tables indexed by a byte
 * k of a bitmap (8 input positions), built by the compiler. expand_lanes[k][i] is the number of
 * bits of k below bit i: permuting the next 8 values by it puts value j on the lane of k's j-th
 * set bit (the one-row kernel); set_bits[k][j] is the lane of k's j-th set bit (positions for the
 * tile kernel, decoded without a branch per bit). */
#define EXPAND_ROW_(k) {0, POP8_((k) & 1), POP8_((k) & 3), POP8_((k) & 7), POP8_((k) & 15), POP8_((k) & 31), \
                        POP8_((k) & 63), POP8_((k) & 127)}
#define NTH_TERM_(k, j, i) (BIT_(k, i) && POP8_((k) & ((1 << (i)) - 1)) == (j) ? (i) : 0)
#define NTH_(k, j) (NTH_TERM_(k, j, 1) + NTH_TERM_(k, j, 2) + NTH_TERM_(k, j, 3) + NTH_TERM_(k, j, 4) + \
                    NTH_TERM_(k, j, 5) + NTH_TERM_(k, j, 6) + NTH_TERM_(k, j, 7))
#define SET_BITS_ROW_(k) {NTH_(k, 0), NTH_(k, 1), NTH_(k, 2), NTH_(k, 3), NTH_(k, 4), NTH_(k, 5), NTH_(k, 6), NTH_(k, 7)}
static const uint8_t expand_lanes[256][8] = {ROWS64_(EXPAND_ROW_, 0), ROWS64_(EXPAND_ROW_, 64),
                                             ROWS64_(EXPAND_ROW_, 128), ROWS64_(EXPAND_ROW_, 192)};
static const uint8_t set_bits[256][8] = {ROWS64_(SET_BITS_ROW_, 0), ROWS64_(SET_BITS_ROW_, 64),
                                         ROWS64_(SET_BITS_ROW_, 128), ROWS64_(SET_BITS_ROW_, 192)};

/* Values p .. p+7 of the whole layout as 8 floats; past its last value (nnz in all), zeros. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 __m256 values8_at(const float *v32, const uint16_t *v16,
                                                                                 bool half, uint32_t p, int64_t nnz)
{
    if (__builtin_expect((int64_t)p + 8 <= nnz, 1)) return VALUES8(p);
    float t[8] = {0};
    for (int i = 0; (int64_t)p + i < nnz && i < 8; i++) t[i] = VALUE(p + i);
    return _mm256_loadu_ps(t);
}

/* The sum of a bitmap list with AVX2, 8 input positions (a byte of the bitmap) a step: the next
 * 8 values permuted onto the lanes of the byte's set bits (expand_lanes), times the input read in
 * order under the same bits (a masked load: unkept positions are 0, even an infinite input), one
 * multiply-add; two accumulators, summed in a fixed order. Nothing gathered, no position stored:
 * as the AVX-512 kernel, with a table where AVX-512 has an expand instruction. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 float gather_bits_avx2_as(const fipsc_factored_linear *fl, int o,
                                                                                         const float *x, bool half)
{
    const unsigned char *bits = (const unsigned char *)(fl->bits + (size_t)o * fl->words);
    const float *v32 = fl->val;
    const uint16_t *v16 = fl->val16;
    const __m256i bitsel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const int n_in = fl->expanding ? fl->r : fl->f; /* x's length: the last bytes' loads are masked */
    uint32_t p = fl->ptr[o];
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
#define STEP8(acc, b)                                                                                              \
    do {                                                                                                           \
        const unsigned k_ = bits[b];                                                                               \
        const __m256i lanes_ = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)k_), bitsel), bitsel);   \
        const __m256i order_ = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)expand_lanes[k_])); \
        const __m256 v_ = _mm256_permutevar8x32_ps(values8_at(v32, v16, half, p, fl->nnz), order_);               \
        const __m256 x_ = 8 * (b) + 8 <= n_in ? _mm256_and_ps(_mm256_loadu_ps(x + 8 * (size_t)(b)), _mm256_castsi256_ps(lanes_)) \
                                              : _mm256_maskload_ps(x + 8 * (size_t)(b), lanes_);                     \
        acc = _mm256_fmadd_ps(v_, x_, acc);                                                                        \
        p += (uint32_t)__builtin_popcount(k_);                                                                     \
    } while (0)
    for (int b = 0; b < 8 * fl->words; b += 2) { /* whole words: an even number of bytes */
        STEP8(acc0, b);
        STEP8(acc1, b + 1);
    }
#undef STEP8
    return fipsc_sum8_fixed(acc0, acc1);
}

/* gather_range with the AVX2 sums where they apply (16-bit positions, bitmap lists, n:m with n a
 * power of two; other n:m and 32-bit positions keep the portable sum). */
FIPSC_TARGET_AVX2 void fipsc_gather_range_avx2(const fipsc_factored_linear *fl, const float *x, float *y, int o0,
                                                int o1, bool accumulate)
{
    if (fl->layout == FIPSC_VK_NM && (fl->group->nm_n & (fl->group->nm_n - 1)) == 0) {
        for (int o = o0; o < o1; o++) {
            float s = fl->val16 ? gather_nm_avx2_as(fl, o, x, true) : gather_nm_avx2_as(fl, o, x, false);
            y[o] = accumulate ? y[o] + s : s;
        }
        return;
    }
    if (fl->layout == FIPSC_VK_BITMAP) {
        for (int o = o0; o < o1; o++) {
            float s = fl->val16 ? gather_bits_avx2_as(fl, o, x, true) : gather_bits_avx2_as(fl, o, x, false);
            y[o] = accumulate ? y[o] + s : s;
        }
        return;
    }
    if ((fl->layout != FIPSC_VK_CSC && fl->layout != FIPSC_VK_CSR) || !fl->idx16) {
        fipsc_gather_range(fl, x, y, o0, o1, accumulate);
        return;
    }
    for (int o = o0; o < o1; o++) {
        float s = fl->val16 ? gather_one_avx2_as(fl, o, x, true) : gather_one_avx2_as(fl, o, x, false);
        y[o] = accumulate ? y[o] + s : s;
    }
}

/* The sum of a bitmap list with AVX-512, 64 input positions (one word) a step in four 16-lane
 * chunks: chunk c's 16 bits k pick the lanes; the next popcount(k) values are expand-loaded into
 * those lanes (bfloat16 widened by a shift), the input is read in order under the same mask
 * (lanes and positions past the end are never read: their bits are 0), one multiply-add into
 * chunk c's accumulator. The accumulators and lanes are then summed in a fixed order. Nothing is
 * gathered and no position is stored: the bitmap the file holds is the index. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 float gather_bits_avx512_as(const fipsc_factored_linear *fl, int o,
                                                                                            const float *x, bool half)
{
    const uint64_t *bits = fl->bits + (size_t)o * fl->words;
    const float *v32 = fl->val;
    const uint16_t *v16 = fl->val16;
    uint32_t p = fl->ptr[o];
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    /* the masks are loaded as 16-bit halves of the words (little-endian): cheaper than shifting
     * a 64-bit word through the mask registers, which cost a third of the speed on Zen 4 */
    const unsigned char *chunks = (const unsigned char *)bits;
    for (int w = 0; w < fl->words; w++) {
        const float *xw = x + 64 * w;
        FIPSC_PREFETCH_AHEAD(half ? (const void *)(v16 + p) : (const void *)(v32 + p), chunks + 8 * (size_t)w);
        for (int c = 0; c < 4; c++) {
            uint16_t k16;
            memcpy(&k16, chunks + 8 * (size_t)w + 2 * c, sizeof k16);
            const __mmask16 k = k16;
            const __m512i fresh = fipsc_fresh_zero512(); /* merge source: see x86_vectors.h */
            const __m512 v = half ? _mm512_castsi512_ps(_mm512_slli_epi32(
                                        _mm512_cvtepu16_epi32(_mm256_mask_expandloadu_epi16(_mm512_castsi512_si256(fresh), k, v16 + p)), 16))
                                  : _mm512_mask_expandloadu_ps(_mm512_castsi512_ps(fresh), k, v32 + p);
            acc[c] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(k, xw + 16 * c), acc[c]);
            p += (uint32_t)__builtin_popcount(k);
        }
    }
    return fipsc_sum16_fixed(acc[0], acc[1], acc[2], acc[3]);
}

/* gather_range with the AVX-512 sum for bitmap lists, the AVX2 level's otherwise. */
FIPSC_TARGET_AVX512 void fipsc_gather_range_avx512(const fipsc_factored_linear *fl, const float *x, float *y,
                                                    int o0, int o1, bool accumulate)
{
    if (fl->layout != FIPSC_VK_BITMAP) {
        fipsc_gather_range_avx2(fl, x, y, o0, o1, accumulate);
        return;
    }
    for (int o = o0; o < o1; o++) {
        float s = fl->val16 ? gather_bits_avx512_as(fl, o, x, true) : gather_bits_avx512_as(fl, o, x, false);
        y[o] = accumulate ? y[o] + s : s;
    }
}

/* The BF16 bitmap kernel's input order. A 32-bit half of a word selects 32 positions; the
 * expand-load puts the next values into those of 32 16-bit lanes, and unpacking the lanes with
 * zeros (low halves, then high halves of each 128-bit quarter) turns them into two vectors of 16
 * float32 values (a bfloat16 in the high half of a zero float is that float) without a separate
 * widening step: per 32 positions one expand-load, two unpacks and two multiply-adds, against
 * twice that in 16-lane steps (1.1 against 1.6 ms per r 3072 x f 8192 matrix, measured). The
 * unpacks take positions {0-3, 8-11, 16-19, 24-27} into the first vector and {4-7, 12-15, 20-23,
 * 28-31} into the second, so the input is stored in that order. */
FIPSC_TARGET_AVX512 float *fipsc_gather_bits16_input(const fipsc_factored_linear *fl, const float *x, int n_in)
{
    if (fipsc_first_nonfinite(x, (size_t)n_in) >= 0) return NULL;
    const size_t padded = (size_t)fl->words * 64;
    float *xp = aligned_alloc(64, padded * sizeof *xp);
    if (!xp) return NULL;
    for (size_t b = 0; b < padded / 32; b++)
        for (int j = 0; j < 32; j++) {
            const size_t at = 32 * b + 8 * (size_t)((j % 16) / 4) + (size_t)(j % 4) + (j >= 16 ? 4 : 0);
            xp[32 * b + (size_t)j] = at < (size_t)n_in ? x[at] : 0.0f;
        }
    return xp;
}

/* The sums of list a and, when b >= 0, of list b, word by word together (as the AVX-512 BF16
 * level's one-row kernel, ops/factored_bits16_row.c: one core reads two places of V at once, and
 * each list keeps its own accumulators and final sum, so its bits do not depend on a partner). */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 void bits16_lists(const fipsc_factored_linear *fl,
                                                                                  const float *xp, int a, int b,
                                                                                  float *sum_a, float *sum_b)
{
    const bool two = b >= 0;
    const __m512i zero = _mm512_setzero_si512();
    const unsigned char *bits_a = (const unsigned char *)(fl->bits + (size_t)a * fl->words);
    const unsigned char *bits_b = (const unsigned char *)(fl->bits + (size_t)(two ? b : a) * fl->words);
    const uint16_t *va = fl->val16 + fl->ptr[a], *vb = fl->val16 + fl->ptr[two ? b : a];
    __m512 acc_a[4], acc_b[4];
    for (int i = 0; i < 4; i++) acc_a[i] = acc_b[i] = _mm512_setzero_ps();
/* 32 positions (half h of the word) of one list: expand-load, unpack to float32, two multiply-adds */
#define HALF(acc, word, v, h, x0, x1)                                                                            \
    do {                                                                                                         \
        const uint32_t k_ = (uint32_t)((word) >> (32 * (h)));                                                    \
        const __m512i lanes_ = _mm512_mask_expandloadu_epi16(fipsc_fresh_zero512(), k_, v);                      \
        v += __builtin_popcount(k_);                                                                             \
        acc[2 * (h)] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, lanes_)), x0, acc[2 * (h)]); \
        acc[2 * (h) + 1] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, lanes_)), x1,         \
                                           acc[2 * (h) + 1]);                                                    \
    } while (0)
    for (int w = 0; w < fl->words; w++) {
        uint64_t word_a, word_b = 0;
        memcpy(&word_a, bits_a + 8 * (size_t)w, sizeof word_a);
        FIPSC_PREFETCH_AHEAD(va, bits_a + 8 * (size_t)w);
        if (two) {
            memcpy(&word_b, bits_b + 8 * (size_t)w, sizeof word_b);
            FIPSC_PREFETCH_AHEAD(vb, bits_b + 8 * (size_t)w);
        }
        for (int h = 0; h < 2; h++) {
            const float *xq = xp + 64 * (size_t)w + 32 * h;
            const __m512 x0 = _mm512_load_ps(xq), x1 = _mm512_load_ps(xq + 16);
            HALF(acc_a, word_a, va, h, x0, x1);
            if (two) HALF(acc_b, word_b, vb, h, x0, x1);
        }
    }
#undef HALF
    *sum_a = fipsc_sum16_fixed(acc_a[0], acc_a[1], acc_a[2], acc_a[3]);
    if (two) *sum_b = fipsc_sum16_fixed(acc_b[0], acc_b[1], acc_b[2], acc_b[3]);
}

FIPSC_TARGET_AVX512 void fipsc_gather_ranges_bits16_avx512(const fipsc_factored_linear *fl, const float *xp, float *y,
                                                           int a0, int a1, int b0, int b1, bool accumulate)
{
    for (int a = a0, b = b0; a < a1 || b < b1; a++, b++) {
        float sum[2] = {0, 0};
        const bool both = a < a1 && b < b1;
        const int o = a < a1 ? a : b; /* the list alone when the other range has ended */
        bits16_lists(fl, xp, o, both ? b : -1, &sum[0], &sum[1]);
        y[o] = accumulate ? y[o] + sum[0] : sum[0];
        if (both) y[b] = accumulate ? y[b] + sum[1] : sum[1];
    }
}

/* The vector levels' tile kernels: fused multiply-adds on whole tile rows, the entries of a
 * list taken in turn by several sets of accumulators (added at the end in a fixed order). One
 * set, as the portable kernel has, makes every entry wait for the previous one's addition; and a
 * tile of 32 rows (against 16) halves the per-entry work of reading its position and value. */
_Static_assert(TILE % 16 == 0, "the vector tile kernels hold a tile row in whole registers");
enum { YMM_PER_ROW = TILE / 8, ZMM_PER_ROW = TILE / 16 };

/* AVX2: two sets (16 registers in all: 2·4 accumulators, the rest for the operands).
 * a[e % 2][·] += value e · inT[pos[e]] for the n entries of (part of) a list; values from v32/v16
 * at the list's first entry. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 void tile_entries_avx2(
    const float *restrict inT, const float *v32, const uint16_t *v16, bool half, const uint16_t *pos, uint32_t n,
    __m256 a[2][YMM_PER_ROW])
{
#define STEP(set, e)                                                                                  \
    do {                                                                                              \
        const __m256 v_ = _mm256_set1_ps(half ? fipsc_bf16_to_f32(v16[e]) : v32[e]);                  \
        const float *row_ = inT + (size_t)pos[e] * TILE;                                              \
        for (int z_ = 0; z_ < YMM_PER_ROW; z_++)                                                      \
            a[set][z_] = _mm256_fmadd_ps(v_, _mm256_loadu_ps(row_ + 8 * z_), a[set][z_]);             \
    } while (0)
    uint32_t e = 0;
    for (; e + 2 <= n; e += 2) {
        STEP(0, e);
        STEP(1, e + 1);
    }
    for (; e < n; e++) STEP(0, e);
#undef STEP
}

/* A bitmap list's positions (bytes [0, bytes) of its bitmap) into pos, which holds exactly the
 * list's `count` entries: per byte its set bits' lanes (set_bits) plus the byte's first position,
 * 8 stored at once while 8 fit, the last few one by one (lists are decoded side by side). */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 void decode_bits_avx2(const unsigned char *bits, int bytes,
                                                                                    uint16_t *pos, uint32_t count)
{
    uint32_t n = 0;
    for (int b = 0; b < bytes; b++) {
        const unsigned k = bits[b];
        if (n + 8 <= count) {
            const __m128i lanes = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)set_bits[k]));
            _mm_storeu_si128((__m128i *)(void *)(pos + n), _mm_add_epi16(lanes, _mm_set1_epi16((short)(8 * b))));
        } else {
            for (int j = 0; j < __builtin_popcount(k); j++) pos[n + (uint32_t)j] = (uint16_t)(8 * b + set_bits[k][j]);
        }
        n += (uint32_t)__builtin_popcount(k);
    }
}

static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 void gather_tile_avx2_as(
    const fipsc_factored_linear *fl, int o, const float *restrict inT, float *restrict acc, bool half)
{
    __m256 a[2][YMM_PER_ROW];
    for (int set = 0; set < 2; set++)
        for (int z = 0; z < YMM_PER_ROW; z++) a[set][z] = _mm256_setzero_ps();
    const uint32_t p0 = fl->ptr[o];
    tile_entries_avx2(inT, half ? NULL : fl->val + p0, half ? fl->val16 + p0 : NULL, half, fl->idx16 + p0,
                      fl->ptr[o + 1] - p0, a);
    for (int z = 0; z < YMM_PER_ROW; z++) _mm256_storeu_ps(acc + 8 * z, _mm256_add_ps(a[0][z], a[1][z]));
}

FIPSC_TARGET_AVX2 void fipsc_gather_bits_positions_avx2(const fipsc_factored_linear *fl, int o0, int o1, uint16_t *pos)
{
    for (int o = o0; o < o1; o++)
        decode_bits_avx2((const unsigned char *)(fl->bits + (size_t)o * fl->words), 8 * fl->words, pos + fl->ptr[o],
                         fl->ptr[o + 1] - fl->ptr[o]);
}

/* Whether a layout is CSC/CSR lists with 16-bit positions (what the vector tile kernels read). */
static bool lists16(const fipsc_factored_linear *fl)
{
    return (fl->layout == FIPSC_VK_CSC || fl->layout == FIPSC_VK_CSR) && fl->idx16;
}

/* gather_tile for CSC/CSR lists with 16-bit positions with AVX2 (bitmap lists reach it decoded
 * into positions: fipsc_gather_bits_positions_avx2); the portable one otherwise. */
FIPSC_TARGET_AVX2 void fipsc_gather_tile_avx2(const fipsc_factored_linear *fl, int o, const float *restrict inT,
                                               float *restrict acc)
{
    if (!lists16(fl)) fipsc_gather_tile(fl, o, inT, acc);
    else if (fl->val16) gather_tile_avx2_as(fl, o, inT, acc, true);
    else gather_tile_avx2_as(fl, o, inT, acc, false);
}

/* a[e % 4][·] += value e · inT[pos[e]] for the n entries of (part of) a list, with fused
 * multiply-adds on whole tile rows; values from v32/v16 at the list's first entry. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 void tile_entries_avx512(
    const float *restrict inT, const float *v32, const uint16_t *v16, bool half, const uint16_t *pos, uint32_t n,
    __m512 a[4][ZMM_PER_ROW])
{
    uint32_t e = 0;
#define STEP(set, e)                                                                                  \
    do {                                                                                              \
        const __m512 v_ = _mm512_set1_ps(half ? fipsc_bf16_to_f32(v16[e]) : v32[e]);                  \
        const float *row_ = inT + (size_t)pos[e] * TILE;                                              \
        for (int z_ = 0; z_ < ZMM_PER_ROW; z_++)                                                      \
            a[set][z_] = _mm512_fmadd_ps(v_, _mm512_loadu_ps(row_ + 16 * z_), a[set][z_]);            \
    } while (0)
    for (; e + 4 <= n; e += 4) {
        STEP(0, e);
        STEP(1, e + 1);
        STEP(2, e + 2);
        STEP(3, e + 3);
    }
    for (; e < n; e++) STEP(0, e);
#undef STEP
}

/* Bitmap tile kernels decode a list's positions without branches, 32 bits at a time (a compress
 * of the lane numbers by the bits), for DECODE_WORDS words (1024 inputs) at a time: a loop per word
 * would mispredict its exit every ~16 entries. Decoding also prefetches the list's values and
 * bitmap ahead (FIPSC_PREFETCH_AHEAD, every 64 positions): the MLP's prefill went from 0.91-1.00x
 * to 0.96-1.02x of dense (medians over runs; bench_factored, BF16, n 512, BENCHMARKS.md).
 * Decoding each list once per call instead (as the AVX2 level does) and reading the positions
 * back for every tile was slower (0.86-0.90x): they are four times the bitmap's bytes. */
enum { DECODE_WORDS = 16 };

/* The positions of words [w0, w1) of the bitmap `bits` into pos (room for 64·DECODE_WORDS + 32),
 * returning how many; `values` is the value of the first of them, `value_bytes` its size. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 uint32_t decode_bits_avx512(
    const unsigned char *bits, int w0, int w1, const void *values, size_t value_bytes, uint16_t *pos)
{
    const __m512i lanes = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14,
                                           13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    uint32_t n = 0;
    for (int h = 2 * w0; h < 2 * w1; h++) {
        uint32_t k;
        memcpy(&k, bits + 4 * (size_t)h, sizeof k);
        if ((h & 1) == 0) FIPSC_PREFETCH_AHEAD((const char *)values + value_bytes * n, bits + 4 * (size_t)h);
        const __m512i at = _mm512_add_epi16(lanes, _mm512_set1_epi16((short)(32 * h)));
        _mm512_storeu_si512(pos + n, _mm512_maskz_compress_epi16(k, at));
        n += (uint32_t)__builtin_popcount(k);
    }
    return n;
}

/* gather_tile for 16-bit CSC/CSR positions and for bitmap lists with AVX-512: one register per
 * tile row, four accumulators in turn; bitmap positions decoded DECODE_WORDS words at a time. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 void gather_tile_avx512_as(
    const fipsc_factored_linear *fl, int o, const float *restrict inT, float *restrict acc, bool half)
{
    __m512 a[4][ZMM_PER_ROW];
    for (int set = 0; set < 4; set++)
        for (int z = 0; z < ZMM_PER_ROW; z++) a[set][z] = _mm512_setzero_ps();
    const uint32_t p0 = fl->ptr[o];
    const float *v32 = half ? NULL : fl->val + p0;
    const uint16_t *v16 = half ? fl->val16 + p0 : NULL;
    if (fl->layout != FIPSC_VK_BITMAP) {
        tile_entries_avx512(inT, v32, v16, half, fl->idx16 + p0, fl->ptr[o + 1] - p0, a);
    } else {
        uint16_t pos[DECODE_WORDS * 64 + 32];
        const unsigned char *bits = (const unsigned char *)(fl->bits + (size_t)o * fl->words);
        uint32_t done = 0;
        for (int w0 = 0; w0 < fl->words; w0 += DECODE_WORDS) {
            const int w1 = w0 + DECODE_WORDS < fl->words ? w0 + DECODE_WORDS : fl->words;
            const uint32_t n = half ? decode_bits_avx512(bits, w0, w1, v16 + done, sizeof *v16, pos)
                                    : decode_bits_avx512(bits, w0, w1, v32 + done, sizeof *v32, pos);
            tile_entries_avx512(inT, half ? NULL : v32 + done, half ? v16 + done : NULL, half, pos, n, a);
            done += n;
        }
    }
    for (int z = 0; z < ZMM_PER_ROW; z++)
        _mm512_storeu_ps(acc + 16 * z, _mm512_add_ps(_mm512_add_ps(a[0][z], a[1][z]), _mm512_add_ps(a[2][z], a[3][z])));
}

/* Two adjacent BF16 values as one 32-bit word (the first in the low half). */
static inline uint32_t load_u32(const uint16_t *p)
{
    uint32_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* The AVX-512 BF16 level's tile kernel for bitmap lists with BF16 values, on tiles of the input
 * rounded to bfloat16 (fipsc_tiles16_from_rows): a tile row is 32 bfloat16, one 64-byte load.
 * Entries go in pairs e, e+1: their two tile rows are interleaved 16 bits at a time (unpacklo/hi:
 * per 128-bit quarter q, lanes 4q..4q+3 from words 8q..8q+3, then from words 8q+4..8q+7) and
 * VDPBF16PS adds v_e·x_e[row] + v_(e+1)·x_(e+1)[row] to each row's float32 lane, the value pair
 * broadcast from the list's two adjacent BF16 values. The tiles store row 4q+i at word 8q+i and row
 * 16+4q+i at word 8q+4+i (i < 4), so the low unpack holds rows 0-15 in order and the high one
 * rows 16-31. A chunk's odd last entry pairs with itself at value 0. Per pair: two loads, two
 * unpacks, one broadcast of the value pair, two dot products, against four loads, two value
 * widenings and four multiply-adds on float32 tiles of twice the bytes. The 512-row V step of a
 * r 3072 x f 8192 matrix: 143 -> 87 ms expanding, 153 -> 96 ms contracting, on one Zen 4 core
 * (bench_factored --v-steps; the value pair as one 32-bit broadcast load, not two 16-bit loads
 * combined: 99 -> 87 ms). */
FIPSC_TARGET_AVX512_BF16 void fipsc_gather_tile_bits16_dot(const fipsc_factored_linear *fl, int o,
                                                           const uint16_t *restrict inT, float *restrict acc)
{
    __m512 a[4][2];
    for (int set = 0; set < 4; set++) a[set][0] = a[set][1] = _mm512_setzero_ps();
    const unsigned char *bits = (const unsigned char *)(fl->bits + (size_t)o * fl->words);
    const uint16_t *v = fl->val16 + fl->ptr[o];
    uint16_t pos[DECODE_WORDS * 64 + 32];
/* a[set] += value pair · the tile rows of entries e0 and e1 */
#define PAIR(set, e0, e1, pair)                                                                              \
    do {                                                                                                     \
        const __m512i r0_ = _mm512_load_si512((const void *)(inT + (size_t)pos[e0] * TILE));                 \
        const __m512i r1_ = _mm512_load_si512((const void *)(inT + (size_t)pos[e1] * TILE));                 \
        const __m512bh w_ = (__m512bh)_mm512_set1_epi32((int)(pair));                                         \
        a[set][0] = _mm512_dpbf16_ps(a[set][0], (__m512bh)_mm512_unpacklo_epi16(r0_, r1_), w_);              \
        a[set][1] = _mm512_dpbf16_ps(a[set][1], (__m512bh)_mm512_unpackhi_epi16(r0_, r1_), w_);              \
    } while (0)
#define VALUE_PAIR(e) load_u32(v + (e))
    for (int w0 = 0; w0 < fl->words; w0 += DECODE_WORDS) {
        const int w1 = w0 + DECODE_WORDS < fl->words ? w0 + DECODE_WORDS : fl->words;
        const uint32_t n = decode_bits_avx512(bits, w0, w1, v, sizeof *v, pos);
        uint32_t e = 0;
        for (; e + 8 <= n; e += 8) {
            PAIR(0, e, e + 1, VALUE_PAIR(e));
            PAIR(1, e + 2, e + 3, VALUE_PAIR(e + 2));
            PAIR(2, e + 4, e + 5, VALUE_PAIR(e + 4));
            PAIR(3, e + 6, e + 7, VALUE_PAIR(e + 6));
        }
        for (; e + 2 <= n; e += 2) PAIR(0, e, e + 1, VALUE_PAIR(e));
        if (e < n) PAIR(0, e, e, (uint32_t)v[e]);
        v += n;
    }
#undef VALUE_PAIR
#undef PAIR
    _mm512_storeu_ps(acc, _mm512_add_ps(_mm512_add_ps(a[0][0], a[1][0]), _mm512_add_ps(a[2][0], a[3][0])));
    _mm512_storeu_ps(acc + 16, _mm512_add_ps(_mm512_add_ps(a[0][1], a[1][1]), _mm512_add_ps(a[2][1], a[3][1])));
}

/* gather_tile with AVX-512 for 16-bit CSC/CSR positions and for bitmap lists whose 16-bit lane
 * numbers cannot overflow (at most 65536 inputs); the AVX2 level's otherwise. */
FIPSC_TARGET_AVX512 void fipsc_gather_tile_avx512(const fipsc_factored_linear *fl, int o, const float *restrict inT,
                                                   float *restrict acc)
{
    if (!lists16(fl) && !(fl->layout == FIPSC_VK_BITMAP && fl->words <= 65536 / 64)) fipsc_gather_tile_avx2(fl, o, inT, acc);
    else if (fl->val16) gather_tile_avx512_as(fl, o, inT, acc, true);
    else gather_tile_avx512_as(fl, o, inT, acc, false);
}
#endif
