/* Thread-count-independent GEMM and GEMV (see src/ops/gemm.h). */
#include "ops/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "core/isa.h"
#include "core/tensor.h"
#include "core/threads.h"

/* Work (multiply-adds) below which a call stays on the calling thread. */
#define PARALLEL_WORK (1LL << 20)
/* Rows per GEMV chunk: fixed, so a row is always computed by the same code path. */
enum { GEMV_CHUNK = 64 };

int fipsc_gemm_panel_width(int n)
{
    /* About 512 columns per panel (wider panels amortise re-packing A, which every panel does
     * once), but at least 4 panels from 1024 columns up so that two to four threads have work.
     * Multiples of 16 match the sgemm kernels' register blocking. */
    if (n <= 256) return n;
    int panels = (n + 511) / 512;
    if (n >= 1024 && panels < 4) panels = 4;
    else if (panels < 2) panels = 2;
    int w = (n + panels - 1) / panels;
    return (w + 15) / 16 * 16;
}

/* One weight as float32: a float32 one, or a 16-bit one (F16, BF16) widened exactly. */
static inline __attribute__((always_inline)) float load1(const void *b, size_t at, int dtype)
{
    if (dtype == FIPSC_F32) return ((const float *)b)[at];
    const uint16_t h = ((const uint16_t *)b)[at];
    return dtype == FIPSC_F16 ? fipsc_f16_to_f32(h) : fipsc_bf16_to_f32(h);
}

#if FIPSC_HAVE_AVX2_KERNELS
#include "ops/x86_vectors.h"

/* Rows no longer than this take the 8-row AVX2 kernel below. */
enum { SHORT_ROW = 512 };

/* Eight rows at a time for short rows (a small model's matrices): eight vector accumulators,
 * then one transposing reduction that leaves the eight row sums in one vector. For short rows the
 * per-row horizontal sums of the generic kernel cost as much as the multiply-adds; this halves a
 * 64-wide product's time. Columns past the last multiple of 8 are added per row afterwards. */
static FIPSC_TARGET_AVX2 int gemv_rows8(int rows, int k, const float *w, int ldw, const float *x, float beta, float *y)
{
    const int k8 = k & ~7;
    int i = 0;
    for (; i + 8 <= rows; i += 8) {
        const float *wr = w + (size_t)i * ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int j = 0; j < k8; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + j), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + ldw + j), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + 2 * (size_t)ldw + j), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + 3 * (size_t)ldw + j), xv, a3);
            a4 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + 4 * (size_t)ldw + j), xv, a4);
            a5 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + 5 * (size_t)ldw + j), xv, a5);
            a6 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + 6 * (size_t)ldw + j), xv, a6);
            a7 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + 7 * (size_t)ldw + j), xv, a7);
        }
        /* hadd pairs rows within 128-bit halves; the last step adds the two halves. */
        __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
        __m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                                   _mm256_permute2f128_ps(s0123, s4567, 0x31));
        float out[8];
        _mm256_storeu_ps(out, sum);
        for (int r = 0; r < 8; r++) {
            const float *row = wr + (size_t)r * ldw;
            for (int j = k8; j < k; j++) out[r] += row[j] * x[j];
            y[i + r] = beta == 0.0f ? out[r] : out[r] + beta * y[i + r];
        }
    }
    return i;
}

/* Rows of the weight (vecmat: of B) that one pass of the long-row AVX2 kernels reads side by side:
 * eight rather than four took a one-row BF16 product from ~14 to ~17.5 GB/s on one Zen 4 core
 * ([2048, 3072] matrices from memory; more streams in flight), with the same arithmetic. */
enum { GEMV_PASS = 8 };

/* vecmat (below) reads a slice of each row of B, GEMV_PASS rows a pass: on two threads each
 * thread's slice of a [2048, 2752] BF16 basis is 2.75 KB of every 5.5 KB row, short runs the
 * hardware prefetchers pick up late (x·U read it at ~20 GB/s, U·z's whole rows ~30). Asking for
 * the rows VECMAT_AHEAD passes ahead, once per 64-byte line of the slice (VECMAT_PREFETCH: row
 * `row`, column j, `size`-byte elements), made x·U as fast as U·z (bench_factored --v-steps,
 * BENCHMARKS.md); 1, 2, 8 and 16 passes ahead did no better. No arithmetic changes. */
