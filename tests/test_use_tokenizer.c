/* The sentence encoder's SentencePiece tokenizer: the algorithm and the JavaScript client's
 * quirks on a small hand-made vocabulary, bad vocabularies, and token-for-token agreement with the
 * client on the committed golden sentences (tests/data/use-golden.json). */
#include <stdlib.h>
#include <string.h>

#include "formats/sentencepiece.h"
#include "testutil.h"
#include "use_testdata.h"

/* ids 0..5 reserved; 6 "▁", 7 "a", 8 "b", 9 "ab", 10 "▁ab", 11 "c" (null score), 12 "▁a",
 * 13 "▁c" (null score), 14 "é", 15 "😀" (two UTF-16 units), 16 "b" again (the later entry wins) */
static const char *small_vocab =
    "[[\"\\ufffd\",0],[\"<s>\",0],[\"</s>\",0],[\"x1\",0],[\"x2\",0],[\"x3\",0],"
    "[\"\\u2581\",-2],[\"a\",-3],[\"b\",-3.5],[\"ab\",-4],[\"\\u2581ab\",-5],[\"c\",null],"
    "[\"\\u2581a\",-1.5],[\"\\u2581c\",null],[\"\\u00e9\",-1],[\"\\ud83d\\ude00\",-1],[\"b\",-3]]";

