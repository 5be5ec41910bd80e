/* Element types: sizes, names and float conversions (see src/core/tensor.h). */
#include "core/tensor.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/isa.h"
#if FIPSC_HAVE_AVX2_KERNELS
#include <immintrin.h>
#endif

static const struct {
    const char *name;
    size_t size;
} dtype_table[FIPSC_DTYPE_COUNT] = {
    [FIPSC_F32] = {"F32", 4},  [FIPSC_F16] = {"F16", 2}, [FIPSC_BF16] = {"BF16", 2},
    [FIPSC_I8] = {"I8", 1},    [FIPSC_U8] = {"U8", 1},   [FIPSC_I16] = {"I16", 2},
    [FIPSC_U16] = {"U16", 2},  [FIPSC_I32] = {"I32", 4}, [FIPSC_U32] = {"U32", 4},
    [FIPSC_I64] = {"I64", 8},
};

size_t fipsc_dtype_size(fipsc_dtype dt)
{
    return (unsigned)dt < FIPSC_DTYPE_COUNT ? dtype_table[dt].size : 0;
}

const char *fipsc_dtype_name(fipsc_dtype dt)
{
    return (unsigned)dt < FIPSC_DTYPE_COUNT ? dtype_table[dt].name : "?";
}

bool fipsc_dtype_parse(const char *name, fipsc_dtype *out)
{
    for (int i = 0; i < FIPSC_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (fipsc_dtype)i;
            return true;
        }
    }
    return false;
}

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* half: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
float fipsc_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* Inf, or NaN quietened as vcvtph2ps does (so every path gives the same bits) */
        return bits_to_f32(sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0u));
    if (exp == 0) {
        /* zero or subnormal: value = man * 2^-24 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t fipsc_f32_to_f16(float f)
{
    uint32_t u = f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* Inf or NaN (keep NaN quiet and non-zero) */
        return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504: Inf */
    if (abs < 0x38800000u) {
        /* result is subnormal (or zero) in half: round abs value / 2^-24 to nearest even */
        float v = bits_to_f32(abs) * 0x1p24f;
        float r = nearbyintf(v); /* default rounding mode: nearest even */
        return (uint16_t)(sign | (uint16_t)r);
    }
    /* normal: drop 13 mantissa bits with round-to-nearest-even; carries roll into the exponent */
    uint32_t rebased = abs - 0x38000000u; /* exponent bias 127 -> 15 */
    uint32_t lsb = (rebased >> 13) & 1u;
    rebased += 0xfffu + lsb;
    return (uint16_t)(sign | (rebased >> 13));
}


fipsc_status fipsc_convert_to_f32(fipsc_dtype dt, const void *src, size_t n, float *dst,
                                  fipsc_error *err)
{
    const unsigned char *p = src;
    switch (dt) {
    case FIPSC_F32:
        memcpy(dst, src, n * sizeof(float));
        return FIPSC_OK;
    case FIPSC_F16:
    case FIPSC_BF16:
        if ((uintptr_t)src % sizeof(uint16_t) == 0) {
            fipsc_convert16_to_f32(dt, src, n, dst);
        } else { /* unaligned bytes: through an aligned buffer, a block at a time */
            uint16_t block[1024];
            for (size_t i = 0; i < n; i += 1024) {
                const size_t k = n - i < 1024 ? n - i : 1024;
                memcpy(block, p + 2 * i, k * sizeof *block);
                fipsc_convert16_to_f32(dt, block, k, dst + i);
            }
        }
        return FIPSC_OK;
    default:
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "cannot convert dtype %s to float32",
                          fipsc_dtype_name(dt));
    }
}

int64_t fipsc_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

void fipsc_shape_format(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

int64_t fipsc_first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

int64_t fipsc_first_nonfinite16(fipsc_dtype dt, const uint16_t *x, size_t n)
{
    const uint16_t exp = dt == FIPSC_F16 ? 0x7c00u : 0x7f80u; /* F16: 5 exponent bits; BF16: 8 */
    for (size_t i = 0; i < n; i++)
        if ((x[i] & exp) == exp) return (int64_t)i;
    return -1;
}

/* 16-bit tensors are used in place from little-endian files. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fipsc maps F16/BF16 weights from little-endian files in place: it needs a little-endian host"
#endif

/* bfloat16 is the high half of a float32: a shift, which the compiler vectorises (with the
 * vector width of the function's target). */
static inline __attribute__((always_inline)) void bf16_to_f32(const uint16_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(dst + i, &u, sizeof u);
    }
}

#if FIPSC_HAVE_AVX2_KERNELS
/* The AVX2 level: 8 values a step for both types (vcvtph2ps is exact, like the scalar conversion). */
static FIPSC_TARGET_AVX2 void convert16_avx2(fipsc_dtype dt, const uint16_t *src, size_t n, float *dst)
{
    if (dt == FIPSC_BF16) {
        bf16_to_f32(src, n, dst);
        return;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    for (; i < n; i++) dst[i] = fipsc_f16_to_f32(src[i]);
}
#endif

void fipsc_convert16_to_f32(fipsc_dtype dt, const uint16_t *src, size_t n, float *dst)
{
#if FIPSC_HAVE_AVX2_KERNELS
    if (fipsc_isa_active() >= FIPSC_ISA_AVX2) {
        convert16_avx2(dt, src, n, dst);
        return;
    }
#endif
    if (dt == FIPSC_BF16) bf16_to_f32(src, n, dst);
    else
        for (size_t i = 0; i < n; i++) dst[i] = fipsc_f16_to_f32(src[i]);
}

int64_t fipsc_round_to_dtype(fipsc_dtype dt, float *x, size_t n)
{
    if (dt != FIPSC_F16 && dt != FIPSC_BF16) return -1;
    int64_t overflow = -1;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = dt == FIPSC_F16 ? fipsc_f16_to_f32(fipsc_f32_to_f16(v)) : fipsc_bf16_to_f32(fipsc_f32_to_bf16(v));
        if (overflow < 0 && isinf(x[i]) && !isinf(v)) overflow = (int64_t)i;
    }
    return overflow;
}
