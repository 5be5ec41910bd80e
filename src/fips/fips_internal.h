/* Internals shared by the FiPS module's files (not part of the public API). */
#ifndef FIPSC_FIPS_INTERNAL_H
#define FIPSC_FIPS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rng.h"
#include "fips/fips.h"
#include "ops/factored.h"
#include "ops/gemm.h"

/* Elementwise loops run on OpenMP threads only above this many elements: below it, starting the
 * threads costs more than the loop, and on a busy machine waiting threads spin for nothing. */
#define FIPS_PARALLEL_MIN ((int64_t)1 << 18)

/* ---- Matrix sets ---- */
/* Resolves (set, n_set) to an explicit list: NULL/0 means every matrix of the group. Returns the
 * list (set itself or a malloc'ed 0..n-1 list in *owned, which the caller frees) or NULL after
 * failing on an out-of-range or repeated index. */
const int *fips_resolve_set(const fipsc_fips_group *g, const int *set, int n_set, int *n_out,
                            int **owned, fipsc_error *err);

/* ---- The kept entries of V as lists, for the V-sparse step (sparse_v.c) ---- */
typedef struct fips_sparse_v {
    int first, n;                   /* the group's matrices first .. first + n - 1 */
    fipsc_factored_linear *by_col;  /* [n]: V_i's kept entries per column (CSC lists) */
    fipsc_factored_linear *by_row;  /* [n]: per row (CSR lists) */
} fips_sparse_v;

/* Builds s (freed first) from the mask and values of matrices [m0, m1) of the group. */
fipsc_status fips_sparse_v_build(fips_sparse_v *s, const fipsc_fips_group *g, const fipsc_fips_factors *F, int m0,
                                 int m1, fipsc_error *err);
/* Copies V's current values into the lists (the pattern unchanged); rows_current: the row lists
 * already hold them (fips_adamw_kept refreshed them), only the column lists are copied. */
void fips_sparse_v_load(fips_sparse_v *s, const fipsc_fips_group *g, const fipsc_fips_factors *F, bool rows_current);
void fips_sparse_v_free(fips_sparse_v *s);

/* AdamW (optim.c) on the kept entries of one V_i only, listed by `rows` (its row lists), with the
 * gradient g in list order (one value per kept entry, what the V-sparse step computes): the same
 * update as fipsc_adamw_step(_bf16) there, entry0 = the flat index of V_i's entry (0, 0) in V
 * (the bf16 moments' random bits), p [r, ld_p], moments [r, ld_mv] float or (bf16) uint16_t. The
 * pruned entries are not touched (their values are 0; their moments are never read again: only
 * RigL grows entries back, after a dense step, whose update zeroes every pruned entry's moments),
 * and the lists' values are refreshed from the updated p. */
void fips_adamw_kept(const fipsc_adamw *o, int t, float lr, fipsc_factored_linear *rows, float *p, int64_t ld_p,
                     int64_t entry0, void *m, void *v, int64_t ld_mv, bool bf16, uint64_t seed, const float *g);

/* ---- Reconstruction workspace (recon.c) ---- */
typedef struct fips_work {
    int64_t rows; /* capacity in calibration rows */
    int d, r, f_max;
    float *z, *w, *dw;            /* [rows, r]: Uᵀx, V_d·a (per row), and their gradients */
    float *g, *s, *hu, *a, *da;   /* [rows, f]: gate pre-act, act(gate), up, MLP hidden, dA */
    float *y;                     /* [rows, d]: output, then dL/dy */
    float *gbuf;                  /* [r, f_max]: one V_i's gradient */
    double *rowsum;               /* [rows]: per-row squared errors, summed in a fixed order */
    /* The V-sparse step (recon.c): when `sparse` is set, the products with V_i read its kept
     * entries from these lists, and their inputs are first laid out as row tiles
     * (src/ops/factored_tiles.h); NULL: dense GEMMs over the masked V. */
    const fips_sparse_v *sparse;
    float *zT, *dwT;              /* tiles of z and dw (width r) */
    float *aT, *gT, *hT;          /* tiles of a, dG and dH (width f_max) */
} fips_work;

fipsc_status fips_work_init(fips_work *w, const fipsc_fips_group *g, int r, int64_t rows,
                            fipsc_error *err);
