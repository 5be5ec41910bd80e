/* safetensors writer and sharded-index writer (see src/formats/safetensors.h).
 *
 * The file is produced in one pass through an atomic file: 8-byte little-endian header length,
 * the header JSON (compact, as serde_json writes it, padded with spaces to a multiple of 8 so
 * the data section is 8-byte aligned), then the tensor bytes. Tensors are placed by decreasing
 * item size: every size is a multiple of the item sizes after it, so each tensor starts on a
 * multiple of its own item size (and the header lists them in the order they were added). */
#include "formats/safetensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/file.h"
#include "core/name_table.h"
#include "formats/safetensors_internal.h"
#include "core/utf8.h"

typedef struct st_entry {
    char *name;
    fipsc_dtype dtype; /* as stored */
    int ndim;
    int64_t shape[FIPSC_MAX_DIMS];
    const void *raw;   /* bytes already in dtype, or NULL */
    const float *f32;  /* float32 values converted to dtype while writing, or NULL */
    uint64_t nbytes;
} st_entry;

struct fipsc_st_writer {
    st_entry *entries;
    int n, cap;
    char **meta_keys, **meta_values;
    int n_meta, cap_meta;
    fipsc_name_table by_name; /* keys are entries[i].name */
    uint64_t data_bytes;
};

fipsc_st_writer *fipsc_st_writer_new(void) { return calloc(1, sizeof(fipsc_st_writer)); }

void fipsc_st_writer_free(fipsc_st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->entries[i].name);
    free(w->entries);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    fipsc_name_table_free(&w->by_name);
    free(w);
}

int fipsc_st_writer_count(const fipsc_st_writer *w) { return w->n; }
uint64_t fipsc_st_writer_data_bytes(const fipsc_st_writer *w) { return w->data_bytes; }

static bool valid_text(const char *s)
{
    return fipsc_utf8_valid((const unsigned char *)s, strlen(s), NULL);
}

static fipsc_status add_entry(fipsc_st_writer *w, const char *name, fipsc_dtype dtype, int ndim,
                              const int64_t *shape, const void *raw, const float *f32,
                              fipsc_error *err)
{
    if (!name || !*name) return fipsc_fail(err, FIPSC_ERR_ARG, "safetensors writer: empty tensor name");
    if (!valid_text(name))
        return fipsc_fail(err, FIPSC_ERR_ARG, "safetensors writer: tensor name is not valid UTF-8");
    if (strcmp(name, "__metadata__") == 0)
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "safetensors writer: \"__metadata__\" is reserved, not a tensor name");
    if ((unsigned)dtype >= FIPSC_DTYPE_COUNT)
        return fipsc_fail(err, FIPSC_ERR_ARG, "safetensors writer: tensor '%s': unknown dtype %d",
                          name, (int)dtype);
    if (ndim < 0 || ndim > FIPSC_MAX_DIMS)
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "safetensors writer: tensor '%s': %d dimensions (0 to %d allowed)", name,
                          ndim, FIPSC_MAX_DIMS);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return fipsc_fail(err, FIPSC_ERR_ARG,
                              "safetensors writer: tensor '%s': negative dimension %lld", name,
                              (long long)shape[d]);
        uint64_t v = (uint64_t)shape[d];
        if (v != 0 && numel > (uint64_t)INT64_MAX / v)
            return fipsc_fail(err, FIPSC_ERR_ARG, "safetensors writer: tensor '%s': size overflows",
                              name);
        numel *= v;
    }
    uint64_t item = fipsc_dtype_size(dtype);
    if (numel > (uint64_t)INT64_MAX / item || numel * item > (uint64_t)INT64_MAX - w->data_bytes)
        return fipsc_fail(err, FIPSC_ERR_ARG, "safetensors writer: tensor '%s': size overflows",
                          name);
    if (numel > 0 && !raw && !f32)
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "safetensors writer: tensor '%s': no data for %llu elements", name,
                          (unsigned long long)numel);
    if (fipsc_name_table_get(&w->by_name, name) >= 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "safetensors writer: duplicate tensor name '%s'",
                          name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_entry *grown = realloc(w->entries, (size_t)cap * sizeof *grown);
        if (!grown) return fipsc_fail(err, FIPSC_ERR_NOMEM, "safetensors writer: out of memory");
        w->entries = grown;
        w->cap = cap;
    }
    st_entry *e = &w->entries[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    int existing;
    if (!e->name || !fipsc_name_table_insert(&w->by_name, e->name, w->n, &existing)) {
        free(e->name);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "safetensors writer: out of memory");
    }
    e->dtype = dtype;
    e->ndim = ndim;
    if (ndim) memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->raw = raw;
    e->f32 = f32;
    e->nbytes = numel * item;
    w->data_bytes += e->nbytes;
    w->n++;
    return FIPSC_OK;
}

