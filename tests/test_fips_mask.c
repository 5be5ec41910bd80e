/* FiPS masks: exact nnz after every global and per-matrix magnitude prune (with heavy ties and
 * with continuous values), masks only shrink, pruned V entries are zero, kept magnitudes dominate
 * pruned ones; n:m validity and its r % m error; RigL keeps nnz, drops the smallest kept
 * magnitudes, grows the largest gradients among the entries that were not kept, at zero. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fips/fips.h"
#include "testutil.h"

/* The mask as one byte per entry (0/1), for comparisons across calls. */
static void mask_bytes(const fipsc_fips_factors *F, uint8_t *out, int64_t total)
{
    for (int64_t e = 0; e < total; e++) out[e] = fipsc_fips_kept(F, e);
}

static uint64_t rng_state = 7;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* A group of n_mlps plain MLPs (d 3, the given f) — only the layout matters for masks. */
typedef struct fixture {
    fipsc_mlp mlps[4];
    float w[4096];
    fipsc_fips_group g;
} fixture;

static void make_group(fixture *fx, int n_mlps, const int *f)
{
    memset(fx, 0, sizeof *fx);
    for (int j = 0; j < n_mlps; j++)
        fx->mlps[j] = (fipsc_mlp){.kind = FIPSC_MLP_PLAIN, .act = FIPSC_ACT_RELU, .d = 3, .f = f[j],
                                  .up = {.out = f[j], .in = 3, .w = fx->w},
                                  .down = {.out = 3, .in = f[j], .w = fx->w}};
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_group_init(&fx->g, fx->mlps, n_mlps, &err), &err);
}

/* Over the entries of the set: count kept, check pruned entries are 0, and return the smallest
 * kept and the largest pruned magnitude among entries kept before (was_kept). */
static int64_t inspect(const fipsc_fips_group *g, const fipsc_fips_factors *F, const int *set,
                       int n, const uint8_t *was_kept, double *min_kept, double *max_pruned,
                       bool *zeros_ok)
{
    int64_t kept = 0;
    *min_kept = INFINITY;
    *max_pruned = -1.0;
    *zeros_ok = true;
    for (int a = 0; a < n; a++) {
        const fipsc_fips_matrix *mx = &g->matrices[set[a]];
        for (int k = 0; k < F->r; k++)
            for (int c = 0; c < mx->cols; c++) {
                int64_t e = k * F->P + mx->col_offset + c;
                if (fipsc_fips_kept(F, e)) {
                    kept++;
                    *min_kept = fmin(*min_kept, fabs(F->V[e]));
                } else {
                    *zeros_ok &= F->V[e] == 0.0f;
                    if (!was_kept || was_kept[e]) *max_pruned = fmax(*max_pruned, fabs(F->V[e]));
                }
            }
    }
    return kept;
}

