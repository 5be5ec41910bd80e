/* FiPS-compressed matrices in their kernel layout (see src/ops/factored.h): built from the stored
 * (file) layout of V_i (v_stored.c), converted back to it and to dense. The kernels that run
 * them are in factored_kernels.c. */
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "ops/factored.h"
#include "ops/gemm.h"

/* malloc of n elements of size sz, at least one byte so that success is never NULL. */
static void *alloc_n(int64_t n, size_t sz) { return malloc(n > 0 ? (size_t)n * sz : 1); }

/* ------------------------------------------------------------------ kernel layout */

void fipsc_factored_free(fipsc_factored_linear *fl)
{
    if (!fl) return;
    free(fl->weight_name);
    free(fl->ptr);
    free(fl->idx16);
    free(fl->idx32);
    free(fl->bits);
    free(fl->val);
    free(fl->val16);
    free(fl->nm_idx);
    free(fl);
}

int64_t fipsc_factored_memory_bytes(const fipsc_factored_linear *fl)
{
    const int64_t value = fl->val16 ? 2 : 4;
    switch (fl->layout) {
    case FIPSC_VK_DENSE: return value * fl->r * fl->f;
    case FIPSC_VK_NM: return (value + 1) * fl->nnz;
    case FIPSC_VK_BITMAP: return value * fl->nnz + 8LL * fl->n_lists * fl->words + 4LL * (fl->n_lists + 1);
    default: return fl->nnz * (value + (fl->idx16 ? 2 : 4)) + 4LL * (fl->n_lists + 1);
    }
}

static fipsc_status values_to_f32(fipsc_factored_linear *fl, fipsc_error *err)
{
    if (!fl->val16) return FIPSC_OK;
    float *v = alloc_n(fl->nnz, sizeof *v);
    if (!v) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %lld values", fl->weight_name, (long long)fl->nnz);
    for (int64_t p = 0; p < fl->nnz; p++) v[p] = fipsc_bf16_to_f32(fl->val16[p]);
    free(fl->val16);
    fl->val16 = NULL;
    fl->val = v;
    return FIPSC_OK;
}

/* Holds the values of a sparse layout as bfloat16 when the group stores them so (they are BF16
 * values already: rounded when attached, or read from a BF16 tensor, so nothing changes). */
static fipsc_status values_to_bf16(fipsc_factored_linear *fl, fipsc_error *err)
{
    if (fl->group->v_dtype != FIPSC_BF16 || fl->layout == FIPSC_VK_DENSE) return FIPSC_OK;
    uint16_t *h = alloc_n(fl->nnz + 8, sizeof *h); /* 8 zeros after the last (factored.h) */
    if (!h) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %lld values", fl->weight_name, (long long)fl->nnz);
    memset(h + fl->nnz, 0, 8 * sizeof *h);
    for (int64_t p = 0; p < fl->nnz; p++) {
        h[p] = fipsc_f32_to_bf16(fl->val[p]);
        if (fipsc_bf16_to_f32(h[p]) != fl->val[p]) {
            free(h);
            return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: value %lld (%g) is not a BF16 value", fl->weight_name,
                              (long long)p, (double)fl->val[p]);
        }
    }
    free(fl->val);
    fl->val = NULL;
    fl->val16 = h;
    return FIPSC_OK;
}

int64_t fipsc_factored_v_bytes(const fipsc_factored_linear *fl)
{
    return fipsc_v_stored_bytes(fl->group->storage, fl->r, fl->f, fl->nnz, (int)fipsc_dtype_size(fl->group->v_dtype));
}

/* Sets the index array of fl from 32-bit positions (taken over), narrowing to 16 bits when the
 * indexed dimension allows. */
