/* The strict GGUF reader (see formats/gguf.h for the format and what is checked). The parser
 * walks the file with a cursor that refuses any read past the end; every count is compared with
 * the bytes left before anything is allocated for it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/tensor.h"
#include "formats/gguf.h"

typedef struct cursor {
    const unsigned char *p;
    size_t size, pos;
    const char *origin;
    fipsc_error *err;
} cursor;

static size_t left(const cursor *c) { return c->size - c->pos; }

static fipsc_status need(cursor *c, uint64_t n, const char *what)
{
    if (n > left(c))
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT,
                          "%s: truncated GGUF file: %s needs %llu bytes at offset %zu, %zu left", c->origin, what,
                          (unsigned long long)n, c->pos, left(c));
    return FIPSC_OK;
}

static uint64_t load_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static fipsc_status read_uint(cursor *c, int bytes, const char *what, uint64_t *out)
{
    fipsc_status st = need(c, (uint64_t)bytes, what);
    if (st) return st;
    *out = load_le(c->p + c->pos, bytes);
    c->pos += (size_t)bytes;
    return FIPSC_OK;
}

static fipsc_status read_str(cursor *c, const char *what, fipsc_gguf_str *out)
{
    uint64_t len;
    fipsc_status st = read_uint(c, 8, what, &len);
    if (st) return st;
    if ((st = need(c, len, what))) return st;
    out->ptr = (const char *)c->p + c->pos;
    out->len = len;
    c->pos += (size_t)len;
    return FIPSC_OK;
}

/* A key or tensor name: bounded, no NUL, copied into buf. */
static fipsc_status read_name(cursor *c, const char *what, char *buf)
{
    fipsc_gguf_str s;
    fipsc_status st = read_str(c, what, &s);
    if (st) return st;
    if (s.len == 0 || s.len > FIPSC_GGUF_MAX_NAME || memchr(s.ptr, 0, (size_t)s.len))
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: %s at offset %zu is %s", c->origin, what,
                          c->pos - (size_t)s.len,
                          s.len == 0 ? "empty" : s.len > FIPSC_GGUF_MAX_NAME ? "longer than 256 bytes" : "holding a NUL");
    memcpy(buf, s.ptr, (size_t)s.len);
    buf[s.len] = 0;
    return FIPSC_OK;
}

size_t fipsc_gguf_value_size(fipsc_gguf_value_type t)
{
    switch (t) {
    case FIPSC_GGUF_U8: case FIPSC_GGUF_I8: case FIPSC_GGUF_BOOL: return 1;
    case FIPSC_GGUF_U16: case FIPSC_GGUF_I16: return 2;
    case FIPSC_GGUF_U32: case FIPSC_GGUF_I32: case FIPSC_GGUF_F32: return 4;
    case FIPSC_GGUF_U64: case FIPSC_GGUF_I64: case FIPSC_GGUF_F64: return 8;
    default: return 0;
    }
}

static bool is_signed(fipsc_gguf_value_type t)
{
    return t == FIPSC_GGUF_I8 || t == FIPSC_GGUF_I16 || t == FIPSC_GGUF_I32 || t == FIPSC_GGUF_I64;
}

static fipsc_status read_scalar(cursor *c, fipsc_gguf_kv *kv)
{
    int n = (int)fipsc_gguf_value_size(kv->type);
    uint64_t v;
    fipsc_status st = read_uint(c, n, kv->key, &v);
    if (st) return st;
    kv->u = v;
    if (is_signed(kv->type)) { /* sign-extend */
        int shift = 64 - 8 * n;
        kv->i = (int64_t)(v << shift) >> shift;
        kv->u = 0;
    } else {
        kv->i = v <= INT64_MAX ? (int64_t)v : 0;
    }
    if (kv->type == FIPSC_GGUF_F32) {
        uint32_t b = (uint32_t)v;
        float f;
        memcpy(&f, &b, sizeof f);
        kv->f = f;
    } else if (kv->type == FIPSC_GGUF_F64) {
        memcpy(&kv->f, &v, sizeof kv->f);
    } else if (kv->type == FIPSC_GGUF_BOOL && v > 1) {
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: key '%s' is a bool of value %llu (must be 0 or 1)",
                          c->origin, kv->key, (unsigned long long)v);
    }
    return FIPSC_OK;
}

