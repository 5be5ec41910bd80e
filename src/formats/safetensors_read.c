/* safetensors reader: maps a file, validates its header and data section completely, and hands
 * out zero-copy views of the tensors (see src/formats/safetensors.h for the rules enforced).
 *
 * Validation order follows the file: the 8-byte length, the header bytes (UTF-8, then JSON),
 * each entry on its own (dtype, shape, offsets, size), and finally the entries together (the
 * sorted ranges must tile the data section exactly). Every message starts with the file path. */
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/name_table.h"
#include "core/utf8.h"

struct fipsc_st_file {
    fipsc_mapped_file *map; /* NULL when opened on a caller's buffer */
    const unsigned char *bytes;
    size_t size;
    char *path;
    uint64_t header_size;
    fipsc_st_tensor *tensors; /* names malloc'ed, owned */
    int n_tensors;
    char **meta_keys, **meta_values;
    int n_meta;
    fipsc_name_table by_name, meta_by_key;
};

/* JSON numbers are doubles in cJSON; every integer up to 2^53 is exact, which covers any
 * offset or dimension of a real file (8 PiB). */
#define JSON_EXACT_INT_MAX 9007199254740992.0

static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > JSON_EXACT_INT_MAX || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

/* A short description of a JSON value for messages: 3.5, -1, "text", a list, ... */
static const char *describe(const cJSON *v, char *buf, size_t cap)
{
    if (!v) snprintf(buf, cap, "missing");
    else if (cJSON_IsNumber(v)) snprintf(buf, cap, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v)) snprintf(buf, cap, "\"%.40s\"", v->valuestring);
    else if (cJSON_IsArray(v)) snprintf(buf, cap, "a list");
    else if (cJSON_IsObject(v)) snprintf(buf, cap, "an object");
    else if (cJSON_IsBool(v)) snprintf(buf, cap, cJSON_IsTrue(v) ? "true" : "false");
    else snprintf(buf, cap, "null");
    return buf;
}

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static fipsc_status parse_metadata(fipsc_st_file *f, const cJSON *meta, fipsc_error *err)
{
    if (!cJSON_IsObject(meta))
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: \"__metadata__\" is not an object of strings (it is %s)", f->path,
                          describe(meta, (char[64]){0}, 64));
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc((size_t)n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for the metadata", f->path);
    for (const cJSON *kv = meta->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: \"__metadata__\" value of key '%s' is not a string (it is %s)",
                              f->path, kv->string, describe(kv, (char[64]){0}, 64));
        int i = f->n_meta;
        f->meta_keys[i] = strdup(kv->string);
        f->meta_values[i] = strdup(kv->valuestring);
        if (!f->meta_keys[i] || !f->meta_values[i]) {
            free(f->meta_keys[i]);
            free(f->meta_values[i]);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for the metadata", f->path);
        }
        f->n_meta++;
        int existing;
        if (!fipsc_name_table_insert(&f->meta_by_key, f->meta_keys[i], i, &existing))
            return existing < 0
                       ? fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", f->path)
                       : fipsc_fail(err, FIPSC_ERR_FORMAT,
                                    "%s: \"__metadata__\" key '%s' appears twice", f->path,
                                    kv->string);
    }
    return FIPSC_OK;
}

/* The three fields of one tensor entry, each required exactly once (other fields are ignored,
 * as the reference implementation does). */
static fipsc_status entry_fields(const char *path, const cJSON *entry, const cJSON **dtype,
                                 const cJSON **shape, const cJSON **offsets, fipsc_error *err)
{
    *dtype = *shape = *offsets = NULL;
    if (!cJSON_IsObject(entry))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s': entry is %s, not an object",
                          path, entry->string, describe(entry, (char[64]){0}, 64));
    for (const cJSON *c = entry->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? dtype
                             : strcmp(c->string, "shape") == 0        ? shape
                             : strcmp(c->string, "data_offsets") == 0 ? offsets
                                                                      : NULL;
        if (!slot) continue;
        if (*slot)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s': field \"%s\" appears twice",
                              path, entry->string, c->string);
        *slot = c;
    }
    const char *missing = !*dtype ? "dtype" : !*shape ? "shape" : !*offsets ? "data_offsets" : NULL;
    if (missing)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s': missing \"%s\"", path,
                          entry->string, missing);
    return FIPSC_OK;
}

