/* The FiPS training loop (ALGORITHM.md §6-8): teacher-forced reconstruction of every MLP's output
 * from its original input, AdamW on U and the masked V_i, a cosine learning rate, and the mask
 * schedule (GMP, RigL, static or n:m).
 *
 * Objective. MLP j's loss on a minibatch of b rows is its batch mean squared error divided by the
 * mean square of its whole calibration target, L_j = Σ‖y_c − y‖² / (b·d·mean(y²)), a relative
 * squared error that puts MLPs of very different output scale on an equal footing.
 *   joint: all MLPs of the group at every step, L = Σ_j L_j (the default; the shared U is
 *          pulled towards what every MLP needs at once).
 *   local: the reference's LLM procedure: MLP after MLP, each with a fresh AdamW and cosine
 *          schedule over `steps`, its own mask schedule over its own V_i, U shared and trained.
 *
 * Memory. V_i's gradient is only ever one [r, f] buffer: the backward pass hands each V_i's
 * gradient to a sink right after its last read of V_i, and the sink applies AdamW to V_i at once
 * (identical to updating after the full backward pass, because V_i is used by its own MLP only).
 * U, used by every MLP, is updated after all of them. Training then holds V, its bit mask and two
 * Adam moments (3.03 × the size of V) plus the activations of one minibatch. RigL alone keeps a
 * dense [r, P] gradient, filled on its update steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fips/fips_internal.h"
#include "core/tensor.h"

void fipsc_fips_train_defaults(fipsc_fips_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = FIPSC_FIPS_JOINT;
    o->mask = FIPSC_FIPS_MASK_GMP;
    o->sparsity = 0.75;
    o->nm_n = 2;
    o->nm_m = 4;
    o->steps = 800;
    o->batch_rows = 8192;
    o->lr = 1e-4f;
    o->lr_min = 1e-6f;
    o->adamw = (fipsc_adamw){0.9f, 0.999f, 1e-8f, 0.1f};
    o->delta_t = 50;
    o->end_fraction = 0.75;
    o->gmp_accel_fraction = 0.25;
    o->gmp_initial = 0.05;
    o->gmp_accelerated = 0.5;
    o->rigl_alpha = 0.1;
    o->evaluate = true;
    o->seed = 1;
    o->progress_every = 10;
}

/* Draws minibatch rows: a seeded permutation of the rows, consumed in order and reshuffled when
 * used up, so every row is seen once per pass. */
typedef struct sampler {
    int64_t n, pos;
    int64_t *perm;
    fipsc_rng rng;
} sampler;

static void shuffle(sampler *s)
{
    for (int64_t i = s->n - 1; i > 0; i--) {
        int64_t k = (int64_t)fipsc_rng_below(&s->rng, (uint64_t)i + 1);
        int64_t tmp = s->perm[i];
        s->perm[i] = s->perm[k];
        s->perm[k] = tmp;
    }
    s->pos = 0;
}

struct fipsc_fips_trainer {
    const fipsc_fips_group *g;
    fipsc_fips_factors *F;
    const fipsc_fips_calib *calib;
    fipsc_fips_train_opts o;
    int mlp, j0, j1;       /* phase: MLPs [j0, j1); mlp = -1 (joint) or the one MLP */
    int *set, n_set;       /* the matrices being trained and pruned */
    int64_t col0, width;   /* their columns in V (contiguous) */
    int64_t set_total, active;
    fipsc_fips_gmp gmp;
    int t_end, t;          /* mask schedule end; next step */
    float lr_now;
    bool rigl_now;
    fips_work work;
    float *dU, *mU, *vU;   /* [d, r] */
    void *mV, *vV;         /* [r, width]: float, or bfloat16 (uint16_t) with o.bf16_moments */
    float *rigl_grad;      /* [r, P] (RigL only) */
    double *ms, *mlp_loss; /* [n_mlps] */
    int64_t *batch;        /* [n_mlps]: rows per step */
    sampler *samp;         /* [n_mlps] */
    float *xb, *yb;        /* [max batch, d]: gathered rows */
    fips_sparse_v lists;   /* the kept entries of the set's V_i, for the V-sparse step */
    bool lists_stale;      /* the mask changed since they were built (or they never were) */
    int sparse_steps;      /* steps run V-sparse */
};

