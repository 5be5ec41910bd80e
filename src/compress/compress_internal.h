/* Internals of the compress module (src/compress/compress.h), shared by its files. */
#ifndef FIPSC_COMPRESS_INTERNAL_H
#define FIPSC_COMPRESS_INTERNAL_H

#include "compress/compress.h"

/* Token rows per calibration forward pass: large enough for efficient GEMMs, small enough that
 * the attention scratch and activations stay modest (the memory plan counts one pass). */
#define CALIB_ROWS_PER_PASS 4096

/* Calibration rows per MLP forward when measuring a group's output errors (the memory plan
 * counts one such forward's output and scratch). */
#define EVAL_CHUNK_ROWS 4096

/* Whether a run streams its calibration (one group's rows at a time from the residual stream,
 * model/residual_stream.h): unless it captures every group's rows first or is sequential. */
static inline bool compress_streams(const fipsc_compress_options *o)
{
    return !o->capture_all && !o->sequential;
}

/* Calibration helpers shared by calibrate*.c. The blocks to capture: the listed ones, or every
 * block when blocks is NULL / n_blocks 0 (then *all holds the list; free it). */
fipsc_status calibration_blocks(const fipsc_model *m, const int **blocks, int *n_blocks, int **all, fipsc_error *err);
/* How a capture is made: its rows in memory (dir NULL) or in a scratch file in dir with room for
 * `rows` rows per block (fipsc_capture_spill); the forward from the inputs' embeddings (stream
 * NULL) or one streaming pass, the stream's blocks only (model/residual_stream.h). */
typedef struct capture_setup {
    const char *dir;
    int64_t rows;
    fipsc_residual_stream *stream;
} capture_setup;
/* A capture (malloc'ed) of the listed blocks (NULL/0: every block), without a row limit, made
 * as `setup` says (NULL: in memory, no stream). */
fipsc_status calibration_new_capture(const fipsc_model *m, const int *blocks, int n_blocks,
                                     const capture_setup *setup, fipsc_capture **out, fipsc_error *err);
/* The capture functions of calibration.h, made as `setup` says (NULL: in memory, no stream). */
fipsc_status calibration_capture_tokens(const fipsc_model *m, const fipsc_corpus *c, const char *what,
                                        const int *blocks, int n_blocks, const capture_setup *setup,
                                        fipsc_calibration *out, fipsc_error *err);
fipsc_status calibration_capture_images(const fipsc_model *m, const fipsc_image_list *images, const int *blocks,
                                        int n_blocks, const capture_setup *setup, fipsc_calibration *out,
                                        fipsc_error *err);
/* Sentences from n_sets sets (several calibration files, calibration_list.h): set k draws whole
 * sentences for at most max_rows[k] token rows (0: all of them) with calib_file_seed(seed, k),
 * and one with a budget that fits no sentence is an error naming names[k] (NULL: `what`); the
 * sets' sentences are interleaved evenly. draws (NULL or [n_sets]) receives what each set gave. */
typedef struct sentence_draw {
    int sentences;
    int64_t rows;
} sentence_draw;
fipsc_status calibration_capture_sentences(const fipsc_model *m, const fipsc_sentences *sets, int n_sets,
                                           const char *what, const char *const *names, const int *blocks,
                                           int n_blocks, const int64_t *max_rows,
                                           uint64_t seed, const capture_setup *setup, fipsc_capture *cap,
                                           fipsc_calibration *out, sentence_draw *draws, fipsc_error *err);
/* out = the rows of cap (block by block), from n_sequences inputs; out owns cap when own. */
fipsc_status calibration_from_capture(const fipsc_model *m, fipsc_capture *cap, int n_sequences, bool own,
                                      fipsc_calibration *out, fipsc_error *err);

/* One fipsc_group_spec with the buffers it points at (all owned). A method produces one part per
 * group (fips, fips-init, shared-svd, magnitude) or one per matrix (svd: each its own basis). */
typedef struct compress_part {
    fipsc_group_spec spec;
    float *U;                     /* [d, r], or NULL (identity basis) */
    fipsc_group_matrix *matrices; /* [spec.n_matrices] */
    float **V;                    /* [spec.n_matrices] owned [r, f] factors */
} compress_part;

void compress_part_free(compress_part *p);

/* What a method made of one group: the parts to attach, and per matrix of the FiPS group
 * description (MLP by MLP: gate, up, down) its dense reconstruction in model orientation
 * [out, in]; for fips, the output errors before training (of the initialisation pruned to the
 * final mask) over all calibration rows and over the held-out ones, measured before training so
 * that its reconstruction need not be held through it (NULL otherwise). */
