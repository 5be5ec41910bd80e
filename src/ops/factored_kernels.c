/* Running FiPS-compressed linears (see src/ops/factored.h).
 *
 *   expanding   x [n, d] -> y [n, f]:  t = x·U (GEMM),            y = t·V    (sparse gather)
 *   contracting x [n, f] -> y [n, d]:  z = x·Vᵀ (sparse gather),  y = z·Uᵀ   (GEMM)
 *
 * The sparse step is one kernel for every layout: output o (a column j of V when expanding, a row
 * k of V when contracting) is the sum over o's list of stored entries of value · in[position]:
 *   CSC/CSR  list = ptr[o] .. ptr[o+1]-1, position = idx[p]
 *   NM       list = the n slots of each of the r/m runs of column o, position = run·m + offset
 * For one row (decoding) each output is a short dot product with four partial sums (latency of
 * the float adds, not memory, bounds a single sum); where the CPU has AVX2 and FMA (chosen at run
 * time, src/core/isa.h) a list with 16-bit positions is summed 8 entries a step with gathers. For a batch the input is first transposed
 * into tiles of TILE rows, inT[tile][position][TILE], so that one stored entry updates a whole
 * tile's accumulators with vector instructions and the gathered rows are contiguous; outputs are
 * processed in blocks of OUT_BLOCK, one (tile, block) pair per task. Each output element is summed
 * by one thread in list order, so the result does not depend on the number of threads. */
#include <cblas.h>
#include <omp.h>

#include "core/isa.h"
#if FIPSC_HAVE_AVX2_KERNELS
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "ops/factored.h"
#include "ops/gemm.h"

enum { TILE = FIPSC_FACTORED_TILE, OUT_BLOCK = 64, VEC_BLOCK = 256 };

/* Multiply-adds below which a loop stays on the calling thread. */
#define PARALLEL_WORK (1LL << 18)


/* ------------------------------------------------------------------ sparse gather */

/* Outputs of the sparse step and the width of its input rows. */
static int gather_outputs(const fipsc_factored_linear *fl)
{
    return fl->layout == FIPSC_VK_NM ? fl->f : fl->n_lists;
}

static int gather_inputs(const fipsc_factored_linear *fl)
{
    return fl->layout == FIPSC_VK_CSR ? fl->f : fl->r;
}

/* Value p of a list: float32, or bfloat16 widened exactly (half: fl->val16 holds the values).
 * `half` is a constant at every call, so each kernel below is compiled once per value type. */
#define VALUE(p) (half ? fipsc_bf16_to_f32(v16[p]) : v32[p])

/* Σ over output o's list of value · x[position], four partial sums combined in a fixed order. */
static inline __attribute__((always_inline)) float gather_one_as(const fipsc_factored_linear *fl, int o,
                                                                 const float *x, bool half)
{
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    if (fl->layout == FIPSC_VK_NM) {
        /* four runs at a time, one partial sum each */
        const int n = fl->group->nm_n, m = fl->group->nm_m, runs = fl->r / m;
        const int64_t base = (int64_t)o * runs * n;
        const uint8_t *off = fl->nm_idx + base;
        const float *v32 = half ? NULL : fl->val + base;
        const uint16_t *v16 = half ? fl->val16 + base : NULL;
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
static void gather_range(const fipsc_factored_linear *fl, const float *x, float *y, int o0, int o1, bool accumulate)
{
    for (int o = o0; o < o1; o++) {
        float s = fl->val16 ? gather_one_as(fl, o, x, true) : gather_one_as(fl, o, x, false);
        y[o] = accumulate ? y[o] + s : s;
    }
}

#if FIPSC_HAVE_AVX2_KERNELS
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
#define VALUES8(q)                                                                                           \
    (half ? _mm256_castsi256_ps(_mm256_slli_epi32(                                                           \
                _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(v16 + (q)))), 16)) \
          : _mm256_loadu_ps(v32 + (q)))
    for (; p + 16 <= hi; p += 16) {
        acc0 = _mm256_fmadd_ps(VALUES8(p), _mm256_i32gather_ps(x, POSITIONS(p), 4), acc0);
        acc1 = _mm256_fmadd_ps(VALUES8(p + 8), _mm256_i32gather_ps(x, POSITIONS(p + 8), 4), acc1);
    }
#undef POSITIONS
#undef VALUES8
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(acc0, acc1));
    float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    for (; p < hi; p++) s += VALUE(p) * x[idx[p]];
    return s;
}

/* gather_range with the AVX2 sum where it applies (16-bit positions; n:m and 32-bit positions
 * keep the portable sum). */
static FIPSC_TARGET_AVX2 void gather_range_avx2(const fipsc_factored_linear *fl, const float *x, float *y, int o0,
                                                int o1, bool accumulate)
{
    if (fl->layout == FIPSC_VK_NM || !fl->idx16) {
        gather_range(fl, x, y, o0, o1, accumulate);
        return;
    }
    for (int o = o0; o < o1; o++) {
        float s = fl->val16 ? gather_one_avx2_as(fl, o, x, true) : gather_one_avx2_as(fl, o, x, false);
        y[o] = accumulate ? y[o] + s : s;
    }
}
#endif

