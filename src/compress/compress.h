/* Compressing a model's MLPs: calibration, FiPS (or a baseline) group by group, and a report.
 *
 * The pipeline (docs/ALGORITHM.md):
 *   1. calibration: run the ORIGINAL model over calibration data and keep, for every MLP that will
 *      be compressed, its input rows x and output rows y (teacher forcing: every compressed MLP
 *      learns from original inputs, never from the outputs of already-compressed layers).
 *      src/compress/calibration.h does this for every family, by capability: token corpora for
 *      language models, images for image classifiers, sentences for sentence encoders. By default
 *      the rows are streamed: a group's rows are captured when its turn comes, by running its
 *      original blocks from the residual stream the earlier blocks left (model/residual_stream.h),
 *      so one group's rows are in memory at a time.
 *   2. a plan: groups of consecutive blocks ("2" or "0-1,2-4"), the rank of each group from the
 *      parameter budget, the storage of its V_i (fipsc_compress_plan).
 *   3. per group: the method (FiPS, or a baseline at the same parameter budget), then the group's
 *      matrices are replaced in the model (fipsc_model_attach_group, src/model/compressed.h),
 *      or, with `dense_reconstruction`, by their dense reconstructions [out, in].
 *   4. a report: per matrix ‖W − Ŵ‖_F/‖W‖_F, per MLP ‖ŷ − y‖_F/‖y‖_F over the calibration rows
 *      before and after training, nnz, parameters and bytes against dense, time per group.
 *
 * Parameter accounting, identical for every method (p = budget, s = sparsity, d × f oriented
 * matrices, P = Σ f over a group's matrices):
 *   fips, fips-init: one U [d, r] per group, r = floor(p·d·P / (d + (1−s)·P)), V at sparsity s
 *                    (or n:m, s = 1 − n/m, with r rounded down to a multiple of m);
 *   shared-svd:      the same with s = 0 (dense V = UᵀW_cat, no training);
 *   svd:             per matrix k = floor(p·d·f / (d + f)), U_k [d, k], V_k [k, f] dense;
 *   magnitude:       per matrix the floor(p·d·f) largest |w| (or n:m along d in every column of
 *                    the d × f orientation), no basis.
 * Kept parameters = Σ d·r + Σ nnz(V); bytes count what the storage really holds (values, indices,
 * column pointers), see fipsc_fips_csc_bytes / fipsc_fips_nm_bytes.
 *
 * Determinism: for a given model, calibration and options (seed included) the result is the
 * same bit for bit, whatever the thread count. Nothing here prints; progress goes to a callback. */
#ifndef FIPSC_COMPRESS_H
#define FIPSC_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "compress/calibration.h"
#include "model/compressed.h"
#include "formats/corpus.h"
#include "fips/fips.h"
#include "model/model.h"
#include "core/status.h"

/* ------------------------------------------------------------------------------------------ */
/* Options.                                                                                    */

typedef enum fipsc_compress_method {
    FIPSC_METHOD_FIPS = 0,   /* shared U + sparse V_i, SVD init, trained (the default) */
    FIPSC_METHOD_FIPS_INIT,  /* the same initialisation and pruning, no training */
    FIPSC_METHOD_SHARED_SVD, /* shared U, dense V = UᵀW_cat (s = 0), no training */
    FIPSC_METHOD_SVD,        /* per-matrix truncated SVD */
    FIPSC_METHOD_MAGNITUDE,  /* per-matrix magnitude pruning (or n:m) */
    FIPSC_METHOD_COUNT
} fipsc_compress_method;

/* "fips", "fips-init", "shared-svd", "svd", "magnitude". */
const char *fipsc_compress_method_name(fipsc_compress_method method);
bool fipsc_compress_method_parse(const char *name, fipsc_compress_method *out);

/* "gmp", "rigl", "static" or "n:m": the name --schedule takes (n:m is chosen by --nm). */
const char *fipsc_compress_schedule_name(fipsc_fips_mask_kind schedule);

