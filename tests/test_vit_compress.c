/* FiPS on Vision Transformers (src/compress/calibrate_images.c), on small ViT/DeiT checkpoints the
 * test generates in Hugging Face layout (tests/vit_fixture.h):
 *   - the block objective: a compressed block's output error, computed through the real block
 *     forward from the original block input, equals its MLP's output error on the captured MLP
 *     rows (what the trainer minimises);
 *   - FiPS lowers the block reconstruction error against its own initialisation (fips-init);
 *   - a compressed model run with the sparse kernels equals its dense reconstruction (1e-4
 *     relative), for FiPS (CSC and n:m) and the baselines;
 *   - the compressed file round trip keeps the logits, the configuration and the preprocessing,
 *     and the dense export is a Hugging Face directory that loads and gives the same logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "compress/compress.h"
#include "model/compressed.h"
#include "ops/factored.h"
#include "families/llama/hf.h"
#include "ops/mlp_forward.h"
#include "families/vit/vit.h"
#include "compress/calibration.h"
#include "testutil.h"
#include "vit_fixture.h"

static const char *tmp;

/* n random images of w × h with c channels (deterministic in seed). */
static void random_images(fipsc_image_list *l, int n, int w, int h, int c, unsigned seed)
{
    memset(l, 0, sizeof *l);
    l->images = calloc((size_t)n, sizeof *l->images);
    l->names = calloc((size_t)n, sizeof *l->names);
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 7;
    fipsc_error err = {0};
    for (int i = 0; i < n; i++) {
        if (fipsc_image_alloc(&l->images[i], w, h, c, &err)) {
            fprintf(stderr, "image_alloc: %s\n", err.message);
            exit(2);
        }
        /* smooth blobs plus noise, so that images differ in structure, not only in noise */
        double cx = (double)(i % 5) / 4.0, cy = (double)(i % 7) / 6.0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < c; k++) {
                    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                    double dx = (double)x / w - cx, dy = (double)y / h - cy;
                    double v = 200.0 * exp(-8.0 * (dx * dx + dy * dy)) + (double)((s >> 40) % 56);
                    l->images[i].pixels[((size_t)y * w + x) * c + k] = (unsigned char)(v > 255 ? 255 : v);
                }
        char name[32];
        snprintf(name, sizeof name, "img%d", i);
        l->names[i] = strdup(name);
    }
    l->n = n;
}

/* The preprocessed pixels [n, C, H, W] of the images for model m. */
static float *preprocess(const fipsc_model *m, const fipsc_image_list *l)
{
    const fipsc_vit *v = fipsc_model_vit(m);
    size_t per = (size_t)v->channels * v->image_h * v->image_w;
    float *px = malloc((size_t)l->n * per * sizeof *px);
    fipsc_error err = {0};
    for (int i = 0; i < l->n; i++)
        CHECK_OK(fipsc_image_preprocess(&l->images[i], &v->preproc, v->image_h, v->image_w, px + i * per,
                                        l->names[i], &err),
                 &err);
    return px;
}

static float *logits_of(const fipsc_model *m, const float *px, int n)
{
    const fipsc_vit *v = fipsc_model_vit(m);
    float *lg = calloc((size_t)n * v->n_labels, sizeof *lg);
    fipsc_error err = {0};
    CHECK_OK(fipsc_vit_forward(m, px, n, lg, NULL, &err), &err);
    return lg;
}

static double rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Per block l: mean over the token rows and d of (block_c(x_{l−1}) − x_l)², where x_{l−1} and
 * x_l are the ORIGINAL model's block input and output (teacher forcing), block_c the block of c. */
static void block_errors(const fipsc_model *orig, const fipsc_model *c, const float *px, int n,
                         double *mse)
{
    const fipsc_vit *v = fipsc_model_vit(orig);
    size_t rows = (size_t)n * v->n_tokens, rd = rows * v->dim;
    float *x = malloc(rd * sizeof *x), *xc = malloc(rd * sizeof *xc);
    fipsc_error err = {0};
    CHECK_OK(fipsc_vit_embed(orig, px, n, x, &err), &err);
    for (int l = 0; l < v->n_layers; l++) {
        memcpy(xc, x, rd * sizeof *x);
        CHECK_OK(fipsc_vit_block_forward(orig, l, n, x, NULL, &err), &err);
        CHECK_OK(fipsc_vit_block_forward(c, l, n, xc, NULL, &err), &err);
        double s = 0;
        for (size_t i = 0; i < rd; i++) s += ((double)xc[i] - x[i]) * ((double)xc[i] - x[i]);
        mse[l] = s / (double)rd;
    }
    free(x);
    free(xc);
}

/* Per block l: mean of (MLP_c(x) − y)² over the captured rows of block l (x, y from the
 * original model). */
