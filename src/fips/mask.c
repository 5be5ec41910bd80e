/* Masks on V (ALGORITHM.md §8): global magnitude pruning, n:m along r, RigL drop/grow.
 *
 * Exact counts without sorting: the ordering of |x| for floats is the ordering of their bit
 * patterns with the sign cleared, so the k-th largest magnitude is found by a two-level radix
 * select (a histogram of the top 15 bits, then of the low 16 bits inside the one bucket that
 * holds the k-th entry). Two passes over the data, 64K counters of memory, whatever the size of V
 * (a Llama-3-8B group holds 1.3·10⁹ entries). Entries equal to the threshold are taken in set
 * order (matrix by matrix, row by row) until exactly k are selected. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fips/fips_internal.h"

/* What apply() does to a candidate: leave it, prune it (mask bit cleared, V zeroed), or mark it
 * grown (RigL: in a separate bit set until the update ends; V zeroed: a grown entry starts at 0). */
enum { KEEP_MASK, TO_PRUNED, TO_GROWN };

static inline bool bit_at(const uint64_t *bits, int64_t e) { return (bits[e >> 6] >> (e & 63)) & 1; }

/* Bits of entries in different rows can share a 64-bit word (P need not be a multiple of 64), and
 * rows are spread over threads: writers update whole words atomically. */
static inline void bit_clear(uint64_t *bits, int64_t e)
{
    __atomic_fetch_and(&bits[e >> 6], ~((uint64_t)1 << (e & 63)), __ATOMIC_RELAXED);
}
static inline void bit_set(uint64_t *bits, int64_t e)
{
    __atomic_fetch_or(&bits[e >> 6], (uint64_t)1 << (e & 63), __ATOMIC_RELAXED);
}

static uint32_t abs_key(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7FFFFFFFu;
}

/* What a selection pass looks at: entries of the set whose mask bit equals `cand` (kept or not),
 * keyed by the magnitude of `src` (V or a gradient, [r, P]); flip = 0x7FFFFFFF reverses the
 * order, so that "largest key" means "smallest magnitude". grown: RigL's marks (else NULL). */
typedef struct scan {
    const fipsc_fips_group *g;
    int r;
    int64_t P;
    const int *set;
    int n_set;
    const float *src;
    uint64_t *mask;
    bool cand;
    uint32_t flip;
    uint64_t *grown;
} scan;

typedef struct selection {
    bool all, none;
    uint32_t thresh; /* selected: key > thresh, plus the first take_eq entries with key == thresh */
    int64_t take_eq, count_eq;
} selection;

static fipsc_status check_factors(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                  fipsc_error *err)
{
    if (!F->V || !F->mask || F->d != g->d || F->P != g->P || F->r < 1)
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "FiPS masks: factors (d = %d, P = %lld) do not belong to this group "
                          "(d = %d, P = %lld)", F->d, (long long)F->P, g->d, (long long)g->P);
    return FIPSC_OK;
}

/* Histogram of key >> 16 over the candidates (level 0), or of key & 0xFFFF over the candidates
 * whose key >> 16 == hi (level 1). Returns the number of candidates counted. Per-thread
 * histograms are merged with integer sums, so the result does not depend on the thread count. */
static int64_t histogram(const scan *sc, int level, uint32_t hi, int64_t *hist)
{
    memset(hist, 0, 65536 * sizeof *hist);
    int64_t total = 0;
    int64_t rows = (int64_t)sc->n_set * sc->r;
    /* Threads only pay for their 512 KB histograms on large sets (P bounds the columns). */
    bool par = rows * sc->P >= 16 * FIPS_PARALLEL_MIN;
#pragma omp parallel if (par)
    {
        int64_t *local = calloc(65536, sizeof *local);
        int64_t n = 0;
        bool ok = local != NULL;
#pragma omp for schedule(static)
        for (int64_t idx = 0; idx < rows; idx++) {
            if (!ok) continue;
            const fipsc_fips_matrix *mx = &sc->g->matrices[sc->set[idx / sc->r]];
            int64_t base = (idx % sc->r) * sc->P + mx->col_offset;
            const float *x = sc->src + base;
            for (int c = 0; c < mx->cols; c++) {
                if (bit_at(sc->mask, base + c) != sc->cand) continue;
                uint32_t key = abs_key(x[c]) ^ sc->flip;
                if (level == 0) {
                    local[key >> 16]++;
                    n++;
                } else if ((key >> 16) == hi) {
                    local[key & 0xFFFFu]++;
                    n++;
                }
            }
        }
#pragma omp critical(fips_mask_hist)
        {
            if (ok)
                for (int b = 0; b < 65536; b++) hist[b] += local[b];
            total += n;
        }
        free(local);
    }
    return total;
}

