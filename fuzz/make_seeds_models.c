/* Seeds of the model loaders (fuzz/make_seeds.h): llama2.c files, GGUF files, compressed models (every V
 * storage, U dtype and method; a ViT), and whole checkpoints as the loader meets them (config in
 * __metadata__ or beside the weights, Llama and ViT, compressed), compression checkpoints. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "checkpoint_fixture.h"
#include "compress/compress_model.h"
#include "core/file.h"
#include "families/llama/gguf.h"
#include "families/llama/llama2c.h"
#include "families/registry.h"
#include "model/compressed.h"
#include "families/llama/hf.h"
#include "model/model.h"
#include "formats/safetensors.h"
#include "make_seeds.h"

/* ------------------------------------------------------------------ llama2.c */

/* A complete llama2.c file: header, then every array filled with a small pattern. */
static void llama2c_file(buf *b, int dim, int hidden, int layers, int heads, int kv_heads,
                         int vocab, int seq, bool shared)
{
    seed_put_i32(b, dim);
    seed_put_i32(b, hidden);
    seed_put_i32(b, layers);
    seed_put_i32(b, heads);
    seed_put_i32(b, kv_heads);
    seed_put_i32(b, shared ? vocab : -vocab);
    seed_put_i32(b, seq);
    int hs = dim / heads, kv_dim = kv_heads * hs;
    long n = (long)vocab * dim + (long)layers * dim + 2L * layers * dim * dim + 2L * layers * kv_dim * dim +
             (long)layers * dim + 3L * layers * hidden * dim + dim + (long)seq * hs +
             (shared ? 0 : (long)vocab * dim);
    for (long i = 0; i < n; i++) seed_put_f32(b, seed_pattern((int)i));
}

void seed_llama2c(void)
{
    buf b = {0};
    llama2c_file(&b, 4, 6, 2, 2, 1, 5, 3, true);
    seed_write("fuzz_llama2c", "shared_gqa.bin", b.p, b.n);
    free(b.p);
    b = (buf){0};
    llama2c_file(&b, 8, 4, 1, 2, 2, 3, 2, false);
    seed_write("fuzz_llama2c", "separate_cls.bin", b.p, b.n);
    free(b.p);
    b = (buf){0};
    llama2c_file(&b, 2, 1, 1, 1, 1, 1, 1, true);
    seed_write("fuzz_llama2c", "smallest.bin", b.p, b.n);
    free(b.p);
    /* Near-miss: one float short. */
    b = (buf){0};
    llama2c_file(&b, 4, 2, 1, 1, 1, 2, 1, true);
    seed_write("fuzz_llama2c", "truncated.bin", b.p, b.n - 4);
    free(b.p);
}

/* ------------------------------------------------------------------ compressed models */

/* A tiny llama2.c model (dim 4, hidden 6, 2 layers) with one group attached per `spec`, written
 * as a compressed file. V entries follow a pattern with zeros where the storage prunes. */
static void compressed_seed(const char *target, const char *name, int first, int last, int r, bool identity,
                            fipsc_v_storage storage, int nm_n, int nm_m, fipsc_dtype u_dtype,
                            fipsc_dtype v_dtype, const char *method)
{
    buf b = {0};
    llama2c_file(&b, 4, 6, 2, 2, 1, 5, 3, true);
    fipsc_model *m;
    fipsc_error err;
    seed_check(fipsc_load_llama2c_buffer(b.p, b.n, "tiny", &m, &err), &err);
    free(b.p);
    const int d = 4, f = 6;
    float U[4 * 4];
    for (int i = 0; i < d * r; i++) U[i] = seed_pattern(i + 3);
    enum { MAX_MATS = 6 };
    float V[MAX_MATS][4 * 6];
    fipsc_group_matrix mats[MAX_MATS];
    int n = 0;
    for (int layer = first; layer <= last; layer++)
        for (int role = FIPSC_ROLE_GATE; role <= FIPSC_ROLE_DOWN; role++, n++) {
            for (int i = 0; i < r; i++)
                for (int j = 0; j < f; j++) {
                    float v = seed_pattern(n * 31 + i * f + j) + 0.03125f;
                    bool keep = storage == FIPSC_V_DENSE ? true
                                : storage == FIPSC_V_NM  ? (i % nm_m) < nm_n && ((i / nm_m + j) % 2 == 0 || nm_n == nm_m)
                                                         : (i + j + n) % 3 != 0;
                    V[n][i * f + j] = keep ? v : 0.0f;
                }
            mats[n] = (fipsc_group_matrix){.layer = layer, .role = (fipsc_mlp_role)role, .V = V[n]};
        }
    fipsc_group_spec g = {.first_layer = first, .last_layer = last, .d = d, .r = r,
                          .U = identity ? NULL : U, .n_matrices = n, .matrices = mats,
                          .storage = storage, .nm_n = nm_n, .nm_m = nm_m, .method = method,
                          .u_dtype = identity ? FIPSC_F32 : u_dtype, .v_dtype = v_dtype};
    seed_check(fipsc_model_attach_group(m, &g, &err), &err);
    char path[8192];
    seed_path(path, sizeof path, "%s/%s", seed_temp_dir, name);
    seed_check(fipsc_compressed_write(m, path, NULL, &err), &err);
    fipsc_model_free(m);
    b = (buf){0};
    seed_take_temp(name, &b);
    seed_write(target, name, b.p, b.n);
    free(b.p);
}

