/* Compressing Vision Transformers (ViT / DeiT) with FiPS: calibration on images and the ViT
 * defaults of the compressor (docs/ALGORITHM.md §6-8, "ViT path").
 *
 * The ViT objective is block-wise: loss = Σ over the compressed blocks l of
 * MSE(block_c(x_{l−1}), x_l), all blocks of a group trained jointly, teacher-forced (x_{l−1} and
 * x_l are the ORIGINAL model's block input and output). Only the MLP is compressed, and a block is
 *   h = x + o(Attention(LN_before(x))),   block(x) = h + MLP(LN_after(h)),
 * so with the original input x both blocks compute the same h and
 *   block_c(x) − block(x) = MLP_c(LN_after(h)) − MLP(LN_after(h)):
 * the block's reconstruction error IS its MLP's output error on the MLP's original input rows.
 * Capturing each block's MLP input and output rows (fipsc_vit_forward with a capture) therefore
 * gives exactly the block objective, and the joint trainer of src/fips/fips.h optimises it
 * — with one difference, kept on purpose: the trainer divides block l's MSE by the mean square
 * of its MLP output (its calibration target), so every block counts by its relative error
 * instead of by the absolute size of its MLP output. Within one block this changes nothing (a
 * constant factor); across the blocks of a group it keeps a block with small MLP outputs from
 * being ignored by the shared basis U. (tests/test_vit_compress.c checks the identity above
 * through the real block forward.) */
#ifndef FIPSC_VIT_COMPRESS_H
#define FIPSC_VIT_COMPRESS_H

#include "compress/compress.h"
#include "formats/image_list.h"
#include "model/model.h"
#include "core/status.h"

/* Images per forward pass during calibration (bounds the pixel and activation buffers). */
#define FIPSC_VIT_CALIB_BATCH 64

/* The compressor's defaults for ViTs: fipsc_compress_defaults with the ViT path's choices —
 * RigL masks, groups of 4 consecutive blocks (DeiT-B's [0-3][4-7][8-11]), and the training
 * settings tuned on models/deit-mnist (BENCHMARKS.md): sparsity 0.5, 1000 steps of 1024 token
 * rows per block, lr 2e-3 → 2e-5, weight decay 0. */
void fipsc_compress_defaults_vit(fipsc_compress_options *o);

/* Preprocesses every image of `images` with m's preprocessing (fipsc_vit.preproc), runs the
 * original ViT model m over them FIPSC_VIT_CALIB_BATCH at a time, and records the MLP input and
 * output rows of the listed blocks (NULL/0: every block): image-major, then token (CLS, DIST,
 * patches). out->n_sequences = the number of images. Errors name the image. */
fipsc_status fipsc_calibration_capture_vit(const fipsc_model *m, const fipsc_image_list *images,
                                           const int *blocks, int n_blocks,
                                           fipsc_calibration *out, fipsc_error *err);

#endif
