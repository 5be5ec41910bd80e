/* Sets of decoded images from a directory or an IDX file, with exact-pixel exclusion (see
 * src/formats/image_list.h).
 *
 * Exclusion: the excluded images go into an open-addressing hash table keyed by a 64-bit FNV-1a
 * hash of (width, height, channels, pixels); a candidate whose hash is found is compared byte by
 * byte, so a hash collision never excludes a different image. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "formats/image_list.h"
#include "core/path.h"

void fipsc_image_list_free(fipsc_image_list *l)
{
    if (!l) return;
    for (int i = 0; i < l->n; i++) {
        fipsc_image_free(&l->images[i]);
        free(l->names[i]);
    }
    free(l->images);
    free(l->names);
    memset(l, 0, sizeof *l);
}

fipsc_status fipsc_image_list_append(fipsc_image_list *dst, fipsc_image_list *src, fipsc_error *err)
{
    if (src->n == 0) return FIPSC_OK;
    const size_t n = (size_t)dst->n + (size_t)src->n;
    fipsc_image *images = realloc(dst->images, n * sizeof *images);
    if (images) dst->images = images;
    char **names = images ? realloc(dst->names, n * sizeof *names) : NULL;
    if (names) dst->names = names;
    if (!images || !names) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %zu images", n);
    memcpy(dst->images + dst->n, src->images, (size_t)src->n * sizeof *images);
    memcpy(dst->names + dst->n, src->names, (size_t)src->n * sizeof *names);
    dst->n = (int)n;
    free(src->images);
    free(src->names);
    memset(src, 0, sizeof *src);
    return FIPSC_OK;
}

bool fipsc_image_list_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* ------------------------------------------------------------------ exclusion set */

static size_t image_bytes(const fipsc_image *img)
{
    return (size_t)img->width * (size_t)img->height * (size_t)img->channels;
}

