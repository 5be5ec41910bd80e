/* ggml element types and llama.cpp's Q8_0 / Q4_0 block quantizers (see formats/ggml_blocks.h). */
#include "formats/ggml_blocks.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/tensor.h"

bool fipsc_ggml_type_known(uint32_t t)
{
    return t == FIPSC_GGML_F32 || t == FIPSC_GGML_F16 || t == FIPSC_GGML_BF16 || t == FIPSC_GGML_Q8_0 ||
           t == FIPSC_GGML_Q4_0;
}

const char *fipsc_ggml_type_name(fipsc_ggml_type t)
{
    switch (t) {
    case FIPSC_GGML_F32: return "F32";
    case FIPSC_GGML_F16: return "F16";
    case FIPSC_GGML_BF16: return "BF16";
    case FIPSC_GGML_Q8_0: return "Q8_0";
    case FIPSC_GGML_Q4_0: return "Q4_0";
    }
    return "?";
}

bool fipsc_ggml_type_parse(const char *s, fipsc_ggml_type *out)
{
    static const fipsc_ggml_type all[] = {FIPSC_GGML_F32, FIPSC_GGML_F16, FIPSC_GGML_BF16, FIPSC_GGML_Q8_0,
                                          FIPSC_GGML_Q4_0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(s, fipsc_ggml_type_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

int fipsc_ggml_block_values(fipsc_ggml_type t)
{
    return t == FIPSC_GGML_Q8_0 || t == FIPSC_GGML_Q4_0 ? FIPSC_GGML_BLOCK : 1;
}

size_t fipsc_ggml_block_bytes(fipsc_ggml_type t)
{
    switch (t) {
    case FIPSC_GGML_F32: return 4;
    case FIPSC_GGML_F16:
    case FIPSC_GGML_BF16: return 2;
    case FIPSC_GGML_Q8_0: return 2 + FIPSC_GGML_BLOCK;     /* half d, int8 q[32] */
    case FIPSC_GGML_Q4_0: return 2 + FIPSC_GGML_BLOCK / 2; /* half d, nibbles qs[16] */
    }
    return 0;
}

bool fipsc_ggml_type_fits(fipsc_ggml_type t, int64_t n)
{
    return n >= 0 && n % fipsc_ggml_block_values(t) == 0;
}

static void put_half(unsigned char *p, uint16_t h)
{
    p[0] = (unsigned char)(h & 0xff);
    p[1] = (unsigned char)(h >> 8);
}

static uint16_t get_half(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* quantize_row_q8_0_ref */
static void quantize_q8_0(const float *x, unsigned char *b)
{
    float amax = 0.0f;
    for (int j = 0; j < FIPSC_GGML_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_half(b, fipsc_f32_to_f16(d));
    for (int j = 0; j < FIPSC_GGML_BLOCK; j++) b[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
}

/* quantize_row_q4_0_ref */
static void quantize_q4_0(const float *x, unsigned char *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < FIPSC_GGML_BLOCK; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_half(b, fipsc_f32_to_f16(d));
    for (int j = 0; j < FIPSC_GGML_BLOCK / 2; j++) {
        const float x0 = x[j] * id, x1 = x[FIPSC_GGML_BLOCK / 2 + j] * id;
        int q0 = (int8_t)(x0 + 8.5f), q1 = (int8_t)(x1 + 8.5f);
        q0 = q0 < 15 ? q0 : 15;
        q1 = q1 < 15 ? q1 : 15;
        b[2 + j] = (unsigned char)(q0 | (q1 << 4));
    }
}

void fipsc_ggml_quantize_row(fipsc_ggml_type t, const float *x, int64_t n, void *dst)
{
    unsigned char *p = dst;
    switch (t) {
    case FIPSC_GGML_F32: memcpy(p, x, (size_t)n * sizeof(float)); return;
    case FIPSC_GGML_F16:
        for (int64_t i = 0; i < n; i++) put_half(p + 2 * i, fipsc_f32_to_f16(x[i]));
        return;
    case FIPSC_GGML_BF16:
        for (int64_t i = 0; i < n; i++) put_half(p + 2 * i, fipsc_f32_to_bf16(x[i]));
        return;
    case FIPSC_GGML_Q8_0:
        for (int64_t i = 0; i < n / FIPSC_GGML_BLOCK; i++)
            quantize_q8_0(x + i * FIPSC_GGML_BLOCK, p + i * fipsc_ggml_block_bytes(t));
        return;
    case FIPSC_GGML_Q4_0:
        for (int64_t i = 0; i < n / FIPSC_GGML_BLOCK; i++)
            quantize_q4_0(x + i * FIPSC_GGML_BLOCK, p + i * fipsc_ggml_block_bytes(t));
        return;
    }
}

void fipsc_ggml_dequantize_row(fipsc_ggml_type t, const void *src, int64_t n, float *y)
{
    const unsigned char *p = src;
    const size_t bb = fipsc_ggml_block_bytes(t);
    switch (t) {
    case FIPSC_GGML_F32: memcpy(y, p, (size_t)n * sizeof(float)); return;
    case FIPSC_GGML_F16:
        for (int64_t i = 0; i < n; i++) y[i] = fipsc_f16_to_f32(get_half(p + 2 * i));
        return;
    case FIPSC_GGML_BF16:
        for (int64_t i = 0; i < n; i++) y[i] = fipsc_bf16_to_f32(get_half(p + 2 * i));
        return;
    case FIPSC_GGML_Q8_0:
        for (int64_t i = 0; i < n / FIPSC_GGML_BLOCK; i++) {
            const unsigned char *b = p + i * bb;
            const float d = fipsc_f16_to_f32(get_half(b));
            for (int j = 0; j < FIPSC_GGML_BLOCK; j++) y[i * FIPSC_GGML_BLOCK + j] = d * (float)(int8_t)b[2 + j];
        }
        return;
    case FIPSC_GGML_Q4_0:
        for (int64_t i = 0; i < n / FIPSC_GGML_BLOCK; i++) {
            const unsigned char *b = p + i * bb;
            const float d = fipsc_f16_to_f32(get_half(b));
            float *yb = y + i * FIPSC_GGML_BLOCK;
            for (int j = 0; j < FIPSC_GGML_BLOCK / 2; j++) {
                yb[j] = d * (float)((b[2 + j] & 0x0f) - 8);
                yb[FIPSC_GGML_BLOCK / 2 + j] = d * (float)((b[2 + j] >> 4) - 8);
            }
        }
        return;
    }
}
