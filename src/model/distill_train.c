/* The distillation loop shared by every family (src/model/distill.h): AdamW on every trained
 * parameter with a cosine learning rate over shuffled batches of a family's examples; the score
 * over every example; the KL between a teacher's and a student's distributions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "fips/fips.h"
#include "model/distill.h"

bool fipsc_distill_same_weights(const float *a, const float *b, size_t n)
{
    return a == b || (a && b && memcmp(a, b, n * sizeof *a) == 0);
}

fipsc_status fipsc_distill_check_opts(const fipsc_distill_opts *o, fipsc_error *err)
{
    if (o->steps < 1 || o->batch < 1 || !(o->lr > 0.0f) || o->lr_min < 0.0f || o->lr_min > o->lr ||
        !(o->relational >= 0.0f) || !isfinite(o->relational) || !(o->hidden >= 0.0f) || !isfinite(o->hidden))
        return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: needs steps ≥ 1 (%d), a batch ≥ 1 (%d), "
                          "0 ≤ lr_min ≤ lr, lr > 0 (%g, %g) and finite term weights ≥ 0 (%g, %g)", o->steps,
                          o->batch, (double)o->lr_min, (double)o->lr, (double)o->relational,
                          (double)o->hidden);
    return FIPSC_OK;
}

fipsc_status fipsc_distill_loss_grad(fipsc_distill_params *P, const fipsc_distill_objective *obj, int nb,
                                     const int *idx, bool want_grad, double *loss, fipsc_error *err)
{
    fipsc_status st = fipsc_distill_params_densify(P, err);
    if (!st) st = obj->loss_grad(obj->self, nb, idx, want_grad, loss, err);
    if (!st && !isfinite(*loss))
        st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "distillation: the loss is not finite (%g)", *loss);
    if (!st && want_grad) fipsc_distill_params_chain(P);
    return st;
}

/* order[0..n) = a Fisher–Yates shuffle of 0..n−1. */
static void shuffle(fipsc_rng *rng, int *order, int n)
{
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(fipsc_rng_uniform(rng) * (double)(i + 1));
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

fipsc_status fipsc_distill_train(fipsc_distill_params *P, const fipsc_distill_objective *obj,
                                 const fipsc_distill_opts *o, double *before, double *after, fipsc_error *err)
{
    fipsc_status st = fipsc_distill_check_opts(o, err);
    if (st) return st;
    if (obj->items < 1 || obj->batch < 1 || obj->batch > obj->items)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "distillation: batches of %d from %d examples", obj->batch,
                          obj->items);
    int *order = malloc((size_t)obj->items * sizeof *order);
    if (!order) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!(st = fipsc_distill_params_densify(P, err))) st = obj->score(obj->self, before, err);
    fipsc_rng rng;
    fipsc_rng_seed(&rng, o->seed);
    int next = obj->items; /* position in the current shuffled epoch */
    const int nb = obj->batch;
    for (int t = 0; t < o->steps && !st; t++) {
        if (next + nb > obj->items) { /* a new epoch; a short tail is dropped */
            shuffle(&rng, order, obj->items);
            next = 0;
        }
        double loss;
        st = fipsc_distill_loss_grad(P, obj, nb, order + next, true, &loss, err);
        next += nb;
        if (st) {
            fipsc_fail_context(err, "step %d: ", t + 1);
            break;
        }
        const float lr = fipsc_fips_cosine_lr(o->lr, o->lr_min, t, o->steps);
        fipsc_distill_params_step(P, &o->adamw, t + 1, lr);
        if (o->progress && ((o->progress_every > 0 && (t + 1) % o->progress_every == 0) || t + 1 == o->steps))
            o->progress(o->progress_user, &(fipsc_distill_progress){t + 1, o->steps, loss, lr});
    }
    if (!st && !(st = fipsc_distill_params_densify(P, err))) st = obj->score(obj->self, after, err);
    if (st) fipsc_distill_params_restore(P); /* no half-trained model after a failure */
    free(order);
    return st;
}

fipsc_status fipsc_distill_mean_loss(const fipsc_distill_objective *obj, double (*weight)(void *self, int first, int count),
                                     double *mean, fipsc_error *err)
{
    int *idx = malloc((size_t)obj->batch * sizeof *idx);
    if (!idx) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    double sum = 0.0, total = 0.0;
    fipsc_status st = FIPSC_OK;
    for (int first = 0; first < obj->items && !st; first += obj->batch) {
        const int count = obj->items - first < obj->batch ? obj->items - first : obj->batch;
        for (int b = 0; b < count; b++) idx[b] = first + b;
        double loss;
        st = obj->loss_grad(obj->self, count, idx, false, &loss, err);
        const double w = weight ? weight(obj->self, first, count) : count;
        sum += loss * w;
        total += w;
    }
    free(idx);
    *mean = total > 0.0 ? sum / total : 0.0;
    return st;
}

/* log Σ_j e^row[j], the largest term taken out first, in double. */
static double log_sum_exp(const float *row, int n)
{
    float mx = row[0];
    for (int j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    double sum = 0.0;
    for (int j = 0; j < n; j++) sum += exp((double)row[j] - mx);
    return (double)mx + log(sum);
}

void fipsc_distill_log_softmax(float *row, int n)
{
    const double lz = log_sum_exp(row, n);
    for (int j = 0; j < n; j++) row[j] = (float)((double)row[j] - lz);
}

double fipsc_distill_kl(float *z, const float *lo, int n, bool want_grad, double grad_scale)
{
    const double lz = log_sum_exp(z, n);
    double kl = 0.0;
    for (int j = 0; j < n; j++) {
        const double lc = (double)z[j] - lz, po = exp((double)lo[j]);
        kl += po * ((double)lo[j] - lc);
        if (want_grad) z[j] = (float)(grad_scale * (exp(lc) - po));
    }
    return kl;
}
