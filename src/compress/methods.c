/* The compression methods, one group at a time, all at the same parameter accounting (see
 * src/compress/compress.h and plan.c for the ranks):
 *
 *   fips        W_cat = [M_1 | ... | M_k] ≈ U·V, SVD initialisation at rank r, then training of U
 *               and the masked V_i on the calibration rows (GMP / RigL / static / n:m masks).
 *   fips-init   the same initialisation, pruned once by global magnitude (or n:m), no training:
 *               what training starts from, so fips against fips-init is what training buys.
 *   shared-svd  the same basis U (top-r left singular vectors of W_cat) with dense V = UᵀW_cat
 *               (s = 0): Basis-Sharing-like; with --init whitened, Basis Sharing's whitening too.
 * fips, fips-init and shared-svd start from the SVD of W_cat, or with --init whitened from the SVD
 * of W_cat whitened by the group's calibration inputs (src/fips/whiten.c).
 *   svd         every matrix alone: M ≈ A_k·(Σ_k·B_kᵀ), k = floor(p·d·f / (d + f)).
 *   magnitude   every matrix alone keeps its floor(p·d·f) largest |w| (or the n largest of every
 *               run of m consecutive entries of each neuron's d weights): an identity basis.
 * Every matrix is handled in the d × f orientation of the FiPS group (one neuron per column) and
 * reconstructed back to the model's [out, in] for the report and the dense path. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "ops/sample.h"
#include "core/threads.h"

void compress_part_free(compress_part *p)
{
    if (!p) return;
    if (p->V)
        for (int i = 0; i < p->spec.n_matrices; i++) free(p->V[i]);
    free(p->V);
    free(p->U);
    free(p->matrices);
    memset(p, 0, sizeof *p);
}

static void free_matrix_list(float **list, int n)
{
    if (!list) return;
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

void compress_outcome_free(compress_outcome *o)
{
    if (!o) return;
    for (int k = 0; k < o->n_parts; k++) compress_part_free(&o->parts[k]);
    free(o->parts);
    free_matrix_list(o->recon, o->n_matrices);
    free(o->before_err);
    free(o->before_holdout_err);
    free(o->nnz);
    memset(o, 0, sizeof *o);
}

static float **alloc_matrix_list(const fipsc_fips_group *g)
{
    float **list = calloc((size_t)g->n_matrices, sizeof *list);
    if (!list) return NULL;
    for (int i = 0; i < g->n_matrices; i++) {
        list[i] = malloc((size_t)g->d * (size_t)g->matrices[i].cols * sizeof(float));
        if (!list[i]) {
            free_matrix_list(list, g->n_matrices);
            return NULL;
        }
    }
    return list;
}

/* Columns [off, off + cols) of a [rows, ld] array, copied into a contiguous [rows, cols] one. */
static float *copy_columns(const float *a, int rows, int64_t ld, int64_t off, int cols)
{
    float *out = malloc((size_t)rows * (size_t)cols * sizeof(float));
    if (!out) return NULL;
    for (int64_t k = 0; k < rows; k++)
        memcpy(out + k * cols, a + k * ld + off, (size_t)cols * sizeof(float));
    return out;
}

static int64_t count_nonzero(const float *v, int64_t n)
{
    int64_t nz = 0;
    for (int64_t e = 0; e < n; e++) nz += v[e] != 0.0f;
    return nz;
}

/* A part covering every matrix of g with basis U (moved in; NULL = identity) and V_i cut from the
 * [r, P] array V. */
