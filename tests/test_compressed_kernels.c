/* Factored (FiPS-compressed) linears against a dense reconstruction computed here in double
 * precision from U and V: every storage (CSC, n:m, dense, bitmap), expanding and contracting, dense and
 * identity basis, one row and batches (partial tiles, several tiles), bias and accumulation,
 * 16- and 32-bit indices; the shared-basis pair; densify; stored-layout round trips; the
 * stored-layout validator; thread-count independence. The kernels run at every instruction set
 * level this CPU has up to AVX-512 (src/core/isa.h), each checked against the reference and
 * against the portable level. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "core/threads.h"
#include "ops/factored.h"
#include "testutil.h"

static uint64_t rng = 88172645463325252ULL;

static double uniform(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-52 - 1.0;
}

static float *random_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)uniform();
    return p;
}

/* V [r, f] with about `density` of its entries nonzero; for n:m at most n per run of m rows. */
static float *random_v(int r, int f, double density, int nm_n, int nm_m)
{
    float *V = calloc((size_t)r * f, sizeof *V);
    for (int k = 0; k < r; k++)
        for (int j = 0; j < f; j++)
            if (uniform() * 0.5 + 0.5 < density) V[(size_t)k * f + j] = (float)uniform();
    if (nm_m) /* keep the first n nonzeros of each run */
        for (int j = 0; j < f; j++)
            for (int q = 0; q < r / nm_m; q++)
                for (int o = 0, seen = 0; o < nm_m; o++) {
                    float *v = &V[(size_t)(q * nm_m + o) * f + j];
                    if (*v != 0.0f && ++seen > nm_n) *v = 0.0f;
                }
    return V;
}

/* W [out, in] in double: M = U·V (or V) [d, f], W = Mᵀ when expanding. */
static double *reference_weight(const float *U, const float *V, int d, int r, int f, bool expanding)
{
    double *W = calloc((size_t)d * f, sizeof *W);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < f; j++) {
            double s = 0.0;
            if (U)
                for (int k = 0; k < r; k++) s += (double)U[(size_t)i * r + k] * V[(size_t)k * f + j];
            else
                s = V[(size_t)i * f + j];
            if (expanding) W[(size_t)j * d + i] = s;
            else W[(size_t)i * f + j] = s;
        }
    return W;
}

/* max |a - b| / max |b| */
static double rel_error(const float *a, const double *b, size_t n)
{
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > diff || isnan(e)) diff = isnan(e) ? INFINITY : e;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return scale > 0 ? diff / scale : diff;
}

typedef struct setup {
    fipsc_compressed_group group;
    fipsc_factored_linear *fl;
    float *V;
    double *W; /* reference [out, in] */
} setup;

/* The dtype the V values of the next build() are stored in (BF16: held as val16). */
static fipsc_dtype build_v_dtype = FIPSC_F32;
/* The kernel layout of a bitmap-stored V in the next build(): bitmap lists (1), positions (0), or
 * as fipsc_factored_new chooses for the active level (-1). */
static int build_bitmap_lists = -1;
/* n of the n:m masks of the next build() (m is 4). */
static int build_nm_n = 2;

static bool build(setup *s, fipsc_v_storage storage, bool expanding, bool identity, int d, int r, int f,
                  double density)
{
    fipsc_error err = {0};
    memset(s, 0, sizeof *s);
    if (identity) r = d;
    int nm_n = storage == FIPSC_V_NM ? build_nm_n : 0, nm_m = storage == FIPSC_V_NM ? 4 : 0;
    s->group = (fipsc_compressed_group){.first_layer = 0, .last_layer = 0, .d = d, .r = r,
                                        .U = identity ? NULL : random_floats((size_t)d * r),
                                        .u_dtype = FIPSC_F32, .v_dtype = build_v_dtype, .storage = storage,
                                        .nm_n = nm_n, .nm_m = nm_m};
    snprintf(s->group.method, sizeof s->group.method, "test");
    s->V = storage == FIPSC_V_DENSE ? random_floats((size_t)r * f) : random_v(r, f, density, nm_n, nm_m);
    CHECK(fipsc_round_to_dtype(build_v_dtype, s->V, (size_t)r * f) < 0); /* as attach holds them */
    fipsc_v_stored v;
    CHECK_OK(fipsc_v_stored_from_dense(storage, r, f, s->V, f, nm_n, nm_m, "V", &v, &err), &err);
    CHECK_OK(fipsc_v_stored_validate(&v, "V", &err), &err);
    const char *name = expanding ? "up.weight" : "down.weight";
    const fipsc_mlp_role role = expanding ? FIPSC_ROLE_UP : FIPSC_ROLE_DOWN;
    if (build_bitmap_lists < 0) CHECK_OK(fipsc_factored_new(name, 0, role, &s->group, &v, &s->fl, &err), &err);
    else CHECK_OK(fipsc_factored_new_as(name, 0, role, &s->group, &v, build_bitmap_lists, &s->fl, &err), &err);
    s->W = reference_weight(s->group.U, s->V, d, r, f, expanding);
    return s->fl != NULL;
}

