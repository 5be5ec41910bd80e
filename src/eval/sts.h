/* Semantic textual similarity (STS) evaluation of a sentence encoder, and the correlations it uses.
 *
 * A STS file (the STS Benchmark's sts-*.tsv layout) has one pair per line, tab-separated:
 *   genre, file, year, id, score, sentence 1, sentence 2 [, anything else ...]
 * Columns after the seventh are ignored (some STS-B rows carry their sources there). Lines end in
 * LF or CRLF (the CR is not part of sentence 2); empty lines are skipped; there is no header.
 *
 * The model's score for a pair is the cosine similarity of the two embeddings; the evaluation
 * reports its Spearman and Pearson correlations with the gold scores over all pairs. */
#ifndef FIPSC_STS_H
#define FIPSC_STS_H

#include "model/model.h"
#include "core/status.h"
#include "formats/sts_file.h"

/* Pearson's r of x and y, n >= 2, in double precision: Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² Σ(y−ȳ)²).
 * NaN when x or y is constant. */
double fipsc_pearson(const double *x, const double *y, int n);

/* 1-based ranks of x[0..n) in increasing order; tied values all get the mean of the positions
 * they occupy (e.g. [10, 20, 20, 30] -> [1, 2.5, 2.5, 4]). Fails only when out of memory. */
fipsc_status fipsc_average_ranks(const double *x, int n, double *ranks, fipsc_error *err);

/* Spearman's ρ with average ranks for ties: the Pearson r of the two rank vectors. NaN for
 * constant inputs; *out is untouched when allocation fails. */
fipsc_status fipsc_spearman(const double *x, const double *y, int n, double *out, fipsc_error *err);

typedef struct fipsc_sts_result {
    int pairs;
    double spearman, pearson;
} fipsc_sts_result;

/* Embeds both sentences of every pair with the sentence encoder m, scores each pair by cosine
 * similarity, and correlates with the gold scores. Optional outputs (NULL: not wanted):
 * cosines [set->n]; embeddings [2·set->n, d] row-major, pair i's sentences in rows 2i and 2i+1. */
fipsc_status fipsc_sts_evaluate(const fipsc_model *m, const fipsc_sts_set *set, fipsc_sts_result *res,
                                double *cosines, float *embeddings, fipsc_error *err);

/* The cosine similarity of a [d] and b [d], accumulated in double. */
double fipsc_cosine(const float *a, const float *b, int d);

#endif
