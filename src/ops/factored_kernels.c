/* Running FiPS-compressed linears (see src/ops/factored.h).
 *
 *   expanding   x [n, d] -> y [n, f]:  t = x·U (GEMM),            y = t·V    (sparse gather)
 *   contracting x [n, f] -> y [n, d]:  z = x·Vᵀ (sparse gather),  y = z·Uᵀ   (GEMM)
 *
 * The sparse step is one kernel for every layout: output o (a column j of V when expanding, a row
 * k of V when contracting) is the sum over o's list of stored entries of value · in[position]:
 *   CSC/CSR  list = ptr[o] .. ptr[o+1]-1, position = idx[p]
 *   NM       list = the n slots of each of the r/m runs of column o, position = run·m + offset
 *   BITMAP   list = the set bits of o's bitmap in order, position = the bit's index
 * The kernels, per instruction set level, are in factored_gather*.c; this file picks them (once
 * per call, from fipsc_isa_active) and drives them. One row: outputs in blocks of VEC_BLOCK, one
 * block per task. A batch: the input is first transposed into tiles of rows so that one stored
 * entry updates a whole tile's accumulators with vector instructions (src/ops/factored_tiles.c).
 * Each output element is summed by one thread in a fixed order, so the result does not depend on
 * the number of threads. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "ops/factored.h"
#include "ops/factored_gather.h"
#include "ops/factored_tiles.h"
#include "ops/gemm.h"

enum { VEC_BLOCK = 256 };

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
    return fl->expanding ? fl->r : fl->f;
}

/* The first output of one-row block b (n_out past the last block). */
static int block_start(int b, int n_out) { return b * VEC_BLOCK < n_out ? b * VEC_BLOCK : n_out; }

#if FIPSC_HAVE_AVX2_KERNELS
/* y_i[o] (+)= Σ value · x[position] for one row through `count` (1 or 2) bitmap Vs with BF16 values
 * that read the same input (gate and up after their shared x·U), at the AVX-512 levels: the input
 * converted once — to bfloat16 (AVX-512 BF16) or to float32 in the kernel's order (AVX-512) — and
 * every matrix's blocks in one parallel loop, so that two steps pay one conversion, one join and
 * one uneven end. False, with nothing written, where this does not apply (another level or
 * layout, an input that is not finite, no memory): the caller then takes the matrices one by
 * one.
 *
 * Block b of a matrix goes with its block b + half, their lists two at a time word by word
 * (fipsc_gather_ranges_bits16_dot / _avx512), so that one core reads two places of V at once. List
 * after list, the V step reads memory well below what one core streams: on one Zen 4 core, only
 * reading a list's bits and values in order reached 15-19 GB/s, two lists word by word 21, a plain
 * stream 24-27; the BF16 kernel on r 3072 x f 8192 lists from memory took 1.96-2.06 ns a word
 * alone, 1.65-1.72 paired, and on f 8192-long lists 2.3-3.1 against 1.83-1.90 (ad-hoc harnesses;
 * bench_factored --v-steps: BENCHMARKS.md). Not when the pairs would be fewer than the threads
 * that share them. A list's sum does not depend on its partner, so neither do the bits. */
static bool gather_bits16_vectors(const fipsc_factored_linear *const fl[], float *const y[], int count, const float *x,
                                  bool accumulate)
{
    const fipsc_isa isa = fipsc_isa_active();
    int64_t nnz = 0;
    int pairs = 0;
    for (int i = 0; i < count; i++) {
        if (isa < FIPSC_ISA_AVX512 || fl[i]->layout != FIPSC_VK_BITMAP || !fl[i]->val16 ||
            fl[i]->words != fl[0]->words || gather_inputs(fl[i]) != gather_inputs(fl[0]))
            return false;
        nnz += fl[i]->nnz;
        pairs += (gather_outputs(fl[i]) + 2 * VEC_BLOCK - 1) / (2 * VEC_BLOCK);
    }
    uint16_t *in16 = NULL;
    float *rearranged = NULL;
    if (isa >= FIPSC_ISA_AVX512_BF16) in16 = fipsc_gather_bits16_dot_input(fl[0], x, gather_inputs(fl[0]));
    if (!in16 && !(rearranged = fipsc_gather_bits16_input(fl[0], x, gather_inputs(fl[0])))) return false;
    const bool parallel = nnz >= PARALLEL_WORK;
    const bool pair = pairs >= (parallel ? omp_get_max_threads() : 1);
    int half[2] = {0, 0}, tasks = 0;
    for (int i = 0; i < count; i++) {
        const int blocks = (gather_outputs(fl[i]) + VEC_BLOCK - 1) / VEC_BLOCK;
        half[i] = pair ? (blocks + 1) / 2 : blocks;
        tasks += half[i];
    }
#pragma omp parallel for schedule(dynamic, 1) if (parallel && tasks > 1)
    for (int task = 0; task < tasks; task++) {
        const int i = task < half[0] ? 0 : 1, b = task - (i ? half[0] : 0), h = half[i], n_out = gather_outputs(fl[i]);
        const int a0 = block_start(b, n_out), a1 = block_start(b + 1, n_out);
        const int b0 = block_start(b + h, n_out), b1 = block_start(b + h + 1, n_out);
        if (in16) fipsc_gather_ranges_bits16_dot(fl[i], in16, y[i], a0, a1, b0, b1, accumulate);
        else fipsc_gather_ranges_bits16_avx512(fl[i], rearranged, y[i], a0, a1, b0, b1, accumulate);
    }
    free(in16);
    free(rearranged);
    return true;
}
#endif

