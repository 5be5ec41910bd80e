/* Images for the vision models: decoding, PIL-compatible resampling, Hugging Face preprocessing.
 *
 * Decoding: PNG (libpng), JPEG (libjpeg) and binary/ASCII PGM/PPM (P2, P3, P5, P6), recognised by
 * their first bytes, not by the file name. A decoded image is 8-bit, interleaved (row-major,
 * then channel), with 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels. PNG palettes and
 * gray depths below 8 bits are expanded, 16-bit samples keep their high byte, a tRNS chunk
 * becomes an alpha channel; no gamma correction is applied (as PIL). PGM/PPM samples with a
 * maxval other than 255 are rescaled to 0..255 with rounding.
 *
 * Preprocessing reproduces the Hugging Face image processors (ViTImageProcessor,
 * DeiTImageProcessor), which work on 8-bit PIL images:
 *   1. channels: to the model's channel count (gray -> RGB replicates; RGB -> gray is PIL's
 *      "L" conversion L = (19595 R + 38470 G + 7471 B + 2^15) >> 16; alpha is dropped as PIL's
 *      convert("RGB") does, without compositing);
 *   2. resize (PIL Image.resize with the configured filter, on 8-bit data, rounded per pass);
 *   3. centre crop (transformers' center_crop: top = (H - h) // 2, left = (W - w) // 2, zero
 *      padding when the crop is larger than the image);
 *   4. rescale (x · rescale_factor, normally 1/255) and normalise ((x - mean_c) / std_c);
 * and produces planar float32 [C, H, W], the layout of a PyTorch pixel_values tensor. */
#ifndef FIPSC_IMAGE_H
#define FIPSC_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

/* Largest width or height accepted from a file, and largest pixel count: a corrupt header must
 * not turn into a huge allocation. */
#define FIPSC_IMAGE_MAX_SIDE 32768
#define FIPSC_IMAGE_MAX_PIXELS (1LL << 28)

typedef struct fipsc_image {
    int width, height;
    int channels;          /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    unsigned char *pixels; /* [height][width][channels], malloc'ed */
} fipsc_image;

/* Frees the pixels and zeroes the struct; safe on a zeroed or already freed image. */
void fipsc_image_free(fipsc_image *img);

/* A new zero-filled image. */
fipsc_status fipsc_image_alloc(fipsc_image *img, int width, int height, int channels,
                               fipsc_error *err);

/* Decodes a PNG, JPEG, PGM or PPM held in memory; `name` is used in messages. */
fipsc_status fipsc_image_decode(const void *bytes, size_t size, const char *name,
                                fipsc_image *out, fipsc_error *err);

/* Reads and decodes the file at path. */
fipsc_status fipsc_image_read(const char *path, fipsc_image *out, fipsc_error *err);

/* ------------------------------------------------------------------ pixel operations */

/* Resampling filters, numbered as PIL's Image.Resampling (and the "resample" key of a Hugging
 * Face preprocessor_config.json). */
typedef enum fipsc_resample {
    FIPSC_RESAMPLE_NEAREST = 0,
    FIPSC_RESAMPLE_LANCZOS = 1,
    FIPSC_RESAMPLE_BILINEAR = 2,
    FIPSC_RESAMPLE_BICUBIC = 3,
    FIPSC_RESAMPLE_BOX = 4,
    FIPSC_RESAMPLE_HAMMING = 5
} fipsc_resample;

const char *fipsc_resample_name(fipsc_resample r);

/* Converts to `channels` (1 or 3) as described above. */
fipsc_status fipsc_image_convert(const fipsc_image *in, int channels, fipsc_image *out,
                                 fipsc_error *err);

/* Resizes to width × height the way PIL's Image.resize does on an 8-bit image: separable
 * convolution (horizontal pass, then vertical), the filter widened by the scale factor when
 * shrinking (antialiasing), coefficients normalised per output pixel and quantised to 22-bit
 * fixed point, each pass rounded and clamped to 0..255. NEAREST picks the source pixel
 * floor((x + 0.5) · in / out). A pass whose size does not change is skipped, so resizing to the
 * same size is an exact copy. */
