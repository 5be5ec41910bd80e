/* safetensors files: a strict zero-copy reader, sharded checkpoints, an atomic writer.
 *
 * The format (https://github.com/huggingface/safetensors), all integers little-endian:
 *
 *   bytes [0, 8)        N, the header length, an unsigned 64-bit integer
 *   bytes [8, 8 + N)    the header: a UTF-8 JSON object
 *                         { "__metadata__": { "key": "value", ... },          (optional)
 *                           "tensor name": { "dtype": "F32", "shape": [2, 3],
 *                                            "data_offsets": [begin, end] }, ... }
 *   bytes [8 + N, EOF)  the data section; each tensor's bytes are [begin, end) relative to its
 *                       start, row-major (C order), little-endian elements.
 *
 * Reading (fipsc_st_open) maps the file and validates everything before returning, each failure
 * with its own message naming the file and, where there is one, the tensor:
 *   - the file is at least 8 bytes; N <= FIPSC_ST_MAX_HEADER (100 MB, as the reference
 *     implementation) and 8 + N <= file size;
 *   - the header is valid UTF-8, starts with '{', is one JSON object followed only by whitespace;
 *   - every entry is an object with a known "dtype" (F32 F16 BF16 I8 U8 I16 U16 I32 U32 I64),
 *     a "shape" that is a list of at most FIPSC_MAX_DIMS non-negative integers and
 *     "data_offsets" that are two non-negative integers begin <= end;
 *   - (end - begin) == product(shape) * item size;
 *   - the ranges, sorted, tile the data section exactly: no range past its end, no overlap, no
 *     gap, no trailing bytes (zero-size tensors take an empty range anywhere on a boundary);
 *   - no tensor name appears twice; "__metadata__", when present, is an object of string values
 *     (and appears once, with no key twice).
 * Apart from dtypes fipsc does not handle (F64, U64, BOOL, F8_*) and shapes of more than
 * FIPSC_MAX_DIMS dimensions, files the reference implementation accepts are accepted: unknown
 * fields inside an entry are ignored as there, and an integral number written 2.0 reads as 2.
 *
 * Tensor data is never copied: fipsc_st_tensor.data points into the read-only map, valid until
 * the file (or the set holding it) is closed. Element values are little-endian; fipsc assumes a
 * little-endian host (x86-64, AArch64), as the reference implementation does.
 *
 * Orientation: shapes are exactly as stored. Hugging Face linear weights are [out, in]. */
#ifndef FIPSC_SAFETENSORS_H
#define FIPSC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

/* Largest header accepted and written (bytes), as the reference implementation. */
#define FIPSC_ST_MAX_HEADER ((uint64_t)100000000)

/* One tensor of an opened file. Every pointer is owned by the file and valid until it closes. */
typedef struct fipsc_st_tensor {
    const char *name;
    fipsc_dtype dtype;
    int ndim;                      /* 0 for a scalar */
    int64_t shape[FIPSC_MAX_DIMS]; /* as stored; [out, in] for Hugging Face linear weights */
    const void *data;              /* into the map; may be unaligned for its dtype */
    size_t nbytes;                 /* product(shape) * fipsc_dtype_size(dtype) */
    uint64_t file_offset;          /* absolute offset of data in the file */
    const char *file;              /* path of the file holding it, for messages */
} fipsc_st_tensor;

/* ---------------------------------------------------------------- one file */

typedef struct fipsc_st_file fipsc_st_file;

/* Maps and validates path. On failure *out is NULL and err names the file and the problem. */
fipsc_status fipsc_st_open(const char *path, fipsc_st_file **out, fipsc_error *err);

/* Validates size bytes already in memory (e.g. for fuzzing). The bytes are borrowed: they must
 * stay alive and unchanged until fipsc_st_close. `name` is used in messages. */
fipsc_status fipsc_st_open_buffer(const void *bytes, size_t size, const char *name,
                                  fipsc_st_file **out, fipsc_error *err);

/* Unmaps and frees; NULL is allowed. */
void fipsc_st_close(fipsc_st_file *f);

