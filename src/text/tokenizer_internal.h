/* The parts of a loaded tokenizer (tokenizer.h), shared by the files of src/text/: the loader
 * fills them, encode.c and decode.c run them. Strings are UTF-8 byte spans, not C strings: token
 * contents may hold NUL. */
#ifndef FIPSC_TEXT_TOKENIZER_INTERNAL_H
#define FIPSC_TEXT_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/bytes.h"
#include "text/tokenizer.h"

/* ---- vocab.c: token strings <-> ids, merges ---- */

typedef struct fipsc_span {
    const char *p;
    size_t len;
} fipsc_span;

/* ---- strings.c ---- */
/* A list of strings: (offset, length) pairs into one byte store. */
typedef struct fipsc_str_list {
    fipsc_bytes store;
    size_t *at; /* 2 per string */
    size_t n, cap;
    bool oom;   /* an append failed */
} fipsc_str_list;
void fipsc_str_list_add(fipsc_str_list *l, const char *p, size_t len);
fipsc_span fipsc_str_list_item(const fipsc_str_list *l, size_t i);
void fipsc_str_list_clear(fipsc_str_list *l);
void fipsc_str_list_free(fipsc_str_list *l);
/* Appends in with every occurrence of from (non-empty) replaced by to, left to right, not
 * overlapping (String.replaceAll). */
void fipsc_text_replace(fipsc_span in, fipsc_span from, fipsc_span to, fipsc_bytes *out);

/* String -> id, open addressing; the strings live in the tokenizer's arena. */
typedef struct fipsc_token_map {
    struct token_slot {
        uint64_t hash;
        fipsc_span key;
        int32_t id; /* -1: empty slot */
    } *slots;
    size_t mask, count;
} fipsc_token_map;

/* (left id, right id) -> (rank, merged id). */
typedef struct fipsc_merge_map {
    struct merge_slot {
        uint64_t key; /* left << 32 | right; UINT64_MAX: empty */
        int32_t rank, merged;
    } *slots;
    size_t mask, count;
} fipsc_merge_map;

uint64_t fipsc_text_hash(const char *p, size_t len);
/* -1 when absent. */
int32_t fipsc_token_map_get(const fipsc_token_map *m, const char *p, size_t len);
/* Inserts or replaces (a later entry wins, as in a JavaScript Map). */
fipsc_status fipsc_token_map_set(fipsc_token_map *m, fipsc_span key, int32_t id, fipsc_error *err);
void fipsc_token_map_free(fipsc_token_map *m);
/* false when absent; a pair listed twice has its later rank (the client's Map does that). */
bool fipsc_merge_map_get(const fipsc_merge_map *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged);
fipsc_status fipsc_merge_map_add(fipsc_merge_map *m, int32_t left, int32_t right, int32_t rank, int32_t merged,
                                 fipsc_error *err);
void fipsc_merge_map_free(fipsc_merge_map *m);

/* ---- the pipeline's components ---- */

typedef enum {
    FIPSC_NORM_NFC, FIPSC_NORM_NFD, FIPSC_NORM_NFKC, FIPSC_NORM_NFKD,
    FIPSC_NORM_REPLACE, /* every occurrence of `from` by `to` */
    FIPSC_NORM_PREPEND, /* `to` before the text (also before an empty one, as the client does) */
    FIPSC_NORM_LOWERCASE,
} fipsc_norm_kind;

typedef struct fipsc_norm_step {
    fipsc_norm_kind kind;
    fipsc_span from, to;
} fipsc_norm_step;

typedef enum { FIPSC_PRE_SPLIT, FIPSC_PRE_BYTE_LEVEL } fipsc_pre_kind;
/* What Split keeps (the client honours only these: other behaviours act as ISOLATED). */
typedef enum { FIPSC_SPLIT_ISOLATED, FIPSC_SPLIT_REMOVED, FIPSC_SPLIT_INVERT } fipsc_split_mode;

typedef struct fipsc_pre_step {
    fipsc_pre_kind kind;
    pcre2_code *regex;   /* Split's pattern; ByteLevel's GPT-2 pattern when use_regex, else NULL */
    fipsc_split_mode mode;
    bool add_prefix_space; /* ByteLevel */
} fipsc_pre_step;

typedef enum {
    FIPSC_DEC_BYTE_LEVEL, FIPSC_DEC_REPLACE, FIPSC_DEC_BYTE_FALLBACK, FIPSC_DEC_FUSE, FIPSC_DEC_STRIP,
} fipsc_dec_kind;

typedef struct fipsc_dec_step {
    fipsc_dec_kind kind;
    fipsc_span from, to; /* Replace */
    char strip_char;     /* Strip: an ASCII character */
    int strip_start, strip_stop;
} fipsc_dec_step;

