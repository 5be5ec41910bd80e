/* Writing a group's checkpoint file (src/compress/checkpoint.c has the design): per part U and
 * every V_i as F32 tensors, and as metadata the format and version, the group's inputs, its parts
 * (layers, shapes, storage) and report entry as JSON with exact numbers, and the hash of it all,
 * written atomically as soon as the group is measured. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/checkpoint_file.h"
#include "ops/factored.h"
#include "formats/safetensors.h"

/* ---- JSON helpers: exact numbers ---------------------------------------------------------- */

/* Finite doubles as "%.17g" (cJSON reads them back with strtod: the same bits), others as the
 * strings "nan", "inf", "-inf". */
static void put_num(cJSON *o, const char *key, double x)
{
    char buf[48];
    if (isfinite(x)) {
        snprintf(buf, sizeof buf, "%.17g", x);
        cJSON_AddRawToObject(o, key, buf);
    } else {
        cJSON_AddStringToObject(o, key, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
    }
}

static void put_int(cJSON *o, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    cJSON_AddRawToObject(o, key, buf);
}

/* ---- saving ------------------------------------------------------------------------------- */

static cJSON *parts_json(const compress_outcome *oc)
{
    cJSON *arr = cJSON_CreateArray();
    for (int q = 0; arr && q < oc->n_parts; q++) {
        const fipsc_group_spec *s = &oc->parts[q].spec;
        cJSON *p = cJSON_CreateObject();
        put_int(p, "first_layer", s->first_layer);
        put_int(p, "last_layer", s->last_layer);
        put_int(p, "d", s->d);
        put_int(p, "r", s->r);
        cJSON_AddBoolToObject(p, "basis", s->U != NULL);
        cJSON_AddStringToObject(p, "storage", fipsc_v_storage_name(s->storage));
        put_int(p, "nm_n", s->nm_n);
        put_int(p, "nm_m", s->nm_m);
        cJSON *mats = cJSON_AddArrayToObject(p, "matrices");
        for (int i = 0; i < s->n_matrices; i++) {
            cJSON *mx = cJSON_CreateObject();
            put_int(mx, "layer", s->matrices[i].layer);
            cJSON_AddStringToObject(mx, "role", fipsc_mlp_role_name(s->matrices[i].role));
            cJSON_AddItemToArray(mats, mx);
        }
        cJSON_AddItemToArray(arr, p);
    }
    return arr;
}

static cJSON *report_json(const fipsc_group_report *gr)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    const fipsc_group_plan *p = &gr->plan;
    cJSON *pj = cJSON_AddObjectToObject(j, "plan");
    put_int(pj, "first", p->blocks.first);
    put_int(pj, "last", p->blocks.last);
    put_int(pj, "d", p->d);
    put_int(pj, "P", p->P);
    put_int(pj, "n_matrices", p->n_matrices);
    put_int(pj, "r", p->r);
    put_num(pj, "sparsity", p->sparsity);
    cJSON_AddStringToObject(pj, "storage", fipsc_v_storage_name(p->storage));
    put_int(pj, "dense_params", p->dense_params);
    put_int(pj, "kept_params", p->kept_params);
    put_int(pj, "dense_bytes", p->dense_bytes);
    put_int(pj, "stored_bytes", p->stored_bytes);
    put_int(j, "nnz", gr->nnz);
    put_num(j, "sparsity", gr->sparsity);
    put_int(j, "kept_params", gr->kept_params);
    put_int(j, "stored_bytes", gr->stored_bytes);
    put_num(j, "final_loss", gr->final_loss);
    put_int(j, "steps", gr->steps);
    put_num(j, "lr", gr->lr);
    put_int(j, "retries", gr->retries);
    put_num(j, "score_init", gr->score_init);
    put_num(j, "score_trained", gr->score_trained);
    put_num(j, "score_kept", gr->score_kept);
    put_int(j, "kept_step", gr->kept_step);
    put_int(j, "sparse_steps", gr->sparse_steps);
    put_num(j, "seconds", gr->seconds);
    put_int(j, "peak_rss", gr->peak_rss);
    cJSON *mlps = cJSON_AddArrayToObject(j, "mlps");
    for (int i = 0; i < gr->n_mlps; i++) {
        cJSON *o = cJSON_CreateObject();
        put_int(o, "block", gr->mlps[i].block);
        put_int(o, "rows", gr->mlps[i].rows);
        put_int(o, "holdout_rows", gr->mlps[i].holdout_rows);
        put_num(o, "out_err_before", gr->mlps[i].out_err_before);
        put_num(o, "out_err_after", gr->mlps[i].out_err_after);
        put_num(o, "holdout_err_before", gr->mlps[i].holdout_err_before);
        put_num(o, "holdout_err_after", gr->mlps[i].holdout_err_after);
        cJSON_AddItemToArray(mlps, o);
    }
    cJSON *mats = cJSON_AddArrayToObject(j, "matrices");
    for (int i = 0; i < gr->n_matrices; i++) {
        const fipsc_matrix_report *m = &gr->matrices[i];
        cJSON *o = cJSON_CreateObject();
        put_int(o, "block", m->block);
        cJSON_AddStringToObject(o, "role", fipsc_mlp_role_name(m->role));
        put_int(o, "out", m->out);
        put_int(o, "in", m->in);
        put_int(o, "rank", m->rank);
        put_int(o, "dense_params", m->dense_params);
        put_int(o, "nnz", m->nnz);
        put_num(o, "weight_rel_err", m->weight_rel_err);
        cJSON_AddItemToArray(mats, o);
    }
    return j;
}