static void teardown(setup *s)
{
    fipsc_factored_free(s->fl);
    free(s->group.U);
    free(s->V);
    free(s->W);
}

/* y = x·Wᵀ + bias and y0 + x·Wᵀ (accumulate) against the double reference, for n rows. */
static void check_apply(const setup *s, int n, const char *label)
{
    fipsc_error err = {0};
    const fipsc_factored_linear *fl = s->fl;
    int out = fl->out, in = fl->in;
    float *x = random_floats((size_t)n * in), *bias = random_floats((size_t)out);
    float *y = malloc((size_t)n * out * sizeof *y), *y0 = random_floats((size_t)n * out);
    double *ref = malloc((size_t)n * out * sizeof *ref), *ref_acc = malloc((size_t)n * out * sizeof *ref);
    for (int b = 0; b < n; b++)
        for (int o = 0; o < out; o++) {
            double acc = 0.0;
            for (int i = 0; i < in; i++) acc += (double)x[(size_t)b * in + i] * s->W[(size_t)o * in + i];
            ref[(size_t)b * out + o] = acc + bias[o];
            ref_acc[(size_t)b * out + o] = acc + y0[(size_t)b * out + o];
        }
    CHECK_OK(fipsc_factored_apply(fl, bias, n, x, y, false, &err), &err);
    double e = rel_error(y, ref, (size_t)n * out);
    CHECK_MSG(e <= 1e-5, "%s, n %d: relative error %.3g", label, n, e);
    CHECK_OK(fipsc_factored_apply(fl, NULL, n, x, y0, true, &err), &err);
    e = rel_error(y0, ref_acc, (size_t)n * out);
    CHECK_MSG(e <= 1e-5, "%s, n %d, accumulate: relative error %.3g", label, n, e);
    free(x), free(bias), free(y), free(y0), free(ref), free(ref_acc);
}

static void check_densify_and_roundtrip(const setup *s, const char *label)
{
    fipsc_error err = {0};
    const fipsc_factored_linear *fl = s->fl;
    float *w = malloc((size_t)fl->out * fl->in * sizeof *w);
    CHECK_OK(fipsc_factored_densify(fl, w, &err), &err);
    double e = rel_error(w, s->W, (size_t)fl->out * fl->in);
    CHECK_MSG(e <= 1e-5, "%s densify: relative error %.3g", label, e);
    free(w);
    /* stored -> kernel layout -> stored gives the same arrays back */
    fipsc_v_stored a, b;
    const fipsc_compressed_group *g = fl->group;
    CHECK_OK(fipsc_v_stored_from_dense(g->storage, g->r, fl->f, s->V, fl->f, g->nm_n, g->nm_m, "V", &a, &err), &err);
    CHECK_OK(fipsc_factored_to_stored(fl, &b, &err), &err);
    CHECK(a.nnz == b.nnz && a.nnz == fl->nnz);
    CHECK(memcmp(a.values, b.values, (size_t)a.nnz * sizeof(float)) == 0);
    if (g->storage == FIPSC_V_CSC) {
        CHECK(memcmp(a.col_ptr, b.col_ptr, ((size_t)fl->f + 1) * sizeof(uint32_t)) == 0);
        CHECK(memcmp(a.row_idx, b.row_idx, (size_t)a.nnz * sizeof(uint32_t)) == 0);
    }
    if (g->storage == FIPSC_V_NM) CHECK(memcmp(a.nm_idx, b.nm_idx, (size_t)a.nnz) == 0);
    if (g->storage == FIPSC_V_BITMAP) {
        CHECK(memcmp(a.bitmap, b.bitmap, (size_t)fl->f * (size_t)((g->r + 7) / 8)) == 0);
        CHECK_OK(fipsc_v_stored_validate(&b, "bitmap V", &err), &err);
        /* the same entries as CSC, in the same order */
        fipsc_v_stored c;
        CHECK_OK(fipsc_v_stored_from_dense(FIPSC_V_CSC, g->r, fl->f, s->V, fl->f, 0, 0, "V", &c, &err), &err);
        CHECK_OK(fipsc_v_stored_convert(&b, FIPSC_V_CSC, "V", &err), &err);
        CHECK(b.storage == FIPSC_V_CSC && b.nnz == c.nnz);
        CHECK(memcmp(b.col_ptr, c.col_ptr, ((size_t)fl->f + 1) * sizeof(uint32_t)) == 0);
        CHECK(memcmp(b.row_idx, c.row_idx, (size_t)c.nnz * sizeof(uint32_t)) == 0);
        CHECK(memcmp(b.values, c.values, (size_t)c.nnz * sizeof(float)) == 0);
        fipsc_v_stored_free(&c);
    }
    CHECK_MSG(fipsc_factored_v_bytes(fl) == fipsc_v_stored_bytes(g->storage, g->r, fl->f, fl->nnz, (int)fipsc_dtype_size(g->v_dtype)), "%s bytes", label);
    fipsc_v_stored_free(&a);
    fipsc_v_stored_free(&b);
}