typedef struct compress_outcome {
    int n_parts;
    compress_part *parts;
    int n_matrices;
    float **recon;       /* [n_matrices] */
    double *before_err;  /* [n_mlps] or NULL */
    double *before_holdout_err; /* [n_mlps] (NaN: no held-out rows) or NULL */
    int rank;            /* shared / per-matrix rank actually used */
    int64_t *nnz;        /* [n_matrices]: kept entries of each V_i */
    double final_loss;   /* NaN without training */
    int steps;
    double lr;           /* the learning rate training used (NaN without training) */
    int retries;         /* trainings restarted after a divergence */
    /* fips: the selection of what is kept (see run_shared in methods.c). Scores are
     * fipsc_fips_holdout_score: on the held-out rows, or on the training rows when none are held
     * out (then only the initialisation and the last iterate are compared). NaN otherwise. */
    double score_init;   /* the initialisation pruned to the final mask (fips-init) */
    double score_last;   /* the last training iterate */
    double score_trained;/* the best training iterate evaluated */
    double score_kept;   /* what was kept: the best of both and of the evaluated iterates */
    int kept_step;       /* steps run at the kept iterate (0: the initialisation was kept) */
    int sparse_steps;    /* steps the (last) training ran with the V-sparse products */
    bool svd_stacked;    /* parts hold per-matrix SVD factors stacked per block (svd) */
} compress_outcome;

void compress_outcome_free(compress_outcome *o);

/* Training progress, forwarded by the pipeline (group index, phase, step, loss, sparsity), and
 * the restarts after a divergence (retry number from 1, the new learning rate, why). */
typedef struct compress_train_hook {
    fipsc_fips_progress_fn fn;
    void *user;
    void (*retry)(void *user, int retry, float lr, const char *why);
} compress_train_hook;

/* Runs o->method on the group g (built over the plan's blocks, dense weights), with the group's
 * calibration rows calib[0 .. g->n_mlps) and held-out rows holdout[0 .. g->n_mlps) (n = 0: none;
 * both needed by fips only). */
fipsc_status compress_group_run(const fipsc_fips_group *g, const fipsc_group_plan *plan,
                                const fipsc_fips_calib *calib, const fipsc_fips_calib *holdout,
                                const fipsc_compress_options *o,
                                int group_index, compress_train_hook hook, compress_outcome *out,
                                fipsc_error *err);

/* Builds the FiPS group description of blocks [first, last] of m into g; mlps_out receives the
 * malloc'ed copy of the blocks' MLP structs that g borrows (free it after the group). Weights the
 * model keeps in 16 bits stay so: the group widens them a piece at a time where it reads them
 * (W_cat, the report's weight errors, the checkpoint hash), never as a whole float32 copy. */
fipsc_status compress_group_describe(const fipsc_model *m, fipsc_block_range blocks,
                                     fipsc_fips_group *g, fipsc_mlp **mlps_out, fipsc_error *err);

/* ‖ŷ − y‖_F/‖y‖_F of MLP j of g over the rows calib, with its weights replaced by the
 * reconstructions w[first_matrix[j] ..] (model orientation) (pipeline.c). */
fipsc_status compress_output_error(const fipsc_fips_group *g, int j, float *const *w,
                                   const fipsc_fips_calib *calib, double *out, fipsc_error *err);

/* Weights the magnitude baseline keeps of a matrix of `total`: floor(budget·total), so that no
 * matrix exceeds the budget (as the floor in the rank formulas); a hair of tolerance makes
 * 0.6·10 count as 6. */
int64_t compress_magnitude_keep(int64_t total, double budget);

/* Storage bytes of a group: U (u_bytes per entry, 0 = no basis) + every V_i (values of v_bytes,
 * indices, pointers: fipsc_v_stored_bytes). */
int64_t compress_storage_bytes(fipsc_v_storage storage, int d, int r, int u_bytes, int v_bytes, int n_matrices,
                               const int *cols, const int64_t *nnz);

/* The storage of a part of rank r whose n V_i keep nnz[i] of r·cols[i] entries: n:m with --nm,
 * else --storage, else dense for shared-svd, else the cheapest in bytes (fipsc_v_storage_cheapest). */
fipsc_v_storage compress_choose_storage(const fipsc_compress_options *o, int r, int n, const int *cols,
                                        const int64_t *nnz, int v_bytes);

/* The dtype option (u_dtype or v_dtype) resolved for group g of m: FIPSC_COMPRESS_DTYPE_AUTO
 * becomes the dtype every MLP weight of the group is stored in (F16 or BF16), else F32. */