/* Validates one tensor entry on its own and fills t (name excluded). begin/end are relative to
 * the data section of data_size bytes. */
static fipsc_status parse_tensor(const char *path, const cJSON *entry, uint64_t data_size,
                                 fipsc_st_tensor *t, uint64_t *begin, uint64_t *end,
                                 fipsc_error *err)
{
    const char *name = entry->string;
    const cJSON *jdtype, *jshape, *joffsets;
    fipsc_status st = entry_fields(path, entry, &jdtype, &jshape, &joffsets, err);
    if (st != FIPSC_OK) return st;
    char what[64];

    if (!cJSON_IsString(jdtype))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s': dtype is %s, not a string",
                          path, name, describe(jdtype, what, sizeof what));
    if (!fipsc_dtype_parse(jdtype->valuestring, &t->dtype))
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: tensor '%s': unknown dtype \"%.40s\" (fipsc reads F32 F16 BF16 I8 U8 "
                          "I16 U16 I32 U32 I64)",
                          path, name, jdtype->valuestring);

    if (!cJSON_IsArray(jshape))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s': shape is %s, not a list", path,
                          name, describe(jshape, what, sizeof what));
    int ndim = cJSON_GetArraySize(jshape);
    if (ndim > FIPSC_MAX_DIMS)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: tensor '%s': shape has %d dimensions, more than the %d supported",
                          path, name, ndim, FIPSC_MAX_DIMS);
    t->ndim = ndim;
    /* numel = product(shape) in the order given, every partial product within int64 (as the
     * reference implementation checks each multiplication, even when a later dimension is 0),
     * and then bytes = numel * item size within int64 too. */
    uint64_t numel = 1;
    bool overflow = false;
    int d = 0;
    for (const cJSON *dim = jshape->child; dim; dim = dim->next, d++) {
        uint64_t v;
        if (!json_uint(dim, &v))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: tensor '%s': shape[%d] is %s, not a non-negative integer", path,
                              name, d, describe(dim, what, sizeof what));
        t->shape[d] = (int64_t)v;
        if (v != 0 && numel > (uint64_t)INT64_MAX / v) overflow = true;
        else numel *= v;
    }
    uint64_t item = fipsc_dtype_size(t->dtype);
    if (numel > (uint64_t)INT64_MAX / item) overflow = true;
    uint64_t nbytes = numel * item;
    char shape_text[256];
    fipsc_shape_format(t->ndim, t->shape, shape_text, sizeof shape_text);
    if (overflow)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s': the size of shape %s overflows",
                          path, name, shape_text);

    if (!cJSON_IsArray(joffsets) || cJSON_GetArraySize(joffsets) != 2)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets is %s, not a list of two integers", path,
                          name,
                          cJSON_IsArray(joffsets) ? "a list of another length"
                                                  : describe(joffsets, what, sizeof what));
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetArrayItem(joffsets, i);
        if (!json_uint(v, i ? end : begin))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets[%d] is %s, not a non-negative integer",
                              path, name, i, describe(v, what, sizeof what));
    }
    if (*begin > *end)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] begin after their end", path,
                          name, (unsigned long long)*begin, (unsigned long long)*end);
    if (*end - *begin != nbytes)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: tensor '%s': size mismatch: shape %s of %s needs %llu bytes but "
                          "data_offsets [%llu, %llu] hold %llu",
                          path, name, shape_text, fipsc_dtype_name(t->dtype),
                          (unsigned long long)nbytes, (unsigned long long)*begin,
                          (unsigned long long)*end, (unsigned long long)(*end - *begin));
    if (*end > data_size)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                          "section (%llu bytes)",
                          path, name, (unsigned long long)*begin, (unsigned long long)*end,
                          (unsigned long long)data_size);
    t->nbytes = (size_t)nbytes; /* <= data_size <= file size, so it fits */
    return FIPSC_OK;
}