static void test_all_layouts(void)
{
    const fipsc_v_storage storages[] = {FIPSC_V_CSC, FIPSC_V_NM, FIPSC_V_DENSE, FIPSC_V_BITMAP, FIPSC_V_BITMAP};
    /* around one tile of FIPSC_FACTORED_TILE rows, and several */
    const int rows[] = {1, 2, FIPSC_FACTORED_TILE - 1, FIPSC_FACTORED_TILE, FIPSC_FACTORED_TILE + 1, 2 * FIPSC_FACTORED_TILE + 6};
    for (int half = 0; half <= 1; half++)
    for (int si = 0; si < 5; si++)
        for (int expanding = 0; expanding <= 1; expanding++)
            for (int identity = 0; identity <= 1; identity++) {
                setup s;
                /* d 24, r 36 (> d: an over-complete basis), f 90 (partial output block of 64) */
                build_v_dtype = half ? FIPSC_BF16 : FIPSC_F32;
                build_bitmap_lists = si == 4; /* the bitmap twice: as positions, as bitmap lists */
                bool built = build(&s, storages[si], expanding, identity, 24, 36, 90, 0.3);
                build_v_dtype = FIPSC_F32;
                build_bitmap_lists = -1;
                if (!built) {
                    teardown(&s);
                    continue;
                }
                char label[96];
                /* BF16 values are held as bfloat16 by every sparse layout (dense V stays float32) */
                CHECK((s.fl->val16 != NULL) == (half && storages[si] != FIPSC_V_DENSE));
                CHECK((s.fl->val == NULL) == (s.fl->val16 != NULL));
                snprintf(label, sizeof label, "%s%s%s %s %s", half ? "bf16 " : "", fipsc_v_storage_name(storages[si]),
                         si == 4 ? " lists" : "", expanding ? "expanding" : "contracting", identity ? "identity" : "basis");
                CHECK(s.fl->layout == (si == 4                      ? FIPSC_VK_BITMAP
                                       : storages[si] == FIPSC_V_DENSE ? FIPSC_VK_DENSE
                                       : !expanding                 ? FIPSC_VK_CSR
                                       : storages[si] == FIPSC_V_NM ? FIPSC_VK_NM
                                                                    : FIPSC_VK_CSC)); /* bitmap runs as CSC/CSR */
                for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) check_apply(&s, rows[k], label);
                check_densify_and_roundtrip(&s, label);
                teardown(&s);
            }
}

/* Dimensions above 65535 use 32-bit kernel indices: rows of V (expanding CSC) or columns
 * (contracting CSR). */
static void test_wide_indices(void)
{
    setup s;
    if (build(&s, FIPSC_V_CSC, true, false, 2, 70000, 3, 0.001)) {
        CHECK(s.fl->idx32 && !s.fl->idx16);
        check_apply(&s, 1, "csc r 70000");
        check_apply(&s, 3, "csc r 70000");
        check_densify_and_roundtrip(&s, "csc r 70000");
    }
    teardown(&s);
    if (build(&s, FIPSC_V_NM, false, false, 3, 4, 70000, 0.3)) {
        CHECK(s.fl->idx32 && !s.fl->idx16);
        check_apply(&s, 1, "nm f 70000 contracting");
        check_apply(&s, 2, "nm f 70000 contracting");
        check_densify_and_roundtrip(&s, "nm f 70000 contracting");
    }
    teardown(&s);
}

