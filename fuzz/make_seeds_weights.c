/* Seeds of the weight-file parsers (fuzz/make_seeds.h): safetensors files written by the library
 * and by hand (dtypes, metadata only, unsorted offsets, a gap), sharded safetensors with their
 * index as a bundle, and TF.js graph models with their shards. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "make_seeds.h"

/* ------------------------------------------------------------------ safetensors */

/* A file written by hand: header text padded to 8 bytes, then data bytes. */
static void st_by_hand(buf *out, const char *header, const void *data, size_t n)
{
    uint64_t len = strlen(header);
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(len >> (8 * i));
    seed_put(out, le, 8);
    seed_puts(out, header);
    seed_put(out, data, n);
}

void seed_safetensors(void)
{
    fipsc_error err;
    {
        fipsc_st_writer *w = fipsc_st_writer_new();
        seed_check(fipsc_st_writer_set_meta(w, "format", "pt", &err), &err);
        seed_st_add_f32(w, "model.layers.0.mlp.up_proj.weight", 2, (int64_t[]){3, 2}, FIPSC_F32);
        seed_st_add_f32(w, "model.norm.weight", 1, (int64_t[]){2}, FIPSC_F32);
        buf b = {0};
        seed_st_write_temp(w, "f32.safetensors", &b);
        seed_write("fuzz_safetensors", "f32.safetensors", b.p, b.n);
        free(b.p);
        fipsc_st_writer_free(w);
    }
    {
        fipsc_st_writer *w = fipsc_st_writer_new();
        seed_st_add_f32(w, "half", 2, (int64_t[]){2, 2}, FIPSC_F16);
        seed_st_add_f32(w, "brain", 1, (int64_t[]){3}, FIPSC_BF16);
        seed_st_add_f32(w, "scalar", 0, NULL, FIPSC_F32);
        seed_st_add_f32(w, "empty", 2, (int64_t[]){0, 4}, FIPSC_F32);
        static const fipsc_dtype ints[] = {FIPSC_I8, FIPSC_U8, FIPSC_I16, FIPSC_U16,
                                           FIPSC_I32, FIPSC_U32, FIPSC_I64};
        static const unsigned char bytes[16] = {1, 0x80, 2, 0xff, 3, 0, 0, 0x80, 4, 5, 6, 7, 8, 9, 10, 0xf0};
        for (int i = 0; i < 7; i++) {
            char name[16];
            snprintf(name, sizeof name, "int%d", i);
            int64_t n = (int64_t)(16 / fipsc_dtype_size(ints[i]));
            seed_check(fipsc_st_writer_add(w, name, ints[i], 1, &n, bytes, &err), &err);
        }
        buf b = {0};
        seed_st_write_temp(w, "dtypes.safetensors", &b);
        seed_write("fuzz_safetensors", "dtypes.safetensors", b.p, b.n);
        free(b.p);
        fipsc_st_writer_free(w);
    }
    {
        fipsc_st_writer *w = fipsc_st_writer_new();
        seed_check(fipsc_st_writer_set_meta(w, "config", "{\"architectures\": [\"LlamaForCausalLM\"]}", &err), &err);
        seed_check(fipsc_st_writer_set_meta(w, "format", "pt", &err), &err);
        buf b = {0};
        seed_st_write_temp(w, "meta_only.safetensors", &b);
        seed_write("fuzz_safetensors", "meta_only.safetensors", b.p, b.n);
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
        seed_write("fuzz_safetensors", "by_hand.safetensors", b.p, b.n);
        free(b.p);
        b = (buf){0};
        st_by_hand(&b, "{}", NULL, 0);
        seed_write("fuzz_safetensors", "empty.safetensors", b.p, b.n);
        free(b.p);
        /* near-miss: the ranges leave a gap */
        b = (buf){0};
        st_by_hand(&b, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}",
                   "abcd", 4);
        seed_write("fuzz_safetensors", "gap.safetensors", b.p, b.n);
        free(b.p);
    }
}

