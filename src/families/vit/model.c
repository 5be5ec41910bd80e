/* The ViT view of a model: binding it to the tensors under transformers' names, checking every
 * shape against the configuration (see src/families/vit/vit.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/path.h"
#include "families/vit/vit.h"

void fipsc_vit_config_free(fipsc_vit *vc)
{
    if (!vc) return;
    if (vc->labels)
        for (int i = 0; i < vc->n_labels; i++) free(vc->labels[i]);
    free(vc->labels);
    vc->labels = NULL;
    free(vc->config_text);
    free(vc->preproc_text);
    vc->config_text = vc->preproc_text = NULL;
}

/* The view belongs to the model: freed by fipsc_model_free. */
static void release_view(void *p)
{
    fipsc_vit *v = p;
    fipsc_vit_config_free(v);
    free(v->blocks);
    free(v);
}

const fipsc_vit *fipsc_model_vit(const fipsc_model *m)
{
    return m && m->family == &fipsc_family_vit ? m->view : NULL;
}

/* The same, writable, for the binders of this file. */
static fipsc_vit *view_of(fipsc_model *m) { return m->family == &fipsc_family_vit ? m->view : NULL; }

/* Finds "<prefix><name>" with the given shape. */
static fipsc_status need(const fipsc_model *m, const char *prefix, const char *name, int ndim,
                         const int64_t *shape, const float **data, fipsc_error *err)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return fipsc_model_require(m, full, ndim, shape, data, err);
}

static fipsc_status need_vector(const fipsc_model *m, const char *prefix, const char *name,
                                int64_t n, const float **data, fipsc_error *err)
{
    return need(m, prefix, name, 1, &n, data, err);
}

/* "<prefix><name>.weight" [out, in] and, when with_bias, "<prefix><name>.bias" [out]. The weight
 * binds through fipsc_model_bind_weight: a dense tensor, or (an MLP matrix of a compressed model)
 * its registered factored form. */
static fipsc_status need_linear(const fipsc_model *m, const char *prefix, const char *name,
                                int out, int in, bool with_bias, fipsc_linear *lin,
                                fipsc_error *err)
{
    char full[256];
    memset(lin, 0, sizeof *lin);
    snprintf(full, sizeof full, "%s%s.weight", prefix, name);
    fipsc_status st = fipsc_model_bind_weight(m, full, out, in, lin, err);
    if (st) return st;
    if (!with_bias) return FIPSC_OK;
    snprintf(full, sizeof full, "%s%s.bias", prefix, name);
    return need_vector(m, "", full, out, &lin->bias, err);
}

static fipsc_status bind_block(const fipsc_model *m, const fipsc_vit *v, int l, fipsc_vit_block *b,
                               fipsc_error *err)
{
    char p[64];
    snprintf(p, sizeof p, "%s.encoder.layer.%d.", v->prefix, l);
    int d = v->dim, f = v->hidden;
    fipsc_status st;
    if ((st = need_vector(m, p, "layernorm_before.weight", d, &b->ln_before_w, err)) ||
        (st = need_vector(m, p, "layernorm_before.bias", d, &b->ln_before_b, err)) ||
        (st = need_linear(m, p, "attention.attention.query", d, d, v->qkv_bias, &b->q, err)) ||
        (st = need_linear(m, p, "attention.attention.key", d, d, v->qkv_bias, &b->k, err)) ||
        (st = need_linear(m, p, "attention.attention.value", d, d, v->qkv_bias, &b->v, err)) ||
        (st = need_linear(m, p, "attention.output.dense", d, d, true, &b->o, err)) ||
        (st = need_vector(m, p, "layernorm_after.weight", d, &b->ln_after_w, err)) ||
        (st = need_vector(m, p, "layernorm_after.bias", d, &b->ln_after_b, err)))
        return st;
    fipsc_mlp *mlp = &b->mlp;
    memset(mlp, 0, sizeof *mlp);
    mlp->kind = FIPSC_MLP_PLAIN;
    mlp->act = v->act;
    mlp->d = d;
    mlp->f = f;
    if ((st = need_linear(m, p, "intermediate.dense", f, d, true, &mlp->up, err)) ||
        (st = need_linear(m, p, "output.dense", d, f, true, &mlp->down, err)))
        return st;
    return FIPSC_OK;
}

