/* Compressed-MLP forward against the dense MLP forward at a realistic shape.
 *
 *   bench_factored [--quick] [--threads K] [--cpu-time] [--f F] [--bf16] [--isa LEVEL] [--v-steps]
 *
 * One SwiGLU MLP (d 2048, f 5632 of a 1-2B-parameter Llama; --f 8192: Llama-3.2-1B's) with
 * random weights, run through fipsc_mlp_forward (the runtime's MLP entry point) on n = 1 row
 * (decoding) and n = 512 rows (prefill), tokens/s and the ratio to dense measured in the same run:
 *   dense        the three [out, in] matrices (BLAS; --bf16: kept as BF16, converted on the fly)
 *   fips csc     budget 0.5, V sparsity 0.75: r from the FiPS budget formula (rounded down to a
 *                multiple of 64), U [d, r] dense, V_i with a random 25% of entries kept, CSC
 *   fips bitmap  the same V stored with a bitmap (what `fipsc compress` picks at this sparsity)
 *   fips 1:4     the same budget and sparsity with n:m 1:4 masks (r a multiple of 4)
 *   shared-svd   budget 0.5, dense V (s = 0): r = 0.5·d·P / (d + P)
 * --bf16: the dense weights are BF16 and every compressed variant stores U and its V values as
 * BF16 (in memory U and the sparse V layouts then hold BF16 values too).
 * Gate and up share x·U (computed once per call). Weights are generated with a fixed seed; the
 * timings are medians over rounds that alternate the variants, after a warm-up. --quick runs
 * fewer rounds. Two byte counts: "file MB", what the compressed file stores for the MLP (U once,
 * every V_i: values, indices, pointers, at the dtype), against the dense weights in the same
 * dtype; "read MB", what one call reads in memory (U twice — gate/up, then down — and every V_i
 * in its kernel layout: fipsc_factored_memory_bytes), against the dense weights as held.
 *
 * --isa portable|avx2|avx512|avx512bf16 lowers the instruction set of fipsc's kernels
 * (src/core/isa.h; the default is the best the CPU runs): the kernel layout of a bitmap V follows
 * it (bitmap lists at avx2 and above, positions at portable), so "read MB" does too; at avx512bf16
 * a BF16 bitmap V (one row or a batch) rounds its input to bfloat16 (src/ops/factored_gather.h). The
 * dense variant is fipsc's linear at every level (float32: OpenBLAS; BF16: fipsc's 16-bit GEMV
 * for one row, rows converted for OpenBLAS in batches).
 *
 * --v-steps times only the V step of the bitmap variant instead: each V_i on its own (an
 * identity-basis linear over the same V, so no U product), on one row the mean of 100 calls
 * cycling the three matrices, so that each comes from memory rather than cache, then on 512 rows
 * the mean of 5 calls, in ms per matrix.
 *
 * Then gate's and up's V steps on one row together (as the MLP takes them: one input, one parallel
 * loop) against one after the other, and the two basis steps alone on one row (x·U and U·z, U
 * [d, r] at the variant's dtype, cycling four copies of U), in ms per call.
 *
 * --cpu-time times each call by the process's CPU time instead of wall-clock time: on a machine
 * shared with other work, with --threads 1, that measures the work itself (wall time then also
 * counts the time other processes hold the core). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/factored.h"
#include "fips/fips.h"
#include "ops/mlp_forward.h"
#include "core/isa.h"
#include "core/threads.h"

enum { D = 2048 };
static int F = 5632;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static double uniform(void) /* [0, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}

static float *random_floats(size_t n, double scale)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_factored: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)(scale * (2 * uniform() - 1));
    return p;
}

static clockid_t bench_clock = CLOCK_MONOTONIC;
static bool want_v_steps = false;

static double now(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static _Noreturn void die(const char *what, const fipsc_error *err)
{
    fprintf(stderr, "bench_factored: %s: %s\n", what, err->message);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds of one call of the MLP on n rows. */
static double time_once(const fipsc_mlp *mlp, int n, const float *x, float *y, float *scratch)
{
    fipsc_error err = {0};
    double t0 = now();
    if (fipsc_mlp_forward(mlp, n, x, y, scratch, &err)) die("MLP forward", &err);
    return now() - t0;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return t[n / 2];
}

