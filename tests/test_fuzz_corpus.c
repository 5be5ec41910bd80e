/* Replays every committed fuzz input (every file in fuzz/corpus/<target>/: the seeds and the
 * regression inputs of crashes found and fixed) through its fuzz target's harness, in the
 * ordinary builds (release and ASan+UBSan, gcc). A crash that comes back thus fails ctest even
 * where clang and libFuzzer are absent. A harness aborts on a broken invariant; the sanitizers
 * stop on memory errors and leaks. Also checks the fixes behind the regression inputs directly,
 * with the errors they now give.
 *
 * The harnesses are compiled in here, each with its entry point renamed (their static names are
 * distinct for that reason). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama2c.h"
#include "families/llama/llama.h"
#include "core/file.h"
#include "families/llama/hf.h"
#include "formats/image.h"
#include "model/model.h"
#include "formats/tfjs.h"
#include "families/use/use.h"
#include "families/vit/vit.h"
#include "testutil.h"

#define LLVMFuzzerTestOneInput fuzz_one_safetensors
#include "../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_safetensors_index
#include "../fuzz/fuzz_safetensors_index.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_hf_config
#include "../fuzz/fuzz_hf_config.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_llama2c
#include "../fuzz/fuzz_llama2c.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_sp_vocab
#include "../fuzz/fuzz_sp_vocab.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_corpus
#include "../fuzz/fuzz_corpus.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_vit_config
#include "../fuzz/fuzz_vit_config.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_gpt2_config
#include "../fuzz/fuzz_gpt2_config.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_image
#include "../fuzz/fuzz_image.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_image_preproc
#include "../fuzz/fuzz_image_preproc.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE

#define LLVMFuzzerTestOneInput fuzz_one_tfjs
#include "../fuzz/fuzz_tfjs.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_use_config
#include "../fuzz/fuzz_use_config.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_compressed
#include "../fuzz/fuzz_compressed.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_model_load
#include "../fuzz/fuzz_model_load.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_idx
#include "../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_sts
#include "../fuzz/fuzz_sts.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_gguf
#include "../fuzz/fuzz_gguf.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_tokenizer
#include "../fuzz/fuzz_tokenizer.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE
#define LLVMFuzzerTestOneInput fuzz_one_checkpoint
#include "../fuzz/fuzz_checkpoint.c"
#undef LLVMFuzzerTestOneInput
#undef REQUIRE

#include "../fuzz/fuzzutil.c"

typedef struct {
    const char *name;
    int (*one)(const uint8_t *data, size_t size);
} target;

static const target targets[] = {
    {"fuzz_safetensors", fuzz_one_safetensors},
    {"fuzz_safetensors_index", fuzz_one_safetensors_index},
    {"fuzz_hf_config", fuzz_one_hf_config},
    {"fuzz_llama2c", fuzz_one_llama2c},
    {"fuzz_sp_vocab", fuzz_one_sp_vocab},
    {"fuzz_corpus", fuzz_one_corpus},
    {"fuzz_vit_config", fuzz_one_vit_config},
    {"fuzz_gpt2_config", fuzz_one_gpt2_config},
    {"fuzz_image", fuzz_one_image},
    {"fuzz_image_preproc", fuzz_one_image_preproc},
    {"fuzz_tfjs", fuzz_one_tfjs},
    {"fuzz_use_config", fuzz_one_use_config},
    {"fuzz_compressed", fuzz_one_compressed},
    {"fuzz_model_load", fuzz_one_model_load},
    {"fuzz_idx", fuzz_one_idx},
    {"fuzz_sts", fuzz_one_sts},
    {"fuzz_gguf", fuzz_one_gguf},
    {"fuzz_tokenizer", fuzz_one_tokenizer},
    {"fuzz_checkpoint", fuzz_one_checkpoint},
};

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every file of fuzz/corpus/<t->name>/ through t->one, in name order; returns the count. */
static int replay(const target *t)
{
    char dir[4096];
    char rel[256];
    test_pathf(rel, sizeof rel, "fuzz/corpus/%s", t->name);
    test_path(dir, sizeof dir, "FIPSC_SOURCE_DIR", rel);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot list %s", dir);
    if (!d) return 0;
    char *names[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;)
        if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    for (int i = 0; i < n; i++) {
        char path[8192];
        test_pathf(path, sizeof path, "%s/%s", dir, names[i]);
        fprintf(stderr, "%s: %s\n", t->name, names[i]); /* the last line names a crashing input */
        char *bytes;
        size_t size;
        fipsc_error err;
        fipsc_status st = fipsc_read_file(path, &bytes, &size, &err);
        CHECK_MSG(st == FIPSC_OK, "%s", err.message);
        if (st == FIPSC_OK) {
            CHECK(t->one((const uint8_t *)bytes, size) == 0);
            free(bytes);
        }
        free(names[i]);
    }
    return n;
}

