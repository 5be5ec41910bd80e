/* The AVX-512 BF16 level's kernels for bitmap V with BF16 values (src/ops/factored_gather.h), on one
 * row and on batches (tiles of 32 rows, pairs of entries per dot product): they round the V step's
 * input (x·U expanding, the input rows contracting) to bfloat16 and sum exact products in float32.
 * Checked, on 1, 37 (a tile and 5 rows) and 64 rows, against double references built here from U
 * and V:
 *   - identity basis: equal to the reference on the bfloat16-rounded input up to float32
 *     summation (1e-5 of Σ|term|), so every position and value is where it should be;
 *   - with a basis: within the bound the rounding allows, 2^-8 · Σ|term| per output (expanding),
 *     Σ_k |U_ik| · 2^-8 · Σ_j |x_j V_kj| (contracting), plus float32 summation;
 *   - it differs from the AVX-512 level on a random input (the kernel ran, not a fallback);
 *   - a non-finite input falls back to the AVX-512 kernels, which mask unkept positions;
 *   - 1 and 2 threads give the same bits; other layouts give the AVX-512 level's bits.
 * The AVX-512 level's one-row kernel for the same V (float32 input, lists paired the same way) is
 * checked first, on CPUs with AVX-512: 1 against 2 threads, and against the reference. At both
 * levels gate and up of one group taken together on one row give the bits of separate calls. On a
 * CPU without AVX-512 BF16 the rest is the level's name and its refusal. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "ops/factored.h"
#include "testutil.h"

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static double uniform(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-52 - 1.0;
}

typedef struct case_ {
    fipsc_compressed_group group;
    fipsc_factored_linear *fl;
    float *V; /* [r, f], values as stored */
    int d, r, f;
    bool expanding;
} case_;

/* A V [r, f] of `density`, values rounded to BF16, stored as `storage` and held as bitmap lists
 * (lists = 1) where the storage is a bitmap; U [d, r] random unless identity (then r = d). */
static void build(case_ *c, fipsc_v_storage storage, fipsc_dtype v_dtype, bool expanding, bool identity, int d,
                  int r, int f, double density)
{
    fipsc_error err = {0};
    memset(c, 0, sizeof *c);
    if (identity) r = d;
    c->d = d, c->r = r, c->f = f, c->expanding = expanding;
    float *U = NULL;
    if (!identity) {
        U = malloc((size_t)d * r * sizeof *U);
        for (size_t i = 0; i < (size_t)d * r; i++) U[i] = (float)uniform();
    }
    c->group = (fipsc_compressed_group){.d = d, .r = r, .U = U, .u_dtype = FIPSC_F32, .v_dtype = v_dtype,
                                        .storage = storage};
    snprintf(c->group.method, sizeof c->group.method, "test");
    c->V = calloc((size_t)r * f, sizeof *c->V);
    for (size_t i = 0; i < (size_t)r * f; i++)
        if (uniform() * 0.5 + 0.5 < density) c->V[i] = (float)uniform();
    fipsc_round_to_dtype(v_dtype, c->V, (size_t)r * f);
    fipsc_v_stored v;
    CHECK_OK(fipsc_v_stored_from_dense(storage, r, f, c->V, f, 0, 0, "V", &v, &err), &err);
    CHECK_OK(fipsc_factored_new_as(expanding ? "up.weight" : "down.weight", 0, expanding ? FIPSC_ROLE_UP : FIPSC_ROLE_DOWN,
                                   &c->group, &v, storage == FIPSC_V_BITMAP, &c->fl, &err),
             &err);
}

static void teardown(case_ *c)
{
    fipsc_factored_free(c->fl);
    free(c->group.U);
    free(c->V);
}

static double u_at(const case_ *c, int i, int k) { return c->group.U ? c->group.U[(size_t)i * c->r + k] : (i == k); }

/* The reference on input x (rounded to bfloat16 at the V step if round16) into ref[out], and per
 * output the bound of what the rounding may change, into bound[out]. */
