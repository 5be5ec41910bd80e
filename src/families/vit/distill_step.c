/* Creating a ViT distiller (src/families/vit/distill.h): the checks (a plain ViT in float32, the
 * original it was compressed from), the trained parameters (src/model/distill.h), the original's
 * log-probabilities of every image (computed once: a few labels each), the rows entering the
 * first compressed MLP block for every image, and the batch buffers. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "families/vit/distill_state.h"

/* ------------------------------------------------------------------ creation */

static void cache_free(vit_layer_cache *c)
{
    float *bufs[] = {c->xhat_a, c->rstd_a, c->q, c->k, c->v, c->probs, c->xhat_m, c->rstd_m, c->h_m, c->pre, c->act};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

void vit_distiller_free(vit_distiller *D)
{
    if (!D) return;
    fipsc_distill_params_free(&D->P);
    if (D->cache)
        for (int l = 0; l <= D->last; l++) cache_free(&D->cache[l]);
    float *bufs[] = {D->stream, D->teacher, D->x, D->dx, D->tmp_d, D->tmp_d2, D->tmp_d3, D->tmp_f, D->heads_in,
                     D->heads_xhat, D->heads_rstd, D->logits, D->logits2, D->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(D->cache);
    free(D->mlps);
    free(D);
}

/* A plain ViT the distiller can run backwards through, compressed from `o`. */
static fipsc_status check_models(const vit_distiller *D, const fipsc_vit *o, fipsc_error *err)
{
    const fipsc_vit *v = D->v;
    if (o->dim != v->dim || o->n_layers != v->n_layers || o->n_tokens != v->n_tokens || o->n_labels != v->n_labels ||
        o->kind != v->kind)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "distillation: the original (d %d, %d blocks, %d labels) is not the "
                          "shape of the compressed model (d %d, %d blocks, %d labels)", o->dim, o->n_layers,
                          o->n_labels, v->dim, v->n_layers, v->n_labels);
    const bool two = v->kind == FIPSC_VIT_DEIT_TEACHER;
    if (!v->head.w || (two && !v->dist_head.w))
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation needs a float32 classifier");
    const size_t d = (size_t)D->d;
    bool ok = fipsc_distill_same_weights(v->head.w, o->head.w, (size_t)D->labels * d) &&
              fipsc_distill_same_weights(v->final_ln_w, o->final_ln_w, d) &&
              fipsc_distill_same_weights(v->final_ln_b, o->final_ln_b, d);
    for (int l = 0; l <= D->last; l++) {
        const fipsc_vit_block *b = &v->blocks[l], *ob = &o->blocks[l];
        const fipsc_linear *parts[4] = {&b->q, &b->k, &b->v, &b->o};
        for (int k = 0; k < 4; k++)
            if (!parts[k]->w)
                return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation needs float32 attention weights (%s is "
                                  "not)", parts[k]->weight_name);
        const fipsc_mlp *mlp = &b->mlp;
        if (mlp->kind != FIPSC_MLP_PLAIN || mlp->d != D->d || mlp->f != D->f)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: block %d's MLP is not a plain %d → %d MLP", l,
                              D->d, D->f);
        if ((!mlp->up.factored && !mlp->up.w) || (!mlp->down.factored && !mlp->down.w))
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation needs float32 MLP weights (block %d)", l);
        if (ob->mlp.up.factored || ob->mlp.down.factored)
            return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the original's block %d MLP is compressed: give the "
                              "uncompressed model the compressed one was made from", l);
        ok = ok && fipsc_distill_same_weights(b->q.w, ob->q.w, d * d) &&
             fipsc_distill_same_weights(b->k.w, ob->k.w, d * d) && fipsc_distill_same_weights(b->v.w, ob->v.w, d * d) &&
             fipsc_distill_same_weights(b->o.w, ob->o.w, d * d) &&
             fipsc_distill_same_weights(b->ln_before_w, ob->ln_before_w, d) &&
             fipsc_distill_same_weights(b->ln_after_w, ob->ln_after_w, d);
        if (!ok)
            return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the original differs from the compressed model "
                              "outside its MLP matrices (block %d or the head): not the model it was compressed from", l);
    }
    return FIPSC_OK;
}

static fipsc_status alloc_buffers(vit_distiller *D, fipsc_error *err)
{
    const size_t R = (size_t)D->batch_cap * D->T, d = (size_t)D->d, f = (size_t)(D->f > D->d ? D->f : D->d);
    const size_t B = (size_t)D->batch_cap, TT = (size_t)D->T * D->T;
    D->cache = calloc((size_t)D->last + 1, sizeof *D->cache);
    float **bufs[] = {&D->x, &D->dx, &D->tmp_d, &D->tmp_d2, &D->tmp_d3};
    bool ok = D->cache != NULL;
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) ok = ok && (*bufs[i] = malloc(R * d * sizeof(float)));
    ok = ok && (D->tmp_f = malloc(R * f * sizeof(float))) && (D->heads_in = malloc(2 * B * d * sizeof(float))) &&
         (D->heads_xhat = malloc(2 * B * d * sizeof(float))) && (D->heads_rstd = malloc(2 * B * sizeof(float))) &&
         (D->logits = malloc(B * D->labels * sizeof(float))) && (D->logits2 = malloc(B * D->labels * sizeof(float))) &&
         (D->scratch = malloc((size_t)omp_get_max_threads() * TT * sizeof(float)));
    for (int l = D->first; ok && l <= D->last; l++) {
        vit_layer_cache *c = &D->cache[l];
        ok = (c->xhat_a = malloc(R * d * sizeof(float))) && (c->rstd_a = malloc(R * sizeof(float))) &&
             (c->q = malloc(R * d * sizeof(float))) && (c->k = malloc(R * d * sizeof(float))) &&
             (c->v = malloc(R * d * sizeof(float))) && (c->probs = malloc(B * D->heads * TT * sizeof(float))) &&
             (c->xhat_m = malloc(R * d * sizeof(float))) && (c->rstd_m = malloc(R * sizeof(float))) &&
             (c->h_m = malloc(R * d * sizeof(float))) && (c->pre = malloc(R * D->f * sizeof(float))) &&
             (c->act = malloc(R * D->f * sizeof(float)));
    }
    return ok ? FIPSC_OK
              : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for distillation batches of %d images", D->batch_cap);
}

