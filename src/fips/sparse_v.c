/* The kept entries of the V_i being trained, as lists for the V-sparse training step
 * (fips_internal.h, src/fips/recon.c).
 *
 * V [r, P] stays the masked dense matrix the optimiser updates; this holds each V_i's kept entries
 * twice, as kernel lists of src/ops/factored.h: per column (CSC: column c's kept rows k, for
 * t·V_i) and per row (CSR: row k's kept columns c, for h·V_iᵀ and the gradient at the kept
 * entries). Positions take 16 bits when the dimension they index fits. The pattern follows the
 * mask (rebuilt when it changes, every delta_t steps at most); the values follow V: the row lists'
 * are written by the optimiser as it updates V (fips_adamw_kept) or copied from V, the column
 * lists' copied from the row lists every step. Per kept entry: 2 × (4-byte value + position). */
#include <stdlib.h>
#include <string.h>

#include "fips/fips_internal.h"
#include "ops/factored_tiles.h"

static void free_lists(fipsc_factored_linear *fl)
{
    free(fl->ptr);
    free(fl->idx16);
    free(fl->idx32);
    free(fl->val);
    memset(fl, 0, sizeof *fl);
}

void fips_sparse_v_free(fips_sparse_v *s)
{
    if (!s) return;
    for (int a = 0; a < s->n; a++) { /* either array may be missing after a failed build */
        if (s->by_col) free_lists(&s->by_col[a]);
        if (s->by_row) free_lists(&s->by_row[a]);
    }
    free(s->by_col);
    free(s->by_row);
    memset(s, 0, sizeof *s);
}

/* Lists over n_lists outputs and nnz entries whose positions index a dimension of `extent`. */
static bool alloc_lists(fipsc_factored_linear *fl, fipsc_v_layout layout, int r, int f, int64_t nnz)
{
    const bool by_col = layout == FIPSC_VK_CSC;
    const int lists = by_col ? f : r, extent = by_col ? r : f;
    *fl = (fipsc_factored_linear){.weight_name = "V", .expanding = by_col, .d = 0, .r = r, .f = f, .nnz = nnz,
                                  .layout = layout, .n_lists = lists};
    const size_t n = (size_t)nnz + 1; /* + 1: never malloc(0) */
    fl->ptr = calloc((size_t)lists + 1, sizeof *fl->ptr);
    fl->val = malloc(n * sizeof *fl->val);
    if (extent <= 65536) fl->idx16 = malloc(n * sizeof *fl->idx16);
    else fl->idx32 = malloc(n * sizeof *fl->idx32);
    return fl->ptr && fl->val && (fl->idx16 || fl->idx32);
}

static void set_position(fipsc_factored_linear *fl, uint32_t p, int q)
{
    if (fl->idx16) fl->idx16[p] = (uint16_t)q;
    else fl->idx32[p] = (uint32_t)q;
}

/* Calls visit(position) for the set bits of mask in [e0, e0 + len), in order: whole 64-bit words
 * at a time (a quarter of V kept: most words hold several). */
#define FOR_KEPT(mask, e0, len, c, body)                                                          \
    do {                                                                                          \
        const int64_t e_ = (e0), end_ = e_ + (len);                                               \
        for (int64_t w_ = e_ >> 6; w_ <= (end_ - 1) >> 6 && end_ > e_; w_++) {                     \
            uint64_t bits_ = (mask)[w_];                                                          \
            if (w_ == e_ >> 6) bits_ &= ~0ULL << (e_ & 63);                                       \
            if (w_ == (end_ - 1) >> 6 && (end_ & 63)) bits_ &= ~0ULL >> (64 - (end_ & 63));        \
            for (; bits_; bits_ &= bits_ - 1) {                                                   \
                const int c = (int)((w_ << 6) + __builtin_ctzll(bits_) - e_);                     \
                body;                                                                             \
            }                                                                                     \
        }                                                                                         \
    } while (0)

/* Columns handled by one task when going from row lists to column lists: their cursors stay in
 * L1, and each row of V contributes one short run of them. */
enum { COLUMN_BLOCK = 512 };

/* The column lists from the row lists, a block of columns per task: their positions (pattern)
 * or their values. Rows are visited in increasing order, so each column's rows increase.
 * (Reading down the columns of V itself would touch a page of V per entry.) */
static void columns_from_rows(const fipsc_factored_linear *rows, fipsc_factored_linear *cols, bool pattern)
{
    const int r = rows->n_lists, f = cols->n_lists, blocks = (f + COLUMN_BLOCK - 1) / COLUMN_BLOCK;
#pragma omp parallel for schedule(dynamic, 1) if ((int64_t)rows->nnz >= FIPS_PARALLEL_MIN)
    for (int b = 0; b < blocks; b++) {
        const int c0 = b * COLUMN_BLOCK, c1 = c0 + COLUMN_BLOCK < f ? c0 + COLUMN_BLOCK : f;
        uint32_t cursor[COLUMN_BLOCK];
        memcpy(cursor, cols->ptr + c0, (size_t)(c1 - c0) * sizeof *cursor);
        for (int k = 0; k < r; k++)
            for (uint32_t p = fipsc_factored_list_from(rows, k, c0); p < rows->ptr[k + 1]; p++) {
                const int c = (int)fipsc_factored_position(rows, p);
                if (c >= c1) break;
                const uint32_t at = cursor[c - c0]++;
                if (pattern) set_position(cols, at, k);
                else cols->val[at] = rows->val[p];
            }
    }
}

