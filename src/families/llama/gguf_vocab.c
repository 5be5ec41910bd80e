/* A Hugging Face tokenizer (tokenizer.json, src/text/) written as llama.cpp's GGUF vocabulary, as
 * convert_hf_to_gguf.py writes it (gguf-py's vocab.py and the model's set_vocab):
 *
 *   byte-level BPE (Llama-3, Qwen2/3)   tokenizer.ggml.model "gpt2", .pre naming the pre-tokenizer
 *                                       regex llama.cpp must apply ("llama-bpe", "qwen2", "gpt-2"),
 *                                       .tokens, .token_type, .merges ("left right", rank order)
 *   SentencePiece-style BPE (Llama-2,   tokenizer.ggml.model "llama", .tokens, .scores, .token_type,
 *   Mistral, Gemma)                     .add_space_prefix (the "▁" Prepend normalizer)
 *
 * Ids past the tokenizer's up to the model's vocabulary size are "[PAD<id>]" (unused), as the
 * converter pads. Token types: special added tokens control (3), other added tokens user-defined
 * (4), <0xXX> byte (6), the unknown token unknown (2), the rest normal (1).
 *
 * Scores. llama.cpp's SentencePiece tokenizer merges, again and again, the adjacent pair whose
 * concatenation is the token of highest score (the leftmost on ties); BPE merges the pair of lowest
 * merge rank. Scoring each token −(rank of the first merge that makes it) gives llama.cpp the
 * BPE order (what SentencePiece's own BPE models hold); a token no merge makes scores below every
 * merge (−n_merges − 1), so llama.cpp forms it only when nothing else remains, which BPE never does:
 * that and the pre-tokenizer regexes are where the two tokenizers can still differ
 * (tests/test_llamacpp.sh measures it on the golden strings). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "families/llama/gguf_internal.h"

/* The pre-tokenizer regexes llama.cpp knows by name (llama-vocab.cpp), as the files write them. */
static const struct {
    const char *name, *regex;
} known_pre[] = {
    {"llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
              "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

static char *token_text(const fipsc_tokenizer *t, int id)
{
    size_t len = 0;
    const char *p = fipsc_tokenizer_token(t, id, &len);
    char s[32];
    if (!p) {
        snprintf(s, sizeof s, "[PAD%d]", id);
        return strdup(s);
    }
    return strndup(p, len);
}

static int token_type(const fipsc_tokenizer *t, const fipsc_tokenizer_info *info, int id, const char *text)
{
    size_t len = 0;
    if (!fipsc_tokenizer_token(t, id, &len)) return 5; /* unused */
    if (fipsc_tokenizer_is_special(t, id)) return 3;
    if (fipsc_tokenizer_is_added(t, id)) return 4;
    if (id == info->unk_id) return 2;
    if (info->byte_fallback && strlen(text) == 6 && !strncmp(text, "<0x", 3) && text[5] == '>') return 6;
    return 1;
}

fipsc_status llama_gguf_add_tokenizer(fipsc_gguf_writer *w, const fipsc_config *c, const fipsc_tokenizer *t,
                                      fipsc_error *err)
{
    fipsc_tokenizer_info info;
    fipsc_tokenizer_describe(t, &info);
    const int n = c->vocab_size, n_tok = fipsc_tokenizer_vocab_size(t);
    if (n_tok > n)
        return fipsc_fail(err, FIPSC_ERR_ARG, "the tokenizer %s has %d tokens, more than the model's vocabulary of %d",
                          fipsc_tokenizer_path(t), n_tok, n);
    const char *pre = NULL;
    if (info.byte_level) {
        if (!info.split_regex) pre = "gpt-2";
        for (size_t k = 0; !pre && k < sizeof known_pre / sizeof known_pre[0]; k++)
            if (!strcmp(info.split_regex, known_pre[k].regex)) pre = known_pre[k].name;
        if (!pre)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: its pre-tokenizer regex is none llama.cpp knows by name "
                              "(fipsc recognises Llama-3's and Qwen2's): llama.cpp would split text otherwise",
                              fipsc_tokenizer_path(t));
    } else if (!info.byte_fallback) {
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: neither byte-level BPE nor BPE with byte fallback: llama.cpp "
                          "has no vocabulary type for it", fipsc_tokenizer_path(t));
    }
    char **names = calloc((size_t)n, sizeof *names);
    int32_t *types = calloc((size_t)n, sizeof *types);
    float *scores = info.byte_level ? NULL : calloc((size_t)n, sizeof *scores);
    char **merges = info.byte_level ? calloc((size_t)info.n_merges + 1, sizeof *merges) : NULL;
    fipsc_status st = names && types && (scores || merges) ? FIPSC_OK
                                                           : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the vocabulary");
    for (int i = 0; i < n && !st; i++) {
        if (!(names[i] = token_text(t, i))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the vocabulary");
        else types[i] = token_type(t, &info, i, names[i]);
        if (scores) scores[i] = (float)(-info.n_merges - 1);
    }
    for (int r = info.n_merges - 1; r >= 0 && !st; r--) { /* downwards: the first merge making a token wins */
        int32_t left, right, merged;
        fipsc_tokenizer_merge(t, r, &left, &right, &merged);
        if (scores) {
            if (merged >= 0 && merged < n) scores[merged] = (float)-r;
            continue;
        }
        /* "left right"; a space inside a part is written as U+0120, as the converter does */
        size_t ll = 0, lr = 0;
        const char *a = fipsc_tokenizer_token(t, left, &ll), *b = fipsc_tokenizer_token(t, right, &lr);
        fipsc_bytes s = {0};
        for (int part = 0; part < 2; part++) {
            const char *p = part ? b : a;
            size_t len = part ? lr : ll;
            for (size_t k = 0; k < len; k++)
                if (p[k] == ' ') fipsc_bytes_puts(&s, "\xc4\xa0");
                else fipsc_bytes_put(&s, p + k, 1);
            if (!part) fipsc_bytes_put(&s, " ", 1);
        }
        if (s.oom) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the merges");
        merges[r] = s.p;
    }
    if (!st) {
        fipsc_gguf_add_string(w, "tokenizer.ggml.model", info.byte_level ? "gpt2" : "llama");
        if (pre) fipsc_gguf_add_string(w, "tokenizer.ggml.pre", pre);
        fipsc_gguf_add_string_array(w, "tokenizer.ggml.tokens", n, (const char *const *)names);
        if (scores) fipsc_gguf_add_f32_array(w, "tokenizer.ggml.scores", n, scores);
        fipsc_gguf_add_i32_array(w, "tokenizer.ggml.token_type", n, types);
        if (merges) fipsc_gguf_add_string_array(w, "tokenizer.ggml.merges", info.n_merges, (const char *const *)merges);
        const int bos = fipsc_tokenizer_bos(t), eos = fipsc_tokenizer_eos(t);
        if (bos >= 0) fipsc_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
        if (eos >= 0) fipsc_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
        if (info.unk_id >= 0) fipsc_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)info.unk_id);
        fipsc_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", info.adds_bos);
        fipsc_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", info.adds_eos);
        if (!info.byte_level) fipsc_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", info.prefix_space);
    }
    for (int i = 0; names && i < n; i++) free(names[i]);
    for (int r = 0; merges && r < info.n_merges; r++) free(merges[r]);
    free(names);
    free(types);
    free(scores);
    free(merges);
    return st;
}
