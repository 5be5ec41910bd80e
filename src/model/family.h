/* Model families: what fipsc knows about an architecture, behind one interface.
 *
 * A family (src/families/<name>/family.c) is one fipsc_family value: how to recognise and load
 * its checkpoints, its configuration as JSON (the compressed format stores it), which tensors are
 * its own, how to (re)build its view of a model's tensors, how to describe it, export it and
 * compress it by default, and capability tables for what its models can do:
 *
 *   lm        a language model: logits, MLP capture, KV-cached decoding sessions
 *             -> eval (perplexity, KL), generate, sample, token calibration
 *   image     an image classifier: preprocessing, logits, MLP capture
 *             -> classify, eval-images, image calibration
 *   encoder   a sentence encoder: tokenize, embed, MLP capture, distillation
 *             -> embed, eval-sts, sentence calibration, distill
 *
 * The families are listed once, in src/families/registry.c (families/registry.h: the list and
 * fipsc_model_load, which probes them in that order).
 * Nothing above this layer (compress/, eval/, cli/) names a family: it asks the registry or the
 * model's family for a capability. Adding a family: docs/ARCHITECTURE.md, "Adding a family". */
#ifndef FIPSC_MODEL_FAMILY_H
#define FIPSC_MODEL_FAMILY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "fips/fips.h"
#include "formats/corpus.h"
#include "formats/ggml_blocks.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"
#include "formats/image.h"
#include "model/capture.h"
#include "model/model.h"

/* ------------------------------------------------------------------------------------------ */
/* Capabilities.                                                                               */

/* End-to-end distillation of a compressed model against its original (ALGORITHM.md §9; the
 * trainer: model/distill.h): options and report, the same for every family that offers it. */
typedef struct fipsc_distill_progress {
    int step, steps; /* step in 1..steps */
    double loss;     /* this batch's loss */
    float lr;
} fipsc_distill_progress;

typedef struct fipsc_distill_opts {
    int steps;           /* optimiser steps */
    int batch;           /* examples per step: sentences, sequences */
    float lr, lr_min;    /* cosine schedule from lr to lr_min */
    float relational;    /* λ of the relational term (mean squared difference of the batch's cosine
                            matrices; 0 = off) */
    float hidden;        /* μ of the hidden-state term (0 = off; needs the original) */
    fipsc_adamw adamw;
    uint64_t seed;       /* the batches' shuffle */
    void (*progress)(void *user, const fipsc_distill_progress *p);
    void *progress_user;
    int progress_every;  /* steps between progress calls (and the last step) */
} fipsc_distill_opts;

/* 400 steps of 128 sentences, lr 3e-4 → 1e-6, relational weight 10, no hidden-state term,
 * AdamW(0.9, 0.999, 1e-8, no weight decay), seed 1: the best of the settings measured on STS-B
 * (BENCHMARKS.md, "Compression of the sentence encoder"). */
void fipsc_distill_defaults(fipsc_distill_opts *o);

typedef struct fipsc_distill_report {
    int steps;
    int items;           /* examples with something to learn: sentences with a token, sequences of
                            two tokens or more */
    int64_t rows;        /* their token rows (a language model: its scored positions) */
    int64_t params;      /* trained parameters: Σ d·r of the bases + Σ movable entries of V */
    int first_layer;     /* the first layer whose MLP is compressed: the gradient stops there */
    double score_before, score_after; /* the objective's score over every example: the sentence
                            encoder's mean cos(e_c, e_o), a language model's mean KL(p_o ‖ p_c) */
    double seconds;
} fipsc_distill_report;

/* A language model's facts. */
typedef struct fipsc_lm_info {
    int vocab_size;
    int context;      /* positions a sequence may have (0: unlimited) */
    int bos_token, eos_token;
    int64_t cache_bytes_per_position; /* a session's KV cache per position of one sequence */
} fipsc_lm_info;

