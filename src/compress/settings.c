/* A compression's settings by name (see src/compress/settings.h). */
#include "compress/settings.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "model/family.h"

typedef enum setting {
    S_METHOD, S_BUDGET, S_SPARSITY, S_NM, S_RANK, S_GROUPS, S_SCHEDULE, S_MODE, S_STEPS, S_LR, S_LR_MIN,
    S_WEIGHT_DECAY, S_BATCH, S_SEED, S_U_DTYPE, S_DIVERGENCE_RETRIES, S_CALIB_CORPUS, S_CALIB_SAMPLES,
    S_CALIB_LEN, S_CALIB_IMAGES, S_CALIB_IDX, S_CALIB_EXCLUDE, S_CALIB_COUNT, S_CALIB_SENTENCES, S_CALIB_ROWS,
    S_CALIB_TEXT, S_TOKENIZER, S_HOLDOUT, S_STRICT, S_MAX_MEMORY, S_SPILL, S_SCRATCH_DIR, S_V_DTYPE,
    S_STORAGE, S_SEQUENTIAL, S_INIT, S_WHITEN_ALPHA, S_ADAM_MOMENTS, S_CAPTURE_ALL, S_V_PRODUCTS, S_COUNT
} setting;

static const char *const names[S_COUNT] = {
    "method", "budget", "sparsity", "nm", "rank", "groups", "schedule", "mode", "steps", "lr", "lr-min",
    "weight-decay", "batch", "seed", "u-dtype", "divergence-retries", "calib-corpus", "calib-samples",
    "calib-len", "calib-images", "calib-idx", "calib-exclude", "calib-count", "calib-sentences", "calib-rows",
    "calib-text", "tokenizer", "holdout", "strict", "max-memory", "spill", "scratch-dir", "v-dtype",
    "storage", "sequential", "init", "whiten-alpha", "adam-moments", "capture-all", "v-products",
};

_Static_assert((int)S_COUNT <= (int)FIPSC_SETTINGS_MAX, "FIPSC_SETTINGS_MAX too small");

void fipsc_settings_init(fipsc_compress_settings *s)
{
    memset(s, 0, sizeof *s);
    fipsc_compress_defaults(&s->options);
    fipsc_calib_source_init(&s->calib);
}

void fipsc_settings_free(fipsc_compress_settings *s)
{
    for (int i = 0; i < FIPSC_SETTINGS_MAX; i++) free(s->text[i]);
    memset(s, 0, sizeof *s);
}

