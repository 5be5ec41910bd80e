/* The GGUF writer (see formats/gguf.h): keys and tensor descriptions are collected, then the
 * file is written in one pass through an atomic file — header, keys, tensor infos with offsets
 * computed from each tensor's byte size rounded up to the alignment, padding, and the tensors,
 * converted row by row. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/bytes.h"
#include "core/file.h"
#include "formats/gguf.h"

typedef struct wkv {
    char *key;
    fipsc_gguf_value_type type;
    unsigned char *bytes; /* the value as it goes to the file (after the type) */
    size_t n_bytes;
} wkv;

typedef struct wtensor {
    char *name;
    int n_dims;
    int64_t ne[4];
    fipsc_ggml_type type;
    const float *data;
} wtensor;

struct fipsc_gguf_writer {
    wkv *kvs;
    int n_kvs, cap_kvs;
    wtensor *tensors;
    int n_tensors, cap_tensors;
    char failure[512]; /* the first failure, reported by fipsc_gguf_write */
};

fipsc_gguf_writer *fipsc_gguf_writer_new(void) { return calloc(1, sizeof(fipsc_gguf_writer)); }

void fipsc_gguf_writer_free(fipsc_gguf_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n_kvs; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].bytes);
    }
    for (int i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

static void fail(fipsc_gguf_writer *w, const char *what, const char *name)
{
    if (!w->failure[0]) snprintf(w->failure, sizeof w->failure, "%s '%s'", what, name);
}

/* Values and the header are assembled in core/bytes.h buffers. */
typedef fipsc_bytes buf;

static void put(buf *b, const void *data, size_t n) { fipsc_bytes_put(b, data, n); }

static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); } /* little-endian host (see gguf.h) */
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void add_kv(fipsc_gguf_writer *w, const char *key, fipsc_gguf_value_type type, buf *value)
{
    if (value->oom) fail(w, "out of memory for key", key);
    for (int i = 0; i < w->n_kvs && !w->failure[0]; i++)
        if (strcmp(w->kvs[i].key, key) == 0) fail(w, "duplicate key", key);
    if (strlen(key) == 0 || strlen(key) > FIPSC_GGUF_MAX_NAME) fail(w, "bad key", key);
    if (w->n_kvs == w->cap_kvs && !w->failure[0]) {
        int cap = w->cap_kvs ? 2 * w->cap_kvs : 32;
        wkv *k = realloc(w->kvs, (size_t)cap * sizeof *k);
        if (!k) fail(w, "out of memory for key", key);
        else {
            w->kvs = k;
            w->cap_kvs = cap;
        }
    }
    char *name = w->failure[0] ? NULL : strdup(key);
    if (!name) {
        fail(w, "out of memory for key", key);
        free(value->p);
        return;
    }
    w->kvs[w->n_kvs++] = (wkv){name, type, (unsigned char *)value->p, value->len};
}

void fipsc_gguf_add_u32(fipsc_gguf_writer *w, const char *key, uint32_t v)
{
    buf b = {0};
    put_u32(&b, v);
    add_kv(w, key, FIPSC_GGUF_U32, &b);
}

void fipsc_gguf_add_i32(fipsc_gguf_writer *w, const char *key, int32_t v)
{
    buf b = {0};
    put(&b, &v, 4);
    add_kv(w, key, FIPSC_GGUF_I32, &b);
}

void fipsc_gguf_add_f32(fipsc_gguf_writer *w, const char *key, float v)
{
    buf b = {0};
    put(&b, &v, 4);
    add_kv(w, key, FIPSC_GGUF_F32, &b);
}

void fipsc_gguf_add_bool(fipsc_gguf_writer *w, const char *key, bool v)
{
    buf b = {0};
    unsigned char c = v ? 1 : 0;
    put(&b, &c, 1);
    add_kv(w, key, FIPSC_GGUF_BOOL, &b);
}