static fipsc_status read_value(cursor *c, fipsc_gguf_kv *kv)
{
    uint64_t t;
    fipsc_status st = read_uint(c, 4, kv->key, &t);
    if (st) return st;
    if (t >= FIPSC_GGUF_VALUE_TYPE_COUNT)
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: key '%s' has unknown value type %llu", c->origin, kv->key,
                          (unsigned long long)t);
    kv->type = (fipsc_gguf_value_type)t;
    if (kv->type == FIPSC_GGUF_STRING) return read_str(c, kv->key, &kv->str);
    if (kv->type != FIPSC_GGUF_ARRAY) return read_scalar(c, kv);

    uint64_t it, count;
    if ((st = read_uint(c, 4, kv->key, &it)) || (st = read_uint(c, 8, kv->key, &count))) return st;
    if (it >= FIPSC_GGUF_VALUE_TYPE_COUNT || it == FIPSC_GGUF_ARRAY)
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: key '%s' is an array of %s item type %llu", c->origin,
                          kv->key, it == FIPSC_GGUF_ARRAY ? "the unsupported (nested array)" : "unknown",
                          (unsigned long long)it);
    kv->item_type = (fipsc_gguf_value_type)it;
    kv->count = count;
    kv->items = c->p + c->pos;
    if (kv->item_type != FIPSC_GGUF_STRING) {
        uint64_t size = (uint64_t)fipsc_gguf_value_size(kv->item_type);
        if (count > left(c) / size) /* also guards count * size against overflow */
            return fipsc_fail(c->err, FIPSC_ERR_FORMAT,
                              "%s: key '%s' claims %llu array items, more than the %zu bytes left hold", c->origin,
                              kv->key, (unsigned long long)count, left(c));
        c->pos += (size_t)(count * size);
        if (kv->item_type == FIPSC_GGUF_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (kv->items[i] > 1)
                    return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: key '%s': bool item %llu is %u", c->origin,
                                      kv->key, (unsigned long long)i, kv->items[i]);
        return FIPSC_OK;
    }
    /* strings: each takes at least its 8-byte length, which bounds the loop by the file size */
    if (count > left(c) / 8)
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT,
                          "%s: key '%s' claims %llu strings, more than the %zu bytes left hold", c->origin, kv->key,
                          (unsigned long long)count, left(c));
    for (uint64_t i = 0; i < count; i++) {
        fipsc_gguf_str s;
        if ((st = read_str(c, kv->key, &s))) return st;
    }
    return FIPSC_OK;
}

void fipsc_gguf_strings(const fipsc_gguf_kv *kv, fipsc_gguf_str *out)
{
    const unsigned char *p = kv->items;
    for (uint64_t i = 0; i < kv->count; i++) {
        out[i].len = load_le(p, 8);
        out[i].ptr = (const char *)p + 8;
        p += 8 + out[i].len;
    }
}