void fipsc_fips_trainer_free(fipsc_fips_trainer *tr)
{
    if (!tr) return;
    fips_work_free(&tr->work);
    fips_sparse_v_free(&tr->lists);
    free(tr->set);
    free(tr->dU);
    free(tr->mU);
    free(tr->vU);
    free(tr->mV);
    free(tr->vV);
    free(tr->rigl_grad);
    free(tr->ms);
    free(tr->mlp_loss);
    free(tr->batch);
    if (tr->samp)
        for (int j = 0; j < tr->g->n_mlps; j++) free(tr->samp[j].perm);
    free(tr->samp);
    free(tr->xb);
    free(tr->yb);
    free(tr);
}

static fipsc_status check_opts(const fipsc_fips_train_opts *o, int r, fipsc_error *err)
{
#define BAD(...) fipsc_fail(err, FIPSC_ERR_ARG, "FiPS training: " __VA_ARGS__)
    if ((unsigned)o->mode > FIPSC_FIPS_LOCAL) return BAD("unknown mode %d", (int)o->mode);
    if ((unsigned)o->mask > FIPSC_FIPS_MASK_NM) return BAD("unknown mask kind %d", (int)o->mask);
    if (o->steps < 1) return BAD("steps = %d, must be at least 1", o->steps);
    if (o->batch_rows < 1) return BAD("batch_rows = %d, must be at least 1", o->batch_rows);
    if (!(o->lr > 0.0f) || !isfinite(o->lr)) return BAD("learning rate %g must be positive", (double)o->lr);
    if (!(o->lr_min >= 0.0f && o->lr_min <= o->lr))
        return BAD("final learning rate %g must be in [0, lr = %g]", (double)o->lr_min, (double)o->lr);
    if (!(o->adamw.beta1 >= 0.0f && o->adamw.beta1 < 1.0f && o->adamw.beta2 >= 0.0f &&
          o->adamw.beta2 < 1.0f && o->adamw.eps > 0.0f && o->adamw.weight_decay >= 0.0f))
        return BAD("AdamW needs β1, β2 ∈ [0, 1), eps > 0, weight decay ≥ 0");
    if (o->mask != FIPSC_FIPS_MASK_NM && !(o->sparsity >= 0.0 && o->sparsity < 1.0))
        return BAD("sparsity %g is not in [0, 1)", o->sparsity);
    if (o->mask == FIPSC_FIPS_MASK_NM) {
        if (o->nm_m < 1 || o->nm_m > 255 || o->nm_n < 1 || o->nm_n > o->nm_m)
            return BAD("%d:%d is not a valid n:m (1 ≤ n ≤ m ≤ 255)", o->nm_n, o->nm_m);
        if (r % o->nm_m)
            return BAD("rank r = %d is not a multiple of m = %d for %d:%d sparsity (round the "
                       "rank down to a multiple of %d)", r, o->nm_m, o->nm_n, o->nm_m, o->nm_m);
    }
    if (o->delta_t < 1) return BAD("mask update interval %d must be at least 1", o->delta_t);
    if (!(o->end_fraction >= 0.0 && o->end_fraction <= 1.0) ||
        !(o->gmp_accel_fraction >= 0.0 && o->gmp_accel_fraction <= 1.0))
        return BAD("schedule fractions must be in [0, 1]");
    if (!(o->gmp_initial >= 0.0 && o->gmp_initial < 1.0 && o->gmp_accelerated >= 0.0 &&
          o->gmp_accelerated < 1.0))
        return BAD("GMP initial/accelerated sparsities must be in [0, 1)");
    if (!(o->rigl_alpha >= 0.0 && o->rigl_alpha <= 1.0))
        return BAD("RigL drop fraction %g is not in [0, 1]", o->rigl_alpha);
    if (o->progress_every < 0) return BAD("progress_every must not be negative");
    return FIPSC_OK;
#undef BAD
}