static void mlp_errors(const fipsc_model *c, const fipsc_calibration *cal, double *mse)
{
    fipsc_error err = {0};
    for (int l = 0; l < c->n_mlps; l++) {
        const fipsc_fips_calib *b = &cal->blocks[l];
        const fipsc_mlp *mlp = c->mlps[l];
        float *y = malloc((size_t)b->n * mlp->d * sizeof *y);
        float *scratch = malloc(fipsc_mlp_scratch_floats(mlp, (int)b->n) * sizeof *scratch);
        CHECK_OK(fipsc_mlp_forward(mlp, (int)b->n, b->x, y, scratch, &err), &err);
        double s = 0;
        for (int64_t i = 0; i < b->n * mlp->d; i++) s += ((double)y[i] - b->y[i]) * ((double)y[i] - b->y[i]);
        mse[l] = s / (double)(b->n * mlp->d);
        free(y);
        free(scratch);
    }
}

static fipsc_model *load(const char *path)
{
    fipsc_model *m = NULL;
    fipsc_error err = {0};
    CHECK_OK(fipsc_model_load(path, &m, &err), &err);
    if (!m) exit(1);
    return m;
}

static void compress(fipsc_model *m, const fipsc_calibration *cal, const fipsc_compress_options *o)
{
    fipsc_error err = {0};
    fipsc_compress_report *rep = NULL;
    CHECK_OK(fipsc_compress_run(m, cal, o, NULL, NULL, &rep, &err), &err);
    fipsc_compress_report_free(rep);
}

/* preprocessor_config.json with a mean/std no default uses, so that losing it shows. */
static void write_preproc(const char *dir, int h, int w, int channels)
{
    char path[4300], text[512];
    test_pathf(path, sizeof path, "%s/preprocessor_config.json", dir);
    snprintf(text, sizeof text,
             "{\"do_resize\": true, \"size\": {\"height\": %d, \"width\": %d}, \"resample\": 2, "
             "\"do_rescale\": true, \"rescale_factor\": 0.00392156862745098, \"do_normalize\": true, "
             "\"image_mean\": %s, \"image_std\": %s, \"image_processor_type\": \"ViTImageProcessor\"}\n",
             h, w, channels == 3 ? "[0.3, 0.4, 0.5]" : "[0.3]", channels == 3 ? "[0.2, 0.25, 0.3]" : "[0.2]");
    fx_write_text(path, text);
}

