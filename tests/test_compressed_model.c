/* Compressed models end to end on stories260K with synthetic groups (SVD of the real weights via
 * the FiPS core, then magnitude or n:m pruning; an identity-basis magnitude baseline; a dense
 * shared-SVD group):
 *   - attach replaces the dense MLP weights (nothing dense left), the footprint and parameter
 *     counts add up, and the compressed logits equal the dense reconstruction's within 1e-4
 *     relative (batched prefill and token-by-token decoding);
 *   - write + read gives the same logits bit for bit, never densifies, and writing the read
 *     model again gives the same bytes; U as F16 stays close and is smaller;
 *   - the file opens with the plain safetensors reader and holds the documented tensors and
 *     metadata, non-MLP tensors unchanged;
 *   - attach refuses invalid groups and leaves the model as it was. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama.h"
#include "families/registry.h"
#include "model/compressed.h"
#include "ops/factored.h"
#include "core/file.h"
#include "fips/fips.h"
#include "families/llama/runtime.h"
#include "formats/safetensors.h"
#include "compressed_fixture.h"
#include "core/isa.h"
#include "testutil.h"

enum { BATCH = 2, LEN = 24 };

static int32_t tokens[BATCH * LEN];
static char model_path[4096];

static fipsc_model *load_original(void)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(model_path, &m, &err), &err);
    return m;
}

static float *logits_of(const fipsc_model *m)
{
    fipsc_error err = {0};
    float *l = malloc((size_t)BATCH * LEN * fipsc_model_llama(m)->cfg.vocab_size * sizeof *l);
    CHECK_OK(fipsc_llama_forward(m, tokens, BATCH, LEN, l, NULL, &err), &err);
    return l;
}

/* max |a − b| / max |b| */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e;
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return d / s;
}

static size_t n_logits(const fipsc_model *m) { return (size_t)BATCH * LEN * fipsc_model_llama(m)->cfg.vocab_size; }

static bool file_bytes(const char *path, char **out, size_t *size)
{
    fipsc_error err = {0};
    return fipsc_read_file(path, out, size, &err) == FIPSC_OK;
}

/* Every MLP slot factored, no dense MLP weight tensor left. */
static void check_not_dense(const fipsc_model *m, const char *what)
{
    for (int l = 0; l < m->n_mlps; l++) {
        const fipsc_mlp *mlp = m->mlps[l];
        CHECK_MSG(mlp->gate.factored && mlp->up.factored && mlp->down.factored && !mlp->gate.w && !mlp->up.w &&
                      !mlp->down.w,
                  "%s: block %d is not fully factored", what, l);
    }
    for (int i = 0; i < m->n_tensors; i++)
        CHECK_MSG(!strstr(m->tensors[i].name, ".mlp."), "%s: dense MLP tensor %s present", what, m->tensors[i].name);
}

/* Batched prefill against a session that prefills half and decodes the rest one token at a time
 * (the one-row kernels). */
static void check_decode(const fipsc_model *m, const float *logits)
{
    fipsc_error err = {0};
    fipsc_llama_session *s = NULL;
    CHECK_OK(fipsc_llama_session_new(m, LEN, &s, &err), &err);
    if (!s) return;
    int V = fipsc_model_llama(m)->cfg.vocab_size;
    float *row = malloc((size_t)V * sizeof *row);
    CHECK_OK(fipsc_llama_session_prefill(s, tokens, LEN / 2, row, &err), &err);
    double worst = rel_diff(row, logits + (size_t)(LEN / 2 - 1) * V, (size_t)V);
    for (int i = LEN / 2; i < LEN; i++) {
        CHECK_OK(fipsc_llama_decode(s, tokens[i], row, &err), &err);
        double e = rel_diff(row, logits + (size_t)i * V, (size_t)V);
        if (!(e <= worst)) worst = e;
    }
    CHECK_MSG(worst <= 1e-4, "decode vs prefill: relative difference %.3g", worst);
    free(row);
    fipsc_llama_session_free(s);
}

static const char *str_of(const cJSON *item)
{
    const char *v = cJSON_GetStringValue(item);
    return v ? v : "";
}