/* Checks MLP j's calibration rows and returns the mean square of its target. */
static fipsc_status check_calib(const fipsc_fips_calib *c, int j, int d, double *ms,
                                fipsc_error *err)
{
    if (c->n < 1 || !c->x || !c->y)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS training: MLP %d has no calibration rows", j);
    size_t n = (size_t)c->n * (size_t)d;
    int64_t bad = fipsc_first_nonfinite(c->x, n);
    if (bad >= 0)
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "FiPS training: calibration input of MLP %d, row "
                          "%lld, column %lld is not finite", j, (long long)(bad / d), (long long)(bad % d));
    if ((bad = fipsc_first_nonfinite(c->y, n)) >= 0)
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "FiPS training: calibration target of MLP %d, row "
                          "%lld, column %lld is not finite", j, (long long)(bad / d), (long long)(bad % d));
    double s = 0.0;
    for (size_t e = 0; e < n; e++) s += (double)c->y[e] * (double)c->y[e];
    *ms = s / (double)n;
    if (!(*ms > 0.0))
        return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                          "FiPS training: the calibration target of MLP %d is all zeros", j);
    return FIPSC_OK;
}

fipsc_status fipsc_fips_trainer_new(const fipsc_fips_group *g, fipsc_fips_factors *F,
                                    const fipsc_fips_calib *calib,
                                    const fipsc_fips_train_opts *opts, int mlp,
                                    fipsc_fips_trainer **out, fipsc_error *err)
{
    *out = NULL;
    if (!F->U || !F->V || !F->mask || F->d != g->d || F->P != g->P || F->r < 1)
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "FiPS training: factors (d = %d, P = %lld) do not belong to this group "
                          "(d = %d, P = %lld)", F->d, (long long)F->P, g->d, (long long)g->P);
    if (F->P > 2147483647)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "FiPS training: P = %lld exceeds the BLAS int range",
                          (long long)F->P);
    if (mlp < -1 || mlp >= g->n_mlps)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS training: MLP index %d out of range", mlp);
    if (!calib) return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS training: no calibration data");
    fipsc_status st = check_opts(opts, F->r, err);
    if (st) return st;

    fipsc_fips_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS training: out of memory");
    tr->g = g;
    tr->F = F;
    tr->calib = calib;
    tr->o = *opts;
    tr->mlp = mlp;
    tr->j0 = mlp < 0 ? 0 : mlp;
    tr->j1 = mlp < 0 ? g->n_mlps : mlp + 1;
    int m0 = g->first_matrix[tr->j0], m1 = g->first_matrix[tr->j1];
    tr->n_set = m1 - m0;
    tr->col0 = g->matrices[m0].col_offset;
    tr->width = g->matrices[m1 - 1].col_offset + g->matrices[m1 - 1].cols - tr->col0;
    tr->set_total = (int64_t)F->r * tr->width;
    tr->t_end = (int)(opts->end_fraction * opts->steps);
    tr->gmp = (fipsc_fips_gmp){(int)(opts->gmp_accel_fraction * opts->steps), tr->t_end,
                               opts->delta_t, opts->gmp_initial, opts->gmp_accelerated,
                               opts->sparsity};
    const int d = g->d, r = F->r;
    size_t nu = (size_t)d * (size_t)r, nv = (size_t)r * (size_t)tr->width;
    tr->set = malloc((size_t)tr->n_set * sizeof *tr->set);
    tr->dU = malloc(nu * sizeof(float));
    tr->mU = calloc(nu, sizeof(float));
    tr->vU = calloc(nu, sizeof(float));
    const size_t moment_size = opts->bf16_moments ? sizeof(uint16_t) : sizeof(float);
    tr->mV = calloc(nv, moment_size);
    tr->vV = calloc(nv, moment_size);
    tr->ms = calloc((size_t)g->n_mlps, sizeof(double));
    tr->mlp_loss = calloc((size_t)g->n_mlps, sizeof(double));
    tr->batch = calloc((size_t)g->n_mlps, sizeof(int64_t));
    tr->samp = calloc((size_t)g->n_mlps, sizeof(sampler));
    if (opts->mask == FIPSC_FIPS_MASK_RIGL)
        tr->rigl_grad = calloc((size_t)r * (size_t)F->P, sizeof(float));
    if (!tr->set || !tr->dU || !tr->mU || !tr->vU || !tr->mV || !tr->vV || !tr->ms ||
        !tr->mlp_loss || !tr->batch || !tr->samp ||
        (opts->mask == FIPSC_FIPS_MASK_RIGL && !tr->rigl_grad)) {
        fipsc_fips_trainer_free(tr);
        return fipsc_fail(err, FIPSC_ERR_NOMEM,
                          "FiPS training: out of memory for the optimiser state of U [%d, %d] and "
                          "V [%d, %lld] (%.2f GB)", d, r, r, (long long)tr->width,
                          (double)(nu * 12 + nv * 2 * moment_size) / 1e9);
    }
    for (int i = 0; i < tr->n_set; i++) tr->set[i] = m0 + i;

    int64_t max_batch = 0;
    bool gather = false;
    for (int j = tr->j0; j < tr->j1; j++) {
        if ((st = check_calib(&calib[j], j, d, &tr->ms[j], err))) {
            fipsc_fips_trainer_free(tr);
            return st;
        }
        int64_t n = calib[j].n;
        tr->batch[j] = n < opts->batch_rows ? n : opts->batch_rows;
        if (tr->batch[j] > max_batch) max_batch = tr->batch[j];
        if (tr->batch[j] < n) {
            /* Minibatches: a stream per MLP, seeded by the seed and the MLP's index. */
            sampler *s = &tr->samp[j];
            s->n = n;
            s->perm = malloc((size_t)n * sizeof *s->perm);
            if (!s->perm) {
                fipsc_fips_trainer_free(tr);
                return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS training: out of memory");
            }
            for (int64_t i = 0; i < n; i++) s->perm[i] = i;
            fipsc_rng_seed(&s->rng, opts->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(j + 1)));
            shuffle(s);
            gather = true;
        }
    }
    if (gather) {
        tr->xb = malloc((size_t)max_batch * (size_t)d * sizeof(float));
        tr->yb = malloc((size_t)max_batch * (size_t)d * sizeof(float));
        if (!tr->xb || !tr->yb) {
            fipsc_fips_trainer_free(tr);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS training: out of memory");
        }
    }
    if ((st = fips_work_init(&tr->work, g, r, max_batch, err))) {
        fipsc_fips_trainer_free(tr);
        return st;
    }
    tr->active = fipsc_fips_count_active(g, F, tr->set, tr->n_set);
    tr->lists_stale = true;
    *out = tr;
    return FIPSC_OK;
}

