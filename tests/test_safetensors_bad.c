/* safetensors reader on bad input: every malformed file below is generated here, written to
 * disk and opened; each must fail with FIPSC_ERR_FORMAT and its own message, naming the file
 * (and the tensor where there is one). Then truncations and random corruptions of a valid file
 * must fail cleanly (no crash, sanitizer-clean) and only the intact file may open. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "testutil.h"

static const char *dir;
static int case_number;

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || (n && fwrite(data, 1, n, fp) != n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(fp);
}

/* A file of `header_len` (the stored length), the header text (header_bytes bytes, may hold
 * NULs) and data_len data bytes. */
static size_t make_raw(unsigned char **out, uint64_t header_len, const char *header,
                       size_t header_bytes, size_t data_len)
{
    size_t n = 8 + header_bytes + data_len;
    unsigned char *b = malloc(n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(header_len >> (8 * i));
    memcpy(b + 8, header, header_bytes);
    for (size_t i = 0; i < data_len; i++) b[8 + header_bytes + i] = (unsigned char)i;
    *out = b;
    return n;
}

/* Opens the bytes as a file; expects failure with `needle` in a message that names the file. */
static void expect_fail_bytes(int line, const unsigned char *bytes, size_t n, fipsc_status want,
                              const char *needle)
{
    char path[4096];
    test_pathf(path, sizeof path, "%s/case-%03d.safetensors", dir, ++case_number);
    write_bytes(path, bytes, n);
    fipsc_error err = {0};
    fipsc_st_file *f = NULL;
    fipsc_status st = fipsc_st_open(path, &f, &err);
    check_fails_impl(st, want, needle, &err, "fipsc_st_open", __FILE__, line);
    CHECK_MSG(strstr(err.message, path) != NULL, "line %d: message does not name the file: %s",
              line, err.message);
    CHECK(f == NULL);
    fipsc_st_close(f);
}

/* A header text (stored length = its length) followed by data_len bytes. */
static void expect_fail(int line, const char *header, size_t data_len, const char *needle)
{
    unsigned char *b;
    size_t n = make_raw(&b, strlen(header), header, strlen(header), data_len);
    expect_fail_bytes(line, b, n, FIPSC_ERR_FORMAT, needle);
    free(b);
}

static void expect_ok(int line, const char *header, size_t data_len, int tensors)
{
    unsigned char *b;
    size_t n = make_raw(&b, strlen(header), header, strlen(header), data_len);
    char path[4096];
    test_pathf(path, sizeof path, "%s/case-%03d.safetensors", dir, ++case_number);
    write_bytes(path, b, n);
    free(b);
    fipsc_error err = {0};
    fipsc_st_file *f = NULL;
    fipsc_status st = fipsc_st_open(path, &f, &err);
    CHECK_MSG(st == FIPSC_OK, "line %d: %s", line, err.message);
    CHECK_MSG(!f || fipsc_st_count(f) == tensors, "line %d: %d tensors", line,
              f ? fipsc_st_count(f) : -1);
    fipsc_st_close(f);
}

#define FAIL(header, data_len, needle) expect_fail(__LINE__, header, data_len, needle)
#define OK(header, data_len, tensors) expect_ok(__LINE__, header, data_len, tensors)
#define T(name, rest) "\"" name "\":{" rest "}"

static void test_framing(void)
{
    unsigned char five[5] = {1, 2, 3, 4, 5};
    expect_fail_bytes(__LINE__, five, 5, FIPSC_ERR_FORMAT, "truncated: 5 bytes, shorter than the 8-byte header length");
    expect_fail_bytes(__LINE__, five, 0, FIPSC_ERR_FORMAT, "truncated: 0 bytes");

    unsigned char *b;
    size_t n = make_raw(&b, 1000, "{}", 2, 10);
    expect_fail_bytes(__LINE__, b, n, FIPSC_ERR_FORMAT, "header length 1000 runs past the end of the file (12 bytes follow the length)");
    free(b);
    n = make_raw(&b, 100000001, "{}", 2, 0);
    expect_fail_bytes(__LINE__, b, n, FIPSC_ERR_FORMAT, "header length 100000001 exceeds the limit of 100000000 bytes");
    free(b);
    n = make_raw(&b, UINT64_MAX, "{}", 2, 0);
    expect_fail_bytes(__LINE__, b, n, FIPSC_ERR_FORMAT, "header length 18446744073709551615 exceeds the limit");
    free(b);
    /* a header length of 0: the empty text is not JSON */
    n = make_raw(&b, 0, "", 0, 0);
    expect_fail_bytes(__LINE__, b, n, FIPSC_ERR_FORMAT, "header is not valid JSON");
    free(b);
    /* NUL padding is not JSON whitespace */
    n = make_raw(&b, 8, "{}\0\0\0\0\0\0", 8, 0);
    expect_fail_bytes(__LINE__, b, n, FIPSC_ERR_FORMAT, "unexpected bytes after its JSON object (byte 2 of the header)");
    free(b);

    /* not a file at all */
    fipsc_error err = {0};
    fipsc_st_file *f = NULL;
    CHECK_FAILS(fipsc_st_open(dir, &f, &err), FIPSC_ERR_IO, "not a regular file", &err);
    char missing[4096];
    test_pathf(missing, sizeof missing, "%s/missing.safetensors", dir);
    CHECK_FAILS(fipsc_st_open(missing, &f, &err), FIPSC_ERR_IO, "cannot open", &err);
}

static void test_text(void)
{
    FAIL("{\"a\xff\":{}}", 0, "header is not valid UTF-8 (byte 3 of the header)");
    FAIL("{\"\xc0\xaf\":{}}", 0, "not valid UTF-8 (byte 2");          /* overlong '/' */
    FAIL("{\"\xed\xa0\x80\":{}}", 0, "not valid UTF-8");             /* UTF-16 surrogate */
    FAIL("{\"\xf4\x90\x80\x80\":{}}", 0, "not valid UTF-8");         /* above U+10FFFF */
    FAIL("{\"\xe2\x82\":{}}", 0, "not valid UTF-8");                 /* cut sequence */
    FAIL("{\"a\":", 0, "header is not valid JSON (error at byte");
    FAIL("{'a':1}", 0, "header is not valid JSON");
    FAIL("[1, 2]", 0, "header is not a JSON object");
    FAIL("\"text\"", 0, "header is not a JSON object");
    FAIL("{} x", 0, "unexpected bytes after its JSON object (byte 3 of the header)");
    FAIL("{}{}", 0, "unexpected bytes after its JSON object");
    /* valid: whitespace around, non-ASCII names */
    OK("  \n{}   \t", 0, 0);
    OK("{\"h\xc3\xa9\xf0\x9f\x98\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, 1);
}

static void test_entries(void)
{
    FAIL("{\"a\":3}", 0, "tensor 'a': entry is 3, not an object");
    FAIL("{\"a\":[1]}", 0, "tensor 'a': entry is a list, not an object");
    FAIL("{" T("a", "\"shape\":[1],\"data_offsets\":[0,4]") "}", 4, "tensor 'a': missing \"dtype\"");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"data_offsets\":[0,4]") "}", 4, "tensor 'a': missing \"shape\"");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1]") "}", 4, "tensor 'a': missing \"data_offsets\"");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
         "tensor 'a': field \"dtype\" appears twice");
    /* dtypes */
    FAIL("{" T("a", "\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]") "}", 4, "tensor 'a': dtype is 5, not a string");
    FAIL("{" T("a", "\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]") "}", 1, "tensor 'a': unknown dtype \"F8_E4M3\"");
    FAIL("{" T("a", "\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 4, "unknown dtype \"f32\"");
    FAIL("{" T("a", "\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]") "}", 8, "unknown dtype \"F64\"");
    /* shapes */
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]") "}", 8, "tensor 'a': shape is \"2\", not a list");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]") "}", 8, "tensor 'a': shape[1] is -1, not a non-negative integer");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]") "}", 8, "shape[0] is 1.5, not a non-negative integer");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]") "}", 8, "shape[0] is \"2\", not a non-negative integer");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]") "}", 8, "shape[0] is 1.0000000000000001e+300, not a non-negative integer");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]") "}", 4,
         "tensor 'a': shape has 9 dimensions, more than the 8 supported");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]") "}", 0,
         "tensor 'a': the size of shape [4294967296, 4294967296, 0] overflows");
    FAIL("{" T("a", "\"dtype\":\"I64\",\"shape\":[4294967296,268435456],\"data_offsets\":[0,0]") "}", 0,
         "the size of shape [4294967296, 268435456] overflows");
    /* offsets */
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]") "}", 4, "tensor 'a': data_offsets is a list of another length, not a list of two integers");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]") "}", 8, "data_offsets is a list of another length");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}") "}", 4, "data_offsets is an object, not a list of two integers");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]") "}", 4, "tensor 'a': data_offsets[1] is -4, not a non-negative integer");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[null,4]") "}", 4, "data_offsets[0] is null, not a non-negative integer");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]") "}", 8, "tensor 'a': data_offsets [8, 4] begin after their end");
    /* sizes and ranges */
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]") "}", 8,
         "tensor 'a': size mismatch: shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8");
    FAIL("{" T("a", "\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,4]") "}", 4,
         "size mismatch: shape [] of BF16 needs 2 bytes");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 4,
         "tensor 'a': data_offsets [0, 8] run past the end of the data section (4 bytes)");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") ","
              T("b", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]") "}", 12,
         "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") ","
              T("b", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8,
         "tensors 'a' [0, 8] and 'b' [0, 8] overlap");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") ","
              T("z", "\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]") "}", 8,
         "tensors 'a' [0, 8] and 'z' [4, 4] overlap");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") ","
              T("b", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]") "}", 12,
         "gap in the data section: bytes [4, 8) belong to no tensor (next tensor 'b')");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]") "}", 8,
         "gap in the data section: bytes [0, 4) belong to no tensor (next tensor 'a')");
    FAIL("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 8,
         "gap at the end of the data section: bytes [4, 8) belong to no tensor");
    FAIL("{}", 3, "gap at the end of the data section: bytes [0, 3)");
    /* names */
    FAIL("{" T("a", "\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]") ","
              T("a", "\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]") "}", 2,
         "duplicate tensor name 'a'");
    FAIL("{" T("a", "\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]") ","
              T("a", "\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]") "}", 0,
         "duplicate tensor name 'a'");
    /* valid corner cases: zero-size tensors on boundaries, scalars, unknown fields, empty name */
    OK("{" T("z0", "\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]") ","
           T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") ","
           T("z1", "\"dtype\":\"I64\",\"shape\":[5,0],\"data_offsets\":[4,4]") ","
           T("s", "\"dtype\":\"U16\",\"shape\":[],\"data_offsets\":[4,6]") ","
           T("z2", "\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[6,6]") "}", 6, 5);
    OK("{" T("", "\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":{\"x\":[1]}") "}", 1, 1);
    OK("{" T("a", "\"dtype\":\"U8\",\"shape\":[2.0],\"data_offsets\":[0,2e0]") "}", 2, 1);
}