/* cJSON text as a malloc'ed string (NULL when out of memory). */
static char *print_json(cJSON *j)
{
    if (!j) return NULL;
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) return NULL;
    char *copy = strdup(text);
    cJSON_free(text);
    return copy;
}

fipsc_status compress_checkpoint_save(const fipsc_compress_checkpoint *ck, const fipsc_fips_group *g,
                                      const fipsc_fips_calib *calib, const fipsc_compress_options *o,
                                      const fipsc_group_plan *plan, int k, const compress_outcome *oc,
                                      const fipsc_group_report *gr, void **bytes, size_t *size, fipsc_error *err)
{
    char path[4096];
    if (!ck) snprintf(path, sizeof path, "(group %d)", k);
    fipsc_status pst = ck ? compress_checkpoint_path(ck->dir, k, path, sizeof path, err) : FIPSC_OK;
    if (pst) return pst;
    fipsc_st_writer *w = fipsc_st_writer_new();
    char *inputs = print_json(compress_checkpoint_inputs_json(g, calib, o, plan, k));
    char *parts = print_json(parts_json(oc));
    char *report = print_json(report_json(gr));
    fipsc_status st = FIPSC_OK;
    if (!w || !inputs || !parts || !report)
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory writing checkpoint %s", path);
    uint64_t h = CKPT_HASH_SEED;
    char name[64], hex[32];
    for (int q = 0; q < oc->n_parts && !st; q++) {
        const fipsc_group_spec *s = &oc->parts[q].spec;
        if (s->U) {
            int64_t shape[2] = {s->d, s->r};
            snprintf(name, sizeof name, "part%d.U", q);
            st = fipsc_st_writer_add(w, name, FIPSC_F32, 2, shape, s->U, err);
            h = compress_checkpoint_hash_bytes(h, s->U, (size_t)s->d * (size_t)s->r * sizeof(float));
        }
        for (int i = 0; i < s->n_matrices && !st; i++) {
            int cols = compress_checkpoint_matrix_cols(g, plan->blocks.first, s->matrices[i].layer, s->matrices[i].role);
            if (cols < 0) {
                st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "checkpoint %s: block %d %s is not in the group",
                                path, s->matrices[i].layer, fipsc_mlp_role_name(s->matrices[i].role));
                break;
            }
            int64_t shape[2] = {s->r, cols};
            snprintf(name, sizeof name, "part%d.V%d", q, i);
            st = fipsc_st_writer_add(w, name, FIPSC_F32, 2, shape, s->matrices[i].V, err);
            h = compress_checkpoint_hash_bytes(h, s->matrices[i].V, (size_t)s->r * (size_t)cols * sizeof(float));
        }
    }
    if (!st) h = compress_checkpoint_hash_metadata(h, inputs, parts, report);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    if (!st) st = fipsc_st_writer_set_meta(w, "fipsc_format", CKPT_FORMAT, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "fipsc_checkpoint_version", CKPT_VERSION, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "inputs", inputs, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "parts", parts, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "report", report, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "data_hash", hex, err);
    if (!st && ck) st = fipsc_st_writer_write(w, path, err);
    if (!st && bytes) st = fipsc_st_writer_write_memory(w, path, bytes, size, err);
    fipsc_st_writer_free(w);
    free(inputs);
    free(parts);
    free(report);
    if (st) return fipsc_fail_context(err, "saving the checkpoint of group %d: ", k);
    return FIPSC_OK;
}
