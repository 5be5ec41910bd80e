/* The compressed file's layout JSON, parsed and validated (see compressed_layout.h). */
#include "model/compressed_layout.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/compressed_format.h"

void cf_layout_free(rd_layout *l)
{
    for (int g = 0; g < l->n_groups; g++) free(l->groups[g].mats);
    free(l->groups);
    l->groups = NULL;
    l->n_groups = 0;
}

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
    if (!weight[0] || strlen(weight) >= CF_MAX_NAME - 32)
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.weight must be a tensor name of 1 to %d bytes", path,
                           CF_KEY_LAYOUT, where, CF_MAX_NAME - 33);
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
    if ((g->storage == FIPSC_V_CSC || g->storage == FIPSC_V_BITMAP) && nnz > (long long)UINT32_MAX)
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
            !fipsc_dtype_is_float(g->u_dtype))
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
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.storage is '%s', expected csc, nm, dense or bitmap", path,
                           CF_KEY_LAYOUT, where, storage);
    const cJSON *vdt = cJSON_GetObjectItemCaseSensitive(o, "v_dtype");
    g->v_dtype = FIPSC_F32;
    if (vdt && !(cJSON_IsString(vdt) && fipsc_dtype_parse(vdt->valuestring, &g->v_dtype) &&
                 fipsc_dtype_is_float(g->v_dtype)))
        return LAYOUT_FAIL("%s: __metadata__ %s: %s.v_dtype must be \"F32\", \"F16\" or \"BF16\" (absent: F32)", path,
                           CF_KEY_LAYOUT, where);
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

fipsc_status cf_layout_parse(const char *path, const char *text, fipsc_family_lookup find, rd_layout *l,
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

/* A version 1 writer could not have meant them. */
fipsc_status cf_layout_check_version(const rd_layout *l, long version, const char *path, fipsc_error *err)
{
    for (int g = 0; g < l->n_groups && version < 2; g++)
        if (l->groups[g].storage == FIPSC_V_BITMAP || l->groups[g].v_dtype != FIPSC_F32)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: __metadata__ %s: groups[%d] uses %s, which needs format "
                              "version 2 (the file says %ld)", path, CF_KEY_LAYOUT, g,
                              l->groups[g].storage == FIPSC_V_BITMAP ? "bitmap storage" : "16-bit V values", version);
    return FIPSC_OK;
}
