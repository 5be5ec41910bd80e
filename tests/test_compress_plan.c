/* Compression plan: group specs, option checks, ranks from the budget for every method, n:m
 * rounding and its errors, storage choice — on the shipped stories260K (d 64, f 172, 5 blocks). */
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "compress/compress.h"
#include "compress/settings.h"
#include "testutil.h"

/* Parses spec for n blocks and compares with the expected "a-b,c-d" rendering. */
static void expect_groups(const char *spec, int n, const char *want)
{
    fipsc_error err = {0};
    fipsc_block_range *r = NULL;
    int k = 0;
    fipsc_status st = fipsc_groups_parse(spec, n, &r, &k, &err);
    CHECK_MSG(st == FIPSC_OK, "'%s' on %d blocks: %s", spec, n, err.message);
    char got[256] = "";
    for (int i = 0; i < k; i++) {
        char part[32];
        snprintf(part, sizeof part, "%s%d-%d", i ? "," : "", r[i].first, r[i].last);
        strncat(got, part, sizeof got - strlen(got) - 1);
    }
    CHECK_MSG(strcmp(got, want) == 0, "'%s' on %d blocks gave '%s', want '%s'", spec, n, got, want);
    free(r);
}

static void expect_bad_groups(const char *spec, int n, const char *needle)
{
    fipsc_error err = {0};
    fipsc_block_range *r = NULL;
    int k = -1;
    CHECK_FAILS(fipsc_groups_parse(spec, n, &r, &k, &err), FIPSC_ERR_ARG, needle, &err);
    CHECK(r == NULL && k == 0);
}

static void test_group_specs(void)
{
    expect_groups("2", 5, "0-1,2-4");
    expect_groups("1", 5, "0-0,1-1,2-2,3-3,4-4");
    expect_groups("3", 5, "0-4");       /* one group of 3, the last takes the rest */
    expect_groups("3", 6, "0-2,3-5");
    expect_groups("4", 12, "0-3,4-7,8-11");
    expect_groups("5", 5, "0-4");
    expect_groups("9", 5, "0-4");
    expect_groups("0-1,2-4", 5, "0-1,2-4");
    expect_groups("2-4,0-1", 5, "0-1,2-4"); /* listed in any order, run in block order */
    expect_groups("0,2-3", 5, "0-0,2-3");    /* blocks 1 and 4 stay dense */
    expect_groups("4-4", 5, "4-4");

    expect_bad_groups("", 5, "empty");
    expect_bad_groups("0", 5, "at least one block");
    expect_bad_groups("x", 5, "group size");
    expect_bad_groups("2x", 5, "group size");
    expect_bad_groups("0-1,1-2", 5, "block 1 is in two groups");
    expect_bad_groups("0-1,0", 5, "block 0 is in two groups");
    expect_bad_groups("0-5", 5, "block 5 does not exist");
    expect_bad_groups("3-1", 5, "runs backwards");
    expect_bad_groups("0-1,", 5, "expected a block number");
    expect_bad_groups(",0-1", 5, "expected a block number");
    expect_bad_groups("-1", 5, "expected a block number");
    expect_bad_groups("0--1", 5, "after '-'");
    expect_bad_groups("1-2-3", 5, "unexpected '-'");
    expect_bad_groups("0-1;2-4", 5, "unexpected ';'");
    expect_bad_groups("0 - 1", 5, "unexpected ' '");
}

static void expect_bad_options(void (*edit)(fipsc_compress_options *), const char *needle)
{
    fipsc_compress_options o;
    fipsc_compress_defaults(&o);
    edit(&o);
    fipsc_error err = {0};
    CHECK_FAILS(fipsc_compress_options_check(&o, &err), FIPSC_ERR_ARG, needle, &err);
}

static void budget_zero(fipsc_compress_options *o) { o->budget = 0.0; }
static void budget_big(fipsc_compress_options *o) { o->budget = 1.5; }
static void sparsity_one(fipsc_compress_options *o) { o->sparsity = 1.0; }
static void sparsity_negative(fipsc_compress_options *o) { o->sparsity = -0.1; }
static void nm_backwards(fipsc_compress_options *o) { o->nm_n = 3, o->nm_m = 2; }
static void nm_svd(fipsc_compress_options *o) { o->nm_n = 2, o->nm_m = 4, o->method = FIPSC_METHOD_SVD; }
static void rank_magnitude(fipsc_compress_options *o) { o->rank = 8, o->method = FIPSC_METHOD_MAGNITUDE; }
static void no_steps(fipsc_compress_options *o) { o->steps = 0; }
static void lr_min_above(fipsc_compress_options *o) { o->lr_min = 2 * o->lr; }
static void holdout_big(fipsc_compress_options *o) { o->holdout = 0.6; }
static void holdout_negative(fipsc_compress_options *o) { o->holdout = -0.1; }

