/* Writes the seed corpora of the fuzz targets: `make_seeds DIR` creates DIR/<target>/<seed>.
 *
 * Seeds are small valid inputs (plus a few near-misses) that reach deep into each parser; the
 * fuzzer mutates from there. Files are written with the library's own writers where it has one
 * (safetensors, token corpora, config.json), with libpng/libjpeg for images, and by hand for the
 * rest. The output is deterministic, so regenerating changes nothing unless this file changes.
 * Regression inputs for fixed crashes are committed beside the generated seeds (named
 * crash-<what>) and are not produced here. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
/* after stdio.h: jpeglib.h uses FILE and size_t without including their headers */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "families/llama/llama2c.h"
#include "families/registry.h"
#include "model/compressed.h"
#include "formats/corpus.h"
#include "core/file.h"
#include "families/llama/hf.h"
#include "model/model.h"
#include "core/path.h"
#include "formats/safetensors.h"
#include "families/use/use.h"

static const char *out_dir;
static char temp_dir[4096];

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "make_seeds: %s\n", what);
    exit(1);
}

static void check(fipsc_status st, const fipsc_error *err)
{
    if (st != FIPSC_OK) die(err->message);
}

/* buf[cap] = the printf-style path; a path that does not fit stops the program. */
__attribute__((format(printf, 3, 4))) static void seed_path(char *buf, size_t cap, const char *fmt, ...)
{
    fipsc_error err;
    va_list ap;
    va_start(ap, fmt);
    fipsc_status st = fipsc_path_vformat(buf, cap, &err, fmt, ap);
    va_end(ap);
    check(st, &err);
}

/* ------------------------------------------------------------------ byte buffers */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_f32(buf *b, float f) { put(b, &f, sizeof f); }

static void put_i32(buf *b, int32_t v) { put(b, &v, sizeof v); }

static void write_seed(const char *target, const char *name, const void *data, size_t n)
{
    char path[8192];
    seed_path(path, sizeof path, "%s/%s", out_dir, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) die(path);
    seed_path(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n || fclose(fp) != 0) die(path);
}

static void write_text_seed(const char *target, const char *name, const char *text)
{
    write_seed(target, name, text, strlen(text));
}

/* Appends the bundle separator for a file called name (see fuzz/fuzzutil.h). */
static void put_part(buf *b, const char *name)
{
    puts_(b, "\n@@ ");
    puts_(b, name);
    puts_(b, "\n");
}

/* Reads back a file the library wrote into the temporary directory, then removes it. */
static void take_temp(const char *name, buf *b)
{
    char path[8192];
    seed_path(path, sizeof path, "%s/%s", temp_dir, name);
    char *text;
    size_t size;
    fipsc_error err;
    check(fipsc_read_file(path, &text, &size, &err), &err);
    put(b, text, size);
    free(text);
    unlink(path);
}

/* ------------------------------------------------------------------ safetensors */

static void *kept[256];
static int n_kept;

/* A deterministic pattern of small floats. */
static float pattern(int i) { return (float)((i * 7) % 17 - 8) / 16.0f; }

static void st_add_f32(fipsc_st_writer *w, const char *name, int ndim, const int64_t *shape,
                       fipsc_dtype as)
{
    int64_t n = fipsc_shape_numel(ndim, shape);
    float *data = malloc((size_t)(n ? n : 1) * sizeof *data);
    for (int64_t i = 0; i < n; i++) data[i] = pattern((int)i);
    fipsc_error err;
    check(fipsc_st_writer_add_f32_as(w, name, as, ndim, shape, data, &err), &err);
    /* the writer borrows data until written: freed at the end */
    if (n_kept == (int)(sizeof kept / sizeof kept[0])) die("too many tensors");
    kept[n_kept++] = data;
}

static void st_write_temp(const fipsc_st_writer *w, const char *name, buf *out)
{
    char path[8192];
    seed_path(path, sizeof path, "%s/%s", temp_dir, name);
    fipsc_error err;
    check(fipsc_st_writer_write(w, path, &err), &err);
    take_temp(name, out);
}

/* A file written by hand: header text padded to 8 bytes, then data bytes. */
static void st_by_hand(buf *out, const char *header, const void *data, size_t n)
{
    uint64_t len = strlen(header);
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(len >> (8 * i));
    put(out, le, 8);
    puts_(out, header);
    put(out, data, n);
}

