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
 * block per task. A batch: the input is first transposed into tiles of TILE rows,
 * inT[tile][position][TILE], so that one stored entry updates a whole tile's accumulators with
 * vector instructions and the gathered rows are contiguous; outputs are processed in blocks of
 * OUT_BLOCK, one (tile, block) pair per task. Each output element is summed by one thread in a
 * fixed order, so the result does not depend on the number of threads. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "ops/factored.h"
#include "ops/factored_gather.h"
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
    return fl->expanding ? fl->r : fl->f;
}

/* y[o] (+)= Σ value · x[position] for one row. */
static void gather_vector(const fipsc_factored_linear *fl, const float *x, float *y, bool accumulate)
{
    const int n_out = gather_outputs(fl), blocks = (n_out + VEC_BLOCK - 1) / VEC_BLOCK;
    fipsc_gather_range_fn *range = fipsc_gather_range;
    const float *in = x;
    float *rearranged = NULL;
#if FIPSC_HAVE_AVX2_KERNELS
    const fipsc_isa isa = fipsc_isa_active();
    if (isa >= FIPSC_ISA_AVX512) range = fipsc_gather_range_avx512;
    else if (isa >= FIPSC_ISA_AVX2) range = fipsc_gather_range_avx2;
    if (isa >= FIPSC_ISA_AVX512 && fl->layout == FIPSC_VK_BITMAP && fl->val16 &&
        (rearranged = fipsc_gather_bits16_input(fl, x, gather_inputs(fl)))) {
        range = fipsc_gather_range_bits16_avx512;
        in = rearranged;
    }
#endif
#pragma omp parallel for schedule(dynamic, 1) if (fl->nnz >= PARALLEL_WORK && blocks > 1)
    for (int b = 0; b < blocks; b++) {
        const int hi = (b + 1) * VEC_BLOCK < n_out ? (b + 1) * VEC_BLOCK : n_out;
        range(fl, in, y, b * VEC_BLOCK, hi, accumulate);
    }
    free(rearranged);
}


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
    fipsc_gather_tile_fn *tile = fipsc_gather_tile;
    uint16_t *decoded = NULL; /* AVX2, bitmap lists: their positions for this call */
    fipsc_factored_linear as_lists;
#if FIPSC_HAVE_AVX2_KERNELS
    const fipsc_isa isa = fipsc_isa_active();
    if (isa >= FIPSC_ISA_AVX512) tile = fipsc_gather_tile_avx512;
    else if (isa >= FIPSC_ISA_AVX2) tile = fipsc_gather_tile_avx2;
    if (isa == FIPSC_ISA_AVX2 && fl->layout == FIPSC_VK_BITMAP && fl->words <= 65536 / 64 &&
        (decoded = malloc(((size_t)fl->nnz + 1) * sizeof *decoded))) {
        const int lists = fl->n_lists, chunks = (lists + OUT_BLOCK - 1) / OUT_BLOCK;
#pragma omp parallel for schedule(static) if (work >= PARALLEL_WORK)
        for (int c = 0; c < chunks; c++)
            fipsc_gather_bits_positions_avx2(fl, c * OUT_BLOCK, (c + 1) * OUT_BLOCK < lists ? (c + 1) * OUT_BLOCK : lists,
                                             decoded);
        as_lists = *fl; /* the same lists, as 16-bit positions */
        as_lists.layout = fl->expanding ? FIPSC_VK_CSC : FIPSC_VK_CSR;
        as_lists.bits = NULL;
        as_lists.idx16 = decoded;
        fl = &as_lists;
    }
#endif
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
            for (int o = 0; o < width; o++) tile(fl, o0 + o, inT + (size_t)t * tile_floats, acc[o]);
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
    free(decoded);
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
    if (!(st = v_expand(a, n, in, ya, false, err)) && !(st = v_expand(b, n, in, yb, false, err))) {
        add_bias(n, a->out, bias_a, ya);
        add_bias(n, b->out, bias_b, yb);
    }
    free(t);
    return st;
}
