/* Creating and freeing a sentence-encoder distiller (src/families/use/distill_internal.h): the
 * trained parameters (each group's basis U, each compressed matrix's kept entries of V_i, with
 * their AdamW moments and starting values), the sentences with tokens and their fixed rows
 * (computed once: no trained parameter acts before them), the batch buffers sized by the longest
 * sentences, and the settings of the relational and hidden-state terms. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "families/use/distill_state.h"
#include "ops/mlp_forward.h"

/* Sentences per pass when computing the fixed rows and the cosines over all sentences. */
enum { PASS_SENTENCES = 256 };

/* ------------------------------------------------------------------ set-up */

static void cache_free(layer_cache *c)
{
    float *bufs[] = {c->xhat_a, c->rstd_a, c->h_a, c->qkv, c->probs, c->att, c->xhat_m, c->rstd_m, c->h_m, c->pre, c->act};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

void use_distiller_free(use_distiller *D)
{
    if (!D) return;
    fipsc_distill_params_free(&D->P);
    free(D->mlps);
    for (int l = 0; D->u && l < D->u->n_layers; l++) {
        if (D->hid) free(D->hid[l]);
        if (D->hdiff) free(D->hdiff[l]);
    }
    free(D->hid);
    free(D->hdiff);
    free(D->hid_scale);
    free(D->len);
    free(D->row0);
    free(D->stream);
    free(D->target);
    free(D->offset);
    free(D->poff);
    if (D->cache && D->u)
        for (int l = 0; l < D->u->n_layers; l++) cache_free(&D->cache[l]);
    free(D->cache);
    float *bufs[] = {D->x, D->dx, D->tmp_d, D->tmp_3d, D->tmp_f, D->pooled, D->y, D->e, D->nrm, D->dp, D->tb, D->gram};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(D);
}

static int descending(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

static fipsc_status alloc_batch(use_distiller *D, fipsc_error *err)
{
    const fipsc_use *u = D->u;
    const int d = D->d, f = D->f, wide = d > u->embed_dim ? d : u->embed_dim;
    /* the batch_cap longest sentences bound the rows and the attention matrices of any batch */
    int *sorted = malloc((size_t)D->n * sizeof *sorted);
    if (!sorted) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    memcpy(sorted, D->len, (size_t)D->n * sizeof *sorted);
    qsort(sorted, (size_t)D->n, sizeof *sorted, descending);
    D->rows_cap = 0;
    D->probs_cap = 0;
    for (int i = 0; i < D->batch_cap && i < D->n; i++) {
        D->rows_cap += sorted[i];
        D->probs_cap += (int64_t)sorted[i] * sorted[i];
    }
    free(sorted);
    /* attention_bwd keeps one max_len² scratch per thread in tmp_f */
    const int64_t threads = omp_get_max_threads(), scratch = threads * u->max_tokens * u->max_tokens;
    const int64_t f_rows = D->rows_cap * f > scratch ? D->rows_cap * f : scratch;
    int max_heads = 1;
    for (int l = 0; l < u->n_layers; l++) max_heads = u->layers[l].n_heads > max_heads ? u->layers[l].n_heads : max_heads;
    const size_t R = (size_t)D->rows_cap, B = (size_t)D->batch_cap;
    D->offset = malloc((B + 1) * sizeof *D->offset);
    D->poff = malloc((B + 1) * sizeof *D->poff);
    D->cache = calloc((size_t)u->n_layers, sizeof *D->cache);
    D->x = malloc(R * wide * sizeof(float));
    D->dx = malloc(R * d * sizeof(float));
    D->tmp_d = malloc(R * wide * sizeof(float));
    D->tmp_3d = malloc(3 * R * wide * sizeof(float));
    D->tmp_f = malloc((size_t)f_rows * sizeof(float));
    D->pooled = malloc(B * d * sizeof(float));
    D->y = malloc(B * d * sizeof(float));
    D->e = malloc(B * d * sizeof(float));
    D->nrm = malloc(B * sizeof(float));
    D->dp = malloc(B * d * sizeof(float));
    D->tb = malloc(B * d * sizeof(float));
    D->gram = malloc(B * B * sizeof(float));
    bool ok = D->offset && D->poff && D->cache && D->x && D->dx && D->tmp_d && D->tmp_3d && D->tmp_f && D->pooled &&
              D->y && D->e && D->nrm && D->dp && D->tb && D->gram;
    for (int l = 0; ok && l < u->n_layers; l++) {
        if (l < D->first && l != D->last) continue;
        layer_cache *c = &D->cache[l];
        c->xhat_a = malloc(R * d * sizeof(float));
        c->rstd_a = malloc(R * sizeof(float));
        c->h_a = malloc(R * wide * sizeof(float));
        c->qkv = malloc(3 * R * wide * sizeof(float));
        c->probs = malloc((size_t)(D->probs_cap > 0 ? D->probs_cap : 1) * max_heads * sizeof(float));
        c->att = malloc(R * wide * sizeof(float));
        c->xhat_m = malloc(R * d * sizeof(float));
        c->rstd_m = malloc(R * sizeof(float));
        c->h_m = malloc(R * d * sizeof(float));
        c->pre = malloc(R * f * sizeof(float) + fipsc_mlp_scratch_floats(&u->layers[l].mlp, (int)R) * sizeof(float));
        c->act = malloc(R * f * sizeof(float));
        ok = c->xhat_a && c->rstd_a && c->h_a && c->qkv && c->probs && c->att && c->xhat_m && c->rstd_m && c->h_m &&
             c->pre && c->act;
    }
    return ok ? FIPSC_OK : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for distillation batches of %d sentences",
                                      D->batch_cap);
}

fipsc_status use_distiller_new(fipsc_model *m, int n, const int32_t *const *ids, const int *lens,
                               const float *target, int batch_cap, use_distiller **out, fipsc_error *err)
{
    *out = NULL;
    const fipsc_use *u = fipsc_model_use(m);
    if (!u)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation needs a sentence encoder (%s); this model is '%s'",
                          FIPSC_USE_ARCH_NAME, m->arch_name);
    if (batch_cap < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "distillation batch of %d sentences", batch_cap);
    use_distiller *D = calloc(1, sizeof *D);
    if (!D) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    D->m = m;
    D->u = u;
    D->d = u->dim;
    D->f = u->hidden;
    D->last = u->n_layers - 1;
    fipsc_status st = FIPSC_OK;

    /* the trained matrices, layer by layer */
    D->first = -1;
    st = fipsc_distill_params_init(&D->P, 2 * u->n_layers, err);
    D->mlps = calloc((size_t)u->n_layers, sizeof *D->mlps);
    if (!st && !D->mlps) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int l = 0; l < u->n_layers && !st; l++) {
        const fipsc_use_layer *L = &u->layers[l];
        mlp_view *mv = &D->mlps[l];
        if (L->mlp.kind != FIPSC_MLP_PLAIN || L->mlp.d != D->d || L->mlp.f != D->f) {
            st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: layer %d's MLP is not a plain %d → %d MLP", l,
                            D->d, D->f);
            break;
        }
        if ((st = fipsc_distill_params_add(&D->P, &L->mlp.up, D->d, &mv->p1, err)) ||
            (st = fipsc_distill_params_add(&D->P, &L->mlp.down, D->d, &mv->p2, err)))
            break;
        mv->w1 = mv->p1 ? mv->p1->dense : L->mlp.up.w;
        mv->w2 = mv->p2 ? mv->p2->dense : L->mlp.down.w;
        mv->b1 = L->mlp.up.bias;
        mv->b2 = L->mlp.down.bias;
        if ((mv->p1 || mv->p2) && D->first < 0) D->first = l;
    }
    if (!st && D->first < 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the model has no compressed MLP (compress it first)");
    for (int l = D->first + 1; !st && l <= D->last; l++) {
        const fipsc_use_layer *L = &u->layers[l];
        const fipsc_linear *parts[4] = {&L->q, &L->k, &L->v, &L->o};
        bool dense = !L->has_residual_projection && L->d_in == D->d && L->n_heads * L->head_dim == D->d;
        for (int k = 0; k < 4; k++) dense &= parts[k]->w && !parts[k]->factored;
        dense &= (D->mlps[l].p1 || L->mlp.up.w) && (D->mlps[l].p2 || L->mlp.down.w);
        if (!dense)
            st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: layer %d changes the width or has a "
                            "non-dense attention weight", l);
    }
    if (!st && (!u->pooler.w || u->pooler.factored))
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: the pooler is not a dense matrix");

    /* the sentences with tokens */
    if (!st) {
        D->len = malloc((size_t)(n > 0 ? n : 1) * sizeof *D->len);
        D->target = malloc((size_t)(n > 0 ? n : 1) * sizeof *D->target);
        D->row0 = malloc(((size_t)n + 1) * sizeof *D->row0);
        if (!D->len || !D->target || !D->row0) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    const int32_t **kept_ids = st ? NULL : malloc((size_t)(n > 0 ? n : 1) * sizeof *kept_ids);
    if (!st && !kept_ids) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st) {
        D->row0[0] = 0;
        for (int i = 0; i < n; i++) {
            const int len = lens[i] < u->max_tokens ? lens[i] : u->max_tokens;
            if (len < 1) continue;
            for (int t = 0; t < len && !st; t++)
                if (ids[i][t] < 0 || ids[i][t] >= u->vocab_size)
                    st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: sentence %d has token id %d (vocabulary %d)",
                                    i + 1, (int)ids[i][t], u->vocab_size);
            for (int j = 0; j < D->d && !st; j++)
                if (!isfinite(target[(size_t)i * D->d + j]))
                    st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "distillation: target embedding %d is not finite", i + 1);
            if (st) break;
            D->len[D->n] = len;
            D->target[D->n] = target + (size_t)i * D->d;
            kept_ids[D->n] = ids[i];
            D->row0[D->n + 1] = D->row0[D->n] + len;
            D->n++;
        }
        if (!st && D->n == 0) st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: no sentence has a token");
    }
    if (!st) {
        D->batch_cap = batch_cap < D->n ? batch_cap : D->n;
        /* use_distill_fixed_rows runs PASS_SENTENCES at a time through the batch buffers */
        const int cap = D->batch_cap;
        D->batch_cap = cap > PASS_SENTENCES ? cap : (D->n < PASS_SENTENCES ? D->n : PASS_SENTENCES);
        st = alloc_batch(D, err);
        D->batch_cap = cap;
    }
    if (!st && !(D->stream = malloc((size_t)D->row0[D->n] * D->d * sizeof(float))))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %lld rows of the distillation set",
                        (long long)D->row0[D->n]);
    for (int s0 = 0; !st && s0 < D->n; s0 += PASS_SENTENCES) {
        const int cnt = D->n - s0 < PASS_SENTENCES ? D->n - s0 : PASS_SENTENCES;
        st = use_distill_fixed_rows(D, kept_ids, s0, cnt, err);
    }
    free(kept_ids);
    if (st) {
        use_distiller_free(D);
        return st;
    }
    D->objective = (fipsc_distill_objective){D, D->n, D->batch_cap, use_distill_batch, use_distill_forward_all};
    *out = D;
    return FIPSC_OK;
}