static void safetensors_seeds(void)
{
    fipsc_error err;
    {
        fipsc_st_writer *w = fipsc_st_writer_new();
        check(fipsc_st_writer_set_meta(w, "format", "pt", &err), &err);
        st_add_f32(w, "model.layers.0.mlp.up_proj.weight", 2, (int64_t[]){3, 2}, FIPSC_F32);
        st_add_f32(w, "model.norm.weight", 1, (int64_t[]){2}, FIPSC_F32);
        buf b = {0};
        st_write_temp(w, "f32.safetensors", &b);
        write_seed("fuzz_safetensors", "f32.safetensors", b.p, b.n);
        free(b.p);
        fipsc_st_writer_free(w);
    }
    {
        fipsc_st_writer *w = fipsc_st_writer_new();
        st_add_f32(w, "half", 2, (int64_t[]){2, 2}, FIPSC_F16);
        st_add_f32(w, "brain", 1, (int64_t[]){3}, FIPSC_BF16);
        st_add_f32(w, "scalar", 0, NULL, FIPSC_F32);
        st_add_f32(w, "empty", 2, (int64_t[]){0, 4}, FIPSC_F32);
        static const fipsc_dtype ints[] = {FIPSC_I8, FIPSC_U8, FIPSC_I16, FIPSC_U16,
                                           FIPSC_I32, FIPSC_U32, FIPSC_I64};
        static const unsigned char bytes[16] = {1, 0x80, 2, 0xff, 3, 0, 0, 0x80, 4, 5, 6, 7, 8, 9, 10, 0xf0};
        for (int i = 0; i < 7; i++) {
            char name[16];
            snprintf(name, sizeof name, "int%d", i);
            int64_t n = (int64_t)(16 / fipsc_dtype_size(ints[i]));
            check(fipsc_st_writer_add(w, name, ints[i], 1, &n, bytes, &err), &err);
        }
        buf b = {0};
        st_write_temp(w, "dtypes.safetensors", &b);
        write_seed("fuzz_safetensors", "dtypes.safetensors", b.p, b.n);
        free(b.p);
        fipsc_st_writer_free(w);
    }
    {
        fipsc_st_writer *w = fipsc_st_writer_new();
        check(fipsc_st_writer_set_meta(w, "config", "{\"architectures\": [\"LlamaForCausalLM\"]}", &err), &err);
        check(fipsc_st_writer_set_meta(w, "format", "pt", &err), &err);
        buf b = {0};
        st_write_temp(w, "meta_only.safetensors", &b);
        write_seed("fuzz_safetensors", "meta_only.safetensors", b.p, b.n);
        free(b.p);
        fipsc_st_writer_free(w);
    }
    {
        /* Written by hand: unsorted offsets, unknown fields, an integral 2.0, UTF-8 names,
         * whitespace after the object. */
        static const unsigned char data[12] = {0, 0, 128, 63, 0, 0, 0, 64, 0x3c, 0, 0x40, 0};
        buf b = {0};
        st_by_hand(&b,
                   "{\"b\u00e9ta\":{\"dtype\":\"F16\",\"shape\":[2.0],\"data_offsets\":[8,12],\"x\":1},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                   "\"__metadata__\":{\"k\":\"v\"}}   ",
                   data, sizeof data);
        write_seed("fuzz_safetensors", "by_hand.safetensors", b.p, b.n);
        free(b.p);
        b = (buf){0};
        st_by_hand(&b, "{}", NULL, 0);
        write_seed("fuzz_safetensors", "empty.safetensors", b.p, b.n);
        free(b.p);
        /* near-miss: the ranges leave a gap */
        b = (buf){0};
        st_by_hand(&b, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}",
                   "abcd", 4);
        write_seed("fuzz_safetensors", "gap.safetensors", b.p, b.n);
        free(b.p);
    }
}

