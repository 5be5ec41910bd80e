/* The sparse gather of the factored linears' V step, one kernel set per instruction set level
 * (src/core/isa.h), chosen per call by factored_kernels.c:
 *   range: y[o] (+)= Σ over output o's list of value · x[position], for outputs [o0, o1) of one
 *          row (decoding);
 *   tile:  acc[0..TILE) = the same sum over a tile of TILE rows of the transposed input
 *          inT[position][TILE] (batches).
 * Portable kernels (factored_gather.c) run every layout; the AVX2 and AVX-512 ones
 * (factored_gather_x86.c) take the layouts they are written for and hand the rest to the portable
 * ones. Every kernel sums each output in a fixed order, so results do not depend on the thread
 * count; levels differ in the last bits (several partial sums, fused multiply-adds). */
#ifndef FIPSC_FACTORED_GATHER_H
#define FIPSC_FACTORED_GATHER_H

#include <stdbool.h>

#include "core/isa.h"
#include "ops/factored.h"

typedef void fipsc_gather_range_fn(const fipsc_factored_linear *fl, const float *x, float *y, int o0, int o1,
                                   bool accumulate);
typedef void fipsc_gather_tile_fn(const fipsc_factored_linear *fl, int o, const float *restrict inT,
                                  float *restrict acc);

/* Portable: every layout. */
fipsc_gather_range_fn fipsc_gather_range;
fipsc_gather_tile_fn fipsc_gather_tile;

#if FIPSC_HAVE_AVX2_KERNELS
/* AVX2: 16-bit CSC/CSR positions (range and tile), bitmap lists (range) and n:m with n a power
 * of two (range).
 * AVX-512: bitmap lists (range; tile up to 65536 inputs) and 16-bit CSC/CSR positions (tile).
 * Each hands what it does not take to the level below, so a caller picks by level alone. */
FIPSC_TARGET_AVX2 fipsc_gather_range_fn fipsc_gather_range_avx2;
FIPSC_TARGET_AVX2 fipsc_gather_tile_fn fipsc_gather_tile_avx2;
FIPSC_TARGET_AVX512 fipsc_gather_range_fn fipsc_gather_range_avx512;
FIPSC_TARGET_AVX512 fipsc_gather_tile_fn fipsc_gather_tile_avx512;

/* AVX2, batches of bitmap lists of at most 65536 inputs: the positions of lists [o0, o1), each at
 * pos + fl->ptr[o] in value order (pos holds nnz), decoded a byte of the bitmap at a time
 * by a table: the batch driver decodes them once per call and runs the 16-bit CSC/CSR tile kernel
 * on them, where decoding inside the tile kernel would repeat it for every tile of rows. */
FIPSC_TARGET_AVX2 void fipsc_gather_bits_positions_avx2(const fipsc_factored_linear *fl, int o0, int o1,
                                                        uint16_t *pos);

/* AVX2, one row, bitmap lists with BF16 values: 8 input positions a step, the values placed and
 * widened by one shuffle (ops/factored_bits16_avx2.c), on the input copied once per call by
 * fipsc_gather_bits16_avx2_input (malloc'ed, 32-byte aligned, padded with zeros to whole words).
 * That kernel multiplies the positions a list does not keep by zero, so the copy is NULL when x
 * holds a non-finite value, or when out of memory: the caller then uses fipsc_gather_range_avx2,
 * whose result it is otherwise. */
FIPSC_TARGET_AVX2 float *fipsc_gather_bits16_avx2_input(const fipsc_factored_linear *fl, const float *x, int n_in);
FIPSC_TARGET_AVX2 fipsc_gather_range_fn fipsc_gather_range_bits16_avx2;

