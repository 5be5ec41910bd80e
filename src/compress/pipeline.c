/* The compression run (src/compress/compress.h): plan every group, then group by group run the
 * method, measure what it cost (weight and output errors, nnz, parameters, bytes, time) and put
 * the result into the model — the compressed form (fipsc_model_attach_group) or, with
 * dense_reconstruction, each matrix's dense reconstruction in place of its weight.
 *
 * The calibration rows come from the original model — captured before anything changed, or
 * (streamed, the default) when the group's turn comes, by running its original blocks from the
 * residual stream before any version of the group enters the model — so compressing a group
 * never sees the outputs of an earlier compressed group (teacher forcing), and the groups could
 * run in any order with the same result. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/memory.h"
#include "ops/factored.h"
#include "ops/mlp_forward.h"
#include "core/tensor.h"

void fipsc_compress_report_free(fipsc_compress_report *rep)
{
    if (!rep) return;
    for (int k = 0; k < rep->n_groups; k++) {
        free(rep->groups[k].mlps);
        free(rep->groups[k].matrices);
    }
    free(rep->groups);
    free(rep);
}

/* ‖W − b‖_F / ‖W‖_F for matrix i's original weight W (n floats, widened a piece at a time when
 * it is 16-bit), in double. */
static double weight_relative_error(const fipsc_fips_group *g, int i, const float *b, int64_t n)
{
    enum { PIECE = 4096 };
    float a[PIECE];
    double num = 0.0, den = 0.0;
    for (int64_t at = 0; at < n; at += PIECE) {
        const int64_t count = n - at < PIECE ? n - at : PIECE;
        fipsc_fips_matrix_weight_span(g, i, at, count, a);
        for (int64_t e = 0; e < count; e++) {
            double diff = (double)a[e] - (double)b[at + e];
            num += diff * diff;
            den += (double)a[e] * (double)a[e];
        }
    }
    return den > 0.0 ? sqrt(num / den) : (num > 0.0 ? INFINITY : 0.0);
}

