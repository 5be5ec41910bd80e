/* The GPT-2 family against an independent reference: the logits of a float64 PyTorch forward
 * written from GPT-2's equations (tests/data/gpt2/make_reference.py) for two small random-weight
 * checkpoints, one F32 with GPT2LMHeadModel's names and a separate head, one BF16 with a bare
 * GPT2Model's names, mask buffers, exact GELU and per-layer attention scaling. Then: decoding
 * sessions agree with the batched forward, the export writes back the checkpoint's own bytes,
 * and broken checkpoints fail with messages that name what is wrong. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "families/registry.h"
#include "formats/safetensors.h"
#include "model/family.h"
#include "testutil.h"

/* The float32 forward against the float64 reference: every logit within this fraction of its
 * row's largest |logit| (measured: worst 1.2e-6 on either checkpoint; float32 rounding over three
 * blocks of width 48), and the same most likely token wherever the reference's top two differ by
 * more than that. */
#define REL_TOL 2e-5

static char dir[4096];

static cJSON *read_reference(void)
{
    char path[4200], *text = NULL;
    fipsc_error err;
    test_pathf(path, sizeof path, "%s/reference.json", dir);
    CHECK_OK(fipsc_read_file(path, &text, NULL, &err), &err);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(doc != NULL);
    return doc;
}

/* Compares logits [n, vocab] with the reference row by row; returns the worst relative error. */
static double compare(const char *what, const float *got, const cJSON *want, int n, int vocab)
{
    double worst = 0;
    int argmax_bad = 0;
    for (int i = 0; i < n; i++) {
        const float *g = got + (size_t)i * vocab;
        double scale = 0, best = -INFINITY, second = -INFINITY;
        int best_ref = 0, best_got = 0;
        for (int j = 0; j < vocab; j++) {
            double w = cJSON_GetArrayItem(want, i * vocab + j)->valuedouble;
            scale = fmax(scale, fabs(w));
            if (w > best) second = best, best = w, best_ref = j;
            else if (w > second) second = w;
            if (g[j] > g[best_got]) best_got = j;
        }
        for (int j = 0; j < vocab; j++)
            worst = fmax(worst, fabs(g[j] - cJSON_GetArrayItem(want, i * vocab + j)->valuedouble) / fmax(scale, 1.0));
        if (best - second > REL_TOL * fmax(scale, 1.0) && best_got != best_ref) argmax_bad++;
    }
    CHECK_MSG(worst <= REL_TOL && argmax_bad == 0, "%s: worst relative error %.3g (tolerance %g), %d rows with another argmax",
              what, worst, REL_TOL, argmax_bad);
    printf("%s: worst |logit - reference| / row max %.3g\n", what, worst);
    return worst;
}

static void test_reference(const char *name, const char *path, const cJSON *ref)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(path, &m, &err), &err);
    if (!m) return;
    CHECK(strcmp(m->family->name, "gpt2") == 0);
    const fipsc_lm_ops *lm = fipsc_model_lm(m);
    fipsc_lm_info info;
    lm->info(m, &info);
    const cJSON *seqs = cJSON_GetObjectItem(cJSON_GetObjectItem(ref, name), "tokens");
    const cJSON *logits = cJSON_GetObjectItem(cJSON_GetObjectItem(ref, name), "logits");
    for (int s = 0; s < cJSON_GetArraySize(seqs); s++) {
        const cJSON *seq = cJSON_GetArrayItem(seqs, s);
        const int len = cJSON_GetArraySize(seq);
        int32_t *tokens = malloc((size_t)len * sizeof *tokens);
        float *out = malloc((size_t)len * info.vocab_size * sizeof *out);
        float *step = malloc((size_t)info.vocab_size * sizeof *step);
        for (int i = 0; i < len; i++) tokens[i] = cJSON_GetArrayItem(seq, i)->valueint;
        char what[64];
        snprintf(what, sizeof what, "%s, sequence %d (%d tokens)", name, s, len);
        CHECK_OK(lm->forward(m, tokens, 1, len, out, NULL, &err), &err);
        compare(what, out, cJSON_GetArrayItem(logits, s), len, info.vocab_size);

        /* a session: the first half as one prompt, then one token at a time */
        fipsc_lm_session *sess = NULL;
        CHECK_OK(lm->session_new(m, len, &sess, &err), &err);
        double worst = 0;
        const int half = len / 2;
        for (int i = half - 1; sess && i < len; i++) {
            fipsc_status st = i == half - 1 ? lm->session_prefill(sess, tokens, half, step, &err)
                                            : lm->session_decode(sess, tokens[i], step, &err);
            CHECK_OK(st, &err);
            for (int j = 0; j < info.vocab_size; j++)
                worst = fmax(worst, fabs(step[j] - out[(size_t)i * info.vocab_size + j]));
        }
        /* the same numbers in another batch shape: only GEMM blocking may differ */
        CHECK_MSG(worst <= 1e-4, "%s: session logits differ from the forward's by %g", what, worst);
        if (sess) CHECK_FAILS(lm->session_decode(sess, 0, step, &err), FIPSC_ERR_ARG, "overflows", &err);
        lm->session_free(sess);
        free(tokens);
        free(out);
        free(step);
    }
    fipsc_model_free(m);
}

