/* Writes the seed corpora of the fuzz targets: `make_seeds DIR` creates DIR/<target>/<seed>.
 *
 * Seeds are small valid inputs (plus a few near-misses) that reach deep into each parser; the
 * fuzzer mutates from there. Files are written with the library's own writers where it has one
 * (safetensors, token corpora, config.json), with libpng/libjpeg for images, and by hand for the
 * rest. The output is deterministic, so regenerating changes nothing unless these files change.
 * Regression inputs for fixed crashes are committed beside the generated seeds (named
 * crash-<what>) and are not produced here.
 *
 * This file holds what the seeds share (fuzz/make_seeds.h) and main; the seeds themselves are in
 * make_seeds_weights.c, make_seeds_configs.c, make_seeds_data.c and make_seeds_models.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/path.h"
#include "formats/safetensors.h"
#include "make_seeds.h"

const char *seed_out_dir;
char seed_temp_dir[4096];

_Noreturn void seed_die(const char *what)
{
    fprintf(stderr, "make_seeds: %s\n", what);
    exit(1);
}

void seed_check(fipsc_status st, const fipsc_error *err)
{
    if (st != FIPSC_OK) seed_die(err->message);
}

/* buf[cap] = the printf-style path; a path that does not fit stops the program. */
__attribute__((format(printf, 3, 4))) void seed_path(char *buf, size_t cap, const char *fmt, ...)
{
    fipsc_error err;
    va_list ap;
    va_start(ap, fmt);
    fipsc_status st = fipsc_path_vformat(buf, cap, &err, fmt, ap);
    va_end(ap);
    seed_check(st, &err);
}

/* ------------------------------------------------------------------ byte buffers */

void seed_put(buf *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) seed_die("out of memory");
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

void seed_puts(buf *b, const char *s) { seed_put(b, s, strlen(s)); }

void seed_put_f32(buf *b, float f) { seed_put(b, &f, sizeof f); }

void seed_put_i32(buf *b, int32_t v) { seed_put(b, &v, sizeof v); }

void seed_write(const char *target, const char *name, const void *data, size_t n)
{
    char path[8192];
    seed_path(path, sizeof path, "%s/%s", seed_out_dir, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) seed_die(path);
    seed_path(path, sizeof path, "%s/%s/%s", seed_out_dir, target, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n || fclose(fp) != 0) seed_die(path);
}

void seed_write_text(const char *target, const char *name, const char *text)
{
    seed_write(target, name, text, strlen(text));
}

/* Appends the bundle separator for a file called name (see fuzz/fuzzutil.h). */
void seed_put_part(buf *b, const char *name)
{
    seed_puts(b, "\n@@ ");
    seed_puts(b, name);
    seed_puts(b, "\n");
}

/* Reads back a file the library wrote into the temporary directory, then removes it. */
void seed_take_temp(const char *name, buf *b)
{
    char path[8192];
    seed_path(path, sizeof path, "%s/%s", seed_temp_dir, name);
    char *text;
    size_t size;
    fipsc_error err;
    seed_check(fipsc_read_file(path, &text, &size, &err), &err);
    seed_put(b, text, size);
    free(text);
    unlink(path);
}

/* ------------------------------------------------------------------ safetensors */

/* The tensors' data: the writers borrow it until written, so it is freed at the end. */
static void *kept[256];
static int n_kept;

/* A deterministic pattern of small floats. */
float seed_pattern(int i) { return (float)((i * 7) % 17 - 8) / 16.0f; }

void seed_st_add_f32(fipsc_st_writer *w, const char *name, int ndim, const int64_t *shape,
                     fipsc_dtype as)
{
    int64_t n = fipsc_shape_numel(ndim, shape);
    float *data = malloc((size_t)(n ? n : 1) * sizeof *data);
    for (int64_t i = 0; i < n; i++) data[i] = seed_pattern((int)i);
    fipsc_error err;
    seed_check(fipsc_st_writer_add_f32_as(w, name, as, ndim, shape, data, &err), &err);
    /* the writer borrows data until written: freed at the end */
    if (n_kept == (int)(sizeof kept / sizeof kept[0])) seed_die("too many tensors");
    kept[n_kept++] = data;
}

void seed_st_write_temp(const fipsc_st_writer *w, const char *name, buf *out)
{
    char path[8192];
    seed_path(path, sizeof path, "%s/%s", seed_temp_dir, name);
    fipsc_error err;
    seed_check(fipsc_st_writer_write(w, path, &err), &err);
    seed_take_temp(name, out);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR   (writes DIR/<fuzz target>/<seed files>)\n");
        return 2;
    }
    seed_out_dir = argv[1];
    if (mkdir(seed_out_dir, 0777) != 0 && errno != EEXIST) seed_die(seed_out_dir);
    seed_path(seed_temp_dir, sizeof seed_temp_dir, "%s/.make_seeds-XXXXXX", seed_out_dir);
    if (!mkdtemp(seed_temp_dir)) seed_die("cannot create a temporary directory");
    seed_safetensors();
    seed_safetensors_index();
    seed_hf_config();
    seed_vit_config();
    seed_gpt2_config();
    seed_image_preproc();
    seed_llama2c();
    seed_corpus();
    seed_image();
    seed_tfjs();
    seed_sp_vocab();
    seed_use_config();
    seed_compressed();
    seed_idx();
    seed_model_load();
    seed_sts();
    seed_gguf();
    seed_tokenizer();
    seed_checkpoint();
    rmdir(seed_temp_dir);
    for (int i = 0; i < n_kept; i++) free(kept[i]);
    return 0;
}
