/* The PRNG (known outputs of xoshiro256** seeded by SplitMix64), the sampler (temperature 0 and
 * tiny top-p give the argmax, frequencies follow softmax(logits/T), the nucleus excludes the
 * tail, ties break by id), and generation on stories260K: greedy decoding agrees with prefill
 * argmaxes, and tokens are identical for 1 and 2 threads; lockstep sampling on a larger random
 * model. */
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama2c.h"
#include "families/llama/llama.h"
#include "model/generate.h"
#include "families/llama/runtime.h"
#include "ops/sample.h"
#include "core/rng.h"
#include "core/threads.h"
#include "llama_fixture.h"
#include "testutil.h"

static void test_rng(void)
{
    /* Reference values from an independent implementation of SplitMix64 + xoshiro256**. */
    fipsc_rng r;
    fipsc_rng_seed(&r, 0);
    CHECK(fipsc_rng_next(&r) == 0x99ec5f36cb75f2b4ULL);
    CHECK(fipsc_rng_next(&r) == 0xbf6e1f784956452aULL);
    CHECK(fipsc_rng_next(&r) == 0x1a5f849d4933e6e0ULL);
    fipsc_rng_seed(&r, 42);
    CHECK(fipsc_rng_next(&r) == 0x15780b2e0c2ec716ULL);
    CHECK(fipsc_seed_derive(1, 0) == 0x910a2dec89025cc1ULL);
    CHECK(fipsc_seed_derive(1, 1) == 0xbeeb8da1658eec67ULL);
    double lo = 1, hi = 0, sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = fipsc_rng_uniform(&r);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
    }
    CHECK(lo >= 0.0 && hi < 1.0 && lo < 1e-3 && hi > 1 - 1e-3);
    CHECK_NEAR(sum / 100000, 0.5, 0.005);
}

/* Frequencies of n draws. */
static void draw(fipsc_sampler *s, const float *logits, int n, int *count)
{
    memset(count, 0, sizeof(int) * s->vocab);
    for (int i = 0; i < n; i++) count[fipsc_sampler_sample(s, logits)]++;
}

