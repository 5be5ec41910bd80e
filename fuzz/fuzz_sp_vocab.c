/* libFuzzer target: the sentence encoder's SentencePiece vocabulary (vocab.json,
 * fipsc_sp_load_vocab) and the tokenizer run on untrusted text (fipsc_sp_encode, which
 * NFKC-normalises first).
 *
 * The input is a bundle (fuzzutil.h): vocab.json, optionally followed by "\n@@ text\n" and a text
 * to tokenize; without one, a few fixed sentences are tokenized. Every id produced must name a
 * piece of the vocabulary. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/sentencepiece.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

static void encode(const fipsc_sp_tokenizer *t, const char *text, size_t len)
{
    int32_t *ids = NULL;
    int n = -1;
    fipsc_error err;
    if (fipsc_sp_encode(t, text, len, &ids, &n, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(err.code != FIPSC_OK && err.message[0]);
        return; /* invalid UTF-8 is refused */
    }
    REQUIRE(ids && n >= 0);
    for (int i = 0; i < n; i++) REQUIRE(fipsc_sp_piece(t, ids[i]) != NULL);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_part parts[FUZZ_MAX_PARTS];
    int n_parts = fuzz_split_bundle(data, size, "vocab.json", parts);
    fipsc_sp_tokenizer *t = NULL;
    fipsc_error err;
    if (fipsc_sp_load_vocab((const char *)parts[0].data, parts[0].size, "fuzz/vocab.json",
                            FIPSC_SP_RESERVED_DEFAULT, &t, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(t == NULL && err.code != FIPSC_OK && err.message[0]);
        return 0;
    }
    fuzz_note(NULL);
    REQUIRE(fipsc_sp_vocab_size(t) > FIPSC_SP_RESERVED_DEFAULT);
    for (int i = 0; i < fipsc_sp_vocab_size(t); i++) REQUIRE(fipsc_sp_piece(t, i) != NULL);
    bool any_text = false;
    for (int i = 1; i < n_parts; i++)
        if (strcmp(parts[i].name, "text") == 0) {
            encode(t, (const char *)parts[i].data, parts[i].size);
            any_text = true;
        }
    if (!any_text) {
        static const char *const fixed[] = {"", "Hello world.", "  two  spaces ", "caf\xc3\xa9 \xef\xac\x81",
                                            ":) \xe2\x96\x81x"};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) encode(t, fixed[i], strlen(fixed[i]));
    }
    fipsc_sp_free(t);
    return 0;
}
