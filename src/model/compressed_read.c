/* Reading a compressed safetensors file (docs/FORMAT.md, "compressed") into a model whose MLP
 * slots point at factored linears. Nothing is densified.
 *
 * Order of work, each step validating before the next trusts it:
 *   1. the safetensors container (fipsc_st_open: header, dtypes, ranges);
 *   2. __metadata__: format marker, version, the layout JSON (every field's type and range,
 *      groups disjoint and inside the model, matrices inside their group, no matrix twice) and
 *      the configuration (through the architecture's parser);
 *   3. every tensor the layout does not name must be one of the architecture's tensors (strict,
 *      as the plain loaders) and is added as float32 (aligned F32 in place from the map), finite;
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

enum { MAX_NAME = 512 };

typedef struct rd_matrix {
    char weight[MAX_NAME];
    int layer;
    fipsc_mlp_role role;
    bool expanding;
    int out, in, f;
    int64_t nnz;
    double sparsity;
    fipsc_dtype source_dtype; /* optional "source_dtype": F32 (absent), F16 or BF16 */
} rd_matrix;

typedef struct rd_group {
    int first, last, d, r;
    bool identity;
    fipsc_dtype u_dtype;
    char method[32];
    fipsc_v_storage storage;
    int nm_n, nm_m;
    int n_mats;
    rd_matrix *mats;
} rd_group;

typedef struct rd_layout {
    const fipsc_family *family;
    int n_groups;
    rd_group *groups;
} rd_layout;

static void layout_free(rd_layout *l)
{
    for (int g = 0; g < l->n_groups; g++) free(l->groups[g].mats);
    free(l->groups);
    l->groups = NULL;
    l->n_groups = 0;
}

static void close_file(void *f) { fipsc_st_close(f); }

/* ------------------------------------------------------------------ layout JSON */

/* Messages name the file and the JSON path ("groups[1].matrices[0].nnz"). */
#define LAYOUT_FAIL(...) fipsc_fail(err, FIPSC_ERR_FORMAT, __VA_ARGS__)

static fipsc_status get_int(const char *path, const char *where, const cJSON *obj, const char *key,
                            long long lo, long long hi, long long *out, fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return LAYOUT_FAIL("%s: __metadata__ %s: %s.%s is missing", path, CF_KEY_LAYOUT, where, key);
    double x = cJSON_GetNumberValue(v);
    if (!cJSON_IsNumber(v) || x != floor(x) || x < (double)lo || x > (double)hi)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.%s must be an integer in [%lld, %lld]", path,
                           CF_KEY_LAYOUT, where, key, lo, hi);
    *out = (long long)x;
    return FIPSC_OK;
}

static fipsc_status get_str(const char *path, const char *where, const cJSON *obj, const char *key,
                            const char **out, fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return LAYOUT_FAIL("%s: __metadata__ %s: %s.%s is missing", path, CF_KEY_LAYOUT, where, key);
    if (!cJSON_IsString(v))
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.%s must be a string", path, CF_KEY_LAYOUT, where, key);
    *out = v->valuestring;
    return FIPSC_OK;
}

/* [a, b], two integers in [lo, hi] */
static fipsc_status get_pair(const char *path, const char *where, const cJSON *obj, const char *key,
                             long long lo, long long hi, int *a, int *b, fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const cJSON *x = cJSON_GetArrayItem(v, 0), *y = cJSON_GetArrayItem(v, 1);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(x) || !cJSON_IsNumber(y) ||
        x->valuedouble != floor(x->valuedouble) || y->valuedouble != floor(y->valuedouble) ||
        x->valuedouble < (double)lo || x->valuedouble > (double)hi || y->valuedouble < (double)lo ||
        y->valuedouble > (double)hi)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.%s must be a list of two integers in [%lld, %lld]", path,
                           CF_KEY_LAYOUT, where, key, lo, hi);
    *a = (int)x->valuedouble;
    *b = (int)y->valuedouble;
    return FIPSC_OK;
}

