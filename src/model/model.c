/* The in-memory model: named tensors, kept resources, the family's view and parameter counts. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/path.h"
#include "core/threads.h"
#include "model/compressed.h"
#include "model/family.h"
#include "ops/factored.h"

struct fipsc_resource {
    void *ptr;
    void (*release)(void *);
    struct fipsc_resource *next;
};

fipsc_model *fipsc_model_new(void)
{
    fipsc_blas_single_thread(); /* before any of the model's BLAS work (src/core/threads.h) */
    return calloc(1, sizeof(fipsc_model));
}

void fipsc_model_set_view(fipsc_model *m, const fipsc_family *family, void *view, void (*view_free)(void *))
{
    if (m->view && m->view != view && m->view_free) m->view_free(m->view);
    m->family = family;
    m->view = view;
    m->view_free = view_free;
}

void fipsc_model_set_mlps(fipsc_model *m, fipsc_mlp **mlps, int n)
{
    if (m->mlps != mlps) free(m->mlps);
    m->mlps = mlps;
    m->n_mlps = n;
}

fipsc_status fipsc_model_set_source_path(fipsc_model *m, const char *path, fipsc_error *err)
{
    return fipsc_path_format(m->source_path, sizeof m->source_path, err, "%s", path);
}

void fipsc_model_free(fipsc_model *m)
{
    if (!m) return;
    if (m->view && m->view_free) m->view_free(m->view); /* it points into tensors: first */
    for (int i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        if (m->tensors[i].owned) {
            free(m->tensors[i].data);
            free(m->tensors[i].half);
        }
    }
    free(m->tensors);
    free(m->mlps);
    struct fipsc_resource *r = m->resources;
    while (r) {
        struct fipsc_resource *next = r->next;
        r->release(r->ptr);
        free(r);
        r = next;
    }
    free(m);
}

/* Appends tensor `name` holding data (float32) or half (16-bit); an owned buffer is freed when
 * this fails. */
static fipsc_status add_any(fipsc_model *m, const char *name, int ndim, const int64_t *shape, float *data,
                            uint16_t *half, bool owned, fipsc_dtype source_dtype, fipsc_error *err)
{
    fipsc_status st = FIPSC_OK;
    char *copy = NULL;
    if (ndim < 0 || ndim > FIPSC_MAX_DIMS)
        st = fipsc_fail(err, FIPSC_ERR_SHAPE, "tensor '%s': %d dimensions (at most %d)", name, ndim, FIPSC_MAX_DIMS);
    else if (fipsc_model_find(m, name))
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "tensor '%s' appears twice", name);
    else if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : 64;
        fipsc_tensor *grown = realloc(m->tensors, (size_t)cap * sizeof *grown);
        if (!grown) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory adding tensor '%s'", name);
        else {
            m->tensors = grown;
            m->cap_tensors = cap;
        }
    }
    if (!st && !(copy = strdup(name))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    if (st) {
        if (owned) {
            free(data);
            free(half);
        }
        return st;
    }
    fipsc_tensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = copy;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->half = half;
    t->owned = owned;
    t->source_dtype = source_dtype;
    return FIPSC_OK;
}

fipsc_status fipsc_model_add_tensor(fipsc_model *m, const char *name, int ndim,
                                    const int64_t *shape, float *data, bool owned,
                                    fipsc_dtype source_dtype, fipsc_error *err)
{
    return add_any(m, name, ndim, shape, data, NULL, owned, source_dtype, err);
}

fipsc_status fipsc_model_add_tensor16(fipsc_model *m, const char *name, int ndim, const int64_t *shape,
                                      uint16_t *half, bool owned, fipsc_dtype dtype, fipsc_error *err)
{
    if (dtype != FIPSC_F16 && dtype != FIPSC_BF16) {
        if (owned) free(half);
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "tensor '%s': %s is not a 16-bit float type", name,
                          fipsc_dtype_name(dtype));
    }
    return add_any(m, name, ndim, shape, NULL, half, owned, dtype, err);
}

int64_t fipsc_tensor_first_nonfinite(const fipsc_tensor *t)
{
    const size_t n = (size_t)fipsc_shape_numel(t->ndim, t->shape);
    if (t->half) return fipsc_first_nonfinite16(t->source_dtype, t->half, n);
    return t->data ? fipsc_first_nonfinite(t->data, n) : -1;
}

double fipsc_tensor_value(const fipsc_tensor *t, int64_t i)
{
    if (t->half) {
        float v;
        fipsc_convert16_to_f32(t->source_dtype, t->half + i, 1, &v);
        return v;
    }
    return t->data ? t->data[i] : NAN;
}