/* y[o] (+)= Σ value · x[position] for one row. */
static void gather_vector(const fipsc_factored_linear *fl, const float *x, float *y, bool accumulate)
{
    const int n_out = gather_outputs(fl), blocks = (n_out + VEC_BLOCK - 1) / VEC_BLOCK;
    const bool parallel = fl->nnz >= PARALLEL_WORK;
    fipsc_gather_range_fn *range = fipsc_gather_range;
#if FIPSC_HAVE_AVX2_KERNELS
    if (gather_bits16_vectors(&fl, &y, 1, x, accumulate)) return;
    const fipsc_isa isa = fipsc_isa_active();
    if (isa >= FIPSC_ISA_AVX512) range = fipsc_gather_range_avx512;
    else if (isa >= FIPSC_ISA_AVX2) range = fipsc_gather_range_avx2;
    /* AVX2 and a bitmap V with BF16 values: the shuffle kernel on the padded input where finite */
    float *padded = NULL;
    if (isa == FIPSC_ISA_AVX2 && fl->layout == FIPSC_VK_BITMAP && fl->val16 &&
        (padded = fipsc_gather_bits16_avx2_input(fl, x, gather_inputs(fl)))) {
        range = fipsc_gather_range_bits16_avx2;
        x = padded;
    }
#endif
#pragma omp parallel for schedule(dynamic, 1) if (parallel && blocks > 1)
    for (int b = 0; b < blocks; b++) range(fl, x, y, block_start(b, n_out), block_start(b + 1, n_out), accumulate);
#if FIPSC_HAVE_AVX2_KERNELS
    free(padded);
#endif
}


/* y[n, n_out] (+)= x[n, n_in]·(the sparse step) for n > 1 rows, on tiles (ops/factored_tiles.h). */
static fipsc_status gather_batch(const fipsc_factored_linear *fl, int n, const float *x, float *y,
                                 bool accumulate, fipsc_error *err)
{
    const int n_in = gather_inputs(fl);
#if FIPSC_HAVE_AVX2_KERNELS
    /* AVX-512 BF16 and a bitmap V with BF16 values: bfloat16 tiles, pairs of entries per dot
     * product. Input that is not finite or rounds to infinity, or no memory: float32 tiles. */
    if (fipsc_isa_active() >= FIPSC_ISA_AVX512_BF16 && fl->layout == FIPSC_VK_BITMAP && fl->val16 &&
        fl->words <= 65536 / 64) {
        const size_t bytes16 = fipsc_tiles_floats(n, n_in) * sizeof(uint16_t);
        uint16_t *inT16 = aligned_alloc(64, (bytes16 + 63) / 64 * 64);
        const bool rounded = inT16 && fipsc_tiles16_from_rows(n, n_in, x, inT16);
        if (rounded) fipsc_tiles_gather16(fl, n, inT16, y, accumulate);
        free(inT16);
        if (rounded) return FIPSC_OK;
    }
#endif
    const size_t bytes = fipsc_tiles_floats(n, n_in) * sizeof(float);
    float *inT = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!inT)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %d rows (%zu bytes)",
                          fl->weight_name, n, bytes);
    fipsc_tiles_from_rows(n, n_in, x, inT);
    fipsc_tiles_gather(fl, n, inT, y, accumulate);
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
    fipsc_status st = fipsc_group_basis_in(g, n, x, *t, err);
    if (st) {
        free(*t);
        *t = NULL;
    }
    return st;
}

fipsc_status fipsc_factored_apply(const fipsc_factored_linear *fl, const float *bias, int n,
                                  const float *x, float *y, bool accumulate, fipsc_error *err)
{
    fipsc_status st = check_call(fl, n, err);
    if (st || n == 0) return st;
    const fipsc_compressed_group *g = fl->group;
    if (fl->expanding) {
        float *t = NULL;
        if (fipsc_group_has_basis(g) && (st = basis_in(fl, n, x, &t, err))) return st;
        st = v_expand(fl, n, t ? t : x, y, accumulate, err);
        free(t);
    } else if (!fipsc_group_has_basis(g)) {
        st = v_contract(fl, n, x, y, accumulate, err);
    } else {
        float *z = malloc((size_t)n * (size_t)g->r * sizeof *z);
        if (!z)
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %d rows x rank %d",
                              fl->weight_name, n, g->r);
        if (!(st = v_contract(fl, n, x, z, false, err)))
            st = fipsc_group_basis_out(g, n, z, accumulate ? 1.0f : 0.0f, y, err);
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
    if (fipsc_group_has_basis(a->group) && (st = basis_in(a, n, x, &t, err))) return st;
    const float *in = t ? t : x;
    bool both = false; /* one row through two bitmap Vs: one conversion of t, one parallel loop */
#if FIPSC_HAVE_AVX2_KERNELS
    const fipsc_factored_linear *const fl[2] = {a, b};
    float *const y[2] = {ya, yb};
    both = n == 1 && gather_bits16_vectors(fl, y, 2, in, false);
#endif
    if (both || (!(st = v_expand(a, n, in, ya, false, err)) && !(st = v_expand(b, n, in, yb, false, err)))) {
        add_bias(n, a->out, bias_a, ya);
        add_bias(n, b->out, bias_b, yb);
    }
    free(t);
    return st;
}
