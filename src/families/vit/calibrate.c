/* Calibration rows of a Vision Transformer (src/families/vit/calibrate.h): the original model's
 * MLP inputs and outputs on calibration images, and the ViT defaults of the compressor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/capture.h"
#include "families/vit/vit.h"
#include "families/vit/calibrate.h"

void fipsc_compress_defaults_vit(fipsc_compress_options *o)
{
    fipsc_compress_defaults(o);
    o->schedule = FIPSC_FIPS_MASK_RIGL;
    o->groups = "4";
    o->sparsity = 0.5;
    o->steps = 1000;
    o->batch_rows = 1024;
    o->lr = 2e-3f;
    o->lr_min = 2e-5f;
    o->weight_decay = 0.0f;
}

fipsc_status fipsc_calibration_capture_vit(const fipsc_model *m, const fipsc_image_list *images,
                                           const int *blocks, int n_blocks,
                                           fipsc_calibration *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    const fipsc_vit *v = fipsc_model_vit(m);
    if (!v)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "calibration capture from images needs a ViT/DeiT model (this is '%s')",
                          m->cfg.arch_name);
    if (!images || images->n < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "no calibration images");

    int *all = NULL;
    if (!blocks || n_blocks == 0) {
        if (!(all = malloc((size_t)m->n_mlps * sizeof *all))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        for (int l = 0; l < m->n_mlps; l++) all[l] = l;
        blocks = all;
        n_blocks = m->n_mlps;
    }
    fipsc_capture *cap = calloc(1, sizeof *cap);
    if (!cap) {
        free(all);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    fipsc_status st = fipsc_capture_init(cap, m, blocks, n_blocks, 0, err);
    free(all);
    if (st) {
        free(cap);
        return st;
    }
    const int H = v->image_h, W = v->image_w;
    const size_t per_image = (size_t)v->channels * H * W;
    float *pixels = malloc((size_t)FIPSC_VIT_CALIB_BATCH * per_image * sizeof *pixels);
    if (!pixels) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for calibration pixels");
    for (int first = 0; !st && first < images->n; first += FIPSC_VIT_CALIB_BATCH) {
        int count = images->n - first < FIPSC_VIT_CALIB_BATCH ? images->n - first : FIPSC_VIT_CALIB_BATCH;
        for (int i = 0; i < count && !st; i++)
            st = fipsc_image_preprocess(&images->images[first + i], &v->preproc, H, W,
                                        pixels + (size_t)i * per_image, images->names[first + i], err);
        /* No logits: the forward stops after the last captured block. */
        if (!st) st = fipsc_vit_forward(m, pixels, count, NULL, cap, err);
    }
    free(pixels);
    if (!st) st = fipsc_calibration_init(out, m->n_mlps, err);
    if (st) {
        fipsc_capture_free(cap);
        free(cap);
        return fipsc_fail_context(err, "calibration on %d images: ", images->n);
    }
    for (int k = 0; k < cap->n_layers; k++) {
        const fipsc_capture_layer *cl = &cap->layers[k];
        out->blocks[cl->layer] = (fipsc_fips_calib){cl->rows, cl->x, cl->y};
    }
    out->n_sequences = images->n;
    out->owned = cap;
    return FIPSC_OK;
}
