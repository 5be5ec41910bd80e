/* FiPS group description: matrix order, orientation and W_cat layout, the way back, validation
 * errors; rank from budget with the exact formula and rounding; kept parameters and storage
 * bytes (CSC with uint16/uint32 row indices, n:m packed). */
#include <stdlib.h>
#include <string.h>

#include "fips/fips.h"
#include "core/tensor.h"
#include "testutil.h"

/* Weight entries encode (mlp, role, out, in) so that every placement can be checked. */
static float code(int j, int q, int out, int in)
{
    return (float)(j * 1000000 + q * 100000 + out * 100 + in);
}

typedef struct mixed {
    fipsc_mlp mlps[2];
    float *w[2][3];
    float bias[16];
} mixed;

/* MLP 0: gated, d 4, f 6. MLP 1: plain, d 4, f 5. */
static void make_mixed(mixed *mx)
{
    memset(mx, 0, sizeof *mx);
    const int d = 4, f[2] = {6, 5};
    for (int j = 0; j < 2; j++) {
        fipsc_mlp *m = &mx->mlps[j];
        m->kind = j == 0 ? FIPSC_MLP_GATED : FIPSC_MLP_PLAIN;
        m->act = j == 0 ? FIPSC_ACT_SILU : FIPSC_ACT_GELU;
        m->d = d;
        m->f = f[j];
        for (int q = 0; q < 3; q++) {
            if (j == 1 && q == 0) continue;
            int out = q == 2 ? d : f[j], in = q == 2 ? f[j] : d;
            mx->w[j][q] = malloc((size_t)out * in * sizeof(float));
            for (int o = 0; o < out; o++)
                for (int i = 0; i < in; i++) mx->w[j][q][o * in + i] = code(j, q, o, i);
            fipsc_linear lin = {.out = out, .in = in, .w = mx->w[j][q]};
            if (q == 0) m->gate = lin;
            if (q == 1) m->up = lin;
            if (q == 2) m->down = lin;
        }
    }
    mx->mlps[1].up.bias = mx->bias;
}

static void free_mixed(mixed *mx)
{
    for (int j = 0; j < 2; j++)
        for (int q = 0; q < 3; q++) free(mx->w[j][q]);
}