enum { VECMAT_AHEAD = 4 };
#define VECMAT_PREFETCH(b, row, ldb, j, size) \
    _mm_prefetch((const char *)(b) + ((size_t)(row) * (ldb) + (j)) * (size), _MM_HINT_T0)

/* Rows longer than SHORT_ROW at the AVX2 level, for float32 weights (dtype FIPSC_F32) or 16-bit
 * ones widened in registers (BF16: a shift; F16: vcvtph2ps; both exact): per row two 8-lane
 * accumulators over 16 columns a step (GEMV_PASS rows share each load of x, so independent
 * fused multiply-add chains hide their latency), then (a0 + a1) summed across lanes in a fixed
 * order and the columns past the last multiple of 16 added one by one. A row's arithmetic does not
 * depend on the rows beside it, and the 16-bit versions do exactly what the float32 one does on
 * the converted row: a BF16 weight gives the bits of its float32 conversion, without converting
 * it first (which bounded BF16 decode at about half the memory bandwidth). `dtype` is a constant
 * at every call, so each type gets its own loop. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 __m256 load8(const void *w, size_t at, int dtype)
{
    if (dtype == FIPSC_F32) return _mm256_loadu_ps((const float *)w + at);
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)w + at));
    if (dtype == FIPSC_F16) return _mm256_cvtph_ps(h);
    return fipsc_bf16x8_to_f32(h);
}

static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 float finish_row(__m256 a0, __m256 a1, const void *w,
                                                                                 size_t row, int k, int k16, int dtype,
                                                                                 const float *x)
{
    float s = fipsc_sum8_fixed(a0, a1);
    for (int j = k16; j < k; j++) s += load1(w, row + (size_t)j, dtype) * x[j];
    return s;
}

static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 void gemv_long_as(int rows, int k, const void *w,
                                                                                   int ldw, int dtype, const float *x,
                                                                                   float beta, float *y)
{
    const int k16 = k & ~15;
    int i = 0;
    for (; i + GEMV_PASS <= rows; i += GEMV_PASS) {
        __m256 a[GEMV_PASS][2];
        for (int r = 0; r < GEMV_PASS; r++) a[r][0] = a[r][1] = _mm256_setzero_ps();
        for (int j = 0; j < k16; j += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
            for (int r = 0; r < GEMV_PASS; r++) {
                const size_t row = (size_t)(i + r) * ldw;
                a[r][0] = _mm256_fmadd_ps(load8(w, row + j, dtype), x0, a[r][0]);
                a[r][1] = _mm256_fmadd_ps(load8(w, row + j + 8, dtype), x1, a[r][1]);
            }
        }
        for (int r = 0; r < GEMV_PASS; r++) {
            const float s = finish_row(a[r][0], a[r][1], w, (size_t)(i + r) * ldw, k, k16, dtype, x);
            y[i + r] = beta == 0.0f ? s : s + beta * y[i + r];
        }
    }
    for (; i < rows; i++) {
        const size_t r0 = (size_t)i * ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int j = 0; j < k16; j += 16) {
            a0 = _mm256_fmadd_ps(load8(w, r0 + j, dtype), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(load8(w, r0 + j + 8, dtype), _mm256_loadu_ps(x + j + 8), a1);
        }
        const float s = finish_row(a0, a1, w, r0, k, k16, dtype, x);
        y[i] = beta == 0.0f ? s : s + beta * y[i];
    }
}

/* The same kernel with 16-lane registers at the AVX-512 level: a row's accumulator over 16
 * columns is the AVX2 kernel's two 8-lane ones side by side (lanes 0-7: a0, 8-15: a1), split
 * again for the same final sum, so the bits are the AVX2 level's with half the instructions per
 * column (a [2048, 3072] BF16 product from memory ~17.5 -> ~19.5 GB/s on one Zen 4 core). */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 __m512 load16(const void *w, size_t at, int dtype)
{
    if (dtype == FIPSC_F32) return _mm512_loadu_ps((const float *)w + at);
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)((const uint16_t *)w + at));
    if (dtype == FIPSC_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 float finish_row16(__m512 a, const void *w, size_t row,
                                                                                    int k, int k16, int dtype,
                                                                                    const float *x)
{
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    return finish_row(_mm512_castps512_ps256(a), hi, w, row, k, k16, dtype, x);
}

static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 void gemv_long512_as(int rows, int k, const void *w,
                                                                                       int ldw, int dtype, const float *x,
                                                                                       float beta, float *y)
{
    const int k16 = k & ~15;
    int i = 0;
    for (; i + GEMV_PASS <= rows; i += GEMV_PASS) {
        __m512 a[GEMV_PASS];
        for (int r = 0; r < GEMV_PASS; r++) a[r] = _mm512_setzero_ps();
        for (int j = 0; j < k16; j += 16) {
            const __m512 xj = _mm512_loadu_ps(x + j);
            for (int r = 0; r < GEMV_PASS; r++) a[r] = _mm512_fmadd_ps(load16(w, (size_t)(i + r) * ldw + j, dtype), xj, a[r]);
        }
        for (int r = 0; r < GEMV_PASS; r++) {
            const float s = finish_row16(a[r], w, (size_t)(i + r) * ldw, k, k16, dtype, x);
            y[i + r] = beta == 0.0f ? s : s + beta * y[i + r];
        }
    }
    for (; i < rows; i++) {
        __m512 a = _mm512_setzero_ps();
        for (int j = 0; j < k16; j += 16) a = _mm512_fmadd_ps(load16(w, (size_t)i * ldw + j, dtype), _mm512_loadu_ps(x + j), a);
        const float s = finish_row16(a, w, (size_t)i * ldw, k, k16, dtype, x);
        y[i] = beta == 0.0f ? s : s + beta * y[i];
    }
}

static FIPSC_TARGET_AVX2 void gemv_long_avx2(int rows, int k, const void *w, int ldw, int dtype, const float *x,
                                             float beta, float *y)
{
    if (dtype == FIPSC_F32) gemv_long_as(rows, k, w, ldw, FIPSC_F32, x, beta, y);
    else if (dtype == FIPSC_F16) gemv_long_as(rows, k, w, ldw, FIPSC_F16, x, beta, y);
    else gemv_long_as(rows, k, w, ldw, FIPSC_BF16, x, beta, y);
}

static FIPSC_TARGET_AVX512 void gemv_long_avx512(int rows, int k, const void *w, int ldw, int dtype, const float *x,
                                                 float beta, float *y)
{
    if (dtype == FIPSC_F32) gemv_long512_as(rows, k, w, ldw, FIPSC_F32, x, beta, y);
    else if (dtype == FIPSC_F16) gemv_long512_as(rows, k, w, ldw, FIPSC_F16, x, beta, y);
    else gemv_long512_as(rows, k, w, ldw, FIPSC_BF16, x, beta, y);
}

/* Long rows (float32 or 16-bit weights) at the AVX2 level and above: the same bits at each. */
static void gemv_long(int rows, int k, const void *w, int ldw, int dtype, const float *x, float beta, float *y,
                      fipsc_isa isa)
{
    if (isa >= FIPSC_ISA_AVX512) gemv_long_avx512(rows, k, w, ldw, dtype, x, beta, y);
    else gemv_long_avx2(rows, k, w, ldw, dtype, x, beta, y);
}
#endif

/* Four rows at a time share each load of x; `omp simd reduction` vectorises the float sums in
 * an order fixed by the compiled code. At the AVX2 level and above (isa) rows take the vector kernels
 * above. */
static void gemv_rows(int rows, int k, const float *w, int ldw, const float *x, float beta, float *y, fipsc_isa isa)
{
    int i = 0;
#if FIPSC_HAVE_AVX2_KERNELS
    if (isa >= FIPSC_ISA_AVX2) {
        if (k > SHORT_ROW) {
            gemv_long(rows, k, w, ldw, FIPSC_F32, x, beta, y, isa);
            return;
        }
        i = gemv_rows8(rows, k, w, ldw, x, beta, y);
    }
#else
    (void)isa;
#endif
    for (; i + 4 <= rows; i += 4) {
        const float *w0 = w + (size_t)i * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (int j = 0; j < k; j++) {
            a0 += w0[j] * x[j];
            a1 += w1[j] * x[j];
            a2 += w2[j] * x[j];
            a3 += w3[j] * x[j];
        }
        if (beta == 0.0f) {
            y[i] = a0, y[i + 1] = a1, y[i + 2] = a2, y[i + 3] = a3;
        } else {
            y[i] = a0 + beta * y[i], y[i + 1] = a1 + beta * y[i + 1];
            y[i + 2] = a2 + beta * y[i + 2], y[i + 3] = a3 + beta * y[i + 3];
        }
    }
    for (; i < rows; i++) {
        const float *wr = w + (size_t)i * ldw;
        float a = 0.0f;
#pragma omp simd reduction(+ : a)
        for (int j = 0; j < k; j++) a += wr[j] * x[j];
        y[i] = beta == 0.0f ? a : a + beta * y[i];
    }
}

/* Both loops below enter a parallel region only with enough work: even a region serialised by
 * an `if` clause costs about a microsecond, as much as a small model's whole matrix-vector
 * product. The partition (chunks, panels) is the same either way. */
void fipsc_gemv(int n, int k, const float *w, int ldw, const float *x, float beta, float *y)
{
    const int chunks = (n + GEMV_CHUNK - 1) / GEMV_CHUNK;
    const fipsc_isa isa = fipsc_isa_active();
    if ((long long)n * k >= PARALLEL_WORK && chunks > 1) {
#pragma omp parallel for schedule(static)
        for (int c = 0; c < chunks; c++) {
            int lo = c * GEMV_CHUNK, rows = n - lo < GEMV_CHUNK ? n - lo : GEMV_CHUNK;
            gemv_rows(rows, k, w + (size_t)lo * ldw, ldw, x, beta, y + lo, isa);
        }
    } else {
        for (int c = 0; c < chunks; c++) {
            int lo = c * GEMV_CHUNK, rows = n - lo < GEMV_CHUNK ? n - lo : GEMV_CHUNK;
            gemv_rows(rows, k, w + (size_t)lo * ldw, ldw, x, beta, y + lo, isa);
        }
    }
}

/* x[k]ᵀ·B[k, n] + beta·y into y[n], B float32 or 16-bit (dtype): B streamed row by row, every
 * y[j] summing its k products in order, so each thread takes one contiguous slice of columns (a
 * multiple of 16 wide) and keeps it in L1. The result does not depend on how the columns are
 * shared out. Portable level: the compiler vectorises the float32 loop (`omp simd`); at the AVX2
 * level every y[j] is the chain y ← fma(x[i], B[i, j], y) over i = 0 .. k-1, GEMV_PASS rows of B
 * per pass over the slice (the same chain: each y[j] stays in a register for those fused steps)
 * and a 16-bit B widened exactly in registers, so a BF16 or F16 B gives the bits of its float32
 * conversion. `dtype` is a constant at every call. */
static inline __attribute__((always_inline)) void vecmat_slice_portable(int w, int k, const float *x, const void *b,
                                                                        size_t ldb, size_t j0, int dtype, float *y)
{
    for (int i = 0; i < k; i++) {
        const float xi = x[i];
        const size_t row = (size_t)i * ldb + j0;
        if (dtype == FIPSC_F32) { /* (a 16-bit row's widening calls do not vectorise: no simd asked) */
            const float *bi = (const float *)b + row;
#pragma omp simd
            for (int j = 0; j < w; j++) y[j] += xi * bi[j];
        } else {
            for (int j = 0; j < w; j++) y[j] += xi * load1(b, row + j, dtype);
        }
    }
}

#if FIPSC_HAVE_AVX2_KERNELS
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 float fma1(float x, float b, float y)
{
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(x), _mm_set_ss(b), _mm_set_ss(y)));
}

