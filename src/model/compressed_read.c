/* Reading a compressed safetensors file (docs/FORMAT.md, "compressed") into a model whose MLP
 * slots point at factored linears. Nothing is densified.
 *
 * Order of work, each step validating before the next trusts it:
 *   1. the safetensors container (fipsc_st_open: header, dtypes, ranges);
 *   2. __metadata__: format marker, version, the layout JSON (every field's type and range,
 *      groups disjoint and inside the model, matrices inside their group, no matrix twice) and
 *      the configuration (through the architecture's parser);
 *   3. every tensor the layout does not name must be one of the architecture's tensors (strict,
 *      as the plain loaders) and is added as the family allows (aligned F32 in place from the map;
 *      F16/BF16 kept in 16 bits for families that keep them, else float32), finite;
 *      a weight stored both dense and compressed is refused;
 *   4. per group its U (dtype as declared, shape [d, r], finite) and per matrix its V arrays
 *      (dtypes, shapes, pointers, indices, counts; see fipsc_v_stored_validate), then the
 *      factored linears are registered with the model;
 *   5. the architecture binds its view, which finds the factored forms by weight name; every
 *      registered matrix must then sit in the MLP slot its layout entry names. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/compressed.h"
#include "model/family.h"
#include "ops/factored.h"
#include "formats/safetensors.h"
#include "model/ingest.h"
#include "model/compressed_format.h"
#include "model/compressed_layout.h"

static void close_file(void *f) { fipsc_st_close(f); }

/* ------------------------------------------------------------------ tensors */

/* Whether a file tensor is one the layout names (a U or a V array). */
static bool is_layout_tensor(const rd_layout *l, const char *name)
{
    char buf[CF_MAX_NAME + 64];
    for (int g = 0; g < l->n_groups; g++) {
        const rd_group *gr = &l->groups[g];
        cf_u_name(buf, sizeof buf, g);
        if (!gr->identity && strcmp(buf, name) == 0) return true;
        for (int i = 0; i < gr->n_mats; i++) {
            const char *w = gr->mats[i].weight;
            static const char *const csc[] = {CF_CSC_VALUES, CF_CSC_ROWS, CF_CSC_COLPTR};
            static const char *const nm[] = {CF_NM_VALUES, CF_NM_INDICES};
            static const char *const dense[] = {CF_DENSE};
            static const char *const bitmap[] = {CF_CSC_VALUES, CF_BITMAP};
            const char *const *sfx = gr->storage == FIPSC_V_CSC ? csc : gr->storage == FIPSC_V_NM ? nm
                                     : gr->storage == FIPSC_V_BITMAP ? bitmap : dense;
            int n = gr->storage == FIPSC_V_CSC ? 3 : gr->storage == FIPSC_V_DENSE ? 1 : 2;
            for (int k = 0; k < n; k++)
                if (cf_v_name(buf, sizeof buf, w, sfx[k]) && strcmp(buf, name) == 0) return true;
        }
    }
    return false;
}

static const rd_matrix *compressed_weight(const rd_layout *l, const char *name)
{
    for (int g = 0; g < l->n_groups; g++)
        for (int i = 0; i < l->groups[g].n_mats; i++)
            if (strcmp(l->groups[g].mats[i].weight, name) == 0) return &l->groups[g].mats[i];
    return NULL;
}

/* Adds every tensor the layout does not name (the architecture's own). */
static fipsc_status add_plain_tensors(fipsc_model *m, const fipsc_st_file *f, const rd_layout *l,
                                      const char *path, fipsc_error *err)
{
    for (int i = 0; i < fipsc_st_count(f); i++) {
        const fipsc_st_tensor *t = fipsc_st_at(f, i);
        if (is_layout_tensor(l, t->name)) continue;
        if (compressed_weight(l, t->name))
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s' is stored both dense and compressed", path,
                              t->name);
        if (!l->family->is_tensor(m, t->name))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: unexpected tensor '%s': neither named by the compression layout nor part of the "
                              "%s that its configuration describes",
                              path, t->name, m->arch_name);
        fipsc_status st = fipsc_model_ingest(m, t, FIPSC_ERR_FORMAT, l->family->keeps_16bit, err);
        if (st) return st;
    }
    return FIPSC_OK;
}

