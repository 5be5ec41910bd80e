/* STS evaluation: the correlations on hand-computed cases, reading STS files (CRLF, extra columns,
 * errors), and agreement with the JavaScript client on a small committed file and on STS-B dev
 * (tests/data/use-golden.json: Spearman, Pearson and a fingerprint of the client's tokens). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "eval/sts.h"
#include "families/use/use.h"
#include "testutil.h"
#include "use_testdata.h"

static void test_correlations(void)
{
    fipsc_error err = {0};
    double ranks[5];
    const double v[] = {10, 20, 20, 30};
    CHECK_OK(fipsc_average_ranks(v, 4, ranks, &err), &err);
    CHECK(ranks[0] == 1 && ranks[1] == 2.5 && ranks[2] == 2.5 && ranks[3] == 4);
    const double same[] = {3, 3, 3};
    CHECK_OK(fipsc_average_ranks(same, 3, ranks, &err), &err);
    CHECK(ranks[0] == 2 && ranks[1] == 2 && ranks[2] == 2);
    const double unsorted[] = {0.3, -1, 0.3, 7, -1};
    CHECK_OK(fipsc_average_ranks(unsorted, 5, ranks, &err), &err);
    CHECK(ranks[0] == 3.5 && ranks[1] == 1.5 && ranks[2] == 3.5 && ranks[3] == 5 && ranks[4] == 1.5);

    /* Pearson of [1,2,3] and [2,4,7]: 5 / sqrt(2 · 114/9) */
    const double x3[] = {1, 2, 3}, y3[] = {2, 4, 7};
    CHECK_NEAR(fipsc_pearson(x3, y3, 3), 0.9933992677987828, 1e-15);
    const double neg[] = {3, 2, 1};
    CHECK_NEAR(fipsc_pearson(x3, neg, 3), -1.0, 1e-15);
    CHECK(isnan(fipsc_pearson(x3, same, 3)));
    CHECK(isnan(fipsc_pearson(x3, y3, 1)));

    /* Spearman of [1..5] and [5,6,7,8,7]: ranks [1,2,3.5,5,3.5], r = 8 / sqrt(10 · 9.5) */
    const double x5[] = {1, 2, 3, 4, 5}, y5[] = {5, 6, 7, 8, 7};
    double rho = 0;
    CHECK_OK(fipsc_spearman(x5, y5, 5, &rho, &err), &err);
    CHECK_NEAR(rho, 0.8207826816681233, 1e-15);
    /* monotone transforms do not change it */
    const double y5exp[] = {exp(5), exp(6), exp(7), exp(8), exp(7)};
    CHECK_OK(fipsc_spearman(x5, y5exp, 5, &rho, &err), &err);
    CHECK_NEAR(rho, 0.8207826816681233, 1e-15);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void test_reading(void)
{
    const char *tmp = test_tmpdir("test_use_sts");
    char path[4200];
    test_pathf(path, sizeof path, "%s/a.tsv", tmp);
    fipsc_error err = {0};
    fipsc_sts_set set;
    write_text(path, "g\tf\t2012\t1\t4.5\tA cat.\tA feline.\r\n\r\n"
                     "g\tf\t2012\t2\t0\tOne.\tTwo.\tsource 1\tsource 2\r\n"
                     "g\tf\t2012\t3\t2.25\t\tEmpty first.");
    CHECK_OK(fipsc_sts_read(path, &set, &err), &err);
    CHECK(set.n == 3 && set.extra_column_rows == 1);
    if (set.n == 3) {
        CHECK(set.score[0] == 4.5 && set.score[1] == 0 && set.score[2] == 2.25);
        CHECK(strcmp(set.s1[0], "A cat.") == 0 && strcmp(set.s2[0], "A feline.") == 0);
        CHECK(strcmp(set.s2[1], "Two.") == 0 && strcmp(set.s1[2], "") == 0 && strcmp(set.s2[2], "Empty first.") == 0);
    }
    fipsc_sts_free(&set);

    write_text(path, "g\tf\t2012\t1\t4.5\tA cat.\tA feline.\ng\tf\t2012\t2\t1\tOnly six columns\n");
    CHECK_FAILS(fipsc_sts_read(path, &set, &err), FIPSC_ERR_FORMAT, "line 2 has 6 tab-separated columns", &err);
    write_text(path, "g\tf\t2012\t1\t4.5x\tA cat.\tA feline.\ng\tf\t2012\t2\t1\ta\tb\n");
    CHECK_FAILS(fipsc_sts_read(path, &set, &err), FIPSC_ERR_FORMAT, "line 1: the score '4.5x'", &err);
    write_text(path, "g\tf\t2012\t1\tnan\tA cat.\tA feline.\ng\tf\t2012\t2\t1\ta\tb\n");
    CHECK_FAILS(fipsc_sts_read(path, &set, &err), FIPSC_ERR_FORMAT, "is not a number", &err);
    write_text(path, "g\tf\t2012\t1\t4.5\tA cat.\tA feline.\n\n");
    CHECK_FAILS(fipsc_sts_read(path, &set, &err), FIPSC_ERR_FORMAT, "1 sentence pair(s)", &err);
    test_pathf(path, sizeof path, "%s/missing.tsv", tmp);
    CHECK(fipsc_sts_read(path, &set, &err) != FIPSC_OK && strstr(err.message, "missing.tsv"));
}

