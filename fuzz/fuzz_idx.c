/* libFuzzer target: IDX image files, plain or gzip-compressed (fipsc_image_list_read_idx: the
 * MNIST distribution's format, read as ViT calibration images).
 *
 * The input is the file, written to a RAM-backed scratch file for each execution (the reader
 * takes a path). When it reads, every image must be 1-channel with the header's size, and reading
 * the file again while excluding the images just read must keep none of them and count them all
 * as excluded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/image_list.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_scratch("images.idx", data, size);
    const char *path = fuzz_scratch_path("images.idx");
    fipsc_image_list all;
    fipsc_error err;
    int excluded = -1;
    if (fipsc_image_list_read_idx(path, NULL, 0, &all, &excluded, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(all.n == 0 && all.images == NULL && err.code != FIPSC_OK && err.message[0]);
    } else {
        fuzz_note(NULL);
        REQUIRE(excluded == 0 && all.n >= 0);
        for (int i = 0; i < all.n; i++) {
            const fipsc_image *img = &all.images[i];
            REQUIRE(img->channels == 1 && img->width == all.images[0].width &&
                    img->height == all.images[0].height && img->pixels && all.names[i]);
        }
        fipsc_image_list rest;
        REQUIRE(fipsc_image_list_read_idx(path, &all, 0, &rest, &excluded, &err) == FIPSC_OK);
        REQUIRE(rest.n == 0 && excluded == all.n);
        fipsc_image_list_free(&rest);
        if (all.n > 1) { /* at most one image */
            fipsc_image_list first;
            REQUIRE(fipsc_image_list_read_idx(path, NULL, 1, &first, &excluded, &err) == FIPSC_OK);
            REQUIRE(first.n == 1 && memcmp(first.images[0].pixels, all.images[0].pixels,
                                           (size_t)all.images[0].width * all.images[0].height) == 0);
            fipsc_image_list_free(&first);
        }
        fipsc_image_list_free(&all);
    }
    fuzz_clear_scratch();
    return 0;
}
