/* The command line on a compressed file (written here from stories260K with synthetic groups:
 * 0-1 CSC, 2-3 n:m 2:4, 4 an identity-basis magnitude baseline):
 *   - `fipsc inspect` shows the groups, ranks, storages, every matrix, and fewer MLP bytes than
 *     the dense original (text and --json);
 *   - `fipsc export --dense -o DIR` writes a Hugging Face checkpoint whose logits equal the
 *     compressed file's within 1e-4 relative; an independent JavaScript reader written from
 *     docs/FORMAT.md (tests/compressed_reader.js) rebuilds every weight from the compressed file
 *     and finds the exported ones; usage errors and refusals exit 2 and 1;
 *   - `fipsc generate` and `fipsc eval` run the compressed file. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "families/llama/llama.h"
#include "families/registry.h"
#include "compressed_fixture.h"
#include "model/compressed.h"
#include "ops/factored.h"
#include "core/file.h"
#include "families/llama/runtime.h"
#include "testutil.h"

enum { BATCH = 2, LEN = 16 };

static const char *cli, *tmp;

/* Runs a shell command, output to out_file (may be NULL: discarded); returns the exit code. */
static int run(const char *out_file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(const char *out_file, const char *fmt, ...)
{
    char cmd[8192], full[8600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s >'%s' 2>&1", cmd, out_file ? out_file : "/dev/null");
    int rc = system(full);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *path)
{
    fipsc_error err = {0};
    char *text = NULL;
    size_t size;
    if (fipsc_read_file(path, &text, &size, &err)) return strdup("");
    return text;
}

static bool contains(const char *file, const char *needle)
{
    char *text = slurp(file);
    bool yes = strstr(text, needle) != NULL;
    if (!yes) fprintf(stderr, "%s does not contain '%s':\n%.2000s\n", file, needle, text);
    free(text);
    return yes;
}

static float *logits_of(const fipsc_model *m, const int32_t *tokens)
{
    fipsc_error err = {0};
    float *l = malloc((size_t)BATCH * LEN * fipsc_model_llama(m)->cfg.vocab_size * sizeof *l);
    CHECK_OK(fipsc_llama_forward(m, tokens, BATCH, LEN, l, NULL, &err), &err);
    return l;
}

int main(void)
{
    cli = getenv("FIPSC_CLI");
    tmp = test_tmpdir("test_compressed_cli");
    char model_path[4096], src[4096], path[4300], out[4300], dir[4300], txt[4300];
    test_path(model_path, sizeof model_path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    test_path(src, sizeof src, "FIPSC_SOURCE_DIR", "");
    CHECK(cli != NULL);
    if (!cli) return test_summary("test_compressed_cli");

    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(model_path, &m, &err), &err);
    if (!m) return test_summary("test_compressed_cli");
    CHECK_OK(attach_svd_group(m, 0, 1, 48, 0.5, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group(m, 2, 3, 48, 0, 2, 4, FIPSC_V_NM, "fips-init", &err), &err);
    CHECK_OK(attach_magnitude(m, 4, 0.5, &err), &err);
    fipsc_mlp_footprint fp = fipsc_model_mlp_footprint(m);
    test_pathf(path, sizeof path, "%s/c.safetensors", tmp);
    CHECK_OK(fipsc_compressed_write(m, path, NULL, &err), &err);
    int32_t tokens[BATCH * LEN];
    for (int i = 0; i < BATCH * LEN; i++) tokens[i] = i % LEN == 0 ? 1 : (int32_t)((i * 7919) % 512);
    float *logits_c = logits_of(m, tokens);
    fipsc_model_free(m);

    /* inspect: text */
    test_pathf(txt, sizeof txt, "%s/inspect.txt", tmp);
    CHECK(run(txt, "'%s' inspect '%s'", cli, path) == 0);
    CHECK(contains(txt, "format: fipsc-compressed"));
    CHECK(contains(txt, "architecture LlamaForCausalLM: dim 64, hidden 172, 5 layers"));
    CHECK(contains(txt, "compression: 3 groups; MLP parameters 165120 dense -> "));
    CHECK(contains(txt, "group 0: layers 0-1, d 64, rank 48, U F32, method fips-init, V csc"));
    CHECK(contains(txt, "group 1: layers 2-3, d 64, rank 48, U F32, method fips-init, V nm 2:4"));
    CHECK(contains(txt, "group 2: layers 4-4, d 64, rank 64, U identity, method magnitude, V csc"));
    CHECK(contains(txt, "model.layers.3.mlp.down_proj.weight"));
    CHECK(contains(txt, "fips.groups.1.U"));
    char want[256];
    snprintf(want, sizeof want, "parameters: mlp %lld,", fp.kept_params);
    CHECK(contains(txt, want));
    snprintf(want, sizeof want, "MLP bytes %lld dense -> %lld stored", fp.dense_bytes, fp.stored_bytes);
    CHECK(contains(txt, want));
    CHECK(fp.stored_bytes < fp.dense_bytes);

    /* inspect: JSON */
    test_pathf(out, sizeof out, "%s/inspect.json", tmp);
    CHECK(run(out, "'%s' inspect --json '%s'", cli, path) == 0);
    char *text = slurp(out);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *comp = cJSON_GetObjectItem(doc, "compression"), *foot = cJSON_GetObjectItem(comp, "footprint");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(foot, "stored_bytes")) == (double)fp.stored_bytes);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(foot, "dense_bytes")) == 4.0 * 165120);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(comp, "groups")) == 3);
    const cJSON *g1m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(comp, "groups"), 1), "matrices"), 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(g1m0, "nnz")) == 172 * 12 * 2);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(g1m0, "sparsity")) == 0.5);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "format")), "fipsc-compressed") == 0);
    cJSON_Delete(doc);

    /* export --dense */
    test_pathf(dir, sizeof dir, "%s/dense", tmp);
    test_pathf(out, sizeof out, "%s/export.txt", tmp);
    CHECK(run(out, "'%s' export '%s' --dense -o '%s'", cli, path, dir) == 0);
    CHECK(contains(out, "15 compressed matrices of 3 groups reconstructed"));
    fipsc_model *e = NULL;
    CHECK_OK(fipsc_model_load(dir, &e, &err), &err);
    if (e) {
        CHECK(fipsc_model_group_count(e) == 0 && e->mlps[2]->down.w != NULL);
        float *logits_e = logits_of(e, tokens);
        double diff = 0, scale = 0;
        for (size_t i = 0; i < (size_t)BATCH * LEN * 512; i++) {
            double x = fabs((double)logits_e[i] - logits_c[i]);
            if (!(x <= diff)) diff = x;
            if (fabs(logits_c[i]) > scale) scale = fabs(logits_c[i]);
        }
        CHECK_MSG(diff / scale <= 1e-4, "exported vs compressed logits: relative difference %.3g", diff / scale);
        free(logits_e);
        fipsc_model_free(e);
    }
    /* a third-party reader of the documented format finds the same weights */
    test_pathf(out, sizeof out, "%s/reader.txt", tmp);
    CHECK_MSG(run(out, "node '%s/tests/compressed_reader.js' '%s' '%s/model.safetensors'", src, path, dir) == 0,
              "independent reader: %s", out);
    CHECK(contains(out, "LlamaForCausalLM: 3 groups checked, 0 failures"));

    /* format version 2 (bitmap storage, BF16 and F16 values): inspect says so, and the
     * independent reader rebuilds the same weights as export --dense */
    char path2[4300], dir2[4300];
    m = NULL;
    CHECK_OK(fipsc_model_load(model_path, &m, &err), &err);
    if (m) {
        CHECK_OK(attach_svd_group_as(m, 0, 1, 44, 0.5, 0, 0, FIPSC_V_BITMAP, FIPSC_BF16, FIPSC_BF16, "fips", &err), &err);
        CHECK_OK(attach_svd_group_as(m, 2, 3, 48, 0, 2, 4, FIPSC_V_NM, FIPSC_F32, FIPSC_F16, "fips", &err), &err);
        CHECK_OK(attach_svd_group_as(m, 4, 4, 32, 0, 0, 0, FIPSC_V_DENSE, FIPSC_F16, FIPSC_BF16, "shared-svd", &err),
                 &err);
        test_pathf(path2, sizeof path2, "%s/c2.safetensors", tmp);
        CHECK_OK(fipsc_compressed_write(m, path2, NULL, &err), &err);
        fipsc_model_free(m);
        CHECK(run(txt, "'%s' inspect '%s'", cli, path2) == 0);
        CHECK(contains(txt, "group 0: layers 0-1, d 64, rank 44, U BF16, method fips, V bitmap BF16"));
        CHECK(contains(txt, "group 1: layers 2-3, d 64, rank 48, U F32, method fips, V nm 2:4 F16"));
        /* a kept entry of the bitmap group: 2 bytes of value + 6 bytes of bitmap per column */
        CHECK(contains(txt, " per kept entry; dense F32)"));
        test_pathf(dir2, sizeof dir2, "%s/dense2", tmp);
        CHECK(run(out, "'%s' export '%s' --dense -o '%s'", cli, path2, dir2) == 0);
        CHECK_MSG(run(out, "node '%s/tests/compressed_reader.js' '%s' '%s/model.safetensors'", src, path2, dir2) == 0,
                  "independent reader, version 2: %s", out);
        CHECK(contains(out, "LlamaForCausalLM: 3 groups checked, 0 failures"));
        CHECK(contains(out, "gate_proj.weight (gate, expanding, bitmap, nnz "));
    }

    /* refusals and usage errors */
    CHECK(run(out, "'%s' export '%s' --dense -o '%s'", cli, path, dir) == 1);
    CHECK(contains(out, "refusing to overwrite"));
    CHECK(run(out, "'%s' export '%s' --dense -o '%s' --force", cli, path, dir) == 0);
    CHECK(run(out, "'%s' export '%s' -o '%s/x'", cli, path, tmp) == 2);
    CHECK(contains(out, "fipsc export: give exactly one of --dense"));
    CHECK(run(out, "'%s' export '%s' --dense", cli, path) == 2);
    CHECK(run(out, "'%s' export --dense -o '%s/y'", cli, tmp) == 2);
    CHECK(run(out, "'%s' export '%s/none.safetensors' --dense -o '%s/z'", cli, tmp, tmp) == 1);
    CHECK(run(out, "'%s' export --help", cli) == 0 && contains(out, "Usage: fipsc export MODEL --dense -o DIR"));
    /* an uncompressed model exports as it is */
    test_pathf(dir, sizeof dir, "%s/plain", tmp);
    CHECK(run(out, "'%s' export '%s' --dense -o '%s'", cli, model_path, dir) == 0);
    CHECK(contains(out, "0 compressed matrices of 0 groups"));

    /* the runtime commands take the compressed file */
    CHECK(run(out, "'%s' generate '%s' --prompt-tokens '1 403' -n 8 --temperature 0", cli, path) == 0);
    test_pathf(txt, sizeof txt, "%s/corpus.txt", tmp);
    FILE *corpus = fopen(txt, "w");
    if (corpus) {
        fprintf(corpus, "1 403 407 261 378 1 66 13\n1 59 4 28 32 16 2 45\n");
        fclose(corpus);
    }
    CHECK(run(out, "'%s' eval '%s' --corpus '%s' --ref '%s'", cli, path, txt, model_path) == 0);
    CHECK(contains(out, "perplexity"));
    free(logits_c);
    return test_summary("test_compressed_cli");
}