/* A KV-cached decoding session of one sequence (the family's own type). */
typedef struct fipsc_lm_session fipsc_lm_session;

typedef struct fipsc_lm_ops {
    void (*info)(const fipsc_model *m, fipsc_lm_info *out);
    /* logits [batch·len, vocab] (NULL: none) of batch sequences of len tokens from position 0;
     * capture (NULL: none) records every captured block's MLP input and output rows. */
    fipsc_status (*forward)(const fipsc_model *m, const int32_t *tokens, int batch, int len, float *logits,
                            fipsc_capture *capture, fipsc_error *err);
    /* Sessions: up to max_len positions; prefill feeds tokens and gives the last position's
     * logits [vocab]; decode feeds one more token. reset empties the sequence. */
    fipsc_status (*session_new)(const fipsc_model *m, int max_len, fipsc_lm_session **out, fipsc_error *err);
    void (*session_free)(fipsc_lm_session *s);
    void (*session_reset)(fipsc_lm_session *s);
    fipsc_status (*session_prefill)(fipsc_lm_session *s, const int32_t *tokens, int n, float *last_logits,
                                    fipsc_error *err);
    fipsc_status (*session_decode)(fipsc_lm_session *s, int32_t token, float *logits, fipsc_error *err);
    /* Optional (NULL: sequences are decoded one at a time): a lockstep session of `batch`
     * sequences, each with its own cache, all fed one token a step; batch_step feeds tokens[b]
     * to sequence b and writes logits [batch, vocab]. Freed and reset by session_free/reset. */
    fipsc_status (*batch_session_new)(const fipsc_model *m, int batch, int max_len, fipsc_lm_session **out,
                                      fipsc_error *err);
    fipsc_status (*batch_step)(fipsc_lm_session *s, const int32_t *tokens, float *logits, fipsc_error *err);
    /* Optional (NULL: the family has no distiller): trains m's compressed MLPs (U and the kept
     * entries of V) so that its next-token distributions on the sequences of c approach those of
     * original, the uncompressed model m was made from (mean KL(p_o ‖ p_c)); and the options it
     * trains best with. */
    fipsc_status (*distill)(fipsc_model *m, const fipsc_model *original, const fipsc_corpus *c,
                            const fipsc_distill_opts *o, fipsc_distill_report *rep, fipsc_error *err);
    void (*distill_defaults)(fipsc_distill_opts *o);
} fipsc_lm_ops;

/* An image classifier's facts. */
typedef struct fipsc_image_info {
    int channels, height, width; /* the input the forward takes, [channels, height, width] */
    int tokens;                  /* rows per image through the blocks (each captured MLP's rows) */
    int n_labels;
    const char *const *labels;   /* [n_labels] class names */
    const fipsc_image_preproc *preproc; /* how a file becomes that input */
} fipsc_image_info;

typedef struct fipsc_image_ops {
    void (*info)(const fipsc_model *m, fipsc_image_info *out);
    /* logits [n, n_labels] of n preprocessed images [n, channels, height, width]; capture as above */
    fipsc_status (*forward)(const fipsc_model *m, const float *pixels, int n, float *logits, fipsc_capture *capture,
                            fipsc_error *err);
    /* Optional (NULL: the family has no distiller): trains m's compressed MLPs so that its logits
     * of the n preprocessed images approach those of original, the uncompressed model m was made
     * from (mean KL of the softmaxes); and the options it trains best with. */
    fipsc_status (*distill)(fipsc_model *m, const fipsc_model *original, const float *pixels, int n,
                            const fipsc_distill_opts *o, fipsc_distill_report *rep, fipsc_error *err);
    void (*distill_defaults)(fipsc_distill_opts *o);
} fipsc_image_ops;

/* A sentence encoder's facts. */
typedef struct fipsc_encoder_info {
    int dim;        /* embedding width */
    int max_tokens; /* tokens kept per sentence */
} fipsc_encoder_info;