static inline __attribute__((always_inline)) FIPSC_TARGET_AVX2 void vecmat_slice_avx2(int w, int k, const float *x,
                                                                                        const void *b, size_t ldb,
                                                                                        size_t j0, int dtype, float *y)
{
    const int w8 = w & ~7;
    int i = 0;
    for (; i + GEMV_PASS <= k; i += GEMV_PASS) {
        __m256 xs[GEMV_PASS];
        for (int r = 0; r < GEMV_PASS; r++) xs[r] = _mm256_set1_ps(x[i + r]);
        const size_t r0 = (size_t)i * ldb + j0;
        const size_t size = dtype == FIPSC_F32 ? 4 : 2;
        const bool ahead = i + (VECMAT_AHEAD + 1) * GEMV_PASS <= k;
        for (int j = 0; j < w8; j += 8) {
            if (ahead && (j * size) % 64 == 0)
                for (int r = 0; r < GEMV_PASS; r++) VECMAT_PREFETCH(b, i + VECMAT_AHEAD * GEMV_PASS + r, ldb, j0 + j, size);
            __m256 acc = _mm256_loadu_ps(y + j);
            for (int r = 0; r < GEMV_PASS; r++) acc = _mm256_fmadd_ps(xs[r], load8(b, r0 + r * ldb + j, dtype), acc);
            _mm256_storeu_ps(y + j, acc);
        }
        for (int j = w8; j < w; j++) {
            float acc = y[j];
            for (int r = 0; r < GEMV_PASS; r++) acc = fma1(x[i + r], load1(b, r0 + r * ldb + j, dtype), acc);
            y[j] = acc;
        }
    }
    for (; i < k; i++) {
        const size_t r0 = (size_t)i * ldb + j0;
        const __m256 x0 = _mm256_set1_ps(x[i]);
        for (int j = 0; j < w8; j += 8)
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(x0, load8(b, r0 + j, dtype), _mm256_loadu_ps(y + j)));
        for (int j = w8; j < w; j++) y[j] = fma1(x[i], load1(b, r0 + j, dtype), y[j]);
    }
}

