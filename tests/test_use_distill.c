/* End-to-end distillation of the compressed sentence encoder (src/families/use/distill.h) on
 * the real model, compressed here by fips-init (SVD + one magnitude pruning, no training) at
 * budget 0.25 in one group over both MLPs:
 *   - the distiller's own forward gives fipsc_use_encode's embeddings (within 2e-5),
 *   - its gradients agree with central differences of its loss, for U and for V entries of
 *     both layers (targets of other sentences make the loss large, so differences are clean),
 *     judged over 8 entries of every block against the loss's measured rounding (gradcheck.h),
 *     and a wrong gradient (10 % too large, a sign flipped) is rejected by the same judge,
 *   - a short run raises the mean cosine to the original and the runtime sees the change, keeps
 *     every pruned entry at zero, and refuses impossible input without touching the model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "families/use/distill_internal.h"
#include "compress/compress.h"
#include "ops/factored.h"
#include "families/use/use.h"
#include "compress/calibration.h"
#include "families/use/distill.h"
#include "distill_gradcheck.h"
#include "gradcheck.h"
#include "use_testdata.h"

static const char *const TEXTS[] = {
    "A man is playing a guitar.", "A woman is slicing an onion.", "Two dogs run across the snowy field.",
    "The stock market fell by 3% on Monday.", "Kids are playing soccer in the park.",
    "Un homme joue de la guitare.", "Is it going to rain tomorrow?", "The cat sleeps on the warm windowsill.",
    "A plane is taking off.", "Someone is cooking pasta in a large pot.", "", "Hello!",
    "The committee approved the budget after a long debate about schools and roads.",
    "A person rides a bike down a steep hill.", "Birds sing at dawn.", "He said no.",
};
enum { N_TEXTS = sizeof TEXTS / sizeof *TEXTS, D = 512 };

typedef struct tokens {
    int32_t *ids[N_TEXTS];
    int lens[N_TEXTS];
} tokens;

static void tokenize_all(const fipsc_model *m, tokens *t)
{
    fipsc_error err = {0};
    for (int i = 0; i < N_TEXTS; i++)
        CHECK_OK(fipsc_use_tokenize(m, TEXTS[i], strlen(TEXTS[i]), &t->ids[i], &t->lens[i], &err), &err);
}

static float *encode(const fipsc_model *m, const tokens *t)
{
    fipsc_error err = {0};
    float *e = malloc((size_t)N_TEXTS * D * sizeof *e);
    CHECK_OK(fipsc_use_encode(m, N_TEXTS, (const int32_t *const *)t->ids, t->lens, e, NULL, &err), &err);
    return e;
}

/* The encoder compressed by fips-init at budget 0.25, group 0-1, calibrated on TEXTS. */
static fipsc_model *compressed(const tokens *t)
{
    (void)t;
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(use_model_dir(), &m, &err), &err);
    fipsc_sentences s = {.n = N_TEXTS, .text = (char **)TEXTS};
    fipsc_capture cap;
    fipsc_calibration cal;
    CHECK_OK(fipsc_calibration_capture_sentences(m, &s, NULL, NULL, 0, 0, 1, &cap, &cal, &err), &err);
    fipsc_compress_options o;
    fipsc_compress_defaults_for(&o, &fipsc_family_use);
    o.method = FIPSC_METHOD_FIPS_INIT;
    o.budget = 0.25;
    fipsc_compress_report *rep = NULL;
    CHECK_OK(fipsc_compress_run(m, &cal, &o, NULL, NULL, &rep, &err), &err);
    fipsc_compress_report_free(rep);
    fipsc_calibration_free(&cal);
    fipsc_capture_free(&cap);
    return m;
}

static int64_t count_nonzero(use_distiller *d)
{
    int64_t nz = 0;
    for (int k = 0; k < use_distiller_block_count(d); k++) {
        int64_t len;
        const float *g;
        const float *v = use_distiller_block(d, k, &len, &g);
        for (int64_t e = 0; e < len; e++) nz += v[e] != 0.0f;
    }
    return nz;
}