/* Finds the selection of the k largest keys among the candidates. */
static fipsc_status select_top(const scan *sc, int64_t k, selection *sel, int64_t *candidates,
                               fipsc_error *err)
{
    memset(sel, 0, sizeof *sel);
    int64_t *hist = malloc(65536 * sizeof *hist);
    if (!hist) return fipsc_fail(err, FIPSC_ERR_NOMEM, "FiPS masks: out of memory");
    int64_t n = histogram(sc, 0, 0, hist);
    if (candidates) *candidates = n;
    if (k <= 0 || n == 0) {
        sel->none = true;
    } else if (k >= n) {
        sel->all = true;
    } else {
        int64_t above = 0;
        uint32_t hi = 0;
        for (int b = 65535; b >= 0; b--) {
            if (above + hist[b] >= k) {
                hi = (uint32_t)b;
                break;
            }
            above += hist[b];
        }
        histogram(sc, 1, hi, hist);
        for (int b = 65535; b >= 0; b--) {
            if (above + hist[b] >= k) {
                sel->thresh = (hi << 16) | (uint32_t)b;
                sel->take_eq = k - above;
                sel->count_eq = hist[b];
                break;
            }
            above += hist[b];
        }
    }
    free(hist);
    return FIPSC_OK;
}

/* Does on_sel / on_unsel (KEEP_MASK, TO_PRUNED or TO_GROWN) to every candidate, zeroing V where
 * it prunes or grows. */
static void apply(const scan *sc, const selection *sel, int on_sel, int on_unsel, float *V)
{
    int64_t rows = (int64_t)sc->n_set * sc->r;
    /* Entries at the threshold need the set order only when some but not all of them are taken. */
    bool ordered = !sel->all && !sel->none && sel->take_eq < sel->count_eq;
    int64_t eq_seen = 0;
#pragma omp parallel for schedule(static) if (!ordered && rows * sc->P >= FIPS_PARALLEL_MIN)
    for (int64_t idx = 0; idx < rows; idx++) {
        const fipsc_fips_matrix *mx = &sc->g->matrices[sc->set[idx / sc->r]];
        int64_t base = (idx % sc->r) * sc->P + mx->col_offset;
        const float *x = sc->src + base;
        for (int c = 0; c < mx->cols; c++) {
            if (bit_at(sc->mask, base + c) != sc->cand) continue;
            bool selected;
            if (sel->all || sel->none) {
                selected = sel->all;
            } else {
                uint32_t key = abs_key(x[c]) ^ sc->flip;
                if (key != sel->thresh)
                    selected = key > sel->thresh;
                else
                    selected = ordered ? eq_seen++ < sel->take_eq : sel->take_eq > 0;
            }
            const int to = selected ? on_sel : on_unsel;
            if (to == KEEP_MASK) continue;
            if (to == TO_PRUNED) bit_clear(sc->mask, base + c);
            else bit_set(sc->grown, base + c);
            V[base + c] = 0.0f;
        }
    }
}

int64_t fipsc_fips_count_active(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                const int *set, int n_set)
{
    int n = 0, *owned = NULL;
    const int *list = fips_resolve_set(g, set, n_set, &n, &owned, NULL);
    if (!list) return -1;
    int64_t total = 0, rows = (int64_t)n * F->r;
#pragma omp parallel for schedule(static) reduction(+ : total) if (rows * F->P >= FIPS_PARALLEL_MIN)
    for (int64_t idx = 0; idx < rows; idx++) {
        const fipsc_fips_matrix *mx = &g->matrices[list[idx / F->r]];
        const int64_t base = (idx % F->r) * F->P + mx->col_offset;
        int64_t cnt = 0;
        for (int c = 0; c < mx->cols; c++) cnt += bit_at(F->mask, base + c);
        total += cnt;
    }
    free(owned);
    return total;
}

fipsc_status fipsc_fips_prune_magnitude(const fipsc_fips_group *g, fipsc_fips_factors *F,
                                        const int *set, int n_set, int64_t keep, fipsc_error *err)
{
    fipsc_status st = check_factors(g, F, err);
    if (st) return st;
    if (keep < 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "magnitude pruning: cannot keep %lld entries",
                          (long long)keep);
    int n = 0, *owned = NULL;
    const int *list = fips_resolve_set(g, set, n_set, &n, &owned, err);
    if (!list) return err ? err->code : FIPSC_ERR_ARG;
    scan sc = {g, F->r, F->P, list, n, F->V, F->mask, true, 0, NULL};
    selection sel;
    if (!(st = select_top(&sc, keep, &sel, NULL, err))) apply(&sc, &sel, KEEP_MASK, TO_PRUNED, F->V);
    free(owned);
    return st;
}

