/* FiPS on the Universal Sentence Encoder Lite: calibration sentences and their capture, a short
 * compression, the compressed file (written, read back without densifying, embedding like its
 * dense reconstruction), and the comparison with the original (src/compress/calibration.h,
 * use_compare.h, families/use/compressed.h). Kept small and fast: few sentences and steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "compress/compress.h"
#include "model/compressed.h"
#include "ops/factored.h"
#include "core/file.h"
#include "ops/mlp_forward.h"
#include "families/use/use.h"
#include "compress/calibration.h"
#include "eval/embedding_compare.h"
#include "families/use/compressed.h"
#include "use_testdata.h"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_sentences_read(const char *dir)
{
    fipsc_error err = {0};
    char path[4200];
    fipsc_sentences s;

    /* STS layout: both sentences of every pair, pair by pair; a blank line does not count; CRLF;
     * a row with an extra column */
    test_pathf(path, sizeof path, "%s/pairs.tsv", dir);
    write_text(path, "g\tf\t2012\t1\t5.0\tA man plays.\tA man is playing.\r\n"
                     "\n"
                     "g\tf\t2012\t2\t1.5\tA cat sits.\tDogs run.\textra\r\n");
    CHECK_OK(fipsc_sentences_read(path, &s, &err), &err);
    CHECK(s.n == 4);
    if (s.n == 4) {
        CHECK(strcmp(s.text[0], "A man plays.") == 0 && strcmp(s.text[1], "A man is playing.") == 0);
        CHECK(strcmp(s.text[2], "A cat sits.") == 0 && strcmp(s.text[3], "Dogs run.") == 0);
        CHECK(s.line[0] == 1 && s.line[1] == 1 && s.line[2] == 3 && s.line[3] == 3);
    }
    fipsc_sentences_free(&s);

    /* text: one sentence a line, CR dropped, blank (or whitespace-only) lines skipped */
    test_pathf(path, sizeof path, "%s/lines.txt", dir);
    write_text(path, "First one.\r\n\n   \nSecond, with \"quotes\".\nlast without newline");
    CHECK_OK(fipsc_sentences_read(path, &s, &err), &err);
    CHECK(s.n == 3);
    if (s.n == 3) {
        CHECK(strcmp(s.text[0], "First one.") == 0 && s.line[0] == 1);
        CHECK(strcmp(s.text[1], "Second, with \"quotes\".") == 0 && s.line[1] == 4);
        CHECK(strcmp(s.text[2], "last without newline") == 0 && s.line[2] == 5);
    }
    fipsc_sentences_free(&s);

    test_pathf(path, sizeof path, "%s/empty.txt", dir);
    write_text(path, "\n \n");
    CHECK_FAILS(fipsc_sentences_read(path, &s, &err), FIPSC_ERR_FORMAT, "no sentences", &err);
    test_pathf(path, sizeof path, "%s/bad.tsv", dir);
    write_text(path, "g\tf\t2012\t1\tfive\tA.\tB.\n");
    CHECK_FAILS(fipsc_sentences_read(path, &s, &err), FIPSC_ERR_FORMAT, "line 1", &err);
    test_pathf(path, sizeof path, "%s/missing.txt", dir);
    CHECK(fipsc_sentences_read(path, &s, &err) != FIPSC_OK);
}

/* Kept tokens of every sentence, summed. */
static int64_t kept_tokens(const fipsc_model *m, const fipsc_sentences *s)
{
    fipsc_error err = {0};
    int64_t total = 0;
    for (int i = 0; i < s->n; i++) {
        int32_t *ids = NULL;
        int n = 0;
        CHECK_OK(fipsc_use_tokenize(m, s->text[i], strlen(s->text[i]), &ids, &n, &err), &err);
        total += n < fipsc_model_use(m)->max_tokens ? n : fipsc_model_use(m)->max_tokens;
        free(ids);
    }
    return total;
}

