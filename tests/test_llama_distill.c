/* End-to-end distillation of a compressed language model (src/families/llama/distill.h) on the
 * real stories260K (grouped-query attention, 5 layers), blocks 1-2 and 3-4 compressed by SVD and
 * one magnitude pruning (layer 0 stays dense: the fixed rows come through it):
 *   - the distiller's KL at the start is `fipsc eval --ref`'s (its own forward against the runtime),
 *   - its gradients agree with central differences of its loss for every basis and every
 *     compressed matrix, judged against the loss's measured rounding (distill_gradcheck.h), and a
 *     gradient 10 % too large or with the basis's sign flipped is rejected by the same judge,
 *   - a short run lowers the KL (the runtime sees it), keeps every pruned entry at zero, and
 *   - impossible input is refused without touching the model.
 * A second model, a random-weight Llama with q/k/v biases, tied embeddings and other head
 * counts, has its gradients checked the same way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compressed_fixture.h"
#include "core/threads.h"
#include "distill_gradcheck.h"
#include "eval/eval.h"
#include "families/llama/distill.h"
#include "families/registry.h"
#include "llama_fixture.h"
#include "testutil.h"

static char stories[4096];

enum { N_SEQ = 6, LEN = 24 };

/* n sequences of len ids drawn uniformly from [0, vocab) (seeded). */
static fipsc_corpus *random_corpus(int n, int len, int vocab, uint64_t seed)
{
    int32_t *ids = malloc((size_t)n * len * sizeof *ids);
    for (int i = 0; i < n * len; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % (uint64_t)vocab);
    }
    fipsc_corpus *c = NULL;
    fipsc_error err = {0};
    CHECK_OK(fipsc_corpus_from_ids(ids, n, len, vocab, &c, &err), &err);
    free(ids);
    return c;
}

/* Sequences of the given lengths, ids drawn as above. */
static fipsc_corpus *ragged_corpus(const int *lens, int n, int vocab, uint64_t seed)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    fipsc_corpus *c = fipsc_corpus_alloc(n, total);
    for (int i = 0; i < n; i++) c->offsets[i + 1] = c->offsets[i] + lens[i];
    for (int64_t k = 0; k < total; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        c->ids[k] = (int32_t)((seed >> 33) % (uint64_t)vocab);
    }
    c->n_seqs = n;
    c->vocab_size = vocab;
    return c;
}

/* ------------------------------------------------------------------ the probe of distill_gradcheck.h */

typedef struct lm_probe {
    lm_distiller *d;
    int nb;
    const int *seq;
} lm_probe;
static int probe_blocks(const void *self) { return lm_distiller_block_count(((const lm_probe *)self)->d); }
static float *probe_block(void *self, int k, int64_t *len, const float **grad)
{
    return lm_distiller_block(((lm_probe *)self)->d, k, len, grad);
}
static void probe_changed(void *self) { lm_distiller_changed(((lm_probe *)self)->d); }
static double probe_loss(void *self)
{
    const lm_probe *p = self;
    fipsc_error err = {0};
    double l = NAN;
    CHECK_OK(lm_distiller_loss_grad(p->d, p->nb, p->seq, false, &l, &err), &err);
    return l;
}

static void check_distiller_gradients(fipsc_model *m, const fipsc_model *orig, const fipsc_corpus *c, int blocks,
                                      int first, const char *what)
{
    fipsc_error err = {0};
    lm_distiller *d = NULL;
    CHECK_OK(lm_distiller_new(m, orig, c, 4, &d, &err), &err);
    if (!d) return;
    CHECK(lm_distiller_sequences(d) == c->n_seqs);
    CHECK_MSG(lm_distiller_first_layer(d) == first, "%s: first trained layer %d", what, lm_distiller_first_layer(d));
    CHECK_MSG(lm_distiller_block_count(d) == blocks, "%s: %d blocks", what, lm_distiller_block_count(d));
    const int seq[4] = {0, 2, 3, 5};
    double loss;
    CHECK_OK(lm_distiller_loss_grad(d, 4, seq, true, &loss, &err), &err);
    CHECK_MSG(loss > 1e-3 && loss < 10.0, "%s: KL %g", what, loss);
    lm_probe p = {d, 4, seq};
    const distill_probe probe = {&p, probe_blocks, probe_block, probe_changed, probe_loss};
    check_gradients(&probe, what, true);
    lm_distiller_free(d);
}