static fipsc_status parse_matrix(const char *path, const char *where, const cJSON *o, const rd_group *g,
                                 rd_matrix *mt, fipsc_error *err)
{
    if (!cJSON_IsObject(o)) return LAYOUT_FAIL("%s: __metadata__ %s: %s must be an object", path, CF_KEY_LAYOUT, where);
    const char *weight = NULL, *role = NULL, *orientation = NULL;
    long long layer, f, nnz;
    fipsc_status st;
    if ((st = get_str(path, where, o, "weight", &weight, err)) ||
        (st = get_int(path, where, o, "layer", g->first, g->last, &layer, err)) ||
        (st = get_str(path, where, o, "role", &role, err)) ||
        (st = get_str(path, where, o, "orientation", &orientation, err)) ||
        (st = get_int(path, where, o, "f", 1, 1 << 30, &f, err)) ||
        (st = get_pair(path, where, o, "weight_shape", 1, 1 << 30, &mt->out, &mt->in, err)) ||
        (st = get_int(path, where, o, "nnz", 0, (long long)g->r * f, &nnz, err)))
        return st;
    if (!weight[0] || strlen(weight) >= MAX_NAME - 32)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.weight must be a tensor name of 1 to %d bytes", path,
                           CF_KEY_LAYOUT, where, MAX_NAME - 33);
    snprintf(mt->weight, sizeof mt->weight, "%s", weight);
    mt->layer = (int)layer;
    mt->f = (int)f;
    mt->nnz = nnz;
    if (!fipsc_mlp_role_parse(role, &mt->role))
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.role is '%s', expected gate, up or down", path, CF_KEY_LAYOUT,
                           where, role);
    mt->expanding = mt->role != FIPSC_ROLE_DOWN;
    const char *want = mt->expanding ? "expanding" : "contracting";
    if (strcmp(orientation, want) != 0)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.orientation is '%s' but a %s matrix is %s", path,
                           CF_KEY_LAYOUT, where, orientation, role, want);
    int want_out = mt->expanding ? mt->f : g->d, want_in = mt->expanding ? g->d : mt->f;
    if (mt->out != want_out || mt->in != want_in)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.weight_shape is [%d, %d] but a %s matrix with d %d and f %d "
                           "is [%d, %d]",
                           path, CF_KEY_LAYOUT, where, mt->out, mt->in, want, g->d, mt->f, want_out, want_in);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "sparsity");
    double expect = 1.0 - (double)nnz / ((double)g->r * (double)f);
    if (!cJSON_IsNumber(sp) || fabs(sp->valuedouble - expect) > 1e-6)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.sparsity must be 1 - nnz/(rank·f) = %.9g", path,
                           CF_KEY_LAYOUT, where, expect);
    mt->sparsity = sp->valuedouble;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source_dtype");
    mt->source_dtype = FIPSC_F32;
    if (src && !(cJSON_IsString(src) && fipsc_dtype_parse(src->valuestring, &mt->source_dtype) &&
                 (mt->source_dtype == FIPSC_F16 || mt->source_dtype == FIPSC_BF16)))
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.source_dtype must be \"F16\" or \"BF16\" (absent: F32)", path,
                           CF_KEY_LAYOUT, where);
    /* the stored-entry count each storage implies */
    if (g->storage == FIPSC_V_DENSE && nnz != (long long)g->r * f)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.nnz is %lld but dense storage holds rank·f = %lld", path,
                           CF_KEY_LAYOUT, where, nnz, (long long)g->r * f);
    if (g->storage == FIPSC_V_NM && nnz != (long long)f * (g->r / g->nm_m) * g->nm_n)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.nnz is %lld but %d:%d storage holds f·(rank/m)·n = %lld", path,
                           CF_KEY_LAYOUT, where, nnz, g->nm_n, g->nm_m, (long long)f * (g->r / g->nm_m) * g->nm_n);
    if (g->storage == FIPSC_V_CSC && nnz > (long long)UINT32_MAX)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.nnz %lld exceeds 32-bit column pointers", path, CF_KEY_LAYOUT,
                           where, nnz);
    return FIPSC_OK;
}

