/* Token corpora: binary round trip byte for byte, the text form, and every malformed input
 * refused with a message that says where and what. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/corpus.h"
#include "core/file.h"
#include "testutil.h"

static const char *dir;

static const char *file(const char *name)
{
    static char path[4200];
    test_pathf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void write_bytes(const char *name, const void *data, size_t n)
{
    FILE *fp = fopen(file(name), "wb");
    fwrite(data, 1, n, fp);
    fclose(fp);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void test_binary(void)
{
    fipsc_error err = {0};
    int32_t ids[2 * 5] = {1, 7, 0, 511, 3, 1, 2, 2, 2, 9};
    fipsc_corpus *c = NULL, *back = NULL;
    CHECK_OK(fipsc_corpus_from_ids(ids, 2, 5, 512, &c, &err), &err);
    CHECK_OK(fipsc_corpus_write(c, file("a.tok"), &err), &err);

    /* The exact bytes of docs/FORMAT.md. */
    unsigned char want[24 + 40];
    memcpy(want, "FIPSCTOK", 8);
    put_u32(want + 8, 1);
    put_u32(want + 12, 2);
    put_u32(want + 16, 5);
    put_u32(want + 20, 512);
    for (int i = 0; i < 10; i++) put_u32(want + 24 + 4 * i, (uint32_t)ids[i]);
    char *got;
    size_t size = 0;
    CHECK_OK(fipsc_read_file(file("a.tok"), &got, &size, &err), &err);
    CHECK(size == sizeof want && memcmp(got, want, sizeof want) == 0);
    free(got);

    CHECK_OK(fipsc_corpus_load(file("a.tok"), &back, &err), &err);
    if (back) {
        CHECK(back->n_seqs == 2 && back->vocab_size == 512);
        CHECK(fipsc_corpus_length(back, 1) == 5 && memcmp(back->ids, ids, sizeof ids) == 0);
        CHECK(fipsc_corpus_seq(back, 1)[4] == 9);
    }
    CHECK_OK(fipsc_corpus_check_vocab(back, 512, "the model", &err), &err);
    CHECK_FAILS(fipsc_corpus_check_vocab(back, 500, "model X", &err), FIPSC_ERR_ARG,
                "sequence 0, position 3: token id 511 is not below the vocabulary size 500 of model X", &err);
    fipsc_corpus_free(back);

    /* Damaged files. */
    write_bytes("short.tok", want, 20);
    CHECK_FAILS(fipsc_corpus_load(file("short.tok"), &back, &err), FIPSC_ERR_FORMAT, "shorter than the 24-byte header", &err);
    write_bytes("trunc.tok", want, sizeof want - 4);
    CHECK_FAILS(fipsc_corpus_load(file("trunc.tok"), &back, &err), FIPSC_ERR_FORMAT,
                "2 sequences × 5 ids should be 64 bytes but the file has 60", &err);
    unsigned char bad[sizeof want];
    memcpy(bad, want, sizeof want);
    put_u32(bad + 8, 2);
    write_bytes("version.tok", bad, sizeof bad);
    CHECK_FAILS(fipsc_corpus_load(file("version.tok"), &back, &err), FIPSC_ERR_UNSUPPORTED, "version 2", &err);
    memcpy(bad, want, sizeof want);
    put_u32(bad + 12, 0);
    write_bytes("zero.tok", bad, sizeof bad);
    CHECK_FAILS(fipsc_corpus_load(file("zero.tok"), &back, &err), FIPSC_ERR_FORMAT, "invalid token corpus header", &err);
    memcpy(bad, want, sizeof want);
    put_u32(bad + 24 + 4 * 7, 512);
    write_bytes("id.tok", bad, sizeof bad);
    CHECK_FAILS(fipsc_corpus_load(file("id.tok"), &back, &err), FIPSC_ERR_FORMAT,
                "sequence 1, position 2: token id 512 is not below the corpus's vocab_size 512", &err);
    memcpy(bad, want, sizeof want);
    put_u32(bad + 12, 0x40000000u);
    put_u32(bad + 16, 0x40000000u);
    write_bytes("huge.tok", bad, sizeof bad);
    CHECK_FAILS(fipsc_corpus_load(file("huge.tok"), &back, &err), FIPSC_ERR_FORMAT, "should be", &err);
    CHECK_FAILS(fipsc_corpus_load(file("missing.tok"), &back, &err), FIPSC_ERR_IO, "missing.tok", &err);

    /* Writing refuses what the format cannot hold; a failed write leaves nothing behind. */
    c->vocab_size = 100;
    CHECK_FAILS(fipsc_corpus_write(c, file("b.tok"), &err), FIPSC_ERR_ARG, "token id 511", &err);
    struct stat st;
    CHECK(stat(file("b.tok"), &st) != 0);
    c->vocab_size = 512;
    CHECK_FAILS(fipsc_corpus_write(c, "/nonexistent-dir/x.tok", &err), FIPSC_ERR_IO, "nonexistent-dir", &err);
    fipsc_corpus_free(c);
}