fipsc_status fipsc_image_resize(const fipsc_image *in, int width, int height, fipsc_resample filter,
                                fipsc_image *out, fipsc_error *err);

/* Crops the centre width × height region (transformers' center_crop, zero padding when the crop
 * is larger than the image). */
fipsc_status fipsc_image_center_crop(const fipsc_image *in, int width, int height,
                                     fipsc_image *out, fipsc_error *err);

/* ------------------------------------------------------------------ preprocessing */

typedef enum fipsc_resize_mode {
    FIPSC_RESIZE_EXACT = 0,  /* to exactly resize_height × resize_width */
    FIPSC_RESIZE_SHORTEST_EDGE /* shorter side to shortest_edge, aspect kept: long' = int(s·long/short) */
} fipsc_resize_mode;

typedef struct fipsc_image_preproc {
    int channels; /* the model's num_channels (1 or 3) */
    bool do_resize;
    fipsc_resize_mode resize_mode;
    int resize_height, resize_width; /* FIPSC_RESIZE_EXACT */
    int shortest_edge;               /* FIPSC_RESIZE_SHORTEST_EDGE */
    fipsc_resample resample;
    bool do_center_crop;
    int crop_height, crop_width;
    bool do_rescale;
    double rescale_factor;
    bool do_normalize;
    float mean[3], std[3]; /* per channel */
} fipsc_image_preproc;

/* The preprocessing used when a checkpoint has no preprocessor_config.json: DeiT's defaults
 * scaled to the model's input size — resize to round(h·256/224) × round(w·256/224) (256 × 256
 * for a 224 × 224 model), bicubic, centre crop h × w, rescale 1/255, normalise with the ImageNet
 * mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) (gray: their first entries). */
void fipsc_image_preproc_default(fipsc_image_preproc *pp, int channels, int height, int width);

/* Parses a Hugging Face preprocessor_config.json text (`origin` names it in messages).
 *
 * Keys: do_resize, size ({"height", "width"}, {"shortest_edge"} or an integer = square),
 * resample (0..5), do_center_crop, crop_size ({"height", "width"} or an integer), do_rescale,
 * rescale_factor, do_normalize, image_mean, image_std (a number or one entry per channel),
 * image_processor_type. A step whose do_* key is absent is done exactly when its parameters are
 * present (a file listing no crop_size does not crop, whatever the processor class's default is),
 * except rescaling, which defaults to on with 1/255. A step switched on without its parameters
 * uses the model's input size (resize, crop) and the processor class's defaults: bilinear and
 * mean = std = 0.5 for ViTImageProcessor, bicubic and the ImageNet statistics for
 * DeiTImageProcessor. Wrong types, out-of-range values and unknown resample filters fail with
 * FIPSC_ERR_FORMAT naming the key. */
fipsc_status fipsc_image_preproc_parse(const char *json_text, const char *origin, int channels,
                                       int height, int width, fipsc_image_preproc *pp,
                                       fipsc_error *err);

/* Size of the preprocessed image for an input of in_height × in_width. */
void fipsc_image_preproc_output_size(const fipsc_image_preproc *pp, int in_height, int in_width,
                                     int *height, int *width);

/* Runs the pipeline on img and writes planar float32 [pp->channels, height, width] into out,
 * which must hold expect_height × expect_width × channels floats; fails with FIPSC_ERR_SHAPE when
 * the preprocessed size is not expect_height × expect_width. `name` is used in messages. */
fipsc_status fipsc_image_preprocess(const fipsc_image *img, const fipsc_image_preproc *pp,
                                    int expect_height, int expect_width, float *out,
                                    const char *name, fipsc_error *err);

#endif