/* Gate and up of one group: x·U once, same bits as two separate calls. */
static void test_shared(void)
{
    fipsc_error err = {0};
    setup a;
    build(&a, FIPSC_V_CSC, true, false, 20, 24, 50, 0.4);
    float *V2 = random_v(24, 50, 0.4, 0, 0);
    fipsc_v_stored v;
    CHECK_OK(fipsc_v_stored_from_dense(FIPSC_V_CSC, 24, 50, V2, 50, 0, 0, "V2", &v, &err), &err);
    fipsc_factored_linear *gate = NULL;
    CHECK_OK(fipsc_factored_new("gate.weight", 0, FIPSC_ROLE_GATE, &a.group, &v, &gate, &err), &err);
    CHECK(fipsc_factored_shares_input(gate, a.fl));
    for (int n = 1; n <= 40; n += 39) {
        float *x = random_floats((size_t)n * 20);
        float *y1 = malloc((size_t)n * 50 * 4), *y2 = malloc((size_t)n * 50 * 4);
        float *z1 = malloc((size_t)n * 50 * 4), *z2 = malloc((size_t)n * 50 * 4);
        CHECK_OK(fipsc_factored_apply_shared(gate, NULL, a.fl, NULL, n, x, y1, y2, &err), &err);
        CHECK_OK(fipsc_factored_apply(gate, NULL, n, x, z1, false, &err), &err);
        CHECK_OK(fipsc_factored_apply(a.fl, NULL, n, x, z2, false, &err), &err);
        CHECK(memcmp(y1, z1, (size_t)n * 50 * 4) == 0 && memcmp(y2, z2, (size_t)n * 50 * 4) == 0);
        free(x), free(y1), free(y2), free(z1), free(z2);
    }
    /* a contracting matrix shares no input with an expanding one */
    setup c;
    build(&c, FIPSC_V_CSC, false, false, 20, 24, 50, 0.4);
    CHECK(!fipsc_factored_shares_input(a.fl, c.fl));
    teardown(&c);
    fipsc_factored_free(gate);
    free(V2);
    teardown(&a);
}

/* Results are the same bit for bit with one and with two threads. */
static void test_threads(void)
{
    fipsc_error err = {0};
    setup s;
    build(&s, FIPSC_V_CSC, false, false, 256, 320, 700, 0.3);
    int n = 100;
    float *x = random_floats((size_t)n * 700), *y1 = malloc((size_t)n * 256 * 4), *y2 = malloc((size_t)n * 256 * 4);
    int before = fipsc_threads_get();
    for (int rows = 1; rows <= n; rows += n - 1) {
        fipsc_threads_set(1);
        CHECK_OK(fipsc_factored_apply(s.fl, NULL, rows, x, y1, false, &err), &err);
        fipsc_threads_set(2);
        CHECK_OK(fipsc_factored_apply(s.fl, NULL, rows, x, y2, false, &err), &err);
        CHECK_MSG(memcmp(y1, y2, (size_t)rows * 256 * 4) == 0, "%d rows differ between 1 and 2 threads", rows);
    }
    fipsc_threads_set(before);
    free(x), free(y1), free(y2);
    teardown(&s);
}

/* Packing refuses what the storage cannot hold. */
static void test_pack_errors(void)
{
    fipsc_error err = {0};
    fipsc_v_stored v;
    float V[8 * 2] = {0};
    V[0] = V[2] = V[4] = 1.0f; /* column 0, rows 0..2: three nonzeros in a run of 4 */
    CHECK_FAILS(fipsc_v_stored_from_dense(FIPSC_V_NM, 8, 2, V, 2, 2, 4, "V", &v, &err), FIPSC_ERR_ARG,
                "column 0, rows 0..3 hold more than 2 nonzeros", &err);
    CHECK_FAILS(fipsc_v_stored_from_dense(FIPSC_V_NM, 6, 2, V, 2, 2, 4, "V", &v, &err), FIPSC_ERR_ARG,
                "multiple of 4", &err);
    CHECK_FAILS(fipsc_v_stored_from_dense(FIPSC_V_NM, 8, 2, V, 2, 5, 4, "V", &v, &err), FIPSC_ERR_ARG,
                "invalid n:m 5:4", &err);
    V[5] = NAN;
    CHECK_FAILS(fipsc_v_stored_from_dense(FIPSC_V_CSC, 8, 2, V, 2, 0, 0, "V", &v, &err), FIPSC_ERR_NUMERIC,
                "V[2, 1] is not finite", &err);
}