static void test_capture(const fipsc_model *m, const fipsc_sentences *s)
{
    fipsc_error err = {0};
    fipsc_capture cap;
    fipsc_calibration cal;
    CHECK_OK(fipsc_calibration_capture_sentences(m, s, "sts-small", NULL, 0, 0, 1, &cap, &cal, &err), &err);
    const int64_t tokens = kept_tokens(m, s);
    CHECK(cal.n_blocks == 2 && cal.n_sequences == s->n);
    for (int l = 0; l < cal.n_blocks; l++) {
        const fipsc_fips_calib *c = &cal.blocks[l];
        CHECK_MSG(c->n == tokens, "block %d: %lld rows, %lld kept tokens", l, (long long)c->n, (long long)tokens);
        /* y is the MLP of x */
        float *y = malloc((size_t)c->n * 512 * sizeof *y);
        CHECK_OK(fipsc_mlp_forward(m->mlps[l], (int)c->n, c->x, y, NULL, &err), &err);
        double worst = 0, scale = 0;
        for (int64_t e = 0; e < c->n * 512; e++) {
            worst = fmax(worst, fabs((double)y[e] - c->y[e]));
            scale = fmax(scale, fabs((double)c->y[e]));
        }
        CHECK_MSG(worst <= 1e-5 * scale, "block %d: |MLP(x) - y| %g of %g", l, worst, scale);
        free(y);
    }
    fipsc_calibration_free(&cal);
    fipsc_capture_free(&cap);

    /* a row budget: whole sentences, at most that many rows, the same for the same seed */
    int64_t rows[3];
    int seqs[3];
    const uint64_t seeds[3] = {7, 7, 8};
    for (int k = 0; k < 3; k++) {
        int one[1] = {1};
        CHECK_OK(fipsc_calibration_capture_sentences(m, s, "sts-small", one, 1, 200, seeds[k], &cap, &cal, &err), &err);
        rows[k] = cal.blocks[1].n;
        seqs[k] = cal.n_sequences;
        CHECK(cal.blocks[0].n == 0); /* block 0 not asked for */
        CHECK(rows[k] > 100 && rows[k] <= 200 && seqs[k] < s->n);
        fipsc_calibration_free(&cal);
        fipsc_capture_free(&cap);
    }
    CHECK(rows[0] == rows[1] && seqs[0] == seqs[1]);
    CHECK(rows[0] != rows[2] || seqs[0] != seqs[2]);

    CHECK_FAILS(fipsc_calibration_capture_sentences(m, s, "sts-small", NULL, 0, 3, 1, &cap, &cal, &err), FIPSC_ERR_ARG,
                "no sentence fits", &err);
}

/* Embeddings of texts [n, 512]. */
static float *embed(const fipsc_model *m, int n, const char *const *texts)
{
    fipsc_error err = {0};
    float *e = malloc((size_t)n * 512 * sizeof *e);
    CHECK_OK(fipsc_use_embed(m, n, texts, NULL, e, &err), &err);
    return e;
}

/* max |a - b| / max |b| */
static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return diff / scale;
}

static fipsc_model *load_original(void)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(use_model_dir(), &m, &err), &err);
    return m;
}

/* Compresses a fresh copy of the encoder with `method`; the copy, or NULL. */
static fipsc_model *compress(fipsc_compress_method method, const fipsc_calibration *cal, double out_err[2])
{
    fipsc_error err = {0};
    fipsc_model *m = load_original();
    if (!m) return NULL;
    fipsc_compress_options o;
    fipsc_compress_defaults_for(&o, &fipsc_family_use);
    o.method = method;
    o.budget = 0.25;
    o.schedule = FIPSC_FIPS_MASK_STATIC; /* pruned once: fips starts where fips-init stays */
    o.steps = 25;
    o.batch_rows = 128;
    o.lr = 3e-3f;
    o.lr_min = 3e-5f;
    fipsc_compress_report *rep = NULL;
    CHECK_OK(fipsc_compress_run(m, cal, &o, NULL, NULL, &rep, &err), &err);
    if (!rep) {
        fipsc_model_free(m);
        return NULL;
    }
    CHECK(rep->n_groups == 1 && rep->groups[0].n_mlps == 2);
    for (int j = 0; j < 2; j++) out_err[j] = rep->groups[0].mlps[j].out_err_after;
    if (method == FIPSC_METHOD_FIPS)
        for (int j = 0; j < 2; j++) {
            printf("fips block %d: calibration error %.4f -> %.4f\n", j, rep->groups[0].mlps[j].out_err_before,
                   rep->groups[0].mlps[j].out_err_after);
            CHECK_MSG(rep->groups[0].mlps[j].out_err_after < rep->groups[0].mlps[j].out_err_before,
                      "block %d: calibration error %g after training, %g before", j,
                      rep->groups[0].mlps[j].out_err_after, rep->groups[0].mlps[j].out_err_before);
        }
    CHECK(rep->mlp_kept_params <= (int64_t)(0.25 * 3145728));
    fipsc_compress_report_free(rep);
    return m;
}