const char *fipsc_st_path(const fipsc_st_file *f);
/* Header length N as stored (the data section starts at 8 + N). */
uint64_t fipsc_st_header_size(const fipsc_st_file *f);

/* Tensors in header order (the order of the keys in the JSON text). */
int fipsc_st_count(const fipsc_st_file *f);
const fipsc_st_tensor *fipsc_st_at(const fipsc_st_file *f, int i);
/* NULL when there is no tensor of that name (hash lookup). */
const fipsc_st_tensor *fipsc_st_find(const fipsc_st_file *f, const char *name);

/* "__metadata__" entries in header order; fipsc_st_meta returns NULL for a missing key. */
int fipsc_st_meta_count(const fipsc_st_file *f);
const char *fipsc_st_meta_key(const fipsc_st_file *f, int i);
const char *fipsc_st_meta_value(const fipsc_st_file *f, int i);
const char *fipsc_st_meta(const fipsc_st_file *f, const char *key);

/* ---------------------------------------------------------------- element access */

/* product(shape); 1 for a scalar, 0 when a dimension is 0. */
int64_t fipsc_st_numel(const fipsc_st_tensor *t);

/* Releases the pages of t's data from the process after it was copied out (fipsc_file_pages_release);
 * a no-op for a file opened on a caller's buffer. t must belong to f and not be read again. */
void fipsc_st_release(const fipsc_st_file *f, const fipsc_st_tensor *t);

/* A float32 view straight into the map when t is F32 and its data is 4-byte aligned (always
 * for files written by fipsc_st_writer_write); NULL otherwise. Never copies. */
const float *fipsc_st_f32_view(const fipsc_st_tensor *t);

/* Converts an F32/F16/BF16 tensor to float32 into dst, which holds fipsc_st_numel(t) floats.
 * Other dtypes fail with FIPSC_ERR_UNSUPPORTED naming the tensor. */
fipsc_status fipsc_st_copy_f32(const fipsc_st_tensor *t, float *dst, fipsc_error *err);

/* Same into a new malloc'ed buffer (at least one element allocated, so never NULL on success);
 * free() it. */
fipsc_status fipsc_st_to_f32(const fipsc_st_tensor *t, float **out_malloced, fipsc_error *err);

/* Converts an integer tensor (I8 U8 I16 U16 I32 U32 I64) to int64 in a new malloc'ed buffer
 * (index arrays). Floating dtypes fail with FIPSC_ERR_UNSUPPORTED naming the tensor. */
fipsc_status fipsc_st_to_i64(const fipsc_st_tensor *t, int64_t **out_malloced, fipsc_error *err);

/* ---------------------------------------------------------------- sharded checkpoints */

/* A set of safetensors files read as one, the way Hugging Face stores large checkpoints:
 * `model.safetensors.index.json` = { "metadata": {...}, "weight_map": { tensor: shard file } }.
 *
 * fipsc_st_set_open(path) accepts
 *   - an index file (any name ending in ".json"): its shards, relative to its directory;
 *   - a single .safetensors file: a set of one;
 *   - a directory: its model.safetensors.index.json, else its model.safetensors, else its only
 *     *.safetensors.index.json, else its only *.safetensors (more than one candidate fails).
 * An index is validated against the shards: every shard path is relative and has no ".."
 * component (it stays inside the directory, lexically: symlinks such as the Hugging Face cache's
 * are followed; "./" and "//" are normalised away so two spellings name one shard), every shard
 * opens and validates, every tensor of the weight_map is in the shard it names, every tensor of
 * a shard is in the weight_map under that shard, and no tensor is in two shards. The index's
 * "metadata" is not interpreted. */
typedef struct fipsc_st_set fipsc_st_set;

fipsc_status fipsc_st_set_open(const char *path, fipsc_st_set **out, fipsc_error *err);
void fipsc_st_set_close(fipsc_st_set *s);

/* All tensors: shards in file-name order, each shard's tensors in header order. */
int fipsc_st_set_count(const fipsc_st_set *s);
const fipsc_st_tensor *fipsc_st_set_at(const fipsc_st_set *s, int i);
/* NULL when no shard holds that name. */
const fipsc_st_tensor *fipsc_st_set_find(const fipsc_st_set *s, const char *name);