/* Two shards and their index, as Hugging Face lays them out. */
void seed_safetensors_index(void)
{
    fipsc_error err;
    fipsc_st_writer *w1 = fipsc_st_writer_new(), *w2 = fipsc_st_writer_new();
    seed_check(fipsc_st_writer_set_meta(w1, "format", "pt", &err), &err);
    seed_st_add_f32(w1, "model.embed_tokens.weight", 2, (int64_t[]){4, 2}, FIPSC_F32);
    seed_st_add_f32(w1, "model.layers.0.input_layernorm.weight", 1, (int64_t[]){2}, FIPSC_BF16);
    seed_st_add_f32(w2, "model.norm.weight", 1, (int64_t[]){2}, FIPSC_F32);
    seed_st_add_f32(w2, "lm_head.weight", 2, (int64_t[]){4, 2}, FIPSC_F16);
    const char *files[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    const fipsc_st_writer *shards[2] = {w1, w2};
    char path[8192];
    seed_path(path, sizeof path, "%s/index.json", seed_temp_dir);
    seed_check(fipsc_st_write_index(path, 2, shards, files, &err), &err);

    buf b = {0};
    seed_take_temp("index.json", &b);
    for (int i = 0; i < 2; i++) {
        seed_put_part(&b, files[i]);
        seed_st_write_temp(shards[i], files[i], &b);
    }
    seed_write("fuzz_safetensors_index", "two_shards", b.p, b.n);
    free(b.p);

    /* One shard reached through a "./" spelling, metadata that is not interpreted. */
    b = (buf){0};
    seed_puts(&b, "{\"metadata\": {\"total_size\": 24, \"note\": [1, 2]},\n"
                  " \"weight_map\": {\"model.norm.weight\": \"./s.safetensors\",\n"
                  "                \"lm_head.weight\": \"s.safetensors\"}}");
    seed_put_part(&b, "s.safetensors");
    seed_st_write_temp(w2, "s.safetensors", &b);
    seed_write("fuzz_safetensors_index", "dot_slash", b.p, b.n);
    free(b.p);

    /* Near-miss: the weight_map names a tensor its shard lacks. */
    b = (buf){0};
    seed_puts(&b, "{\"weight_map\": {\"model.norm.weight\": \"s.safetensors\", \"missing\": \"s.safetensors\","
                  " \"lm_head.weight\": \"s.safetensors\"}}");
    seed_put_part(&b, "s.safetensors");
    seed_st_write_temp(w2, "s.safetensors", &b);
    seed_write("fuzz_safetensors_index", "missing_tensor", b.p, b.n);
    free(b.p);
    fipsc_st_writer_free(w1);
    fipsc_st_writer_free(w2);
}

/* ------------------------------------------------------------------ TF.js */

void seed_tfjs(void)
{
    /* group 0: "dense/kernel" [2, 3] f32 straddles two shards of 12 bytes; "step" int32 scalar
     * in group 1; the topology references both. */
    buf b = {0};
    seed_puts(&b, "{\"format\": \"graph-model\", \"generatedBy\": \"fuzz seeds\",\n"
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
    seed_put_part(&b, "group1-shard1of2");
    for (int i = 0; i < 3; i++) seed_put_f32(&b, seed_pattern(i));
    seed_put_part(&b, "group1-shard2of2");
    for (int i = 3; i < 6; i++) seed_put_f32(&b, seed_pattern(i));
    seed_put_part(&b, "group2-shard1of1");
    seed_put_i32(&b, 42);
    seed_write("fuzz_tfjs", "two_groups", b.p, b.n);
    free(b.p);

    b = (buf){0};
    seed_puts(&b, "{\"weightsManifest\": [{\"paths\": [\"w.bin\"], \"weights\": ["
                  "{\"name\": \"a\", \"shape\": [2], \"dtype\": \"float32\"},"
                  "{\"name\": \"b\", \"shape\": [1, 1, 1], \"dtype\": \"int32\"}]}]}");
    seed_put_part(&b, "w.bin");
    for (int i = 0; i < 3; i++) seed_put_f32(&b, seed_pattern(i));
    seed_write("fuzz_tfjs", "no_topology", b.p, b.n);
    free(b.p);

    seed_write_text("fuzz_tfjs", "quantized",
                    "{\"weightsManifest\": [{\"paths\": [], \"weights\": [{\"name\": \"q\", \"shape\": [4],"
                    " \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.1,"
                    " \"min\": -1}}]}]}");
}