void fipsc_gguf_add_string(fipsc_gguf_writer *w, const char *key, const char *v)
{
    buf b = {0};
    put_str(&b, v);
    add_kv(w, key, FIPSC_GGUF_STRING, &b);
}

static void add_array(fipsc_gguf_writer *w, const char *key, fipsc_gguf_value_type item, int64_t n,
                      const void *items, size_t item_bytes)
{
    buf b = {0};
    put_u32(&b, item);
    put_u64(&b, (uint64_t)n);
    if (item == FIPSC_GGUF_STRING)
        for (int64_t i = 0; i < n; i++) put_str(&b, ((const char *const *)items)[i]);
    else
        put(&b, items, (size_t)n * item_bytes);
    add_kv(w, key, FIPSC_GGUF_ARRAY, &b);
}

void fipsc_gguf_add_string_array(fipsc_gguf_writer *w, const char *key, int64_t n, const char *const *v)
{
    add_array(w, key, FIPSC_GGUF_STRING, n, v, 0);
}

void fipsc_gguf_add_f32_array(fipsc_gguf_writer *w, const char *key, int64_t n, const float *v)
{
    add_array(w, key, FIPSC_GGUF_F32, n, v, 4);
}

void fipsc_gguf_add_i32_array(fipsc_gguf_writer *w, const char *key, int64_t n, const int32_t *v)
{
    add_array(w, key, FIPSC_GGUF_I32, n, v, 4);
}

void fipsc_gguf_add_copy(fipsc_gguf_writer *w, const fipsc_gguf_kv *kv)
{
    buf b = {0};
    if (kv->type == FIPSC_GGUF_STRING) {
        put_u64(&b, kv->str.len);
        put(&b, kv->str.ptr, (size_t)kv->str.len);
    } else if (kv->type == FIPSC_GGUF_ARRAY) {
        put_u32(&b, kv->item_type);
        put_u64(&b, kv->count);
        size_t span = (size_t)kv->count * fipsc_gguf_value_size(kv->item_type);
        if (kv->item_type == FIPSC_GGUF_STRING) { /* the items as stored: length-prefixed strings */
            const unsigned char *p = kv->items;
            for (uint64_t i = 0; i < kv->count; i++) {
                uint64_t len;
                memcpy(&len, p, 8);
                p += 8 + len;
            }
            span = (size_t)(p - kv->items);
        }
        put(&b, kv->items, span);
    } else if (kv->type == FIPSC_GGUF_F32) {
        float f = (float)kv->f;
        put(&b, &f, 4);
    } else if (kv->type == FIPSC_GGUF_F64) {
        put(&b, &kv->f, 8);
    } else { /* integers and bool: the low bytes of the value as read (little-endian) */
        uint64_t v = kv->type == FIPSC_GGUF_I8 || kv->type == FIPSC_GGUF_I16 || kv->type == FIPSC_GGUF_I32 ||
                             kv->type == FIPSC_GGUF_I64
                         ? (uint64_t)kv->i
                         : kv->u;
        put(&b, &v, fipsc_gguf_value_size(kv->type));
    }
    add_kv(w, kv->key, kv->type, &b);
}

void fipsc_gguf_add_tensor(fipsc_gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                           fipsc_ggml_type type, const float *data)
{
    if (w->failure[0]) return;
    if (n_dims < 1 || n_dims > 4 || strlen(name) == 0 || strlen(name) > FIPSC_GGUF_MAX_NAME)
        return fail(w, "bad tensor", name);
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor *t = realloc(w->tensors, (size_t)cap * sizeof *t);
        if (!t) return fail(w, "out of memory for tensor", name);
        w->tensors = t;
        w->cap_tensors = cap;
    }
    wtensor t = {strdup(name), n_dims, {1, 1, 1, 1}, type, data};
    if (!t.name) return fail(w, "out of memory for tensor", name);
    for (int d = 0; d < n_dims; d++) t.ne[d] = ne[d];
    w->tensors[w->n_tensors++] = t;
}

