/* FiPS reconstruction: forward output and loss against an independent double-precision
 * reference, and the analytic gradients of U and every V_i against central finite differences of
 * that reference, for every activation, gated and plain, with biases, on a joint group of two MLPs
 * with some V entries pruned (the dense gradient is checked everywhere); the V-sparse step's
 * (fipsc_fips_loss_grad_kept) against the dense one at the kept entries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fips/fips.h"
#include "testutil.h"

static uint64_t rng_state = 0x1234567ull;
static double urand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static void fill(float *x, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * urand());
}

static double act_ref(fipsc_activation a, double x)
{
    switch (a) {
    case FIPSC_ACT_SILU: return x / (1.0 + exp(-x));
    case FIPSC_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case FIPSC_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case FIPSC_ACT_RELU: return x > 0.0 ? x : 0.0;
    }
    return x;
}

enum { D = 6, R = 5, F = 7, N = 4, NMLP = 2 };

typedef struct fixture {
    fipsc_mlp mlps[NMLP];
    float w[NMLP][3][F * D]; /* original weights (only their shapes matter here) */
    float bias[NMLP][3][F > D ? F : D];
    float x[NMLP][N * D], y[NMLP][N * D];
    fipsc_fips_group g;
} fixture;

static void make_fixture(fixture *fx, fipsc_mlp_kind kind, fipsc_activation act)
{
    memset(fx, 0, sizeof *fx);
    for (int j = 0; j < NMLP; j++) {
        fipsc_mlp *m = &fx->mlps[j];
        m->kind = kind;
        m->act = act;
        m->d = D;
        m->f = F;
        for (int q = 0; q < 3; q++) {
            fill(fx->w[j][q], F * D, 0.5);
            fill(fx->bias[j][q], F > D ? F : D, 0.3);
        }
        if (kind == FIPSC_MLP_GATED)
            m->gate = (fipsc_linear){.out = F, .in = D, .w = fx->w[j][0], .bias = fx->bias[j][0]};
        m->up = (fipsc_linear){.out = F, .in = D, .w = fx->w[j][1], .bias = fx->bias[j][1]};
        m->down = (fipsc_linear){.out = D, .in = F, .w = fx->w[j][2], .bias = fx->bias[j][2]};
        fill(fx->x[j], N * D, 1.0);
        fill(fx->y[j], N * D, 1.0);
    }
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_group_init(&fx->g, fx->mlps, NMLP, &err), &err);
}

/* Reference: L = Σ_j scale_j Σ_rows ‖MLP_c,j(x) − y‖² with U [D, R], V [R, P] in double. */
static double ref_loss(const fixture *fx, const double *U, const double *V, const double *scale,
                       double *yout /* optional [NMLP][N*D] */)
{
    const fipsc_fips_group *g = &fx->g;
    int64_t P = g->P;
    double L = 0.0;
    for (int j = 0; j < NMLP; j++) {
        const fipsc_mlp *m = &fx->mlps[j];
        int ig = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_GATE);
        int iu = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_UP);
        int io = fipsc_fips_matrix_index(g, j, FIPSC_ROLE_DOWN);
        for (int n = 0; n < N; n++) {
            const float *x = fx->x[j] + n * D;
            double z[R], a[F], w[R];
            for (int k = 0; k < R; k++) {
                z[k] = 0.0;
                for (int i = 0; i < D; i++) z[k] += U[i * R + k] * x[i];
            }
            for (int c = 0; c < F; c++) {
                double hu = m->up.bias[c], hg = 0.0;
                for (int k = 0; k < R; k++) hu += V[k * P + g->matrices[iu].col_offset + c] * z[k];
                if (ig >= 0) {
                    hg = m->gate.bias[c];
                    for (int k = 0; k < R; k++) hg += V[k * P + g->matrices[ig].col_offset + c] * z[k];
                    a[c] = act_ref(m->act, hg) * hu;
                } else {
                    a[c] = act_ref(m->act, hu);
                }
            }
            for (int k = 0; k < R; k++) {
                w[k] = 0.0;
                for (int c = 0; c < F; c++) w[k] += V[k * P + g->matrices[io].col_offset + c] * a[c];
            }
            for (int i = 0; i < D; i++) {
                double yi = m->down.bias[i];
                for (int k = 0; k < R; k++) yi += U[i * R + k] * w[k];
                if (yout) yout[j * N * D + n * D + i] = yi;
                double e = yi - fx->y[j][n * D + i];
                L += scale[j] * e * e;
            }
        }
    }
    return L;
}