static void test_layout(void)
{
    mixed mx;
    make_mixed(&mx);
    fipsc_fips_group g;
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_group_init(&g, mx.mlps, 2, &err), &err);
    CHECK(g.d == 4);
    CHECK(g.n_matrices == 5);
    CHECK(g.P == 6 * 3 + 5 * 2);
    CHECK(g.first_matrix[0] == 0 && g.first_matrix[1] == 3 && g.first_matrix[2] == 5);
    const fipsc_mlp_role roles[5] = {FIPSC_ROLE_GATE, FIPSC_ROLE_UP, FIPSC_ROLE_DOWN, FIPSC_ROLE_UP,
                                      FIPSC_ROLE_DOWN};
    const int64_t offs[5] = {0, 6, 12, 18, 23};
    for (int i = 0; i < 5; i++) {
        CHECK(g.matrices[i].role == roles[i]);
        CHECK(g.matrices[i].col_offset == offs[i]);
        CHECK(g.matrices[i].mlp == (i < 3 ? 0 : 1));
        CHECK(g.matrices[i].expanding == (roles[i] != FIPSC_ROLE_DOWN));
    }
    CHECK(fipsc_fips_matrix_index(&g, 1, FIPSC_ROLE_GATE) == -1);
    CHECK(fipsc_fips_matrix_index(&g, 1, FIPSC_ROLE_DOWN) == 4);
    CHECK(fipsc_fips_matrix_index(&g, 2, FIPSC_ROLE_UP) == -1);
    float span[5 * 4]; /* MLP 1's up: [5, 4] */
    fipsc_fips_matrix_weight_span(&g, 3, 0, 5 * 4, span);
    CHECK(memcmp(span, mx.w[1][1], sizeof span) == 0);

    /* W_cat[a, off + c] = M_i[a, c]: expanding M_i = Wᵀ, so W[c, a]; contracting W[a, c]. */
    float *wcat = malloc((size_t)(4 * g.P) * sizeof(float));
    CHECK_OK(fipsc_fips_concat(&g, wcat, &err), &err);
    bool ok = true;
    for (int i = 0; i < 5; i++) {
        const fipsc_fips_matrix *m = &g.matrices[i];
        int q = m->role == FIPSC_ROLE_GATE ? 0 : m->role == FIPSC_ROLE_UP ? 1 : 2;
        for (int a = 0; a < 4; a++)
            for (int c = 0; c < m->cols; c++) {
                float want = m->expanding ? code(m->mlp, q, c, a) : code(m->mlp, q, a, c);
                ok &= wcat[a * g.P + m->col_offset + c] == want;
            }
    }
    CHECK(ok);
    /* and back, to the stored [out, in] */
    for (int i = 0; i < 5; i++) {
        const fipsc_fips_matrix *m = &g.matrices[i];
        float back[6 * 4];
        fipsc_fips_uncat(&g, i, wcat + m->col_offset, g.P, back);
        float stored[6 * 4];
        fipsc_fips_matrix_weight_span(&g, i, 0, (int64_t)m->cols * 4, stored);
        CHECK(memcmp(back, stored, (size_t)(m->cols * 4) * sizeof(float)) == 0);
    }

    /* The same MLPs with their weights in BF16 (w16, as a checkpoint keeps them): W_cat and the
     * weights read back are those of the float32 conversion, bit for bit. */
    fipsc_mlp half[2] = {mx.mlps[0], mx.mlps[1]}, rounded[2] = {mx.mlps[0], mx.mlps[1]};
    uint16_t *h16[2][3] = {{0}};
    float *r32[2][3] = {{0}};
    for (int j = 0; j < 2; j++)
        for (int q = 0; q < 3; q++) {
            fipsc_linear *lh = fipsc_mlp_slot(&half[j], (fipsc_mlp_role)(FIPSC_ROLE_GATE + q));
            fipsc_linear *lr = fipsc_mlp_slot(&rounded[j], (fipsc_mlp_role)(FIPSC_ROLE_GATE + q));
            if (!lh || !lh->w) continue;
            const size_t n = (size_t)lh->out * lh->in;
            h16[j][q] = malloc(n * sizeof(uint16_t));
            r32[j][q] = malloc(n * sizeof(float));
            for (size_t e = 0; e < n; e++) h16[j][q][e] = fipsc_f32_to_bf16(lh->w[e] * 1.001f);
            fipsc_convert16_to_f32(FIPSC_BF16, h16[j][q], n, r32[j][q]);
            lh->w16 = h16[j][q], lh->w16_dtype = FIPSC_BF16, lh->w = NULL;
            lr->w = r32[j][q];
        }
    fipsc_fips_group gh, gr;
    CHECK_OK(fipsc_fips_group_init(&gh, half, 2, &err), &err);
    CHECK_OK(fipsc_fips_group_init(&gr, rounded, 2, &err), &err);
    float *wcat_h = malloc((size_t)(4 * g.P) * sizeof(float));
    CHECK_OK(fipsc_fips_concat(&gh, wcat_h, &err), &err);
    CHECK_OK(fipsc_fips_concat(&gr, wcat, &err), &err);
    CHECK(memcmp(wcat_h, wcat, (size_t)(4 * g.P) * sizeof(float)) == 0);
    for (int i = 0; i < 5; i++) {
        float a[6 * 4], b[6 * 4];
        fipsc_fips_matrix_weight_span(&gh, i, 2, (int64_t)g.matrices[i].cols * 4 - 2, a);
        fipsc_fips_matrix_weight_span(&gr, i, 2, (int64_t)g.matrices[i].cols * 4 - 2, b);
        CHECK(memcmp(a, b, ((size_t)g.matrices[i].cols * 4 - 2) * sizeof(float)) == 0);
    }
    fipsc_fips_group_free(&gh);
    fipsc_fips_group_free(&gr);
    for (int j = 0; j < 2; j++)
        for (int q = 0; q < 3; q++) free(h16[j][q]), free(r32[j][q]);
    free(wcat_h);
    free(wcat);
    fipsc_fips_group_free(&g);
    free_mixed(&mx);
}