static void test_option_checks(void)
{
    fipsc_compress_options o;
    fipsc_compress_defaults(&o);
    fipsc_error err = {0};
    CHECK_OK(fipsc_compress_options_check(&o, &err), &err);
    expect_bad_options(budget_zero, "--budget 0 is not in (0, 1]");
    expect_bad_options(budget_big, "--budget 1.5 is not in (0, 1]");
    expect_bad_options(sparsity_one, "--sparsity 1 is not in [0, 1)");
    expect_bad_options(sparsity_negative, "--sparsity -0.1");
    expect_bad_options(nm_backwards, "--nm 3:2 is not a valid n:m");
    expect_bad_options(nm_svd, "not to svd");
    expect_bad_options(rank_magnitude, "--rank applies to");
    expect_bad_options(no_steps, "--steps 0");
    expect_bad_options(lr_min_above, "final learning rate");
    expect_bad_options(holdout_big, "--holdout 0.6 is not in [0, 0.5]");
    expect_bad_options(holdout_negative, "--holdout -0.1 is not in [0, 0.5]");
    CHECK(o.holdout == 0.1 && !o.strict);

    for (int i = 0; i < FIPSC_METHOD_COUNT; i++) {
        fipsc_compress_method back;
        CHECK(fipsc_compress_method_parse(fipsc_compress_method_name((fipsc_compress_method)i), &back));
        CHECK(back == (fipsc_compress_method)i);
    }
    fipsc_compress_method dummy;
    CHECK(!fipsc_compress_method_parse("fips2", &dummy));
}

/* Plans stories260K with o; returns the number of groups (plans in *out, caller frees). */
static int plan(const fipsc_model *m, const fipsc_compress_options *o, fipsc_group_plan **out)
{
    fipsc_error err = {0};
    int n = 0;
    *out = NULL;
    CHECK_OK(fipsc_compress_plan(m, o, out, &n, &err), &err);
    return n;
}

