/* What a path holds, as one JSON document: `fipsc inspect` and fipsc_describe (include/fipsc.h).
 *
 *   path, format, architecture (the family's description, or null with a note), parameter counts
 *   split MLP / attention / embeddings / other, the compression of a compressed model, metadata of
 *   every safetensors file, and every tensor with its stored dtype, shape and byte size.
 * A .safetensors file or a directory without a configuration a family claims is still listed
 * (tensors, metadata, counts by tensor name); a checkpoint a family claims must load. */
#include "api/describe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "families/registry.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/compressed.h"
#include "model/family.h"
#include "ops/factored.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* cJSON numbers are doubles: exact for every count below 2^53. */
static cJSON *tensor_entry(const char *name, fipsc_dtype dtype, int ndim, const int64_t *shape)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "dtype", fipsc_dtype_name(dtype));
    cJSON *dims = cJSON_AddArrayToObject(t, "shape");
    for (int i = 0; i < ndim; i++) cJSON_AddItemToArray(dims, cJSON_CreateNumber((double)shape[i]));
    cJSON_AddNumberToObject(t, "bytes", (double)fipsc_shape_numel(ndim, shape) * (double)fipsc_dtype_size(dtype));
    return t;
}

/* A GGUF tensor as the file stores it: its GGUF name and type, extents outermost first ([out, in]
 * for a weight, like the other formats' listings) and its bytes in the file. */
static cJSON *gguf_tensor_entry(const fipsc_gguf_tensor *g)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", g->name);
    cJSON_AddStringToObject(t, "dtype", fipsc_ggml_type_name(g->type));
    cJSON *dims = cJSON_AddArrayToObject(t, "shape");
    for (int i = g->n_dims - 1; i >= 0; i--) cJSON_AddItemToArray(dims, cJSON_CreateNumber((double)g->ne[i]));
    cJSON_AddNumberToObject(t, "bytes", (double)g->nbytes);
    return t;
}

static cJSON *params_entry(const fipsc_param_counts *pc)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "mlp", (double)pc->mlp);
    cJSON_AddNumberToObject(p, "attention", (double)pc->attention);
    cJSON_AddNumberToObject(p, "embeddings", (double)pc->embeddings);
    cJSON_AddNumberToObject(p, "other", (double)pc->other);
    cJSON_AddNumberToObject(p, "total", (double)pc->total);
    return p;
}

static cJSON *pair(int a, int b)
{
    int v[2] = {a, b};
    return cJSON_CreateIntArray(v, 2);
}

/* A FiPS-compressed model: its groups, every compressed matrix, and the MLP parameters and bytes
 * against the dense original (src/model/compressed.h). NULL when nothing is compressed. */
static cJSON *compression_entry(const fipsc_model *m)
{
    if (fipsc_model_group_count(m) == 0) return NULL;
    cJSON *c = cJSON_CreateObject();
    fipsc_mlp_footprint fp = fipsc_model_mlp_footprint(m);
    cJSON *f = cJSON_AddObjectToObject(c, "footprint");
    cJSON_AddNumberToObject(f, "dense_params", (double)fp.dense_params);
    cJSON_AddNumberToObject(f, "kept_params", (double)fp.kept_params);
    cJSON_AddNumberToObject(f, "dense_bytes", (double)fp.dense_bytes);
    cJSON_AddNumberToObject(f, "stored_bytes", (double)fp.stored_bytes);
    cJSON *groups = cJSON_AddArrayToObject(c, "groups");
    for (int gi = 0; gi < fipsc_model_group_count(m); gi++) {
        const fipsc_compressed_group *g = fipsc_model_group(m, gi);
        cJSON *go = cJSON_CreateObject();
        cJSON_AddNumberToObject(go, "first_layer", g->first_layer);
        cJSON_AddNumberToObject(go, "last_layer", g->last_layer);
        cJSON_AddNumberToObject(go, "d", g->d);
        cJSON_AddNumberToObject(go, "rank", g->r);
        cJSON_AddStringToObject(go, "basis", fipsc_group_has_basis(g) ? fipsc_dtype_name(g->u_dtype) : "identity");
        cJSON_AddStringToObject(go, "method", g->method);
        cJSON_AddStringToObject(go, "storage", fipsc_v_storage_name(g->storage));
        if (g->storage == FIPSC_V_NM) cJSON_AddItemToObject(go, "nm", pair(g->nm_n, g->nm_m));
        cJSON_AddStringToObject(go, "v_dtype", fipsc_dtype_name(g->v_dtype));
        cJSON *mats = cJSON_AddArrayToObject(go, "matrices");
        for (int i = 0; i < fipsc_model_factored_count(m); i++) {
            const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
            if (fl->group != g) continue;
            cJSON *mo = cJSON_CreateObject();
            cJSON_AddStringToObject(mo, "weight", fl->weight_name);
            cJSON_AddNumberToObject(mo, "layer", fl->layer);
            cJSON_AddStringToObject(mo, "role", fipsc_mlp_role_name(fl->role));
            cJSON_AddStringToObject(mo, "orientation", fl->expanding ? "expanding" : "contracting");
            cJSON_AddNumberToObject(mo, "f", fl->f);
            cJSON_AddNumberToObject(mo, "nnz", (double)fl->nnz);
            cJSON_AddNumberToObject(mo, "sparsity", 1.0 - (double)fl->nnz / ((double)fl->r * fl->f));
            cJSON_AddNumberToObject(mo, "bytes", (double)fipsc_factored_v_bytes(fl));
            /* what a kept entry costs (values, indices, pointers), and what a dense entry did */
            cJSON_AddNumberToObject(mo, "bytes_per_kept_entry",
                                    fl->nnz > 0 ? (double)fipsc_factored_v_bytes(fl) / (double)fl->nnz : 0.0);
            cJSON_AddStringToObject(mo, "source_dtype", fipsc_dtype_name(fl->source_dtype));
            cJSON_AddItemToArray(mats, mo);
        }
        cJSON_AddItemToArray(groups, go);
    }
    return c;
}

