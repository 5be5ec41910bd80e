/* libFuzzer target: the safetensors header and data-section validation (fipsc_st_open_buffer).
 *
 * The input is a whole .safetensors file. When the reader accepts it, every accessor is exercised
 * and the invariants it promises are checked: each tensor lies inside the buffer's data section,
 * its size is product(shape) * item size, lookups by name find it, and the float/int conversions
 * read exactly its bytes (ASan catches any read past them). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fipsc_st_file *f = NULL;
    fipsc_error err;
    if (fipsc_st_open_buffer(data, size, "fuzz.safetensors", &f, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(f == NULL && err.code != FIPSC_OK && err.message[0]);
        return 0;
    }
    fuzz_note(NULL);
    const uint64_t data_start = 8 + fipsc_st_header_size(f);
    REQUIRE(data_start <= size);
    for (int i = 0; i < fipsc_st_count(f); i++) {
        const fipsc_st_tensor *t = fipsc_st_at(f, i);
        REQUIRE(t && t->name && fipsc_st_find(f, t->name) == t);
        REQUIRE(t->ndim >= 0 && t->ndim <= FIPSC_MAX_DIMS);
        REQUIRE(t->file_offset >= data_start && t->file_offset <= size &&
                t->nbytes <= size - t->file_offset);
        REQUIRE((const uint8_t *)t->data == data + t->file_offset);
        int64_t numel = fipsc_st_numel(t);
        REQUIRE(numel >= 0 && (uint64_t)numel * fipsc_dtype_size(t->dtype) == t->nbytes);
        const float *view = fipsc_st_f32_view(t);
        REQUIRE(!view || (t->dtype == FIPSC_F32 && (const void *)view == t->data));
        float *floats = NULL;
        if (fipsc_st_to_f32(t, &floats, &err) == FIPSC_OK) REQUIRE(floats);
        else REQUIRE(!floats);
        free(floats);
        int64_t *ints = NULL;
        if (fipsc_st_to_i64(t, &ints, &err) == FIPSC_OK) REQUIRE(ints);
        else REQUIRE(!ints);
        free(ints);
    }
    REQUIRE(fipsc_st_at(f, -1) == NULL && fipsc_st_at(f, fipsc_st_count(f)) == NULL);
    for (int i = 0; i < fipsc_st_meta_count(f); i++) {
        const char *key = fipsc_st_meta_key(f, i), *value = fipsc_st_meta_value(f, i);
        REQUIRE(key && value && fipsc_st_meta(f, key) == value);
    }
    fipsc_st_close(f);
    return 0;
}