typedef struct fipsc_encoder_ops {
    void (*info)(const fipsc_model *m, fipsc_encoder_info *out);
    /* Token ids of text (len bytes of UTF-8), malloc'ed into *ids (*n may be 0). */
    fipsc_status (*tokenize)(const fipsc_model *m, const char *text, size_t len, int32_t **ids, int *n,
                             fipsc_error *err);
    /* Unit-length embeddings out [n, dim] of n token sequences (the first max_tokens of each);
     * capture as above (one row per kept token). */
    fipsc_status (*encode)(const fipsc_model *m, int n, const int32_t *const *ids, const int *lens, float *out,
                           fipsc_capture *capture, fipsc_error *err);
    /* tokenize + encode of n texts (lens: byte lengths, or NULL for NUL-terminated): out [n, dim]. */
    fipsc_status (*embed)(const fipsc_model *m, int n, const char *const *texts, const size_t *lens, float *out,
                          fipsc_error *err);
    /* Trains m's compressed MLPs (U and the kept entries of V) so that its embeddings of the n
     * sentences approach target [n, dim]; NULL where the family has no distiller. original:
     * NULL, or the uncompressed model (for the hidden-state term). */
    fipsc_status (*distill)(fipsc_model *m, const fipsc_model *original, int n, const int32_t *const *ids,
                            const int *lens, const float *target, const fipsc_distill_opts *o,
                            fipsc_distill_report *rep, fipsc_error *err);
} fipsc_encoder_ops;

/* ------------------------------------------------------------------------------------------ */
/* The family.                                                                                 */

/* How sure a family is that a path is one of its checkpoints. */
typedef enum fipsc_probe {
    FIPSC_PROBE_NO = 0, /* not this family's */
    FIPSC_PROBE_MAYBE,  /* the family's kind of path, but not loadable as it is: why says why, and
                           the family's loader words the error (e.g. a config.json of an
                           unsupported architecture) */
    FIPSC_PROBE_YES     /* this family's checkpoint */
} fipsc_probe;

/* The compression settings a family's models train best with (BENCHMARKS.md); any option the
 * user gives wins (the command line then takes lr_min = lr / 100 unless given too). */
typedef struct fipsc_family_defaults {
    const char *groups;
    fipsc_fips_mask_kind schedule;
    fipsc_fips_mode mode;
    double sparsity;
    int steps, batch_rows;
    float lr, lr_min, weight_decay;
    int lr_width; /* the model width d the learning rates were tuned at: a wider model's default
                     lr (and lr_min) is scaled by lr_width/d (0: never scaled). Adam moves every
                     entry by about lr whatever the width, and a wider layer sums more of those
                     moves per output: the 1/fan-in rule of μP for hidden matrices under Adam */
    bool bf16_moments; /* V's Adam moments in bfloat16 with stochastic rounding (--adam-moments) */
} fipsc_family_defaults;

/* Where a tensor's parameters count in `inspect` and reports. */
typedef enum fipsc_tensor_role {
    FIPSC_ROLE_OF_MLP = 0, FIPSC_ROLE_OF_ATTENTION, FIPSC_ROLE_OF_EMBEDDINGS, FIPSC_ROLE_OF_OTHER
} fipsc_tensor_role;