static uint64_t image_hash(const fipsc_image *img)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 */
    const int dims[3] = {img->width, img->height, img->channels};
    for (int i = 0; i < 3; i++) {
        h ^= (uint64_t)(uint32_t)dims[i];
        h *= 1099511628211ULL;
    }
    size_t n = image_bytes(img);
    for (size_t i = 0; i < n; i++) {
        h ^= img->pixels[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static bool same_image(const fipsc_image *a, const fipsc_image *b)
{
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->pixels, b->pixels, image_bytes(a)) == 0;
}

typedef struct exclusion {
    const fipsc_image_list *list;
    size_t cap;       /* power of two, at least twice the entries */
    int *slot;        /* [cap]: index into list, or -1 */
    uint64_t *hash;   /* [cap] */
} exclusion;

static fipsc_status exclusion_build(const fipsc_image_list *list, exclusion *ex, fipsc_error *err)
{
    memset(ex, 0, sizeof *ex);
    if (!list || list->n == 0) return FIPSC_OK;
    ex->list = list;
    ex->cap = 16;
    while (ex->cap < 2 * (size_t)list->n) ex->cap *= 2;
    ex->slot = malloc(ex->cap * sizeof *ex->slot);
    ex->hash = malloc(ex->cap * sizeof *ex->hash);
    if (!ex->slot || !ex->hash) {
        free(ex->slot);
        free(ex->hash);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the exclusion set");
    }
    for (size_t i = 0; i < ex->cap; i++) ex->slot[i] = -1;
    for (int k = 0; k < list->n; k++) {
        uint64_t h = image_hash(&list->images[k]);
        size_t i = (size_t)h & (ex->cap - 1);
        while (ex->slot[i] >= 0) i = (i + 1) & (ex->cap - 1);
        ex->slot[i] = k;
        ex->hash[i] = h;
    }
    return FIPSC_OK;
}

static bool exclusion_has(const exclusion *ex, const fipsc_image *img)
{
    if (!ex->list) return false;
    uint64_t h = image_hash(img);
    for (size_t i = (size_t)h & (ex->cap - 1); ex->slot[i] >= 0; i = (i + 1) & (ex->cap - 1))
        if (ex->hash[i] == h && same_image(&ex->list->images[ex->slot[i]], img)) return true;
    return false;
}

static void exclusion_free(exclusion *ex)
{
    free(ex->slot);
    free(ex->hash);
}

/* ------------------------------------------------------------------ building a list */

/* Appends img (taken over) under name (copied). */
static fipsc_status list_push(fipsc_image_list *l, int *cap, fipsc_image *img, const char *name,
                              fipsc_error *err)
{
    if (l->n == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        fipsc_image *ni = realloc(l->images, (size_t)nc * sizeof *ni);
        if (ni) l->images = ni;
        char **nn = ni ? realloc(l->names, (size_t)nc * sizeof *nn) : NULL;
        if (nn) l->names = nn;
        if (!ni || !nn) {
            fipsc_image_free(img);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %d images", nc);
        }
        *cap = nc;
    }
    char *copy = strdup(name);
    if (!copy) {
        fipsc_image_free(img);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    l->images[l->n] = *img;
    l->names[l->n] = copy;
    l->n++;
    memset(img, 0, sizeof *img);
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ directory */

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the file starts like an image fipsc_image_decode reads (its magic numbers). */
static bool starts_like_image(const char *path)
{
    unsigned char b[8];
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    size_t n = fread(b, 1, sizeof b, fp);
    fclose(fp);
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && memcmp(b, png, 8) == 0) return true;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return true;
    return n >= 3 && b[0] == 'P' && b[1] && strchr("2356", b[1]) && isspace(b[2]);
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The names of the regular files directly inside dir, sorted. */
static fipsc_status list_files(const char *dir, char ***out, int *n_out, fipsc_error *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return fipsc_fail(err, errno == ENOENT ? FIPSC_ERR_NOT_FOUND : FIPSC_ERR_IO,
                          "%s: cannot read the directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    fipsc_status st = FIPSC_OK;
    struct dirent *e;
    char path[4200];
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ".", "..", hidden files */
        if ((st = fipsc_path_join(path, sizeof path, dir, e->d_name, err))) break;
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (n == cap) {
            int nc = cap ? 2 * cap : 256;
            char **nn = realloc(names, (size_t)nc * sizeof *nn);
            if (!nn) {
                st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory listing files", dir);
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        else n++;
    }
    closedir(d);
    if (st) {
        free_names(names, n);
        return st;
    }
    if (n > 1) qsort(names, (size_t)n, sizeof *names, compare_names);
    *out = names;
    *n_out = n;
    return FIPSC_OK;
}

fipsc_status fipsc_image_list_read_dir(const char *dir, const fipsc_image_list *exclude, int max,
                                       fipsc_image_list *out, int *excluded, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    if (excluded) *excluded = 0;
    char **names;
    int n_files;
    fipsc_status st = list_files(dir, &names, &n_files, err);
    if (st) return st;
    exclusion ex;
    if ((st = exclusion_build(exclude, &ex, err))) {
        free_names(names, n_files);
        return st;
    }
    int cap = 0, skipped = 0;
    char path[4200];
    for (int i = 0; i < n_files && !st && (max <= 0 || out->n < max); i++) {
        if ((st = fipsc_path_join(path, sizeof path, dir, names[i], err))) break;
        if (!starts_like_image(path)) continue;
        fipsc_image img;
        if ((st = fipsc_image_read(path, &img, err))) break;
        if (exclusion_has(&ex, &img)) {
            fipsc_image_free(&img);
            skipped++;
            continue;
        }
        st = list_push(out, &cap, &img, names[i], err);
    }
    exclusion_free(&ex);
    free_names(names, n_files);
    if (st) {
        fipsc_image_list_free(out);
        return st;
    }
    if (excluded) *excluded = skipped;
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ IDX */

/* Reads exactly n bytes; false on a short read (the caller words the error). */
static bool read_exact(gzFile gz, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(gz, p, chunk);
        if (got <= 0) return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* The reason a read stopped: zlib's message for a corrupt stream, else "the file ends early". */
static fipsc_status short_read(gzFile gz, const char *path, const char *what, fipsc_error *err)
{
    int code = 0;
    const char *msg = gzerror(gz, &code);
    if (code != Z_OK && code != Z_STREAM_END && msg && *msg)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: reading %s: %s", path, what, msg);
    return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: the file ends before %s is complete", path, what);
}

fipsc_status fipsc_image_list_read_idx(const char *path, const fipsc_image_list *exclude, int max,
                                       fipsc_image_list *out, int *excluded, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    if (excluded) *excluded = 0;
    gzFile gz = gzopen(path, "rb"); /* reads plain files too (transparent mode) */
    if (!gz)
        return fipsc_fail(err, errno == ENOENT ? FIPSC_ERR_NOT_FOUND : FIPSC_ERR_IO, "%s: %s", path,
                          errno ? strerror(errno) : "cannot open");
    unsigned char head[16];
    fipsc_status st = FIPSC_OK;
    if (!read_exact(gz, head, 4)) {
        st = short_read(gz, path, "the IDX header", err);
    } else if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != 0x03) {
        st = fipsc_fail(err, FIPSC_ERR_FORMAT,
                        "%s: not an IDX image file (magic %02x %02x %02x %02x; expected 00 00 08 03: "
                        "unsigned bytes, 3 dimensions)", path, head[0], head[1], head[2], head[3]);
    } else if (!read_exact(gz, head + 4, 12)) {
        st = short_read(gz, path, "the IDX header", err);
    }
    uint32_t n = 0, rows = 0, cols = 0;
    if (!st) {
        n = be32(head + 4);
        rows = be32(head + 8);
        cols = be32(head + 12);
        if (rows < 1 || cols < 1 || rows > FIPSC_IMAGE_MAX_SIDE || cols > FIPSC_IMAGE_MAX_SIDE ||
            (uint64_t)rows * cols > (uint64_t)FIPSC_IMAGE_MAX_PIXELS || n > 0x7fffffffu)
            st = fipsc_fail(err, FIPSC_ERR_FORMAT,
                            "%s: IDX sizes %u images of %u x %u pixels are out of range (1 to %d per side)",
                            path, n, rows, cols, FIPSC_IMAGE_MAX_SIDE);
    }
    exclusion ex = {0};
    if (!st) st = exclusion_build(exclude, &ex, err);
    int cap = 0, skipped = 0;
    char name[4300];
    for (uint32_t i = 0; !st && i < n && (max <= 0 || out->n < max); i++) {
        fipsc_image img;
        if ((st = fipsc_image_alloc(&img, (int)cols, (int)rows, 1, err))) break;
        if (!read_exact(gz, img.pixels, (size_t)rows * cols)) {
            fipsc_image_free(&img);
            char what[64];
            snprintf(what, sizeof what, "image %u of %u", i, n);
            st = short_read(gz, path, what, err);
            break;
        }
        if (exclusion_has(&ex, &img)) {
            fipsc_image_free(&img);
            skipped++;
            continue;
        }
        if ((st = fipsc_path_format(name, sizeof name, err, "%s#%u", path, i))) {
            fipsc_image_free(&img);
            break;
        }
        st = list_push(out, &cap, &img, name, err);
    }
    exclusion_free(&ex);
    gzclose(gz);
    if (st) {
        fipsc_image_list_free(out);
        return st;
    }
    if (excluded) *excluded = skipped;
    return FIPSC_OK;
}
