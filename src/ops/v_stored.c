/* V_i in the layout of the compressed file (see src/ops/factored.h, fipsc_v_stored, and
 * docs/FORMAT.md): packing from dense, the storage names and byte counts, conversions between CSC
 * and the bitmap, validation of what a file holds, and unpacking to dense. The kernel layout
 * built from it is in factored_linear.c. */
#include <stdlib.h>
#include <string.h>

#include "ops/factored.h"

/* ------------------------------------------------------------------ names */

static const char *const storage_names[] = {[FIPSC_V_CSC] = "csc", [FIPSC_V_NM] = "nm",
                                            [FIPSC_V_DENSE] = "dense", [FIPSC_V_BITMAP] = "bitmap"};

const char *fipsc_v_storage_name(fipsc_v_storage s)
{
    return (unsigned)s < FIPSC_V_STORAGE_COUNT ? storage_names[s] : "?";
}

bool fipsc_v_storage_parse(const char *name, fipsc_v_storage *out)
{
    for (int i = 0; i < FIPSC_V_STORAGE_COUNT; i++)
        if (strcmp(name, storage_names[i]) == 0) {
            *out = (fipsc_v_storage)i;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------------ stored layout */

void fipsc_v_stored_free(fipsc_v_stored *s)
{
    if (!s) return;
    free(s->values);
    free(s->col_ptr);
    free(s->row_idx);
    free(s->nm_idx);
    free(s->bitmap);
    s->values = NULL;
    s->col_ptr = s->row_idx = NULL;
    s->nm_idx = s->bitmap = NULL;
}

/* Bytes of one column's bitmap. */
static int64_t bitmap_stride(int r) { return ((int64_t)r + 7) / 8; }

int fipsc_v_csc_index_bytes(int r) { return r <= 65535 ? 2 : 4; }

int64_t fipsc_v_stored_bytes(fipsc_v_storage storage, int r, int f, int64_t nnz, int value_bytes)
{
    switch (storage) {
    case FIPSC_V_CSC: return nnz * (value_bytes + fipsc_v_csc_index_bytes(r)) + ((int64_t)f + 1) * 4;
    case FIPSC_V_NM: return nnz * (value_bytes + 1);
    case FIPSC_V_DENSE: return (int64_t)r * f * value_bytes;
    case FIPSC_V_BITMAP: return nnz * value_bytes + (int64_t)f * bitmap_stride(r);
    }
    return 0;
}

fipsc_v_storage fipsc_v_storage_cheapest(int r, int n, const int *cols, const int64_t *nnz, int value_bytes)
{
    static const fipsc_v_storage candidates[] = {FIPSC_V_CSC, FIPSC_V_BITMAP, FIPSC_V_DENSE};
    fipsc_v_storage best = FIPSC_V_CSC;
    int64_t best_bytes = -1;
    for (size_t c = 0; c < sizeof candidates / sizeof *candidates; c++) {
        int64_t bytes = 0;
        for (int i = 0; i < n; i++) bytes += fipsc_v_stored_bytes(candidates[c], r, cols[i], nnz[i], value_bytes);
        if (best_bytes < 0 || bytes < best_bytes) best = candidates[c], best_bytes = bytes;
    }
    return best;
}

/* malloc of n elements of size sz, at least one byte so that success is never NULL. */
static void *alloc_n(int64_t n, size_t sz) { return malloc(n > 0 ? (size_t)n * sz : 1); }

/* code: FIPSC_ERR_ARG for a caller's request, FIPSC_ERR_FORMAT for a file. */
static fipsc_status check_nm_params(int r, int n, int m, const char *what, fipsc_status code,
                                    fipsc_error *err)
{
    if (m < 1 || m > 255 || n < 1 || n > m)
        return fipsc_fail(err, code, "%s: invalid n:m %d:%d (need 1 <= n <= m <= 255)", what, n, m);
    if (r % m != 0)
        return fipsc_fail(err, code, "%s: n:m %d:%d needs a rank that is a multiple of %d, got %d",
                          what, n, m, m, r);
    return FIPSC_OK;
}

/* CSC from dense: count per column, then fill row by row so that the row indices of every column
 * come out increasing (one pass over V in memory order). */
static fipsc_status csc_from_dense(int r, int f, const float *V, int64_t ld, const char *what,
                                   fipsc_v_stored *s, fipsc_error *err)
{
    s->col_ptr = calloc((size_t)f + 1, sizeof *s->col_ptr);
    if (!s->col_ptr) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", what);
    int64_t nnz = 0;
    for (int k = 0; k < r; k++) {
        const float *row = V + (int64_t)k * ld;
        for (int j = 0; j < f; j++)
            if (row[j] != 0.0f) s->col_ptr[j + 1]++, nnz++;
    }
    if (nnz > (int64_t)UINT32_MAX)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: %lld nonzeros do not fit 32-bit column pointers",
                          what, (long long)nnz);
    for (int j = 0; j < f; j++) s->col_ptr[j + 1] += s->col_ptr[j];
    s->nnz = nnz;
    s->values = alloc_n(nnz, sizeof *s->values);
    s->row_idx = alloc_n(nnz, sizeof *s->row_idx);
    uint32_t *next = alloc_n(f, sizeof *next);
    if (!s->values || !s->row_idx || !next) {
        free(next);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %lld nonzeros", what, (long long)nnz);
    }
    memcpy(next, s->col_ptr, (size_t)f * sizeof *next);
    for (int k = 0; k < r; k++) {
        const float *row = V + (int64_t)k * ld;
        for (int j = 0; j < f; j++)
            if (row[j] != 0.0f) {
                uint32_t p = next[j]++;
                s->values[p] = row[j];
                s->row_idx[p] = (uint32_t)k;
            }
    }
    free(next);
    return FIPSC_OK;
}

/* CSC -> BITMAP: set bit row_idx[p] of column j's bitmap for every entry p of column j. */
static fipsc_status csc_to_bitmap(fipsc_v_stored *s, const char *what, fipsc_error *err)
{
    const int64_t stride = bitmap_stride(s->r);
    uint8_t *bits = calloc((size_t)s->f * (size_t)stride, 1);
    if (!bits) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for a %d x %d bitmap", what, s->r, s->f);
    for (int j = 0; j < s->f; j++)
        for (uint32_t p = s->col_ptr[j]; p < s->col_ptr[j + 1]; p++)
            bits[j * stride + s->row_idx[p] / 8] |= (uint8_t)(1u << (s->row_idx[p] % 8));
    free(s->col_ptr);
    free(s->row_idx);
    s->col_ptr = s->row_idx = NULL;
    s->bitmap = bits;
    s->storage = FIPSC_V_BITMAP;
    return FIPSC_OK;
}

/* BITMAP -> CSC: column j's entries are its set bits in increasing row order. Assumes the
 * bitmap's set bits number s->nnz (fipsc_v_stored_validate). */
static fipsc_status bitmap_to_csc(fipsc_v_stored *s, const char *what, fipsc_error *err)
{
    const int64_t stride = bitmap_stride(s->r);
    uint32_t *ptr = malloc(((size_t)s->f + 1) * sizeof *ptr);
    uint32_t *rows = alloc_n(s->nnz, sizeof *rows);
    if (!ptr || !rows) {
        free(ptr);
        free(rows);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %lld row indices", what, (long long)s->nnz);
    }
    int64_t p = 0;
    ptr[0] = 0;
    for (int j = 0; j < s->f; j++) {
        const uint8_t *col = s->bitmap + j * stride;
        for (int64_t b = 0; b < stride; b++)
            for (unsigned bits = col[b]; bits; bits &= bits - 1)
                if (p < s->nnz) rows[p++] = (uint32_t)(b * 8 + __builtin_ctz(bits));
        ptr[j + 1] = (uint32_t)p;
    }
    free(s->bitmap);
    s->bitmap = NULL;
    s->col_ptr = ptr;
    s->row_idx = rows;
    s->storage = FIPSC_V_CSC;
    return FIPSC_OK;
}

fipsc_status fipsc_v_stored_convert(fipsc_v_stored *s, fipsc_v_storage to, const char *what, fipsc_error *err)
{
    if (s->storage == to) return FIPSC_OK;
    if (s->storage == FIPSC_V_CSC && to == FIPSC_V_BITMAP) return csc_to_bitmap(s, what, err);
    if (s->storage == FIPSC_V_BITMAP && to == FIPSC_V_CSC) return bitmap_to_csc(s, what, err);
    return fipsc_fail(err, FIPSC_ERR_ARG, "%s: V cannot be converted from %s to %s", what,
                      fipsc_v_storage_name(s->storage), fipsc_v_storage_name(to));
}

/* Completes the run (j, q) of an n:m packing that holds `used` entries (offsets increasing) with
 * zero-valued slots at the lowest free offsets, keeping the offsets increasing. */
static void nm_pad_run(float *val, uint8_t *off, int used, int n, int m)
{
    if (used == n) return;
    float v[256];
    uint8_t o[256];
    int out = 0, u = 0, free_slots = n - used;
    for (int pos = 0; pos < m && out < n; pos++) {
        if (u < used && off[u] == pos) {
            v[out] = val[u], o[out++] = (uint8_t)pos, u++;
        } else if (free_slots > 0) {
            v[out] = 0.0f, o[out++] = (uint8_t)pos, free_slots--;
        }
    }
    memcpy(val, v, (size_t)n * sizeof *val);
    memcpy(off, o, (size_t)n);
}

static fipsc_status nm_from_dense(int r, int f, const float *V, int64_t ld, int n, int m,
                                  const char *what, fipsc_v_stored *s, fipsc_error *err)
{
    fipsc_status st = check_nm_params(r, n, m, what, FIPSC_ERR_ARG, err);
    if (st) return st;
    const int runs = r / m;
    const int64_t slots = (int64_t)f * runs * n;
    s->nnz = slots;
    s->values = alloc_n(slots, sizeof *s->values);
    s->nm_idx = alloc_n(slots, sizeof *s->nm_idx);
    int *count = alloc_n(f, sizeof *count);
    if (!s->values || !s->nm_idx || !count) {
        free(count);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", what);
    }
    for (int q = 0; q < runs; q++) {
        memset(count, 0, (size_t)f * sizeof *count);
        for (int o = 0; o < m; o++) {
            const float *row = V + (int64_t)(q * m + o) * ld;
            for (int j = 0; j < f; j++) {
                if (row[j] == 0.0f) continue;
                if (count[j] == n) {
                    free(count);
                    return fipsc_fail(err, FIPSC_ERR_ARG,
                                      "%s: column %d, rows %d..%d hold more than %d nonzeros: not %d:%d sparse",
                                      what, j, q * m, q * m + m - 1, n, n, m);
                }
                int64_t slot = ((int64_t)j * runs + q) * n + count[j]++;
                s->values[slot] = row[j];
                s->nm_idx[slot] = (uint8_t)o;
            }
        }
        for (int j = 0; j < f; j++) {
            int64_t base = ((int64_t)j * runs + q) * n;
            nm_pad_run(s->values + base, s->nm_idx + base, count[j], n, m);
        }
    }
    free(count);
    return FIPSC_OK;
}

fipsc_status fipsc_v_stored_from_dense(fipsc_v_storage storage, int r, int f, const float *V,
                                       int64_t ld, int nm_n, int nm_m, const char *what,
                                       fipsc_v_stored *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    out->storage = storage;
    out->r = r;
    out->f = f;
    if (r < 1 || f < 1 || ld < f || !V)
        return fipsc_fail(err, FIPSC_ERR_ARG, "%s: invalid V (%d x %d, leading dimension %lld%s)", what,
                          r, f, (long long)ld, V ? "" : ", no data");
    for (int k = 0; k < r; k++) {
        int64_t bad = fipsc_first_nonfinite(V + (int64_t)k * ld, (size_t)f);
        if (bad >= 0)
            return fipsc_fail(err, FIPSC_ERR_NUMERIC, "%s: V[%d, %lld] is not finite (%g)", what, k,
                              (long long)bad, (double)V[(int64_t)k * ld + bad]);
    }
    fipsc_status st;
    switch (storage) {
    case FIPSC_V_CSC: st = csc_from_dense(r, f, V, ld, what, out, err); break;
    case FIPSC_V_BITMAP:
        out->storage = FIPSC_V_CSC;
        st = csc_from_dense(r, f, V, ld, what, out, err);
        if (!st) st = csc_to_bitmap(out, what, err);
        break;
    case FIPSC_V_NM:
        out->nm_n = nm_n;
        out->nm_m = nm_m;
        st = nm_from_dense(r, f, V, ld, nm_n, nm_m, what, out, err);
        break;
    case FIPSC_V_DENSE:
        out->nnz = (int64_t)r * f;
        out->values = alloc_n(out->nnz, sizeof *out->values);
        if (!out->values) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", what);
            break;
        }
        for (int k = 0; k < r; k++)
            memcpy(out->values + (int64_t)k * f, V + (int64_t)k * ld, (size_t)f * sizeof(float));
        st = FIPSC_OK;
        break;
    default: st = fipsc_fail(err, FIPSC_ERR_ARG, "%s: unknown V storage %d", what, (int)storage);
    }
    if (st) fipsc_v_stored_free(out);
    return st;
}

