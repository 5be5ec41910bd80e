/* Prompt continuation and corpus sampling on top of a language model's decoding sessions (see
 * src/model/generate.h). */
#include "model/generate.h"

#include <stdlib.h>
#include <string.h>
#include "core/clock.h"

#include "model/family.h"

/* Models up to this many parameters sample sequences in parallel, one per thread: their weights
 * fit in a core's cache and a decode step takes microseconds, too little to split. (A decode step
 * calls no BLAS: one-row products run on fipsc_gemv.) Larger models decode several sequences
 * together in lockstep where the family can (one product over their rows per step reads the
 * weights once for all of them, where a one-sequence step is bound by reading every weight), else
 * one at a time, with each step spread over the threads. */
#define PARALLEL_SEQUENCES_MAX_PARAMS (1LL << 21)
/* Lockstep batches: at most 64 sequences, and no more than keep their KV caches within 2 GiB.
 * At the Llama-3.2-1B shape 64 sequences decode about 4x the tokens per second of one (16: 1.8x,
 * 32: 2.7x; BENCHMARKS.md), their caches of 256 positions taking 1.1 GB. */
#define LOCKSTEP_MAX 64
#define LOCKSTEP_CACHE_BYTES (2LL << 30)

/* Sequences per lockstep batch for sequences of len tokens: from the model and len alone (never
 * from the machine), so the sampled tokens depend on nothing else. */
static int lockstep_batch(const fipsc_lm_info *info, int len)
{
    int b = LOCKSTEP_MAX;
    while (b > 1 && (int64_t)b * len * info->cache_bytes_per_position > LOCKSTEP_CACHE_BYTES) b /= 2;
    return b;
}

static fipsc_status check_context(const fipsc_lm_info *info, long long positions, const char *what,
                                  fipsc_error *err)
{
    int ctx = info->context;
    if (ctx > 0 && positions > ctx)
        return fipsc_fail(err, FIPSC_ERR_ARG, "%s needs %lld positions but the model's context is %d",
                          what, positions, ctx);
    return FIPSC_OK;
}

/* Feeds prompt, then samples n_new tokens through session s (already reset); on_token (may be
 * NULL) hears each one as soon as it is drawn. */
static fipsc_status continue_prompt(const fipsc_lm_ops *lm, fipsc_lm_session *s, const fipsc_lm_info *info,
                                    const int32_t *prompt, int n_prompt, int n_new,
                                    fipsc_sampler *sampler, bool stop_at_eos, float *logits,
                                    fipsc_token_fn on_token, void *ctx, int32_t *out, int *n_out, fipsc_error *err)
{
    *n_out = 0;
    if (n_new <= 0) return FIPSC_OK;
    fipsc_status st = lm->session_prefill(s, prompt, n_prompt, logits, err);
    for (int i = 0; !st && i < n_new; i++) {
        int32_t tok = fipsc_sampler_sample(sampler, logits);
        out[(*n_out)++] = tok;
        if (on_token) on_token(ctx, tok);
        if ((stop_at_eos && tok == info->eos_token) || i == n_new - 1) break;
        st = lm->session_decode(s, tok, logits, err);
    }
    return st;
}

fipsc_status fipsc_lm_generate(const fipsc_model *m, const int32_t *prompt, int n_prompt, int n_new,
                               fipsc_sampler *sampler, bool stop_at_eos, int32_t *out, int *n_out, fipsc_error *err)
{
    return fipsc_lm_generate_streaming(m, prompt, n_prompt, n_new, sampler, stop_at_eos, NULL, NULL, out, n_out, err);
}

fipsc_status fipsc_lm_generate_streaming(const fipsc_model *m, const int32_t *prompt, int n_prompt, int n_new,
                                         fipsc_sampler *sampler, bool stop_at_eos, fipsc_token_fn on_token,
                                         void *ctx, int32_t *out, int *n_out, fipsc_error *err)
{
    *n_out = 0;
    const fipsc_lm_ops *lm;
    fipsc_status st = fipsc_model_need_lm(m, &lm, err);
    if (st) return st;
    if (n_prompt <= 0 || n_new < 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "generation needs a prompt of at least one token "
                          "and n_new >= 0 (got %d and %d)", n_prompt, n_new);
    fipsc_lm_info info;
    lm->info(m, &info);
    if (sampler->vocab != info.vocab_size)
        return fipsc_fail(err, FIPSC_ERR_ARG, "sampler vocabulary %d differs from the model's %d",
                          sampler->vocab, info.vocab_size);
    if ((st = check_context(&info, (long long)n_prompt + n_new, "the prompt plus the new tokens", err)))
        return st;
    float *logits = malloc((size_t)info.vocab_size * sizeof *logits);
    if (!logits) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for logits");
    fipsc_lm_session *s = NULL;
    if (!(st = lm->session_new(m, n_prompt + n_new, &s, err)))
        st = continue_prompt(lm, s, &info, prompt, n_prompt, n_new, sampler, stop_at_eos, logits, on_token, ctx, out,
                             n_out, err);
    if (s) lm->session_free(s);
    free(logits);
    return st;
}

