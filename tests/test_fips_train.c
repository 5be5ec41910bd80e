/* FiPS training: recovery of an exactly representable sparse group; the loss falls on a real MLP
 * group (stories260K layers 0-1, inputs and outputs captured from the model running on token
 * sequences it sampled itself); exact final sparsity for every mask kind and mode; n:m validity;
 * determinism; the progress callback; errors (n:m rank, NaN calibration, divergence). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama2c.h"
#include "model/capture.h"
#include "fips/fips.h"
#include "model/generate.h"
#include "model/model.h"
#include "families/llama/runtime.h"
#include "testutil.h"

static uint64_t rng_state = 3;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* ---- A synthetic group of gated MLPs whose matrices are given in W_cat orientation ---- */
typedef struct synth {
    int d, f, n_mlps;
    fipsc_mlp mlps[4];
    float *w[4][3];
    float *x[4], *y[4];
    fipsc_fips_calib calib[4];
    fipsc_fips_group g;
} synth;

/* MLP j's matrix q (gate, up, down) = block of M [d, P] (leading dimension P). */
static void synth_init(synth *s, int d, int f, int n_mlps, const float *M, int64_t P)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    s->f = f;
    s->n_mlps = n_mlps;
    for (int j = 0; j < n_mlps; j++) {
        for (int q = 0; q < 3; q++) {
            const float *blk = M + (int64_t)(j * 3 + q) * f;
            float *w = s->w[j][q] = malloc((size_t)d * f * sizeof(float));
            for (int a = 0; a < d; a++)
                for (int c = 0; c < f; c++) {
                    if (q < 2) w[c * d + a] = blk[a * P + c]; /* expanding: stored [f, d] */
                    else w[a * f + c] = blk[a * P + c];       /* contracting: [d, f] */
                }
        }
        s->mlps[j] = (fipsc_mlp){.kind = FIPSC_MLP_GATED, .act = FIPSC_ACT_SILU, .d = d, .f = f,
                                 .gate = {.out = f, .in = d, .w = s->w[j][0]},
                                 .up = {.out = f, .in = d, .w = s->w[j][1]},
                                 .down = {.out = d, .in = f, .w = s->w[j][2]}};
    }
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_group_init(&s->g, s->mlps, n_mlps, &err), &err);
}

/* Calibration rows: x uniform in [-1.5, 1.5), y = the original MLP (= U·V_i at full rank). */
static void synth_calib(synth *s, int64_t n)
{
    fipsc_error err = {0};
    fipsc_fips_factors exact;
    int k = s->d; /* full rank reproduces every matrix */
    CHECK_OK(fipsc_fips_init_group(&s->g, k, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &exact, &err), &err);
    for (int j = 0; j < s->n_mlps; j++) {
        s->x[j] = malloc((size_t)n * s->d * sizeof(float));
        s->y[j] = malloc((size_t)n * s->d * sizeof(float));
        for (int64_t e = 0; e < n * s->d; e++) s->x[j][e] = (float)(1.5 * urand());
        CHECK_OK(fipsc_fips_forward(&s->g, &exact, j, s->x[j], n, s->y[j], &err), &err);
        s->calib[j] = (fipsc_fips_calib){n, s->x[j], s->y[j]};
    }
    fipsc_fips_factors_free(&exact);
}

static void synth_free(synth *s)
{
    for (int j = 0; j < s->n_mlps; j++) {
        for (int q = 0; q < 3; q++) free(s->w[j][q]);
        free(s->x[j]);
        free(s->y[j]);
    }
    fipsc_fips_group_free(&s->g);
}

