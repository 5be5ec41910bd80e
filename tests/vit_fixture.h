/* Test fixture: small random ViT / DeiT checkpoints in Hugging Face layout (config.json +
 * model.safetensors written with fipsc's safetensors writer), optionally spoilt, for the ViT
 * tests. Header-only (static functions); include it from one test file each. */
#ifndef FIPSC_TESTS_VIT_FIXTURE_H
#define FIPSC_TESTS_VIT_FIXTURE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/safetensors.h"
#include "testutil.h"

typedef struct vit_spec {
    const char *arch; /* "ViTForImageClassification", "DeiTForImageClassification(WithTeacher)" */
    int d, layers, heads, f;
    int image_h, image_w, patch_h, patch_w; /* written as an integer when h == w */
    int channels, labels;
    bool qkv_bias;
    const char *act; /* hidden_act */
    unsigned seed;
} vit_spec;

typedef struct fx_tensor {
    char name[256];
    int ndim;
    int64_t shape[4];
    float *data;
} fx_tensor;

typedef struct vit_fixture {
    vit_spec spec;
    const char *prefix; /* "vit" or "deit" */
    int n_prefix;       /* 1 or 2 tokens before the patches */
    bool teacher;
    int n;
    fx_tensor t[512];
} vit_fixture;

/* How to spoil a checkpoint while writing it. */
typedef struct vit_spoil {
    const char *skip;      /* leave this tensor out */
    const char *reshape;   /* write this tensor with its first dimension one larger */
    const char *poison;    /* put NaN at flat index 0 of this tensor */
    const char *extra;     /* add a copy of the first tensor under this name */
    const char *config_from, *config_to; /* replace text in config.json */
} vit_spoil;

static uint64_t fx_rng_state;

static float fx_uniform(void) /* in [-1, 1) */
{
    fx_rng_state = fx_rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((fx_rng_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

static fx_tensor *fx_add(vit_fixture *fx, const char *name, int ndim, int64_t d0, int64_t d1,
                         int64_t d2, int64_t d3, float scale, float offset)
{
    fx_tensor *t = &fx->t[fx->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    int64_t dims[4] = {d0, d1, d2, d3}, numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = dims[i];
        numel *= dims[i];
    }
    t->data = malloc((size_t)numel * sizeof(float));
    for (int64_t i = 0; i < numel; i++) t->data[i] = offset + scale * fx_uniform();
    return t;
}

static inline const fx_tensor *fx_find(const vit_fixture *fx, const char *name)
{
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->t[i].name, name) == 0) return &fx->t[i];
    fprintf(stderr, "test bug: fixture has no tensor %s\n", name);
    exit(2);
}

/* "<prefix>.encoder.layer.<l>.<suffix>" */
static inline const float *fx_layer(const vit_fixture *fx, int l, const char *suffix)
{
    char name[160];
    snprintf(name, sizeof name, "%s.encoder.layer.%d.%s", fx->prefix, l, suffix);
    return fx_find(fx, name)->data;
}

static void fx_linear(vit_fixture *fx, const char *base, int out, int in, bool bias)
{
    char name[200];
    float s = 1.0f / sqrtf((float)in);
    snprintf(name, sizeof name, "%s.weight", base);
    fx_add(fx, name, 2, out, in, 0, 0, s, 0.0f);
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", base);
        fx_add(fx, name, 1, out, 0, 0, 0, 0.1f, 0.0f);
    }
}

static void fx_norm(vit_fixture *fx, const char *base, int d)
{
    char name[200];
    snprintf(name, sizeof name, "%s.weight", base);
    fx_add(fx, name, 1, d, 0, 0, 0, 0.2f, 1.0f);
    snprintf(name, sizeof name, "%s.bias", base);
    fx_add(fx, name, 1, d, 0, 0, 0, 0.1f, 0.0f);
}