static fipsc_status set_indices(fipsc_factored_linear *fl, uint32_t *idx, int dim, fipsc_error *err)
{
    if (dim > 65535) {
        fl->idx32 = idx;
        return FIPSC_OK;
    }
    fl->idx16 = alloc_n(fl->nnz, sizeof *fl->idx16);
    if (!fl->idx16) {
        free(idx);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", fl->weight_name);
    }
    for (int64_t p = 0; p < fl->nnz; p++) fl->idx16[p] = (uint16_t)idx[p];
    free(idx);
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ bitmap lists */

/* Length of the lists' input: what a list's positions index (r for columns, f for rows). */
static int list_input(const fipsc_factored_linear *fl) { return fl->expanding ? fl->r : fl->f; }

/* CSC/CSR positions -> BITMAP lists (the same lists, the same value order: positions increase
 * inside every list). */
static fipsc_status bits_from_positions(fipsc_factored_linear *fl, fipsc_error *err)
{
    const int words = (list_input(fl) + 63) / 64;
    uint64_t *bits = calloc((size_t)fl->n_lists * (size_t)words + 1, sizeof *bits);
    if (!bits) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for the bitmap", fl->weight_name);
    for (int o = 0; o < fl->n_lists; o++)
        for (uint32_t p = fl->ptr[o]; p < fl->ptr[o + 1]; p++) {
            const uint32_t i = fipsc_factored_position(fl, p);
            bits[(size_t)o * words + i / 64] |= 1ULL << (i % 64);
        }
    int64_t dense_words = 0; /* words keeping more than 32 positions: see bits_gather */
    for (size_t w = 0; w < (size_t)fl->n_lists * (size_t)words; w++) dense_words += __builtin_popcountll(bits[w]) > 32;
    free(fl->idx16);
    free(fl->idx32);
    fl->idx16 = NULL;
    fl->idx32 = NULL;
    fl->bits = bits;
    fl->words = words;
    fl->bits_gather = dense_words * 64 <= (int64_t)fl->n_lists * words;
    fl->layout = FIPSC_VK_BITMAP;
    return FIPSC_OK;
}

/* The positions of BITMAP lists, in value order ([nnz], malloc'ed). */
static uint32_t *positions_from_bits(const fipsc_factored_linear *fl)
{
    uint32_t *pos = alloc_n(fl->nnz, sizeof *pos);
    if (!pos) return NULL;
    int64_t p = 0;
    for (int o = 0; o < fl->n_lists; o++)
        for (int w = 0; w < fl->words; w++)
            for (uint64_t b = fl->bits[(size_t)o * fl->words + w]; b; b &= b - 1)
                pos[p++] = (uint32_t)(64 * w + __builtin_ctzll(b));
    return pos;
}

/* BITMAP lists -> CSC/CSR positions. */
static fipsc_status positions_from_bitmap_layout(fipsc_factored_linear *fl, fipsc_error *err)
{
    uint32_t *pos = positions_from_bits(fl);
    if (!pos) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", fl->weight_name);
    free(fl->bits);
    fl->bits = NULL;
    fl->words = 0;
    fl->bits_gather = false;
    fl->layout = fl->expanding ? FIPSC_VK_CSC : FIPSC_VK_CSR;
    return set_indices(fl, pos, list_input(fl), err);
}

fipsc_status fipsc_factored_unpack(fipsc_factored_linear *fl, fipsc_error *err)
{
    fipsc_status st = values_to_f32(fl, err);
    if (!st && fl->layout == FIPSC_VK_BITMAP) st = positions_from_bitmap_layout(fl, err);
    return st;
}

/* Stored value p of the kernel layout, as float32. */
static float value_at(const fipsc_factored_linear *fl, int64_t p)
{
    return fl->val16 ? fipsc_bf16_to_f32(fl->val16[p]) : fl->val[p];
}

/* Row-compressed lists of a stored CSC or NM V: every stored entry (k, j) lands in row k's list,
 * columns increasing (the stored order visits columns in order). */
static fipsc_status csr_from_stored(fipsc_factored_linear *fl, const fipsc_v_stored *v, fipsc_error *err)
{
    const int r = v->r, f = v->f;
    const int runs = v->storage == FIPSC_V_NM ? r / v->nm_m : 0;
    fl->ptr = calloc((size_t)r + 1, sizeof *fl->ptr);
    fl->val = alloc_n(v->nnz, sizeof *fl->val);
    uint32_t *cols = alloc_n(v->nnz, sizeof *cols), *next = alloc_n(r, sizeof *next);
    if (!fl->ptr || !fl->val || !cols || !next) {
        free(cols);
        free(next);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", fl->weight_name);
    }
    /* the row of stored entry p of column j */
#define STORED_ROW(p, j) (v->storage == FIPSC_V_CSC ? (int)v->row_idx[p] \
                          : (int)(((p) / v->nm_n) % runs) * v->nm_m + v->nm_idx[p])
    for (int j = 0; j < f; j++) {
        int64_t lo = v->storage == FIPSC_V_CSC ? v->col_ptr[j] : (int64_t)j * runs * v->nm_n;
        int64_t hi = v->storage == FIPSC_V_CSC ? v->col_ptr[j + 1] : (int64_t)(j + 1) * runs * v->nm_n;
        for (int64_t p = lo; p < hi; p++) fl->ptr[STORED_ROW(p, j) + 1]++;
    }
    for (int k = 0; k < r; k++) fl->ptr[k + 1] += fl->ptr[k];
    memcpy(next, fl->ptr, (size_t)r * sizeof *next);
    for (int j = 0; j < f; j++) {
        int64_t lo = v->storage == FIPSC_V_CSC ? v->col_ptr[j] : (int64_t)j * runs * v->nm_n;
        int64_t hi = v->storage == FIPSC_V_CSC ? v->col_ptr[j + 1] : (int64_t)(j + 1) * runs * v->nm_n;
        for (int64_t p = lo; p < hi; p++) {
            uint32_t q = next[STORED_ROW(p, j)]++;
            fl->val[q] = v->values[p];
            cols[q] = (uint32_t)j;
        }
    }
#undef STORED_ROW
    free(next);
    fl->n_lists = r;
    return set_indices(fl, cols, f, err);
}