static void test_ranks(const fipsc_model *m)
{
    fipsc_compress_options o;
    fipsc_compress_defaults(&o);
    o.groups = "0-1,2-4";
    o.budget = 0.5;
    o.sparsity = 0.5;
    fipsc_group_plan *p;
    /* Group 0-1: P = 2·3·172 = 1032, r = floor(0.5·64·1032 / (64 + 0.5·1032)) = floor(56.94). */
    int n = plan(m, &o, &p);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(p[0].blocks.first == 0 && p[0].blocks.last == 1);
        CHECK(p[0].d == 64 && p[0].P == 1032 && p[0].n_matrices == 6);
        CHECK_MSG(p[0].r == 56, "r = %d", p[0].r);
        /* Group 2-4: P = 1548, r = floor(0.5·64·1548 / (64 + 774)) = floor(59.11). */
        CHECK(p[1].P == 1548);
        CHECK_MSG(p[1].r == 59, "r = %d", p[1].r);
        CHECK(p[0].dense_params == 64 * 1032);
        CHECK(p[0].kept_params <= 0.5 * 64 * 1032);
        CHECK(p[0].kept_params == 64 * 56 + (56 * 1032 - 28896)); /* keep_count(57792, 0.5) */
        /* Half of V kept: a bitmap (r/8 bytes per column) beats 16-bit row indices and dense. */
        CHECK(p[0].storage == FIPSC_V_BITMAP);
        CHECK(p[0].u_dtype == FIPSC_F32 && p[0].v_dtype == FIPSC_F32); /* auto on an F32 model */
        CHECK_NEAR(p[0].sparsity, 0.5, 1e-9);
    }
    free(p);

    /* Sparsity 0.25: CSC (6 bytes per kept entry) would be larger than dense V (4 per entry);
     * the bitmap (4 bytes per kept entry + r/8 per column) is smaller than both. Per matrix the
     * plan splits the kept entries evenly. */
    o.sparsity = 0.25;
    n = plan(m, &o, &p);
    if (n == 2) {
        const int r = p[0].r;
        CHECK(p[0].storage == FIPSC_V_BITMAP);
        int64_t each = (int64_t)((double)(p[0].kept_params - 64 * r) * 172 / 1032);
        CHECK_MSG(p[0].stored_bytes == 4 * 64 * r + 6 * (each * 4 + 172 * ((r + 7) / 8)), "bytes %lld",
                  (long long)p[0].stored_bytes);
    }
    free(p);
    /* --storage forces one layout; --u-dtype/--v-dtype bf16 halve U and the values. */
    o.storage = FIPSC_V_DENSE;
    o.u_dtype = o.v_dtype = FIPSC_BF16;
    n = plan(m, &o, &p);
    if (n == 2) {
        CHECK(p[0].storage == FIPSC_V_DENSE && p[0].u_dtype == FIPSC_BF16 && p[0].v_dtype == FIPSC_BF16);
        CHECK(p[0].stored_bytes == 2 * (64 * p[0].r + (int64_t)p[0].r * 1032));
    }
    free(p);
    o.storage = FIPSC_COMPRESS_STORAGE_AUTO;
    o.u_dtype = o.v_dtype = FIPSC_COMPRESS_DTYPE_AUTO;

    /* n:m 2:4: s = 0.5 and the rank rounded down to a multiple of 4. */
    o.sparsity = 0.5;
    o.nm_n = 2;
    o.nm_m = 4;
    n = plan(m, &o, &p);
    if (n == 2) {
        CHECK_MSG(p[0].r == 56 && p[1].r == 56, "r = %d, %d", p[0].r, p[1].r);
        CHECK(p[0].storage == FIPSC_V_NM);
        CHECK(p[0].kept_params == 64 * 56 + 56 / 4 * 2 * 1032);
        CHECK(p[0].stored_bytes == 4 * 64 * 56 + 5 * (56 / 4 * 2 * 1032));
    }
    free(p);

    /* An explicit rank that m does not divide is refused before any work. */
    o.rank = 58;
    fipsc_error err = {0};
    int k;
    CHECK_FAILS(fipsc_compress_plan(m, &o, &p, &k, &err), FIPSC_ERR_ARG, "--rank is 58", &err);
    CHECK(p == NULL);
    o.rank = 60;
    n = plan(m, &o, &p);
    if (n == 2) CHECK(p[0].r == 60 && p[1].r == 60);
    free(p);
    o.rank = 0;
    o.nm_n = o.nm_m = 0;

    /* shared-svd: s = 0, r = floor(0.5·64·1032 / (64 + 1032)) = 30; dense V. */
    o.method = FIPSC_METHOD_SHARED_SVD;
    n = plan(m, &o, &p);
    if (n == 2) {
        CHECK_MSG(p[0].r == 30, "r = %d", p[0].r);
        CHECK(p[0].storage == FIPSC_V_DENSE);
        CHECK(p[0].kept_params == 30 * (64 + 1032));
    }
    free(p);

    /* svd: per matrix k = floor(0.5·64·172 / 236) = 23. */
    o.method = FIPSC_METHOD_SVD;
    n = plan(m, &o, &p);
    if (n == 2) {
        CHECK_MSG(p[0].r == 23, "k = %d", p[0].r);
        CHECK(p[0].kept_params == 6 * 23 * (64 + 172));
        CHECK(p[1].kept_params == 9 * 23 * (64 + 172));
        /* Stored per block: U [64, 3·23] stacked + each V_i's 23·172 entries of its 69 rows as a
         * bitmap (⌈69/8⌉ = 9 bytes per column). */
        int64_t block = 4 * 64 * 69 + 3 * (23 * 172 * 4 + 172 * 9);
        CHECK_MSG(p[0].stored_bytes == 2 * block, "bytes %lld", (long long)p[0].stored_bytes);
        CHECK(p[0].storage == FIPSC_V_BITMAP);
    }
    free(p);

    /* magnitude: round(0.5·64·172) = 5504 weights per matrix, no basis: a bitmap (CSC would
     * cost 6/4 × 50 % = 75 % of dense, the bitmap 50 % + 1/32); at 0.75 still the bitmap (CSC
     * 112.5 % of dense, the bitmap 78 %); at 0.99 dense. */
    o.method = FIPSC_METHOD_MAGNITUDE;
    n = plan(m, &o, &p);
    if (n == 2) {
        CHECK(p[0].r == 64);
        CHECK(p[0].kept_params == 6 * 5504);
        CHECK(p[0].storage == FIPSC_V_BITMAP);
    }
    free(p);
    o.budget = 0.75;
    n = plan(m, &o, &p);
    if (n == 2) CHECK(p[0].storage == FIPSC_V_BITMAP);
    free(p);
    o.budget = 0.99;
    n = plan(m, &o, &p);
    if (n == 2) CHECK(p[0].storage == FIPSC_V_DENSE);
    free(p);
    o.budget = 0.75;

    /* magnitude n:m 3:8 on d = 64: 3/8 of every matrix, packed. */
    o.nm_n = 3;
    o.nm_m = 8;
    n = plan(m, &o, &p);
    if (n == 2) {
        CHECK(p[0].kept_params == 6 * 64 * 172 * 3 / 8);
        CHECK(p[0].storage == FIPSC_V_NM);
    }
    free(p);
    /* ... but 2:3 does not divide d = 64. */
    o.nm_n = 2;
    o.nm_m = 3;
    CHECK_FAILS(fipsc_compress_plan(m, &o, &p, &k, &err), FIPSC_ERR_ARG, "3 does not divide 64", &err);

    /* A budget too small for rank 1. */
    o.method = FIPSC_METHOD_FIPS;
    o.nm_n = o.nm_m = 0;
    o.budget = 1e-4;
    CHECK_FAILS(fipsc_compress_plan(m, &o, &p, &k, &err), FIPSC_ERR_ARG, "--budget 0.0001", &err);

    /* Invalid groups fail in the plan, naming the spec. */
    o.budget = 0.5;
    o.groups = "0-1,1-4";
    CHECK_FAILS(fipsc_compress_plan(m, &o, &p, &k, &err), FIPSC_ERR_ARG, "invalid --groups '0-1,1-4'", &err);
}

