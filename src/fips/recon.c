/* Forward and backward of a compressed MLP, on calibration rows, with GEMMs (ALGORITHM.md §3, §7).
 *
 * Rows are tokens: X [n, d]. With U [d, r] and V_i [r, f] (masked entries zero, so dense GEMMs
 * compute the sparse product), for a gated MLP (gate g, up u, down o):
 *   Z  = X·U                      [n, r]   (Uᵀx for every row: the shared expanding half)
 *   G  = Z·V_g + b_g,  H = Z·V_u + b_u     [n, f]   (h = V_iᵀ(Uᵀx))
 *   S  = act(G),       A = S ⊙ H          (plain: A = act(H), no gate)
 *   W  = A·V_oᵀ                   [n, r]   (V_o·a for every row)
 *   Y  = W·Uᵀ + b_o               [n, d]   (y = U(V_o·a))
 * Loss: L = scale·Σ‖Y − T‖², so dY = 2·scale·(Y − T). Backward, by the chain rule:
 *   dU  = dYᵀ·W + Xᵀ·dZ           (U appears twice)
 *   dW  = dY·U,   dV_o = dWᵀ·A,   dA = dW·V_o
 *   dG  = dA ⊙ H ⊙ act'(G),  dH = dA ⊙ S          (plain: dH = dA ⊙ act'(H))
 *   dV_g = Zᵀ·dG,  dV_u = Zᵀ·dH,  dZ = dG·V_gᵀ + dH·V_uᵀ
 * Ten GEMMs of n·d·r and eighteen of n·r·f (halves counted) per gated MLP: 10ndr + 18nrf flops.
 * Biases are the original ones and are not trained.
 *
 * The V-sparse step (w->sparse set): the nine products with a V_i read only its kept entries
 * (src/fips/sparse_v.c, src/ops/factored_tiles.h): t·V_i and h·V_iᵀ as sparse gathers, and the
 * gradients dV_i only at the kept entries (an SDDMM: a dot product over the n rows per kept entry;
 * the entries V does not keep are never read by the optimiser, so they are not computed). At
 * density ρ of V that is ρ·18nrf multiply-adds instead of 18nrf. Same maths, other rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fips/fips_internal.h"
#include "ops/activation.h"
#include "ops/factored_tiles.h"
#include "ops/gemm.h"

static int mlp_f_max(const fipsc_fips_group *g)
{
    int f = 0;
    for (int j = 0; j < g->n_mlps; j++)
        if (g->mlps[j].f > f) f = g->mlps[j].f;
    return f;
}

fipsc_status fips_work_init(fips_work *w, const fipsc_fips_group *g, int r, int64_t rows,
                            fipsc_error *err)
{
    memset(w, 0, sizeof *w);
    w->rows = rows;
    w->d = g->d;
    w->r = r;
    w->f_max = mlp_f_max(g);
    size_t nr = (size_t)rows * (size_t)r, nf = (size_t)rows * (size_t)w->f_max;
    float **bufs_r[] = {&w->z, &w->w, &w->dw};
    float **bufs_f[] = {&w->g, &w->s, &w->hu, &w->a, &w->da};
    bool ok = true;
    for (size_t i = 0; i < sizeof bufs_r / sizeof *bufs_r; i++) ok &= (*bufs_r[i] = malloc(nr * sizeof(float))) != NULL;
    for (size_t i = 0; i < sizeof bufs_f / sizeof *bufs_f; i++) ok &= (*bufs_f[i] = malloc(nf * sizeof(float))) != NULL;
    ok &= (w->y = malloc((size_t)rows * (size_t)g->d * sizeof(float))) != NULL;
    ok &= (w->gbuf = malloc((size_t)r * (size_t)w->f_max * sizeof(float))) != NULL;
    ok &= (w->rowsum = malloc((size_t)rows * sizeof(double))) != NULL;
    if (!ok) {
        fips_work_free(w);
        return fipsc_fail(err, FIPSC_ERR_NOMEM,
                          "FiPS training: out of memory for the activations of %lld rows (r = %d, f = %d)",
                          (long long)rows, r, mlp_f_max(g));
    }
    return FIPSC_OK;
}

fipsc_status fips_work_tiles(fips_work *w, fipsc_error *err)
{
    if (w->zT) return FIPSC_OK;
    const int n = (int)w->rows;
    float **bufs_r[] = {&w->zT, &w->dwT}, **bufs_f[] = {&w->aT, &w->gT, &w->hT};
    const size_t bytes_r = fipsc_tiles_floats(n, w->r) * sizeof(float), bytes_f = fipsc_tiles_floats(n, w->f_max) * sizeof(float);
    bool ok = true;
    for (size_t i = 0; i < sizeof bufs_r / sizeof *bufs_r; i++) ok &= (*bufs_r[i] = aligned_alloc(64, bytes_r)) != NULL;
    for (size_t i = 0; i < sizeof bufs_f / sizeof *bufs_f; i++) ok &= (*bufs_f[i] = aligned_alloc(64, bytes_f)) != NULL;
    if (!ok) {
        float *all[] = {w->zT, w->dwT, w->aT, w->gT, w->hT};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
        w->zT = w->dwT = w->aT = w->gT = w->hT = NULL;
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS training: out of memory for the row tiles of the V-sparse "
                          "step (%lld rows)", (long long)w->rows);
    }
    return FIPSC_OK;
}

void fips_work_free(fips_work *w)
{
    if (!w) return;
    float *bufs[] = {w->z, w->w, w->dw, w->g, w->s, w->hu, w->a, w->da, w->y, w->gbuf, w->zT, w->dwT, w->aT, w->gT, w->hT};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(w->rowsum);
    memset(w, 0, sizeof *w);
}

static void add_bias(float *y, int64_t n, int cols, const float *bias)
{
    if (!bias) return;
#pragma omp parallel for schedule(static) if (n * cols >= FIPS_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < cols; c++) y[i * cols + c] += bias[c];
}

/* Column block of V for matrix i: [r, cols] with leading dimension P. */
static const float *vmat(const fipsc_fips_group *g, const fipsc_fips_factors *F, int i)
{
    return F->V + g->matrices[i].col_offset;
}

