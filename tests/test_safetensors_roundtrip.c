/* safetensors writer + reader: round trip of every dtype (scalars and zero-size tensors
 * included) with metadata, header padding and data alignment, byte-exact compatibility with the
 * reference implementation's layout, element conversions, writer argument errors, and atomic
 * writes that leave nothing behind when they fail. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/file.h"
#include "formats/safetensors.h"
#include "testutil.h"

static const char *dir;

static const char *path_in(char *buf, size_t cap, const char *name)
{
    test_pathf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(fp);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    char *text;
    fipsc_error err = {0};
    if (fipsc_read_file(path, &text, n, &err) != FIPSC_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(2);
    }
    return (unsigned char *)text;
}

/* Files in dir whose name contains needle (leftover temporary files). */
static int count_files_containing(const char *needle)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, needle)) n++;
    if (d) closedir(d);
    return n;
}

/* Deterministic bytes for tensor k. */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = (unsigned char)(s >> 16);
    }
}

static void test_every_dtype(void)
{
    /* Per dtype: a scalar, a zero-size tensor, a vector of odd length and a 3-d tensor. Adding
     * them in dtype order interleaves item sizes, so the writer's placement matters. */
    enum { SHAPES = 4 };
    static const int ndims[SHAPES] = {0, 2, 1, 3};
    static const int64_t shapes[SHAPES][3] = {{0}, {3, 0}, {7}, {2, 3, 5}};
    unsigned char *bufs[FIPSC_DTYPE_COUNT][SHAPES];
    char names[FIPSC_DTYPE_COUNT][SHAPES][64];
    fipsc_error err = {0};
    fipsc_st_writer *w = fipsc_st_writer_new();
    CHECK(w != NULL);
    for (int dt = 0; dt < FIPSC_DTYPE_COUNT; dt++)
        for (int s = 0; s < SHAPES; s++) {
            size_t n = (size_t)fipsc_shape_numel(ndims[s], shapes[s]) * fipsc_dtype_size(dt);
            bufs[dt][s] = malloc(n + 1);
            fill(bufs[dt][s], n, (unsigned)(dt * SHAPES + s));
            test_pathf(names[dt][s], sizeof names[dt][s], "layer.%d.%s/\"q\"\\%d", dt,
                     fipsc_dtype_name(dt), s);
            CHECK_OK(fipsc_st_writer_add(w, names[dt][s], dt, ndims[s], shapes[s], bufs[dt][s], &err),
                     &err);
        }
    CHECK_OK(fipsc_st_writer_set_meta(w, "format", "pt", &err), &err);
    CHECK_OK(fipsc_st_writer_set_meta(w, "note", "line\nbreak \"quoted\" \\ tab\t \x01 h\xc3\xa9", &err), &err);
    CHECK_OK(fipsc_st_writer_set_meta(w, "format", "fipsc", &err), &err); /* replaces */
    CHECK(fipsc_st_writer_count(w) == FIPSC_DTYPE_COUNT * SHAPES);

    char path[4096];
    path_in(path, sizeof path, "all-dtypes.safetensors");
    CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
    uint64_t data_bytes = fipsc_st_writer_data_bytes(w);
    fipsc_st_writer_free(w);

    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    if (f) {
        CHECK(fipsc_st_count(f) == FIPSC_DTYPE_COUNT * SHAPES);
        CHECK((8 + fipsc_st_header_size(f)) % 8 == 0);
        CHECK(fipsc_st_meta_count(f) == 2);
        CHECK(strcmp(fipsc_st_meta_key(f, 0), "format") == 0);
        CHECK(strcmp(fipsc_st_meta(f, "format"), "fipsc") == 0);
        CHECK(strcmp(fipsc_st_meta(f, "note"), "line\nbreak \"quoted\" \\ tab\t \x01 h\xc3\xa9") == 0);
        CHECK(fipsc_st_meta(f, "missing") == NULL);
        CHECK(fipsc_st_find(f, "missing") == NULL);
        CHECK(strcmp(fipsc_st_path(f), path) == 0);
        uint64_t total = 0;
        for (int dt = 0; dt < FIPSC_DTYPE_COUNT; dt++)
            for (int s = 0; s < SHAPES; s++) {
                const fipsc_st_tensor *t = fipsc_st_at(f, dt * SHAPES + s); /* header order */
                CHECK(t == fipsc_st_find(f, names[dt][s]));
                if (!t) continue;
                CHECK(strcmp(t->name, names[dt][s]) == 0);
                CHECK((int)t->dtype == dt);
                CHECK(t->ndim == ndims[s]);
                CHECK(memcmp(t->shape, shapes[s], (size_t)ndims[s] * sizeof(int64_t)) == 0);
                size_t n = (size_t)fipsc_shape_numel(ndims[s], shapes[s]) * fipsc_dtype_size(dt);
                CHECK(t->nbytes == n);
                CHECK(memcmp(t->data, bufs[dt][s], n) == 0);
                CHECK_MSG(t->file_offset % fipsc_dtype_size(dt) == 0, "%s at offset %llu",
                          t->name, (unsigned long long)t->file_offset);
                CHECK(t->file == fipsc_st_path(f));
                if (dt == FIPSC_F32) CHECK(fipsc_st_f32_view(t) == t->data);
                else CHECK(fipsc_st_f32_view(t) == NULL);
                total += t->nbytes;
            }
        CHECK(total == data_bytes);
        CHECK(fipsc_st_at(f, -1) == NULL && fipsc_st_at(f, fipsc_st_count(f)) == NULL);
    }
    fipsc_st_close(f);
    for (int dt = 0; dt < FIPSC_DTYPE_COUNT; dt++)
        for (int s = 0; s < SHAPES; s++) free(bufs[dt][s]);
}