fipsc_status compress_output_error(const fipsc_fips_group *g, int j, float *const *w,
                                   const fipsc_fips_calib *calib, double *out, fipsc_error *err)
{
    fipsc_mlp mlp = g->mlps[j];
    for (int i = g->first_matrix[j]; i < g->first_matrix[j + 1]; i++) {
        fipsc_linear *lin = fipsc_mlp_slot(&mlp, g->matrices[i].role);
        lin->w = w[i];
        lin->w16 = NULL;
    }
    const int d = g->d;
    int64_t chunk = calib->n < EVAL_CHUNK_ROWS ? calib->n : EVAL_CHUNK_ROWS;
    float *y = malloc((size_t)chunk * (size_t)d * sizeof(float));
    float *scratch = malloc(fipsc_mlp_scratch_floats(&mlp, (int)chunk) * sizeof(float));
    if (!y || !scratch) {
        free(y);
        free(scratch);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    double num = 0.0, den = 0.0;
    fipsc_status st = FIPSC_OK;
    for (int64_t r0 = 0; r0 < calib->n && !st; r0 += chunk) {
        int n = (int)(calib->n - r0 < chunk ? calib->n - r0 : chunk);
        if ((st = fipsc_mlp_forward(&mlp, n, calib->x + r0 * d, y, scratch, err))) break;
        const float *t = calib->y + r0 * d;
        for (int64_t e = 0; e < (int64_t)n * d; e++) {
            double diff = (double)y[e] - (double)t[e];
            num += diff * diff;
            den += (double)t[e] * (double)t[e];
        }
    }
    free(y);
    free(scratch);
    if (st) return st;
    *out = den > 0.0 ? sqrt(num / den) : NAN;
    return FIPSC_OK;
}

/* Fills the group report from the outcome: errors, nnz, parameters, bytes. */
static fipsc_status measure_group(const fipsc_fips_group *g, const fipsc_group_plan *plan,
                                  const fipsc_fips_calib *calib, const fipsc_fips_calib *holdout,
                                  const compress_outcome *oc,
                                  fipsc_group_report *gr, fipsc_error *err)
{
    gr->plan = *plan;
    gr->n_mlps = g->n_mlps;
    gr->n_matrices = g->n_matrices;
    gr->mlps = calloc((size_t)g->n_mlps, sizeof *gr->mlps);
    gr->matrices = calloc((size_t)g->n_matrices, sizeof *gr->matrices);
    if (!gr->mlps || !gr->matrices) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    gr->final_loss = oc->final_loss;
    gr->steps = oc->steps;
    gr->lr = oc->lr;
    gr->retries = oc->retries;
    gr->score_init = oc->score_init;
    gr->score_trained = oc->score_trained;
    gr->score_kept = oc->score_kept;
    gr->kept_step = oc->kept_step;
    gr->sparse_steps = oc->sparse_steps;
    gr->plan.r = oc->rank;
    int64_t entries = 0;
    for (int i = 0; i < g->n_matrices; i++) {
        const fipsc_fips_matrix *mx = &g->matrices[i];
        const fipsc_mlp *mlp = &g->mlps[mx->mlp];
        fipsc_matrix_report *mr = &gr->matrices[i];
        mr->block = plan->blocks.first + mx->mlp;
        mr->role = mx->role;
        mr->out = mx->expanding ? mlp->f : g->d;
        mr->in = mx->expanding ? g->d : mlp->f;
        mr->rank = oc->rank;
        mr->dense_params = (int64_t)g->d * mx->cols;
        mr->nnz = oc->nnz[i];
        mr->weight_rel_err = weight_relative_error(g, i, oc->recon[i], mr->dense_params);
        gr->nnz += oc->nnz[i];
    }
    fipsc_status st = FIPSC_OK;
    for (int j = 0; j < g->n_mlps && !st; j++) {
        fipsc_mlp_report *m = &gr->mlps[j];
        m->block = plan->blocks.first + j;
        m->rows = calib[j].n;
        m->holdout_rows = holdout[j].n;
        m->out_err_before = m->holdout_err_before = m->holdout_err_after = NAN;
        /* Output errors over every calibration row (as for the untrained methods), and over the
         * held-out ones alone. */
        if (oc->before_err) { /* measured by the method before training (it drops the matrices) */
            m->out_err_before = oc->before_err[j];
            m->holdout_err_before = oc->before_holdout_err[j];
        }
        if (!st) st = compress_output_error(g, j, oc->recon, &calib[j], &m->out_err_after, err);
        if (!st && holdout[j].n > 0)
            st = compress_output_error(g, j, oc->recon, &holdout[j], &m->holdout_err_after, err);
    }
    if (st) return st;

    /* Parameters and bytes of what is actually stored, part by part. */
    gr->kept_params = 0;
    gr->stored_bytes = 0;
    for (int k = 0; k < oc->n_parts; k++) {
        const fipsc_group_spec *s = &oc->parts[k].spec;
        int *cols = malloc((size_t)s->n_matrices * sizeof *cols);
        int64_t *nnz = malloc((size_t)s->n_matrices * sizeof *nnz);
        if (!cols || !nnz) {
            free(cols);
            free(nnz);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        }
        for (int q = 0; q < s->n_matrices; q++) {
            int64_t pos = 0; /* the part's matrix q is the group's matrix with its layer and role */
            for (int i = 0; i < g->n_matrices; i++)
                if (gr->matrices[i].block == s->matrices[q].layer && gr->matrices[i].role == s->matrices[q].role)
                    pos = i;
            cols[q] = g->matrices[pos].cols;
            nnz[q] = oc->nnz[pos];
            gr->kept_params += nnz[q];
            entries += (int64_t)s->r * cols[q];
        }
        if (s->U) gr->kept_params += (int64_t)s->d * s->r;
        gr->stored_bytes += compress_storage_bytes(s->storage, s->d, s->r,
                                                   s->U ? (int)fipsc_dtype_size(s->u_dtype) : 0,
                                                   (int)fipsc_dtype_size(s->v_dtype), s->n_matrices, cols, nnz);
        gr->plan.storage = s->storage;
        free(cols);
        free(nnz);
    }
    /* svd's factors are dense: the zero rows of its stacked V_i (methods.c) are no sparsity. */
    gr->sparsity = oc->svd_stacked || entries <= 0 ? 0.0 : 1.0 - (double)gr->nnz / (double)entries;
    return FIPSC_OK;
}

/* Replaces matrix i of g (block first + mlp) by its reconstruction, handing the buffer to the
 * model's tensor of the same name. */
static fipsc_status install_dense(fipsc_model *m, const fipsc_fips_group *g, int first, int i,
                                  float **recon, fipsc_error *err)
{
    const fipsc_fips_matrix *mx = &g->matrices[i];
    fipsc_mlp *mlp = m->mlps[first + mx->mlp];
    fipsc_linear *lin = fipsc_mlp_slot(mlp, mx->role);
    fipsc_tensor *t = NULL;
    for (int k = 0; k < m->n_tensors && !t; k++)
        if (lin->weight_name && strcmp(m->tensors[k].name, lin->weight_name) == 0) t = &m->tensors[k];
    if (!t)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "block %d: the %s weight has no tensor in the model",
                          first + mx->mlp, lin->weight_name ? lin->weight_name : "(unnamed)");
    if (t->owned) {
        free(t->data);
        free(t->half);
    }
    t->data = *recon;
    t->half = NULL;
    t->owned = true;
    t->source_dtype = FIPSC_F32;
    lin->w = *recon;
    lin->w16 = NULL;
    *recon = NULL;
    return FIPSC_OK;
}

