/* Crash-safe, resumable compression: every finished group is saved to its own checkpoint file,
 * and a resumed run reuses the valid ones (src/compress/compress.h, docs/FORMAT.md
 * "Checkpoints").
 *
 * One group, one file DIR/group-KKK.safetensors (K = the group's index), written atomically
 * (temporary file, fsync, rename: src/core/file.h) as soon as the group is measured, before
 * it replaces the dense matrices. A kill at any moment therefore leaves every group either
 * complete or absent; at worst a temporary group-KKK.safetensors.tmp-XXXXXX, never under the
 * final name (a resume removes such leftovers).
 *
 * The file holds exactly what the pipeline would attach: per part (one per group, or one per
 * block for svd) U [d, r] and every V_i [r, f] as F32, dense with the pruned entries 0 (attach
 * converts them to the recorded storage, as for a freshly computed group), and the group's
 * report entry. A resumed group is attached from these bits, so the output file of a resumed run
 * is byte-identical to an uninterrupted one: every group's work depends only on the original
 * weights of its blocks, its calibration rows (captured from the original model beforehand) and
 * its own seed fipsc_seed_derive(seed, group index), never on other groups.
 *
 * What a checkpoint was made from is recorded next to it ("inputs"): every option that changes
 * the result (method, budget, sparsity, n:m, rank, groups, schedule, mode, steps, batch, lr,
 * lr-min, weight decay, seed, U dtype, divergence retries; not the thread count: results do not
 * depend on it, so a run may resume on another), the
 * group's index and blocks, a 64-bit hash of the group's original weights and one of its
 * calibration rows (so another model file, another calibration corpus, sample count or length
 * is caught whatever its name). A resume whose inputs differ fails naming the first difference.
 *
 * A damaged file (truncated, bit-flipped, unparsable) is an error naming the file, not a silent
 * recomputation: the atomic rename means a kill cannot produce one, so damage points at the disk
 * or at outside edits, which the user should see; deleting the file recomputes that group. The
 * tensors' bytes carry a hash for this (the safetensors reader already validates the structure).
 *
 * The hashes detect accidental change; they are not cryptographic. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compress/compress_internal.h"
#include "ops/factored.h"
#include "core/file.h"
#include "formats/safetensors.h"
#include "core/path.h"

#define CKPT_FORMAT "checkpoint"
#define CKPT_VERSION "1"
#define CKPT_PREFIX "group-"
#define CKPT_SUFFIX ".safetensors"

/* ---- hashing ------------------------------------------------------------------------------ */

#define HASH_SEED 0x6669707363636b70ULL /* "fipscckp" */

static uint64_t hash_mix(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 32);
}

/* Eight bytes at a time, then the tail and the length. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = hash_mix(h, w);
    }
    uint64_t tail = 0;
    if (n > i) memcpy(&tail, p + i, n - i);
    h = hash_mix(h, tail);
    return hash_mix(h, (uint64_t)n);
}

/* The group's original weights, [out, in] each, with their shapes. */
static uint64_t hash_weights(const fipsc_fips_group *g)
{
    uint64_t h = hash_mix(HASH_SEED, (uint64_t)g->d);
    for (int i = 0; i < g->n_matrices; i++) {
        h = hash_mix(h, ((uint64_t)g->matrices[i].role << 32) | (uint64_t)g->matrices[i].cols);
        h = hash_bytes(h, fipsc_fips_matrix_weight(g, i), (size_t)g->d * (size_t)g->matrices[i].cols * sizeof(float));
    }
    return h;
}

/* The group's calibration rows: inputs and outputs of each of its MLPs, [n, d] each. */
static uint64_t hash_calibration(const fipsc_fips_group *g, const fipsc_fips_calib *calib)
{
    uint64_t h = HASH_SEED;
    for (int j = 0; j < g->n_mlps; j++) {
        size_t bytes = (size_t)calib[j].n * (size_t)g->d * sizeof(float);
        h = hash_mix(h, (uint64_t)calib[j].n);
        h = hash_bytes(h, calib[j].x, bytes);
        h = hash_bytes(h, calib[j].y, bytes);
    }
    return h;
}

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

/* ---- what a group is made from ------------------------------------------------------------ */

static void put_str(cJSON *o, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_str(cJSON *o, const char *key, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(o, key, buf);
}

/* The shortest decimal that reads back as exactly x (as a double, or as a float when is_float),
 * so that 0.4 shows as 0.4 and two values compare equal exactly when their bits do. */
static void exact_decimal(char *buf, size_t cap, double x, bool is_float)
{
    for (int digits = is_float ? 6 : 15; digits <= 17; digits++) {
        snprintf(buf, cap, "%.*g", digits, x);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)x : back == x) return;
    }
}

