/* The FiPS group: matrix list, orientation, W_cat and back, and the factor arrays.
 *
 * Orientation (ALGORITHM.md §2): every matrix becomes d × f with one neuron per column. gate/up/fc1
 * are stored [f, d] (expanding: output larger than input) and are transposed; down/fc2 are
 * stored [d, f] (contracting) and are copied. W_cat = [M_1 | ... | M_k], d × P. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "core/threads.h"
#include "fips/fips_internal.h"
#include "ops/gemm.h"
#include "ops/transpose.h"

/* Checks one linear slot of MLP j: a dense weight (float32, or 16-bit as a checkpoint stores it)
 * of shape [out, in]. */
static fipsc_status check_linear(const fipsc_linear *lin, int j, fipsc_mlp_role role, int out,
                                 int in, fipsc_error *err)
{
    const char *name = lin->weight_name ? lin->weight_name : "";
    if ((!lin->w && !lin->w16) || lin->factored)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS group: MLP %d %s %s: needs a dense weight", j,
                          fipsc_mlp_role_name(role), name);
    if (lin->out != out || lin->in != in)
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "FiPS group: MLP %d %s weight %s is [%d, %d], expected [%d, %d]", j,
                          fipsc_mlp_role_name(role), name, lin->out, lin->in, out, in);
    return FIPSC_OK;
}

fipsc_status fipsc_fips_group_init(fipsc_fips_group *g, const fipsc_mlp *mlps, int n_mlps,
                                   fipsc_error *err)
{
    fipsc_blas_single_thread(); /* the group's SVD and products run on one BLAS thread */
    memset(g, 0, sizeof *g);
    if (!mlps || n_mlps < 1)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS group: needs at least one MLP (got %d)", n_mlps);
    int d = mlps[0].d, n_mat = 0;
    for (int j = 0; j < n_mlps; j++) {
        const fipsc_mlp *m = &mlps[j];
        if (m->d != d)
            return fipsc_fail(err, FIPSC_ERR_SHAPE,
                              "FiPS group: MLP %d has width d = %d, MLP 0 has %d (a group shares "
                              "one basis of dimension d)", j, m->d, d);
        if (m->d < 1 || m->f < 1)
            return fipsc_fail(err, FIPSC_ERR_SHAPE, "FiPS group: MLP %d has d = %d, f = %d", j,
                              m->d, m->f);
        if ((unsigned)m->act > FIPSC_ACT_RELU)
            return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS group: MLP %d: unknown activation %d", j,
                              (int)m->act);
        fipsc_status st;
        if (m->kind == FIPSC_MLP_GATED) {
            if ((st = check_linear(&m->gate, j, FIPSC_ROLE_GATE, m->f, d, err))) return st;
            n_mat += 3;
        } else if (m->kind == FIPSC_MLP_PLAIN) {
            if (m->gate.w || m->gate.w16 || m->gate.factored)
                return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS group: MLP %d is plain but has a gate", j);
            n_mat += 2;
        } else {
            return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS group: MLP %d: unknown kind %d", j,
                              (int)m->kind);
        }
        if ((st = check_linear(&m->up, j, FIPSC_ROLE_UP, m->f, d, err)) ||
            (st = check_linear(&m->down, j, FIPSC_ROLE_DOWN, d, m->f, err)))
            return st;
    }
    g->matrices = calloc((size_t)n_mat, sizeof *g->matrices);
    g->first_matrix = calloc((size_t)n_mlps + 1, sizeof *g->first_matrix);
    if (!g->matrices || !g->first_matrix) {
        fipsc_fips_group_free(g);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS group: out of memory");
    }
    g->d = d;
    g->n_mlps = n_mlps;
    g->mlps = mlps;
    g->n_matrices = n_mat;
    int i = 0;
    int64_t off = 0;
    for (int j = 0; j < n_mlps; j++) {
        g->first_matrix[j] = i;
        static const fipsc_mlp_role gated[] = {FIPSC_ROLE_GATE, FIPSC_ROLE_UP, FIPSC_ROLE_DOWN};
        static const fipsc_mlp_role plain[] = {FIPSC_ROLE_UP, FIPSC_ROLE_DOWN};
        bool is_gated = mlps[j].kind == FIPSC_MLP_GATED;
        int k = is_gated ? 3 : 2;
        for (int q = 0; q < k; q++, i++) {
            fipsc_fips_matrix *mx = &g->matrices[i];
            mx->mlp = j;
            mx->role = is_gated ? gated[q] : plain[q];
            mx->expanding = mx->role != FIPSC_ROLE_DOWN;
            mx->cols = mlps[j].f;
            mx->col_offset = off;
            off += mlps[j].f;
        }
    }
    g->first_matrix[n_mlps] = i;
    g->P = off;
    return FIPSC_OK;
}