/* The original's log-probabilities and the rows entering block first's MLP, for every image. */
static fipsc_status prepare_images(vit_distiller *D, const fipsc_model *orig, const float *pixels, fipsc_error *err)
{
    const fipsc_vit *v = D->v;
    const size_t per_image = (size_t)v->channels * v->image_h * v->image_w, rows_d = (size_t)D->T * D->d;
    D->teacher = malloc((size_t)D->n * D->labels * sizeof(float));
    D->stream = malloc((size_t)D->n * rows_d * sizeof(float));
    if (!D->teacher || !D->stream) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %d images", D->n);
    fipsc_status st = fipsc_model_image(orig)->forward(orig, pixels, D->n, D->teacher, NULL, err);
    if (st) return fipsc_fail_context(err, "the original's logits: ");
    for (int i = 0; i < D->n; i++) fipsc_distill_log_softmax(D->teacher + (size_t)i * D->labels, D->labels);
    for (int i0 = 0; !st && i0 < D->n; i0 += D->batch_cap) {
        const int cnt = D->n - i0 < D->batch_cap ? D->n - i0 : D->batch_cap;
        st = fipsc_vit_embed(D->m, pixels + (size_t)i0 * per_image, cnt, D->x, err);
        for (int l = 0; !st && l < D->first; l++) st = fipsc_vit_block_forward(D->m, l, cnt, D->x, NULL, err);
        if (!st) st = vit_attention_fwd(D, D->first, cnt, D->x, &D->cache[D->first], err);
        if (!st) memcpy(D->stream + (size_t)i0 * rows_d, D->x, (size_t)cnt * rows_d * sizeof(float));
    }
    return st;
}

fipsc_status vit_distiller_new(fipsc_model *m, const fipsc_model *original, const float *pixels, int n,
                               int batch_cap, vit_distiller **out, fipsc_error *err)
{
    *out = NULL;
    const fipsc_vit *v = fipsc_model_vit(m), *o = original ? fipsc_model_vit(original) : NULL;
    if (!v || !o)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation of an image classifier needs the compressed "
                          "model and its original, both Vision Transformers");
    if (n < 1 || batch_cap < 1)
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation on %d images in batches of %d", n, batch_cap);
    for (size_t i = 0; i < (size_t)n * v->channels * v->image_h * v->image_w; i++)
        if (!isfinite(pixels[i]))
            return fipsc_fail(err, FIPSC_ERR_NUMERIC, "distillation: image %zu has a pixel that is not finite",
                              i / ((size_t)v->channels * v->image_h * v->image_w) + 1);
    vit_distiller *D = calloc(1, sizeof *D);
    if (!D) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    D->m = m;
    D->v = v;
    D->d = v->dim;
    D->f = v->hidden;
    D->T = v->n_tokens;
    D->heads = v->n_heads;
    D->hd = v->head_dim;
    D->labels = v->n_labels;
    D->last = v->n_layers - 1;
    D->first = -1;
    D->scale = 1.0f / sqrtf((float)D->hd);
    D->n = n;
    D->batch_cap = batch_cap < n ? batch_cap : n;
    fipsc_status st = check_models(D, o, err);
    if (!st) st = fipsc_distill_params_init(&D->P, 2 * v->n_layers, err);
    if (!st && !(D->mlps = calloc((size_t)v->n_layers, sizeof *D->mlps)))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int l = 0; l <= D->last && !st; l++) {
        const fipsc_mlp *mlp = &v->blocks[l].mlp;
        vit_mlp_view *mv = &D->mlps[l];
        if ((st = fipsc_distill_params_add(&D->P, &mlp->up, D->d, &mv->p1, err)) ||
            (st = fipsc_distill_params_add(&D->P, &mlp->down, D->d, &mv->p2, err)))
            break;
        mv->fc1 = (fipsc_linear){.out = D->f, .in = D->d, .weight_name = mlp->up.weight_name,
                                 .w = mv->p1 ? mv->p1->dense : mlp->up.w, .bias = mlp->up.bias};
        mv->fc2 = (fipsc_linear){.out = D->d, .in = D->f, .weight_name = mlp->down.weight_name,
                                 .w = mv->p2 ? mv->p2->dense : mlp->down.w, .bias = mlp->down.bias};
        if ((mv->p1 || mv->p2) && D->first < 0) D->first = l;
    }
    if (!st && D->first < 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the model has no compressed MLP (compress it first)");
    if (!st) st = alloc_buffers(D, err);
    if (!st) st = prepare_images(D, original, pixels, err);
    if (st) {
        vit_distiller_free(D);
        return st;
    }
    D->objective = (fipsc_distill_objective){D, D->n, D->batch_cap, vit_distill_batch, vit_distill_score};
    *out = D;
    return FIPSC_OK;
}
