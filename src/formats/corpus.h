/* Token corpora: sequences of token ids for evaluation and calibration.
 *
 * Two file forms load into one fipsc_corpus:
 *  - the binary form (docs/FORMAT.md, "Token corpus"): 24-byte header — magic "FIPSCTOK",
 *    uint32 version (1), uint32 count, uint32 length, uint32 vocab_size, all little-endian —
 *    then count·length uint32 ids, sequence after sequence; every id < vocab_size.
 *  - a text file: one sequence per non-blank line, ids as decimal numbers separated by spaces or
 *    tabs. Lines may differ in length. The vocabulary size is unknown (0) until checked against a
 *    model with fipsc_corpus_check_vocab.
 * Anything else is refused with a message naming the file and the line or offset. */
#ifndef FIPSC_CORPUS_H
#define FIPSC_CORPUS_H

#include <stdint.h>

#include "core/status.h"

#define FIPSC_CORPUS_MAGIC "FIPSCTOK"
#define FIPSC_CORPUS_VERSION 1

typedef struct fipsc_corpus {
    int n_seqs;
    int64_t *offsets; /* [n_seqs + 1]: sequence i is ids[offsets[i] .. offsets[i+1]) */
    int32_t *ids;
    int vocab_size;   /* from the binary header; 0 for a text corpus */
} fipsc_corpus;

/* Reads either form (told apart by the magic). */
fipsc_status fipsc_corpus_load(const char *path, fipsc_corpus **out, fipsc_error *err);

/* An empty corpus with room for n sequences and total ids (offsets[0] = 0; the caller fills ids,
 * offsets[1..n] and n_seqs), or NULL when out of memory. */
fipsc_corpus *fipsc_corpus_alloc(int64_t n, int64_t total);

/* A corpus of n sequences of len ids each, copied from ids [n, len]. */
fipsc_status fipsc_corpus_from_ids(const int32_t *ids, int n, int len, int vocab_size,
                                   fipsc_corpus **out, fipsc_error *err);

/* Writes the binary form atomically. Every sequence must have the same length and every id must
 * be < c->vocab_size (which must be set). */
fipsc_status fipsc_corpus_write(const fipsc_corpus *c, const char *path, fipsc_error *err);

/* Checks every id against a model's vocabulary: the error names the sequence, the position, the
 * id and `what` (e.g. the model's path). */
fipsc_status fipsc_corpus_check_vocab(const fipsc_corpus *c, int vocab_size, const char *what,
                                      fipsc_error *err);

static inline int fipsc_corpus_length(const fipsc_corpus *c, int i)
{
    return (int)(c->offsets[i + 1] - c->offsets[i]);
}
static inline const int32_t *fipsc_corpus_seq(const fipsc_corpus *c, int i)
{
    return c->ids + c->offsets[i];
}

void fipsc_corpus_free(fipsc_corpus *c);

#endif