/* The pattern of V_i (columns off .. off + f - 1 of V) into both list sets: counts per row (and
 * per column), then each row's columns, then each column's rows; rows in parallel. */
static bool build_pattern(const fipsc_fips_factors *F, int64_t off, int f, fipsc_factored_linear *by_col,
                          fipsc_factored_linear *by_row)
{
    const int r = F->r;
    uint32_t *count = calloc((size_t)r + 1, sizeof *count);
    if (!count) return false;
    int64_t nnz = 0;
#pragma omp parallel for schedule(static) reduction(+ : nnz)
    for (int k = 0; k < r; k++) {
        uint32_t n = 0;
        FOR_KEPT(F->mask, (int64_t)k * F->P + off, f, c, ((void)c, n++));
        count[k] = n;
        nnz += n;
    }
    bool ok = nnz <= (int64_t)UINT32_MAX - 1 && alloc_lists(by_col, FIPSC_VK_CSC, r, f, nnz) &&
              alloc_lists(by_row, FIPSC_VK_CSR, r, f, nnz);
    if (ok) {
        for (int k = 0; k < r; k++) by_row->ptr[k + 1] = by_row->ptr[k] + count[k];
#pragma omp parallel for schedule(static)
        for (int k = 0; k < r; k++) {
            uint32_t p = by_row->ptr[k];
            FOR_KEPT(F->mask, (int64_t)k * F->P + off, f, c, set_position(by_row, p++, c));
        }
        for (int64_t p = 0; p < nnz; p++) by_col->ptr[fipsc_factored_position(by_row, p) + 1]++;
        for (int c = 0; c < f; c++) by_col->ptr[c + 1] += by_col->ptr[c];
        columns_from_rows(by_row, by_col, true);
    }
    free(count);
    return ok;
}

fipsc_status fips_sparse_v_build(fips_sparse_v *s, const fipsc_fips_group *g, const fipsc_fips_factors *F, int m0,
                                 int m1, fipsc_error *err)
{
    fips_sparse_v_free(s);
    s->first = m0;
    s->n = m1 - m0;
    s->by_col = calloc((size_t)s->n, sizeof *s->by_col);
    s->by_row = calloc((size_t)s->n, sizeof *s->by_row);
    bool ok = s->by_col && s->by_row;
    for (int a = 0; a < s->n && ok; a++) {
        const fipsc_fips_matrix *mx = &g->matrices[m0 + a];
        ok = build_pattern(F, mx->col_offset, mx->cols, &s->by_col[a], &s->by_row[a]);
    }
    if (!ok) {
        fips_sparse_v_free(s);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS training: out of memory for the kept entries of V as lists "
                          "(r = %d, %d matrices)", F->r, m1 - m0);
    }
    fips_sparse_v_load(s, g, F, false);
    return FIPSC_OK;
}

void fips_sparse_v_load(fips_sparse_v *s, const fipsc_fips_group *g, const fipsc_fips_factors *F, bool rows_current)
{
    const int64_t P = F->P;
    for (int a = 0; a < s->n; a++) {
        const fipsc_fips_matrix *mx = &g->matrices[s->first + a];
        const float *V = F->V + mx->col_offset;
        fipsc_factored_linear *rows = &s->by_row[a], *cols = &s->by_col[a];
        const int r = F->r;
        /* Row lists from V, a row at a time (V read in order); then the column lists from them. */
        if (!rows_current) {
#pragma omp parallel for schedule(static) if ((int64_t)rows->nnz >= FIPS_PARALLEL_MIN)
            for (int k = 0; k < r; k++)
                for (uint32_t p = rows->ptr[k]; p < rows->ptr[k + 1]; p++)
                    rows->val[p] = V[(int64_t)k * P + fipsc_factored_position(rows, p)];
        }
        columns_from_rows(rows, cols, false);
    }
}

int64_t fipsc_fips_sparse_step_bytes(int64_t kept, int r, int f_max, int64_t rows)
{
    const int64_t per_position = (r <= 65536 ? 2 : 4) + (f_max <= 65536 ? 2 : 4);
    const int64_t n = rows < INT32_MAX ? rows : INT32_MAX;
    const int64_t tiles = (int64_t)(2 * fipsc_tiles_floats((int)n, r) + 3 * fipsc_tiles_floats((int)n, f_max)) * 4;
    return kept * (8 + per_position) + tiles;
}