/* The work that the threads of fipsc_lm_sample_sequences share. */
typedef struct sample_job {
    const fipsc_model *m;
    const fipsc_lm_ops *lm;
    fipsc_lm_info info;
    int n, len;
    float temperature, top_p;
    uint64_t seed;
    int32_t *ids;
    fipsc_sample_progress_fn progress;
    void *progress_ctx;
    double start;
    int done;
    long long done_tokens; /* lockstep sampling */
    fipsc_status status;
    int failed_seq;
    fipsc_error err;
} sample_job;

/* Keeps the failure of the lowest sequence index among those that ran (after a failure the
 * remaining sequences are skipped). */
static void record_failure(sample_job *job, int seq, const fipsc_error *e)
{
#pragma omp critical(fipsc_sample_failure)
    {
        if (job->status == FIPSC_OK || seq < job->failed_seq) {
            job->failed_seq = seq;
            job->err = *e;
#pragma omp atomic write
            job->status = e->code ? e->code : FIPSC_ERR_INTERNAL;
        }
    }
}

/* Runs inside a parallel region (possibly of one thread): every thread of the team must reach
 * the worksharing loop, so a thread whose set-up failed still enters it and skips its share. */
static void sample_worker(sample_job *job)
{
    const fipsc_model *m = job->m;
    const fipsc_lm_ops *lm = job->lm;
    fipsc_error e = {0};
    fipsc_lm_session *s = NULL;
    float *logits = malloc((size_t)job->info.vocab_size * sizeof *logits);
    bool ready = logits != NULL;
    if (!ready) {
        fipsc_fail(&e, FIPSC_ERR_NOMEM, "out of memory for logits");
        record_failure(job, 0, &e);
    } else if (lm->session_new(m, job->len, &s, &e)) {
        record_failure(job, 0, &e);
        ready = false;
    }
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < job->n; i++) {
        fipsc_status failed;
#pragma omp atomic read
        failed = job->status;
        if (!ready || failed) continue;
        int32_t *seq = job->ids + (size_t)i * job->len;
        seq[0] = job->info.bos_token;
        lm->session_reset(s);
        fipsc_sampler sampler;
        int got = 0;
        fipsc_status st = fipsc_sampler_init(&sampler, job->info.vocab_size, job->temperature, job->top_p,
                                             fipsc_seed_derive(job->seed, (uint64_t)i), &e);
        if (!st)
            st = continue_prompt(lm, s, &job->info, seq, 1, job->len - 1, &sampler, false, logits, NULL, NULL, seq + 1,
                                 &got, &e);
        fipsc_sampler_free(&sampler);
        if (st) {
            record_failure(job, i, &e);
            continue;
        }
        if (job->progress) {
#pragma omp critical(fipsc_sample_progress)
            job->progress(job->progress_ctx, (long long)++job->done * job->len, (long long)job->n * job->len,
                          fipsc_seconds_now() - job->start);
        }
    }
    if (s) lm->session_free(s);
    free(logits);
}

/* Sequences [i0, i0 + batch) in one lockstep session: all start with BOS, and each step feeds every
 * sequence its last token and samples its next from its own stream. */
