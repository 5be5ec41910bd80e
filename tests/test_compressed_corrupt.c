/* Corrupt and inconsistent compressed files: each fails to load with FIPSC_ERR_FORMAT (or
 * FIPSC_ERR_UNSUPPORTED for a newer version or another architecture) and a message naming the
 * tensor or metadata entry, never a crash (this test also runs under ASan + UBSan).
 *
 * A valid file is written from stories260K with three groups — 0-1 CSC, 2-3 n:m 2:4, 4 an
 * identity-basis magnitude baseline — and then copied tensor by tensor with one change. A second
 * one (format version 2) has a bitmap group with BF16 U and V values and an n:m group with F16
 * V values. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "compressed_fixture.h"
#include "model/compressed.h"
#include "core/file.h"
#include "formats/safetensors.h"
#include "testutil.h"

typedef enum op {
    OP_NONE = 0,
    OP_DROP,       /* leave the tensor out */
    OP_POKE,       /* set element `index` to `value` (in the tensor's own dtype) */
    OP_SHRINK,     /* first dimension one smaller (its last row dropped) */
    OP_WIDEN       /* U16 -> U32 */
} op;

typedef struct mutation {
    const char *tensor;
    op op;
    int64_t index;
    double value;
    const char *add;                   /* an extra F32 [1] tensor of this name */
    const char *meta_key, *meta_value; /* replace an entry (value NULL: remove it) */
    void (*edit_layout)(cJSON *layout);
} mutation;

static char valid[4200];

/* Copies `valid` into path with mutation mu applied. */
static void rewrite(const char *path, const mutation *mu)
{
    fipsc_error err = {0};
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(valid, &f, &err), &err);
    if (!f) return;
    fipsc_st_writer *w = fipsc_st_writer_new();
    for (int i = 0; i < fipsc_st_meta_count(f); i++) {
        const char *key = fipsc_st_meta_key(f, i), *value = fipsc_st_meta_value(f, i);
        char *edited = NULL;
        if (mu->edit_layout && strcmp(key, "fipsc_compression") == 0) {
            cJSON *root = cJSON_Parse(value);
            mu->edit_layout(root);
            value = edited = cJSON_PrintUnformatted(root);
            cJSON_Delete(root);
        }
        if (mu->meta_key && strcmp(key, mu->meta_key) == 0) value = mu->meta_value;
        if (value) CHECK_OK(fipsc_st_writer_set_meta(w, key, value, &err), &err);
        free(edited);
    }
    void *owned[4] = {0};
    int n_owned = 0;
    for (int i = 0; i < fipsc_st_count(f); i++) {
        const fipsc_st_tensor *t = fipsc_st_at(f, i);
        fipsc_dtype dtype = t->dtype;
        int64_t shape[FIPSC_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        const void *data = t->data;
        if (mu->tensor && strcmp(t->name, mu->tensor) == 0) {
            if (mu->op == OP_DROP) continue;
            size_t size = fipsc_dtype_size(t->dtype);
            unsigned char *copy = malloc(t->nbytes * 2 + 8);
            memcpy(copy, t->data, t->nbytes);
            owned[n_owned++] = copy;
            data = copy;
            if (mu->op == OP_POKE) {
                unsigned char *e = copy + mu->index * size;
                if (t->dtype == FIPSC_F32) {
                    float v = (float)mu->value;
                    memcpy(e, &v, 4);
                } else if (t->dtype == FIPSC_BF16 || t->dtype == FIPSC_F16) {
                    float v = (float)mu->value;
                    uint16_t h = t->dtype == FIPSC_BF16 ? fipsc_f32_to_bf16(v) : fipsc_f32_to_f16(v);
                    memcpy(e, &h, 2);
                } else if (t->dtype == FIPSC_U32) {
                    uint32_t v = (uint32_t)mu->value;
                    memcpy(e, &v, 4);
                } else if (t->dtype == FIPSC_U16) {
                    uint16_t v = (uint16_t)mu->value;
                    memcpy(e, &v, 2);
                } else {
                    *e = (uint8_t)mu->value;
                }
            } else if (mu->op == OP_SHRINK) {
                shape[0]--;
            } else if (mu->op == OP_WIDEN) {
                dtype = FIPSC_U32;
                for (int64_t k = fipsc_st_numel(t) - 1; k >= 0; k--) {
                    uint16_t v;
                    memcpy(&v, (const unsigned char *)t->data + 2 * k, 2);
                    uint32_t wide = v;
                    memcpy(copy + 4 * k, &wide, 4);
                }
            }
        }
        CHECK_OK(fipsc_st_writer_add(w, t->name, dtype, t->ndim, shape, data, &err), &err);
    }
    float one = 1.0f;
    int64_t one_shape[1] = {1};
    if (mu->add) CHECK_OK(fipsc_st_writer_add(w, mu->add, FIPSC_F32, 1, one_shape, &one, &err), &err);
    CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_writer_free(w);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    fipsc_st_close(f);
}