typedef struct fipsc_family {
    const char *name;  /* short and stable: the compressed format's "architecture" ("llama") */
    const char *title; /* for people: "Llama family (LLaMA, Mistral, Qwen2, llama2.c)" */

    /* Loading. probe is cheap (it reads at most a configuration file); load fills the model,
     * its view and m->mlps, and checks every weight for NaN/Inf. */
    fipsc_probe (*probe)(const char *path, fipsc_error *why);
    fipsc_status (*load)(const char *path, fipsc_model **out, fipsc_error *err);
    /* Optional: the configuration and every tensor's name and shape, checked as load checks them
     * (the model is bound), but no weight is read or converted (tensor data NULL, values not
     * checked): for `inspect`, in the time and memory of reading headers. NULL: inspect loads. */
    fipsc_status (*load_shapes)(const char *path, fipsc_model **out, fipsc_error *err);

    /* The configuration as JSON text (malloc'ed; the compressed format's "config" entry), and
     * back into an empty model (m gets the family, arch_name and a view without weights). */
    fipsc_status (*config_to_json)(const fipsc_model *m, char **out, fipsc_error *err);
    fipsc_status (*config_from_json)(fipsc_model *m, const char *text, const char *origin, fipsc_error *err);
    /* Whether name is one of the family's tensors for m's configuration. */
    bool (*is_tensor)(const fipsc_model *m, const char *name);
    /* Every weight access of the family's runtime goes through fipsc_model_require or a
     * fipsc_linear, so F16/BF16 tensors may stay in 16 bits (the compressed reader keeps them). */
    bool keeps_16bit;
    /* (Re)builds the view and m->mlps from m's tensors, binding compressed weights to their
     * factored forms (fipsc_model_bind_weight); after tensors change, call it again. */
    fipsc_status (*bind)(fipsc_model *m, fipsc_error *err);
    /* Where name's parameters count; NULL: by name (fipsc_tensor_role_by_name). */
    fipsc_tensor_role (*tensor_role)(const fipsc_model *m, const char *name);
    /* The configuration for `inspect`: a JSON object and its text form (two lines, malloc'ed). */
    fipsc_status (*describe)(const fipsc_model *m, cJSON **json, char **text, fipsc_error *err);
    /* Writes m (dense MLPs) in the family's standard form for other runtimes (a Hugging Face
     * directory, or one .safetensors file): export_form says which, for help and messages. */
    fipsc_status (*export_dense)(const fipsc_model *m, const char *path, bool overwrite, fipsc_error *err);
    const char *export_form;
    bool export_is_directory; /* path names a directory (config.json + model.safetensors) */
    /* Writes m (dense MLPs) as a GGUF file for llama.cpp, matrices stored as type, the tokenizer
     * keys copied from vocab (a GGUF file of the same vocabulary), else written from tok (a Hugging
     * Face tokenizer), else a labelled placeholder vocabulary; NULL where the family has no
     * llama.cpp architecture. */
    fipsc_status (*export_gguf)(const fipsc_model *m, const char *path, fipsc_ggml_type type,
                                const struct fipsc_gguf *vocab, const struct fipsc_tokenizer *tok, bool overwrite,
                                fipsc_error *err);
    const fipsc_family_defaults *defaults;

    const fipsc_lm_ops *lm;
    const fipsc_image_ops *image;
    const fipsc_encoder_ops *encoder;
} fipsc_family;

/* The capability tables of m's family (NULL when it has none or m has no family). */
const fipsc_lm_ops *fipsc_model_lm(const fipsc_model *m);
const fipsc_image_ops *fipsc_model_image(const fipsc_model *m);
const fipsc_encoder_ops *fipsc_model_encoder(const fipsc_model *m);

/* The same, failing with a message that says what m is and what it is not ("stories260K.bin
 * (llama2.c) is not an image classifier"). */
fipsc_status fipsc_model_need_lm(const fipsc_model *m, const fipsc_lm_ops **ops, fipsc_error *err);
fipsc_status fipsc_model_need_image(const fipsc_model *m, const fipsc_image_ops **ops, fipsc_error *err);
fipsc_status fipsc_model_need_encoder(const fipsc_model *m, const fipsc_encoder_ops **ops, fipsc_error *err);

/* The role of a tensor by its name alone (Hugging Face and fipsc naming conventions): what
 * families without their own tensor_role, and files without a family, count by. */
fipsc_tensor_role fipsc_tensor_role_by_name(const char *name, int ndim);

#endif