static void put_decimal(cJSON *o, const char *key, double x, bool is_float)
{
    char buf[48];
    exact_decimal(buf, sizeof buf, x, is_float);
    cJSON_AddStringToObject(o, key, buf);
}

/* The inputs of group k as name → value strings, named as the command line spells them so that
 * a mismatch reads naturally. calib NULL leaves out the calibration (not known yet). */
static cJSON *inputs_json(const fipsc_fips_group *g, const fipsc_fips_calib *calib,
                          const fipsc_compress_options *o, const fipsc_group_plan *plan, int k)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    put_str(j, "--method", "%s", fipsc_compress_method_name(o->method));
    put_decimal(j, "--budget", o->budget, false);
    put_decimal(j, "--sparsity", o->sparsity, false);
    if (o->nm_m > 0) put_str(j, "--nm", "%d:%d", o->nm_n, o->nm_m);
    else put_str(j, "--nm", "none");
    if (o->rank > 0) put_str(j, "--rank", "%d", o->rank);
    else put_str(j, "--rank", "from the budget");
    put_str(j, "--groups", "%s", o->groups ? o->groups : "");
    put_str(j, "--schedule", "%s", fipsc_compress_schedule_name(o->schedule));
    put_str(j, "--mode", "%s", o->mode == FIPSC_FIPS_JOINT ? "joint" : "local");
    put_str(j, "--steps", "%d", o->steps);
    put_str(j, "--batch", "%d", o->batch_rows);
    put_decimal(j, "--lr", o->lr, true);
    put_decimal(j, "--lr-min", o->lr_min, true);
    put_decimal(j, "--weight-decay", o->weight_decay, true);
    put_str(j, "--seed", "%llu", (unsigned long long)o->seed);
    put_str(j, "--u-dtype", "%s", fipsc_dtype_name(o->u_dtype));
    put_str(j, "--divergence-retries", "%d", o->divergence_retries);
    put_str(j, "group", "%d (blocks %d-%d)", k, plan->blocks.first, plan->blocks.last);
    put_str(j, "model weights", "hash %016llx", (unsigned long long)hash_weights(g));
    if (calib) {
        put_str(j, "calibration rows", "%lld rows per block, hash %016llx", (long long)calib[0].n,
                (unsigned long long)hash_calibration(g, calib));
    }
    return j;
}

static fipsc_status checkpoint_path(const char *dir, int k, char *buf, size_t cap, fipsc_error *err)
{
    return fipsc_path_format(buf, cap, err, "%s/" CKPT_PREFIX "%03d" CKPT_SUFFIX, dir, k);
}

/* ---- saving ------------------------------------------------------------------------------- */