fipsc_dtype fipsc_tensor_stored_dtype(const fipsc_tensor *t)
{
    return t->source_dtype == FIPSC_F16 || t->source_dtype == FIPSC_BF16 ? t->source_dtype : FIPSC_F32;
}

fipsc_dtype fipsc_model_linear_stored_dtype(const fipsc_model *m, const fipsc_linear *lin)
{
    const fipsc_tensor *t = lin->weight_name ? fipsc_model_find(m, lin->weight_name) : NULL;
    return t ? fipsc_tensor_stored_dtype(t) : FIPSC_F32;
}

int64_t fipsc_model_linear_weight_bytes(const fipsc_model *m, const fipsc_linear *lin)
{
    return (int64_t)fipsc_dtype_size(fipsc_model_linear_stored_dtype(m, lin)) * lin->out * lin->in;
}

int64_t fipsc_model_mlp_weight_bytes(const fipsc_model *m, const fipsc_mlp *mlp)
{
    const fipsc_linear *lins[3] = {mlp->kind == FIPSC_MLP_GATED ? &mlp->gate : NULL, &mlp->up, &mlp->down};
    int64_t bytes = 0;
    for (int q = 0; q < 3; q++)
        if (lins[q]) bytes += fipsc_model_linear_weight_bytes(m, lins[q]);
    return bytes;
}

const fipsc_tensor *fipsc_model_find(const fipsc_model *m, const char *name)
{
    /* Linear scan: models have at most a few thousand tensors and lookups happen at bind time. */
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

fipsc_status fipsc_model_remove_tensor(fipsc_model *m, const char *name, fipsc_error *err)
{
    for (int i = 0; i < m->n_tensors; i++) {
        fipsc_tensor *t = &m->tensors[i];
        if (strcmp(t->name, name) != 0) continue;
        free(t->name);
        if (t->owned) {
            free(t->data);
            free(t->half);
        }
        memmove(t, t + 1, (size_t)(m->n_tensors - i - 1) * sizeof *t);
        m->n_tensors--;
        return FIPSC_OK;
    }
    return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "cannot remove tensor '%s': the model has none", name);
}

static fipsc_status find_shaped(const fipsc_model *m, const char *name, int ndim, const int64_t *shape,
                                const fipsc_tensor **out, fipsc_error *err);

fipsc_status fipsc_model_bind_weight(const fipsc_model *m, const char *name, int out, int in,
                                     fipsc_linear *lin, fipsc_error *err)
{
    lin->out = out;
    lin->in = in;
    lin->w = NULL;
    lin->w16 = NULL;
    lin->factored = NULL;
    const struct fipsc_factored_linear *fl = fipsc_model_factored(m, name);
    if (fl && !fipsc_model_find(m, name)) {
        if (fl->out != out || fl->in != in)
            return fipsc_fail(err, FIPSC_ERR_SHAPE,
                              "compressed tensor '%s' stands for a [%d, %d] weight but the "
                              "configuration implies [%d, %d]",
                              name, fl->out, fl->in, out, in);
        lin->factored = fl;
        lin->weight_name = fl->weight_name;
        return FIPSC_OK;
    }
    int64_t shape[2] = {out, in};
    const fipsc_tensor *t;
    fipsc_status st = find_shaped(m, name, 2, shape, &t, err);
    if (st) return st;
    if (t->half) { /* kept as stored: the kernels convert as they go */
        lin->w16 = t->half;
        lin->w16_dtype = t->source_dtype;
    } else if ((st = fipsc_model_require(m, name, 2, shape, &lin->w, err))) {
        return st;
    }
    lin->weight_name = t->name;
    return FIPSC_OK;
}

/* The tensor called name with exactly this shape, or a precise error. */
static fipsc_status find_shaped(const fipsc_model *m, const char *name, int ndim, const int64_t *shape,
                                const fipsc_tensor **out, fipsc_error *err)
{
    const fipsc_tensor *t = fipsc_model_find(m, name);
    if (!t) return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "missing tensor '%s'", name);
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[128], have[128];
        fipsc_shape_format(ndim, shape, want, sizeof want);
        fipsc_shape_format(t->ndim, t->shape, have, sizeof have);
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "tensor '%s' has shape %s but the configuration implies %s", name, have,
                          want);
    }
    *out = t;
    return FIPSC_OK;
}

