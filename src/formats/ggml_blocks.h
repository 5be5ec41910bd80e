/* ggml's tensor element types that fipsc reads and writes in GGUF files, and the block
 * quantizers of llama.cpp's Q8_0 and Q4_0 (ggml/src/ggml-quants.c, quantize_row_*_ref),
 * reproduced bit for bit so that a file fipsc writes holds exactly the bytes llama.cpp's own
 * quantizer would write for the same float32 weights.
 *
 *   Q8_0: blocks of 32 values x[0..32): d = max|x| / 127 (stored as IEEE half), q_j = round(x_j / d)
 *         as int8 (roundf: halves away from zero). 34 bytes per block: d, then q[32].
 *         Value j reads back as d·q_j.
 *   Q4_0: blocks of 32: m = the x_j of largest magnitude (the first one on ties), d = m / −8
 *         (half), q_j = min(15, (int8)(x_j / d + 8.5)) in 0..15, stored as nibbles: byte j holds
 *         q_j in its low and q_{j+16} in its high nibble. 18 bytes per block: d, then qs[16].
 *         Value j reads back as d·(q_j − 8).
 * The division is a multiplication by id = 1/d (0 when d = 0), as in llama.cpp; fipsc builds
 * without contracted multiply-adds, so x·id + 8.5 rounds twice as there. */
#ifndef FIPSC_FORMATS_GGML_BLOCKS_H
#define FIPSC_FORMATS_GGML_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ggml_type numbers of the GGUF format. */
typedef enum fipsc_ggml_type {
    FIPSC_GGML_F32 = 0,
    FIPSC_GGML_F16 = 1,
    FIPSC_GGML_Q4_0 = 2,
    FIPSC_GGML_Q8_0 = 8,
    FIPSC_GGML_BF16 = 30,
} fipsc_ggml_type;

#define FIPSC_GGML_BLOCK 32 /* values per Q8_0 / Q4_0 block */

/* Whether t is one of the types above. */
bool fipsc_ggml_type_known(uint32_t t);
/* "F32", "F16", "BF16", "Q8_0", "Q4_0" ("?" for others). */
const char *fipsc_ggml_type_name(fipsc_ggml_type t);
/* Parses "f32", "f16", "bf16", "q8_0", "q4_0" (any case); false if unknown. */
bool fipsc_ggml_type_parse(const char *s, fipsc_ggml_type *out);
/* Values per block (1 for the float types) and bytes per block. */
int fipsc_ggml_block_values(fipsc_ggml_type t);
size_t fipsc_ggml_block_bytes(fipsc_ggml_type t);
/* Whether a row of n values can be stored as t (n a multiple of the block). */
bool fipsc_ggml_type_fits(fipsc_ggml_type t, int64_t n);

/* One row of n values (fipsc_ggml_type_fits) in t's bytes, and back. */
void fipsc_ggml_quantize_row(fipsc_ggml_type t, const float *x, int64_t n, void *dst);
void fipsc_ggml_dequantize_row(fipsc_ggml_type t, const void *src, int64_t n, float *y);

#endif
