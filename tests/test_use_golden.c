/* The sentence encoder against its JavaScript client: the embeddings of the committed golden
 * sentences (tests/data/use-golden.*) within 1e-4, loaded from the TF.js model and from its
 * imported safetensors form; plus what the compressor relies on (the MLP list, capture). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama.h"
#include "families/registry.h"
#include "ops/mlp_forward.h"
#include "model/model.h"
#include "core/threads.h"
#include "families/use/use.h"
#include "testutil.h"
#include "use_testdata.h"

#define DIM 512

static float *read_golden_embeddings(int n)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "tests/data/use-golden.f32");
    char *bytes;
    size_t size;
    fipsc_error err = {0};
    if (fipsc_read_file(path, &bytes, &size, &err) || size != (size_t)n * DIM * sizeof(float)) {
        fprintf(stderr, "%s: %s (expected %d embeddings)\n", path, err.message, n);
        exit(1);
    }
    return (float *)bytes;
}

/* Largest |a - b| over n·DIM values. */
static double max_abs_diff(const float *a, const float *b, int n)
{
    double worst = 0;
    for (size_t i = 0; i < (size_t)n * DIM; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d; /* NaN propagates */
    }
    return worst;
}

static float *embed_all(const fipsc_model *m, const cJSON *sentences, int n)
{
    const char **texts = calloc((size_t)n, sizeof *texts);
    float *out = calloc((size_t)n * DIM, sizeof *out);
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sentences) texts[i++] = cJSON_GetStringValue(s);
    fipsc_error err = {0};
    CHECK_OK(fipsc_use_embed(m, n, texts, NULL, out, &err), &err);
    free(texts);
    return out;
}

/* Captures both MLPs over all sentences (several chunks) with 1 and with 2 threads: the same rows
 * in the same order. */
static void check_capture_threads(const fipsc_model *m, const cJSON *sentences, int n)
{
    fipsc_error err = {0};
    int32_t **ids = calloc((size_t)n, sizeof *ids);
    int *lens = calloc((size_t)n, sizeof *lens), i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sentences) {
        const char *t = cJSON_GetStringValue(s);
        CHECK_OK(fipsc_use_tokenize(m, t, strlen(t), &ids[i], &lens[i], &err), &err);
        i++;
    }
    float *out = malloc((size_t)n * DIM * sizeof *out);
    fipsc_capture cap[2];
    int layers[] = {1, 0}, expected = 0;
    for (i = 0; i < n; i++) expected += lens[i] < 128 ? lens[i] : 128;
    for (int run = 0; run < 2; run++) {
        fipsc_threads_set(run + 1);
        CHECK_OK(fipsc_capture_init(&cap[run], m, layers, 2, 0, &err), &err);
        CHECK_OK(fipsc_use_encode(m, n, (const int32_t *const *)ids, lens, out, &cap[run], &err), &err);
    }
    for (int l = 0; l < 2; l++) {
        CHECK(cap[0].layers[l].rows == expected && cap[1].layers[l].rows == expected);
        size_t bytes = (size_t)expected * DIM * sizeof(float);
        CHECK(memcmp(cap[0].layers[l].x, cap[1].layers[l].x, bytes) == 0);
        CHECK(memcmp(cap[0].layers[l].y, cap[1].layers[l].y, bytes) == 0);
    }
    /* rows in sentence order: the first captured row of layer 0 is sentence 0's first token, whose
     * MLP input is what the first sentence alone gives */
    fipsc_capture alone;
    int l0[] = {0};
    CHECK_OK(fipsc_capture_init(&alone, m, l0, 1, 0, &err), &err);
    CHECK_OK(fipsc_use_encode(m, 1, (const int32_t *const *)ids, lens, out, &alone, &err), &err);
    double dx = 0;
    for (int j = 0; j < lens[0] * DIM; j++) dx = fmax(dx, fabs((double)alone.layers[0].x[j] - cap[0].layers[1].x[j]));
    CHECK_MSG(dx <= 1e-5, "first sentence's captured rows differ by %.3g", dx);
    fipsc_capture_free(&alone);
    fipsc_capture_free(&cap[0]);
    fipsc_capture_free(&cap[1]);
    for (i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    free(out);
}