void seed_compressed(void)
{
    const char *t = "fuzz_compressed";
    compressed_seed(t, "fips_csc.safetensors", 0, 1, 2, false, FIPSC_V_CSC, 0, 0, FIPSC_F32, FIPSC_F32, "fips");
    compressed_seed(t, "nm_1of2_layer0.safetensors", 0, 0, 2, false, FIPSC_V_NM, 1, 2, FIPSC_F32, FIPSC_F32, "fips");
    compressed_seed(t, "svd_dense_f16.safetensors", 1, 1, 3, false, FIPSC_V_DENSE, 0, 0, FIPSC_F16, FIPSC_F32, "svd");
    compressed_seed(t, "magnitude_identity.safetensors", 0, 1, 4, true, FIPSC_V_CSC, 0, 0, FIPSC_F32, FIPSC_F32,
                    "magnitude");
    /* format version 2 */
    compressed_seed(t, "fips_bitmap_bf16.safetensors", 0, 1, 3, false, FIPSC_V_BITMAP, 0, 0, FIPSC_BF16, FIPSC_BF16,
                    "fips");
    compressed_seed(t, "nm_f16_values.safetensors", 0, 0, 2, false, FIPSC_V_NM, 1, 2, FIPSC_F32, FIPSC_F16, "fips");
    compressed_seed(t, "magnitude_bitmap_f16.safetensors", 1, 1, 4, true, FIPSC_V_BITMAP, 0, 0, FIPSC_F32,
                    FIPSC_F16, "magnitude");
}

/* ------------------------------------------------------------------ whole checkpoints */

/* The tensors of an opened file into a new writer, without its metadata. */
static fipsc_st_writer *copy_tensors(const fipsc_st_file *f)
{
    fipsc_st_writer *w = fipsc_st_writer_new();
    fipsc_error err;
    for (int i = 0; i < fipsc_st_count(f); i++) {
        const fipsc_st_tensor *t = fipsc_st_at(f, i);
        seed_check(fipsc_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err), &err);
    }
    return w;
}

/* A tiny ViT (d 4, 1 layer, 2 heads, MLP 8, 4 × 4 gray images, patch 2, 2 labels). */
static const char vit_config[] =
    "{\"architectures\": [\"ViTForImageClassification\"], \"model_type\": \"vit\", \"hidden_size\": 4,"
    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 8, \"image_size\": 4,"
    " \"patch_size\": 2, \"num_channels\": 1, \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-12,"
    " \"qkv_bias\": true, \"id2label\": {\"0\": \"zero\", \"1\": \"one\"}}";

static const char gpt2_config[] =
    "{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\", \"vocab_size\": 5,"
    " \"n_positions\": 3, \"n_embd\": 4, \"n_layer\": 1, \"n_head\": 2, \"n_inner\": 6,"
    " \"bos_token_id\": 0, \"eos_token_id\": 1}";

