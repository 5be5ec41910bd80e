/* Prefill and decode speed of one language model, in the same protocol as
 * bench/llamacpp-speed.mjs times llama.cpp (bench/vs-llamacpp.sh runs both):
 *
 *   bench_lm_speed MODEL [--prompt N] [--decode M] [--threads T] [--reps R] [--isa LEVEL]
 *
 * A KV-cached session is prefilled with N token ids (deterministic, spread over the vocabulary)
 * and then decodes M tokens greedily, one at a time. Each phase is timed R times (a fresh session
 * each repetition); the best time is reported, as tokens per second. Loading is not timed. --isa
 * lowers the instruction set of fipsc's own kernels (src/core/isa.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/isa.h"
#include "core/threads.h"
#include "families/registry.h"
#include "model/family.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static _Noreturn void die(const char *what, const fipsc_error *err)
{
    fprintf(stderr, "bench_lm_speed: %s: %s\n", what, err ? err->message : "bad arguments");
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2) die("usage", NULL);
    int prompt = 128, decode = 16, threads = 1, reps = 2;
    fipsc_error err = {0};
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        fipsc_isa isa;
        if (strcmp(argv[i], "--isa") == 0) {
            if (fipsc_isa_parse(argv[i + 1], &isa, &err) || fipsc_isa_set(isa, &err)) die("--isa", &err);
        } else if (strcmp(argv[i], "--prompt") == 0) prompt = v;
        else if (strcmp(argv[i], "--decode") == 0) decode = v;
        else if (strcmp(argv[i], "--threads") == 0) threads = v;
        else if (strcmp(argv[i], "--reps") == 0) reps = v;
        else die("usage", NULL);
    }
    fipsc_threads_set(threads);
    fipsc_model *m;
    const fipsc_lm_ops *lm;
    if (fipsc_model_load(argv[1], &m, &err) || fipsc_model_need_lm(m, &lm, &err)) die(argv[1], &err);
    fipsc_lm_info info;
    lm->info(m, &info);
    int32_t *tokens = malloc((size_t)prompt * sizeof *tokens);
    for (int i = 0; i < prompt; i++) tokens[i] = (int32_t)((i * 7919 + 13) % info.vocab_size);
    float *logits = malloc((size_t)info.vocab_size * sizeof *logits);
    double best_prefill = 1e30, best_decode = 1e30;
    for (int r = 0; r < reps; r++) {
        fipsc_lm_session *s;
        if (lm->session_new(m, prompt + decode + 1, &s, &err)) die("session", &err);
        double t0 = now();
        if (lm->session_prefill(s, tokens, prompt, logits, &err)) die("prefill", &err);
        double t1 = now();
        for (int i = 0; i < decode; i++) {
            int32_t next = 0;
            for (int v = 1; v < info.vocab_size; v++)
                if (logits[v] > logits[next]) next = v;
            if (lm->session_decode(s, next, logits, &err)) die("decode", &err);
        }
        double t2 = now();
        lm->session_free(s);
        if (t1 - t0 < best_prefill) best_prefill = t1 - t0;
        if (t2 - t1 < best_decode) best_decode = t2 - t1;
    }
    printf("fipsc: prefill %d tokens %.2f tok/s, decode %d tokens %.3f tok/s (%d threads, %s kernels, best of %d)\n",
           prompt, prompt / best_prefill, decode, decode / best_decode, threads, fipsc_isa_name(fipsc_isa_active()), reps);
    free(tokens);
    free(logits);
    fipsc_model_free(m);
    return 0;
}