/* Random weights for spec (deterministic in spec.seed). */
static void fx_build(vit_fixture *fx, const vit_spec *spec)
{
    memset(fx, 0, sizeof *fx);
    fx->spec = *spec;
    fx_rng_state = spec->seed * 2654435761ULL + 1;
    bool deit = strncmp(spec->arch, "DeiT", 4) == 0;
    fx->prefix = deit ? "deit" : "vit";
    fx->n_prefix = deit ? 2 : 1;
    fx->teacher = strstr(spec->arch, "WithTeacher") != NULL;
    int d = spec->d, gh = spec->image_h / spec->patch_h, gw = spec->image_w / spec->patch_w;
    int T = fx->n_prefix + gh * gw;
    char name[160];
    snprintf(name, sizeof name, "%s.embeddings.cls_token", fx->prefix);
    fx_add(fx, name, 3, 1, 1, d, 0, 0.5f, 0.0f);
    if (deit) {
        snprintf(name, sizeof name, "%s.embeddings.distillation_token", fx->prefix);
        fx_add(fx, name, 3, 1, 1, d, 0, 0.5f, 0.0f);
    }
    snprintf(name, sizeof name, "%s.embeddings.position_embeddings", fx->prefix);
    fx_add(fx, name, 3, 1, T, d, 0, 0.3f, 0.0f);
    snprintf(name, sizeof name, "%s.embeddings.patch_embeddings.projection.weight", fx->prefix);
    fx_add(fx, name, 4, d, spec->channels, spec->patch_h, spec->patch_w,
           1.0f / sqrtf((float)(spec->channels * spec->patch_h * spec->patch_w)), 0.0f);
    snprintf(name, sizeof name, "%s.embeddings.patch_embeddings.projection.bias", fx->prefix);
    fx_add(fx, name, 1, d, 0, 0, 0, 0.1f, 0.0f);
    for (int l = 0; l < spec->layers; l++) {
        char base[128];
#define FX_BASE(s) (snprintf(base, sizeof base, "%s.encoder.layer.%d.%s", fx->prefix, l, s), base)
        fx_norm(fx, FX_BASE("layernorm_before"), d);
        fx_linear(fx, FX_BASE("attention.attention.query"), d, d, spec->qkv_bias);
        fx_linear(fx, FX_BASE("attention.attention.key"), d, d, spec->qkv_bias);
        fx_linear(fx, FX_BASE("attention.attention.value"), d, d, spec->qkv_bias);
        fx_linear(fx, FX_BASE("attention.output.dense"), d, d, true);
        fx_norm(fx, FX_BASE("layernorm_after"), d);
        fx_linear(fx, FX_BASE("intermediate.dense"), spec->f, d, true);
        fx_linear(fx, FX_BASE("output.dense"), d, spec->f, true);
#undef FX_BASE
    }
    snprintf(name, sizeof name, "%s.layernorm", fx->prefix);
    fx_norm(fx, name, d);
    if (fx->teacher) {
        fx_linear(fx, "cls_classifier", spec->labels, d, true);
        fx_linear(fx, "distillation_classifier", spec->labels, d, true);
    } else {
        fx_linear(fx, "classifier", spec->labels, d, true);
    }
}

static void fx_free(vit_fixture *fx)
{
    for (int i = 0; i < fx->n; i++) free(fx->t[i].data);
    fx->n = 0;
}

