/* fipsc: Fine-grained Parameter Sharing (FiPS) compression of transformer MLPs, as a C library.
 *
 * This header is the whole public interface: load a model (a Llama-family LLM, a ViT/DeiT image
 * classifier, the USE-Lite sentence encoder, or a file fipsc compressed), describe it, compress its
 * MLPs, evaluate, use and save the result. Link with `pkg-config --cflags --libs fipsc`.
 *
 *   fipsc_model *m;  fipsc_options *o = fipsc_options_new();  fipsc_report *r;  fipsc_error e;
 *   if (fipsc_load("stories260K.bin", &m, &e) ||
 *       fipsc_options_set(o, "budget", "0.5", &e) ||
 *       fipsc_compress(m, o, NULL, NULL, &r, &e) ||          // m is now compressed
 *       fipsc_save(m, r, "stories260K-fips.safetensors", &e))
 *       fprintf(stderr, "%s\n", e.message);
 *
 * Conventions.
 *   - Every function that can fail returns a fipsc_status (FIPSC_OK = 0) and, on failure, fills
 *     the caller's fipsc_error (which may be NULL) with a precise message: which file, which
 *     tensor, what was wrong. The library never prints and never exits.
 *   - Outputs are written atomically: a failed call leaves no partial file.
 *   - Handles are opaque. A model handle may be used by one thread at a time; different models
 *     may be used from different threads at once (the library keeps no mutable process-wide
 *     state a caller could trip over: OpenBLAS is set to one thread once, fipsc parallelises with
 *     OpenMP itself, and the thread count is per calling thread).
 *   - Results are deterministic: the same inputs and seed give the same bits, whatever the
 *     thread count.
 *   - Strings the library returns through char ** are freed with fipsc_string_free. */
#ifndef FIPSC_H
#define FIPSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the shared library exports: these functions and nothing else. */
#if defined(__GNUC__)
#define FIPSC_API __attribute__((visibility("default")))
#else
#define FIPSC_API
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status and errors.                                                                          */

typedef enum fipsc_status {
    FIPSC_OK = 0,
    FIPSC_ERR_IO,          /* open/read/write/rename/mmap failed */
    FIPSC_ERR_FORMAT,      /* a file is malformed: truncated, corrupt header, bad JSON, ... */
    FIPSC_ERR_SHAPE,       /* shapes disagree with each other or with the configuration */
    FIPSC_ERR_NUMERIC,     /* NaN/Inf in weights or activations, training diverged */
    FIPSC_ERR_NOMEM,       /* an allocation failed */
    FIPSC_ERR_ARG,         /* an impossible option or argument */
    FIPSC_ERR_UNSUPPORTED, /* valid input that fipsc does not handle (architecture, dtype) */
    FIPSC_ERR_NOT_FOUND,   /* a named tensor, key or file does not exist */
    FIPSC_ERR_INTERNAL     /* a broken invariant inside fipsc: a bug */
} fipsc_status;

#define FIPSC_ERROR_MESSAGE_MAX 1024

typedef struct fipsc_error {
    fipsc_status code;
    char message[FIPSC_ERROR_MESSAGE_MAX];
} fipsc_error;

/* A short stable name for a status ("format error"). */
FIPSC_API const char *fipsc_status_name(fipsc_status code);

/* The library's version ("0.1.0"). */
FIPSC_API const char *fipsc_version(void);

/* Uses n threads (n < 1 counts as 1) for the calling thread's later calls; other threads keep
 * their own count (the default: all cores, or OMP_NUM_THREADS). */
FIPSC_API void fipsc_threads_set(int n);

/* Frees a string the library returned. */
FIPSC_API void fipsc_string_free(char *s);

/* ------------------------------------------------------------------------------------------ */
/* Models.                                                                                     */

/* A loaded model: dense as read, or compressed (a file fipsc wrote, or after fipsc_compress). */
typedef struct fipsc_model fipsc_model;

/* Loads path: a llama2.c .bin, a Hugging Face directory or .safetensors (Llama family, ViT/DeiT),
 * a USE-Lite safetensors file, or a compressed file fipsc wrote. Every weight is checked for
 * NaN/Inf. */
FIPSC_API fipsc_status fipsc_load(const char *path, fipsc_model **out, fipsc_error *err);
FIPSC_API void fipsc_free(fipsc_model *m);

