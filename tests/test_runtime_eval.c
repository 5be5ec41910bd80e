/* Perplexity and KL evaluation against the same measures computed from a naive double-precision
 * forward (tests/llama_fixture.h): perplexity, KL(ref‖model) mean and 99th percentile, top-1
 * agreement; a model against itself gives exactly KL 0 and agreement 1; batching does not change
 * results; errors for mismatched vocabularies, ids and lengths. */
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama.h"
#include "formats/corpus.h"
#include "eval/eval.h"
#include "llama_fixture.h"
#include "testutil.h"

static const fixture_shape shape = {40, 80, 2, 4, 2, 10, 53, 32, 1e-5f, 10000.0f, 0, 0};

/* Naive per-position numbers for one sequence: nll under m, and (when ref) KL(ref‖m) and
 * argmax agreement. Returns the number of positions written. */
static int naive_scores(const fipsc_model *m, const fipsc_model *ref, const int32_t *seq, int len,
                        double *nll, double *kl, int *agree)
{
    const int V = fipsc_model_llama(m)->cfg.vocab_size;
    double *lm = malloc(sizeof(double) * len * V), *lr = malloc(sizeof(double) * len * V);
    naive_forward(m, seq, len, lm, NULL, NULL);
    if (ref) naive_forward(ref, seq, len, lr, NULL, NULL);
    for (int i = 0; i < len - 1; i++) {
        const double *a = lm + (size_t)i * V, *b = lr + (size_t)i * V;
        double za = 0, zb = 0;
        int am = 0, ar = 0;
        for (int v = 0; v < V; v++) {
            za += exp(a[v]);
            if (a[v] > a[am]) am = v;
            if (ref) {
                zb += exp(b[v]);
                if (b[v] > b[ar]) ar = v;
            }
        }
        nll[i] = log(za) - a[seq[i + 1]];
        if (!ref) continue;
        double k = 0;
        for (int v = 0; v < V; v++) {
            double pr = exp(b[v]) / zb;
            k += pr * (log(pr) - (a[v] - log(za)));
        }
        kl[i] = k;
        agree[i] = am == ar;
    }
    free(lm);
    free(lr);
    return len - 1;
}

static void test_quantile(void)
{
    double x[5] = {5, 1, 4, 2, 3};
    CHECK_NEAR(fipsc_quantile(x, 5, 0.5), 3.0, 1e-12);
    CHECK_NEAR(fipsc_quantile(x, 5, 0.99), 4.96, 1e-12);
    CHECK_NEAR(fipsc_quantile(x, 5, 1.0), 5.0, 1e-12);
    CHECK_NEAR(fipsc_quantile(x, 5, 0.0), 1.0, 1e-12);
    double one = 7;
    CHECK_NEAR(fipsc_quantile(&one, 1, 0.99), 7.0, 0);
}

