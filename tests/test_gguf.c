/* The GGUF reader and writer (src/formats/gguf*.c) and the Llama family's GGUF mapping:
 *   - a round trip of every key type and tensor type through the writer and the reader;
 *   - Q8_0 / Q4_0 dequantization within half a quantization step of the source;
 *   - every prefix of a valid file refused as truncated (no crash, no acceptance);
 *   - hand-made hostile headers, each refused with its own message: counts and lengths beyond the
 *     file, too many dimensions, unknown types, misaligned, overlapping or out-of-file tensors,
 *     duplicate keys and names, a bad alignment, version 1, nested arrays, a bool of 2;
 *   - a model file of another architecture, a missing key, an unknown tensor;
 *   - stories260K → GGUF → model: the same tensors (q/k rows back in Hugging Face order).
 * That llama.cpp reads the files as fipsc does is tests/test_llamacpp.sh's job. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "families/llama/gguf.h"
#include "families/llama/llama2c.h"
#include "families/registry.h"
#include "formats/gguf.h"
#include "testutil.h"

/* ---- a byte builder for hand-made files -------------------------------------------------- */

typedef struct bytes {
    unsigned char p[4096];
    size_t n;
} bytes;

static void put(bytes *b, const void *d, size_t n)
{
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void str(bytes *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void pad(bytes *b, size_t align)
{
    while (b->n % align) b->p[b->n++] = 0;
}

/* header with the given counts */
static void header(bytes *b, uint32_t version, uint64_t tensors, uint64_t kvs)
{
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, tensors);
    u64(b, kvs);
}

/* A tensor info: name, 1-D of ne values, type, offset. */
static void tinfo(bytes *b, const char *name, uint64_t ne, uint32_t type, uint64_t offset)
{
    str(b, name);
    u32(b, 1);
    u64(b, ne);
    u32(b, type);
    u64(b, offset);
}

/* A valid file: one string key, two F32 tensors of 4 values. */
static void valid(bytes *b)
{
    header(b, 3, 2, 1);
    str(b, "general.architecture");
    u32(b, FIPSC_GGUF_STRING);
    str(b, "test");
    tinfo(b, "a", 4, FIPSC_GGML_F32, 0);
    tinfo(b, "b", 4, FIPSC_GGML_F32, 32);
    pad(b, 32);
    float v[8] = {1, 2, 3, 4, 0, 0, 0, 0};
    put(b, v, 32);
    put(b, v, 16);
}

static fipsc_status parse(const bytes *b, fipsc_error *err)
{
    fipsc_gguf *g = NULL;
    fipsc_status st = fipsc_gguf_parse(b->p, b->n, "t.gguf", &g, err);
    fipsc_gguf_close(g);
    return st;
}

static void test_hostile(void)
{
    fipsc_error err;
    bytes b;
    valid(&b);
    CHECK_OK(parse(&b, &err), &err);

    /* every prefix is refused */
    bytes cut = b;
    int accepted = 0;
    for (size_t n = 0; n < b.n; n++) {
        cut.n = n;
        fipsc_gguf *g = NULL;
        if (fipsc_gguf_parse(cut.p, n, "t.gguf", &g, &err) == FIPSC_OK) accepted++;
        fipsc_gguf_close(g);
    }
    CHECK_MSG(accepted == 0, "%d truncated prefixes accepted", accepted);

    header(&b, 3, 0, UINT64_MAX);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "more than its", &err);
    header(&b, 3, 1ull << 40, 0);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "more than its", &err);
    header(&b, 1, 0, 0);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_UNSUPPORTED, "version 1 files predate", &err);
    header(&b, 0x03000000, 0, 0);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_UNSUPPORTED, "big-endian", &err);
    b.n = 0;
    put(&b, "GGUG", 4);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "no \"GGUF\" magic", &err);

    /* a string longer than the file */
    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, FIPSC_GGUF_STRING);
    u64(&b, 1ull << 62);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "truncated GGUF file", &err);
    /* an array count beyond the file */
    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, FIPSC_GGUF_ARRAY);
    u32(&b, FIPSC_GGUF_U64);
    u64(&b, 1ull << 61);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "claims 2305843009213693952 array items", &err);
    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, FIPSC_GGUF_ARRAY);
    u32(&b, FIPSC_GGUF_STRING);
    u64(&b, 1000);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "claims 1000 strings", &err);
    /* nested arrays, unknown value type, bool 2, key too long, duplicate key */
    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, FIPSC_GGUF_ARRAY);
    u32(&b, FIPSC_GGUF_ARRAY);
    u64(&b, 0);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "nested array", &err);
    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, 13);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "unknown value type 13", &err);
    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, FIPSC_GGUF_BOOL);
    b.p[b.n++] = 2;
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "must be 0 or 1", &err);
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    header(&b, 3, 0, 1);
    str(&b, longkey);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "longer than 256 bytes", &err);
    header(&b, 3, 0, 2);
    for (int i = 0; i < 2; i++) {
        str(&b, "k");
        u32(&b, FIPSC_GGUF_U32);
        u32(&b, 7);
    }
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "key 'k' appears twice", &err);
    /* alignment not a power of two */
    header(&b, 3, 0, 1);
    str(&b, "general.alignment");
    u32(&b, FIPSC_GGUF_U32);
    u32(&b, 24);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "power of two", &err);

    /* tensors: too many dimensions, unknown type, a Q8_0 row of 33, misaligned, past the end,
     * overlapping, duplicate names, extents whose byte size overflows */
    header(&b, 3, 1, 0);
    str(&b, "t");
    u32(&b, 5);
    b.n += 64;
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "5 dimensions", &err);
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 256, 12, 0); /* Q4_K */
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_UNSUPPORTED, "ggml type 12", &err);
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 33, FIPSC_GGML_Q8_0, 0);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "not a multiple of 32", &err);
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 4, FIPSC_GGML_F32, 8);
    pad(&b, 32);
    b.n += 64;
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "not a multiple of the alignment 32", &err);
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 4, FIPSC_GGML_F32, 32);
    pad(&b, 32);
    b.n += 40;
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "past the end of the file", &err);
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 4, FIPSC_GGML_F32, UINT64_MAX - 31);
    pad(&b, 32);
    b.n += 16;
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "past the end of the file", &err);
    header(&b, 3, 2, 0);
    tinfo(&b, "a", 16, FIPSC_GGML_F32, 0);
    tinfo(&b, "b", 4, FIPSC_GGML_F32, 32);
    pad(&b, 32);
    b.n += 64;
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "tensors 'a' and 'b' overlap", &err);
    header(&b, 3, 2, 0);
    tinfo(&b, "a", 4, FIPSC_GGML_F32, 0);
    tinfo(&b, "a", 4, FIPSC_GGML_F32, 32);
    pad(&b, 32);
    b.n += 64;
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "tensor 'a' appears twice", &err);
    header(&b, 3, 1, 0);
    str(&b, "t");
    u32(&b, 4);
    for (int d = 0; d < 4; d++) u64(&b, 1ull << 20);
    u32(&b, FIPSC_GGML_F32);
    u64(&b, 0);
    CHECK_FAILS(parse(&b, &err), FIPSC_ERR_FORMAT, "needs more bytes than the file has", &err);
}