fipsc_status fipsc_v_stored_validate(const fipsc_v_stored *s, const char *what, fipsc_error *err)
{
    if (s->r < 1 || s->f < 1)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: V is %d x %d (both must be positive)", what, s->r, s->f);
    if (!s->values) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: no values", what);
    int64_t bad = fipsc_first_nonfinite(s->values, (size_t)s->nnz);
    if (bad >= 0)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: value %lld is not finite (%g)", what, (long long)bad,
                          (double)s->values[bad]);
    switch (s->storage) {
    case FIPSC_V_CSC: {
        if (!s->col_ptr || !s->row_idx) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: missing CSC arrays", what);
        if (s->col_ptr[0] != 0)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: col_ptr[0] is %u, must be 0", what, s->col_ptr[0]);
        for (int j = 0; j < s->f; j++) {
            uint32_t lo = s->col_ptr[j], hi = s->col_ptr[j + 1];
            if (hi < lo)
                return fipsc_fail(err, FIPSC_ERR_FORMAT,
                                  "%s: col_ptr is not monotone: col_ptr[%d] = %u > col_ptr[%d] = %u", what, j,
                                  lo, j + 1, hi);
            if ((int64_t)hi > s->nnz)
                return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: col_ptr[%d] = %u exceeds nnz %lld", what, j + 1,
                                  hi, (long long)s->nnz);
            for (uint32_t p = lo; p < hi; p++) {
                if (s->row_idx[p] >= (uint32_t)s->r)
                    return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: row index %u at entry %u (column %d) is >= r = %d",
                                      what, s->row_idx[p], p, j, s->r);
                if (p > lo && s->row_idx[p] <= s->row_idx[p - 1])
                    return fipsc_fail(err, FIPSC_ERR_FORMAT,
                                      "%s: row indices of column %d are not strictly increasing (entry %u: %u after %u)",
                                      what, j, p, s->row_idx[p], s->row_idx[p - 1]);
            }
        }
        if ((int64_t)s->col_ptr[s->f] != s->nnz)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: col_ptr[%d] = %u but there are %lld entries", what,
                              s->f, s->col_ptr[s->f], (long long)s->nnz);
        return FIPSC_OK;
    }
    case FIPSC_V_NM: {
        fipsc_status st = check_nm_params(s->r, s->nm_n, s->nm_m, what, FIPSC_ERR_FORMAT, err);
        if (st) return st;
        int runs = s->r / s->nm_m;
        if (s->nnz != (int64_t)s->f * runs * s->nm_n)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: %lld n:m slots, expected f·(r/m)·n = %lld", what,
                              (long long)s->nnz, (long long)s->f * runs * s->nm_n);
        if (!s->nm_idx) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: missing n:m indices", what);
        for (int64_t run = 0; run < (int64_t)s->f * runs; run++) {
            const uint8_t *o = s->nm_idx + run * s->nm_n;
            for (int i = 0; i < s->nm_n; i++) {
                if (o[i] >= s->nm_m)
                    return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: n:m index %u (column %lld, run %lld) is >= m = %d",
                                      what, o[i], (long long)(run / runs), (long long)(run % runs), s->nm_m);
                if (i > 0 && o[i] <= o[i - 1])
                    return fipsc_fail(err, FIPSC_ERR_FORMAT,
                                      "%s: n:m indices of column %lld, run %lld are not strictly increasing",
                                      what, (long long)(run / runs), (long long)(run % runs));
            }
        }
        return FIPSC_OK;
    }
    case FIPSC_V_DENSE:
        if (s->nnz != (int64_t)s->r * s->f)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: dense V holds %lld values, expected %d x %d", what,
                              (long long)s->nnz, s->r, s->f);
        return FIPSC_OK;
    case FIPSC_V_BITMAP: {
        if (!s->bitmap) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: missing bitmap", what);
        const int64_t stride = bitmap_stride(s->r);
        const unsigned pad_mask = s->r % 8 ? 0xffu << (s->r % 8) : 0; /* bits past r in the last byte */
        int64_t set = 0;
        for (int j = 0; j < s->f; j++) {
            const uint8_t *col = s->bitmap + j * stride;
            if (col[stride - 1] & pad_mask)
                return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: bitmap of column %d marks a row >= r = %d", what, j, s->r);
            for (int64_t b = 0; b < stride; b++) set += __builtin_popcount(col[b]);
        }
        if (set != s->nnz)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: the bitmap marks %lld entries but there are %lld values",
                              what, (long long)set, (long long)s->nnz);
        if (s->nnz > (int64_t)UINT32_MAX)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: %lld entries exceed 32-bit positions", what, (long long)s->nnz);
        return FIPSC_OK;
    }
    }
    return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: unknown V storage %d", what, (int)s->storage);
}