static const char *tmp;

static void expect(const char *label, const mutation *mu, fipsc_status code, const char *needle)
{
    char path[4300];
    test_pathf(path, sizeof path, "%s/%s.safetensors", tmp, label);
    rewrite(path, mu);
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    fipsc_status st = fipsc_model_load(path, &m, &err);
    CHECK_MSG(st == code && strstr(err.message, needle) && m == NULL,
              "%s: got %s '%s', expected %s mentioning '%s'", label, fipsc_status_name(st), err.message,
              fipsc_status_name(code), needle);
    fipsc_model_free(m);
}

/* ---------------------------------------------------------------- layout edits */

static cJSON *matrix0(cJSON *root)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "groups"), 0), "matrices"), 0);
}

static cJSON *group(cJSON *root, int g) { return cJSON_GetArrayItem(cJSON_GetObjectItem(root, "groups"), g); }

static void set_number(cJSON *obj, const char *key, double v) { cJSON_SetNumberValue(cJSON_GetObjectItem(obj, key), v); }

static void set_string(cJSON *obj, const char *key, const char *v)
{
    cJSON_ReplaceItemInObject(obj, key, cJSON_CreateString(v));
}

/* nnz + 1 with a consistent sparsity: the arrays no longer match */
static void nnz_plus_one(cJSON *root)
{
    cJSON *m = matrix0(root);
    double nnz = cJSON_GetNumberValue(cJSON_GetObjectItem(m, "nnz")) + 1;
    set_number(m, "nnz", nnz);
    set_number(m, "sparsity", 1.0 - nnz / (48.0 * 172.0));
}
static void nnz_only(cJSON *root) { set_number(matrix0(root), "nnz", cJSON_GetNumberValue(cJSON_GetObjectItem(matrix0(root), "nnz")) + 1); }
/* matrices 0 and 3 (block 0's and block 1's gate) trade their layer numbers */
static void layer_moved(cJSON *root)
{
    cJSON *mats = cJSON_GetObjectItem(group(root, 0), "matrices");
    set_number(cJSON_GetArrayItem(mats, 0), "layer", 1);
    set_number(cJSON_GetArrayItem(mats, 3), "layer", 0);
}
static void orientation_flipped(cJSON *root) { set_string(matrix0(root), "orientation", "contracting"); }
static void groups_overlap(cJSON *root) { set_number(group(root, 1), "first_layer", 1); }
static void v_dtype_f32(cJSON *root) { set_string(group(root, 0), "v_dtype", "F32"); }
static void v_dtype_int(cJSON *root) { set_string(group(root, 0), "v_dtype", "I8"); }
static void group_too_far(cJSON *root) { set_number(group(root, 2), "last_layer", 7); }
static void storage_unknown(cJSON *root) { set_string(group(root, 0), "storage", "coo"); }
static void rank_changed(cJSON *root) { set_number(group(root, 0), "rank", 40); }
static void identity_rank(cJSON *root) { set_number(group(root, 2), "rank", 60); }
static void nm_not_dividing(cJSON *root)
{
    int v[2] = {2, 5};
    cJSON_ReplaceItemInObject(group(root, 1), "nm", cJSON_CreateIntArray(v, 2));
}
static void weight_shape_wrong(cJSON *root)
{
    int v[2] = {64, 172};
    cJSON_ReplaceItemInObject(matrix0(root), "weight_shape", cJSON_CreateIntArray(v, 2));
}
static void weight_twice(cJSON *root)
{
    cJSON *mats = cJSON_GetObjectItem(group(root, 0), "matrices");
    set_string(cJSON_GetArrayItem(mats, 1), "weight", "model.layers.0.mlp.gate_proj.weight");
}
static void role_unknown(cJSON *root) { set_string(matrix0(root), "role", "fc3"); }
static void layer_not_integer(cJSON *root) { set_number(matrix0(root), "layer", 0.5); }
static void groups_not_list(cJSON *root) { cJSON_ReplaceItemInObject(root, "groups", cJSON_CreateString("none")); }
static void architecture_other(cJSON *root) { set_string(root, "architecture", "gptj"); }
static void weight_not_mlp(cJSON *root)
{
    /* the layout claims a [172, 64] matrix that is not an MLP slot's weight */
    set_string(matrix0(root), "weight", "model.layers.0.self_attn.q_proj.weight");
}