/* The integrity hash covers the metadata texts after the tensors' bytes. */
static uint64_t hash_metadata(uint64_t h, const char *inputs, const char *parts, const char *report)
{
    h = hash_bytes(h, inputs, strlen(inputs));
    h = hash_bytes(h, parts, strlen(parts));
    return hash_bytes(h, report, strlen(report));
}

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
    put_num(j, "seconds", gr->seconds);
    cJSON *mlps = cJSON_AddArrayToObject(j, "mlps");
    for (int i = 0; i < gr->n_mlps; i++) {
        cJSON *o = cJSON_CreateObject();
        put_int(o, "block", gr->mlps[i].block);
        put_int(o, "rows", gr->mlps[i].rows);
        put_num(o, "out_err_before", gr->mlps[i].out_err_before);
        put_num(o, "out_err_after", gr->mlps[i].out_err_after);
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

/* Columns of matrix (layer, role) of g, or -1. */
static int matrix_cols(const fipsc_fips_group *g, int first_block, int layer, fipsc_mlp_role role)
{
    for (int i = 0; i < g->n_matrices; i++)
        if (first_block + g->matrices[i].mlp == layer && g->matrices[i].role == role)
            return g->matrices[i].cols;
    return -1;
}

fipsc_status compress_checkpoint_save(const fipsc_compress_checkpoint *ck, const fipsc_fips_group *g,
                                      const fipsc_fips_calib *calib, const fipsc_compress_options *o,
                                      const fipsc_group_plan *plan, int k, const compress_outcome *oc,
                                      const fipsc_group_report *gr, fipsc_error *err)
{
    char path[4096];
    fipsc_status pst = checkpoint_path(ck->dir, k, path, sizeof path, err);
    if (pst) return pst;
    fipsc_st_writer *w = fipsc_st_writer_new();
    char *inputs = print_json(inputs_json(g, calib, o, plan, k));
    char *parts = print_json(parts_json(oc));
    char *report = print_json(report_json(gr));
    fipsc_status st = FIPSC_OK;
    if (!w || !inputs || !parts || !report)
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory writing checkpoint %s", path);
    uint64_t h = HASH_SEED;
    char name[64], hex[32];
    for (int q = 0; q < oc->n_parts && !st; q++) {
        const fipsc_group_spec *s = &oc->parts[q].spec;
        if (s->U) {
            int64_t shape[2] = {s->d, s->r};
            snprintf(name, sizeof name, "part%d.U", q);
            st = fipsc_st_writer_add(w, name, FIPSC_F32, 2, shape, s->U, err);
            h = hash_bytes(h, s->U, (size_t)s->d * (size_t)s->r * sizeof(float));
        }
        for (int i = 0; i < s->n_matrices && !st; i++) {
            int cols = matrix_cols(g, plan->blocks.first, s->matrices[i].layer, s->matrices[i].role);
            if (cols < 0) {
                st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "checkpoint %s: block %d %s is not in the group",
                                path, s->matrices[i].layer, fipsc_mlp_role_name(s->matrices[i].role));
                break;
            }
            int64_t shape[2] = {s->r, cols};
            snprintf(name, sizeof name, "part%d.V%d", q, i);
            st = fipsc_st_writer_add(w, name, FIPSC_F32, 2, shape, s->matrices[i].V, err);
            h = hash_bytes(h, s->matrices[i].V, (size_t)s->r * (size_t)cols * sizeof(float));
        }
    }
    if (!st) h = hash_metadata(h, inputs, parts, report);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    if (!st) st = fipsc_st_writer_set_meta(w, "fipsc_format", CKPT_FORMAT, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "fipsc_checkpoint_version", CKPT_VERSION, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "inputs", inputs, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "parts", parts, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "report", report, err);
    if (!st) st = fipsc_st_writer_set_meta(w, "data_hash", hex, err);
    if (!st) st = fipsc_st_writer_write(w, path, err);
    fipsc_st_writer_free(w);
    free(inputs);
    free(parts);
    free(report);
    if (st) return fipsc_fail_context(err, "saving the checkpoint of group %d: ", k);
    return FIPSC_OK;
}

/* ---- loading ------------------------------------------------------------------------------ */

static void saved_free_one(compress_saved *s)
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
    for (int k = 0; k < n; k++) saved_free_one(&s[k]);
    free(s);
}

/* A damaged file: the reason, the file, and what to do. */
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
    return fipsc_fail(err, FIPSC_ERR_FORMAT,
                      "checkpoint %s is damaged (%s); delete it to recompute group %d", path, why, k);
}

/* The stored inputs against this run's: every key of `now` must be in `then` with the same
 * value. */
static fipsc_status compare_inputs(const cJSON *then, const cJSON *now, const char *path,
                                   fipsc_error *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, now)
    {
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(then, it->string);
        if (!cJSON_IsString(old))
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "checkpoint %s does not record '%s' (made by "
                              "another fipsc version?): start again with an empty --checkpoint-dir",
                              path, it->string);
        if (strcmp(old->valuestring, it->valuestring) == 0) continue;
        const char *what = it->string;
        bool option = what[0] == '-';
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "checkpoint %s was made with %s%s%s, this run has %s%s%s: resume with the "
                          "same model, calibration and options, or start again with an empty "
                          "--checkpoint-dir",
                          path, what, option ? " " : ": ", old->valuestring, what, option ? " " : ": ",
                          it->valuestring);
    }
    return FIPSC_OK;
}

/* The hash of the tensors the parts name, in the order they were written; false when one is
 * missing or the file holds others. */
static bool data_hash(const fipsc_st_file *f, const cJSON *parts, uint64_t *out)
{
    if (!cJSON_IsArray(parts)) return false;
    uint64_t h = HASH_SEED;
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
            h = hash_bytes(h, t->data, t->nbytes);
            named++;
        }
        for (int i = 0; i < cJSON_GetArraySize(mats); i++) {
            snprintf(name, sizeof name, "part%d.V%d", q, i);
            if (!(t = fipsc_st_find(f, name))) return false;
            h = hash_bytes(h, t->data, t->nbytes);
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
            int cols = matrix_cols(g, plan->blocks.first, gm->layer, gm->role);
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
        !get_i32(j, "retries", 0, 1 << 20, &gr->retries) || !get_num(j, "seconds", &gr->seconds) ||
        cJSON_GetArraySize(mlps) != g->n_mlps || cJSON_GetArraySize(mats) != g->n_matrices)
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
            !get_int(o, "rows", 0, big, &m->rows) || !get_num(o, "out_err_before", &m->out_err_before) ||
            !get_num(o, "out_err_after", &m->out_err_after))
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