/* Forwards the trainer's progress with the run's position, elapsed time and ETA. */
typedef struct hook_ctx {
    fipsc_compress_progress_fn fn;
    void *user;
    int group, n_groups;
    fipsc_block_range blocks;
    double t0;
    int64_t steps_before, steps_total; /* over the whole run */
    int steps_per_phase;
} hook_ctx;

static void train_progress(void *user, const fipsc_fips_progress *p)
{
    hook_ctx *h = user;
    if (!h->fn) return;
    int64_t done = h->steps_before + (p->mlp >= 0 ? (int64_t)p->mlp * h->steps_per_phase : 0) + p->step;
    double elapsed = fipsc_seconds_now() - h->t0;
    fipsc_compress_progress cp = {
        .event = FIPSC_COMPRESS_STEP,
        .group = h->group,
        .n_groups = h->n_groups,
        .blocks = h->blocks,
        .block = p->mlp >= 0 ? h->blocks.first + p->mlp : -1,
        .step = p->step,
        .steps = p->steps,
        .loss = p->loss,
        .sparsity = p->sparsity,
        .elapsed = elapsed,
        .eta = done > 0 ? elapsed * (double)(h->steps_total - done) / (double)done : -1.0,
    };
    h->fn(h->user, &cp);
}

/* A restart after a divergence, forwarded with the run's position. */
static void train_retry(void *user, int retry, float lr, const char *why)
{
    hook_ctx *h = user;
    if (!h->fn) return;
    fipsc_compress_progress cp = {
        .event = FIPSC_COMPRESS_RETRY,
        .group = h->group,
        .n_groups = h->n_groups,
        .blocks = h->blocks,
        .block = -1,
        .elapsed = fipsc_seconds_now() - h->t0,
        .eta = -1.0,
        .retry = retry,
        .lr = lr,
        .message = why,
    };
    h->fn(h->user, &cp);
}

/* "[row, col]" of flat index e in a tensor, or "flat index e" if it is not a matrix. */
static void format_position(char *buf, size_t cap, const fipsc_tensor *t, int64_t e)
{
    if (t->ndim == 2 && t->shape[1] > 0)
        snprintf(buf, cap, "[%lld, %lld]", (long long)(e / t->shape[1]), (long long)(e % t->shape[1]));
    else
        snprintf(buf, cap, "flat index %lld", (long long)e);
}

/* NaN/Inf anywhere in the model stops the run before any work: in a group's MLP it would make
 * the SVD and training meaningless, anywhere else it feeds the calibration forward and would be
 * copied into the written file. The message names the group (or says the tensor is in none). */
