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
 * The training loop, the parameters and the chain are the trainer every family shares
 * (src/model/distill.h); this family's objective is in distill_setup.c (creation),
 * distill_forward.c, distill_backward.c and distill_step.c (the loss and gradient of a batch),
 * sharing src/families/use/distill_state.h. This file runs them. */
#include <string.h>

#include "core/clock.h"
#include "families/use/distill_state.h"
#include "families/use/distill.h"

fipsc_status fipsc_use_distill(fipsc_model *m, const fipsc_model *original, int n, const int32_t *const *ids,
                               const int *lens, const float *target, const fipsc_distill_opts *o,
                               fipsc_distill_report *rep, fipsc_error *err)
{
    memset(rep, 0, sizeof *rep);
    fipsc_status st = fipsc_distill_check_opts(o, err);
    if (st) return st;
    if (o->hidden > 0.0f && !original)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the hidden-state term needs the original model");
    const double t0 = fipsc_seconds_now();
    use_distiller *D;
    if ((st = use_distiller_new(m, n, ids, lens, target, o->batch, &D, err))) return st;
    use_distiller_set_relational(D, o->relational);
    if (!(st = use_distiller_set_hidden(D, original, o->hidden, err))) {
        rep->steps = o->steps;
        rep->items = D->n;
        rep->rows = use_distiller_rows(D);
        rep->params = D->P.params;
        rep->first_layer = D->first;
        st = fipsc_distill_train(&D->P, &D->objective, o, &rep->score_before, &rep->score_after, err);
    }
    use_distiller_free(D);
    rep->seconds = fipsc_seconds_now() - t0;
    return st;
}