/* The files (in file-name order), e.g. for their metadata. */
int fipsc_st_set_shard_count(const fipsc_st_set *s);
const fipsc_st_file *fipsc_st_set_shard(const fipsc_st_set *s, int i);
/* The index file read, or NULL when the set is a single file without index. */
const char *fipsc_st_set_index_path(const fipsc_st_set *s);

/* ---------------------------------------------------------------- writer */

/* Collects tensors and metadata, then writes one file atomically (src/core/file.h).
 *
 * Output layout, as the reference implementation: the header JSON lists "__metadata__" first
 * (when set) and then the tensors in the order they were added; it is padded with spaces so the
 * data section starts at an offset that is a multiple of 8. The data section places tensors by
 * decreasing item size (8, 4, 2, 1 bytes; ties in the order added), so every tensor starts at a
 * multiple of its own item size and F32 tensors can be read zero-copy by fipsc_st_f32_view.
 * Integers in the header are written exactly (no floating-point formatting). */
typedef struct fipsc_st_writer fipsc_st_writer;

/* NULL only when out of memory. */
fipsc_st_writer *fipsc_st_writer_new(void);
void fipsc_st_writer_free(fipsc_st_writer *w);

/* Adds a tensor whose bytes (product(shape) * item size, little-endian, row-major) are at data.
 * `data` is borrowed until fipsc_st_writer_write returns; it may be NULL only when the tensor
 * has zero elements. Fails (FIPSC_ERR_ARG) for an empty, non-UTF-8 or duplicate name, the name
 * "__metadata__", ndim outside [0, FIPSC_MAX_DIMS], a negative dimension, or an unknown dtype. */
fipsc_status fipsc_st_writer_add(fipsc_st_writer *w, const char *name, fipsc_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data, fipsc_error *err);

/* Adds a tensor given as float32 that is stored as `dtype` (F32, F16 or BF16; the narrow types
 * round to nearest even while writing, without a full copy). `data` is borrowed as above. */
fipsc_status fipsc_st_writer_add_f32_as(fipsc_st_writer *w, const char *name, fipsc_dtype dtype,
                                        int ndim, const int64_t *shape, const float *data,
                                        fipsc_error *err);

/* Sets a "__metadata__" entry (copied); setting a key again replaces its value. Key and value
 * must be valid UTF-8. */
fipsc_status fipsc_st_writer_set_meta(fipsc_st_writer *w, const char *key, const char *value,
                                      fipsc_error *err);

/* Number of tensors added and the sum of their byte sizes. */
int fipsc_st_writer_count(const fipsc_st_writer *w);
uint64_t fipsc_st_writer_data_bytes(const fipsc_st_writer *w);

/* Writes the file atomically: temporary file beside path, fsync, rename. On failure nothing is
 * left at path (a previous file there is untouched) and err names path. The writer stays
 * usable (it can be written again elsewhere). */
fipsc_status fipsc_st_writer_write(const fipsc_st_writer *w, const char *path, fipsc_error *err);

/* The same bytes as fipsc_st_writer_write would write, into *bytes (malloc'ed, *size bytes) to be
 * sent elsewhere or read back with fipsc_st_open_buffer; `name` is used in messages. */
fipsc_status fipsc_st_writer_write_memory(const fipsc_st_writer *w, const char *name, void **bytes, size_t *size,
                                          fipsc_error *err);

/* Writes a Hugging Face index (atomically) for shards already written with these writers:
 * { "metadata": { "total_size": <sum of tensor bytes> }, "weight_map": { name: shard_files[s] } },
 * tensor names sorted. shard_files are file names relative to the index's directory. Fails if a
 * tensor name is in two shards or a shard file name is absolute or contains "..". */
fipsc_status fipsc_st_write_index(const char *index_path, int n_shards,
                                  const fipsc_st_writer *const *shards,
                                  const char *const *shard_files, fipsc_error *err);

#endif