/* Relative error of every MLP after pruning the factors to sparsity s without training. */
static double pruned_untrained_error(const synth *s, const fipsc_fips_factors *F, double sp)
{
    fipsc_error err = {0};
    fipsc_fips_factors C;
    CHECK_OK(fipsc_fips_factors_alloc(&C, F->d, F->r, F->P, &err), &err);
    memcpy(C.U, F->U, (size_t)F->d * F->r * sizeof(float));
    memcpy(C.V, F->V, (size_t)F->r * F->P * sizeof(float));
    CHECK_OK(fipsc_fips_prune_magnitude(&s->g, &C, NULL, 0,
                                        fipsc_fips_keep_count((int64_t)F->r * F->P, sp), &err), &err);
    double worst = 0;
    for (int j = 0; j < s->n_mlps; j++) {
        double e = 0;
        CHECK_OK(fipsc_fips_relative_error(&s->g, &C, j, &s->calib[j], &e, &err), &err);
        worst = fmax(worst, e);
    }
    fipsc_fips_factors_free(&C);
    return worst;
}

/* Two gated MLPs, d 24, f 24, whose six matrices are exactly U*·V_i* with U* [24, 8] and V* with
 * one nonzero per column (87.5% sparse). Trained at r = 16 with V 60% sparse (RigL): a sparse exact
 * factorisation exists (U* plus eight spare columns), while the SVD basis (a dense rotation of U*)
 * would need V 50% dense: pruning the SVD factors alone is far off (relative error ~0.1), and
 * training has to find a sparse basis. Checked on 14 random instances: all below 8e-4. */
static void test_recovery(void)
{
    enum { D = 24, Fh = 24, RS = 8, NM = 2 };
    const int64_t P = 3 * Fh * NM;
    rng_state = 3;
    float *Us = malloc(D * RS * sizeof(float)), *Vs = calloc((size_t)RS * P, sizeof(float));
    for (int e = 0; e < D * RS; e++) Us[e] = (float)(urand() / sqrt(RS));
    for (int64_t c = 0; c < P; c++) {
        int k = (int)((urand() + 1.0) / 2.0 * RS) % RS;
        float v = (float)urand();
        Vs[k * P + c] = v < 0 ? v - 0.5f : v + 0.5f; /* |v| in [0.5, 1.5) */
    }
    float *M = malloc((size_t)D * P * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, D, (int)P, RS, 1.0f, Us, RS, Vs, (int)P,
                0.0f, M, (int)P);
    synth s;
    synth_init(&s, D, Fh, NM, M, P);
    synth_calib(&s, 128);

    fipsc_error err = {0};
    fipsc_fips_factors F;
    CHECK_OK(fipsc_fips_init_group(&s.g, 16, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &F, &err), &err);
    double untrained = pruned_untrained_error(&s, &F, 0.6);

    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.mask = FIPSC_FIPS_MASK_RIGL;
    o.sparsity = 0.6;
    o.rigl_alpha = 0.3;
    o.steps = 10000;
    o.delta_t = 250;
    o.batch_rows = 128;
    o.lr = 3e-3f;
    o.lr_min = 3e-6f;
    o.adamw.weight_decay = 0.0f;
    fipsc_fips_train_report rep;
    CHECK_OK(fipsc_fips_train(&s.g, &F, s.calib, &o, &rep, &err), &err);
    for (int j = 0; j < NM && rep.rel_err_after; j++) {
        CHECK_MSG(rep.rel_err_before[j] < 1e-5, "MLP %d: SVD init error %g", j, rep.rel_err_before[j]);
        /* measured 1e-4 to 3e-4 under three OpenBLAS kernel families; pruned untrained: 0.096 */
        CHECK_MSG(rep.rel_err_after[j] < 2e-3, "recovery: MLP %d relative error %g after training "
                  "(pruned, untrained: %g)", j, rep.rel_err_after[j], untrained);
    }
    CHECK_MSG(untrained > 0.03, "pruning alone already gives %g", untrained);
    CHECK(rep.nnz == fipsc_fips_keep_count(16 * P, 0.6));
    printf("recovery: relative errors %.3g, %.3g after training; %.3g pruned without training\n",
           rep.rel_err_after[0], rep.rel_err_after[1], untrained);
    fipsc_fips_train_report_free(&rep);
    fipsc_fips_factors_free(&F);
    synth_free(&s);
    free(Us);
    free(Vs);
    free(M);
}

/* ---- stories260K ---- */