void fipsc_fips_group_free(fipsc_fips_group *g)
{
    if (!g) return;
    free(g->matrices);
    free(g->first_matrix);
    memset(g, 0, sizeof *g);
}

int fipsc_fips_matrix_index(const fipsc_fips_group *g, int mlp, fipsc_mlp_role role)
{
    if (mlp < 0 || mlp >= g->n_mlps) return -1;
    for (int i = g->first_matrix[mlp]; i < g->first_matrix[mlp + 1]; i++)
        if (g->matrices[i].role == role) return i;
    return -1;
}

void fipsc_fips_matrix_weight_span(const fipsc_fips_group *g, int i, int64_t first, int64_t count, float *dst)
{
    const fipsc_fips_matrix *mx = &g->matrices[i];
    const fipsc_linear *lin = fipsc_mlp_slot((fipsc_mlp *)&g->mlps[mx->mlp], mx->role);
    if (lin->w16) fipsc_convert16_to_f32((fipsc_dtype)lin->w16_dtype, lin->w16 + first, (size_t)count, dst);
    else memcpy(dst, lin->w + first, (size_t)count * sizeof *dst);
}

/* Rows of a 16-bit weight widened at a time while W_cat is filled (a float32 copy of the whole
 * group's weights is never made). */
enum { WIDEN_ROWS = 256 };

fipsc_status fipsc_fips_concat(const fipsc_fips_group *g, float *wcat, fipsc_error *err)
{
    const int threads = fipsc_threads_get();
    int64_t widest = 0; /* the longest row [in] of a 16-bit weight */
    for (int i = 0; i < g->n_matrices; i++) {
        const fipsc_fips_matrix *mx = &g->matrices[i];
        const int64_t in = mx->expanding ? g->d : mx->cols;
        if (fipsc_mlp_slot((fipsc_mlp *)&g->mlps[mx->mlp], mx->role)->w16 && in > widest) widest = in;
    }
    float *bufs = NULL; /* per thread WIDEN_ROWS rows of that length */
    if (widest > 0 && !(bufs = malloc((size_t)threads * WIDEN_ROWS * (size_t)widest * sizeof *bufs)))
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory widening the group's 16-bit weights");
    for (int i = 0; i < g->n_matrices; i++) {
        const fipsc_fips_matrix *mx = &g->matrices[i];
        const fipsc_linear *lin = fipsc_mlp_slot((fipsc_mlp *)&g->mlps[mx->mlp], mx->role);
        float *dst = wcat + mx->col_offset;
        if (lin->w16) { /* chunks of rows of [out, in], each widened, then placed like the float32 ones */
            const int64_t out = mx->expanding ? mx->cols : g->d, in = mx->expanding ? g->d : mx->cols;
#pragma omp parallel for schedule(static) num_threads(threads) if (out * in >= FIPS_PARALLEL_MIN)
            for (int64_t r0 = 0; r0 < out; r0 += WIDEN_ROWS) {
                float *rows = bufs + (size_t)omp_get_thread_num() * WIDEN_ROWS * (size_t)widest;
                const int64_t n = out - r0 < WIDEN_ROWS ? out - r0 : WIDEN_ROWS;
                fipsc_fips_matrix_weight_span(g, i, r0 * in, n * in, rows);
                if (mx->expanding) fipsc_transpose(rows, in, dst + r0, g->P, n, in);
                else
                    for (int64_t a = 0; a < n; a++)
                        memcpy(dst + (r0 + a) * g->P, rows + a * in, (size_t)in * sizeof(float));
            }
            continue;
        }
        const float *w = lin->w;
        if (mx->expanding) {
            /* w is [f, d]: W_cat[a, off + c] = w[c, a]. */
            fipsc_transpose(w, g->d, dst, g->P, mx->cols, g->d);
        } else {
#pragma omp parallel for schedule(static) if ((int64_t)g->d * mx->cols >= FIPS_PARALLEL_MIN)
            for (int64_t a = 0; a < g->d; a++)
                memcpy(dst + a * g->P, w + a * mx->cols, (size_t)mx->cols * sizeof(float));
        }
    }
    free(bufs);
    return FIPSC_OK;
}