typedef struct variant {
    const char *name;
    fipsc_mlp mlp;
    fipsc_compressed_group group;
    fipsc_factored_linear *fl[3];
    long long file_bytes; /* the MLP in the compressed file (or the dense weights) */
    long long read_bytes; /* weights read per call */
} variant;

/* --v-steps: V_i [r, f] of make_compressed's bitmap variant again (same random stream), as an
 * identity-basis linear: applying it to one row is the V step alone. */
static fipsc_factored_linear *v_step_linear(int r, fipsc_mlp_role role, const char *name, const float *V,
                                            fipsc_dtype dtype, fipsc_compressed_group *g)
{
    fipsc_error err = {0};
    *g = (fipsc_compressed_group){.d = r, .r = r, .v_dtype = dtype, .storage = FIPSC_V_BITMAP};
    snprintf(g->method, sizeof g->method, "bench");
    fipsc_v_stored st;
    fipsc_factored_linear *fl;
    if (fipsc_v_stored_from_dense(FIPSC_V_BITMAP, r, F, V, F, 0, 0, name, &st, &err) ||
        fipsc_factored_new(name, 0, role, g, &st, &fl, &err))
        die(name, &err);
    return fl;
}

/* The V step of each matrix alone on n rows (see --v-steps). */
static void time_v_steps(fipsc_factored_linear *const fl[3], int r, int n)
{
    const int calls = n == 1 ? 100 : 5;
    const size_t width = (size_t)(r > F ? r : F); /* gate and up read r and write f, down the reverse */
    float *x = random_floats((size_t)n * width, 1.0), *y = malloc((size_t)n * width * sizeof *y);
    double t[3] = {0};
    fipsc_error err = {0};
    for (int c = 0; c <= calls; c++) /* call 0 warms up */
        for (int i = 0; i < 3; i++) {
            const double t0 = now();
            if (fipsc_factored_apply(fl[i], NULL, n, x, y, false, &err)) die("V step", &err);
            if (c > 0) t[i] += now() - t0;
        }
    printf("%d-row V step alone (bitmap, %s kernels, %d threads): gate %.3f ms, up %.3f ms, down %.3f ms\n", n,
           fipsc_isa_name(fipsc_isa_active()), fipsc_threads_get(), 1e3 * t[0] / calls, 1e3 * t[1] / calls,
           1e3 * t[2] / calls);
    free(x), free(y);
}

/* Gate's and up's V steps on one row taken together (fipsc_factored_apply_shared: one input, one
 * parallel loop) and one after the other, alternated with down's in between, means of 100 calls. */
static void time_gate_up(fipsc_factored_linear *const fl[3], int r)
{
    enum { CALLS = 100 };
    const size_t width = (size_t)(r > F ? r : F); /* gate and up read r and write f, down the reverse */
    float *x = random_floats(width, 1.0), *y = malloc(3 * width * sizeof *y), *y2 = y + width, *z = y2 + width;
    double together = 0, apart = 0;
    fipsc_error err = {0};
    for (int c = 0; c <= CALLS; c++) { /* call 0 warms up */
        const double t0 = now();
        if (fipsc_factored_apply_shared(fl[0], NULL, fl[1], NULL, 1, x, y, y2, &err)) die("gate and up", &err);
        const double t1 = now();
        if (fipsc_factored_apply(fl[2], NULL, 1, x, z, false, &err)) die("down", &err);
        const double t2 = now();
        if (fipsc_factored_apply(fl[0], NULL, 1, x, y, false, &err) || fipsc_factored_apply(fl[1], NULL, 1, x, y2, false, &err))
            die("gate, up", &err);
        const double t3 = now();
        if (fipsc_factored_apply(fl[2], NULL, 1, x, z, false, &err)) die("down", &err);
        if (c > 0) together += t1 - t0, apart += t3 - t2;
    }
    printf("1-row gate and up V steps: together %.3f ms, one after the other %.3f ms\n", 1e3 * together / CALLS,
           1e3 * apart / CALLS);
    free(x), free(y);
}

