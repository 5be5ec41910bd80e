/* Reading and validating a group's checkpoint file (src/compress/checkpoint.c has the design):
 * its integrity first (structure, the hash of its tensors and metadata), then its inputs against
 * this run's, then its parts, each tensor checked against the group's shapes, and its report
 * entry. A damaged file is an error naming the file and what to do, never a silent
 * recomputation. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/checkpoint_file.h"
#include "ops/factored.h"
#include "formats/safetensors.h"

/* ---- JSON helpers: exact numbers, read back ----------------------------------------------- */

static bool get_num(const cJSON *o, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(it)) {
        *out = it->valuedouble;
        return true;
    }
    if (!cJSON_IsString(it)) return false;
    if (strcmp(it->valuestring, "nan") == 0) *out = NAN;
    else if (strcmp(it->valuestring, "inf") == 0) *out = INFINITY;
    else if (strcmp(it->valuestring, "-inf") == 0) *out = -INFINITY;
    else return false;
    return true;
}

/* An integer in [lo, hi] (exact: checkpoint integers stay far below 2^53). */
static bool get_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it)) return false;
    double v = it->valuedouble;
    if (!(v >= (double)lo && v <= (double)hi) || v != floor(v)) return false;
    *out = (int64_t)v;
    return true;
}

static bool get_i32(const cJSON *o, const char *key, int lo, int hi, int *out)
{
    int64_t v;
    if (!get_int(o, key, lo, hi, &v)) return false;
    *out = (int)v;
    return true;
}

/* ---- loading ------------------------------------------------------------------------------ */

void compress_saved_free_one(compress_saved *s)
{
    for (int q = 0; q < s->n_parts; q++) compress_part_free(&s->parts[q]);
    free(s->parts);
    free(s->report.mlps);
    free(s->report.matrices);
    memset(s, 0, sizeof *s);
}

void compress_saved_free(compress_saved *s, int n)
{
    if (!s) return;
    for (int k = 0; k < n; k++) compress_saved_free_one(&s[k]);
    free(s);
}

/* A damaged file: the reason, the file, and what to do (for an image in memory, named "<...>" by
 * compress_checkpoint_from_bytes, there is no file to delete). */
#define DAMAGED(...) damaged(err, path, k, __VA_ARGS__)
static fipsc_status damaged(fipsc_error *err, const char *path, int k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static fipsc_status damaged(fipsc_error *err, const char *path, int k, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (path[0] == '<') return fipsc_fail(err, FIPSC_ERR_FORMAT, "checkpoint image %s is damaged (%s)", path, why);
    return fipsc_fail(err, FIPSC_ERR_FORMAT,
                      "checkpoint %s is damaged (%s); delete it to recompute group %d", path, why, k);
}

/* Inputs a checkpoint may lack, and what their absence means: --sequential is recorded only when
 * set, and files older than --init, --adam-moments and --v-products do not record them (teacher
 * forcing, the SVD initialisation, float32 moments, dense products). */
static const char *const absent_means[][2] = {
    {"--sequential", "false"},
    {"--init", "svd"},
    {"--adam-moments", "f32"},
    {"--v-products", "dense"},
};

/* The stored value of input `key`: its text, the default its absence means, or NULL. */
static const char *stored_input(const cJSON *then, const char *key)
{
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(then, key);
    if (old) return cJSON_IsString(old) ? old->valuestring : NULL;
    for (size_t i = 0; i < sizeof absent_means / sizeof absent_means[0]; i++)
        if (strcmp(key, absent_means[i][0]) == 0) return absent_means[i][1];
    return NULL;
}

/* The stored inputs against this run's: every key of `now` must be in `then` with the same
 * value. */
static fipsc_status compare_inputs(const cJSON *then, const cJSON *now, const char *path,
                                   fipsc_error *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, now)
    {
        const char *old_text = stored_input(then, it->string);
        if (!old_text)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "checkpoint %s does not record '%s' (made by "
                              "another fipsc version?): start again with an empty --checkpoint-dir",
                              path, it->string);
        if (strcmp(old_text, it->valuestring) == 0) continue;
        const char *what = it->string;
        bool option = what[0] == '-';
        if (path[0] == '<') /* an image another rank sent: the ranks ran different commands */
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "the image %s was made with %s%s%s, rank 0 has %s%s%s: every rank must "
                              "run the same command on the same model",
                              path, what, option ? " " : ": ", old_text, what, option ? " " : ": ",
                              it->valuestring);
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "checkpoint %s was made with %s%s%s, this run has %s%s%s: resume with the "
                          "same model, calibration and options, or start again with an empty "
                          "--checkpoint-dir",
                          path, what, option ? " " : ": ", old_text, what, option ? " " : ": ",
                          it->valuestring);
    }
    return FIPSC_OK;
}