/* The tensor called name with this dtype and shape. */
static fipsc_status need(const fipsc_st_file *f, const char *path, const char *name, fipsc_dtype dtype,
                         int ndim, const int64_t *shape, const fipsc_st_tensor **out, fipsc_error *err)
{
    const fipsc_st_tensor *t = fipsc_st_find(f, name);
    if (!t) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: missing tensor '%s'", path, name);
    if (t->dtype != dtype)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", path, name,
                          fipsc_dtype_name(t->dtype), fipsc_dtype_name(dtype));
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char have[128], want[128];
        fipsc_shape_format(t->ndim, t->shape, have, sizeof have);
        fipsc_shape_format(ndim, shape, want, sizeof want);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", path, name, have, want);
    }
    *out = t;
    return FIPSC_OK;
}

/* Copies n elements of an integer tensor (U8/U16/U32, possibly unaligned) into 32-bit values. */
static void copy_u32(const fipsc_st_tensor *t, uint32_t *dst, int64_t n)
{
    const unsigned char *src = t->data;
    size_t size = fipsc_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++) {
        if (size == 2) {
            uint16_t v;
            memcpy(&v, src + i * 2, 2);
            dst[i] = v;
        } else {
            memcpy(&dst[i], src + i * 4, 4);
        }
    }
}

