/* KL(original ‖ model) per token along the decoding path: what generation computes, one token at a
 * time through the KV-cached session (one-row kernels), where `fipsc eval` scores whole sequences
 * at once (batched kernels). Used to measure what an instruction set level that rounds differently
 * at one row costs (src/core/isa.h: the AVX-512 BF16 level):
 *
 *   decode_kl MODEL ORIGINAL CORPUS [--seqs N] [--isa LEVEL] [--threads T]
 *
 * Every sequence of the corpus (the first N) is fed token by token to both models; position i's
 * logits predict token i + 1. Prints the mean KL in nats and the fraction of positions whose most
 * likely token agrees, each position scored as `fipsc eval --ref` scores it
 * (fipsc_eval_position_kl). The original runs at the same level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "core/threads.h"
#include "eval/eval.h"
#include "families/registry.h"
#include "formats/corpus.h"
#include "model/family.h"

static _Noreturn void die(const char *what, const fipsc_error *err)
{
    fprintf(stderr, "decode_kl: %s: %s\n", what, err ? err->message : "bad arguments");
    exit(err ? 1 : 2);
}

int main(int argc, char **argv)
{
    if (argc < 4) die("usage: decode_kl MODEL ORIGINAL CORPUS [--seqs N] [--isa LEVEL] [--threads T]", NULL);
    int seqs = 16;
    fipsc_error err = {0};
    for (int i = 4; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seqs") == 0) seqs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0) fipsc_threads_set(atoi(argv[i + 1]));
        else if (strcmp(argv[i], "--isa") == 0) {
            fipsc_isa isa;
            if (fipsc_isa_parse(argv[i + 1], &isa, &err) || fipsc_isa_set(isa, &err)) die("--isa", &err);
        } else die("usage: decode_kl MODEL ORIGINAL CORPUS [--seqs N] [--isa LEVEL] [--threads T]", NULL);
    }
    fipsc_model *m[2];
    const fipsc_lm_ops *lm[2];
    for (int k = 0; k < 2; k++)
        if (fipsc_model_load(argv[1 + k], &m[k], &err) || fipsc_model_need_lm(m[k], &lm[k], &err)) die(argv[1 + k], &err);
    fipsc_lm_info info;
    lm[0]->info(m[0], &info);
    fipsc_corpus *c;
    if (fipsc_corpus_load(argv[3], &c, &err) || fipsc_corpus_check_vocab(c, info.vocab_size, argv[3], &err))
        die(argv[3], &err);
    if (seqs > c->n_seqs) seqs = c->n_seqs;
    const int V = info.vocab_size;
    float *logits[2] = {malloc((size_t)V * sizeof(float)), malloc((size_t)V * sizeof(float))};
    double kl_sum = 0.0;
    long positions = 0, agree = 0;
    for (int q = 0; q < seqs; q++) {
        const int32_t *ids = c->ids + c->offsets[q];
        const int len = (int)(c->offsets[q + 1] - c->offsets[q]);
        fipsc_lm_session *s[2];
        for (int k = 0; k < 2; k++)
            if (lm[k]->session_new(m[k], len, &s[k], &err)) die("session", &err);
        for (int i = 0; i + 1 < len; i++) {
            for (int k = 0; k < 2; k++)
                if (lm[k]->session_decode(s[k], ids[i], logits[k], &err)) die("decode", &err);
            bool same_top;
            kl_sum += fipsc_eval_position_kl(logits[0], logits[1], V, &same_top); /* logits[1]: the original */
            agree += same_top;
            positions++;
        }
        for (int k = 0; k < 2; k++) lm[k]->session_free(s[k]);
    }
    printf("decode path, %s kernels: %d sequences, %ld positions: KL mean %.6f nats, top-1 agreement %.4f\n",
           fipsc_isa_name(fipsc_isa_active()), seqs, positions, kl_sum / (double)positions,
           (double)agree / (double)positions);
    for (int k = 0; k < 2; k++) free(logits[k]), fipsc_model_free(m[k]);
    fipsc_corpus_free(c);
    return 0;
}