/* The header is padded with spaces so that the data section starts at a multiple of 8, for
 * every header length modulo 8. */
static void test_header_alignment(void)
{
    fipsc_error err = {0};
    for (int len = 1; len <= 16; len++) {
        char name[32];
        memset(name, 'n', (size_t)len);
        name[len] = '\0';
        float v[3] = {1, 2, 3};
        int64_t shape[1] = {3};
        fipsc_st_writer *w = fipsc_st_writer_new();
        CHECK_OK(fipsc_st_writer_add(w, name, FIPSC_F32, 1, shape, v, &err), &err);
        char path[4096];
        path_in(path, sizeof path, "aligned.safetensors");
        CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
        fipsc_st_writer_free(w);
        size_t n;
        unsigned char *bytes = read_all(path, &n);
        uint64_t header = 0;
        for (int i = 7; i >= 0; i--) header = header << 8 | bytes[i];
        CHECK(header % 8 == 0);
        CHECK(n == 8 + header + sizeof v);
        /* exactly the JSON, then only spaces */
        char json[128];
        int jl = snprintf(json, sizeof json,
                          "{\"%s\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", name);
        CHECK(header >= (uint64_t)jl && header < (uint64_t)jl + 8);
        CHECK(memcmp(bytes + 8, json, (size_t)jl) == 0);
        for (uint64_t i = (uint64_t)jl; i < header; i++) CHECK(bytes[8 + i] == ' ');
        CHECK(memcmp(bytes + 8 + header, v, sizeof v) == 0);
        free(bytes);
    }
}

/* Builds [8-byte length][json + spaces to a multiple of 8][data] into file; returns its size. */
static size_t build_file(unsigned char *file, size_t cap, const char *json, const void *data,
                         size_t data_len, size_t *header_out)
{
    size_t jl = strlen(json), header = (jl + 7) / 8 * 8;
    if (8 + header + data_len > cap) exit(2);
    memset(file, ' ', 8 + header);
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)header >> (8 * i));
    memcpy(file + 8, json, jl);
    memcpy(file + 8 + header, data, data_len);
    if (header_out) *header_out = header;
    return 8 + header + data_len;
}

/* A file laid out byte for byte as the reference implementation (Python/Rust safetensors)
 * writes it: compact JSON, "__metadata__" first, spaces up to a multiple of 8, tensors sorted by
 * decreasing alignment then name, and listed in the header in that order. fipsc must read it,
 * and write the same bytes when given the tensors in that order. */
