/* libFuzzer target: image decoding, PNG (libpng), JPEG (libjpeg), PGM/PPM (fipsc_image_decode).
 *
 * The input is an image file. A decoded image must have a valid size and channel count and own
 * width · height · channels bytes (every byte is read, so ASan sees a short buffer). Small images
 * then go through channel conversion and a resize with a filter chosen by the input, so that the
 * resampler also meets odd sizes. */
#include <stdint.h>
#include <stdlib.h>

#include "formats/image.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fipsc_image img;
    fipsc_error err;
    if (fipsc_image_decode(data, size, "fuzz.img", &img, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(img.pixels == NULL && err.code != FIPSC_OK && err.message[0]);
        return 0;
    }
    fuzz_note(NULL);
    REQUIRE(img.width > 0 && img.height > 0 && img.width <= FIPSC_IMAGE_MAX_SIDE &&
            img.height <= FIPSC_IMAGE_MAX_SIDE && img.channels >= 1 && img.channels <= 4);
    size_t n = (size_t)img.width * img.height * img.channels;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += img.pixels[i];
    if ((long long)img.width * img.height <= 4096) {
        for (int channels = 1; channels <= 3; channels += 2) {
            fipsc_image conv = {0}, resized = {0};
            REQUIRE(fipsc_image_convert(&img, channels, &conv, &err) == FIPSC_OK);
            fipsc_resample filter = (fipsc_resample)(sum % 6);
            int w = 1 + (img.width * 3 + (int)(sum % 7)) / 4, h = 1 + (img.height * 5) / 3;
            REQUIRE(fipsc_image_resize(&conv, w, h, filter, &resized, &err) == FIPSC_OK);
            REQUIRE(resized.width == w && resized.height == h && resized.channels == channels);
            fipsc_image_free(&resized);
            fipsc_image_free(&conv);
        }
    }
    fipsc_image_free(&img);
    return 0;
}