void fipsc_fips_uncat(const fipsc_fips_group *g, int i, const float *block, int64_t ld, float *w)
{
    const fipsc_fips_matrix *mx = &g->matrices[i];
    if (mx->expanding) {
        fipsc_transpose(block, ld, w, g->d, g->d, mx->cols); /* w[c, a] = block[a, c] */
    } else {
        for (int64_t a = 0; a < g->d; a++)
            memcpy(w + a * mx->cols, block + a * ld, (size_t)mx->cols * sizeof(float));
    }
}

fipsc_status fipsc_fips_factors_alloc(fipsc_fips_factors *F, int d, int r, int64_t P,
                                      fipsc_error *err)
{
    memset(F, 0, sizeof *F);
    if (d < 1 || r < 1 || P < 1)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS factors: d = %d, r = %d, P = %lld must be positive",
                          d, r, (long long)P);
    size_t nu = (size_t)d * (size_t)r, nv = (size_t)r * (size_t)P;
    F->U = calloc(nu, sizeof(float));
    F->V = calloc(nv, sizeof(float));
    const size_t words = (nv + 63) / 64;
    F->mask = malloc(words * sizeof *F->mask);
    if (!F->U || !F->V || !F->mask) {
        fipsc_fips_factors_free(F);
        return fipsc_fail(err, FIPSC_ERR_NOMEM,
                          "FiPS factors: out of memory for U [%d, %d] and V [%d, %lld] (%.2f GB)",
                          d, r, r, (long long)P, (double)(nu * 4 + nv * 4 + words * 8) / 1e9);
    }
    /* every entry kept; the bits past r·P stay 0 */
    memset(F->mask, 0xFF, words * sizeof *F->mask);
    if (nv % 64) F->mask[words - 1] = ((uint64_t)1 << (nv % 64)) - 1;
    F->d = d;
    F->r = r;
    F->P = P;
    return FIPSC_OK;
}

void fipsc_fips_factors_free(fipsc_fips_factors *F)
{
    if (!F) return;
    free(F->U);
    free(F->V);
    free(F->mask);
    memset(F, 0, sizeof *F);
}

fipsc_status fipsc_fips_factors_dense(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                      int i, float *w, fipsc_error *err)
{
    if (i < 0 || i >= g->n_matrices)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS: matrix index %d out of range [0, %d)", i,
                          g->n_matrices);
    if (F->d != g->d || F->P != g->P)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "FiPS: factors are for d = %d, P = %lld, group has "
                          "d = %d, P = %lld", F->d, (long long)F->P, g->d, (long long)g->P);
    const fipsc_fips_matrix *mx = &g->matrices[i];
    const float *Vi = F->V + mx->col_offset;
    if (mx->expanding) /* w [f, d] = (U·V_i)ᵀ = V_iᵀ·Uᵀ */
        fipsc_gemm(true, true, mx->cols, g->d, F->r, Vi, (int)F->P, F->U, F->r, 0.0f, w, g->d);
    else /* w [d, f] = U·V_i (fipsc_gemm: the same bits for any thread count) */
        fipsc_gemm(false, false, g->d, mx->cols, F->r, F->U, F->r, Vi, (int)F->P, 0.0f, w, mx->cols);
    return FIPSC_OK;
}

const int *fips_resolve_set(const fipsc_fips_group *g, const int *set, int n_set, int *n_out,
                            int **owned, fipsc_error *err)
{
    *owned = NULL;
    if (!set || n_set == 0) {
        int *all = malloc((size_t)g->n_matrices * sizeof *all);
        if (!all) {
            fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS: out of memory");
            return NULL;
        }
        for (int i = 0; i < g->n_matrices; i++) all[i] = i;
        *owned = all;
        *n_out = g->n_matrices;
        return all;
    }
    for (int a = 0; a < n_set; a++) {
        if (set[a] < 0 || set[a] >= g->n_matrices) {
            fipsc_fail(err, FIPSC_ERR_ARG, "FiPS: matrix index %d out of range [0, %d)", set[a],
                       g->n_matrices);
            return NULL;
        }
        for (int b = 0; b < a; b++)
            if (set[b] == set[a]) {
                fipsc_fail(err, FIPSC_ERR_ARG, "FiPS: matrix %d listed twice in a set", set[a]);
                return NULL;
            }
    }
    *n_out = n_set;
    return set;
}