static uint64_t row_bytes(const wtensor *t)
{
    return (uint64_t)(t->ne[0] / fipsc_ggml_block_values(t->type)) * fipsc_ggml_block_bytes(t->type);
}

static uint64_t tensor_bytes(const wtensor *t) { return row_bytes(t) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]); }

static uint64_t align_up(uint64_t x) { return (x + FIPSC_GGUF_DEFAULT_ALIGNMENT - 1) / FIPSC_GGUF_DEFAULT_ALIGNMENT * FIPSC_GGUF_DEFAULT_ALIGNMENT; }

static fipsc_status pad_to_alignment(fipsc_atomic_file *af, uint64_t *pos, fipsc_error *err)
{
    static const unsigned char zeros[FIPSC_GGUF_DEFAULT_ALIGNMENT];
    uint64_t to = align_up(*pos);
    fipsc_status st = fipsc_atomic_write(af, zeros, (size_t)(to - *pos), err);
    *pos = to;
    return st;
}

fipsc_status fipsc_gguf_write(fipsc_gguf_writer *w, const char *path, bool overwrite, fipsc_error *err)
{
    if (w->failure[0]) return fipsc_fail(err, FIPSC_ERR_ARG, "%s: cannot write GGUF: %s", path, w->failure);
    for (int i = 0; i < w->n_tensors; i++)
        if (!fipsc_ggml_type_fits(w->tensors[i].type, w->tensors[i].ne[0]))
            return fipsc_fail(err, FIPSC_ERR_ARG, "%s: tensor '%s': rows of %lld values cannot be stored as %s (blocks of %d)",
                              path, w->tensors[i].name, (long long)w->tensors[i].ne[0],
                              fipsc_ggml_type_name(w->tensors[i].type), fipsc_ggml_block_values(w->tensors[i].type));
    struct stat sb;
    if (!overwrite && stat(path, &sb) == 0)
        return fipsc_fail(err, FIPSC_ERR_IO, "%s already exists (use --force to replace it)", path);

    /* header, keys and tensor infos in memory: they are small */
    buf h = {0};
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, (uint64_t)w->n_tensors);
    put_u64(&h, (uint64_t)w->n_kvs);
    for (int i = 0; i < w->n_kvs; i++) {
        put_str(&h, w->kvs[i].key);
        put_u32(&h, w->kvs[i].type);
        put(&h, w->kvs[i].bytes, w->kvs[i].n_bytes);
    }
    uint64_t offset = 0;
    size_t max_row = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        put_str(&h, t->name);
        put_u32(&h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&h, (uint64_t)t->ne[d]);
        put_u32(&h, t->type);
        put_u64(&h, offset);
        offset = align_up(offset + tensor_bytes(t));
        if (row_bytes(t) > max_row) max_row = (size_t)row_bytes(t);
    }
    unsigned char *row = malloc(max_row ? max_row : 1);
    if (h.oom || !row) {
        free(h.p);
        free(row);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory assembling the GGUF header", path);
    }

    fipsc_atomic_file af;
    fipsc_status st = fipsc_atomic_open(path, &af, err);
    uint64_t pos = h.len;
    if (!st) st = fipsc_atomic_write(&af, h.p, h.len, err);
    if (!st) st = pad_to_alignment(&af, &pos, err);
    for (int i = 0; i < w->n_tensors && !st; i++) {
        const wtensor *t = &w->tensors[i];
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        for (int64_t r = 0; r < rows && !st; r++) {
            fipsc_ggml_quantize_row(t->type, t->data + r * t->ne[0], t->ne[0], row);
            st = fipsc_atomic_write(&af, row, (size_t)row_bytes(t), err);
        }
        pos += tensor_bytes(t);
        if (!st) st = pad_to_alignment(&af, &pos, err);
    }
    free(h.p);
    free(row);
    if (!st) return fipsc_atomic_commit(&af, err);
    fipsc_atomic_abort(&af);
    return st;
}