/* Everything except the configuration: weights of v from m's tensors. */
static fipsc_status bind_weights(const fipsc_model *m, fipsc_vit *v, fipsc_error *err)
{
    char p[16];
    snprintf(p, sizeof p, "%s.", v->prefix);
    int d = v->dim;
    fipsc_status st;
    int64_t token_shape[3] = {1, 1, d}, pos_shape[3] = {1, v->n_tokens, d};
    int64_t patch_shape[4] = {d, v->channels, v->patch_h, v->patch_w};
    const float *patch_w;
    if ((st = need(m, p, "embeddings.patch_embeddings.projection.weight", 4, patch_shape, &patch_w, err)))
        return st;
    memset(&v->patch_embed, 0, sizeof v->patch_embed);
    v->patch_embed.out = d;
    v->patch_embed.in = v->channels * v->patch_h * v->patch_w;
    v->patch_embed.w = patch_w;
    char name[128];
    snprintf(name, sizeof name, "%sembeddings.patch_embeddings.projection.weight", p);
    v->patch_embed.weight_name = fipsc_model_find(m, name)->name;
    if ((st = need_vector(m, p, "embeddings.patch_embeddings.projection.bias", d, &v->patch_embed.bias, err)) ||
        (st = need(m, p, "embeddings.cls_token", 3, token_shape, &v->cls_token, err)) ||
        (st = need(m, p, "embeddings.position_embeddings", 3, pos_shape, &v->pos_embed, err)))
        return st;
    v->dist_token = NULL;
    if (v->n_prefix == 2 && (st = need(m, p, "embeddings.distillation_token", 3, token_shape, &v->dist_token, err)))
        return st;
    for (int l = 0; l < v->n_layers; l++)
        if ((st = bind_block(m, v, l, &v->blocks[l], err))) return st;
    if ((st = need_vector(m, p, "layernorm.weight", d, &v->final_ln_w, err)) ||
        (st = need_vector(m, p, "layernorm.bias", d, &v->final_ln_b, err)))
        return st;
    memset(&v->dist_head, 0, sizeof v->dist_head);
    if (v->kind == FIPSC_VIT_DEIT_TEACHER)
        return (st = need_linear(m, "", "cls_classifier", v->n_labels, d, true, &v->head, err))
                   ? st
                   : need_linear(m, "", "distillation_classifier", v->n_labels, d, true, &v->dist_head, err);
    return need_linear(m, "", "classifier", v->n_labels, d, true, &v->head, err);
}

/* Labels "LABEL_<i>" (transformers' default) when the configuration named none. */
static fipsc_status default_labels(fipsc_vit *v, fipsc_error *err)
{
    v->labels = calloc((size_t)v->n_labels, sizeof *v->labels);
    if (!v->labels) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %d labels", v->n_labels);
    for (int i = 0; i < v->n_labels; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "LABEL_%d", i);
        if (!(v->labels[i] = strdup(buf))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for labels");
    }
    return FIPSC_OK;
}