fipsc_status fipsc_st_writer_add(fipsc_st_writer *w, const char *name, fipsc_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data, fipsc_error *err)
{
    return add_entry(w, name, dtype, ndim, shape, data, NULL, err);
}

fipsc_status fipsc_st_writer_add_f32_as(fipsc_st_writer *w, const char *name, fipsc_dtype dtype,
                                        int ndim, const int64_t *shape, const float *data,
                                        fipsc_error *err)
{
    if (!fipsc_dtype_is_float(dtype))
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "safetensors writer: tensor '%s': float32 values cannot be stored as %s",
                          name ? name : "", fipsc_dtype_name(dtype));
    return add_entry(w, name, dtype, ndim, shape, NULL, data, err);
}

fipsc_status fipsc_st_writer_set_meta(fipsc_st_writer *w, const char *key, const char *value,
                                      fipsc_error *err)
{
    if (!valid_text(key) || !valid_text(value))
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "safetensors writer: metadata key or value is not valid UTF-8");
    char *copy = strdup(value);
    if (!copy) return fipsc_fail(err, FIPSC_ERR_NOMEM, "safetensors writer: out of memory");
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = copy;
            return FIPSC_OK;
        }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **keys = realloc(w->meta_keys, (size_t)cap * sizeof *keys);
        if (keys) w->meta_keys = keys;
        char **values = keys ? realloc(w->meta_values, (size_t)cap * sizeof *values) : NULL;
        if (values) w->meta_values = values;
        if (!keys || !values) {
            free(copy);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "safetensors writer: out of memory");
        }
        w->cap_meta = cap;
    }
    w->meta_keys[w->n_meta] = strdup(key);
    if (!w->meta_keys[w->n_meta]) {
        free(copy);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->meta_values[w->n_meta++] = copy;
    return FIPSC_OK;
}

/* ---------------------------------------------------------------- JSON text */

/* JSON text is built in a core/bytes.h buffer. */
typedef fipsc_bytes text_buf;

static void put(text_buf *b, const char *s, size_t n) { fipsc_bytes_put(b, s, n); }

static void puts_(text_buf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(text_buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(b, tmp, n < 0 ? 0 : (size_t)n);
}

/* A JSON string literal escaped as serde_json does: quote, backslash and control characters;
 * every other byte (the text is valid UTF-8) as is. */
static void put_json_string(text_buf *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': puts_(b, "\\\""); break;
        case '\\': puts_(b, "\\\\"); break;
        case '\b': puts_(b, "\\b"); break;
        case '\f': puts_(b, "\\f"); break;
        case '\n': puts_(b, "\\n"); break;
        case '\r': puts_(b, "\\r"); break;
        case '\t': puts_(b, "\\t"); break;
        default:
            if (c < 0x20) putf(b, "\\u%04x", c);
            else put(b, s, 1);
        }
    }
    put(b, "\"", 1);
}

/* ---------------------------------------------------------------- file */

/* Where the bytes go: an atomic file, or (mem != NULL) a buffer in memory. */
typedef struct st_sink {
    fipsc_atomic_file *af;
    fipsc_bytes *mem;
} st_sink;

static fipsc_status sink_write(st_sink *s, const void *data, size_t n, const char *name, fipsc_error *err)
{
    if (!s->mem) return fipsc_atomic_write(s->af, data, n, err);
    fipsc_bytes_put(s->mem, data, n);
    return s->mem->oom ? fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", name) : FIPSC_OK;
}