static fipsc_status check_weights(const fipsc_model *m, const fipsc_group_plan *plans, int n,
                                  fipsc_error *err)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        int64_t bad = fipsc_tensor_first_nonfinite(t);
        if (bad < 0) continue;
        const double value = fipsc_tensor_value(t, bad);
        char pos[96];
        format_position(pos, sizeof pos, t, bad);
        for (int k = 0; k < n; k++)
            for (int l = plans[k].blocks.first; l <= plans[k].blocks.last; l++) {
                const fipsc_mlp *mlp = m->mlps[l];
                const bool gated = mlp->kind == FIPSC_MLP_GATED;
                const fipsc_linear *lins[3] = {&mlp->up, &mlp->down, gated ? &mlp->gate : NULL};
                const char *names[3] = {gated ? "up" : "fc1", gated ? "down" : "fc2", "gate"};
                for (int q = 0; q < 3; q++) {
                    if (!lins[q]) continue;
                    const bool weight = t->half ? t->half == lins[q]->w16 : t->data == lins[q]->w;
                    if (!weight && (!t->data || t->data != lins[q]->bias)) continue;
                    return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                                      "group %d (blocks %d-%d): block %d's %s %s '%s' holds a "
                                      "non-finite value (%g) at %s", k, plans[k].blocks.first,
                                      plans[k].blocks.last, l, names[q],
                                      weight ? "weight" : "bias", t->name, value, pos);
                }
            }
        return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                          "tensor '%s' holds a non-finite value (%g) at %s; it is in no compressed "
                          "group, but the calibration forward uses it and the written model would "
                          "carry it: nothing was compressed", t->name, value, pos);
    }
    return FIPSC_OK;
}

/* Group k's calibration rows: present and finite. */
static fipsc_status check_group_rows(const fipsc_calibration *cal, const fipsc_group_plan *plans, int k,
                                     fipsc_error *err)
{
    for (int l = plans[k].blocks.first; l <= plans[k].blocks.last; l++) {
        const fipsc_fips_calib *c = &cal->blocks[l];
        if (c->n < 1 || !c->x || !c->y)
            return fipsc_fail(err, FIPSC_ERR_ARG, "no calibration rows for block %d (group %d)", l, k);
        /* Rows are [n, d] with d the group's width (the plan checked every block has it). */
        const int d = plans[k].d;
        for (int which = 0; which < 2; which++) {
            const float *rows = which ? c->y : c->x;
            int64_t bad = fipsc_first_nonfinite(rows, (size_t)c->n * (size_t)d);
            if (bad >= 0)
                return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                                  "group %d (blocks %d-%d): the calibration %s of block %d is "
                                  "%g at row %lld, column %lld (the %s model's "
                                  "activations are not finite on the calibration data)", k,
                                  plans[k].blocks.first, plans[k].blocks.last,
                                  which ? "MLP output y" : "MLP input x", l, (double)rows[bad],
                                  (long long)(bad / d), (long long)(bad % d),
                                  cal->refresh && k > 0 ? "partly compressed" : "original");
            if (cal->spilled) fipsc_file_pages_release(rows, (size_t)c->n * (size_t)d * sizeof(float));
        }
    }
    return FIPSC_OK;
}

/* The calibration rows of every group this process computes (with sequential calibration: of
 * the first group; the others' are checked when they are captured). */
static fipsc_status check_calibration(const fipsc_model *m, const fipsc_calibration *cal,
                                      const fipsc_compress_options *o, const fipsc_group_plan *plans,
                                      int n, fipsc_error *err)
{
    if (!cal || !cal->blocks || cal->n_blocks != m->n_mlps)
        return fipsc_fail(err, FIPSC_ERR_ARG, "calibration covers %d blocks, the model has %d",
                          cal && cal->blocks ? cal->n_blocks : 0, m->n_mlps);
    for (int k = 0; k < n; k++) {
        if (!compress_owns(o, k, n) || (cal->refresh && k > 0)) continue; /* captured when the group runs */
        fipsc_status st = check_group_rows(cal, plans, k, err);
        if (st) return st;
    }
    return FIPSC_OK;
}

/* Group k's rows captured now (cal->refresh: streamed or sequential calibration), then checked;
 * an error names the calibration. */
static fipsc_status refresh_group_rows(const fipsc_calibration *cal, fipsc_model *m, const fipsc_group_plan *plans,
                                       int k, fipsc_error *err)
{
    fipsc_status st = cal->refresh(cal->refresh_user, m, plans[k].blocks.first, plans[k].blocks.last, err);
    if (!st) st = check_group_rows(cal, plans, k, err);
    if (st) fipsc_fail_context(err, "%s calibration of group %d: ", cal->streamed ? "streaming" : "sequential", k);
    return st;
}

/* Whether this process computes a group after group k. */
static bool owns_later(const fipsc_compress_options *o, int k, int n)
{
    for (int j = k + 1; j < n; j++)
        if (compress_owns(o, j, n)) return true;
    return false;
}