fipsc_status fipsc_model_bind_vit(fipsc_model *m, fipsc_vit *vc, fipsc_error *err)
{
    fipsc_vit v = *vc; /* the configuration; vc's labels move into the view below */
    vc->labels = NULL;
    vc->config_text = vc->preproc_text = NULL;
    v.blocks = NULL;
    fipsc_status st = FIPSC_OK;
    if (v.dim <= 0 || v.n_layers <= 0 || v.n_heads <= 0 || v.hidden <= 0 || v.dim % v.n_heads ||
        v.n_tokens != v.n_prefix + v.n_patches || v.n_patches <= 0) {
        st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "fipsc_model_bind_vit: inconsistent configuration");
        goto fail;
    }
    if (v.n_labels <= 0) {
        /* no id2label: the classifier's shape says how many classes there are */
        const fipsc_tensor *t = fipsc_model_find(m, v.kind == FIPSC_VIT_DEIT_TEACHER ? "cls_classifier.weight"
                                                                                      : "classifier.weight");
        if (!t || t->ndim != 2 || t->shape[0] <= 0 || t->shape[0] > (1 << 24)) {
            st = fipsc_fail(err, FIPSC_ERR_NOT_FOUND,
                            "the configuration has no id2label and there is no 2-D %s to count the classes",
                            v.kind == FIPSC_VIT_DEIT_TEACHER ? "'cls_classifier.weight'" : "'classifier.weight'");
            goto fail;
        }
        v.n_labels = (int)t->shape[0];
    }
    if (!v.labels && (st = default_labels(&v, err))) goto fail;
    v.blocks = calloc((size_t)v.n_layers, sizeof *v.blocks);
    fipsc_mlp **mlps = calloc((size_t)v.n_layers, sizeof *mlps);
    if (!v.blocks || !mlps) {
        free(mlps);
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory binding %d blocks", v.n_layers);
        goto fail;
    }
    if ((st = bind_weights(m, &v, err))) {
        free(mlps);
        goto fail;
    }

    /* Install: reuse the view allocation a previous bind registered with the model. */
    fipsc_vit *view = view_of(m);
    if (!view) {
        if (m->view) {
            st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "the model has another family's view already");
            free(mlps);
            goto fail;
        }
        if (!(view = calloc(1, sizeof *view))) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the ViT view");
            free(mlps);
            goto fail;
        }
        fipsc_model_set_view(m, &fipsc_family_vit, view, release_view);
    } else {
        fipsc_vit_config_free(view);
        free(view->blocks);
    }
    *view = v;
    for (int l = 0; l < v.n_layers; l++) mlps[l] = &view->blocks[l].mlp;
    fipsc_model_set_mlps(m, mlps, v.n_layers);
    return fipsc_path_format(m->arch_name, sizeof m->arch_name, err, "%s", fipsc_vit_architecture_name(v.kind));
fail:
    fipsc_vit_config_free(&v);
    free(v.blocks);
    return st;
}

/* A deep copy of v's configuration (labels and texts duplicated; no weights, no blocks). */
static fipsc_status copy_config(const fipsc_vit *v, fipsc_vit *out, fipsc_error *err)
{
    *out = *v;
    out->blocks = NULL;
    out->labels = NULL;
    out->config_text = out->preproc_text = NULL;
    bool ok = true;
    if (v->labels && (out->labels = calloc((size_t)v->n_labels, sizeof *out->labels)))
        for (int i = 0; i < v->n_labels && ok; i++) ok = (out->labels[i] = strdup(v->labels[i])) != NULL;
    ok = ok && (!v->labels || out->labels);
    ok = ok && (!v->config_text || (out->config_text = strdup(v->config_text)));
    ok = ok && (!v->preproc_text || (out->preproc_text = strdup(v->preproc_text)));
    if (ok) return FIPSC_OK;
    fipsc_vit_config_free(out);
    return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory copying the ViT configuration");
}

fipsc_status fipsc_vit_rebind(fipsc_model *m, fipsc_error *err)
{
    if (!m || !fipsc_model_vit(m))
        return fipsc_fail(err, FIPSC_ERR_ARG, "rebind: %s has no ViT configuration",
                          m && m->arch_name[0] ? m->arch_name : "the model");
    fipsc_vit vc;
    fipsc_status st = copy_config(fipsc_model_vit(m), &vc, err);
    return st ? st : fipsc_model_bind_vit(m, &vc, err);
}

fipsc_status fipsc_vit_configure(fipsc_model *m, const char *json_text, const char *origin,
                                 fipsc_error *err)
{
    if (m->view || m->arch_name[0])
        return fipsc_fail(err, FIPSC_ERR_ARG, "%s: the model is configured already", origin);
    fipsc_vit vc;
    fipsc_status st = fipsc_vit_parse_config(json_text, origin, &vc, err);
    if (st) return st;
    /* A view without weights (blocks NULL) until fipsc_vit_rebind; owned by the model. */
    fipsc_vit *view = calloc(1, sizeof *view);
    if (!view) {
        fipsc_vit_config_free(&vc);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", origin);
    }
    *view = vc;
    view->blocks = NULL;
    fipsc_model_set_view(m, &fipsc_family_vit, view, release_view);
    return fipsc_path_format(m->arch_name, sizeof m->arch_name, err, "%s", fipsc_vit_architecture_name(vc.kind));
}
