/* GGUF files (llama.cpp's model format): a strict zero-copy reader and an atomic writer.
 *
 * The format (ggml/docs/gguf.md; versions 2 and 3 are laid out alike, v3 only adds big-endian
 * files, which fipsc neither reads nor writes), all integers little-endian:
 *
 *   "GGUF" magic, u32 version, u64 tensor_count, u64 kv_count
 *   kv_count × { string key, u32 value_type, value }
 *       a string is u64 length + that many bytes (UTF-8, not NUL-terminated);
 *       value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (one byte, 0 or 1),
 *       8 string, 9 array (u32 item type, u64 count, items; arrays of arrays are refused),
 *       10 u64, 11 i64, 12 f64
 *   tensor_count × { string name, u32 n_dims (1..4), u64 ne[n_dims], u32 ggml_type, u64 offset }
 *       ne[0] is the innermost (contiguous) extent: a Hugging Face [out, in] weight is ne = {in, out}
 *   padding to general.alignment (default 32), then the data section; each tensor's bytes start
 *   at data_start + offset, offset a multiple of the alignment.
 *
 * The reader validates everything before returning, each failure naming the file and what was
 * wrong (the 2024 llama.cpp parser CVEs were unchecked counts, lengths and offsets):
 *   - every count and length is checked against the bytes that remain before it is used, so a
 *     hostile count cannot make the parser allocate or loop beyond the file's size;
 *   - keys and tensor names are at most FIPSC_GGUF_MAX_NAME bytes and unique; no NUL inside;
 *   - n_dims in 1..4, every ne ≥ 0, their product and the byte size computed with overflow checks;
 *   - types are the value types above and the tensor types fipsc knows (F32 F16 BF16 Q8_0 Q4_0;
 *     the row length of a block type is a multiple of its block);
 *   - general.alignment, when present, is a u32 power of two; offsets are multiples of it;
 *   - every tensor's bytes lie inside the file and no two tensors overlap.
 * Tensor data is never copied: it points into the read-only map. */
#ifndef FIPSC_FORMATS_GGUF_H
#define FIPSC_FORMATS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "formats/ggml_blocks.h"

#define FIPSC_GGUF_MAX_NAME 256          /* longest key or tensor name accepted */
#define FIPSC_GGUF_DEFAULT_ALIGNMENT 32

typedef enum fipsc_gguf_value_type {
    FIPSC_GGUF_U8 = 0, FIPSC_GGUF_I8 = 1, FIPSC_GGUF_U16 = 2, FIPSC_GGUF_I16 = 3,
    FIPSC_GGUF_U32 = 4, FIPSC_GGUF_I32 = 5, FIPSC_GGUF_F32 = 6, FIPSC_GGUF_BOOL = 7,
    FIPSC_GGUF_STRING = 8, FIPSC_GGUF_ARRAY = 9, FIPSC_GGUF_U64 = 10, FIPSC_GGUF_I64 = 11,
    FIPSC_GGUF_F64 = 12, FIPSC_GGUF_VALUE_TYPE_COUNT
} fipsc_gguf_value_type;

/* A string inside the file: bytes, not NUL-terminated. */
typedef struct fipsc_gguf_str {
    const char *ptr;
    uint64_t len;
} fipsc_gguf_str;

/* One key-value pair. Scalars are widened: integers into i or u (whichever the type is), f32/f64
 * into f, bool into u. An array keeps its item type, count and the bytes of its items. */
typedef struct fipsc_gguf_kv {
    char key[FIPSC_GGUF_MAX_NAME + 1];
    fipsc_gguf_value_type type;
    uint64_t u;
    int64_t i;
    double f;
    fipsc_gguf_str str;
    fipsc_gguf_value_type item_type; /* arrays */
    uint64_t count;
    const unsigned char *items;
} fipsc_gguf_kv;

typedef struct fipsc_gguf_tensor {
    char name[FIPSC_GGUF_MAX_NAME + 1];
    int n_dims;
    int64_t ne[4];            /* ne[0] innermost */
    fipsc_ggml_type type;
    uint64_t offset;          /* from the start of the data section */
    const unsigned char *data;
    size_t nbytes;
} fipsc_gguf_tensor;

typedef struct fipsc_gguf {
    uint32_t version;
    uint32_t alignment;
    fipsc_gguf_kv *kvs;
    int64_t n_kvs;
    fipsc_gguf_tensor *tensors;
    int64_t n_tensors;
    struct fipsc_mapped_file *map; /* NULL when parsed from a caller's buffer */
    char origin[4096];             /* the path, for messages */
} fipsc_gguf;

