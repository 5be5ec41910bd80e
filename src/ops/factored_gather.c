/* The portable sparse gather kernels (see src/ops/factored_gather.h): every layout.
 *
 * One row: each output is a short dot product with four partial sums (the latency of the float
 * adds, not memory, bounds a single sum). A tile: one stored entry updates a whole tile row of
 * accumulators with vector instructions (GCC/Clang vector extensions), in list order. */
#include <string.h>

#include "ops/factored_gather.h"

enum { TILE = FIPSC_FACTORED_TILE };
#define VALUE FIPSC_GATHER_VALUE

/* Σ over output o's list of value · x[position], four partial sums combined in a fixed order. */
static inline __attribute__((always_inline)) float gather_one_as(const fipsc_factored_linear *fl, int o,
                                                                 const float *x, bool half)
{
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    if (fl->layout == FIPSC_VK_NM) {
        /* four runs at a time, one partial sum each */
        FIPSC_GATHER_NM_LIST(fl, o, half);
        int q = 0;
        for (; q + 4 <= runs; q += 4) {
            const int p = q * n;
            const float *x0 = x + q * m, *x1 = x0 + m, *x2 = x1 + m, *x3 = x2 + m;
            for (int s = 0; s < n; s++) {
                s0 += VALUE(p + s) * x0[off[p + s]];
                s1 += VALUE(p + n + s) * x1[off[p + n + s]];
                s2 += VALUE(p + 2 * n + s) * x2[off[p + 2 * n + s]];
                s3 += VALUE(p + 3 * n + s) * x3[off[p + 3 * n + s]];
            }
        }
        for (; q < runs; q++)
            for (int s = 0; s < n; s++) s0 += VALUE(q * n + s) * x[q * m + off[q * n + s]];
        return (s0 + s1) + (s2 + s3);
    }
    if (fl->layout == FIPSC_VK_BITMAP) {
        /* the set bits in order, one word at a time; the partial sums take the entries in turn */
        const float *v32 = fl->val;
        const uint16_t *v16 = fl->val16;
        const uint64_t *bits = fl->bits + (size_t)o * fl->words;
        uint32_t p = fl->ptr[o];
        float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int w = 0; w < fl->words; w++)
            for (uint64_t b = bits[w]; b; b &= b - 1, p++) sum[p & 3] += VALUE(p) * x[64 * w + __builtin_ctzll(b)];
        return (sum[0] + sum[1]) + (sum[2] + sum[3]);
    }
    const float *v32 = fl->val;
    const uint16_t *v16 = fl->val16;
    uint32_t p = fl->ptr[o];
    const uint32_t hi = fl->ptr[o + 1];
#define LISTS(idx)                                                   \
    do {                                                             \
        for (; p + 4 <= hi; p += 4) {                                \
            s0 += VALUE(p) * x[idx[p]];                              \
            s1 += VALUE(p + 1) * x[idx[p + 1]];                      \
            s2 += VALUE(p + 2) * x[idx[p + 2]];                      \
            s3 += VALUE(p + 3) * x[idx[p + 3]];                      \
        }                                                            \
        for (; p < hi; p++) s0 += VALUE(p) * x[idx[p]];              \
    } while (0)
    if (fl->idx16) LISTS(fl->idx16);
    else LISTS(fl->idx32);
#undef LISTS
    return (s0 + s1) + (s2 + s3);
}

/* y[o] (+)= the sum of output o's list, for o in [o0, o1): the portable kernel. */
void fipsc_gather_range(const fipsc_factored_linear *fl, const float *x, float *y, int o0, int o1, bool accumulate)
{
    for (int o = o0; o < o1; o++) {
        float s = fl->val16 ? gather_one_as(fl, o, x, true) : gather_one_as(fl, o, x, false);
        y[o] = accumulate ? y[o] + s : s;
    }
}

/* Eight floats as one value: GCC/Clang vector extensions, so the tile accumulators stay in
 * registers (AVX: one register each; without AVX the compiler splits them). vf8_in reads eight
 * floats at any 4-byte alignment (may_alias: it reads memory written as float). */
typedef float vf8 __attribute__((vector_size(32)));
typedef float vf8_in __attribute__((vector_size(32), aligned(4), may_alias));
_Static_assert(TILE % 8 == 0, "a tile is a whole number of vf8");

/* acc[0..TILE) = Σ over output o's list of value · inT[position], in list order: one vector
 * multiply and add per entry and tile row segment (the vector levels below use fused
 * multiply-adds and several accumulators instead). */
static inline __attribute__((always_inline)) void gather_tile_as(const fipsc_factored_linear *fl, int o,
                                                                 const float *restrict inT, float *restrict acc,
                                                                 bool half)
{
    vf8 a[TILE / 8] = {{0}};
#define ACCUMULATE(value, position)                                      \
    do {                                                                 \
        const float v_ = (value), *s_ = inT + (size_t)(position) * TILE; \
        for (int u_ = 0; u_ < TILE / 8; u_++) a[u_] += v_ * *(const vf8_in *)(s_ + 8 * u_); \
    } while (0)
    if (fl->layout == FIPSC_VK_NM) {
        FIPSC_GATHER_NM_LIST(fl, o, half);
        for (int q = 0, p = 0; q < runs; q++)
            for (int s = 0; s < n; s++, p++) ACCUMULATE(VALUE(p), q * m + off[p]);
    } else if (fl->layout == FIPSC_VK_BITMAP) {
        const float *v32 = fl->val;
        const uint16_t *v16 = fl->val16;
        const uint64_t *bits = fl->bits + (size_t)o * fl->words;
        uint32_t p = fl->ptr[o];
        for (int w = 0; w < fl->words; w++)
            for (uint64_t b = bits[w]; b; b &= b - 1, p++) ACCUMULATE(VALUE(p), 64 * w + __builtin_ctzll(b));
    } else {
        const float *v32 = fl->val;
        const uint16_t *v16 = fl->val16;
        if (fl->idx16) {
            const uint16_t *idx = fl->idx16;
            for (uint32_t p = fl->ptr[o], hi = fl->ptr[o + 1]; p < hi; p++) ACCUMULATE(VALUE(p), idx[p]);
        } else {
            const uint32_t *idx = fl->idx32;
            for (uint32_t p = fl->ptr[o], hi = fl->ptr[o + 1]; p < hi; p++) ACCUMULATE(VALUE(p), idx[p]);
        }
    }
#undef ACCUMULATE
    memcpy(acc, a, sizeof a);
}

void fipsc_gather_tile(const fipsc_factored_linear *fl, int o, const float *restrict inT, float *restrict acc)
{
    if (fl->val16) gather_tile_as(fl, o, inT, acc, true);
    else gather_tile_as(fl, o, inT, acc, false);
}