static void reference(const case_ *c, const float *x, bool round16, double *ref, double *bound)
{
    const int d = c->d, r = c->r, f = c->f;
    if (c->expanding) { /* t = x·U [r], y_j = Σ_k t_k V_kj */
        double *t = calloc((size_t)r, sizeof *t);
        for (int k = 0; k < r; k++) {
            for (int i = 0; i < d; i++) t[k] += (double)x[i] * u_at(c, i, k);
            if (round16) t[k] = fipsc_bf16_to_f32(fipsc_f32_to_bf16((float)t[k]));
        }
        for (int j = 0; j < f; j++) {
            ref[j] = bound[j] = 0.0;
            for (int k = 0; k < r; k++) {
                ref[j] += t[k] * c->V[(size_t)k * f + j];
                bound[j] += 0x1p-8 * fabs(t[k] * c->V[(size_t)k * f + j]);
            }
        }
        free(t);
        return;
    }
    /* contracting: z_k = Σ_j x_j V_kj, y_i = Σ_k U_ik z_k */
    double *z = calloc((size_t)r, sizeof *z), *zb = calloc((size_t)r, sizeof *zb);
    for (int k = 0; k < r; k++)
        for (int j = 0; j < f; j++) {
            const double xj = round16 ? fipsc_bf16_to_f32(fipsc_f32_to_bf16(x[j])) : x[j];
            z[k] += xj * c->V[(size_t)k * f + j];
            zb[k] += 0x1p-8 * fabs(xj * c->V[(size_t)k * f + j]);
        }
    for (int i = 0; i < d; i++) {
        ref[i] = bound[i] = 0.0;
        for (int k = 0; k < r; k++) {
            ref[i] += u_at(c, i, k) * z[k];
            bound[i] += fabs(u_at(c, i, k)) * zb[k];
        }
    }
    free(z), free(zb);
}

/* y [n, out] = the linear on x [n, in] at level isa. */
static void apply_at(const case_ *c, fipsc_isa isa, int n, const float *x, float *y)
{
    fipsc_error err = {0};
    CHECK_OK(fipsc_isa_set(isa, &err), &err);
    CHECK_OK(fipsc_factored_apply(c->fl, NULL, n, x, y, false, &err), &err);
}

static float *random_rows(int n, int width)
{
    float *x = malloc((size_t)n * width * sizeof *x);
    for (size_t i = 0; i < (size_t)n * width; i++) x[i] = (float)uniform();
    return x;
}

/* The kernels on n rows against the references, and against the AVX-512 level. */
static void check_case(const case_ *c, int n, const char *label)
{
    const int in = c->fl->in, out = c->fl->out;
    const size_t outs = (size_t)n * out;
    float *x = random_rows(n, in), *y = malloc(outs * sizeof *y), *y512 = malloc(outs * sizeof *y);
    double *ref = malloc((size_t)out * sizeof *ref), *bound = malloc((size_t)out * sizeof *bound);
    double *ref16 = malloc((size_t)out * sizeof *ref16), *bound16 = malloc((size_t)out * sizeof *bound16);
    apply_at(c, FIPSC_ISA_AVX512_BF16, n, x, y);
    apply_at(c, FIPSC_ISA_AVX512, n, x, y512);
    int beyond = 0, beyond16 = 0, differ = 0;
    for (int row = 0; row < n; row++) {
        const float *yr = y + (size_t)row * out;
        reference(c, x + (size_t)row * in, false, ref, bound);
        reference(c, x + (size_t)row * in, true, ref16, bound16);
        double scale = 0.0;
        for (int o = 0; o < out; o++) scale = fmax(scale, fabs(ref[o]));
        for (int o = 0; o < out; o++) {
            beyond += !(fabs(yr[o] - ref[o]) <= bound[o] + 1e-5 * scale);
            /* identity basis: the kernel's only rounding after the input's is float32 summation,
             * judged against Σ|term| (256 · bound16) */
            if (!c->group.U) beyond16 += !(fabs(yr[o] - ref16[o]) <= 1e-5 * (256 * bound16[o]) + 1e-30);
            differ += yr[o] != y512[(size_t)row * out + (size_t)o];
        }
    }
    CHECK_MSG(beyond == 0, "%s, %d rows: %d of %zu outputs beyond the bfloat16 input's bound", label, n, beyond, outs);
    CHECK_MSG(beyond16 == 0, "%s, %d rows: %d of %zu outputs differ from the reference on the rounded input", label, n,
              beyond16, outs);
    CHECK_MSG(differ > 0, "%s, %d rows: the AVX-512 BF16 level gave the AVX-512 level's bits (did its kernel run?)",
              label, n);
    free(x), free(y), free(y512), free(ref), free(bound), free(ref16), free(bound16);
}