static fipsc_status make_group_part(const fipsc_fips_group *g, const fipsc_group_plan *plan,
                                    float **U, int r, const float *V, fipsc_v_storage storage,
                                    const fipsc_compress_options *o, compress_part *part,
                                    int64_t *nnz, fipsc_error *err)
{
    memset(part, 0, sizeof *part);
    const int n = g->n_matrices;
    part->matrices = calloc((size_t)n, sizeof *part->matrices);
    part->V = calloc((size_t)n, sizeof *part->V);
    if (!part->matrices || !part->V) goto nomem;
    part->spec.n_matrices = n;
    for (int i = 0; i < n; i++) {
        const fipsc_fips_matrix *mx = &g->matrices[i];
        if (!(part->V[i] = copy_columns(V, r, g->P, mx->col_offset, mx->cols))) goto nomem;
        nnz[i] = count_nonzero(part->V[i], (int64_t)r * mx->cols);
        part->matrices[i] = (fipsc_group_matrix){plan->blocks.first + mx->mlp,
                                                 mx->role, part->V[i]};
    }
    part->U = *U;
    *U = NULL;
    part->spec.first_layer = plan->blocks.first;
    part->spec.last_layer = plan->blocks.last;
    part->spec.d = g->d;
    part->spec.r = r;
    part->spec.U = part->U;
    part->spec.matrices = part->matrices;
    part->spec.storage = storage;
    part->spec.nm_n = storage == FIPSC_V_NM ? o->nm_n : 0;
    part->spec.nm_m = storage == FIPSC_V_NM ? o->nm_m : 0;
    part->spec.method = fipsc_compress_method_name(o->method);
    part->spec.u_dtype = plan->u_dtype;
    part->spec.v_dtype = plan->v_dtype;
    return FIPSC_OK;
nomem:
    compress_part_free(part);
    return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory building the compressed group");
}

/* The storage of V's of rank r of the n matrices mx with these nnz (compress_choose_storage),
 * decided from the V actually produced. */
static fipsc_v_storage choose_storage_rows(const fipsc_compress_options *o, const fipsc_group_plan *plan, int r,
                                           int n, const fipsc_fips_matrix *mx, const int64_t *nnz)
{
    int *cols = malloc((size_t)n * sizeof *cols);
    if (!cols) return FIPSC_V_DENSE; /* always valid; only the byte count suffers */
    for (int i = 0; i < n; i++) cols[i] = mx[i].cols;
    fipsc_v_storage s = compress_choose_storage(o, r, n, cols, nnz, (int)fipsc_dtype_size(plan->v_dtype));
    free(cols);
    return s;
}

static fipsc_v_storage choose_storage(const fipsc_compress_options *o, const fipsc_group_plan *plan,
                                      const fipsc_fips_group *g, int r, const int64_t *nnz)
{
    return choose_storage_rows(o, plan, r, g->n_matrices, g->matrices, nnz);
}

/* Prunes F to the final mask at once: n:m, or global magnitude to sparsity s over the group. */
static fipsc_status prune_final(const fipsc_fips_group *g, fipsc_fips_factors *F,
                                const fipsc_compress_options *o, fipsc_error *err)
{
    if (o->nm_m > 0) return fipsc_fips_prune_nm(g, F, NULL, 0, o->nm_n, o->nm_m, err);
    if (o->sparsity <= 0.0) return FIPSC_OK;
    return fipsc_fips_prune_magnitude(g, F, NULL, 0,
                                      fipsc_fips_keep_count((int64_t)F->r * F->P, o->sparsity), err);
}

static fipsc_status reconstruct(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                float **list, fipsc_error *err)
{
    fipsc_status st = FIPSC_OK;
    for (int i = 0; i < g->n_matrices && !st; i++) st = fipsc_fips_factors_dense(g, F, i, list[i], err);
    return st;
}

static fipsc_status copy_factors(const fipsc_fips_factors *F, fipsc_fips_factors *C,
                                 fipsc_error *err)
{
    fipsc_status st = fipsc_fips_factors_alloc(C, F->d, F->r, F->P, err);
    if (st) return st;
    size_t nv = (size_t)F->r * (size_t)F->P;
    memcpy(C->U, F->U, (size_t)F->d * (size_t)F->r * sizeof(float));
    memcpy(C->V, F->V, nv * sizeof(float));
    memcpy(C->mask, F->mask, fipsc_fips_mask_words(F) * sizeof *F->mask);
    return FIPSC_OK;
}

/* Trains F with t. A divergence (the trainer's FIPSC_ERR_NUMERIC: the loss became NaN or Inf, or
 * more than 1e4 times the targets' mean square)
 * restarts training from the same initialisation and seed with lr and lr_min halved, up to
 * o->divergence_retries times: retry k is the run with --lr lr/2^k, bit for bit. */
