/* The tokenizer module on two hand-made tokenizers (tests/data/tokenizers/: a SentencePiece-style
 * BPE with byte fallback and a byte-level BPE), with expected ids from the reference client
 * (@lenml/tokenizers 3.7.2 on the same files); the UTF-8 repair it relies on; and the refusal,
 * with a message naming the component, of every kind of tokenizer file it does not implement or
 * that is broken. The real tokenizers are checked in test_tokenizer_goldens.c. */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/file.h"
#include "core/utf8.h"
#include "text/tokenizer.h"
#include "testutil.h"

static fipsc_tokenizer *load(const char *name)
{
    char path[4096], rel[128];
    snprintf(rel, sizeof rel, "tests/data/tokenizers/%s", name);
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", rel);
    fipsc_error err = {0};
    fipsc_tokenizer *t = NULL;
    CHECK_OK(fipsc_tokenizer_load(path, &t, &err), &err);
    return t;
}

/* encode(text) == want[0..n) and decode(skip special) == dec. */
static void check(const fipsc_tokenizer *t, const char *text, const int32_t *want, size_t n, const char *dec)
{
    fipsc_error err = {0};
    int32_t *ids = NULL;
    size_t got = 0;
    CHECK_OK(fipsc_tokenizer_encode(t, text, strlen(text), true, &ids, &got, &err), &err);
    bool same = ids && got == n && !memcmp(ids, want, n * sizeof *ids);
    CHECK_MSG(same, "'%s': %zu ids, want %zu", text, got, n);
    if (same) {
        char *out = NULL;
        size_t len = 0;
        CHECK_OK(fipsc_tokenizer_decode(t, ids, got, true, &out, &len, &err), &err);
        CHECK_MSG(out && !strcmp(out, dec), "'%s' decodes to '%s', want '%s'", text, out ? out : "", dec);
        free(out);
    }
    free(ids);
}

#define CHECK_IDS(t, text, dec, ...)                                                \
    do {                                                                            \
        static const int32_t want_[] = {__VA_ARGS__};                               \
        check(t, text, want_, sizeof want_ / sizeof want_[0], dec);                 \
    } while (0)

static void test_spm(void)
{
    fipsc_tokenizer *t = load("spm-tiny");
    if (!t) return;
    CHECK(fipsc_tokenizer_vocab_size(t) == 271 && fipsc_tokenizer_bos(t) == 1 && fipsc_tokenizer_eos(t) == 2);
    /* lowest rank first: b+c (0), then a+bc (2), then ▁+abc (5) */
    CHECK_IDS(t, "abc", "abc", 1, 268);
    /* equal ranks: the leftmost pair first */
    CHECK_IDS(t, "abab abc x", "abab abc x", 1, 259, 264, 264, 268, 270);
    /* byte fallback: é is not a token, its UTF-8 bytes are */
    CHECK_IDS(t, "\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9", 1, 259, 198, 172, 198, 172);
    /* an added token cuts the text; each piece gets its own ▁ (the client's legacy behaviour) */
    CHECK_IDS(t, "a<s>b", "a b", 1, 266, 1, 259, 261);
    CHECK_IDS(t, "x\xc3\xa9y", "x\xc3\xa9y", 1, 270, 198, 172, 124);
    /* empty text: BOS only */
    int32_t *ids = NULL;
    size_t n = 0;
    fipsc_error err = {0};
    CHECK_OK(fipsc_tokenizer_encode(t, "", 0, true, &ids, &n, &err), &err);
    CHECK(ids && n == 1 && ids[0] == 1);
    free(ids);
    CHECK_OK(fipsc_tokenizer_encode(t, "", 0, false, &ids, &n, &err), &err);
    CHECK(ids && n == 0);
    free(ids);
    /* ill-formed UTF-8 becomes U+FFFD (EF BF BD, by byte fallback) */
    CHECK_OK(fipsc_tokenizer_encode(t, "\xff", 1, false, &ids, &n, &err), &err);
    CHECK(ids && n == 4 && ids[0] == 259 && ids[1] == 3 + 0xEF && ids[2] == 3 + 0xBF && ids[3] == 3 + 0xBD);
    free(ids);
    /* decoding: special tokens kept or skipped; ids outside the vocabulary refused */
    const int32_t some[] = {1, 266, 2};
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(fipsc_tokenizer_decode(t, some, 3, false, &text, &len, &err), &err);
    CHECK(text && !strcmp(text, "<s> a</s>"));
    free(text);
    const int32_t bad[] = {1, 271};
    CHECK_FAILS(fipsc_tokenizer_decode(t, bad, 2, false, &text, &len, &err), FIPSC_ERR_ARG, "token id 271", &err);
    size_t plen = 0;
    const char *piece = fipsc_tokenizer_token(t, 268, &plen);
    CHECK(piece && plen == 6 && !memcmp(piece, "\xe2\x96\x81" "abc", 6));
    CHECK(fipsc_tokenizer_token(t, 271, &plen) == NULL && fipsc_tokenizer_token(t, -1, &plen) == NULL);
    fipsc_tokenizer_free(t);
}