typedef struct loss_log {
    int calls, last_step, mlp, bad_order;
    double first, last;
} loss_log;

static void log_progress(void *user, const fipsc_fips_progress *p)
{
    loss_log *l = user;
    if (l->calls == 0) l->first = p->loss;
    if (p->step <= l->last_step && p->mlp == l->mlp) l->bad_order++;
    l->last_step = p->step;
    l->mlp = p->mlp;
    l->last = p->loss;
    l->calls++;
}

static void test_stories260k(void)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_load_llama2c(path, &m, &err), &err);
    if (!m) return;
    /* Calibration: 16 sequences of 128 tokens sampled from the model itself (its tokenizer is not
     * available), run through the original model, capturing MLPs 0 and 1. */
    enum { NSEQ = 16, LEN = 128 };
    int32_t *ids = malloc(NSEQ * LEN * sizeof(int32_t));
    CHECK_OK(fipsc_lm_sample_sequences(m, NSEQ, LEN, 1.0f, 1.0f, 2024, ids, NULL, NULL, &err), &err);
    fipsc_capture cap;
    int layers[2] = {0, 1};
    CHECK_OK(fipsc_capture_init(&cap, m, layers, 2, 0, &err), &err);
    CHECK_OK(fipsc_llama_forward(m, ids, NSEQ, LEN, NULL, &cap, &err), &err);
    fipsc_mlp mlps[2] = {*m->mlps[0], *m->mlps[1]};
    fipsc_fips_calib calib[2];
    for (int j = 0; j < 2; j++) {
        CHECK(cap.layers[j].rows == NSEQ * LEN);
        calib[j] = (fipsc_fips_calib){cap.layers[j].rows, cap.layers[j].x, cap.layers[j].y};
    }
    fipsc_fips_group g;
    CHECK_OK(fipsc_fips_group_init(&g, mlps, 2, &err), &err);
    CHECK(g.d == 64 && g.P == 6 * 172);
    int r = 0;
    CHECK_OK(fipsc_fips_rank_from_budget(g.d, g.P, 0.5, 0.5, 0, &r, &err), &err);
    CHECK(r == 56);

    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.sparsity = 0.5;
    o.steps = 300;
    o.batch_rows = 256;
    o.lr = 3e-3f;
    o.lr_min = 3e-5f;
    o.progress_every = 1;
    double after[2][2];
    const char *mode_name[2] = {"joint", "local"};
    for (int mode = 0; mode < 2; mode++) {
        fipsc_fips_factors F;
        CHECK_OK(fipsc_fips_init_group(&g, r, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &F, &err), &err);
        /* the SVD init with its mask pruned to 50%, untrained: what training has to beat */
        fipsc_fips_factors P0;
        CHECK_OK(fipsc_fips_factors_alloc(&P0, g.d, r, g.P, &err), &err);
        memcpy(P0.U, F.U, (size_t)g.d * r * sizeof(float));
        memcpy(P0.V, F.V, (size_t)r * g.P * sizeof(float));
        CHECK_OK(fipsc_fips_prune_magnitude(&g, &P0, NULL, 0, fipsc_fips_keep_count((int64_t)r * g.P, 0.5),
                                            &err), &err);
        double untrained[2];
        for (int j = 0; j < 2; j++)
            CHECK_OK(fipsc_fips_relative_error(&g, &P0, j, &calib[j], &untrained[j], &err), &err);
        fipsc_fips_factors_free(&P0);

        loss_log log = {.mlp = -2};
        o.mode = mode == 0 ? FIPSC_FIPS_JOINT : FIPSC_FIPS_LOCAL;
        o.progress = log_progress;
        o.progress_user = &log;
        fipsc_fips_train_report rep;
        CHECK_OK(fipsc_fips_train(&g, &F, calib, &o, &rep, &err), &err);
        if (!rep.rel_err_after) {
            fipsc_fips_factors_free(&F);
            continue;
        }
        CHECK(log.calls == (mode == 0 ? 300 : 600));
        CHECK(log.bad_order == 0);
        CHECK(log.mlp == (mode == 0 ? -1 : 1));
        for (int j = 0; j < 2; j++) {
            after[mode][j] = rep.rel_err_after[j];
            /* Training recovers much of what pruning lost. In local mode only for the MLP trained
             * last: training MLP 1 moves the shared U under MLP 0 (the drift the joint mode
             * avoids). Measured: 0.46 to 0.54 of the untrained error (stable to 1e-3 across
             * OpenBLAS kernel families; a calibration token sampled differently would move it by
             * a few per cent), checked at 0.7. */
            if (mode == 0 || j == 1)
                CHECK_MSG(rep.rel_err_after[j] < 0.7 * untrained[j],
                      "%s: MLP %d relative error %g after training, %g pruned untrained",
                      mode_name[mode], j, rep.rel_err_after[j], untrained[j]);
            printf("stories260K %s: MLP %d relative error: SVD init %.4f, pruned to 50%% %.4f, "
                   "trained %.4f\n", mode_name[mode], j, rep.rel_err_before[j], untrained[j],
                   rep.rel_err_after[j]);
        }
        if (mode == 0) printf("stories260K joint: minibatch loss %.4f at the first step, %.4f at the last\n", log.first, log.last);
        /* measured 0.413 → 0.182 (a minibatch's loss, so checked at 0.6 of the first) */
        if (mode == 0) CHECK_MSG(log.last < 0.6 * log.first, "joint loss %g → %g", log.first, log.last);
        CHECK(rep.nnz == fipsc_fips_keep_count((int64_t)r * g.P, 0.5) || mode == 1);
        CHECK_NEAR(rep.sparsity, 0.5, 1e-3);
        fipsc_fips_train_report_free(&rep);
        fipsc_fips_factors_free(&F);
    }
    printf("stories260K: joint %.4f %.4f, local %.4f %.4f\n", after[0][0], after[0][1], after[1][0],
           after[1][1]);
    /* joint is the better default (ALGORITHM.md §7) */
    CHECK(after[0][0] + after[0][1] < after[1][0] + after[1][1]);
    fipsc_fips_group_free(&g);
    fipsc_capture_free(&cap);
    free(ids);
    fipsc_model_free(m);
}

