/* FiPS core: one dense basis U shared by a group of MLPs, one sparse factor V_i per matrix.
 *
 * The method (docs/ALGORITHM.md, sections 2-8):
 *   - Every MLP matrix of a group is oriented d × f (expanding gate/up/fc1, stored [f, d], are
 *     transposed; contracting down/fc2, stored [d, f], already are) and concatenated into
 *     W_cat = [M_1 | ... | M_k] ∈ R^{d×P}, P = Σ f over the k matrices.
 *   - M_i ≈ U·V_i, U ∈ R^{d×r} dense, V_i ∈ R^{r×f} sparse. Expanding: h = V_iᵀ(Uᵀx);
 *     contracting: y = U(V_i h). Biases are kept as they are (not compressed, not trained).
 *   - r from a parameter budget, U and V from a truncated SVD of W_cat, masks on V by global
 *     magnitude pruning (GMP schedule), RigL, static or n:m, and training of U and the masked V_i
 *     to reproduce each original MLP's output on calibration rows (teacher forcing).
 *
 * Conventions: row-major everywhere. Model weights keep Hugging Face orientation [out, in].
 * Calibration rows are [n, d] (one token per row). U is [d, r]; all V_i live side by side in one
 * [r, P] array (V_i = its columns, leading dimension P), with a [r, P] bit mask next to it.
 * Masked entries of V are exactly zero. Nothing here prints; progress goes to a callback.
 * Determinism: everything here gives the same bits for a given seed whatever the number of
 * threads (OpenMP or OpenBLAS): GEMMs run as fixed column panels, one single-threaded sgemm each,
 * and the SVD initialisation runs LAPACK with OpenBLAS on one thread (see src/fips/init.c). */
#ifndef FIPSC_FIPS_H
#define FIPSC_FIPS_H

#include <stdbool.h>
#include <stdint.h>

#include "ops/mlp.h"
#include "core/status.h"

/* ------------------------------------------------------------------------------------------ */
/* 1-2. The group: which matrices, in which order, where they sit in W_cat.                    */

typedef struct fipsc_fips_matrix {
    int mlp;              /* index of its MLP in the group */
    fipsc_mlp_role role;
    bool expanding;       /* stored [f, d] and transposed into W_cat */
    int cols;             /* f: its number of columns in W_cat and in V */
    int64_t col_offset;   /* its first column in W_cat and in V */
} fipsc_fips_matrix;

/* A group of MLPs sharing one basis. Matrices are listed MLP by MLP, each MLP as gate, up, down
 * (gated) or up, down (plain), so one MLP's matrices occupy one contiguous column range. */
typedef struct fipsc_fips_group {
    int d;                        /* model width, shared by every MLP of the group */
    int n_mlps;
    const fipsc_mlp *mlps;        /* borrowed [n_mlps]; weights must be dense: linear.w, or
                                     linear.w16 (16-bit, widened where they are read) */
    int n_matrices;
    fipsc_fips_matrix *matrices;  /* [n_matrices] */
    int *first_matrix;            /* [n_mlps + 1]: MLP j owns matrices [first_matrix[j], first_matrix[j+1]) */
    int64_t P;                    /* columns of W_cat */
} fipsc_fips_group;

/* Describes the group formed by mlps[0..n_mlps) (borrowed: keep them alive). Checks that every
 * MLP has the same d, a valid kind and activation, dense weights of the right shapes, a gate
 * exactly when gated, and biases (optional) of the right length. */
fipsc_status fipsc_fips_group_init(fipsc_fips_group *g, const fipsc_mlp *mlps, int n_mlps,
                                   fipsc_error *err);
void fipsc_fips_group_free(fipsc_fips_group *g);

/* Index of MLP j's matrix with this role, or -1 (e.g. the gate of a plain MLP). */
int fipsc_fips_matrix_index(const fipsc_fips_group *g, int mlp, fipsc_mlp_role role);

/* Elements [first, first + count) of the original weight of matrix i ([out, in] as stored in the
 * model, row-major) as float32 into dst: a 16-bit weight widened, exactly. */
void fipsc_fips_matrix_weight_span(const fipsc_fips_group *g, int i, int64_t first, int64_t count, float *dst);

/* Writes W_cat [d, P] (row-major, leading dimension P) from the MLPs' weights; 16-bit weights are
 * widened a few hundred rows at a time (FIPSC_ERR_NOMEM only for those buffers). */