/* Two shards and their index, as Hugging Face lays them out. */
static void safetensors_index_seeds(void)
{
    fipsc_error err;
    fipsc_st_writer *w1 = fipsc_st_writer_new(), *w2 = fipsc_st_writer_new();
    check(fipsc_st_writer_set_meta(w1, "format", "pt", &err), &err);
    st_add_f32(w1, "model.embed_tokens.weight", 2, (int64_t[]){4, 2}, FIPSC_F32);
    st_add_f32(w1, "model.layers.0.input_layernorm.weight", 1, (int64_t[]){2}, FIPSC_BF16);
    st_add_f32(w2, "model.norm.weight", 1, (int64_t[]){2}, FIPSC_F32);
    st_add_f32(w2, "lm_head.weight", 2, (int64_t[]){4, 2}, FIPSC_F16);
    const char *files[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    const fipsc_st_writer *shards[2] = {w1, w2};
    char path[8192];
    seed_path(path, sizeof path, "%s/index.json", temp_dir);
    check(fipsc_st_write_index(path, 2, shards, files, &err), &err);

    buf b = {0};
    take_temp("index.json", &b);
    for (int i = 0; i < 2; i++) {
        put_part(&b, files[i]);
        st_write_temp(shards[i], files[i], &b);
    }
    write_seed("fuzz_safetensors_index", "two_shards", b.p, b.n);
    free(b.p);

    /* One shard reached through a "./" spelling, metadata that is not interpreted. */
    b = (buf){0};
    puts_(&b, "{\"metadata\": {\"total_size\": 24, \"note\": [1, 2]},\n"
              " \"weight_map\": {\"model.norm.weight\": \"./s.safetensors\",\n"
              "                \"lm_head.weight\": \"s.safetensors\"}}");
    put_part(&b, "s.safetensors");
    st_write_temp(w2, "s.safetensors", &b);
    write_seed("fuzz_safetensors_index", "dot_slash", b.p, b.n);
    free(b.p);

    /* Near-miss: the weight_map names a tensor its shard lacks. */
    b = (buf){0};
    puts_(&b, "{\"weight_map\": {\"model.norm.weight\": \"s.safetensors\", \"missing\": \"s.safetensors\","
              " \"lm_head.weight\": \"s.safetensors\"}}");
    put_part(&b, "s.safetensors");
    st_write_temp(w2, "s.safetensors", &b);
    write_seed("fuzz_safetensors_index", "missing_tensor", b.p, b.n);
    free(b.p);
    fipsc_st_writer_free(w1);
    fipsc_st_writer_free(w2);
}

/* ------------------------------------------------------------------ config.json */

static void hf_config_seeds(void)
{
    fipsc_config cfg = {.dim = 64, .hidden_dim = 172, .n_layers = 5,
                        .n_heads = 8, .n_kv_heads = 4, .head_dim = 8, .vocab_size = 512,
                        .max_seq_len = 512, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                        .tie_embeddings = true, .bos_token = 1, .eos_token = 2};
    static const char *const archs[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
    static const char *const names[] = {"llama.json", "mistral.json", "qwen2.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(cfg.arch_name, sizeof cfg.arch_name, "%s", archs[i]);
        cfg.qkv_bias = i == 2;
        cfg.bos_token = i == 2 ? -1 : 1;
        char *json;
        fipsc_error err;
        check(fipsc_hf_config_to_json(&cfg, &json, &err), &err);
        write_text_seed("fuzz_hf_config", names[i], json);
        free(json);
    }
    /* As transformers writes them, with keys fipsc ignores and its optional forms. */
    write_text_seed("fuzz_hf_config", "tinyllama_like.json",
                    "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"attention_bias\": false,\n"
                    "  \"bos_token_id\": 1,\n  \"eos_token_id\": [2, 32000],\n  \"hidden_act\": \"silu\",\n"
                    "  \"hidden_size\": 2048,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": 5632,\n"
                    "  \"max_position_embeddings\": 2048,\n  \"model_type\": \"llama\",\n"
                    "  \"num_attention_heads\": 32,\n  \"num_hidden_layers\": 22,\n"
                    "  \"num_key_value_heads\": 4,\n  \"pretraining_tp\": 1,\n  \"rms_norm_eps\": 1e-05,\n"
                    "  \"rope_scaling\": null,\n  \"rope_theta\": 10000.0,\n  \"tie_word_embeddings\": false,\n"
                    "  \"torch_dtype\": \"bfloat16\",\n  \"transformers_version\": \"4.35.0\",\n"
                    "  \"use_cache\": true,\n  \"vocab_size\": 32000\n}\n");
    write_text_seed("fuzz_hf_config", "qwen2_window.json",
                    "{\"model_type\": \"qwen2\", \"hidden_size\": 896, \"intermediate_size\": 4864,"
                    " \"num_hidden_layers\": 24, \"num_attention_heads\": 14, \"num_key_value_heads\": 2,"
                    " \"vocab_size\": 151936, \"use_sliding_window\": true, \"sliding_window\": 4096,"
                    " \"max_position_embeddings\": 32768, \"bos_token_id\": null, \"eos_token_id\": 151643,"
                    " \"rope_theta\": 1000000.0, \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": true}");
    write_text_seed("fuzz_hf_config", "mistral_head_dim.json",
                    "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 5120, \"head_dim\": 128,"
                    " \"intermediate_size\": 14336, \"num_hidden_layers\": 40, \"num_attention_heads\": 32,"
                    " \"num_key_value_heads\": 8, \"vocab_size\": 131072, \"sliding_window\": null,"
                    " \"max_position_embeddings\": 1024000, \"mlp_bias\": false}");
}

static void vit_config_seeds(void)
{
    write_text_seed("fuzz_vit_config", "deit_mnist.json",
                    "{\n  \"architectures\": [\"DeiTForImageClassificationWithTeacher\"],\n"
                    "  \"model_type\": \"deit\",\n  \"hidden_size\": 96,\n  \"num_hidden_layers\": 4,\n"
                    "  \"num_attention_heads\": 3,\n  \"intermediate_size\": 384,\n  \"hidden_act\": \"gelu\",\n"
                    "  \"layer_norm_eps\": 1e-12,\n  \"image_size\": 28,\n  \"patch_size\": 7,\n"
                    "  \"num_channels\": 1,\n  \"qkv_bias\": true,\n  \"encoder_stride\": 7,\n"
                    "  \"id2label\": {\"0\": \"0\", \"1\": \"1\", \"2\": \"2\", \"3\": \"3\", \"4\": \"4\",\n"
                    "               \"5\": \"5\", \"6\": \"6\", \"7\": \"7\", \"8\": \"8\", \"9\": \"9\"},\n"
                    "  \"label2id\": {\"0\": 0, \"1\": 1}\n}\n");
    write_text_seed("fuzz_vit_config", "vit_base.json",
                    "{\"architectures\": [\"ViTForImageClassification\"], \"model_type\": \"vit\","
                    " \"hidden_size\": 768, \"num_hidden_layers\": 12, \"num_attention_heads\": 12,"
                    " \"intermediate_size\": 3072, \"image_size\": 224, \"patch_size\": 16,"
                    " \"id2label\": {\"0\": \"tench\", \"1\": \"goldfish\", \"2\": \"great white shark\"}}");
    write_text_seed("fuzz_vit_config", "deit_rect.json",
                    "{\"architectures\": [\"DeiTForImageClassification\"], \"hidden_size\": 192,"
                    " \"num_attention_heads\": 3, \"image_size\": [32, 48], \"patch_size\": [8, 16],"
                    " \"num_labels\": 5, \"hidden_act\": \"gelu_new\", \"qkv_bias\": false,"
                    " \"layer_norm_eps\": 1e-6}");
}

static void image_preproc_seeds(void)
{
    write_text_seed("fuzz_image_preproc", "deit_mnist.json",
                    "{\n  \"do_resize\": true,\n  \"size\": {\"height\": 28, \"width\": 28},\n"
                    "  \"resample\": 2,\n  \"do_rescale\": true,\n  \"rescale_factor\": 0.00392156862745098,\n"
                    "  \"do_normalize\": true,\n  \"image_mean\": [0.5],\n  \"image_std\": [0.5],\n"
                    "  \"image_processor_type\": \"DeiTImageProcessor\"\n}\n");
    write_text_seed("fuzz_image_preproc", "deit_base.json",
                    "{\"crop_size\": {\"height\": 24, \"width\": 24}, \"do_center_crop\": true,"
                    " \"do_normalize\": true, \"do_rescale\": true, \"do_resize\": true,"
                    " \"image_mean\": [0.485, 0.456, 0.406], \"image_processor_type\": \"DeiTImageProcessor\","
                    " \"image_std\": [0.229, 0.224, 0.225], \"resample\": 3, \"rescale_factor\": 0.00392156862745098,"
                    " \"size\": {\"height\": 27, \"width\": 27}}");
    write_text_seed("fuzz_image_preproc", "shortest_edge.json",
                    "{\"size\": {\"shortest_edge\": 30}, \"crop_size\": 24, \"resample\": 1,"
                    " \"image_mean\": 0.5, \"image_std\": 0.25, \"image_processor_type\": \"ViTImageProcessor\"}");
    write_text_seed("fuzz_image_preproc", "no_resize.json",
                    "{\"do_resize\": false, \"do_center_crop\": true, \"crop_size\": 3, \"resample\": 0,"
                    " \"do_normalize\": false, \"do_rescale\": false}");
    write_text_seed("fuzz_image_preproc", "size_int.json", "{\"size\": 9, \"resample\": 5, \"do_normalize\": true}");
    write_text_seed("fuzz_image_preproc", "box.json", "{\"size\": {\"height\": 3, \"width\": 2}, \"resample\": 4}");
}

/* ------------------------------------------------------------------ llama2.c */

/* A complete llama2.c file: header, then every array filled with a small pattern. */
static void llama2c_file(buf *b, int dim, int hidden, int layers, int heads, int kv_heads,
                         int vocab, int seq, bool shared)
{
    put_i32(b, dim);
    put_i32(b, hidden);
    put_i32(b, layers);
    put_i32(b, heads);
    put_i32(b, kv_heads);
    put_i32(b, shared ? vocab : -vocab);
    put_i32(b, seq);
    int hs = dim / heads, kv_dim = kv_heads * hs;
    long n = (long)vocab * dim + (long)layers * dim + 2L * layers * dim * dim + 2L * layers * kv_dim * dim +
             (long)layers * dim + 3L * layers * hidden * dim + dim + (long)seq * hs +
             (shared ? 0 : (long)vocab * dim);
    for (long i = 0; i < n; i++) put_f32(b, pattern((int)i));
}

static void llama2c_seeds(void)
{
    buf b = {0};
    llama2c_file(&b, 4, 6, 2, 2, 1, 5, 3, true);
    write_seed("fuzz_llama2c", "shared_gqa.bin", b.p, b.n);
    free(b.p);
    b = (buf){0};
    llama2c_file(&b, 8, 4, 1, 2, 2, 3, 2, false);
    write_seed("fuzz_llama2c", "separate_cls.bin", b.p, b.n);
    free(b.p);
    b = (buf){0};
    llama2c_file(&b, 2, 1, 1, 1, 1, 1, 1, true);
    write_seed("fuzz_llama2c", "smallest.bin", b.p, b.n);
    free(b.p);
    /* Near-miss: one float short. */
    b = (buf){0};
    llama2c_file(&b, 4, 2, 1, 1, 1, 2, 1, true);
    write_seed("fuzz_llama2c", "truncated.bin", b.p, b.n - 4);
    free(b.p);
}

/* ------------------------------------------------------------------ token corpora */

static void corpus_seeds(void)
{
    int32_t ids[12];
    for (int i = 0; i < 12; i++) ids[i] = (i * 5) % 11;
    fipsc_corpus *c;
    fipsc_error err;
    check(fipsc_corpus_from_ids(ids, 3, 4, 11, &c, &err), &err);
    char path[8192];
    seed_path(path, sizeof path, "%s/tokens.bin", temp_dir);
    check(fipsc_corpus_write(c, path, &err), &err);
    fipsc_corpus_free(c);
    buf b = {0};
    take_temp("tokens.bin", &b);
    write_seed("fuzz_corpus", "binary.tok", b.p, b.n);
    free(b.p);
    write_text_seed("fuzz_corpus", "text.txt", "1 2 3 4\n5\t6 7\r\n\n   \n8 9 10 11 12 2147483647\n");
    write_text_seed("fuzz_corpus", "text_no_newline.txt", "0 1 0 1");
}

/* ------------------------------------------------------------------ images */

static void png_to_buf(png_structp png, png_bytep data, png_size_t n) { put(png_get_io_ptr(png), data, n); }

static void png_flush_nothing(png_structp png) { (void)png; }

/* A PNG of the given IHDR (bit depth, colour type, interlace), pixels from a pattern; palette
 * images get a 4-entry palette and a tRNS chunk. */
static void png_seed(const char *name, int w, int h, int depth, int color, int interlace)
{
    buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info || setjmp(png_jmpbuf(png))) die("libpng failed");
    png_set_write_fn(png, &b, png_to_buf, png_flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
        png_set_PLTE(png, info, palette, 4);
        png_byte alpha[2] = {0, 128};
        png_set_tRNS(png, info, alpha, 2, NULL);
    }
    png_write_info(png, info);
    int samples = color == PNG_COLOR_TYPE_RGB ? 3 : color == PNG_COLOR_TYPE_RGBA ? 4
                  : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t row_bytes = ((size_t)w * samples * depth + 7) / 8;
    unsigned char *rows = calloc((size_t)h, row_bytes);
    png_bytep *row_ptrs = malloc((size_t)h * sizeof *row_ptrs);
    for (int y = 0; y < h; y++) {
        row_ptrs[y] = rows + (size_t)y * row_bytes;
        for (size_t x = 0; x < row_bytes; x++) row_ptrs[y][x] = (unsigned char)(x * 29 + (size_t)y * 71);
        if (color == PNG_COLOR_TYPE_PALETTE) /* indices must stay inside the palette */
            for (size_t x = 0; x < row_bytes; x++) row_ptrs[y][x] &= depth == 8 ? 3 : depth == 4 ? 0x33 : 0x55;
    }
    png_write_image(png, row_ptrs);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    write_seed("fuzz_image", name, b.p, b.n);
    free(rows);
    free(row_ptrs);
    free(b.p);
}

static void jpeg_seed(const char *name, int w, int h, int components, bool progressive)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    unsigned char *out = NULL;
    unsigned long out_size = 0;
    jpeg_mem_dest(&cinfo, &out, &out_size);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 75, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    unsigned char *row = malloc((size_t)w * components);
    while (cinfo.next_scanline < cinfo.image_height) {
        for (int x = 0; x < w * components; x++) row[x] = (unsigned char)(x * 13 + (int)cinfo.next_scanline * 31);
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    write_seed("fuzz_image", name, out, out_size);
    free(row);
    free(out);
}

static void image_seeds(void)
{
    png_seed("gray8.png", 5, 4, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE);
    png_seed("gray1.png", 9, 3, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE);
    png_seed("gray16.png", 3, 3, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE);
    png_seed("gray_alpha.png", 4, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE);
    png_seed("rgb.png", 6, 5, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE);
    png_seed("rgba16.png", 3, 2, 16, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE);
    png_seed("palette2_trns.png", 7, 3, 2, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE);
    png_seed("rgb_adam7.png", 9, 9, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7);
    jpeg_seed("gray.jpg", 8, 8, 1, false);
    jpeg_seed("rgb.jpg", 17, 9, 3, false);
    jpeg_seed("rgb_progressive.jpg", 16, 16, 3, true);
    write_text_seed("fuzz_image", "ascii.pgm", "P2\n# a comment\n3 2\n255\n0 128 255\n1 2 3\n");
    write_text_seed("fuzz_image", "ascii.ppm", "P3 2 1 1000 0 500 1000 1000 0 1\n");
    static const unsigned char p5[] = "P5\n2 2\n255\n\x00\x7f\x80\xff";
    write_seed("fuzz_image", "binary.pgm", p5, sizeof p5 - 1);
    static const unsigned char p6[] = "P6 2 1 65535\n\x00\x01\x7f\xff\xff\xff\x12\x34\x56\x78\x9a\xbc";
    write_seed("fuzz_image", "binary16.ppm", p6, sizeof p6 - 1);
}

/* ------------------------------------------------------------------ TF.js */

static void tfjs_seeds(void)
{
    /* group 0: "dense/kernel" [2, 3] f32 straddles two shards of 12 bytes; "step" int32 scalar
     * in group 1; the topology references both. */
    buf b = {0};
    puts_(&b, "{\"format\": \"graph-model\", \"generatedBy\": \"fuzz seeds\",\n"
              " \"modelTopology\": {\"node\": [\n"
              "   {\"name\": \"x\", \"op\": \"Placeholder\", \"attr\": {}},\n"
              "   {\"name\": \"dense/kernel\", \"op\": \"Const\"},\n"
              "   {\"name\": \"y\", \"op\": \"MatMul\", \"input\": [\"x\", \"dense/kernel\", \"^step\"]}]},\n"
              " \"weightsManifest\": [\n"
              "   {\"paths\": [\"group1-shard1of2\", \"group1-shard2of2\"],\n"
              "    \"weights\": [{\"name\": \"dense/kernel\", \"shape\": [2, 3], \"dtype\": \"float32\"}]},\n"
              "   {\"paths\": [\"group2-shard1of1\"],\n"
              "    \"weights\": [{\"name\": \"step\", \"shape\": [], \"dtype\": \"int32\"},\n"
              "                {\"name\": \"empty\", \"shape\": [0, 5], \"dtype\": \"float32\"}]}]}");
    put_part(&b, "group1-shard1of2");
    for (int i = 0; i < 3; i++) put_f32(&b, pattern(i));
    put_part(&b, "group1-shard2of2");
    for (int i = 3; i < 6; i++) put_f32(&b, pattern(i));
    put_part(&b, "group2-shard1of1");
    put_i32(&b, 42);
    write_seed("fuzz_tfjs", "two_groups", b.p, b.n);
    free(b.p);

    b = (buf){0};
    puts_(&b, "{\"weightsManifest\": [{\"paths\": [\"w.bin\"], \"weights\": ["
              "{\"name\": \"a\", \"shape\": [2], \"dtype\": \"float32\"},"
              "{\"name\": \"b\", \"shape\": [1, 1, 1], \"dtype\": \"int32\"}]}]}");
    put_part(&b, "w.bin");
    for (int i = 0; i < 3; i++) put_f32(&b, pattern(i));
    write_seed("fuzz_tfjs", "no_topology", b.p, b.n);
    free(b.p);

    write_text_seed("fuzz_tfjs", "quantized",
                    "{\"weightsManifest\": [{\"paths\": [], \"weights\": [{\"name\": \"q\", \"shape\": [4],"
                    " \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.1,"
                    " \"min\": -1}}]}]}");
}

/* ------------------------------------------------------------------ SentencePiece vocabulary */

static void sp_vocab_seeds(void)
{
    static const char vocab[] =
        "[[\"\xef\xbf\xbd\", 0], [\"<s>\", 0], [\"</s>\", 0], [\"<extra_1>\", 0], [\"<extra_2>\", 0],"
        " [\"<extra_3>\", 0], [\"\xe2\x96\x81\", -2.5], [\"\xe2\x96\x81the\", -3.1], [\"\xe2\x96\x81" "a\", -3.4],"
        " [\"s\", -4.0], [\"\xe2\x96\x81man\", -7.25], [\"\xe2\x96\x81is\", -5], [\"ing\", -6.5],"
        " [\"\xe2\x96\x81play\", -8], [\"e\", -5.5], [\"t\", -5.6], [\"h\", -5.7], [\".\", -3.0],"
        " [\":\", null], [\"\xe2\x96\x81:)\", null], [\"fi\", -9], [\"\xf0\x9f\x98\x80\", -10],"
        " [\"\xe2\x96\x81the\", -2.0]]";
    buf b = {0};
    puts_(&b, vocab);
    put_part(&b, "text");
    puts_(&b, "A man is playing the guitar :) \xef\xac\x81ne caf\xc3\xa9 \xf0\x9f\x98\x80.");
    write_seed("fuzz_sp_vocab", "vocab_and_text", b.p, b.n);
    free(b.p);
    write_text_seed("fuzz_sp_vocab", "vocab_only", vocab);
    write_text_seed("fuzz_sp_vocab", "too_small", "[[\"a\", 0], [\"b\", 1]]");
}

/* ------------------------------------------------------------------ sentence-encoder config */

static void use_config_seeds(void)
{
    fipsc_use u = {.vocab_size = 8002, .embed_dim = 256, .dim = 512, .hidden = 1536, .n_layers = 2,
                   .n_heads = 4, .max_tokens = 128, .ln_eps = 1e-6f, .l2_eps = 1e-12f,
                   .tokenizer_reserved = 6};
    char *json;
    fipsc_error err;
    check(fipsc_use_config_to_json(&u, &json, &err), &err);
    write_text_seed("fuzz_use_config", "use_lite.json", json);
    free(json);
    write_text_seed("fuzz_use_config", "small.json",
                    "{\"architectures\": [\"Other\", \"UniversalSentenceEncoderLite\"], \"vocab_size\": 10,"
                    " \"embedding_size\": 4, \"hidden_size\": 6, \"intermediate_size\": 3,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"hidden_act\": \"relu\","
                    " \"layer_norm_eps\": 0.001, \"l2_normalize_eps\": 1, \"max_position_embeddings\": 1,"
                    " \"tokenizer_reserved_symbols\": 0}");
}

/* ------------------------------------------------------------------ compressed models */

/* A tiny llama2.c model (dim 4, hidden 6, 2 layers) with one group attached per `spec`, written
 * as a compressed file. V entries follow a pattern with zeros where the storage prunes. */
static void compressed_seed(const char *target, const char *name, int first, int last, int r, bool identity,
                            fipsc_v_storage storage, int nm_n, int nm_m, fipsc_dtype u_dtype,
                            const char *method)
{
    buf b = {0};
    llama2c_file(&b, 4, 6, 2, 2, 1, 5, 3, true);
    fipsc_model *m;
    fipsc_error err;
    check(fipsc_load_llama2c_buffer(b.p, b.n, "tiny", &m, &err), &err);
    free(b.p);
    const int d = 4, f = 6;
    float U[4 * 4];
    for (int i = 0; i < d * r; i++) U[i] = pattern(i + 3);
    enum { MAX_MATS = 6 };
    float V[MAX_MATS][4 * 6];
    fipsc_group_matrix mats[MAX_MATS];
    int n = 0;
    for (int layer = first; layer <= last; layer++)
        for (int role = FIPSC_ROLE_GATE; role <= FIPSC_ROLE_DOWN; role++, n++) {
            for (int i = 0; i < r; i++)
                for (int j = 0; j < f; j++) {
                    float v = pattern(n * 31 + i * f + j) + 0.03125f;
                    bool keep = storage == FIPSC_V_DENSE ? true
                                : storage == FIPSC_V_NM  ? (i % nm_m) < nm_n && ((i / nm_m + j) % 2 == 0 || nm_n == nm_m)
                                                         : (i + j + n) % 3 != 0;
                    V[n][i * f + j] = keep ? v : 0.0f;
                }
            mats[n] = (fipsc_group_matrix){.layer = layer, .role = (fipsc_mlp_role)role, .V = V[n]};
        }
    fipsc_group_spec g = {.first_layer = first, .last_layer = last, .d = d, .r = r,
                          .U = identity ? NULL : U, .n_matrices = n, .matrices = mats,
                          .storage = storage, .nm_n = nm_n, .nm_m = nm_m, .method = method};
    check(fipsc_model_attach_group(m, &g, &err), &err);
    char path[8192];
    seed_path(path, sizeof path, "%s/%s", temp_dir, name);
    fipsc_compressed_write_opts opts = {.u_dtype = u_dtype};
    check(fipsc_compressed_write_ex(m, path, NULL, &opts, &err), &err);
    fipsc_model_free(m);
    b = (buf){0};
    take_temp(name, &b);
    write_seed(target, name, b.p, b.n);
    free(b.p);
}

static void compressed_seeds(void)
{
    const char *t = "fuzz_compressed";
    compressed_seed(t, "fips_csc.safetensors", 0, 1, 2, false, FIPSC_V_CSC, 0, 0, FIPSC_F32, "fips");
    compressed_seed(t, "nm_1of2_layer0.safetensors", 0, 0, 2, false, FIPSC_V_NM, 1, 2, FIPSC_F32, "fips");
    compressed_seed(t, "svd_dense_f16.safetensors", 1, 1, 3, false, FIPSC_V_DENSE, 0, 0, FIPSC_F16, "svd");
    compressed_seed(t, "magnitude_identity_bf16.safetensors", 0, 1, 4, true, FIPSC_V_CSC, 0, 0, FIPSC_BF16,
                    "magnitude");
}

/* ------------------------------------------------------------------ whole checkpoints */

/* The tensors of an opened file into a new writer, without its metadata. */
static fipsc_st_writer *copy_tensors(const fipsc_st_file *f)
{
    fipsc_st_writer *w = fipsc_st_writer_new();
    fipsc_error err;
    for (int i = 0; i < fipsc_st_count(f); i++) {
        const fipsc_st_tensor *t = fipsc_st_at(f, i);
        check(fipsc_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err), &err);
    }
    return w;
}