/* Bytes of one scalar value of type t (0 for strings and arrays). */
size_t fipsc_gguf_value_size(fipsc_gguf_value_type t);

/* Maps and validates path. */
fipsc_status fipsc_gguf_open(const char *path, fipsc_gguf **out, fipsc_error *err);
/* Validates size bytes at data (kept by the caller while the result lives); origin names them. */
fipsc_status fipsc_gguf_parse(const unsigned char *data, size_t size, const char *origin, fipsc_gguf **out,
                              fipsc_error *err);
void fipsc_gguf_close(fipsc_gguf *g);
/* Same as fipsc_gguf_close, with the signature fipsc_model_keep wants. */
void fipsc_gguf_release(void *g);

/* Whether path is a regular file that starts with the GGUF magic (false when it cannot be read). */
bool fipsc_gguf_is_file(const char *path);

const fipsc_gguf_kv *fipsc_gguf_find(const fipsc_gguf *g, const char *key);
const fipsc_gguf_tensor *fipsc_gguf_find_tensor(const fipsc_gguf *g, const char *name);

/* Typed lookups. A missing key gives FIPSC_ERR_NOT_FOUND (naming it) unless a default is
 * allowed (has_default); a key of another type, or an integer that does not fit, FIPSC_ERR_FORMAT. */
fipsc_status fipsc_gguf_get_int(const fipsc_gguf *g, const char *key, bool has_default, int64_t def, int64_t *out,
                                fipsc_error *err);
fipsc_status fipsc_gguf_get_float(const fipsc_gguf *g, const char *key, bool has_default, double def, double *out,
                                  fipsc_error *err);
/* The string value copied into buf (NUL-terminated; too long for cap, or holding a NUL: FORMAT). */
fipsc_status fipsc_gguf_get_string(const fipsc_gguf *g, const char *key, char *buf, size_t cap, fipsc_error *err);

/* Every string of a string array kv (validated when the file was parsed), in order. */
void fipsc_gguf_strings(const fipsc_gguf_kv *kv, fipsc_gguf_str *out /* [kv->count] */);

/* Converts t's elements (any type above) to float32: dst [numel]. */
fipsc_status fipsc_gguf_tensor_to_f32(const fipsc_gguf *g, const fipsc_gguf_tensor *t, float *dst, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Writing. Build the file's keys and tensors, then write it atomically (fipsc_atomic_file):
 * the tensors' float32 data is converted to their GGUF types row by row as the file is written,
 * so nothing larger than one row is allocated for the conversion. */

typedef struct fipsc_gguf_writer fipsc_gguf_writer;

fipsc_gguf_writer *fipsc_gguf_writer_new(void); /* NULL when out of memory */
void fipsc_gguf_writer_free(fipsc_gguf_writer *w);

/* Keys, in the order they are added. Failures (out of memory, a duplicate key) are remembered
 * and reported by fipsc_gguf_write. */
void fipsc_gguf_add_u32(fipsc_gguf_writer *w, const char *key, uint32_t v);
void fipsc_gguf_add_i32(fipsc_gguf_writer *w, const char *key, int32_t v);
void fipsc_gguf_add_f32(fipsc_gguf_writer *w, const char *key, float v);
void fipsc_gguf_add_bool(fipsc_gguf_writer *w, const char *key, bool v);
void fipsc_gguf_add_string(fipsc_gguf_writer *w, const char *key, const char *v);
void fipsc_gguf_add_string_array(fipsc_gguf_writer *w, const char *key, int64_t n, const char *const *v);
void fipsc_gguf_add_f32_array(fipsc_gguf_writer *w, const char *key, int64_t n, const float *v);
void fipsc_gguf_add_i32_array(fipsc_gguf_writer *w, const char *key, int64_t n, const int32_t *v);

/* A copy of a key read from another file (any type; the reader validated it). */
void fipsc_gguf_add_copy(fipsc_gguf_writer *w, const fipsc_gguf_kv *kv);

/* A tensor of n_dims extents ne (ne[0] innermost) whose float32 elements are at data (borrowed
 * until the write), stored as type. A row length that the block type cannot take is an error at
 * write time (callers choose a fallback type: fipsc_ggml_type_fits). */
void fipsc_gguf_add_tensor(fipsc_gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                           fipsc_ggml_type type, const float *data);

/* Writes the file (version 3, alignment 32) atomically. An existing path is replaced only when
 * overwrite is set. */
fipsc_status fipsc_gguf_write(fipsc_gguf_writer *w, const char *path, bool overwrite, fipsc_error *err);

#endif
