/* Compression options: method names, defaults, and checks of each option on its own (see
 * src/compress/compress.h). Combinations that depend on the model (ranks, n:m divisibility)
 * are checked by the plan. */
#include <math.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "model/family.h"

static const char *const method_names[FIPSC_METHOD_COUNT] = {
    [FIPSC_METHOD_FIPS] = "fips",
    [FIPSC_METHOD_FIPS_INIT] = "fips-init",
    [FIPSC_METHOD_SHARED_SVD] = "shared-svd",
    [FIPSC_METHOD_SVD] = "svd",
    [FIPSC_METHOD_MAGNITUDE] = "magnitude",
};

const char *fipsc_compress_method_name(fipsc_compress_method method)
{
    return (unsigned)method < FIPSC_METHOD_COUNT ? method_names[method] : "?";
}

bool fipsc_compress_method_parse(const char *name, fipsc_compress_method *out)
{
    for (int i = 0; i < FIPSC_METHOD_COUNT; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (fipsc_compress_method)i;
            return true;
        }
    return false;
}

const char *fipsc_compress_schedule_name(fipsc_fips_mask_kind schedule)
{
    switch (schedule) {
    case FIPSC_FIPS_MASK_GMP: return "gmp";
    case FIPSC_FIPS_MASK_RIGL: return "rigl";
    case FIPSC_FIPS_MASK_STATIC: return "static";
    case FIPSC_FIPS_MASK_NM: return "n:m";
    }
    return "?";
}

static const char *const v_products_names[] = {"auto", "dense", "sparse"};

const char *fipsc_compress_v_products_name(fipsc_fips_v_products p)
{
    return (unsigned)p < sizeof v_products_names / sizeof *v_products_names ? v_products_names[p] : "?";
}

bool fipsc_compress_v_products_parse(const char *name, fipsc_fips_v_products *out)
{
    for (size_t i = 0; i < sizeof v_products_names / sizeof *v_products_names; i++)
        if (strcmp(name, v_products_names[i]) == 0) {
            *out = (fipsc_fips_v_products)i;
            return true;
        }
    return false;
}

void fipsc_compress_defaults(fipsc_compress_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = FIPSC_METHOD_FIPS;
    o->budget = 0.5;
    o->sparsity = 0.75;
    o->groups = "2";
    o->schedule = FIPSC_FIPS_MASK_GMP;
    o->mode = FIPSC_FIPS_JOINT;
    o->steps = 4000;
    o->batch_rows = 128;
    o->lr = 1e-2f;
    o->lr_min = 1e-4f;
    o->weight_decay = 0.0f;
    o->seed = 1;
    o->holdout = 0.1;
    o->u_dtype = o->v_dtype = FIPSC_COMPRESS_DTYPE_AUTO;
    o->storage = FIPSC_COMPRESS_STORAGE_AUTO;
    o->whiten_alpha = FIPSC_FIPS_WHITEN_ALPHA;
}

void fipsc_compress_defaults_for(fipsc_compress_options *o, const fipsc_family *family)
{
    fipsc_compress_defaults(o);
    const fipsc_family_defaults *d = family ? family->defaults : NULL;
    if (!d) return;
    o->groups = d->groups;
    o->schedule = d->schedule;
    o->mode = d->mode;
    o->sparsity = d->sparsity;
    o->steps = d->steps;
    o->batch_rows = d->batch_rows;
    o->lr = d->lr;
    o->lr_min = d->lr_min;
    o->weight_decay = d->weight_decay;
    o->bf16_moments = d->bf16_moments;
}

float fipsc_compress_default_lr(float lr, const fipsc_family *family, int d)
{
    const int w = family && family->defaults ? family->defaults->lr_width : 0;
    return w > 0 && d > w ? lr * (float)w / (float)d : lr;
}

static bool uses_shared_basis(fipsc_compress_method m)
{
    return m == FIPSC_METHOD_FIPS || m == FIPSC_METHOD_FIPS_INIT || m == FIPSC_METHOD_SHARED_SVD;
}