static void test_errors(void)
{
    mixed mx;
    make_mixed(&mx);
    fipsc_fips_group g;
    fipsc_error err = {0};
    CHECK_FAILS(fipsc_fips_group_init(&g, mx.mlps, 0, &err), FIPSC_ERR_ARG, "at least one", &err);

    mx.mlps[1].d = 5;
    CHECK_FAILS(fipsc_fips_group_init(&g, mx.mlps, 2, &err), FIPSC_ERR_SHAPE, "MLP 1 has width d = 5", &err);
    mx.mlps[1].d = 4;

    mx.mlps[0].down.in = 7;
    mx.mlps[0].down.weight_name = "model.layers.0.mlp.down_proj.weight";
    CHECK_FAILS(fipsc_fips_group_init(&g, mx.mlps, 2, &err), FIPSC_ERR_SHAPE,
                "down weight model.layers.0.mlp.down_proj.weight is [4, 7], expected [4, 6]", &err);
    mx.mlps[0].down.in = 6;

    const float *keep = mx.mlps[0].gate.w;
    mx.mlps[0].gate.w = NULL;
    CHECK_FAILS(fipsc_fips_group_init(&g, mx.mlps, 2, &err), FIPSC_ERR_ARG, "MLP 0 gate", &err);
    mx.mlps[0].gate.w = keep;

    mx.mlps[1].gate = mx.mlps[0].gate;
    CHECK_FAILS(fipsc_fips_group_init(&g, mx.mlps, 2, &err), FIPSC_ERR_ARG, "plain but has a gate", &err);
    mx.mlps[1].gate = (fipsc_linear){0};

    mx.mlps[1].act = (fipsc_activation)17;
    CHECK_FAILS(fipsc_fips_group_init(&g, mx.mlps, 2, &err), FIPSC_ERR_ARG, "activation", &err);
    mx.mlps[1].act = FIPSC_ACT_RELU;
    CHECK_OK(fipsc_fips_group_init(&g, mx.mlps, 2, &err), &err);

    fipsc_fips_factors F;
    CHECK_FAILS(fipsc_fips_factors_alloc(&F, 4, 0, g.P, &err), FIPSC_ERR_ARG, "r = 0", &err);
    CHECK_OK(fipsc_fips_factors_alloc(&F, 4, 3, g.P, &err), &err);
    float w[64];
    CHECK_FAILS(fipsc_fips_factors_dense(&g, &F, 5, w, &err), FIPSC_ERR_ARG, "out of range", &err);
    fipsc_fips_factors other;
    CHECK_OK(fipsc_fips_factors_alloc(&other, 4, 3, g.P + 1, &err), &err);
    CHECK_FAILS(fipsc_fips_factors_dense(&g, &other, 0, w, &err), FIPSC_ERR_SHAPE, "P = 29", &err);
    CHECK_FAILS(fipsc_fips_prune_magnitude(&g, &other, NULL, 0, 3, &err), FIPSC_ERR_SHAPE,
                "do not belong", &err);
    CHECK_FAILS(fipsc_fips_prune_magnitude(&g, &F, (int[]){1, 1}, 2, 3, &err), FIPSC_ERR_ARG,
                "listed twice", &err);
    CHECK_FAILS(fipsc_fips_prune_magnitude(&g, &F, (int[]){9}, 1, 3, &err), FIPSC_ERR_ARG,
                "out of range", &err);
    fipsc_fips_factors_free(&other);
    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&g);
    free_mixed(&mx);
}

static void test_budget(void)
{
    fipsc_error err = {0};
    int r = 0;
    /* stories260K, two gated MLPs: d 64, P = 6·172 = 1032. 0.5·64·1032 / (64 + 0.5·1032) = 56.94 */
    CHECK_OK(fipsc_fips_rank_from_budget(64, 1032, 0.5, 0.5, 0, &r, &err), &err);
    CHECK(r == 56);
    /* exact quotients stay integers: 0.5·100·300 / (100 + 0.5·300) = 60 */
    CHECK_OK(fipsc_fips_rank_from_budget(100, 300, 0.5, 0.5, 1, &r, &err), &err);
    CHECK(r == 60);
    /* 0.3·100·100 / (100 + 0.5·100) = 20 with inexact decimals; 0.7·10·90 / (10 + 0.1·90) = 33.16 */
    CHECK_OK(fipsc_fips_rank_from_budget(100, 100, 0.3, 0.5, 0, &r, &err), &err);
    CHECK(r == 20);
    CHECK_OK(fipsc_fips_rank_from_budget(100, 100, 0.6, 0.7, 0, &r, &err), &err);
    CHECK(r == 46); /* 6000 / 130 = 46.15 */
    /* the benchmark group: d 2048, two gated MLPs of f 5632 (P 33792), budget 0.5, sparsity 0.75:
     * 0.5·2048·33792 / (2048 + 0.25·33792) = 3296.78 */
    CHECK_OK(fipsc_fips_rank_from_budget(2048, 33792, 0.5, 0.75, 0, &r, &err), &err);
    CHECK(r == 3296);
    CHECK_OK(fipsc_fips_rank_from_budget(2048, 33792, 0.5, 0.75, 64, &r, &err), &err);
    CHECK(r == 3264);
    CHECK_OK(fipsc_fips_rank_from_budget(2048, 33792, 0.5, 0.75, 4, &r, &err), &err);
    CHECK(r == 3296);
    /* DeiT-B group of 4: d 768, P = 4·2·3072, 0.5 at 0.75 → over-complete r > d */
    CHECK_OK(fipsc_fips_rank_from_budget(768, 24576, 0.5, 0.75, 0, &r, &err), &err);
    CHECK(r == 1365);
    /* kept parameters fit the budget, one more rank would not */
    long long d = 2048, P = 33792;
    CHECK(d * 3296 + 0.25 * 3296 * P <= 0.5 * d * P);
    CHECK(d * 3297 + 0.25 * 3297 * P > 0.5 * d * P);

    CHECK_FAILS(fipsc_fips_rank_from_budget(64, 1032, 0.5, 0.5, 64, &r, &err), FIPSC_ERR_ARG,
                "multiple of 64", &err);
    CHECK_FAILS(fipsc_fips_rank_from_budget(64, 1032, 0.0, 0.5, 0, &r, &err), FIPSC_ERR_ARG, "(0, 1]", &err);
    CHECK_FAILS(fipsc_fips_rank_from_budget(64, 1032, 0.5, 1.0, 0, &r, &err), FIPSC_ERR_ARG, "[0, 1)", &err);

    CHECK(fipsc_fips_keep_count(1000, 0.75) == 250);
    CHECK(fipsc_fips_keep_count(10, 0.25) == 7);  /* 2.5 pruned rounds to 3 */
    CHECK(fipsc_fips_keep_count(10, 0.0) == 10);
    CHECK(fipsc_fips_keep_count(7, 0.999) == 0);
}