/* --strict's refusal of a group whose training never beat its SVD initialisation. */
static fipsc_status lost_to_initialisation(double init, double trained, fipsc_error *err)
{
    return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                      "training did not improve on the SVD initialisation (score %.6g at the "
                      "initialisation, %.6g at the best trained iterate); --strict: nothing is "
                      "written (try a lower --lr or more --steps)", init, trained);
}

/* Computes group k and puts it into m — or, on a rank other than 0 (o->ranks), sends its
 * checkpoint image to rank 0 and leaves m as it is. */
static fipsc_status run_group(fipsc_model *m, const fipsc_calibration *cal,
                              const fipsc_compress_options *o, const fipsc_group_plan *plan,
                              int k, const fipsc_compress_checkpoint *ck, hook_ctx *hook,
                              fipsc_group_report *gr, fipsc_error *err)
{
    const fipsc_compress_ranks *ranks = compress_shared_ranks(o);
    const bool send = ranks && ranks->rank != 0;
    double t_start = fipsc_seconds_now();
    fipsc_fips_group g;
    fipsc_mlp *mlps;
    fipsc_status st = compress_group_describe(m, plan->blocks, &g, &mlps, err);
    if (st) return st;
    const fipsc_fips_calib *calib = &cal->blocks[plan->blocks.first];
    /* Training rows and held-out rows of each MLP: views into the calibration (only fips trains;
     * the other methods are measured on every row). */
    fipsc_fips_calib *train = malloc(2 * (size_t)g.n_mlps * sizeof *train), *held = train + g.n_mlps;
    if (!train) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int j = 0; j < g.n_mlps && !st; j++)
        fipsc_calibration_split(&calib[j], g.d, cal->n_sequences,
                                o->method == FIPSC_METHOD_FIPS ? o->holdout : 0.0, &train[j], &held[j]);
    compress_outcome oc = {0};
    if (!st)
        st = compress_group_run(&g, plan, train, held, o, k,
                                (compress_train_hook){train_progress, hook, train_retry}, &oc, err);
    if (!st && o->strict && oc.kept_step == 0 && isfinite(oc.score_init))
        st = lost_to_initialisation(oc.score_init, oc.score_trained, err);
    if (st) {
        compress_outcome_free(&oc);
        fipsc_fips_group_free(&g);
        free(mlps);
        free(train);
        return fipsc_fail_context(err, "group %d (blocks %d-%d): ", k, plan->blocks.first, plan->blocks.last);
    }
    /* Whatever the method, a non-finite result must not reach the model (nor a file). */
    for (int i = 0; i < g.n_matrices && !st; i++) {
        const fipsc_fips_matrix *mx = &g.matrices[i];
        int64_t bad = fipsc_first_nonfinite(oc.recon[i], (size_t)g.d * (size_t)mx->cols);
        if (bad >= 0)
            st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "%s gave a non-finite value (%g) in block %d's "
                            "%s matrix at flat index %lld", fipsc_compress_method_name(o->method),
                            (double)oc.recon[i][bad], plan->blocks.first + mx->mlp,
                            fipsc_mlp_role_name(mx->role), (long long)bad);
    }
    if (!st) st = measure_group(&g, plan, calib, held, &oc, gr, err);
    gr->seconds = fipsc_seconds_now() - t_start;
    /* Saved before installing: g still describes the original weights the checkpoint records. */
    gr->peak_rss = fipsc_peak_rss_bytes(); /* recorded in the checkpoint image: rank 0 reports it */
    gr->computed_by = ranks ? ranks->rank : 0;
    void *image = NULL;
    size_t image_size = 0;
    if (!st && (ck || send))
        st = compress_checkpoint_save(ck, &g, calib, o, plan, k, &oc, gr, send ? &image : NULL, &image_size, err);
    if (!st && send) {
        st = ranks->send(ranks->user, k, image, image_size, err); /* it owns the image now */
    } else if (!st && o->dense_reconstruction) {
        /* Install: the group description (which borrows the original weights) is not used after. */
        for (int i = 0; i < g.n_matrices && !st; i++)
            st = install_dense(m, &g, plan->blocks.first, i, &oc.recon[i], err);
    } else if (!st) {
        for (int q = 0; q < oc.n_parts && !st; q++) st = fipsc_model_attach_group(m, &oc.parts[q].spec, err);
    }
    fipsc_fips_group_free(&g);
    free(mlps);
    free(train);
    compress_outcome_free(&oc);
    if (st) return fipsc_fail_context(err, "group %d (blocks %d-%d): ", k, plan->blocks.first, plan->blocks.last);
    return FIPSC_OK;
}