/* The written file through the plain safetensors reader: metadata and documented tensors. */
static void check_plain_file(const char *path, const fipsc_model *original)
{
    fipsc_error err = {0};
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    if (!f) return;
    CHECK(strcmp(fipsc_st_meta(f, "fipsc_format") ? fipsc_st_meta(f, "fipsc_format") : "", "compressed") == 0);
    CHECK(strcmp(fipsc_st_meta(f, "fipsc_format_version") ? fipsc_st_meta(f, "fipsc_format_version") : "", "1") == 0);
    cJSON *cfg = cJSON_Parse(fipsc_st_meta(f, "config") ? fipsc_st_meta(f, "config") : "");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "hidden_size")) == 64);
    cJSON_Delete(cfg);
    cJSON *layout = cJSON_Parse(fipsc_st_meta(f, "fipsc_compression") ? fipsc_st_meta(f, "fipsc_compression") : "");
    const cJSON *groups = cJSON_GetObjectItem(layout, "groups");
    CHECK(strcmp(str_of(cJSON_GetObjectItem(layout, "architecture")), "llama") == 0);
    CHECK(cJSON_GetArraySize(groups) == 3);
    const cJSON *g0 = cJSON_GetArrayItem(groups, 0), *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(g0, "matrices"), 0);
    CHECK(strcmp(str_of(cJSON_GetObjectItem(g0, "storage")), "csc") == 0);
    CHECK(strcmp(str_of(cJSON_GetObjectItem(m0, "weight")), "model.layers.0.mlp.gate_proj.weight") == 0);
    CHECK(strcmp(str_of(cJSON_GetObjectItem(m0, "orientation")), "expanding") == 0);
    long long nnz = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(m0, "nnz"));
    cJSON_Delete(layout);

    const fipsc_st_tensor *t = fipsc_st_find(f, "fips.groups.0.U");
    CHECK(t && t->dtype == FIPSC_F32 && t->ndim == 2 && t->shape[0] == 64 && t->shape[1] == 48);
    t = fipsc_st_find(f, "model.layers.0.mlp.gate_proj.fips_v.values");
    CHECK(t && t->dtype == FIPSC_F32 && t->ndim == 1 && t->shape[0] == nnz);
    t = fipsc_st_find(f, "model.layers.0.mlp.gate_proj.fips_v.row_indices");
    CHECK(t && t->dtype == FIPSC_U16 && t->shape[0] == nnz);
    t = fipsc_st_find(f, "model.layers.0.mlp.gate_proj.fips_v.col_ptr");
    CHECK(t && t->dtype == FIPSC_U32 && t->shape[0] == 173);
    t = fipsc_st_find(f, "model.layers.2.mlp.down_proj.fips_v.nm_values");
    CHECK(t && t->dtype == FIPSC_F32 && t->ndim == 3 && t->shape[0] == 172 && t->shape[1] == 12 && t->shape[2] == 2);
    t = fipsc_st_find(f, "model.layers.2.mlp.down_proj.fips_v.nm_indices");
    CHECK(t && t->dtype == FIPSC_U8 && t->ndim == 3);
    t = fipsc_st_find(f, "model.layers.4.mlp.up_proj.fips_v.dense");
    CHECK(t && t->dtype == FIPSC_F32 && t->shape[0] == 32 && t->shape[1] == 172);
    CHECK(fipsc_st_find(f, "fips.groups.2.U") != NULL);
    CHECK(fipsc_st_find(f, "model.layers.0.mlp.gate_proj.weight") == NULL);
    /* every original non-MLP tensor, same bytes */
    for (int i = 0; i < original->n_tensors; i++) {
        const fipsc_tensor *o = &original->tensors[i];
        if (strstr(o->name, ".mlp.")) continue;
        t = fipsc_st_find(f, o->name);
        CHECK_MSG(t && t->dtype == FIPSC_F32 && t->nbytes == (size_t)fipsc_shape_numel(o->ndim, o->shape) * 4 &&
                      memcmp(t->data, o->data, t->nbytes) == 0,
                  "%s differs from the original", o->name);
    }
    fipsc_st_close(f);
}