static FIPSC_TARGET_AVX2 void vecmat_slice_avx2_any(int w, int k, const float *x, const void *b, size_t ldb,
                                                    size_t j0, int dtype, float *y)
{
    if (dtype == FIPSC_F32) vecmat_slice_avx2(w, k, x, b, ldb, j0, FIPSC_F32, y);
    else if (dtype == FIPSC_F16) vecmat_slice_avx2(w, k, x, b, ldb, j0, FIPSC_F16, y);
    else vecmat_slice_avx2(w, k, x, b, ldb, j0, FIPSC_BF16, y);
}

/* AVX-512: the same chains 16 columns at a time (a column's chain does not depend on its
 * neighbours, so the bits are the AVX2 level's), the last w % 16 columns by the AVX2 slice. */
static inline __attribute__((always_inline)) FIPSC_TARGET_AVX512 void vecmat_slice512_as(int w, int k, const float *x,
                                                                                          const void *b, size_t ldb,
                                                                                          size_t j0, int dtype, float *y)
{
    const int w16 = w & ~15;
    int i = 0;
    for (; i + GEMV_PASS <= k; i += GEMV_PASS) {
        __m512 xs[GEMV_PASS];
        for (int r = 0; r < GEMV_PASS; r++) xs[r] = _mm512_set1_ps(x[i + r]);
        const size_t r0 = (size_t)i * ldb + j0;
        const size_t size = dtype == FIPSC_F32 ? 4 : 2;
        const bool ahead = i + (VECMAT_AHEAD + 1) * GEMV_PASS <= k;
        for (int j = 0; j < w16; j += 16) {
            if (ahead && (j * size) % 64 == 0)
                for (int r = 0; r < GEMV_PASS; r++) VECMAT_PREFETCH(b, i + VECMAT_AHEAD * GEMV_PASS + r, ldb, j0 + j, size);
            __m512 acc = _mm512_loadu_ps(y + j);
            for (int r = 0; r < GEMV_PASS; r++) acc = _mm512_fmadd_ps(xs[r], load16(b, r0 + r * ldb + j, dtype), acc);
            _mm512_storeu_ps(y + j, acc);
        }
    }
    for (; i < k; i++) {
        const __m512 xi = _mm512_set1_ps(x[i]);
        const size_t r0 = (size_t)i * ldb + j0;
        for (int j = 0; j < w16; j += 16)
            _mm512_storeu_ps(y + j, _mm512_fmadd_ps(xi, load16(b, r0 + j, dtype), _mm512_loadu_ps(y + j)));
    }
    if (w16 < w) vecmat_slice_avx2(w - w16, k, x, b, ldb, j0 + (size_t)w16, dtype, y + w16);
}