/* A tiny ViT (d 4, 1 layer, 2 heads, MLP 8, 4 × 4 gray images, patch 2, 2 labels). */
static const char vit_config[] =
    "{\"architectures\": [\"ViTForImageClassification\"], \"model_type\": \"vit\", \"hidden_size\": 4,"
    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 8, \"image_size\": 4,"
    " \"patch_size\": 2, \"num_channels\": 1, \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-12,"
    " \"qkv_bias\": true, \"id2label\": {\"0\": \"zero\", \"1\": \"one\"}}";

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
        st_add_f32(w, vectors_d[i], 1, (int64_t[]){d}, FIPSC_F32);
    static const char *const square[] = {
        "vit.encoder.layer.0.attention.attention.query.weight", "vit.encoder.layer.0.attention.attention.key.weight",
        "vit.encoder.layer.0.attention.attention.value.weight", "vit.encoder.layer.0.attention.output.dense.weight"};
    for (size_t i = 0; i < sizeof square / sizeof square[0]; i++)
        st_add_f32(w, square[i], 2, (int64_t[]){d, d}, FIPSC_F32);
    st_add_f32(w, "vit.embeddings.cls_token", 3, (int64_t[]){1, 1, d}, FIPSC_F32);
    st_add_f32(w, "vit.embeddings.position_embeddings", 3, (int64_t[]){1, 5, d}, FIPSC_F32);
    st_add_f32(w, "vit.embeddings.patch_embeddings.projection.weight", 4, (int64_t[]){d, 1, 2, 2}, FIPSC_F32);
    st_add_f32(w, "vit.encoder.layer.0.intermediate.dense.weight", 2, (int64_t[]){f, d}, FIPSC_F16);
    st_add_f32(w, "vit.encoder.layer.0.intermediate.dense.bias", 1, (int64_t[]){f}, FIPSC_F32);
    st_add_f32(w, "vit.encoder.layer.0.output.dense.weight", 2, (int64_t[]){d, f}, FIPSC_BF16);
    st_add_f32(w, "classifier.weight", 2, (int64_t[]){2, d}, FIPSC_F32);
    st_add_f32(w, "classifier.bias", 1, (int64_t[]){2}, FIPSC_F32);
    return w;
}

