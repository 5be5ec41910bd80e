/* Exactness against llama2.c: for the 12 tokens in ../shared/data/stories260K-logits.json, the
 * logits that run.c computes (12 × 512) are matched within 1e-4 at every position — by the
 * batched prefill, by token-by-token decoding, and by a session that prefills a prompt and then
 * decodes — through every route that loads stories260K (the llama2.c loader; the Hugging Face
 * checkpoint that `fipsc convert` writes). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama2c.h"
#include "families/llama/llama.h"
#include "families/registry.h"
#include "core/file.h"
#include "model/model.h"
#include "families/llama/runtime.h"
#include "testutil.h"

/* Tolerance relative to the largest |logit| of the row (~15 here): run.c and fipsc sum in other
 * orders (and fipsc's own order depends on the build's vector width and on OpenBLAS's kernels),
 * which after 5 layers moves logits by ~4e-6 of their scale (measured: 5.6e-5 to 6.2e-5 absolute,
 * native and portable builds, three OpenBLAS kernel families). 3e-5 leaves a margin of 7; a wrong
 * weight or operation moves logits by far more. The most likely token must agree exactly too. */
#define REL_TOL 3e-5

typedef struct reference {
    int n;
    int32_t tokens[64];
    float *logits; /* [n, vocab] */
    int vocab;
} reference;

static int load_reference(reference *ref)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SHARED_DIR", "data/stories260K-logits.json");
    char *text;
    size_t size;
    fipsc_error err = {0};
    CHECK_OK(fipsc_read_file(path, &text, &size, &err), &err);
    if (err.code) return 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    CHECK(root != NULL);
    if (!root) return 0;
    cJSON *tokens = cJSON_GetObjectItem(root, "tokens"), *logits = cJSON_GetObjectItem(root, "logits");
    ref->n = cJSON_GetArraySize(tokens);
    ref->vocab = cJSON_GetArraySize(cJSON_GetArrayItem(logits, 0));
    CHECK(ref->n == 12 && ref->vocab == 512 && cJSON_GetArraySize(logits) == ref->n);
    ref->logits = malloc((size_t)ref->n * ref->vocab * sizeof(float));
    for (int i = 0; i < ref->n; i++) {
        ref->tokens[i] = cJSON_GetArrayItem(tokens, i)->valueint;
        cJSON *row = cJSON_GetArrayItem(logits, i);
        for (int j = 0; j < ref->vocab; j++)
            ref->logits[(size_t)i * ref->vocab + j] = (float)cJSON_GetArrayItem(row, j)->valuedouble;
    }
    cJSON_Delete(root);
    return 1;
}

/* Largest |got − want| over one row of logits. */
static double row_error(const float *got, const float *want, int vocab)
{
    double worst = 0.0;
    for (int j = 0; j < vocab; j++) {
        double d = fabs((double)got[j] - want[j]);
        if (!(d <= worst)) worst = d; /* NaN counts as worst */
    }
    return worst;
}

static double worst_seen; /* largest error of the current route, printed for the record */

static void check_rows(const char *route, const char *how, const float *got, const reference *ref,
                       int first, int count)
{
    for (int i = 0; i < count; i++) {
        const float *g = got + (size_t)i * ref->vocab, *w = ref->logits + (size_t)(first + i) * ref->vocab;
        double e = row_error(g, w, ref->vocab), scale = 0.0;
        int top_got = 0, top_want = 0;
        for (int j = 0; j < ref->vocab; j++) {
            scale = fmax(scale, fabs(w[j]));
            if (g[j] > g[top_got]) top_got = j;
            if (w[j] > w[top_want]) top_want = j;
        }
        CHECK_MSG(e <= REL_TOL * scale, "%s, %s: position %d: max |Δlogit| = %g (%.2g of the largest |logit|)", route,
                  how, first + i, e, e / scale);
        CHECK_MSG(top_got == top_want, "%s, %s: position %d: most likely token %d, run.c's %d", route, how, first + i,
                  top_got, top_want);
        if (!(e <= worst_seen)) worst_seen = e;
    }
}