/* The fixes behind the regression inputs, with the errors they now give. */
static void check_fixes(void)
{
    fipsc_error err;
    fipsc_config cfg;
    /* rms_norm_eps 1e-50 is positive as a double but 0 as the float the runtime uses. */
    CHECK_FAILS(fipsc_hf_parse_config("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8,"
                                      " \"intermediate_size\": 8, \"num_hidden_layers\": 1,"
                                      " \"num_attention_heads\": 2, \"vocab_size\": 4,"
                                      " \"rms_norm_eps\": 1e-50}",
                                      "config.json", &cfg, &err),
                FIPSC_ERR_FORMAT, "'rms_norm_eps' must be a positive number", &err);

    /* A llama2.c header with vocab_size INT32_MIN (negating it overflowed). */
    int32_t header[7] = {8, 8, 1, 2, 2, INT32_MIN, 4};
    fipsc_model *m = (fipsc_model *)1;
    CHECK_FAILS(fipsc_load_llama2c_buffer(header, sizeof header, "min.bin", &m, &err), FIPSC_ERR_FORMAT,
                "min.bin: not a valid llama2.c header", &err);
    CHECK(m == NULL);

    /* Floats that are positive or finite as doubles only. */
    fipsc_vit vc;
    CHECK_FAILS(fipsc_vit_parse_config("{\"architectures\": [\"ViTForImageClassification\"],"
                                       " \"layer_norm_eps\": 1e-50}",
                                       "vit.json", &vc, &err),
                FIPSC_ERR_FORMAT, "key 'layer_norm_eps' must be a positive number", &err);
    fipsc_image_preproc pp;
    CHECK_FAILS(fipsc_image_preproc_parse("{\"image_std\": [0.5, 1e-50, 0.5]}", "pp.json", 3, 8, 8, &pp, &err),
                FIPSC_ERR_FORMAT, "key 'image_std' must be a positive number", &err);
    CHECK_FAILS(fipsc_image_preproc_parse("{\"image_mean\": 1e300}", "pp.json", 1, 8, 8, &pp, &err),
                FIPSC_ERR_FORMAT, "key 'image_mean' must be a number", &err);
    static const char use_config[] =
        "{\"architectures\": [\"UniversalSentenceEncoderLite\"], \"vocab_size\": 10, \"embedding_size\": 4,"
        " \"hidden_size\": 6, \"intermediate_size\": %s, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
        " \"hidden_act\": \"relu\", \"layer_norm_eps\": %s, \"l2_normalize_eps\": 1,"
        " \"max_position_embeddings\": 1, \"tokenizer_reserved_symbols\": 0}";
    char text[1024];
    fipsc_use u;
    snprintf(text, sizeof text, use_config, "3", "1e-50");
    CHECK_FAILS(fipsc_use_parse_config(text, "use", &u, &err), FIPSC_ERR_FORMAT,
                "\"layer_norm_eps\" must be a number in (0, 1]", &err);
    /* An integer beyond int: refused before it is converted (the conversion was undefined). */
    snprintf(text, sizeof text, use_config, "3100000001", "1e-6");
    CHECK_FAILS(fipsc_use_parse_config(text, "use", &u, &err), FIPSC_ERR_FORMAT,
                "\"intermediate_size\" must be an integer >= 1", &err);
    snprintf(text, sizeof text, use_config, "3", "1e-6");
    CHECK_OK(fipsc_use_parse_config(text, "use", &u, &err), &err);

    /* TF.js manifests: a shape whose element count wraps around 2^64, a dimension beyond int64,
     * and a bad second group after a good first one (closing freed group data never allocated). */
    static const char *const manifests[][2] = {
        {"{\"weightsManifest\": [{\"paths\": [], \"weights\": [{\"name\": \"w\","
         " \"shape\": [1099511627776, 16777216], \"dtype\": \"float32\"}]}]}",
         "weight 'w' is impossibly large"},
        {"{\"weightsManifest\": [{\"paths\": [], \"weights\": [{\"name\": \"w\","
         " \"shape\": [2, 1e30], \"dtype\": \"float32\"}]}]}",
         "weight 'w' has an invalid dimension 1"},
        {"{\"weightsManifest\": [{\"paths\": [], \"weights\": []}, {\"weights\": []}]}",
         "weightsManifest group 1 is not an object"},
    };
    const char *dir = test_tmpdir("test_fuzz_corpus");
    char path[4096];
    test_pathf(path, sizeof path, "%s/model.json", dir);
    for (size_t i = 0; i < sizeof manifests / sizeof manifests[0]; i++) {
        FILE *fp = fopen(path, "wb");
        CHECK(fp && fputs(manifests[i][0], fp) >= 0 && fclose(fp) == 0);
        fipsc_tfjs_model *tm = (fipsc_tfjs_model *)1;
        CHECK_FAILS(fipsc_tfjs_open(dir, &tm, &err), FIPSC_ERR_FORMAT, manifests[i][1], &err);
        CHECK(tm == NULL);
    }
}