/* The hash of the tensors the parts name, in the order they were written; false when one is
 * missing or the file holds others. */
static bool data_hash(const fipsc_st_file *f, const cJSON *parts, uint64_t *out)
{
    if (!cJSON_IsArray(parts)) return false;
    uint64_t h = CKPT_HASH_SEED;
    int named = 0;
    char name[64];
    for (int q = 0; q < cJSON_GetArraySize(parts); q++) {
        const cJSON *pj = cJSON_GetArrayItem(parts, q);
        const cJSON *mats = cJSON_GetObjectItemCaseSensitive(pj, "matrices");
        if (!cJSON_IsArray(mats)) return false;
        const fipsc_st_tensor *t;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pj, "basis"))) {
            snprintf(name, sizeof name, "part%d.U", q);
            if (!(t = fipsc_st_find(f, name))) return false;
            h = compress_checkpoint_hash_bytes(h, t->data, t->nbytes);
            named++;
        }
        for (int i = 0; i < cJSON_GetArraySize(mats); i++) {
            snprintf(name, sizeof name, "part%d.V%d", q, i);
            if (!(t = fipsc_st_find(f, name))) return false;
            h = compress_checkpoint_hash_bytes(h, t->data, t->nbytes);
            named++;
        }
    }
    *out = h;
    return named == fipsc_st_count(f);
}

