/* The Llama runtime against a naive double-precision forward (tests/llama_fixture.h) on random
 * models covering what stories260K does not: q/k/v biases, an untied head, head_dim ≠ dim/heads,
 * multi-query attention, another rope_theta and eps. Also: prefill = decode = session prefill =
 * lockstep sessions of several sequences, identical bits for 1 and 2 threads, calibration
 * capture, and the error paths. */
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama.h"
#include "model/capture.h"
#include "families/llama/runtime.h"
#include "core/threads.h"
#include "llama_fixture.h"
#include "testutil.h"

static const fixture_shape shapes[] = {
    /* dim hid  L  H kv hd vocab seq  eps    theta     tied bias */
    {48, 100, 2, 4, 2, 16, 97, 64, 1e-6f, 500000.0f, 0, 1}, /* GQA, biases, untied, q_dim 64 != dim */
    {32, 64, 3, 4, 4, 8, 50, 32, 1e-5f, 10000.0f, 1, 0},    /* plain multi-head, tied */
    {40, 72, 2, 5, 1, 8, 61, 32, 1e-5f, 10000.0f, 0, 0},    /* multi-query */
};

static double max_abs_diff_fd(const float *a, const double *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

static void random_tokens(int32_t *t, int n, int vocab, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        t[i] = (int32_t)((seed >> 8) % (unsigned)vocab);
    }
}