/* y[o] (+)= Σ value · x[position] for one row. */
static void gather_vector(const fipsc_factored_linear *fl, const float *x, float *y, bool accumulate)
{
    const int n_out = gather_outputs(fl), blocks = (n_out + VEC_BLOCK - 1) / VEC_BLOCK;
    void (*range)(const fipsc_factored_linear *, const float *, float *, int, int, bool) = gather_range;
#if FIPSC_HAVE_AVX2_KERNELS
    if (fipsc_isa_active() >= FIPSC_ISA_AVX2) range = gather_range_avx2;
#endif
#pragma omp parallel for schedule(dynamic, 1) if (fl->nnz >= PARALLEL_WORK && blocks > 1)
    for (int b = 0; b < blocks; b++) {
        const int hi = (b + 1) * VEC_BLOCK < n_out ? (b + 1) * VEC_BLOCK : n_out;
        range(fl, x, y, b * VEC_BLOCK, hi, accumulate);
    }
}

/* Eight floats as one value: GCC/Clang vector extensions, so the tile accumulators stay in
 * registers (AVX: one register each; without AVX the compiler splits them). vf8_in reads eight
 * floats at any 4-byte alignment (may_alias: it reads memory written as float). */
typedef float vf8 __attribute__((vector_size(32)));
typedef float vf8_in __attribute__((vector_size(32), aligned(4), may_alias));
_Static_assert(TILE % 8 == 0, "a tile is a whole number of vf8");

/* acc[0..TILE) = Σ over output o's list of value · inT[position][0..TILE), in list order. */
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
        const int n = fl->group->nm_n, m = fl->group->nm_m, runs = fl->r / m;
        const int64_t base = (int64_t)o * runs * n;
        const uint8_t *off = fl->nm_idx + base;
        const float *v32 = half ? NULL : fl->val + base;
        const uint16_t *v16 = half ? fl->val16 + base : NULL;
        for (int q = 0, p = 0; q < runs; q++)
            for (int s = 0; s < n; s++, p++) ACCUMULATE(VALUE(p), q * m + off[p]);
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

static void gather_tile(const fipsc_factored_linear *fl, int o, const float *restrict inT, float *restrict acc)
{
    if (fl->val16) gather_tile_as(fl, o, inT, acc, true);
    else gather_tile_as(fl, o, inT, acc, false);
}
#undef VALUE

/* y[n, n_out] (+)= x[n, n_in]·(the sparse step) for n > 1 rows. */
static fipsc_status gather_batch(const fipsc_factored_linear *fl, int n, const float *x, float *y,
                                 bool accumulate, fipsc_error *err)
{
    const int n_in = gather_inputs(fl), n_out = gather_outputs(fl);
    const int tiles = (n + TILE - 1) / TILE, blocks = (n_out + OUT_BLOCK - 1) / OUT_BLOCK;
    const size_t tile_floats = (size_t)n_in * TILE;
    size_t bytes = (size_t)tiles * tile_floats * sizeof(float);
    float *inT = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!inT)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %d rows (%zu bytes)",
                          fl->weight_name, n, bytes);
    const long long work = (long long)fl->nnz * tiles * TILE;
    const int in_blocks = (n_in + VEC_BLOCK - 1) / VEC_BLOCK;
#pragma omp parallel if (work >= PARALLEL_WORK)
    {
        /* inT[t][i][w] = x[t·TILE + w][i], zero past the last row */
#pragma omp for schedule(static)
        for (int item = 0; item < tiles * in_blocks; item++) {
            const int t = item / in_blocks, i0 = (item % in_blocks) * VEC_BLOCK;
            const int i1 = i0 + VEC_BLOCK < n_in ? i0 + VEC_BLOCK : n_in;
            const int rows = n - t * TILE < TILE ? n - t * TILE : TILE;
            float *dst = inT + (size_t)t * tile_floats;
            for (int i = i0; i < i1; i++)
                for (int w = 0; w < TILE; w++)
                    dst[(size_t)i * TILE + w] = w < rows ? x[((size_t)t * TILE + w) * n_in + i] : 0.0f;
        }
#pragma omp for schedule(dynamic, 1)
        for (int item = 0; item < tiles * blocks; item++) {
            const int t = item / blocks, o0 = (item % blocks) * OUT_BLOCK;
            const int width = n_out - o0 < OUT_BLOCK ? n_out - o0 : OUT_BLOCK;
            const int rows = n - t * TILE < TILE ? n - t * TILE : TILE;
            _Alignas(64) float acc[OUT_BLOCK][TILE];
            for (int o = 0; o < width; o++) gather_tile(fl, o0 + o, inT + (size_t)t * tile_floats, acc[o]);
            for (int w = 0; w < rows; w++) {
                float *dst = y + ((size_t)t * TILE + w) * n_out + o0;
                if (accumulate)
                    for (int o = 0; o < width; o++) dst[o] += acc[o][w];
                else
                    for (int o = 0; o < width; o++) dst[o] = acc[o][w];
            }
        }
    }
    free(inT);
    return FIPSC_OK;
}