/* metadata: { "<file>": { key: value, ... }, ... } for every file of the set. */
static cJSON *metadata_entry(const fipsc_st_set *set)
{
    cJSON *md = cJSON_CreateObject();
    for (int s = 0; set && s < fipsc_st_set_shard_count(set); s++) {
        const fipsc_st_file *f = fipsc_st_set_shard(set, s);
        cJSON *entries = cJSON_AddObjectToObject(md, fipsc_st_path(f));
        for (int i = 0; i < fipsc_st_meta_count(f); i++)
            cJSON_AddStringToObject(entries, fipsc_st_meta_key(f, i), fipsc_st_meta_value(f, i));
    }
    return md;
}

/* metadata: { "<file>": { key: value as text } } for a GGUF file: scalars printed, strings as they
 * are (up to 200 bytes), arrays as their length and item type ("[512 x string]"). */
static cJSON *gguf_metadata_entry(const fipsc_gguf *g)
{
    static const char *const type_names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                             "string", "array", "u64", "i64", "f64"};
    cJSON *md = cJSON_CreateObject();
    cJSON *entries = cJSON_AddObjectToObject(md, g->origin);
    for (int64_t i = 0; i < g->n_kvs; i++) {
        const fipsc_gguf_kv *kv = &g->kvs[i];
        char text[256];
        switch (kv->type) {
        case FIPSC_GGUF_STRING:
            snprintf(text, sizeof text, "%.*s%s", (int)(kv->str.len > 200 ? 200 : kv->str.len), kv->str.ptr,
                     kv->str.len > 200 ? "..." : "");
            break;
        case FIPSC_GGUF_ARRAY:
            snprintf(text, sizeof text, "[%llu x %s]", (unsigned long long)kv->count, type_names[kv->item_type]);
            break;
        case FIPSC_GGUF_F32:
        case FIPSC_GGUF_F64: snprintf(text, sizeof text, "%g", kv->f); break;
        case FIPSC_GGUF_BOOL: snprintf(text, sizeof text, "%s", kv->u ? "true" : "false"); break;
        case FIPSC_GGUF_I8:
        case FIPSC_GGUF_I16:
        case FIPSC_GGUF_I32:
        case FIPSC_GGUF_I64: snprintf(text, sizeof text, "%lld", (long long)kv->i); break;
        default: snprintf(text, sizeof text, "%llu", (unsigned long long)kv->u); break;
        }
        cJSON_AddStringToObject(entries, kv->key, text);
    }
    return md;
}