static void test_reference_layout(void)
{
    static const char json[] =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"b\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[0,8]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
        "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[16,18]}}";
    const float a[2] = {1.0f, -2.5f};
    const int64_t b = -7;
    const unsigned char c[2] = {0x40, 0x40}; /* bf16 3.0 */
    unsigned char data[18];
    memcpy(data, &b, 8);
    memcpy(data + 8, a, 8);
    memcpy(data + 16, c, 2);
    unsigned char file[512];
    size_t header;
    size_t size = build_file(file, sizeof file, json, data, sizeof data, &header);
    char path[4096];
    write_bytes(path_in(path, sizeof path, "reference.safetensors"), file, size);

    fipsc_error err = {0};
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    if (f) {
        CHECK(fipsc_st_count(f) == 3);
        CHECK(strcmp(fipsc_st_at(f, 0)->name, "b") == 0); /* header order */
        CHECK(strcmp(fipsc_st_meta(f, "format"), "pt") == 0);
        const fipsc_st_tensor *ta = fipsc_st_find(f, "a"), *tb = fipsc_st_find(f, "b"),
                              *tc = fipsc_st_find(f, "c");
        CHECK(ta && tb && tc);
        if (ta && tb && tc) {
            const float *va = fipsc_st_f32_view(ta);
            CHECK(va && va[0] == 1.0f && va[1] == -2.5f);
            int64_t *vb;
            CHECK_OK(fipsc_st_to_i64(tb, &vb, &err), &err);
            CHECK(vb[0] == -7 && tb->ndim == 2 && tb->shape[0] == 1 && tb->shape[1] == 1);
            free(vb);
            float *vc;
            CHECK_OK(fipsc_st_to_f32(tc, &vc, &err), &err);
            CHECK(tc->ndim == 0 && fipsc_st_numel(tc) == 1 && vc[0] == 3.0f);
            free(vc);
        }
    }
    fipsc_st_close(f);

    /* fipsc writes the identical file from the same tensors in the same order */
    fipsc_st_writer *w = fipsc_st_writer_new();
    int64_t sa[1] = {2}, sb[2] = {1, 1};
    CHECK_OK(fipsc_st_writer_set_meta(w, "format", "pt", &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "b", FIPSC_I64, 2, sb, &b, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "a", FIPSC_F32, 1, sa, a, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "c", FIPSC_BF16, 0, NULL, c, &err), &err);
    char out[4096];
    CHECK_OK(fipsc_st_writer_write(w, path_in(out, sizeof out, "fipsc-reference.safetensors"), &err),
             &err);
    fipsc_st_writer_free(w);
    size_t n;
    unsigned char *mine = read_all(out, &n);
    CHECK(n == size && memcmp(mine, file, size) == 0);
    free(mine);

    /* Added in another order, the header lists them as added while the data placement (by
     * decreasing item size) stays the same. */
    w = fipsc_st_writer_new();
    CHECK_OK(fipsc_st_writer_set_meta(w, "format", "pt", &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "a", FIPSC_F32, 1, sa, a, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "c", FIPSC_BF16, 0, NULL, c, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "b", FIPSC_I64, 2, sb, &b, &err), &err);
    CHECK_OK(fipsc_st_writer_write(w, out, &err), &err);
    fipsc_st_writer_free(w);
    static const char json_added_order[] =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
        "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[16,18]},"
        "\"b\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[0,8]}}";
    unsigned char expect[512];
    size_t expect_size = build_file(expect, sizeof expect, json_added_order, data, sizeof data, NULL);
    mine = read_all(out, &n);
    CHECK(n == expect_size && memcmp(mine, expect, n) == 0);
    free(mine);

    /* One F32 tensor: the example of the format's documentation, byte for byte. */
    static const char one[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    w = fipsc_st_writer_new();
    CHECK_OK(fipsc_st_writer_add(w, "a", FIPSC_F32, 1, sa, a, &err), &err);
    CHECK_OK(fipsc_st_writer_write(w, out, &err), &err);
    fipsc_st_writer_free(w);
    expect_size = build_file(expect, sizeof expect, one, a, sizeof a, NULL);
    mine = read_all(out, &n);
    CHECK(n == expect_size && memcmp(mine, expect, n) == 0);
    CHECK(n == 72 && mine[0] == 56); /* 55 bytes of JSON padded to 56 */
    free(mine);

    /* Older writers sorted by name only: data in any order relative to the header is read. */
    static const char shuffled[] =
        "{\"z\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
        "\"y\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]},"
        "\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}";
    const unsigned char xyz[3] = {1, 2, 3};
    size = build_file(file, sizeof file, shuffled, xyz, 3, NULL);
    write_bytes(path, file, size);
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    CHECK(f && fipsc_st_count(f) == 3 && *(const unsigned char *)fipsc_st_find(f, "x")->data == 3);
    fipsc_st_close(f);
}

static void test_conversions(void)
{
    fipsc_error err = {0};
    float x[6] = {1.0f, -0.333333343f, 65504.0f, 1e-7f, 70000.0f, 0.0f};
    int64_t shape[2] = {2, 3};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t u8[3] = {0, 1, 255};
    int16_t i16[3] = {-32768, -1, 32767};
    uint16_t u16[3] = {0, 40000, 65535};
    int32_t i32[3] = {INT32_MIN, -5, INT32_MAX};
    uint32_t u32[3] = {0, 3000000000u, UINT32_MAX};
    int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
    int64_t three[1] = {3};
    fipsc_st_writer *w = fipsc_st_writer_new();
    CHECK_OK(fipsc_st_writer_add_f32_as(w, "as_f32", FIPSC_F32, 2, shape, x, &err), &err);
    CHECK_OK(fipsc_st_writer_add_f32_as(w, "as_f16", FIPSC_F16, 2, shape, x, &err), &err);
    CHECK_OK(fipsc_st_writer_add_f32_as(w, "as_bf16", FIPSC_BF16, 2, shape, x, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "i8", FIPSC_I8, 1, three, i8, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "u8", FIPSC_U8, 1, three, u8, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "i16", FIPSC_I16, 1, three, i16, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "u16", FIPSC_U16, 1, three, u16, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "i32", FIPSC_I32, 1, three, i32, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "u32", FIPSC_U32, 1, three, u32, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "i64", FIPSC_I64, 1, three, i64, &err), &err);
    /* a large half tensor crosses the writer's conversion block size */
    enum { BIG = 10000 };
    float *big = malloc(BIG * sizeof *big);
    for (int i = 0; i < BIG; i++) big[i] = (float)i * 0.37f - 1000.0f;
    int64_t big_shape[1] = {BIG};
    CHECK_OK(fipsc_st_writer_add_f32_as(w, "big", FIPSC_F16, 1, big_shape, big, &err), &err);
    CHECK_FAILS(fipsc_st_writer_add_f32_as(w, "bad", FIPSC_I32, 1, three, x, &err), FIPSC_ERR_ARG,
                "cannot be stored as I32", &err);
    char path[4096];
    CHECK_OK(fipsc_st_writer_write(w, path_in(path, sizeof path, "conv.safetensors"), &err), &err);
    fipsc_st_writer_free(w);

    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    if (!f) {
        free(big);
        return;
    }
    const char *floats[3] = {"as_f32", "as_f16", "as_bf16"};
    for (int k = 0; k < 3; k++) {
        const fipsc_st_tensor *t = fipsc_st_find(f, floats[k]);
        float *v = NULL;
        CHECK_OK(fipsc_st_to_f32(t, &v, &err), &err);
        for (int i = 0; v && i < 6; i++) {
            float want = k == 0 ? x[i]
                         : k == 1 ? fipsc_f16_to_f32(fipsc_f32_to_f16(x[i]))
                                  : fipsc_bf16_to_f32(fipsc_f32_to_bf16(x[i]));
            CHECK_MSG(v[i] == want || (isinf(v[i]) && isinf(want)), "%s[%d] = %g, want %g",
                      floats[k], i, v[i], want);
        }
        if (v && k == 1) CHECK(isinf(v[4]));         /* 70000 overflows half */
        if (v && k == 2) CHECK_NEAR(v[4], 70000.0, 300.0); /* bfloat16 keeps the range */
        free(v);
    }
    const fipsc_st_tensor *tbig = fipsc_st_find(f, "big");
    float *vbig = NULL;
    CHECK_OK(fipsc_st_to_f32(tbig, &vbig, &err), &err);
    int bad = 0;
    for (int i = 0; vbig && i < BIG; i++)
        if (vbig[i] != fipsc_f16_to_f32(fipsc_f32_to_f16(big[i]))) bad++;
    CHECK(vbig && bad == 0);
    free(vbig);
    float into[6];
    CHECK_OK(fipsc_st_copy_f32(fipsc_st_find(f, "as_bf16"), into, &err), &err);
    CHECK(into[0] == 1.0f);

    const char *ints[7] = {"i8", "u8", "i16", "u16", "i32", "u32", "i64"};
    const int64_t want[7][3] = {{-128, 0, 127},
                                {0, 1, 255},
                                {-32768, -1, 32767},
                                {0, 40000, 65535},
                                {INT32_MIN, -5, INT32_MAX},
                                {0, 3000000000ll, UINT32_MAX},
                                {INT64_MIN, -1, INT64_MAX}};
    for (int k = 0; k < 7; k++) {
        int64_t *v = NULL;
        CHECK_OK(fipsc_st_to_i64(fipsc_st_find(f, ints[k]), &v, &err), &err);
        CHECK_MSG(v && memcmp(v, want[k], sizeof want[k]) == 0, "%s", ints[k]);
        free(v);
    }
    float *none = NULL;
    CHECK_FAILS(fipsc_st_to_f32(fipsc_st_find(f, "i32"), &none, &err), FIPSC_ERR_UNSUPPORTED,
                "tensor 'i32': dtype I32 cannot be converted", &err);
    CHECK(none == NULL);
    CHECK(strstr(err.message, path) != NULL);
    int64_t *inone = NULL;
    CHECK_FAILS(fipsc_st_to_i64(fipsc_st_find(f, "as_f16"), &inone, &err), FIPSC_ERR_UNSUPPORTED,
                "tensor 'as_f16': dtype F16 is not an integer type", &err);
    CHECK(inone == NULL);
    fipsc_st_close(f);
    free(big);
}

/* An F32 tensor that is not 4-byte aligned (after a 1-byte U8 tensor; legal, written by other
 * tools) has no zero-copy view but converts. The buffer is read in place. */
static void test_unaligned_view(void)
{
    static const char json[] = "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                               "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    size_t jl = sizeof json - 1, header = (jl + 7) / 8 * 8;
    /* uint64_t storage: the data section starts 8-byte aligned in memory */
    uint64_t storage[64];
    unsigned char *bytes = (unsigned char *)storage;
    memset(bytes, ' ', sizeof storage);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)header >> (8 * i));
    memcpy(bytes + 8, json, jl);
    unsigned char *data = bytes + 8 + header;
    const float v[2] = {0.5f, -4.0f};
    data[0] = 9;
    memcpy(data + 1, v, sizeof v);
    fipsc_error err = {0};
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open_buffer(bytes, 8 + header + 9, "in-memory", &f, &err), &err);
    if (!f) return;
    const fipsc_st_tensor *t = fipsc_st_find(f, "f");
    CHECK(t && t->data == data + 1 && t->file_offset == 8 + header + 1);
    CHECK(t && fipsc_st_f32_view(t) == NULL);
    float *out = NULL;
    CHECK_OK(fipsc_st_to_f32(t, &out, &err), &err);
    CHECK(out && out[0] == 0.5f && out[1] == -4.0f);
    free(out);
    CHECK(strcmp(fipsc_st_path(f), "in-memory") == 0);
    fipsc_st_close(f);
}