/* AVX-512, one row, bitmap lists with BF16 values: 32 input positions a step, with the input
 * rearranged once per call by fipsc_gather_bits16_input (x [n_in] -> xp, malloc'ed, 64-byte
 * aligned, padded with zeros to whole words). That kernel multiplies the positions a list does
 * not keep by zero, so fipsc_gather_bits16_input returns NULL when x holds a non-finite value (0 ·
 * inf would make a NaN the other kernels never compute), or when out of memory: the caller then
 * uses fipsc_gather_range_avx512. */
FIPSC_TARGET_AVX512 float *fipsc_gather_bits16_input(const fipsc_factored_linear *fl, const float *x, int n_in);
/* fipsc_gather_ranges_bits16_avx512 sums the outputs [a0, a1) and [b0, b1) (either may be empty),
 * list a0 + i together with list b0 + i, word by word, as fipsc_gather_ranges_bits16_dot does. */
FIPSC_TARGET_AVX512 void fipsc_gather_ranges_bits16_avx512(const fipsc_factored_linear *fl, const float *xp, float *y,
                                                           int a0, int a1, int b0, int b1, bool accumulate);

/* AVX-512 BF16, one row, bitmap lists with BF16 values: the same sums with the input rounded to
 * bfloat16 (round to nearest even), which the dot-product instruction takes: each product is then
 * exact and summed in float32, so an output differs from the AVX-512 level's by at most
 * 2^-9 · Σ|value · x| (the input's rounding) plus float32 summation, ~0.1 % of a typical output
 * (tests/test_bits16_dot.c checks that bound; docs/ALGORITHM.md §9 says what it costs a model).
 * fipsc_gather_bits16_dot_input returns the input (malloc'ed, 64-byte aligned, padded with zeros
 * to whole words) or NULL when a value is not finite or rounds to infinity, or when out of memory:
 * the caller then uses fipsc_gather_range_avx512. */
FIPSC_TARGET_AVX512_BF16 uint16_t *fipsc_gather_bits16_dot_input(const fipsc_factored_linear *fl, const float *x,
                                                                  int n_in);
/* fipsc_gather_ranges_bits16_dot sums the outputs [a0, a1) and [b0, b1) (either may be empty),
 * list a0 + i together with list b0 + i, word by word (ops/factored_bits16_row.c). */
FIPSC_TARGET_AVX512_BF16 void fipsc_gather_ranges_bits16_dot(const fipsc_factored_linear *fl, const uint16_t *xb,
                                                             float *y, int a0, int a1, int b0, int b1,
                                                             bool accumulate);

/* AVX-512 BF16, batches through bitmap lists (at most 65536 inputs) with BF16 values: acc[0..TILE)
 * = the tile kernel's sums on the tiles of the input rounded to bfloat16 (fipsc_tiles16_from_rows,
 * ops/factored_tiles.h), pairs of entries per VDPBF16PS; the same bound against the AVX-512 level
 * as the one-row kernel above. */
FIPSC_TARGET_AVX512_BF16 void fipsc_gather_tile_bits16_dot(const fipsc_factored_linear *fl, int o,
                                                           const uint16_t *restrict inT, float *restrict acc);

#endif

/* Value p of a list: float32, or bfloat16 widened exactly (half: fl->val16 holds the values).
 * `half` is a constant at every use, so each kernel is compiled once per value type. */
#define FIPSC_GATHER_VALUE(p) (half ? fipsc_bf16_to_f32(v16[p]) : v32[p])

/* Declares, for column o of an n:m layout: n slots in each of its r/m runs of m rows, their
 * in-run offsets off[] and values v32[] or v16[] (indexed from the column's first slot). */
#define FIPSC_GATHER_NM_LIST(fl, o, half)                                            \
    const int n = (fl)->group->nm_n, m = (fl)->group->nm_m, runs = (fl)->r / m;      \
    const int64_t base = (int64_t)(o) * runs * n;                                    \
    const uint8_t *off = (fl)->nm_idx + base;                                        \
    const float *v32 = (half) ? NULL : (fl)->val + base;                             \
    const uint16_t *v16 = (half) ? (fl)->val16 + base : NULL

#endif