/* ---- Masks, modes, determinism, errors on a small random group ---- */

static void make_random(synth *s, int d, int f, int n_mlps, int64_t rows)
{
    int64_t P = 3 * f * n_mlps;
    float *M = malloc((size_t)d * P * sizeof(float));
    for (int64_t e = 0; e < d * P; e++) M[e] = (float)(urand() / sqrt(d));
    synth_init(s, d, f, n_mlps, M, P);
    synth_calib(s, rows);
    free(M);
}

static fipsc_status run(synth *s, int r, const fipsc_fips_train_opts *o, fipsc_fips_factors *F,
                        fipsc_fips_train_report *rep, fipsc_error *err)
{
    fipsc_status st = fipsc_fips_init_group(&s->g, r, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, F, err);
    if (st) return st;
    return fipsc_fips_train(&s->g, F, s->calib, o, rep, err);
}

static void test_masks_and_modes(void)
{
    synth s;
    make_random(&s, 12, 20, 2, 100);
    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.steps = 40;
    o.delta_t = 7; /* t_end = 30 is not a multiple: GMP must still prune at t_end */
    o.batch_rows = 32;
    o.lr = 1e-2f;
    o.sparsity = 0.7;
    o.evaluate = false;
    const int r = 8;
    const int64_t total = (int64_t)r * s.g.P;
    fipsc_error err = {0};
    for (int mode = 0; mode < 2; mode++)
        for (int kind = 0; kind < 4; kind++)
            for (int per = 0; per < 2; per++) {
                o.mode = (fipsc_fips_mode)mode;
                o.mask = (fipsc_fips_mask_kind)kind;
                o.per_matrix = per;
                fipsc_fips_factors F;
                fipsc_fips_train_report rep;
                CHECK_OK(run(&s, r, &o, &F, &rep, &err), &err);
                if (!rep.rel_err_after) {
                    fipsc_fips_factors_free(&F);
                    continue;
                }
                CHECK(isnan(rep.rel_err_before[0]) && isnan(rep.rel_err_after[1]));
                CHECK(isfinite(rep.final_loss) && rep.final_loss > 0);
                if (kind == FIPSC_FIPS_MASK_NM) {
                    CHECK(fipsc_fips_nm_valid(&s.g, &F, NULL, 0, 2, 4));
                    CHECK(rep.nnz <= total / 2);
                } else if (per) {
                    for (int i = 0; i < s.g.n_matrices; i++)
                        CHECK_MSG(fipsc_fips_count_active(&s.g, &F, &i, 1) ==
                                      fipsc_fips_keep_count((int64_t)r * s.g.matrices[i].cols, 0.7),
                                  "mode %d kind %d matrix %d", mode, kind, i);
                } else if (mode == FIPSC_FIPS_LOCAL) {
                    for (int j = 0; j < 2; j++) {
                        int set[3] = {3 * j, 3 * j + 1, 3 * j + 2};
                        CHECK(fipsc_fips_count_active(&s.g, &F, set, 3) ==
                              fipsc_fips_keep_count(total / 2, 0.7));
                    }
                } else {
                    CHECK_MSG(rep.nnz == fipsc_fips_keep_count(total, 0.7), "kind %d: nnz %lld", kind,
                              (long long)rep.nnz);
                }
                /* every pruned entry is exactly zero */
                bool zeros = true;
                for (int64_t e = 0; e < total; e++)
                    if (!fipsc_fips_kept(&F, e)) zeros &= F.V[e] == 0.0f;
                CHECK(zeros);
                fipsc_fips_train_report_free(&rep);
                fipsc_fips_factors_free(&F);
            }
    synth_free(&s);
}