static FIPSC_TARGET_AVX512 void vecmat_slice_avx512(int w, int k, const float *x, const void *b, size_t ldb,
                                                    size_t j0, int dtype, float *y)
{
    if (dtype == FIPSC_F32) vecmat_slice512_as(w, k, x, b, ldb, j0, FIPSC_F32, y);
    else if (dtype == FIPSC_F16) vecmat_slice512_as(w, k, x, b, ldb, j0, FIPSC_F16, y);
    else vecmat_slice512_as(w, k, x, b, ldb, j0, FIPSC_BF16, y);
}
#endif

static void vecmat_slice(int w, int k, const float *x, const void *b, size_t ldb, size_t j0, int dtype, float *y,
                         fipsc_isa isa)
{
#if FIPSC_HAVE_AVX2_KERNELS
    if (isa >= FIPSC_ISA_AVX512) {
        vecmat_slice_avx512(w, k, x, b, ldb, j0, dtype, y);
        return;
    }
    if (isa >= FIPSC_ISA_AVX2) {
        vecmat_slice_avx2_any(w, k, x, b, ldb, j0, dtype, y);
        return;
    }
#else
    (void)isa;
#endif
    if (dtype == FIPSC_F32) vecmat_slice_portable(w, k, x, b, ldb, j0, FIPSC_F32, y);
    else if (dtype == FIPSC_F16) vecmat_slice_portable(w, k, x, b, ldb, j0, FIPSC_F16, y);
    else vecmat_slice_portable(w, k, x, b, ldb, j0, FIPSC_BF16, y);
}

