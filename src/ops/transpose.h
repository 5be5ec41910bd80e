/* Matrix transposition: the one way fipsc changes a matrix's layout between [rows, cols] and
 * [cols, rows] (checkpoints that store linear weights [in, out]: TF.js, GPT-2's Conv1D; FiPS's
 * W_cat, which holds expanding matrices transposed). */
#ifndef FIPSC_OPS_TRANSPOSE_H
#define FIPSC_OPS_TRANSPOSE_H

#include <stdint.h>

/* dst[c·ld_dst + a] = src[a·ld_src + c] for a < rows, c < cols: the rows × cols block at src
 * (leading dimension ld_src) transposed into dst (leading dimension ld_dst). Runs in 64 × 64
 * tiles so that both sides stay in cache, on OpenMP threads for large blocks (an exact copy, the
 * same whatever the thread count). src and dst must not overlap. */
void fipsc_transpose(const float *src, int64_t ld_src, float *dst, int64_t ld_dst, int64_t rows, int64_t cols);

#endif