static void test_compress_and_file(const fipsc_model *orig, const char *dir)
{
    fipsc_error err = {0};
    fipsc_capture cap;
    fipsc_calibration cal;
    fipsc_sentences train;
    char path[4200];
    /* ~3000 rows of STS-B train sentences: a few hundred sentences drawn from the whole file */
    CHECK_OK(fipsc_sentences_read(test_path(path, sizeof path, "FIPSC_SHARED_DIR", "data/sts-b-train.tsv"), &train,
                                  &err),
             &err);
    CHECK_OK(fipsc_calibration_capture_sentences(orig, &train, "sts-b-train", NULL, 0, 3000, 1, &cap, &cal, &err), &err);
    fipsc_sentences_free(&train);
    double fips_train[2] = {0}, init_train[2] = {0};
    fipsc_model *fips = compress(FIPSC_METHOD_FIPS, &cal, fips_train);
    fipsc_model *init = compress(FIPSC_METHOD_FIPS_INIT, &cal, init_train);
    fipsc_calibration_free(&cal);
    fipsc_capture_free(&cap);
    if (!fips || !init) {
        fipsc_model_free(fips);
        fipsc_model_free(init);
        return;
    }

    /* held-out sentences (the golden set, not the calibration pairs) */
    cJSON *list = use_sentences_json();
    int n = cJSON_GetArraySize(list) < 64 ? cJSON_GetArraySize(list) : 64;
    const char **texts = malloc((size_t)n * sizeof *texts);
    for (int i = 0; i < n; i++) texts[i] = cJSON_GetStringValue(cJSON_GetArrayItem(list, i));

    /* trained FiPS reproduces the original MLPs better than its untrained initialisation, also on
     * sentences it was not trained on */
    fipsc_embedding_comparison cf, ci, self;
    CHECK_OK(fipsc_embedding_compare(orig, fips, n, texts, NULL, &cf, &err), &err);
    CHECK_OK(fipsc_embedding_compare(orig, init, n, texts, NULL, &ci, &err), &err);
    CHECK_OK(fipsc_embedding_compare(orig, orig, n, texts, NULL, &self, &err), &err);
    if (cf.n_mlps == 2 && ci.n_mlps == 2 && self.n_mlps == 2) {
        printf("held-out MLP error: fips %.4f %.4f, fips-init %.4f %.4f; mean cosine fips %.5f, fips-init %.5f\n",
               cf.mlp_rel_err[0], cf.mlp_rel_err[1], ci.mlp_rel_err[0], ci.mlp_rel_err[1], cf.mean_cosine,
               ci.mean_cosine);
        for (int l = 0; l < 2; l++) {
            CHECK_MSG(cf.mlp_rel_err[l] < ci.mlp_rel_err[l], "block %d: fips %g, fips-init %g", l,
                      cf.mlp_rel_err[l], ci.mlp_rel_err[l]);
            CHECK(cf.mlp_rel_err[l] > 0 && self.mlp_rel_err[l] < 1e-5);
        }
        CHECK(cf.mean_cosine > ci.mean_cosine && cf.mean_cosine < 1 && cf.min_cosine <= cf.mean_cosine);
        CHECK_NEAR(self.mean_cosine, 1.0, 1e-6);
        CHECK(cf.sentences == n && cf.rows > n);
    }
    fipsc_embedding_comparison_free(&cf);
    fipsc_embedding_comparison_free(&ci);
    fipsc_embedding_comparison_free(&self);

    /* the compressed file: written, read back with factored MLPs (no dense MLP weight), the same
     * embeddings as in memory, and those of its dense reconstruction within 1e-4 relative */
    test_pathf(path, sizeof path, "%s/use-fips.safetensors", dir);
    CHECK_OK(fipsc_compressed_write(fips, path, NULL, &err), &err);
    CHECK(fipsc_compressed_is_file(path));
    fipsc_model *back = NULL;
    CHECK_OK(fipsc_model_load(path, &back, &err), &err);
    if (back) {
        CHECK(fipsc_model_use(back) != NULL && fipsc_model_factored_count(back) == 4);
        for (int l = 0; l < back->n_mlps; l++) {
            CHECK(back->mlps[l]->up.factored && !back->mlps[l]->up.w);
            CHECK(back->mlps[l]->down.factored && !back->mlps[l]->down.w);
        }
        CHECK(fipsc_model_find(back, "encoder.layer.0.mlp.fc1.weight") == NULL);
        float *e_mem = embed(fips, n, texts), *e_file = embed(back, n, texts);
        CHECK(memcmp(e_mem, e_file, (size_t)n * 512 * sizeof(float)) == 0);
        CHECK_OK(fipsc_model_densify(back, &err), &err);
        CHECK(fipsc_model_factored_count(back) == 0 && back->mlps[1]->down.w != NULL);
        float *e_dense = embed(back, n, texts);
        double rel = max_rel_diff(e_file, e_dense, (size_t)n * 512);
        printf("compressed vs its dense reconstruction: max |diff| / max |e| = %.3g\n", rel);
        CHECK_MSG(rel <= 1e-4, "%g", rel);
        free(e_mem);
        free(e_file);
        free(e_dense);
        fipsc_model_free(back);
    }
    free(texts);
    cJSON_Delete(list);
    fipsc_model_free(fips);
    fipsc_model_free(init);
}