static void test_determinism(void)
{
    synth s;
    make_random(&s, 12, 20, 2, 100);
    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.steps = 30;
    o.delta_t = 5;
    o.batch_rows = 16; /* minibatches: the seed matters */
    o.lr = 1e-2f;
    o.mask = FIPSC_FIPS_MASK_RIGL;
    o.evaluate = false;
    fipsc_error err = {0};
    fipsc_fips_factors A, B, C;
    fipsc_fips_train_report ra, rb, rc;
    omp_set_num_threads(1);
    CHECK_OK(run(&s, 8, &o, &A, &ra, &err), &err);
    omp_set_num_threads(2);
    CHECK_OK(run(&s, 8, &o, &B, &rb, &err), &err);
    o.seed = 2;
    CHECK_OK(run(&s, 8, &o, &C, &rc, &err), &err);
    size_t nu = (size_t)A.d * A.r, nv = (size_t)A.r * A.P;
    CHECK(memcmp(A.U, B.U, nu * sizeof(float)) == 0);
    CHECK(memcmp(A.V, B.V, nv * sizeof(float)) == 0);
    CHECK(memcmp(A.mask, B.mask, fipsc_fips_mask_words(&A) * sizeof *A.mask) == 0);
    CHECK(ra.final_loss == rb.final_loss);
    CHECK(memcmp(A.V, C.V, nv * sizeof(float)) != 0);
    fipsc_fips_train_report_free(&ra);
    fipsc_fips_train_report_free(&rb);
    fipsc_fips_train_report_free(&rc);
    fipsc_fips_factors_free(&A);
    fipsc_fips_factors_free(&B);
    fipsc_fips_factors_free(&C);
    synth_free(&s);
}