typedef struct fipsc_added_token {
    fipsc_span content;
    int32_t id;
    bool special, lstrip, rstrip;
} fipsc_added_token;

/* A byte trie of the added tokens' contents: node 0 is the root; children as first-child /
 * next-sibling lists; `token` is the index of the added token ending there or -1. */
typedef struct fipsc_added_trie {
    struct trie_node {
        int32_t child, sibling, token;
        unsigned char byte;
    } *nodes;
    size_t n, cap;
} fipsc_added_trie;

#define FIPSC_MAX_STEPS 16

struct fipsc_tokenizer {
    char *path;
    fipsc_bytes arena;        /* every string below, copied from the parsed JSON */

    /* model: BPE */
    int n_ids;                /* one more than the largest id */
    fipsc_span *token_of;     /* id -> content (len 0, p NULL: no token) */
    bool *is_special;         /* id -> a special token (skipped by decode when asked) */
    bool *is_added;           /* id -> an added token (ByteLevel decoding keeps it as text) */
    fipsc_token_map ids;      /* content -> id, vocabulary and added tokens */
    fipsc_merge_map merges;
    int32_t *merge_list;      /* [n_merges][2]: the parts' ids in rank order */
    int n_merges;
    fipsc_span split_regex;   /* the first Split regex as written (len 0: none) */
    int32_t unk_id;           /* -1: none */
    bool byte_fallback, ignore_merges, fuse_unk;
    int32_t byte_token[256];  /* <0xXX> ids for byte fallback (-1 where missing) */

    fipsc_added_token *added;
    size_t n_added;
    fipsc_added_trie trie;

    fipsc_norm_step norm[FIPSC_MAX_STEPS];
    int n_norm;
    fipsc_pre_step pre[FIPSC_MAX_STEPS];
    int n_pre;
    fipsc_dec_step dec[FIPSC_MAX_STEPS];
    int n_dec;
    bool has_decoder;

    /* post-processor: the ids TemplateProcessing puts before and after the text */
    int32_t post_before[8], post_after[8];
    int n_post_before, n_post_after;

    bool clean_up_spaces;     /* tokenizer_config.json clean_up_tokenization_spaces (default true) */
    int32_t bos_id, eos_id;
};

/* ---- added_tokens.c ---- */
fipsc_status fipsc_added_trie_build(fipsc_tokenizer *t, fipsc_error *err);
/* The added token starting at text[i] (longest), or -1; *len its length in bytes. */
int fipsc_added_match(const fipsc_tokenizer *t, const char *text, size_t n, size_t i, size_t *len);

/* ---- normalize.c ---- */
/* Applies the normalizer steps to in, writing the result to out (reset first). */
fipsc_status fipsc_normalize(const fipsc_tokenizer *t, fipsc_span in, fipsc_bytes *out, fipsc_error *err);

/* ---- pretokenize.c ---- */
/* Compiles a regex of a tokenizer file for PCRE2 with JavaScript's meaning (see the file). */
fipsc_status fipsc_pre_compile(const char *pattern, size_t len, bool literal, pcre2_code **out, fipsc_error *err);
/* The non-empty pieces of text after every pre-tokenizer step, into *pieces (empty on entry;
 * fipsc_str_list_free it). */
fipsc_status fipsc_pretokenize(const fipsc_tokenizer *t, fipsc_span text, fipsc_str_list *pieces, fipsc_error *err);
/* GPT-2's byte <-> printable character map (ByteLevel). */
uint32_t fipsc_byte_to_char(unsigned char b);
int fipsc_char_to_byte(uint32_t cp); /* -1 when cp is not one of the 256 */

/* ---- bpe.c ---- */
/* A growable array of ids. */
typedef struct fipsc_id_list {
    int32_t *v;
    size_t n, cap;
    bool oom;
} fipsc_id_list;
void fipsc_id_push(fipsc_id_list *l, int32_t id);

/* Scratch space of the BPE merge loop, reused from piece to piece (free with fipsc_bpe_work_free). */
typedef struct fipsc_bpe_work {
    struct bpe_symbol *sym;
    struct bpe_candidate *heap;
    size_t sym_cap, heap_cap;
} fipsc_bpe_work;
void fipsc_bpe_work_free(fipsc_bpe_work *w);

/* Appends the ids of one pre-tokenized piece (non-empty) to ids. */
fipsc_status fipsc_bpe_piece(const fipsc_tokenizer *t, fipsc_span piece, fipsc_bpe_work *w, fipsc_id_list *ids,
                             fipsc_error *err);

#endif