static fipsc_status parse_group(const char *path, int gi, const cJSON *o, rd_group *g, fipsc_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "groups[%d]", gi);
    if (!cJSON_IsObject(o)) return LAYOUT_FAIL("%s: __metadata__ %s: %s must be an object", path, CF_KEY_LAYOUT, where);
    long long first, last, d, r;
    const char *basis = NULL, *method = NULL, *storage = NULL;
    fipsc_status st;
    if ((st = get_int(path, where, o, "first_layer", 0, 1 << 20, &first, err)) ||
        (st = get_int(path, where, o, "last_layer", first, 1 << 20, &last, err)) ||
        (st = get_int(path, where, o, "d", 1, 1 << 24, &d, err)) ||
        (st = get_int(path, where, o, "rank", 1, 1 << 24, &r, err)) ||
        (st = get_str(path, where, o, "basis", &basis, err)) ||
        (st = get_str(path, where, o, "method", &method, err)) ||
        (st = get_str(path, where, o, "storage", &storage, err)))
        return st;
    g->first = (int)first, g->last = (int)last, g->d = (int)d, g->r = (int)r;
    if (strcmp(basis, "dense") == 0) {
        g->identity = false;
        const char *dt = NULL;
        if ((st = get_str(path, where, o, "u_dtype", &dt, err))) return st;
        if (!fipsc_dtype_parse(dt, &g->u_dtype) ||
            (g->u_dtype != FIPSC_F32 && g->u_dtype != FIPSC_F16 && g->u_dtype != FIPSC_BF16))
            return LAYOUT_FAIL("%s: __metadata__ %s: %s.u_dtype is '%s', expected F32, F16 or BF16", path,
                               CF_KEY_LAYOUT, where, dt);
    } else if (strcmp(basis, "identity") == 0) {
        g->identity = true;
        if (g->r != g->d)
            return LAYOUT_FAIL("%s: __metadata__ %s: %s has an identity basis but rank %d != d %d", path,
                               CF_KEY_LAYOUT, where, g->r, g->d);
    } else {
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.basis is '%s', expected dense or identity", path, CF_KEY_LAYOUT,
                           where, basis);
    }
    if (!method[0] || strlen(method) >= sizeof g->method)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.method must be 1 to %zu bytes", path, CF_KEY_LAYOUT, where,
                           sizeof g->method - 1);
    snprintf(g->method, sizeof g->method, "%s", method);
    if (!fipsc_v_storage_parse(storage, &g->storage))
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.storage is '%s', expected csc, nm or dense", path, CF_KEY_LAYOUT,
                           where, storage);
    if (g->storage == FIPSC_V_NM) {
        if ((st = get_pair(path, where, o, "nm", 1, 255, &g->nm_n, &g->nm_m, err))) return st;
        if (g->nm_n > g->nm_m || g->r % g->nm_m != 0)
            return LAYOUT_FAIL("%s: __metadata__ %s: %s.nm is %d:%d: need n <= m and m dividing rank %d", path,
                               CF_KEY_LAYOUT, where, g->nm_n, g->nm_m, g->r);
    }
    const cJSON *mats = cJSON_GetObjectItemCaseSensitive(o, "matrices");
    if (!cJSON_IsArray(mats) || cJSON_GetArraySize(mats) < 1)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.matrices must be a non-empty list", path, CF_KEY_LAYOUT, where);
    g->n_mats = cJSON_GetArraySize(mats);
    if (!(g->mats = calloc((size_t)g->n_mats, sizeof *g->mats)))
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    int i = 0;
    const cJSON *mo;
    cJSON_ArrayForEach(mo, mats)
    {
        char mwhere[96];
        snprintf(mwhere, sizeof mwhere, "%s.matrices[%d]", where, i);
        if ((st = parse_matrix(path, mwhere, mo, g, &g->mats[i], err))) return st;
        for (int k = 0; k < i; k++)
            if (g->mats[k].layer == g->mats[i].layer && g->mats[k].role == g->mats[i].role)
                return LAYOUT_FAIL("%s: __metadata__ %s: %s: block %d's %s matrix is listed twice", path,
                                   CF_KEY_LAYOUT, mwhere, g->mats[i].layer, fipsc_mlp_role_name(g->mats[i].role));
        i++;
    }
    return FIPSC_OK;
}