/* The validator names each kind of corruption. */
static void test_validate(void)
{
    fipsc_error err = {0};
    /* V [8, 5]: column 0 rows {0, 1, 5}, column 1 empty, column 2 rows {2, 6}, column 3 row 7 */
    float V[8 * 5] = {0};
    V[0 * 5 + 0] = 1, V[1 * 5 + 0] = 2, V[5 * 5 + 0] = 3, V[2 * 5 + 2] = 4, V[6 * 5 + 2] = 5, V[7 * 5 + 3] = 6;
    fipsc_v_stored s;
    CHECK_OK(fipsc_v_stored_from_dense(FIPSC_V_CSC, 8, 5, V, 5, 0, 0, "V", &s, &err), &err);
    CHECK_OK(fipsc_v_stored_validate(&s, "V", &err), &err);
    const uint32_t col_ptr[6] = {0, 3, 3, 5, 6, 6}, rows[6] = {0, 1, 5, 2, 6, 7};
    CHECK(s.nnz == 6 && memcmp(s.col_ptr, col_ptr, sizeof col_ptr) == 0 && memcmp(s.row_idx, rows, sizeof rows) == 0);
    s.col_ptr[2] = 2;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT,
                "V: col_ptr is not monotone: col_ptr[1] = 3 > col_ptr[2] = 2", &err);
    s.col_ptr[2] = 3;
    s.row_idx[0] = 8;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT,
                "row index 8 at entry 0 (column 0) is >= r = 8", &err);
    s.row_idx[0] = 1;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT,
                "row indices of column 0 are not strictly increasing (entry 1: 1 after 1)", &err);
    s.row_idx[0] = 0;
    s.nnz = 5;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT, "col_ptr[4] = 6 exceeds nnz 5", &err);
    s.nnz = 6;
    s.col_ptr[0] = 1;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT, "col_ptr[0] is 1, must be 0", &err);
    s.col_ptr[0] = 0;
    s.values[1] = INFINITY;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT, "value 1 is not finite", &err);
    fipsc_v_stored_free(&s);

    /* n:m 2:4: column 0 run 1 holds row 5 (offset 1) and a zero pad at offset 0 */
    CHECK_OK(fipsc_v_stored_from_dense(FIPSC_V_NM, 8, 5, V, 5, 2, 4, "V", &s, &err), &err);
    CHECK_OK(fipsc_v_stored_validate(&s, "V", &err), &err);
    CHECK(s.nnz == 5 * 2 * 2);
    CHECK(s.nm_idx[2] == 0 && s.nm_idx[3] == 1 && s.values[2] == 0.0f && s.values[3] == 3.0f);
    s.nm_idx[3] = 4;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT, "n:m index 4 (column 0, run 1) is >= m = 4", &err);
    s.nm_idx[3] = 0;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT,
                "n:m indices of column 0, run 1 are not strictly increasing", &err);
    s.nm_idx[3] = 1;
    s.nnz = 19;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT, "expected f·(r/m)·n = 20", &err);
    fipsc_v_stored_free(&s);

    /* bitmap: one byte per column (r = 8), bit k = row k; the values in CSC order */
    CHECK_OK(fipsc_v_stored_from_dense(FIPSC_V_BITMAP, 8, 5, V, 5, 0, 0, "V", &s, &err), &err);
    CHECK_OK(fipsc_v_stored_validate(&s, "V", &err), &err);
    const uint8_t bits[5] = {0x23, 0x00, 0x44, 0x80, 0x00};
    const float vals[6] = {1, 2, 3, 4, 5, 6};
    CHECK(s.nnz == 6 && !s.col_ptr && !s.row_idx && memcmp(s.bitmap, bits, sizeof bits) == 0 &&
          memcmp(s.values, vals, sizeof vals) == 0);
    s.bitmap[1] = 0x01;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT,
                "the bitmap marks 7 entries but there are 6 values", &err);
    s.bitmap[1] = 0x00;
    s.values[5] = NAN;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT, "value 5 is not finite", &err);
    fipsc_v_stored_free(&s);
    /* r = 6: the two high bits of every byte are padding and must be 0 */
    CHECK_OK(fipsc_v_stored_from_dense(FIPSC_V_BITMAP, 6, 5, V, 5, 0, 0, "V", &s, &err), &err);
    CHECK(s.nnz == 4 && s.bitmap[0] == 0x23 && s.bitmap[2] == 0x04 && s.bitmap[3] == 0x00);
    s.bitmap[2] |= 0x40;
    CHECK_FAILS(fipsc_v_stored_validate(&s, "V", &err), FIPSC_ERR_FORMAT, "bitmap of column 2 marks a row >= r = 6",
                &err);
    fipsc_v_stored_free(&s);
    /* CSC and NM do not convert to each other in place */
    CHECK_OK(fipsc_v_stored_from_dense(FIPSC_V_CSC, 8, 5, V, 5, 0, 0, "V", &s, &err), &err);
    CHECK_FAILS(fipsc_v_stored_convert(&s, FIPSC_V_NM, "V", &err), FIPSC_ERR_ARG, "from csc to nm", &err);
    fipsc_v_stored_free(&s);
}