/* The distiller seen by distill_gradcheck.h, on one batch. */
typedef struct use_probe {
    use_distiller *d;
    int nb;
    const int *sent;
} use_probe;
static int probe_blocks(const void *self) { return use_distiller_block_count(((const use_probe *)self)->d); }
static float *probe_block(void *self, int k, int64_t *len, const float **grad)
{
    return use_distiller_block(((use_probe *)self)->d, k, len, grad);
}
static void probe_changed(void *self) { use_distiller_changed(((use_probe *)self)->d); }
static double probe_loss(void *self)
{
    const use_probe *p = self;
    fipsc_error err = {0};
    double l = NAN;
    CHECK_OK(use_distiller_loss_grad(p->d, p->nb, p->sent, false, &l, NULL, &err), &err);
    return l;
}

static void check_gradients_on(use_distiller *d, int nb, const int *sent, const char *what, bool negative_control)
{
    use_probe p = {d, nb, sent};
    const distill_probe probe = {&p, probe_blocks, probe_block, probe_changed, probe_loss};
    check_gradients(&probe, what, negative_control);
}

static void test_forward_and_gradient(fipsc_model *m, const fipsc_model *orig_model, const tokens *t, const float *orig)
{
    fipsc_error err = {0};
    /* targets: each sentence's original embedding, shifted by one sentence */
    float *target = malloc((size_t)N_TEXTS * D * sizeof *target);
    for (int i = 0; i < N_TEXTS; i++) memcpy(target + (size_t)i * D, orig + (size_t)((i + 1) % N_TEXTS) * D, D * sizeof(float));
    use_distiller *d = NULL;
    CHECK_OK(use_distiller_new(m, N_TEXTS, (const int32_t *const *)t->ids, t->lens, target, 64, &d, &err), &err);
    if (!d) {
        free(target);
        return;
    }
    CHECK(use_distiller_first_layer(d) == 0);
    CHECK(use_distiller_sentences(d) == N_TEXTS - 1); /* the empty sentence has no token */
    CHECK(use_distiller_block_count(d) == 1 + 4);     /* one basis, fc1 and fc2 of both layers */

    /* the forward is the encoder's */
    int sent[N_TEXTS];
    for (int i = 0; i < N_TEXTS - 1; i++) sent[i] = i;
    float *emb = malloc((size_t)N_TEXTS * D * sizeof *emb), *runtime = encode(m, t);
    double loss;
    CHECK_OK(use_distiller_loss_grad(d, N_TEXTS - 1, sent, true, &loss, emb, &err), &err);
    double max_diff = 0.0;
    for (int k = 0, i = 0; i < N_TEXTS; i++) {
        if (t->lens[i] == 0) continue;
        for (int j = 0; j < D; j++) max_diff = fmax(max_diff, fabs(emb[(size_t)k * D + j] - runtime[(size_t)i * D + j]));
        k++;
    }
    CHECK_MSG(max_diff < 2e-5, "distiller forward vs fipsc_use_encode: max |Δ| %g", max_diff);
    CHECK(loss > 0.2 && loss < 2.0);

    check_gradients_on(d, N_TEXTS - 1, sent, "cosine", true);
    /* the relational term too, on its own weight */
    use_distiller_set_relational(d, 4.0f);
    CHECK_OK(use_distiller_loss_grad(d, N_TEXTS - 1, sent, true, &loss, NULL, &err), &err);
    check_gradients_on(d, N_TEXTS - 1, sent, "cosine + relational", false);
    /* and the hidden-state term, against the original's streams */
    use_distiller_set_relational(d, 0.0f);
    CHECK_OK(use_distiller_loss_grad(d, N_TEXTS - 1, sent, false, &loss, NULL, &err), &err);
    CHECK_FAILS(use_distiller_set_hidden(d, m, 1.0f, &err), FIPSC_ERR_ARG, "not the model it was compressed from", &err);
    CHECK_OK(use_distiller_set_hidden(d, orig_model, 1.0f, &err), &err);
    double with_hidden;
    CHECK_OK(use_distiller_loss_grad(d, N_TEXTS - 1, sent, true, &with_hidden, NULL, &err), &err);
    CHECK(with_hidden > loss + 1e-4); /* fips-init leaves a visible stream error */
    check_gradients_on(d, N_TEXTS - 1, sent, "cosine + hidden", false);
    free(emb);
    free(runtime);
    free(target);
    use_distiller_free(d);
}