static void vecmat(int n, int k, const float *x, const void *b, int dtype, int ldb, float beta, float *y)
{
    const fipsc_isa isa = fipsc_isa_active();
#pragma omp parallel if ((long long)n * k >= PARALLEL_WORK)
    {
        const int threads = omp_get_num_threads(), id = omp_get_thread_num();
        const int per = ((n + threads - 1) / threads + 15) / 16 * 16;
        const int j0 = id * per, w = n - j0 < per ? n - j0 : per;
        float *yj = y + j0;
        for (int j = 0; j < w; j++) yj[j] = beta == 0.0f ? 0.0f : beta * yj[j];
        if (w > 0) vecmat_slice(w, k, x, b, (size_t)ldb, (size_t)j0, dtype, yj, isa);
    }
}

/* One block of C: rows r0 .. r0+rows, columns j0 .. j0+w, on a single-threaded sgemm. */
static void gemm_block(bool ta, bool tb, int r0, int rows, int j0, int w, int k, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc)
{
    const float *ab = ta ? a + r0 : a + (size_t)r0 * lda;  /* rows of op(A): columns of A when transposed */
    const float *bb = tb ? b + (size_t)j0 * ldb : b + j0;  /* columns of op(B): rows of B when transposed */
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, rows, w, k, 1.0f,
                ab, lda, bb, ldb, beta, c + (size_t)r0 * ldc + j0, ldc);
}

/* Rows per block when a product has a single column panel (a small model's narrow layers) but
 * many rows: then the rows are cut instead, into fixed blocks (a multiple of the kernels' 16). */
enum { ROW_BLOCK = 256 };