/* "auto", "dense", "sparse": what --v-products takes. */
const char *fipsc_compress_v_products_name(fipsc_fips_v_products p);
bool fipsc_compress_v_products_parse(const char *name, fipsc_fips_v_products *out);

/* u_dtype / v_dtype "auto": the dtype the group's MLP weights came in (F16 or BF16 when every
 * one of them did, else F32), so that a BF16 checkpoint compresses to BF16 values. */
#define FIPSC_COMPRESS_DTYPE_AUTO FIPSC_DTYPE_COUNT
/* storage "auto": per group, the cheapest in bytes for the entries training kept. */
#define FIPSC_COMPRESS_STORAGE_AUTO (-1)

/* How the shared basis starts (fips, fips-init, shared-svd): the paper's SVD of W_cat, or the SVD
 * of W_cat whitened by the calibration inputs' second moments (beyond the paper, ALGORITHM.md
 * §5.1). */
typedef enum fipsc_compress_init { FIPSC_INIT_SVD = 0, FIPSC_INIT_WHITENED } fipsc_compress_init;

typedef enum fipsc_spill_mode { FIPSC_SPILL_AUTO = 0, FIPSC_SPILL_ALWAYS, FIPSC_SPILL_NEVER } fipsc_spill_mode;

typedef struct fipsc_compress_options {
    fipsc_compress_method method;
    double budget;              /* p ∈ (0, 1]: fraction of each group's dense MLP parameters kept */
    double sparsity;            /* s ∈ [0, 1): final sparsity of V (fips, fips-init) */
    int nm_n, nm_m;             /* n:m sparsity instead of s (0:0 = none): fips, fips-init,
                                   magnitude. FiPS ranks are rounded down to a multiple of m. */
    int rank;                   /* 0: from the budget; > 0: this rank for every FiPS group */
    const char *groups;         /* group spec (see fipsc_groups_parse) */
    fipsc_fips_mask_kind schedule; /* GMP, RIGL or STATIC (n:m implies a fixed n:m mask) */
    fipsc_fips_mode mode;       /* joint (default) or local */
    int steps;                  /* optimiser steps (joint: per group; local: per MLP) */
    int batch_rows;             /* calibration rows per MLP per step */
    float lr, lr_min;           /* cosine schedule from lr to lr_min */
    float weight_decay;         /* AdamW decoupled weight decay */
    uint64_t seed;              /* group g trains with fipsc_seed_derive(seed, g) */
    fipsc_dtype u_dtype;        /* U in the written file: F32, F16, BF16 or
                                   FIPSC_COMPRESS_DTYPE_AUTO (default); the attached model holds
                                   U rounded to it, so it runs what the file holds */
    fipsc_dtype v_dtype;        /* the V values in the written file: the same choices */
    int storage;                /* FIPSC_COMPRESS_STORAGE_AUTO (default): per group the cheapest
                                   of csc, bitmap and dense in bytes (n:m with --nm); else the
                                   fipsc_v_storage every group uses (csc, bitmap or dense) */
    bool dense_reconstruction;  /* replace each matrix by U·V_i densely instead of attaching the
                                   compressed form (for evaluation and tests) */
    double holdout;             /* fips: fraction of each MLP's calibration rows held out from
                                   training (whole sequences where they are of one length) to
                                   choose the iterate kept (default 0.1; 0: none, then the
                                   training rows judge) */
    bool strict;                /* fips: fail when training does not beat its initialisation */
    fipsc_compress_init init;   /* svd (default) or whitened */
    double whiten_alpha;        /* whitened: the strength α ∈ (0, 1] (default 0.5, ASVD's) */
    bool bf16_moments;          /* fips: V's Adam moments in bfloat16 with stochastic rounding
                                   (--adam-moments bf16: half the optimiser state) instead of
                                   float32 (default) */
    fipsc_fips_v_products v_products; /* fips: the training step's products with V: auto (default:
                                   over V's kept entries once it keeps at most
                                   FIPSC_FIPS_SPARSE_STEP_DENSITY of them), dense or sparse
                                   (--v-products) */
    bool sequential;            /* sequential calibration (beyond the paper): group k's rows are
                                   captured just before it, on the model with groups 0..k-1
                                   already compressed, so its MLPs are fitted on the inputs they
                                   will get (targets: the original MLPs on those inputs); false
                                   (default): every group's rows come from the original model
                                   (teacher forcing). Needs calibration inputs that do not depend
                                   on the model (a corpus, a text, images, sentences) */
    bool capture_all;           /* teacher forcing: every group's rows captured in one forward
                                   before the first group (the pipeline before streaming: all rows
                                   held at once); false (default): streamed, each group's rows
                                   captured when the compressor reaches it by running the original
                                   blocks from the residual stream where the previous group's
                                   stopped (model/residual_stream.h) — the same rows, the same
                                   output bits, one group's rows in memory */
    int64_t max_memory;         /* bytes the run may hold (--max-memory): the memory plan
                                   (fipsc_compress_memory_plan) must fit before any work; 0: the
                                   machine's physical memory less 10 %; -1: no limit */
    fipsc_spill_mode spill;     /* where the calibration rows live: auto (default) keeps them in
                                   memory unless the memory plan needs them spilled to a scratch
                                   file; always; never */
    const char *scratch_dir;    /* the directory of that file (NULL: $TMPDIR, else /tmp) */
    const struct fipsc_compress_ranks *ranks; /* the run is one of several processes, each
                                   computing some of the groups (NULL: this process computes all) */
    int divergence_retries;     /* fips: when a group's training diverges (its loss becomes NaN,
                                   Inf or above 1e4 times its target's mean square), train it again from the same initialisation with lr and
                                   lr_min halved, up to this many times (0: fail at once) */
} fipsc_compress_options;