/* fl's kernel layout from v (CSC, NM or DENSE; arrays moved out of v where they fit as they are). */
static fipsc_status kernel_layout(fipsc_factored_linear *fl, fipsc_v_stored *v, fipsc_error *err)
{
    if (v->storage == FIPSC_V_DENSE) {
        fl->layout = FIPSC_VK_DENSE;
        fl->val = v->values, v->values = NULL;
        return FIPSC_OK;
    }
    if (fl->expanding && v->storage == FIPSC_V_CSC) {
        fl->layout = FIPSC_VK_CSC;
        fl->n_lists = v->f;
        fl->ptr = v->col_ptr, v->col_ptr = NULL;
        fl->val = v->values, v->values = NULL;
        uint32_t *rows = v->row_idx;
        v->row_idx = NULL;
        return set_indices(fl, rows, v->r, err);
    }
    if (fl->expanding) {
        fl->layout = FIPSC_VK_NM;
        fl->val = v->values, v->values = NULL;
        fl->nm_idx = v->nm_idx, v->nm_idx = NULL;
        return FIPSC_OK;
    }
    fl->layout = FIPSC_VK_CSR;
    return csr_from_stored(fl, v, err);
}

fipsc_status fipsc_factored_new(const char *weight_name, int layer, fipsc_mlp_role role,
                                const fipsc_compressed_group *group, fipsc_v_stored *v,
                                fipsc_factored_linear **out, fipsc_error *err)
{
    const bool bitmap_lists = fipsc_isa_active() >= FIPSC_ISA_AVX2;
    return fipsc_factored_new_as(weight_name, layer, role, group, v, bitmap_lists, out, err);
}