static void test_trainer_steps(void)
{
    synth s;
    make_random(&s, 12, 20, 2, 64);
    fipsc_error err = {0};
    fipsc_fips_factors F;
    CHECK_OK(fipsc_fips_init_group(&s.g, 8, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &F, &err), &err);
    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.steps = 3;
    fipsc_fips_trainer *tr = NULL;
    CHECK_OK(fipsc_fips_trainer_new(&s.g, &F, s.calib, &o, -1, &tr, &err), &err);
    if (tr) {
        /* 2 gated MLPs, 64 rows each: 10·n·d·r + 18·n·r·f per MLP */
        CHECK(fipsc_fips_trainer_step_flops(tr) == 2 * (10.0 * 64 * 12 * 8 + 18.0 * 64 * 8 * 20));
        double loss;
        for (int t = 0; t < 3; t++) CHECK_OK(fipsc_fips_trainer_step(tr, &loss, &err), &err);
        CHECK_FAILS(fipsc_fips_trainer_step(tr, &loss, &err), FIPSC_ERR_ARG, "all 3 steps", &err);
        fipsc_fips_trainer_free(tr);
    }
    CHECK_FAILS(fipsc_fips_trainer_new(&s.g, &F, s.calib, &o, 2, &tr, &err), FIPSC_ERR_ARG,
                "out of range", &err);
    fipsc_fips_factors_free(&F);
    synth_free(&s);
}

static void test_errors(void)
{
    synth s;
    make_random(&s, 12, 20, 2, 50);
    fipsc_error err = {0};
    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.steps = 10;
    o.evaluate = false;
    fipsc_fips_factors F;
    fipsc_fips_train_report rep;

    o.mask = FIPSC_FIPS_MASK_NM;
    CHECK_FAILS(run(&s, 10, &o, &F, &rep, &err), FIPSC_ERR_ARG, "r = 10 is not a multiple of m = 4", &err);
    fipsc_fips_factors_free(&F);
    o.mask = FIPSC_FIPS_MASK_GMP;

    o.sparsity = 1.0;
    CHECK_FAILS(run(&s, 8, &o, &F, &rep, &err), FIPSC_ERR_ARG, "sparsity", &err);
    fipsc_fips_factors_free(&F);
    o.sparsity = 0.5;
    o.batch_rows = 0;
    CHECK_FAILS(run(&s, 8, &o, &F, &rep, &err), FIPSC_ERR_ARG, "batch_rows", &err);
    fipsc_fips_factors_free(&F);
    o.batch_rows = 16;

    s.x[1][5 * 12 + 3] = NAN;
    CHECK_FAILS(run(&s, 8, &o, &F, &rep, &err), FIPSC_ERR_NUMERIC, "input of MLP 1, row 5, column 3", &err);
    fipsc_fips_factors_free(&F);
    s.x[1][5 * 12 + 3] = 0.25f;

    o.lr = 1e30f;
    o.lr_min = 0.0f;
    CHECK_FAILS(run(&s, 8, &o, &F, &rep, &err), FIPSC_ERR_NUMERIC, "lower the learning rate", &err);
    CHECK(rep.rel_err_before == NULL);
    fipsc_fips_factors_free(&F);
    synth_free(&s);
}

/* ---- The best iterate on held-out rows ---- */

static bool same_factors(const fipsc_fips_factors *A, const fipsc_fips_factors *B)
{
    size_t nu = (size_t)A->d * A->r, nv = (size_t)A->r * A->P;
    return memcmp(A->U, B->U, nu * sizeof(float)) == 0 && memcmp(A->V, B->V, nv * sizeof(float)) == 0 &&
           memcmp(A->mask, B->mask, fipsc_fips_mask_words(A) * sizeof *A->mask) == 0;
}