/* V of matrix mt from its tensors, validated. */
static fipsc_status read_v(const fipsc_st_file *f, const char *path, const rd_group *g, const rd_matrix *mt,
                           fipsc_v_stored *v, fipsc_error *err)
{
    memset(v, 0, sizeof *v);
    v->storage = g->storage;
    v->r = g->r;
    v->f = mt->f;
    v->nm_n = g->nm_n;
    v->nm_m = g->nm_m;
    v->nnz = mt->nnz;
    char name[CF_MAX_NAME + 64];
    const fipsc_st_tensor *tv = NULL, *ti = NULL, *tp = NULL;
    fipsc_status st;
    if (g->storage == FIPSC_V_DENSE) {
        int64_t shape[2] = {g->r, mt->f};
        cf_v_name(name, sizeof name, mt->weight, CF_DENSE);
        if ((st = need(f, path, name, g->v_dtype, 2, shape, &tv, err))) return st;
    } else if (g->storage == FIPSC_V_NM) {
        int64_t shape[3] = {mt->f, g->r / g->nm_m, g->nm_n};
        cf_v_name(name, sizeof name, mt->weight, CF_NM_VALUES);
        if ((st = need(f, path, name, g->v_dtype, 3, shape, &tv, err))) return st;
        cf_v_name(name, sizeof name, mt->weight, CF_NM_INDICES);
        if ((st = need(f, path, name, FIPSC_U8, 3, shape, &ti, err))) return st;
        if (!(v->nm_idx = malloc((size_t)(mt->nnz ? mt->nnz : 1))))
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
        memcpy(v->nm_idx, ti->data, (size_t)mt->nnz);
    } else if (g->storage == FIPSC_V_BITMAP) {
        int64_t nnz = mt->nnz, shape[2] = {mt->f, ((int64_t)g->r + 7) / 8};
        cf_v_name(name, sizeof name, mt->weight, CF_CSC_VALUES);
        if ((st = need(f, path, name, g->v_dtype, 1, &nnz, &tv, err))) return st;
        cf_v_name(name, sizeof name, mt->weight, CF_BITMAP);
        if ((st = need(f, path, name, FIPSC_U8, 2, shape, &ti, err))) return st;
        size_t bytes = (size_t)(shape[0] * shape[1]);
        if (!(v->bitmap = malloc(bytes))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
        memcpy(v->bitmap, ti->data, bytes);
    } else {
        int64_t nnz = mt->nnz, ptrs = (int64_t)mt->f + 1;
        cf_v_name(name, sizeof name, mt->weight, CF_CSC_VALUES);
        if ((st = need(f, path, name, g->v_dtype, 1, &nnz, &tv, err))) return st;
        cf_v_name(name, sizeof name, mt->weight, CF_CSC_ROWS);
        if ((st = need(f, path, name, g->r <= 65535 ? FIPSC_U16 : FIPSC_U32, 1, &nnz, &ti, err))) return st;
        cf_v_name(name, sizeof name, mt->weight, CF_CSC_COLPTR);
        if ((st = need(f, path, name, FIPSC_U32, 1, &ptrs, &tp, err))) return st;
        v->row_idx = malloc((size_t)(nnz ? nnz : 1) * sizeof *v->row_idx);
        v->col_ptr = malloc((size_t)ptrs * sizeof *v->col_ptr);
        if (!v->row_idx || !v->col_ptr) {
            fipsc_v_stored_free(v);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
        }
        copy_u32(ti, v->row_idx, nnz);
        copy_u32(tp, v->col_ptr, ptrs);
    }
    if ((st = fipsc_st_to_f32(tv, &v->values, err))) {
        fipsc_v_stored_free(v);
        return st;
    }
    /* copied out: the file's pages of V leave the process (the kernel layout is built from v) */
    const fipsc_st_tensor *copied[3] = {tv, ti, tp};
    for (int k = 0; k < 3; k++)
        if (copied[k]) fipsc_st_release(f, copied[k]);
    char what[sizeof name + 4300];
    cf_v_name(name, sizeof name, mt->weight, ".fips_v");
    snprintf(what, sizeof what, "%s: %s (V of '%s')", path, name, mt->weight);
    if ((st = fipsc_v_stored_validate(v, what, err))) fipsc_v_stored_free(v);
    return st;
}

/* Step 4: groups and their linears into the model's registry. */
static fipsc_status read_groups(fipsc_model *m, const fipsc_st_file *f, const char *path, const rd_layout *l,
                                fipsc_error *err)
{
    fipsc_status st;
    for (int gi = 0; gi < l->n_groups; gi++) {
        const rd_group *rg = &l->groups[gi];
        fipsc_compressed_group *g = calloc(1, sizeof *g);
        if (!g) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
        g->first_layer = rg->first;
        g->last_layer = rg->last;
        g->d = rg->d;
        g->r = rg->r;
        g->storage = rg->storage;
        g->u_dtype = rg->identity ? FIPSC_F32 : rg->u_dtype;
        g->v_dtype = rg->v_dtype;
        g->nm_n = rg->nm_n;
        g->nm_m = rg->nm_m;
        snprintf(g->method, sizeof g->method, "%s", rg->method);
        if (!rg->identity) {
            char name[64];
            cf_u_name(name, sizeof name, gi);
            int64_t shape[2] = {rg->d, rg->r};
            const fipsc_st_tensor *tu;
            st = need(f, path, name, rg->u_dtype, 2, shape, &tu, err);
            const size_t n = (size_t)rg->d * (size_t)rg->r;
            int64_t bad = -1;
            if (!st && (rg->u_dtype == FIPSC_F16 || rg->u_dtype == FIPSC_BF16)) {
                /* kept in its 16 bits (src/ops/factored_basis.c) */
                if (!(g->U16 = malloc(n * sizeof *g->U16)))
                    st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for tensor '%s'", path, name);
                else {
                    memcpy(g->U16, tu->data, n * sizeof *g->U16);
                    bad = fipsc_first_nonfinite16(rg->u_dtype, g->U16, n);
                }
            } else if (!st && !(st = fipsc_st_to_f32(tu, &g->U, err))) {
                bad = fipsc_first_nonfinite(g->U, n);
            }
            if (!st) fipsc_st_release(f, tu);
            if (!st && bad >= 0)
                st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at flat index %lld",
                                path, name, (long long)bad);
            if (st) {
                fipsc_group_free(g);
                return st;
            }
        }
        if ((st = fipsc_model_register_group(m, g, err))) return st;
        for (int i = 0; i < rg->n_mats; i++) {
            const rd_matrix *mt = &rg->mats[i];
            fipsc_v_stored v;
            if ((st = read_v(f, path, rg, mt, &v, err))) return st;
            fipsc_factored_linear *fl;
            if ((st = fipsc_factored_new(mt->weight, mt->layer, mt->role, g, &v, &fl, err)))
                return fipsc_fail_context(err, "%s: ", path);
            fl->source_dtype = mt->source_dtype;
            if ((st = fipsc_model_register_factored(m, fl, err))) return fipsc_fail_context(err, "%s: ", path);
        }
    }
    return FIPSC_OK;
}