static fipsc_status gather(const fipsc_factored_linear *fl, int n, const float *x, float *y,
                           bool accumulate, fipsc_error *err)
{
    if (n == 1) {
        gather_vector(fl, x, y, accumulate);
        return FIPSC_OK;
    }
    return gather_batch(fl, n, x, y, accumulate, err);
}

/* ------------------------------------------------------------------ the two V steps */

/* y[n, f] (+)= t[n, r]·V */
static fipsc_status v_expand(const fipsc_factored_linear *fl, int n, const float *t, float *y,
                             bool accumulate, fipsc_error *err)
{
    if (fl->layout == FIPSC_VK_DENSE) {
        fipsc_gemm(false, false, n, fl->f, fl->r, t, fl->r, fl->val, fl->f, accumulate ? 1.0f : 0.0f, y, fl->f);
        return FIPSC_OK;
    }
    return gather(fl, n, t, y, accumulate, err);
}

/* z[n, r] (+)= h[n, f]·Vᵀ */
static fipsc_status v_contract(const fipsc_factored_linear *fl, int n, const float *h, float *z,
                               bool accumulate, fipsc_error *err)
{
    if (fl->layout == FIPSC_VK_DENSE) {
        fipsc_gemm_nt(n, fl->r, fl->f, h, fl->f, fl->val, fl->f, accumulate ? 1.0f : 0.0f, z, fl->r);
        return FIPSC_OK;
    }
    return gather(fl, n, h, z, accumulate, err);
}

/* ------------------------------------------------------------------ public entry points */

static void add_bias(int n, int out, const float *bias, float *y)
{
    if (!bias) return;
#pragma omp parallel for schedule(static) if ((long long)n * out > (1 << 16))
    for (int row = 0; row < n; row++) {
        float *yr = y + (size_t)row * out;
        for (int i = 0; i < out; i++) yr[i] += bias[i];
    }
}

static fipsc_status check_call(const fipsc_factored_linear *fl, int n, fipsc_error *err)
{
    if (!fl) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "factored linear: NULL matrix");
    if (n < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "%s: %d rows", fl->weight_name, n);
    return FIPSC_OK;
}

/* t[n, r] = x[n, d]·U into a new buffer. */
static fipsc_status basis_in(const fipsc_factored_linear *fl, int n, const float *x, float **t,
                             fipsc_error *err)
{
    const fipsc_compressed_group *g = fl->group;
    *t = malloc((size_t)n * (size_t)g->r * sizeof **t);
    if (!*t)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %d rows x rank %d",
                          fl->weight_name, n, g->r);
    fipsc_gemm(false, false, n, g->r, g->d, x, g->d, g->U, g->r, 0.0f, *t, g->r);
    return FIPSC_OK;
}

fipsc_status fipsc_factored_apply(const fipsc_factored_linear *fl, const float *bias, int n,
                                  const float *x, float *y, bool accumulate, fipsc_error *err)
{
    fipsc_status st = check_call(fl, n, err);
    if (st || n == 0) return st;
    const fipsc_compressed_group *g = fl->group;
    if (fl->expanding) {
        float *t = NULL;
        if (g->U && (st = basis_in(fl, n, x, &t, err))) return st;
        st = v_expand(fl, n, t ? t : x, y, accumulate, err);
        free(t);
    } else if (!g->U) {
        st = v_contract(fl, n, x, y, accumulate, err);
    } else {
        float *z = malloc((size_t)n * (size_t)g->r * sizeof *z);
        if (!z)
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %d rows x rank %d",
                              fl->weight_name, n, g->r);
        if (!(st = v_contract(fl, n, x, z, false, err)))
            fipsc_gemm_nt(n, g->d, g->r, z, g->r, g->U, g->r, accumulate ? 1.0f : 0.0f, y, g->d);
        free(z);
    }
    if (!st) add_bias(n, fl->out, bias, y);
    return st;
}

bool fipsc_factored_shares_input(const fipsc_factored_linear *a, const fipsc_factored_linear *b)
{
    return a && b && a->expanding && b->expanding && a->group == b->group;
}

fipsc_status fipsc_factored_apply_shared(const fipsc_factored_linear *a, const float *bias_a,
                                         const fipsc_factored_linear *b, const float *bias_b,
                                         int n, const float *x, float *ya, float *yb,
                                         fipsc_error *err)
{
    fipsc_status st = check_call(a, n, err);
    if (!st) st = check_call(b, n, err);
    if (st || n == 0) return st;
    if (!fipsc_factored_shares_input(a, b))
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s and %s do not share an input basis",
                          a->weight_name, b->weight_name);
    float *t = NULL;
    if (a->group->U && (st = basis_in(a, n, x, &t, err))) return st;
    const float *in = t ? t : x;
    if (!(st = v_expand(a, n, in, ya, false, err)) && !(st = v_expand(b, n, in, yb, false, err))) {
        add_bias(n, a->out, bias_a, ya);
        add_bias(n, b->out, bias_b, yb);
    }
    free(t);
    return st;
}