/* The worked example of docs/FORMAT.md: the stored arrays and the rebuilt weight it lists. */
static void test_worked_example(void)
{
    fipsc_error err = {0};
    float U[2 * 3] = {1, 0, 2, 0, 1, -1};
    float V[3 * 4] = {0.5f, 0, 0, 1, 0, 2, 0, 0, 0, 0, -1, 0.25f};
    const float W[4 * 2] = {0.5f, 0, 0, 2, -2, 1, 1.5f, -0.25f};
    for (int nm = 0; nm <= 1; nm++) {
        fipsc_v_stored v;
        CHECK_OK(fipsc_v_stored_from_dense(nm ? FIPSC_V_NM : FIPSC_V_CSC, 3, 4, V, 4, 2, 3, "V", &v, &err), &err);
        if (nm) {
            const float vals[8] = {0.5f, 0, 0, 2, 0, -1, 1, 0.25f};
            const uint8_t offs[8] = {0, 1, 0, 1, 0, 2, 0, 2};
            CHECK(v.nnz == 8 && memcmp(v.values, vals, sizeof vals) == 0 && memcmp(v.nm_idx, offs, sizeof offs) == 0);
        } else {
            const float vals[5] = {0.5f, 2, -1, 1, 0.25f};
            const uint32_t rows[5] = {0, 1, 2, 0, 2}, ptr[5] = {0, 1, 2, 3, 5};
            CHECK(v.nnz == 5 && memcmp(v.values, vals, sizeof vals) == 0 && memcmp(v.row_idx, rows, sizeof rows) == 0 &&
                  memcmp(v.col_ptr, ptr, sizeof ptr) == 0);
        }
        fipsc_compressed_group g = {.d = 2, .r = 3, .U = U, .storage = v.storage, .nm_n = v.nm_n, .nm_m = v.nm_m};
        fipsc_factored_linear *fl = NULL;
        CHECK_OK(fipsc_factored_new("model.layers.0.mlp.up_proj.weight", 0, FIPSC_ROLE_UP, &g, &v, &fl, &err), &err);
        if (!fl) continue;
        float w[8];
        CHECK(fl->out == 4 && fl->in == 2);
        CHECK_OK(fipsc_factored_densify(fl, w, &err), &err);
        CHECK(memcmp(w, W, sizeof w) == 0);
        fipsc_factored_free(fl);
    }
}

/* One row x through s at the active level (y) and at the portable level (y_portable). */
static void apply_here_and_portable(const setup *s, const float *x, float *y, float *y_portable)
{
    fipsc_error err = {0};
    const fipsc_isa active = fipsc_isa_active();
    CHECK_OK(fipsc_factored_apply(s->fl, NULL, 1, x, y, false, &err), &err);
    CHECK_OK(fipsc_isa_set(FIPSC_ISA_PORTABLE, &err), &err);
    CHECK_OK(fipsc_factored_apply(s->fl, NULL, 1, x, y_portable, false, &err), &err);
    CHECK_OK(fipsc_isa_set(active, &err), &err);
}

/* The active level's one-row result agrees with the portable level's up to float rounding. */
static void check_like_portable(const setup *s, const char *label)
{
    const int out = s->fl->out;
    float *x = random_floats((size_t)s->fl->in), *y = malloc((size_t)out * 4), *y_portable = malloc((size_t)out * 4);
    apply_here_and_portable(s, x, y, y_portable);
    double diff = 0.0, scale = 0.0;
    for (int o = 0; o < out; o++) {
        diff = fmax(diff, fabs((double)y[o] - y_portable[o]));
        scale = fmax(scale, fabs((double)y_portable[o]));
    }
    CHECK_MSG(diff <= 1e-5 * scale, "%s: %s and portable differ by %.3g (scale %.3g)", label,
              fipsc_isa_name(fipsc_isa_active()), diff, scale);
    free(x), free(y), free(y_portable);
}