static void test_global_prune(bool ties)
{
    fixture fx;
    const int f[3] = {37, 50, 21};
    make_group(&fx, 3, f);
    fipsc_error err = {0};
    fipsc_fips_factors F;
    int r = 9;
    CHECK_OK(fipsc_fips_factors_alloc(&F, 3, r, fx.g.P, &err), &err);
    int64_t total = (int64_t)r * fx.g.P;
    for (int64_t e = 0; e < total; e++)
        F.V[e] = ties ? (float)((int)(urand() * 4.0)) : (float)urand(); /* ties: values in -3..3 */
    float *orig = malloc((size_t)total * sizeof(float));
    memcpy(orig, F.V, (size_t)total * sizeof(float));
    uint8_t *before = malloc((size_t)total);

    const double sparsities[] = {0.05, 0.3, 0.5, 0.5, 0.77, 0.9, 0.999};
    for (size_t q = 0; q < sizeof sparsities / sizeof *sparsities; q++) {
        mask_bytes(&F, before, total);
        int64_t keep = fipsc_fips_keep_count(total, sparsities[q]);
        CHECK_OK(fipsc_fips_prune_magnitude(&fx.g, &F, NULL, 0, keep, &err), &err);
        double mk, mp;
        bool zeros;
        int all[6] = {0, 1, 2, 3, 4, 5};
        int64_t kept = inspect(&fx.g, &F, all, 6, before, &mk, &mp, &zeros);
        CHECK_MSG(kept == keep, "%s s = %g: kept %lld, want %lld", ties ? "ties" : "continuous",
                  sparsities[q], (long long)kept, (long long)keep);
        CHECK(fipsc_fips_count_active(&fx.g, &F, NULL, 0) == keep);
        CHECK(zeros);
        CHECK_MSG(mk >= mp, "kept magnitude %g below pruned %g", mk, mp);
        /* masks only shrink; kept values are untouched */
        bool shrink = true, same = true;
        for (int64_t e = 0; e < total; e++) {
            shrink &= fipsc_fips_kept(&F, e) <= before[e];
            if (fipsc_fips_kept(&F, e)) same &= F.V[e] == orig[e];
        }
        CHECK(shrink);
        CHECK(same);
    }
    /* asking for more than is kept changes nothing */
    mask_bytes(&F, before, total);
    CHECK_OK(fipsc_fips_prune_magnitude(&fx.g, &F, NULL, 0, total, &err), &err);
    uint8_t *after = malloc((size_t)total);
    mask_bytes(&F, after, total);
    CHECK(memcmp(before, after, (size_t)total) == 0);
    free(after);
    CHECK_OK(fipsc_fips_prune_magnitude(&fx.g, &F, NULL, 0, 0, &err), &err);
    CHECK(fipsc_fips_count_active(&fx.g, &F, NULL, 0) == 0);
    CHECK_FAILS(fipsc_fips_prune_magnitude(&fx.g, &F, NULL, 0, -1, &err), FIPSC_ERR_ARG, "cannot keep", &err);
    free(orig);
    free(before);
    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&fx.g);
}

/* Per-matrix pruning (a set of one) and pruning a subset leave the other matrices alone; tie
 * breaking follows set order. */
static void test_per_matrix(void)
{
    fixture fx;
    const int f[2] = {40, 33};
    make_group(&fx, 2, f);
    fipsc_error err = {0};
    fipsc_fips_factors F;
    int r = 11;
    CHECK_OK(fipsc_fips_factors_alloc(&F, 3, r, fx.g.P, &err), &err);
    int64_t total = (int64_t)r * fx.g.P;
    for (int64_t e = 0; e < total; e++) F.V[e] = (float)urand();
    for (int i = 0; i < fx.g.n_matrices; i++) {
        int64_t n = (int64_t)r * fx.g.matrices[i].cols;
        int64_t keep = fipsc_fips_keep_count(n, 0.6 + 0.05 * i);
        int64_t others = fipsc_fips_count_active(&fx.g, &F, NULL, 0) - fipsc_fips_count_active(&fx.g, &F, &i, 1);
        CHECK_OK(fipsc_fips_prune_magnitude(&fx.g, &F, &i, 1, keep, &err), &err);
        CHECK(fipsc_fips_count_active(&fx.g, &F, &i, 1) == keep);
        CHECK(fipsc_fips_count_active(&fx.g, &F, NULL, 0) - keep == others);
    }
    /* subset {3, 1}: exact over the two */
    int sub[2] = {3, 1};
    int64_t have = fipsc_fips_count_active(&fx.g, &F, sub, 2);
    CHECK_OK(fipsc_fips_prune_magnitude(&fx.g, &F, sub, 2, have - 17, &err), &err);
    CHECK(fipsc_fips_count_active(&fx.g, &F, sub, 2) == have - 17);

    /* all-equal magnitudes: the first `keep` in set order survive */
    fipsc_fips_factors E;
    CHECK_OK(fipsc_fips_factors_alloc(&E, 3, 2, fx.g.P, &err), &err);
    for (int64_t e = 0; e < 2 * fx.g.P; e++) E.V[e] = (e % 2) ? 1.0f : -1.0f;
    int order[2] = {1, 0}; /* matrix 1 (cols 40..79) first */
    CHECK_OK(fipsc_fips_prune_magnitude(&fx.g, &E, order, 2, 45, &err), &err);
    /* matrix 1 row 0 (40 entries), then matrix 1 row 1's first 5 */
    bool ok = true;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 80; c++) {
            bool want = c >= 40 && (k == 0 || c < 45);
            ok &= fipsc_fips_kept(&E, k * fx.g.P + c) == want;
        }
    CHECK(ok);
    fipsc_fips_factors_free(&E);
    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&fx.g);
}