static void test_eval(void)
{
    fipsc_model *m = fixture_llama(&shape, 11), *same = fixture_llama(&shape, 11), *other = fixture_llama(&shape, 12);
    fipsc_error err = {0};
    /* Three sequences of 12 tokens and two of 7: two batches of different lengths. */
    const char *dir = test_tmpdir("test_runtime_eval");
    char path[4200];
    test_pathf(path, sizeof path, "%s/c.txt", dir);
    FILE *fp = fopen(path, "w");
    uint32_t st = 3;
    int lens[5] = {12, 12, 12, 7, 7};
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < lens[s]; i++) {
            st = st * 1103515245u + 12345u;
            fprintf(fp, i ? " %u" : "1", (st >> 8) % (uint32_t)shape.vocab);
        }
        fprintf(fp, "\n");
    }
    fclose(fp);
    fipsc_corpus *c = NULL;
    CHECK_OK(fipsc_corpus_load(path, &c, &err), &err);
    if (!c) return;

    double nll[64], kl[64], nll_ref[64], dummy[64];
    int agree[64], n = 0, iagree = 0;
    double snll = 0, sref = 0, skl = 0;
    for (int s = 0; s < c->n_seqs; s++) {
        int k = naive_scores(m, other, fipsc_corpus_seq(c, s), fipsc_corpus_length(c, s), nll + n, kl + n, agree + n);
        naive_scores(other, NULL, fipsc_corpus_seq(c, s), fipsc_corpus_length(c, s), nll_ref + n, dummy, NULL);
        n += k;
    }
    for (int i = 0; i < n; i++) {
        snll += nll[i];
        sref += nll_ref[i];
        skl += kl[i];
        iagree += agree[i];
    }
    CHECK(n == 3 * 11 + 2 * 6);

    fipsc_eval_result r;
    CHECK_OK(fipsc_eval_corpus(m, c, NULL, &r, &err), &err);
    CHECK(r.n_sequences == 5 && r.n_predicted == n && !r.has_ref);
    CHECK_NEAR(r.nll, snll / n, 1e-5);
    CHECK_NEAR(r.ppl, exp(snll / n), 1e-4 * exp(snll / n));

    /* Against an identical model (a separate copy): KL exactly 0, agreement exactly 1. */
    fipsc_eval_options opt = {.ref = same};
    CHECK_OK(fipsc_eval_corpus(m, c, &opt, &r, &err), &err);
    CHECK(r.has_ref && r.kl_mean == 0.0 && r.kl_p99 == 0.0 && r.kl_max == 0.0 && r.top1_agreement == 1.0);
    CHECK(r.delta_ppl == 0.0 && r.ref_ppl == r.ppl);

    /* Against another model: the naive numbers. */
    opt.ref = other;
    CHECK_OK(fipsc_eval_corpus(m, c, &opt, &r, &err), &err);
    CHECK_NEAR(r.kl_mean, skl / n, 1e-5);
    CHECK(r.kl_mean > 0.01);
    CHECK_NEAR(r.top1_agreement, (double)iagree / n, 1e-12);
    CHECK_NEAR(r.ref_nll, sref / n, 1e-5);
    CHECK_NEAR(r.delta_ppl, exp(snll / n) - exp(sref / n), 1e-4);
    double sorted[64];
    memcpy(sorted, kl, sizeof(double) * n);
    CHECK_NEAR(r.kl_p99, fipsc_quantile(sorted, n, 0.99), 1e-5);
    CHECK_NEAR(r.kl_max, sorted[n - 1], 1e-5);
    CHECK_NEAR(r.kl_median, fipsc_quantile(sorted, n, 0.5), 1e-5);

    /* One sequence per forward pass: the same numbers, up to the rounding of other GEMM shapes
     * (which OpenBLAS may give other kernels). */
    fipsc_eval_result r1;
    opt.max_rows = 1;
    CHECK_OK(fipsc_eval_corpus(m, c, &opt, &r1, &err), &err);
    CHECK_NEAR(r1.kl_mean, r.kl_mean, 1e-5);
    CHECK_NEAR(r1.nll, r.nll, 1e-5);

    /* Errors. */
    fixture_shape wide = shape;
    wide.vocab = 60;
    fipsc_model *w = fixture_llama(&wide, 3);
    opt = (fipsc_eval_options){.ref = w};
    CHECK_FAILS(fipsc_eval_corpus(m, c, &opt, &r, &err), FIPSC_ERR_ARG,
                "reference model's vocabulary has 60 tokens but the model's has 53", &err);
    fipsc_corpus *bad = NULL;
    int32_t ids[4] = {1, 2, 53, 4};
    CHECK_OK(fipsc_corpus_from_ids(ids, 1, 4, 60, &bad, &err), &err);
    CHECK_FAILS(fipsc_eval_corpus(m, bad, NULL, &r, &err), FIPSC_ERR_ARG,
                "position 2: token id 53 is not below the vocabulary size 53", &err);
    fipsc_corpus_free(bad);
    int32_t longseq[40] = {0};
    CHECK_OK(fipsc_corpus_from_ids(longseq, 1, 40, 53, &bad, &err), &err);
    CHECK_FAILS(fipsc_eval_corpus(m, bad, NULL, &r, &err), FIPSC_ERR_ARG,
                "corpus sequence 0 has 40 tokens but the model's context is 32", &err);
    fipsc_corpus_free(bad);
    CHECK_OK(fipsc_corpus_from_ids(longseq, 3, 1, 53, &bad, &err), &err);
    CHECK_FAILS(fipsc_eval_corpus(m, bad, NULL, &r, &err), FIPSC_ERR_ARG, "nothing to score", &err);
    fipsc_corpus_free(bad);

    fipsc_model_free(w);
    fipsc_corpus_free(c);
    fipsc_model_free(m);
    fipsc_model_free(same);
    fipsc_model_free(other);
}

int main(void)
{
    test_quantile();
    test_eval();
    return test_summary("test_runtime_eval");
}