/* The tiny ViT with its one block's MLP (fc1, fc2) compressed: d 4, f 8, rank 2, CSC. */
static void vit_compressed_seed(const char *target, const char *name)
{
    fipsc_error err;
    fipsc_st_writer *w = vit_writer();
    check(fipsc_st_writer_set_meta(w, "config", vit_config, &err), &err);
    buf b = {0};
    char path[8192];
    seed_path(path, sizeof path, "%s/vit.safetensors", temp_dir);
    check(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_writer_free(w);
    fipsc_model *m;
    check(fipsc_model_load(path, &m, &err), &err);
    unlink(path);
    const int d = 4, f = 8, r = 2;
    float U[4 * 2], V[2][2 * 8];
    for (int i = 0; i < d * r; i++) U[i] = pattern(i + 5);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < r * f; i++) V[k][i] = (i + k) % 3 ? pattern(i * 3 + k) + 0.0625f : 0.0f;
    fipsc_group_matrix mats[2] = {{.layer = 0, .role = FIPSC_ROLE_UP, .V = V[0]},
                                  {.layer = 0, .role = FIPSC_ROLE_DOWN, .V = V[1]}};
    fipsc_group_spec g = {.first_layer = 0, .last_layer = 0, .d = d, .r = r, .U = U, .n_matrices = 2,
                          .matrices = mats, .storage = FIPSC_V_CSC, .method = "fips"};
    check(fipsc_model_attach_group(m, &g, &err), &err);
    seed_path(path, sizeof path, "%s/%s", temp_dir, name);
    check(fipsc_compressed_write(m, path, NULL, &err), &err);
    fipsc_model_free(m);
    take_temp(name, &b);
    write_seed(target, name, b.p, b.n);
    free(b.p);
}