static void test_sampler(void)
{
    fipsc_error err = {0};
    fipsc_sampler s;
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    float logits[4];
    for (int i = 0; i < 4; i++) logits[i] = (float)log(p[i]) + 3.0f; /* shift: softmax is invariant */
    int count[4];
    const int N = 100000;

    /* T = 1, top-p = 1: the model's distribution (binomial sd ≤ 0.0016). */
    CHECK_OK(fipsc_sampler_init(&s, 4, 1.0f, 1.0f, 7, &err), &err);
    draw(&s, logits, N, count);
    for (int i = 0; i < 4; i++) CHECK_NEAR((double)count[i] / N, p[i], 0.008);
    fipsc_sampler_free(&s);

    /* T = 2: probabilities ∝ p^(1/2). */
    CHECK_OK(fipsc_sampler_init(&s, 4, 2.0f, 1.0f, 8, &err), &err);
    draw(&s, logits, N, count);
    double z = 0;
    for (int i = 0; i < 4; i++) z += sqrt(p[i]);
    for (int i = 0; i < 4; i++) CHECK_NEAR((double)count[i] / N, sqrt(p[i]) / z, 0.008);
    fipsc_sampler_free(&s);

    /* top-p 0.7: the nucleus is {0, 1} (0.5 < 0.7 <= 0.8), renormalised to 0.625 / 0.375. */
    CHECK_OK(fipsc_sampler_init(&s, 4, 1.0f, 0.7f, 9, &err), &err);
    draw(&s, logits, N, count);
    CHECK(count[2] == 0 && count[3] == 0);
    CHECK_NEAR((double)count[0] / N, 0.625, 0.008);
    fipsc_sampler_free(&s);

    /* Temperature 0 and a tiny top-p both give the argmax, on random logits. */
    fipsc_sampler greedy, tiny;
    CHECK_OK(fipsc_sampler_init(&greedy, 300, 0.0f, 1.0f, 1, &err), &err);
    CHECK_OK(fipsc_sampler_init(&tiny, 300, 1.0f, 1e-9f, 1, &err), &err);
    float l[300];
    uint64_t st = 5;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < 300; i++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            l[i] = (float)((st >> 40) % 1000) / 100.0f;
        }
        int am = fipsc_argmax(l, 300);
        CHECK(fipsc_sampler_sample(&greedy, l) == am);
        CHECK(fipsc_sampler_sample(&tiny, l) == am);
    }
    fipsc_sampler_free(&greedy);
    fipsc_sampler_free(&tiny);

    /* Ties: the lowest id wins the argmax; equal logits with top-p 0.5 keep ids {0, 1}; with a
     * tiny top-p over two equal tokens the argmax (id 0) is still in the nucleus. */
    float flat[4] = {1, 1, 1, 1};
    CHECK(fipsc_argmax(flat, 4) == 0);
    CHECK_OK(fipsc_sampler_init(&s, 4, 1.0f, 0.5f, 3, &err), &err);
    draw(&s, flat, 20000, count);
    CHECK(count[2] == 0 && count[3] == 0 && count[0] > 9000 && count[1] > 9000);
    fipsc_sampler_free(&s);
    CHECK_OK(fipsc_sampler_init(&s, 2, 1.0f, 1e-6f, 3, &err), &err);
    draw(&s, flat, 1000, count);
    CHECK(count[0] == 1000);
    fipsc_sampler_free(&s);

    /* The same seed, the same draws; another seed, other draws. */
    fipsc_sampler a, b, c;
    fipsc_sampler_init(&a, 4, 1.0f, 0.95f, 11, &err);
    fipsc_sampler_init(&b, 4, 1.0f, 0.95f, 11, &err);
    fipsc_sampler_init(&c, 4, 1.0f, 0.95f, 12, &err);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 200; i++) {
        int ta = fipsc_sampler_sample(&a, logits), tb = fipsc_sampler_sample(&b, logits), tc = fipsc_sampler_sample(&c, logits);
        same_ab &= ta == tb;
        same_ac &= ta == tc;
    }
    CHECK(same_ab && !same_ac);
    fipsc_sampler_free(&a);
    fipsc_sampler_free(&b);
    fipsc_sampler_free(&c);

    CHECK_FAILS(fipsc_sampler_init(&s, 4, -1.0f, 1.0f, 1, &err), FIPSC_ERR_ARG, "temperature", &err);
    CHECK_FAILS(fipsc_sampler_init(&s, 4, NAN, 1.0f, 1, &err), FIPSC_ERR_ARG, "temperature", &err);
    CHECK_FAILS(fipsc_sampler_init(&s, 4, 1.0f, 0.0f, 1, &err), FIPSC_ERR_ARG, "top-p must be in (0, 1]", &err);
    CHECK_FAILS(fipsc_sampler_init(&s, 4, 1.0f, 1.5f, 1, &err), FIPSC_ERR_ARG, "top-p", &err);
    CHECK_FAILS(fipsc_sampler_init(&s, 0, 1.0f, 1.0f, 1, &err), FIPSC_ERR_ARG, "vocabulary", &err);
}