/* ---- The products with V_i: dense GEMMs over the masked V, or its kept entries as lists ---- */

static const fipsc_factored_linear *by_col(const fips_work *w, int i) { return &w->sparse->by_col[i - w->sparse->first]; }
static const fipsc_factored_linear *by_row(const fips_work *w, int i) { return &w->sparse->by_row[i - w->sparse->first]; }

/* x's row tiles into xT (the V-sparse step only). */
static void tiles(const fips_work *w, int64_t n, int width, const float *x, float *xT)
{
    if (w->sparse) fipsc_tiles_from_rows((int)n, width, x, xT);
}

/* out [n, f] = in [n, r]·V_i (inT: in's tiles) */
static void times_v(const fips_work *w, const fipsc_fips_group *g, const fipsc_fips_factors *F, int i, int64_t n,
                    const float *in, const float *inT, float *out)
{
    const int f = g->matrices[i].cols;
    if (w->sparse) fipsc_tiles_gather(by_col(w, i), (int)n, inT, out, false);
    else fipsc_gemm(false, false, (int)n, f, F->r, in, F->r, vmat(g, F, i), (int)F->P, 0.0f, out, f);
}

/* out [n, r] (+)= in [n, f]·V_iᵀ */
static void times_vt(const fips_work *w, const fipsc_fips_group *g, const fipsc_fips_factors *F, int i, int64_t n,
                     const float *in, const float *inT, bool accumulate, float *out)
{
    const int f = g->matrices[i].cols;
    if (w->sparse) fipsc_tiles_gather(by_row(w, i), (int)n, inT, out, accumulate);
    else fipsc_gemm(false, true, (int)n, F->r, f, in, f, vmat(g, F, i), (int)F->P, accumulate ? 1.0f : 0.0f, out, F->r);
}

/* w->gbuf [r, f] = leftᵀ·right, left [n, r], right [n, f]: V_i's gradient (V-sparse: at its kept
 * entries only, one value per entry in the order of V_i's row lists) */
static void v_gradient(fips_work *w, const fipsc_fips_group *g, const fipsc_fips_factors *F, int i, int64_t n,
                       const float *left, const float *leftT, const float *right, const float *rightT)
{
    const int f = g->matrices[i].cols;
    if (w->sparse) fipsc_tiles_sddmm(by_row(w, i), (int)n, leftT, rightT, w->gbuf);
    else fipsc_gemm(true, false, F->r, f, (int)n, left, F->r, right, f, 0.0f, w->gbuf, f);
}