typedef struct {
    uint64_t begin, end;
    int index;
} range;

static int compare_ranges(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index - y->index;
}

/* The ranges, sorted, must cover [0, data_size) exactly once. */
static fipsc_status check_tiling(const fipsc_st_file *f, range *r, int n, uint64_t data_size,
                                 fipsc_error *err)
{
    qsort(r, (size_t)n, sizeof *r, compare_ranges);
    uint64_t covered = 0; /* [0, covered) is tiled so far */
    int last = -1;        /* the range that ends at `covered` */
    for (int i = 0; i < n; i++) {
        if (r[i].begin < covered)
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                              f->path, f->tensors[r[last].index].name,
                              (unsigned long long)r[last].begin, (unsigned long long)r[last].end,
                              f->tensors[r[i].index].name, (unsigned long long)r[i].begin,
                              (unsigned long long)r[i].end);
        if (r[i].begin > covered)
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: gap in the data section: bytes [%llu, %llu) belong to no tensor "
                              "(next tensor '%s')",
                              f->path, (unsigned long long)covered, (unsigned long long)r[i].begin,
                              f->tensors[r[i].index].name);
        if (r[i].end > covered || last < 0) {
            covered = r[i].end;
            last = i;
        }
    }
    if (covered != data_size)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: gap at the end of the data section: bytes [%llu, %llu) belong to no "
                          "tensor",
                          f->path, (unsigned long long)covered, (unsigned long long)data_size);
    return FIPSC_OK;
}

static fipsc_status parse_header(fipsc_st_file *f, const cJSON *root, fipsc_error *err)
{
    uint64_t data_start = 8 + f->header_size;
    uint64_t data_size = f->size - data_start;
    int n_entries = cJSON_GetArraySize(root);
    f->tensors = calloc((size_t)n_entries + 1, sizeof *f->tensors);
    range *ranges = calloc((size_t)n_entries + 1, sizeof *ranges);
    if (!f->tensors || !ranges) {
        free(ranges);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %d header entries", f->path,
                          n_entries);
    }
    fipsc_status st = FIPSC_OK;
    bool seen_metadata = false;
    for (const cJSON *entry = root->child; entry && st == FIPSC_OK; entry = entry->next) {
        if (strcmp(entry->string, "__metadata__") == 0) {
            if (seen_metadata)
                st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: \"__metadata__\" appears twice",
                                f->path);
            else st = parse_metadata(f, entry, err);
            seen_metadata = true;
            continue;
        }
        fipsc_st_tensor *t = &f->tensors[f->n_tensors];
        uint64_t begin, end;
        st = parse_tensor(f->path, entry, data_size, t, &begin, &end, err);
        if (st != FIPSC_OK) break;
        t->name = strdup(entry->string);
        if (!t->name) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", f->path);
            break;
        }
        t->file_offset = data_start + begin;
        t->data = f->bytes + t->file_offset;
        t->file = f->path;
        ranges[f->n_tensors] = (range){begin, end, f->n_tensors};
        int existing;
        if (!fipsc_name_table_insert(&f->by_name, t->name, f->n_tensors, &existing)) {
            st = existing < 0 ? fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", f->path)
                              : fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: duplicate tensor name '%s'",
                                           f->path, t->name);
            free((char *)t->name);
            t->name = NULL;
            break;
        }
        f->n_tensors++;
    }
    if (st == FIPSC_OK) st = check_tiling(f, ranges, f->n_tensors, data_size, err);
    free(ranges);
    return st;
}