fipsc_status fipsc_fips_prune_nm(const fipsc_fips_group *g, fipsc_fips_factors *F, const int *set,
                                 int n_set, int n, int m, fipsc_error *err)
{
    fipsc_status st = check_factors(g, F, err);
    if (st) return st;
    if (m < 1 || m > 255 || n < 1 || n > m)
        return fipsc_fail(err, FIPSC_ERR_ARG, "n:m pruning: %d:%d is not valid (1 ≤ n ≤ m ≤ 255)", n, m);
    if (F->r % m)
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "n:m pruning: rank r = %d is not a multiple of m = %d (round the rank "
                          "down to a multiple of %d)", F->r, m, m);
    int cnt = 0, *owned = NULL;
    const int *list = fips_resolve_set(g, set, n_set, &cnt, &owned, err);
    if (!list) return err ? err->code : FIPSC_ERR_ARG;
    int runs = F->r / m;
    for (int a = 0; a < cnt; a++) {
        const fipsc_fips_matrix *mx = &g->matrices[list[a]];
#pragma omp parallel for schedule(static) if ((int64_t)F->r * mx->cols >= FIPS_PARALLEL_MIN)
        for (int run = 0; run < runs; run++) {
            float mag[255];
            for (int c = 0; c < mx->cols; c++) {
                int64_t base = (int64_t)run * m * F->P + mx->col_offset + c;
                for (int q = 0; q < m; q++) {
                    int64_t e = base + q * F->P;
                    mag[q] = bit_at(F->mask, e) ? fabsf(F->V[e]) : -1.0f; /* -1: already pruned */
                }
                /* Entry q survives if it is kept and fewer than n kept entries beat it (larger
                 * magnitude, or equal and earlier along r). */
                for (int q = 0; q < m; q++) {
                    if (mag[q] < 0.0f) continue;
                    int beaten = 0;
                    for (int o = 0; o < m && beaten < n; o++)
                        if (mag[o] > mag[q] || (mag[o] == mag[q] && o < q)) beaten++;
                    if (beaten >= n) {
                        int64_t e = base + q * F->P;
                        bit_clear(F->mask, e);
                        F->V[e] = 0.0f;
                    }
                }
            }
        }
    }
    free(owned);
    return FIPSC_OK;
}

bool fipsc_fips_nm_valid(const fipsc_fips_group *g, const fipsc_fips_factors *F, const int *set,
                         int n_set, int n, int m)
{
    if (m < 1 || n < 0 || F->r % m) return false;
    int cnt = 0, *owned = NULL;
    const int *list = fips_resolve_set(g, set, n_set, &cnt, &owned, NULL);
    if (!list) return false;
    bool ok = true;
    for (int a = 0; a < cnt && ok; a++) {
        const fipsc_fips_matrix *mx = &g->matrices[list[a]];
        for (int run = 0; run < F->r / m && ok; run++)
            for (int c = 0; c < mx->cols && ok; c++) {
                int kept = 0;
                for (int q = 0; q < m; q++)
                    kept += bit_at(F->mask, ((int64_t)run * m + q) * F->P + mx->col_offset + c);
                ok = kept <= n;
            }
    }
    free(owned);
    return ok;
}

fipsc_status fipsc_fips_rigl_update(const fipsc_fips_group *g, fipsc_fips_factors *F,
                                    const int *set, int n_set, const float *grad, double fraction,
                                    int64_t *moved, fipsc_error *err)
{
    fipsc_status st = check_factors(g, F, err);
    if (st) return st;
    if (!grad) return fipsc_fail(err, FIPSC_ERR_ARG, "RigL: the dense gradient is required");
    if (!(fraction >= 0.0 && fraction <= 1.0))
        return fipsc_fail(err, FIPSC_ERR_ARG, "RigL: drop fraction %g is not in [0, 1]", fraction);
    int n = 0, *owned = NULL;
    const int *list = fips_resolve_set(g, set, n_set, &n, &owned, err);
    if (!list) return err ? err->code : FIPSC_ERR_ARG;
    int64_t active = fipsc_fips_count_active(g, F, list, n);
    int64_t total = 0;
    for (int a = 0; a < n; a++) total += (int64_t)F->r * g->matrices[list[a]].cols;
    int64_t k = (int64_t)llround(fraction * (double)active);
    if (k > total - active) k = total - active; /* cannot grow more than there is room for */
    if (moved) *moved = k;
    if (k > 0) {
        /* Grow first, marking grown entries in a bit set of their own so that the drop pass (kept
         * entries) sees only the entries that were kept before this update; then the grown ones
         * join the kept. */
        const size_t words = fipsc_fips_mask_words(F);
        uint64_t *grown = calloc(words, sizeof *grown);
        if (!grown) {
            free(owned);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "RigL: out of memory");
        }
        scan grow = {g, F->r, F->P, list, n, grad, F->mask, false, 0, grown};
        scan drop = {g, F->r, F->P, list, n, F->V, F->mask, true, 0x7FFFFFFFu, grown};
        selection sel;
        if (!(st = select_top(&grow, k, &sel, NULL, err))) {
            apply(&grow, &sel, TO_GROWN, KEEP_MASK, F->V);
            if (!(st = select_top(&drop, k, &sel, NULL, err))) apply(&drop, &sel, TO_PRUNED, KEEP_MASK, F->V);
            for (size_t w = 0; w < words; w++) F->mask[w] |= grown[w];
        }
        free(grown);
    }
    free(owned);
    return st;
}