static void model_load_seeds(void)
{
    const char *target = "fuzz_model_load";
    fipsc_error err;
    /* Llama family, as fipsc_hf_write_dir writes it (config in __metadata__). */
    buf b = {0};
    llama2c_file(&b, 4, 6, 2, 2, 1, 5, 3, true);
    fipsc_model *m;
    check(fipsc_load_llama2c_buffer(b.p, b.n, "tiny", &m, &err), &err);
    free(b.p);
    char dir[8192];
    seed_path(dir, sizeof dir, "%s/hf", temp_dir);
    check(fipsc_hf_write_llama_dir(m, dir, false, &err), &err);
    fipsc_model_free(m);
    b = (buf){0};
    take_temp("hf/model.safetensors", &b);
    write_seed(target, "llama_config_in_metadata", b.p, b.n);
    free(b.p);
    /* The same weights without metadata, config.json beside them (in the bundle). */
    char path[8192];
    seed_path(path, sizeof path, "%s/hf/model.safetensors", temp_dir);
    b = (buf){0};
    llama2c_file(&b, 4, 6, 2, 2, 1, 5, 3, true);
    check(fipsc_load_llama2c_buffer(b.p, b.n, "tiny", &m, &err), &err);
    free(b.p);
    check(fipsc_hf_write_llama_dir(m, dir, true, &err), &err);
    fipsc_model_free(m);
    fipsc_st_file *f;
    check(fipsc_st_open(path, &f, &err), &err);
    fipsc_st_writer *w = copy_tensors(f);
    b = (buf){0};
    st_write_temp(w, "bare.safetensors", &b);
    fipsc_st_writer_free(w);
    fipsc_st_close(f);
    unlink(path);
    put_part(&b, "config.json");
    take_temp("hf/config.json", &b);
    write_seed(target, "llama_config_beside", b.p, b.n);
    free(b.p);
    seed_path(path, sizeof path, "%s/hf", temp_dir);
    rmdir(path);

    /* ViT with the config in __metadata__; then without it, config.json and
     * preprocessor_config.json beside it. */
    w = vit_writer();
    check(fipsc_st_writer_set_meta(w, "config", vit_config, &err), &err);
    b = (buf){0};
    st_write_temp(w, "vit.safetensors", &b);
    write_seed(target, "vit_config_in_metadata", b.p, b.n);
    free(b.p);
    fipsc_st_writer_free(w);
    w = vit_writer();
    b = (buf){0};
    st_write_temp(w, "vit.safetensors", &b);
    put_part(&b, "config.json");
    puts_(&b, vit_config);
    put_part(&b, "preprocessor_config.json");
    puts_(&b, "{\"do_resize\": true, \"size\": {\"height\": 4, \"width\": 4}, \"resample\": 2,"
              " \"image_mean\": [0.5], \"image_std\": [0.5], \"image_processor_type\": \"ViTImageProcessor\"}");
    write_seed(target, "vit_config_beside", b.p, b.n);
    free(b.p);
    fipsc_st_writer_free(w);

    /* A compressed file goes to the compressed reader. */
    compressed_seed(target, "compressed_fips_csc", 0, 1, 2, false, FIPSC_V_CSC, 0, 0, FIPSC_F32, "fips");
    vit_compressed_seed(target, "compressed_vit");
    vit_compressed_seed("fuzz_compressed", "vit_csc.safetensors");
}