void fips_mlp_forward(fips_work *w, const fipsc_fips_group *g, const fipsc_fips_factors *F, int j,
                      const float *x, int64_t n)
{
    const fipsc_mlp *mlp = &g->mlps[j];
    const int d = g->d, r = F->r, f = mlp->f, nn = (int)n;
    const bool gated = mlp->kind == FIPSC_MLP_GATED;
    const int iu = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_UP);
    const int io = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_DOWN);
    /* Z = X·U */
    fipsc_gemm(false, false, nn, r, d, x, d, F->U, r, 0.0f, w->z, r);
    tiles(w, n, r, w->z, w->zT);
    /* H = Z·V_u + b_u */
    times_v(w, g, F, iu, n, w->z, w->zT, w->hu);
    add_bias(w->hu, n, f, mlp->up.bias);
    if (gated) {
        const int ig = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_GATE);
        times_v(w, g, F, ig, n, w->z, w->zT, w->g);
        add_bias(w->g, n, f, mlp->gate.bias);
#pragma omp parallel for schedule(static) if (n * f >= FIPS_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            int64_t o = i * f;
            fipsc_activation_apply(mlp->act, w->g + o, w->s + o, (size_t)f);
            for (int c = 0; c < f; c++) w->a[o + c] = w->s[o + c] * w->hu[o + c];
        }
    } else {
#pragma omp parallel for schedule(static) if (n * f >= FIPS_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            fipsc_activation_apply(mlp->act, w->hu + i * f, w->a + i * f, (size_t)f);
    }
    /* W = A·V_oᵀ, Y = W·Uᵀ + b_o */
    tiles(w, n, f, w->a, w->aT);
    times_vt(w, g, F, io, n, w->a, w->aT, false, w->w);
    fipsc_gemm(false, true, nn, d, r, w->w, r, F->U, r, 0.0f, w->y, d);
    add_bias(w->y, n, d, mlp->down.bias);
}

double fips_mlp_loss_backward(fips_work *w, const fipsc_fips_group *g, const fipsc_fips_factors *F,
                              int j, const float *x, const float *t, int64_t n, double scale,
                              float *dU, bool accumulate, fips_grad_sink sink, void *user)
{
    fips_mlp_forward(w, g, F, j, x, n);
    const fipsc_mlp *mlp = &g->mlps[j];
    const int d = g->d, r = F->r, f = mlp->f, nn = (int)n;
    const bool gated = mlp->kind == FIPSC_MLP_GATED;

    /* Loss, summed per row then over rows in a fixed order (the same for any thread count). */
#pragma omp parallel for schedule(static) if (n * d >= FIPS_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int c = 0; c < d; c++) {
            double e = (double)w->y[i * d + c] - (double)t[i * d + c];
            s += e * e;
        }
        w->rowsum[i] = s;
    }
    double loss = 0.0;
    for (int64_t i = 0; i < n; i++) loss += w->rowsum[i];
    loss *= scale;
    if (!isfinite(loss)) return loss;

    /* dY = 2·scale·(Y − T), in place */
    const float two_scale = (float)(2.0 * scale);
#pragma omp parallel for schedule(static) if (n * d >= FIPS_PARALLEL_MIN)
    for (int64_t e = 0; e < n * d; e++) w->y[e] = two_scale * (w->y[e] - t[e]);

    const int ig = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_GATE);
    const int iu = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_UP);
    const int io = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_DOWN);
    /* dU (+)= dYᵀ·W;  dW = dY·U */
    fipsc_gemm(true, false, d, r, nn, w->y, d, w->w, r, accumulate ? 1.0f : 0.0f, dU, r);
    fipsc_gemm(false, false, nn, r, d, w->y, d, F->U, r, 0.0f, w->dw, r);
    tiles(w, n, r, w->dw, w->dwT);
    /* dA = dW·V_o (the last read of V_o), then dV_o = dWᵀ·A */
    times_v(w, g, F, io, n, w->dw, w->dwT, w->da);
    v_gradient(w, g, F, io, n, w->dw, w->dwT, w->a, w->aT);
    sink(user, io, w->gbuf);

    /* Through the activation: dG into g, dH into hu. */
    const fipsc_activation act = mlp->act;