/* The two basis steps alone on one row (see --v-steps): t = x·U [d] -> [r] and y = U·z [r] -> [d],
 * the mean of 100 calls each cycling four bases [d, r] (more than the L3 holds, so that each comes
 * from memory as in a model's decode step). */
static void time_basis_steps(int r, fipsc_dtype dtype)
{
    enum { BASES = 4, CALLS = 100 };
    fipsc_compressed_group g[BASES];
    fipsc_error err = {0};
    for (int i = 0; i < BASES; i++) {
        g[i] = (fipsc_compressed_group){.d = D, .r = r};
        float *U = random_floats((size_t)D * r, 1.0 / 45);
        int64_t beyond;
        if (fipsc_group_set_basis(&g[i], U, dtype, &beyond, &err)) die("basis", &err);
        free(U);
    }
    const size_t width = (size_t)(r > D ? r : D); /* x·U reads d and writes r, U·z the reverse */
    float *x = random_floats(width, 1.0), *y = malloc(width * sizeof *y);
    double t_in = 0, t_out = 0;
    for (int c = 0; c <= CALLS; c++) /* call 0 warms up */
        for (int i = 0; i < BASES; i++) {
            const double t0 = now();
            if (fipsc_group_basis_in(&g[i], 1, x, y, &err)) die("x·U", &err);
            const double t1 = now();
            if (fipsc_group_basis_out(&g[(i + 2) % BASES], 1, x, 0.0f, y, &err)) die("U·z", &err);
            if (c > 0) t_in += t1 - t0, t_out += now() - t1;
        }
    printf("1-row basis steps alone (U [%d, %d] %s, %s kernels, %d threads): x·U %.3f ms, U·z %.3f ms\n", D, r,
           fipsc_dtype_name(dtype), fipsc_isa_name(fipsc_isa_active()), fipsc_threads_get(),
           1e3 * t_in / (BASES * CALLS), 1e3 * t_out / (BASES * CALLS));
    for (int i = 0; i < BASES; i++) free(g[i].U), free(g[i].U16);
    free(x), free(y);
}

/* Set by --v-steps: make_compressed's bitmap variant also builds these. */
static fipsc_factored_linear *v_steps[3];
static fipsc_compressed_group v_step_groups[3];

/* A compressed MLP: U random, every V_i [r, f] with `keep` of its entries (random positions;
 * for n:m, nm_n random offsets in every run of nm_m rows). */
static void make_compressed(variant *v, const char *name, int r, double keep, fipsc_v_storage storage, int nm_n,
                            int nm_m, fipsc_dtype dtype)
{
    fipsc_error err = {0};
    memset(v, 0, sizeof *v);
    v->name = name;
    v->group = (fipsc_compressed_group){.first_layer = 0, .last_layer = 0, .d = D, .r = r,
                                        .v_dtype = dtype, .storage = storage, .nm_n = nm_n, .nm_m = nm_m};
    snprintf(v->group.method, sizeof v->group.method, "bench");
    float *U = random_floats((size_t)D * r, 1.0 / 45);
    int64_t beyond;
    if (fipsc_group_set_basis(&v->group, U, dtype, &beyond, &err)) die(name, &err); /* held as attach holds it */
    free(U);
    float *V = malloc((size_t)r * F * sizeof *V);
    const fipsc_mlp_role roles[3] = {FIPSC_ROLE_GATE, FIPSC_ROLE_UP, FIPSC_ROLE_DOWN};
    const char *names[3] = {"gate.weight", "up.weight", "down.weight"};
    v->file_bytes = (long long)fipsc_dtype_size(dtype) * D * r;
    v->read_bytes = 2 * fipsc_group_basis_bytes(&v->group); /* U read for the gate/up pair and again for down */
    for (int i = 0; i < 3; i++) {
        if (storage == FIPSC_V_NM) {
            memset(V, 0, (size_t)r * F * sizeof *V);
            for (int j = 0; j < F; j++)
                for (int q = 0; q < r / nm_m; q++)
                    for (int s = 0; s < nm_n; s++) /* duplicates just keep fewer than n */
                        V[(size_t)(q * nm_m + (int)(uniform() * nm_m)) * F + j] = (float)(2 * uniform() - 1) / 20;
        } else {
            for (size_t k = 0; k < (size_t)r * F; k++)
                V[k] = uniform() < keep ? (float)(2 * uniform() - 1) / 20 : 0.0f;
        }
        fipsc_round_to_dtype(dtype, V, (size_t)r * F); /* as attach holds them */
        if (want_v_steps && storage == FIPSC_V_BITMAP)
            v_steps[i] = v_step_linear(r, roles[i], names[i], V, dtype, &v_step_groups[i == 1 ? 0 : i]);
        fipsc_v_stored st;
        if (fipsc_v_stored_from_dense(storage, r, F, V, F, nm_n, nm_m, names[i], &st, &err) ||
            fipsc_factored_new(names[i], 0, roles[i], &v->group, &st, &v->fl[i], &err))
            die(name, &err);
        v->file_bytes += fipsc_factored_v_bytes(v->fl[i]);
        v->read_bytes += fipsc_factored_memory_bytes(v->fl[i]);
    }
    free(V);
    fipsc_mlp *m = &v->mlp;
    m->kind = FIPSC_MLP_GATED;
    m->act = FIPSC_ACT_SILU;
    m->d = D;
    m->f = F;
    m->gate = (fipsc_linear){.out = F, .in = D, .weight_name = names[0], .factored = v->fl[0]};
    m->up = (fipsc_linear){.out = F, .in = D, .weight_name = names[1], .factored = v->fl[1]};
    m->down = (fipsc_linear){.out = D, .in = F, .weight_name = names[2], .factored = v->fl[2]};
}