static void expect_tokens(const fipsc_sp_tokenizer *t, const char *text, size_t len,
                          const int32_t *want, int n_want)
{
    fipsc_error err = {0};
    int32_t *ids = NULL;
    int n = -1;
    CHECK_OK(fipsc_sp_encode(t, text, len, &ids, &n, &err), &err);
    int same = n == n_want && (n == 0 || memcmp(ids, want, (size_t)n * sizeof *ids) == 0);
    CHECK_MSG(same, "'%s': got %d ids, expected %d", text, n, n_want);
    if (!same) {
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
}
#define EXPECT(t, text, ...)                                                        \
    do {                                                                            \
        const int32_t want_[] = {__VA_ARGS__};                                      \
        expect_tokens(t, text, strlen(text), want_, (int)(sizeof want_ / sizeof want_[0])); \
    } while (0)

static void expect_normalized(const char *text, size_t len, const char *want)
{
    fipsc_error err = {0};
    char *got = NULL;
    CHECK_OK(fipsc_sp_normalize(text, len, &got, &err), &err);
    CHECK_MSG(got && strcmp(got, want) == 0, "normalize('%s') = '%s', expected '%s'", text,
              got ? got : "(null)", want);
    free(got);
}

static void test_small_vocabulary(void)
{
    fipsc_error err = {0};
    fipsc_sp_tokenizer *t = NULL;
    CHECK_OK(fipsc_sp_load_vocab(small_vocab, strlen(small_vocab), "small", 6, &t, &err), &err);
    if (!t) return;
    CHECK(fipsc_sp_vocab_size(t) == 17);
    CHECK(strcmp(fipsc_sp_piece(t, 6), "\xe2\x96\x81") == 0);
    CHECK(fipsc_sp_piece(t, 17) == NULL && fipsc_sp_piece(t, -1) == NULL);

    /* "▁ab": ▁a (-1.5) + b (-3) = -4.5 beats ▁ab (-5) and ▁ + ab (-6). The repeated "b" (id 16,
     * score -3) replaced id 8 (score -3.5). */
    EXPECT(t, "ab", 12, 16);
    /* Unknown code points become id 0, a run of them one id 0. */
    EXPECT(t, "zz", 6, 0);
    EXPECT(t, "azzb", 12, 0, 16);
    /* A null score counts as 0. */
    EXPECT(t, "xc", 6, 0, 11);
    /* The client's "best == 0 means unset": "▁c" (score 0) reaches best[2] = 0 exactly, so the
     * later, worse candidate c (0 + best[1] = -2) replaces it. */
    EXPECT(t, "c", 6, 11);
    /* Empty text: no tokens at all; spaces become "▁" pieces. */
    expect_tokens(t, "", 0, NULL, 0);
    EXPECT(t, " ", 6, 6);
    EXPECT(t, "a b", 12, 6, 16);
    /* Reserved pieces are never produced from text. */
    EXPECT(t, "x1", 6, 0);
    /* NFKC composes e + U+0301 into é. */
    EXPECT(t, "e\xcc\x81", 6, 14);
    /* An astral piece: one code point, two UTF-16 units; backtracking steps by the UTF-16 length,
     * as the client does (vocabulary[id][0].length), and so lands on position 0 here. */
    EXPECT(t, "\xf0\x9f\x98\x80", 15);
    /* Malformed UTF-8 reads as U+FFFD, which is reserved (id 0) and thus unknown. */
    EXPECT(t, "a\xff", 12, 0);
    fipsc_sp_free(t);
}

static void test_normalization(void)
{
    expect_normalized("", 0, "");
    expect_normalized("Hello World", 11, "\xe2\x96\x81Hello\xe2\x96\x81World");
    /* No lowercasing; full-width letters, ligatures, NBSP and the ideographic space fold (NFKC). */
    expect_normalized("\xef\xbc\xa1\xef\xbd\x82 \xef\xac\x81", 11, "\xe2\x96\x81" "Ab\xe2\x96\x81" "fi");
    expect_normalized("a\xc2\xa0" "b\xe3\x80\x80" "c", 8, "\xe2\x96\x81" "a\xe2\x96\x81" "b\xe2\x96\x81" "c");
    /* Tabs and newlines are not spaces. */
    expect_normalized("a\tb\n", 4, "\xe2\x96\x81" "a\tb\n");
    expect_normalized("\xff", 1, "\xe2\x96\x81\xef\xbf\xbd");
    /* Embedded NUL is a character like any other. */
    expect_normalized("a\0b", 3, "\xe2\x96\x81" "a");
}

static void test_bad_vocabularies(void)
{
    fipsc_error err = {0};
    fipsc_sp_tokenizer *t = NULL;
    const char *cases[][2] = {
        {"[[\"a\",0],", "not valid JSON"},
        {"{\"a\": 1}", "JSON array"},
        {"[[\"\\ufffd\",0],[\"a\",-1]]", "reserved"},
        {"[[\"\\ufffd\",0],[\"<s>\",0],[\"</s>\",0],[\"x1\",0],[\"x2\",0],[\"x3\",0],[\"a\",\"-1\"]]", "entry 6"},
        {"[[\"\\ufffd\",0],[\"<s>\",0],[\"</s>\",0],[\"x1\",0],[\"x2\",0],[\"x3\",0],[\"a\"]]", "entry 6"},
        {"[[\"\",0],[\"<s>\",0],[\"</s>\",0],[\"x1\",0],[\"x2\",0],[\"x3\",0],[\"a\",-1]]", "unknown piece"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_FAILS(fipsc_sp_load_vocab(cases[i][0], strlen(cases[i][0]), "bad", 6, &t, &err),
                    FIPSC_ERR_FORMAT, cases[i][1], &err);
        CHECK(t == NULL);
    }
    /* A piece that is not UTF-8 (the JSON text itself carries the bad byte). */
    const char bad_utf8[] = "[[\"\\ufffd\",0],[\"<s>\",0],[\"</s>\",0],[\"x1\",0],[\"x2\",0],[\"x3\",0],[\"\xc3\",-1]]";
    CHECK_FAILS(fipsc_sp_load_vocab(bad_utf8, strlen(bad_utf8), "bad", 6, &t, &err), FIPSC_ERR_FORMAT,
                "piece 6 is not valid UTF-8", &err);
}

/* Every golden sentence, token for token as the JavaScript client. */
static void test_golden_tokens(void)
{
    char path[4200];
    test_pathf(path, sizeof path, "%s/vocab.json", use_model_dir());
    char *text;
    size_t len;
    fipsc_error err = {0};
    CHECK_OK(fipsc_read_file(path, &text, &len, &err), &err);
    fipsc_sp_tokenizer *t = NULL;
    CHECK_OK(fipsc_sp_load_vocab(text, len, path, FIPSC_SP_RESERVED_DEFAULT, &t, &err), &err);
    free(text);
    if (!t) return;
    CHECK(fipsc_sp_vocab_size(t) == 8000);

    cJSON *golden = use_golden_json(), *sentences = use_sentences_json();
    const cJSON *tokens = cJSON_GetObjectItem(golden, "tokens");
    CHECK(cJSON_GetArraySize(tokens) == cJSON_GetArraySize(sentences));
    CHECK(cJSON_GetArraySize(sentences) >= 200);
    int i = 0, mismatches = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sentences) {
        const cJSON *want = cJSON_GetArrayItem(tokens, i);
        int32_t *ids = NULL;
        int n = 0;
        const char *str = cJSON_GetStringValue(s);
        CHECK_OK(fipsc_sp_encode(t, str, strlen(str), &ids, &n, &err), &err);
        int same = n == cJSON_GetArraySize(want);
        for (int k = 0; same && k < n; k++) same = ids[k] == cJSON_GetArrayItem(want, k)->valueint;
        if (!same && mismatches++ < 5) {
            fprintf(stderr, "sentence %d: '%.60s': got", i, str);
            for (int k = 0; k < n && k < 40; k++) fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, "\n");
        }
        free(ids);
        i++;
    }
    CHECK_MSG(mismatches == 0, "%d of %d golden sentences tokenized differently", mismatches, i);
    cJSON_Delete(golden);
    cJSON_Delete(sentences);
    fipsc_sp_free(t);
}

int main(void)
{
    test_small_vocabulary();
    test_normalization();
    test_bad_vocabularies();
    test_golden_tokens();
    return test_summary("test_use_tokenizer");
}