static fipsc_status read_tensor_info(cursor *c, int64_t index, fipsc_gguf_tensor *t)
{
    char what[64];
    snprintf(what, sizeof what, "tensor %lld's name", (long long)index);
    fipsc_status st = read_name(c, what, t->name);
    if (st) return st;
    uint64_t n_dims, ty;
    if ((st = read_uint(c, 4, t->name, &n_dims))) return st;
    if (n_dims < 1 || n_dims > 4)
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: tensor '%s' has %llu dimensions (GGUF allows 1 to 4)",
                          c->origin, t->name, (unsigned long long)n_dims);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if ((st = read_uint(c, 8, t->name, &ne))) return st;
        if (ne > (uint64_t)INT64_MAX)
            return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: tensor '%s': extent %d is %llu", c->origin, t->name, d,
                              (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    if ((st = read_uint(c, 4, t->name, &ty))) return st;
    if (!fipsc_ggml_type_known((uint32_t)ty) || ty > UINT32_MAX)
        return fipsc_fail(c->err, FIPSC_ERR_UNSUPPORTED,
                          "%s: tensor '%s' has ggml type %llu; fipsc reads F32, F16, BF16, Q8_0 and Q4_0", c->origin,
                          t->name, (unsigned long long)ty);
    t->type = (fipsc_ggml_type)ty;
    if (!fipsc_ggml_type_fits(t->type, t->ne[0]))
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: tensor '%s' is %s with rows of %lld values, not a multiple of %d",
                          c->origin, t->name, fipsc_ggml_type_name(t->type), (long long)t->ne[0],
                          fipsc_ggml_block_values(t->type));
    /* byte size = (ne0 / block) * block_bytes * ne1 * ne2 * ne3, overflow-checked */
    uint64_t bytes = (uint64_t)(t->ne[0] / fipsc_ggml_block_values(t->type)) * fipsc_ggml_block_bytes(t->type);
    if (t->ne[0] != 0 && bytes / fipsc_ggml_block_bytes(t->type) != (uint64_t)(t->ne[0] / fipsc_ggml_block_values(t->type)))
        bytes = UINT64_MAX;
    for (int d = 1; d < 4 && bytes != UINT64_MAX; d++) {
        if (t->ne[d] != 0 && bytes > UINT64_MAX / (uint64_t)t->ne[d]) bytes = UINT64_MAX;
        else bytes *= (uint64_t)t->ne[d];
    }
    if (bytes > c->size)
        return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: tensor '%s' of extents [%lld, %lld, %lld, %lld] needs more bytes than the file has",
                          c->origin, t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                          (long long)t->ne[3]);
    t->nbytes = (size_t)bytes;
    return read_uint(c, 8, t->name, &t->offset);
}

/* Sorting tensors by offset to find overlaps, without moving them. */
static int cmp_u64_index(const void *a, const void *b, void *arg)
{
    const fipsc_gguf_tensor *ts = arg;
    const fipsc_gguf_tensor *x = &ts[*(const int64_t *)a], *y = &ts[*(const int64_t *)b];
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Fails naming a name that appears twice among the n names at base, stride bytes apart. */
static fipsc_status check_unique(cursor *c, const char *what, int64_t n, const char *base, size_t stride)
{
    if (n < 2) return FIPSC_OK;
    const char **names = malloc((size_t)n * sizeof *names);
    if (!names) return fipsc_fail(c->err, FIPSC_ERR_NOMEM, "%s: out of memory checking %s", c->origin, what);
    for (int64_t i = 0; i < n; i++) names[i] = base + (size_t)i * stride;
    qsort(names, (size_t)n, sizeof *names, cmp_name);
    fipsc_status st = FIPSC_OK;
    for (int64_t i = 1; i < n && !st; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            st = fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: %s '%s' appears twice", c->origin, what, names[i]);
    free(names);
    return st;
}

static fipsc_status check_layout(cursor *c, fipsc_gguf *g, size_t data_start)
{
    int64_t n = g->n_tensors;
    for (int64_t i = 0; i < n; i++) {
        fipsc_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: tensor '%s' starts at data offset %llu, not a multiple of the alignment %u",
                              c->origin, t->name, (unsigned long long)t->offset, g->alignment);
        if (t->offset > c->size - data_start || t->nbytes > c->size - data_start - t->offset)
            return fipsc_fail(c->err, FIPSC_ERR_FORMAT,
                              "%s: tensor '%s' (%zu bytes at data offset %llu) lies past the end of the file (%zu data bytes)",
                              c->origin, t->name, t->nbytes, (unsigned long long)t->offset, c->size - data_start);
        t->data = c->p + data_start + t->offset;
    }
    if (n < 2) return FIPSC_OK;
    int64_t *order = malloc((size_t)n * sizeof *order);
    if (!order) return fipsc_fail(c->err, FIPSC_ERR_NOMEM, "%s: out of memory", c->origin);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, cmp_u64_index, g->tensors);
    fipsc_status st = FIPSC_OK;
    for (int64_t i = 1; i < n && !st; i++) {
        const fipsc_gguf_tensor *a = &g->tensors[order[i - 1]], *b = &g->tensors[order[i]];
        if (a->nbytes > 0 && b->offset < a->offset + a->nbytes)
            st = fipsc_fail(c->err, FIPSC_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section", c->origin,
                            a->name, b->name);
    }
    free(order);
    return st;
}