static void check_case(fipsc_mlp_kind kind, fipsc_activation act)
{
    fixture *fx = malloc(sizeof *fx);
    make_fixture(fx, kind, act);
    fipsc_error err = {0};
    fipsc_fips_factors Fc;
    CHECK_OK(fipsc_fips_factors_alloc(&Fc, D, R, fx->g.P, &err), &err);
    int64_t P = fx->g.P, nv = R * P;
    fill(Fc.U, D * R, 0.6);
    fill(Fc.V, (size_t)nv, 0.6);
    /* Prune every fifth entry, as a mask would: dense gradients must still be right there. */
    for (int64_t e = 0; e < nv; e += 5) Fc.V[e] = 0.0f, fipsc_fips_set_kept(&Fc, e, false);

    double *U = malloc(D * R * sizeof(double)), *V = malloc((size_t)nv * sizeof(double));
    for (int e = 0; e < D * R; e++) U[e] = Fc.U[e];
    for (int64_t e = 0; e < nv; e++) V[e] = Fc.V[e];
    double scale[NMLP] = {0.7, 1.3};
    int list[NMLP] = {0, 1};
    fipsc_fips_calib batch[NMLP];
    for (int j = 0; j < NMLP; j++) batch[j] = (fipsc_fips_calib){N, fx->x[j], fx->y[j]};

    float *dU = malloc(D * R * sizeof(float)), *dV = malloc((size_t)nv * sizeof(float));
    double loss = 0.0;
    CHECK_OK(fipsc_fips_loss_grad(&fx->g, &Fc, NMLP, list, batch, scale, &loss, dU, dV, &err), &err);
    double yref[NMLP * N * D];
    double lref = ref_loss(fx, U, V, scale, yref);
    CHECK_MSG(fabs(loss - lref) <= 1e-5 * fabs(lref), "%s %s: loss %.9g vs reference %.9g",
              kind == FIPSC_MLP_GATED ? "gated" : "plain", fipsc_activation_name(act), loss, lref);

    /* Forward: library output vs reference, and vs the dense weights U·V_i in model orientation
     * (checks fipsc_fips_factors_dense and the orientation of every role). */
    for (int j = 0; j < NMLP; j++) {
        float y[N * D];
        CHECK_OK(fipsc_fips_forward(&fx->g, &Fc, j, fx->x[j], N, y, &err), &err);
        double maxdiff = 0.0;
        for (int e = 0; e < N * D; e++) maxdiff = fmax(maxdiff, fabs(y[e] - yref[j * N * D + e]));
        CHECK_MSG(maxdiff < 1e-5, "forward of MLP %d differs from the reference by %g", j, maxdiff);

        fipsc_mlp dense = fx->mlps[j];
        float wd[3][F * D];
        fipsc_linear *slots[3] = {&dense.gate, &dense.up, &dense.down};
        for (int q = 0; q < 3; q++) {
            int i = fipsc_fips_matrix_index(&fx->g, j, (fipsc_mlp_role)q);
            if (i < 0) continue;
            CHECK_OK(fipsc_fips_factors_dense(&fx->g, &Fc, i, wd[q], &err), &err);
            slots[q]->w = wd[q];
        }
        /* y = down·(act(gate·x + bg) ⊙ (up·x + bu)) + bd with the dense U·V_i, in double */
        maxdiff = 0.0;
        for (int n = 0; n < N; n++) {
            const float *x = fx->x[j] + n * D;
            double a[F];
            for (int c = 0; c < F; c++) {
                double hu = dense.up.bias[c];
                for (int i = 0; i < D; i++) hu += (double)dense.up.w[c * D + i] * x[i];
                if (kind == FIPSC_MLP_GATED) {
                    double hg = dense.gate.bias[c];
                    for (int i = 0; i < D; i++) hg += (double)dense.gate.w[c * D + i] * x[i];
                    a[c] = act_ref(act, hg) * hu;
                } else {
                    a[c] = act_ref(act, hu);
                }
            }
            for (int i = 0; i < D; i++) {
                double yi = dense.down.bias[i];
                for (int c = 0; c < F; c++) yi += (double)dense.down.w[i * F + c] * a[c];
                maxdiff = fmax(maxdiff, fabs(yi - y[n * D + i]));
            }
        }
        CHECK_MSG(maxdiff < 1e-5, "dense U·V_i of MLP %d disagree with the factored forward by %g", j,
                  maxdiff);
    }

    /* Central differences of the double reference, h = 1e-6. */
    const double h = 1e-6;
    double gmax = 0.0, worst = 0.0;
    int64_t worst_at = -1;
    double *fd = malloc((size_t)(D * R + nv) * sizeof(double));
    for (int64_t e = 0; e < D * R + nv; e++) {
        double *p = e < D * R ? &U[e] : &V[e - D * R];
        double keep = *p;
        *p = keep + h;
        double lp = ref_loss(fx, U, V, scale, NULL);
        *p = keep - h;
        double lm = ref_loss(fx, U, V, scale, NULL);
        *p = keep;
        fd[e] = (lp - lm) / (2 * h);
        gmax = fmax(gmax, fabs(fd[e]));
    }
    for (int64_t e = 0; e < D * R + nv; e++) {
        double an = e < D * R ? dU[e] : dV[e - D * R];
        double diff = fabs(an - fd[e]) / (1e-3 * gmax + fabs(fd[e]));
        if (diff > worst) worst = diff, worst_at = e;
    }
    CHECK_MSG(worst < 1e-3, "%s %s: gradient entry %lld (%s) off by %.3g relative",
              kind == FIPSC_MLP_GATED ? "gated" : "plain", fipsc_activation_name(act),
              (long long)worst_at, worst_at < D * R ? "U" : "V", worst);
    CHECK(gmax > 1e-3); /* the check compares real gradients */

    /* The V-sparse step: the same loss and dU, dV at the kept entries, 0 at the pruned ones. */
    float *dUk = malloc(D * R * sizeof(float)), *dVk = malloc((size_t)nv * sizeof(float));
    double loss_k = 0.0, worst_k = 0.0;
    for (int64_t e = 0; e < nv; e++) dVk[e] = 99.0f;
    CHECK_OK(fipsc_fips_loss_grad_kept(&fx->g, &Fc, NMLP, list, batch, scale, &loss_k, dUk, dVk, &err), &err);
    CHECK_MSG(fabs(loss_k - loss) <= 1e-6 * fabs(loss), "V-sparse loss %.9g vs %.9g", loss_k, loss);
    bool zero_pruned = true;
    for (int64_t e = 0; e < D * R + nv; e++) {
        if (e >= D * R && !fipsc_fips_kept(&Fc, e - D * R)) {
            zero_pruned &= dVk[e - D * R] == 0.0f;
            continue;
        }
        double a = e < D * R ? dUk[e] : dVk[e - D * R], b = e < D * R ? dU[e] : dV[e - D * R];
        worst_k = fmax(worst_k, fabs(a - b) / (1e-3 * gmax + fabs(b)));
    }
    CHECK_MSG(worst_k < 1e-4, "%s %s: V-sparse gradient off the dense one by %.3g relative",
              kind == FIPSC_MLP_GATED ? "gated" : "plain", fipsc_activation_name(act), worst_k);
    CHECK(zero_pruned);
    free(dUk);
    free(dVk);

    free(fd);
    free(dU);
    free(dV);
    free(U);
    free(V);
    fipsc_fips_factors_free(&Fc);
    fipsc_fips_group_free(&fx->g);
    free(fx);
}