static void test_empty_and_scalar_only(void)
{
    fipsc_error err = {0};
    char path[4096];
    path_in(path, sizeof path, "empty.safetensors");
    fipsc_st_writer *w = fipsc_st_writer_new();
    CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_writer_free(w);
    size_t n;
    unsigned char *bytes = read_all(path, &n);
    CHECK(n == 16 && bytes[0] == 8 && memcmp(bytes + 8, "{}      ", 8) == 0);
    free(bytes);
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    CHECK(f && fipsc_st_count(f) == 0 && fipsc_st_meta_count(f) == 0);
    fipsc_st_close(f);

    /* only zero-size tensors: an empty data section */
    w = fipsc_st_writer_new();
    int64_t zero[2] = {0, 4};
    CHECK_OK(fipsc_st_writer_add(w, "z1", FIPSC_F32, 2, zero, NULL, &err), &err);
    CHECK_OK(fipsc_st_writer_add(w, "z2", FIPSC_I64, 1, zero, NULL, &err), &err);
    CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_writer_free(w);
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    if (f) {
        const fipsc_st_tensor *t = fipsc_st_find(f, "z1");
        CHECK(t && t->nbytes == 0 && fipsc_st_numel(t) == 0 && fipsc_st_f32_view(t) != NULL);
        float *v = NULL;
        CHECK_OK(fipsc_st_to_f32(t, &v, &err), &err);
        CHECK(v != NULL); /* at least one element is allocated */
        free(v);
    }
    fipsc_st_close(f);
}

