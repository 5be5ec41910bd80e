/* Writing a model with compressed groups as one safetensors file (docs/FORMAT.md, "compressed").
 *
 *   __metadata__   fipsc_format = "compressed", fipsc_format_version = "1" (or "2" when a group
 *                  uses what version 2 added: bitmap storage, F16/BF16 V values),
 *                  config = the model configuration (for Llama: config.json text),
 *                  fipsc_compression = JSON {architecture, groups: [...]}, then extra entries
 *   tensors        every tensor the model still holds, under its own name and in its source
 *                  dtype (non-MLP weights, biases, MLP weights left dense); then per group its
 *                  U ("fips.groups.<g>.U", absent for an identity basis) and per matrix its V
 *                  arrays ("<weight name minus .weight>.fips_v.*")
 * The file is written atomically by the safetensors writer. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/compressed.h"
#include "model/family.h"
#include "ops/factored.h"
#include "formats/safetensors.h"
#include "core/tensor.h"
#include "model/compressed_format.h"

/* Buffers that must outlive the writer's add calls until the file is written. */
typedef struct pending {
    fipsc_v_stored *stored; /* [n_linears] */
    uint16_t **rows16;      /* [n_linears] narrowed CSC row indices, or NULL */
    int n;
    float **u_f32;          /* [n_groups] a 16-bit U widened to be written in another dtype, or NULL */
    int n_groups;
} pending;

static void pending_free(pending *p)
{
    for (int i = 0; i < p->n; i++) {
        fipsc_v_stored_free(&p->stored[i]);
        free(p->rows16[i]);
    }
    free(p->stored);
    free(p->rows16);
    for (int i = 0; i < p->n_groups; i++) free(p->u_f32[i]);
    free(p->u_f32);
}

static bool is_reserved(const char *key)
{
    return strcmp(key, CF_KEY_FORMAT) == 0 || strcmp(key, CF_KEY_VERSION) == 0 ||
           strcmp(key, CF_KEY_CONFIG) == 0 || strcmp(key, CF_KEY_LAYOUT) == 0;
}

static cJSON *int_pair(int a, int b)
{
    int v[2] = {a, b};
    return cJSON_CreateIntArray(v, 2);
}

/* The layout JSON entry of one matrix. */
static cJSON *matrix_json(const fipsc_factored_linear *fl)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "weight", fl->weight_name);
    cJSON_AddNumberToObject(o, "layer", fl->layer);
    cJSON_AddStringToObject(o, "role", fipsc_mlp_role_name(fl->role));
    cJSON_AddStringToObject(o, "orientation", fl->expanding ? "expanding" : "contracting");
    cJSON_AddItemToObject(o, "weight_shape", int_pair(fl->out, fl->in));
    cJSON_AddNumberToObject(o, "f", fl->f);
    cJSON_AddNumberToObject(o, "nnz", (double)fl->nnz);
    cJSON_AddNumberToObject(o, "sparsity", 1.0 - (double)fl->nnz / ((double)fl->r * fl->f));
    /* the dtype of the dense weight it replaced, for byte counts (absent: F32) */
    if (fl->source_dtype != FIPSC_F32) cJSON_AddStringToObject(o, "source_dtype", fipsc_dtype_name(fl->source_dtype));
    return o;
}

/* The dtypes group g is written with: the writer's override, else the group's own. */
static fipsc_dtype group_u_dtype(const fipsc_compressed_group *g, const fipsc_compressed_write_opts *o)
{
    return o && o->u_dtype != FIPSC_F32 ? o->u_dtype : g->u_dtype;
}

static fipsc_dtype group_v_dtype(const fipsc_compressed_group *g, const fipsc_compressed_write_opts *o)
{
    return o && o->v_dtype != FIPSC_F32 ? o->v_dtype : g->v_dtype;
}

/* 2 when some group needs what version 2 added, else 1 (readable by version 1 readers). */
static int file_version(const fipsc_model *m, const fipsc_compressed_write_opts *o)
{
    for (int gi = 0; gi < fipsc_model_group_count(m); gi++) {
        const fipsc_compressed_group *g = fipsc_model_group(m, gi);
        if (g->storage == FIPSC_V_BITMAP || group_v_dtype(g, o) != FIPSC_F32) return 2;
    }
    return 1;
}

