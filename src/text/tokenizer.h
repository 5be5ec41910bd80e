/* Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) in C: text to token ids and
 * back, id for id as the JavaScript port of transformers' tokenizers does it (@lenml/tokenizers
 * 3.7.2, a fork of transformers.js; tests/tokenizers/ holds its goldens).
 *
 * Encoding a text (UTF-8; ill-formed bytes become U+FFFD first, as Node.js reads a file):
 *   1. added tokens: the text is cut at every added token (longest match, left to right); an
 *      added token's lstrip/rstrip trims the whitespace beside it. The pieces between go on:
 *   2. normalizer (NFC/NFD/NFKC/NFKD through ICU, Replace, Prepend, Lowercase, Sequence),
 *   3. pre-tokenizer (Split by a regex — PCRE2, with JavaScript's \s — or a string; ByteLevel,
 *      which maps every UTF-8 byte to one printable character; Sequence),
 *   4. model: BPE (merges by rank through a priority queue over a linked list of symbols; byte
 *      fallback to <0xXX> tokens; ignore_merges; unknown tokens fused),
 *   5. post-processor: TemplateProcessing (e.g. BOS before the text) or ByteLevel (nothing).
 * Decoding runs the decoder chain (ByteLevel, Replace, ByteFallback, Fuse, Strip) and, when the
 * tokenizer config asks for it, transformers' clean-up of spaces before punctuation.
 *
 * Anything else in a tokenizer file (WordPiece or Unigram models, Metaspace, BertNormalizer, ...)
 * is refused at load time with a message that names the component. */
#ifndef FIPSC_TEXT_TOKENIZER_H
#define FIPSC_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct fipsc_tokenizer fipsc_tokenizer;

/* path: a tokenizer.json, or a directory holding one. tokenizer_config.json beside it (optional)
 * supplies the special tokens, clean_up_tokenization_spaces and the tokenizer class. */
fipsc_status fipsc_tokenizer_load(const char *path, fipsc_tokenizer **out, fipsc_error *err);
/* The same from memory: the text of tokenizer.json (len bytes) and of tokenizer_config.json (NULL:
 * none); origin names the first in messages and is what fipsc_tokenizer_path returns. */
fipsc_status fipsc_tokenizer_parse(const char *json, size_t len, const char *config, size_t config_len,
                                   const char *origin, fipsc_tokenizer **out, fipsc_error *err);
void fipsc_tokenizer_free(fipsc_tokenizer *t);

/* One more than the largest id. */
int fipsc_tokenizer_vocab_size(const fipsc_tokenizer *t);
/* The token string of id (not NUL-terminated: *len bytes), or NULL when no token has that id. */
const char *fipsc_tokenizer_token(const fipsc_tokenizer *t, int id, size_t *len);
/* The ids of tokenizer_config.json's bos_token and eos_token, or -1. */
int fipsc_tokenizer_bos(const fipsc_tokenizer *t);
int fipsc_tokenizer_eos(const fipsc_tokenizer *t);
/* The path it was loaded from, for reports. */
const char *fipsc_tokenizer_path(const fipsc_tokenizer *t);

/* What a tokenizer is, for writing it in another form (llama.cpp's GGUF vocabulary). */
typedef struct fipsc_tokenizer_info {
    bool byte_level;         /* a ByteLevel pre-tokenizer: GPT-2-style byte-level BPE */
    bool byte_fallback;      /* SentencePiece-style BPE with <0xXX> byte tokens */
    bool prefix_space;       /* a Prepend "▁" normalizer (SentencePiece's dummy prefix) */
    const char *split_regex; /* the first Split pre-tokenizer's regex as written in the file, or NULL */
    int n_merges;
    int unk_id;              /* -1: none */
    bool adds_bos, adds_eos; /* the post-processor puts tokenizer_config's BOS first / EOS last */
} fipsc_tokenizer_info;
void fipsc_tokenizer_describe(const fipsc_tokenizer *t, fipsc_tokenizer_info *out);
/* Merge number rank (0 = applied first): the ids of its two parts and of their merge. */
void fipsc_tokenizer_merge(const fipsc_tokenizer *t, int rank, int32_t *left, int32_t *right, int32_t *merged);
/* Whether id is an added token, and a special one (false outside the vocabulary). */
bool fipsc_tokenizer_is_added(const fipsc_tokenizer *t, int id);
bool fipsc_tokenizer_is_special(const fipsc_tokenizer *t, int id);

/* Encodes len bytes of text into a malloc'ed array of *n ids (non-NULL even when empty).
 * add_special: run the post-processor (a BOS the template asks for). Thread-safe. */
fipsc_status fipsc_tokenizer_encode(const fipsc_tokenizer *t, const char *text, size_t len, bool add_special,
                                    int32_t **ids, size_t *n, fipsc_error *err);

/* Decodes n ids into malloc'ed, NUL-terminated UTF-8 (*len bytes). skip_special leaves out the
 * special tokens. An id outside the vocabulary is an error. */
fipsc_status fipsc_tokenizer_decode(const fipsc_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                                    char **text, size_t *len, fipsc_error *err);

#endif
