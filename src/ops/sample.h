/* Token sampling: a temperature / top-p (nucleus) sampler over the seeded generator of
 * src/core/rng.h (the same seed gives the same stream on every machine). Sampling is single-threaded and draws exactly one
 * uniform number per sampled token (none when temperature is 0), so generated tokens depend only
 * on the seed and the logits — never on thread counts. */
#ifndef FIPSC_SAMPLE_H
#define FIPSC_SAMPLE_H

#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"

/* Index of the largest value; the lowest index among equal maxima. */
int fipsc_argmax(const float *x, int n);

typedef struct fipsc_token_prob {
    double p;
    int id;
} fipsc_token_prob;

typedef struct fipsc_sampler {
    int vocab;
    float temperature; /* 0: always the argmax; else logits are divided by it */
    float top_p;       /* (0, 1]: sample among the most probable tokens whose mass reaches top_p */
    fipsc_rng rng;
    fipsc_token_prob *cand; /* [vocab] scratch */
} fipsc_sampler;

/* temperature >= 0, 0 < top_p <= 1, both finite. */
fipsc_status fipsc_sampler_init(fipsc_sampler *s, int vocab, float temperature, float top_p,
                                uint64_t seed, fipsc_error *err);
void fipsc_sampler_free(fipsc_sampler *s);

/* Draws a token from logits [vocab] (not modified):
 *   p_i = softmax(logits / T)_i (in double);
 *   top_p < 1: keep the smallest set of most probable tokens (ties broken by lower id) whose
 *   probabilities sum to at least top_p, renormalise, and sample within it. */
int fipsc_sampler_sample(fipsc_sampler *s, const float *logits);

#endif
