/* The V-sparse training step (src/fips/recon.c, opts.v_products): training with the products over
 * V's kept entries follows training with dense GEMMs over the masked V (the same maths, other
 * rounding) for every mask kind (GMP, whose pattern changes every delta_t steps; RigL, whose
 * update steps run dense; static; n:m), joint and local, float32 and bfloat16 moments; pruned
 * entries stay exactly zero (at every instruction set level the CPU has); auto switches to it
 * once V is sparse enough and not before; the result does not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "fips/fips.h"
#include "testutil.h"

enum { D = 16, FF = 40, NMLP = 2, R = 12 };

static uint64_t rng_state = 11;
static double urand(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

typedef struct fixture {
    fipsc_mlp mlps[NMLP];
    float *w[NMLP][3], *x[NMLP], *y[NMLP];
    fipsc_fips_calib calib[NMLP];
    fipsc_fips_group g;
    int64_t rows;
} fixture;

/* Two gated SiLU MLPs with random weights; targets are the MLPs' own outputs plus noise, so the
 * factored group has something to fit and something it cannot. */
static void make_fixture(fixture *fx, int64_t rows)
{
    memset(fx, 0, sizeof *fx);
    fx->rows = rows;
    for (int j = 0; j < NMLP; j++) {
        for (int q = 0; q < 3; q++) {
            fx->w[j][q] = malloc(sizeof(float) * D * FF);
            for (int e = 0; e < D * FF; e++) fx->w[j][q][e] = (float)(urand() / sqrt(D));
        }
        fx->mlps[j] = (fipsc_mlp){.kind = FIPSC_MLP_GATED, .act = FIPSC_ACT_SILU, .d = D, .f = FF,
                                  .gate = {.out = FF, .in = D, .w = fx->w[j][0]},
                                  .up = {.out = FF, .in = D, .w = fx->w[j][1]},
                                  .down = {.out = D, .in = FF, .w = fx->w[j][2]}};
        fx->x[j] = malloc(sizeof(float) * (size_t)rows * D);
        fx->y[j] = malloc(sizeof(float) * (size_t)rows * D);
        for (int64_t e = 0; e < rows * D; e++) fx->x[j][e] = (float)urand();
        for (int64_t n = 0; n < rows; n++) {
            const float *x = fx->x[j] + n * D;
            float a[FF];
            for (int c = 0; c < FF; c++) {
                double g = 0.0, u = 0.0;
                for (int i = 0; i < D; i++) g += (double)fx->w[j][0][c * D + i] * x[i], u += (double)fx->w[j][1][c * D + i] * x[i];
                a[c] = (float)(g / (1.0 + exp(-g)) * u);
            }
            for (int i = 0; i < D; i++) {
                double s = 0.1 * urand();
                for (int c = 0; c < FF; c++) s += (double)fx->w[j][2][i * FF + c] * a[c];
                fx->y[j][n * D + i] = (float)s;
            }
        }
        fx->calib[j] = (fipsc_fips_calib){rows, fx->x[j], fx->y[j]};
    }
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_group_init(&fx->g, fx->mlps, NMLP, &err), &err);
}

static void free_fixture(fixture *fx)
{
    for (int j = 0; j < NMLP; j++) {
        for (int q = 0; q < 3; q++) free(fx->w[j][q]);
        free(fx->x[j]);
        free(fx->y[j]);
    }
    fipsc_fips_group_free(&fx->g);
}

static void train(const fixture *fx, const fipsc_fips_train_opts *o, fipsc_fips_factors *F,
                  fipsc_fips_train_report *rep)
{
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_init_group(&fx->g, R, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, F, &err), &err);
    CHECK_OK(fipsc_fips_train(&fx->g, F, fx->calib, o, rep, &err), &err);
}

/* The defaults with a short run's steps and learning rate, no measurement before/after. */
static fipsc_fips_train_opts short_run(int steps)
{
    fipsc_fips_train_opts o;
    fipsc_fips_train_defaults(&o);
    o.steps = steps;
    o.lr = 3e-3f;
    o.evaluate = false;
    return o;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0.0;
    for (size_t e = 0; e < n; e++) m = fmax(m, fabs(a[e]));
    return m;
}