static void run_case(const vit_spec *spec, const char *groups, int case_no)
{
    vit_fixture *fx = malloc(sizeof *fx);
    fx_build(fx, spec);
    char dir[4200];
    test_pathf(dir, sizeof dir, "%s/case%d", tmp, case_no);
    fx_write(fx, dir, NULL, false);
    write_preproc(dir, spec->image_h, spec->image_w, spec->channels);
    fipsc_error err = {0};

    fipsc_model *orig = load(dir);
    fipsc_image_list calib_images, test_images;
    random_images(&calib_images, 48, spec->image_w, spec->image_h, spec->channels, 100 + case_no);
    random_images(&test_images, 12, spec->image_w, spec->image_h, spec->channels, 200 + case_no);
    float *calib_px = preprocess(orig, &calib_images), *test_px = preprocess(orig, &test_images);
    fipsc_calibration cal;
    CHECK_OK(fipsc_calibration_capture_images(orig, &calib_images, NULL, 0, &cal, &err), &err);
    const int L = spec->layers, T = fipsc_model_vit(orig)->n_tokens;
    CHECK(cal.n_sequences == 48);
    for (int l = 0; l < L; l++) CHECK(cal.blocks[l].n == 48LL * T);

    fipsc_compress_options o;
    fipsc_compress_defaults_for(&o, &fipsc_family_vit);
    CHECK(o.schedule == FIPSC_FIPS_MASK_RIGL && strcmp(o.groups, "4") == 0);
    o.groups = groups;
    o.steps = 150;
    o.batch_rows = 256;
    o.budget = 0.5;

    /* 1. fips-init: the block objective equals the MLP objective, block by block. */
    fipsc_compress_options oi = o;
    oi.method = FIPSC_METHOD_FIPS_INIT;
    fipsc_model *init = load(dir);
    compress(init, &cal, &oi);
    double *blk = calloc((size_t)L, sizeof *blk), *mlp = calloc((size_t)L, sizeof *mlp);
    double *blk_fips = calloc((size_t)L, sizeof *blk_fips), *test_init = calloc((size_t)L, sizeof *test_init);
    double *test_fips = calloc((size_t)L, sizeof *test_fips);
    block_errors(orig, init, calib_px, calib_images.n, blk);
    mlp_errors(init, &cal, mlp);
    for (int l = 0; l < L; l++) {
        CHECK_MSG(mlp[l] > 0 && fabs(blk[l] - mlp[l]) <= 1e-3 * mlp[l],
                  "case %d block %d: block error %.9g, MLP error %.9g", case_no, l, blk[l], mlp[l]);
    }

    /* 2. FiPS lowers the block reconstruction error against fips-init, on the calibration
     *    images and on images it never saw. */
    fipsc_model *fips = load(dir);
    compress(fips, &cal, &o);
    block_errors(orig, fips, calib_px, calib_images.n, blk_fips);
    block_errors(orig, init, test_px, test_images.n, test_init);
    block_errors(orig, fips, test_px, test_images.n, test_fips);
    double sum_init = 0, sum_fips = 0, sum_test_init = 0, sum_test_fips = 0;
    for (int l = 0; l < L; l++) {
        sum_init += blk[l];
        sum_fips += blk_fips[l];
        sum_test_init += test_init[l];
        sum_test_fips += test_fips[l];
    }
    CHECK_MSG(sum_fips < 0.7 * sum_init, "case %d: block loss fips %.6g vs fips-init %.6g", case_no, sum_fips, sum_init);
    CHECK_MSG(sum_test_fips < sum_test_init, "case %d: unseen images: fips %.6g vs fips-init %.6g", case_no,
              sum_test_fips, sum_test_init);
    printf("case %d: block loss (Σ MSE over %d blocks) fips-init %.5g -> fips %.5g (unseen images %.5g -> %.5g)\n",
           case_no, L, sum_init, sum_fips, sum_test_init, sum_test_fips);

    /* 3. The compressed model (factored slots, sparse kernels) equals its dense reconstruction. */
    const int nl = fipsc_model_vit(orig)->n_labels, nt = test_images.n;
    size_t nlog = (size_t)nt * nl;
    CHECK(fipsc_model_factored_count(fips) == 2 * L);
    CHECK(fips->mlps[0]->up.factored && !fips->mlps[0]->up.w);
    fipsc_compress_options od = o;
    od.dense_reconstruction = true;
    fipsc_model *dense = load(dir);
    compress(dense, &cal, &od);
    CHECK(fipsc_model_factored_count(dense) == 0);
    float *lg_fips = logits_of(fips, test_px, nt), *lg_dense = logits_of(dense, test_px, nt);
    double d_fd = rel_diff(lg_fips, lg_dense, nlog);
    CHECK_MSG(d_fd <= 1e-4, "case %d: compressed vs dense reconstruction: %.3g", case_no, d_fd);
    float *lg_orig = logits_of(orig, test_px, nt);
    CHECK_MSG(rel_diff(lg_fips, lg_orig, nlog) > 1e-6, "case %d: compression changed nothing", case_no);

    /* the baselines and n:m through the same runtime */
    const struct {
        fipsc_compress_method method;
        int nm_n, nm_m;
    } others[] = {{FIPSC_METHOD_SVD, 0, 0}, {FIPSC_METHOD_MAGNITUDE, 0, 0}, {FIPSC_METHOD_SHARED_SVD, 0, 0},
                  {FIPSC_METHOD_FIPS, 2, 4}};
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
        fipsc_compress_options ob = o;
        ob.method = others[k].method;
        ob.nm_n = others[k].nm_n;
        ob.nm_m = others[k].nm_m;
        ob.steps = 40;
        fipsc_model *a = load(dir), *b = load(dir);
        compress(a, &cal, &ob);
        ob.dense_reconstruction = true;
        compress(b, &cal, &ob);
        float *la = logits_of(a, test_px, nt), *lb = logits_of(b, test_px, nt);
        double dd = rel_diff(la, lb, nlog);
        CHECK_MSG(dd <= 1e-4, "case %d: %s%s: compressed vs dense reconstruction %.3g", case_no,
                  fipsc_compress_method_name(ob.method), ob.nm_m ? " n:m" : "", dd);
        if (ob.nm_m) CHECK(fipsc_model_group(a, 0)->storage == FIPSC_V_NM);
        free(la);
        free(lb);
        fipsc_model_free(a);
        fipsc_model_free(b);
    }

    /* 4. Compressed file round trip: same logits, configuration and preprocessing; no dense MLP
     *    weight in memory. */
    char file[4300], out_dir[4300];
    test_pathf(file, sizeof file, "%s/case%d-fips.safetensors", tmp, case_no);
    CHECK_OK(fipsc_compressed_write(fips, file, NULL, &err), &err);
    CHECK(fipsc_compressed_is_file(file));
    fipsc_model *back = load(file);
    const fipsc_vit *vb = fipsc_model_vit(back);
    CHECK(vb && vb->kind == fipsc_model_vit(orig)->kind && vb->n_labels == nl);
    CHECK(vb && strcmp(vb->labels[nl - 1], fipsc_model_vit(orig)->labels[nl - 1]) == 0);
    CHECK(vb && vb->preproc_text && fabsf(vb->preproc.mean[0] - 0.3f) < 1e-6f && fabsf(vb->preproc.std[0] - 0.2f) < 1e-6f);
    CHECK(fipsc_model_factored_count(back) == 2 * L && back->mlps[L - 1]->down.factored);
    char name[128];
    snprintf(name, sizeof name, "%s.encoder.layer.0.intermediate.dense.weight", fx->prefix);
    CHECK(fipsc_model_find(back, name) == NULL);
    float *px_back = preprocess(back, &test_images);
    CHECK(rel_diff(px_back, test_px, (size_t)nt * spec->channels * spec->image_h * spec->image_w) == 0.0);
    float *lg_back = logits_of(back, px_back, nt);
    CHECK_MSG(rel_diff(lg_back, lg_fips, nlog) <= 1e-6, "case %d: file round trip changed the logits", case_no);

    /* 5. Dense export: a Hugging Face directory with config.json, preprocessor_config.json and
     *    model.safetensors that loads as a plain ViT and matches. */
    CHECK_OK(fipsc_model_densify(back, &err), &err);
    test_pathf(out_dir, sizeof out_dir, "%s/case%d-export", tmp, case_no);
    CHECK_OK(back->family->export_dense(back, out_dir, false, &err), &err);
    fipsc_model *exported = load(out_dir);
    CHECK(fipsc_model_factored_count(exported) == 0 && !fipsc_compressed_is_file(out_dir));
    const fipsc_vit *ve = fipsc_model_vit(exported);
    CHECK(ve && fabsf(ve->preproc.mean[2 < spec->channels ? 2 : 0] - (spec->channels == 3 ? 0.5f : 0.3f)) < 1e-6f);
    CHECK(ve && strstr(ve->config_text, FIPSC_VIT_PREPROC_KEY) == NULL);
    float *lg_exp = logits_of(exported, test_px, nt);
    double d_exp = rel_diff(lg_exp, lg_fips, nlog);
    CHECK_MSG(d_exp <= 1e-4, "case %d: exported dense vs compressed: %.3g", case_no, d_exp);

    free(lg_exp);
    fipsc_model_free(exported);
    free(lg_back);
    free(px_back);
    fipsc_model_free(back);
    free(lg_orig);
    free(lg_fips);
    free(lg_dense);
    fipsc_model_free(dense);
    free(blk);
    free(mlp);
    free(blk_fips);
    free(test_init);
    free(test_fips);
    fipsc_model_free(fips);
    fipsc_model_free(init);
    fipsc_calibration_free(&cal);
    free(calib_px);
    free(test_px);
    fipsc_image_list_free(&calib_images);
    fipsc_image_list_free(&test_images);
    fipsc_model_free(orig);
    fx_free(fx);
    free(fx);
}

