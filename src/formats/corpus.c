/* Token corpora: binary and text forms (see src/formats/corpus.h and docs/FORMAT.md). */
#include "formats/corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

enum { HEADER_BYTES = 24 };

static uint32_t read_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void write_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

void fipsc_corpus_free(fipsc_corpus *c)
{
    if (!c) return;
    free(c->offsets);
    free(c->ids);
    free(c);
}

fipsc_corpus *fipsc_corpus_alloc(int64_t n, int64_t total)
{
    fipsc_corpus *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->offsets = malloc((size_t)(n + 1) * sizeof *c->offsets);
    c->ids = malloc((size_t)(total ? total : 1) * sizeof *c->ids);
    if (!c->offsets || !c->ids) {
        fipsc_corpus_free(c);
        return NULL;
    }
    c->offsets[0] = 0;
    return c;
}

static fipsc_status load_binary(const fipsc_mapped_file *mf, fipsc_corpus **out, fipsc_error *err)
{
    const char *path = mf->path;
    if (mf->size < HEADER_BYTES)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: truncated token corpus: %zu bytes, shorter than the %d-byte header",
                          path, mf->size, HEADER_BYTES);
    const unsigned char *h = mf->data;
    uint32_t version = read_u32(h + 8), count = read_u32(h + 12), length = read_u32(h + 16),
             vocab = read_u32(h + 20);
    if (version != FIPSC_CORPUS_VERSION)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: token corpus version %u (this fipsc reads version %d)",
                          path, version, FIPSC_CORPUS_VERSION);
    if (count == 0 || length == 0 || vocab == 0 || count > INT32_MAX || length > INT32_MAX || vocab > INT32_MAX)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: invalid token corpus header: count %u, length %u, vocab_size %u (each "
                          "must be in [1, 2^31))",
                          path, count, length, vocab);
    uint64_t total = (uint64_t)count * length, want = HEADER_BYTES + 4 * total;
    if ((uint64_t)mf->size != want)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: token corpus of %u sequences × %u ids should be %llu bytes but the file has %zu",
                          path, count, length, (unsigned long long)want, mf->size);
    fipsc_corpus *c = fipsc_corpus_alloc(count, (int64_t)total);
    if (!c) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %llu token ids", path, (unsigned long long)total);
    c->n_seqs = (int)count;
    c->vocab_size = (int)vocab;
    const unsigned char *p = h + HEADER_BYTES;
    for (uint64_t i = 0; i < total; i++) {
        uint32_t id = read_u32(p + 4 * i);
        if (id >= vocab) {
            fipsc_corpus_free(c);
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: sequence %llu, position %llu: token id %u is not below the corpus's "
                              "vocab_size %u",
                              path, (unsigned long long)(i / length), (unsigned long long)(i % length), id, vocab);
        }
        c->ids[i] = (int32_t)id;
    }
    for (uint32_t s = 1; s <= count; s++) c->offsets[s] = (int64_t)s * length;
    *out = c;
    return FIPSC_OK;
}

/* Appends to a growable int64/int32 array pair. */
typedef struct text_builder {
    int32_t *ids;
    int64_t n_ids, cap_ids;
    int64_t *offsets;
    int64_t n_seqs, cap_seqs;
} text_builder;

static int push_id(text_builder *b, int32_t id)
{
    if (b->n_ids == b->cap_ids) {
        int64_t cap = b->cap_ids ? 2 * b->cap_ids : 4096;
        int32_t *p = realloc(b->ids, (size_t)cap * sizeof *p);
        if (!p) return 0;
        b->ids = p;
        b->cap_ids = cap;
    }
    b->ids[b->n_ids++] = id;
    return 1;
}

static int push_offset(text_builder *b, int64_t off)
{
    if (b->n_seqs + 1 >= b->cap_seqs) {
        int64_t cap = b->cap_seqs ? 2 * b->cap_seqs : 256;
        int64_t *p = realloc(b->offsets, (size_t)cap * sizeof *p);
        if (!p) return 0;
        b->offsets = p;
        b->cap_seqs = cap;
    }
    b->offsets[++b->n_seqs] = off;
    return 1;
}

