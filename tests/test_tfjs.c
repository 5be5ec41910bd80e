/* TF.js graph models: reading a small generated model (weights straddling shards, both dtypes,
 * a scalar, an empty tensor, graph nodes), every malformed-manifest and malformed-shard error, and
 * the sentence-encoder importer refusing graphs that differ from the one it implements. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "families/registry.h"
#include "core/file.h"
#include "model/model.h"
#include "formats/tfjs.h"
#include "families/use/use.h"
#include "testutil.h"
#include "use_testdata.h"

static const char *tmp;

static void write_file(const char *name, const void *data, size_t n)
{
    char path[4300];
    test_pathf(path, sizeof path, "%s/%s", tmp, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void write_text(const char *name, const char *text) { write_file(name, text, strlen(text)); }

/* The weights of the small model: a = float32 [2, 3], b = int32 scalar, c = float32 [0],
 * d = float32 [2] in a second group. Group 0 is 28 bytes split 10 + 18 (a straddles shards). */
static const float a_values[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.5f, 1e-3f};
static const int32_t b_value = -7;
static const float d_values[2] = {42.0f, -1.0f};

static void write_shards(size_t shard1_bytes, size_t trim, size_t extra)
{
    unsigned char group0[28 + 8];
    memcpy(group0, a_values, 24);
    memcpy(group0 + 24, &b_value, 4);
    memset(group0 + 28, 0xAB, sizeof group0 - 28);
    write_file("g0-s1", group0, shard1_bytes);
    write_file("g0-s2", group0 + shard1_bytes, 28 - shard1_bytes - trim + extra);
    write_file("g1-s1", d_values, sizeof d_values);
}

/* model.json with the manifest's pieces replaceable for the error cases. */
static void write_manifest(const char *weights0, const char *paths0, const char *extra)
{
    char json[4096];
    snprintf(json, sizeof json,
             "{\"format\": \"graph-model\", \"modelTopology\": {\"node\": ["
             "{\"name\": \"x\", \"op\": \"Placeholder\"},"
             "{\"name\": \"y\", \"op\": \"MatMul\", \"input\": [\"x\", \"a\"]}]},"
             "\"weightsManifest\": [{\"paths\": %s, \"weights\": %s},"
             "{\"paths\": [\"g1-s1\"], \"weights\": [{\"name\": \"d\", \"shape\": [2], \"dtype\": \"float32\"}]}]%s}",
             paths0 ? paths0 : "[\"g0-s1\", \"g0-s2\"]",
             weights0 ? weights0
                      : "[{\"name\": \"a\", \"shape\": [2, 3], \"dtype\": \"float32\"},"
                        "{\"name\": \"b\", \"shape\": [], \"dtype\": \"int32\"},"
                        "{\"name\": \"c\", \"shape\": [0, 4], \"dtype\": \"float32\"}]",
             extra ? extra : "");
    write_text("model.json", json);
}

static void test_reads_small_model(void)
{
    write_shards(10, 0, 0);
    write_manifest(NULL, NULL, NULL);
    fipsc_error err = {0};
    fipsc_tfjs_model *m = NULL;
    CHECK_OK(fipsc_tfjs_open(tmp, &m, &err), &err);
    if (!m) return;
    CHECK(fipsc_tfjs_weight_count(m) == 4);
    const fipsc_tfjs_weight *a = fipsc_tfjs_find(m, "a"), *b = fipsc_tfjs_find(m, "b");
    const fipsc_tfjs_weight *c = fipsc_tfjs_find(m, "c"), *d = fipsc_tfjs_find(m, "d");
    CHECK(a && b && c && d && !fipsc_tfjs_find(m, "e"));
    if (a && b && c && d) {
        CHECK(a->dtype == FIPSC_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->nbytes == 24);
        CHECK(memcmp(a->data, a_values, sizeof a_values) == 0);
        CHECK(b->dtype == FIPSC_I32 && b->ndim == 0 && b->nbytes == 4 && *(const int32_t *)b->data == b_value);
        CHECK(c->nbytes == 0 && c->ndim == 2 && c->group == 0);
        CHECK(d->group == 1 && memcmp(d->data, d_values, sizeof d_values) == 0);
    }
    CHECK(fipsc_tfjs_weight_at(m, 0) == a && fipsc_tfjs_weight_at(m, 4) == NULL);
    CHECK(fipsc_tfjs_node_count(m) == 2);
    const fipsc_tfjs_node *y = fipsc_tfjs_find_node(m, "y");
    CHECK(y && strcmp(y->op, "MatMul") == 0 && y->n_inputs == 2 && strcmp(y->inputs[1], "a") == 0);
    CHECK(fipsc_tfjs_find_node(m, "x")->n_inputs == 0);
    fipsc_tfjs_close(m);

    /* model.json named directly works the same */
    char path[4300];
    test_pathf(path, sizeof path, "%s/model.json", tmp);
    CHECK_OK(fipsc_tfjs_open(path, &m, &err), &err);
    fipsc_tfjs_close(m);
}