/* The defaults, tuned on models/stories260K.bin (BENCHMARKS.md): fips, budget 0.5, sparsity
 * 0.75, groups "2", GMP, joint, 4000 steps of 128 rows, lr 1e-2 → 1e-4, weight decay 0, seed 1,
 * U as F32. (Many small steps beat few large ones at equal cost; joint beats local.) */
void fipsc_compress_defaults(fipsc_compress_options *o);

/* The defaults for models of `family`: fipsc_compress_defaults, then the family's own training
 * settings (fipsc_family.defaults: groups, schedule, mode, sparsity, steps, batch, learning
 * rates, weight decay) where it has them. */
struct fipsc_family;
void fipsc_compress_defaults_for(fipsc_compress_options *o, const struct fipsc_family *family);

/* A default learning rate lr of `family` for a model of width d: lr·lr_width/d when d is wider
 * than the family's lr_width (fipsc_family_defaults), else lr. */
float fipsc_compress_default_lr(float lr, const struct fipsc_family *family, int d);

/* Checks every option on its own (ranges, method/option combinations); the message names the
 * option as the command line spells it (--budget, --nm, ...). FIPSC_ERR_ARG on failure. */
fipsc_status fipsc_compress_options_check(const fipsc_compress_options *o, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Plan: groups, ranks, storage.                                                               */

typedef struct fipsc_block_range {
    int first, last; /* inclusive block indices */
} fipsc_block_range;

/* Parses a group spec for a model of n_blocks blocks into ascending, disjoint ranges:
 *   "K"          consecutive groups of K blocks, the last group taking the rest
 *                (5 blocks, "2" → 0-1, 2-4; K ≥ n_blocks → one group of all blocks);
 *   "a-b,c,..."  explicit groups, each a range a-b (a ≤ b) or a single block c.
 * Every block may appear at most once and must be < n_blocks; blocks left out stay dense.
 * *out is malloc'ed. FIPSC_ERR_ARG with a message quoting the spec on failure. */
fipsc_status fipsc_groups_parse(const char *spec, int n_blocks, fipsc_block_range **out,
                                int *n_out, fipsc_error *err);

typedef struct fipsc_group_plan {
    fipsc_block_range blocks;
    int d;                    /* the group's model width */
    int64_t P;                /* Σ f over its matrices (columns of W_cat) */
    int n_matrices;
    int r;                    /* fips/fips-init/shared-svd: the shared rank; svd: the per-matrix
                                 rank k (of the group's first matrix); magnitude: d */
    double sparsity;          /* planned sparsity of V (1 − n/m for n:m) */
    fipsc_v_storage storage;  /* how its V_i are stored (predicted: the cheapest in bytes for the
                                 planned sparsity unless --storage forces one) */
    fipsc_dtype u_dtype, v_dtype; /* U and the V values in the file (F32, F16 or BF16, resolved) */
    int64_t dense_params, kept_params; /* predicted, the paper's count */
    int64_t dense_bytes, stored_bytes; /* predicted real bytes of the chosen storage */
} fipsc_group_plan;

/* Plans every group of options->groups on m (dense MLPs required): ranks, storage and predicted
 * cost. Fails before any work on an impossible combination (rank 0 from the budget, an n:m whose
 * m does not divide the rank, MLPs of different widths in one group). *out is malloc'ed. */
fipsc_status fipsc_compress_plan(const fipsc_model *m, const fipsc_compress_options *o,
                                 fipsc_group_plan **out, int *n_out, fipsc_error *err);

/* The memory a run holds at its peak, predicted before any work from the plan, an upper bound
 * on the calibration rows per block and what sampling the calibration sequences holds (0 when
 * they are not sampled; src/compress/memory_plan.c says what each phase holds):
 *   model        tensors the process owns as float32 or 16-bit copies, plus the largest block
 *                of weights kept mapped from the file (its pages are resident while the forward
 *                is in that block; the kernel may drop them afterwards and read them again)
 *   calibration  streamed (default): the x and y rows of the largest group and the residual
 *                stream (one row of the MLP width per calibration row); --capture-all: x and
 *                y rows of every compressed block; float32 — spilled to a scratch file, the
 *                rows of the largest group are resident while the group reads them
 *   forward      the calibration forward's activations, or sampling's KV caches and logits when
 *                larger (both before any group)
 *   group        the largest group's working set with the compressed groups before it (their
 *                stored form, held until the file is written)
 *   total        model + calibration + max(forward, group) */
typedef struct fipsc_memory_plan {
    int64_t model, calibration, forward, group, total;
    int group_index;          /* the group of `group` (-1: none) */
    int64_t rows_per_block;
    bool spilled;             /* the calibration rows in a scratch file of spill_bytes */
    bool streamed;            /* one group's rows at a time and the residual stream (in calibration) */
    bool moments_halvable;    /* fips with float32 moments: --adam-moments bf16 would halve them */
    bool sparse_step;         /* fips: training's V-sparse step (its lists and row tiles counted) */
    bool sparse_step_dropped; /* --v-products auto: the V-sparse step would have exceeded the budget,
                                 so training multiplies by the masked V densely (set by the caller) */
    int64_t spill_bytes;
} fipsc_memory_plan;
void fipsc_compress_memory_plan(const fipsc_model *m, const fipsc_compress_options *o, const fipsc_group_plan *plans,
                                int n, int64_t rows_per_block, int64_t sampling_bytes, bool spill,
                                fipsc_memory_plan *out);

/* The run's memory budget in bytes: options->max_memory, or by default the machine's physical
 * memory less 10 %; -1: no limit (or unknown). */
int64_t fipsc_compress_memory_budget(const fipsc_compress_options *o);

/* FIPSC_ERR_NOMEM, naming every part of the plan and what to change, when the plan exceeds the
 * budget (-1: no limit). */
fipsc_status fipsc_compress_memory_check(const fipsc_memory_plan *p, int64_t budget, fipsc_error *err);

/* FIPSC_ERR_IO when directory dir cannot hold `bytes` more (spilled calibration rows). */
fipsc_status fipsc_scratch_check(const char *dir, int64_t bytes, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Report.                                                                                     */

typedef struct fipsc_matrix_report {
    int block;
    fipsc_mlp_role role;
    int out, in;              /* the weight's shape [out, in] */
    int rank;                 /* the rank of its factorisation (d for magnitude) */
    int64_t dense_params;     /* out·in */
    int64_t nnz;              /* kept entries of its V (its own U is counted in the group) */
    double weight_rel_err;    /* ‖W − Ŵ‖_F / ‖W‖_F */
} fipsc_matrix_report;

typedef struct fipsc_mlp_report {
    int block;
    int64_t rows;             /* calibration rows (the held-out ones included) */
    int64_t holdout_rows;     /* of which held out of training (options.holdout) */
    double out_err_before;    /* ‖ŷ − y‖_F/‖y‖_F over all the rows before training: the initialisation pruned to the
                                 final sparsity (what fips-init gives); NaN if nothing is trained */
    double out_err_after;     /* the same for the final compressed MLP */
    double holdout_err_before, holdout_err_after; /* the same two on the held-out rows (NaN: none) */
} fipsc_mlp_report;

typedef struct fipsc_group_report {
    fipsc_group_plan plan;
    int n_mlps, n_matrices;
    fipsc_mlp_report *mlps;        /* [n_mlps] */
    fipsc_matrix_report *matrices; /* [n_matrices] */
    int64_t nnz;                   /* Σ nnz over the group's V */
    double sparsity;               /* 1 − nnz / (entries of V) */
    int64_t kept_params, stored_bytes;
    double final_loss;             /* the last training step's loss (NaN without training) */
    int steps;                     /* optimiser steps run (0 without training) */
    double lr;                     /* the learning rate the group trained with (NaN without
                                      training): options.lr / 2^retries */
    int retries;                   /* trainings restarted after a divergence */
    /* fips: Σ_j of the squared relative output errors (fipsc_fips_holdout_score) on the held-out
     * rows, or on the training rows when none are held out (NaN for other methods): */
    double score_init;             /* the SVD initialisation pruned to the final mask */
    double score_trained;          /* the best training iterate evaluated */
    double score_kept;             /* what was kept: min of the two */
    int kept_step;                 /* steps run at the kept iterate; 0: training did not beat its
                                      initialisation, which was kept (a warning; --strict fails) */
    int sparse_steps;              /* fips: steps training ran with the V-sparse products
                                      (--v-products; 0 for checkpoints older than it) */
    double seconds;                /* wall time for the group */
    int64_t peak_rss;              /* the process's peak resident bytes by the end of the group
                                      (core/memory.h; -1: unknown) — of the process that
                                      computed it */
    int computed_by;               /* the rank that computed the group (o->ranks; else 0) */
} fipsc_group_report;

typedef struct fipsc_compress_report {
    fipsc_compress_options options; /* as run (options.groups points into `groups_spec`) */
    char groups_spec[256];
    int n_groups;
    fipsc_group_report *groups;     /* [n_groups] */
    int64_t calibration_rows;       /* per block */
    int calibration_sequences;      /* calibration inputs: token sequences, images or sentences */
    int64_t mlp_dense_params, mlp_kept_params; /* over the whole model (uncompressed blocks
                                                  count as kept in full) */
    int64_t mlp_dense_bytes, mlp_stored_bytes;
    double seconds;                 /* all groups */
    double calibration_seconds;     /* capturing the calibration rows, every group's pass when
                                       streamed (fipsc_compress_model; 0: not measured) */
    int64_t peak_rss_loaded;        /* the process's peak resident bytes when compression began
                                       (the model loaded), and by the end of calibration (streamed:
                                       of the first group's rows); -1:
                                       unknown (the groups' are in groups[k].peak_rss) */
    int64_t peak_rss_calibrated;
    fipsc_memory_plan memory_plan;  /* predicted before any work (total 0: not planned) */
    int64_t memory_budget;          /* what it was checked against (-1: no limit) */
} fipsc_compress_report;

void fipsc_compress_report_free(fipsc_compress_report *rep);

/* The report as a JSON document (malloc'ed, free with free()). `model_path`, `output_path` and
 * `calibration_source` (may be NULL) are recorded as given. */
fipsc_status fipsc_compress_report_json(const fipsc_compress_report *rep, const char *model_path,
                                        const char *output_path, const char *calibration_source,
                                        char **json, fipsc_error *err);

/* What a compressed file's __metadata__ "fipsc.compress" holds: the report's options and
 * calibration as compact JSON (malloc'ed; NULL when out of memory). No times, no absolute paths:
 * the same command gives the same bytes. */
char *fipsc_compress_report_metadata(const fipsc_compress_report *rep, const char *calibration_source);

/* The report as a human-readable table (malloc'ed text, free with free()). */
fipsc_status fipsc_compress_report_table(const fipsc_compress_report *rep, char **text,
                                         fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Running.                                                                                    */

typedef enum fipsc_compress_event {
    FIPSC_COMPRESS_GROUP_START = 0, /* `group` is about to start */
    FIPSC_COMPRESS_STEP,            /* a training step finished (every few steps) */
    FIPSC_COMPRESS_GROUP_DONE,      /* `group` finished: `report` holds its numbers */
    FIPSC_COMPRESS_RETRY            /* `group`'s training diverged (`message` says where) and
                                       restarts with learning rate `lr`, retry `retry` (1-based) */
} fipsc_compress_event;

typedef struct fipsc_compress_progress {
    fipsc_compress_event event;
    int group, n_groups;
    fipsc_block_range blocks;
    int block;                 /* the block being trained (local mode), or -1 */
    int step, steps;           /* within the current training phase */
    double loss, sparsity;
    double elapsed, eta;       /* seconds since the run started; estimated seconds left (< 0:
                                  unknown) */
    const fipsc_group_report *report; /* GROUP_DONE only */
    bool restored;             /* GROUP_DONE: the group was read from its checkpoint */
    int from_rank;             /* GROUP_DONE: the rank that computed the group (o->ranks; else 0) */
    int retry;                 /* RETRY: 1 for the first retry of the group, ... */
    double lr;                 /* RETRY: the learning rate of the new attempt */
    const char *message;       /* RETRY: why the last attempt failed */
} fipsc_compress_progress;

typedef void (*fipsc_compress_progress_fn)(void *user, const fipsc_compress_progress *p);

/* Compresses m's MLPs in place, group by group, from the calibration rows (which must cover
 * every block of every group). On success *report (malloc'ed; free with
 * fipsc_compress_report_free) describes the run. On failure m may hold some compressed groups
 * and must not be written.
 * Numeric failures (FIPSC_ERR_NUMERIC) stop the run with a message naming the group: NaN/Inf in
 * a weight (naming the tensor; checked for the whole model before any work, since the weights
 * outside the MLPs feed the calibration and the written file), in the calibration rows (block,
 * x or y, row, column), a diverged training (MLP, step, learning rate; retried when
 * o->divergence_retries > 0) or a non-finite result of any method. */
fipsc_status fipsc_compress_run(fipsc_model *m, const fipsc_calibration *cal,
                                const fipsc_compress_options *o,
                                fipsc_compress_progress_fn progress, void *progress_user,
                                fipsc_compress_report **report, fipsc_error *err);

/* ------------------------------------------------------------------------------------------ */
/* A run over several processes ("ranks": `mpirun -np K fipsc compress`, src/cli/mpi_ranks.c).
 *
 * Every rank loads the model and plans the same groups; group k is computed by rank
 * fipsc_compress_group_owner(k, n, K) — consecutive groups per rank, group 0 on rank 0, so each
 * rank's calibration forward needs the blocks up to its own groups only, and its calibration
 * holds the rows of its own blocks only. A rank other than 0 hands each finished group to rank 0
 * as the bytes of its checkpoint image (the format of docs/FORMAT.md "Compression checkpoints",
 * whatever --checkpoint-dir says) and attaches nothing; rank 0 attaches its own groups and the
 * received ones, each verified as a resumed checkpoint is (integrity, options, the hash of the
 * group's original weights), in group order, then writes the one output. Groups depend only on
 * their own blocks' weights, their calibration rows (teacher forcing) and their own seed, and a
 * checkpoint image carries a group's result bit for bit, so the output is byte-identical to a
 * one-process run's whatever K. The transport is the caller's: */
typedef struct fipsc_compress_ranks {
    int rank, size; /* this process and the number of processes, 0 <= rank < size */
    /* rank != 0: hands group k's checkpoint image (malloc'ed; the callee owns it from now on, also
       on failure) to rank 0, without waiting for rank 0 to take it */
    fipsc_status (*send)(void *user, int k, void *bytes, size_t size, fipsc_error *err);
    /* rank 0: receives group k's image from rank `from` (malloc'ed into *bytes; the caller frees) */
    fipsc_status (*receive)(void *user, int k, int from, void **bytes, size_t *size, fipsc_error *err);
    /* every rank: returns once every rank has called it (after the checkpoint directory is
       checked, so that no rank's first checkpoint is mistaken by another for an earlier run's) */
    fipsc_status (*barrier)(void *user, fipsc_error *err);
    void *user;
} fipsc_compress_ranks;

/* The rank that computes group k of n when size ranks share a run: floor(k·size/n). Consecutive
 * groups per rank, group 0 on rank 0; with more ranks than groups some ranks have none. */
int fipsc_compress_group_owner(int k, int n, int size);

/* ------------------------------------------------------------------------------------------ */
/* Checkpoints: crash-safe, resumable runs (src/compress/checkpoint.c, docs/FORMAT.md).         */

typedef struct fipsc_compress_checkpoint {
    const char *dir; /* one file per finished group, dir/group-KKK.safetensors, written atomically
                        as soon as the group is done; created if missing (its parent must exist) */
    bool resume;     /* reuse every saved group and compute only the others (an empty dir starts
                        from the beginning); false: dir must hold no group files yet */
} fipsc_compress_checkpoint;

/* Checks ck before any expensive work (calibration): creates the directory, refuses group files
 * without resume, and with resume checks every saved group against m and o (file integrity,
 * options, the group's original weights; the calibration rows are checked by the
 * run). A damaged file fails with FIPSC_ERR_FORMAT naming it (delete it to recompute that
 * group); a checkpoint made from other inputs fails with FIPSC_ERR_UNSUPPORTED naming the first
 * difference. Optional: fipsc_compress_run_checkpointed does the same checks. */
fipsc_status fipsc_compress_checkpoint_prepare(const fipsc_compress_checkpoint *ck,
                                               const fipsc_model *m,
                                               const fipsc_compress_options *o, fipsc_error *err);

/* fipsc_compress_run that saves every finished group to ck->dir and, with ck->resume, attaches
 * the saved groups instead of computing them (ck NULL: fipsc_compress_run). Every saved group is
 * verified before any work starts. The model and report of a resumed run are the same bit for
 * bit as an uninterrupted run's with the same inputs and options, on any thread count (the report's
 * times of resumed groups are those of the run that computed them). */
fipsc_status fipsc_compress_run_checkpointed(fipsc_model *m, const fipsc_calibration *cal,
                                             const fipsc_compress_options *o,
                                             const fipsc_compress_checkpoint *ck,
                                             fipsc_compress_progress_fn progress,
                                             void *progress_user, fipsc_compress_report **report,
                                             fipsc_error *err);

#endif