/* An infinite input reaches exactly the outputs whose lists keep its position, as at the AVX-512
 * level: the rounded-input kernels, which multiply unkept positions by zero, must not run. In a
 * batch the value sits in the last row (the last, partial tile). */
static void check_infinite(const case_ *c, int n, const char *label)
{
    const int in = c->fl->in, out = c->fl->out;
    const size_t outs = (size_t)n * out, at = (size_t)(n - 1) * in + 5;
    float *x = random_rows(n, in), *y = malloc(outs * sizeof *y), *y512 = malloc(outs * sizeof *y);
    x[at] = INFINITY;
    apply_at(c, FIPSC_ISA_AVX512_BF16, n, x, y);
    apply_at(c, FIPSC_ISA_AVX512, n, x, y512);
    CHECK_MSG(memcmp(y, y512, outs * sizeof *y) == 0, "%s, %d rows, an infinite input: not the AVX-512 level's result",
              label, n);
    if (c->group.U && c->expanding) goto done; /* below, x itself must be the V step's input */
    x[at] = 3.4e38f; /* finite, but rounds to infinity as a bfloat16 */
    apply_at(c, FIPSC_ISA_AVX512_BF16, n, x, y);
    apply_at(c, FIPSC_ISA_AVX512, n, x, y512);
    CHECK_MSG(memcmp(y, y512, outs * sizeof *y) == 0,
              "%s, %d rows, an input bfloat16 cannot hold: not the AVX-512 level's result", label, n);
done:
    free(x), free(y), free(y512);
}

/* Enough kept entries for the parallel loops: 1 and 2 threads give the same bits. 1024 outputs
 * (4 blocks) are taken in pairs of lists on either; 512 (2 blocks) in pairs on one thread and
 * list by list on two (one pair cannot feed two threads): a list's sum must not depend on having
 * a partner. Expanding and contracting, at level isa: AVX-512 BF16, or AVX-512, whose one-row
 * kernel pairs lists the same way on its float32 input and is then also checked against the
 * reference (identity basis: float32 summation only, 1e-5 of Σ|term|). */
static void check_threads(int n, fipsc_isa isa)
{
    const int shapes[2][2] = {{1024, 1024}, {2048, 512}}; /* inputs, outputs */
    for (int s = 0; s < 4; s++) /* 30 % kept (gathered), then 97 % (expanded) */
        for (int expanding = 0; expanding <= 1; expanding++) {
            const int in = shapes[s % 2][0], out = shapes[s % 2][1];
            case_ c; /* identity basis: r = d; expanding reads r and writes f, contracting the reverse */
            build(&c, FIPSC_V_BITMAP, FIPSC_BF16, expanding, true, expanding ? in : out, 0, expanding ? out : in,
                  s < 2 ? 0.3 : 0.97);
            const size_t outs = (size_t)n * out;
            float *x = random_rows(n, in), *y1 = malloc(outs * sizeof *y1), *y2 = malloc(outs * sizeof *y2);
            const int threads = fipsc_threads_get();
            fipsc_threads_set(1);
            apply_at(&c, isa, n, x, y1);
            fipsc_threads_set(2);
            apply_at(&c, isa, n, x, y2);
            fipsc_threads_set(threads);
            CHECK_MSG(memcmp(y1, y2, outs * sizeof *y1) == 0, "%s, %d rows, %d -> %d %s: 1 and 2 threads differ",
                      fipsc_isa_name(isa), n, in, out, expanding ? "expanding" : "contracting");
            if (isa == FIPSC_ISA_AVX512) {
                double *ref = malloc((size_t)out * sizeof *ref), *bound = malloc((size_t)out * sizeof *bound);
                int beyond = 0;
                for (int row = 0; row < n; row++) {
                    reference(&c, x + (size_t)row * in, false, ref, bound);
                    for (int o = 0; o < out; o++)
                        beyond += !(fabs(y1[(size_t)row * out + (size_t)o] - ref[o]) <= 1e-5 * (256 * bound[o]) + 1e-30);
                }
                CHECK_MSG(beyond == 0, "avx512, %d rows, %d -> %d %s: %d of %zu outputs differ from the reference", n,
                          in, out, expanding ? "expanding" : "contracting", beyond, outs);
                free(ref), free(bound);
            }
            teardown(&c);
            free(x), free(y1), free(y2);
        }
}