static void test_training(fipsc_model *m, const tokens *t, const float *orig)
{
    fipsc_error err = {0};
    use_distiller *probe = NULL;
    CHECK_OK(use_distiller_new(m, N_TEXTS, (const int32_t *const *)t->ids, t->lens, orig, 8, &probe, &err), &err);
    const int64_t nz_before = probe ? count_nonzero(probe) : -1;
    use_distiller_free(probe);

    float *before = encode(m, t);
    fipsc_distill_opts o;
    fipsc_distill_defaults(&o);
    o.steps = 30;
    o.batch = 8;
    o.lr = 3e-4f;
    fipsc_distill_report rep;
    CHECK_OK(fipsc_use_distill(m, NULL, N_TEXTS, (const int32_t *const *)t->ids, t->lens, orig, &o, &rep, &err), &err);
    CHECK(rep.steps == 30 && rep.items == N_TEXTS - 1 && rep.first_layer == 0 && rep.params > 0);
    printf("distillation, 30 steps: mean cosine %.5f -> %.5f\n", rep.score_before, rep.score_after);
    CHECK_MSG(rep.score_after > rep.score_before + 0.002, "cosine %.5f -> %.5f", rep.score_before, rep.score_after);

    /* the runtime sees the new values: its mean cosine is the report's */
    float *after = encode(m, t);
    double cb = 0.0, ca = 0.0;
    for (int i = 0; i < N_TEXTS; i++) {
        if (t->lens[i] == 0) continue;
        for (int j = 0; j < D; j++) {
            cb += (double)before[(size_t)i * D + j] * orig[(size_t)i * D + j];
            ca += (double)after[(size_t)i * D + j] * orig[(size_t)i * D + j];
        }
    }
    CHECK_NEAR(cb / (N_TEXTS - 1), rep.score_before, 2e-5);
    CHECK_NEAR(ca / (N_TEXTS - 1), rep.score_after, 2e-5);

    /* the sparsity pattern stays */
    CHECK_OK(use_distiller_new(m, N_TEXTS, (const int32_t *const *)t->ids, t->lens, orig, 8, &probe, &err), &err);
    CHECK(probe && count_nonzero(probe) == nz_before);
    use_distiller_free(probe);

    /* impossible input: refused, the model unchanged */
    o.steps = 0;
    CHECK_FAILS(fipsc_use_distill(m, NULL, N_TEXTS, (const int32_t *const *)t->ids, t->lens, orig, &o, &rep, &err),
                FIPSC_ERR_ARG, "steps", &err);
    o.steps = 5;
    float *bad = malloc((size_t)N_TEXTS * D * sizeof *bad);
    memcpy(bad, orig, (size_t)N_TEXTS * D * sizeof *bad);
    bad[3 * D + 7] = NAN;
    CHECK_FAILS(fipsc_use_distill(m, NULL, N_TEXTS, (const int32_t *const *)t->ids, t->lens, bad, &o, &rep, &err),
                FIPSC_ERR_NUMERIC, "target embedding 4", &err);
    float *unchanged = encode(m, t);
    CHECK(memcmp(unchanged, after, (size_t)N_TEXTS * D * sizeof *after) == 0);
    free(unchanged);
    free(bad);
    free(before);
    free(after);
}

static void test_uncompressed_refused(const tokens *t, const float *orig)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(use_model_dir(), &m, &err), &err);
    fipsc_distill_opts o;
    fipsc_distill_defaults(&o);
    fipsc_distill_report rep;
    CHECK_FAILS(fipsc_use_distill(m, NULL, N_TEXTS, (const int32_t *const *)t->ids, t->lens, orig, &o, &rep, &err),
                FIPSC_ERR_ARG, "no compressed MLP", &err);
    fipsc_model_free(m);
}

int main(void)
{
    fipsc_error err = {0};
    fipsc_model *orig_model = NULL;
    CHECK_OK(fipsc_model_load(use_model_dir(), &orig_model, &err), &err);
    if (!orig_model) return test_summary("test_use_distill");
    tokens t;
    tokenize_all(orig_model, &t);
    float *orig = encode(orig_model, &t);
    fipsc_model *m = compressed(&t);
    if (m) {
        test_forward_and_gradient(m, orig_model, &t, orig);
        test_training(m, &t, orig);
    }
    test_uncompressed_refused(&t, orig);
    fipsc_model_free(m);
    fipsc_model_free(orig_model);
    for (int i = 0; i < N_TEXTS; i++) free(t.ids[i]);
    free(orig);
    return test_summary("test_use_distill");
}
