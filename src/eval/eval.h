/* Language-model evaluation on a token corpus: perplexity, and against a reference model the
 * distribution-level measures that llama.cpp's `perplexity --kl-divergence` reports.
 *
 * In every sequence, position 0 (BOS) is context only: the logits at position i are scored on
 * token i + 1, for i = 0 .. len − 2 (from i = skip_rows[s] when the options give those). Per scored position, with log-softmax taken in double:
 *   nll      = −log p_model(token)
 *   KL       = Σ_v p_ref(v) · (log p_ref(v) − log p_model(v))      (KL(ref ‖ model), nats)
 *   top-1    = [argmax logits_model == argmax logits_ref]            (lowest id on ties)
 * Perplexity = exp(mean nll). The 99th percentile of KL interpolates linearly between the two
 * nearest order statistics (rank 0.99·(N − 1), as numpy's default). Sums run in a fixed order,
 * so results do not depend on the thread count. */
#ifndef FIPSC_EVAL_H
#define FIPSC_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/corpus.h"
#include "model/model.h"
#include "core/status.h"
#include "text/tokenizer.h"

typedef void (*fipsc_progress_fn)(void *ctx, int done, int total);

typedef struct fipsc_eval_options {
    const fipsc_model *ref;      /* NULL: perplexity only */
    int max_rows;                /* token rows per forward pass (at least one sequence);
                                  * 0: 4096, fewer for large vocabularies (≤ 64 Mi logits) */
    fipsc_progress_fn progress;  /* NULL, or called with sequences done / total */
    const int *skip_rows;        /* NULL, or per sequence the leading prediction rows that are
                                  * context only (the strided windows of fipsc_text_windows) */
    void *progress_ctx;
} fipsc_eval_options;

typedef struct fipsc_eval_result {
    int n_sequences;
    int64_t n_predicted;   /* scored positions: Σ (len − 1) */
    double nll;            /* mean negative log-likelihood, nats per token */
    double ppl;            /* exp(nll) */
    bool has_ref;
    double ref_nll, ref_ppl;
    double delta_ppl;      /* ppl − ref_ppl */
    double kl_mean, kl_median, kl_p99, kl_max;
    double top1_agreement; /* fraction of scored positions whose argmaxes agree */
} fipsc_eval_result;

/* Evaluates Llama-family model m on corpus c. Every id must be below the model's vocabulary
 * and every sequence must fit in its context; a reference must have the same vocabulary. */
fipsc_status fipsc_eval_corpus(const fipsc_model *m, const fipsc_corpus *c,
                               const fipsc_eval_options *opt, fipsc_eval_result *out,
                               fipsc_error *err);

/* Perplexity of a text (Hugging Face's protocol for fixed-length models): the text's token stream
 * (fipsc_text_stream) cut into strided windows (fipsc_text_windows) of `context` tokens (0: the
 * model's context, at most 1024) every `stride` tokens (0: context / 2), so that every token but
 * the first is scored once with up to context − 1 tokens before it. Besides the perplexity, the
 * bits per byte of the text: Σ −log₂ p(token) / UTF-8 bytes, comparable across tokenizers. */
typedef struct fipsc_text_eval {
    size_t bytes;          /* of the text */
    size_t tokens;         /* of the stream, BOS included */
    int context, stride, windows;
    double bits_per_byte;
} fipsc_text_eval;

fipsc_status fipsc_eval_text(const fipsc_model *m, const fipsc_tokenizer *t, const char *text, size_t len,
                             int context, int stride, const fipsc_eval_options *opt, fipsc_eval_result *out,
                             fipsc_text_eval *tx, fipsc_error *err);

/* KL(ref ‖ model) at one position from the two models' logits [vocab], in double, as
 * fipsc_eval_corpus scores each position; *agree: whether their most likely tokens (the first of
 * equal ones) agree. For scoring positions one at a time (bench/decode_kl.c). */
double fipsc_eval_position_kl(const float *logits, const float *ref_logits, int vocab, bool *agree);

/* The q-quantile (0 <= q <= 1) of x[0..n) by linear interpolation; sorts x in place. */
double fipsc_quantile(double *x, int64_t n, double q);

#endif