fipsc_status fipsc_describe_doc(const char *path, cJSON **doc_out, char **arch_text, fipsc_error *err)
{
    *doc_out = NULL;
    *arch_text = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fipsc_model *m;
        return fipsc_model_load(path, &m, err); /* the loader words the error ("PATH: No such file ...") */
    }
    bool is_dir = S_ISDIR(sb.st_mode), is_st = !is_dir && ends_with(path, ".safetensors");
    bool compressed = is_st && fipsc_compressed_is_file(path);
    bool is_gguf = !is_dir && !is_st && fipsc_gguf_is_file(path);
    const char *format = is_dir       ? "huggingface-directory"
                         : compressed ? "fipsc-compressed"
                         : is_st      ? "safetensors"
                         : is_gguf    ? "gguf"
                                      : "llama2.c";

    /* safetensors sources: the files themselves, for metadata (and the listing when not a model) */
    fipsc_st_set *set = NULL;
    bool is_model = true;
    char note[FIPSC_ERROR_MESSAGE_MAX] = "";
    if (is_dir || is_st) {
        /* a compressed file is a model; otherwise a family must claim it. One that only might (a
         * configuration of an unknown architecture, or none) leaves a listing of the tensors. */
        fipsc_probe probe = FIPSC_PROBE_YES;
        fipsc_error why = {0};
        if (!compressed) fipsc_family_probe(path, &probe, &why);
        /* a model that is no safetensors set (a TF.js directory) has no metadata to show */
        fipsc_status st = fipsc_st_set_open(path, &set, err);
        if (st && (probe != FIPSC_PROBE_YES || !is_dir)) return st;
        fipsc_error_clear(err);
        if (is_dir && !set) format = "directory";
        if (probe != FIPSC_PROBE_YES) {
            if (probe == FIPSC_PROBE_MAYBE && why.code != FIPSC_ERR_NOT_FOUND && why.code != FIPSC_ERR_UNSUPPORTED) {
                fipsc_st_set_close(set);
                if (err) *err = why;
                return why.code;
            }
            is_model = false;
            snprintf(note, sizeof note, "%s", why.message[0] ? why.message : "no model configuration");
        }
    }
    fipsc_model *m = NULL;
    if (is_model) {
        /* Names, shapes and configuration are all a description needs: where the family can, no
         * weight is read (a 1B checkpoint is described in the time of reading its headers). */
        fipsc_status st = fipsc_model_load_shapes(path, &m, err);
        if (st) {
            fipsc_st_set_close(set);
            return st;
        }
    }

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "path", path);
    cJSON_AddStringToObject(doc, "format", format);
    cJSON *tensors = cJSON_CreateArray();
    fipsc_param_counts pc;
    if (m) {
        cJSON *arch = NULL;
        fipsc_status st = m->family->describe(m, &arch, arch_text, err);
        if (st) {
            fipsc_model_free(m);
            fipsc_st_set_close(set);
            cJSON_Delete(doc);
            cJSON_Delete(tensors);
            return st;
        }
        cJSON_AddItemToObject(doc, "architecture", arch);
        pc = fipsc_model_count_params(m);
        /* the tensors as the files store them (a compressed file's U and sparse V arrays, a
         * checkpoint's buffers, GPT-2's Conv1D weights as [in, out]); formats that are no
         * safetensors set (llama2.c, TF.js) as the model holds them; GGUF as the file stores
         * them (llama.cpp's names and types) */
        fipsc_gguf *gguf = NULL;
        if (is_gguf && fipsc_gguf_open(path, &gguf, NULL) == FIPSC_OK) {
            for (int64_t i = 0; i < gguf->n_tensors; i++) cJSON_AddItemToArray(tensors, gguf_tensor_entry(&gguf->tensors[i]));
            cJSON_AddItemToObject(doc, "metadata", gguf_metadata_entry(gguf));
        }
        fipsc_gguf_close(gguf);
        for (int i = 0; !set && !is_gguf && i < m->n_tensors; i++) {
            const fipsc_tensor *t = &m->tensors[i];
            cJSON_AddItemToArray(tensors, tensor_entry(t->name, t->source_dtype, t->ndim, t->shape));
        }
        for (int i = 0; set && i < fipsc_st_set_count(set); i++) {
            const fipsc_st_tensor *t = fipsc_st_set_at(set, i);
            cJSON_AddItemToArray(tensors, tensor_entry(t->name, t->dtype, t->ndim, t->shape));
        }
        cJSON *compression = compression_entry(m);
        if (compression) cJSON_AddItemToObject(doc, "compression", compression);
        fipsc_model_free(m);
    } else {
        cJSON_AddNullToObject(doc, "architecture");
        cJSON_AddStringToObject(doc, "note", note);
        /* Counts by tensor name: a model holding only the shapes (no data is ever read). */
        fipsc_model *shapes = fipsc_model_new();
        for (int i = 0; shapes && i < fipsc_st_set_count(set); i++) {
            const fipsc_st_tensor *t = fipsc_st_set_at(set, i);
            fipsc_model_add_tensor(shapes, t->name, t->ndim, t->shape, NULL, false, t->dtype, NULL);
            cJSON_AddItemToArray(tensors, tensor_entry(t->name, t->dtype, t->ndim, t->shape));
        }
        pc = shapes ? fipsc_model_count_params(shapes) : (fipsc_param_counts){0};
        fipsc_model_free(shapes);
    }
    cJSON_AddItemToObject(doc, "params", params_entry(&pc));
    if (!cJSON_GetObjectItem(doc, "metadata")) cJSON_AddItemToObject(doc, "metadata", metadata_entry(set));
    cJSON_AddItemToObject(doc, "tensors", tensors);
    fipsc_st_set_close(set);
    *doc_out = doc;
    return FIPSC_OK;
}

fipsc_status fipsc_describe(const char *path, char **json, fipsc_error *err)
{
    *json = NULL;
    cJSON *doc;
    char *arch_text;
    fipsc_status st = fipsc_describe_doc(path, &doc, &arch_text, err);
    if (st) return st;
    free(arch_text);
    *json = cJSON_Print(doc);
    cJSON_Delete(doc);
    return *json ? FIPSC_OK : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
}