static void expect_open_fails(fipsc_status code, const char *needle)
{
    fipsc_error err = {0};
    fipsc_tfjs_model *m = (fipsc_tfjs_model *)&err; /* must be reset to NULL */
    CHECK_FAILS(fipsc_tfjs_open(tmp, &m, &err), code, needle, &err);
    CHECK(m == NULL);
}

static void test_bad_inputs(void)
{
    char path[4300];
    /* shards */
    write_shards(10, 0, 0);
    write_manifest(NULL, "[\"g0-s1\", \"missing-shard\"]", NULL);
    expect_open_fails(FIPSC_ERR_NOT_FOUND, "missing-shard");
    write_manifest(NULL, NULL, NULL);
    write_shards(10, 4, 0);
    expect_open_fails(FIPSC_ERR_FORMAT, "hold 24 bytes but its weights need 28");
    write_shards(10, 0, 3);
    expect_open_fails(FIPSC_ERR_FORMAT, "unexpected extra bytes");
    write_shards(10, 0, 0);
    write_manifest(NULL, "[\"g0-s1\", \"../g0-s2\"]", NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "relative file name");
    write_manifest(NULL, "[\"/etc/passwd\"]", NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "relative file name");
    write_manifest(NULL, "[\"g0-s1\", 7]", NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "path 1");
    /* dtypes and shapes */
    write_manifest("[{\"name\": \"a\", \"shape\": [7], \"dtype\": \"float64\"}]", NULL, NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "unknown dtype 'float64'");
    write_manifest("[{\"name\": \"a\", \"shape\": [7], \"dtype\": \"bool\"}]", NULL, NULL);
    expect_open_fails(FIPSC_ERR_UNSUPPORTED, "dtype bool");
    write_manifest("[{\"name\": \"a\", \"shape\": [7], \"dtype\": \"float32\", \"quantization\": "
                   "{\"dtype\": \"uint8\", \"scale\": 0.1, \"min\": 0}}]",
                   NULL, NULL);
    expect_open_fails(FIPSC_ERR_UNSUPPORTED, "quantized");
    write_manifest("[{\"name\": \"a\", \"shape\": [7]}]", NULL, NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "no \"dtype\"");
    write_manifest("[{\"name\": \"a\", \"shape\": [2, -3], \"dtype\": \"float32\"}]", NULL, NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "invalid dimension 1");
    write_manifest("[{\"name\": \"a\", \"shape\": [2.5], \"dtype\": \"float32\"}]", NULL, NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "invalid dimension 0");
    write_manifest("[{\"name\": \"a\", \"shape\": [1,1,1,1,1,1,1,1,1], \"dtype\": \"float32\"}]", NULL, NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "9 dimensions");
    write_manifest("[{\"name\": \"a\", \"dtype\": \"float32\"}]", NULL, NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "no \"shape\"");
    write_manifest("[{\"name\": \"a\", \"shape\": [4], \"dtype\": \"float32\"},"
                   "{\"name\": \"a\", \"shape\": [3], \"dtype\": \"float32\"}]",
                   NULL, NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "'a' appears twice");
    write_manifest("[{\"shape\": [7], \"dtype\": \"float32\"}]", NULL, NULL);
    expect_open_fails(FIPSC_ERR_FORMAT, "has no name");
    /* the JSON itself */
    write_text("model.json", "{\"weightsManifest\": [");
    expect_open_fails(FIPSC_ERR_FORMAT, "bad JSON");
    write_text("model.json", "[1, 2]");
    expect_open_fails(FIPSC_ERR_FORMAT, "not a JSON object");
    write_text("model.json", "{\"format\": \"graph-model\"}");
    expect_open_fails(FIPSC_ERR_FORMAT, "no \"weightsManifest\"");
    write_text("model.json", "{\"weightsManifest\": [{\"paths\": []}]}");
    expect_open_fails(FIPSC_ERR_FORMAT, "group 0 is not an object");
    write_text("model.json", "{\"weightsManifest\": [], \"modelTopology\": {\"node\": [{\"name\": \"n\"}]}}");
    expect_open_fails(FIPSC_ERR_FORMAT, "graph node 0 has no");
    write_text("model.json", "{\"weightsManifest\": [], \"modelTopology\": {\"node\": [{\"name\": \"n\", \"op\": \"Add\", \"input\": [3]}]}}");
    expect_open_fails(FIPSC_ERR_FORMAT, "non-string input 0");
    test_pathf(path, sizeof path, "%s/model.json", tmp);
    unlink(path);
    expect_open_fails(FIPSC_ERR_NOT_FOUND, "model.json");
}

