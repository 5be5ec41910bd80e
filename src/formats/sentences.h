/* Sentences from a file, for sentence encoders: calibration and distillation read them. */
#ifndef FIPSC_FORMATS_SENTENCES_H
#define FIPSC_FORMATS_SENTENCES_H

#include "core/status.h"

typedef struct fipsc_sentences {
    int n;
    char **text; /* [n] NUL-terminated UTF-8 sentences, owned */
    int *line;   /* [n] 1-based line of the file each sentence comes from */
} fipsc_sentences;

/* Reads the sentences of a file:
 *   *.tsv  an STS file (src/formats/sts_file.h layout: genre, file, year, id, score, sentence 1,
 *          sentence 2, ...): both sentences of every pair, pair by pair (s1, s2, s1, s2, ...);
 *   else   plain text, one sentence per line (LF or CRLF; blank lines skipped).
 * Errors name the file (and the line for STS files). A file without any sentence fails. */
fipsc_status fipsc_sentences_read(const char *path, fipsc_sentences *out, fipsc_error *err);
void fipsc_sentences_free(fipsc_sentences *s);

#endif
