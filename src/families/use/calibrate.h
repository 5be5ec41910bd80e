/* Calibration of the Universal Sentence Encoder Lite (src/families/use/use.h) for compression:
 * sentences read from a file, run through the ORIGINAL encoder, every compressed MLP's input and
 * output rows recorded (src/model/capture.h) and handed to the compressor as a
 * fipsc_calibration (src/compress/compress.h) whose rows it borrows.
 *
 * One row per kept token (the encoder keeps the first max_tokens of a sentence): x = the MLP's
 * input after the layer's mlp_norm, y = MLP(x) before the residual add. Rows are sentence-major,
 * then token, in the order of the sentences in the file.
 *
 * Usage:
 *   fipsc_sentences s;           fipsc_sentences_read("sts-b-train.tsv", &s, &err);
 *   fipsc_capture cap;           fipsc_calibration cal;
 *   fipsc_calibration_capture_use(m, &s, "sts-b-train.tsv", NULL, 0, 45000, 1, &cap, &cal, &err);
 *   fipsc_compress_run(m, &cal, ...);
 *   fipsc_calibration_free(&cal); fipsc_capture_free(&cap); fipsc_sentences_free(&s); */
#ifndef FIPSC_USE_CALIBRATION_H
#define FIPSC_USE_CALIBRATION_H

#include <stdint.h>

#include "model/capture.h"
#include "compress/compress.h"
#include "model/model.h"
#include "core/status.h"

/* The compressor's defaults for the sentence encoder (fipsc_compress_defaults, then what was
 * tuned on STS-B, BENCHMARKS.md): see families/use/calibrate.c for the values. */
void fipsc_compress_defaults_use(fipsc_compress_options *o);

typedef struct fipsc_sentences {
    int n;
    char **text; /* [n] NUL-terminated UTF-8 sentences, owned */
    int *line;   /* [n] 1-based line of the file each sentence comes from */
} fipsc_sentences;

/* Reads the sentences of a file:
 *   *.tsv  an STS file (src/eval/sts.h layout: genre, file, year, id, score, sentence 1,
 *          sentence 2, ...): both sentences of every pair, pair by pair (s1, s2, s1, s2, ...);
 *   else   plain text, one sentence per line (LF or CRLF; blank lines skipped).
 * Errors name the file (and the line for STS files). A file without any sentence fails. */
fipsc_status fipsc_sentences_read(const char *path, fipsc_sentences *out, fipsc_error *err);
void fipsc_sentences_free(fipsc_sentences *s);

/* Runs the original sentence encoder m over sentences s and records the MLP rows of the listed
 * blocks (NULL/0: every block) into cap (initialised here; free it with fipsc_capture_free after
 * *out). *out (free with fipsc_calibration_free) points at cap's rows: blocks[l] = block l's rows.
 *
 * max_rows > 0 bounds the rows per block: when the sentences hold more kept tokens, whole
 * sentences are drawn in a random order (seeded by `seed`, so the choice is reproducible) while
 * they fit, and then encoded in file order; every drawn sentence is recorded whole. 0 takes
 * every sentence. `what` names the source in messages (e.g. the file). Fails on a model that is
 * not a sentence encoder and on sentences that yield no tokens at all. */
fipsc_status fipsc_calibration_capture_use(const fipsc_model *m, const fipsc_sentences *s,
                                           const char *what, const int *blocks, int n_blocks,
                                           int64_t max_rows, uint64_t seed, fipsc_capture *cap,
                                           fipsc_calibration *out, fipsc_error *err);

#endif
