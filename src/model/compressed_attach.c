/* Attaching compressed groups to a model, densifying them again, and the MLP storage account
 * (see src/model/compressed.h).
 *
 * Attach checks the whole group and builds every factored linear before it touches the model, so
 * a rejected group leaves the model as it was. Then it hands the group and the linears to the
 * model's registry, points each MLP slot at its factored form and drops the dense weight. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/compressed.h"
#include "ops/factored.h"

static fipsc_status check_spec(const fipsc_model *m, const fipsc_group_spec *g, fipsc_error *err)
{
    if (!g) return fipsc_fail(err, FIPSC_ERR_ARG, "attach: no group");
    if (!m->mlps || m->n_mlps <= 0) return fipsc_fail(err, FIPSC_ERR_ARG, "attach: the model has no bound MLPs");
    if (g->first_layer < 0 || g->last_layer < g->first_layer || g->last_layer >= m->n_mlps)
        return fipsc_fail(err, FIPSC_ERR_ARG, "attach: group layers %d-%d outside the model's blocks 0-%d",
                          g->first_layer, g->last_layer, m->n_mlps - 1);
    if (g->d <= 0 || g->r <= 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "attach: group %d-%d has d %d and rank %d (both must be positive)",
                          g->first_layer, g->last_layer, g->d, g->r);
    if (!g->U && g->r != g->d)
        return fipsc_fail(err, FIPSC_ERR_ARG, "attach: group %d-%d has an identity basis (U NULL) but rank %d != d %d",
                          g->first_layer, g->last_layer, g->r, g->d);
    if ((unsigned)g->storage >= FIPSC_V_STORAGE_COUNT)
        return fipsc_fail(err, FIPSC_ERR_ARG, "attach: unknown V storage %d", (int)g->storage);
    const fipsc_dtype dts[2] = {g->u_dtype, g->v_dtype};
    for (int i = 0; i < 2; i++)
        if (!fipsc_dtype_is_float(dts[i]))
            return fipsc_fail(err, FIPSC_ERR_ARG, "attach: %s can be stored as F32, F16 or BF16, not %s",
                              i ? "V" : "U", fipsc_dtype_name(dts[i]));
    if (g->n_matrices < 1 || !g->matrices)
        return fipsc_fail(err, FIPSC_ERR_ARG, "attach: group %d-%d lists no matrices", g->first_layer, g->last_layer);
    const char *method = g->method ? g->method : "";
    size_t len = strlen(method);
    bool printable = len > 0 && len < sizeof ((fipsc_compressed_group *)0)->method;
    for (size_t i = 0; printable && i < len; i++) printable = isgraph((unsigned char)method[i]);
    if (!printable)
        return fipsc_fail(err, FIPSC_ERR_ARG, "attach: method name '%s' must be 1-31 printable characters without spaces",
                          method);
    for (int i = 0; i < fipsc_model_group_count(m); i++) {
        const fipsc_compressed_group *o = fipsc_model_group(m, i);
        if (g->first_layer <= o->last_layer && o->first_layer <= g->last_layer)
            return fipsc_fail(err, FIPSC_ERR_ARG, "attach: group %d-%d overlaps the compressed group %d-%d",
                              g->first_layer, g->last_layer, o->first_layer, o->last_layer);
    }
    for (int i = 0; i < g->n_matrices; i++) {
        const fipsc_group_matrix *gm = &g->matrices[i];
        if (gm->layer < g->first_layer || gm->layer > g->last_layer)
            return fipsc_fail(err, FIPSC_ERR_ARG, "attach: matrix %d is in block %d, outside group %d-%d", i,
                              gm->layer, g->first_layer, g->last_layer);
        if ((unsigned)gm->role > FIPSC_ROLE_DOWN)
            return fipsc_fail(err, FIPSC_ERR_ARG, "attach: matrix %d has an unknown role %d", i, (int)gm->role);
        for (int k = 0; k < i; k++)
            if (g->matrices[k].layer == gm->layer && g->matrices[k].role == gm->role)
                return fipsc_fail(err, FIPSC_ERR_ARG, "attach: block %d's %s matrix is listed twice", gm->layer,
                                  fipsc_mlp_role_name(gm->role));
        const fipsc_linear *slot = fipsc_model_mlp_slot((fipsc_model *)m, gm->layer, gm->role);
        if (!slot)
            return fipsc_fail(err, FIPSC_ERR_ARG, "attach: block %d's MLP has no %s matrix", gm->layer,
                              fipsc_mlp_role_name(gm->role));
        if (slot->factored || !fipsc_linear_is_dense(slot))
            return fipsc_fail(err, FIPSC_ERR_ARG, "attach: block %d's %s matrix (%s) is %s", gm->layer,
                              fipsc_mlp_role_name(gm->role), slot->weight_name ? slot->weight_name : "unnamed",
                              slot->factored ? "already compressed" : "not a dense weight");
        if (!slot->weight_name)
            return fipsc_fail(err, FIPSC_ERR_ARG, "attach: block %d's %s matrix has no tensor name", gm->layer,
                              fipsc_mlp_role_name(gm->role));
        const fipsc_mlp *mlp = m->mlps[gm->layer];
        if (mlp->d != g->d)
            return fipsc_fail(err, FIPSC_ERR_ARG, "attach: block %d's MLP has d %d but the group's U has %d rows",
                              gm->layer, mlp->d, g->d);
        if (!gm->V) return fipsc_fail(err, FIPSC_ERR_ARG, "attach: %s: no V", slot->weight_name);
    }
    if (g->U) {
        int64_t bad = fipsc_first_nonfinite(g->U, (size_t)g->d * (size_t)g->r);
        if (bad >= 0)
            return fipsc_fail(err, FIPSC_ERR_NUMERIC, "attach: group %d-%d: U[%lld, %lld] is not finite",
                              g->first_layer, g->last_layer, (long long)(bad / g->r), (long long)(bad % g->r));
    }
    return FIPSC_OK;
}

fipsc_status fipsc_model_attach_group(fipsc_model *m, const fipsc_group_spec *g, fipsc_error *err)
{
    fipsc_status st = check_spec(m, g, err);
    if (st) return st;
    fipsc_compressed_group *group = calloc(1, sizeof *group);
    fipsc_factored_linear **fls = calloc((size_t)g->n_matrices, sizeof *fls);
    if (!group || !fls) {
        free(group);
        free(fls);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "attach: out of memory");
    }
    group->first_layer = g->first_layer;
    group->last_layer = g->last_layer;
    group->d = g->d;
    group->r = g->r;
    group->storage = g->storage;
    group->u_dtype = g->U ? g->u_dtype : FIPSC_F32;
    group->v_dtype = g->v_dtype;
    group->nm_n = g->storage == FIPSC_V_NM ? g->nm_n : 0;
    group->nm_m = g->storage == FIPSC_V_NM ? g->nm_m : 0;
    snprintf(group->method, sizeof group->method, "%s", g->method);
    if (g->U) { /* held as the file will store it: the model runs exactly what the file holds */
        int64_t big;
        if ((st = fipsc_group_set_basis(group, g->U, g->u_dtype, &big, err)) && big >= 0)
            st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "attach: group %d-%d: U[%lld, %lld] = %g is beyond what %s "
                            "can hold (store U as F32)", g->first_layer, g->last_layer, (long long)(big / g->r),
                            (long long)(big % g->r), (double)g->U[big], fipsc_dtype_name(g->u_dtype));
        else if (st) fipsc_fail_context(err, "attach: ");
    }

    /* every V packed and every linear built before the model changes */
    for (int i = 0; !st && i < g->n_matrices; i++) {
        const fipsc_group_matrix *gm = &g->matrices[i];
        const fipsc_linear *slot = fipsc_model_mlp_slot(m, gm->layer, gm->role);
        int f = m->mlps[gm->layer]->f;
        fipsc_v_stored v;
        st = fipsc_v_stored_from_dense(g->storage, g->r, f, gm->V, f, g->nm_n, g->nm_m,
                                       slot->weight_name, &v, err);
        int64_t big = st ? -1 : fipsc_round_to_dtype(g->v_dtype, v.values, (size_t)v.nnz);
        if (big >= 0) {
            st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "%s: V's stored entry %lld is beyond what %s can hold "
                            "(store V as F32)", slot->weight_name, (long long)big, fipsc_dtype_name(g->v_dtype));
            fipsc_v_stored_free(&v);
        }
        if (!st) st = fipsc_factored_new(slot->weight_name, gm->layer, gm->role, group, &v, &fls[i], err);
        if (!st) { /* the dtype of the weight it replaces, which its dense bytes count */
            const fipsc_tensor *t = fipsc_model_find(m, slot->weight_name);
            fls[i]->source_dtype = t ? fipsc_tensor_stored_dtype(t) : FIPSC_F32;
        }
        if (st) fipsc_fail_context(err, "attach: ");
    }
    if (st) {
        for (int i = 0; i < g->n_matrices; i++) fipsc_factored_free(fls[i]);
        free(fls);
        fipsc_group_free(group);
        return st;
    }

    /* commit: the registry owns the group and the linears from here on */
    if ((st = fipsc_model_register_group(m, group, err))) {
        for (int i = 0; i < g->n_matrices; i++) fipsc_factored_free(fls[i]);
        free(fls);
        return st;
    }
    for (int i = 0; i < g->n_matrices; i++) {
        fipsc_factored_linear *fl = fls[i];
        fls[i] = NULL;
        if (st) {
            fipsc_factored_free(fl);
            continue;
        }
        if ((st = fipsc_model_register_factored(m, fl, err))) continue;
        fipsc_linear *slot = fipsc_model_mlp_slot(m, fl->layer, fl->role);
        slot->factored = fl;
        slot->w = NULL;
        slot->w16 = NULL;
        slot->weight_name = fl->weight_name;
        /* the dense weight goes; a linear not backed by a model tensor has nothing to drop */
        if (fipsc_model_find(m, fl->weight_name)) fipsc_model_remove_tensor(m, fl->weight_name, NULL);
    }
    free(fls);
    return st;
}