static fipsc_status load_text(const char *path, const char *text, size_t size, fipsc_corpus **out,
                              fipsc_error *err)
{
    text_builder b = {.offsets = malloc(256 * sizeof(int64_t)), .cap_seqs = 256};
    fipsc_status st = FIPSC_OK;
    if (!b.offsets) goto nomem;
    b.offsets[0] = 0;
    long line = 1;
    size_t i = 0;
    while (i < size && !st) {
        int64_t line_start = b.n_ids;
        size_t col0 = i;
        while (i < size && text[i] != '\n') {
            char ch = text[i];
            if (ch == ' ' || ch == '\t' || ch == '\r') {
                i++;
                continue;
            }
            if (ch < '0' || ch > '9') {
                char what[32];
                if (ch > ' ' && ch < 127) snprintf(what, sizeof what, "'%c'", ch);
                else snprintf(what, sizeof what, "byte 0x%02x", (unsigned char)ch);
                st = fipsc_fail(err, FIPSC_ERR_FORMAT,
                                "%s: line %ld, column %zu: unexpected %s%s (a token corpus is either "
                                "the binary form starting with \"" FIPSC_CORPUS_MAGIC "\" or text: "
                                "whitespace-separated decimal ids, one sequence per line)",
                                path, line, i - col0 + 1, what,
                                ch == '-' ? ": token ids are never negative" : "");
                break;
            }
            uint64_t v = 0;
            size_t start = i;
            while (i < size && text[i] >= '0' && text[i] <= '9') {
                v = v * 10 + (uint64_t)(text[i] - '0');
                if (v > INT32_MAX) {
                    st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: line %ld, column %zu: token id too large",
                                    path, line, start - col0 + 1);
                    break;
                }
                i++;
            }
            if (st) break;
            if (i < size && text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n') {
                st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: line %ld, column %zu: a token id must be "
                                "followed by whitespace", path, line, i - col0 + 1);
                break;
            }
            if (!push_id(&b, (int32_t)v)) goto nomem;
        }
        if (st) break;
        if (b.n_ids > line_start && !push_offset(&b, b.n_ids)) goto nomem;
        i++; /* the newline */
        line++;
    }
    if (!st && b.n_seqs == 0)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: the token corpus holds no sequence", path);
    if (!st && b.n_seqs > INT32_MAX)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: too many sequences", path);
    if (st) {
        free(b.ids);
        free(b.offsets);
        return st;
    }
    fipsc_corpus *c = calloc(1, sizeof *c);
    if (!c) goto nomem;
    c->n_seqs = (int)b.n_seqs;
    c->offsets = b.offsets;
    c->ids = b.ids;
    *out = c;
    return FIPSC_OK;
nomem:
    free(b.ids);
    free(b.offsets);
    return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory reading the token corpus", path);
}

fipsc_status fipsc_corpus_load(const char *path, fipsc_corpus **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_mapped_file *mf;
    fipsc_status st = fipsc_map_file(path, &mf, err);
    if (st) return st;
    size_t magic = sizeof FIPSC_CORPUS_MAGIC - 1;
    if (mf->size >= magic && memcmp(mf->data, FIPSC_CORPUS_MAGIC, magic) == 0)
        st = load_binary(mf, out, err);
    else
        st = load_text(path, (const char *)mf->data, mf->size, out, err);
    fipsc_unmap_file(mf);
    return st;
}

fipsc_status fipsc_corpus_from_ids(const int32_t *ids, int n, int len, int vocab_size,
                                   fipsc_corpus **out, fipsc_error *err)
{
    *out = NULL;
    if (n <= 0 || len <= 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "a corpus of %d sequences of %d ids (both must be positive)", n, len);
    fipsc_corpus *c = fipsc_corpus_alloc(n, (int64_t)n * len);
    if (!c) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a corpus of %d × %d ids", n, len);
    memcpy(c->ids, ids, (size_t)n * len * sizeof *ids);
    for (int s = 1; s <= n; s++) c->offsets[s] = (int64_t)s * len;
    c->n_seqs = n;
    c->vocab_size = vocab_size;
    *out = c;
    return FIPSC_OK;
}

fipsc_status fipsc_corpus_check_vocab(const fipsc_corpus *c, int vocab_size, const char *what,
                                      fipsc_error *err)
{
    for (int s = 0; s < c->n_seqs; s++) {
        const int32_t *seq = fipsc_corpus_seq(c, s);
        for (int i = 0; i < fipsc_corpus_length(c, s); i++)
            if (seq[i] < 0 || seq[i] >= vocab_size)
                return fipsc_fail(err, FIPSC_ERR_ARG,
                                  "token corpus sequence %d, position %d: token id %d is not below the "
                                  "vocabulary size %d of %s",
                                  s, i, (int)seq[i], vocab_size, what);
    }
    return FIPSC_OK;
}

fipsc_status fipsc_corpus_write(const fipsc_corpus *c, const char *path, fipsc_error *err)
{
    if (c->n_seqs <= 0 || c->vocab_size <= 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "%s: cannot write a corpus of %d sequences with vocab_size %d",
                          path, c->n_seqs, c->vocab_size);
    const int len = fipsc_corpus_length(c, 0);
    for (int s = 1; s < c->n_seqs; s++)
        if (fipsc_corpus_length(c, s) != len)
            return fipsc_fail(err, FIPSC_ERR_ARG,
                              "%s: the binary token corpus needs sequences of one length, but sequence 0 "
                              "has %d ids and sequence %d has %d",
                              path, len, s, fipsc_corpus_length(c, s));
    fipsc_status st = fipsc_corpus_check_vocab(c, c->vocab_size, "the corpus", err);
    if (st) return fipsc_fail_context(err, "%s: ", path);

    fipsc_atomic_file af;
    if ((st = fipsc_atomic_open(path, &af, err))) return st;
    unsigned char header[HEADER_BYTES];
    memcpy(header, FIPSC_CORPUS_MAGIC, 8);
    write_u32(header + 8, FIPSC_CORPUS_VERSION);
    write_u32(header + 12, (uint32_t)c->n_seqs);
    write_u32(header + 16, (uint32_t)len);
    write_u32(header + 20, (uint32_t)c->vocab_size);
    fipsc_atomic_write(&af, header, sizeof header, err);
    unsigned char buf[4096];
    int64_t total = c->offsets[c->n_seqs];
    for (int64_t i = 0; i < total;) {
        size_t n = 0;
        for (; n < sizeof buf / 4 && i < total; n++, i++) write_u32(buf + 4 * n, (uint32_t)c->ids[i]);
        fipsc_atomic_write(&af, buf, 4 * n, err);
    }
    return fipsc_atomic_commit(&af, err);
}
