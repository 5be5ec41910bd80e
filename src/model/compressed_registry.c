/* The model's registry of FiPS-compressed groups and factored linears (src/ops/factored.h).
 *
 * Created on first use and handed to the model as a resource, so fipsc_model_free releases it
 * without knowing about compression. Lookups by weight name are linear scans: a model has at
 * most a few hundred MLP matrices and lookups happen at bind time. */
#include <stdlib.h>
#include <string.h>

#include "model/compressed.h"

struct fipsc_compressed_registry {
    fipsc_compressed_group **groups;
    int n_groups, cap_groups;
    fipsc_factored_linear **linears;
    int n_linears, cap_linears;
};

static void registry_clear(struct fipsc_compressed_registry *r)
{
    for (int i = 0; i < r->n_linears; i++) fipsc_factored_free(r->linears[i]);
    for (int i = 0; i < r->n_groups; i++) fipsc_group_free(r->groups[i]);
    free(r->linears);
    free(r->groups);
    memset(r, 0, sizeof *r);
}

static void registry_release(void *p)
{
    registry_clear(p);
    free(p);
}

static fipsc_status registry_of(fipsc_model *m, struct fipsc_compressed_registry **out,
                                fipsc_error *err)
{
    if (!m->compressed) {
        struct fipsc_compressed_registry *r = calloc(1, sizeof *r);
        if (!r) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the compressed-group registry");
        fipsc_status st = fipsc_model_keep(m, r, registry_release, err);
        if (st) return st; /* released r */
        m->compressed = r;
    }
    *out = m->compressed;
    return FIPSC_OK;
}

/* The array `items` of n elements, grown to hold one more: the same or a new pointer, NULL when
 * out of memory (items untouched then). */
static void *grow(void *items, int n, int *cap, size_t elem)
{
    if (n < *cap) return items;
    int want = *cap ? 2 * *cap : 16;
    void *grown = realloc(items, (size_t)want * elem);
    if (grown) *cap = want;
    return grown;
}

int fipsc_model_group_count(const fipsc_model *m)
{
    return m->compressed ? m->compressed->n_groups : 0;
}

const fipsc_compressed_group *fipsc_model_group(const fipsc_model *m, int i)
{
    return m->compressed && i >= 0 && i < m->compressed->n_groups ? m->compressed->groups[i] : NULL;
}

int fipsc_model_factored_count(const fipsc_model *m)
{
    return m->compressed ? m->compressed->n_linears : 0;
}

const fipsc_factored_linear *fipsc_model_factored_at(const fipsc_model *m, int i)
{
    return m->compressed && i >= 0 && i < m->compressed->n_linears ? m->compressed->linears[i] : NULL;
}

const struct fipsc_factored_linear *fipsc_model_factored(const fipsc_model *m, const char *name)
{
    for (int i = 0; i < fipsc_model_factored_count(m); i++)
        if (strcmp(m->compressed->linears[i]->weight_name, name) == 0) return m->compressed->linears[i];
    return NULL;
}

fipsc_status fipsc_model_register_group(fipsc_model *m, fipsc_compressed_group *g, fipsc_error *err)
{
    struct fipsc_compressed_registry *r = NULL;
    fipsc_status st = registry_of(m, &r, err);
    fipsc_compressed_group **groups = st ? NULL : grow(r->groups, r->n_groups, &r->cap_groups, sizeof *groups);
    if (!st && !groups) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory registering a compressed group");
    if (st) {
        fipsc_group_free(g);
        return st;
    }
    r->groups = groups;
    r->groups[r->n_groups++] = g;
    return FIPSC_OK;
}

fipsc_status fipsc_model_register_factored(fipsc_model *m, fipsc_factored_linear *fl, fipsc_error *err)
{
    struct fipsc_compressed_registry *r = NULL;
    fipsc_status st = registry_of(m, &r, err);
    if (!st && fipsc_model_factored(m, fl->weight_name))
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "'%s' is compressed twice", fl->weight_name);
    fipsc_factored_linear **linears = st ? NULL : grow(r->linears, r->n_linears, &r->cap_linears, sizeof *linears);
    if (!st && !linears) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory registering '%s'", fl->weight_name);
    if (st) {
        fipsc_factored_free(fl);
        return st;
    }
    r->linears = linears;
    r->linears[r->n_linears++] = fl;
    return FIPSC_OK;
}

void fipsc_model_clear_compressed(fipsc_model *m)
{
    if (m->compressed) registry_clear(m->compressed);
}

long long fipsc_model_factored_params(const fipsc_model *m)
{
    long long n = 0;
    for (int i = 0; i < fipsc_model_group_count(m); i++) {
        const fipsc_compressed_group *g = m->compressed->groups[i];
        if (fipsc_group_has_basis(g)) n += (long long)g->d * g->r;
    }
    for (int i = 0; i < fipsc_model_factored_count(m); i++) n += m->compressed->linears[i]->nnz;
    return n;
}

fipsc_linear *fipsc_model_mlp_slot(fipsc_model *m, int layer, fipsc_mlp_role role)
{
    if (layer < 0 || layer >= m->n_mlps || !m->mlps || !m->mlps[layer]) return NULL;
    return fipsc_mlp_slot(m->mlps[layer], role);
}