static void test_against_naive(const fixture_shape *s, int which)
{
    fipsc_model *m = fixture_llama(s, 1000 + which);
    fipsc_error err = {0};
    const int B = 3, T = 9, V = s->vocab;
    int32_t tokens[3 * 9];
    random_tokens(tokens, B * T, V, 7u + which);
    float *logits = malloc(sizeof(float) * B * T * V);
    double *want = malloc(sizeof(double) * T * V);

    CHECK_OK(fipsc_llama_forward(m, tokens, B, T, logits, NULL, &err), &err);
    for (int b = 0; b < B; b++) {
        naive_forward(m, tokens + b * T, T, want, NULL, NULL);
        double e = max_abs_diff_fd(logits + (size_t)b * T * V, want, (size_t)T * V);
        CHECK_MSG(e < 1e-4, "shape %d, sequence %d: prefill differs from the naive forward by %g", which, b, e);
    }

    /* Decoding sequence 1 token by token, and a session that prefills 4 then decodes. */
    naive_forward(m, tokens + T, T, want, NULL, NULL);
    fipsc_llama_session *ses = NULL;
    CHECK_OK(fipsc_llama_session_new(m, T, &ses, &err), &err);
    for (int t = 0; ses && t < T; t++) {
        CHECK_OK(fipsc_llama_decode(ses, tokens[T + t], logits, &err), &err);
        double e = max_abs_diff_fd(logits, want + (size_t)t * V, V);
        CHECK_MSG(e < 1e-4, "shape %d: decode at position %d differs by %g", which, t, e);
    }
    if (ses) {
        /* The session is full now: one more token is an error naming the overflow. */
        CHECK_FAILS(fipsc_llama_decode(ses, 0, logits, &err), FIPSC_ERR_ARG, "overflows", &err);
        fipsc_llama_session_reset(ses);
        CHECK_OK(fipsc_llama_session_prefill(ses, tokens + T, 4, logits, &err), &err);
        CHECK(max_abs_diff_fd(logits, want + 3 * V, V) < 1e-4);
        CHECK_OK(fipsc_llama_session_prefill(ses, tokens + T + 4, 3, NULL, &err), &err);
        CHECK_OK(fipsc_llama_session_prefill(ses, tokens + T + 7, 2, logits, &err), &err);
        CHECK(max_abs_diff_fd(logits, want + 8 * V, V) < 1e-4);
        CHECK(fipsc_llama_session_length(ses) == T);
    }
    fipsc_llama_session_free(ses);

    /* A lockstep session of the B sequences: step t feeds token t of each and gives each its
     * own logits, as the naive forward of that sequence alone. */
    ses = NULL;
    CHECK_OK(fipsc_llama_batch_session_new(m, B, T, &ses, &err), &err);
    float *step_logits = malloc(sizeof(float) * B * V);
    double *want_all = malloc(sizeof(double) * B * T * V);
    for (int b = 0; b < B; b++) naive_forward(m, tokens + b * T, T, want_all + (size_t)b * T * V, NULL, NULL);
    for (int t = 0; ses && t < T; t++) {
        int32_t feed[3];
        for (int b = 0; b < B; b++) feed[b] = tokens[b * T + t];
        CHECK_OK(fipsc_llama_batch_step(ses, feed, step_logits, &err), &err);
        for (int b = 0; b < B; b++) {
            double e = max_abs_diff_fd(step_logits + (size_t)b * V, want_all + ((size_t)b * T + t) * V, V);
            CHECK_MSG(e < 1e-4, "shape %d: lockstep sequence %d at position %d differs by %g", which, b, t, e);
        }
    }
    if (ses) {
        int32_t feed[3] = {0, 0, 0};
        CHECK_FAILS(fipsc_llama_batch_step(ses, feed, step_logits, &err), FIPSC_ERR_ARG, "overflows", &err);
        fipsc_llama_session_reset(ses);
        CHECK_FAILS(fipsc_llama_session_prefill(ses, tokens, 2, step_logits, &err), FIPSC_ERR_ARG,
                    "a session of 3 sequences is fed one token per sequence a step", &err);
    }
    fipsc_llama_session_free(ses);
    CHECK_FAILS(fipsc_llama_batch_session_new(m, 0, T, &ses, &err), FIPSC_ERR_ARG, "a session of 0 sequences", &err);
    free(step_logits);
    free(want_all);

    /* Capture: layer 0 and the last layer, rows in sequence-major order, equal to the naive
     * MLP inputs and outputs. */
    fipsc_capture cap;
    int layers[2] = {s->layers - 1, 0};
    CHECK_OK(fipsc_capture_init(&cap, m, layers, 2, 0, &err), &err);
    CHECK_OK(fipsc_llama_forward(m, tokens, B, T, NULL, &cap, &err), &err);
    double *mx = malloc(sizeof(double) * s->layers * T * s->dim), *my = malloc(sizeof(double) * s->layers * T * s->dim);
    for (int i = 0; i < 2; i++) {
        fipsc_capture_layer *cl = fipsc_capture_find(&cap, layers[i]);
        CHECK(cl == &cap.layers[i] && cl->rows == B * T && cl->d == s->dim && cl->dropped == 0);
        for (int b = 0; b < B && cl->rows == B * T; b++) {
            naive_forward(m, tokens + b * T, T, want, mx, my);
            size_t off = (size_t)layers[i] * T * s->dim, n = (size_t)T * s->dim;
            double ex = max_abs_diff_fd(cl->x + (size_t)b * n, mx + off, n);
            double ey = max_abs_diff_fd(cl->y + (size_t)b * n, my + off, n);
            CHECK_MSG(ex < 1e-4 && ey < 1e-4, "shape %d layer %d sequence %d: capture x off by %g, y by %g",
                      which, layers[i], b, ex, ey);
        }
    }
    CHECK(fipsc_capture_find(&cap, 1) == NULL || s->layers == 2);
    /* A second pass appends; clear forgets; a row limit drops the rest and counts them. */
    CHECK_OK(fipsc_llama_forward(m, tokens, 1, T, NULL, &cap, &err), &err);
    CHECK(cap.layers[0].rows == (B + 1) * T);
    fipsc_capture_free(&cap);
    CHECK_OK(fipsc_capture_init(&cap, m, layers + 1, 1, 10, &err), &err);
    CHECK_OK(fipsc_llama_forward(m, tokens, B, T, logits, &cap, &err), &err);
    CHECK(cap.layers[0].rows == 10 && cap.layers[0].dropped == B * T - 10);
    fipsc_capture_clear(&cap);
    CHECK(cap.layers[0].rows == 0);
    fipsc_capture_free(&cap);
    free(mx);
    free(my);
    free(logits);
    free(want);
    fipsc_model_free(m);
}