static void fx_write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* config.json text (malloc'ed). Labels are "class<i>". */
static char *fx_config(const vit_fixture *fx, const vit_spoil *sp)
{
    const vit_spec *s = &fx->spec;
    size_t cap = 4096 + (size_t)s->labels * 32;
    char *text = malloc(cap), pair[2][64];
    int pairs[2][2] = {{s->image_h, s->image_w}, {s->patch_h, s->patch_w}};
    for (int i = 0; i < 2; i++) {
        if (pairs[i][0] == pairs[i][1]) snprintf(pair[i], sizeof pair[i], "%d", pairs[i][0]);
        else snprintf(pair[i], sizeof pair[i], "[%d, %d]", pairs[i][0], pairs[i][1]);
    }
    int n = snprintf(text, cap,
                     "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n"
                     "  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
                     "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
                     "  \"hidden_act\": \"%s\",\n  \"layer_norm_eps\": 1e-12,\n"
                     "  \"image_size\": %s,\n  \"patch_size\": %s,\n  \"num_channels\": %d,\n"
                     "  \"qkv_bias\": %s,\n  \"id2label\": {",
                     s->arch, fx->prefix, s->d, s->layers, s->heads, s->f, s->act, pair[0], pair[1],
                     s->channels, s->qkv_bias ? "true" : "false");
    for (int i = 0; i < s->labels; i++)
        n += snprintf(text + n, cap - (size_t)n, "%s\"%d\": \"class%d\"", i ? ", " : "", i, i);
    snprintf(text + n, cap - (size_t)n, "}\n}\n");
    if (sp && sp->config_from) {
        char *at = strstr(text, sp->config_from);
        if (!at) {
            fprintf(stderr, "test bug: '%s' not in config\n%s", sp->config_from, text);
            exit(2);
        }
        size_t len = strlen(text) - strlen(sp->config_from) + strlen(sp->config_to) + 1;
        char *out = malloc(len);
        snprintf(out, len, "%.*s%s%s", (int)(at - text), text, sp->config_to, at + strlen(sp->config_from));
        free(text);
        text = out;
    }
    return text;
}

/* Writes dir/config.json and dir/model.safetensors (dir is created). With config_in_metadata,
 * the config text also goes into __metadata__ "config". */
static void fx_write(const vit_fixture *fx, const char *dir, const vit_spoil *sp, bool config_in_metadata)
{
    mkdir(dir, 0755);
    char path[4200];
    char *config = fx_config(fx, sp);
    test_pathf(path, sizeof path, "%s/config.json", dir);
    fx_write_text(path, config);
    fipsc_st_writer *w = fipsc_st_writer_new();
    fipsc_error err = {0};
    float *spoilt[512] = {0};
    for (int i = 0; i < fx->n; i++) {
        const fx_tensor *t = &fx->t[i];
        if (sp && sp->skip && strcmp(sp->skip, t->name) == 0) continue;
        int64_t shape[4];
        memcpy(shape, t->shape, sizeof shape);
        const float *data = t->data;
        int64_t numel = 1;
        for (int k = 0; k < t->ndim; k++) numel *= t->shape[k];
        if (sp && sp->reshape && strcmp(sp->reshape, t->name) == 0) {
            shape[0]++;
            spoilt[i] = calloc((size_t)(numel / t->shape[0] * shape[0]), sizeof(float));
            data = spoilt[i];
        }
        if (sp && sp->poison && strcmp(sp->poison, t->name) == 0) {
            spoilt[i] = malloc((size_t)numel * sizeof(float));
            memcpy(spoilt[i], t->data, (size_t)numel * sizeof(float));
            spoilt[i][0] = NAN;
            data = spoilt[i];
        }
        if (fipsc_st_writer_add(w, t->name, FIPSC_F32, t->ndim, shape, data, &err)) {
            fprintf(stderr, "writer_add %s: %s\n", t->name, err.message);
            exit(2);
        }
    }
    if (sp && sp->extra &&
        fipsc_st_writer_add(w, sp->extra, FIPSC_F32, fx->t[0].ndim, fx->t[0].shape, fx->t[0].data, &err)) {
        fprintf(stderr, "writer_add %s: %s\n", sp->extra, err.message);
        exit(2);
    }
    if (config_in_metadata) fipsc_st_writer_set_meta(w, "config", config, &err);
    test_pathf(path, sizeof path, "%s/model.safetensors", dir);
    if (fipsc_st_writer_write(w, path, &err)) {
        fprintf(stderr, "writer_write %s: %s\n", path, err.message);
        exit(2);
    }
    fipsc_st_writer_free(w);
    for (int i = 0; i < 512; i++) free(spoilt[i]);
    free(config);
}

#endif