/* Step 5: every matrix sits in the slot its layout entry names, with the group's d. */
static fipsc_status check_bound(fipsc_model *m, const char *path, const rd_layout *l, fipsc_error *err)
{
    for (int gi = 0; gi < l->n_groups; gi++) {
        const rd_group *rg = &l->groups[gi];
        if (rg->last >= m->n_mlps)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: group %d covers layers %d-%d but the model has %d blocks",
                              path, gi, rg->first, rg->last, m->n_mlps);
    }
    for (int i = 0; i < fipsc_model_factored_count(m); i++) {
        const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
        const fipsc_linear *slot = fipsc_model_mlp_slot(m, fl->layer, fl->role);
        if (!slot || slot->factored != fl) {
            char that[CF_MAX_NAME + 16] = "";
            if (slot && slot->weight_name) snprintf(that, sizeof that, " (that is %s)", slot->weight_name);
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: compressed weight '%s' is not the %s matrix of block %d's MLP%s",
                              path, fl->weight_name, fipsc_mlp_role_name(fl->role), fl->layer, that);
        }
        if (m->mlps[fl->layer]->d != fl->d)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: '%s': group d %d but block %d's MLP has d %d", path,
                              fl->weight_name, fl->d, fl->layer, m->mlps[fl->layer]->d);
    }
    return FIPSC_OK;
}

bool fipsc_compressed_is_file(const char *path)
{
    fipsc_st_file *f;
    if (fipsc_st_open(path, &f, NULL)) return false;
    const char *v = fipsc_st_meta(f, CF_KEY_FORMAT);
    bool yes = v && strcmp(v, CF_FORMAT_VALUE) == 0;
    fipsc_st_close(f);
    return yes;
}

/* Step 2's version check: a decimal integer; newer than CF_VERSION is unsupported. */
static fipsc_status check_version(const fipsc_st_file *f, const char *path, long *out, fipsc_error *err)
{
    const char *v = fipsc_st_meta(f, CF_KEY_VERSION);
    if (!v) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: __metadata__ has no \"%s\"", path, CF_KEY_VERSION);
    char *end;
    errno = 0;
    long version = strtol(v, &end, 10);
    if (end == v || *end || errno || version < 1)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: __metadata__ %s is '%s', not a positive integer", path,
                          CF_KEY_VERSION, v);
    if (version > CF_VERSION)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: compressed format version %ld is newer than this fipsc reads (%d)", path, version,
                          CF_VERSION);
    *out = version;
    return FIPSC_OK;
}

fipsc_status fipsc_compressed_read(const char *path, fipsc_family_lookup find, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_st_file *f;
    fipsc_status st = fipsc_st_open(path, &f, err);
    if (st) return st;
    fipsc_model *m = fipsc_model_new();
    if (!m) {
        fipsc_st_close(f);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    }
    if ((st = fipsc_model_keep(m, f, close_file, err)) || /* closed f */
        (st = fipsc_model_set_source_path(m, path, err))) {
        fipsc_model_free(m);
        return st;
    }
    rd_layout layout = {0};
    long version = 0;
    const char *marker = fipsc_st_meta(f, CF_KEY_FORMAT), *layout_text = fipsc_st_meta(f, CF_KEY_LAYOUT);
    const char *config = fipsc_st_meta(f, CF_KEY_CONFIG);
    char origin[4200];
    snprintf(origin, sizeof origin, "%s (__metadata__ \"%s\")", path, CF_KEY_CONFIG);
    if (!marker || strcmp(marker, CF_FORMAT_VALUE) != 0)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a fipsc compressed file (__metadata__ \"%s\" is not \"%s\")",
                        path, CF_KEY_FORMAT, CF_FORMAT_VALUE);
    else if (!(st = check_version(f, path, &version, err)) && !layout_text)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: __metadata__ has no \"%s\"", path, CF_KEY_LAYOUT);
    else if (!st && !config)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: __metadata__ has no \"%s\" (the model configuration)", path,
                        CF_KEY_CONFIG);
    if (!st) st = cf_layout_parse(path, layout_text, find, &layout, err);
    if (!st) st = cf_layout_check_version(&layout, version, path, err);
    if (!st) st = layout.family->config_from_json(m, config, origin, err);
    if (!st) st = add_plain_tensors(m, f, &layout, path, err);
    if (!st) st = read_groups(m, f, path, &layout, err);
    if (!st && (st = layout.family->bind(m, err))) fipsc_fail_context(err, "%s: ", path);
    if (!st) st = check_bound(m, path, &layout, err);
    cf_layout_free(&layout);
    if (st) {
        fipsc_model_free(m);
        return st;
    }
    *out = m;
    return FIPSC_OK;
}
