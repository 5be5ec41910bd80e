/* Phi-3's fused projections (see families/llama/fused.h). A fused weight is its parts stacked by
 * rows: qkv_proj [q_dim + 2·kv_dim, dim] = q_proj; k_proj; v_proj, and gate_up_proj [2·f, dim] =
 * gate_proj; up_proj (transformers' Phi3MLP chunks it in that order; llama.cpp's SWIGLU on its
 * fused ffn_up takes the first half as the gate). Row blocks are contiguous in row-major storage,
 * so splitting and fusing are plain copies. */
#include "families/llama/fused.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fused weights of block l and the parts each stacks, with their row counts. */
typedef struct fused_kind {
    const char *fused;
    const char *parts[3];
    int n_parts;
} fused_kind;

static const fused_kind kinds[] = {
    {"self_attn.qkv_proj.weight", {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}, 3},
    {"mlp.gate_up_proj.weight", {"mlp.gate_proj.weight", "mlp.up_proj.weight", NULL}, 2},
};

static void part_rows(const fipsc_config *c, int kind, int64_t *rows)
{
    if (kind == 0) {
        rows[0] = (int64_t)c->n_heads * c->head_dim;
        rows[1] = rows[2] = (int64_t)c->n_kv_heads * c->head_dim;
    } else {
        rows[0] = rows[1] = c->hidden_dim;
    }
}

fipsc_status fipsc_llama_split_fused(fipsc_model *m, fipsc_error *err)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    char name[160];
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "model.layers.%d.%s", l, kinds[k].fused);
            const fipsc_tensor *t = fipsc_model_find(m, name);
            if (!t) return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "missing tensor '%s'", name);
            int64_t rows[3], total = 0;
            part_rows(c, k, rows);
            for (int p = 0; p < kinds[k].n_parts; p++) total += rows[p];
            if (t->ndim != 2 || t->shape[0] != total || t->shape[1] != c->dim)
                return fipsc_fail(err, FIPSC_ERR_SHAPE, "tensor '%s' is not [%lld, %d]", name, (long long)total, c->dim);
            fipsc_dtype dt = t->source_dtype;
            const float *src;
            const int64_t fused_shape[2] = {total, c->dim};
            fipsc_status st = fipsc_model_require(m, name, 2, fused_shape, &src, err); /* float32 */
            if (st) return st;
            for (int p = 0; p < kinds[k].n_parts; p++) {
                float *part = malloc((size_t)(rows[p] * c->dim) * sizeof *part);
                if (!part) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory splitting '%s'", name);
                memcpy(part, src, (size_t)(rows[p] * c->dim) * sizeof *part);
                src += rows[p] * c->dim;
                char part_name[160];
                snprintf(part_name, sizeof part_name, "model.layers.%d.%s", l, kinds[k].parts[p]);
                int64_t shape[2] = {rows[p], c->dim};
                if ((st = fipsc_model_add_tensor(m, part_name, 2, shape, part, true, dt, err))) return st;
            }
            if ((st = fipsc_model_remove_tensor(m, name, err))) return st;
        }
    return FIPSC_OK;
}

fipsc_status fipsc_llama_fused_copy(const fipsc_model *m, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    const fipsc_llama *v = fipsc_model_llama(m);
    const fipsc_config *c = &v->cfg;
    fipsc_model *f = fipsc_model_new();
    if (!f) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    fipsc_status st = fipsc_llama_configure(f, c, err);
    if (!st) st = fipsc_model_set_source_path(f, m->source_path, err);
    /* every tensor that is no part of a fused weight, borrowed */
    for (int i = 0; i < m->n_tensors && !st; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        bool part = false;
        for (int k = 0; k < 2; k++)
            for (int p = 0; p < kinds[k].n_parts; p++) {
                const char *suffix = kinds[k].parts[p];
                size_t n = strlen(t->name), s = strlen(suffix);
                part = part || (n > s && strcmp(t->name + n - s, suffix) == 0);
            }
        if (part) continue;
        st = t->half ? fipsc_model_add_tensor16(f, t->name, t->ndim, t->shape, t->half, false, t->source_dtype, err)
                     : fipsc_model_add_tensor(f, t->name, t->ndim, t->shape, t->data, false, t->source_dtype, err);
    }
    for (int l = 0; l < c->n_layers && !st; l++)
        for (int k = 0; k < 2 && !st; k++) {
            int64_t rows[3], total = 0;
            part_rows(c, k, rows);
            for (int p = 0; p < kinds[k].n_parts; p++) total += rows[p];
            float *fused = malloc((size_t)(total * c->dim) * sizeof *fused);
            if (!fused) {
                st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory fusing block %d", l);
                break;
            }
            float *dst = fused;
            fipsc_dtype dt = FIPSC_F32;
            char name[160];
            for (int p = 0; p < kinds[k].n_parts && !st; p++) {
                snprintf(name, sizeof name, "model.layers.%d.%s", l, kinds[k].parts[p]);
                const float *data = NULL;
                const int64_t shape[2] = {rows[p], c->dim};
                st = fipsc_model_require(m, name, 2, shape, &data, err);
                if (!st) {
                    memcpy(dst, data, (size_t)(rows[p] * c->dim) * sizeof *dst);
                    dst += rows[p] * c->dim;
                    dt = fipsc_model_find(m, name)->source_dtype;
                }
            }
            snprintf(name, sizeof name, "model.layers.%d.%s", l, kinds[k].fused);
            const int64_t shape[2] = {total, c->dim};
            if (st) free(fused);
            else st = fipsc_model_add_tensor(f, name, 2, shape, fused, true, dt, err);
        }
    if (st) {
        fipsc_model_free(f);
        return st;
    }
    *out = f;
    return FIPSC_OK;
}
