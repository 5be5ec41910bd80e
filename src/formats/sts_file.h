/* STS Benchmark files: tab-separated genre, file, year, id, score (0-5), sentence 1, sentence 2;
 * columns after the seventh are ignored, LF or CRLF line ends (the CR is not part of sentence 2),
 * empty lines skipped. */
#ifndef FIPSC_FORMATS_STS_FILE_H
#define FIPSC_FORMATS_STS_FILE_H

#include "core/status.h"

typedef struct fipsc_sts_set {
    int n;          /* pairs */
    double *score;  /* [n] gold scores */
    char **s1, **s2;/* [n] the sentences (UTF-8, as in the file) */
    int extra_column_rows; /* rows that had columns after the seventh */
} fipsc_sts_set;

/* Reads an STS file. Errors name the file and line: fewer than 7 columns, a score that is not a
 * finite number, fewer than 2 pairs. */
fipsc_status fipsc_sts_read(const char *path, fipsc_sts_set *out, fipsc_error *err);
void fipsc_sts_free(fipsc_sts_set *set);

#endif