/* FNV-1a 64 over every sentence's token ids (4 little-endian bytes each, 0xFFFFFFFF after each
 * sentence): the fingerprint make-golden.js computes from the client's tokens. */
static uint64_t fnv_eat(uint64_t h, uint32_t v)
{
    for (int b = 0; b < 4; b++) {
        h ^= (v >> (8 * b)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void check_token_fingerprint(const fipsc_model *m, const fipsc_sts_set *set, const char *want)
{
    uint64_t h = 0xcbf29ce484222325ull;
    fipsc_error err = {0};
    for (int i = 0; i < 2 * set->n; i++) {
        const char *s = i % 2 ? set->s2[i / 2] : set->s1[i / 2];
        int32_t *ids = NULL;
        int n = 0;
        CHECK_OK(fipsc_use_tokenize(m, s, strlen(s), &ids, &n, &err), &err);
        for (int k = 0; k < n; k++) h = fnv_eat(h, (uint32_t)ids[k]);
        h = fnv_eat(h, 0xffffffffu);
        free(ids);
    }
    char got[17];
    snprintf(got, sizeof got, "%016llx", (unsigned long long)h);
    CHECK_MSG(want && strcmp(got, want) == 0, "token fingerprint %s, the client's %s", got, want ? want : "?");
}

/* Evaluates path and compares with the client's numbers in golden[spearman, pearson, pairs,
 * tokens_fnv1a64]. embeddings: NULL or [2·pairs, d] to keep. */
static void check_against_client(const fipsc_model *m, const char *path, const cJSON *golden, double tol,
                                 fipsc_sts_set *set, float *embeddings)
{
    fipsc_error err = {0};
    CHECK_OK(fipsc_sts_read(path, set, &err), &err);
    if (set->n == 0) return;
    fipsc_sts_result res = {0};
    CHECK_OK(fipsc_sts_evaluate(m, set, &res, NULL, embeddings, &err), &err);
    double want_s = cJSON_GetObjectItem(golden, "spearman")->valuedouble;
    double want_p = cJSON_GetObjectItem(golden, "pearson")->valuedouble;
    printf("%s: %d pairs, Spearman %.6f (client %.6f), Pearson %.6f (client %.6f)\n", path, res.pairs,
           res.spearman, want_s, res.pearson, want_p);
    CHECK(res.pairs == cJSON_GetObjectItem(golden, "pairs")->valueint);
    CHECK_NEAR(res.spearman, want_s, tol);
    CHECK_NEAR(res.pearson, want_p, tol);
    if (cJSON_GetObjectItem(golden, "tokens_fnv1a64"))
        check_token_fingerprint(m, set, cJSON_GetStringValue(cJSON_GetObjectItem(golden, "tokens_fnv1a64")));
}

/* Which rows of an STS file have exactly 7 columns: on those, a reader that keeps the CR of a CRLF
 * line end leaves it at the end of sentence 2 (on longer rows it ends the last column instead). */
static bool *seven_column_rows(const char *path, int n)
{
    char *text;
    size_t size;
    fipsc_error err = {0};
    bool *seven = calloc((size_t)n, sizeof *seven);
    if (fipsc_read_file(path, &text, &size, &err)) {
        CHECK_MSG(0, "%s", err.message);
        return seven;
    }
    int row = 0, tabs = 0, nonempty = 0;
    for (size_t i = 0; i <= size; i++) {
        char c = i < size ? text[i] : '\n';
        if (c == '\n') {
            if (nonempty && row < n) seven[row++] = tabs == 6;
            tabs = nonempty = 0;
        } else if (c != '\r') {
            nonempty = 1;
            tabs += c == '\t';
        }
    }
    CHECK(row == n);
    free(text);
    return seven;
}

/* STS-B dev as the reference number was computed: with the CR kept at the end of sentence
 * 2 (which the client's tokenizer turns into one more unknown token). Only those sentences are
 * embedded again; the rest comes from the clean evaluation. */
static void check_cr_kept(const fipsc_model *m, const char *path, const fipsc_sts_set *set, const float *emb,
                          const cJSON *golden)
{
    const int n = set->n, d = fipsc_model_use(m)->dim;
    bool *seven = seven_column_rows(path, n);
    char **texts = calloc((size_t)n, sizeof *texts);
    int *row_of = calloc((size_t)n, sizeof *row_of), k = 0;
    for (int i = 0; i < n; i++)
        if (seven[i]) {
            size_t len = strlen(set->s2[i]);
            texts[k] = malloc(len + 2);
            memcpy(texts[k], set->s2[i], len);
            memcpy(texts[k] + len, "\r", 2);
            row_of[k++] = i;
        }
    float *cr = malloc(((size_t)k + 1) * (size_t)d * sizeof *cr);
    double *cos = malloc((size_t)n * sizeof *cos);
    fipsc_error err = {0};
    CHECK_OK(fipsc_use_embed(m, k, (const char *const *)texts, NULL, cr, &err), &err);
    for (int i = 0; i < n; i++) cos[i] = fipsc_cosine(emb + 2 * (size_t)i * d, emb + (2 * (size_t)i + 1) * d, d);
    for (int j = 0; j < k; j++) cos[row_of[j]] = fipsc_cosine(emb + 2 * (size_t)row_of[j] * d, cr + (size_t)j * d, d);
    double spearman = 0, pearson = fipsc_pearson(cos, set->score, n);
    CHECK_OK(fipsc_spearman(cos, set->score, n, &spearman, &err), &err);
    double want_s = cJSON_GetObjectItem(golden, "spearman_cr_kept")->valuedouble;
    double want_p = cJSON_GetObjectItem(golden, "pearson_cr_kept")->valuedouble;
    printf("the same with the CR kept in sentence 2 of %d rows: Spearman %.6f (client %.6f), Pearson %.6f "
           "(client %.6f)\n",
           k, spearman, want_s, pearson, want_p);
    CHECK_NEAR(spearman, want_s, 5e-4);
    CHECK_NEAR(pearson, want_p, 5e-4);
    for (int j = 0; j < k; j++) free(texts[j]);
    free(texts);
    free(row_of);
    free(cr);
    free(cos);
    free(seven);
}

int main(void)
{
    test_correlations();
    test_reading();

    cJSON *golden = use_golden_json();
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(use_model_dir(), &m, &err), &err);
    if (m) {
        char path[4200];
        fipsc_sts_set set;
        /* the small committed file: 24 well-separated pairs, so equal up to rounding (the
         * embeddings differ from the client's by ~1e-6, which moves Pearson by ~1e-7; one rank
         * swap would move Spearman by 2e-4) */
        test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "tests/data/sts-small.tsv");
        check_against_client(m, path, cJSON_GetObjectItem(golden, "sts_small"), 1e-5, &set, NULL);
        fipsc_sts_free(&set);
        /* STS-B dev, 1,500 pairs: three decimals (the bar); in practice ~1e-6 */
        test_path(path, sizeof path, "FIPSC_SHARED_DIR", "data/sts-b-dev.tsv");
        const cJSON *dev = cJSON_GetObjectItem(golden, "sts_dev");
        float *emb = malloc(2 * 1500 * (size_t)fipsc_model_use(m)->dim * sizeof *emb);
        check_against_client(m, path, dev, 5e-4, &set, emb);
        if (set.n == 1500) check_cr_kept(m, path, &set, emb, dev);
        fipsc_sts_free(&set);
        free(emb);
    }
    fipsc_model_free(m);
    cJSON_Delete(golden);
    return test_summary("test_use_sts");
}
