/* Sets of decoded images: calibration images for compressing a Vision Transformer.
 *
 * Two sources:
 *   - a directory: every file directly inside it whose content is a PNG, JPEG, PGM or PPM
 *     (recognised by its first bytes; other files such as a labels list are skipped), in byte
 *     order of the file names (strcmp), so the order does not depend on the file system;
 *   - an IDX file, the format of the MNIST distribution, plain or gzip-compressed (recognised by
 *     its magic bytes; read with zlib): a big-endian header 0x00 0x00 0x08 0x03 (unsigned bytes,
 *     3 dimensions), then n, rows, cols as big-endian uint32, then n·rows·cols pixels, image by
 *     image, row-major. Each image becomes a 1-channel 8-bit image of cols × rows.
 *
 * Both readers can leave out images whose pixels are identical to an image of an exclusion set
 * (same width, height, channels and every byte): a model's hold-out images, for instance, drawn
 * from the same collection, are kept out of its calibration. Comparison is exact, after
 * decoding, so a PNG of an MNIST digit matches its IDX record. */
#ifndef FIPSC_IMAGE_LIST_H
#define FIPSC_IMAGE_LIST_H

#include "formats/image.h"
#include "core/status.h"

typedef struct fipsc_image_list {
    int n;
    fipsc_image *images; /* [n] */
    char **names;        /* [n]: the file name inside the directory, or "<idx path>#<index>" */
} fipsc_image_list;

void fipsc_image_list_free(fipsc_image_list *l);

/* Reads the images of directory dir in name order, skipping those equal to an image of
 * `exclude` (NULL: none), and stops after `max` kept images (max <= 0: all). *excluded (may be
 * NULL) receives how many images were skipped as excluded. A file that starts like an image but
 * does not decode fails, naming it. */
fipsc_status fipsc_image_list_read_dir(const char *dir, const fipsc_image_list *exclude, int max,
                                       fipsc_image_list *out, int *excluded, fipsc_error *err);

/* The same for the images of an IDX file, in file order. A bad magic number, sizes beyond
 * FIPSC_IMAGE_MAX_SIDE, or a file shorter than its header says fail with FIPSC_ERR_FORMAT. */
fipsc_status fipsc_image_list_read_idx(const char *path, const fipsc_image_list *exclude, int max,
                                       fipsc_image_list *out, int *excluded, fipsc_error *err);

/* Moves src's images to the end of dst (src is left empty); on failure both are unchanged. */
fipsc_status fipsc_image_list_append(fipsc_image_list *dst, fipsc_image_list *src, fipsc_error *err);

/* Whether path is a directory (then fipsc_image_list_read_dir applies). */
bool fipsc_image_list_is_dir(const char *path);

#endif