static fipsc_status train_with_retries(const fipsc_fips_group *g, fipsc_fips_factors *F,
                                       const fipsc_fips_calib *calib,
                                       const fipsc_compress_options *o, fipsc_fips_train_opts *t,
                                       compress_train_hook hook, compress_outcome *out,
                                       fipsc_error *err)
{
    fipsc_fips_factors F0 = {0};
    fipsc_status st = o->divergence_retries > 0 ? copy_factors(F, &F0, err) : FIPSC_OK;
    for (int attempt = 0; !st; attempt++) {
        fipsc_error terr = {0};
        fipsc_fips_train_report tr;
        st = fipsc_fips_train(g, F, calib, t, &tr, &terr);
        if (!st) {
            out->final_loss = tr.final_loss;
            out->steps = o->mode == FIPSC_FIPS_JOINT ? o->steps : o->steps * g->n_mlps;
            out->lr = t->lr;
            out->retries = attempt;
            out->score_last = tr.holdout_last;
            out->score_kept = tr.holdout_kept;
            out->kept_step = tr.kept_step;
            out->sparse_steps = tr.sparse_steps;
            fipsc_fips_train_report_free(&tr);
            break;
        }
        if (err) *err = terr;
        if (st != FIPSC_ERR_NUMERIC || attempt >= o->divergence_retries) {
            if (attempt > 0)
                fipsc_fail_context(err, "training diverged again after %d retr%s with the learning "
                                   "rate halved each time (last %g): ", attempt,
                                   attempt == 1 ? "y" : "ies", (double)t->lr);
            break;
        }
        size_t nu = (size_t)F->d * (size_t)F->r, nv = (size_t)F->r * (size_t)F->P;
        memcpy(F->U, F0.U, nu * sizeof(float));
        memcpy(F->V, F0.V, nv * sizeof(float));
        memcpy(F->mask, F0.mask, fipsc_fips_mask_words(F) * sizeof *F->mask);
        t->lr *= 0.5f;
        t->lr_min *= 0.5f;
        if (hook.retry) hook.retry(hook.user, attempt + 1, t->lr, terr.message);
        st = FIPSC_OK;
    }
    if (o->divergence_retries > 0) fipsc_fips_factors_free(&F0);
    return st;
}

static bool has_rows(const fipsc_fips_group *g, const fipsc_fips_calib *rows)
{
    for (int j = 0; rows && j < g->n_mlps; j++)
        if (rows[j].n > 0) return true;
    return false;
}

/* The initialisation's output errors per MLP over all calibration rows (the training rows and,
 * right after them in the same arrays, the held-out ones) and over the held-out rows alone. */
static fipsc_status before_errors(const fipsc_fips_group *g, float **before, const fipsc_fips_calib *train,
                                  const fipsc_fips_calib *holdout, compress_outcome *out, fipsc_error *err)
{
    out->before_err = malloc((size_t)g->n_mlps * sizeof *out->before_err);
    out->before_holdout_err = malloc((size_t)g->n_mlps * sizeof *out->before_holdout_err);
    if (!out->before_err || !out->before_holdout_err) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    fipsc_status st = FIPSC_OK;
    for (int j = 0; j < g->n_mlps && !st; j++) {
        const int64_t h = holdout ? holdout[j].n : 0;
        if (h > 0 && holdout[j].x != train[j].x + train[j].n * g->d)
            return fipsc_fail(err, FIPSC_ERR_INTERNAL, "held-out rows of MLP %d do not follow its training rows", j);
        const fipsc_fips_calib all = {train[j].n + h, train[j].x, train[j].y};
        out->before_holdout_err[j] = NAN;
        st = compress_output_error(g, j, before, &all, &out->before_err[j], err);
        if (!st && h > 0) st = compress_output_error(g, j, before, &holdout[j], &out->before_holdout_err[j], err);
    }
    return st;
}

/* fips, fips-init and shared-svd: one shared basis for the whole group.
 *
 * fips keeps the best of what it saw, judged on the held-out rows (or, with none, on the training
 * rows): the trainer returns its best evaluated iterate, and if the initialisation pruned to the
 * final mask (fips-init) scores lower still, the initialisation is kept — training that makes the
 * group worse than where it started is then reported (compress.c warns; --strict refuses). */