fipsc_status fipsc_factored_new_as(const char *weight_name, int layer, fipsc_mlp_role role,
                                   const fipsc_compressed_group *group, fipsc_v_stored *v, bool bitmap_lists,
                                   fipsc_factored_linear **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_factored_linear *fl = calloc(1, sizeof *fl);
    if (!fl || !(fl->weight_name = strdup(weight_name))) {
        free(fl);
        fipsc_v_stored_free(v);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", weight_name);
    }
    fl->layer = layer;
    fl->role = role;
    fl->expanding = role != FIPSC_ROLE_DOWN;
    fl->group = group;
    fl->d = group->d;
    fl->r = group->r;
    fl->f = v->f;
    fl->out = fl->expanding ? v->f : group->d;
    fl->in = fl->expanding ? group->d : v->f;
    fl->nnz = v->nnz;
    fipsc_status st = FIPSC_OK;
    if (v->r != group->r || v->storage != group->storage ||
        (v->storage == FIPSC_V_NM && (v->nm_n != group->nm_n || v->nm_m != group->nm_m)) ||
        (!fipsc_group_has_basis(group) && group->r != group->d))
        st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: V (%d rows, %s) does not match its group (r %d, %s)",
                        weight_name, v->r, fipsc_v_storage_name(v->storage), group->r,
                        fipsc_v_storage_name(group->storage));
    /* a bitmap runs as the CSC it encodes, or as bitmaps of the CSC/CSR lists */
    const bool bitmap = v->storage == FIPSC_V_BITMAP;
    if (!st && bitmap) st = fipsc_v_stored_convert(v, FIPSC_V_CSC, weight_name, err);
    if (!st) st = kernel_layout(fl, v, err);
    if (!st && bitmap && bitmap_lists) st = bits_from_positions(fl, err);
    fipsc_v_stored_free(v);
    if (!st) st = values_to_bf16(fl, err);
    if (st) {
        fipsc_factored_free(fl);
        return st;
    }
    *out = fl;
    return FIPSC_OK;
}

/* V in CSC, NM or DENSE as the kernel layout holds it (a BITMAP group's V comes out as CSC). */
static fipsc_status factored_to_lists(const fipsc_factored_linear *fl, fipsc_v_stored *out, fipsc_error *err)
{
    const fipsc_compressed_group *g = fl->group;
    memset(out, 0, sizeof *out);
    out->storage = g->storage == FIPSC_V_BITMAP ? FIPSC_V_CSC : g->storage;
    out->r = fl->r;
    out->f = fl->f;
    out->nm_n = g->nm_n;
    out->nm_m = g->nm_m;
    out->nnz = fl->nnz;
    out->values = alloc_n(fl->nnz, sizeof *out->values);
    if (!out->values) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", fl->weight_name);
    if (fl->layout == FIPSC_VK_DENSE || fl->layout == FIPSC_VK_NM) {
        for (int64_t p = 0; p < fl->nnz; p++) out->values[p] = value_at(fl, p);
        if (fl->layout == FIPSC_VK_DENSE) return FIPSC_OK;
        out->nm_idx = alloc_n(fl->nnz, 1);
        if (!out->nm_idx) goto nomem;
        memcpy(out->nm_idx, fl->nm_idx, (size_t)fl->nnz);
        return FIPSC_OK;
    }
    if (fl->layout == FIPSC_VK_CSC) {
        out->col_ptr = alloc_n((int64_t)fl->f + 1, sizeof *out->col_ptr);
        out->row_idx = alloc_n(fl->nnz, sizeof *out->row_idx);
        if (!out->col_ptr || !out->row_idx) goto nomem;
        memcpy(out->col_ptr, fl->ptr, ((size_t)fl->f + 1) * sizeof *out->col_ptr);
        for (int64_t p = 0; p < fl->nnz; p++) out->values[p] = value_at(fl, p);
        for (int64_t p = 0; p < fl->nnz; p++) out->row_idx[p] = fipsc_factored_position(fl, p);
        return FIPSC_OK;
    }
    /* CSR back to columns: visiting rows in order lists every column's rows increasing. */
    const int r = fl->r, f = fl->f;
    if (out->storage == FIPSC_V_CSC) {
        out->col_ptr = calloc((size_t)f + 1, sizeof *out->col_ptr);
        out->row_idx = alloc_n(fl->nnz, sizeof *out->row_idx);
        uint32_t *next = alloc_n(f, sizeof *next);
        if (!out->col_ptr || !out->row_idx || !next) {
            free(next);
            goto nomem;
        }
        for (int64_t p = 0; p < fl->nnz; p++) out->col_ptr[fipsc_factored_position(fl, p) + 1]++;
        for (int j = 0; j < f; j++) out->col_ptr[j + 1] += out->col_ptr[j];
        memcpy(next, out->col_ptr, (size_t)f * sizeof *next);
        for (int k = 0; k < r; k++)
            for (uint32_t p = fl->ptr[k]; p < fl->ptr[k + 1]; p++) {
                uint32_t q = next[fipsc_factored_position(fl, p)]++;
                out->values[q] = value_at(fl, p);
                out->row_idx[q] = (uint32_t)k;
            }
        free(next);
        return FIPSC_OK;
    }
    /* NM: every run of every column gets exactly n entries back, offsets increasing. */
    const int runs = r / g->nm_m, n = g->nm_n, m = g->nm_m;
    out->nm_idx = alloc_n(fl->nnz, 1);
    int *count = calloc((size_t)f * (size_t)runs, sizeof *count);
    if (!out->nm_idx || !count) {
        free(count);
        goto nomem;
    }
    for (int k = 0; k < r; k++)
        for (uint32_t p = fl->ptr[k]; p < fl->ptr[k + 1]; p++) {
            int64_t run = (int64_t)fipsc_factored_position(fl, p) * runs + k / m;
            if (count[run] == n) {
                free(count);
                fipsc_v_stored_free(out);
                return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: n:m run overflow while writing", fl->weight_name);
            }
            int64_t slot = run * n + count[run]++;
            out->values[slot] = value_at(fl, p);
            out->nm_idx[slot] = (uint8_t)(k % m);
        }
    free(count);
    return FIPSC_OK;
nomem:
    fipsc_v_stored_free(out);
    return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", fl->weight_name);
}