/* Replaces t's 16-bit values by an owned float32 copy. */
static fipsc_status tensor_to_f32(fipsc_tensor *t, fipsc_error *err)
{
    if (!t->half) return FIPSC_OK;
    const size_t n = (size_t)fipsc_shape_numel(t->ndim, t->shape);
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (!f)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory converting tensor '%s' (%zu values) to float32",
                          t->name, n);
    fipsc_convert16_to_f32(t->source_dtype, t->half, n, f);
    if (t->owned) free(t->half);
    t->half = NULL;
    t->data = f;
    t->owned = true;
    return FIPSC_OK;
}

fipsc_status fipsc_model_require(const fipsc_model *m, const char *name, int ndim,
                                 const int64_t *shape, const float **data, fipsc_error *err)
{
    const fipsc_tensor *found;
    fipsc_status st = find_shaped(m, name, ndim, shape, &found, err);
    if (st) return st;
    fipsc_tensor *t = &m->tensors[found - m->tensors]; /* the model's own, writable storage */
    if ((st = tensor_to_f32(t, err))) return st;
    *data = t->data;
    return FIPSC_OK;
}

int fipsc_model_count_16bit(const fipsc_model *m)
{
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++) n += m->tensors[i].half != NULL;
    return n;
}

fipsc_status fipsc_model_materialise_f32(fipsc_model *m, fipsc_error *err)
{
    if (fipsc_model_count_16bit(m) == 0) return FIPSC_OK;
    for (int i = 0; i < m->n_tensors; i++) {
        fipsc_status st = tensor_to_f32(&m->tensors[i], err);
        if (st) return st;
    }
    if (m->family && m->family->bind) return m->family->bind(m, err);
    return FIPSC_OK;
}

fipsc_status fipsc_model_keep(fipsc_model *m, void *ptr, void (*release)(void *), fipsc_error *err)
{
    struct fipsc_resource *r = malloc(sizeof *r);
    if (!r) {
        release(ptr);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    r->ptr = ptr;
    r->release = release;
    r->next = m->resources;
    m->resources = r;
    return FIPSC_OK;
}

fipsc_status fipsc_model_check_finite(const fipsc_model *m, fipsc_error *err)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        int64_t bad = fipsc_tensor_first_nonfinite(t);
        if (bad >= 0)
            return fipsc_fail(err, FIPSC_ERR_NUMERIC,
                              "tensor '%s' holds a non-finite value (%g) at flat index %lld",
                              t->name, fipsc_tensor_value(t, bad), (long long)bad);
    }
    return FIPSC_OK;
}

/* Classifies a tensor by its Hugging Face name. */
static bool name_has(const char *name, const char *part) { return strstr(name, part) != NULL; }

fipsc_tensor_role fipsc_tensor_role_by_name(const char *nm, int ndim)
{
    /* MLP weight matrices only: biases and norms are "other", matching the paper's count of
     * compressible MLP parameters. */
    if (name_has(nm, "norm")) return FIPSC_ROLE_OF_OTHER; /* input/post-attention/final norms, ViT layernorm_before/after */
    if ((name_has(nm, ".mlp.") || name_has(nm, ".intermediate.dense.") || name_has(nm, ".output.dense.") ||
         name_has(nm, ".mlp_")) &&
        !name_has(nm, "attention") && ndim == 2)
        return FIPSC_ROLE_OF_MLP;
    if (name_has(nm, "attn") || name_has(nm, "attention")) return FIPSC_ROLE_OF_ATTENTION;
    if (name_has(nm, "embed") || name_has(nm, "lm_head") || name_has(nm, "embeddings")) return FIPSC_ROLE_OF_EMBEDDINGS;
    return FIPSC_ROLE_OF_OTHER;
}

fipsc_param_counts fipsc_model_count_params(const fipsc_model *m)
{
    fipsc_param_counts pc = {0};
    for (int i = 0; i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        long long n = fipsc_shape_numel(t->ndim, t->shape);
        fipsc_tensor_role role = m->family && m->family->tensor_role ? m->family->tensor_role(m, t->name)
                                                                    : fipsc_tensor_role_by_name(t->name, t->ndim);
        switch (role) {
        case FIPSC_ROLE_OF_MLP: pc.mlp += n; break;
        case FIPSC_ROLE_OF_ATTENTION: pc.attention += n; break;
        case FIPSC_ROLE_OF_EMBEDDINGS: pc.embeddings += n; break;
        case FIPSC_ROLE_OF_OTHER: pc.other += n; break;
        }
        pc.total += n;
    }
    /* FiPS-compressed matrices have no dense tensor: their kept parameters (d·r per basis + the
     * stored entries of every V_i) are MLP parameters. */
    long long compressed = fipsc_model_factored_params(m);
    pc.mlp += compressed;
    pc.total += compressed;
    return pc;
}
