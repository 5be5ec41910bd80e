/* FiPS-compressed matrices: the stored (file) layout of V_i, the kernel layout, and the
 * conversions between them and to dense (see src/ops/factored.h). The kernels that run
 * them are in factored_kernels.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/factored.h"
#include "ops/gemm.h"

/* ------------------------------------------------------------------ names */

static const char *const storage_names[] = {[FIPSC_V_CSC] = "csc", [FIPSC_V_NM] = "nm", [FIPSC_V_DENSE] = "dense"};

const char *fipsc_v_storage_name(fipsc_v_storage s)
{
    return (unsigned)s <= FIPSC_V_DENSE ? storage_names[s] : "?";
}

bool fipsc_v_storage_parse(const char *name, fipsc_v_storage *out)
{
    for (int i = 0; i <= FIPSC_V_DENSE; i++)
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
    s->values = NULL;
    s->col_ptr = s->row_idx = NULL;
    s->nm_idx = NULL;
}

int64_t fipsc_v_stored_bytes(fipsc_v_storage storage, int r, int f, int64_t nnz)
{
    switch (storage) {
    case FIPSC_V_CSC: return nnz * (4 + (r <= 65535 ? 2 : 4)) + ((int64_t)f + 1) * 4;
    case FIPSC_V_NM: return nnz * 5;
    case FIPSC_V_DENSE: return (int64_t)r * f * 4;
    }
    return 0;
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

/* ------------------------------------------------------------------ kernel layout */

void fipsc_factored_free(fipsc_factored_linear *fl)
{
    if (!fl) return;
    free(fl->weight_name);
    free(fl->ptr);
    free(fl->idx16);
    free(fl->idx32);
    free(fl->val);
    free(fl->nm_idx);
    free(fl);
}

int64_t fipsc_factored_v_bytes(const fipsc_factored_linear *fl)
{
    return fipsc_v_stored_bytes(fl->group->storage, fl->r, fl->f, fl->nnz);
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

static uint32_t index_at(const fipsc_factored_linear *fl, int64_t p)
{
    return fl->idx16 ? fl->idx16[p] : fl->idx32[p];
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

fipsc_status fipsc_factored_new(const char *weight_name, int layer, fipsc_mlp_role role,
                                const fipsc_compressed_group *group, fipsc_v_stored *v,
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
        (!group->U && group->r != group->d)) {
        st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: V (%d rows, %s) does not match its group (r %d, %s)",
                        weight_name, v->r, fipsc_v_storage_name(v->storage), group->r,
                        fipsc_v_storage_name(group->storage));
    } else if (v->storage == FIPSC_V_DENSE) {
        fl->layout = FIPSC_VK_DENSE;
        fl->val = v->values, v->values = NULL;
    } else if (fl->expanding && v->storage == FIPSC_V_CSC) {
        fl->layout = FIPSC_VK_CSC;
        fl->n_lists = v->f;
        fl->ptr = v->col_ptr, v->col_ptr = NULL;
        fl->val = v->values, v->values = NULL;
        uint32_t *rows = v->row_idx;
        v->row_idx = NULL;
        st = set_indices(fl, rows, v->r, err);
    } else if (fl->expanding) {
        fl->layout = FIPSC_VK_NM;
        fl->val = v->values, v->values = NULL;
        fl->nm_idx = v->nm_idx, v->nm_idx = NULL;
    } else {
        fl->layout = FIPSC_VK_CSR;
        st = csr_from_stored(fl, v, err);
    }
    fipsc_v_stored_free(v);
    if (st) {
        fipsc_factored_free(fl);
        return st;
    }
    *out = fl;
    return FIPSC_OK;
}

fipsc_status fipsc_factored_to_stored(const fipsc_factored_linear *fl, fipsc_v_stored *out,
                                      fipsc_error *err)
{
    const fipsc_compressed_group *g = fl->group;
    memset(out, 0, sizeof *out);
    out->storage = g->storage;
    out->r = fl->r;
    out->f = fl->f;
    out->nm_n = g->nm_n;
    out->nm_m = g->nm_m;
    out->nnz = fl->nnz;
    out->values = alloc_n(fl->nnz, sizeof *out->values);
    if (!out->values) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", fl->weight_name);
    if (fl->layout == FIPSC_VK_DENSE || fl->layout == FIPSC_VK_NM) {
        memcpy(out->values, fl->val, (size_t)fl->nnz * sizeof *out->values);
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
        memcpy(out->values, fl->val, (size_t)fl->nnz * sizeof *out->values);
        for (int64_t p = 0; p < fl->nnz; p++) out->row_idx[p] = index_at(fl, p);
        return FIPSC_OK;
    }
    /* CSR back to columns: visiting rows in order lists every column's rows increasing. */
    const int r = fl->r, f = fl->f;
    if (g->storage == FIPSC_V_CSC) {
        out->col_ptr = calloc((size_t)f + 1, sizeof *out->col_ptr);
        out->row_idx = alloc_n(fl->nnz, sizeof *out->row_idx);
        uint32_t *next = alloc_n(f, sizeof *next);
        if (!out->col_ptr || !out->row_idx || !next) {
            free(next);
            goto nomem;
        }
        for (int64_t p = 0; p < fl->nnz; p++) out->col_ptr[index_at(fl, p) + 1]++;
        for (int j = 0; j < f; j++) out->col_ptr[j + 1] += out->col_ptr[j];
        memcpy(next, out->col_ptr, (size_t)f * sizeof *next);
        for (int k = 0; k < r; k++)
            for (uint32_t p = fl->ptr[k]; p < fl->ptr[k + 1]; p++) {
                uint32_t q = next[index_at(fl, p)]++;
                out->values[q] = fl->val[p];
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
            int64_t run = (int64_t)index_at(fl, p) * runs + k / m;
            if (count[run] == n) {
                free(count);
                fipsc_v_stored_free(out);
                return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: n:m run overflow while writing", fl->weight_name);
            }
            int64_t slot = run * n + count[run]++;
            out->values[slot] = fl->val[p];
            out->nm_idx[slot] = (uint8_t)(k % m);
        }
    free(count);
    return FIPSC_OK;
nomem:
    fipsc_v_stored_free(out);
    return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", fl->weight_name);
}

fipsc_status fipsc_factored_densify(const fipsc_factored_linear *fl, float *w, fipsc_error *err)
{
    fipsc_v_stored v;
    fipsc_status st = fipsc_factored_to_stored(fl, &v, err);
    if (st) return st;
    const int d = fl->d, r = fl->r, f = fl->f;
    float *V = alloc_n((int64_t)r * f, sizeof *V);
    float *M = fl->group->U && fl->expanding ? alloc_n((int64_t)d * f, sizeof *M) : NULL;
    if (!V || (fl->group->U && fl->expanding && !M)) {
        free(V);
        free(M);
        fipsc_v_stored_free(&v);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory densifying", fl->weight_name);
    }
    fipsc_v_stored_to_dense(&v, V);
    fipsc_v_stored_free(&v);
    /* M = U·V [d, f] (M = V for an identity basis); the weight is M (contracting) or Mᵀ. */
    const float *Md = V;
    if (fl->group->U) {
        float *dst = fl->expanding ? M : w;
        fipsc_gemm(false, false, d, f, r, fl->group->U, r, V, f, 0.0f, dst, f);
        Md = dst;
    }
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