/* Gate and up of one group on one row take both V steps in one parallel loop on one converted
 * input (fipsc_factored_apply_shared): the bits of two separate calls, on 1 and 2 threads, with
 * gate gathered (30 % kept) and up expanded (97 %), at level isa. */
static void check_shared(fipsc_isa isa)
{
    fipsc_error err = {0};
    case_ up, other; /* identity basis: r = d = 1024, f 1280 (5 blocks: an odd count) */
    build(&up, FIPSC_V_BITMAP, FIPSC_BF16, true, true, 1024, 0, 1280, 0.97);
    build(&other, FIPSC_V_BITMAP, FIPSC_BF16, true, true, 1024, 0, 1280, 0.3); /* its V, in up's group */
    fipsc_v_stored v;
    fipsc_factored_linear *gate = NULL;
    CHECK_OK(fipsc_v_stored_from_dense(FIPSC_V_BITMAP, 1024, 1280, other.V, 1280, 0, 0, "V", &v, &err), &err);
    CHECK_OK(fipsc_factored_new_as("gate.weight", 0, FIPSC_ROLE_GATE, &up.group, &v, true, &gate, &err), &err);
    CHECK(fipsc_factored_shares_input(gate, up.fl) && gate->bits_gather && !up.fl->bits_gather);
    float *x = random_rows(1, 1024), *y[4];
    for (int i = 0; i < 4; i++) y[i] = malloc(1280 * sizeof *y[i]);
    const int threads = fipsc_threads_get();
    CHECK_OK(fipsc_isa_set(isa, &err), &err);
    for (int t = 1; t <= 2; t++) {
        fipsc_threads_set(t);
        CHECK_OK(fipsc_factored_apply_shared(gate, NULL, up.fl, NULL, 1, x, y[0], y[1], &err), &err);
        CHECK_OK(fipsc_factored_apply(gate, NULL, 1, x, y[2], false, &err), &err);
        CHECK_OK(fipsc_factored_apply(up.fl, NULL, 1, x, y[3], false, &err), &err);
        CHECK_MSG(memcmp(y[0], y[2], 1280 * sizeof *y[0]) == 0 && memcmp(y[1], y[3], 1280 * sizeof *y[1]) == 0,
                  "%s, %d threads: gate and up together differ from apart", fipsc_isa_name(isa), t);
    }
    fipsc_threads_set(threads);
    for (int i = 0; i < 4; i++) free(y[i]);
    free(x);
    fipsc_factored_free(gate);
    teardown(&up);
    teardown(&other);
}