static fipsc_st_writer *gpt2_writer(void)
{
    fipsc_st_writer *w = fipsc_st_writer_new();
    const int d = 4, f = 6;
    static const char *const vectors_d[] = {"h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_proj.bias",
                                            "h.0.ln_2.weight", "h.0.ln_2.bias", "h.0.mlp.c_proj.bias",
                                            "ln_f.weight",     "ln_f.bias"};
    for (size_t i = 0; i < sizeof vectors_d / sizeof vectors_d[0]; i++)
        seed_st_add_f32(w, vectors_d[i], 1, (int64_t[]){d}, FIPSC_F32);
    seed_st_add_f32(w, "wte.weight", 2, (int64_t[]){5, d}, FIPSC_F32);
    seed_st_add_f32(w, "wpe.weight", 2, (int64_t[]){3, d}, FIPSC_F32);
    seed_st_add_f32(w, "h.0.attn.bias", 4, (int64_t[]){1, 1, 3, 3}, FIPSC_F32);
    seed_st_add_f32(w, "h.0.attn.c_attn.weight", 2, (int64_t[]){d, 3 * d}, FIPSC_F32);
    seed_st_add_f32(w, "h.0.attn.c_attn.bias", 1, (int64_t[]){3 * d}, FIPSC_F32);
    seed_st_add_f32(w, "h.0.attn.c_proj.weight", 2, (int64_t[]){d, d}, FIPSC_F32);
    seed_st_add_f32(w, "h.0.mlp.c_fc.weight", 2, (int64_t[]){d, f}, FIPSC_BF16);
    seed_st_add_f32(w, "h.0.mlp.c_fc.bias", 1, (int64_t[]){f}, FIPSC_F32);
    seed_st_add_f32(w, "h.0.mlp.c_proj.weight", 2, (int64_t[]){f, d}, FIPSC_F16);
    return w;
}

static fipsc_st_writer *vit_writer(void)
{
    fipsc_st_writer *w = fipsc_st_writer_new();
    const int d = 4, f = 8;
    static const char *const vectors_d[] = {
        "vit.embeddings.patch_embeddings.projection.bias", "vit.encoder.layer.0.layernorm_before.weight",
        "vit.encoder.layer.0.layernorm_before.bias", "vit.encoder.layer.0.attention.attention.query.bias",
        "vit.encoder.layer.0.attention.attention.key.bias", "vit.encoder.layer.0.attention.attention.value.bias",
        "vit.encoder.layer.0.attention.output.dense.bias", "vit.encoder.layer.0.layernorm_after.weight",
        "vit.encoder.layer.0.layernorm_after.bias", "vit.encoder.layer.0.output.dense.bias",
        "vit.layernorm.weight", "vit.layernorm.bias"};
    for (size_t i = 0; i < sizeof vectors_d / sizeof vectors_d[0]; i++)
        seed_st_add_f32(w, vectors_d[i], 1, (int64_t[]){d}, FIPSC_F32);
    static const char *const square[] = {
        "vit.encoder.layer.0.attention.attention.query.weight", "vit.encoder.layer.0.attention.attention.key.weight",
        "vit.encoder.layer.0.attention.attention.value.weight", "vit.encoder.layer.0.attention.output.dense.weight"};
    for (size_t i = 0; i < sizeof square / sizeof square[0]; i++)
        seed_st_add_f32(w, square[i], 2, (int64_t[]){d, d}, FIPSC_F32);
    seed_st_add_f32(w, "vit.embeddings.cls_token", 3, (int64_t[]){1, 1, d}, FIPSC_F32);
    seed_st_add_f32(w, "vit.embeddings.position_embeddings", 3, (int64_t[]){1, 5, d}, FIPSC_F32);
    seed_st_add_f32(w, "vit.embeddings.patch_embeddings.projection.weight", 4, (int64_t[]){d, 1, 2, 2}, FIPSC_F32);
    seed_st_add_f32(w, "vit.encoder.layer.0.intermediate.dense.weight", 2, (int64_t[]){f, d}, FIPSC_F16);
    seed_st_add_f32(w, "vit.encoder.layer.0.intermediate.dense.bias", 1, (int64_t[]){f}, FIPSC_F32);
    seed_st_add_f32(w, "vit.encoder.layer.0.output.dense.weight", 2, (int64_t[]){d, f}, FIPSC_BF16);
    seed_st_add_f32(w, "classifier.weight", 2, (int64_t[]){2, d}, FIPSC_F32);
    seed_st_add_f32(w, "classifier.bias", 1, (int64_t[]){2}, FIPSC_F32);
    return w;
}