static fipsc_status write_entry_data(st_sink *s, const st_entry *e, const char *name, fipsc_error *err)
{
    if (e->nbytes == 0) return FIPSC_OK;
    if (e->raw) return sink_write(s, e->raw, (size_t)e->nbytes, name, err);
    if (e->dtype == FIPSC_F32) return sink_write(s, e->f32, (size_t)e->nbytes, name, err);
    /* F16/BF16 from float32: convert a block at a time into little-endian bytes. */
    enum { BLOCK = 4096 };
    unsigned char buf[2 * BLOCK];
    size_t n = (size_t)(e->nbytes / 2);
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t m = n - i < BLOCK ? n - i : BLOCK;
        for (size_t k = 0; k < m; k++) {
            uint16_t h = e->dtype == FIPSC_F16 ? fipsc_f32_to_f16(e->f32[i + k])
                                               : fipsc_f32_to_bf16(e->f32[i + k]);
            buf[2 * k] = (unsigned char)(h & 0xff);
            buf[2 * k + 1] = (unsigned char)(h >> 8);
        }
        fipsc_status st = sink_write(s, buf, 2 * m, name, err);
        if (st != FIPSC_OK) return st;
    }
    return FIPSC_OK;
}

/* The whole file into path atomically, or (mem != NULL) into *mem; `name` (the path) in messages. */
static fipsc_status write_file(const fipsc_st_writer *w, const char *path, fipsc_bytes *mem, fipsc_error *err)
{
    /* Placement: stable order by decreasing item size. */
    int *order = malloc(((size_t)w->n + 1) * sizeof *order);
    uint64_t *offset = malloc(((size_t)w->n + 1) * sizeof *offset);
    text_buf header = {0};
    fipsc_status st = FIPSC_OK;
    if (!order || !offset) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    int placed = 0;
    uint64_t at = 0;
    for (size_t item = 8; item >= 1; item /= 2)
        for (int i = 0; i < w->n; i++)
            if (fipsc_dtype_size(w->entries[i].dtype) == item) {
                order[placed++] = i;
                offset[i] = at;
                at += w->entries[i].nbytes;
            }
    if (placed != w->n) {
        st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: a dtype has an unexpected item size", path);
        goto done;
    }

    put(&header, "{", 1);
    bool first = true;
    if (w->n_meta > 0) {
        puts_(&header, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) put(&header, ",", 1);
            put_json_string(&header, w->meta_keys[i]);
            put(&header, ":", 1);
            put_json_string(&header, w->meta_values[i]);
        }
        put(&header, "}", 1);
        first = false;
    }
    for (int i = 0; i < w->n; i++) {
        const st_entry *e = &w->entries[i];
        if (!first) put(&header, ",", 1);
        first = false;
        put_json_string(&header, e->name);
        putf(&header, ":{\"dtype\":\"%s\",\"shape\":[", fipsc_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++) putf(&header, d ? ",%lld" : "%lld", (long long)e->shape[d]);
        putf(&header, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset[i],
             (unsigned long long)(offset[i] + e->nbytes));
    }
    put(&header, "}", 1);
    while (!header.oom && header.len % 8 != 0) put(&header, " ", 1);
    if (header.oom) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for the header", path);
        goto done;
    }
    if (header.len > FIPSC_ST_MAX_HEADER) {
        st = fipsc_fail(err, FIPSC_ERR_ARG, "%s: the header would take %zu bytes, over the %llu-byte limit",
                        path, header.len, (unsigned long long)FIPSC_ST_MAX_HEADER);
        goto done;
    }

    fipsc_atomic_file af;
    st_sink sink = {.af = &af, .mem = mem};
    if (mem) { /* the exact size at once: no doubling copies of a large file */
        const size_t total = sizeof(uint64_t) + header.len + (size_t)w->data_bytes;
        if (!(mem->p = malloc(total + 1))) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %zu bytes", path, total);
            goto done;
        }
        mem->cap = total + 1;
    } else if ((st = fipsc_atomic_open(path, &af, err)) != FIPSC_OK) {
        goto done;
    }
    unsigned char length[8];
    for (int i = 0; i < 8; i++) length[i] = (unsigned char)((uint64_t)header.len >> (8 * i));
    st = sink_write(&sink, length, sizeof length, path, err);
    if (st == FIPSC_OK) st = sink_write(&sink, header.p, header.len, path, err);
    for (int k = 0; k < w->n && st == FIPSC_OK; k++)
        st = write_entry_data(&sink, &w->entries[order[k]], path, err);
    if (!mem && st == FIPSC_OK) st = fipsc_atomic_commit(&af, err);
    else if (!mem) fipsc_atomic_abort(&af);