/* Opens group k's checkpoint at path and checks it: integrity, then its inputs against this
 * run's (calib NULL: all but the calibration). With `out`, also reads its parts and report. */
static fipsc_status load_group(const char *path, const fipsc_fips_group *g, const fipsc_fips_calib *calib,
                               const fipsc_compress_options *o, const fipsc_group_plan *plan, int k,
                               compress_saved *out, fipsc_error *err)
{
    fipsc_st_file *f = NULL;
    fipsc_error inner = {0};
    if (fipsc_st_open(path, &f, &inner)) {
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
    } else if (!(now = inputs_json(g, calib, o, plan, k))) {
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
        else h = hash_metadata(h, inputs_text, pt, rt);
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        if (!st && (!stored || strcmp(stored, hex) != 0))
            st = DAMAGED("its contents hash to %s, it recorded %s", hex, stored ? stored : "nothing");
        if (!st) st = compare_inputs(then, now, path, err);
        if (!st) st = load_parts(f, parts, g, plan, o, path, k, dst, err);
        if (!st) st = load_report(report, g, plan, path, k, &dst->report, err);
        if (!st && out) out->present = true;
        if (st || !out) saved_free_one(dst);
    }
    cJSON_Delete(then);
    cJSON_Delete(now);
    cJSON_Delete(parts);
    cJSON_Delete(report);
    fipsc_st_close(f);
    return st;
}

/* ---- the directory ------------------------------------------------------------------------ */

/* The group index of a checkpoint file name "group-KKK.safetensors", or -1. */
static int checkpoint_index(const char *name)
{
    size_t np = strlen(CKPT_PREFIX), ns = strlen(CKPT_SUFFIX), len = strlen(name);
    if (len <= np + ns || strncmp(name, CKPT_PREFIX, np) != 0 || strcmp(name + len - ns, CKPT_SUFFIX) != 0)
        return -1;
    long k = 0;
    for (size_t i = np; i < len - ns; i++) {
        if (name[i] < '0' || name[i] > '9' || k > 100000000) return -1;
        k = 10 * k + (name[i] - '0');
    }
    return (int)k;
}

/* A temporary file a killed run left while writing a checkpoint ("group-KKK.safetensors.tmp-..."). */
static bool is_leftover(const char *name)
{
    const char *tmp = strstr(name, CKPT_SUFFIX ".tmp-");
    return strncmp(name, CKPT_PREFIX, strlen(CKPT_PREFIX)) == 0 && tmp != NULL;
}

/* Creates dir if needed and checks what it holds against a run of n groups: without resume no
 * group file at all; with resume, *beyond receives the index of a group file past the run's
 * groups (-1: none; the caller reports it after the group files' own checks, which name the
 * option that differs), and a killed run's temporary files are removed. Finally makes sure a
 * checkpoint can be created there. */
static fipsc_status open_dir(const fipsc_compress_checkpoint *ck, int n, const fipsc_compress_options *o,
                             int *beyond, fipsc_error *err)
{
    if (!ck->dir || !ck->dir[0]) return fipsc_fail(err, FIPSC_ERR_ARG, "the checkpoint directory is empty");
    if (o->dense_reconstruction)
        return fipsc_fail(err, FIPSC_ERR_ARG, "checkpoints hold the compressed form of each group; they "
                                              "do not apply to dense reconstruction");
    if (strlen(ck->dir) > 3000) return fipsc_fail(err, FIPSC_ERR_ARG, "checkpoint directory name too long");
    if (mkdir(ck->dir, 0777) != 0 && errno != EEXIST)
        return fipsc_fail(err, FIPSC_ERR_IO, "cannot create the checkpoint directory %s: %s", ck->dir,
                          strerror(errno));
    DIR *d = opendir(ck->dir);
    if (!d) return fipsc_fail(err, FIPSC_ERR_IO, "cannot read the checkpoint directory %s: %s", ck->dir,
                              strerror(errno));
    fipsc_status st = FIPSC_OK;
    char path[4096];
    *beyond = -1;
    for (struct dirent *e; !st && (e = readdir(d));) {
        int k = checkpoint_index(e->d_name);
        if ((st = fipsc_path_join(path, sizeof path, ck->dir, e->d_name, err))) break;
        if (k >= 0 && !ck->resume)
            st = fipsc_fail(err, FIPSC_ERR_ARG, "the checkpoint directory %s already holds checkpoints "
                            "(%s): add --resume to continue that run, or use an empty directory",
                            ck->dir, e->d_name);
        else if (k >= n)
            *beyond = k;
        else if (k < 0 && ck->resume && is_leftover(e->d_name) && unlink(path) != 0 && errno != ENOENT)
            st = fipsc_fail(err, FIPSC_ERR_IO, "cannot remove %s (left by a killed run): %s", path,
                            strerror(errno));
    }
    closedir(d);
    if (st) return st;
    fipsc_atomic_file af;
    if ((st = checkpoint_path(ck->dir, 0, path, sizeof path, err)) || (st = fipsc_atomic_open(path, &af, err)))
        return st;
    fipsc_atomic_abort(&af);
    return FIPSC_OK;
}