static void check_model(const char *route, const fipsc_model *m, const reference *ref)
{
    fipsc_error err = {0};
    const int n = ref->n, V = ref->vocab;
    CHECK(fipsc_model_llama(m)->cfg.vocab_size == V);
    float *logits = calloc((size_t)3 * n * V, sizeof(float));
    worst_seen = 0.0;

    /* 1. Prefill, one sequence. */
    CHECK_OK(fipsc_llama_forward(m, ref->tokens, 1, n, logits, NULL, &err), &err);
    check_rows(route, "prefill", logits, ref, 0, n);

    /* 2. Prefill, a batch of three: the reference, a different sequence, the reference again.
     * Rows of one sequence must not depend on the others. */
    int32_t batch[3 * 64];
    memcpy(batch, ref->tokens, n * sizeof(int32_t));
    for (int i = 0; i < n; i++) batch[n + i] = (int32_t)((ref->tokens[i] * 7 + 3) % V);
    memcpy(batch + 2 * n, ref->tokens, n * sizeof(int32_t));
    CHECK_OK(fipsc_llama_forward(m, batch, 3, n, logits, NULL, &err), &err);
    check_rows(route, "batched prefill, sequence 0", logits, ref, 0, n);
    check_rows(route, "batched prefill, sequence 2", logits + (size_t)2 * n * V, ref, 0, n);

    /* 3. Decode, one token at a time. */
    fipsc_llama_session *s = NULL;
    CHECK_OK(fipsc_llama_session_new(m, 64, &s, &err), &err);
    if (s) {
        for (int i = 0; i < n; i++) {
            CHECK_OK(fipsc_llama_decode(s, ref->tokens[i], logits, &err), &err);
            check_rows(route, "decode", logits, ref, i, 1);
        }
        CHECK(fipsc_llama_session_length(s) == n);

        /* 4. Reset, prefill a 5-token prompt into the cache, decode the rest. */
        fipsc_llama_session_reset(s);
        CHECK_OK(fipsc_llama_session_prefill(s, ref->tokens, 5, logits, &err), &err);
        check_rows(route, "session prefill (last row)", logits, ref, 4, 1);
        for (int i = 5; i < n; i++) {
            CHECK_OK(fipsc_llama_decode(s, ref->tokens[i], logits, &err), &err);
            check_rows(route, "decode after session prefill", logits, ref, i, 1);
        }
        fipsc_llama_session_free(s);
    }
    free(logits);
    printf("%s: largest |logit - run.c logit| over every position and path: %.3g\n", route, worst_seen);
}

int main(void)
{
    reference ref = {0};
    if (!load_reference(&ref)) return test_summary("test_runtime_logits");

    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_load_llama2c(path, &m, &err), &err);
    if (m) check_model("llama2.c loader", m, &ref);
    fipsc_model_free(m);

    /* The Hugging Face route: `fipsc convert` writes the checkpoint, fipsc_model_load reads it. */
    const char *cli = getenv("FIPSC_CLI");
    char cmd[12800];
    CHECK_MSG(cli != NULL, "FIPSC_CLI is not set (run through ctest)");
    if (cli) {
        const char *dir = test_tmpdir("test_runtime_logits");
        char out[4200];
        test_pathf(out, sizeof out, "%s/stories260K-hf", dir);
        snprintf(cmd, sizeof cmd, "'%s' convert '%s' -o '%s'", cli, path, out);
        CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
        m = NULL;
        CHECK_OK(fipsc_model_load(out, &m, &err), &err);
        if (m) check_model("converted Hugging Face checkpoint", m, &ref);
        fipsc_model_free(m);
    }
    free(ref.logits);
    return test_summary("test_runtime_logits");
}
