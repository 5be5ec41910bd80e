/* End-to-end distillation of a compressed Vision Transformer (src/families/vit/distill.h) on the
 * real DeiT-MNIST (with teacher: two heads averaged), blocks 1-2 and 3 compressed by SVD and one
 * magnitude pruning (block 0 stays dense: the fixed rows come through the runtime's block):
 *   - the distiller's KL at the start is the KL between the runtime's logits of both models,
 *   - its gradients agree with central differences of its loss for every basis and every
 *     compressed matrix (distill_gradcheck.h), and a wrong gradient is rejected by the same judge,
 *   - a short run lowers the KL (the runtime sees it) and keeps every pruned entry at zero, and
 *   - impossible input is refused without touching the model.
 * A random plain ViT (one head, no q/k/v bias, RGB, non-square patches) has its gradients checked
 * the same way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compressed_fixture.h"
#include "distill_gradcheck.h"
#include "families/registry.h"
#include "families/vit/distill.h"
#include "families/vit/vit.h"
#include "testutil.h"
#include "vit_fixture.h"

static char deit[4096];
static const char *tmp;

enum { N_IMG = 8 };

static fipsc_model *load(const char *path)
{
    fipsc_model *m = NULL;
    fipsc_error err = {0};
    CHECK_OK(fipsc_model_load(path, &m, &err), &err);
    if (!m) exit(1);
    return m;
}

/* n images of m's input shape, pixels uniform in [-1, 1] (seeded): what preprocessing gives. */
static float *random_pixels(const fipsc_model *m, int n, uint64_t seed)
{
    const fipsc_vit *v = fipsc_model_vit(m);
    const size_t count = (size_t)n * v->channels * v->image_h * v->image_w;
    float *px = malloc(count * sizeof *px);
    for (size_t i = 0; i < count; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        px[i] = (float)((double)(seed >> 11) * 0x1.0p-52 * 2.0 - 1.0);
    }
    return px;
}

/* Mean KL(softmax(original) ‖ softmax(compressed)) of the runtime's logits. */
static double runtime_kl(const fipsc_model *m, const fipsc_model *orig, const float *px, int n)
{
    const int L = fipsc_model_vit(m)->n_labels;
    float *a = malloc((size_t)n * L * sizeof *a), *b = malloc((size_t)n * L * sizeof *b);
    fipsc_error err = {0};
    CHECK_OK(fipsc_model_image(m)->forward(m, px, n, a, NULL, &err), &err);
    CHECK_OK(fipsc_model_image(orig)->forward(orig, px, n, b, NULL, &err), &err);
    double kl = 0.0;
    for (int i = 0; i < n; i++) {
        const float *zc = a + (size_t)i * L, *zo = b + (size_t)i * L;
        double sc = 0.0, so = 0.0;
        for (int j = 0; j < L; j++) sc += exp((double)zc[j]), so += exp((double)zo[j]);
        for (int j = 0; j < L; j++) {
            const double lo = zo[j] - log(so), lc = zc[j] - log(sc);
            kl += exp(lo) * (lo - lc);
        }
    }
    free(a);
    free(b);
    return kl / n;
}

/* ------------------------------------------------------------------ the probe of distill_gradcheck.h */

typedef struct vit_probe {
    vit_distiller *d;
    int nb;
    const int *img;
} vit_probe;
static int probe_blocks(const void *self) { return vit_distiller_block_count(((const vit_probe *)self)->d); }
static float *probe_block(void *self, int k, int64_t *len, const float **grad)
{
    return vit_distiller_block(((vit_probe *)self)->d, k, len, grad);
}
static void probe_changed(void *self) { vit_distiller_changed(((vit_probe *)self)->d); }
static double probe_loss(void *self)
{
    const vit_probe *p = self;
    fipsc_error err = {0};
    double l = NAN;
    CHECK_OK(vit_distiller_loss_grad(p->d, p->nb, p->img, false, &l, &err), &err);
    return l;
}

static void check_distiller_gradients(fipsc_model *m, const fipsc_model *orig, const float *px, int blocks,
                                      int first, const char *what)
{
    fipsc_error err = {0};
    vit_distiller *d = NULL;
    CHECK_OK(vit_distiller_new(m, orig, px, N_IMG, 4, &d, &err), &err);
    if (!d) return;
    CHECK_MSG(vit_distiller_first_layer(d) == first, "%s: first trained block %d", what, vit_distiller_first_layer(d));
    CHECK_MSG(vit_distiller_block_count(d) == blocks, "%s: %d blocks", what, vit_distiller_block_count(d));
    const int img[4] = {0, 3, 4, 6};
    double loss;
    CHECK_OK(vit_distiller_loss_grad(d, 4, img, true, &loss, &err), &err);
    CHECK_MSG(loss > 1e-4 && loss < 10.0, "%s: KL %g", what, loss);
    vit_probe p = {d, 4, img};
    const distill_probe probe = {&p, probe_blocks, probe_block, probe_changed, probe_loss};
    check_gradients(&probe, what, true);
    vit_distiller_free(d);
}