static int lookup(const char *name)
{
    for (int i = 0; i < S_COUNT; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

bool fipsc_settings_known(const char *name) { return lookup(name) >= 0; }

#define BAD(...) fipsc_fail(err, FIPSC_ERR_ARG, __VA_ARGS__)

/* An integer in [lo, hi], worded as the command line words it. */
static fipsc_status get_int(const char *name, const char *text, long long lo, long long hi, long long *out,
                            fipsc_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi)
        return BAD("--%s expects an integer in [%lld, %lld], got '%s'", name, lo, hi, text);
    *out = v;
    return FIPSC_OK;
}

static fipsc_status get_double(const char *name, const char *text, double lo, double hi, double *out, fipsc_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return BAD("--%s expects a number in [%g, %g], got '%s'", name, lo, hi, text);
    *out = v;
    return FIPSC_OK;
}

/* One of two words (*second: the second one), worded as the command line words it. */
static fipsc_status get_either(const char *name, const char *text, const char *first, const char *second_word,
                               bool *second, fipsc_error *err)
{
    if (strcmp(text, first) == 0) *second = false;
    else if (strcmp(text, second_word) == 0) *second = true;
    else return BAD("--%s must be %s or %s, got '%s'", name, first, second_word, text);
    return FIPSC_OK;
}

/* true/1 or false/0. */
static fipsc_status get_bool(const char *name, const char *text, bool *out, fipsc_error *err)
{
    bool is_false = false;
    fipsc_status st = get_either(name, strcmp(text, "1") == 0 ? "true" : strcmp(text, "0") == 0 ? "false" : text,
                                 "true", "false", &is_false, err);
    if (!st) *out = !is_false;
    return st;
}

/* A finite decimal number (its range is checked with the other options, with a precise message). */
static bool finite_number(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool parse_nm(const char *text, int *n, int *m)
{
    char *end;
    long a = strtol(text, &end, 10);
    if (end == text || *end != ':') return false;
    const char *q = end + 1;
    long b = strtol(q, &end, 10);
    if (end == q || *end) return false;
    if (a < 1 || b < 1 || a > b || b > 255) return false;
    *n = (int)a;
    *m = (int)b;
    return true;
}

/* Keeps a copy of text as setting i's string. */
static fipsc_status keep(fipsc_compress_settings *s, int i, const char *text, const char **out, fipsc_error *err)
{
    char *copy = strdup(text);
    if (!copy) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    free(s->text[i]);
    s->text[i] = copy;
    *out = copy;
    return FIPSC_OK;
}

fipsc_status fipsc_settings_set(fipsc_compress_settings *s, const char *name, const char *value, fipsc_error *err)
{
    const int i = lookup(name);
    if (i < 0) return BAD("unknown compression setting '%s'", name);
    fipsc_compress_options *o = &s->options;
    fipsc_calib_source *c = &s->calib;
    long long v = 0;
    double x = 0.0;
    bool flag = false;
    fipsc_status st = FIPSC_OK;
    switch ((setting)i) {
    case S_METHOD:
        if (!fipsc_compress_method_parse(value, &o->method))
            return BAD("--method must be fips, fips-init, shared-svd, svd or magnitude, got '%s'", value);
        break;
    case S_BUDGET:
        if (!finite_number(value, &o->budget)) return BAD("--budget expects a number in (0, 1], got '%s'", value);
        break;
    case S_SPARSITY:
        if (!finite_number(value, &o->sparsity)) return BAD("--sparsity expects a number in [0, 1), got '%s'", value);
        break;
    case S_NM:
        if (!parse_nm(value, &o->nm_n, &o->nm_m))
            return BAD("--nm expects N:M with 1 ≤ N ≤ M ≤ 255 (e.g. 2:4), got '%s'", value);
        break;
    case S_RANK:
        if (!(st = get_int(name, value, 1, 1 << 30, &v, err))) o->rank = (int)v;
        break;
    case S_GROUPS: st = keep(s, i, value, &o->groups, err); break;
    case S_SCHEDULE:
        if (strcmp(value, "gmp") == 0) o->schedule = FIPSC_FIPS_MASK_GMP;
        else if (strcmp(value, "rigl") == 0) o->schedule = FIPSC_FIPS_MASK_RIGL;
        else if (strcmp(value, "static") == 0) o->schedule = FIPSC_FIPS_MASK_STATIC;
        else return BAD("--schedule must be gmp, rigl or static, got '%s'", value);
        break;
    case S_MODE:
        if (!(st = get_either(name, value, "joint", "local", &flag, err)))
            o->mode = flag ? FIPSC_FIPS_LOCAL : FIPSC_FIPS_JOINT;
        break;
    case S_STEPS:
        if (!(st = get_int(name, value, 1, 100000000, &v, err))) o->steps = (int)v;
        break;
    case S_LR:
        if (!(st = get_double(name, value, 1e-12, 10.0, &x, err))) o->lr = (float)x;
        break;
    case S_LR_MIN:
        if (!(st = get_double(name, value, 0.0, 10.0, &x, err))) o->lr_min = (float)x;
        break;
    case S_WEIGHT_DECAY:
        if (!(st = get_double(name, value, 0.0, 100.0, &x, err))) o->weight_decay = (float)x;
        break;
    case S_BATCH:
        if (!(st = get_int(name, value, 1, 1 << 30, &v, err))) o->batch_rows = (int)v;
        break;
    case S_SEED:
        if (!(st = get_int(name, value, 0, INT64_MAX, &v, err))) o->seed = (uint64_t)v;
        break;
    case S_U_DTYPE:
    case S_V_DTYPE: {
        fipsc_dtype *dt = i == S_U_DTYPE ? &o->u_dtype : &o->v_dtype;
        if (strcmp(value, "auto") == 0) *dt = FIPSC_COMPRESS_DTYPE_AUTO;
        else if (strcmp(value, "f32") == 0) *dt = FIPSC_F32;
        else if (strcmp(value, "f16") == 0) *dt = FIPSC_F16;
        else if (strcmp(value, "bf16") == 0) *dt = FIPSC_BF16;
        else return BAD("--%s must be auto, f32, f16 or bf16, got '%s'", name, value);
        break;
    }
    case S_STORAGE: {
        fipsc_v_storage sv;
        if (strcmp(value, "auto") == 0) o->storage = FIPSC_COMPRESS_STORAGE_AUTO;
        else if (fipsc_v_storage_parse(value, &sv) && sv != FIPSC_V_NM) o->storage = (int)sv;
        else return BAD("--storage must be auto, csc, bitmap or dense, got '%s' (n:m storage comes with --nm)", value);
        break;
    }
    case S_DIVERGENCE_RETRIES:
        if (!(st = get_int(name, value, 0, 60, &v, err))) o->divergence_retries = (int)v;
        break;
    case S_HOLDOUT:
        if (!(st = get_double(name, value, 0.0, 0.5, &x, err))) o->holdout = x;
        break;
    case S_SEQUENTIAL:
        st = get_bool(name, value, &o->sequential, err);
        break;
    case S_CAPTURE_ALL:
        st = get_bool(name, value, &o->capture_all, err);
        break;
    case S_INIT:
        if (!(st = get_either(name, value, "svd", "whitened", &flag, err)))
            o->init = flag ? FIPSC_INIT_WHITENED : FIPSC_INIT_SVD;
        break;
    case S_WHITEN_ALPHA:
        if (!(st = get_double(name, value, 0.0, 1.0, &x, err))) {
            if (!(x > 0.0)) return BAD("--whiten-alpha must be above 0 (1: full whitening), got '%s'", value);
            o->whiten_alpha = x;
        }
        break;
    case S_ADAM_MOMENTS:
        st = get_either(name, value, "f32", "bf16", &o->bf16_moments, err);
        break;
    case S_V_PRODUCTS:
        if (!fipsc_compress_v_products_parse(value, &o->v_products))
            return BAD("--v-products expects auto, dense or sparse, got '%s'", value);
        break;
    case S_STRICT:
        st = get_bool(name, value, &o->strict, err);
        break;
    case S_MAX_MEMORY:
        if (strcmp(value, "none") == 0) o->max_memory = -1;
        else if (!fipsc_parse_memory_size(value, &o->max_memory))
            return BAD("--max-memory expects a size like 20G, 1.5GiB or 800MB (K/M/G/T: powers of 1024; "
                       "KB/MB/GB/TB: of 1000), or none, got '%s'", value);
        break;
    case S_SPILL:
        if (strcmp(value, "auto") == 0) o->spill = FIPSC_SPILL_AUTO;
        else if (strcmp(value, "always") == 0) o->spill = FIPSC_SPILL_ALWAYS;
        else if (strcmp(value, "never") == 0) o->spill = FIPSC_SPILL_NEVER;
        else return BAD("--spill must be auto, always or never, got '%s'", value);
        break;
    case S_SCRATCH_DIR: st = keep(s, i, value, &o->scratch_dir, err); break;
    case S_CALIB_CORPUS: st = keep(s, i, value, &c->corpus, err); break;
    case S_CALIB_SAMPLES:
        if (!(st = get_int(name, value, 1, 1 << 24, &v, err))) c->samples = (int)v;
        break;
    case S_CALIB_LEN:
        if (!(st = get_int(name, value, 2, 1 << 24, &v, err))) c->len = (int)v;
        break;
    case S_CALIB_IMAGES: st = keep(s, i, value, &c->images_dir, err); break;
    case S_CALIB_IDX: st = keep(s, i, value, &c->idx_path, err); break;
    case S_CALIB_EXCLUDE: st = keep(s, i, value, &c->exclude_dir, err); break;
    case S_CALIB_COUNT:
        if (!(st = get_int(name, value, 1, 1 << 24, &v, err))) c->count = (int)v;
        break;
    case S_CALIB_SENTENCES: st = keep(s, i, value, &c->sentences, err); break;
    case S_CALIB_ROWS: st = get_int(name, value, 0, INT64_MAX, &c->rows, err); break;
    case S_CALIB_TEXT: st = keep(s, i, value, &c->text, err); break;
    case S_TOKENIZER: st = keep(s, i, value, &c->tokenizer, err); break;
    case S_COUNT: break;
    }
    if (!st) s->given[i] = true;
    return st;
}

void fipsc_settings_resolve(const fipsc_compress_settings *s, const fipsc_model *m, fipsc_compress_options *o)
{
    fipsc_compress_options fd;
    *o = s->options;
    fipsc_compress_defaults_for(&fd, m ? m->family : NULL);
    if (!s->given[S_SCHEDULE]) o->schedule = fd.schedule;
    if (!s->given[S_GROUPS]) o->groups = fd.groups;
    if (!s->given[S_SPARSITY]) o->sparsity = fd.sparsity;
    if (!s->given[S_MODE]) o->mode = fd.mode;
    if (!s->given[S_STEPS]) o->steps = fd.steps;
    if (!s->given[S_BATCH]) o->batch_rows = fd.batch_rows;
    if (!s->given[S_LR]) o->lr = m && m->n_mlps > 0 ? fipsc_compress_default_lr(fd.lr, m->family, m->mlps[0]->d) : fd.lr;
    if (!s->given[S_WEIGHT_DECAY]) o->weight_decay = fd.weight_decay;
    if (!s->given[S_ADAM_MOMENTS]) o->bf16_moments = fd.bf16_moments;
    if (!s->given[S_LR_MIN]) o->lr_min = o->lr / 100.0f;
}