fipsc_status fipsc_fips_concat(const fipsc_fips_group *g, float *wcat, fipsc_error *err);

/* The inverse for one matrix: reads its d × cols block of columns from `block` (leading dimension
 * ld, e.g. wcat + col_offset with ld = P) and writes the weight in model orientation [out, in]
 * into w (transposing expanding matrices back to [f, d]). */
void fipsc_fips_uncat(const fipsc_fips_group *g, int i, const float *block, int64_t ld, float *w);

/* ------------------------------------------------------------------------------------------ */
/* Factors.                                                                                    */

typedef struct fipsc_fips_factors {
    int d, r;
    int64_t P;
    float *U;       /* [d, r] */
    float *V;       /* [r, P]; V_i = columns [col_offset, col_offset + cols), leading dim P */
    uint64_t *mask; /* [⌈r·P/64⌉] bits: entry e = k·P + c of V kept when bit e mod 64 of word
                       e/64 is set, pruned (and then V is 0 there) when clear; bits past r·P
                       are 0. A bit instead of a byte per entry: 1.1 GB less at the
                       Llama-3-8B shape's group of four (V of 1.3·10⁹ entries). */
} fipsc_fips_factors;

/* Whether entry e (= row·P + column) of V is kept, and setting it (not thread-safe for entries
 * sharing a 64-bit word: writers in parallel use fipsc_fips_mask_write). */
static inline bool fipsc_fips_kept(const fipsc_fips_factors *F, int64_t e)
{
    return (F->mask[e >> 6] >> (e & 63)) & 1;
}
static inline void fipsc_fips_set_kept(fipsc_fips_factors *F, int64_t e, bool kept)
{
    if (kept) F->mask[e >> 6] |= (uint64_t)1 << (e & 63);
    else F->mask[e >> 6] &= ~((uint64_t)1 << (e & 63));
}
/* Words of the mask of F (⌈r·P/64⌉). */
static inline size_t fipsc_fips_mask_words(const fipsc_fips_factors *F)
{
    return ((size_t)F->r * (size_t)F->P + 63) / 64;
}

/* Allocates U = 0, V = 0 and an all-ones mask. */
fipsc_status fipsc_fips_factors_alloc(fipsc_fips_factors *F, int d, int r, int64_t P,
                                      fipsc_error *err);
void fipsc_fips_factors_free(fipsc_fips_factors *F);

