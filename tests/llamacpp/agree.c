/* Compares fipsc's next-token distributions with llama.cpp's (tests/llamacpp/probs.mjs).
 *
 *   llamacpp_agree MODEL CORPUS PROBS.f32 [MAX_MEAN_KL [MIN_GAP]]
 *
 * MODEL is any language model fipsc loads (a GGUF file, the compressed .safetensors it was
 * exported from, ...); CORPUS a fipsc token corpus (binary, or text with one sequence per line);
 * PROBS.f32 llama.cpp's probabilities [total tokens, vocab], sequence after sequence. fipsc runs
 * each sequence in one forward pass and takes the softmax of its logits p; with q llama.cpp's
 * row, per position
 *   KL(p || q) = Σ_v p_v (ln p_v − ln q_v)      (q renormalised to sum 1 in float64, and floored at
 *                                                  1e-30: a zero where p is not is a disagreement
 *                                                  worth ~69 nats, not a crash)
 * Prints the mean and largest KL, the largest |p − q| and whether the argmax agrees. The argmax
 * is compared where fipsc's two most likely tokens are at least MIN_GAP (default 1e-4) apart in
 * probability: at a near-tie, rounding differences between two correct implementations (another
 * CPU's kernels) may pick either token; the positions skipped are counted. Exit 0 when the mean
 * KL is at most MAX_MEAN_KL (default 1e-4) and every compared argmax agrees, 1 otherwise, 2 on
 * bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/file.h"
#include "formats/corpus.h"
#include "families/registry.h"
#include "model/family.h"

static int fail_usage(const char *msg, const char *what)
{
    fprintf(stderr, "llamacpp_agree: %s%s\n", msg, what ? what : "");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6)
        return fail_usage("usage: llamacpp_agree MODEL CORPUS PROBS.f32 [MAX_MEAN_KL [MIN_GAP]]", NULL);
    const double max_mean_kl = argc >= 5 ? atof(argv[4]) : 1e-4, min_gap_checked = argc >= 6 ? atof(argv[5]) : 1e-4;
    fipsc_error err = {0};
    fipsc_corpus *corpus;
    if (fipsc_corpus_load(argv[2], &corpus, &err)) return fail_usage(err.message, NULL);
    const int n = (int)corpus->offsets[corpus->n_seqs];
    fipsc_model *m = NULL;
    const fipsc_lm_ops *lm;
    if (fipsc_model_load(argv[1], &m, &err) || fipsc_model_need_lm(m, &lm, &err)) {
        fipsc_corpus_free(corpus);
        fipsc_model_free(m);
        return fail_usage(err.message, NULL);
    }
    fipsc_lm_info info;
    lm->info(m, &info);
    const int V = info.vocab_size;
    fipsc_mapped_file *probs;
    if (fipsc_map_file(argv[3], &probs, &err)) return fail_usage(err.message, NULL);
    if (probs->size != (size_t)n * (size_t)V * sizeof(float)) {
        fprintf(stderr, "llamacpp_agree: %s has %zu bytes, expected %d positions x %d tokens x 4\n", argv[3],
                probs->size, n, V);
        return 2;
    }
    const float *q = (const float *)probs->data;
    if (fipsc_corpus_check_vocab(corpus, V, argv[2], &err)) return fail_usage(err.message, NULL);
    float *logits = malloc((size_t)n * V * sizeof *logits);
    if (!logits) return fail_usage("out of memory", NULL);
    for (int s = 0; s < corpus->n_seqs; s++) {
        const int64_t at = corpus->offsets[s], len = corpus->offsets[s + 1] - at;
        if (lm->forward(m, corpus->ids + at, 1, (int)len, logits + at * V, NULL, &err)) return fail_usage(err.message, NULL);
    }

    double sum_kl = 0, max_kl = 0, max_dp = 0, min_gap = 1;
    int argmax_agree = 0, near_ties = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * V, *qi = q + (size_t)i * V;
        double zmax = z[0], norm = 0, qnorm = 0;
        for (int v = 0; v < V; v++) qnorm += qi[v]; /* llama.cpp's rows sum to 1 within float rounding */
        for (int v = 1; v < V; v++) zmax = fmax(zmax, z[v]);
        for (int v = 0; v < V; v++) norm += exp(z[v] - zmax);
        double kl = 0, top = -1, second = -1;
        int arg_p = 0, arg_q = 0;
        for (int v = 0; v < V; v++) {
            double p = exp(z[v] - zmax) / norm;
            if (p > 0) kl += p * (log(p) - log(fmax(qi[v] / qnorm, 1e-30)));
            max_dp = fmax(max_dp, fabs(p - qi[v]));
            if (p > top) {
                second = top;
                top = p;
                arg_p = v;
            } else if (p > second) second = p;
            if (qi[v] > qi[arg_q]) arg_q = v;
        }
        sum_kl += kl;
        max_kl = fmax(max_kl, kl);
        min_gap = fmin(min_gap, top - second);
        if (top - second < min_gap_checked) near_ties++;
        else argmax_agree += arg_p == arg_q;
    }
    const double mean_kl = sum_kl / n;
    const bool ok = mean_kl <= max_mean_kl && argmax_agree == n - near_ties;
    printf("%s: %d positions, vocabulary %d: mean KL %.3g (limit %.3g), max KL %.3g, max |dp| %.3g, argmax agrees "
           "at %d/%d (%d near-ties under %.3g skipped; smallest top-2 gap %.3g): %s\n",
           argv[1], n, V, mean_kl, max_mean_kl, max_kl, max_dp, argmax_agree, n - near_ties, near_ties,
           min_gap_checked, min_gap, ok ? "agree" : "DISAGREE");
    free(logits);
    fipsc_corpus_free(corpus);
    fipsc_unmap_file(probs);
    fipsc_model_free(m);
    return ok ? 0 : 1;
}
