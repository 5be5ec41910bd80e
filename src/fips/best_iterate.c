/* Keeping the best iterate: the held-out score and snapshots of the factors (see fips.h).
 *
 * Why. Training minimises the loss on minibatches of the calibration rows; nothing in it says the
 * last iterate generalises best, or that it beats the SVD initialisation at all — at real widths a
 * learning rate that suits small models makes the error rise (issue 18: 0.54 → 0.63 on a
 * Llama-3.2-1B-shaped group). So a slice of the rows is held out, scored now and then, and the
 * best iterate is what training returns.
 *
 * Score. S = Σ_j ‖ŷ_j − y_j‖²_F / ‖y_j‖²_F over the group's MLPs on their held-out rows: the
 * trainer's objective (each MLP's squared error over its target's mean square) on unseen rows.
 *
 * Eligibility. An iterate is a candidate only when its mask has the final sparsity: under GMP an
 * earlier, denser iterate holds more parameters than the budget allows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fips/fips_internal.h"

fipsc_status fipsc_fips_holdout_score(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                      const fipsc_fips_calib *rows, double *score, fipsc_error *err)
{
    double s = 0.0;
    bool any = false;
    for (int j = 0; j < g->n_mlps; j++) {
        if (rows[j].n < 1) continue;
        double e;
        fipsc_status st = fipsc_fips_relative_error(g, F, j, &rows[j], &e, err);
        if (st) return fipsc_fail_context(err, "held-out rows: ");
        s += e * e;
        any = true;
    }
    *score = any ? s : NAN;
    return FIPSC_OK;
}

void fips_snapshot_free(fips_snapshot *s)
{
    free(s->U);
    free(s->bits);
    free(s->values);
    memset(s, 0, sizeof *s);
}

/* The snapshot holds U whole and V compactly: its mask as bits and only the kept entries' values,
 * in mask order. At V sparsity 0.75 that is 0.27 of a float copy of V and its bit mask, which
 * matters at scale (Llama-3-8B shape, a group of 2: V is 6,881 × 86,016, 2.4 GB as floats). */
fipsc_status fips_snapshot_take(fips_snapshot *s, const fipsc_fips_factors *F, fipsc_error *err)
{
    const size_t nu = (size_t)F->d * (size_t)F->r, nv = (size_t)F->r * (size_t)F->P;
    const size_t words = fipsc_fips_mask_words(F);
    size_t kept = 0;
    for (size_t w = 0; w < words; w++) kept += (size_t)__builtin_popcountll(F->mask[w]);
    if (!s->U) {
        s->U = malloc(nu * sizeof(float));
        s->bits = malloc((nv + 63) / 64 * sizeof(uint64_t));
    }
    if (kept > s->capacity) {
        float *v = realloc(s->values, kept * sizeof(float));
        if (v) s->values = v, s->capacity = kept;
    }
    if (!s->U || !s->bits || (kept > 0 && kept > s->capacity)) {
        fips_snapshot_free(s);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS training: out of memory for a copy of the "
                          "factors (%.2f GB) to keep the best iterate", (double)(nu * 4 + nv / 8 + kept * 4) / 1e9);
    }
    memcpy(s->U, F->U, nu * sizeof(float));
    memcpy(s->bits, F->mask, words * sizeof(uint64_t));
    size_t q = 0;
    for (size_t e = 0; e < nv; e++)
        if (fipsc_fips_kept(F, (int64_t)e)) s->values[q++] = F->V[e];
    return FIPSC_OK;
}

void fips_snapshot_restore(const fips_snapshot *s, fipsc_fips_factors *F)
{
    const size_t nu = (size_t)F->d * (size_t)F->r, nv = (size_t)F->r * (size_t)F->P;
    memcpy(F->U, s->U, nu * sizeof(float));
    memcpy(F->mask, s->bits, fipsc_fips_mask_words(F) * sizeof(uint64_t));
    size_t q = 0;
    for (size_t e = 0; e < nv; e++) F->V[e] = fipsc_fips_kept(F, (int64_t)e) ? s->values[q++] : 0.0f;
}

fipsc_status fips_selection_consider(fips_selection *sel, const fipsc_fips_group *g, fipsc_fips_factors *F,
                                     const fipsc_fips_trainer *tr, int steps, bool last_phase, int steps_before,
                                     fipsc_error *err)
{
    const int t = fipsc_fips_trainer_steps_done(tr);
    const bool last = last_phase && t == steps;
    const bool candidate = last_phase && fipsc_fips_trainer_mask_final(tr);
    if (!last && !(candidate && t % sel->every == 0)) return FIPSC_OK;
    double score;
    fipsc_status st = fipsc_fips_holdout_score(g, F, sel->holdout, &score, err);
    if (st) return st;
    sel->evaluations++;
    if (last) sel->last_score = score;
    /* Ties keep the later iterate: it is the one training would have returned anyway; a score
     * that is not finite is never the best. */
    if (candidate && isfinite(score) && !(score > sel->best_score)) {
        if (!last && (st = fips_snapshot_take(&sel->best, F, err))) return st;
        sel->best_score = score;
        sel->best_step = steps_before + t;
    }
    return FIPSC_OK;
}