fipsc_status fipsc_gguf_parse(const unsigned char *data, size_t size, const char *origin, fipsc_gguf **out,
                              fipsc_error *err)
{
    *out = NULL;
    cursor c = {data, size, 0, origin, err};
    if (size < 4 || memcmp(data, "GGUF", 4) != 0)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", origin);
    c.pos = 4;
    uint64_t version, n_tensors, n_kvs;
    fipsc_status st;
    if ((st = read_uint(&c, 4, "the version", &version))) return st;
    if (version != 2 && version != 3)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: GGUF version %llu (fipsc reads versions 2 and 3%s)", origin,
                          (unsigned long long)version,
                          version == 1 ? "; version 1 files predate August 2023: convert them with llama.cpp"
                          : version > 0xffff ? "; a byte-swapped version: big-endian GGUF is not supported" : "");
    if ((st = read_uint(&c, 8, "the tensor count", &n_tensors)) || (st = read_uint(&c, 8, "the key count", &n_kvs)))
        return st;
    /* a key takes at least 8 + 1 + 4 bytes, a tensor 8 + 1 + 4 + 8 + 4 + 8: counts beyond what the
     * file could hold are refused before anything is allocated */
    if (n_kvs > left(&c) / 13 || n_tensors > left(&c) / 33)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: the header claims %llu keys and %llu tensors, more than its %zu bytes can hold",
                          origin, (unsigned long long)n_kvs, (unsigned long long)n_tensors, size);

    fipsc_gguf *g = calloc(1, sizeof *g);
    if (!g) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", origin);
    snprintf(g->origin, sizeof g->origin, "%s", origin);
    g->version = (uint32_t)version;
    g->alignment = FIPSC_GGUF_DEFAULT_ALIGNMENT;
    g->kvs = calloc(n_kvs ? (size_t)n_kvs : 1, sizeof *g->kvs);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors) {
        fipsc_gguf_close(g);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %llu keys and %llu tensors", origin,
                          (unsigned long long)n_kvs, (unsigned long long)n_tensors);
    }
    for (uint64_t i = 0; i < n_kvs && !st; i++) {
        fipsc_gguf_kv *kv = &g->kvs[i];
        char what[48];
        snprintf(what, sizeof what, "key %llu", (unsigned long long)i);
        if (!(st = read_name(&c, what, kv->key)) && !(st = read_value(&c, kv))) g->n_kvs++;
    }
    if (!st) st = check_unique(&c, "key", g->n_kvs, g->kvs[0].key, sizeof *g->kvs);
    const fipsc_gguf_kv *al = st ? NULL : fipsc_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != FIPSC_GGUF_U32 || al->u == 0 || (al->u & (al->u - 1)) != 0)
            st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: general.alignment must be a u32 power of two", origin);
        else g->alignment = (uint32_t)al->u;
    }
    for (uint64_t i = 0; i < n_tensors && !st; i++)
        if (!(st = read_tensor_info(&c, (int64_t)i, &g->tensors[i]))) g->n_tensors++;
    if (!st) st = check_unique(&c, "tensor", g->n_tensors, g->tensors[0].name, sizeof *g->tensors);
    if (!st) {
        size_t data_start = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
        if (data_start > size && g->n_tensors > 0)
            st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: truncated GGUF file: no data section", origin);
        else if (g->n_tensors > 0)
            st = check_layout(&c, g, data_start);
    }
    if (st) {
        fipsc_gguf_close(g);
        return st;
    }
    *out = g;
    return FIPSC_OK;
}

fipsc_status fipsc_gguf_open(const char *path, fipsc_gguf **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_mapped_file *map;
    fipsc_status st = fipsc_map_file(path, &map, err);
    if (st) return st;
    st = fipsc_gguf_parse(map->data, map->size, path, out, err);
    if (st) {
        fipsc_unmap_file(map);
        return st;
    }
    (*out)->map = map;
    return FIPSC_OK;
}