/* The format's configuration entry: configuration and vocabulary, both required. */
static void test_config_entry(const fipsc_model *orig)
{
    fipsc_error err = {0};
    char *text = NULL;
    CHECK_OK(use_cf_config_to_json(orig, &text, &err), &err);
    fipsc_model *m = fipsc_model_new();
    CHECK_OK(use_cf_config_from_json(m, text, "entry", &err), &err);
    const fipsc_use *u = fipsc_model_use(m);
    CHECK(u && u->tokenizer && u->n_layers == 2 && u->hidden == 1536);
    CHECK(use_cf_is_tensor(m, "encoder.layer.1.mlp.fc2.weight") && !use_cf_is_tensor(m, "encoder.layer.2.mlp.fc2.weight"));
    CHECK(u && u->vocab_json_len == fipsc_model_use(orig)->vocab_json_len &&
          memcmp(u->vocab_json, fipsc_model_use(orig)->vocab_json, u->vocab_json_len) == 0);
    fipsc_model_free(m);

    cJSON *root = cJSON_Parse(text);
    cJSON_DeleteItemFromObject(root, FIPSC_USE_METADATA_VOCAB_KEY);
    char *no_vocab = cJSON_PrintUnformatted(root);
    m = fipsc_model_new();
    CHECK_FAILS(use_cf_config_from_json(m, no_vocab, "entry", &err), FIPSC_ERR_FORMAT, "sentencepiece_vocab", &err);
    fipsc_model_free(m);
    cJSON_free(no_vocab);
    cJSON_Delete(root);
    free(text);
}

int main(void)
{
    const char *dir = test_tmpdir("test_use_compress");
    test_sentences_read(dir);
    fipsc_model *orig = load_original();
    if (!orig) return test_summary("test_use_compress");
    char path[4096];
    fipsc_sentences s;
    fipsc_error err = {0};
    CHECK_OK(fipsc_sentences_read(test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "tests/data/sts-small.tsv"), &s,
                                  &err),
             &err);
    test_capture(orig, &s);
    test_config_entry(orig);
    test_compress_and_file(orig, dir);

    /* not a sentence encoder */
    fipsc_model *llama = NULL;
    CHECK_OK(fipsc_model_load(test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "models/stories260K.bin"), &llama, &err),
             &err);
    fipsc_capture cap;
    fipsc_calibration cal;
    if (llama)
        CHECK_FAILS(fipsc_calibration_capture_sentences(llama, &s, "x", NULL, 0, 0, 1, &cap, &cal, &err),
                    FIPSC_ERR_UNSUPPORTED, "sentence encoder", &err);
    fipsc_model_free(llama);
    fipsc_sentences_free(&s);
    fipsc_model_free(orig);
    return test_summary("test_use_compress");
}