/* The one GEMM: one-row kernels, else fixed column panels on OpenMP threads; with cut_rows, a
 * product that has a single panel but many rows is cut into fixed row blocks instead. Which
 * partition a call gets decides its last bits (OpenBLAS takes other kernel paths for other block
 * shapes), so it is part of each entry point's contract: the runtime's layer products cut rows
 * (fipsc_gemm_nt), the trainer's products do not (fipsc_gemm). */
static void gemm_run(bool trans_a, bool trans_b, int m, int n, int k, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc, bool cut_rows)
{
    if (m <= 0 || n <= 0) return;
    fipsc_blas_single_thread();
    if (m == 1 && !trans_a) {
        if (trans_b) fipsc_gemv(n, k, b, ldb, a, beta, c);
        else vecmat(n, k, a, b, FIPSC_F32, ldb, beta, c);
        return;
    }
    const int width = fipsc_gemm_panel_width(n), panels = (n + width - 1) / width;
    const bool big = (long long)m * n * k >= PARALLEL_WORK;
    if (cut_rows && panels == 1 && m >= 2 * ROW_BLOCK) {
        const int blocks = (m + ROW_BLOCK - 1) / ROW_BLOCK;
#pragma omp parallel for schedule(dynamic, 1) if (big)
        for (int i = 0; i < blocks; i++) {
            int r0 = i * ROW_BLOCK, rows = m - r0 < ROW_BLOCK ? m - r0 : ROW_BLOCK;
            gemm_block(trans_a, trans_b, r0, rows, 0, n, k, a, lda, b, ldb, beta, c, ldc);
        }
        return;
    }
#pragma omp parallel for schedule(dynamic, 1) if (big && panels > 1)
    for (int p = 0; p < panels; p++) {
        int j0 = p * width, w = n - j0 < width ? n - j0 : width;
        gemm_block(trans_a, trans_b, 0, m, j0, w, k, a, lda, b, ldb, beta, c, ldc);
    }
}

void fipsc_gemm(bool trans_a, bool trans_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float beta, float *c, int ldc)
{
    gemm_run(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, false);
}

void fipsc_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c,
                   int ldc)
{
    gemm_run(false, true, m, n, k, a, lda, b, ldb, beta, c, ldc, true);
}

/* The 16-bit weight's rows lo .. lo+rows as float32 rows of length k (packed: leading dimension k). */
static void rows_to_f32(const uint16_t *b, int dtype, int ldb, int lo, int rows, int k, float *dst)
{
    for (int i = 0; i < rows; i++)
        fipsc_convert16_to_f32((fipsc_dtype)dtype, b + (size_t)(lo + i) * ldb, (size_t)k, dst + (size_t)i * k);
}