static cJSON *group_json(const fipsc_model *m, int gi, const fipsc_compressed_write_opts *wo)
{
    const fipsc_compressed_group *g = fipsc_model_group(m, gi);
    const fipsc_dtype u_dtype = group_u_dtype(g, wo), v_dtype = group_v_dtype(g, wo);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "first_layer", g->first_layer);
    cJSON_AddNumberToObject(o, "last_layer", g->last_layer);
    cJSON_AddNumberToObject(o, "d", g->d);
    cJSON_AddNumberToObject(o, "rank", g->r);
    cJSON_AddStringToObject(o, "basis", fipsc_group_has_basis(g) ? "dense" : "identity");
    if (fipsc_group_has_basis(g)) cJSON_AddStringToObject(o, "u_dtype", fipsc_dtype_name(u_dtype));
    cJSON_AddStringToObject(o, "method", g->method);
    cJSON_AddStringToObject(o, "storage", fipsc_v_storage_name(g->storage));
    if (g->storage == FIPSC_V_NM) cJSON_AddItemToObject(o, "nm", int_pair(g->nm_n, g->nm_m));
    if (v_dtype != FIPSC_F32) cJSON_AddStringToObject(o, "v_dtype", fipsc_dtype_name(v_dtype)); /* absent: F32 */
    cJSON *mats = cJSON_AddArrayToObject(o, "matrices");
    for (int i = 0; i < fipsc_model_factored_count(m); i++) {
        const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
        if (fl->group == g) cJSON_AddItemToArray(mats, matrix_json(fl));
    }
    return o;
}

/* The last line of defence: NaN/Inf never reaches a file. Every float must be finite, and stay
 * finite in the dtype it is stored as (an F16 entry beyond ±65504 would become Inf). */
static fipsc_status check_values(const char *name, const float *x, int64_t n, fipsc_dtype dt,
                                 fipsc_error *err)
{
    int64_t bad = fipsc_first_nonfinite(x, (size_t)n);
    for (int64_t e = 0; bad < 0 && dt != FIPSC_F32 && e < n; e++) {
        float v = fabsf(x[e]);
        if (dt == FIPSC_F16 && v >= 65504.0f && !isfinite(fipsc_f16_to_f32(fipsc_f32_to_f16(v)))) bad = e;
        if (dt == FIPSC_BF16 && v >= 3.38e38f && !isfinite(fipsc_bf16_to_f32(fipsc_f32_to_bf16(v)))) bad = e;
    }
    if (bad < 0) return FIPSC_OK;
    if (isfinite(x[bad]))
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "tensor '%s' holds %g at flat index %lld, beyond "
                          "what %s can hold: nothing written (store it as F32)", name,
                          (double)x[bad], (long long)bad, fipsc_dtype_name(dt));
    return fipsc_fail(err, FIPSC_ERR_NUMERIC, "tensor '%s' holds a non-finite value (%g) at flat "
                      "index %lld: nothing written", name, (double)x[bad], (long long)bad);
}

