/* ViT / DeiT checkpoints generated here in Hugging Face layout (several sizes, non-square images
 * and patches, image sizes that the patches do not divide, with and without qkv bias, all three
 * heads, three activations): loader round trip, the forward against a naive double-precision
 * implementation written out below, calibration capture of every block's MLP rows, and
 * invariance of the results under batching and thread count. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "model/capture.h"
#include "core/threads.h"
#include "families/vit/vit.h"
#include "testutil.h"
#include "vit_fixture.h"

/* ------------------------------------------------------------------ the naive reference */

static double act_value(const char *act, double x)
{
    if (strcmp(act, "gelu") == 0) return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    if (strcmp(act, "gelu_new") == 0)
        return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    if (strcmp(act, "relu") == 0) return x > 0 ? x : 0;
    fprintf(stderr, "test bug: activation %s\n", act);
    exit(2);
}

static void naive_layer_norm(const double *x, double *y, int d, const float *w, const float *b)
{
    double mean = 0, var = 0;
    for (int i = 0; i < d; i++) mean += x[i];
    mean /= d;
    for (int i = 0; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= d;
    for (int i = 0; i < d; i++) y[i] = (x[i] - mean) / sqrt(var + 1e-12) * w[i] + b[i];
}

/* y[out] = W[out, in]·x + b */
static void naive_linear(const float *w, const float *b, const double *x, double *y, int out, int in)
{
    for (int o = 0; o < out; o++) {
        double s = b ? b[o] : 0.0;
        for (int i = 0; i < in; i++) s += (double)w[(size_t)o * in + i] * x[i];
        y[o] = s;
    }
}

/* One image [C, H, W] through the network. mlp_in / mlp_out: NULL or [layers][T][d]. */
static void naive_forward(const vit_fixture *fx, const float *img, double *logits, double *mlp_in,
                          double *mlp_out)
{
    const vit_spec *s = &fx->spec;
    int d = s->d, C = s->channels, H = s->image_h, W = s->image_w, ph = s->patch_h, pw = s->patch_w;
    int gh = H / ph, gw = W / pw, P = fx->n_prefix, T = P + gh * gw, hd = d / s->heads;
    char name[160];
    double *x = calloc((size_t)T * d, sizeof *x), *xn = calloc((size_t)T * d, sizeof *xn);
    double *q = calloc((size_t)T * d, sizeof *q), *k = calloc((size_t)T * d, sizeof *k);
    double *v = calloc((size_t)T * d, sizeof *v), *ctx = calloc((size_t)T * d, sizeof *ctx);
    double *h = calloc((size_t)s->f, sizeof *h), *y = calloc((size_t)d, sizeof *y);
    double *p = calloc((size_t)T, sizeof *p);

    /* convolution with stride = kernel = patch, written directly */
    snprintf(name, sizeof name, "%s.embeddings.patch_embeddings.projection.weight", fx->prefix);
    const float *cw = fx_find(fx, name)->data;
    snprintf(name, sizeof name, "%s.embeddings.patch_embeddings.projection.bias", fx->prefix);
    const float *cb = fx_find(fx, name)->data;
    for (int gy = 0; gy < gh; gy++)
        for (int gx = 0; gx < gw; gx++)
            for (int o = 0; o < d; o++) {
                double acc = cb[o];
                for (int c = 0; c < C; c++)
                    for (int i = 0; i < ph; i++)
                        for (int j = 0; j < pw; j++)
                            acc += (double)cw[((o * C + c) * ph + i) * pw + j] *
                                   img[(c * H + gy * ph + i) * W + gx * pw + j];
                x[(size_t)(P + gy * gw + gx) * d + o] = acc;
            }
    snprintf(name, sizeof name, "%s.embeddings.cls_token", fx->prefix);
    for (int i = 0; i < d; i++) x[i] = fx_find(fx, name)->data[i];
    if (P == 2) {
        snprintf(name, sizeof name, "%s.embeddings.distillation_token", fx->prefix);
        for (int i = 0; i < d; i++) x[d + i] = fx_find(fx, name)->data[i];
    }
    snprintf(name, sizeof name, "%s.embeddings.position_embeddings", fx->prefix);
    for (int i = 0; i < T * d; i++) x[i] += fx_find(fx, name)->data[i];

    for (int l = 0; l < s->layers; l++) {
        for (int t = 0; t < T; t++)
            naive_layer_norm(x + t * d, xn + t * d, d, fx_layer(fx, l, "layernorm_before.weight"),
                             fx_layer(fx, l, "layernorm_before.bias"));
        for (int t = 0; t < T; t++) {
            naive_linear(fx_layer(fx, l, "attention.attention.query.weight"),
                         s->qkv_bias ? fx_layer(fx, l, "attention.attention.query.bias") : NULL,
                         xn + t * d, q + t * d, d, d);
            naive_linear(fx_layer(fx, l, "attention.attention.key.weight"),
                         s->qkv_bias ? fx_layer(fx, l, "attention.attention.key.bias") : NULL,
                         xn + t * d, k + t * d, d, d);
            naive_linear(fx_layer(fx, l, "attention.attention.value.weight"),
                         s->qkv_bias ? fx_layer(fx, l, "attention.attention.value.bias") : NULL,
                         xn + t * d, v + t * d, d, d);
        }
        for (int head = 0; head < s->heads; head++)
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, total = 0;
                for (int j = 0; j < T; j++) {
                    double dot = 0;
                    for (int c = 0; c < hd; c++) dot += q[i * d + head * hd + c] * k[j * d + head * hd + c];
                    p[j] = dot / sqrt((double)hd);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < T; j++) total += (p[j] = exp(p[j] - mx));
                for (int c = 0; c < hd; c++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++) acc += p[j] / total * v[j * d + head * hd + c];
                    ctx[i * d + head * hd + c] = acc;
                }
            }
        for (int t = 0; t < T; t++) {
            naive_linear(fx_layer(fx, l, "attention.output.dense.weight"),
                         fx_layer(fx, l, "attention.output.dense.bias"), ctx + t * d, y, d, d);
            for (int i = 0; i < d; i++) x[t * d + i] += y[i];
        }
        for (int t = 0; t < T; t++) {
            naive_layer_norm(x + t * d, xn + t * d, d, fx_layer(fx, l, "layernorm_after.weight"),
                             fx_layer(fx, l, "layernorm_after.bias"));
            naive_linear(fx_layer(fx, l, "intermediate.dense.weight"), fx_layer(fx, l, "intermediate.dense.bias"),
                         xn + t * d, h, s->f, d);
            for (int i = 0; i < s->f; i++) h[i] = act_value(s->act, h[i]);
            naive_linear(fx_layer(fx, l, "output.dense.weight"), fx_layer(fx, l, "output.dense.bias"), h, y,
                         d, s->f);
            if (mlp_in) memcpy(mlp_in + ((size_t)l * T + t) * d, xn + t * d, (size_t)d * sizeof *xn);
            if (mlp_out) memcpy(mlp_out + ((size_t)l * T + t) * d, y, (size_t)d * sizeof *y);
            for (int i = 0; i < d; i++) x[t * d + i] += y[i];
        }
    }
    snprintf(name, sizeof name, "%s.layernorm.weight", fx->prefix);
    const float *fw = fx_find(fx, name)->data;
    snprintf(name, sizeof name, "%s.layernorm.bias", fx->prefix);
    const float *fb = fx_find(fx, name)->data;
    naive_layer_norm(x, xn, d, fw, fb);
    if (fx->teacher) {
        double *l2 = calloc((size_t)s->labels, sizeof *l2);
        naive_layer_norm(x + d, xn + d, d, fw, fb);
        naive_linear(fx_find(fx, "cls_classifier.weight")->data, fx_find(fx, "cls_classifier.bias")->data,
                     xn, logits, s->labels, d);
        naive_linear(fx_find(fx, "distillation_classifier.weight")->data,
                     fx_find(fx, "distillation_classifier.bias")->data, xn + d, l2, s->labels, d);
        for (int i = 0; i < s->labels; i++) logits[i] = (logits[i] + l2[i]) / 2;
        free(l2);
    } else {
        naive_linear(fx_find(fx, "classifier.weight")->data, fx_find(fx, "classifier.bias")->data, xn,
                     logits, s->labels, d);
    }
    free(x), free(xn), free(q), free(k), free(v), free(ctx), free(h), free(y), free(p);
}