static fipsc_status group_beyond(const fipsc_compress_checkpoint *ck, int k, int n, fipsc_error *err)
{
    if (k < 0) return FIPSC_OK;
    char path[4096];
    checkpoint_path(ck->dir, k, path, sizeof path, NULL); /* fitted in open_dir */
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "checkpoint %s is for group %d, but this run has %d "
                      "groups (another --groups or model): resume with the same model, calibration "
                      "and options, or start again with an empty --checkpoint-dir", path, k, n);
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 || errno != ENOENT; /* unreadable counts: opening reports why */
}

fipsc_status fipsc_compress_checkpoint_prepare(const fipsc_compress_checkpoint *ck, const fipsc_model *m,
                                               const fipsc_compress_options *o, fipsc_error *err)
{
    fipsc_group_plan *plans;
    int n;
    fipsc_status st = fipsc_compress_plan(m, o, &plans, &n, err);
    if (st) return st;
    int beyond;
    st = open_dir(ck, n, o, &beyond, err);
    char path[4096];
    for (int k = 0; k < n && !st && ck->resume; k++) {
        if ((st = checkpoint_path(ck->dir, k, path, sizeof path, err))) break;
        if (!file_exists(path)) continue;
        fipsc_fips_group g;
        fipsc_mlp *mlps;
        if ((st = compress_group_describe(m, plans[k].blocks, &g, &mlps, err))) break;
        st = load_group(path, &g, NULL, o, &plans[k], k, NULL, err);
        fipsc_fips_group_free(&g);
        free(mlps);
    }
    if (!st) st = group_beyond(ck, beyond, n, err);
    free(plans);
    return st;
}

fipsc_status compress_checkpoint_load_all(const fipsc_compress_checkpoint *ck, const fipsc_model *m,
                                          const fipsc_calibration *cal, const fipsc_compress_options *o,
                                          const fipsc_group_plan *plans, int n, compress_saved **out,
                                          fipsc_error *err)
{
    *out = NULL;
    int beyond;
    fipsc_status st = open_dir(ck, n, o, &beyond, err);
    if (st) return st;
    compress_saved *saved = calloc((size_t)n, sizeof *saved);
    if (!saved) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    char path[4096];
    for (int k = 0; k < n && !st && ck->resume; k++) {
        if ((st = checkpoint_path(ck->dir, k, path, sizeof path, err))) break;
        if (!file_exists(path)) continue;
        fipsc_fips_group g;
        fipsc_mlp *mlps;
        if ((st = compress_group_describe(m, plans[k].blocks, &g, &mlps, err))) break;
        st = load_group(path, &g, &cal->blocks[plans[k].blocks.first], o, &plans[k], k, &saved[k], err);
        fipsc_fips_group_free(&g);
        free(mlps);
    }
    if (!st) st = group_beyond(ck, beyond, n, err);
    if (st) {
        compress_saved_free(saved, n);
        return st;
    }
    *out = saved;
    return FIPSC_OK;
}

fipsc_status compress_checkpoint_apply(fipsc_model *m, compress_saved *s, fipsc_group_report *gr,
                                       fipsc_error *err)
{
    for (int q = 0; q < s->n_parts; q++) {
        fipsc_status st = fipsc_model_attach_group(m, &s->parts[q].spec, err);
        if (st) return st;
    }
    *gr = s->report;
    s->report.mlps = NULL;
    s->report.matrices = NULL;
    return FIPSC_OK;
}