static void test_generation(void)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_load_llama2c(path, &m, &err), &err);
    if (!m) return;
    const int V = fipsc_model_llama(m)->cfg.vocab_size, N = 60;
    int32_t prompt[3] = {1, 403, 407}, g1[60], g2[60], full[400];
    int n1 = 0, n2 = 0;

    /* Greedy: every generated token is the argmax of a prefill over the tokens before it. */
    fipsc_sampler s;
    CHECK_OK(fipsc_sampler_init(&s, V, 0.0f, 1.0f, 1, &err), &err);
    CHECK_OK(fipsc_lm_generate(m, prompt, 3, N, &s, false, g1, &n1, &err), &err);
    CHECK(n1 == N);
    fipsc_sampler_free(&s);
    memcpy(full, prompt, sizeof prompt);
    memcpy(full + 3, g1, sizeof(int32_t) * N);
    float *logits = malloc(sizeof(float) * (N + 3) * V);
    CHECK_OK(fipsc_llama_forward(m, full, 1, N + 3, logits, NULL, &err), &err);
    int agree = 0;
    for (int i = 0; i < N; i++) agree += fipsc_argmax(logits + (size_t)(i + 2) * V, V) == g1[i];
    CHECK_MSG(agree == N, "greedy decode agrees with prefill argmax at %d of %d positions", agree, N);
    /* A tiny top-p is greedy too. */
    CHECK_OK(fipsc_sampler_init(&s, V, 1.0f, 1e-9f, 99, &err), &err);
    CHECK_OK(fipsc_lm_generate(m, prompt, 3, N, &s, false, g2, &n2, &err), &err);
    CHECK(n2 == N && memcmp(g1, g2, sizeof g1) == 0);
    fipsc_sampler_free(&s);

    /* Sampling at T = 1, top-p 0.9: the same tokens with 1 and 2 threads. */
    fipsc_threads_set(1);
    CHECK_OK(fipsc_sampler_init(&s, V, 1.0f, 0.9f, 5, &err), &err);
    CHECK_OK(fipsc_lm_generate(m, prompt, 3, N, &s, false, g1, &n1, &err), &err);
    fipsc_sampler_free(&s);
    fipsc_threads_set(2);
    CHECK_OK(fipsc_sampler_init(&s, V, 1.0f, 0.9f, 5, &err), &err);
    CHECK_OK(fipsc_lm_generate(m, prompt, 3, N, &s, false, g2, &n2, &err), &err);
    fipsc_sampler_free(&s);
    CHECK(n1 == N && n2 == N && memcmp(g1, g2, sizeof g1) == 0);

    /* stop_at_eos: generation ends right after the EOS token (found by trying seeds). */
    int stopped = 0;
    for (uint64_t seed = 0; seed < 50 && !stopped; seed++) {
        CHECK_OK(fipsc_sampler_init(&s, V, 1.0f, 1.0f, seed, &err), &err);
        CHECK_OK(fipsc_lm_generate(m, prompt, 1, 400, &s, true, full, &n1, &err), &err);
        fipsc_sampler_free(&s);
        int eos_at = -1;
        for (int i = 0; i < n1; i++)
            if (full[i] == fipsc_model_llama(m)->cfg.eos_token && eos_at < 0) eos_at = i;
        if (n1 < 400) {
            CHECK(eos_at == n1 - 1);
            stopped = 1;
        } else {
            CHECK(eos_at == -1);
        }
    }
    CHECK_MSG(stopped, "no seed of 50 produced EOS within 400 tokens");
    CHECK_FAILS(fipsc_lm_generate(m, prompt, 3, 510, &s, false, full, &n1, &err), FIPSC_ERR_ARG,
                "needs 513 positions but the model's context is 512", &err);

    /* Corpus sampling: BOS first, same corpus with 1 and 2 threads (parallel over sequences),
     * and sequence i does not depend on how many sequences are drawn. */
    const int S = 6, L = 40;
    int32_t *c1 = malloc(sizeof(int32_t) * S * L), *c2 = malloc(sizeof(int32_t) * S * L);
    fipsc_threads_set(1);
    CHECK_OK(fipsc_lm_sample_sequences(m, S, L, 1.0f, 1.0f, 77, c1, NULL, NULL, &err), &err);
    fipsc_threads_set(2);
    CHECK_OK(fipsc_lm_sample_sequences(m, S, L, 1.0f, 1.0f, 77, c2, NULL, NULL, &err), &err);
    CHECK(memcmp(c1, c2, sizeof(int32_t) * S * L) == 0);
    CHECK_OK(fipsc_lm_sample_sequences(m, 2, L, 1.0f, 1.0f, 77, c2, NULL, NULL, &err), &err);
    CHECK(memcmp(c1, c2, sizeof(int32_t) * 2 * L) == 0);
    int ok = 1;
    for (int i = 0; i < S; i++) {
        ok &= c1[i * L] == fipsc_model_llama(m)->cfg.bos_token;
        for (int t = 0; t < L; t++) ok &= c1[i * L + t] >= 0 && c1[i * L + t] < V;
    }
    CHECK(ok);
    CHECK(memcmp(c1, c1 + L, sizeof(int32_t) * L) != 0); /* sequences differ from each other */
    CHECK_FAILS(fipsc_lm_sample_sequences(m, 2, 600, 1.0f, 1.0f, 1, c1, NULL, NULL, &err), FIPSC_ERR_ARG,
                "context is 512", &err);
    CHECK_FAILS(fipsc_lm_sample_sequences(m, 2, 10, 1.0f, 2.0f, 1, c1, NULL, NULL, &err), FIPSC_ERR_ARG,
                "top-p", &err);
    free(c1);
    free(c2);
    free(logits);
    fipsc_model_free(m);
}