fipsc_status fipsc_model_densify(fipsc_model *m, fipsc_error *err)
{
    const int n = fipsc_model_factored_count(m);
    if (n == 0) return FIPSC_OK;
    float **w = calloc((size_t)n, sizeof *w);
    if (!w) return fipsc_fail(err, FIPSC_ERR_NOMEM, "densify: out of memory");
    fipsc_status st = FIPSC_OK;
    for (int i = 0; !st && i < n; i++) {
        const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
        if (!fipsc_model_mlp_slot(m, fl->layer, fl->role)) {
            st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "densify: %s belongs to no MLP slot", fl->weight_name);
        } else if (fipsc_model_find(m, fl->weight_name)) {
            st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "densify: %s is both dense and compressed", fl->weight_name);
        } else if (!(w[i] = malloc((size_t)fl->out * (size_t)fl->in * sizeof **w))) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "densify: out of memory for %s", fl->weight_name);
        } else {
            st = fipsc_factored_densify(fl, w[i], err);
        }
    }
    /* add the dense tensors; on failure take back the ones added, so the model is unchanged */
    int added = 0;
    for (; !st && added < n; added++) {
        const fipsc_factored_linear *fl = fipsc_model_factored_at(m, added);
        int64_t shape[2] = {fl->out, fl->in};
        st = fipsc_model_add_tensor(m, fl->weight_name, 2, shape, w[added], true, FIPSC_F32, err);
        w[added] = NULL; /* owned by the model, or freed by the failed add */
        if (st) break;
    }
    if (st) {
        for (int i = 0; i < added; i++) fipsc_model_remove_tensor(m, fipsc_model_factored_at(m, i)->weight_name, NULL);
        for (int i = 0; i < n; i++) free(w[i]);
        free(w);
        return st;
    }
    free(w);
    for (int i = 0; i < n; i++) {
        const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
        fipsc_linear *slot = fipsc_model_mlp_slot(m, fl->layer, fl->role);
        const fipsc_tensor *t = fipsc_model_find(m, fl->weight_name);
        slot->factored = NULL;
        slot->w = t->data;
        slot->w16 = NULL;
        slot->weight_name = t->name;
    }
    fipsc_model_clear_compressed(m);
    return FIPSC_OK;
}