static fipsc_status parse_file(fipsc_st_file *f, fipsc_error *err)
{
    if (f->size < 8)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: truncated: %zu bytes, shorter than the 8-byte header length", f->path,
                          f->size);
    uint64_t n = read_le64(f->bytes);
    if (n > FIPSC_ST_MAX_HEADER)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: header length %llu exceeds the limit of %llu bytes", f->path,
                          (unsigned long long)n, (unsigned long long)FIPSC_ST_MAX_HEADER);
    if (n > f->size - 8)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: header length %llu runs past the end of the file (%zu bytes follow "
                          "the length)",
                          f->path, (unsigned long long)n, f->size - 8);
    f->header_size = n;
    const unsigned char *header = f->bytes + 8;
    size_t bad;
    if (!fipsc_utf8_valid(header, (size_t)n, &bad))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: header is not valid UTF-8 (byte %zu of the header)",
                          f->path, bad);
    /* cJSON gets a NUL-terminated copy: the map has no terminator, and a copy of at most 100 MB
     * of text costs nothing next to the tensors. */
    char *text = malloc((size_t)n + 1);
    if (!text) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for the header", f->path);
    memcpy(text, header, (size_t)n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    fipsc_status st = FIPSC_OK;
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: header is not valid JSON (error at byte %zu of the header)",
                        f->path, at);
    } else if (!cJSON_IsObject(root)) {
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    } else {
        /* The reference implementation pads with spaces; only JSON whitespace may follow. */
        for (const char *p = end; p < text + n; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                st = fipsc_fail(err, FIPSC_ERR_FORMAT,
                                "%s: header has unexpected bytes after its JSON object (byte %zu of "
                                "the header)",
                                f->path, (size_t)(p - text));
                break;
            }
        if (st == FIPSC_OK) st = parse_header(f, root, err);
    }
    cJSON_Delete(root);
    free(text);
    return st;
}

static fipsc_status open_common(fipsc_st_file *f, fipsc_st_file **out, fipsc_error *err)
{
    fipsc_status st = parse_file(f, err);
    if (st != FIPSC_OK) {
        fipsc_st_close(f);
        return st;
    }
    *out = f;
    return FIPSC_OK;
}

void fipsc_st_release(const fipsc_st_file *f, const fipsc_st_tensor *t)
{
    if (f->map) fipsc_file_pages_release(t->data, t->nbytes); /* a caller's buffer is not a file */
}

fipsc_status fipsc_st_open_buffer(const void *bytes, size_t size, const char *name,
                                  fipsc_st_file **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_st_file *f = calloc(1, sizeof *f);
    if (f) f->path = strdup(name);
    if (!f || !f->path) {
        free(f);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", name);
    }
    f->bytes = bytes;
    f->size = size;
    return open_common(f, out, err);
}

fipsc_status fipsc_st_open(const char *path, fipsc_st_file **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_mapped_file *map;
    fipsc_status st = fipsc_map_file(path, &map, err);
    if (st != FIPSC_OK) return st;
    fipsc_st_file *f = calloc(1, sizeof *f);
    if (f) f->path = strdup(path);
    if (!f || !f->path) {
        free(f);
        fipsc_unmap_file(map);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    }
    f->map = map;
    f->bytes = map->data;
    f->size = map->size;
    return open_common(f, out, err);
}

void fipsc_st_close(fipsc_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    fipsc_name_table_free(&f->by_name);
    fipsc_name_table_free(&f->meta_by_key);
    fipsc_unmap_file(f->map);
    free(f->path);
    free(f);
}

const char *fipsc_st_path(const fipsc_st_file *f) { return f->path; }
uint64_t fipsc_st_header_size(const fipsc_st_file *f) { return f->header_size; }
int fipsc_st_count(const fipsc_st_file *f) { return f->n_tensors; }