static int64_t count_nonzero(const fipsc_model *m)
{
    int64_t nz = 0;
    for (int l = 0; l < m->n_mlps; l++)
        for (int r = FIPSC_ROLE_UP; r <= FIPSC_ROLE_DOWN; r++) {
            const fipsc_linear *lin = fipsc_mlp_slot(m->mlps[l], (fipsc_mlp_role)r);
            if (!lin || !lin->factored) continue;
            for (int64_t e = 0; e < lin->factored->nnz; e++) nz += lin->factored->val[e] != 0.0f;
        }
    return nz;
}

static void test_deit(void)
{
    fipsc_error err = {0};
    fipsc_model *m = load(deit), *orig = load(deit);
    CHECK_OK(attach_svd_group(m, 1, 2, 24, 0.75, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    CHECK_OK(attach_svd_group(m, 3, 3, 16, 0.75, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    float *px = random_pixels(m, N_IMG, 5);

    vit_distiller *d = NULL;
    CHECK_OK(vit_distiller_new(m, orig, px, N_IMG, N_IMG, &d, &err), &err);
    const int all[N_IMG] = {0, 1, 2, 3, 4, 5, 6, 7};
    double kl = NAN;
    if (d) CHECK_OK(vit_distiller_loss_grad(d, N_IMG, all, false, &kl, &err), &err);
    vit_distiller_free(d);
    const double ref = runtime_kl(m, orig, px, N_IMG);
    CHECK_MSG(fabs(kl - ref) <= 1e-4 * ref + 1e-7, "distiller KL %.8g, the runtime's %.8g", kl, ref);

    /* two bases, fc1 and fc2 of blocks 1, 2 and 3, from block 1 up */
    check_distiller_gradients(m, orig, px, 2 + 6, 1, "DeiT-MNIST");

    const int64_t nz = count_nonzero(m);
    fipsc_distill_opts o;
    fipsc_distill_defaults(&o);
    o.steps = 30;
    o.batch = 4;
    o.lr = 1e-3f;
    o.lr_min = 1e-5f;
    o.relational = 0.0f;
    fipsc_distill_report rep;
    CHECK_OK(fipsc_vit_distill(m, orig, px, N_IMG, &o, &rep, &err), &err);
    printf("DeiT-MNIST distillation, 30 steps: KL %.6f -> %.6f\n", rep.score_before, rep.score_after);
    CHECK(rep.steps == 30 && rep.items == N_IMG && rep.rows == N_IMG * 18 && rep.first_layer == 1);
    CHECK_MSG(fabs(rep.score_before - ref) <= 1e-4 * ref + 1e-7, "score before %.8g", rep.score_before);
    CHECK_MSG(rep.score_after < 0.8 * rep.score_before, "KL %.6g -> %.6g", rep.score_before, rep.score_after);
    const double after = runtime_kl(m, orig, px, N_IMG);
    CHECK_MSG(fabs(rep.score_after - after) <= 1e-4 * after + 1e-7, "score after %.8g, runtime %.8g", rep.score_after,
              after);
    CHECK_MSG(count_nonzero(m) <= nz, "nonzero V entries %lld -> %lld", (long long)nz, (long long)count_nonzero(m));

    const double kept = runtime_kl(m, orig, px, N_IMG);
    o.hidden = 1.0f;
    CHECK_FAILS(fipsc_vit_distill(m, orig, px, N_IMG, &o, &rep, &err), FIPSC_ERR_ARG, "sentence encoder", &err);
    o.hidden = 0.0f;
    CHECK_FAILS(fipsc_vit_distill(orig, orig, px, N_IMG, &o, &rep, &err), FIPSC_ERR_ARG, "no compressed MLP", &err);
    CHECK_FAILS(fipsc_vit_distill(m, m, px, N_IMG, &o, &rep, &err), FIPSC_ERR_ARG, "the original's", &err);
    px[3] = NAN;
    CHECK_FAILS(fipsc_vit_distill(m, orig, px, N_IMG, &o, &rep, &err), FIPSC_ERR_NUMERIC, "not finite", &err);
    px[3] = 0.0f;
    CHECK_MSG(runtime_kl(m, orig, px, N_IMG) == kept || px[3] == 0.0f, "the model changed");
    free(px);
    fipsc_model_free(m);
    fipsc_model_free(orig);
}

static void test_plain_vit(void)
{
    char dir[4200];
    test_pathf(dir, sizeof dir, "%s/vit", tmp);
    vit_fixture *fx = malloc(sizeof *fx);
    const vit_spec s = {"ViTForImageClassification", 16, 3, 2, 48, 12, 12, 4, 3, 3, 5, false, "gelu", 12};
    fx_build(fx, &s);
    fx_write(fx, dir, NULL, false);
    fipsc_model *m = load(dir), *orig = load(dir);
    fipsc_error err = {0};
    CHECK_OK(attach_svd_group(m, 0, 2, 8, 0.75, 0, 0, FIPSC_V_CSC, "fips-init", &err), &err);
    float *px = random_pixels(m, N_IMG, 8);
    check_distiller_gradients(m, orig, px, 1 + 6, 0, "random ViT, one head, no q/k/v bias");
    free(px);
    fipsc_model_free(m);
    fipsc_model_free(orig);
    fx_free(fx);
    free(fx);
}

int main(void)
{
    tmp = test_tmpdir("test_vit_distill");
    test_path(deit, sizeof deit, "FIPSC_SOURCE_DIR", "models/deit-mnist");
    test_deit();
    test_plain_vit();
    return test_summary("test_vit_distill");
}