fipsc_status fipsc_compress_run(fipsc_model *m, const fipsc_calibration *cal,
                                const fipsc_compress_options *o,
                                fipsc_compress_progress_fn progress, void *progress_user,
                                fipsc_compress_report **report, fipsc_error *err)
{
    return fipsc_compress_run_checkpointed(m, cal, o, NULL, progress, progress_user, report, err);
}

fipsc_status fipsc_compress_run_checkpointed(fipsc_model *m, const fipsc_calibration *cal,
                                             const fipsc_compress_options *o,
                                             const fipsc_compress_checkpoint *ck,
                                             fipsc_compress_progress_fn progress,
                                             void *progress_user, fipsc_compress_report **report,
                                             fipsc_error *err)
{
    *report = NULL;
    fipsc_group_plan *plans;
    int n;
    fipsc_status st = fipsc_compress_plan(m, o, &plans, &n, err);
    if (st) return st;
    compress_saved *saved = NULL; /* groups read from checkpoints, verified before any work */
    const fipsc_compress_ranks *ranks = compress_shared_ranks(o);
    if ((st = check_weights(m, plans, n, err)) || (st = check_calibration(m, cal, o, plans, n, err)) ||
        (ck && (st = compress_checkpoint_load_all(ck, m, cal, o, plans, n, &saved, err))) ||
        (ranks && (st = ranks->barrier(ranks->user, err)))) {
        free(plans);
        compress_saved_free(saved, n);
        return st;
    }
    fipsc_compress_report *rep = calloc(1, sizeof *rep);
    if (!rep || !(rep->groups = calloc((size_t)n, sizeof *rep->groups))) {
        free(rep);
        free(plans);
        compress_saved_free(saved, n);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    rep->options = *o;
    snprintf(rep->groups_spec, sizeof rep->groups_spec, "%s", o->groups);
    rep->options.groups = rep->groups_spec;
    rep->calibration_sequences = cal->n_sequences;
    rep->peak_rss_loaded = rep->peak_rss_calibrated = fipsc_peak_rss_bytes(); /* fipsc_compress_model
                                                                                  says more */
    rep->calibration_rows = cal->blocks[plans[0].blocks.first].n;

    hook_ctx hook = {.fn = progress, .user = progress_user, .n_groups = n, .t0 = fipsc_seconds_now()};
    if (o->method == FIPSC_METHOD_FIPS) /* the steps this process runs */
        for (int k = 0; k < n; k++) {
            if (!compress_owns(o, k, n)) continue;
            int mlps = plans[k].blocks.last - plans[k].blocks.first + 1;
            hook.steps_total += (int64_t)o->steps * (o->mode == FIPSC_FIPS_JOINT ? 1 : mlps);
        }
    for (int k = 0; k < n && !st; k++) {
        rep->n_groups = k + 1;
        /* Streaming: group k's rows from its original blocks, before any version of the group
         * (computed, restored, or received while a later group of this process still needs the
         * stream) goes into m. */
        if (cal->streamed && (compress_owns(o, k, n) || (ranks->rank == 0 && owns_later(o, k, n))) &&
            (st = refresh_group_rows(cal, m, plans, k, err)))
            break;
        if (!compress_owns(o, k, n)) { /* another rank's: rank 0 receives it, the others skip it */
            rep->groups[k].plan = plans[k];
            if (ranks->rank == 0) st = compress_receive_group(m, o, &plans[k], k, n, progress, progress_user,
                                                     fipsc_seconds_now() - hook.t0, &rep->groups[k], err);
            continue;
        }
        hook.group = k;
        hook.blocks = plans[k].blocks;
        hook.steps_per_phase = o->steps;
        double elapsed = fipsc_seconds_now() - hook.t0;
        if (progress) {
            fipsc_compress_progress cp = {.event = FIPSC_COMPRESS_GROUP_START, .group = k,
                                          .n_groups = n, .blocks = plans[k].blocks, .block = -1,
                                          .elapsed = elapsed, .eta = -1.0};
            progress(progress_user, &cp);
        }
        const bool restored = saved && saved[k].present;
        if (restored) {
            /* streamed rows arrive with their group: the saved group's inputs are checked now */
            st = cal->streamed ? compress_checkpoint_check_rows(ck, m, cal, o, &plans[k], k, err) : FIPSC_OK;
            if (!st)
                st = ranks && ranks->rank != 0 ? compress_send_restored(ck, ranks, k, &saved[k], &rep->groups[k], err)
                                           : compress_checkpoint_apply(m, &saved[k], &rep->groups[k], err);
            const fipsc_group_report *g = &rep->groups[k];
            if (!st && o->strict && g->kept_step == 0 && isfinite(g->score_init))
                st = lost_to_initialisation(g->score_init, g->score_trained, err);
            if (st) fipsc_fail_context(err, "group %d (blocks %d-%d), from its checkpoint: ", k,
                                       plans[k].blocks.first, plans[k].blocks.last);
            hook.steps_total -= rep->groups[k].steps; /* the ETA counts the work left */
        } else {
            /* Sequential calibration: group k's rows from the model as it is now. */
            if (cal->refresh && !cal->streamed && k > 0) st = refresh_group_rows(cal, m, plans, k, err);
            if (!st) st = run_group(m, cal, o, &plans[k], k, ck, &hook, &rep->groups[k], err);
            hook.steps_before += rep->groups[k].steps;
        }
        rep->groups[k].peak_rss = fipsc_peak_rss_bytes();
        if (cal->spilled && compress_owns(o, k, n)) /* done with the group's rows: out of memory, still in the scratch file */
            for (int l = plans[k].blocks.first; l <= plans[k].blocks.last; l++) {
                fipsc_file_pages_release(cal->blocks[l].x, (size_t)cal->blocks[l].n * (size_t)plans[k].d * sizeof(float));
                fipsc_file_pages_release(cal->blocks[l].y, (size_t)cal->blocks[l].n * (size_t)plans[k].d * sizeof(float));
            }
        if (!st && progress) {
            elapsed = fipsc_seconds_now() - hook.t0;
            fipsc_compress_progress cp = {
                .event = FIPSC_COMPRESS_GROUP_DONE, .group = k, .n_groups = n,
                .blocks = plans[k].blocks, .block = -1, .elapsed = elapsed,
                .eta = k + 1 < n ? elapsed * (double)(n - k - 1) / (double)(k + 1) : 0.0,
                .report = &rep->groups[k], .restored = restored, .from_rank = ranks ? ranks->rank : 0};
            progress(progress_user, &cp);
        }
    }
    free(plans);
    compress_saved_free(saved, n);
    if (st) {
        fipsc_compress_report_free(rep);
        return st;
    }
    rep->seconds = fipsc_seconds_now() - hook.t0;

    /* Whole-model MLP totals: compressed groups as measured, other blocks dense. */
    char *in_group = calloc((size_t)m->n_mlps, 1);
    if (!in_group) {
        fipsc_compress_report_free(rep);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < rep->n_groups; k++) {
        const fipsc_group_report *gr = &rep->groups[k];
        for (int l = gr->plan.blocks.first; l <= gr->plan.blocks.last; l++) in_group[l] = 1;
        rep->mlp_kept_params += gr->kept_params;
        rep->mlp_stored_bytes += gr->stored_bytes;
    }
    /* Bytes in each weight's source dtype (BF16 against BF16): compressed groups as planned, other
     * blocks as the file keeps them. */
    for (int k = 0; k < rep->n_groups; k++) rep->mlp_dense_bytes += rep->groups[k].plan.dense_bytes;
    for (int l = 0; l < m->n_mlps; l++) {
        int64_t dense = fipsc_mlp_dense_params(m->mlps[l]);
        rep->mlp_dense_params += dense;
        if (in_group[l]) continue;
        const int64_t bytes = fipsc_model_mlp_weight_bytes(m, m->mlps[l]);
        rep->mlp_kept_params += dense;
        rep->mlp_stored_bytes += bytes;
        rep->mlp_dense_bytes += bytes;
    }
    free(in_group);
    *report = rep;
    return FIPSC_OK;
}