/* Lists long enough for the vector loops (16 entries a step and a tail), at the active level
 * and against the portable level: the levels agree up to float rounding. */
static void test_long_lists(void)
{
    for (int identity = 0; identity <= 1; identity++)
    for (int lists = 0; lists <= 1; lists++)
    for (int half = 0; half <= 1; half++)
        for (int expanding = 0; expanding <= 1; expanding++) {
            setup s;
            build_v_dtype = half ? FIPSC_BF16 : FIPSC_F32;
            build_bitmap_lists = lists;
            /* ~90 per column, ~68 per row; r 203 and f 150 end inside a 64-bit word and a 16-lane chunk */
            build(&s, FIPSC_V_BITMAP, expanding, identity, 40, 203, 150, 0.45);
            build_v_dtype = FIPSC_F32;
            build_bitmap_lists = -1;
            char label[64];
            snprintf(label, sizeof label, "%s long %s %s%s", half ? "bf16" : "f32", lists ? "bitmap lists" : "lists",
                     expanding ? "expanding" : "contracting", identity ? " identity" : "");
            for (int n = 1; n <= FIPSC_FACTORED_TILE + 1; n += FIPSC_FACTORED_TILE) check_apply(&s, n, label);
            check_like_portable(&s, label);
            /* an infinite input reaches exactly the outputs whose lists keep its position, at every
             * level (the AVX-512 BF16 kernel, which multiplies unkept positions by zero, must not
             * run on it) */
            if (!s.group.U) {
                const int out = s.fl->out;
                float *x = random_floats((size_t)s.fl->in), *y = malloc((size_t)out * 4), *y_portable = malloc((size_t)out * 4);
                x[3] = INFINITY;
                apply_here_and_portable(&s, x, y, y_portable);
                int differ = 0, finite = 0;
                for (int o = 0; o < out; o++) {
                    differ += isfinite(y[o]) != isfinite(y_portable[o]);
                    finite += isfinite(y[o]) != 0;
                }
                CHECK_MSG(differ == 0 && finite > 0 && finite < out, "%s with an infinite input: %d outputs differ in finiteness, %d of %d finite",
                          label, differ, finite, out);
                free(x), free(y), free(y_portable);
            }
            teardown(&s);
        }
}

/* n:m columns long enough for the vector loop (16 slots a step and a tail), 1:4 and 2:4, against
 * the reference and the portable level. */
static void test_long_nm(void)
{
    for (int nm_n = 1; nm_n <= 2; nm_n++)
        for (int half = 0; half <= 1; half++) {
            setup s;
            build_nm_n = nm_n;
            build_v_dtype = half ? FIPSC_BF16 : FIPSC_F32;
            build(&s, FIPSC_V_NM, true, false, 40, 204, 70, 0.6); /* 51 runs: 51·n slots per column */
            build_nm_n = 2;
            build_v_dtype = FIPSC_F32;
            char label[64];
            snprintf(label, sizeof label, "%s long %d:4", half ? "bf16" : "f32", nm_n);
            check_apply(&s, 1, label);
            check_like_portable(&s, label);
            teardown(&s);
        }
}

/* A basis held in 16 bits (U16, a group whose u_dtype is BF16 or F16) runs exactly what the same
 * group holding its float32 widening runs: one row (the row-streamed x·U and, r > 512, the long
 * 16-bit rows of z·Uᵀ), a few rows and a tile's worth (converted panels), expanding and
 * contracting; it takes half the memory, and densifies to the same weight. */
