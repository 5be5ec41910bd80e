/* Perplexity and KL divergence against a reference model (see src/eval/eval.h).
 *
 * Sequences of equal length are run through the forward pass in batches; each scored position's
 * numbers go into per-position arrays (filled in parallel, one position per iteration), and all
 * means and quantiles are taken afterwards in position order, so the thread count never changes
 * a result. Log-softmax in double: log p(v) = l_v − (max + log Σ_u exp(l_u − max)). */
#include "eval/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/family.h"

/* Default rows per forward pass: at most 4096, and at most 64 Mi logits (256 MiB) per model. */
static int default_max_rows(int vocab)
{
    long long rows = (64LL << 20) / vocab;
    return (int)(rows > 4096 ? 4096 : rows < 1 ? 1 : rows);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double fipsc_quantile(double *x, int64_t n, double q)
{
    if (n <= 0) return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double rank = q * (double)(n - 1);
    int64_t lo = (int64_t)floor(rank), hi = lo + 1 < n ? lo + 1 : lo;
    double frac = rank - (double)lo;
    return x[lo] + frac * (x[hi] - x[lo]);
}

/* log Σ_v exp(l_v), stably, in double. */
static double log_sum_exp(const float *l, int n, int *argmax)
{
    int best = 0;
    for (int v = 1; v < n; v++)
        if (l[v] > l[best]) best = v;
    *argmax = best;
    double mx = l[best], s = 0.0;
    for (int v = 0; v < n; v++) s += exp((double)l[v] - mx);
    return mx + log(s);
}

/* KL(ref ‖ model) = Σ_v p_ref(v)·(log p_ref(v) − log p_model(v)), given each side's log Σ exp. */
static double kl_of(const float *l, double lz, const float *lr, double lzr, int vocab)
{
    double kl = 0.0;
    for (int v = 0; v < vocab; v++) {
        double log_pr = (double)lr[v] - lzr, log_pm = (double)l[v] - lz;
        kl += exp(log_pr) * (log_pr - log_pm);
    }
    return kl;
}

double fipsc_eval_position_kl(const float *logits, const float *ref_logits, int vocab, bool *agree)
{
    int am, ar;
    const double lz = log_sum_exp(logits, vocab, &am), lzr = log_sum_exp(ref_logits, vocab, &ar);
    *agree = am == ar;
    return kl_of(logits, lz, ref_logits, lzr, vocab);
}

/* Scored-position arrays. */
typedef struct scores {
    double *nll, *ref_nll, *kl;
    unsigned char *agree;
} scores;

/* Scores rows skip .. len − 2 of each of `batch` sequences. */
static void score_batch(const float *logits, const float *ref_logits, const int32_t *const *seqs,
                        int batch, int len, int skip, int vocab, scores *sc, int64_t first)
{
    const int per = len - 1 - skip;
    const long long rows = (long long)batch * per;
#pragma omp parallel for schedule(static) if (rows * vocab > 65536)
    for (long long r = 0; r < rows; r++) {
        int b = (int)(r / per), i = skip + (int)(r % per);
        const float *l = logits + ((size_t)b * len + i) * vocab;
        int32_t target = seqs[b][i + 1];
        int am;
        double lz = log_sum_exp(l, vocab, &am);
        int64_t k = first + r;
        sc->nll[k] = lz - (double)l[target];
        if (!ref_logits) continue;
        const float *lr = ref_logits + ((size_t)b * len + i) * vocab;
        int ar;
        double lzr = log_sum_exp(lr, vocab, &ar);
        sc->ref_nll[k] = lzr - (double)lr[target];
        sc->kl[k] = kl_of(l, lz, lr, lzr, vocab);
        sc->agree[k] = am == ar;
    }
}

static double mean_of(const double *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

fipsc_status fipsc_eval_corpus(const fipsc_model *m, const fipsc_corpus *c,
                               const fipsc_eval_options *opt, fipsc_eval_result *out,
                               fipsc_error *err)
{
    static const fipsc_eval_options defaults = {0};
    if (!opt) opt = &defaults;
    memset(out, 0, sizeof *out);
    const fipsc_model *ref = opt->ref;
    const fipsc_lm_ops *lm[2] = {fipsc_model_lm(m), ref ? fipsc_model_lm(ref) : NULL};
    for (int k = 0; k < (ref ? 2 : 1); k++) {
        const fipsc_model *mm = k ? ref : m;
        if (!lm[k])
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "%s%s is not a language model (architecture '%s'): perplexity needs one",
                              k ? "the reference " : "", mm->source_path[0] ? mm->source_path : "the model",
                              mm->arch_name);
    }
    fipsc_lm_info info[2];
    lm[0]->info(m, &info[0]);
    if (ref) lm[1]->info(ref, &info[1]);
    const int vocab = info[0].vocab_size;
    fipsc_status st;
    if ((st = fipsc_corpus_check_vocab(c, vocab, "the model", err))) return st;
    if (ref && info[1].vocab_size != vocab)
        return fipsc_fail(err, FIPSC_ERR_ARG, "the reference model's vocabulary has %d tokens but the model's has %d",
                          info[1].vocab_size, vocab);
    int64_t total = 0;
    for (int s = 0; s < c->n_seqs; s++) {
        int len = fipsc_corpus_length(c, s), skip = opt->skip_rows ? opt->skip_rows[s] : 0;
        if (skip < 0 || (len > 1 && skip > len - 2) || (len <= 1 && skip > 0))
            return fipsc_fail(err, FIPSC_ERR_INTERNAL, "sequence %d of %d tokens: %d context-only rows", s, len, skip);
        for (int k = 0; k < (ref ? 2 : 1); k++)
            if (info[k].context > 0 && len > info[k].context)
                return fipsc_fail(err, FIPSC_ERR_ARG,
                                  "corpus sequence %d has %d tokens but the %s's context is %d positions",
                                  s, len, k == 0 ? "model" : "reference model", info[k].context);
        total += len > 1 ? len - 1 - skip : 0;
    }
    if (total == 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "the corpus has nothing to score: every sequence is a single token");

    const int max_rows = opt->max_rows > 0 ? opt->max_rows : default_max_rows(vocab);
    scores sc = {0};
    sc.nll = malloc((size_t)total * sizeof(double));
    if (ref) {
        sc.ref_nll = malloc((size_t)total * sizeof(double));
        sc.kl = malloc((size_t)total * sizeof(double));
        sc.agree = malloc((size_t)total);
    }
    int32_t *tokens = NULL;
    const int32_t **seqs = malloc((size_t)c->n_seqs * sizeof *seqs);
    float *logits = NULL, *ref_logits = NULL;
    size_t cap_rows = 0;
    if (!sc.nll || (ref && (!sc.ref_nll || !sc.kl || !sc.agree)) || !seqs) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %lld scored positions", (long long)total);
        goto done;
    }

    int64_t scored = 0;
    for (int s = 0; s < c->n_seqs && !st;) {
        /* A batch: consecutive sequences of s's length, at most max_rows rows (at least one). */
        const int len = fipsc_corpus_length(c, s), skip = opt->skip_rows ? opt->skip_rows[s] : 0;
        int batch = 1;
        while (s + batch < c->n_seqs && fipsc_corpus_length(c, s + batch) == len &&
               (opt->skip_rows ? opt->skip_rows[s + batch] : 0) == skip && (long long)(batch + 1) * len <= max_rows)
            batch++;
        const size_t rows = (size_t)batch * len;
        if (rows > cap_rows) {
            free(tokens);
            free(logits);
            free(ref_logits);
            tokens = malloc(rows * sizeof *tokens);
            logits = malloc(rows * vocab * sizeof *logits);
            ref_logits = ref ? malloc(rows * vocab * sizeof *ref_logits) : NULL;
            cap_rows = rows;
            if (!tokens || !logits || (ref && !ref_logits)) {
                st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the logits of %zu tokens", rows);
                break;
            }
        }
        for (int b = 0; b < batch; b++) {
            seqs[b] = fipsc_corpus_seq(c, s + b);
            memcpy(tokens + (size_t)b * len, seqs[b], (size_t)len * sizeof *tokens);
        }
        if (len > 1) {
            if ((st = lm[0]->forward(m, tokens, batch, len, logits, NULL, err))) break;
            if (ref && (st = lm[1]->forward(ref, tokens, batch, len, ref_logits, NULL, err))) {
                fipsc_fail_context(err, "reference model: ");
                break;
            }
            score_batch(logits, ref ? ref_logits : NULL, seqs, batch, len, skip, vocab, &sc, scored);
            scored += (int64_t)batch * (len - 1 - skip);
        }
        s += batch;
        if (opt->progress) opt->progress(opt->progress_ctx, s, c->n_seqs);
    }
    if (st) goto done;

    out->n_sequences = c->n_seqs;
    out->n_predicted = total;
    out->nll = mean_of(sc.nll, total);
    out->ppl = exp(out->nll);
    if (ref) {
        out->has_ref = true;
        out->ref_nll = mean_of(sc.ref_nll, total);
        out->ref_ppl = exp(out->ref_nll);
        out->delta_ppl = out->ppl - out->ref_ppl;
        out->kl_mean = mean_of(sc.kl, total);
        int64_t same = 0;
        for (int64_t i = 0; i < total; i++) same += sc.agree[i];
        out->top1_agreement = (double)same / (double)total;
        out->kl_median = fipsc_quantile(sc.kl, total, 0.5); /* sorts kl: means taken before */
        out->kl_p99 = fipsc_quantile(sc.kl, total, 0.99);
        out->kl_max = sc.kl[total - 1];
    }
done:
    free(sc.nll);
    free(sc.ref_nll);
    free(sc.kl);
    free(sc.agree);
    free(seqs);
    free(tokens);
    free(logits);
    free(ref_logits);
    return st;
}
