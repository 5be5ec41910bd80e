/* Calibration images for `fipsc compress` on an image classifier: the command-line options and the
 * capture behind them (the library side is src/formats/image_list.h and src/compress/calibration.h).
 *
 *   --calib-images DIR     the image files directly inside DIR, in name order
 *   --calib-idx FILE       the images of an IDX file (MNIST's format, gzip or plain), in file order
 *   --calib-exclude DIR    leave out every candidate whose pixels equal an image in DIR (e.g. the
 *                          model's hold-out images, drawn from the same collection)
 *   --calib-count N        the first N images that are not excluded (default 1024) */
#ifndef FIPSC_CLI_IMAGE_CALIB_H
#define FIPSC_CLI_IMAGE_CALIB_H

#include <stdbool.h>
#include <stddef.h>

#include "compress/compress.h"
#include "model/model.h"

#define CLI_VIT_CALIB_COUNT 1024

typedef struct cli_image_calib {
    const char *images_dir;  /* --calib-images */
    const char *idx_path;    /* --calib-idx */
    const char *exclude_dir; /* --calib-exclude */
    long long count;         /* --calib-count; 0 = CLI_VIT_CALIB_COUNT */
} cli_image_calib;

/* Whether any of the image options was given. */
bool cli_image_calib_given(const cli_image_calib *c);

/* The usage problem of these options for a model that is (is_classifier) or is not an image
 * classifier, or NULL. */
const char *cli_image_calib_problem(const cli_image_calib *c, bool is_classifier);

/* Reads the calibration images (excluding as asked), captures the listed blocks' MLP rows on
 * the original model m into *cal and writes a description of the source into desc (for the
 * report and the output's metadata; no absolute paths). Fewer images than asked for is fine (all
 * there are); none at all fails with FIPSC_ERR_ARG. `verbose`: one progress line on stderr. */
fipsc_status cli_image_calibrate(const fipsc_model *m, const cli_image_calib *c, const int *blocks,
                               int n_blocks, bool verbose, fipsc_calibration *cal, char *desc,
                               size_t desc_cap, fipsc_error *err);

#endif