/* Adds the V arrays of linear i (stored form kept in p until the file is written). */
static fipsc_status add_v(fipsc_st_writer *w, const fipsc_factored_linear *fl, fipsc_dtype v_dtype,
                          pending *p, int i, fipsc_error *err)
{
    fipsc_v_stored *s = &p->stored[i];
    fipsc_status st = fipsc_factored_to_stored(fl, s, err);
    if (st) return st;
    p->n = i + 1;
    char name[1024];
    const char *w_name = fl->weight_name;
    if (s->storage == FIPSC_V_DENSE) {
        int64_t shape[2] = {s->r, s->f};
        if (!cf_v_name(name, sizeof name, w_name, CF_DENSE)) goto too_long;
        if ((st = check_values(name, s->values, (int64_t)s->r * s->f, v_dtype, err))) return st;
        return fipsc_st_writer_add_f32_as(w, name, v_dtype, 2, shape, s->values, err);
    }
    if (s->storage == FIPSC_V_NM) {
        int64_t shape[3] = {s->f, s->r / s->nm_m, s->nm_n};
        if (!cf_v_name(name, sizeof name, w_name, CF_NM_VALUES)) goto too_long;
        if ((st = check_values(name, s->values, fipsc_shape_numel(3, shape), v_dtype, err))) return st;
        if ((st = fipsc_st_writer_add_f32_as(w, name, v_dtype, 3, shape, s->values, err))) return st;
        cf_v_name(name, sizeof name, w_name, CF_NM_INDICES);
        return fipsc_st_writer_add(w, name, FIPSC_U8, 3, shape, s->nm_idx, err);
    }
    int64_t nnz = s->nnz, ptrs = (int64_t)s->f + 1;
    if (!cf_v_name(name, sizeof name, w_name, CF_CSC_VALUES)) goto too_long;
    if ((st = check_values(name, s->values, nnz, v_dtype, err))) return st;
    if ((st = fipsc_st_writer_add_f32_as(w, name, v_dtype, 1, &nnz, s->values, err))) return st;
    if (s->storage == FIPSC_V_BITMAP) {
        int64_t shape[2] = {s->f, ((int64_t)s->r + 7) / 8};
        cf_v_name(name, sizeof name, w_name, CF_BITMAP);
        return fipsc_st_writer_add(w, name, FIPSC_U8, 2, shape, s->bitmap, err);
    }
    cf_v_name(name, sizeof name, w_name, CF_CSC_ROWS);
    if (s->r <= 65535) {
        uint16_t *rows = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *rows);
        if (!rows) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", w_name);
        for (int64_t k = 0; k < nnz; k++) rows[k] = (uint16_t)s->row_idx[k];
        p->rows16[i] = rows;
        st = fipsc_st_writer_add(w, name, FIPSC_U16, 1, &nnz, rows, err);
    } else {
        st = fipsc_st_writer_add(w, name, FIPSC_U32, 1, &nnz, s->row_idx, err);
    }
    if (st) return st;
    cf_v_name(name, sizeof name, w_name, CF_CSC_COLPTR);
    return fipsc_st_writer_add(w, name, FIPSC_U32, 1, &ptrs, s->col_ptr, err);
too_long:
    return fipsc_fail(err, FIPSC_ERR_ARG, "tensor name for '%s' is too long", w_name);
}

/* Metadata entries: format, version, config, layout, then the caller's. */
static fipsc_status set_metadata(fipsc_st_writer *w, const fipsc_model *m, const fipsc_family *family,
                                 const fipsc_compressed_write_opts *wo, const char *const *extra,
                                 fipsc_error *err)
{
    char version[16], *config = NULL;
    snprintf(version, sizeof version, "%d", file_version(m, wo));
    fipsc_status st;
    if ((st = fipsc_st_writer_set_meta(w, CF_KEY_FORMAT, CF_FORMAT_VALUE, err)) ||
        (st = fipsc_st_writer_set_meta(w, CF_KEY_VERSION, version, err)) ||
        (st = family->config_to_json(m, &config, err)) ||
        (st = fipsc_st_writer_set_meta(w, CF_KEY_CONFIG, config, err))) {
        free(config);
        return st;
    }
    free(config);
    cJSON *layout = cJSON_CreateObject();
    cJSON_AddStringToObject(layout, "architecture", family->name);
    cJSON *groups = cJSON_AddArrayToObject(layout, "groups");
    for (int g = 0; g < fipsc_model_group_count(m); g++) cJSON_AddItemToArray(groups, group_json(m, g, wo));
    char *text = cJSON_PrintUnformatted(layout);
    cJSON_Delete(layout);
    if (!text) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the compression metadata");
    st = fipsc_st_writer_set_meta(w, CF_KEY_LAYOUT, text, err);
    cJSON_free(text);
    if (st) return st;
    for (int i = 0; extra && extra[i]; i += 2) {
        if (!extra[i + 1])
            return fipsc_fail(err, FIPSC_ERR_ARG, "extra metadata key '%s' has no value", extra[i]);
        if (is_reserved(extra[i]))
            return fipsc_fail(err, FIPSC_ERR_ARG, "extra metadata key '%s' is reserved by the format", extra[i]);
        if ((st = fipsc_st_writer_set_meta(w, extra[i], extra[i + 1], err))) return st;
    }
    return FIPSC_OK;
}

