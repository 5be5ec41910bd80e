/* End-to-end distillation of a compressed sentence encoder (src/families/use/distill.h).
 *
 * Parameters. Each compressed MLP matrix is M_i = U·V_i (d × f, src/ops/factored.h) with
 * the model weight W_i = M_iᵀ [f, d] for fc1 (expanding) and W_i = M_i [d, f] for fc2. A step
 * densifies every W_i, runs the network on the dense weights keeping what the backward needs,
 * gets dL/dW_i, and chains it to the factors:
 *     dM_i = dW_iᵀ (fc1) or dW_i (fc2),   dU += dM_i·V_iᵀ,   dV_i = Uᵀ·dM_i  (kept entries only).
 * Densifying costs 2·d·r·f per matrix, far less than the batch's GEMMs, and lets every layer of
 * the network run as plain GEMMs.
 *
 * The rows entering the first compressed MLP block do not depend on any trained parameter, so
 * they are computed once for every sentence and the backward stops there.
 *
 * This file holds the training loop: AdamW on every parameter with a cosine learning rate over
 * shuffled batches. The distiller itself is in distill_setup.c (creation), distill_forward.c,
 * distill_backward.c and distill_step.c (the loss and gradient of a batch), sharing
 * src/families/use/distill_state.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"

#include "families/use/distill_state.h"
#include "families/use/distill.h"
#include "fips/fips.h"
#include "ops/sample.h"

/* ------------------------------------------------------------------ the training loop */

static void restore(use_distiller *D)
{
    for (int k = 0; k < D->n_bases; k++)
        memcpy(D->bases[k].group->U, D->bases[k].saved, (size_t)D->bases[k].group->d * D->bases[k].group->r * sizeof(float));
    for (int k = 0; k < D->n_vps; k++) memcpy(D->vps[k].fl->val, D->vps[k].saved, (size_t)D->vps[k].nnz * sizeof(float));
    use_distiller_changed(D);
}

fipsc_status fipsc_use_distill(fipsc_model *m, const fipsc_model *original, int n, const int32_t *const *ids,
                               const int *lens, const float *target, const fipsc_distill_opts *o,
                               fipsc_distill_report *rep, fipsc_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (o->steps < 1 || o->batch_sentences < 1 || !(o->lr > 0.0f) || o->lr_min < 0.0f || o->lr_min > o->lr ||
        !(o->relational >= 0.0f) || !isfinite(o->relational) || !(o->hidden >= 0.0f) || !isfinite(o->hidden))
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: needs steps ≥ 1 (%d), a batch ≥ 1 (%d), "
                          "0 ≤ lr_min ≤ lr, lr > 0 (%g, %g) and finite term weights ≥ 0 (%g, %g)", o->steps,
                          o->batch_sentences, (double)o->lr_min, (double)o->lr, (double)o->relational,
                          (double)o->hidden);
    if (o->hidden > 0.0f && !original)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the hidden-state term needs the original model");
    const double t0 = fipsc_seconds_now();
    use_distiller *D;
    fipsc_status st = use_distiller_new(m, n, ids, lens, target, o->batch_sentences, &D, err);
    if (st) return st;
    use_distiller_set_relational(D, o->relational);
    st = use_distiller_set_hidden(D, original, o->hidden, err);
    if (st) {
        use_distiller_free(D);
        return st;
    }
    rep->steps = o->steps;
    rep->sentences = D->n;
    rep->rows = use_distiller_rows(D);
    rep->params = D->params;
    rep->first_layer = D->first;
    int *order = malloc((size_t)D->n * sizeof *order);
    if (!order) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st) st = use_distill_forward_all(D, &rep->cos_before, err);
    fipsc_rng rng;
    fipsc_rng_seed(&rng, o->seed);
    int next = D->n; /* position in the current shuffled epoch */
    const int nb = D->batch_cap;
    for (int t = 0; t < o->steps && !st; t++) {
        if (next + nb > D->n) { /* a new epoch: Fisher–Yates shuffle; a short tail is dropped */
            for (int i = 0; i < D->n; i++) order[i] = i;
            for (int i = D->n - 1; i > 0; i--) {
                int j = (int)(fipsc_rng_uniform(&rng) * (double)(i + 1));
                int tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
            next = 0;
        }
        double loss;
        st = use_distiller_loss_grad(D, nb, order + next, true, &loss, NULL, err);
        next += nb;
        if (st) {
            fipsc_fail_context(err, "step %d: ", t + 1);
            break;
        }
        const float lr = fipsc_fips_cosine_lr(o->lr, o->lr_min, t, o->steps);
        for (int k = 0; k < D->n_bases; k++) {
            basis *B = &D->bases[k];
            fipsc_adamw_step(&o->adamw, t + 1, lr, B->group->d, B->group->r, B->group->U, NULL, 0, B->group->r, B->m, B->v,
                             B->group->r, B->dU, B->group->r);
        }
        for (int k = 0; k < D->n_vps; k++) {
            vparam *p = &D->vps[k];
            if (p->nnz > 0)
                fipsc_adamw_step(&o->adamw, t + 1, lr, 1, p->nnz, p->fl->val, p->keep, 0, p->nnz, p->m, p->v, p->nnz,
                                 p->g, p->nnz);
        }
        use_distiller_changed(D);
        if (o->progress && ((o->progress_every > 0 && (t + 1) % o->progress_every == 0) || t + 1 == o->steps))
            o->progress(o->progress_user, &(fipsc_distill_progress){t + 1, o->steps, loss, lr});
    }
    if (!st) st = use_distill_forward_all(D, &rep->cos_after, err);
    if (st) restore(D); /* no half-trained model after a failure */
    free(order);
    use_distiller_free(D);
    rep->seconds = fipsc_seconds_now() - t0;
    return st;
}