/* fipsc_load_llama2c_buffer reads exactly what fipsc_load_llama2c reads from a file. */
static void check_llama2c_buffer(void)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "fuzz/corpus/fuzz_llama2c/shared_gqa.bin");
    char *bytes;
    size_t size;
    fipsc_error err;
    CHECK_OK(fipsc_read_file(path, &bytes, &size, &err), &err);
    fipsc_model *from_file = NULL, *from_buffer = NULL;
    CHECK_OK(fipsc_load_llama2c(path, &from_file, &err), &err);
    CHECK_OK(fipsc_load_llama2c_buffer(bytes, size, "in memory", &from_buffer, &err), &err);
    if (from_file && from_buffer) {
        CHECK(strcmp(from_buffer->source_path, "in memory") == 0);
        CHECK(from_file->n_tensors == from_buffer->n_tensors && from_buffer->n_tensors > 0);
        CHECK(fipsc_model_llama(from_buffer)->cfg.dim == 4 && fipsc_model_llama(from_buffer)->cfg.n_kv_heads == 1 && fipsc_model_llama(from_buffer)->cfg.tie_embeddings);
        for (int i = 0; i < from_file->n_tensors && i < from_buffer->n_tensors; i++) {
            const fipsc_tensor *a = &from_file->tensors[i], *b = &from_buffer->tensors[i];
            int64_t n = fipsc_shape_numel(a->ndim, a->shape);
            CHECK(strcmp(a->name, b->name) == 0 && a->ndim == b->ndim &&
                  memcmp(a->shape, b->shape, sizeof a->shape) == 0 &&
                  memcmp(a->data, b->data, (size_t)n * sizeof(float)) == 0);
        }
    }
    fipsc_model_free(from_file);
    fipsc_model_free(from_buffer);
    /* Truncated by one byte: refused, naming the buffer. */
    CHECK_FAILS(fipsc_load_llama2c_buffer(bytes, size - 1, "in memory", &from_buffer, &err),
                FIPSC_ERR_FORMAT, "in memory: truncated", &err);
    free(bytes);
}

int main(void)
{
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        int n = replay(&targets[i]);
        CHECK_MSG(n > 0, "no inputs for %s", targets[i].name);
        printf("%s: %d inputs replayed\n", targets[i].name, n);
    }
    check_fixes();
    check_llama2c_buffer();
    return test_summary("test_fuzz_corpus");
}