const fipsc_st_tensor *fipsc_st_at(const fipsc_st_file *f, int i)
{
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const fipsc_st_tensor *fipsc_st_find(const fipsc_st_file *f, const char *name)
{
    int i = fipsc_name_table_get(&f->by_name, name);
    return i >= 0 ? &f->tensors[i] : NULL;
}

int fipsc_st_meta_count(const fipsc_st_file *f) { return f->n_meta; }

const char *fipsc_st_meta_key(const fipsc_st_file *f, int i)
{
    return i >= 0 && i < f->n_meta ? f->meta_keys[i] : NULL;
}

const char *fipsc_st_meta_value(const fipsc_st_file *f, int i)
{
    return i >= 0 && i < f->n_meta ? f->meta_values[i] : NULL;
}

const char *fipsc_st_meta(const fipsc_st_file *f, const char *key)
{
    int i = fipsc_name_table_get(&f->meta_by_key, key);
    return i >= 0 ? f->meta_values[i] : NULL;
}

/* ---------------------------------------------------------------- element access */

int64_t fipsc_st_numel(const fipsc_st_tensor *t) { return fipsc_shape_numel(t->ndim, t->shape); }

const float *fipsc_st_f32_view(const fipsc_st_tensor *t)
{
    if (t->dtype != FIPSC_F32 || (uintptr_t)t->data % _Alignof(float) != 0) return NULL;
    return t->data;
}

fipsc_status fipsc_st_copy_f32(const fipsc_st_tensor *t, float *dst, fipsc_error *err)
{
    if (!fipsc_dtype_is_float(t->dtype))
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: tensor '%s': dtype %s cannot be converted to float32 (only F32, F16, "
                          "BF16)",
                          t->file, t->name, fipsc_dtype_name(t->dtype));
    return fipsc_convert_to_f32(t->dtype, t->data, (size_t)fipsc_st_numel(t), dst, err);
}

fipsc_status fipsc_st_to_f32(const fipsc_st_tensor *t, float **out_malloced, fipsc_error *err)
{
    *out_malloced = NULL;
    size_t n = (size_t)fipsc_st_numel(t);
    float *dst = malloc((n ? n : 1) * sizeof *dst);
    if (!dst)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: tensor '%s': out of memory for %zu floats",
                          t->file, t->name, n);
    fipsc_status st = fipsc_st_copy_f32(t, dst, err);
    if (st != FIPSC_OK) {
        free(dst);
        return st;
    }
    *out_malloced = dst;
    return FIPSC_OK;
}

fipsc_status fipsc_st_to_i64(const fipsc_st_tensor *t, int64_t **out_malloced, fipsc_error *err)
{
    *out_malloced = NULL;
    bool is_signed;
    switch (t->dtype) {
    case FIPSC_I8: case FIPSC_I16: case FIPSC_I32: case FIPSC_I64: is_signed = true; break;
    case FIPSC_U8: case FIPSC_U16: case FIPSC_U32: is_signed = false; break;
    default:
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: tensor '%s': dtype %s is not an integer type", t->file, t->name,
                          fipsc_dtype_name(t->dtype));
    }
    size_t n = (size_t)fipsc_st_numel(t), size = fipsc_dtype_size(t->dtype);
    int64_t *dst = malloc((n ? n : 1) * sizeof *dst);
    if (!dst)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: tensor '%s': out of memory for %zu integers",
                          t->file, t->name, n);
    const unsigned char *p = t->data;
    for (size_t i = 0; i < n; i++, p += size) {
        uint64_t u = 0;
        for (size_t k = size; k-- > 0;) u = u << 8 | p[k]; /* little-endian, any alignment */
        if (is_signed && size < 8 && (u >> (8 * size - 1)) & 1) u |= ~(uint64_t)0 << (8 * size);
        memcpy(&dst[i], &u, sizeof u); /* two's complement reinterpretation */
    }
    *out_malloced = dst;
    return FIPSC_OK;
}