/* Big enough for both radix levels to matter, with values crowded into one top-level bucket. */
static void test_large(void)
{
    fixture fx;
    const int f[1] = {1500};
    make_group(&fx, 1, f);
    fipsc_error err = {0};
    fipsc_fips_factors F;
    int r = 100;
    CHECK_OK(fipsc_fips_factors_alloc(&F, 3, r, fx.g.P, &err), &err);
    int64_t total = (int64_t)r * fx.g.P;
    for (int64_t e = 0; e < total; e++) F.V[e] = 1.0f + (float)(urand() * 1e-3); /* one bucket */
    float *orig = malloc((size_t)total * sizeof(float));
    memcpy(orig, F.V, (size_t)total * sizeof(float));
    int64_t keep = 123457;
    CHECK_OK(fipsc_fips_prune_magnitude(&fx.g, &F, NULL, 0, keep, &err), &err);
    CHECK(fipsc_fips_count_active(&fx.g, &F, NULL, 0) == keep);
    double min_kept = INFINITY, max_pruned = 0;
    bool zeros = true;
    for (int64_t e = 0; e < total; e++) {
        if (fipsc_fips_kept(&F, e)) min_kept = fmin(min_kept, orig[e]);
        else max_pruned = fmax(max_pruned, orig[e]), zeros &= F.V[e] == 0.0f;
    }
    CHECK(min_kept >= max_pruned);
    CHECK(zeros);
    free(orig);
    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&fx.g);
}