static void test_groups(const char *dir)
{
    fipsc_error err = {0};
    fipsc_model *orig = load_original(), *m = load_original();
    if (!orig || !m) return;
    float *logits_orig = logits_of(orig);
    /* 0-1: SVD rank 48 + 50% magnitude, CSC; 2-3: rank 48, 2:4, n:m; 4: rank 32, dense V */
    CHECK_OK(attach_svd_group(m, 0, 1, 48, 0.5, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group(m, 2, 3, 48, 0, 2, 4, FIPSC_V_NM, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group(m, 4, 4, 32, 0, 0, 0, FIPSC_V_DENSE, "shared-svd", &err), &err);
    CHECK(fipsc_model_group_count(m) == 3 && fipsc_model_factored_count(m) == 15);
    check_not_dense(m, "attached");

    /* accounting */
    fipsc_mlp_footprint fp = fipsc_model_mlp_footprint(m);
    long long nnz = 0;
    for (int i = 0; i < fipsc_model_factored_count(m); i++) nnz += fipsc_model_factored_at(m, i)->nnz;
    CHECK(fp.dense_params == 165120 && fp.dense_bytes == 4 * 165120);
    CHECK(fp.kept_params == 64LL * 48 + 64 * 48 + 64 * 32 + nnz);
    CHECK_MSG(fp.stored_bytes < fp.dense_bytes, "stored %lld >= dense %lld", fp.stored_bytes, fp.dense_bytes);
    CHECK(fipsc_model_count_params(m).mlp == fp.kept_params);

    float *logits_c = logits_of(m);
    double drift = rel_diff(logits_c, logits_orig, n_logits(m));
    CHECK_MSG(drift > 1e-3, "compression changed nothing (relative %.3g): the test would not see it", drift);
    check_decode(m, logits_c);

    /* write, read back: same logits bit for bit, nothing densified */
    char path[4200], path2[4200], path16[4200];
    test_pathf(path, sizeof path, "%s/c.safetensors", dir);
    test_pathf(path2, sizeof path2, "%s/c2.safetensors", dir);
    test_pathf(path16, sizeof path16, "%s/c16.safetensors", dir);
    const char *extra[] = {"fipsc_report", "{\"note\": \"test\"}", NULL};
    CHECK_OK(fipsc_compressed_write(m, path, extra, &err), &err);
    CHECK(fipsc_compressed_is_file(path));
    fipsc_model *r = NULL;
    CHECK_OK(fipsc_model_load(path, &r, &err), &err);
    if (r) {
        check_not_dense(r, "read");
        CHECK(fipsc_model_group_count(r) == 3 && fipsc_model_factored_count(r) == 15);
        CHECK(strcmp(fipsc_model_group(r, 2)->method, "shared-svd") == 0 && fipsc_model_group(r, 1)->nm_m == 4);
        float *logits_r = logits_of(r);
        CHECK_MSG(memcmp(logits_r, logits_c, n_logits(m) * sizeof(float)) == 0, "read model: logits differ by %.3g",
                  rel_diff(logits_r, logits_c, n_logits(m)));
        free(logits_r);
        fipsc_mlp_footprint fr = fipsc_model_mlp_footprint(r);
        CHECK(fr.kept_params == fp.kept_params && fr.stored_bytes == fp.stored_bytes);
        /* written again: the same bytes */
        CHECK_OK(fipsc_compressed_write(r, path2, extra, &err), &err);
        char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        CHECK(file_bytes(path, &a, &na) && file_bytes(path2, &b, &nb) && na == nb && memcmp(a, b, na) == 0);
        free(a), free(b);
        /* the dense reconstruction gives the same logits within 1e-4 relative */
        CHECK_OK(fipsc_model_densify(r, &err), &err);
        CHECK(fipsc_model_factored_count(r) == 0 && r->mlps[0]->gate.w && !r->mlps[0]->gate.factored);
        CHECK(fipsc_model_find(r, "model.layers.3.mlp.down_proj.weight") != NULL);
        float *logits_d = logits_of(r);
        double e = rel_diff(logits_c, logits_d, n_logits(m));
        CHECK_MSG(e <= 1e-4, "compressed vs dense reconstruction: relative difference %.3g", e);
        free(logits_d);
        fipsc_model_free(r);
    }
    check_plain_file(path, orig);

    /* U as F16: half the U bytes, logits close */
    fipsc_compressed_write_opts o16 = {.u_dtype = FIPSC_F16};
    CHECK_OK(fipsc_compressed_write_ex(m, path16, NULL, &o16, &err), &err);
    r = NULL;
    CHECK_OK(fipsc_model_load(path16, &r, &err), &err);
    if (r) {
        CHECK(fipsc_model_group(r, 0)->u_dtype == FIPSC_F16);
        fipsc_mlp_footprint fr = fipsc_model_mlp_footprint(r);
        CHECK(fr.stored_bytes == fp.stored_bytes - 2LL * (64 * 48 + 64 * 48 + 64 * 32));
        float *logits_r = logits_of(r);
        double e = rel_diff(logits_r, logits_c, n_logits(m));
        CHECK_MSG(e > 0 && e <= 1e-2, "F16 U: relative difference %.3g", e);
        free(logits_r);
        fipsc_model_free(r);
    }
    fipsc_compressed_write_opts bad = {.u_dtype = FIPSC_I32};
    CHECK_FAILS(fipsc_compressed_write_ex(m, path16, NULL, &bad, &err), FIPSC_ERR_ARG, "not I32", &err);
    const char *reserved[] = {"config", "x", NULL};
    test_pathf(path2, sizeof path2, "%s/reserved.safetensors", dir);
    CHECK_FAILS(fipsc_compressed_write(m, path2, reserved, &err), FIPSC_ERR_ARG, "'config' is reserved", &err);
    FILE *fp2 = fopen(path2, "rb");
    CHECK(fp2 == NULL); /* nothing written */
    if (fp2) fclose(fp2);

    free(logits_c);
    free(logits_orig);
    fipsc_model_free(m);
    fipsc_model_free(orig);
}

/* The format version a file says. */
static int file_version(const char *path)
{
    fipsc_st_file *f = NULL;
    fipsc_error err = {0};
    if (fipsc_st_open(path, &f, &err)) return -1;
    const char *v = fipsc_st_meta(f, "fipsc_format_version");
    int version = v ? atoi(v) : -1;
    fipsc_st_close(f);
    return version;
}

/* Version 2: bitmap storage and 16-bit V values. The attached model holds the values rounded to
 * their dtype, so the file read back runs bit for bit what was attached; the bytes are what
 * the dtypes and the bitmap say; a model with nothing of version 2 is written as version 1. */
static void test_bitmap_and_16bit_values(const char *dir)
{
    fipsc_error err = {0};
    fipsc_model *m32 = load_original(), *m = load_original();
    if (!m32 || !m) return;
    CHECK_OK(attach_svd_group(m32, 0, 1, 48, 0.5, 0, 0, FIPSC_V_BITMAP, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group(m32, 2, 3, 48, 0, 2, 4, FIPSC_V_NM, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group(m32, 4, 4, 32, 0, 0, 0, FIPSC_V_DENSE, "shared-svd", &err), &err);
    CHECK_OK(attach_svd_group_as(m, 0, 1, 48, 0.5, 0, 0, FIPSC_V_BITMAP, FIPSC_BF16, FIPSC_BF16, "fips-init", &err),
             &err);
    CHECK_OK(attach_svd_group_as(m, 2, 3, 48, 0, 2, 4, FIPSC_V_NM, FIPSC_F32, FIPSC_F16, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group_as(m, 4, 4, 32, 0, 0, 0, FIPSC_V_DENSE, FIPSC_F16, FIPSC_BF16, "shared-svd", &err), &err);
    const fipsc_compressed_group *g0 = fipsc_model_group(m, 0);
    CHECK(g0->storage == FIPSC_V_BITMAP && g0->u_dtype == FIPSC_BF16 && g0->v_dtype == FIPSC_BF16);
    /* U held in its 16 bits (half the bytes of float32), a float32 U only for an F32 group */
    CHECK(g0->U16 && !g0->U && fipsc_group_basis_bytes(g0) == 2LL * g0->d * g0->r);
    CHECK(fipsc_model_group(m, 1)->U && !fipsc_model_group(m, 1)->U16 && fipsc_model_group(m, 2)->U16);
    /* held rounded: the values are BF16 values */
    for (int i = 0; i < fipsc_model_factored_count(m); i++) {
        const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
        if (fl->group != g0) continue;
        /* held as bfloat16: 2 bytes per value, and a 16-bit position per kept entry in memory or
         * (where the AVX-512 kernels run) the bitmap itself, one bit per input of each list */
        CHECK(fl->val16 && !fl->val);
        const int64_t index_bytes = fl->layout == FIPSC_VK_BITMAP ? 8LL * fl->n_lists * fl->words : 2 * fl->nnz;
        CHECK(fl->layout == (fipsc_isa_active() >= FIPSC_ISA_AVX2 ? FIPSC_VK_BITMAP : fl->expanding ? FIPSC_VK_CSC : FIPSC_VK_CSR));
        CHECK(fipsc_factored_memory_bytes(fl) == 2 * fl->nnz + index_bytes + 4LL * (fl->n_lists + 1));
    }
    /* bytes: block 0-1's bitmap V at 2 bytes per value against 4, U at 2 bytes per entry */
    int64_t v32 = 0, v16 = 0, nnz = 0;
    for (int i = 0; i < fipsc_model_factored_count(m32); i++)
        if (fipsc_model_factored_at(m32, i)->group == fipsc_model_group(m32, 0))
            v32 += fipsc_factored_v_bytes(fipsc_model_factored_at(m32, i));
    for (int i = 0; i < fipsc_model_factored_count(m); i++) {
        const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
        if (fl->group != g0) continue;
        v16 += fipsc_factored_v_bytes(fl);
        nnz += fl->nnz;
        CHECK(fipsc_factored_v_bytes(fl) == 2 * fl->nnz + (int64_t)fl->f * 6); /* ⌈48/8⌉ = 6 bytes per column */
    }
    CHECK_MSG(v32 - v16 == 2 * nnz, "bitmap V: %lld bytes as F32, %lld as BF16, %lld entries", (long long)v32,
              (long long)v16, (long long)nnz);
    float *logits_32 = logits_of(m32), *logits_c = logits_of(m);

    char path[4200], path2[4200], path1[4200];
    test_pathf(path, sizeof path, "%s/v16.safetensors", dir);
    test_pathf(path2, sizeof path2, "%s/v16-again.safetensors", dir);
    test_pathf(path1, sizeof path1, "%s/v32.safetensors", dir);
    CHECK_OK(fipsc_compressed_write(m, path, NULL, &err), &err);
    CHECK_MSG(file_version(path) == 2, "version %d", file_version(path));
    fipsc_model *r = NULL;
    CHECK_OK(fipsc_model_load(path, &r, &err), &err);
    if (r) {
        check_not_dense(r, "read");
        const fipsc_compressed_group *h0 = fipsc_model_group(r, 0), *h1 = fipsc_model_group(r, 1),
                                     *h2 = fipsc_model_group(r, 2);
        CHECK(h0->storage == FIPSC_V_BITMAP && h0->u_dtype == FIPSC_BF16 && h0->v_dtype == FIPSC_BF16);
        CHECK(h1->storage == FIPSC_V_NM && h1->u_dtype == FIPSC_F32 && h1->v_dtype == FIPSC_F16);
        CHECK(h2->storage == FIPSC_V_DENSE && h2->u_dtype == FIPSC_F16 && h2->v_dtype == FIPSC_BF16);
        CHECK(h0->U16 && !h0->U && h1->U && !h1->U16 && h2->U16 && !h2->U); /* as attach holds them */
        float *logits_r = logits_of(r);
        CHECK_MSG(memcmp(logits_r, logits_c, n_logits(m) * sizeof(float)) == 0, "read model: logits differ by %.3g",
                  rel_diff(logits_r, logits_c, n_logits(m)));
        free(logits_r);
        fipsc_mlp_footprint fm = fipsc_model_mlp_footprint(m), fr = fipsc_model_mlp_footprint(r);
        CHECK(fr.kept_params == fm.kept_params && fr.stored_bytes == fm.stored_bytes);
        CHECK_OK(fipsc_compressed_write(r, path2, NULL, &err), &err); /* each group keeps its dtypes */
        char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        CHECK(file_bytes(path, &a, &na) && file_bytes(path2, &b, &nb) && na == nb && memcmp(a, b, na) == 0);
        free(a), free(b);
        fipsc_model_free(r);
    }
    /* a BF16-held U written as F16: widened, then rounded to F16 (the writer's own buffer) */
    fipsc_compressed_write_opts o16 = {.u_dtype = FIPSC_F16};
    CHECK_OK(fipsc_compressed_write_ex(m, path2, NULL, &o16, &err), &err);
    r = NULL;
    CHECK_OK(fipsc_model_load(path2, &r, &err), &err);
    if (r) {
        const fipsc_compressed_group *h0 = fipsc_model_group(r, 0);
        CHECK(h0->u_dtype == FIPSC_F16 && h0->U16);
        size_t n = (size_t)h0->d * h0->r;
        float *u_bf16 = malloc(n * sizeof *u_bf16), *u_f16 = malloc(n * sizeof *u_f16);
        fipsc_group_basis_f32(g0, u_bf16);
        fipsc_group_basis_f32(h0, u_f16);
        CHECK(fipsc_round_to_dtype(FIPSC_F16, u_bf16, n) < 0);
        CHECK(memcmp(u_bf16, u_f16, n * sizeof *u_f16) == 0);
        free(u_bf16), free(u_f16);
        fipsc_model_free(r);
    }
    /* the 16-bit values move the logits a little: far less than the compression itself did (a
     * bound relative to that, so it holds whatever the CPU's rounding of the float32 parts) */
    fipsc_model *orig = load_original();
    if (orig) {
        float *logits_orig = logits_of(orig);
        double e = rel_diff(logits_c, logits_32, n_logits(m)), c = rel_diff(logits_32, logits_orig, n_logits(m));
        CHECK_MSG(e > 0 && e <= 0.1 * c, "16-bit U and V against float32: relative difference %.3g, compression's %.3g",
                  e, c);
        free(logits_orig);
        fipsc_model_free(orig);
    }
    /* bitmap storage alone is version 2; nothing of version 2 is version 1 */
    CHECK_OK(fipsc_compressed_write(m32, path1, NULL, &err), &err);
    CHECK(file_version(path1) == 2);
    fipsc_model *plain = load_original();
    if (plain) {
        CHECK_OK(attach_svd_group(plain, 0, 1, 48, 0.5, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
        CHECK_OK(fipsc_compressed_write(plain, path1, NULL, &err), &err);
        CHECK(file_version(path1) == 1);
        fipsc_model_free(plain);
    }
    /* a value F16 cannot hold is refused when attached, naming the dtype */
    fipsc_model *big = load_original();
    if (big) {
        float *w = (float *)fipsc_model_find(big, "model.layers.0.mlp.gate_proj.weight")->data;
        w[0] = 1e6f;
        /* U's columns are orthonormal; the weight's scale is in V */
        CHECK_FAILS(attach_svd_group_as(big, 0, 0, 32, 0, 0, 0, FIPSC_V_DENSE, FIPSC_F32, FIPSC_F16, "fips", &err),
                    FIPSC_ERR_NUMERIC, "beyond what F16 can hold", &err);
        CHECK(fipsc_model_group_count(big) == 0);
        fipsc_model_free(big);
    }
    free(logits_32);
    free(logits_c);
    fipsc_model_free(m);
    fipsc_model_free(m32);
}

/* The magnitude baseline: identity basis (no U), every block its own group. */
static void test_identity(const char *dir)
{
    fipsc_error err = {0};
    fipsc_model *m = load_original();
    if (!m) return;
    for (int l = 0; l < 5; l++) CHECK_OK(attach_magnitude(m, l, 0.6, &err), &err);
    fipsc_mlp_footprint fp = fipsc_model_mlp_footprint(m);
    CHECK_MSG(fp.kept_params <= 165120 * 0.41 && fp.kept_params >= 165120 * 0.39, "kept %lld", fp.kept_params);
    float *logits_c = logits_of(m);
    check_decode(m, logits_c);
    char path[4200];
    test_pathf(path, sizeof path, "%s/magnitude.safetensors", dir);
    CHECK_OK(fipsc_compressed_write(m, path, NULL, &err), &err);
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    CHECK(f && !fipsc_st_find(f, "fips.groups.0.U"));
    fipsc_st_close(f);
    fipsc_model *r = NULL;
    CHECK_OK(fipsc_model_load(path, &r, &err), &err);
    if (r) {
        check_not_dense(r, "identity read");
        CHECK(fipsc_model_group(r, 0)->U == NULL && fipsc_model_group(r, 0)->r == 64);
        float *logits_r = logits_of(r);
        CHECK(memcmp(logits_r, logits_c, n_logits(r) * sizeof(float)) == 0);
        CHECK_OK(fipsc_model_densify(r, &err), &err);
        float *logits_d = logits_of(r);
        double e = rel_diff(logits_c, logits_d, n_logits(r));
        CHECK_MSG(e <= 1e-4, "identity basis vs dense: relative difference %.3g", e);
        free(logits_r), free(logits_d);
        fipsc_model_free(r);
    }
    free(logits_c);
    fipsc_model_free(m);
}

/* Rejected groups leave the model as it was. */
static void test_attach_errors(void)
{
    fipsc_error err = {0};
    fipsc_model *m = load_original();
    if (!m) return;
    CHECK_OK(attach_svd_group(m, 0, 1, 32, 0.5, 0, 0, FIPSC_V_CSC, "fips", &err), &err);
    float *before = logits_of(m);
    int tensors = m->n_tensors;
    /* magnitude-pruned V stored as n:m: not 2:4 */
    CHECK_FAILS(attach_svd_group(m, 2, 3, 32, 0.5, 2, 4, FIPSC_V_NM, "fips", &err), FIPSC_ERR_ARG,
                "hold more than 2 nonzeros: not 2:4 sparse", &err);
    CHECK_FAILS(attach_svd_group(m, 2, 3, 32, 0.5, 0, 0, FIPSC_V_CSC, "two words", &err), FIPSC_ERR_ARG,
                "method name", &err);

    float V[64 * 172] = {0}, U[64 * 32] = {0};
    fipsc_group_matrix twice[2] = {{2, FIPSC_ROLE_UP, V}, {2, FIPSC_ROLE_UP, V}};
    fipsc_group_spec spec = {.first_layer = 2, .last_layer = 2, .d = 64, .r = 32, .U = U, .n_matrices = 2,
                             .matrices = twice, .storage = FIPSC_V_CSC, .method = "fips"};
    CHECK_FAILS(fipsc_model_attach_group(m, &spec, &err), FIPSC_ERR_ARG, "block 2's up matrix is listed twice", &err);
    spec.n_matrices = 1;
    spec.U = NULL;
    CHECK_FAILS(fipsc_model_attach_group(m, &spec, &err), FIPSC_ERR_ARG, "identity basis (U NULL) but rank 32", &err);
    spec.U = U;
    twice[0].layer = 3;
    CHECK_FAILS(fipsc_model_attach_group(m, &spec, &err), FIPSC_ERR_ARG, "matrix 0 is in block 3, outside group 2-2",
                &err);
    twice[0].layer = 2;
    spec.first_layer = 1;
    CHECK_FAILS(fipsc_model_attach_group(m, &spec, &err), FIPSC_ERR_ARG, "group 1-2 overlaps the compressed group 0-1",
                &err);
    twice[0].layer = 0;
    spec.first_layer = spec.last_layer = 0;
    CHECK_FAILS(fipsc_model_attach_group(m, &spec, &err), FIPSC_ERR_ARG, "overlaps", &err);
    spec.first_layer = spec.last_layer = 2;
    twice[0].layer = 2;
    spec.r = 30;
    spec.storage = FIPSC_V_NM, spec.nm_n = 2, spec.nm_m = 4;
    CHECK_FAILS(fipsc_model_attach_group(m, &spec, &err), FIPSC_ERR_ARG, "needs a rank that is a multiple of 4, got 30",
                &err);
    spec.r = 32;
    spec.storage = FIPSC_V_CSC;
    V[5] = NAN;
    CHECK_FAILS(fipsc_model_attach_group(m, &spec, &err), FIPSC_ERR_NUMERIC, "is not finite", &err);
    V[5] = 0;
    spec.last_layer = 7;
    CHECK_FAILS(fipsc_model_attach_group(m, &spec, &err), FIPSC_ERR_ARG, "outside the model's blocks 0-4", &err);

    CHECK(m->n_tensors == tensors && fipsc_model_group_count(m) == 1);
    float *after = logits_of(m);
    CHECK(memcmp(before, after, n_logits(m) * sizeof(float)) == 0);
    free(before), free(after);
    fipsc_model_free(m);
}

int main(void)
{
    test_path(model_path, sizeof model_path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    uint64_t s = 12345;
    for (int i = 0; i < BATCH * LEN; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        tokens[i] = (int32_t)((s >> 33) % 512);
    }
    tokens[0] = tokens[LEN] = 1; /* BOS */
    const char *dir = test_tmpdir("test_compressed_model");
    test_groups(dir);
    test_identity(dir);
    test_bitmap_and_16bit_values(dir);
    test_attach_errors();
    return test_summary("test_compressed_model");
}
