/* libFuzzer target: Hugging Face preprocessor_config.json (fipsc_image_preproc_parse).
 *
 * The input is the JSON text, parsed for a 3-channel and a 1-channel model of 24 × 24 pixels.
 * When the configuration is accepted and its sizes are small, the pipeline it describes runs on a
 * 7 × 5 test image (resize with the configured filter, centre crop, rescale, normalise) and every
 * output value must be finite. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "formats/image.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

enum { MODEL_SIDE = 24, TEST_W = 7, TEST_H = 5, MAX_PIXELS = 4096 };

static void run_pipeline(const fipsc_image_preproc *pp)
{
    /* Bound the intermediate (resized) image as well as the output. */
    fipsc_image_preproc no_crop = *pp;
    no_crop.do_center_crop = false;
    int rh, rw, oh, ow;
    fipsc_image_preproc_output_size(&no_crop, TEST_H, TEST_W, &rh, &rw);
    fipsc_image_preproc_output_size(pp, TEST_H, TEST_W, &oh, &ow);
    REQUIRE(rh > 0 && rw > 0 && oh > 0 && ow > 0);
    if ((long long)rh * rw > MAX_PIXELS || (long long)oh * ow > MAX_PIXELS) return;
    fipsc_image img;
    fipsc_error err;
    REQUIRE(fipsc_image_alloc(&img, TEST_W, TEST_H, 3, &err) == FIPSC_OK);
    for (int i = 0; i < TEST_W * TEST_H * 3; i++) img.pixels[i] = (unsigned char)(i * 37 + 11);
    size_t n = (size_t)pp->channels * oh * ow;
    float *out = malloc(n * sizeof *out);
    REQUIRE(out);
    REQUIRE(fipsc_image_preprocess(&img, pp, oh, ow, out, "fuzz test image", &err) == FIPSC_OK);
    for (size_t i = 0; i < n; i++) REQUIRE(!isnan(out[i]));
    free(out);
    fipsc_image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    for (int channels = 3; channels >= 1; channels -= 2) {
        fipsc_image_preproc pp;
        fipsc_error err;
        if (fipsc_image_preproc_parse(text, "fuzz/preprocessor_config.json", channels, MODEL_SIDE,
                                      MODEL_SIDE, &pp, &err) == FIPSC_OK) {
            fuzz_note(NULL);
            REQUIRE(pp.channels == channels);
            /* the values the pipeline divides by and multiplies with, as floats */
            REQUIRE(pp.rescale_factor > 0 && isfinite(pp.rescale_factor));
            for (int c = 0; c < channels; c++)
                REQUIRE(isfinite(pp.mean[c]) && isfinite(pp.std[c]) && pp.std[c] > 0);
            run_pipeline(&pp);
        } else {
            fuzz_note(&err);
            REQUIRE(err.code != FIPSC_OK && err.message[0]);
        }
    }
    free(text);
    return 0;
}