/* Writes m to `valid` (freeing m) and checks that an unchanged copy loads. */
static void write_valid(fipsc_model *m, const char *copy_name)
{
    fipsc_error err = {0};
    CHECK_OK(fipsc_compressed_write(m, valid, NULL, &err), &err);
    fipsc_model_free(m);
    char path[4300];
    test_pathf(path, sizeof path, "%s/%s", tmp, copy_name);
    rewrite(path, &(mutation){0});
    fipsc_model *r = NULL;
    CHECK_OK(fipsc_model_load(path, &r, &err), &err);
    fipsc_model_free(r);
}

/* Version 2: the bitmap and 16-bit values. Group 0-1 has rank 44: ⌈44/8⌉ = 6 bytes per column,
 * the last with 4 padding bits. */
static void test_version2(void)
{
    char model_path[4096];
    test_path(model_path, sizeof model_path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    test_pathf(valid, sizeof valid, "%s/valid2.safetensors", tmp);
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(model_path, &m, &err), &err);
    if (!m) return;
    CHECK_OK(attach_svd_group_as(m, 0, 1, 44, 0.5, 0, 0, FIPSC_V_BITMAP, FIPSC_BF16, FIPSC_BF16, "fips", &err), &err);
    CHECK_OK(attach_svd_group_as(m, 2, 3, 48, 0, 2, 4, FIPSC_V_NM, FIPSC_F32, FIPSC_F16, "fips", &err), &err);
    write_valid(m, "copy2.safetensors");

    const char *bitmap = "model.layers.0.mlp.gate_proj.fips_v.bitmap",
               *values = "model.layers.0.mlp.gate_proj.fips_v.values",
               *nmval = "model.layers.2.mlp.gate_proj.fips_v.nm_values";
    const fipsc_status F = FIPSC_ERR_FORMAT;
    expect("bitmap-padding", &(mutation){.tensor = bitmap, .op = OP_POKE, .index = 5, .value = 0xF0}, F,
           "gate_proj.fips_v (V of 'model.layers.0.mlp.gate_proj.weight'): bitmap of column 0 marks a row >= r = 44");
    expect("bitmap-count", &(mutation){.tensor = bitmap, .op = OP_POKE, .index = 6, .value = 0xFF}, F,
           "the bitmap marks");
    expect("bitmap-shape", &(mutation){.tensor = bitmap, .op = OP_SHRINK}, F,
           "tensor 'model.layers.0.mlp.gate_proj.fips_v.bitmap' has shape [171, 6], expected [172, 6]");
    expect("bitmap-missing", &(mutation){.tensor = bitmap, .op = OP_DROP}, F,
           "missing tensor 'model.layers.0.mlp.gate_proj.fips_v.bitmap'");
    expect("bf16-value-nan", &(mutation){.tensor = values, .op = OP_POKE, .index = 3, .value = NAN}, F,
           "value 3 is not finite");
    expect("f16-value-inf", &(mutation){.tensor = nmval, .op = OP_POKE, .index = 0, .value = 1e6}, F,
           "value 0 is not finite");
    expect("v-dtype-mismatch", &(mutation){.edit_layout = v_dtype_f32}, F,
           "tensor 'model.layers.0.mlp.gate_proj.fips_v.values' has dtype BF16, expected F32");
    expect("v-dtype-int", &(mutation){.edit_layout = v_dtype_int}, F, "groups[0].v_dtype must be");
    expect("version-1-bitmap", &(mutation){.meta_key = "fipsc_format_version", .meta_value = "1"}, F,
           "groups[0] uses bitmap storage, which needs format version 2 (the file says 1)");
}