static void test_nm(void)
{
    fixture fx;
    const int f[2] = {13, 9};
    make_group(&fx, 2, f);
    fipsc_error err = {0};
    fipsc_fips_factors F;
    int r = 16;
    CHECK_OK(fipsc_fips_factors_alloc(&F, 3, r, fx.g.P, &err), &err);
    int64_t total = (int64_t)r * fx.g.P;
    for (int64_t e = 0; e < total; e++) F.V[e] = (float)((int)(urand() * 3.0)); /* ties */
    float *orig = malloc((size_t)total * sizeof(float));
    memcpy(orig, F.V, (size_t)total * sizeof(float));
    CHECK(!fipsc_fips_nm_valid(&fx.g, &F, NULL, 0, 2, 4));
    CHECK_OK(fipsc_fips_prune_nm(&fx.g, &F, NULL, 0, 2, 4, &err), &err);
    CHECK(fipsc_fips_nm_valid(&fx.g, &F, NULL, 0, 2, 4));
    CHECK(!fipsc_fips_nm_valid(&fx.g, &F, NULL, 0, 1, 4));
    CHECK(fipsc_fips_count_active(&fx.g, &F, NULL, 0) == total / 2); /* exactly n/m */
    /* in every run the kept are the n largest, earlier rows winning ties */
    bool best = true, zeros = true;
    for (int64_t c = 0; c < fx.g.P; c++)
        for (int run = 0; run < r / 4; run++)
            for (int q = 0; q < 4; q++) {
                int64_t e = (int64_t)(run * 4 + q) * fx.g.P + c;
                int beaten = 0;
                for (int o = 0; o < 4; o++) {
                    float a = fabsf(orig[(int64_t)(run * 4 + o) * fx.g.P + c]), b = fabsf(orig[e]);
                    beaten += a > b || (a == b && o < q);
                }
                best &= fipsc_fips_kept(&F, e) == (beaten < 2);
                if (!fipsc_fips_kept(&F, e)) zeros &= F.V[e] == 0.0f;
            }
    CHECK(best);
    CHECK(zeros);
    /* pruned entries stay pruned: 1:4 after 2:4 keeps 1 per run */
    CHECK_OK(fipsc_fips_prune_nm(&fx.g, &F, NULL, 0, 1, 4, &err), &err);
    CHECK(fipsc_fips_nm_valid(&fx.g, &F, NULL, 0, 1, 4));
    CHECK(fipsc_fips_count_active(&fx.g, &F, NULL, 0) == total / 4);
    /* a set: only matrix 2 gets 1:2 */
    fipsc_fips_factors H;
    CHECK_OK(fipsc_fips_factors_alloc(&H, 3, r, fx.g.P, &err), &err);
    memcpy(H.V, orig, (size_t)total * sizeof(float));
    int two = 2;
    CHECK_OK(fipsc_fips_prune_nm(&fx.g, &H, &two, 1, 1, 2, &err), &err);
    CHECK(fipsc_fips_nm_valid(&fx.g, &H, &two, 1, 1, 2));
    CHECK(fipsc_fips_count_active(&fx.g, &H, &two, 1) == r / 2 * 9);
    CHECK(fipsc_fips_count_active(&fx.g, &H, NULL, 0) == total - r / 2 * 9);
    fipsc_fips_factors_free(&H);

    CHECK_FAILS(fipsc_fips_prune_nm(&fx.g, &F, NULL, 0, 5, 4, &err), FIPSC_ERR_ARG, "5:4", &err);
    fipsc_fips_factors B;
    CHECK_OK(fipsc_fips_factors_alloc(&B, 3, 10, fx.g.P, &err), &err);
    CHECK_FAILS(fipsc_fips_prune_nm(&fx.g, &B, NULL, 0, 2, 4, &err), FIPSC_ERR_ARG,
                "rank r = 10 is not a multiple of m = 4", &err);
    CHECK(!fipsc_fips_nm_valid(&fx.g, &B, NULL, 0, 2, 4));
    fipsc_fips_factors_free(&B);
    free(orig);
    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&fx.g);
}