static void test_bytes(void)
{
    /* CSC: f32 values + uint16 rows (r ≤ 65535) or uint32 + uint32 pointers [cols + 1] */
    CHECK(fipsc_fips_csc_bytes(100, 10, 50) == 50 * 6 + 11 * 4);
    CHECK(fipsc_fips_csc_bytes(65535, 10, 50) == 50 * 6 + 11 * 4);
    CHECK(fipsc_fips_csc_bytes(65536, 10, 50) == 50 * 8 + 11 * 4);
    /* n:m: per column r/m·n values (f32) and as many uint8 indices */
    CHECK(fipsc_fips_nm_bytes(64, 10, 2, 4) == 32 * 10 * 5);

    mixed mx;
    make_mixed(&mx);
    fipsc_fips_group g;
    fipsc_error err = {0};
    CHECK_OK(fipsc_fips_group_init(&g, mx.mlps, 2, &err), &err);
    fipsc_fips_cost c;
    CHECK_OK(fipsc_fips_cost_predict(&g, 8, 0.75, 0, 0, &c, &err), &err);
    CHECK(c.dense_params == 4 * 28);
    CHECK(c.u_params == 32);
    CHECK(c.nnz == 8 * 28 - 168);
    CHECK(c.kept_params == 32 + 56);
    CHECK(c.dense_bytes == 4 * 4 * 28);
    CHECK(c.csc_bytes == 32 * 4 + 56 * 6 + (7 + 7 + 7 + 6 + 6) * 4);
    CHECK(c.nm_bytes == -1);
    CHECK_OK(fipsc_fips_cost_predict(&g, 8, 0.0, 2, 4, &c, &err), &err);
    CHECK(c.nnz == 4 * 28);
    CHECK(c.nm_bytes == 32 * 4 + 4 * 28 * 5);
    CHECK_FAILS(fipsc_fips_cost_predict(&g, 6, 0.0, 2, 4, &c, &err), FIPSC_ERR_ARG,
                "not a multiple of m = 4", &err);

    /* measured from masks: prune some entries of matrix 1 only */
    fipsc_fips_factors F;
    CHECK_OK(fipsc_fips_factors_alloc(&F, 4, 8, g.P, &err), &err);
    for (int k = 0; k < 8; k++)
        for (int c2 = 0; c2 < 6; c2++)
            if ((k + c2) % 2) fipsc_fips_set_kept(&F, k * g.P + 6 + c2, false);
    fipsc_fips_cost_measure(&g, &F, &c);
    CHECK(c.nnz == 8 * 28 - 24);
    CHECK(c.kept_params == 32 + 8 * 28 - 24);
    CHECK(c.csc_bytes == 32 * 4 + (8 * 28 - 24) * 6 + (7 + 7 + 7 + 6 + 6) * 4);
    fipsc_fips_factors_free(&F);
    fipsc_fips_group_free(&g);
    free_mixed(&mx);
}

int main(void)
{
    test_layout();
    test_errors();
    test_budget();
    test_bytes();
    return test_summary("test_fips_group");
}