/* Every output bit is the same with 1 and 2 threads (and big enough passes to use both). */
static void test_thread_determinism(void)
{
    fixture_shape s = {128, 256, 2, 8, 4, 16, 300, 128, 1e-5f, 10000.0f, 0, 1};
    fipsc_model *m = fixture_llama(&s, 99);
    fipsc_error err = {0};
    const int B = 5, T = 64;
    int32_t *tokens = malloc(sizeof(int32_t) * B * T);
    random_tokens(tokens, B * T, s.vocab, 3u);
    size_t n = (size_t)B * T * s.vocab;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    int before = fipsc_threads_get();
    fipsc_threads_set(1);
    CHECK_OK(fipsc_llama_forward(m, tokens, B, T, a, NULL, &err), &err);
    fipsc_threads_set(2);
    CHECK_OK(fipsc_llama_forward(m, tokens, B, T, b, NULL, &err), &err);
    CHECK_MSG(memcmp(a, b, n * sizeof(float)) == 0, "logits differ between 1 and 2 threads");
    /* lockstep decoding too */
    for (int threads = 1; threads <= 2; threads++) {
        fipsc_threads_set(threads);
        fipsc_llama_session *ses = NULL;
        CHECK_OK(fipsc_llama_batch_session_new(m, B, T, &ses, &err), &err);
        for (int t = 0; ses && t < T; t++) {
            int32_t feed[5];
            for (int q = 0; q < B; q++) feed[q] = tokens[q * T + t];
            CHECK_OK(fipsc_llama_batch_step(ses, feed, (threads == 1 ? a : b) + (size_t)t * B * s.vocab, &err), &err);
        }
        fipsc_llama_session_free(ses);
    }
    CHECK_MSG(memcmp(a, b, n * sizeof(float)) == 0, "lockstep logits differ between 1 and 2 threads");
    fipsc_threads_set(before);
    free(tokens);
    free(a);
    free(b);
    fipsc_model_free(m);
}

static void test_errors(void)
{
    fipsc_model *m = fixture_llama(&shapes[1], 5);
    fipsc_error err = {0};
    float logits[64 * 50];
    int32_t bad[3] = {1, 50, 2};
    CHECK_FAILS(fipsc_llama_forward(m, bad, 1, 3, logits, NULL, &err), FIPSC_ERR_ARG,
                "token id 50 (sequence 0, position 1) is outside the vocabulary [0, 50)", &err);
    int32_t neg[1] = {-3};
    CHECK_FAILS(fipsc_llama_forward(m, neg, 1, 1, logits, NULL, &err), FIPSC_ERR_ARG, "token id -3", &err);
    int32_t many[33] = {0};
    CHECK_FAILS(fipsc_llama_forward(m, many, 1, 33, NULL, NULL, &err), FIPSC_ERR_ARG,
                "exceed the model's context of 32", &err);
    CHECK_FAILS(fipsc_llama_forward(m, many, 0, 3, NULL, NULL, &err), FIPSC_ERR_ARG, "positive", &err);
    fipsc_llama_session *s = NULL;
    CHECK_FAILS(fipsc_llama_session_new(m, 33, &s, &err), FIPSC_ERR_ARG, "context is 32", &err);
    CHECK(s == NULL);
    CHECK_OK(fipsc_llama_session_new(m, 0, &s, &err), &err); /* 0: the whole context */
    CHECK_FAILS(fipsc_llama_session_prefill(s, many, 33, NULL, &err), FIPSC_ERR_ARG, "overflows", &err);
    CHECK_FAILS(fipsc_llama_decode(s, 77, logits, &err), FIPSC_ERR_ARG, "outside the vocabulary", &err);
    CHECK(fipsc_llama_session_length(s) == 0);
    fipsc_llama_session_free(s);

    fipsc_capture cap;
    int twice[2] = {1, 1}, missing[1] = {3};
    CHECK_FAILS(fipsc_capture_init(&cap, m, twice, 2, 0, &err), FIPSC_ERR_ARG, "listed twice", &err);
    CHECK_FAILS(fipsc_capture_init(&cap, m, missing, 1, 0, &err), FIPSC_ERR_ARG, "layer 3 does not exist", &err);

    int32_t ok[2] = {1, 2};
    /* Not a Llama model. */
    m->family = NULL; /* another family's (the view is still freed by its own view_free) */
    CHECK_FAILS(fipsc_llama_forward(m, ok, 1, 2, logits, NULL, &err), FIPSC_ERR_UNSUPPORTED,
                "not a Llama-family model", &err);
    fipsc_model_free(m);
}

int main(void)
{
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++) test_against_naive(&shapes[i], i);
    test_thread_determinism();
    test_errors();
    return test_summary("test_runtime_llama");
}