/* ------------------------------------------------------------------ IDX images */

/* An IDX image file (MNIST's format): magic 00 00 08 03, n, rows, cols big-endian, pixels. */
static void idx_file(buf *b, unsigned n, unsigned rows, unsigned cols)
{
    unsigned char head[16] = {0, 0, 8, 3};
    unsigned v[3] = {n, rows, cols};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++) head[4 + 4 * k + i] = (unsigned char)(v[k] >> (24 - 8 * i));
    put(b, head, sizeof head);
    for (unsigned i = 0; i < n * rows * cols; i++) {
        unsigned char px = (unsigned char)(i * 37 % 251);
        if (i >= 2 * rows * cols && i < 3 * rows * cols) px = (unsigned char)((i - 2 * rows * cols) * 37 % 251);
        put(b, &px, 1); /* image 2 repeats image 0: exclusion must drop both */
    }
}

/* gzip (not zlib) framing, as MNIST's .gz files. */
static void gzip_buf(const buf *in, buf *out)
{
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("zlib failed");
    unsigned char chunk[4096];
    z.next_in = in->p;
    z.avail_in = (uInt)in->n;
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = deflate(&z, Z_FINISH);
        put(out, chunk, sizeof chunk - z.avail_out);
    } while (rc == Z_OK);
    if (rc != Z_STREAM_END) die("zlib failed");
    deflateEnd(&z);
}