#pragma omp parallel for schedule(static) if (n * f >= FIPS_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        float *gg = w->g + i * f, *hh = w->hu + i * f;
        const float *da = w->da + i * f, *ss = w->s + i * f;
        if (gated) {
            for (int c = 0; c < f; c++) {
                float h = hh[c];
                hh[c] = da[c] * ss[c];
                gg[c] = da[c] * h * fipsc_activation_slope(act, gg[c]);
            }
        } else {
            for (int c = 0; c < f; c++) hh[c] = da[c] * fipsc_activation_slope(act, hh[c]);
        }
    }

    /* dZ (in dw, free now) = dG·V_gᵀ + dH·V_uᵀ; dV_g = Zᵀ·dG; dV_u = Zᵀ·dH */
    if (gated) {
        tiles(w, n, f, w->g, w->gT);
        times_vt(w, g, F, ig, n, w->g, w->gT, false, w->dw);
        v_gradient(w, g, F, ig, n, w->z, w->zT, w->g, w->gT);
        sink(user, ig, w->gbuf);
    }
    tiles(w, n, f, w->hu, w->hT);
    times_vt(w, g, F, iu, n, w->hu, w->hT, gated, w->dw);
    v_gradient(w, g, F, iu, n, w->z, w->zT, w->hu, w->hT);
    sink(user, iu, w->gbuf);
    /* dU += Xᵀ·dZ */
    fipsc_gemm(true, false, d, r, nn, x, d, w->dw, r, 1.0f, dU, r);
    return loss;
}

double fips_mlp_step_flops(const fipsc_fips_group *g, int r, int j, int64_t n)
{
    const fipsc_mlp *mlp = &g->mlps[j];
    double ndr = (double)n * g->d * r, nrf = (double)n * r * mlp->f;
    return 10.0 * ndr + (mlp->kind == FIPSC_MLP_GATED ? 18.0 : 12.0) * nrf;
}

/* ---- Public entry points ---- */

static fipsc_status check_args(const fipsc_fips_group *g, const fipsc_fips_factors *F, int mlp,
                               fipsc_error *err)
{
    if (!F->U || !F->V || F->d != g->d || F->P != g->P || F->r < 1)
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "FiPS: factors (d = %d, P = %lld) do not belong to this group (d = %d, "
                          "P = %lld)", F->d, (long long)F->P, g->d, (long long)g->P);
    if (F->P > 2147483647)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "FiPS: P = %lld exceeds the BLAS int range",
                          (long long)F->P);
    if (mlp < 0 || mlp >= g->n_mlps)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS: MLP index %d out of range [0, %d)", mlp,
                          g->n_mlps);
    return FIPSC_OK;
}

enum { CHUNK_ROWS = 1024 };

fipsc_status fipsc_fips_forward(const fipsc_fips_group *g, const fipsc_fips_factors *F, int mlp,
                                const float *x, int64_t n, float *y, fipsc_error *err)
{
    fipsc_status st = check_args(g, F, mlp, err);
    if (st) return st;
    if (n < 1) return FIPSC_OK;
    fips_work w;
    if ((st = fips_work_init(&w, g, F->r, n < CHUNK_ROWS ? n : CHUNK_ROWS, err))) return st;
    for (int64_t i0 = 0; i0 < n; i0 += w.rows) {
        int64_t m = n - i0 < w.rows ? n - i0 : w.rows;
        fips_mlp_forward(&w, g, F, mlp, x + i0 * g->d, m);
        memcpy(y + i0 * g->d, w.y, (size_t)(m * g->d) * sizeof(float));
    }
    fips_work_free(&w);
    return FIPSC_OK;
}

fipsc_status fipsc_fips_relative_error(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                       int mlp, const fipsc_fips_calib *calib, double *out,
                                       fipsc_error *err)
{
    fipsc_status st = check_args(g, F, mlp, err);
    if (st) return st;
    if (!calib || calib->n < 1 || !calib->x || !calib->y)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS: MLP %d has no calibration rows", mlp);
    int64_t n = calib->n;
    fips_work w;
    if ((st = fips_work_init(&w, g, F->r, n < CHUNK_ROWS ? n : CHUNK_ROWS, err))) return st;
    const int d = g->d;
    double num = 0.0, den = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += w.rows) {
        int64_t m = n - i0 < w.rows ? n - i0 : w.rows;
        fips_mlp_forward(&w, g, F, mlp, calib->x + i0 * d, m);
        const float *t = calib->y + i0 * d;
        for (int64_t e = 0; e < m * d; e++) {
            double diff = (double)w.y[e] - (double)t[e];
            num += diff * diff;
            den += (double)t[e] * (double)t[e];
        }
    }
    fips_work_free(&w);
    if (!(den > 0.0))
        return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                          "FiPS: the calibration target of MLP %d is all zeros (relative error undefined)",
                          mlp);
    *out = sqrt(num / den);
    return FIPSC_OK;
}

