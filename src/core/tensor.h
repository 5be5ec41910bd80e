/* Element types and named tensors.
 *
 * Inside fipsc every weight the runtime or the compressor touches is float32, row-major, with
 * Hugging Face orientation: a linear layer's weight is [out, in]. Other element types exist only
 * at the file boundary (safetensors F16/BF16 weights, integer index arrays of the compressed
 * format) and are converted when read. */
#ifndef FIPSC_TENSOR_H
#define FIPSC_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum fipsc_dtype {
    FIPSC_F32 = 0,
    FIPSC_F16,
    FIPSC_BF16,
    FIPSC_I8,
    FIPSC_U8,
    FIPSC_I16,
    FIPSC_U16,
    FIPSC_I32,
    FIPSC_U32,
    FIPSC_I64,
    FIPSC_DTYPE_COUNT
} fipsc_dtype;

#define FIPSC_MAX_DIMS 8

/* Bytes per element. */
size_t fipsc_dtype_size(fipsc_dtype dt);
/* The safetensors spelling ("F32", "BF16", ...). */
const char *fipsc_dtype_name(fipsc_dtype dt);
/* Whether dt is one of the floating dtypes fipsc reads and stores values in: F32, F16, BF16. */
static inline bool fipsc_dtype_is_float(fipsc_dtype dt)
{
    return dt == FIPSC_F32 || dt == FIPSC_F16 || dt == FIPSC_BF16;
}

/* Parses a safetensors dtype string; false if unknown. */
bool fipsc_dtype_parse(const char *name, fipsc_dtype *out);

/* IEEE half and bfloat16 <-> float32. Conversion to the narrow types rounds to nearest even. */
float fipsc_f16_to_f32(uint16_t h);
uint16_t fipsc_f32_to_f16(float f);
/* bfloat16 is float32's upper half: exact, and inline because the sparse kernels read their
 * values through it one at a time (and round their inputs through the other, a loop the compiler
 * vectorises: as a call per value it cost the one-row BF16 kernel ~15 % of its time). */
static inline float fipsc_bf16_to_f32(uint16_t b)
{
    union { uint32_t u; float f; } v = {.u = (uint32_t)b << 16};
    return v.f;
}
static inline uint16_t fipsc_f32_to_bf16(float f)
{
    union { float f; uint32_t u; } v = {.f = f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

/* Rounds n float32 values in place to the nearest value of dt (F16 or BF16: to nearest even, as
 * storing them in dt would; F32: unchanged). Returns the index of the first value that rounds
 * to ±Inf (beyond what dt holds: F16 above 65504), or -1. */
int64_t fipsc_round_to_dtype(fipsc_dtype dt, float *x, size_t n);

/* Converts n elements of a floating dtype (F32/F16/BF16, little-endian bytes) to float32. */
fipsc_status fipsc_convert_to_f32(fipsc_dtype dt, const void *src, size_t n, float *dst,
                                  fipsc_error *err);

/* n 16-bit floats (F16 or BF16, host order) to float32, exactly (every F16/BF16 value is a
 * float32). The kernels' on-the-fly conversion: vectorised where the CPU allows. */
void fipsc_convert16_to_f32(fipsc_dtype dt, const uint16_t *src, size_t n, float *dst);

/* Product of the dimensions (1 for a scalar, ndim == 0). */
int64_t fipsc_shape_numel(int ndim, const int64_t *shape);

/* Writes "[3, 4, 5]" into buf. */
void fipsc_shape_format(int ndim, const int64_t *shape, char *buf, size_t cap);

/* Index of the first non-finite value in x[0..n), or -1 when all are finite. */
int64_t fipsc_first_nonfinite(const float *x, size_t n);
/* The same for n 16-bit floats of dtype dt (F16 or BF16): all-ones exponent is Inf or NaN. */
int64_t fipsc_first_nonfinite16(fipsc_dtype dt, const uint16_t *x, size_t n);

#endif