static fipsc_status sample_lockstep_batch(sample_job *job, int i0, int batch, fipsc_error *err)
{
    const fipsc_lm_ops *lm = job->lm;
    const int vocab = job->info.vocab_size;
    fipsc_lm_session *s = NULL;
    float *logits = malloc((size_t)batch * vocab * sizeof *logits);
    int32_t *feed = malloc((size_t)batch * sizeof *feed);
    fipsc_sampler *samplers = calloc((size_t)batch, sizeof *samplers);
    int ready = 0;
    fipsc_status st = FIPSC_OK;
    if (!logits || !feed || !samplers) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %d sequences' logits", batch);
    while (!st && ready < batch && !(st = fipsc_sampler_init(&samplers[ready], vocab, job->temperature, job->top_p,
                                                             fipsc_seed_derive(job->seed, (uint64_t)(i0 + ready)), err)))
        ready++; /* samplers [0, ready) to free */
    if (!st) st = lm->batch_session_new(job->m, batch, job->len, &s, err);
    for (int b = 0; !st && b < batch; b++) feed[b] = job->ids[(size_t)(i0 + b) * job->len] = job->info.bos_token;
    job->done_tokens += batch; /* the BOS tokens */
    for (int t = 1; !st && t < job->len; t++) {
        if ((st = lm->batch_step(s, feed, logits, err))) {
            fipsc_fail_context(err, "sequences %d-%d, position %d: ", i0, i0 + batch - 1, t - 1);
            break;
        }
        for (int b = 0; b < batch; b++)
            feed[b] = job->ids[(size_t)(i0 + b) * job->len + t] = fipsc_sampler_sample(&samplers[b], logits + (size_t)b * vocab);
        job->done_tokens += batch;
        if (job->progress)
            job->progress(job->progress_ctx, job->done_tokens, (long long)job->n * job->len, fipsc_seconds_now() - job->start);
    }
    if (s) lm->session_free(s);
    for (int b = 0; b < ready; b++) fipsc_sampler_free(&samplers[b]);
    free(samplers);
    free(feed);
    free(logits);
    return st;
}

fipsc_status fipsc_lm_sample_sequences(const fipsc_model *m, int n, int len, float temperature, float top_p,
                                       uint64_t seed, int32_t *ids, fipsc_sample_progress_fn progress,
                                       void *progress_ctx, fipsc_error *err)
{
    if (n <= 0 || len <= 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "sampling %d sequences of %d tokens (both must be positive)", n, len);
    const fipsc_lm_ops *lm;
    fipsc_status st = fipsc_model_need_lm(m, &lm, err);
    if (st) return st;
    fipsc_lm_info info;
    lm->info(m, &info);
    if ((st = check_context(&info, len, "a sampled sequence", err))) return st;
    fipsc_sampler probe; /* validates temperature and top_p once, before any thread starts */
    if ((st = fipsc_sampler_init(&probe, info.vocab_size, temperature, top_p, seed, err))) return st;
    fipsc_sampler_free(&probe);

    sample_job job = {.m = m, .lm = lm, .info = info, .n = n, .len = len, .temperature = temperature, .top_p = top_p,
                      .seed = seed, .ids = ids, .progress = progress, .progress_ctx = progress_ctx,
                      .start = fipsc_seconds_now()};
    const bool small = fipsc_model_count_params(m).total <= PARALLEL_SEQUENCES_MAX_PARAMS;
    if (!small && lm->batch_session_new && lm->batch_step) {
        const int per = lockstep_batch(&info, len);
        for (int i0 = 0; !st && i0 < n; i0 += per) {
            const int batch = n - i0 < per ? n - i0 : per;
            st = sample_lockstep_batch(&job, i0, batch, err);
        }
        return st;
    }
    bool parallel = small && n > 1;
#pragma omp parallel if (parallel)
    sample_worker(&job);
    if (job.status) {
        if (err) *err = job.err;
        return fipsc_fail_context(err, "sequence %d: ", job.failed_seq);
    }
    return FIPSC_OK;
}

int64_t fipsc_lm_sample_memory_bytes(const fipsc_model *m, int n, int len)
{
    const fipsc_lm_ops *lm = fipsc_model_lm(m);
    if (!lm || n <= 0 || len <= 0) return 0;
    fipsc_lm_info info;
    lm->info(m, &info);
    const bool lockstep = fipsc_model_count_params(m).total > PARALLEL_SEQUENCES_MAX_PARAMS && lm->batch_session_new;
    int64_t batch = lockstep ? lockstep_batch(&info, len) : 1;
    if (batch > n) batch = n;
    /* the caches, the logits; the workspace's rows are small beside them */
    return batch * ((int64_t)len * info.cache_bytes_per_position + (int64_t)info.vocab_size * (int64_t)sizeof(float));
}