static int64_t count_nonzero(const fipsc_model *m)
{
    int64_t nz = 0;
    for (int l = 0; l < m->n_mlps; l++)
        for (int r = 0; r < 3; r++) {
            const fipsc_linear *lin = fipsc_mlp_slot(m->mlps[l], (fipsc_mlp_role)r);
            if (!lin || !lin->factored) continue;
            const fipsc_factored_linear *fl = lin->factored;
            for (int64_t e = 0; e < fl->nnz; e++) nz += fl->val[e] != 0.0f;
        }
    return nz;
}

static double eval_kl(const fipsc_model *m, const fipsc_model *orig, const fipsc_corpus *c)
{
    fipsc_error err = {0};
    fipsc_eval_options eo = {.ref = orig};
    fipsc_eval_result res;
    CHECK_OK(fipsc_eval_corpus(m, c, &eo, &res, &err), &err);
    return res.kl_mean;
}

static void test_stories(void)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL, *orig = NULL;
    CHECK_OK(fipsc_model_load(stories, &m, &err), &err);
    CHECK_OK(fipsc_model_load(stories, &orig, &err), &err);
    if (!m || !orig) return;
    CHECK_OK(attach_svd_group(m, 1, 2, 40, 0.5, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group(m, 3, 4, 40, 0.5, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    fipsc_corpus *c = random_corpus(N_SEQ, LEN, 512, 7);

    /* the distiller's KL is the runtime's */
    lm_distiller *d = NULL;
    CHECK_OK(lm_distiller_new(m, orig, c, N_SEQ, &d, &err), &err);
    const int all[N_SEQ] = {0, 1, 2, 3, 4, 5};
    double kl = NAN, kl_one = NAN;
    if (d) CHECK_OK(lm_distiller_loss_grad(d, N_SEQ, all, false, &kl, &err), &err);
    /* the same loss, to the bit, on one thread (the rows' KLs are summed in order) */
    const int threads = fipsc_threads_get();
    fipsc_threads_set(1);
    if (d) CHECK_OK(lm_distiller_loss_grad(d, N_SEQ, all, false, &kl_one, &err), &err);
    fipsc_threads_set(threads);
    CHECK_MSG(kl_one == kl, "KL %.17g on %d threads, %.17g on one", kl, threads, kl_one);
    lm_distiller_free(d);
    const double ref = eval_kl(m, orig, c);
    CHECK_MSG(fabs(kl - ref) <= 1e-4 * ref + 1e-6, "distiller KL %.8f, fipsc eval's %.8f", kl, ref);

    /* sequences of several lengths (the original runs one at a time; a single token is skipped) */
    const int lens[5] = {9, 24, 1, 17, 2};
    fipsc_corpus *ragged = ragged_corpus(lens, 5, 512, 13);
    CHECK_OK(lm_distiller_new(m, orig, ragged, 3, &d, &err), &err);
    if (d) {
        CHECK(lm_distiller_sequences(d) == 4);
        const int four[3] = {0, 1, 3};
        double part = NAN, whole = NAN;
        CHECK_OK(lm_distiller_loss_grad(d, 3, four, true, &part, &err), &err);
        CHECK_MSG(isfinite(part) && part > 0.0, "ragged batch KL %g", part);
        CHECK_OK(lm_distiller_score(d, &whole, &err), &err);
        const double ref_ragged = eval_kl(m, orig, ragged);
        CHECK_MSG(fabs(whole - ref_ragged) <= 1e-4 * ref_ragged + 1e-6, "ragged: distiller KL %.8f, eval's %.8f", whole,
                  ref_ragged);
    }
    lm_distiller_free(d);
    fipsc_corpus_free(ragged);

    /* two bases, twelve matrices, from layer 1 up */
    check_distiller_gradients(m, orig, c, 2 + 12, 1, "stories260K");

    /* a short run lowers the KL and keeps the pruned entries at zero */
    const int64_t nz = count_nonzero(m);
    fipsc_distill_opts o;
    fipsc_distill_defaults(&o);
    o.steps = 30;
    o.batch = 3;
    o.lr = 2e-3f;
    o.lr_min = 2e-5f;
    o.relational = 0.0f;
    fipsc_distill_report rep;
    CHECK_OK(fipsc_llama_distill(m, orig, c, &o, &rep, &err), &err);
    printf("stories260K distillation, 30 steps: KL %.5f -> %.5f\n", rep.score_before, rep.score_after);
    CHECK(rep.steps == 30 && rep.items == N_SEQ && rep.rows == N_SEQ * (LEN - 1) && rep.first_layer == 1);
    CHECK_MSG(fabs(rep.score_before - ref) <= 1e-4 * ref + 1e-6, "score before %.8f", rep.score_before);
    CHECK_MSG(rep.score_after < 0.8 * rep.score_before, "KL %.5f -> %.5f", rep.score_before, rep.score_after);
    const double after = eval_kl(m, orig, c);
    CHECK_MSG(fabs(rep.score_after - after) <= 1e-4 * after + 1e-6, "score after %.8f, eval %.8f", rep.score_after,
              after);
    CHECK_MSG(count_nonzero(m) <= nz, "nonzero V entries %lld -> %lld", (long long)nz, (long long)count_nonzero(m));

    /* refusals leave the model as it is */
    const double kept = eval_kl(m, orig, c);
    o.relational = 1.0f;
    CHECK_FAILS(fipsc_llama_distill(m, orig, c, &o, &rep, &err), FIPSC_ERR_ARG, "relational", &err);
    o.relational = 0.0f;
    CHECK_FAILS(fipsc_llama_distill(orig, orig, c, &o, &rep, &err), FIPSC_ERR_ARG, "no compressed MLP", &err);
    CHECK_FAILS(fipsc_llama_distill(m, m, c, &o, &rep, &err), FIPSC_ERR_ARG, "the original's", &err);
    fipsc_corpus *shorts = random_corpus(3, 1, 512, 3);
    CHECK_FAILS(fipsc_llama_distill(m, orig, shorts, &o, &rep, &err), FIPSC_ERR_ARG, "two tokens", &err);
    fipsc_corpus_free(shorts);
    fipsc_corpus *wide = random_corpus(2, 600, 512, 3); /* stories260K's context: 512 */
    CHECK_FAILS(fipsc_llama_distill(m, orig, wide, &o, &rep, &err), FIPSC_ERR_ARG, "context", &err);
    fipsc_corpus_free(wide);
    o.lr = 1e6f; /* diverges: the step that fails is named and the values restored */
    o.lr_min = 0.0f;
    const fipsc_status st = fipsc_llama_distill(m, orig, c, &o, &rep, &err);
    CHECK_MSG(st == FIPSC_OK || st == FIPSC_ERR_NUMERIC, "lr 1e6: status %d (%s)", (int)st, err.message);
    if (st == FIPSC_ERR_NUMERIC) CHECK(strstr(err.message, "step ") != NULL);
    if (st) CHECK_MSG(eval_kl(m, orig, c) == kept, "the model changed after a failed distillation: KL %.8g -> %.8g (%s)", kept, eval_kl(m, orig, c), err.message);
    fipsc_corpus_free(c);
    fipsc_model_free(m);
    fipsc_model_free(orig);
}

/* Biases on q/k/v, tied embeddings, 6 query heads on 2 key/value heads, every block compressed. */
static void test_fixture(void)
{
    const fixture_shape s = {.dim = 48, .hidden = 96, .layers = 3, .heads = 6, .kv_heads = 2, .head_dim = 8,
                             .vocab = 64, .max_seq = 64, .eps = 1e-5f, .theta = 10000.0f, .tied = 1, .qkv_bias = 1};
    fipsc_model *m = fixture_llama(&s, 11), *orig = fixture_llama(&s, 11);
    fipsc_error err = {0};
    CHECK_OK(attach_svd_group(m, 0, 2, 40, 0.5, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    fipsc_corpus *c = random_corpus(N_SEQ, 20, s.vocab, 9);
    check_distiller_gradients(m, orig, c, 1 + 9, 0, "random Llama with biases, tied head, GQA 6/2");
    fipsc_corpus_free(c);
    fipsc_model_free(m);
    fipsc_model_free(orig);
}

int main(void)
{
    test_path(stories, sizeof stories, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    test_stories();
    test_fixture();
    return test_summary("test_llama_distill");
}