void fipsc_gguf_close(fipsc_gguf *g)
{
    if (!g) return;
    free(g->kvs);
    free(g->tensors);
    if (g->map) fipsc_unmap_file(g->map);
    free(g);
}

void fipsc_gguf_release(void *g) { fipsc_gguf_close(g); }

bool fipsc_gguf_is_file(const char *path)
{
    struct stat st; /* only regular files: opening a FIFO to read its magic would block */
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[4];
    bool yes = fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
    fclose(f);
    return yes;
}

const fipsc_gguf_kv *fipsc_gguf_find(const fipsc_gguf *g, const char *key)
{
    for (int64_t i = 0; i < g->n_kvs; i++)
        if (strcmp(g->kvs[i].key, key) == 0) return &g->kvs[i];
    return NULL;
}

const fipsc_gguf_tensor *fipsc_gguf_find_tensor(const fipsc_gguf *g, const char *name)
{
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

fipsc_status fipsc_gguf_get_int(const fipsc_gguf *g, const char *key, bool has_default, int64_t def, int64_t *out,
                                fipsc_error *err)
{
    const fipsc_gguf_kv *kv = fipsc_gguf_find(g, key);
    if (!kv) {
        if (has_default) {
            *out = def;
            return FIPSC_OK;
        }
        return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "%s: GGUF key '%s' is missing", g->origin, key);
    }
    if (fipsc_gguf_value_size(kv->type) == 0 || kv->type == FIPSC_GGUF_F32 || kv->type == FIPSC_GGUF_F64 ||
        kv->type == FIPSC_GGUF_BOOL || (!is_signed(kv->type) && kv->u > (uint64_t)INT64_MAX))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: GGUF key '%s' is not an integer (value type %d)", g->origin, key,
                          (int)kv->type);
    *out = kv->i;
    return FIPSC_OK;
}

fipsc_status fipsc_gguf_get_float(const fipsc_gguf *g, const char *key, bool has_default, double def, double *out,
                                  fipsc_error *err)
{
    const fipsc_gguf_kv *kv = fipsc_gguf_find(g, key);
    if (!kv && has_default) {
        *out = def;
        return FIPSC_OK;
    }
    if (!kv) return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "%s: GGUF key '%s' is missing", g->origin, key);
    if (kv->type != FIPSC_GGUF_F32 && kv->type != FIPSC_GGUF_F64)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: GGUF key '%s' is not a float (value type %d)", g->origin, key,
                          (int)kv->type);
    *out = kv->f;
    return FIPSC_OK;
}

fipsc_status fipsc_gguf_get_string(const fipsc_gguf *g, const char *key, char *buf, size_t cap, fipsc_error *err)
{
    const fipsc_gguf_kv *kv = fipsc_gguf_find(g, key);
    if (!kv) return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "%s: GGUF key '%s' is missing", g->origin, key);
    if (kv->type != FIPSC_GGUF_STRING || kv->str.len >= cap || memchr(kv->str.ptr, 0, (size_t)kv->str.len))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: GGUF key '%s' is not a string of fewer than %zu bytes", g->origin,
                          key, cap);
    memcpy(buf, kv->str.ptr, (size_t)kv->str.len);
    buf[kv->str.len] = 0;
    return FIPSC_OK;
}

fipsc_status fipsc_gguf_tensor_to_f32(const fipsc_gguf *g, const fipsc_gguf_tensor *t, float *dst, fipsc_error *err)
{
    (void)g;
    (void)err;
    const int64_t row = t->ne[0];
    if (row == 0 || t->nbytes == 0) return FIPSC_OK; /* no elements (rows × 0 bytes: rows may be anything) */
    const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3]; /* ≤ the file's bytes: checked when parsed */
    const size_t row_bytes = (size_t)(row / fipsc_ggml_block_values(t->type)) * fipsc_ggml_block_bytes(t->type);
    for (int64_t r = 0; r < rows; r++) fipsc_ggml_dequantize_row(t->type, t->data + (size_t)r * row_bytes, row, dst + r * row);
    return FIPSC_OK;
}