static void test_text(void)
{
    fipsc_error err = {0};
    fipsc_corpus *c = NULL;
    const char *text = "1 403 407\t261\r\n\n   \n1 2\n7";
    write_bytes("a.txt", text, strlen(text));
    CHECK_OK(fipsc_corpus_load(file("a.txt"), &c, &err), &err);
    if (c) {
        CHECK(c->n_seqs == 3 && c->vocab_size == 0);
        CHECK(fipsc_corpus_length(c, 0) == 4 && fipsc_corpus_length(c, 1) == 2 && fipsc_corpus_length(c, 2) == 1);
        CHECK(fipsc_corpus_seq(c, 0)[3] == 261 && fipsc_corpus_seq(c, 2)[0] == 7);
        /* A text corpus of unequal lengths cannot be written in the binary form. */
        c->vocab_size = 512;
        CHECK_FAILS(fipsc_corpus_write(c, file("t.tok"), &err), FIPSC_ERR_ARG,
                    "sequence 0 has 4 ids and sequence 1 has 2", &err);
    }
    fipsc_corpus_free(c);

    write_bytes("neg.txt", "1 2\n3 -4\n", 9);
    CHECK_FAILS(fipsc_corpus_load(file("neg.txt"), &c, &err), FIPSC_ERR_FORMAT,
                "line 2, column 3: unexpected '-': token ids are never negative", &err);
    write_bytes("word.txt", "1 2 x\n", 6);
    CHECK_FAILS(fipsc_corpus_load(file("word.txt"), &c, &err), FIPSC_ERR_FORMAT, "line 1, column 5: unexpected 'x'", &err);
    write_bytes("glued.txt", "12a\n", 4);
    CHECK_FAILS(fipsc_corpus_load(file("glued.txt"), &c, &err), FIPSC_ERR_FORMAT, "followed by whitespace", &err);
    write_bytes("big.txt", "1 99999999999\n", 14);
    CHECK_FAILS(fipsc_corpus_load(file("big.txt"), &c, &err), FIPSC_ERR_FORMAT, "too large", &err);
    write_bytes("empty.txt", " \n\n", 3);
    CHECK_FAILS(fipsc_corpus_load(file("empty.txt"), &c, &err), FIPSC_ERR_FORMAT, "no sequence", &err);
    write_bytes("empty2.txt", "", 0);
    CHECK_FAILS(fipsc_corpus_load(file("empty2.txt"), &c, &err), FIPSC_ERR_FORMAT, "no sequence", &err);
    unsigned char binary[4] = {0x00, 0xff, 0x10, 0x20};
    write_bytes("bin.txt", binary, 4);
    CHECK_FAILS(fipsc_corpus_load(file("bin.txt"), &c, &err), FIPSC_ERR_FORMAT, "byte 0x00", &err);
}

int main(void)
{
    dir = test_tmpdir("test_runtime_corpus");
    test_binary();
    test_text();
    return test_summary("test_runtime_corpus");
}