fipsc_mlp_footprint fipsc_model_mlp_footprint(const fipsc_model *m)
{
    fipsc_mlp_footprint fp = {0};
    for (int l = 0; l < m->n_mlps; l++) {
        const fipsc_mlp *mlp = m->mlps[l];
        const fipsc_linear *slots[3] = {mlp->kind == FIPSC_MLP_GATED ? &mlp->gate : NULL, &mlp->up, &mlp->down};
        for (int s = 0; s < 3; s++) {
            const fipsc_linear *lin = slots[s];
            if (!lin) continue;
            long long dense = (long long)lin->out * lin->in;
            fp.dense_params += dense;
            /* Bytes count in the dtype each weight came in (BF16 against BF16), as stored. */
            if (lin->factored) {
                fp.kept_params += lin->factored->nnz;
                fp.stored_bytes += fipsc_factored_v_bytes(lin->factored);
                fp.dense_bytes += (long long)fipsc_dtype_size(lin->factored->source_dtype) * dense;
            } else {
                fp.kept_params += dense;
                fp.stored_bytes += fipsc_model_linear_weight_bytes(m, lin);
                fp.dense_bytes += fipsc_model_linear_weight_bytes(m, lin);
            }
        }
    }
    for (int i = 0; i < fipsc_model_group_count(m); i++) {
        const fipsc_compressed_group *g = fipsc_model_group(m, i);
        if (!fipsc_group_has_basis(g)) continue;
        fp.kept_params += (long long)g->d * g->r;
        fp.stored_bytes += (long long)fipsc_dtype_size(g->u_dtype) * g->d * g->r;
    }
    return fp;
}