/* The model's family ("llama", "vit", "use-lite", ...) and architecture as its configuration names it
 * ("LlamaForCausalLM", "llama2.c", ...). */
FIPSC_API const char *fipsc_family_name(const fipsc_model *m);
FIPSC_API const char *fipsc_architecture(const fipsc_model *m);

/* What a model can do: a bit set. */
enum {
    FIPSC_CAN_GENERATE = 1 << 0, /* a language model: fipsc_generate, fipsc_perplexity */
    FIPSC_CAN_CLASSIFY = 1 << 1, /* an image classifier: fipsc_classify */
    FIPSC_CAN_EMBED = 1 << 2     /* a sentence encoder: fipsc_embed, fipsc_eval_sts */
};
FIPSC_API unsigned fipsc_capabilities(const fipsc_model *m);

/* Whether some of the model's MLPs are compressed. */
FIPSC_API bool fipsc_is_compressed(const fipsc_model *m);

/* What a checkpoint or safetensors file holds, as the JSON document `fipsc inspect --json` prints
 * (format, architecture, parameter counts by role, compression, metadata, tensors). A safetensors
 * file that is no model fipsc knows is still described (tensors, metadata, counts by name). */
FIPSC_API fipsc_status fipsc_describe(const char *path, char **json, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Compression.                                                                                */

/* A compression's settings, by the names of `fipsc compress`'s options without the dashes, with
 * values as text: method budget sparsity nm rank groups schedule mode steps lr lr-min
 * weight-decay batch seed u-dtype v-dtype storage divergence-retries holdout strict sequential capture-all ("true"/"false"),
 * init ("svd"/"whitened") whiten-alpha adam-moments ("f32"/"bf16"), memory:
 * max-memory ("20G", "none") spill ("auto"/"always"/"never") scratch-dir, the calibration source calib-corpus calib-samples calib-len calib-images calib-idx calib-exclude
 * calib-count calib-sentences calib-rows calib-text tokenizer, and checkpoint-dir, resume
 * ("true"/"false"). Unset training options take the model's family defaults (`fipsc compress
 * --help` lists them; the learning rate scaled down for models wider than the family's). */
typedef struct fipsc_options fipsc_options;

FIPSC_API fipsc_options *fipsc_options_new(void); /* NULL when out of memory */
/* FIPSC_ERR_ARG for an unknown name or a bad value, with the command line's message. */
FIPSC_API fipsc_status fipsc_options_set(fipsc_options *o, const char *name, const char *value, fipsc_error *err);
FIPSC_API void fipsc_options_free(fipsc_options *o);

/* Progress of a compression, for a callback. */
typedef struct fipsc_progress {
    const char *stage;    /* "calibrate", "group-start", "step", "group-done" or "retry" */
    const char *message;  /* calibrate: what is happening; retry: why training diverged */
    int group, n_groups;  /* 0-based group, and how many */
    int step, steps;      /* step: within the group's training */
    double loss;          /* step: the last training loss */
    double elapsed, eta;  /* seconds since the run started, estimated seconds left (< 0: unknown) */
} fipsc_progress;

typedef void (*fipsc_progress_callback)(void *user, const fipsc_progress *p);

/* What a compression did. */
typedef struct fipsc_report fipsc_report;

/* Compresses m's MLPs in place with FiPS (or the baseline the options name): calibration on the
 * original m, then group by group, initialisation, training and replacement. On failure m may
 * hold some compressed groups and should be freed. progress (may be NULL) is called from the
 * calling thread. */
FIPSC_API fipsc_status fipsc_compress(fipsc_model *m, const fipsc_options *o, fipsc_progress_callback progress,
                            void *user, fipsc_report **report, fipsc_error *err);

/* The report as `fipsc compress --report` writes it (JSON: options, per group and matrix errors,
 * nnz, parameters, bytes, times), and as the table `fipsc compress` prints. */
FIPSC_API fipsc_status fipsc_report_json(const fipsc_report *r, char **json, fipsc_error *err);
FIPSC_API fipsc_status fipsc_report_table(const fipsc_report *r, char **text, fipsc_error *err);

typedef struct fipsc_totals {
    int groups;
    int64_t dense_params, kept_params; /* MLP parameters of the whole model, before and after */
    int64_t dense_bytes, stored_bytes; /* MLP bytes, before and after */
    double seconds;
} fipsc_totals;
FIPSC_API void fipsc_report_totals(const fipsc_report *r, fipsc_totals *out);
FIPSC_API void fipsc_report_free(fipsc_report *r);

/* Writes m in fipsc's compressed safetensors format (docs/FORMAT.md), which fipsc_load and the
 * `fipsc` commands read. With the report of the compression that made m (or NULL), U is stored
 * in its u-dtype and the file records the run's options, byte for byte as `fipsc compress`. */
FIPSC_API fipsc_status fipsc_save(const fipsc_model *m, const fipsc_report *r, const char *path, fipsc_error *err);

/* Writes m with dense MLPs in its family's standard form for other runtimes: a Hugging Face
 * directory or a .safetensors file (`fipsc export --help`). Compressed MLPs are first
 * reconstructed in place (each matrix U·V_i, in its original orientation): m stays usable, now
 * dense. */
FIPSC_API fipsc_status fipsc_export(fipsc_model *m, const char *path, bool overwrite, fipsc_error *err);

/* Writes m as a GGUF file for llama.cpp (language models of a family with a llama.cpp
 * architecture), compressed MLPs reconstructed as for fipsc_export. type: "f32", "f16", "bf16",
 * "q8_0" or "q4_0" (the matrices; norms stay F32, a matrix whose rows are not whole 32-value
 * blocks is stored F16); Q8_0/Q4_0 blocks are bit-exact to llama.cpp's quantizers. vocab_from:
 * a GGUF file of the same vocabulary whose tokenizer is copied (e.g. the GGUF the model came
 * from), or NULL for a labelled placeholder vocabulary. */
FIPSC_API fipsc_status fipsc_export_gguf(fipsc_model *m, const char *path, const char *type, const char *vocab_from,
                                         bool overwrite, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Using a model.                                                                              */

/* Language models: the vocabulary size (0 for other models). */
FIPSC_API int fipsc_vocab_size(const fipsc_model *m);

/* Perplexity on a token corpus (fipsc's binary corpus or a text file of token ids, as
 * `fipsc eval` reads), and, with a reference model (or NULL), the KL divergence to it. */
typedef struct fipsc_lm_scores {
    int sequences;
    int64_t predicted;     /* scored positions */
    double nll, ppl;       /* mean negative log-likelihood (nats per token), its exp */
    double ref_ppl;        /* the reference's perplexity (NaN without one) */
    double kl_mean, kl_max;/* KL(reference ‖ m) per position (NaN without one) */
    double top1_agreement; /* fraction of positions whose most likely tokens agree (NaN ...) */
} fipsc_lm_scores;
FIPSC_API fipsc_status fipsc_perplexity(const fipsc_model *m, const char *corpus_path, const fipsc_model *ref,
                              fipsc_lm_scores *out, fipsc_error *err);

/* Continues prompt[0..n_prompt) (NULL/0: the BOS token) with up to n_new sampled tokens written
 * to out; *n_out is how many (fewer when the model ends the sequence). temperature 0 is greedy;
 * top_p in (0, 1]. The same seed gives the same tokens. */
FIPSC_API fipsc_status fipsc_generate(const fipsc_model *m, const int32_t *prompt, int n_prompt, int n_new, float temperature,
                            float top_p, uint64_t seed, int32_t *out, int *n_out, fipsc_error *err);

/* Image classifiers: the classes, and the class of an image file (PNG, JPEG, PPM/PGM),
 * preprocessed as the model's configuration says. probs (may be NULL) receives the softmax over
 * the fipsc_label_count classes. */
FIPSC_API int fipsc_label_count(const fipsc_model *m);
FIPSC_API const char *fipsc_label_name(const fipsc_model *m, int label);
FIPSC_API fipsc_status fipsc_classify(const fipsc_model *m, const char *image_path, int *label, float *probs,
                            fipsc_error *err);

/* Sentence encoders: the embedding width, the unit-length embedding out[dim] of a UTF-8
 * sentence, and the Spearman and Pearson correlations of cosine similarity with the gold scores
 * of an STS .tsv file (`fipsc eval-sts`). */
FIPSC_API int fipsc_embedding_dim(const fipsc_model *m);
FIPSC_API fipsc_status fipsc_embed(const fipsc_model *m, const char *sentence, float *out, fipsc_error *err);
FIPSC_API fipsc_status fipsc_eval_sts(const fipsc_model *m, const char *tsv_path, double *spearman, double *pearson,
                            fipsc_error *err);

#ifdef __cplusplus
}
#endif

#endif