fipsc_status fipsc_gemm_nt16(int m, int n, int k, const float *a, int lda, const uint16_t *b, int b_dtype,
                             int ldb, float beta, float *c, int ldc, fipsc_error *err)
{
    if (m <= 0 || n <= 0) return FIPSC_OK;
    fipsc_blas_single_thread();
    const int threads = omp_get_max_threads();
    if (m == 1) {
        /* fipsc_gemv's chunks on the same threads, each converted and multiplied GEMV_GROUP rows at
         * a time so that the float32 rows are still in L1/L2 when read: gemv_rows treats rows in
         * groups of 8 and 4 from the start of its range, then one by one, so cutting a chunk at
         * multiples of 8 gives every row the code path (and bits) it has in the whole chunk. */
        enum { GEMV_GROUP = 8 };
        const int chunks = (n + GEMV_CHUNK - 1) / GEMV_CHUNK;
        const fipsc_isa isa = fipsc_isa_active();
        const bool par = (long long)n * k >= PARALLEL_WORK && chunks > 1;
#if FIPSC_HAVE_AVX2_KERNELS
        if (isa >= FIPSC_ISA_AVX2 && k > SHORT_ROW) { /* the 16-bit rows read as they are (gemv_long_as) */
#pragma omp parallel for schedule(static) if (par)
            for (int ch = 0; ch < chunks; ch++) {
                const int lo = ch * GEMV_CHUNK, rows = n - lo < GEMV_CHUNK ? n - lo : GEMV_CHUNK;
                gemv_long(rows, k, b + (size_t)lo * ldb, ldb, b_dtype, a, beta, c + lo, isa);
            }
            return FIPSC_OK;
        }
#endif
        float *buf = malloc((size_t)(par ? threads : 1) * GEMV_GROUP * (size_t)k * sizeof *buf);
        if (!buf) goto nomem;
#pragma omp parallel for schedule(static) if (par)
        for (int ch = 0; ch < chunks; ch++) {
            float *rows_f32 = buf + (size_t)omp_get_thread_num() * GEMV_GROUP * (size_t)k;
            const int end = n - ch * GEMV_CHUNK < GEMV_CHUNK ? n : (ch + 1) * GEMV_CHUNK;
            for (int lo = ch * GEMV_CHUNK; lo < end; lo += GEMV_GROUP) {
                const int rows = end - lo < GEMV_GROUP ? end - lo : GEMV_GROUP;
                rows_to_f32(b, b_dtype, ldb, lo, rows, k, rows_f32);
                gemv_rows(rows, k, rows_f32, k, a, beta, c + lo, isa);
            }
        }
        free(buf);
        return FIPSC_OK;
    }
    const int width = fipsc_gemm_panel_width(n), panels = (n + width - 1) / width;
    if (panels == 1) { /* a narrow weight: converted whole, then fipsc_gemm_nt's own partition */
        float *w = malloc((size_t)n * (size_t)k * sizeof *w);
        if (!w) goto nomem;
        rows_to_f32(b, b_dtype, ldb, 0, n, k, w);
        gemm_run(false, true, m, n, k, a, lda, w, k, beta, c, ldc, true);
        free(w);
        return FIPSC_OK;
    }
    const bool par = (long long)m * n * k >= PARALLEL_WORK;
    float *buf = malloc((size_t)(par ? threads : 1) * (size_t)width * (size_t)k * sizeof *buf);
    if (!buf) goto nomem;
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int p = 0; p < panels; p++) {
        float *panel = buf + (size_t)omp_get_thread_num() * (size_t)width * (size_t)k;
        int j0 = p * width, w = n - j0 < width ? n - j0 : width;
        rows_to_f32(b, b_dtype, ldb, j0, w, k, panel);
        gemm_block(false, true, 0, m, 0, w, k, a, lda, panel, k, beta, c + j0, ldc);
    }
    free(buf);
    return FIPSC_OK;
nomem:
    return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the float32 panels of a [%d, %d] 16-bit weight",
                      n, k);
}

fipsc_status fipsc_gemm_nn16(int m, int n, int k, const float *a, int lda, const uint16_t *b, int b_dtype,
                             int ldb, float beta, float *c, int ldc, fipsc_error *err)
{
    if (m <= 0 || n <= 0) return FIPSC_OK;
    fipsc_blas_single_thread();
    if (m == 1) { /* the 16-bit rows read as they are */
        vecmat(n, k, a, b, b_dtype, ldb, beta, c);
        return FIPSC_OK;
    }
    /* fipsc_gemm's column panels, each converted into a per-thread [k, width] buffer just before
     * its product */
    const int width = fipsc_gemm_panel_width(n), panels = (n + width - 1) / width;
    const bool par = (long long)m * n * k >= PARALLEL_WORK && panels > 1;
    float *buf = malloc((size_t)(par ? omp_get_max_threads() : 1) * (size_t)width * (size_t)k * sizeof *buf);
    if (!buf)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the float32 panels of a [%d, %d] 16-bit matrix",
                          k, n);
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int p = 0; p < panels; p++) {
        float *panel = buf + (size_t)omp_get_thread_num() * (size_t)width * (size_t)k;
        const int j0 = p * width, w = n - j0 < width ? n - j0 : width;
        for (int i = 0; i < k; i++)
            fipsc_convert16_to_f32((fipsc_dtype)b_dtype, b + (size_t)i * ldb + j0, (size_t)w, panel + (size_t)i * w);
        gemm_block(false, false, 0, m, 0, w, k, a, lda, panel, w, beta, c + j0, ldc);
    }
    free(buf);
    return FIPSC_OK;
}