typedef struct copy_sink {
    const fipsc_fips_group *g;
    const fipsc_fips_factors *F;
    float *dV;
    const fips_sparse_v *lists; /* the V-sparse step: grad in list order; dV 0 at pruned entries */
} copy_sink;

static void copy_grad(void *user, int i, const float *grad)
{
    copy_sink *cs = user;
    const fipsc_fips_matrix *mx = &cs->g->matrices[i];
    const int64_t P = cs->F->P;
    const fipsc_factored_linear *rows = cs->lists ? &cs->lists->by_row[i - cs->lists->first] : NULL;
    for (int k = 0; k < cs->F->r; k++) {
        float *dst = cs->dV + k * P + mx->col_offset;
        if (!rows) {
            memcpy(dst, grad + (int64_t)k * mx->cols, (size_t)mx->cols * sizeof(float));
            continue;
        }
        memset(dst, 0, (size_t)mx->cols * sizeof(float));
        for (uint32_t q = rows->ptr[k]; q < rows->ptr[k + 1]; q++) dst[fipsc_factored_position(rows, q)] = grad[q];
    }
}

static fipsc_status loss_grad(const fipsc_fips_group *g, const fipsc_fips_factors *F, int n_list, const int *mlps,
                              const fipsc_fips_calib *batch, const double *scale, bool sparse, double *loss, float *dU,
                              float *dV, fipsc_error *err)
{
    if (n_list < 1 || !mlps || !batch || !scale)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS loss: needs at least one MLP with a batch");
    if (sparse && !F->mask) return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS loss: the V-sparse products need V's mask");
    int64_t rows = 0;
    for (int k = 0; k < n_list; k++) {
        fipsc_status st = check_args(g, F, mlps[k], err);
        if (st) return st;
        if (batch[k].n < 1 || !batch[k].x || !batch[k].y)
            return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS loss: MLP %d has an empty batch", mlps[k]);
        if (batch[k].n > rows) rows = batch[k].n;
    }
    fips_work w;
    fips_sparse_v lists = {0};
    fipsc_status st = fips_work_init(&w, g, F->r, rows, err);
    if (st) return st;
    if (sparse && !(st = fips_work_tiles(&w, err)) && !(st = fips_sparse_v_build(&lists, g, F, 0, g->n_matrices, err)))
        w.sparse = &lists;
    copy_sink cs = {g, F, dV, w.sparse};
    double total = 0.0;
    for (int k = 0; k < n_list && !st; k++) {
        double l = fips_mlp_loss_backward(&w, g, F, mlps[k], batch[k].x, batch[k].y, batch[k].n,
                                          scale[k], dU, k > 0, copy_grad, &cs);
        if (!isfinite(l))
            st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "FiPS loss: MLP %d gives a non-finite loss", mlps[k]);
        total += l;
    }
    fips_sparse_v_free(&lists);
    fips_work_free(&w);
    if (!st) *loss = total;
    return st;
}

fipsc_status fipsc_fips_loss_grad(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                  int n_list, const int *mlps, const fipsc_fips_calib *batch,
                                  const double *scale, double *loss, float *dU, float *dV,
                                  fipsc_error *err)
{
    return loss_grad(g, F, n_list, mlps, batch, scale, false, loss, dU, dV, err);
}

fipsc_status fipsc_fips_loss_grad_kept(const fipsc_fips_group *g, const fipsc_fips_factors *F, int n_list,
                                       const int *mlps, const fipsc_fips_calib *batch, const double *scale,
                                       double *loss, float *dU, float *dV, fipsc_error *err)
{
    return loss_grad(g, F, n_list, mlps, batch, scale, true, loss, dU, dV, err);
}