static void test_best_iterate(void)
{
    synth s;
    make_random(&s, 12, 20, 2, 100);
    /* The last 20 rows of each MLP are held out; training sees the first 80. */
    fipsc_fips_calib train[2], held[2];
    for (int j = 0; j < 2; j++) {
        train[j] = (fipsc_fips_calib){80, s.calib[j].x, s.calib[j].y};
        held[j] = (fipsc_fips_calib){20, s.calib[j].x + 80 * 12, s.calib[j].y + 80 * 12};
    }
    fipsc_error err = {0};
    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.steps = 30;
    o.batch_rows = 16;
    o.mask = FIPSC_FIPS_MASK_STATIC;
    o.sparsity = 0.5;
    o.evaluate = false;
    o.eval_every = 5;
    int earlier = 0;
    /* Constant learning rates (lr_min = lr), some far too high, so that some run's best iterate
     * comes before its last. */
    const float lrs[] = {1e-2f, 5e-2f, 1e-1f, 2e-1f, 4e-1f};
    for (int k = 0; k < 5; k++) {
        o.lr = o.lr_min = lrs[k];
        fipsc_fips_factors A, B;
        fipsc_fips_train_report ra, rb;
        o.holdout = NULL;
        CHECK_OK(fipsc_fips_init_group(&s.g, 8, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &A, &err), &err);
        CHECK_OK(fipsc_fips_train(&s.g, &A, train, &o, &ra, &err), &err);
        CHECK(isnan(ra.holdout_last) && isnan(ra.holdout_kept) && ra.kept_step == 30 && ra.evaluations == 0);
        o.holdout = held;
        CHECK_OK(fipsc_fips_init_group(&s.g, 8, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &B, &err), &err);
        CHECK_OK(fipsc_fips_train(&s.g, &B, train, &o, &rb, &err), &err);
        /* Static mask: a candidate after every 5th step, the last one included. */
        CHECK(rb.evaluations == 6);
        CHECK(rb.holdout_kept <= rb.holdout_last && rb.kept_step % 5 == 0 && rb.kept_step >= 5);
        double score;
        CHECK_OK(fipsc_fips_holdout_score(&s.g, &B, held, &score, &err), &err);
        CHECK(score == rb.holdout_kept);
        if (rb.kept_step == 30) {
            /* Evaluating changes nothing in the trajectory. */
            CHECK(same_factors(&A, &B) && rb.holdout_kept == rb.holdout_last);
        } else {
            /* An earlier iterate came back: exactly the run stopped at that step (constant lr, so
             * the first kept_step steps do not depend on the total). */
            earlier++;
            CHECK(rb.holdout_kept < rb.holdout_last);
            fipsc_fips_factors C;
            fipsc_fips_train_report rc;
            fipsc_fips_train_opts oc = o;
            oc.holdout = NULL;
            oc.steps = rb.kept_step;
            CHECK_OK(fipsc_fips_init_group(&s.g, 8, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &C, &err), &err);
            CHECK_OK(fipsc_fips_train(&s.g, &C, train, &oc, &rc, &err), &err);
            CHECK(same_factors(&B, &C));
            fipsc_fips_train_report_free(&rc);
            fipsc_fips_factors_free(&C);
        }
        fipsc_fips_train_report_free(&ra);
        fipsc_fips_train_report_free(&rb);
        fipsc_fips_factors_free(&A);
        fipsc_fips_factors_free(&B);
    }
    printf("best iterate: %d of 5 runs kept an earlier iterate than their last\n", earlier);
    CHECK(earlier >= 1);

    /* GMP: no candidate before the mask is final (t_end = 0.75·40 = 30); local mode: only the
     * last phase's iterates are candidates. */
    o.mask = FIPSC_FIPS_MASK_GMP;
    o.delta_t = 5;
    o.steps = 40;
    o.lr = 1e-2f;
    o.lr_min = 1e-4f;
    for (int mode = 0; mode < 2; mode++) {
        o.mode = mode ? FIPSC_FIPS_LOCAL : FIPSC_FIPS_JOINT;
        fipsc_fips_factors F;
        fipsc_fips_train_report rep;
        CHECK_OK(fipsc_fips_init_group(&s.g, 8, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &F, &err), &err);
        CHECK_OK(fipsc_fips_train(&s.g, &F, train, &o, &rep, &err), &err);
        const int before = mode ? 40 : 0; /* local: the first phase's 40 steps */
        CHECK(rep.evaluations == 2 && rep.kept_step >= before + 35);
        CHECK(fabs(rep.sparsity - 0.5) < 0.01);
        fipsc_fips_train_report_free(&rep);
        fipsc_fips_factors_free(&F);
    }
    synth_free(&s);
}

int main(void)
{
    test_recovery();
    test_stories260k();
    test_masks_and_modes();
    test_determinism();
    test_trainer_steps();
    test_errors();
    test_best_iterate();
    return test_summary("test_fips_train");
}