static fipsc_status add_everything(fipsc_st_writer *w, const fipsc_model *m,
                                   const fipsc_compressed_write_opts *wo, pending *p, fipsc_error *err)
{
    fipsc_status st;
    for (int i = 0; i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        fipsc_dtype dt = fipsc_tensor_stored_dtype(t);
        if (t->half) { /* kept as the checkpoint stored it (finite: checked when loaded) */
            if ((st = fipsc_st_writer_add(w, t->name, dt, t->ndim, t->shape, t->half, err))) return st;
            continue;
        }
        if ((st = check_values(t->name, t->data, fipsc_shape_numel(t->ndim, t->shape), dt, err))) return st;
        if ((st = fipsc_st_writer_add_f32_as(w, t->name, dt, t->ndim, t->shape, t->data, err))) return st;
    }
    char name[64];
    const int n_groups = fipsc_model_group_count(m);
    if (!(p->u_f32 = calloc((size_t)(n_groups ? n_groups : 1), sizeof *p->u_f32)))
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    p->n_groups = n_groups;
    for (int gi = 0; gi < fipsc_model_group_count(m); gi++) {
        const fipsc_compressed_group *g = fipsc_model_group(m, gi);
        if (!fipsc_group_has_basis(g)) continue;
        int64_t shape[2] = {g->d, g->r};
        const fipsc_dtype u_dtype = group_u_dtype(g, wo);
        cf_u_name(name, sizeof name, gi);
        if (g->U16 && u_dtype == g->u_dtype) { /* its own 16 bits (finite: checked when set) */
            if ((st = fipsc_st_writer_add(w, name, u_dtype, 2, shape, g->U16, err))) return st;
            continue;
        }
        const float *U = g->U;
        if (g->U16) { /* written in another dtype than it is held in: widened, then rounded */
            if (!(p->u_f32[gi] = malloc((size_t)g->d * (size_t)g->r * sizeof(float))))
                return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for tensor '%s'", name);
            fipsc_group_basis_f32(g, p->u_f32[gi]);
            U = p->u_f32[gi];
        }
        if ((st = check_values(name, U, (int64_t)g->d * g->r, u_dtype, err))) return st;
        if ((st = fipsc_st_writer_add_f32_as(w, name, u_dtype, 2, shape, U, err))) return st;
    }
    const int n = fipsc_model_factored_count(m);
    p->stored = calloc((size_t)(n ? n : 1), sizeof *p->stored);
    p->rows16 = calloc((size_t)(n ? n : 1), sizeof *p->rows16);
    if (!p->stored || !p->rows16) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    /* group by group, in the order the layout lists them */
    int done = 0;
    for (int gi = 0; gi < fipsc_model_group_count(m); gi++)
        for (int i = 0; i < n; i++) {
            const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
            if (fl->group != fipsc_model_group(m, gi)) continue;
            if ((st = add_v(w, fl, group_v_dtype(fl->group, wo), p, done++, err))) return st;
        }
    return FIPSC_OK;
}

fipsc_status fipsc_compressed_write_ex(const fipsc_model *m, const char *path,
                                       const char *const *extra_metadata,
                                       const fipsc_compressed_write_opts *opts, fipsc_error *err)
{
    const fipsc_dtype dts[2] = {opts ? opts->u_dtype : FIPSC_F32, opts ? opts->v_dtype : FIPSC_F32};
    for (int i = 0; i < 2; i++)
        if (!fipsc_dtype_is_float(dts[i]))
            return fipsc_fail(err, FIPSC_ERR_ARG, "%s: %s can be stored as F32, F16 or BF16, not %s", path,
                              i ? "V" : "U", fipsc_dtype_name(dts[i]));
    const fipsc_family *family = m->family;
    if (!family)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: %s: the model has no family to name in the file", path,
                          m->arch_name[0] ? m->arch_name : "model");
    fipsc_st_writer *w = fipsc_st_writer_new();
    if (!w) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    pending p = {0};
    fipsc_status st = set_metadata(w, m, family, opts, extra_metadata, err);
    if (!st) st = add_everything(w, m, opts, &p, err);
    if (st) fipsc_fail_context(err, "%s: ", path);
    else st = fipsc_st_writer_write(w, path, err);
    pending_free(&p);
    fipsc_st_writer_free(w);
    return st;
}

fipsc_status fipsc_compressed_write(const fipsc_model *m, const char *path,
                                    const char *const *extra_metadata, fipsc_error *err)
{
    return fipsc_compressed_write_ex(m, path, extra_metadata, NULL, err);
}