/* ------------------------------------------------------------------ checks */

static const char *tmp;

static double rel_tol(double ref) { return 1e-4 * (1.0 + fabs(ref)); }

/* Every fixture tensor is in the model with the same shape and bits; the view points at them. */
static void check_round_trip(const vit_fixture *fx, const fipsc_model *m)
{
    const vit_spec *s = &fx->spec;
    CHECK(m->family == &fipsc_family_vit);
    CHECK(strcmp(m->arch_name, s->arch) == 0);
    CHECK(m->n_tensors == fx->n);
    for (int i = 0; i < fx->n; i++) {
        const fx_tensor *t = &fx->t[i];
        const fipsc_tensor *mt = fipsc_model_find(m, t->name);
        CHECK_MSG(mt != NULL, "tensor %s missing", t->name);
        if (!mt) continue;
        int64_t numel = 1;
        bool same_shape = mt->ndim == t->ndim;
        for (int k = 0; k < t->ndim && same_shape; k++) {
            same_shape = mt->shape[k] == t->shape[k];
            numel *= t->shape[k];
        }
        CHECK_MSG(same_shape, "tensor %s shape", t->name);
        if (same_shape) CHECK_MSG(memcmp(mt->data, t->data, (size_t)numel * 4) == 0, "tensor %s data", t->name);
    }
    const fipsc_vit *v = fipsc_model_vit(m);
    CHECK(v != NULL);
    if (!v) return;
    int gh = s->image_h / s->patch_h, gw = s->image_w / s->patch_w;
    CHECK(v->image_h == s->image_h && v->image_w == s->image_w);
    CHECK(v->patch_h == s->patch_h && v->patch_w == s->patch_w);
    CHECK(v->grid_h == gh && v->grid_w == gw);
    CHECK(v->n_tokens == fx->n_prefix + gh * gw);
    CHECK(v->channels == s->channels && v->dim == s->d && v->hidden == s->f);
    CHECK(v->n_layers == s->layers && v->n_heads == s->heads && v->head_dim == s->d / s->heads);
    CHECK(v->qkv_bias == s->qkv_bias);
    fipsc_image_info info;
    fipsc_model_image(m)->info(m, &info);
    CHECK(v->n_labels == s->labels && info.n_labels == s->labels);
    for (int i = 0; i < v->n_labels; i++) {
        char want[32];
        snprintf(want, sizeof want, "class%d", i);
        CHECK(strcmp(v->labels[i], want) == 0);
    }
    CHECK(v->kind == (fx->teacher ? FIPSC_VIT_DEIT_TEACHER : fx->n_prefix == 2 ? FIPSC_VIT_DEIT : FIPSC_VIT_PLAIN));
    /* the MLPs the compressor will see */
    CHECK(m->n_mlps == s->layers);
    for (int l = 0; l < s->layers && m->n_mlps == s->layers; l++) {
        const fipsc_mlp *mlp = m->mlps[l];
        CHECK(mlp == &v->blocks[l].mlp);
        CHECK(mlp->kind == FIPSC_MLP_PLAIN && mlp->d == s->d && mlp->f == s->f);
        fipsc_activation want;
        CHECK(fipsc_activation_parse(s->act, &want) && mlp->act == want);
        CHECK(mlp->up.w == fipsc_model_find(m, mlp->up.weight_name)->data);
        CHECK(mlp->up.w && memcmp(mlp->up.w, fx_layer(fx, l, "intermediate.dense.weight"), 4) == 0);
        CHECK(mlp->up.bias && mlp->up.bias[0] == fx_layer(fx, l, "intermediate.dense.bias")[0]);
        CHECK(mlp->down.w && mlp->down.w[1] == fx_layer(fx, l, "output.dense.weight")[1]);
        CHECK(mlp->down.bias && mlp->down.bias[2] == fx_layer(fx, l, "output.dense.bias")[2]);
        CHECK(mlp->up.out == s->f && mlp->up.in == s->d && mlp->down.out == s->d && mlp->down.in == s->f);
        CHECK(strstr(mlp->up.weight_name, "intermediate.dense.weight") != NULL);
        CHECK(mlp->gate.w == NULL);
        CHECK((v->blocks[l].q.bias != NULL) == s->qkv_bias);
    }
}