done:
    free(order);
    free(offset);
    free(header.p);
    if (st && mem) {
        free(mem->p);
        *mem = (fipsc_bytes){0};
    }
    return st;
}

fipsc_status fipsc_st_writer_write(const fipsc_st_writer *w, const char *path, fipsc_error *err)
{
    return write_file(w, path, NULL, err);
}

fipsc_status fipsc_st_writer_write_memory(const fipsc_st_writer *w, const char *name, void **bytes, size_t *size,
                                          fipsc_error *err)
{
    fipsc_bytes mem = {0};
    *bytes = NULL;
    *size = 0;
    fipsc_status st = write_file(w, name, &mem, err);
    if (st) return st;
    *bytes = mem.p;
    *size = mem.len;
    return FIPSC_OK;
}

/* ---------------------------------------------------------------- index */

typedef struct {
    const char *name;
    int shard;
} map_entry;

static int compare_map_entries(const void *a, const void *b)
{
    return strcmp(((const map_entry *)a)->name, ((const map_entry *)b)->name);
}

fipsc_status fipsc_st_write_index(const char *index_path, int n_shards,
                                  const fipsc_st_writer *const *shards,
                                  const char *const *shard_files, fipsc_error *err)
{
    size_t total = 0;
    uint64_t total_size = 0;
    for (int s = 0; s < n_shards; s++) {
        const char *why;
        if (!fipsc_st_shard_path_ok(shard_files[s], &why))
            return fipsc_fail(err, FIPSC_ERR_ARG, "%s: shard file '%s' %s", index_path,
                              shard_files[s], why);
        total += (size_t)shards[s]->n;
        total_size += shards[s]->data_bytes;
    }
    map_entry *map = malloc((total + 1) * sizeof *map);
    if (!map) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", index_path);
    size_t k = 0;
    for (int s = 0; s < n_shards; s++)
        for (int i = 0; i < shards[s]->n; i++) map[k++] = (map_entry){shards[s]->entries[i].name, s};
    qsort(map, total, sizeof *map, compare_map_entries);
    fipsc_status st = FIPSC_OK;
    for (size_t i = 1; i < total && st == FIPSC_OK; i++)
        if (strcmp(map[i - 1].name, map[i].name) == 0)
            st = fipsc_fail(err, FIPSC_ERR_ARG, "%s: tensor '%s' is in two shards: '%s' and '%s'",
                            index_path, map[i].name, shard_files[map[i - 1].shard],
                            shard_files[map[i].shard]);
    text_buf b = {0};
    if (st == FIPSC_OK) {
        /* The layout of Hugging Face's own index files: json.dumps(indent=2, sort_keys=True). */
        putf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
             (unsigned long long)total_size);
        for (size_t i = 0; i < total; i++) {
            puts_(&b, i ? ",\n    " : "\n    ");
            put_json_string(&b, map[i].name);
            puts_(&b, ": ");
            put_json_string(&b, shard_files[map[i].shard]);
        }
        puts_(&b, total ? "\n  }\n}\n" : "}\n}\n");
        if (b.oom) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", index_path);
    }
    if (st == FIPSC_OK) {
        fipsc_atomic_file af;
        st = fipsc_atomic_open(index_path, &af, err);
        if (st == FIPSC_OK) {
            st = fipsc_atomic_write(&af, b.p, b.len, err);
            if (st == FIPSC_OK) st = fipsc_atomic_commit(&af, err);
            else fipsc_atomic_abort(&af);
        }
    }
    free(b.p);
    free(map);
    return st;
}