static void test_byte_level(void)
{
    fipsc_tokenizer *t = load("bytelevel-tiny");
    if (!t) return;
    CHECK(fipsc_tokenizer_bos(t) == -1 && fipsc_tokenizer_eos(t) == 262);
    CHECK_IDS(t, "the thing", "the thing", 116, 257, 256, 104, 260);
    /* <think> has rstrip: the spaces after it go */
    CHECK_IDS(t, "thing <think>  the", "thing <think>the", 116, 104, 260, 32, 263, 116, 257);
    CHECK_IDS(t, "<|endoftext|>the", "the", 262, 116, 257);
    /* the (?i:'s) group stays ASCII, \p{L} takes Greek */
    CHECK_IDS(t, "It's the \xce\xa3\xce\x91\xce\xa3", "It's the \xce\xa3\xce\x91\xce\xa3", 73, 116, 39, 115, 258, 32, 206,
              163, 206, 145, 206, 163);
    /* NFC: e + combining acute becomes é (C3 A9) before the bytes are mapped */
    CHECK_IDS(t, "e\xcc\x81", "\xc3\xa9", 195, 169);
    fipsc_tokenizer_free(t);
}

static void test_utf8_repair(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\xff" "b", "a\xef\xbf\xbd" "b"},
        {"\xe2\x82", "\xef\xbf\xbd"},                          /* a truncated sequence: one U+FFFD */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate: each byte */
        {"\xf0\x9f\x98" "a", "\xef\xbf\xbd" "a"},
        {"\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},              /* overlong */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"ok \xe2\x82\xac", "ok \xe2\x82\xac"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fipsc_bytes out = {0};
        fipsc_utf8_repair((const unsigned char *)cases[i].in, strlen(cases[i].in), &out);
        fipsc_bytes_put(&out, NULL, 0);
        CHECK_MSG(!strcmp(out.p, cases[i].out), "case %zu", i);
        free(out.p);
    }
}

/* A tokenizer.json built from the spm-tiny one with one substitution. */
static void check_refused(const char *json_text, const char *from, const char *to, fipsc_status code, const char *needle)
{
    const char *at = strstr(json_text, from);
    CHECK_MSG(at != NULL, "fixture has no '%s'", from);
    if (!at) return;
    fipsc_bytes b = {0};
    fipsc_bytes_put(&b, json_text, (size_t)(at - json_text));
    fipsc_bytes_puts(&b, to);
    fipsc_bytes_puts(&b, at + strlen(from));
    fipsc_error err = {0};
    fipsc_tokenizer *t = NULL;
    CHECK_FAILS(fipsc_tokenizer_parse(b.p, b.len, NULL, 0, "edited.json", &t, &err), code, needle, &err);
    CHECK(t == NULL);
    free(b.p);
}