static void idx_seeds(void)
{
    buf b = {0}, gz = {0};
    idx_file(&b, 4, 5, 3);
    write_seed("fuzz_idx", "four_5x3.idx", b.p, b.n);
    gzip_buf(&b, &gz);
    write_seed("fuzz_idx", "four_5x3.idx.gz", gz.p, gz.n);
    write_seed("fuzz_idx", "truncated.idx", b.p, b.n - 7);
    free(b.p);
    free(gz.p);
    b = (buf){0};
    idx_file(&b, 0, 28, 28);
    write_seed("fuzz_idx", "empty_28x28.idx", b.p, b.n);
    free(b.p);
}

/* ------------------------------------------------------------------ STS Benchmark files */

static void sts_seeds(void)
{
    write_text_seed("fuzz_sts", "three_pairs.tsv",
                    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA man is playing a guitar.\t"
                    "A man plays the guitar.\n"
                    "main-news\theadlines\t2013\t0042\t0.5\tStocks fell.\tThe cat sat on the mat.\r\n"
                    "\n"
                    "main-forums\tdeft-forum\t2014\t0007\t2.75e0\t\tAn empty first sentence.\textra\tcolumns\n");
    write_text_seed("fuzz_sts", "one_pair.tsv", "g\tf\ty\t1\t3\ta\tb\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR   (writes DIR/<fuzz target>/<seed files>)\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) die(out_dir);
    seed_path(temp_dir, sizeof temp_dir, "%s/.make_seeds-XXXXXX", out_dir);
    if (!mkdtemp(temp_dir)) die("cannot create a temporary directory");
    safetensors_seeds();
    safetensors_index_seeds();
    hf_config_seeds();
    vit_config_seeds();
    image_preproc_seeds();
    llama2c_seeds();
    corpus_seeds();
    image_seeds();
    tfjs_seeds();
    sp_vocab_seeds();
    use_config_seeds();
    compressed_seeds();
    idx_seeds();
    model_load_seeds();
    sts_seeds();
    rmdir(temp_dir);
    for (int i = 0; i < n_kept; i++) free(kept[i]);
    return 0;
}
