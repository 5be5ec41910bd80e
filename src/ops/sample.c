/* Seeded PRNG and temperature / top-p sampling (see src/ops/sample.h). */
#include "ops/sample.h"

#include <math.h>
#include <stdlib.h>

int fipsc_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

fipsc_status fipsc_sampler_init(fipsc_sampler *s, int vocab, float temperature, float top_p,
                                uint64_t seed, fipsc_error *err)
{
    s->cand = NULL;
    if (vocab <= 0) return fipsc_fail(err, FIPSC_ERR_ARG, "sampler over a vocabulary of %d tokens", vocab);
    if (!isfinite(temperature) || temperature < 0.0f)
        return fipsc_fail(err, FIPSC_ERR_ARG, "temperature must be a finite number >= 0 (got %g)", (double)temperature);
    if (!isfinite(top_p) || top_p <= 0.0f || top_p > 1.0f)
        return fipsc_fail(err, FIPSC_ERR_ARG, "top-p must be in (0, 1] (got %g)", (double)top_p);
    s->vocab = vocab;
    s->temperature = temperature;
    s->top_p = top_p;
    fipsc_rng_seed(&s->rng, seed);
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    if (!s->cand) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a sampler over %d tokens", vocab);
    return FIPSC_OK;
}

void fipsc_sampler_free(fipsc_sampler *s)
{
    free(s->cand);
    s->cand = NULL;
}

/* Most probable first; equal probabilities by lower id, so the order is total and the nucleus is
 * the same whatever qsort does with ties. */
static int by_prob_desc(const void *a, const void *b)
{
    const fipsc_token_prob *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int fipsc_sampler_sample(fipsc_sampler *s, const float *logits)
{
    const int n = s->vocab;
    if (s->temperature == 0.0f) return fipsc_argmax(logits, n);

    /* p_i ∝ exp((l_i − max)/T), unnormalised, in double so tiny probabilities keep their weight. */
    const double inv_t = 1.0 / s->temperature;
    fipsc_token_prob *c = s->cand;
    const int top = fipsc_argmax(logits, n);
    const double mx = logits[top];
    double z = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].id = i;
        z += c[i].p = exp(((double)logits[i] - mx) * inv_t);
    }
    const double u = fipsc_rng_uniform(&s->rng);

    int m = n, last = n - 1;
    double mass = z;
    if (s->top_p < 1.0f) {
        /* Nucleus. Tokens other than the argmax with p_i < (1 − top_p)/(n − 1) can never be in
         * it (at most n − 1 of them hold less than 1 − top_p together), so only the others are
         * sorted. */
        const double cutoff = n > 1 ? (1.0 - s->top_p) / (n - 1) * z : 0.0;
        m = 0;
        for (int i = 0; i < n; i++)
            if (c[i].p >= cutoff || i == top) c[m++] = c[i];
        qsort(c, (size_t)m, sizeof *c, by_prob_desc);
        const double need = s->top_p * z;
        mass = 0.0;
        last = m - 1;
        for (int k = 0; k < m; k++) {
            mass += c[k].p;
            if (mass >= need) {
                last = k;
                break;
            }
        }
    }
    /* Inverse CDF over the kept tokens (in id order when top_p == 1). */
    const double target = u * mass;
    double cum = 0.0;
    for (int k = 0; k <= last; k++) {
        cum += c[k].p;
        if (target < cum) return c[k].id;
    }
    return c[last].id; /* only when rounding put target at the very top */
}
