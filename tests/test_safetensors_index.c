/* Sharded safetensors checkpoints: writing shards and a Hugging Face index, reading them back
 * as one set (from the directory, the index or a single file), how a directory is resolved, and
 * every inconsistency between index and shards: missing shard, tensor missing from its shard,
 * a tensor in two shards, a shard tensor the index does not list, paths escaping the directory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "formats/safetensors.h"
#include "testutil.h"

static const char *root;

static const char *make_dir(char *buf, size_t cap, const char *name)
{
    test_pathf(buf, cap, "%s/%s", root, name);
    if (mkdir(buf, 0755) != 0) {
        fprintf(stderr, "cannot create %s\n", buf);
        exit(2);
    }
    return buf;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    test_pathf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) exit(2);
    fputs(text, fp);
    fclose(fp);
}

static float values[64];

/* Writes dir/file holding F32 tensors named in `names` (NULL-terminated), tensor k = 4 floats. */
static void write_shard(const char *dir, const char *file, const char *const *names)
{
    fipsc_error err = {0};
    fipsc_st_writer *w = fipsc_st_writer_new();
    int64_t shape[1] = {4};
    for (int k = 0; names[k]; k++)
        CHECK_OK(fipsc_st_writer_add(w, names[k], FIPSC_F32, 1, shape, values + 4 * k, &err), &err);
    char path[4096];
    test_pathf(path, sizeof path, "%s/%s", dir, file);
    CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_writer_free(w);
}

