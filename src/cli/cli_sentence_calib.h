/* Calibration sentences for `fipsc compress` on a sentence encoder: the command-line options and
 * the capture behind them (the library side is src/compress/calibration.h).
 *
 *   --calib-sentences FILE  FILE.tsv: both sentences of every pair of an STS file (e.g.
 *                           ../shared/data/sts-b-train.tsv); any other file: one sentence a line
 *   --calib-rows N          at most N token rows per MLP (default CLI_SENTENCE_CALIB_ROWS): whole
 *                           sentences drawn in a random order seeded by --seed; 0 = every sentence */
#ifndef FIPSC_CLI_SENTENCE_CALIB_H
#define FIPSC_CLI_SENTENCE_CALIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/capture.h"
#include "compress/compress.h"
#include "model/model.h"

/* The reference setting of issue 6 (~45k calibration rows). */
#define CLI_SENTENCE_CALIB_ROWS 45000

typedef struct cli_sentence_calib {
    const char *sentences; /* --calib-sentences */
    long long rows;        /* --calib-rows; -1 = not given (CLI_SENTENCE_CALIB_ROWS) */
} cli_sentence_calib;

/* Whether any of the sentence options was given. */
bool cli_sentence_calib_given(const cli_sentence_calib *c);

/* The usage problem of these options for a model that is (is_encoder) or is not a sentence
 * encoder, or NULL. */
const char *cli_sentence_calib_problem(const cli_sentence_calib *c, bool is_encoder);

/* Reads the sentences, captures the listed blocks' MLP rows on the original model m into cap
 * (free it with fipsc_capture_free after *cal) and *cal (borrowing cap's rows), and writes a
 * description of the source into desc (no absolute paths). `verbose`: a progress line on stderr. */
fipsc_status cli_sentence_calibrate(const fipsc_model *m, const cli_sentence_calib *c, uint64_t seed,
                               const int *blocks, int n_blocks, bool verbose, fipsc_capture *cap,
                               fipsc_calibration *cal, char *desc, size_t desc_cap,
                               fipsc_error *err);

#endif