static void test_metadata(void)
{
    FAIL("{\"__metadata__\":[\"a\"]}", 0, "\"__metadata__\" is not an object of strings (it is a list)");
    FAIL("{\"__metadata__\":\"x\"}", 0, "\"__metadata__\" is not an object of strings (it is \"x\")");
    FAIL("{\"__metadata__\":{\"k\":1}}", 0, "\"__metadata__\" value of key 'k' is not a string (it is 1)");
    FAIL("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "value of key 'k' is not a string (it is an object)");
    FAIL("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "\"__metadata__\" appears twice");
    FAIL("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "\"__metadata__\" key 'k' appears twice");
    OK("{\"__metadata__\":{}}", 0, 0);
    OK("{\"__metadata__\":{\"format\":\"pt\",\"\":\"\"}}", 0, 0);
}

/* Every truncation of a valid file fails cleanly; random byte corruptions either fail with a
 * message or still describe a valid file. Run on the buffer reader (no disk traffic). */
static void test_truncation_and_corruption(void)
{
    static const char json[] =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
        "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[12,20]}}";
    unsigned char *b;
    size_t n = make_raw(&b, strlen(json), json, strlen(json), 20);
    fipsc_error err = {0};
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open_buffer(b, n, "valid", &f, &err), &err);
    fipsc_st_close(f);
    int opened = 0;
    for (size_t len = 0; len < n; len++) {
        /* a private copy per length so ASan sees reads past the truncated end */
        unsigned char *cut = malloc(len ? len : 1);
        memcpy(cut, b, len);
        f = NULL;
        err.message[0] = '\0';
        if (fipsc_st_open_buffer(cut, len, "cut", &f, &err) == FIPSC_OK) opened++;
        else CHECK(err.message[0] != '\0');
        fipsc_st_close(f);
        free(cut);
    }
    CHECK_MSG(opened == 0, "%d truncated files opened", opened);

    uint64_t s = 0x2545f4914f6cdd1dull;
    int failures = 0, successes = 0;
    unsigned char *copy = malloc(n);
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, b, n);
        int flips = 1 + round % 3;
        for (int k = 0; k < flips; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            /* mostly the header, where the structure is */
            size_t at = (s >> 8) % (round % 5 == 0 ? n : 8 + strlen(json));
            copy[at] = (unsigned char)(s >> 40);
        }
        f = NULL;
        err.message[0] = '\0';
        if (fipsc_st_open_buffer(copy, n, "corrupt", &f, &err) == FIPSC_OK) {
            successes++;
            /* whatever opened must be internally consistent */
            uint64_t total = 0;
            for (int i = 0; i < fipsc_st_count(f); i++) total += fipsc_st_at(f, i)->nbytes;
            CHECK(8 + fipsc_st_header_size(f) + total == n);
        } else {
            failures++;
            CHECK(strncmp(err.message, "corrupt", 7) == 0);
        }
        fipsc_st_close(f);
    }
    free(copy);
    CHECK(failures > 1000);
    printf("corruptions: %d rejected, %d still valid\n", failures, successes);
    free(b);
}

int main(void)
{
    dir = test_tmpdir("test_safetensors_bad");
    test_framing();
    test_text();
    test_entries();
    test_metadata();
    test_truncation_and_corruption();
    return test_summary("test_safetensors_bad");
}