static fipsc_status run_shared(const fipsc_fips_group *g, const fipsc_group_plan *plan,
                               const fipsc_fips_calib *calib, const fipsc_fips_calib *holdout,
                               const fipsc_compress_options *o, int group_index,
                               compress_train_hook hook, compress_outcome *out, fipsc_error *err)
{
    const int r = plan->r;
    /* --init whitened: by the training rows' inputs only (held-out rows stay unseen) */
    const fipsc_fips_calib *whiten = o->init == FIPSC_INIT_WHITENED ? calib : NULL;
    fipsc_fips_factors F;
    fipsc_status st = fipsc_fips_init_group(g, r, FIPSC_FIPS_SVD_AUTO, whiten, o->whiten_alpha, &F, err);
    if (st) return st;
    out->rank = r;
    if (o->method == FIPSC_METHOD_FIPS_INIT) {
        st = prune_final(g, &F, o, err);
    } else if (o->method == FIPSC_METHOD_FIPS) {
        /* "Before training" = the initialisation pruned to the final mask, i.e. fips-init: its
         * reconstruction and score now, and the copy freed before training (at scale it is as
         * large as the factors; when it wins, it is computed again, to the same bits). */
        fipsc_fips_factors F0 = {0};
        float **before = NULL;
        if (!(st = copy_factors(&F, &F0, err))) {
            if (!(before = alloc_matrix_list(g)))
                st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
            if (!st) st = prune_final(g, &F0, o, err);
            if (!st) st = reconstruct(g, &F0, before, err);
        }
        if (!st) st = before_errors(g, before, calib, holdout, out, err);
        free_matrix_list(before, g->n_matrices);
        const bool held_out = has_rows(g, holdout);
        const fipsc_fips_calib *judge = held_out ? holdout : calib;
        if (!st) st = fipsc_fips_holdout_score(g, &F0, judge, &out->score_init, err);
        fipsc_fips_factors_free(&F0);
        fipsc_fips_train_opts t;
        fipsc_fips_train_defaults(&t);
        t.mode = o->mode;
        t.mask = o->nm_m > 0 ? FIPSC_FIPS_MASK_NM : o->schedule;
        t.sparsity = o->sparsity;
        t.nm_n = o->nm_m > 0 ? o->nm_n : 2;
        t.nm_m = o->nm_m > 0 ? o->nm_m : 4;
        t.steps = o->steps;
        t.batch_rows = o->batch_rows;
        t.lr = o->lr;
        t.lr_min = o->lr_min;
        t.adamw.weight_decay = o->weight_decay;
        t.bf16_moments = o->bf16_moments;
        t.v_products = o->v_products;
        t.evaluate = false;
        t.holdout = held_out ? holdout : NULL;
        t.seed = fipsc_seed_derive(o->seed, (uint64_t)group_index);
        t.group_index = group_index;
        t.progress = hook.fn;
        t.progress_user = hook.user;
        t.progress_every = 5;
        if (!st) st = train_with_retries(g, &F, calib, o, &t, hook, out, err);
        if (!st && !held_out) {
            st = fipsc_fips_holdout_score(g, &F, calib, &out->score_last, err);
            out->score_kept = out->score_last;
        }
        out->score_trained = out->score_kept;
        if (!st && out->score_init < out->score_kept) {
            fipsc_fips_factors_free(&F);
            st = fipsc_fips_init_group(g, r, FIPSC_FIPS_SVD_AUTO, whiten, o->whiten_alpha, &F, err);
            if (!st) st = prune_final(g, &F, o, err);
            out->score_kept = out->score_init;
            out->kept_step = 0;
        }
    }
    if (!st && !(out->recon = alloc_matrix_list(g))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st) st = reconstruct(g, &F, out->recon, err);
    if (!st && !(out->parts = calloc(1, sizeof *out->parts)))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st) {
        out->n_parts = 1;
        /* Storage is decided from the V actually produced. */
        for (int i = 0; i < g->n_matrices; i++)
            out->nnz[i] = fipsc_fips_count_active(g, &F, &i, 1);
        fipsc_v_storage storage = choose_storage(o, plan, g, r, out->nnz);
        st = make_group_part(g, plan, &F.U, r, F.V, storage, o, &out->parts[0], out->nnz, err);
    }
    fipsc_fips_factors_free(&F);
    return st;
}