/* Allocates the tile buffers of the V-sparse step (once; a no-op after). */
fipsc_status fips_work_tiles(fips_work *w, fipsc_error *err);
void fips_work_free(fips_work *w);

/* Forward of MLP j on x [n, d] (n ≤ rows); the output is left in w->y [n, d] and the
 * activations stay in the workspace for the backward pass. */
void fips_mlp_forward(fips_work *w, const fipsc_fips_group *g, const fipsc_fips_factors *F, int j,
                      const float *x, int64_t n);

/* Receives the gradient [r, cols] (leading dimension cols) of matrix i; in the V-sparse step
 * (w->sparse set) its kept entries only, one value each in the order of V_i's row lists
 * (w->sparse->by_row). Called once per matrix of the MLP, after the backward pass's last read of
 * V_i, so the sink may update V_i in place. */
typedef void (*fips_grad_sink)(void *user, int matrix, const float *grad);

/* Forward, loss scale·Σ‖y_c − y‖² and backward of MLP j on (x, t) [n, d]. dU [d, r] is
 * overwritten (accumulate = false) or added to. Returns the loss; if it is not finite, returns it
 * without running the backward pass (no sink is called, dU untouched). */
double fips_mlp_loss_backward(fips_work *w, const fipsc_fips_group *g, const fipsc_fips_factors *F,
                              int j, const float *x, const float *t, int64_t n, double scale,
                              float *dU, bool accumulate, fips_grad_sink sink, void *user);

/* ---- A copy of the factors (best_iterate.c): the best iterate while training goes on ---- */
typedef struct fips_snapshot {
    float *U;         /* [d, r] */
    uint64_t *bits;   /* [⌈r·P/64⌉]: the mask of V, entry e at bit e mod 64 of word e/64 */
    float *values;    /* [capacity]: V's kept entries in row-major order */
    size_t capacity;
} fips_snapshot;

/* Copies F into s (allocated at the first take; later takes reuse the buffers). Masked entries of
 * V must be 0 (the factors' invariant): restore writes them as 0. */
fipsc_status fips_snapshot_take(fips_snapshot *s, const fipsc_fips_factors *F, fipsc_error *err);
void fips_snapshot_restore(const fips_snapshot *s, fipsc_fips_factors *F);
void fips_snapshot_free(fips_snapshot *s);

/* The best held-out iterate of a training run so far (best_iterate.c). */
typedef struct fips_selection {
    const fipsc_fips_calib *holdout; /* NULL: no selection */
    int every;                       /* evaluate every this many steps once the mask is final */
    fips_snapshot best;
    double best_score, last_score;
    int best_step, evaluations;
} fips_selection;

/* After a step of tr (a phase of `steps` steps, steps_before run in earlier phases): scores the
 * iterate when it is due and a candidate, and keeps a copy of the best; the last step of the last
 * phase is always scored (the report's holdout_last). */
fipsc_status fips_selection_consider(fips_selection *sel, const fipsc_fips_group *g, fipsc_fips_factors *F,
                                     const fipsc_fips_trainer *tr, int steps, bool last_phase, int steps_before,
                                     fipsc_error *err);

/* ---- SVD initialisation (init.c), shared with the whitened one (whiten.c) ---- */
/* G [d, d] (upper triangle) = chunk·chunkᵀ (first) or G + chunk·chunkᵀ, chunk [d, n] in double.
 * Fixed 256 × 256 tiles on OpenMP threads, each one single-threaded BLAS call: the same bits for
 * any thread count. */
void fips_gram_accumulate(double *G, int d, const double *chunk, int64_t n, bool first);

/* Makes the largest-magnitude entry of each of U's first k columns (U [d, r]) positive, flipping
 * the matching row of V [r, P] when V is given. False when out of memory. */
bool fips_fix_signs(float *U, int d, int r, int k, float *V, int64_t P);

/* r > k = rank: V row k + q = V row (q mod k) / τ (U's columns from k on are zero). */
void fips_pad_rows(fipsc_fips_factors *F, int k);

/* GEMM floating-point operations of one forward+backward of MLP j on n rows. */
double fips_mlp_step_flops(const fipsc_fips_group *g, int r, int j, int64_t n);

#endif
