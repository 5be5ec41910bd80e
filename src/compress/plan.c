/* The plan of a compression run: which blocks form each group, each group's rank from the
 * parameter budget, and how its V_i are stored (see src/compress/compress.h).
 *
 * Ranks (p = budget, s = sparsity, P = Σ f over the group's matrices, d the width):
 *   fips, fips-init   r = floor(p·d·P / (d + (1 − s)·P))   (n:m: s = 1 − n/m, r rounded down
 *                                                            to a multiple of m)
 *   shared-svd        r = floor(p·d·P / (d + P))            (s = 0)
 *   svd               k = floor(p·d·f / (d + f)) per matrix (the same formula on one matrix);
 *                     a block's per-matrix bases are stacked into one U, see methods.c
 *   magnitude         no basis; floor(p·d·f) entries per matrix (n:m: n/m of them)
 * Storage: n:m-packed for n:m masks; otherwise CSC or dense, whichever takes fewer bytes (CSC
 * costs 4 + 2 bytes per kept entry plus 4 per column, so dense wins below about 1/3 sparsity:
 * a "sparse" V at 25% sparsity would be larger than the same V stored densely). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "core/tensor.h"

/* ---- group specs ------------------------------------------------------------------------- */

/* Parses a non-negative decimal block index at *p, advancing *p. */
static bool parse_index(const char **p, long *out)
{
    if (!isdigit((unsigned char)**p)) return false;
    char *end;
    long v = strtol(*p, &end, 10);
    if (end - *p > 9) return false;
    *out = v;
    *p = end;
    return true;
}