static void check_mlp_list_and_capture(const fipsc_model *m)
{
    const fipsc_use *u = fipsc_model_use(m);
    CHECK(m->n_mlps == 2);
    for (int l = 0; l < m->n_mlps && l < 2; l++) {
        const fipsc_mlp *mlp = m->mlps[l];
        CHECK(mlp == &u->layers[l].mlp);
        CHECK(mlp->kind == FIPSC_MLP_PLAIN && mlp->act == FIPSC_ACT_RELU);
        CHECK(mlp->d == 512 && mlp->f == 1536);
        CHECK(mlp->up.out == 1536 && mlp->up.in == 512 && mlp->up.bias && mlp->up.w);
        CHECK(mlp->down.out == 512 && mlp->down.in == 1536 && mlp->down.bias && mlp->down.w);
        CHECK(mlp->up.weight_name && strstr(mlp->up.weight_name, "mlp.fc1.weight"));
    }
    fipsc_param_counts pc = fipsc_model_count_params(m);
    CHECK_MSG(pc.mlp == 4LL * 512 * 1536, "mlp params %lld", pc.mlp);

    /* Capture both MLPs over three sentences: one row per kept token, y = MLP(x). */
    fipsc_error err = {0};
    const char *texts[] = {"A man is playing a guitar.", "", "Two dogs run."};
    int32_t *ids[3];
    int lens[3], total = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(fipsc_use_tokenize(m, texts[i], strlen(texts[i]), &ids[i], &lens[i], &err), &err);
        total += lens[i];
    }
    fipsc_capture cap;
    int layers[] = {0, 1};
    CHECK_OK(fipsc_capture_init(&cap, m, layers, 2, 0, &err), &err);
    float out[3 * DIM], plain[3 * DIM];
    CHECK_OK(fipsc_use_encode(m, 3, (const int32_t *const *)ids, lens, out, &cap, &err), &err);
    CHECK_OK(fipsc_use_encode(m, 3, (const int32_t *const *)ids, lens, plain, NULL, &err), &err);
    /* Without capture the last layer's fc2 runs on pooled activations: the same maths, rounded
     * differently. */
    double dcap = 0;
    for (int i = 0; i < 3 * DIM; i++) dcap = fmax(dcap, fabs((double)out[i] - plain[i]));
    /* components of unit vectors, ~0.04; rounding moves them by ~1e-7, by more with other BLAS
     * kernels (the GEMM shapes differ): 1e-5 */
    CHECK_MSG(dcap <= 1e-5, "capture changes the embeddings by %.3g", dcap);
    for (int l = 0; l < 2; l++) {
        fipsc_capture_layer *cl = &cap.layers[l];
        CHECK_MSG(cl->rows == total, "layer %d captured %lld rows, expected %d", l, (long long)cl->rows, total);
        float *y = malloc((size_t)cl->rows * DIM * sizeof *y);
        CHECK_OK(fipsc_mlp_forward(m->mlps[l], (int)cl->rows, cl->x, y, NULL, &err), &err);
        /* the encoder's fc2 skips the zeros of the ReLU: the same sum, in another order */
        double dy = 0, ymax = 0;
        for (size_t i = 0; i < (size_t)cl->rows * DIM; i++) {
            dy = fmax(dy, fabs((double)y[i] - cl->y[i]));
            ymax = fmax(ymax, fabs((double)y[i]));
        }
        CHECK_MSG(ymax > 0 && dy <= 1e-5 * ymax, "layer %d: captured y differs from MLP(x) by %.3g (max |y| %.3g)",
                  l, dy, ymax);
        free(y);
    }
    fipsc_capture_free(&cap);
    /* An id outside the embedding table is refused. */
    int32_t bad_ids[] = {5, 9000};
    const int32_t *bad[] = {bad_ids};
    int bad_len = 2;
    CHECK_FAILS(fipsc_use_encode(m, 1, bad, &bad_len, out, NULL, &err), FIPSC_ERR_ARG, "id 9000", &err);
    for (int i = 0; i < 3; i++) free(ids[i]);
}