/* Prunes the trained V_i to sparsity s by magnitude: globally over the set, or each on its own. */
static fipsc_status prune_to(fipsc_fips_trainer *tr, double s, fipsc_error *err)
{
    fipsc_status st = FIPSC_OK;
    if (tr->o.per_matrix) {
        for (int a = 0; a < tr->n_set && !st; a++) {
            int i = tr->set[a];
            int64_t total = (int64_t)tr->F->r * tr->g->matrices[i].cols;
            st = fipsc_fips_prune_magnitude(tr->g, tr->F, &i, 1, fipsc_fips_keep_count(total, s), err);
        }
    } else {
        st = fipsc_fips_prune_magnitude(tr->g, tr->F, tr->set, tr->n_set,
                                        fipsc_fips_keep_count(tr->set_total, s), err);
    }
    return st;
}

static fipsc_status update_masks_before(fipsc_fips_trainer *tr, fipsc_error *err)
{
    const int t = tr->t;
    fipsc_status st = FIPSC_OK;
    bool changed = false;
    switch (tr->o.mask) {
    case FIPSC_FIPS_MASK_GMP:
        if (fipsc_fips_gmp_prunes_at(&tr->gmp, t)) {
            st = prune_to(tr, fipsc_fips_gmp_sparsity(&tr->gmp, t), err);
            changed = true;
        }
        break;
    case FIPSC_FIPS_MASK_RIGL:
    case FIPSC_FIPS_MASK_STATIC:
        if (t == 0) {
            st = prune_to(tr, tr->o.sparsity, err);
            changed = true;
        }
        break;
    case FIPSC_FIPS_MASK_NM:
        if (t == 0) {
            st = fipsc_fips_prune_nm(tr->g, tr->F, tr->set, tr->n_set, tr->o.nm_n, tr->o.nm_m, err);
            changed = true;
        }
        break;
    }
    if (changed && !st) {
        tr->active = fipsc_fips_count_active(tr->g, tr->F, tr->set, tr->n_set);
        tr->lists_stale = true;
    }
    return st;
}