/* The compressed weight U·V_i of matrix i in model orientation [out, in]. */
fipsc_status fipsc_fips_factors_dense(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                      int i, float *w, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* 3. Budget: rank, kept parameters, storage bytes.                                            */

/* r = floor(p·d·P / (d + (1−s)·P)), the largest rank whose kept parameters d·r + (1−s)·r·P fit
 * in p·d·P, then rounded down to a multiple of `multiple` (0 or 1: no rounding; 64 for sparse
 * kernels; m for n:m). keep p ∈ (0, 1], sparsity s ∈ [0, 1). Fails if the result is 0. */
fipsc_status fipsc_fips_rank_from_budget(int d, int64_t P, double keep, double sparsity,
                                         int multiple, int *r, fipsc_error *err);

/* Entries kept when `total` entries are pruned to sparsity s: total − round(s·total). */
int64_t fipsc_fips_keep_count(int64_t total, double sparsity);

/* Bytes of one r × cols factor V_i stored in CSC (compressed sparse columns, one column per
 * neuron): float32 values [nnz], row indices [nnz] as uint16 when r ≤ 65535 else uint32, and
 * uint32 column pointers [cols + 1]. */
int64_t fipsc_fips_csc_bytes(int r, int cols, int64_t nnz);

/* Bytes of one r × cols factor V_i stored n:m-packed along r: for every column and every run of
 * m rows, n float32 values and n uint8 in-run indices (r/m·n·cols of each). */
int64_t fipsc_fips_nm_bytes(int r, int cols, int n, int m);

typedef struct fipsc_fips_cost {
    int64_t dense_params; /* d·P: the group's MLP weights before compression (no biases) */
    int64_t u_params;     /* d·r */
    int64_t nnz;          /* kept entries of all V_i */
    int64_t kept_params;  /* d·r + nnz: the paper's parameter count */
    int64_t dense_bytes;  /* 4·d·P (float32) */
    int64_t csc_bytes;    /* U (float32) + every V_i in CSC */
    int64_t nm_bytes;     /* U (float32) + every V_i n:m-packed; -1 unless n:m was given */
} fipsc_fips_cost;

/* The cost of compressing g at rank r: with sparsity s (global pruning), or, when nm_m > 0,
 * n:m masks (then s is ignored and nnz = n/m of every V_i). */
fipsc_status fipsc_fips_cost_predict(const fipsc_fips_group *g, int r, double sparsity, int nm_n,
                                     int nm_m, fipsc_fips_cost *out, fipsc_error *err);

/* The cost of trained factors, from their masks (nm_bytes = -1). */
void fipsc_fips_cost_measure(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                             fipsc_fips_cost *out);

/* One MLP's calibration rows (teacher forcing): inputs x [n, d] of the original MLP and its
 * original outputs y [n, d]. */
typedef struct fipsc_fips_calib {
    int64_t n;
    const float *x;
    const float *y;
} fipsc_fips_calib;

/* ------------------------------------------------------------------------------------------ */
/* 4. SVD initialisation.                                                                      */

typedef enum fipsc_fips_svd_method {
    FIPSC_FIPS_SVD_AUTO = 0, /* gesdd when d·P ≤ 2^22, else Gram */
    FIPSC_FIPS_SVD_GESDD,    /* thin SVD of W_cat (LAPACKE_sgesdd) */
    FIPSC_FIPS_SVD_GRAM      /* eigendecomposition of W_cat·W_catᵀ (d × d, accumulated and decomposed
                                in double: dsyrk + LAPACKE_dsyevd), then V = Uᵀ·W_cat */
} fipsc_fips_svd_method;

/* Divisor of the padding rows when r > rank (reference value). */
#define FIPSC_FIPS_PAD_TAU 32.0f

/* W_cat = A·Σ·Bᵀ: U = A[:, :r], V = (Σ·Bᵀ)[:r, :]. If r > rank = min(d, P), U's columns from
 * rank on are zero and V's row rank + j is row (j mod rank) divided by τ = 32, so U·V is still the
 * best rank-min(r, rank) approximation. Column signs are fixed so that the largest-magnitude entry
 * of every U column is positive (both methods then give the same factors up to rounding).
 * wcat is [d, P] (from fipsc_fips_concat); F must be allocated with the same d, P. The mask is
 * left alone. sigma, if not NULL, receives the min(d, P) singular values, descending. */
fipsc_status fipsc_fips_svd_init(const float *wcat, fipsc_fips_svd_method method,
                                 fipsc_fips_factors *F, float *sigma, fipsc_error *err);

/* Activation-aware ("whitened") initialisation, beyond the paper (ALGORITHM.md §5.1). With
 * C [d, d] the second moments of the group's MLP inputs, c̄ its mean diagonal, δ =
 * FIPSC_FIPS_WHITEN_DAMP and S = ((C + δ·c̄·I) / c̄)^(α/2) (symmetric), the SVD of S·W_cat gives U', V'
 * (as fipsc_fips_svd_init, padding included) and
 *     U = S⁻¹·U'  (columns scaled to unit length, the scale moved into V's rows),   V = V',
 * the rank-r factors minimising ‖S·(W_cat − U·V)‖_F: at α = 1 the error Σ_x ‖(W_cat − U·V)ᵀ·x‖²
 * over the calibration inputs (for gate and up exactly their pre-activation error; the down
 * matrices' output error is weighted by the same metric). α ∈ (0, 1]: ASVD's strength (default
 * FIPSC_FIPS_WHITEN_ALPHA). White inputs (C = c·I) give the plain SVD initialisation.
 * wcat [d, P] is overwritten (whitened); C [d, d] is read (both triangles, symmetric). */
#define FIPSC_FIPS_WHITEN_DAMP 0.01
#define FIPSC_FIPS_WHITEN_ALPHA 0.5
fipsc_status fipsc_fips_whitened_init(float *wcat, const double *C, double alpha,
                                      fipsc_fips_svd_method method, fipsc_fips_factors *F, fipsc_error *err);

/* C [d, d] = (1/N)·Σ_j Σ_rows x·xᵀ over the calibration inputs of every MLP of the group
 * (rows[j].x [rows[j].n, d]; N = Σ_j rows[j].n > 0), accumulated in double. The same bits for
 * any thread count. */
fipsc_status fipsc_fips_input_moments(const fipsc_fips_group *g, const fipsc_fips_calib *rows,
                                      double *C, fipsc_error *err);

/* Convenience: allocates F at rank r, builds W_cat, initialises by SVD (whiten = NULL) or by the
 * whitened SVD of strength alpha with the second moments of the calibration inputs
 * whiten[0..n_mlps), frees W_cat. */
fipsc_status fipsc_fips_init_group(const fipsc_fips_group *g, int r, fipsc_fips_svd_method method,
                                   const fipsc_fips_calib *whiten, double alpha, fipsc_fips_factors *F,
                                   fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* 5. Masks. A "set" is a list of matrix indices (NULL with n = 0 means every matrix). Entries of
 * a set are ordered matrix by matrix (in list order), then row by row; ties in magnitude are
 * broken by that order (earlier kept). Pruning sets V to 0 where the mask becomes 0.            */

/* Kept entries of the set (-1 if the set lists an index out of range or twice). */
int64_t fipsc_fips_count_active(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                const int *set, int n_set);

/* Global magnitude pruning: among the set's currently kept entries, keeps exactly `keep` with the
 * largest |V| (masks only shrink: if fewer are kept already, nothing changes). */
fipsc_status fipsc_fips_prune_magnitude(const fipsc_fips_group *g, fipsc_fips_factors *F,
                                        const int *set, int n_set, int64_t keep, fipsc_error *err);

/* n:m along r: in every column of every V_i of the set, in every run of m consecutive rows, keeps
 * the n kept entries with the largest |V|. Fails if r is not a multiple of m or n ∉ [1, m]. */
fipsc_status fipsc_fips_prune_nm(const fipsc_fips_group *g, fipsc_fips_factors *F, const int *set,
                                 int n_set, int n, int m, fipsc_error *err);

/* True if every run of m rows of every column of the set's V_i has at most n kept entries. */
bool fipsc_fips_nm_valid(const fipsc_fips_group *g, const fipsc_fips_factors *F, const int *set,
                         int n_set, int n, int m);

/* One RigL update: drops round(fraction · kept) kept entries of smallest |V| and grows as many
 * entries that were not kept, those of largest |grad| (the dense gradient, [r, P] like V), which
 * start at zero. The number of kept entries does not change; *moved (optional) = entries grown. */
fipsc_status fipsc_fips_rigl_update(const fipsc_fips_group *g, fipsc_fips_factors *F,
                                    const int *set, int n_set, const float *grad, double fraction,
                                    int64_t *moved, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Schedules.                                                                                  */

/* Gradual magnitude pruning, accelerated cubic (sparsimony's AcceleratedCubicScheduler, with the
 * cubic normalised by t_end − t_accel so that it reaches s_final exactly at t_end):
 *   s(t) = s_initial                                                  t < t_accel
 *          s_final + (s_accel − s_final)·(1 − (t − t_accel)/(t_end − t_accel))³   t_accel ≤ t < t_end
 *          s_final                                                    t ≥ t_end
 * s_accel and s_initial are capped at s_final (a final sparsity below 0.5 skips the jump). */
typedef struct fipsc_fips_gmp {
    int t_accel, t_end, delta_t;
    double s_initial, s_accel, s_final;
} fipsc_fips_gmp;

double fipsc_fips_gmp_sparsity(const fipsc_fips_gmp *s, int t);
/* The mask is recomputed at t = 0, Δt, 2Δt, ... below t_end, and at t_end itself. */
bool fipsc_fips_gmp_prunes_at(const fipsc_fips_gmp *s, int t);

/* RigL drop fraction α/2·(1 + cos(π·t/t_end)) for 0 ≤ t ≤ t_end, 0 after. */
double fipsc_fips_rigl_fraction(double alpha, int t, int t_end);
/* RigL updates the mask at t = Δt, 2Δt, ... while t < t_end. */
bool fipsc_fips_rigl_updates_at(int t, int t_end, int delta_t);

/* Cosine learning rate over steps t = 0 .. T−1: lr_min + (lr_max − lr_min)·½(1 + cos(π·t/T)). */
float fipsc_fips_cosine_lr(float lr_max, float lr_min, int t, int T);

/* ------------------------------------------------------------------------------------------ */
/* AdamW (decoupled weight decay, as torch.optim.AdamW).                                       */

typedef struct fipsc_adamw {
    float beta1, beta2, eps, weight_decay; /* 0.9, 0.999, 1e-8, 0.1 */
} fipsc_adamw;

/* One AdamW step (t ≥ 1 for the bias corrections) on a rows × cols block: parameters p with
 * leading dimension ld_p and the optional bit mask (fipsc_fips_factors.mask; element (i, j) of the
 * block is its bit mask_at + i·ld_p + j), moments m, v with ld_mv, gradient g with ld_g.
 * Masked entries get p = m = v = 0 and are otherwise untouched, so a weight regrown later starts
 * from zero state. For each kept entry:
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,
 *   p ← p·(1 − lr·wd) − lr·(m/(1−β1^t)) / (√(v/(1−β2^t)) + eps). */
void fipsc_adamw_step(const fipsc_adamw *o, int t, float lr, int64_t rows, int64_t cols,
                      float *p, const uint64_t *mask, int64_t mask_at, int64_t ld_p, float *m, float *v,
                      int64_t ld_mv, const float *g, int64_t ld_g);

/* The same step with the moments stored as bfloat16 (src/fips/optim.c): read, updated in float32,
 * stored by stochastic rounding with random bits from (seed, t, the entry's mask index). */
void fipsc_adamw_step_bf16(const fipsc_adamw *o, int t, float lr, int64_t rows, int64_t cols, float *p,
                           const uint64_t *mask, int64_t mask_at, int64_t ld_p, uint16_t *m, uint16_t *v,
                           int64_t ld_mv, const float *g, int64_t ld_g, uint64_t seed);

/* ------------------------------------------------------------------------------------------ */
/* 6. Reconstruction: forward, loss and gradients.                                             */

/* The compressed MLP j of the group (using F, biases from the original MLP) on rows x [n, d],
 * writing y [n, d]. */
fipsc_status fipsc_fips_forward(const fipsc_fips_group *g, const fipsc_fips_factors *F, int mlp,
                                const float *x, int64_t n, float *y, fipsc_error *err);

/* Relative reconstruction error ‖y_c − y‖_F / ‖y‖_F of MLP j over all its calibration rows. */
fipsc_status fipsc_fips_relative_error(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                       int mlp, const fipsc_fips_calib *calib, double *out,
                                       fipsc_error *err);

/* The joint objective over the listed MLPs, one batch each:
 *   L = Σ_k scale[k] · Σ_rows ‖MLP_c,mlps[k](batch[k].x) − batch[k].y‖²
 * and its dense gradient (masks are not applied): dU [d, r] (overwritten) and dV [r, P]
 * (the columns of the listed MLPs' matrices are overwritten, others left alone). The trainer uses
 * scale = 1 / (n·d·mean square of the MLP's whole calibration target). */
fipsc_status fipsc_fips_loss_grad(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                  int n_list, const int *mlps, const fipsc_fips_calib *batch,
                                  const double *scale, double *loss, float *dU, float *dV,
                                  fipsc_error *err);

/* The same loss and gradient by the V-sparse step (the trainer's once V is sparse enough): the
 * products with V read only the entries the mask keeps (F->mask required), and dV holds the
 * gradient at the kept entries and 0 at the others (the optimiser never reads those). Equal to
 * fipsc_fips_loss_grad there up to float rounding (the sums run in another order). */
fipsc_status fipsc_fips_loss_grad_kept(const fipsc_fips_group *g, const fipsc_fips_factors *F, int n_list,
                                       const int *mlps, const fipsc_fips_calib *batch, const double *scale,
                                       double *loss, float *dU, float *dV, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* 6. Training.                                                                                */

typedef enum fipsc_fips_mode {
    FIPSC_FIPS_JOINT = 0, /* all MLPs of the group together: L = Σ_j MSE_j / mean(y_j²) */
    FIPSC_FIPS_LOCAL      /* reference: one MLP after the other, fresh AdamW + schedule each */
} fipsc_fips_mode;

typedef enum fipsc_fips_mask_kind {
    FIPSC_FIPS_MASK_GMP = 0, /* gradual magnitude pruning (LLM default) */
    FIPSC_FIPS_MASK_RIGL,    /* prune to s at the start, then drop/grow (ViT default) */
    FIPSC_FIPS_MASK_STATIC,  /* prune to s once at the start */
    FIPSC_FIPS_MASK_NM       /* n:m along r, once at the start */
} fipsc_fips_mask_kind;

typedef struct fipsc_fips_progress {
    int group;              /* opts.group_index */
    int mlp;                /* the MLP being trained, or -1 in joint mode */
    int step, steps;        /* step in 1..steps of the current phase */
    double loss;            /* this step's minibatch loss (Σ of normalised per-MLP losses) */
    const double *mlp_loss; /* [n_mlps]: each MLP's normalised loss at this step (joint mode;
                               in local mode only entry `mlp` is meaningful) */
    double sparsity;        /* fraction of pruned entries among the V_i being trained */
    float lr;
} fipsc_fips_progress;

typedef void (*fipsc_fips_progress_fn)(void *user, const fipsc_fips_progress *p);

/* How the training step multiplies by V (src/fips/recon.c). */
typedef enum fipsc_fips_v_products {
    FIPSC_FIPS_V_AUTO = 0, /* sparse once V's kept fraction is at most FIPSC_FIPS_SPARSE_STEP_DENSITY */
    FIPSC_FIPS_V_DENSE,    /* always dense GEMMs over the masked V */
    FIPSC_FIPS_V_SPARSE    /* always the kept entries only (but at RigL's updates, which need every
                              entry's gradient) */
} fipsc_fips_v_products;

/* The kept fraction of V at and below which the V-sparse step is faster than dense GEMMs
 * (measured: BENCHMARKS.md, bench_fips_step). */
#define FIPSC_FIPS_SPARSE_STEP_DENSITY 0.35

/* Bytes the V-sparse step adds to training: `kept` entries of V as lists (matrices of r rows and at
 * most f_max columns) and the row tiles of a step of `rows` rows per MLP. */
int64_t fipsc_fips_sparse_step_bytes(int64_t kept, int r, int f_max, int64_t rows);

typedef struct fipsc_fips_train_opts {
    fipsc_fips_mode mode;
    fipsc_fips_mask_kind mask;
    double sparsity;        /* final sparsity of V (GMP, RigL, static) */
    bool per_matrix;        /* prune every V_i to `sparsity` on its own instead of globally */
    int nm_n, nm_m;         /* n:m (2:4) */
    int steps;              /* optimiser steps per phase (joint: in all; local: per MLP) */
    int batch_rows;         /* calibration rows per MLP per step (all rows if larger) */
    float lr, lr_min;       /* cosine schedule from lr to lr_min */
    fipsc_adamw adamw;
    int delta_t;            /* mask update interval (GMP, RigL) */
    double end_fraction;    /* t_end = end_fraction·steps (GMP, RigL) */
    double gmp_accel_fraction;          /* t_accel = gmp_accel_fraction·steps */
    double gmp_initial, gmp_accelerated;/* 0.05 and 0.5 */
    double rigl_alpha;      /* initial drop fraction */
    bool evaluate;          /* compute relative errors before/after over all calibration rows */
    const fipsc_fips_calib *holdout; /* NULL, or [n_mlps] rows training never sees (n = 0: none for
                                        that MLP): the iterate with the lowest held-out score
                                        (fipsc_fips_holdout_score) among those evaluated is kept */
    int eval_every;         /* held-out evaluation every this many steps once the mask has its
                               final sparsity, and after the last step (0: steps / 20, ≥ 1) */
    bool bf16_moments;      /* V's Adam moments stored as bfloat16 with stochastic rounding
                               (half their memory; fipsc_adamw_step_bf16) instead of float32 */
    fipsc_fips_v_products v_products; /* dense or V-sparse products (default: auto) */
    uint64_t seed;
    int group_index;        /* passed through to the progress callback */
    fipsc_fips_progress_fn progress;
    void *progress_user;
    int progress_every;     /* call progress every this many steps (and at each phase's end) */
} fipsc_fips_train_opts;

/* Σ_j ‖ŷ_j − y_j‖²_F / ‖y_j‖²_F over the MLPs j of the group whose rows[j].n > 0: the training
 * objective's relative squared error, on rows given here (held-out rows). *score = NaN when no
 * MLP has rows. */
fipsc_status fipsc_fips_holdout_score(const fipsc_fips_group *g, const fipsc_fips_factors *F,
                                      const fipsc_fips_calib *rows, double *score, fipsc_error *err);

/* Joint, GMP to 0.75, 800 steps of 8192 rows, lr 1e-4 → 1e-6, AdamW(0.9, 0.999, 1e-8, wd 0.1),
 * Δt 50, t_end 0.75·T, t_accel 0.25·T, 0.05 → 0.5 → s, RigL α 0.1, evaluate, seed 1. */
void fipsc_fips_train_defaults(fipsc_fips_train_opts *o);

typedef struct fipsc_fips_train_report {
    int n_mlps;
    double *rel_err_before; /* [n_mlps]: ‖y_c − y‖/‖y‖ over all calibration rows before training */
    double *rel_err_after;  /* [n_mlps]: the same after (NaN for both if !opts.evaluate) */
    double final_loss;      /* last step's loss */
    int64_t nnz;            /* kept entries of V after training */
    double sparsity;        /* 1 − nnz / (r·P) */
    /* With held-out rows (else NaN, NaN, total steps, 0): */
    double holdout_last;    /* score of the last iterate */
    double holdout_kept;    /* score of the iterate kept (≤ holdout_last) */
    int kept_step;          /* steps run when the kept iterate was taken (all phases counted) */
    int evaluations;        /* held-out evaluations made */
    int sparse_steps;       /* steps (all phases) run with the V-sparse products */
} fipsc_fips_train_report;

void fipsc_fips_train_report_free(fipsc_fips_train_report *rep);

/* Trains F (initialised, e.g. by fipsc_fips_init_group) on calib[0..n_mlps) (MLP j's rows).
 * Minibatches are drawn from each MLP's rows by a seeded shuffle. With opts.holdout, F ends as the
 * best evaluated iterate whose mask had its final sparsity (in local mode: of the last phase,
 * when every V_i has its final mask), the last one unless an earlier one scored lower. Fails with FIPSC_ERR_NUMERIC if
 * the loss becomes NaN/Inf (the message names the step and suggests a lower learning rate). */
fipsc_status fipsc_fips_train(const fipsc_fips_group *g, fipsc_fips_factors *F,
                              const fipsc_fips_calib *calib, const fipsc_fips_train_opts *opts,
                              fipsc_fips_train_report *rep, fipsc_error *err);

/* Step-level access (fipsc_fips_train is a loop over these; the benchmark times single steps).
 * A trainer runs one phase: all MLPs (mlp = -1, joint) or one MLP (local mode's phase j), with
 * its own AdamW state and schedules over opts->steps; `mlp` selects the phase (opts->mode and
 * opts->evaluate are not used here). The progress callback is called from trainer_step. */
typedef struct fipsc_fips_trainer fipsc_fips_trainer;

fipsc_status fipsc_fips_trainer_new(const fipsc_fips_group *g, fipsc_fips_factors *F,
                                    const fipsc_fips_calib *calib,
                                    const fipsc_fips_train_opts *opts, int mlp,
                                    fipsc_fips_trainer **out, fipsc_error *err);
/* Runs the next step (mask update if due, forward, backward, AdamW); *loss = its loss. */
fipsc_status fipsc_fips_trainer_step(fipsc_fips_trainer *tr, double *loss, fipsc_error *err);
/* Floating-point operations of one step's GEMMs (forward + backward). */
double fipsc_fips_trainer_step_flops(const fipsc_fips_trainer *tr);
/* Steps run so far, and whether the mask has its final sparsity (GMP: after the step at t_end;
 * RigL, static, n:m: after the first step). */
int fipsc_fips_trainer_steps_done(const fipsc_fips_trainer *tr);
/* Steps run so far with the V-sparse products (opts.v_products). */
int fipsc_fips_trainer_sparse_steps(const fipsc_fips_trainer *tr);
bool fipsc_fips_trainer_mask_final(const fipsc_fips_trainer *tr);
void fipsc_fips_trainer_free(fipsc_fips_trainer *tr);

/* The chain rule from the gradient of a dense weight to its FiPS factors (for training through a
 * dense reconstruction, e.g. end-to-end distillation): with W_i's gradient dW in the model's
 * [out, in] orientation ([f, d] when expanding, [d, f] when contracting), U [d, r] and V_i [r, f]
 * dense (pruned entries 0):  dU += dM·V_iᵀ,  dV = Uᵀ·dM [r, f],  dM = dW in d × f orientation. */
void fipsc_fips_chain_dense_grad(int d, int r, int f, bool expanding, const float *U, const float *V, const float *dW,
                                 float *dU, float *dV);

#endif
