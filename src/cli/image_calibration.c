/* Calibration images for `fipsc compress` on image classifiers (see cli_image_calib.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cli_image_calib.h"
#include "formats/image_list.h"
#include "compress/calibration.h"

bool cli_image_calib_given(const cli_image_calib *c)
{
    return c->images_dir || c->idx_path || c->exclude_dir || c->count > 0;
}

const char *cli_image_calib_problem(const cli_image_calib *c, bool is_classifier)
{
    if (!is_classifier)
        return cli_image_calib_given(c) ? "--calib-images, --calib-idx, --calib-exclude and --calib-count "
                                        "apply to image classifiers only"
                                      : NULL;
    if (c->images_dir && c->idx_path) return "--calib-images and --calib-idx exclude each other";
    if (!c->images_dir && !c->idx_path)
        return "an image classifier calibrates on images: give --calib-images DIR or --calib-idx FILE";
    return NULL;
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; /* "dir/" names "dir" */
    const char *end = path + n, *s = end;
    while (s > path && s[-1] != '/') s--;
    static char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)(end - s), s);
    return buf;
}

fipsc_status cli_image_calibrate(const fipsc_model *m, const cli_image_calib *c, const int *blocks,
                               int n_blocks, bool verbose, fipsc_calibration *cal, char *desc,
                               size_t desc_cap, fipsc_error *err)
{
    const int count = c->count > 0 ? (int)c->count : CLI_VIT_CALIB_COUNT;
    fipsc_image_list exclude = {0}, images = {0};
    int excluded = 0;
    fipsc_status st = FIPSC_OK;
    if (c->exclude_dir && (st = fipsc_image_list_read_dir(c->exclude_dir, NULL, 0, &exclude, NULL, err)))
        return fipsc_fail_context(err, "--calib-exclude: ");
    if (c->exclude_dir && exclude.n == 0) {
        fipsc_image_list_free(&exclude);
        return fipsc_fail(err, FIPSC_ERR_ARG, "--calib-exclude %s: the directory holds no images", c->exclude_dir);
    }
    if (verbose) fprintf(stderr, "calibration: reading images...");
    const char *source = c->images_dir ? c->images_dir : c->idx_path;
    st = c->images_dir ? fipsc_image_list_read_dir(c->images_dir, &exclude, count, &images, &excluded, err)
                       : fipsc_image_list_read_idx(c->idx_path, &exclude, count, &images, &excluded, err);
    if (!st && images.n == 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "%s: no calibration images%s", source,
                        excluded ? " left after --calib-exclude" : "");
    if (!st) {
        char what[300] = "";
        if (c->exclude_dir)
            snprintf(what, sizeof what, " that equal no image of %s (%d skipped)", base_name(c->exclude_dir),
                     excluded);
        snprintf(desc, desc_cap, "the first %d images of %s %s%s%s", images.n,
                 c->images_dir ? "directory" : "IDX file", base_name(source), what,
                 images.n < count ? " (all there are)" : "");
        if (verbose) fprintf(stderr, "\r\033[Kcalibration: capturing MLP inputs and outputs on %d images...", images.n);
        st = fipsc_calibration_capture_images(m, &images, blocks, n_blocks, cal, err);
        if (verbose) fprintf(stderr, "\r\033[K");
    } else if (verbose) {
        fprintf(stderr, "\n");
    }
    fipsc_image_list_free(&images);
    fipsc_image_list_free(&exclude);
    return st;
}