int main(void)
{
    cJSON *sentences = use_sentences_json(), *golden = use_golden_json();
    const int n = cJSON_GetArraySize(sentences);
    CHECK(n >= 200 && cJSON_GetObjectItem(golden, "count")->valueint == n);
    float *want = read_golden_embeddings(n);
    fipsc_error err = {0};

    /* 1. the TF.js model, through the generic loader */
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(use_model_dir(), &m, &err), &err);
    if (!m) return test_summary("test_use_golden");
    CHECK(m->family == &fipsc_family_use && fipsc_model_use(m) != NULL);
    const fipsc_use *u = fipsc_model_use(m);
    CHECK(u->dim == 512 && u->hidden == 1536 && u->n_layers == 2 && u->vocab_size == 8002);
    CHECK(u->embed_dim == 256 && u->n_heads == 4 && u->max_tokens == 128);
    CHECK(u->layers[0].head_dim == 64 && u->layers[1].head_dim == 128);
    CHECK(u->layers[0].has_residual_projection && !u->layers[1].has_residual_projection);
    CHECK_NEAR(u->ln_eps, 1e-6, 1e-12);
    CHECK_NEAR(u->l2_eps, 1e-12, 1e-18);
    float *got = embed_all(m, sentences, n);
    double worst = max_abs_diff(got, want, n);
    printf("TF.js model: max |delta| against the JavaScript client over %d sentences: %.3g\n", n, worst);
    CHECK_MSG(worst <= 1e-4, "max |delta| %.3g > 1e-4", worst);
    for (int i = 0; i < n; i++) {
        double one = max_abs_diff(got + (size_t)i * DIM, want + (size_t)i * DIM, 1);
        if (one > 1e-4) fprintf(stderr, "  sentence %d: max |delta| %.3g\n", i, one);
    }

    /* The thread count changes nothing, not even the last bit (BLAS runs single-threaded per
     * chunk, chunks are cut by the input alone), and neither does it change captured rows. */
    fipsc_threads_set(1);
    float *got1 = embed_all(m, sentences, n);
    CHECK(memcmp(got, got1, (size_t)n * DIM * sizeof *got) == 0);
    free(got1);
    check_capture_threads(m, sentences, n);
    fipsc_threads_set(2);

    /* Embedding one sentence alone gives (nearly) what it gets in a batch. */
    const char *one_text[] = {cJSON_GetStringValue(cJSON_GetArrayItem(sentences, 3))};
    float one[DIM];
    CHECK_OK(fipsc_use_embed(m, 1, one_text, NULL, one, &err), &err);
    CHECK(max_abs_diff(one, got + 3 * DIM, 1) <= 1e-5); /* other GEMM shapes: other rounding */
    check_mlp_list_and_capture(m);

    /* 2. written as safetensors and loaded back: the same numbers, bit for bit */
    char path[4200];
    test_pathf(path, sizeof path, "%s/use.safetensors", test_tmpdir("test_use_golden"));
    CHECK_OK(fipsc_use_write_safetensors(m, path, &err), &err);
    fipsc_model *m2 = NULL;
    CHECK_OK(fipsc_model_load(path, &m2, &err), &err);
    if (m2) {
        CHECK(m2->family == &fipsc_family_use && m2->n_tensors == m->n_tensors);
        float *got2 = embed_all(m2, sentences, n);
        CHECK(memcmp(got, got2, (size_t)n * DIM * sizeof *got) == 0);
        free(got2);
        fipsc_model_free(m2);
    }
    free(got);
    fipsc_model_free(m);
    free(want);
    cJSON_Delete(sentences);
    cJSON_Delete(golden);
    return test_summary("test_use_golden");
}