/* Every key type and tensor type through the writer and back. */
static void test_round_trip(const char *dir)
{
    fipsc_gguf_writer *w = fipsc_gguf_writer_new();
    fipsc_gguf_add_u32(w, "u", 4000000000u);
    fipsc_gguf_add_i32(w, "i", -5);
    fipsc_gguf_add_f32(w, "f", 0.25f);
    fipsc_gguf_add_bool(w, "b", true);
    fipsc_gguf_add_string(w, "s", "héllo");
    const char *words[] = {"a", "", "ccc"};
    fipsc_gguf_add_string_array(w, "words", 3, words);
    int32_t ints[3] = {1, -2, 3};
    fipsc_gguf_add_i32_array(w, "ints", 3, ints);
    enum { R = 3, C = 64 };
    static float x[R * C];
    for (int i = 0; i < R * C; i++) x[i] = sinf((float)i * 0.37f) * (1.0f + (float)(i % 7));
    const fipsc_ggml_type types[] = {FIPSC_GGML_F32, FIPSC_GGML_F16, FIPSC_GGML_BF16, FIPSC_GGML_Q8_0, FIPSC_GGML_Q4_0};
    const int64_t ne[2] = {C, R};
    for (int t = 0; t < 5; t++) fipsc_gguf_add_tensor(w, fipsc_ggml_type_name(types[t]), 2, ne, types[t], x);
    char path[4200];
    test_pathf(path, sizeof path, "%s/rt.gguf", dir);
    fipsc_error err;
    CHECK_OK(fipsc_gguf_write(w, path, false, &err), &err);
    CHECK_FAILS(fipsc_gguf_write(w, path, false, &err), FIPSC_ERR_IO, "already exists", &err);
    fipsc_gguf_add_u32(w, "u", 1); /* a duplicate key: remembered, reported by the write */
    CHECK_FAILS(fipsc_gguf_write(w, path, true, &err), FIPSC_ERR_ARG, "duplicate key 'u'", &err);
    fipsc_gguf_writer_free(w);

    fipsc_gguf *g;
    CHECK_OK(fipsc_gguf_open(path, &g, &err), &err);
    if (!g) return;
    CHECK(g->version == 3 && g->n_kvs == 7 && g->n_tensors == 5);
    int64_t iv;
    double fv;
    char sv[32];
    CHECK_OK(fipsc_gguf_get_int(g, "u", false, 0, &iv, &err), &err);
    CHECK(iv == 4000000000LL);
    CHECK_OK(fipsc_gguf_get_int(g, "i", false, 0, &iv, &err), &err);
    CHECK(iv == -5);
    CHECK_OK(fipsc_gguf_get_float(g, "f", false, 0, &fv, &err), &err);
    CHECK(fv == 0.25);
    CHECK_OK(fipsc_gguf_get_string(g, "s", sv, sizeof sv, &err), &err);
    CHECK(strcmp(sv, "héllo") == 0);
    CHECK_FAILS(fipsc_gguf_get_int(g, "s", false, 0, &iv, &err), FIPSC_ERR_FORMAT, "'s' is not an integer", &err);
    CHECK_FAILS(fipsc_gguf_get_int(g, "none", false, 0, &iv, &err), FIPSC_ERR_NOT_FOUND, "'none' is missing", &err);
    CHECK(fipsc_gguf_find(g, "b")->u == 1);
    const fipsc_gguf_kv *kw = fipsc_gguf_find(g, "words");
    fipsc_gguf_str s[3];
    fipsc_gguf_strings(kw, s);
    CHECK(kw->count == 3 && s[0].len == 1 && s[1].len == 0 && s[2].len == 3 && memcmp(s[2].ptr, "ccc", 3) == 0);
    for (int t = 0; t < 5; t++) {
        const fipsc_gguf_tensor *gt = fipsc_gguf_find_tensor(g, fipsc_ggml_type_name(types[t]));
        CHECK(gt && gt->type == types[t] && gt->ne[0] == C && gt->ne[1] == R && (gt->data - g->map->data) % 32 == 0);
        float y[R * C];
        CHECK_OK(fipsc_gguf_tensor_to_f32(g, gt, y, &err), &err);
        /* error bound per element: half a step of the type (blocks: d/2 with d = amax/127 or amax/8),
         * plus the rounding of d to half precision, which moves q·d by up to |q|·d·2^-11 */
        double worst = 0;
        for (int r = 0; r < R; r++)
            for (int b0 = 0; b0 < C; b0 += 32) {
                double amax = 0;
                for (int j = 0; j < 32; j++) amax = fmax(amax, fabs(x[r * C + b0 + j]));
                double step = types[t] == FIPSC_GGML_Q8_0 ? amax / 127 : types[t] == FIPSC_GGML_Q4_0 ? amax / 8
                              : types[t] == FIPSC_GGML_F16 ? amax * 0x1p-10 : types[t] == FIPSC_GGML_BF16 ? amax * 0x1p-7 : 0;
                for (int j = 0; j < 32; j++) {
                    int i = r * C + b0 + j;
                    worst = fmax(worst, fabs(y[i] - x[i]) - (step * (0.5 + 128 * 0x1p-11) + 1e-7 * amax));
                }
            }
        CHECK_MSG(worst <= 0, "%s: an element is %.3g beyond half a step", fipsc_ggml_type_name(types[t]), worst);
    }
    fipsc_gguf_close(g);
}