static void test_refusals(void)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "tests/data/tokenizers/spm-tiny/tokenizer.json");
    char *json = NULL;
    size_t len = 0;
    fipsc_error err = {0};
    CHECK_OK(fipsc_read_file(path, &json, &len, &err), &err);
    if (!json) return;
    check_refused(json, "\"type\": \"BPE\"", "\"type\": \"Unigram\"", FIPSC_ERR_UNSUPPORTED, "model type 'Unigram'");
    check_refused(json, "\"pre_tokenizer\": null", "\"pre_tokenizer\": {\"type\": \"Metaspace\"}", FIPSC_ERR_UNSUPPORTED,
                  "pre_tokenizer type 'Metaspace'");
    check_refused(json, "\"type\": \"Prepend\"", "\"type\": \"BertNormalizer\"", FIPSC_ERR_UNSUPPORTED,
                  "normalizer type 'BertNormalizer'");
    check_refused(json, "\"type\": \"Fuse\"", "\"type\": \"WordPiece\"", FIPSC_ERR_UNSUPPORTED, "decoder type 'WordPiece'");
    check_refused(json, "\"type\": \"TemplateProcessing\"", "\"type\": \"RobertaProcessing\"", FIPSC_ERR_UNSUPPORTED,
                  "post_processor type 'RobertaProcessing'");
    check_refused(json, "\"pre_tokenizer\": null",
                  "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"}",
                  FIPSC_ERR_FORMAT, "does not compile");
    check_refused(json, "\"pre_tokenizer\": null",
                  "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"[^\\\\S]\"}}", FIPSC_ERR_UNSUPPORTED,
                  "\\S inside a character class");
    check_refused(json, "\"b\",\n    \"c\"", "\"b\", \"q\"", FIPSC_ERR_UNSUPPORTED, "the right part is not in the vocabulary");
    check_refused(json, "\"<unk>\": 0,", "\"<unk>\": -1,", FIPSC_ERR_FORMAT, "has no valid id");
    check_refused(json, "\"<unk>\": 0,", "\"<unk>\": 0.5,", FIPSC_ERR_FORMAT, "has no valid id");
    check_refused(json, "\"unk_token\": \"<unk>\"", "\"unk_token\": \"<nope>\"", FIPSC_ERR_FORMAT, "unk_token '<nope>'");
    check_refused(json, "\"model\": {", "\"model\": 3, \"x\": {", FIPSC_ERR_FORMAT, "no 'model' object");
    /* a byte that is not UTF-8 (here in a token; the fuzzer found one in a regex crashing PCRE2) */
    check_refused(json, "\"abc\":", "\"a\xf6" "c\":", FIPSC_ERR_FORMAT, "not valid UTF-8");
    check_refused(json, "\"id\": \"<s>\"", "\"id\": \"<nope>\"", FIPSC_ERR_FORMAT, "TemplateProcessing's token '<nope>'");
    /* every proper prefix of the file is refused (not valid JSON), none crashes */
    int accepted = 0;
    for (size_t n = 0; n < len; n += 7) {
        fipsc_tokenizer *t = NULL;
        if (fipsc_tokenizer_parse(json, n, NULL, 0, "prefix.json", &t, &err) == FIPSC_OK) accepted++;
        fipsc_tokenizer_free(t);
    }
    CHECK(accepted == 0);
    /* the configuration */
    fipsc_tokenizer *t = NULL;
    static const char legacy_false[] = "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"legacy\": false}";
    CHECK_FAILS(fipsc_tokenizer_parse(json, len, legacy_false, strlen(legacy_false), "x.json", &t, &err),
                FIPSC_ERR_UNSUPPORTED, "\"legacy\": false", &err);
    CHECK_FAILS(fipsc_tokenizer_parse(json, len, "[1]", 3, "x.json", &t, &err), FIPSC_ERR_FORMAT,
                "tokenizer_config.json beside x.json: not a JSON object", &err);
    CHECK_FAILS(fipsc_tokenizer_load("/nonexistent/tokenizer.json", &t, &err), FIPSC_ERR_IO, "/nonexistent", &err);
    free(json);
}

int main(void)
{
    test_spm();
    test_byte_level();
    test_utf8_repair();
    test_refusals();
    return test_summary("test_tokenizer");
}
