/* What the public API's opaque handles hold (include/fipsc.h): the library's own structures. */
#ifndef FIPSC_API_HANDLES_H
#define FIPSC_API_HANDLES_H

#include <stdbool.h>

#include "compress/compress.h"
#include "compress/settings.h"

struct fipsc_options {
    fipsc_compress_settings settings; /* every setting of `fipsc compress` */
    char *checkpoint_dir;             /* NULL: no checkpoints */
    bool resume;
};

struct fipsc_report {
    fipsc_compress_report *run;
    char calibration[512]; /* the calibration source, as the compressed file's metadata records it */
};

#endif