static long long progress_last, progress_total, progress_calls;
static int progress_monotone = 1;
static void on_progress(void *ctx, long long done, long long total, double elapsed)
{
    (void)ctx;
    progress_monotone &= done > progress_last && elapsed >= 0.0;
    progress_last = done, progress_total = total, progress_calls++;
}

/* A model above 2M parameters decodes its sequences 64 at a time in lockstep (its caches are
 * small): the same corpus for 1 and 2 threads, a last partial batch, and the tokens of each sequence decoded alone from
 * the same stream (a lockstep row's logits differ from a lone one's in the last bits at most: a
 * sampled token could flip only if its uniform draw fell within that of a boundary). */
static void test_lockstep_sampling(void)
{
    /* dim hid  L  H kv hd vocab seq  eps    theta     tied bias: 3.4M parameters */
    const fixture_shape shape = {256, 688, 2, 8, 4, 32, 4000, 64, 1e-5f, 10000.0f, 0, 0};
    fipsc_model *m = fixture_llama(&shape, 31);
    CHECK(fipsc_model_count_params(m).total > (1LL << 21));
    fipsc_error err = {0};
    enum { S = 70, L = 12 };
    int32_t *c1 = malloc(sizeof(int32_t) * S * L), *c2 = malloc(sizeof(int32_t) * S * L);
    fipsc_threads_set(1);
    CHECK_OK(fipsc_lm_sample_sequences(m, S, L, 1.0f, 1.0f, 77, c1, on_progress, NULL, &err), &err);
    CHECK(progress_monotone && progress_last == (long long)S * L && progress_total == (long long)S * L);
    CHECK(progress_calls == 2 * (L - 1)); /* a report per lockstep step: two batches (64 + 6) */
    fipsc_threads_set(2);
    CHECK_OK(fipsc_lm_sample_sequences(m, S, L, 1.0f, 1.0f, 77, c2, NULL, NULL, &err), &err);
    CHECK_MSG(memcmp(c1, c2, sizeof(int32_t) * S * L) == 0, "lockstep sampling differs between 1 and 2 threads");
    int alone_equal = 0;
    for (int i = 0; i < S; i++) {
        fipsc_sampler smp;
        int32_t bos = fipsc_model_llama(m)->cfg.bos_token, out[L];
        int n_out = 0;
        CHECK(c1[i * L] == bos);
        CHECK_OK(fipsc_sampler_init(&smp, shape.vocab, 1.0f, 1.0f, fipsc_seed_derive(77, (uint64_t)i), &err), &err);
        CHECK_OK(fipsc_lm_generate(m, &bos, 1, L - 1, &smp, false, out, &n_out, &err), &err);
        fipsc_sampler_free(&smp);
        alone_equal += n_out == L - 1 && memcmp(out, c1 + i * L + 1, sizeof(int32_t) * (L - 1)) == 0;
    }
    CHECK_MSG(alone_equal >= S - 2, "only %d of %d lockstep sequences are those decoded alone", alone_equal, S);
    CHECK(memcmp(c1, c1 + L, sizeof(int32_t) * L) != 0);
    free(c1);
    free(c2);
    fipsc_model_free(m);
}

int main(void)
{
    test_rng();
    test_sampler();
    test_generation();
    test_lockstep_sampling();
    return test_summary("test_runtime_sample");
}