static void run_case(const vit_spec *spec, int case_no)
{
    vit_fixture *fx = malloc(sizeof *fx);
    fx_build(fx, spec);
    char dir[4200], file_dir[4200], file[4300];
    test_pathf(dir, sizeof dir, "%s/case%d", tmp, case_no);
    fx_write(fx, dir, NULL, false);
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(dir, &m, &err), &err);
    if (!m) {
        fx_free(fx);
        free(fx);
        return;
    }
    check_round_trip(fx, m);
    const fipsc_vit *v = fipsc_model_vit(m);

    /* random images: enough that the larger models split the batch into chunks */
    const int n = 24;
    int C = spec->channels, H = spec->image_h, W = spec->image_w, L = spec->labels, d = spec->d;
    int T = v->n_tokens;
    size_t per = (size_t)C * H * W;
    float *pixels = malloc(n * per * sizeof *pixels);
    for (size_t i = 0; i < n * per; i++) pixels[i] = fx_uniform();
    float *logits = malloc((size_t)n * L * sizeof *logits);
    CHECK_OK(fipsc_vit_forward(m, pixels, n, logits, NULL, &err), &err);

    /* against the naive forward, with the MLP rows of every block */
    double *ref = malloc((size_t)n * L * sizeof *ref);
    double *mlp_in = malloc((size_t)n * spec->layers * T * d * sizeof *mlp_in);
    double *mlp_out = malloc((size_t)n * spec->layers * T * d * sizeof *mlp_out);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        naive_forward(fx, pixels + i * per, ref + i * L, mlp_in + (size_t)i * spec->layers * T * d,
                      mlp_out + (size_t)i * spec->layers * T * d);
        for (int c = 0; c < L; c++) {
            double diff = fabs(logits[i * L + c] - ref[i * L + c]);
            if (diff > worst) worst = diff;
            CHECK_NEAR(logits[i * L + c], ref[i * L + c], rel_tol(ref[i * L + c]));
        }
    }
    printf("case %d (%s, d %d, %d layers, image %dx%d, patch %dx%d, C %d, qkv bias %d, %s): "
           "max |logit - naive| = %.2g\n",
           case_no, spec->arch, d, spec->layers, H, W, spec->patch_h, spec->patch_w, C, spec->qkv_bias,
           spec->act, worst);
    /* the logits must depend on the image: two different images give different logits */
    bool differ = false;
    for (int c = 0; c < L; c++) differ |= logits[c] != logits[L + c];
    CHECK(differ);

    /* capture the first and last block's MLP rows, without logits */
    int layers[2] = {0, spec->layers - 1};
    int n_cap = spec->layers > 1 ? 2 : 1;
    fipsc_capture cap;
    CHECK_OK(fipsc_capture_init(&cap, m, layers, n_cap, 0, &err), &err);
    CHECK_OK(fipsc_vit_forward(m, pixels, n, NULL, &cap, &err), &err);
    for (int k = 0; k < n_cap; k++) {
        fipsc_capture_layer *cl = &cap.layers[k];
        CHECK(cl->rows == (int64_t)n * T && cl->d == d);
        if (cl->rows != (int64_t)n * T) continue;
        double wx = 0, wy = 0;
        for (int i = 0; i < n; i++)
            for (int t = 0; t < T; t++)
                for (int c = 0; c < d; c++) {
                    size_t row = (size_t)i * T + t;
                    size_t at = (((size_t)i * spec->layers + cl->layer) * T + t) * d + c;
                    wx = fmax(wx, fabs(cl->x[row * d + c] - mlp_in[at]) / (1 + fabs(mlp_in[at])));
                    wy = fmax(wy, fabs(cl->y[row * d + c] - mlp_out[at]) / (1 + fabs(mlp_out[at])));
                }
        CHECK_MSG(wx < 1e-4 && wy < 1e-4, "block %d capture: x off by %g, y off by %g", cl->layer, wx, wy);
    }
    fipsc_capture_free(&cap);

    /* the pieces compose to the forward, bit for bit (three images: one chunk) */
    float *x = malloc((size_t)n * T * d * sizeof *x), *logits2 = malloc((size_t)n * L * sizeof *logits2);
    float *logits3 = malloc((size_t)n * L * sizeof *logits3);
    CHECK_OK(fipsc_vit_forward(m, pixels, 3, logits3, NULL, &err), &err);
    CHECK_OK(fipsc_vit_embed(m, pixels, 3, x, &err), &err);
    for (int l = 0; l < spec->layers; l++) CHECK_OK(fipsc_vit_block_forward(m, l, 3, x, NULL, &err), &err);
    CHECK_OK(fipsc_vit_head(m, 3, x, logits2, &err), &err);
    CHECK(memcmp(logits3, logits2, 3 * (size_t)L * sizeof *logits2) == 0);

    /* one image at a time gives the same logits (the GEMM shapes differ, so allow rounding) */
    for (int i = 0; i < n; i++) {
        CHECK_OK(fipsc_vit_forward(m, pixels + i * per, 1, logits2, NULL, &err), &err);
        for (int c = 0; c < L; c++) CHECK_NEAR(logits2[c], logits[i * L + c], 1e-5 * (1 + fabs(logits[i * L + c])));
    }
    /* logits with a capture are the same bits as without */
    CHECK_OK(fipsc_capture_init(&cap, m, layers, n_cap, 0, &err), &err);
    CHECK_OK(fipsc_vit_forward(m, pixels, n, logits2, &cap, &err), &err);
    CHECK(memcmp(logits, logits2, (size_t)n * L * sizeof *logits) == 0);
    fipsc_capture_free(&cap);

    /* The thread count (OpenMP and BLAS together) does not change a bit, for one chunk
     * (3 images) or several (n). */
    for (int k = 0; k < 2; k++) {
        int count = k ? n : 3;
        fipsc_threads_set(1);
        CHECK_OK(fipsc_vit_forward(m, pixels, count, logits2, NULL, &err), &err);
        fipsc_threads_set(2);
        CHECK_OK(fipsc_vit_forward(m, pixels, count, logits3, NULL, &err), &err);
        CHECK(memcmp(logits2, logits3, (size_t)count * L * sizeof *logits2) == 0);
        CHECK(openblas_get_num_threads() == 1); /* fipsc keeps OpenBLAS on one thread */
    }

    /* the single-file form: config in __metadata__, no config.json */
    test_pathf(file_dir, sizeof file_dir, "%s/case%d-file", tmp, case_no);
    fx_write(fx, file_dir, NULL, true);
    test_pathf(file, sizeof file, "%s/config.json", file_dir);
    remove(file);
    test_pathf(file, sizeof file, "%s/model.safetensors", file_dir);
    fipsc_model *m2 = NULL;
    CHECK_OK(fipsc_model_load(file, &m2, &err), &err);
    if (m2) {
        check_round_trip(fx, m2);
        CHECK_OK(fipsc_vit_forward(m2, pixels, n, logits2, NULL, &err), &err);
        CHECK(memcmp(logits2, logits, (size_t)n * L * sizeof *logits2) == 0);
        fipsc_model_free(m2);
    }

    free(logits3), free(logits2), free(x), free(mlp_in), free(mlp_out), free(ref), free(logits), free(pixels);
    fipsc_model_free(m);
    fx_free(fx);
    free(fx);
}

