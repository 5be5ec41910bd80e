/* Several calibration files with weights: the value of --calib-text and --calib-sentences is
 * "FILE[:WEIGHT][,FILE[:WEIGHT]...]" (weight 1 when not given). The calibration budget — the
 * sequences of a text, the token rows of sentences — is shared among the files in proportion to
 * their weights, and their inputs are interleaved evenly (each file's k-th of n items at
 * fractional position (k + ½)/n) so that the held-out tail of the calibration rows (--holdout)
 * samples every file. A single file without a weight is exactly the single-file calibration. */
#ifndef FIPSC_COMPRESS_CALIBRATION_LIST_H
#define FIPSC_COMPRESS_CALIBRATION_LIST_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"

#define CALIB_LIST_MAX 64

typedef struct calib_item {
    char *path;    /* owned */
    double weight; /* > 0 */
    bool weighted; /* a weight was written */
} calib_item;

typedef struct calib_list {
    int n;
    calib_item items[CALIB_LIST_MAX];
} calib_list;

/* Parses spec. A part whose text after its last ':' is a number is FILE:WEIGHT (a weight must be
 * positive and finite); otherwise the whole part is the file name. Errors name `option`. */
fipsc_status calib_list_parse(const char *option, const char *spec, calib_list *out, fipsc_error *err);
void calib_list_free(calib_list *l);

/* The seed file k draws with: the run's calibration seed for the first file (so a single file
 * draws as it always did), one derived from it for the others. */
static inline uint64_t calib_file_seed(uint64_t seed, int k)
{
    return k == 0 ? seed : fipsc_seed_derive(seed, (uint64_t)k);
}

/* shares[i] = total · w_i / Σw rounded by largest remainder (Σ shares = total). */
void calib_list_shares(const calib_list *l, int64_t total, int64_t *shares);

/* The evenly interleaved order of n sources holding counts[k] items: source[pos] for each of the
 * Σ counts positions (each source's items keep their order). */
void calib_interleave(const int *counts, int n, int *source);

#endif