/* svd: every matrix its own truncated SVD M_i ≈ A_i·(Σ_i·B_iᵀ), rank k_i.
 *
 * A compressed group holds one basis, and groups may not share a block, so the per-matrix bases
 * of one block are stacked into the block's basis U = [A_1 | A_2 | A_3] (d × Σk_i) and V_i is
 * Σ_i·B_iᵀ in its own k_i rows, zero elsewhere. U·V_i = A_i·Σ_i·B_iᵀ exactly, and the stored
 * parameters are the per-matrix SVD's Σ (d·k_i + k_i·f): the zero rows of V_i are not stored
 * (CSC), at the price of a row index per stored entry. */
static fipsc_status svd_block_part(const fipsc_fips_group *g, const fipsc_group_plan *plan,
                                   const float *wcat, int j, const fipsc_compress_options *o,
                                   compress_outcome *out, compress_part *part, fipsc_error *err)
{
    const int d = g->d, m0 = g->first_matrix[j], m1 = g->first_matrix[j + 1], n = m1 - m0;
    int *k = calloc((size_t)n, sizeof *k);
    fipsc_fips_factors *F = calloc((size_t)n, sizeof *F);
    if (!k || !F) {
        free(k);
        free(F);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    fipsc_status st = FIPSC_OK;
    int rsum = 0;
    for (int q = 0; q < n && !st; q++) {
        const fipsc_fips_matrix *mx = &g->matrices[m0 + q];
        const int f = mx->cols;
        if ((st = fipsc_fips_rank_from_budget(d, f, o->budget, 0.0, 1, &k[q], err))) break;
        float *M = copy_columns(wcat, d, g->P, mx->col_offset, f);
        if (!M) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        if (!st) st = fipsc_fips_factors_alloc(&F[q], d, k[q], f, err);
        if (!st) st = fipsc_fips_svd_init(M, FIPSC_FIPS_SVD_AUTO, &F[q], NULL, err);
        if (!st) {
            /* Reconstruction [d, f] = A_k·(Σ_k·B_kᵀ), back to the model's orientation. */
            float *R = malloc((size_t)d * (size_t)f * sizeof(float));
            if (!R) {
                st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
            } else {
                /* OpenBLAS runs on one thread (src/core/threads.h): the same bits for any --threads */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, f, k[q], 1.0f, F[q].U,
                            k[q], F[q].V, f, 0.0f, R, f);
                fipsc_fips_uncat(g, m0 + q, R, f, out->recon[m0 + q]);
                free(R);
            }
        }
        free(M);
        rsum += k[q];
    }
    if (!st) {
        memset(part, 0, sizeof *part);
        part->U = calloc((size_t)d * (size_t)rsum, sizeof(float));
        part->V = calloc((size_t)n, sizeof *part->V);
        part->matrices = calloc((size_t)n, sizeof *part->matrices);
        if (!part->U || !part->V || !part->matrices) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    const int layer = plan->blocks.first + j;
    for (int q = 0, row = 0; q < n && !st; row += k[q], q++) {
        const fipsc_fips_matrix *mx = &g->matrices[m0 + q];
        const int f = mx->cols;
        for (int a = 0; a < d; a++)
            memcpy(part->U + (size_t)a * rsum + row, F[q].U + (size_t)a * k[q], (size_t)k[q] * sizeof(float));
        if (!(part->V[q] = calloc((size_t)rsum * (size_t)f, sizeof(float)))) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(part->V[q] + (size_t)row * f, F[q].V, (size_t)k[q] * (size_t)f * sizeof(float));
        out->nnz[m0 + q] = count_nonzero(F[q].V, (int64_t)k[q] * f);
        part->matrices[q] = (fipsc_group_matrix){layer, mx->role, part->V[q]};
    }
    if (!st) {
        part->spec = (fipsc_group_spec){.first_layer = layer, .last_layer = layer, .d = d, .r = rsum,
                                        .U = part->U, .n_matrices = n, .matrices = part->matrices,
                                        .method = fipsc_compress_method_name(o->method),
                                        .u_dtype = plan->u_dtype, .v_dtype = plan->v_dtype};
        part->spec.storage = choose_storage_rows(o, plan, rsum, n, &g->matrices[m0], out->nnz + m0);
        if (j == 0) out->rank = k[0];
    }
    for (int q = 0; q < n; q++) fipsc_fips_factors_free(&F[q]);
    free(F);
    free(k);
    return st;
}

static fipsc_status run_svd(const fipsc_fips_group *g, const fipsc_group_plan *plan,
                            const fipsc_compress_options *o, compress_outcome *out,
                            fipsc_error *err)
{
    float *wcat = malloc((size_t)g->d * (size_t)g->P * sizeof(float));
    out->recon = alloc_matrix_list(g);
    out->parts = calloc((size_t)g->n_mlps, sizeof *out->parts);
    if (!wcat || !out->recon || !out->parts) {
        free(wcat);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    fipsc_status st = fipsc_fips_concat(g, wcat, err);
    out->svd_stacked = true;
    for (int j = 0; j < g->n_mlps && !st; j++) {
        st = svd_block_part(g, plan, wcat, j, o, out, &out->parts[j], err);
        if (!st) out->n_parts = j + 1;
    }
    free(wcat);
    return st;
}

/* magnitude: every matrix pruned on its own, an identity basis (r = d). */
static fipsc_status run_magnitude(const fipsc_fips_group *g, const fipsc_group_plan *plan,
                                  const fipsc_compress_options *o, compress_outcome *out,
                                  fipsc_error *err)
{
    const int d = g->d;
    fipsc_fips_factors F;
    fipsc_status st = fipsc_fips_factors_alloc(&F, d, d, g->P, err);
    if (st) return st;
    out->rank = d;
    st = fipsc_fips_concat(g, F.V, err); /* V = W_cat: every matrix in its d × f orientation */
    for (int i = 0; i < g->n_matrices && !st; i++) {
        int64_t total = (int64_t)d * g->matrices[i].cols;
        st = o->nm_m > 0 ? fipsc_fips_prune_nm(g, &F, &i, 1, o->nm_n, o->nm_m, err)
                         : fipsc_fips_prune_magnitude(g, &F, &i, 1,
                                                      compress_magnitude_keep(total, o->budget), err);
    }
    if (!st && !(out->recon = alloc_matrix_list(g))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_matrices && !st; i++) {
        fipsc_fips_uncat(g, i, F.V + g->matrices[i].col_offset, g->P, out->recon[i]);
        out->nnz[i] = fipsc_fips_count_active(g, &F, &i, 1);
    }
    if (!st && !(out->parts = calloc(1, sizeof *out->parts)))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st) {
        out->n_parts = 1;
        fipsc_v_storage storage = choose_storage(o, plan, g, d, out->nnz);
        float *no_basis = NULL;
        st = make_group_part(g, plan, &no_basis, d, F.V, storage, o, &out->parts[0], out->nnz, err);
    }
    fipsc_fips_factors_free(&F);
    return st;
}

fipsc_status compress_group_run(const fipsc_fips_group *g, const fipsc_group_plan *plan,
                                const fipsc_fips_calib *calib, const fipsc_fips_calib *holdout,
                                const fipsc_compress_options *o,
                                int group_index, compress_train_hook hook, compress_outcome *out,
                                fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    out->final_loss = NAN;
    out->lr = NAN;
    out->score_init = out->score_last = out->score_trained = out->score_kept = NAN;
    out->n_matrices = g->n_matrices;
    out->nnz = calloc((size_t)g->n_matrices, sizeof *out->nnz);
    if (!out->nnz) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    fipsc_status st;
    switch (o->method) {
    case FIPSC_METHOD_FIPS:
    case FIPSC_METHOD_FIPS_INIT:
    case FIPSC_METHOD_SHARED_SVD:
        st = run_shared(g, plan, calib, holdout, o, group_index, hook, out, err);
        break;
    case FIPSC_METHOD_SVD: st = run_svd(g, plan, o, out, err); break;
    case FIPSC_METHOD_MAGNITUDE: st = run_magnitude(g, plan, o, out, err); break;
    default: st = fipsc_fail(err, FIPSC_ERR_ARG, "unknown method %d", (int)o->method);
    }
    if (st) compress_outcome_free(out);
    return st;
}