/* Dense weights [out, in] as float32 (w) or, with bf16, BF16 (w16; w stays NULL). */
static fipsc_linear dense_linear(int out, int in, const char *name, double scale, bool bf16, void **owned)
{
    float *w = random_floats((size_t)out * in, scale);
    fipsc_linear lin = {.out = out, .in = in, .weight_name = name};
    if (!bf16) {
        lin.w = w;
        *owned = w;
        return lin;
    }
    uint16_t *h = malloc((size_t)out * in * sizeof *h);
    if (!h) {
        fprintf(stderr, "bench_factored: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)out * in; i++) h[i] = fipsc_f32_to_bf16(w[i]);
    free(w);
    lin.w16 = h;
    lin.w16_dtype = FIPSC_BF16;
    *owned = h;
    return lin;
}

int main(int argc, char **argv)
{
    bool quick = false, bf16 = false;
    const char *isa_name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--bf16") == 0) bf16 = true;
        else if (strcmp(argv[i], "--cpu-time") == 0) bench_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0) fipsc_threads_set(atoi(argv[++i]));
        else if (strcmp(argv[i], "--f") == 0 && i + 1 < argc && atoi(argv[i + 1]) >= 64) F = atoi(argv[++i]);
        else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) isa_name = argv[++i];
        else if (strcmp(argv[i], "--v-steps") == 0) want_v_steps = true;
        else {
            fprintf(stderr, "usage: bench_factored [--quick] [--threads K] [--cpu-time] [--f F] [--bf16] [--isa LEVEL] "
                            "[--v-steps]\n");
            return 2;
        }
    }
    fipsc_error err = {0};
    fipsc_isa isa;
    if (isa_name && (fipsc_isa_parse(isa_name, &isa, &err) || fipsc_isa_set(isa, &err))) die("--isa", &err);
    const int64_t P = 3LL * F;
    int r_sparse, r_dense;
    if (fipsc_fips_rank_from_budget(D, P, 0.5, 0.75, 64, &r_sparse, &err) ||
        fipsc_fips_rank_from_budget(D, P, 0.5, 0.0, 64, &r_dense, &err))
        die("rank", &err);
    const fipsc_dtype dtype = bf16 ? FIPSC_BF16 : FIPSC_F32;

    if (want_v_steps) { /* the bitmap variant alone, its V as the full run makes it */
        variant bitmap;
        rng = 0x9E3779B97F4A7C15ULL;
        make_compressed(&bitmap, "fips bitmap", r_sparse, 0.25, FIPSC_V_BITMAP, 0, 0, dtype);
        time_v_steps(v_steps, r_sparse, 1);
        time_v_steps(v_steps, r_sparse, 512);
        time_gate_up(v_steps, r_sparse);
        time_basis_steps(r_sparse, dtype);
        return 0;
    }
    variant dense = {.name = "dense"};
    void *w[3];
    dense.mlp = (fipsc_mlp){.kind = FIPSC_MLP_GATED, .act = FIPSC_ACT_SILU, .d = D, .f = F,
                            .gate = dense_linear(F, D, "gate", 1.0 / 45, bf16, &w[0]),
                            .up = dense_linear(F, D, "up", 1.0 / 45, bf16, &w[1]),
                            .down = dense_linear(D, F, "down", 1.0 / 75, bf16, &w[2])};
    dense.file_bytes = dense.read_bytes = (long long)fipsc_dtype_size(dtype) * 3 * D * F;
    enum { N_COMPRESSED = 4, N_ALL = N_COMPRESSED + 1 };
    variant v[N_COMPRESSED];
    make_compressed(&v[0], "fips csc", r_sparse, 0.25, FIPSC_V_CSC, 0, 0, dtype);
    rng = 0x9E3779B97F4A7C15ULL; /* the same U and V again */
    make_compressed(&v[1], "fips bitmap", r_sparse, 0.25, FIPSC_V_BITMAP, 0, 0, dtype);
    make_compressed(&v[2], "fips 1:4", r_sparse, 0.25, FIPSC_V_NM, 1, 4, dtype);
    make_compressed(&v[3], "shared-svd", r_dense, 1.0, FIPSC_V_DENSE, 0, 0, dtype);

    const int rows[2] = {1, 512}, rounds[2] = {quick ? 5 : 25, quick ? 3 : 9};
    float *x = random_floats((size_t)512 * D, 1.0), *y = malloc((size_t)512 * D * sizeof *y);
    float *scratch = malloc(fipsc_mlp_scratch_floats(&dense.mlp, 512) * sizeof *scratch);
    printf("MLP d %d, f %d (SwiGLU), %s weights, %d threads, %s time, %s kernels; budget 0.5: r %d at sparsity "
           "0.75, r %d dense V\n", D, F, bf16 ? "BF16" : "F32", fipsc_threads_get(),
           bench_clock == CLOCK_MONOTONIC ? "wall-clock" : "CPU", fipsc_isa_name(fipsc_isa_active()), r_sparse, r_dense);
    /* Rounds alternate the variants (dense, then each compressed one), so that a change in the
     * machine's load hits all of them alike; each figure is the median over the rounds. */
    const variant *all[N_ALL] = {&dense, &v[0], &v[1], &v[2], &v[3]};
    double tps[N_ALL][2];
    for (int k = 0; k < 2; k++) {
        double t[N_ALL][32];
        for (int i = 0; i < N_ALL; i++) time_once(&all[i]->mlp, rows[k], x, y, scratch); /* warm-up */
        for (int rnd = 0; rnd < rounds[k]; rnd++)
            for (int i = 0; i < N_ALL; i++) t[i][rnd] = time_once(&all[i]->mlp, rows[k], x, y, scratch);
        for (int i = 0; i < N_ALL; i++) tps[i][k] = rows[k] / median(t[i], rounds[k]);
    }
    printf("%-12s %8s %6s | %8s %6s | %11s %6s | %11s %6s\n", "variant", "file MB", "ratio", "read MB", "ratio",
           "n=1 tok/s", "ratio", "n=512 tok/s", "ratio");
    for (int i = 0; i < N_ALL; i++)
        printf("%-12s %8.1f %6.3f | %8.1f %6.3f | %11.1f %6.3f | %11.1f %6.3f\n", all[i]->name,
               all[i]->file_bytes / 1e6, (double)all[i]->file_bytes / dense.file_bytes, all[i]->read_bytes / 1e6,
               (double)all[i]->read_bytes / dense.read_bytes, tps[i][0], tps[i][0] / tps[0][0], tps[i][1],
               tps[i][1] / tps[0][1]);
    for (int i = 0; i < N_COMPRESSED; i++) {
        for (int k = 0; k < 3; k++) fipsc_factored_free(v[i].fl[k]);
        free(v[i].group.U);
        free(v[i].group.U16);
    }
    for (int k = 0; k < 3; k++) free(w[k]);
    free(x), free(y), free(scratch);
    return 0;
}
