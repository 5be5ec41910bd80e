/* The seed generator's shared pieces (fuzz/make_seeds.c): where seeds go, byte buffers, writing
 * a seed, the library's writers through a temporary directory, and one function per group of
 * fuzz targets, each in its own file:
 *   make_seeds_weights.c  safetensors (single files, sharded with an index), TF.js
 *   make_seeds_configs.c  config.json of each family, image preprocessing, sentence encoder
 *   make_seeds_data.c     token corpora, images, IDX images, SentencePiece vocabularies, STS files
 *   make_seeds_models.c   llama2.c files, compressed models, whole checkpoints for the loader,
 *                         compression checkpoints
 * Every seed is deterministic. */
#ifndef FIPSC_FUZZ_MAKE_SEEDS_H
#define FIPSC_FUZZ_MAKE_SEEDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"
#include "formats/safetensors.h"

/* DIR of `make_seeds DIR`, and a temporary directory inside it for the library's writers. */
extern const char *seed_out_dir;
extern char seed_temp_dir[4096];

/* Stops the program with a message. */
_Noreturn void seed_die(const char *what);

/* Stops the program with err's message unless st is FIPSC_OK. */
void seed_check(fipsc_status st, const fipsc_error *err);

/* buf[cap] = the printf-style path; a path that does not fit stops the program. */
__attribute__((format(printf, 3, 4))) void seed_path(char *buf, size_t cap, const char *fmt, ...);

/* ------------------------------------------------------------------ byte buffers */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

/* Appends n bytes (a string without its NUL, a float, an int32, little-endian as in memory). */
void seed_put(buf *b, const void *data, size_t n);
void seed_puts(buf *b, const char *s);
void seed_put_f32(buf *b, float f);
void seed_put_i32(buf *b, int32_t v);

/* Writes DIR/target/name. */
void seed_write(const char *target, const char *name, const void *data, size_t n);
void seed_write_text(const char *target, const char *name, const char *text);

/* Appends the bundle separator for a file called name (see fuzz/fuzzutil.h). */
void seed_put_part(buf *b, const char *name);

/* Reads back a file the library wrote into the temporary directory, then removes it. */
void seed_take_temp(const char *name, buf *b);

/* ------------------------------------------------------------------ safetensors */

/* A deterministic pattern of small floats. */
float seed_pattern(int i);

/* Adds tensor name [shape] filled with seed_pattern, stored as dtype `as`. */
void seed_st_add_f32(fipsc_st_writer *w, const char *name, int ndim, const int64_t *shape, fipsc_dtype as);

/* Writes w as the temporary file name and appends its bytes to out. */
void seed_st_write_temp(const fipsc_st_writer *w, const char *name, buf *out);

/* ------------------------------------------------------------------ the seeds, target by target */

void seed_safetensors(void);       /* fuzz_safetensors */
void seed_safetensors_index(void); /* fuzz_safetensors_index */
void seed_tfjs(void);              /* fuzz_tfjs */
void seed_hf_config(void);         /* fuzz_hf_config */
void seed_vit_config(void);        /* fuzz_vit_config */
void seed_gpt2_config(void);       /* fuzz_gpt2_config */
void seed_image_preproc(void);     /* fuzz_image_preproc */
void seed_use_config(void);        /* fuzz_use_config */
void seed_corpus(void);            /* fuzz_corpus */
void seed_image(void);             /* fuzz_image */
void seed_sp_vocab(void);          /* fuzz_sp_vocab */
void seed_idx(void);               /* fuzz_idx */
void seed_checkpoint(void);        /* fuzz_checkpoint */
void seed_sts(void);               /* fuzz_sts */
void seed_llama2c(void);           /* fuzz_llama2c */
void seed_compressed(void);        /* fuzz_compressed */
void seed_model_load(void);        /* fuzz_model_load (and two of fuzz_compressed) */
void seed_gguf(void);              /* fuzz_gguf */
void seed_tokenizer(void);         /* fuzz_tokenizer (reads tests/data/tokenizers/) */

#endif