/* stories260K → GGUF → model: the same tensors; other architectures and unknown tensors refused. */
static void test_model(const char *dir)
{
    char src[4096], path[4200];
    test_path(src, sizeof src, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_error err;
    fipsc_model *a, *b;
    CHECK_OK(fipsc_load_llama2c(src, &a, &err), &err);
    if (!a) return;
    test_pathf(path, sizeof path, "%s/s.gguf", dir);
    CHECK_OK(fipsc_llama_gguf_export(a, path, FIPSC_GGML_F32, NULL, NULL, false, &err), &err);
    CHECK_OK(fipsc_model_load(path, &b, &err), &err); /* through the registry: the Llama family claims it */
    if (b) {
        CHECK(b->n_tensors == a->n_tensors);
        for (int i = 0; i < a->n_tensors; i++) {
            const fipsc_tensor *ta = &a->tensors[i], *tb = fipsc_model_find(b, ta->name);
            CHECK_MSG(tb && tb->ndim == ta->ndim && memcmp(tb->shape, ta->shape, sizeof ta->shape) == 0 &&
                          memcmp(tb->data, ta->data, (size_t)fipsc_shape_numel(ta->ndim, ta->shape) * 4) == 0,
                      "tensor %s differs after the GGUF round trip", ta->name);
        }
        fipsc_model_free(b);
    }
    fipsc_model_free(a);

    /* the same file with its architecture renamed, a key removed, a tensor renamed */
    char *text;
    size_t size;
    CHECK_OK(fipsc_read_file(path, &text, &size, &err), &err);
    if (!text) return;
    char *arch = memmem(text, size, "\x05\0\0\0\0\0\0\0llama", 13);
    CHECK(arch != NULL);
    if (arch) {
        memcpy(arch + 8, "gemmX", 5);
        fipsc_model *m = NULL;
        CHECK_FAILS(fipsc_llama_gguf_load_buffer(text, size, "x.gguf", &m, &err), FIPSC_ERR_UNSUPPORTED,
                    "GGUF architecture 'gemmX' is not one fipsc reads", &err);
        memcpy(arch + 8, "llama", 5);
    }
    char *key = memmem(text, size, "llama.block_count", 17);
    if (key) {
        key[6] = 'X';
        fipsc_model *m = NULL;
        CHECK_FAILS(fipsc_llama_gguf_load_buffer(text, size, "x.gguf", &m, &err), FIPSC_ERR_NOT_FOUND,
                    "GGUF key 'llama.block_count' is missing", &err);
        key[6] = 'b';
    }
    char *name = memmem(text, size, "blk.0.ffn_up.weight", 19);
    if (name) {
        memcpy(name, "blk.0.ffn_xx", 12);
        fipsc_model *m = NULL;
        CHECK_FAILS(fipsc_llama_gguf_load_buffer(text, size, "x.gguf", &m, &err), FIPSC_ERR_UNSUPPORTED,
                    "tensor 'blk.0.ffn_xx.weight' is not one of the llama architecture's tensors", &err);
    }
    free(text);
}

int main(void)
{
    const char *dir = test_tmpdir("test_gguf");
    test_hostile();
    test_round_trip(dir);
    test_model(dir);
    return test_summary("test_gguf");
}