void fipsc_v_stored_to_dense(const fipsc_v_stored *s, float *V)
{
    const int f = s->f;
    switch (s->storage) {
    case FIPSC_V_DENSE: memcpy(V, s->values, (size_t)s->nnz * sizeof *V); return;
    case FIPSC_V_CSC:
        memset(V, 0, (size_t)s->r * (size_t)f * sizeof *V);
        for (int j = 0; j < f; j++)
            for (uint32_t p = s->col_ptr[j]; p < s->col_ptr[j + 1]; p++)
                V[(int64_t)s->row_idx[p] * f + j] = s->values[p];
        return;
    case FIPSC_V_BITMAP: {
        memset(V, 0, (size_t)s->r * (size_t)f * sizeof *V);
        const int64_t stride = bitmap_stride(s->r);
        int64_t p = 0;
        for (int j = 0; j < f; j++)
            for (int64_t b = 0; b < stride; b++)
                for (unsigned bits = s->bitmap[j * stride + b]; bits && p < s->nnz; bits &= bits - 1)
                    V[(b * 8 + __builtin_ctz(bits)) * f + j] = s->values[p++];
        return;
    }
    case FIPSC_V_NM: {
        memset(V, 0, (size_t)s->r * (size_t)f * sizeof *V);
        const int runs = s->r / s->nm_m, n = s->nm_n, m = s->nm_m;
        for (int j = 0; j < f; j++)
            for (int q = 0; q < runs; q++)
                for (int i = 0; i < n; i++) {
                    int64_t slot = ((int64_t)j * runs + q) * n + i;
                    V[(int64_t)(q * m + s->nm_idx[slot]) * f + j] = s->values[slot];
                }
        return;
    }
    }
}