int use_distiller_block_count(const use_distiller *D) { return fipsc_distill_params_blocks(&D->P); }

float *use_distiller_block(use_distiller *D, int k, int64_t *len, const float **grad)
{
    return fipsc_distill_params_block(&D->P, k, len, grad);
}

void use_distiller_set_relational(use_distiller *D, float lambda) { D->relational = lambda; }

fipsc_status use_distiller_set_hidden(use_distiller *D, const fipsc_model *orig, float mu, fipsc_error *err)
{
    D->hidden = 0.0f;
    if (mu <= 0.0f) return FIPSC_OK;
    const fipsc_use *o = orig ? fipsc_model_use(orig) : NULL, *u = D->u;
    if (!o || o->dim != u->dim || o->hidden != u->hidden || o->n_layers != u->n_layers)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "distillation: the hidden-state term needs the original encoder "
                          "of the same shape");
    const int d = D->d, f = D->f;
    for (int l = D->first; l <= D->last; l++) {
        const fipsc_use_layer *a = &u->layers[l], *b = &o->layers[l];
        bool same = a->d_in == b->d_in && b->mlp.up.w && b->mlp.down.w && !b->mlp.up.factored && !b->mlp.down.factored &&
                    fipsc_distill_same_weights(a->mlp_norm_w, b->mlp_norm_w, (size_t)d) &&
                    fipsc_distill_same_weights(a->mlp_norm_b, b->mlp_norm_b, (size_t)d);
        if (same && l > D->first) {
            const fipsc_linear *pa[4] = {&a->q, &a->k, &a->v, &a->o}, *pb[4] = {&b->q, &b->k, &b->v, &b->o};
            for (int k = 0; k < 4 && same; k++)
                same = pb[k]->w && fipsc_distill_same_weights(pa[k]->w, pb[k]->w, (size_t)d * d) &&
                       fipsc_distill_same_weights(pa[k]->bias, pb[k]->bias, (size_t)d);
            same = same && fipsc_distill_same_weights(a->attn_norm_w, b->attn_norm_w, (size_t)d);
        }
        if (!same)
            return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: layer %d of the original differs from the compressed "
                              "model outside its MLP matrices: not the model it was compressed from", l);
    }
    (void)f;
    if (!D->hid) {
        D->hid = calloc((size_t)u->n_layers, sizeof *D->hid);
        D->hdiff = calloc((size_t)u->n_layers, sizeof *D->hdiff);
        D->hid_scale = calloc((size_t)u->n_layers, sizeof *D->hid_scale);
        if (!D->hid || !D->hdiff || !D->hid_scale) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        for (int l = D->first; l <= D->last; l++) {
            D->hid[l] = malloc((size_t)D->row0[D->n] * d * sizeof(float));
            D->hdiff[l] = malloc((size_t)D->rows_cap * d * sizeof(float));
            if (!D->hid[l] || !D->hdiff[l])
                return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the original's hidden states (%lld rows)",
                                  (long long)D->row0[D->n]);
        }
    }
    /* the original's streams: the forward with the original MLP weights over every sentence */
    mlp_view *saved = malloc((size_t)u->n_layers * sizeof *saved);
    if (!saved) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    memcpy(saved, D->mlps, (size_t)u->n_layers * sizeof *saved);
    for (int l = D->first; l <= D->last; l++) {
        const fipsc_mlp *om = &o->layers[l].mlp;
        D->mlps[l] = (mlp_view){om->up.w, om->up.bias, om->down.w, om->down.bias, NULL, NULL};
    }
    D->capture = true;
    double unused;
    fipsc_status st = use_distill_forward_all(D, &unused, err);
    D->capture = false;
    memcpy(D->mlps, saved, (size_t)u->n_layers * sizeof *saved);
    free(saved);
    if (st) return st;
    for (int l = D->first; l <= D->last; l++) {
        double ss = 0.0;
        for (int64_t q = 0; q < D->row0[D->n] * d; q++) ss += (double)D->hid[l][q] * D->hid[l][q];
        D->hid_scale[l] = ss > 0.0 ? (double)D->row0[D->n] / ss : 1.0;
    }
    D->hidden = mu;
    return FIPSC_OK;
}

int use_distiller_first_layer(const use_distiller *D) { return D->first; }
int use_distiller_sentences(const use_distiller *D) { return D->n; }
int64_t use_distiller_rows(const use_distiller *D) { return D->row0[D->n]; }
int64_t use_distiller_params(const use_distiller *D) { return D->P.params; }