/* Reads the parts, each tensor checked against the group's shapes. */
static fipsc_status load_parts(const fipsc_st_file *f, const cJSON *parts, const fipsc_fips_group *g,
                               const fipsc_group_plan *plan, const fipsc_compress_options *o,
                               const char *path, int k, compress_saved *out, fipsc_error *err)
{
    int n = cJSON_GetArraySize(parts);
    if (!cJSON_IsArray(parts) || n < 1 || n > g->n_matrices) return DAMAGED("bad 'parts'");
    if (!(out->parts = calloc((size_t)n, sizeof *out->parts))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    out->n_parts = n;
    char name[64];
    fipsc_status st = FIPSC_OK;
    for (int q = 0; q < n && !st; q++) {
        const cJSON *pj = cJSON_GetArrayItem(parts, q);
        compress_part *p = &out->parts[q];
        fipsc_group_spec *s = &p->spec;
        const cJSON *mats = cJSON_GetObjectItemCaseSensitive(pj, "matrices");
        const cJSON *storage = cJSON_GetObjectItemCaseSensitive(pj, "storage");
        const cJSON *basis = cJSON_GetObjectItemCaseSensitive(pj, "basis");
        int nm = cJSON_GetArraySize(mats);
        if (!get_i32(pj, "first_layer", plan->blocks.first, plan->blocks.last, &s->first_layer) ||
            !get_i32(pj, "last_layer", s->first_layer, plan->blocks.last, &s->last_layer) ||
            !get_i32(pj, "d", g->d, g->d, &s->d) || !get_i32(pj, "r", 1, 1 << 30, &s->r) ||
            !get_i32(pj, "nm_n", 0, 255, &s->nm_n) || !get_i32(pj, "nm_m", 0, 255, &s->nm_m) ||
            !cJSON_IsString(storage) || !fipsc_v_storage_parse(storage->valuestring, &s->storage) ||
            !cJSON_IsBool(basis) || !cJSON_IsArray(mats) || nm < 1 || nm > g->n_matrices)
            return DAMAGED("bad part %d", q);
        if (!(p->matrices = calloc((size_t)nm, sizeof *p->matrices)) || !(p->V = calloc((size_t)nm, sizeof *p->V)))
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        s->n_matrices = nm;
        s->matrices = p->matrices;
        s->method = fipsc_compress_method_name(o->method);
        s->u_dtype = plan->u_dtype; /* the options that resolved them match the checkpoint's */
        s->v_dtype = plan->v_dtype;
        if (cJSON_IsTrue(basis)) {
            snprintf(name, sizeof name, "part%d.U", q);
            const fipsc_st_tensor *t = fipsc_st_find(f, name);
            if (!t || t->dtype != FIPSC_F32 || t->ndim != 2 || t->shape[0] != s->d || t->shape[1] != s->r)
                return DAMAGED("tensor %s is missing or not F32 [%d, %d]", name, s->d, s->r);
            if ((st = fipsc_st_to_f32(t, &p->U, err))) return st;
            s->U = p->U;
        } else if (s->r != s->d) {
            return DAMAGED("part %d has no basis but rank %d ≠ %d", q, s->r, s->d);
        }
        for (int i = 0; i < nm; i++) {
            const cJSON *mj = cJSON_GetArrayItem(mats, i);
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(mj, "role");
            fipsc_group_matrix *gm = &p->matrices[i];
            if (!get_i32(mj, "layer", s->first_layer, s->last_layer, &gm->layer) || !cJSON_IsString(role) ||
                !fipsc_mlp_role_parse(role->valuestring, &gm->role))
                return DAMAGED("bad matrix %d of part %d", i, q);
            int cols = compress_checkpoint_matrix_cols(g, plan->blocks.first, gm->layer, gm->role);
            snprintf(name, sizeof name, "part%d.V%d", q, i);
            const fipsc_st_tensor *t = fipsc_st_find(f, name);
            if (cols < 0 || !t || t->dtype != FIPSC_F32 || t->ndim != 2 || t->shape[0] != s->r ||
                t->shape[1] != cols)
                return DAMAGED("tensor %s is missing or not F32 [%d, %d]", name, s->r, cols);
            if ((st = fipsc_st_to_f32(t, &p->V[i], err))) return st;
            gm->V = p->V[i];
        }
    }
    return FIPSC_OK;
}

static fipsc_status load_report(const cJSON *j, const fipsc_fips_group *g, const fipsc_group_plan *plan,
                                const char *path, int k, fipsc_group_report *gr, fipsc_error *err)
{
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(j, "plan");
    const cJSON *mlps = cJSON_GetObjectItemCaseSensitive(j, "mlps");
    const cJSON *mats = cJSON_GetObjectItemCaseSensitive(j, "matrices");
    const cJSON *storage = cJSON_GetObjectItemCaseSensitive(pj, "storage");
    fipsc_group_plan *p = &gr->plan;
    const int64_t big = (int64_t)1 << 52;
    if (!cJSON_IsObject(pj) || !get_i32(pj, "first", plan->blocks.first, plan->blocks.first, &p->blocks.first) ||
        !get_i32(pj, "last", plan->blocks.last, plan->blocks.last, &p->blocks.last) ||
        !get_i32(pj, "d", g->d, g->d, &p->d) || !get_int(pj, "P", 0, big, &p->P) ||
        !get_i32(pj, "n_matrices", 0, 1 << 20, &p->n_matrices) || !get_i32(pj, "r", 0, 1 << 30, &p->r) ||
        !get_num(pj, "sparsity", &p->sparsity) || !cJSON_IsString(storage) ||
        !fipsc_v_storage_parse(storage->valuestring, &p->storage) ||
        !get_int(pj, "dense_params", 0, big, &p->dense_params) ||
        !get_int(pj, "kept_params", 0, big, &p->kept_params) ||
        !get_int(pj, "dense_bytes", 0, big, &p->dense_bytes) ||
        !get_int(pj, "stored_bytes", 0, big, &p->stored_bytes) || !get_int(j, "nnz", 0, big, &gr->nnz) ||
        !get_num(j, "sparsity", &gr->sparsity) || !get_int(j, "kept_params", 0, big, &gr->kept_params) ||
        !get_int(j, "stored_bytes", 0, big, &gr->stored_bytes) || !get_num(j, "final_loss", &gr->final_loss) ||
        !get_i32(j, "steps", 0, 1 << 30, &gr->steps) || !get_num(j, "lr", &gr->lr) ||
        !get_i32(j, "retries", 0, 1 << 20, &gr->retries) || !get_num(j, "score_init", &gr->score_init) ||
        !get_num(j, "score_trained", &gr->score_trained) || !get_num(j, "score_kept", &gr->score_kept) ||
        !get_i32(j, "kept_step", 0, 1 << 30, &gr->kept_step) || !get_num(j, "seconds", &gr->seconds) ||
        cJSON_GetArraySize(mlps) != g->n_mlps || cJSON_GetArraySize(mats) != g->n_matrices)
        return DAMAGED("bad 'report'");
    /* older files lack it: made before the V-sparse step existed, none of their steps ran it */
    if (cJSON_GetObjectItemCaseSensitive(j, "sparse_steps") && !get_i32(j, "sparse_steps", 0, 1 << 30, &gr->sparse_steps))
        return DAMAGED("bad 'report'");
    gr->peak_rss = -1; /* recorded since checkpoints travel between ranks; older files lack it */
    if (cJSON_GetObjectItemCaseSensitive(j, "peak_rss") && !get_int(j, "peak_rss", -1, big, &gr->peak_rss))
        return DAMAGED("bad 'report'");
    gr->n_mlps = g->n_mlps;
    gr->n_matrices = g->n_matrices;
    gr->mlps = calloc((size_t)gr->n_mlps, sizeof *gr->mlps);
    gr->matrices = calloc((size_t)gr->n_matrices, sizeof *gr->matrices);
    if (!gr->mlps || !gr->matrices) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < gr->n_mlps; i++) {
        const cJSON *o = cJSON_GetArrayItem(mlps, i);
        fipsc_mlp_report *m = &gr->mlps[i];
        if (!get_i32(o, "block", plan->blocks.first, plan->blocks.last, &m->block) ||
            !get_int(o, "rows", 0, big, &m->rows) || !get_int(o, "holdout_rows", 0, big, &m->holdout_rows) ||
            !get_num(o, "out_err_before", &m->out_err_before) || !get_num(o, "out_err_after", &m->out_err_after) ||
            !get_num(o, "holdout_err_before", &m->holdout_err_before) ||
            !get_num(o, "holdout_err_after", &m->holdout_err_after))
            return DAMAGED("bad report entry of MLP %d", i);
    }
    for (int i = 0; i < gr->n_matrices; i++) {
        const cJSON *o = cJSON_GetArrayItem(mats, i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(o, "role");
        fipsc_matrix_report *m = &gr->matrices[i];
        if (!get_i32(o, "block", plan->blocks.first, plan->blocks.last, &m->block) ||
            !cJSON_IsString(role) || !fipsc_mlp_role_parse(role->valuestring, &m->role) ||
            !get_i32(o, "out", 0, 1 << 30, &m->out) || !get_i32(o, "in", 0, 1 << 30, &m->in) ||
            !get_i32(o, "rank", 0, 1 << 30, &m->rank) || !get_int(o, "dense_params", 0, big, &m->dense_params) ||
            !get_int(o, "nnz", 0, big, &m->nnz) || !get_num(o, "weight_rel_err", &m->weight_rel_err))
            return DAMAGED("bad report entry of matrix %d", i);
    }
    return FIPSC_OK;
}

/* Opens group k's checkpoint image — the file at path, or (bytes != NULL) size bytes in memory
 * that path names in messages — and checks it: integrity, then its inputs against this run's
 * (calib NULL: all but the calibration). With `out`, also reads its parts and report. */
static fipsc_status load_group(const char *path, const void *bytes, size_t size, const fipsc_fips_group *g,
                               const fipsc_fips_calib *calib, const fipsc_compress_options *o,
                               const fipsc_group_plan *plan, int k, compress_saved *out, fipsc_error *err)
{
    fipsc_st_file *f = NULL;
    fipsc_error inner = {0};
    if (bytes ? fipsc_st_open_buffer(bytes, size, path, &f, &inner) : fipsc_st_open(path, &f, &inner)) {
        if (inner.code == FIPSC_ERR_IO) return fipsc_fail(err, FIPSC_ERR_IO, "checkpoint %s", inner.message);
        return DAMAGED("%s", inner.message);
    }
    cJSON *then = NULL, *now = NULL, *parts = NULL, *report = NULL;
    fipsc_status st = FIPSC_OK;
    const char *format = fipsc_st_meta(f, "fipsc_format"), *version = fipsc_st_meta(f, "fipsc_checkpoint_version");
    const char *inputs_text = fipsc_st_meta(f, "inputs");
    if (!format || strcmp(format, CKPT_FORMAT) != 0) {
        st = DAMAGED("not a fipsc checkpoint: __metadata__ has no \"fipsc_format\": \"" CKPT_FORMAT "\"");
    } else if (!version || strcmp(version, CKPT_VERSION) != 0) {
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "checkpoint %s has version %s, this fipsc writes %s: "
                        "start again with an empty --checkpoint-dir", path, version ? version : "(none)",
                        CKPT_VERSION);
    } else if (!inputs_text || !(then = cJSON_Parse(inputs_text)) || !cJSON_IsObject(then)) {
        st = DAMAGED("unreadable 'inputs'");
    } else if (!(now = compress_checkpoint_inputs_json(g, calib, o, plan, k))) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    /* Integrity before agreement: a damaged file is reported as such, not as a mismatch. */
    if (!st) {
        const char *pt = fipsc_st_meta(f, "parts"), *rt = fipsc_st_meta(f, "report");
        compress_saved tmp = {0};
        compress_saved *dst = out ? out : &tmp;
        const char *stored = fipsc_st_meta(f, "data_hash");
        uint64_t h = 0;
        char hex[32];
        if (!pt || !(parts = cJSON_Parse(pt))) st = DAMAGED("unreadable 'parts'");
        else if (!rt || !(report = cJSON_Parse(rt)) || !cJSON_IsObject(report)) st = DAMAGED("unreadable 'report'");
        else if (!data_hash(f, parts, &h)) st = DAMAGED("its tensors do not match its 'parts'");
        else h = compress_checkpoint_hash_metadata(h, inputs_text, pt, rt);
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* fuzz/fuzz_checkpoint.c: mutations reach past it */
        if (!st && (!stored || strcmp(stored, hex) != 0))
            st = DAMAGED("its contents hash to %s, it recorded %s", hex, stored ? stored : "nothing");
#endif
        if (!st) st = compare_inputs(then, now, path, err);
        if (!st) st = load_parts(f, parts, g, plan, o, path, k, dst, err);
        if (!st) st = load_report(report, g, plan, path, k, &dst->report, err);
        if (!st && out) out->present = true;
        if (st || !out) compress_saved_free_one(dst);
    }
    cJSON_Delete(then);
    cJSON_Delete(now);
    cJSON_Delete(parts);
    cJSON_Delete(report);
    fipsc_st_close(f);
    return st;
}

fipsc_status compress_checkpoint_load_group(const char *path, const fipsc_fips_group *g,
                                            const fipsc_fips_calib *calib, const fipsc_compress_options *o,
                                            const fipsc_group_plan *plan, int k, compress_saved *out,
                                            fipsc_error *err)
{
    return load_group(path, NULL, 0, g, calib, o, plan, k, out, err);
}

fipsc_status compress_checkpoint_load_bytes(const void *bytes, size_t size, const char *name,
                                            const fipsc_fips_group *g, const fipsc_compress_options *o,
                                            const fipsc_group_plan *plan, int k, compress_saved *out,
                                            fipsc_error *err)
{
    return load_group(name, bytes, size, g, NULL, o, plan, k, out, err);
}