static fipsc_status parse_layout(const char *path, const char *text, fipsc_family_lookup find, rd_layout *l,
                                 fipsc_error *err)
{
    cJSON *root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return LAYOUT_FAIL("%s: __metadata__ %s is not a JSON object", path, CF_KEY_LAYOUT);
    }
    fipsc_status st = FIPSC_OK;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architecture");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(root, "groups");
    if (!cJSON_IsString(arch)) {
        st = LAYOUT_FAIL("%s: __metadata__ %s: architecture must be a string", path, CF_KEY_LAYOUT);
    } else if (!(l->family = find(arch->valuestring))) {
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: compressed %s models are not supported by this fipsc",
                        path, arch->valuestring);
    } else if (!cJSON_IsArray(groups)) {
        st = LAYOUT_FAIL("%s: __metadata__ %s: groups must be a list", path, CF_KEY_LAYOUT);
    } else {
        l->n_groups = cJSON_GetArraySize(groups);
        if (l->n_groups && !(l->groups = calloc((size_t)l->n_groups, sizeof *l->groups))) {
            l->n_groups = 0;
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
        }
        int gi = 0;
        const cJSON *go;
        cJSON_ArrayForEach(go, groups)
        {
            if (st) break;
            st = parse_group(path, gi, go, &l->groups[gi], err);
            for (int k = 0; !st && k < gi; k++) {
                const rd_group *a = &l->groups[k], *b = &l->groups[gi];
                if (a->first <= b->last && b->first <= a->last)
                    st = LAYOUT_FAIL("%s: __metadata__ %s: groups[%d] (layers %d-%d) overlaps groups[%d] (%d-%d)",
                                     path, CF_KEY_LAYOUT, gi, b->first, b->last, k, a->first, a->last);
                for (int i = 0; !st && i < a->n_mats; i++)
                    for (int j = 0; !st && j < b->n_mats; j++)
                        if (strcmp(a->mats[i].weight, b->mats[j].weight) == 0)
                            st = LAYOUT_FAIL("%s: __metadata__ %s: weight '%s' is in groups[%d] and groups[%d]", path,
                                             CF_KEY_LAYOUT, a->mats[i].weight, k, gi);
            }
            gi++;
        }
    }
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------------ tensors */