fipsc_status fipsc_compress_options_check(const fipsc_compress_options *o, fipsc_error *err)
{
#define BAD(...) fipsc_fail(err, FIPSC_ERR_ARG, __VA_ARGS__)
    if ((unsigned)o->method >= FIPSC_METHOD_COUNT) return BAD("unknown method %d", (int)o->method);
    const char *method = fipsc_compress_method_name(o->method);
    if (!(o->budget > 0.0 && o->budget <= 1.0))
        return BAD("--budget %g is not in (0, 1] (the fraction of MLP parameters kept)", o->budget);
    if (!(o->sparsity >= 0.0 && o->sparsity < 1.0))
        return BAD("--sparsity %g is not in [0, 1) (the fraction of V's entries pruned)", o->sparsity);
    bool nm = o->nm_n != 0 || o->nm_m != 0;
    if (nm) {
        if (o->nm_n < 1 || o->nm_m < 1 || o->nm_n > o->nm_m || o->nm_m > 255)
            return BAD("--nm %d:%d is not a valid n:m (1 ≤ n ≤ m ≤ 255, e.g. 2:4)", o->nm_n, o->nm_m);
        if (o->method == FIPSC_METHOD_SVD || o->method == FIPSC_METHOD_SHARED_SVD)
            return BAD("--nm applies to fips, fips-init and magnitude, not to %s (its factors are "
                       "dense)", method);
    }
    if (o->init != FIPSC_INIT_SVD && o->init != FIPSC_INIT_WHITENED) return BAD("--init must be svd or whitened");
    if (o->init == FIPSC_INIT_WHITENED && !uses_shared_basis(o->method))
        return BAD("--init whitened applies to fips, fips-init and shared-svd, not to %s", method);
    if (!(o->whiten_alpha > 0.0 && o->whiten_alpha <= 1.0))
        return BAD("--whiten-alpha %g is not in (0, 1] (1: full whitening)", o->whiten_alpha);
    if (o->rank < 0) return BAD("--rank %d must not be negative", o->rank);
    if (o->rank > 0 && !uses_shared_basis(o->method))
        return BAD("--rank applies to fips, fips-init and shared-svd, not to %s (its ranks follow "
                   "from --budget per matrix)", method);
    if (!o->groups || !o->groups[0]) return BAD("--groups is empty");
    if (o->schedule != FIPSC_FIPS_MASK_GMP && o->schedule != FIPSC_FIPS_MASK_RIGL &&
        o->schedule != FIPSC_FIPS_MASK_STATIC)
        return BAD("--schedule must be gmp, rigl or static");
    if (o->mode != FIPSC_FIPS_JOINT && o->mode != FIPSC_FIPS_LOCAL)
        return BAD("--mode must be joint or local");
    if (o->steps < 1) return BAD("--steps %d must be at least 1", o->steps);
    if (o->batch_rows < 1) return BAD("--batch %d must be at least 1", o->batch_rows);
    if (!(o->lr > 0.0f) || !isfinite(o->lr)) return BAD("--lr %g must be positive", (double)o->lr);
    if (!(o->lr_min >= 0.0f && o->lr_min <= o->lr))
        return BAD("the final learning rate %g must be in [0, --lr = %g]", (double)o->lr_min,
                   (double)o->lr);
    const fipsc_dtype dts[2] = {o->u_dtype, o->v_dtype};
    for (int i = 0; i < 2; i++)
        if (!fipsc_dtype_is_float(dts[i]) && dts[i] != FIPSC_COMPRESS_DTYPE_AUTO)
            return BAD("--%c-dtype: %s is stored as auto, f32, f16 or bf16, not %s", i ? 'v' : 'u', i ? "V" : "U",
                       fipsc_dtype_name(dts[i]));
    if (o->storage != FIPSC_COMPRESS_STORAGE_AUTO && o->storage != FIPSC_V_CSC && o->storage != FIPSC_V_BITMAP &&
        o->storage != FIPSC_V_DENSE)
        return BAD("--storage must be auto, csc, bitmap or dense (n:m storage comes with --nm)");
    if (o->storage != FIPSC_COMPRESS_STORAGE_AUTO && o->nm_m > 0)
        return BAD("--nm stores V n:m-packed: leave --storage at auto");
    if (!(o->weight_decay >= 0.0f) || !isfinite(o->weight_decay))
        return BAD("weight decay %g must be a finite number ≥ 0", (double)o->weight_decay);
    if (!(o->holdout >= 0.0 && o->holdout <= 0.5))
        return BAD("--holdout %g is not in [0, 0.5] (the fraction of calibration rows held out)", o->holdout);
    /* 60 halvings take any float learning rate below 1e-18 of itself: more cannot help. */
    if (o->divergence_retries < 0 || o->divergence_retries > 60)
        return BAD("--divergence-retries %d is not in [0, 60]", o->divergence_retries);
    return FIPSC_OK;
#undef BAD
}