static void test_rigl(void)
{
    fixture fx;
    const int f[2] = {30, 25};
    make_group(&fx, 2, f);
    fipsc_error err = {0};
    fipsc_fips_factors F;
    int r = 12;
    CHECK_OK(fipsc_fips_factors_alloc(&F, 3, r, fx.g.P, &err), &err);
    int64_t total = (int64_t)r * fx.g.P;
    for (int64_t e = 0; e < total; e++) F.V[e] = (float)urand();
    int64_t keep = fipsc_fips_keep_count(total, 0.7);
    CHECK_OK(fipsc_fips_prune_magnitude(&fx.g, &F, NULL, 0, keep, &err), &err);
    float *grad = malloc((size_t)total * sizeof(float)), *v0 = malloc((size_t)total * sizeof(float));
    uint8_t *m0 = malloc((size_t)total);
    for (int step = 0; step < 3; step++) {
        for (int64_t e = 0; e < total; e++) grad[e] = (float)urand();
        memcpy(v0, F.V, (size_t)total * sizeof(float));
        mask_bytes(&F, m0, total);
        int64_t moved = -1;
        CHECK_OK(fipsc_fips_rigl_update(&fx.g, &F, NULL, 0, grad, 0.2, &moved, &err), &err);
        CHECK(moved == (int64_t)llround(0.2 * keep));
        CHECK(fipsc_fips_count_active(&fx.g, &F, NULL, 0) == keep);
        int64_t grown = 0, dropped = 0;
        double min_grown_g = INFINITY, max_other_g = 0, max_dropped_v = 0, min_stay_v = INFINITY;
        bool grown_zero = true, dropped_zero = true;
        for (int64_t e = 0; e < total; e++) {
            if (!m0[e] && fipsc_fips_kept(&F, e)) {
                grown++;
                grown_zero &= F.V[e] == 0.0f;
                min_grown_g = fmin(min_grown_g, fabs(grad[e]));
            } else if (!m0[e]) {
                max_other_g = fmax(max_other_g, fabs(grad[e]));
            } else if (!fipsc_fips_kept(&F, e)) {
                dropped++;
                dropped_zero &= F.V[e] == 0.0f;
                max_dropped_v = fmax(max_dropped_v, fabs(v0[e]));
            } else {
                min_stay_v = fmin(min_stay_v, fabs(v0[e]));
            }
        }
        CHECK(grown == moved && dropped == moved);
        CHECK(grown_zero && dropped_zero);
        CHECK(min_grown_g >= max_other_g);  /* grew the largest gradients among the not kept */
        CHECK(max_dropped_v <= min_stay_v); /* dropped the smallest kept magnitudes */
        /* give the grown weights values so the next round's magnitudes are not all zero */
        for (int64_t e = 0; e < total; e++)
            if (fipsc_fips_kept(&F, e) && F.V[e] == 0.0f) F.V[e] = (float)urand();
    }
    /* fraction 0: nothing moves; a full set has no room to grow */
    int64_t moved = -1;
    mask_bytes(&F, m0, total);
    CHECK_OK(fipsc_fips_rigl_update(&fx.g, &F, NULL, 0, grad, 0.0, &moved, &err), &err);
    uint8_t *m1 = malloc((size_t)total);
    mask_bytes(&F, m1, total);
    CHECK(moved == 0 && memcmp(m0, m1, (size_t)total) == 0);
    free(m1);
    fipsc_fips_factors D;
    CHECK_OK(fipsc_fips_factors_alloc(&D, 3, r, fx.g.P, &err), &err);
    CHECK_OK(fipsc_fips_rigl_update(&fx.g, &D, NULL, 0, grad, 0.5, &moved, &err), &err);
    CHECK(moved == 0 && fipsc_fips_count_active(&fx.g, &D, NULL, 0) == total);
    CHECK_FAILS(fipsc_fips_rigl_update(&fx.g, &D, NULL, 0, grad, 1.5, &moved, &err), FIPSC_ERR_ARG,
                "drop fraction", &err);
    fipsc_fips_factors_free(&D);
    free(grad);
    free(v0);
    free(m0);
    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&fx.g);
}

/* The mask is one bit per entry of V: all set for fresh factors, and the bits past r·P (the last
 * word's padding) clear, so a popcount over the words counts kept entries; a bit set or cleared
 * touches its entry alone. */
static void test_bits(void)
{
    fipsc_error err = {0};
    fipsc_fips_factors F;
    CHECK_OK(fipsc_fips_factors_alloc(&F, 2, 3, 43, &err), &err); /* 129 entries: 3 words, 1 bit in the last */
    CHECK(fipsc_fips_mask_words(&F) == 3);
    int64_t ones = 0;
    for (size_t w = 0; w < fipsc_fips_mask_words(&F); w++) ones += __builtin_popcountll(F.mask[w]);
    CHECK(ones == 129 && F.mask[2] == 1);
    fipsc_fips_set_kept(&F, 64, false);
    fipsc_fips_set_kept(&F, 128, false);
    CHECK(!fipsc_fips_kept(&F, 64) && fipsc_fips_kept(&F, 63) && fipsc_fips_kept(&F, 65) && !fipsc_fips_kept(&F, 128));
    fipsc_fips_set_kept(&F, 128, true);
    CHECK(F.mask[2] == 1 && F.mask[1] == ~(uint64_t)1);
    fipsc_fips_factors_free(&F);
}

int main(void)
{
    test_bits();
    test_global_prune(true);
    test_global_prune(false);
    test_per_matrix();
    test_large();
    test_nm();
    test_rigl();
    return test_summary("test_fips_mask");
}
