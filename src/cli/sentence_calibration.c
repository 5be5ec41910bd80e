/* Calibration sentences for `fipsc compress` on sentence encoders (see cli_sentence_calib.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cli_sentence_calib.h"
#include "compress/calibration.h"
#include "formats/sentences.h"

bool cli_sentence_calib_given(const cli_sentence_calib *c) { return c->sentences || c->rows >= 0; }

const char *cli_sentence_calib_problem(const cli_sentence_calib *c, bool is_encoder)
{
    if (!is_encoder)
        return cli_sentence_calib_given(c) ? "--calib-sentences and --calib-rows apply to sentence encoders only" : NULL;
    if (!c->sentences)
        return "a sentence encoder calibrates on sentences: give --calib-sentences FILE.tsv (an STS file, "
               "e.g. sts-b-train.tsv) or FILE.txt (one sentence a line)";
    return NULL;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

fipsc_status cli_sentence_calibrate(const fipsc_model *m, const cli_sentence_calib *c, uint64_t seed,
                               const int *blocks, int n_blocks, bool verbose, fipsc_capture *cap,
                               fipsc_calibration *cal, char *desc, size_t desc_cap,
                               fipsc_error *err)
{
    const long long rows = c->rows >= 0 ? c->rows : CLI_SENTENCE_CALIB_ROWS;
    fipsc_sentences s;
    fipsc_status st = fipsc_sentences_read(c->sentences, &s, err);
    if (st) return fipsc_fail_context(err, "--calib-sentences: ");
    if (verbose) fprintf(stderr, "calibration: encoding %d sentences of %s...", s.n, base_name(c->sentences));
    st = fipsc_calibration_capture_sentences(m, &s, c->sentences, blocks, n_blocks, rows, seed, cap, cal, err);
    if (verbose) fprintf(stderr, "\r\033[K");
    if (!st) {
        if (rows > 0)
            snprintf(desc, desc_cap,
                     "sentences %s: %d of %d sentences (%lld token rows, at most %lld drawn with seed %llu)",
                     base_name(c->sentences), cal->n_sequences, s.n, (long long)cap->layers[0].rows, rows,
                     (unsigned long long)seed);
        else
            snprintf(desc, desc_cap, "sentences %s: all %d sentences (%lld token rows)", base_name(c->sentences),
                     s.n, (long long)cap->layers[0].rows);
    }
    fipsc_sentences_free(&s);
    return st;
}