/* The tiny ViT with its one block's MLP (fc1, fc2) compressed: d 4, f 8, rank 2, CSC. */
static void vit_compressed_seed(const char *target, const char *name)
{
    fipsc_error err;
    fipsc_st_writer *w = vit_writer();
    seed_check(fipsc_st_writer_set_meta(w, "config", vit_config, &err), &err);
    buf b = {0};
    char path[8192];
    seed_path(path, sizeof path, "%s/vit.safetensors", seed_temp_dir);
    seed_check(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_writer_free(w);
    fipsc_model *m;
    seed_check(fipsc_model_load(path, &m, &err), &err);
    unlink(path);
    const int d = 4, f = 8, r = 2;
    float U[4 * 2], V[2][2 * 8];
    for (int i = 0; i < d * r; i++) U[i] = seed_pattern(i + 5);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < r * f; i++) V[k][i] = (i + k) % 3 ? seed_pattern(i * 3 + k) + 0.0625f : 0.0f;
    fipsc_group_matrix mats[2] = {{.layer = 0, .role = FIPSC_ROLE_UP, .V = V[0]},
                                  {.layer = 0, .role = FIPSC_ROLE_DOWN, .V = V[1]}};
    fipsc_group_spec g = {.first_layer = 0, .last_layer = 0, .d = d, .r = r, .U = U, .n_matrices = 2,
                          .matrices = mats, .storage = FIPSC_V_CSC, .method = "fips"};
    seed_check(fipsc_model_attach_group(m, &g, &err), &err);
    seed_path(path, sizeof path, "%s/%s", seed_temp_dir, name);
    seed_check(fipsc_compressed_write(m, path, NULL, &err), &err);
    fipsc_model_free(m);
    seed_take_temp(name, &b);
    seed_write(target, name, b.p, b.n);
    free(b.p);
}

void seed_model_load(void)
{
    const char *target = "fuzz_model_load";
    fipsc_error err;
    /* Llama family, as fipsc_hf_write_dir writes it (config in __metadata__). */
    buf b = {0};
    llama2c_file(&b, 4, 6, 2, 2, 1, 5, 3, true);
    fipsc_model *m;
    seed_check(fipsc_load_llama2c_buffer(b.p, b.n, "tiny", &m, &err), &err);
    free(b.p);
    char dir[8192];
    seed_path(dir, sizeof dir, "%s/hf", seed_temp_dir);
    seed_check(fipsc_hf_write_llama_dir(m, dir, false, &err), &err);
    fipsc_model_free(m);
    b = (buf){0};
    seed_take_temp("hf/model.safetensors", &b);
    seed_write(target, "llama_config_in_metadata", b.p, b.n);
    free(b.p);
    /* The same weights without metadata, config.json beside them (in the bundle). */
    char path[8192];
    seed_path(path, sizeof path, "%s/hf/model.safetensors", seed_temp_dir);
    b = (buf){0};
    llama2c_file(&b, 4, 6, 2, 2, 1, 5, 3, true);
    seed_check(fipsc_load_llama2c_buffer(b.p, b.n, "tiny", &m, &err), &err);
    free(b.p);
    seed_check(fipsc_hf_write_llama_dir(m, dir, true, &err), &err);
    fipsc_model_free(m);
    fipsc_st_file *f;
    seed_check(fipsc_st_open(path, &f, &err), &err);
    fipsc_st_writer *w = copy_tensors(f);
    b = (buf){0};
    seed_st_write_temp(w, "bare.safetensors", &b);
    fipsc_st_writer_free(w);
    fipsc_st_close(f);
    unlink(path);
    seed_put_part(&b, "config.json");
    seed_take_temp("hf/config.json", &b);
    seed_write(target, "llama_config_beside", b.p, b.n);
    free(b.p);
    seed_path(path, sizeof path, "%s/hf", seed_temp_dir);
    rmdir(path);

    /* ViT with the config in __metadata__; then without it, config.json and
     * preprocessor_config.json beside it. */
    w = vit_writer();
    seed_check(fipsc_st_writer_set_meta(w, "config", vit_config, &err), &err);
    b = (buf){0};
    seed_st_write_temp(w, "vit.safetensors", &b);
    seed_write(target, "vit_config_in_metadata", b.p, b.n);
    free(b.p);
    fipsc_st_writer_free(w);
    w = vit_writer();
    b = (buf){0};
    seed_st_write_temp(w, "vit.safetensors", &b);
    seed_put_part(&b, "config.json");
    seed_puts(&b, vit_config);
    seed_put_part(&b, "preprocessor_config.json");
    seed_puts(&b, "{\"do_resize\": true, \"size\": {\"height\": 4, \"width\": 4}, \"resample\": 2,"
                  " \"image_mean\": [0.5], \"image_std\": [0.5], \"image_processor_type\": \"ViTImageProcessor\"}");
    seed_write(target, "vit_config_beside", b.p, b.n);
    free(b.p);
    fipsc_st_writer_free(w);

    /* GPT-2 with a bare GPT2Model's names, Conv1D weights [in, out], a mask buffer, BF16 MLP. */
    w = gpt2_writer();
    seed_check(fipsc_st_writer_set_meta(w, "config", gpt2_config, &err), &err);
    b = (buf){0};
    seed_st_write_temp(w, "gpt2.safetensors", &b);
    seed_write(target, "gpt2_config_in_metadata", b.p, b.n);
    free(b.p);
    fipsc_st_writer_free(w);

    /* A compressed file goes to the compressed reader. */
    compressed_seed(target, "compressed_fips_csc", 0, 1, 2, false, FIPSC_V_CSC, 0, 0, FIPSC_F32, FIPSC_F32, "fips");
    vit_compressed_seed(target, "compressed_vit");
    vit_compressed_seed("fuzz_compressed", "vit_csc.safetensors");
}