fipsc_status fipsc_factored_to_stored(const fipsc_factored_linear *fl, fipsc_v_stored *out,
                                      fipsc_error *err)
{
    fipsc_factored_linear lists = *fl; /* BITMAP lists read through their positions */
    if (fl->layout == FIPSC_VK_BITMAP) {
        lists.layout = fl->expanding ? FIPSC_VK_CSC : FIPSC_VK_CSR;
        lists.idx16 = NULL;
        if (!(lists.idx32 = positions_from_bits(fl))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", fl->weight_name);
    }
    fipsc_status st = factored_to_lists(&lists, out, err);
    if (fl->layout == FIPSC_VK_BITMAP) free(lists.idx32);
    if (!st && fl->group->storage == FIPSC_V_BITMAP && (st = fipsc_v_stored_convert(out, FIPSC_V_BITMAP, fl->weight_name, err)))
        fipsc_v_stored_free(out);
    return st;
}

fipsc_status fipsc_factored_densify(const fipsc_factored_linear *fl, float *w, fipsc_error *err)
{
    fipsc_v_stored v;
    fipsc_status st = fipsc_factored_to_stored(fl, &v, err);
    if (st) return st;
    const int d = fl->d, r = fl->r, f = fl->f;
    const bool basis = fipsc_group_has_basis(fl->group);
    float *V = alloc_n((int64_t)r * f, sizeof *V);
    float *M = basis && fl->expanding ? alloc_n((int64_t)d * f, sizeof *M) : NULL;
    float *U16_f32 = fl->group->U16 ? alloc_n((int64_t)d * r, sizeof *U16_f32) : NULL;
    if (!V || (basis && fl->expanding && !M) || (fl->group->U16 && !U16_f32)) {
        free(V);
        free(M);
        free(U16_f32);
        fipsc_v_stored_free(&v);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory densifying", fl->weight_name);
    }
    fipsc_v_stored_to_dense(&v, V);
    fipsc_v_stored_free(&v);
    /* M = U·V [d, f] (M = V for an identity basis); the weight is M (contracting) or Mᵀ. */
    const float *Md = V;
    if (basis) {
        float *dst = fl->expanding ? M : w;
        if (U16_f32) fipsc_group_basis_f32(fl->group, U16_f32);
        fipsc_gemm(false, false, d, f, r, U16_f32 ? U16_f32 : fl->group->U, r, V, f, 0.0f, dst, f);
        Md = dst;
    }
    free(U16_f32);
    if (fl->expanding) {
        for (int i = 0; i < d; i++)
            for (int j = 0; j < f; j++) w[(int64_t)j * d + i] = Md[(int64_t)i * f + j];
    } else if (Md != w) {
        memcpy(w, Md, (size_t)d * (size_t)f * sizeof *w);
    }
    free(V);
    free(M);
    return FIPSC_OK;
}