/* The backward pass hands over V_i's gradient: keep it for RigL if needed, then AdamW on V_i. */
static void adam_sink(void *user, int i, const float *grad)
{
    fipsc_fips_trainer *tr = user;
    const fipsc_fips_matrix *mx = &tr->g->matrices[i];
    const int r = tr->F->r;
    const int64_t P = tr->F->P, off = mx->col_offset;
    if (tr->rigl_now)
        for (int k = 0; k < r; k++)
            memcpy(tr->rigl_grad + k * P + off, grad + (int64_t)k * mx->cols,
                   (size_t)mx->cols * sizeof(float));
    const int64_t at = off - tr->col0;
    if (tr->work.sparse) {
        const size_t moment = tr->o.bf16_moments ? sizeof(uint16_t) : sizeof(float);
        fips_adamw_kept(&tr->o.adamw, tr->t + 1, tr->lr_now, &tr->lists.by_row[i - tr->lists.first], tr->F->V + off, P,
                        off, (char *)tr->mV + at * (int64_t)moment, (char *)tr->vV + at * (int64_t)moment, tr->width,
                        tr->o.bf16_moments, fipsc_seed_derive(tr->o.seed, 0x6d6f6d656e7473ULL /* "moments" */), grad);
        return;
    }
    if (tr->o.bf16_moments)
        fipsc_adamw_step_bf16(&tr->o.adamw, tr->t + 1, tr->lr_now, r, mx->cols, tr->F->V + off, tr->F->mask, off, P,
                              (uint16_t *)tr->mV + at, (uint16_t *)tr->vV + at, tr->width, grad, mx->cols,
                              fipsc_seed_derive(tr->o.seed, 0x6d6f6d656e7473ULL /* "moments" */));
    else
        fipsc_adamw_step(&tr->o.adamw, tr->t + 1, tr->lr_now, r, mx->cols, tr->F->V + off, tr->F->mask, off, P,
                         (float *)tr->mV + at, (float *)tr->vV + at, tr->width, grad, mx->cols);
}

/* Rows of MLP j for this step: all of them, or the next b of its shuffled stream. */
static void next_batch(fipsc_fips_trainer *tr, int j, const float **x, const float **y)
{
    const fipsc_fips_calib *c = &tr->calib[j];
    sampler *s = &tr->samp[j];
    if (!s->perm) {
        *x = c->x;
        *y = c->y;
        return;
    }
    const int d = tr->g->d;
    for (int64_t q = 0; q < tr->batch[j]; q++) {
        if (s->pos == s->n) shuffle(s);
        int64_t row = s->perm[s->pos++];
        memcpy(tr->xb + q * d, c->x + row * d, (size_t)d * sizeof(float));
        memcpy(tr->yb + q * d, c->y + row * d, (size_t)d * sizeof(float));
    }
    *x = tr->xb;
    *y = tr->yb;
}

/* Whether this step multiplies by V's kept entries only (recon.c): RigL's update steps need the
 * gradient of every entry; otherwise by the option, auto: once V is sparse enough to gain. */
static bool sparse_step(const fipsc_fips_trainer *tr)
{
    if (tr->rigl_now) return false;
    switch (tr->o.v_products) {
    case FIPSC_FIPS_V_DENSE: return false;
    case FIPSC_FIPS_V_SPARSE: return true;
    case FIPSC_FIPS_V_AUTO: break;
    }
    return (double)tr->active <= FIPSC_FIPS_SPARSE_STEP_DENSITY * (double)tr->set_total;
}

/* Points the workspace at V's kept entries as lists (built again when the mask changed, else
 * their values refreshed from V), or at nothing for the dense products. */
static fipsc_status prepare_products(fipsc_fips_trainer *tr, fipsc_error *err)
{
    /* The previous step's update refreshed the row lists' values if it was V-sparse. */
    const bool rows_current = tr->work.sparse != NULL;
    tr->work.sparse = NULL;
    if (!sparse_step(tr)) return FIPSC_OK;
    fipsc_status st = fips_work_tiles(&tr->work, err);
    if (st) return st;
    const fipsc_fips_group *g = tr->g;
    if (tr->lists_stale) {
        if ((st = fips_sparse_v_build(&tr->lists, g, tr->F, tr->set[0], tr->set[0] + tr->n_set, err))) return st;
        tr->lists_stale = false;
    } else {
        fips_sparse_v_load(&tr->lists, g, tr->F, rows_current);
    }
    tr->work.sparse = &tr->lists;
    tr->sparse_steps++;
    return FIPSC_OK;
}

/* A relative loss beyond which training has diverged (see fipsc_fips_trainer_step). */
#define DIVERGED_LOSS 1e4