int main(void)
{
    tmp = test_tmpdir("test_vit_forward");
    const vit_spec cases[] = {
        /* ViT, non-square image [12, 20] and 3 channels: a 3 x 5 grid */
        {"ViTForImageClassification", 16, 2, 2, 40, 12, 20, 4, 4, 3, 5, true, "gelu", 1},
        /* DeiT with teacher, gray, 15 x 15 with patch 7: a 2 x 2 grid, the last row/column unused;
         * no qkv bias */
        {"DeiTForImageClassificationWithTeacher", 24, 3, 3, 56, 15, 15, 7, 7, 1, 10, false, "gelu", 2},
        /* DeiT without teacher, non-square patches [3, 5] on [9, 10], fewer labels than 5 */
        {"DeiTForImageClassification", 12, 1, 4, 20, 9, 10, 3, 5, 3, 3, true, "gelu", 3},
        /* one patch only, tanh GELU */
        {"ViTForImageClassification", 8, 2, 1, 16, 8, 8, 8, 8, 1, 2, true, "gelu_new", 4},
        /* ReLU, DeiT teacher, a wider model with more tokens */
        {"DeiTForImageClassificationWithTeacher", 48, 2, 6, 96, 32, 24, 4, 4, 3, 7, true, "relu", 5},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) run_case(&cases[i], i);
    return test_summary("test_vit_forward");
}
