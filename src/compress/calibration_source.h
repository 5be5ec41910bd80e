/* Where a compression's calibration rows come from, as a user states it: the compress command's
 * --calib-* options, or the "calib-*" keys of the public API's options. Which fields apply depends
 * on what the model is (src/model/family.h):
 *
 *   language model     corpus FILE (binary or text token corpus); or text FILE (UTF-8), tokenized
 *                      by the model's tokenizer (tokenizer FILE, else tokenizer.json beside the
 *                      model) and cut into at most `samples` sequences of `len` tokens spread
 *                      evenly over it (src/model/text_corpus.h); else `samples` sequences of
 *                      `len` tokens sampled from the model itself (temperature 1, a seed derived
 *                      from the run's seed so they differ from `fipsc sample --seed S`)
 *   image classifier   images_dir (the image files directly inside, name order) or idx_path (an
 *                      IDX file, MNIST's format, gzip or plain), the first `count` images whose
 *                      pixels equal no image of exclude_dir (e.g. the model's hold-out set)
 *   sentence encoder   sentences FILE (an STS .tsv: both sentences of every pair; else one
 *                      sentence a line), at most `rows` token rows per MLP: whole sentences drawn
 *                      with a seed derived from the run's seed (0: every sentence)
 * text and sentences may name several files with weights, "A:3,B:1" (calibration_list.h): the
 * sequences or the row budget are shared among them by weight and their inputs interleaved. */
#ifndef FIPSC_COMPRESS_CALIBRATION_SOURCE_H
#define FIPSC_COMPRESS_CALIBRATION_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compress/calibration.h"
#include "model/capture.h"
#include "model/model.h"

#define FIPSC_CALIB_SAMPLES 64      /* default sampled sequences */
#define FIPSC_CALIB_LEN 256         /* default tokens per sampled sequence */
#define FIPSC_CALIB_IMAGES 1024     /* default images */
#define FIPSC_CALIB_ROWS 45000      /* default sentence-encoder rows per MLP (issue 6's setting) */

typedef struct fipsc_calib_source {
    const char *corpus;      /* language model */
    const char *text, *tokenizer;
    int samples, len;        /* 0: the defaults (and not "given", for the checks) */
    const char *images_dir, *idx_path, *exclude_dir; /* image classifier */
    int count;               /* 0: the default */
    const char *sentences;   /* sentence encoder */
    long long rows;          /* -1: the default */
    /* Where the rows live (set by compress from its memory plan, not by users): NULL in memory,
     * else a scratch file in spill_dir with room for spill_rows rows per block. */
    const char *spill_dir;
    int64_t spill_rows;
    /* Streaming calibration (set by compress): the capture is one pass of this stream, over its
     * blocks only (model/residual_stream.h); NULL: one forward from the inputs. */
    fipsc_residual_stream *stream;
    /* The corpus sampled from the model, once, for every pass (set by compress when streaming:
     * later passes run on a partly compressed model, which must not sample again); NULL:
     * fipsc_calibrate samples when the source says so. */
    const fipsc_corpus *sampled;
} fipsc_calib_source;

/* No source given: every field 0 / NULL, rows -1. */
void fipsc_calib_source_init(fipsc_calib_source *s);

/* The problem with s for model m, worded for the command line ("--calib-images ... apply to image
 * classifiers only", "a sentence encoder calibrates on sentences: give --calib-sentences ..."), or
 * NULL when s is usable. */
const char *fipsc_calib_source_problem(const fipsc_calib_source *s, const fipsc_model *m);

/* An upper bound on the rows per block that calibrating m from s captures, known before any
 * work: sampled or text sequences × their length, a corpus's tokens, images × tokens per image,
 * the sentence encoder's row limit (or, for every sentence, three per byte of the file). */
fipsc_status fipsc_calibration_rows_bound(const fipsc_model *m, const fipsc_calib_source *s, int64_t *rows,
                                          fipsc_error *err);

/* The memory sampling the calibration sequences from m holds (fipsc_lm_sample_memory_bytes), or 0
 * when s does not sample (a corpus, a text, images, sentences). */
int64_t fipsc_calibration_sampling_bytes(const fipsc_model *m, const fipsc_calib_source *s);

/* Something to say about calibration's progress (a phase starting, sequences sampled); NULL
 * text: the line is done. */
typedef void (*fipsc_calib_note_fn)(void *user, const char *text);

/* Samples the calibration corpus of source s from language model m (s names neither a corpus nor
 * a text) as fipsc_calibrate would, into *out (free with fipsc_corpus_free). */
fipsc_status fipsc_calibration_sample(const fipsc_model *m, const fipsc_calib_source *s, uint64_t seed,
                                      fipsc_calib_note_fn note, void *note_user, fipsc_corpus **out, fipsc_error *err);

/* Captures the MLP rows of the listed blocks (NULL/0: every block) of the ORIGINAL model m from
 * source s into *cal, whose rows live in *cap (free both: fipsc_calibration_free(cal), then
 * fipsc_capture_free(cap)). `seed` is the run's seed (sampling and sentence draws derive theirs
 * from it). desc receives a description of the source for reports and metadata (file names
 * only, never absolute paths). note (may be NULL) hears about progress. */
fipsc_status fipsc_calibrate(const fipsc_model *m, const fipsc_calib_source *s, uint64_t seed, const int *blocks,
                             int n_blocks, fipsc_calib_note_fn note, void *note_user, fipsc_calibration *cal,
                             fipsc_capture *cap, char *desc, size_t desc_cap, fipsc_error *err);

#endif
