/* libFuzzer target: Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json:
 * fipsc_tokenizer_parse) and the tokenizer run on untrusted text and ids.
 *
 * The input is a bundle (fuzzutil.h): tokenizer.json, optionally "\n@@ config\n" and a
 * tokenizer_config.json, optionally "\n@@ text\n" and a text to encode (else a few fixed ones).
 * Every id produced must have a token, and decoding the ids must succeed. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "text/tokenizer.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

static void round_trip(const fipsc_tokenizer *t, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    fipsc_error err;
    for (int special = 0; special < 2; special++) {
        if (fipsc_tokenizer_encode(t, text, len, special, &ids, &n, &err) != FIPSC_OK) {
            fuzz_note(&err);
            REQUIRE(err.code != FIPSC_OK && err.message[0] && ids == NULL);
            continue; /* e.g. a character that is no token and no unknown token to stand for it */
        }
        REQUIRE(ids != NULL);
        size_t plen;
        for (size_t i = 0; i < n; i++) REQUIRE(fipsc_tokenizer_token(t, ids[i], &plen) != NULL);
        char *out = NULL;
        size_t out_len = 0;
        REQUIRE(fipsc_tokenizer_decode(t, ids, n, special, &out, &out_len, &err) == FIPSC_OK);
        REQUIRE(out != NULL && strlen(out) <= out_len);
        free(out);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_part parts[FUZZ_MAX_PARTS];
    int n_parts = fuzz_split_bundle(data, size, "tokenizer.json", parts);
    const fuzz_part *config = NULL, *text = NULL;
    for (int i = 1; i < n_parts; i++) {
        if (!strcmp(parts[i].name, "config")) config = &parts[i];
        if (!strcmp(parts[i].name, "text")) text = &parts[i];
    }
    fipsc_tokenizer *t = NULL;
    fipsc_error err;
    if (fipsc_tokenizer_parse((const char *)parts[0].data, parts[0].size, config ? (const char *)config->data : NULL,
                              config ? config->size : 0, "fuzz/tokenizer.json", &t, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(t == NULL && err.code != FIPSC_OK && err.message[0]);
        return 0;
    }
    fuzz_note(NULL);
    if (text) {
        round_trip(t, (const char *)text->data, text->size);
    } else {
        static const char *const fixed[] = {"", "Hello, world! It's 2026.", "a<s>b \xc3\xa9\xe2\x96\x81 \xff\xfe",
                                            "   \t\n\r\n  x", "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9"};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) round_trip(t, fixed[i], strlen(fixed[i]));
    }
    fipsc_tokenizer_free(t);
    return 0;
}