/* dV columns of MLPs not listed are left alone; dU is overwritten, not accumulated. */
static void test_partial_list(void)
{
    fixture *fx = malloc(sizeof *fx);
    make_fixture(fx, FIPSC_MLP_GATED, FIPSC_ACT_SILU);
    fipsc_error err = {0};
    fipsc_fips_factors Fc;
    CHECK_OK(fipsc_fips_factors_alloc(&Fc, D, R, fx->g.P, &err), &err);
    fill(Fc.U, D * R, 0.6);
    fill(Fc.V, (size_t)(R * fx->g.P), 0.6);
    int64_t nv = R * fx->g.P;
    float *dV = malloc((size_t)nv * sizeof(float)), dU1[D * R], dU2[D * R];
    for (int64_t e = 0; e < nv; e++) dV[e] = 42.0f;
    int list[1] = {1};
    double scale[1] = {1.0}, l1, l2;
    fipsc_fips_calib b = {N, fx->x[1], fx->y[1]};
    CHECK_OK(fipsc_fips_loss_grad(&fx->g, &Fc, 1, list, &b, scale, &l1, dU1, dV, &err), &err);
    int64_t first = fx->g.matrices[fx->g.first_matrix[1]].col_offset;
    bool untouched = true, written = true;
    for (int k = 0; k < R; k++)
        for (int64_t c = 0; c < fx->g.P; c++) {
            float v = dV[k * fx->g.P + c];
            if (c < first) untouched &= v == 42.0f;
            else written &= v != 42.0f;
        }
    CHECK(untouched);
    CHECK(written);
    for (int e = 0; e < D * R; e++) dU2[e] = 1e9f;
    CHECK_OK(fipsc_fips_loss_grad(&fx->g, &Fc, 1, list, &b, scale, &l2, dU2, dV, &err), &err);
    CHECK(memcmp(dU1, dU2, sizeof dU1) == 0);
    CHECK(l1 == l2);
    CHECK_FAILS(fipsc_fips_loss_grad(&fx->g, &Fc, 1, (int[]){2}, &b, scale, &l2, dU2, dV, &err),
                FIPSC_ERR_ARG, "out of range", &err);
    free(dV);
    fipsc_fips_factors_free(&Fc);
    fipsc_fips_group_free(&fx->g);
    free(fx);
}

int main(void)
{
    const fipsc_activation acts[] = {FIPSC_ACT_SILU, FIPSC_ACT_GELU_TANH, FIPSC_ACT_GELU, FIPSC_ACT_RELU};
    for (int a = 0; a < 4; a++) {
        check_case(FIPSC_MLP_GATED, acts[a]);
        check_case(FIPSC_MLP_PLAIN, acts[a]);
    }
    test_partial_list();
    return test_summary("test_fips_grad");
}