/* A TF.js model that is not the sentence encoder: the importer says what is missing. */
static void test_importer_refuses_other_models(void)
{
    write_shards(10, 0, 0);
    write_manifest(NULL, NULL, NULL);
    write_text("vocab.json", "[[\"\\ufffd\",0],[\"<s>\",0],[\"</s>\",0],[\"x1\",0],[\"x2\",0],[\"x3\",0],[\"a\",-1]]");
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK(fipsc_use_path_is_use(tmp));
    CHECK_FAILS(fipsc_model_load(tmp, &m, &err), FIPSC_ERR_NOT_FOUND, "missing weight 'module/Embeddings_en'", &err);
    CHECK(m == NULL);
}

/* Writes tmp/model.json: the real model.json with the first `from` replaced by `to`. */
static bool write_edited_model_json(const char *from, const char *to)
{
    char path[4300], *text;
    size_t n;
    fipsc_error err = {0};
    test_pathf(path, sizeof path, "%s/model.json", use_model_dir());
    if (fipsc_read_file(path, &text, &n, &err)) {
        CHECK_MSG(0, "%s", err.message);
        return false;
    }
    char *at = strstr(text, from);
    CHECK_MSG(at != NULL, "'%s' not in model.json", from);
    if (!at) {
        free(text);
        return false;
    }
    size_t lf = strlen(from), lt = strlen(to);
    char *edited = malloc(n - lf + lt + 1);
    memcpy(edited, text, (size_t)(at - text));
    memcpy(edited + (at - text), to, lt);
    strcpy(edited + (at - text) + lt, at + lf);
    write_text("model.json", edited);
    free(edited);
    free(text);
    return true;
}

static void expect_graph_refused(const char *from, const char *to, const char *needle)
{
    if (!write_edited_model_json(from, to)) return;
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_FAILS(fipsc_use_load_tfjs(tmp, &m, &err), FIPSC_ERR_UNSUPPORTED, needle, &err);
    CHECK(m == NULL);
}

/* The real model with one graph detail changed: the importer must notice. */
static void test_importer_checks_the_graph(void)
{
    const char *dir = use_model_dir();
    char src[4300], dst[4300];
    /* the shards and the vocabulary as symlinks: only model.json changes */
    static const char *files[] = {"group1-shard1of7", "group1-shard2of7", "group1-shard3of7", "group1-shard4of7",
                                  "group1-shard5of7", "group1-shard6of7", "group1-shard7of7", "vocab.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        test_pathf(src, sizeof src, "%s/%s", dir, files[i]);
        test_pathf(dst, sizeof dst, "%s/%s", tmp, files[i]);
        unlink(dst);
        if (symlink(src, dst) != 0) {
            CHECK_MSG(0, "cannot link %s", dst);
            return;
        }
    }
    /* the unchanged copy imports */
    if (write_edited_model_json("\"op\": \"Relu\"", "\"op\": \"Relu\"")) {
        fipsc_error err = {0};
        fipsc_model *m = NULL;
        CHECK_OK(fipsc_use_load_tfjs(tmp, &m, &err), &err);
        fipsc_model_free(m);
    }
    expect_graph_refused("\"op\": \"Relu\"", "\"op\": \"Relu6\"", "expected a Relu");
    expect_graph_refused("\"op\": \"Tanh\"", "\"op\": \"Sigmoid\"", "expected a Tanh");
    expect_graph_refused("\"op\": \"Softmax\"", "\"op\": \"Sigmoid\"", "expected a Softmax");
    expect_graph_refused("\"op\": \"Sin\"", "\"op\": \"Cos\"", "expected a Sin");
    /* without the doubled embedding: Layer_0/add would add the timing branch to itself */
    expect_graph_refused("\"module_apply_default/Encoder_en/KonaTransformer/Encode/Scatter/ScatterNd\",\n"
                         "          \"module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_0/"
                         "AddTimingSignal/Scatter/ScatterNd\"",
                         "\"module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_0/"
                         "AddTimingSignal/Scatter/ScatterNd\",\n"
                         "          \"module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_0/"
                         "AddTimingSignal/Scatter/ScatterNd\"",
                         "Layer_0/add");
}

int main(void)
{
    tmp = test_tmpdir("test_tfjs");
    test_reads_small_model();
    test_bad_inputs();
    test_importer_refuses_other_models();
    test_importer_checks_the_graph();
    return test_summary("test_tfjs");
}