/* Default learning rates shrink as 1/d beyond the width they were tuned at; given ones do not. */
static const fipsc_family *family_named(const char *name)
{
    for (int i = 0; i < fipsc_family_count(); i++)
        if (strcmp(fipsc_family_at(i)->name, name) == 0) return fipsc_family_at(i);
    return NULL;
}

static void test_default_lr(const fipsc_model *m)
{
    const fipsc_family *llama = m->family, *use = family_named("use-lite");
    CHECK(llama && use && strcmp(llama->name, "llama") == 0);
    if (!use) return;
    CHECK(fipsc_compress_default_lr(1e-2f, llama, 2048) == 1e-2f * 64.0f / 2048.0f);
    CHECK(fipsc_compress_default_lr(1e-2f, llama, 4096) == 1e-2f * 64.0f / 4096.0f);
    CHECK(fipsc_compress_default_lr(1e-2f, llama, 64) == 1e-2f);
    CHECK(fipsc_compress_default_lr(1e-2f, llama, 32) == 1e-2f);
    CHECK(fipsc_compress_default_lr(1e-3f, use, 1024) == 5e-4f);
    CHECK(fipsc_compress_default_lr(1e-3f, NULL, 4096) == 1e-3f);
    fipsc_compress_settings s;
    fipsc_compress_options o;
    fipsc_error err = {0};
    fipsc_settings_init(&s);
    fipsc_settings_resolve(&s, m, &o); /* stories260K: d 64, the width llama's lr was tuned at */
    CHECK(o.lr == 1e-2f && o.lr_min == 1e-4f);
    CHECK_OK(fipsc_settings_set(&s, "lr", "0.5", &err), &err);
    fipsc_settings_resolve(&s, m, &o);
    CHECK(o.lr == 0.5f && o.lr_min == 0.005f);
    CHECK_OK(fipsc_settings_set(&s, "holdout", "0", &err), &err);
    CHECK_OK(fipsc_settings_set(&s, "strict", "true", &err), &err);
    fipsc_settings_resolve(&s, m, &o);
    CHECK(o.holdout == 0.0 && o.strict);
    CHECK_FAILS(fipsc_settings_set(&s, "strict", "maybe", &err), FIPSC_ERR_ARG, "--strict must be true or false", &err);
    fipsc_settings_free(&s);
}

int main(void)
{
    test_group_specs();
    test_option_checks();
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(path, &m, &err), &err);
    if (m) test_ranks(m);
    if (m) test_default_lr(m);
    fipsc_model_free(m);
    return test_summary("test_compress_plan");
}