static void test_writer_errors(void)
{
    fipsc_error err = {0};
    float v[4] = {0};
    int64_t shape[FIPSC_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int64_t neg[2] = {2, -1};
    int64_t huge[3] = {INT64_MAX / 2, 4, 1};
    fipsc_st_writer *w = fipsc_st_writer_new();
    CHECK_OK(fipsc_st_writer_add(w, "w", FIPSC_F32, 1, shape, v, &err), &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "w", FIPSC_F32, 1, shape, v, &err), FIPSC_ERR_ARG,
                "duplicate tensor name 'w'", &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "__metadata__", FIPSC_F32, 1, shape, v, &err), FIPSC_ERR_ARG,
                "reserved", &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "", FIPSC_F32, 1, shape, v, &err), FIPSC_ERR_ARG,
                "empty tensor name", &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "bad\xff", FIPSC_F32, 1, shape, v, &err), FIPSC_ERR_ARG,
                "not valid UTF-8", &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "deep", FIPSC_F32, FIPSC_MAX_DIMS + 1, shape, v, &err),
                FIPSC_ERR_ARG, "9 dimensions", &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "neg", FIPSC_F32, 2, neg, v, &err), FIPSC_ERR_ARG,
                "negative dimension -1", &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "huge", FIPSC_F32, 3, huge, v, &err), FIPSC_ERR_ARG,
                "size overflows", &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "nodata", FIPSC_F32, 1, shape, NULL, &err), FIPSC_ERR_ARG,
                "no data for 1 elements", &err);
    CHECK_FAILS(fipsc_st_writer_add(w, "dt", (fipsc_dtype)99, 1, shape, v, &err), FIPSC_ERR_ARG,
                "unknown dtype 99", &err);
    CHECK_FAILS(fipsc_st_writer_set_meta(w, "k", "\xc0\xaf", &err), FIPSC_ERR_ARG,
                "not valid UTF-8", &err);
    CHECK(fipsc_st_writer_count(w) == 1);
    fipsc_st_writer_free(w);
    fipsc_st_writer_free(NULL);
    fipsc_st_close(NULL);
}