/* The export is the checkpoint again: the same tensors, names, shapes ([in, out]) and values. */
static void test_export(void)
{
    fipsc_error err = {0};
    char src[4200], out[4200], file[4300], orig_file[4300];
    test_pathf(src, sizeof src, "%s/tiny", dir);
    test_pathf(out, sizeof out, "%s/exported", test_tmpdir("test_gpt2"));
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(src, &m, &err), &err);
    if (!m) return;
    CHECK_OK(m->family->export_dense(m, out, false, &err), &err);
    test_pathf(file, sizeof file, "%s/model.safetensors", out);
    test_pathf(orig_file, sizeof orig_file, "%s/model.safetensors", src);
    fipsc_st_file *a = NULL, *b = NULL;
    CHECK_OK(fipsc_st_open(file, &a, &err), &err);
    CHECK_OK(fipsc_st_open(orig_file, &b, &err), &err);
    if (a && b) {
        CHECK(fipsc_st_count(a) == fipsc_st_count(b));
        for (int i = 0; i < fipsc_st_count(b); i++) {
            const fipsc_st_tensor *tb = fipsc_st_at(b, i);
            const fipsc_st_tensor *ta = fipsc_st_find(a, tb->name);
            CHECK_MSG(ta && ta->ndim == tb->ndim && memcmp(ta->shape, tb->shape, sizeof tb->shape[0] * tb->ndim) == 0 &&
                          ta->nbytes == tb->nbytes && memcmp(ta->data, tb->data, tb->nbytes) == 0,
                      "exported '%s' differs from the checkpoint's", tb->name);
        }
    }
    fipsc_st_close(a);
    fipsc_st_close(b);
    fipsc_model *back = NULL;
    CHECK_OK(fipsc_model_load(out, &back, &err), &err);
    CHECK(back && strcmp(back->family->name, "gpt2") == 0);
    fipsc_model_free(back);
    fipsc_model_free(m);
}

/* A copy of the tiny checkpoint with config text `config` and its tensors changed by `edit`. */
typedef void (*edit_fn)(const char *name, int64_t *shape, int *ndim, float *data, bool *keep);

static void write_variant(const char *path, const char *config, edit_fn edit, const char *extra)
{
    fipsc_error err = {0};
    char src[4200];
    test_pathf(src, sizeof src, "%s/tiny/model.safetensors", dir);
    fipsc_st_file *f = NULL;
    CHECK_OK(fipsc_st_open(src, &f, &err), &err);
    fipsc_st_writer *w = fipsc_st_writer_new();
    CHECK_OK(fipsc_st_writer_set_meta(w, "config", config, &err), &err);
    float **copies = calloc((size_t)fipsc_st_count(f) + 1, sizeof *copies);
    for (int i = 0; f && i < fipsc_st_count(f); i++) {
        const fipsc_st_tensor *t = fipsc_st_at(f, i);
        int64_t shape[FIPSC_MAX_DIMS];
        int ndim = t->ndim;
        memcpy(shape, t->shape, sizeof shape);
        copies[i] = malloc(t->nbytes);
        memcpy(copies[i], t->data, t->nbytes);
        bool keep = true;
        if (edit) edit(t->name, shape, &ndim, copies[i], &keep);
        if (keep) CHECK_OK(fipsc_st_writer_add(w, t->name, FIPSC_F32, ndim, shape, copies[i], &err), &err);
    }
    static float one = 1.0f;
    const int64_t scalar_shape[1] = {1};
    if (extra) CHECK_OK(fipsc_st_writer_add(w, extra, FIPSC_F32, 1, scalar_shape, &one, &err), &err);
    CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_writer_free(w);
    for (int i = 0; f && i < fipsc_st_count(f); i++) free(copies[i]);
    free(copies);
    fipsc_st_close(f);
}