static int cmp_range(const void *a, const void *b)
{
    const fipsc_block_range *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

/* "invalid --groups 'SPEC': <why>". */
static fipsc_status bad_spec(fipsc_error *err, const char *spec, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static fipsc_status bad_spec(fipsc_error *err, const char *spec, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return fipsc_fail(err, FIPSC_ERR_ARG, "invalid --groups '%s': %s", spec, why);
}

/* "K": consecutive groups of K blocks, the last one taking the rest. */
static fipsc_status parse_size(const char *spec, int n_blocks, fipsc_block_range **out, int *n_out,
                               fipsc_error *err)
{
    const char *p = spec;
    long k;
    if (!parse_index(&p, &k) || *p)
        return bad_spec(err, spec, "expected a group size K, or ranges of blocks like 0-1,2-4");
    if (k < 1) return bad_spec(err, spec, "a group needs at least one block");
    int n = k >= n_blocks ? 1 : n_blocks / (int)k;
    fipsc_block_range *r = malloc((size_t)n * sizeof *r);
    if (!r) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        r[i].first = i * (int)k;
        r[i].last = i == n - 1 ? n_blocks - 1 : (i + 1) * (int)k - 1;
    }
    *out = r;
    *n_out = n;
    return FIPSC_OK;
}

/* "a-b,c,...": explicit groups; fills r (room for every comma + 1) and marks used blocks. */
static fipsc_status parse_list(const char *spec, int n_blocks, fipsc_block_range *r, int *n_out,
                               char *used, fipsc_error *err)
{
    int n = 0;
    const char *p = spec;
    for (;;) {
        long a, b;
        if (!parse_index(&p, &a))
            return bad_spec(err, spec, "expected a block number at position %d", (int)(p - spec) + 1);
        b = a;
        if (*p == '-') {
            p++;
            if (!parse_index(&p, &b))
                return bad_spec(err, spec, "expected a block number after '-' at position %d",
                                (int)(p - spec) + 1);
        }
        if (*p && *p != ',')
            return bad_spec(err, spec, "unexpected '%c' at position %d", *p, (int)(p - spec) + 1);
        if (b < a)
            return bad_spec(err, spec, "the range %ld-%ld runs backwards (write %ld-%ld)", a, b, b, a);
        if (b >= n_blocks)
            return bad_spec(err, spec, "block %ld does not exist (the model has %d blocks, 0-%d)", b,
                            n_blocks, n_blocks - 1);
        for (long l = a; l <= b; l++) {
            if (used[l]) return bad_spec(err, spec, "block %ld is in two groups", l);
            used[l] = 1;
        }
        r[n].first = (int)a;
        r[n].last = (int)b;
        n++;
        if (!*p) break;
        p++; /* past ',' */
    }
    *n_out = n;
    return FIPSC_OK;
}

fipsc_status fipsc_groups_parse(const char *spec, int n_blocks, fipsc_block_range **out,
                                int *n_out, fipsc_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (n_blocks < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "the model has no MLP blocks to group");
    if (!spec || !*spec) return fipsc_fail(err, FIPSC_ERR_ARG, "invalid --groups '': empty");
    if (!strpbrk(spec, ",-")) return parse_size(spec, n_blocks, out, n_out, err);
    int cap = 1;
    for (const char *q = spec; *q; q++) cap += *q == ',';
    fipsc_block_range *r = malloc((size_t)cap * sizeof *r);
    char *used = calloc((size_t)n_blocks, 1);
    if (!r || !used) {
        free(used);
        free(r);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    fipsc_status st = parse_list(spec, n_blocks, r, &n, used, err);
    free(used);
    if (st) {
        free(r);
        return st;
    }
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    *out = r;
    *n_out = n;
    return FIPSC_OK;
}

/* ---- group description ------------------------------------------------------------------- */

fipsc_status compress_group_describe(const fipsc_model *m, fipsc_block_range blocks,
                                     fipsc_fips_group *g, fipsc_mlp **mlps_out, fipsc_error *err)
{
    *mlps_out = NULL;
    int n = blocks.last - blocks.first + 1;
    if (blocks.first < 0 || n < 1 || blocks.last >= m->n_mlps)
        return fipsc_fail(err, FIPSC_ERR_ARG, "blocks %d-%d are not a range of the model's %d blocks",
                          blocks.first, blocks.last, m->n_mlps);
    /* The MLP structs: their weights as the model holds them (16-bit ones are widened where the
     * group reads them: W_cat, the report's errors, the checkpoint hash). */
    fipsc_mlp *mlps = malloc((size_t)n * sizeof *mlps);
    if (!mlps) return fipsc_fail(err, FIPSC_ERR_NOMEM, "blocks %d-%d: out of memory", blocks.first, blocks.last);
    for (int j = 0; j < n; j++) mlps[j] = *m->mlps[blocks.first + j];
    fipsc_status st = fipsc_fips_group_init(g, mlps, n, err);
    if (st) {
        free(mlps);
        return fipsc_fail_context(err, "group %d-%d: ", blocks.first, blocks.last);
    }
    *mlps_out = mlps;
    return FIPSC_OK;
}

int64_t compress_magnitude_keep(int64_t total, double budget)
{
    return (int64_t)floorl((long double)budget * (long double)total * (1.0L + 1e-12L));
}

/* ---- storage ----------------------------------------------------------------------------- */

int64_t compress_storage_bytes(fipsc_v_storage storage, int d, int r, int u_bytes, int v_bytes, int n_matrices,
                               const int *cols, const int64_t *nnz)
{
    int64_t bytes = (int64_t)d * r * u_bytes;
    for (int i = 0; i < n_matrices; i++) bytes += fipsc_v_stored_bytes(storage, r, cols[i], nnz[i], v_bytes);
    return bytes;
}

fipsc_v_storage compress_choose_storage(const fipsc_compress_options *o, int r, int n, const int *cols,
                                        const int64_t *nnz, int v_bytes)
{
    if (o->nm_m > 0) return FIPSC_V_NM;
    if (o->storage != FIPSC_COMPRESS_STORAGE_AUTO) return (fipsc_v_storage)o->storage;
    if (o->method == FIPSC_METHOD_SHARED_SVD) return FIPSC_V_DENSE; /* its V is dense by construction */
    return fipsc_v_storage_cheapest(r, n, cols, nnz, v_bytes);
}

fipsc_dtype compress_value_dtype(const fipsc_model *m, const fipsc_fips_group *g, fipsc_dtype option)
{
    if (option != FIPSC_COMPRESS_DTYPE_AUTO) return option;
    fipsc_dtype common = FIPSC_DTYPE_COUNT;
    for (int j = 0; j < g->n_mlps; j++) {
        const fipsc_mlp *mlp = &g->mlps[j];
        const fipsc_linear *lins[3] = {mlp->kind == FIPSC_MLP_GATED ? &mlp->gate : NULL, &mlp->up, &mlp->down};
        for (int q = 0; q < 3; q++) {
            if (!lins[q]) continue;
            fipsc_dtype dt = fipsc_model_linear_stored_dtype(m, lins[q]);
            if (common == FIPSC_DTYPE_COUNT) common = dt;
            else if (dt != common) return FIPSC_F32;
        }
    }
    return common == FIPSC_F16 || common == FIPSC_BF16 ? common : FIPSC_F32;
}

static bool has_nm(const fipsc_compress_options *o)
{
    return o->nm_m > 0;
}

/* Predicts the plan of one group described by g. */
static fipsc_status plan_group(const fipsc_model *m, const fipsc_fips_group *g, const fipsc_compress_options *o,
                               fipsc_group_plan *pl, fipsc_error *err)
{
    const int d = g->d, n = g->n_matrices;
    int *cols = malloc((size_t)n * sizeof *cols);
    int64_t *nnz = malloc((size_t)n * sizeof *nnz);
    if (!cols || !nnz) {
        free(cols);
        free(nnz);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) cols[i] = g->matrices[i].cols;
    pl->d = d;
    pl->P = g->P;
    pl->n_matrices = n;
    pl->dense_params = (int64_t)d * g->P;
    pl->dense_bytes = 0; /* in the dtypes the weights came in (BF16 against BF16), as inspect counts */
    for (int j = 0; j < g->n_mlps; j++) pl->dense_bytes += fipsc_model_mlp_weight_bytes(m, &g->mlps[j]);
    const bool nm = has_nm(o);
    pl->u_dtype = compress_value_dtype(m, g, o->u_dtype);
    pl->v_dtype = compress_value_dtype(m, g, o->v_dtype);
    const int u_bytes = (int)fipsc_dtype_size(pl->u_dtype), v_bytes = (int)fipsc_dtype_size(pl->v_dtype);
    fipsc_status st = FIPSC_OK;

    switch (o->method) {
    case FIPSC_METHOD_FIPS:
    case FIPSC_METHOD_FIPS_INIT:
    case FIPSC_METHOD_SHARED_SVD: {
        bool dense_v = o->method == FIPSC_METHOD_SHARED_SVD;
        double s = dense_v ? 0.0 : nm ? 1.0 - (double)o->nm_n / o->nm_m : o->sparsity;
        if (o->rank > 0) {
            pl->r = o->rank;
            if (nm && o->rank % o->nm_m) {
                st = fipsc_fail(err, FIPSC_ERR_ARG,
                                "--nm %d:%d needs a rank that is a multiple of %d, but --rank is %d "
                                "(n:m groups every %d consecutive rows of V)", o->nm_n, o->nm_m,
                                o->nm_m, o->rank, o->nm_m);
                break;
            }
        } else if ((st = fipsc_fips_rank_from_budget(d, g->P, o->budget, s, nm ? o->nm_m : 1,
                                                     &pl->r, err))) {
            fipsc_fail_context(err, "--budget %g%s: ", o->budget,
                               nm ? " with --nm (the rank is rounded down to a multiple of m)" : "");
            break;
        }
        int64_t total = (int64_t)pl->r * g->P;
        fipsc_fips_cost cost;
        if ((st = fipsc_fips_cost_predict(g, pl->r, s, nm && !dense_v ? o->nm_n : 0,
                                          nm && !dense_v ? o->nm_m : 0, &cost, err)))
            break;
        /* Per-matrix nnz for the byte estimate: global pruning spreads kept entries unevenly,
         * so this is the even split; the report measures the real bytes. */
        for (int i = 0; i < n; i++)
            nnz[i] = (int64_t)((double)cost.nnz * cols[i] / (double)g->P);
        pl->sparsity = 1.0 - (double)cost.nnz / (double)total;
        pl->kept_params = cost.kept_params;
        pl->storage = compress_choose_storage(o, pl->r, n, cols, nnz, v_bytes);
        pl->stored_bytes = compress_storage_bytes(pl->storage, d, pl->r, u_bytes, v_bytes, n, cols, nnz);
        break;
    }
    case FIPSC_METHOD_SVD: {
        /* Per matrix rank k_i; the bases of a block are stacked into one U (see methods.c), its
         * V_i keep their k_i·f entries, stored as the cheapest (or --storage) says. */
        pl->kept_params = 0;
        pl->stored_bytes = 0;
        pl->r = 0;
        pl->storage = FIPSC_V_CSC;
        for (int j = 0; j < g->n_mlps && !st; j++) {
            int m0 = g->first_matrix[j], m1 = g->first_matrix[j + 1], rsum = 0;
            for (int i = m0; i < m1; i++) {
                int k;
                if ((st = fipsc_fips_rank_from_budget(d, cols[i], o->budget, 0.0, 1, &k, err))) {
                    fipsc_fail_context(err, "--budget %g, svd of a %d × %d matrix: ", o->budget, d, cols[i]);
                    break;
                }
                if (i == 0) pl->r = k;
                nnz[i] = (int64_t)k * cols[i];
                rsum += k;
                pl->kept_params += (int64_t)k * (d + cols[i]);
            }
            if (st) break;
            fipsc_v_storage sv = compress_choose_storage(o, rsum, m1 - m0, cols + m0, nnz + m0, v_bytes);
            pl->stored_bytes += compress_storage_bytes(sv, d, rsum, u_bytes, v_bytes, m1 - m0, cols + m0, nnz + m0);
            if (j == 0) pl->storage = sv;
        }
        pl->sparsity = 0.0;
        break;
    }
    case FIPSC_METHOD_MAGNITUDE: {
        pl->r = d;
        if (nm && d % o->nm_m) {
            st = fipsc_fail(err, FIPSC_ERR_ARG,
                            "--nm %d:%d: magnitude pruning groups every %d consecutive entries of "
                            "a neuron's d = %d weights, and %d does not divide %d", o->nm_n,
                            o->nm_m, o->nm_m, d, o->nm_m, d);
            break;
        }
        int64_t kept = 0;
        for (int i = 0; i < n; i++) {
            int64_t total = (int64_t)d * cols[i];
            nnz[i] = nm ? (int64_t)(d / o->nm_m) * o->nm_n * cols[i]
                        : compress_magnitude_keep(total, o->budget);
            if (nnz[i] < 1) {
                st = fipsc_fail(err, FIPSC_ERR_ARG, "--budget %g keeps no weight of a %d × %d matrix",
                                o->budget, d, cols[i]);
                break;
            }
            kept += nnz[i];
        }
        if (st) break;
        pl->kept_params = kept;
        pl->sparsity = 1.0 - (double)kept / (double)pl->dense_params;
        pl->storage = compress_choose_storage(o, d, n, cols, nnz, v_bytes);
        pl->stored_bytes = compress_storage_bytes(pl->storage, d, d, 0, v_bytes, n, cols, nnz);
        break;
    }
    default:
        st = fipsc_fail(err, FIPSC_ERR_ARG, "unknown method %d", (int)o->method);
    }
    free(cols);
    free(nnz);
    return st;
}

fipsc_status fipsc_compress_plan(const fipsc_model *m, const fipsc_compress_options *o,
                                 fipsc_group_plan **out, int *n_out, fipsc_error *err)
{
    *out = NULL;
    *n_out = 0;
    fipsc_status st = fipsc_compress_options_check(o, err);
    if (st) return st;
    fipsc_block_range *ranges;
    int n;
    if ((st = fipsc_groups_parse(o->groups, m->n_mlps, &ranges, &n, err))) return st;
    fipsc_group_plan *plans = calloc((size_t)n, sizeof *plans);
    if (!plans) {
        free(ranges);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < n && !st; k++) {
        fipsc_fips_group g;
        fipsc_mlp *mlps;
        plans[k].blocks = ranges[k];
        if ((st = compress_group_describe(m, ranges[k], &g, &mlps, err))) break;
        if ((st = plan_group(m, &g, o, &plans[k], err)))
            fipsc_fail_context(err, "group %d (blocks %d-%d): ", k, ranges[k].first, ranges[k].last);
        fipsc_fips_group_free(&g);
        free(mlps);
    }
    free(ranges);
    if (st) {
        free(plans);
        return st;
    }
    *out = plans;
    *n_out = n;
    return FIPSC_OK;
}