/* Layouts the kernels do not take run the AVX-512 level's kernels: same bits. */
static void check_other_layouts(int n)
{
    const fipsc_v_storage storage[2] = {FIPSC_V_BITMAP, FIPSC_V_CSC};
    const fipsc_dtype dtype[2] = {FIPSC_F32, FIPSC_BF16};
    for (int i = 0; i < 2; i++) {
        case_ c;
        build(&c, storage[i], dtype[i], true, false, 40, 203, 150, 0.45);
        float *x = random_rows(n, 40), *y = malloc((size_t)n * 150 * sizeof *y), *y512 = malloc((size_t)n * 150 * sizeof *y);
        apply_at(&c, FIPSC_ISA_AVX512_BF16, n, x, y);
        apply_at(&c, FIPSC_ISA_AVX512, n, x, y512);
        CHECK_MSG(memcmp(y, y512, (size_t)n * 150 * sizeof *y) == 0, "%s %s, %d rows: not the AVX-512 level's bits",
                  fipsc_v_storage_name(storage[i]), fipsc_dtype_name(dtype[i]), n);
        teardown(&c);
        free(x), free(y), free(y512);
    }
}

int main(void)
{
    fipsc_error err = {0};
    fipsc_isa isa;
    CHECK_OK(fipsc_isa_parse("avx512bf16", &isa, &err), &err);
    CHECK(isa == FIPSC_ISA_AVX512_BF16 && strcmp(fipsc_isa_name(isa), "avx512bf16") == 0);
    const int rows[3] = {1, 37, 64};
    if (fipsc_isa_supported(FIPSC_ISA_AVX512)) {
        for (int n = 0; n < 3; n++) check_threads(rows[n], FIPSC_ISA_AVX512);
        check_shared(FIPSC_ISA_AVX512);
    } else
        printf("avx512 kernels: not run (this CPU does not have them)\n");
    if (!fipsc_isa_supported(FIPSC_ISA_AVX512_BF16)) {
        CHECK_FAILS(fipsc_isa_set(FIPSC_ISA_AVX512_BF16, &err), FIPSC_ERR_UNSUPPORTED, "avx512bf16", &err);
        printf("avx512bf16 kernels: not run (this CPU does not have them)\n");
        return test_summary("test_bits16_dot");
    }
    /* r 203 and f 150 end inside a 64-bit word and a 32-position step; 1100 positions: long lists
     * (two of the tile kernel's 1024-position chunks), and expanding, 5 blocks of outputs for the
     * one-row kernel's pairs (an odd count: the last block has no partner); f 4200: 17 blocks
     * (odd again), and contracting, lists of 66 words paired word by word. Rows: one, a tile and
     * 5, two tiles. The one-row kernel gathers the input where few words keep more than 32
     * positions and expands the values elsewhere (ops/factored_bits16_row.c): 30 % kept, gathered;
     * 36 % kept, gathered with 0.7 % of words over 32 (the gather's second half); 97 % kept,
     * expanded, with full words. */
    const int sizes[5][3] = {{40, 203, 150}, {64, 96, 1100}, {32, 300, 4200}, {32, 300, 4200}, {48, 200, 260}};
    const double density[5] = {0.3, 0.3, 0.3, 0.36, 0.97};
    for (int sz = 0; sz < 5; sz++)
        for (int identity = 0; identity <= 1; identity++)
            for (int expanding = 0; expanding <= 1; expanding++) {
                case_ c;
                build(&c, FIPSC_V_BITMAP, FIPSC_BF16, expanding, identity, sizes[sz][0], sizes[sz][1], sizes[sz][2],
                      density[sz]);
                CHECK_MSG(c.fl->bits_gather == (density[sz] < 0.5), "density %.2f: %s", density[sz],
                          c.fl->bits_gather ? "gathered" : "expanded");
                char label[96];
                snprintf(label, sizeof label, "d %d r %d f %d %s%s", c.d, c.r, c.f, expanding ? "expanding" : "contracting",
                         identity ? " identity" : " basis");
                for (int n = 0; n < 3; n++) {
                    check_case(&c, rows[n], label);
                    check_infinite(&c, rows[n], label);
                }
                teardown(&c);
            }
    for (int n = 0; n < 3; n++) {
        check_threads(rows[n], FIPSC_ISA_AVX512_BF16);
        check_other_layouts(rows[n]);
    }
    check_shared(FIPSC_ISA_AVX512_BF16);
    CHECK_OK(fipsc_isa_set(fipsc_isa_best(), &err), &err);
    return test_summary("test_bits16_dot");
}