static void drop_c_fc_1(const char *name, int64_t *shape, int *ndim, float *data, bool *keep)
{
    (void)shape, (void)ndim, (void)data;
    *keep = strcmp(name, "transformer.h.1.mlp.c_fc.weight") != 0;
}
static void shrink_c_proj_2(const char *name, int64_t *shape, int *ndim, float *data, bool *keep)
{
    (void)ndim, (void)data, (void)keep;
    if (strcmp(name, "transformer.h.2.attn.c_proj.bias") == 0) shape[0] = 40;
}
static void nan_wpe(const char *name, int64_t *shape, int *ndim, float *data, bool *keep)
{
    (void)shape, (void)ndim, (void)keep;
    if (strcmp(name, "transformer.wpe.weight") == 0) data[7] = NAN;
}

static void expect_failure(const char *config, edit_fn edit, const char *extra, fipsc_status code, const char *needle)
{
    static int n;
    char path[4200];
    test_pathf(path, sizeof path, "%s/broken-%d.safetensors", test_tmpdir("test_gpt2_broken"), n++);
    write_variant(path, config, edit, extra);
    fipsc_model *m = NULL;
    fipsc_error err = {0};
    CHECK_FAILS(fipsc_model_load(path, &m, &err), code, needle, &err);
    fipsc_model_free(m);
}

static void test_errors(void)
{
    char path[4200], *config = NULL;
    fipsc_error err;
    test_pathf(path, sizeof path, "%s/tiny/config.json", dir);
    CHECK_OK(fipsc_read_file(path, &config, NULL, &err), &err);
    if (!config) return;
    /* the unchanged copy loads: every failure below is the change's */
    write_variant(test_pathf(path, sizeof path, "%s/good.safetensors", test_tmpdir("test_gpt2_good")), config, NULL, NULL);
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(path, &m, &err), &err);
    fipsc_model_free(m);
    expect_failure(config, drop_c_fc_1, NULL, FIPSC_ERR_NOT_FOUND, "transformer.h.1.mlp.c_fc.weight");
    expect_failure(config, shrink_c_proj_2, NULL, FIPSC_ERR_SHAPE, "transformer.h.2.attn.c_proj.bias");
    expect_failure(config, nan_wpe, NULL, FIPSC_ERR_NUMERIC, "transformer.wpe.weight");
    expect_failure(config, NULL, "transformer.h.3.ln_1.weight", FIPSC_ERR_FORMAT, "unexpected tensor 'transformer.h.3.ln_1.weight'");
    /* configurations: one key changed each */
    struct { const char *from, *to; fipsc_status code; const char *needle; } cases[] = {
        {"\"n_head\": 4", "\"n_head\": 5", FIPSC_ERR_FORMAT, "n_embd 48 is not a multiple of n_head 5"},
        {"\"n_head\": 4", "\"n_head\": 4, \"add_cross_attention\": true", FIPSC_ERR_UNSUPPORTED, "add_cross_attention"},
        {"\"gelu_new\"", "\"swishy\"", FIPSC_ERR_UNSUPPORTED, "activation_function 'swishy'"},
        {"\"n_layer\": 3", "\"n_layer\": \"3\"", FIPSC_ERR_FORMAT, "key 'n_layer' must be an integer"},
        {"\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": -1", FIPSC_ERR_FORMAT, "layer_norm_epsilon"},
        {"\"n_layer\": 3", "\"n_layer\": 4", FIPSC_ERR_NOT_FOUND, "transformer.h.3.ln_1.weight"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *at = strstr(config, cases[i].from);
        CHECK_MSG(at != NULL, "config.json lacks %s", cases[i].from);
        if (!at) continue;
        char changed[4096];
        snprintf(changed, sizeof changed, "%.*s%s%s", (int)(at - config), config, cases[i].to, at + strlen(cases[i].from));
        expect_failure(changed, NULL, NULL, cases[i].code, cases[i].needle);
    }
    free(config);
}

int main(void)
{
    test_path(dir, sizeof dir, "FIPSC_SOURCE_DIR", "tests/data/gpt2");
    cJSON *ref = read_reference();
    char tiny[4200], bare[4200];
    test_reference("tiny", test_pathf(tiny, sizeof tiny, "%s/tiny", dir), ref);
    test_reference("bare", test_pathf(bare, sizeof bare, "%s/bare.safetensors", dir), ref);
    cJSON_Delete(ref);
    test_export();
    test_errors();
    return test_summary("test_gpt2");
}