static void test_round_trip(void)
{
    char dir[2048];
    make_dir(dir, sizeof dir, "sharded");
    fipsc_error err = {0};
    int64_t shape[1] = {4}, shape2[2] = {2, 2};
    fipsc_st_writer *shard1 = fipsc_st_writer_new(), *shard2 = fipsc_st_writer_new();
    CHECK_OK(fipsc_st_writer_add(shard1, "model.embed_tokens.weight", FIPSC_F32, 1, shape, values, &err), &err);
    CHECK_OK(fipsc_st_writer_add(shard1, "model.layers.0.mlp.up_proj.weight", FIPSC_F32, 2, shape2, values + 4, &err), &err);
    CHECK_OK(fipsc_st_writer_set_meta(shard1, "format", "pt", &err), &err);
    CHECK_OK(fipsc_st_writer_add(shard2, "lm_head.weight", FIPSC_F32, 1, shape, values + 8, &err), &err);
    CHECK_OK(fipsc_st_writer_add_f32_as(shard2, "model.norm.weight", FIPSC_BF16, 1, shape, values + 12, &err), &err);
    const char *files[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    char path[4096];
    for (int s = 0; s < 2; s++) {
        test_pathf(path, sizeof path, "%s/%s", dir, files[s]);
        CHECK_OK(fipsc_st_writer_write(s ? shard2 : shard1, path, &err), &err);
    }
    const fipsc_st_writer *const shards[2] = {shard1, shard2};
    char index[4096];
    test_pathf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    CHECK_OK(fipsc_st_write_index(index, 2, shards, files, &err), &err);

    /* Hugging Face's layout: sorted keys, two-space indent, total_size = tensor bytes */
    char *text;
    CHECK_OK(fipsc_read_file(index, &text, NULL, &err), &err);
    static const char want[] =
        "{\n  \"metadata\": {\n    \"total_size\": 56\n  },\n  \"weight_map\": {\n"
        "    \"lm_head.weight\": \"model-00002-of-00002.safetensors\",\n"
        "    \"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\",\n"
        "    \"model.layers.0.mlp.up_proj.weight\": \"model-00001-of-00002.safetensors\",\n"
        "    \"model.norm.weight\": \"model-00002-of-00002.safetensors\"\n  }\n}\n";
    CHECK_MSG(text && strcmp(text, want) == 0, "index text:\n%s", text);
    free(text);

    /* duplicates across writers and unsafe names are refused */
    const char *bad_files[2] = {files[0], "../escape.safetensors"};
    char other[4096];
    test_pathf(other, sizeof other, "%s/other.index.json", dir);
    CHECK_FAILS(fipsc_st_write_index(other, 2, shards, bad_files, &err), FIPSC_ERR_ARG,
                "shard file '../escape.safetensors' contains '..'", &err);
    const fipsc_st_writer *const twice[2] = {shard1, shard1};
    const char *two_files[2] = {"x.safetensors", "y.safetensors"};
    CHECK_FAILS(fipsc_st_write_index(other, 2, twice, two_files, &err), FIPSC_ERR_ARG,
                "tensor 'model.embed_tokens.weight' is in two shards: 'x.safetensors' and 'y.safetensors'", &err);
    CHECK(access(other, F_OK) != 0);
    fipsc_st_writer_free(shard1);
    fipsc_st_writer_free(shard2);

    /* read through the directory and through the index */
    for (int via = 0; via < 2; via++) {
        fipsc_st_set *s = NULL;
        CHECK_OK(fipsc_st_set_open(via ? index : dir, &s, &err), &err);
        if (!s) continue;
        CHECK(fipsc_st_set_count(s) == 4);
        CHECK(fipsc_st_set_shard_count(s) == 2);
        CHECK(fipsc_st_set_index_path(s) && strcmp(fipsc_st_set_index_path(s), index) == 0);
        /* shards in file-name order, each in header order */
        CHECK(strcmp(fipsc_st_set_at(s, 0)->name, "model.embed_tokens.weight") == 0);
        CHECK(strcmp(fipsc_st_set_at(s, 3)->name, "model.norm.weight") == 0);
        CHECK(fipsc_st_set_at(s, 4) == NULL);
        const fipsc_st_tensor *t = fipsc_st_set_find(s, "lm_head.weight");
        CHECK(t && t->file == fipsc_st_path(fipsc_st_set_shard(s, 1)));
        CHECK(t && memcmp(fipsc_st_f32_view(t), values + 8, 16) == 0);
        t = fipsc_st_set_find(s, "model.layers.0.mlp.up_proj.weight");
        CHECK(t && t->ndim == 2 && memcmp(t->data, values + 4, 16) == 0);
        t = fipsc_st_set_find(s, "model.norm.weight");
        CHECK(t && t->dtype == FIPSC_BF16);
        CHECK(fipsc_st_set_find(s, "nothing") == NULL);
        CHECK(strcmp(fipsc_st_meta(fipsc_st_set_shard(s, 0), "format"), "pt") == 0);
        fipsc_st_set_close(s);
    }

    /* a single file is a set of one, without index */
    test_pathf(path, sizeof path, "%s/%s", dir, files[1]);
    fipsc_st_set *s = NULL;
    CHECK_OK(fipsc_st_set_open(path, &s, &err), &err);
    CHECK(s && fipsc_st_set_count(s) == 2 && fipsc_st_set_shard_count(s) == 1);
    CHECK(s && fipsc_st_set_index_path(s) == NULL);
    CHECK(s && fipsc_st_set_find(s, "lm_head.weight") != NULL);
    fipsc_st_set_close(s);
}

static void test_directory_resolution(void)
{
    static const char *const one[] = {"w", NULL};
    fipsc_error err = {0};
    fipsc_st_set *s = NULL;
    char dir[2048];

    make_dir(dir, sizeof dir, "plain");
    write_shard(dir, "model.safetensors", one);
    write_shard(dir, "extra.safetensors", one); /* model.safetensors wins */
    CHECK_OK(fipsc_st_set_open(dir, &s, &err), &err);
    CHECK(s && strstr(fipsc_st_path(fipsc_st_set_shard(s, 0)), "/model.safetensors"));
    fipsc_st_set_close(s);

    make_dir(dir, sizeof dir, "other-name");
    write_shard(dir, "diffusion_pytorch_model.safetensors", one);
    CHECK_OK(fipsc_st_set_open(dir, &s, &err), &err);
    CHECK(s && fipsc_st_set_count(s) == 1);
    fipsc_st_set_close(s);

    make_dir(dir, sizeof dir, "ambiguous");
    write_shard(dir, "a.safetensors", one);
    write_shard(dir, "b.safetensors", one);
    CHECK_FAILS(fipsc_st_set_open(dir, &s, &err), FIPSC_ERR_FORMAT,
                "2 .safetensors files", &err);
    CHECK(strstr(err.message, "which one is meant"));

    make_dir(dir, sizeof dir, "empty");
    write_text(dir, "README.md", "no weights\n");
    CHECK_FAILS(fipsc_st_set_open(dir, &s, &err), FIPSC_ERR_NOT_FOUND,
                "no model.safetensors.index.json and no .safetensors file", &err);

    char missing[4096];
    test_pathf(missing, sizeof missing, "%s/nowhere", root);
    CHECK_FAILS(fipsc_st_set_open(missing, &s, &err), FIPSC_ERR_IO, "cannot open", &err);
    CHECK(s == NULL);
}

/* A directory with shards a.safetensors {x, y} and b.safetensors {z}, and the given index. */
static void expect_index_error(int line, const char *name, const char *index_json,
                               fipsc_status want, const char *needle)
{
    static const char *const a[] = {"x", "y", NULL}, *const b[] = {"z", NULL};
    char dir[2048];
    make_dir(dir, sizeof dir, name);
    write_shard(dir, "a.safetensors", a);
    write_shard(dir, "b.safetensors", b);
    write_text(dir, "model.safetensors.index.json", index_json);
    fipsc_error err = {0};
    fipsc_st_set *s = NULL;
    check_fails_impl(fipsc_st_set_open(dir, &s, &err), want, needle, &err, name, __FILE__, line);
    CHECK_MSG(strstr(err.message, "model.safetensors.index.json") != NULL,
              "line %d: message does not name the index: %s", line, err.message);
    CHECK(s == NULL);
}

#define INDEX_FAILS(name, json, needle) \
    expect_index_error(__LINE__, name, json, FIPSC_ERR_FORMAT, needle)

static void test_index_errors(void)
{
    /* the consistent index opens */
    char dir[2048];
    make_dir(dir, sizeof dir, "good");
    static const char *const a[] = {"x", "y", NULL}, *const b[] = {"z", NULL};
    write_shard(dir, "a.safetensors", a);
    write_shard(dir, "b.safetensors", b);
    write_text(dir, "model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":48},\"weight_map\":{\"x\":\"a.safetensors\","
               "\"y\":\"a.safetensors\",\"z\":\"b.safetensors\"}}");
    fipsc_error err = {0};
    fipsc_st_set *s = NULL;
    CHECK_OK(fipsc_st_set_open(dir, &s, &err), &err);
    CHECK(s && fipsc_st_set_count(s) == 3);
    fipsc_st_set_close(s);

    expect_index_error(__LINE__, "missing-shard",
                       "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\","
                       "\"z\":\"b.safetensors\",\"w\":\"c.safetensors\"}}",
                       FIPSC_ERR_IO,
                       "/c.safetensors: cannot open: No such file or directory");
    INDEX_FAILS("tensor-missing",
                "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\",\"z\":\"b.safetensors\","
                "\"q\":\"b.safetensors\"}}",
                "tensor 'q' of the weight_map is missing from its shard 'b.safetensors'");
    INDEX_FAILS("wrong-shard",
                "{\"weight_map\":{\"x\":\"b.safetensors\",\"y\":\"a.safetensors\",\"z\":\"b.safetensors\"}}",
                "tensor 'x' of the weight_map is missing from its shard 'b.safetensors' (it is in shard 'a.safetensors')");
    INDEX_FAILS("not-listed",
                "{\"weight_map\":{\"x\":\"a.safetensors\",\"z\":\"b.safetensors\"}}",
                "tensor 'y' of shard file");
    INDEX_FAILS("listed-twice",
                "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\",\"z\":\"b.safetensors\","
                "\"x\":\"a.safetensors\"}}",
                "tensor 'x' appears twice in the weight_map");
    INDEX_FAILS("escape-dotdot",
                "{\"weight_map\":{\"x\":\"../a.safetensors\"}}",
                "shard path '../a.safetensors' of tensor 'x' contains '..'");
    INDEX_FAILS("escape-inner",
                "{\"weight_map\":{\"x\":\"sub/../../a.safetensors\"}}",
                "contains '..'");
    INDEX_FAILS("escape-absolute",
                "{\"weight_map\":{\"x\":\"/etc/passwd\"}}",
                "shard path '/etc/passwd' of tensor 'x' is absolute");
    INDEX_FAILS("empty-path", "{\"weight_map\":{\"x\":\"\"}}", "shard path '' of tensor 'x' is empty");
    INDEX_FAILS("not-string", "{\"weight_map\":{\"x\":1}}",
                "weight_map entry for tensor 'x' is not a file name");
    INDEX_FAILS("no-weight-map", "{\"metadata\":{}}", "no \"weight_map\" object");
    INDEX_FAILS("weight-map-list", "{\"weight_map\":[\"a.safetensors\"]}", "no \"weight_map\" object");
    INDEX_FAILS("not-json", "{\"weight_map\":", "not a JSON object");
    INDEX_FAILS("not-object", "[]", "not a JSON object");

    /* the same tensor in two shards, whatever the index says */
    make_dir(dir, sizeof dir, "two-shards");
    static const char *const c[] = {"x", NULL};
    write_shard(dir, "a.safetensors", a);
    write_shard(dir, "c.safetensors", c);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\",\"q\":\"c.safetensors\"}}");
    CHECK_FAILS(fipsc_st_set_open(dir, &s, &err), FIPSC_ERR_FORMAT,
                "tensor 'x' is in two shards: 'a.safetensors' and 'c.safetensors'", &err);

    /* a corrupt shard: its own message, prefixed by the index and shard */
    make_dir(dir, sizeof dir, "corrupt-shard");
    write_shard(dir, "a.safetensors", a);
    write_text(dir, "b.safetensors", "short");
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\",\"z\":\"b.safetensors\"}}");
    CHECK_FAILS(fipsc_st_set_open(dir, &s, &err), FIPSC_ERR_FORMAT,
                "model.safetensors.index.json: shard 'b.safetensors': ", &err);
    CHECK(strstr(err.message, "b.safetensors: truncated: 5 bytes"));

    /* shards in a subdirectory are allowed */
    make_dir(dir, sizeof dir, "subdir");
    char sub[3000];
    test_pathf(sub, sizeof sub, "%s/weights", dir);
    mkdir(sub, 0755);
    write_shard(sub, "a.safetensors", a);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"weights/a.safetensors\",\"y\":\"./weights/a.safetensors\"}}");
    CHECK_OK(fipsc_st_set_open(dir, &s, &err), &err);
    CHECK(s && fipsc_st_set_count(s) == 2);
    fipsc_st_set_close(s);
}

int main(void)
{
    for (int i = 0; i < 64; i++) values[i] = (float)i * 0.5f - 3.0f;
    root = test_tmpdir("test_safetensors_index");
    test_round_trip();
    test_directory_resolution();
    test_index_errors();
    return test_summary("test_safetensors_index");
}