/* Errors: a non-ViT model, no images. */
static void check_errors(void)
{
    fipsc_error err = {0};
    fipsc_model *m = fipsc_model_new();
    fipsc_image_list none = {0};
    fipsc_calibration cal;
    CHECK_FAILS(fipsc_calibration_capture_images(m, &none, NULL, 0, &cal, &err), FIPSC_ERR_UNSUPPORTED,
                "is not an image classifier", &err);
    fipsc_model_free(m);
    char dir[4200];
    test_pathf(dir, sizeof dir, "%s/small", tmp);
    vit_fixture *fx = malloc(sizeof *fx);
    const vit_spec s = {"ViTForImageClassification", 8, 1, 1, 16, 8, 8, 4, 4, 1, 2, true, "gelu", 9};
    fx_build(fx, &s);
    fx_write(fx, dir, NULL, false);
    m = load(dir);
    CHECK_FAILS(fipsc_calibration_capture_images(m, &none, NULL, 0, &cal, &err), FIPSC_ERR_ARG,
                "no calibration images", &err);
    fipsc_model_free(m);
    fx_free(fx);
    free(fx);
}

int main(void)
{
    tmp = test_tmpdir("test_vit_compress");
    /* DeiT with teacher, gray, non-square image [20, 16] with patch 4: 5 x 4 patches + 2 tokens;
     * 4 blocks in one group (the ViT default) */
    const vit_spec deit = {"DeiTForImageClassificationWithTeacher", 24, 4, 2, 64, 20, 16, 4, 4, 1, 6, true, "gelu", 11};
    run_case(&deit, "4", 0);
    /* ViT, RGB, no qkv bias, non-square patches [4, 3] on [12, 12]; groups of 2 blocks */
    const vit_spec vit = {"ViTForImageClassification", 16, 4, 2, 48, 12, 12, 4, 3, 3, 5, false, "gelu", 12};
    run_case(&vit, "2", 1);
    check_errors();
    return test_summary("test_vit_compress");
}