fipsc_status fipsc_fips_trainer_step(fipsc_fips_trainer *tr, double *loss_out, fipsc_error *err)
{
    const fipsc_fips_train_opts *o = &tr->o;
    const int t = tr->t;
    if (t >= o->steps)
        return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS training: all %d steps have run", o->steps);
    fipsc_status st = update_masks_before(tr, err);
    if (st) return st;
    tr->rigl_now = o->mask == FIPSC_FIPS_MASK_RIGL && fipsc_fips_rigl_updates_at(t, tr->t_end, o->delta_t);
    tr->lr_now = fipsc_fips_cosine_lr(o->lr, o->lr_min, t, o->steps);
    if ((st = prepare_products(tr, err))) return st;

    const fipsc_fips_group *g = tr->g;
    double loss = 0.0;
    for (int j = tr->j0; j < tr->j1; j++) {
        const float *x, *y;
        next_batch(tr, j, &x, &y);
        double scale = 1.0 / ((double)tr->batch[j] * g->d * tr->ms[j]);
        double l = fips_mlp_loss_backward(&tr->work, g, tr->F, j, x, y, tr->batch[j], scale, tr->dU,
                                          j != tr->j0, adam_sink, tr);
        /* The loss is relative (the squared error over the target's mean square, ~1 or less
         * from the SVD start): beyond DIVERGED_LOSS the outputs are 100× off, the run has diverged
         * even while float still holds the numbers, and whether it later overflows would depend on
         * the CPU's rounding. */
        if (!isfinite(l) || l > DIVERGED_LOSS)
            return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                              "FiPS training: the loss of MLP %d became %g at step %d of %d "
                              "(learning rate %g); lower the learning rate", j, l, t + 1, o->steps,
                              (double)tr->lr_now);
        tr->mlp_loss[j] = l;
        loss += l;
    }
    const int d = g->d, r = tr->F->r;
    fipsc_adamw_step(&o->adamw, t + 1, tr->lr_now, d, r, tr->F->U, NULL, 0, r, tr->mU, tr->vU, r,
                     tr->dU, r);
    if (tr->rigl_now) {
        double frac = fipsc_fips_rigl_fraction(o->rigl_alpha, t, tr->t_end);
        if (o->per_matrix) {
            for (int a = 0; a < tr->n_set && !st; a++)
                st = fipsc_fips_rigl_update(g, tr->F, &tr->set[a], 1, tr->rigl_grad, frac, NULL, err);
        } else {
            st = fipsc_fips_rigl_update(g, tr->F, tr->set, tr->n_set, tr->rigl_grad, frac, NULL, err);
        }
        if (st) return st;
        tr->lists_stale = true;
    }
    tr->t++;
    if (loss_out) *loss_out = loss;
    if (o->progress && ((o->progress_every > 0 && tr->t % o->progress_every == 0) || tr->t == o->steps)) {
        fipsc_fips_progress p = {
            .group = o->group_index,
            .mlp = tr->mlp,
            .step = tr->t,
            .steps = o->steps,
            .loss = loss,
            .mlp_loss = tr->mlp_loss,
            .sparsity = 1.0 - (double)tr->active / (double)tr->set_total,
            .lr = tr->lr_now,
        };
        o->progress(o->progress_user, &p);
    }
    return FIPSC_OK;
}

double fipsc_fips_trainer_step_flops(const fipsc_fips_trainer *tr)
{
    double flops = 0.0;
    for (int j = tr->j0; j < tr->j1; j++)
        flops += fips_mlp_step_flops(tr->g, tr->F->r, j, tr->batch[j]);
    return flops;
}

void fipsc_fips_train_report_free(fipsc_fips_train_report *rep)
{
    if (!rep) return;
    free(rep->rel_err_before);
    free(rep->rel_err_after);
    memset(rep, 0, sizeof *rep);
}

int fipsc_fips_trainer_steps_done(const fipsc_fips_trainer *tr) { return tr->t; }

int fipsc_fips_trainer_sparse_steps(const fipsc_fips_trainer *tr) { return tr->sparse_steps; }

bool fipsc_fips_trainer_mask_final(const fipsc_fips_trainer *tr)
{
    /* GMP prunes to s_final before the step at t_end (fipsc_fips_gmp_prunes_at), so the mask is
     * final once that step has run; the other schedules set it before the first step. */
    if (tr->o.mask == FIPSC_FIPS_MASK_GMP) return tr->t > tr->t_end && tr->t_end < tr->o.steps;
    return tr->t > 0;
}