/* Failed writes leave nothing: no file at the target, no temporary file beside it, and a file
 * already there untouched. */
static void test_atomic_failures(void)
{
    fipsc_error err = {0};
    float v[4096];
    for (int i = 0; i < 4096; i++) v[i] = (float)i;
    int64_t shape[1] = {4096};
    fipsc_st_writer *w = fipsc_st_writer_new();
    CHECK_OK(fipsc_st_writer_add(w, "v", FIPSC_F32, 1, shape, v, &err), &err);

    char path[4096];
    path_in(path, sizeof path, "no-such-dir/out.safetensors");
    CHECK_FAILS(fipsc_st_writer_write(w, path, &err), FIPSC_ERR_IO, "no-such-dir", &err);
    CHECK(access(path, F_OK) != 0);

    /* A write that fails half-way: the file-size limit (SIGXFSZ ignored, so write() returns
     * EFBIG) is far below the file's 16 KiB. Works as root, unlike a read-only directory. */
    path_in(path, sizeof path, "limited.safetensors");
    write_bytes(path, "previous", 8);
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 4096;
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    fipsc_status st = fipsc_st_writer_write(w, path, &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, old_handler);
    CHECK_FAILS(st, FIPSC_ERR_IO, "limited.safetensors", &err);
    CHECK(strstr(err.message, "nothing written") || strstr(err.message, "write failed"));
    size_t n;
    unsigned char *bytes = read_all(path, &n);
    CHECK(n == 8 && memcmp(bytes, "previous", 8) == 0);
    free(bytes);
    CHECK(count_files_containing(".tmp-") == 0);

    /* and with the limit lifted, the same writer replaces the file */
    CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(path, &f, &err), &err);
    CHECK(f && fipsc_st_count(f) == 1 && memcmp(fipsc_st_at(f, 0)->data, v, sizeof v) == 0);
    fipsc_st_close(f);
    CHECK(count_files_containing(".tmp-") == 0);
    fipsc_st_writer_free(w);
}

int main(void)
{
    dir = test_tmpdir("test_safetensors_roundtrip");
    test_every_dtype();
    test_header_alignment();
    test_reference_layout();
    test_conversions();
    test_unaligned_view();
    test_empty_and_scalar_only();
    test_writer_errors();
    test_atomic_failures();
    return test_summary("test_safetensors_roundtrip");
}