/* Dense and V-sparse training of the same group from the same start end at nearly the same place. */
static void test_follows_dense(void)
{
    fixture fx;
    make_fixture(&fx, 300);
    const char *kinds[] = {"GMP", "RigL", "static", "2:4"};
    for (int kind = 0; kind < 4; kind++)
        for (int mode = 0; mode < 2; mode++)
            for (int bf16 = 0; bf16 < 2; bf16++) {
                fipsc_fips_train_opts o = short_run(40);
                o.mask = (fipsc_fips_mask_kind)kind;
                o.mode = (fipsc_fips_mode)mode;
                o.bf16_moments = bf16;
                o.delta_t = 6;
                o.batch_rows = 100;
                o.sparsity = 0.7;
                fipsc_fips_factors A, B;
                fipsc_fips_train_report ra, rb;
                o.v_products = FIPSC_FIPS_V_DENSE;
                train(&fx, &o, &A, &ra);
                o.v_products = FIPSC_FIPS_V_SPARSE;
                train(&fx, &o, &B, &rb);
                const size_t nu = (size_t)D * R, nv = (size_t)R * fx.g.P;
                double du = 0.0, dv = 0.0;
                int64_t mask_diff = 0;
                bool zeros = true;
                for (size_t e = 0; e < nu; e++) du = fmax(du, fabs(A.U[e] - B.U[e]));
                for (size_t e = 0; e < nv; e++) {
                    dv = fmax(dv, fabs(A.V[e] - B.V[e]));
                    mask_diff += fipsc_fips_kept(&A, (int64_t)e) != fipsc_fips_kept(&B, (int64_t)e);
                    if (!fipsc_fips_kept(&B, (int64_t)e)) zeros &= B.V[e] == 0.0f;
                }
                du /= max_abs(A.U, nu);
                dv /= max_abs(A.V, nv);
                const int phases = mode == FIPSC_FIPS_JOINT ? 1 : NMLP;
                /* RigL's update steps (every delta_t before t_end = 30: t = 6, 12, 18, 24) run dense */
                const int expected = phases * (kind == FIPSC_FIPS_MASK_RIGL ? o.steps - 4 : o.steps);
                CHECK_MSG(rb.sparse_steps == expected && ra.sparse_steps == 0, "%s mode %d: %d V-sparse steps, "
                          "expected %d (dense run: %d)", kinds[kind], mode, rb.sparse_steps, expected, ra.sparse_steps);
                CHECK_MSG(du < 2e-3 && dv < 2e-3 && mask_diff <= (int64_t)nv / 100,
                          "%s mode %d bf16 %d: V-sparse training off the dense one: U by %.3g, V by %.3g "
                          "(relative to the largest), %lld mask entries differ", kinds[kind], mode, bf16, du, dv,
                          (long long)mask_diff);
                CHECK_MSG(fabs(ra.final_loss - rb.final_loss) <= 1e-3 * ra.final_loss, "%s mode %d: loss %.6g vs %.6g",
                          kinds[kind], mode, rb.final_loss, ra.final_loss);
                CHECK(ra.nnz == rb.nnz);
                CHECK(zeros);
                fipsc_fips_train_report_free(&ra);
                fipsc_fips_train_report_free(&rb);
                fipsc_fips_factors_free(&A);
                fipsc_fips_factors_free(&B);
            }
    free_fixture(&fx);
}

/* auto: V-sparse from the first step whose mask keeps at most FIPSC_FIPS_SPARSE_STEP_DENSITY of V
 * (GMP prunes gradually), never when the final sparsity keeps more. */
static void test_auto(void)
{
    fixture fx;
    make_fixture(&fx, 100);
    fipsc_fips_train_opts o = short_run(60);
    o.delta_t = 5;
    const double final[2] = {0.75, 0.5};
    for (int a = 0; a < 2; a++) {
        o.sparsity = final[a];
        fipsc_fips_factors F;
        fipsc_fips_train_report rep;
        train(&fx, &o, &F, &rep);
        if (final[a] >= 1.0 - FIPSC_FIPS_SPARSE_STEP_DENSITY)
            CHECK_MSG(rep.sparse_steps > 0 && rep.sparse_steps < o.steps, "sparsity %.2f: %d of %d steps V-sparse",
                      final[a], rep.sparse_steps, o.steps);
        else
            CHECK_MSG(rep.sparse_steps == 0, "sparsity %.2f: %d V-sparse steps", final[a], rep.sparse_steps);
        fipsc_fips_train_report_free(&rep);
        fipsc_fips_factors_free(&F);
    }
    free_fixture(&fx);
}

/* The same bits on 1 and 2 threads, with enough rows for the sparse kernels to run in parallel. */
static void test_threads(void)
{
    fixture fx;
    make_fixture(&fx, 4096);
    fipsc_fips_train_opts o = short_run(6);
    o.mask = FIPSC_FIPS_MASK_STATIC;
    o.sparsity = 0.75;
    o.batch_rows = 4096;
    o.v_products = FIPSC_FIPS_V_SPARSE;
    fipsc_fips_factors A, B;
    fipsc_fips_train_report ra, rb;
    omp_set_num_threads(1);
    train(&fx, &o, &A, &ra);
    omp_set_num_threads(2);
    train(&fx, &o, &B, &rb);
    CHECK(memcmp(A.U, B.U, sizeof(float) * D * R) == 0);
    CHECK(memcmp(A.V, B.V, sizeof(float) * R * fx.g.P) == 0);
    CHECK(ra.final_loss == rb.final_loss && rb.sparse_steps == o.steps);
    fipsc_fips_train_report_free(&ra);
    fipsc_fips_train_report_free(&rb);
    fipsc_fips_factors_free(&A);
    fipsc_fips_factors_free(&B);
    free_fixture(&fx);
}

int main(void)
{
    /* The V-sparse step's gathers run the kernels of the active instruction set level: follow the
     * dense step at every level this CPU has. */
    fipsc_error err = {0};
    const fipsc_isa best = fipsc_isa_active();
    for (int isa = FIPSC_ISA_PORTABLE; isa < FIPSC_ISA_COUNT; isa++) {
        if (!fipsc_isa_supported((fipsc_isa)isa)) continue;
        CHECK_OK(fipsc_isa_set((fipsc_isa)isa, &err), &err);
        test_follows_dense();
    }
    CHECK_OK(fipsc_isa_set(best, &err), &err);
    test_auto();
    test_threads();
    return test_summary("test_fips_sparse_step");
}