int main(void)
{
    char model_path[4096];
    test_path(model_path, sizeof model_path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    tmp = test_tmpdir("test_compressed_corrupt");
    test_pathf(valid, sizeof valid, "%s/valid.safetensors", tmp);
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(model_path, &m, &err), &err);
    if (!m) return test_summary("test_compressed_corrupt");
    CHECK_OK(attach_svd_group(m, 0, 1, 48, 0.5, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group(m, 2, 3, 48, 0, 2, 4, FIPSC_V_NM, "fips-init", &err), &err);
    CHECK_OK(attach_magnitude(m, 4, 0.5, &err), &err);
    write_valid(m, "copy.safetensors");
    char path[4300];

    const char *g0 = "model.layers.0.mlp.gate_proj.fips_v.", *nm = "model.layers.2.mlp.gate_proj.fips_v.";
    char colptr[128], rows[128], values[128], nmidx[128], nmval[128];
    snprintf(colptr, sizeof colptr, "%scol_ptr", g0);
    snprintf(rows, sizeof rows, "%srow_indices", g0);
    snprintf(values, sizeof values, "%svalues", g0);
    snprintf(nmidx, sizeof nmidx, "%snm_indices", nm);
    snprintf(nmval, sizeof nmval, "%snm_values", nm);
    const fipsc_status F = FIPSC_ERR_FORMAT;

    /* V arrays */
    expect("colptr-not-monotone", &(mutation){.tensor = colptr, .op = OP_POKE, .index = 5, .value = 0}, F,
           "gate_proj.fips_v (V of 'model.layers.0.mlp.gate_proj.weight'): col_ptr is not monotone: col_ptr[4]");
    expect("colptr-first", &(mutation){.tensor = colptr, .op = OP_POKE, .index = 0, .value = 1}, F, "col_ptr[0] is 1, must be 0");
    expect("colptr-past-nnz", &(mutation){.tensor = colptr, .op = OP_POKE, .index = 172, .value = 1e6}, F, "exceeds nnz");
    expect("row-index-too-big", &(mutation){.tensor = rows, .op = OP_POKE, .index = 0, .value = 48}, F, "is >= r = 48");
    expect("row-index-repeated", &(mutation){.tensor = rows, .op = OP_POKE, .index = 1, .value = 0}, F,
           "are not strictly increasing");
    expect("value-nan", &(mutation){.tensor = values, .op = OP_POKE, .index = 3, .value = NAN}, F, "value 3 is not finite");
    expect("nm-index-too-big", &(mutation){.tensor = nmidx, .op = OP_POKE, .index = 1, .value = 4}, F,
           "n:m index 4 (column 0, run 0) is >= m = 4");
    expect("nm-index-order", &(mutation){.tensor = nmidx, .op = OP_POKE, .index = 1, .value = 0}, F,
           "n:m indices of column 0, run 0 are not strictly increasing");
    expect("row-indices-u32", &(mutation){.tensor = rows, .op = OP_WIDEN}, F,
           "row_indices' has dtype U32, expected U16");
    expect("values-short", &(mutation){.tensor = values, .op = OP_SHRINK}, F, "gate_proj.fips_v.values' has shape");
    expect("nm-values-short", &(mutation){.tensor = nmval, .op = OP_SHRINK}, F, "nm_values' has shape [171, 12, 2], expected [172, 12, 2]");
    expect("nm-values-missing", &(mutation){.tensor = nmval, .op = OP_DROP}, F,
           "missing tensor 'model.layers.2.mlp.gate_proj.fips_v.nm_values'");
    expect("identity-colptr-missing", &(mutation){.tensor = "model.layers.4.mlp.down_proj.fips_v.col_ptr", .op = OP_DROP}, F,
           "missing tensor 'model.layers.4.mlp.down_proj.fips_v.col_ptr'");

    /* U */
    expect("u-missing", &(mutation){.tensor = "fips.groups.0.U", .op = OP_DROP}, F, "missing tensor 'fips.groups.0.U'");
    expect("u-shape", &(mutation){.tensor = "fips.groups.0.U", .op = OP_SHRINK}, F,
           "tensor 'fips.groups.0.U' has shape [63, 48], expected [64, 48]");
    expect("u-nan", &(mutation){.tensor = "fips.groups.1.U", .op = OP_POKE, .index = 7, .value = INFINITY}, F,
           "'fips.groups.1.U' holds a non-finite value at flat index 7");

    /* other tensors */
    expect("unexpected", &(mutation){.add = "model.layers.0.mlp.bogus"}, F, "unexpected tensor 'model.layers.0.mlp.bogus'");
    expect("dense-and-compressed", &(mutation){.add = "model.layers.1.mlp.up_proj.weight"}, F,
           "'model.layers.1.mlp.up_proj.weight' is stored both dense and compressed");
    expect("attention-missing", &(mutation){.tensor = "model.layers.3.self_attn.k_proj.weight", .op = OP_DROP},
           FIPSC_ERR_NOT_FOUND,
           "missing tensor 'model.layers.3.self_attn.k_proj.weight'");

    /* metadata */
    expect("version-newer", &(mutation){.meta_key = "fipsc_format_version", .meta_value = "3"}, FIPSC_ERR_UNSUPPORTED,
           "compressed format version 3 is newer than this fipsc reads (2)");
    expect("version-garbage", &(mutation){.meta_key = "fipsc_format_version", .meta_value = "1x"}, F,
           "fipsc_format_version is '1x', not a positive integer");
    expect("version-missing", &(mutation){.meta_key = "fipsc_format_version"}, F, "no \"fipsc_format_version\"");
    expect("config-missing", &(mutation){.meta_key = "config"}, F, "no \"config\"");
    expect("config-bad", &(mutation){.meta_key = "config", .meta_value = "{\"hidden_size\": 64}"}, F, "");
    expect("layout-missing", &(mutation){.meta_key = "fipsc_compression"}, F, "no \"fipsc_compression\"");
    expect("layout-not-json", &(mutation){.meta_key = "fipsc_compression", .meta_value = "[1,"}, F,
           "fipsc_compression is not a JSON object");
    expect("architecture", &(mutation){.edit_layout = architecture_other}, FIPSC_ERR_UNSUPPORTED,
           "compressed gptj models are not supported");
    expect("groups-not-list", &(mutation){.edit_layout = groups_not_list}, F, "groups must be a list");
    expect("nnz-inconsistent", &(mutation){.edit_layout = nnz_only}, F, "groups[0].matrices[0].sparsity must be");
    expect("nnz-mismatch", &(mutation){.edit_layout = nnz_plus_one}, F,
           "gate_proj.fips_v.values' has shape");
    expect("layer-moved", &(mutation){.edit_layout = layer_moved}, F,
           "compressed weight 'model.layers.0.mlp.gate_proj.weight' is not the gate matrix of block 1's MLP (that is "
           "model.layers.1.mlp.gate_proj.weight)");
    expect("layer-not-integer", &(mutation){.edit_layout = layer_not_integer}, F,
           "groups[0].matrices[0].layer must be an integer");
    expect("orientation", &(mutation){.edit_layout = orientation_flipped}, F,
           "orientation is 'contracting' but a gate matrix is expanding");
    expect("weight-shape", &(mutation){.edit_layout = weight_shape_wrong}, F, "weight_shape is [64, 172]");
    expect("overlap", &(mutation){.edit_layout = groups_overlap}, F, "groups[1] (layers 1-3) overlaps groups[0] (0-1)");
    expect("beyond-model", &(mutation){.edit_layout = group_too_far}, F, "group 2 covers layers 4-7 but the model has 5 blocks");
    expect("storage", &(mutation){.edit_layout = storage_unknown}, F, "groups[0].storage is 'coo'");
    expect("rank", &(mutation){.edit_layout = rank_changed}, F, "");
    expect("identity-rank", &(mutation){.edit_layout = identity_rank}, F, "identity basis but rank 60 != d 64");
    expect("nm-params", &(mutation){.edit_layout = nm_not_dividing}, F, "nm is 2:5");
    expect("weight-twice", &(mutation){.edit_layout = weight_twice}, F, "");
    expect("role", &(mutation){.edit_layout = role_unknown}, F, "role is 'fc3'");
    expect("weight-not-mlp", &(mutation){.edit_layout = weight_not_mlp}, F, "");

    /* the container itself */
    char *bytes = NULL;
    size_t size = 0;
    CHECK_OK(fipsc_read_file(valid, &bytes, &size, &err), &err);
    test_pathf(path, sizeof path, "%s/truncated.safetensors", tmp);
    FILE *out = fopen(path, "wb");
    if (out && bytes) {
        fwrite(bytes, 1, size - 100, out);
        fclose(out);
        m = NULL;
        CHECK(fipsc_model_load(path, &m, &err) != FIPSC_OK && m == NULL && strstr(err.message, "truncated.safetensors"));
    }
    free(bytes);
    test_version2();
    return test_summary("test_compressed_corrupt");
}
