/* Calibration rows of an image classifier (see src/compress/calibration.h).
 *
 * For a Vision Transformer this is the paper's block objective (ALGORITHM.md §6): only the MLP
 * is compressed, and a block is
 *   h = x + o(Attention(LN_before(x))),   block(x) = h + MLP(LN_after(h)),
 * so with the original input x both blocks compute the same h and
 *   block_c(x) − block(x) = MLP_c(LN_after(h)) − MLP(LN_after(h)):
 * the block's reconstruction error IS its MLP's output error on the MLP's original input rows,
 * which is what capturing each block's MLP rows gives the trainer. (The trainer divides each
 * block's error by the mean square of its MLP output, so that every block counts by its relative
 * error; tests/test_vit_compress.c checks the identity through the real block forward.) */
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "model/family.h"

fipsc_status fipsc_calibration_capture_images(const fipsc_model *m, const fipsc_image_list *images,
                                              const int *blocks, int n_blocks, fipsc_calibration *out,
                                              fipsc_error *err)
{
    return calibration_capture_images(m, images, blocks, n_blocks, NULL, out, err);
}

fipsc_status calibration_capture_images(const fipsc_model *m, const fipsc_image_list *images, const int *blocks,
                                        int n_blocks, const capture_setup *setup, fipsc_calibration *out,
                                        fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    const fipsc_image_ops *ops;
    fipsc_status st = fipsc_model_need_image(m, &ops, err);
    if (st) return fipsc_fail_context(err, "calibration from images: ");
    if (!images || images->n < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "no calibration images");
    fipsc_image_info info;
    ops->info(m, &info);

    fipsc_capture *cap;
    if ((st = calibration_new_capture(m, blocks, n_blocks, setup, &cap, err))) return st;
    const int H = info.height, W = info.width;
    const size_t per_image = (size_t)info.channels * H * W;
    float *pixels = malloc((size_t)FIPSC_IMAGE_CALIB_BATCH * per_image * sizeof *pixels);
    if (!pixels) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for calibration pixels");
    for (int first = 0; !st && first < images->n; first += FIPSC_IMAGE_CALIB_BATCH) {
        int count = images->n - first < FIPSC_IMAGE_CALIB_BATCH ? images->n - first : FIPSC_IMAGE_CALIB_BATCH;
        for (int i = 0; i < count && !st; i++)
            st = fipsc_image_preprocess(&images->images[first + i], info.preproc, H, W,
                                        pixels + (size_t)i * per_image, images->names[first + i], err);
        /* No logits: the forward stops after the last captured block. */
        if (!st) st = ops->forward(m, pixels, count, NULL, cap, err);
    }
    free(pixels);
    if (!st) st = calibration_from_capture(m, cap, images->n, true, out, err);
    if (st) {
        fipsc_capture_free(cap);
        free(cap);
        return fipsc_fail_context(err, "calibration on %d images: ", images->n);
    }
    return FIPSC_OK;
}