fipsc_dtype compress_value_dtype(const fipsc_model *m, const fipsc_fips_group *g, fipsc_dtype option);

/* A group read from its checkpoint (checkpoint_load.c): the parts to attach and its report entry. */
typedef struct compress_saved {
    bool present;
    int n_parts;
    compress_part *parts;
    fipsc_group_report report;
} compress_saved;

/* Checks saved group k's recorded inputs against its calibration rows in cal, now that they are
 * captured (streaming captures a group's rows when the pipeline reaches it, after
 * compress_checkpoint_load_all). */
fipsc_status compress_checkpoint_check_rows(const fipsc_compress_checkpoint *ck, const fipsc_model *m,
                                           const fipsc_calibration *cal, const fipsc_compress_options *o,
                                           const fipsc_group_plan *plan, int k, fipsc_error *err);
void compress_saved_free(compress_saved *s, int n);    /* the array of n too */
void compress_saved_free_one(compress_saved *s);       /* its contents; *s is left empty */
void compress_saved_take_report(compress_saved *s, fipsc_group_report *gr); /* moves the report entry out */

/* Prepares ck->dir for a run of the n planned groups and, with ck->resume, reads and verifies
 * every saved group (*out[k].present) against m, cal and o. *out is malloc'ed [n]. */
fipsc_status compress_checkpoint_load_all(const fipsc_compress_checkpoint *ck, const fipsc_model *m,
                                          const fipsc_calibration *cal, const fipsc_compress_options *o,
                                          const fipsc_group_plan *plans, int n, compress_saved **out,
                                          fipsc_error *err);

/* Attaches saved group s to m and moves its report entry into *gr. */
fipsc_status compress_checkpoint_apply(fipsc_model *m, compress_saved *s, fipsc_group_report *gr,
                                       fipsc_error *err);

/* Saves group k's outcome and report entry to ck->dir, atomically (ck NULL: not saved), and with
 * bytes also serializes the same checkpoint image into *bytes (malloc'ed, *size bytes: what a rank
 * sends to rank 0). g must still describe the group's original weights (call before the group is
 * installed) and calib its rows. */
fipsc_status compress_checkpoint_save(const fipsc_compress_checkpoint *ck, const fipsc_fips_group *g,
                                      const fipsc_fips_calib *calib, const fipsc_compress_options *o,
                                      const fipsc_group_plan *plan, int k, const compress_outcome *oc,
                                      const fipsc_group_report *gr, void **bytes, size_t *size,
                                      fipsc_error *err);

/* Group k's checkpoint image as another rank sent it (size bytes): verified (integrity; every
 * input but the calibration rows, which this rank did not capture: the options and the hash of
 * the group's weights, so ranks that loaded another model or ran other options are caught) and
 * read into *out. */
fipsc_status compress_checkpoint_from_bytes(const fipsc_model *m, const fipsc_compress_options *o,
                                            const fipsc_group_plan *plan, int k, const void *bytes, size_t size,
                                            int from_rank, compress_saved *out, fipsc_error *err);

/* The bytes of group k's checkpoint file in ck->dir (malloc'ed): a restored group a rank sends. */
fipsc_status compress_checkpoint_read(const fipsc_compress_checkpoint *ck, int k, void **bytes, size_t *size,
                                      fipsc_error *err);

/* ---- a run shared among ranks (ranks.c) ----------------------------------------------------- */

/* o->ranks when the run is shared among more than one rank, else NULL (one process). */
const fipsc_compress_ranks *compress_shared_ranks(const fipsc_compress_options *o);

/* Whether this process computes group k of n (o->ranks: fipsc_compress_group_owner). */
bool compress_owns(const fipsc_compress_options *o, int k, int n);

/* Rank 0: group k of n, computed by its owner, received as a checkpoint image, verified, put into
 * m and reported (GROUP_DONE with from_rank) into *gr. */
fipsc_status compress_receive_group(fipsc_model *m, const fipsc_compress_options *o, const fipsc_group_plan *plan,
                                    int k, int n, fipsc_compress_progress_fn progress, void *progress_user,
                                    double elapsed, fipsc_group_report *gr, fipsc_error *err);

/* A rank other than 0 resuming: its group k, read from its checkpoint into s, goes to rank 0 as
 * the file's bytes; the report entry moves into *gr. */
fipsc_status compress_send_restored(const fipsc_compress_checkpoint *ck, const fipsc_compress_ranks *ranks, int k,
                                    compress_saved *s, fipsc_group_report *gr, fipsc_error *err);

#endif