/* ------------------------------------------------------------------ GGUF */

/* A tiny llama2.c model written as GGUF of the given type, into b. */
static void gguf_file(buf *b, int dim, int hidden, fipsc_ggml_type type)
{
    buf src = {0};
    llama2c_file(&src, dim, hidden, 1, 2, 1, 5, 2, true);
    fipsc_model *m;
    fipsc_error err = {0};
    seed_check(fipsc_load_llama2c_buffer(src.p, src.n, "tiny.bin", &m, &err), &err);
    free(src.p);
    char path[4200];
    seed_path(path, sizeof path, "%s/tiny.gguf", seed_temp_dir);
    seed_check(fipsc_llama_gguf_export(m, path, type, NULL, NULL, true, &err), &err);
    fipsc_model_free(m);
    seed_take_temp("tiny.gguf", b);
}

void seed_gguf(void)
{
    buf b = {0};
    gguf_file(&b, 4, 6, FIPSC_GGML_F32);
    seed_write("fuzz_gguf", "f32.gguf", b.p, b.n);
    /* the same as GGUF version 2 (laid out alike) */
    b.p[4] = 2;
    seed_write("fuzz_gguf", "f32_v2.gguf", b.p, b.n);
    /* near-miss: the last tensor's bytes cut short */
    seed_write("fuzz_gguf", "truncated.gguf", b.p, b.n - 40);
    free(b.p);
    b = (buf){0};
    gguf_file(&b, 32, 32, FIPSC_GGML_Q8_0);
    seed_write("fuzz_gguf", "q8_0.gguf", b.p, b.n);
    free(b.p);
    b = (buf){0};
    gguf_file(&b, 32, 64, FIPSC_GGML_Q4_0);
    seed_write("fuzz_gguf", "q4_0.gguf", b.p, b.n);
    free(b.p);
    b = (buf){0};
    gguf_file(&b, 4, 6, FIPSC_GGML_BF16);
    seed_write("fuzz_gguf", "bf16.gguf", b.p, b.n);
    free(b.p);
}

/* ------------------------------------------------------------------ compression checkpoints */

/* fuzz_checkpoint: the checkpoint image of the fixture's one group (fuzz/checkpoint_fixture.h),
 * made by a real run, whole and truncated inside its tensors. */
void seed_checkpoint(void)
{
    char model_path[8192], dir[8192], group[8192];
    seed_path(model_path, sizeof model_path, "%s/checkpoint-model.bin", seed_temp_dir);
    seed_path(dir, sizeof dir, "%s/checkpoints", seed_temp_dir);
    seed_path(group, sizeof group, "%s/group-000.safetensors", dir);
    if (!checkpoint_fixture_write_model(model_path)) seed_die(model_path);
    fipsc_error err;
    fipsc_model *m = NULL;
    seed_check(fipsc_model_load(model_path, &m, &err), &err);
    fipsc_compress_settings s;
    fipsc_settings_init(&s);
    if (!checkpoint_fixture_settings(&s)) seed_die("checkpoint fixture settings");
    fipsc_compress_checkpoint ck = {.dir = dir, .resume = false};
    fipsc_compress_report *rep = NULL;
    char calib_desc[256];
    seed_check(fipsc_compress_model(m, &s, &ck, NULL, NULL, NULL, NULL, &rep, calib_desc, sizeof calib_desc, &err),
               &err);
    char *bytes;
    size_t size;
    seed_check(fipsc_read_file(group, &bytes, &size, &err), &err);
    seed_write("fuzz_checkpoint", "group.safetensors", bytes, size);
    seed_write("fuzz_checkpoint", "truncated.safetensors", bytes, size - size / 4);
    free(bytes);
    fipsc_compress_report_free(rep);
    fipsc_settings_free(&s);
    fipsc_model_free(m);
    unlink(group);
    rmdir(dir);
    unlink(model_path);
}