static void test_basis16(void)
{
    const fipsc_dtype dts[2] = {FIPSC_BF16, FIPSC_F16};
    const fipsc_v_storage storages[2] = {FIPSC_V_CSC, FIPSC_V_BITMAP};
    const int rows[] = {1, 3, FIPSC_FACTORED_TILE + 5};
    fipsc_error err = {0};
    for (int q = 0; q < 2; q++)
        for (int si = 0; si < 2; si++)
            for (int expanding = 0; expanding <= 1; expanding++) {
                setup s;
                if (!build(&s, storages[si], expanding, false, 44, 600, 70, 0.3)) {
                    teardown(&s);
                    continue;
                }
                const int d = s.group.d, r = s.group.r, f = s.fl->f;
                CHECK(fipsc_round_to_dtype(dts[q], s.group.U, (size_t)d * r) < 0); /* the float32 twin */
                fipsc_compressed_group g16 = s.group;
                g16.U = NULL;
                int64_t beyond;
                CHECK_OK(fipsc_group_set_basis(&g16, s.group.U, dts[q], &beyond, &err), &err);
                CHECK(g16.U16 != NULL && g16.U == NULL && g16.u_dtype == dts[q] && beyond < 0);
                CHECK(fipsc_group_basis_bytes(&g16) == 2LL * d * r && fipsc_group_basis_bytes(&s.group) == 4LL * d * r);
                fipsc_v_stored v;
                CHECK_OK(fipsc_v_stored_from_dense(storages[si], r, f, s.V, f, 0, 0, "V", &v, &err), &err);
                fipsc_factored_linear *fl16 = NULL;
                CHECK_OK(fipsc_factored_new(s.fl->weight_name, 0, s.fl->role, &g16, &v, &fl16, &err), &err);
                for (size_t k = 0; fl16 && k < sizeof rows / sizeof rows[0]; k++) {
                    const int n = rows[k];
                    float *x = random_floats((size_t)n * s.fl->in);
                    float *y = malloc((size_t)n * s.fl->out * sizeof *y), *y16 = malloc((size_t)n * s.fl->out * sizeof *y16);
                    CHECK_OK(fipsc_factored_apply(s.fl, NULL, n, x, y, false, &err), &err);
                    CHECK_OK(fipsc_factored_apply(fl16, NULL, n, x, y16, false, &err), &err);
                    CHECK_MSG(memcmp(y, y16, (size_t)n * s.fl->out * sizeof *y) == 0,
                              "%s U, %s %s, n %d: differs from the float32 basis", fipsc_dtype_name(dts[q]),
                              fipsc_v_storage_name(storages[si]), expanding ? "expanding" : "contracting", n);
                    free(x), free(y), free(y16);
                }
                float *w = malloc((size_t)s.fl->out * s.fl->in * sizeof *w), *w16 = malloc((size_t)s.fl->out * s.fl->in * sizeof *w16);
                CHECK_OK(fipsc_factored_densify(s.fl, w, &err), &err);
                if (fl16) CHECK_OK(fipsc_factored_densify(fl16, w16, &err), &err);
                CHECK(memcmp(w, w16, (size_t)s.fl->out * s.fl->in * sizeof *w) == 0);
                /* widened in place (distillation): float32 again, the same values */
                CHECK_OK(fipsc_group_widen_basis(&g16, &err), &err);
                CHECK(g16.U16 == NULL && g16.U && memcmp(g16.U, s.group.U, (size_t)d * r * sizeof(float)) == 0);
                free(w), free(w16);
                fipsc_factored_free(fl16);
                free(g16.U);
                teardown(&s);
            }
    /* a value F16 cannot hold is refused, naming the entry */
    fipsc_compressed_group g = {.d = 2, .r = 3};
    const float U[6] = {1, 2, 3, 4, 7e4f, 6};
    int64_t beyond;
    CHECK_FAILS(fipsc_group_set_basis(&g, U, FIPSC_F16, &beyond, &err), FIPSC_ERR_NUMERIC, "U[1, 1] = 70000", &err);
    CHECK(beyond == 4 && g.U == NULL && g.U16 == NULL);
}

int main(void)
{
    fipsc_error err = {0};
    /* up to AVX-512: the AVX-512 BF16 level runs these kernels too, but for a bitmap V with BF16
     * values, whose input it rounds: tests/test_bits16_dot.c */
    for (int level = 0; level <= FIPSC_ISA_AVX512; level++) {
        if (!fipsc_isa_supported((fipsc_isa)level)) {
            printf("%s kernels: not run (this CPU does not have them)\n", fipsc_isa_name((fipsc_isa)level));
            continue;
        }
        CHECK_OK(fipsc_isa_set((fipsc_isa)level, &err), &err);
        printf("%s kernels\n", fipsc_isa_name((fipsc_isa)level));
        test_worked_example();
        test_all_layouts();
        test_wide_indices();
        test_long_lists();
        test_long_nm();
        test_shared();
        test_threads();
        test_basis16();
    }
    test_pack_errors();
    test_validate();
    return test_summary("test_compressed_kernels");
}
