/* SentencePiece unigram tokenizer, token for token the one of the Universal Sentence Encoder
 * Lite's JavaScript client (@energetic-ai/embeddings 0.2.0, lib/tokenizer.ts), quirks included.
 *
 * Vocabulary: a JSON array [[piece, score], ...] (vocab.json); the id of a piece is its index.
 * The first `reserved` entries (6: "\uFFFD" = unknown, <s>, </s>, three extra ids) are never
 * produced from text except id 0, the unknown token. A null score counts as 0 (JavaScript's
 * null + x == x), which makes the pieces ":", "://", "▁:", "▁:)", "▁:(", "):" and "▁:-)" very
 * cheap. When a piece appears twice the later entry wins.
 *
 * Encoding a text:
 *   1. normalise: NFKC (src/formats/nfkc.h); an empty result stays empty, anything else
 *      becomes "▁" + text with every U+0020 replaced by "▁" (U+2581). No lowercasing.
 *   2. lattice: at every code point position i, every vocabulary piece that starts there
 *      (a prefix search); when none does, the one-code-point unknown piece (id 0, score 0).
 *   3. Viterbi: best[0] = 0; for end = 1..n, for each candidate ending there, by increasing start:
 *        s = score(piece) + best[start];  if best[end] == 0 or s >= best[end]: take it.
 *      (best[end] == 0 means "unset" to the client, so a path of total score exactly 0 is
 *      overridden by any later candidate; ties go to the later candidate, the shorter piece.)
 *   4. backtrack from n: emit the piece chosen at `end`, step back by the piece's length in
 *      UTF-16 code units (the client's String.length; positions with no candidate emit id 0
 *      and step back by the unknown piece's length).
 *   5. merge runs of consecutive unknown ids into one.
 * Every step runs in double precision on the scores as parsed from the JSON text. */
#ifndef FIPSC_SENTENCEPIECE_H
#define FIPSC_SENTENCEPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* The client's RESERVED_SYMBOLS_COUNT. */
#define FIPSC_SP_RESERVED_DEFAULT 6
#define FIPSC_SP_UNKNOWN_ID 0

typedef struct fipsc_sp_tokenizer fipsc_sp_tokenizer;

/* Parses vocab.json text (len bytes). `origin` names it in messages. Fails with
 * FIPSC_ERR_FORMAT (naming the entry) on bad JSON, an entry that is not [string, number|null],
 * or fewer entries than `reserved` + 1. */
fipsc_status fipsc_sp_load_vocab(const char *json_text, size_t len, const char *origin,
                                 int reserved, fipsc_sp_tokenizer **out, fipsc_error *err);
void fipsc_sp_free(fipsc_sp_tokenizer *t);

int fipsc_sp_vocab_size(const fipsc_sp_tokenizer *t);
/* The piece of an id (UTF-8), or NULL when id is out of range. */
const char *fipsc_sp_piece(const fipsc_sp_tokenizer *t, int id);

/* Tokenizes len bytes of UTF-8 text into a malloc'ed array of *n_ids ids (non-NULL even when
 * empty; free() it). Thread-safe: a tokenizer is read-only once loaded. */
fipsc_status fipsc_sp_encode(const fipsc_sp_tokenizer *t, const char *text, size_t len,
                             int32_t **ids, int *n_ids, fipsc_error *err);

/* Step 1 alone, as UTF-8 (malloc'ed, NUL-terminated), for tests and diagnostics. */
fipsc_status fipsc_sp_normalize(const char *text, size_t len, char **out, fipsc_error *err);

#endif