/* Whether a file tensor is one the layout names (a U or a V array). */
static bool is_layout_tensor(const rd_layout *l, const char *name)
{
    char buf[MAX_NAME + 64];
    for (int g = 0; g < l->n_groups; g++) {
        const rd_group *gr = &l->groups[g];
        cf_u_name(buf, sizeof buf, g);
        if (!gr->identity && strcmp(buf, name) == 0) return true;
        for (int i = 0; i < gr->n_mats; i++) {
            const char *w = gr->mats[i].weight;
            static const char *const csc[] = {CF_CSC_VALUES, CF_CSC_ROWS, CF_CSC_COLPTR};
            static const char *const nm[] = {CF_NM_VALUES, CF_NM_INDICES};
            static const char *const dense[] = {CF_DENSE};
            const char *const *sfx = gr->storage == FIPSC_V_CSC ? csc : gr->storage == FIPSC_V_NM ? nm : dense;
            int n = gr->storage == FIPSC_V_CSC ? 3 : gr->storage == FIPSC_V_NM ? 2 : 1;
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
        fipsc_status st = fipsc_model_ingest(m, t, FIPSC_ERR_FORMAT, false, err);
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
    char name[MAX_NAME + 64];
    const fipsc_st_tensor *tv, *ti, *tp;
    fipsc_status st;
    if (g->storage == FIPSC_V_DENSE) {
        int64_t shape[2] = {g->r, mt->f};
        cf_v_name(name, sizeof name, mt->weight, CF_DENSE);
        if ((st = need(f, path, name, FIPSC_F32, 2, shape, &tv, err))) return st;
    } else if (g->storage == FIPSC_V_NM) {
        int64_t shape[3] = {mt->f, g->r / g->nm_m, g->nm_n};
        cf_v_name(name, sizeof name, mt->weight, CF_NM_VALUES);
        if ((st = need(f, path, name, FIPSC_F32, 3, shape, &tv, err))) return st;
        cf_v_name(name, sizeof name, mt->weight, CF_NM_INDICES);
        if ((st = need(f, path, name, FIPSC_U8, 3, shape, &ti, err))) return st;
        if (!(v->nm_idx = malloc((size_t)(mt->nnz ? mt->nnz : 1))))
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
        memcpy(v->nm_idx, ti->data, (size_t)mt->nnz);
    } else {
        int64_t nnz = mt->nnz, ptrs = (int64_t)mt->f + 1;
        cf_v_name(name, sizeof name, mt->weight, CF_CSC_VALUES);
        if ((st = need(f, path, name, FIPSC_F32, 1, &nnz, &tv, err))) return st;
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
        g->nm_n = rg->nm_n;
        g->nm_m = rg->nm_m;
        snprintf(g->method, sizeof g->method, "%s", rg->method);
        if (!rg->identity) {
            char name[64];
            cf_u_name(name, sizeof name, gi);
            int64_t shape[2] = {rg->d, rg->r};
            const fipsc_st_tensor *tu;
            st = need(f, path, name, rg->u_dtype, 2, shape, &tu, err);
            if (!st) st = fipsc_st_to_f32(tu, &g->U, err);
            int64_t bad = st ? -1 : fipsc_first_nonfinite(g->U, (size_t)rg->d * (size_t)rg->r);
            if (!st && bad >= 0)
                st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at flat index %lld",
                                path, name, (long long)bad);
            if (st) {
                free(g->U);
                free(g);
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
            char that[MAX_NAME + 16] = "";
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
static fipsc_status check_version(const fipsc_st_file *f, const char *path, fipsc_error *err)
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
    const char *marker = fipsc_st_meta(f, CF_KEY_FORMAT), *layout_text = fipsc_st_meta(f, CF_KEY_LAYOUT);
    const char *config = fipsc_st_meta(f, CF_KEY_CONFIG);
    char origin[4200];
    snprintf(origin, sizeof origin, "%s (__metadata__ \"%s\")", path, CF_KEY_CONFIG);
    if (!marker || strcmp(marker, CF_FORMAT_VALUE) != 0)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a fipsc compressed file (__metadata__ \"%s\" is not \"%s\")",
                        path, CF_KEY_FORMAT, CF_FORMAT_VALUE);
    else if (!(st = check_version(f, path, err)) && !layout_text)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: __metadata__ has no \"%s\"", path, CF_KEY_LAYOUT);
    else if (!st && !config)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: __metadata__ has no \"%s\" (the model configuration)", path,
                        CF_KEY_CONFIG);
    if (!st) st = parse_layout(path, layout_text, find, &layout, err);
    if (!st) st = layout.family->config_from_json(m, config, origin, err);
    if (!st) st = add_plain_tensors(m, f, &layout, path, err);
    if (!st) st = read_groups(m, f, path, &layout, err);
    if (!st && (st = layout.family->bind(m, err))) fipsc_fail_context(err, "%s: ", path);
    if (!st) st = check_bound(m, path, &layout, err);
    layout_free(&layout);
    if (st) {
        fipsc_model_free(m);
        return st;
    }
    *out = m;
    return FIPSC_OK;
}