static fipsc_status run_phase(const fipsc_fips_group *g, fipsc_fips_factors *F,
                              const fipsc_fips_calib *calib, const fipsc_fips_train_opts *opts,
                              int mlp, bool last_phase, int steps_before, fips_selection *sel,
                              double *final_loss, int *sparse_steps, fipsc_error *err)
{
    fipsc_fips_trainer *tr;
    fipsc_status st = fipsc_fips_trainer_new(g, F, calib, opts, mlp, &tr, err);
    if (st) return st;
    for (int t = 0; t < opts->steps && !st; t++) {
        st = fipsc_fips_trainer_step(tr, final_loss, err);
        if (!st && sel->holdout) st = fips_selection_consider(sel, g, F, tr, opts->steps, last_phase, steps_before, err);
    }
    *sparse_steps += tr->sparse_steps;
    fipsc_fips_trainer_free(tr);
    return st;
}

fipsc_status fipsc_fips_train(const fipsc_fips_group *g, fipsc_fips_factors *F,
                              const fipsc_fips_calib *calib, const fipsc_fips_train_opts *opts,
                              fipsc_fips_train_report *rep, fipsc_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (!calib) return fipsc_fail(err, FIPSC_ERR_ARG, "FiPS training: no calibration data");
    if (F->d != g->d || F->P != g->P)
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "FiPS training: factors (d = %d, P = %lld) do not belong to this group "
                          "(d = %d, P = %lld)", F->d, (long long)F->P, g->d, (long long)g->P);
    fipsc_status st = check_opts(opts, F->r, err);
    if (st) return st;
    rep->n_mlps = g->n_mlps;
    rep->rel_err_before = malloc((size_t)g->n_mlps * sizeof(double));
    rep->rel_err_after = malloc((size_t)g->n_mlps * sizeof(double));
    if (!rep->rel_err_before || !rep->rel_err_after) {
        fipsc_fips_train_report_free(rep);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS training: out of memory");
    }
    for (int j = 0; j < g->n_mlps; j++) rep->rel_err_before[j] = rep->rel_err_after[j] = NAN;
    for (int j = 0; j < g->n_mlps && opts->evaluate && !st; j++)
        st = fipsc_fips_relative_error(g, F, j, &calib[j], &rep->rel_err_before[j], err);
    const int phases = opts->mode == FIPSC_FIPS_JOINT ? 1 : g->n_mlps;
    fips_selection sel = {.best_score = INFINITY, .last_score = NAN, .best_step = opts->steps * phases};
    for (int j = 0; j < g->n_mlps && opts->holdout && !sel.holdout; j++)
        if (opts->holdout[j].n > 0) sel.holdout = opts->holdout;
    sel.every = opts->eval_every > 0 ? opts->eval_every : (opts->steps / 20 > 1 ? opts->steps / 20 : 1);
    for (int k = 0; k < phases && !st; k++)
        st = run_phase(g, F, calib, opts, phases == 1 ? -1 : k, k == phases - 1, k * opts->steps, &sel,
                       &rep->final_loss, &rep->sparse_steps, err);
    /* The last iterate is F itself; an earlier best was copied when it was seen. */
    if (!st && sel.holdout && sel.best_step < opts->steps * phases) fips_snapshot_restore(&sel.best, F);
    fips_snapshot_free(&sel.best);
    rep->holdout_last = sel.holdout ? sel.last_score : NAN;
    rep->holdout_kept = sel.holdout && isfinite(sel.best_score) ? sel.best_score : rep->holdout_last;
    rep->kept_step = sel.best_step;
    rep->evaluations = sel.evaluations;
    for (int j = 0; j < g->n_mlps && opts->evaluate && !st; j++)
        st = fipsc_fips_relative_error(g, F, j, &calib[j], &rep->rel_err_after[j], err);
    if (st) {
        fipsc_fips_train_report_free(rep);
        return st;
    }
    rep->nnz = fipsc_fips_count_active(g, F, NULL, 0);
    rep->sparsity = 1.0 - (double)rep->nnz / ((double)F->r * (double)F->P);
    return FIPSC_OK;
}
