/* Ids -> text: the client's decode_single. The ids become their token strings (special tokens
 * dropped when asked), the decoder chain turns the list of strings into another, step by step,
 * and the result is their concatenation:
 *   ByteLevel     runs of ordinary tokens: every character back to its byte (bytes_to_unicode
 *                 inverted; a character outside the map counts as byte 0, as in the client), the
 *                 bytes read as UTF-8 (ill-formed -> U+FFFD); added tokens stay as they are;
 *   Replace       every occurrence of a string in each token;
 *   ByteFallback  runs of <0xHH> tokens become the text of their bytes (ill-formed -> U+FFFD, and
 *                 a leading byte-order mark dropped: the client's TextDecoder does that);
 *   Fuse          all tokens into one;
 *   Strip         up to `start` leading and `stop` trailing copies of a character from each token.
 * With no decoder the tokens are joined with spaces. Then, when tokenizer_config.json asks for
 * it (clean_up_tokenization_spaces, true by default), transformers' clean-up of English
 * tokenization artifacts: " ." -> ".", " ?", " !", " ,", " ' " -> "'", " n't", " 'm", " 's",
 * " 've", " 're" likewise. */
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "text/tokenizer_internal.h"

static bool is_added(const fipsc_tokenizer *t, fipsc_span s)
{
    int32_t id = fipsc_token_map_get(&t->ids, s.p, s.len);
    return id >= 0 && t->is_added[id] && t->token_of[id].len == s.len && !memcmp(t->token_of[id].p, s.p, s.len);
}

/* parseInt(token.slice(3, 5), 16) of a token "<0x..>" of 6 characters; -1 when not one. */
static int byte_token_value(fipsc_span s)
{
    if (s.len != 6 || memcmp(s.p, "<0x", 3) != 0 || s.p[5] != '>') return -1;
    int v = 0, digits = 0;
    for (int i = 3; i < 5; i++) {
        char c = s.p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) break; /* parseInt stops at the first non-digit */
        v = v * 16 + d;
        digits++;
    }
    return digits ? v : -1;
}

/* Bytes read as UTF-8 into out, ill-formed sequences as U+FFFD; drop_bom: a leading EF BB BF
 * is dropped (TextDecoder without ignoreBOM). */
static void add_decoded_bytes(fipsc_str_list *out, const fipsc_bytes *bytes, bool drop_bom)
{
    fipsc_bytes text = {0};
    size_t skip = drop_bom && bytes->len >= 3 && !memcmp(bytes->p, "\xEF\xBB\xBF", 3) ? 3 : 0;
    fipsc_utf8_repair((const unsigned char *)bytes->p + skip, bytes->len - skip, &text);
    fipsc_str_list_add(out, text.p ? text.p : "", text.len);
    out->oom |= text.oom;
    free(text.p);
}

static void step_byte_level(const fipsc_tokenizer *t, const fipsc_str_list *in, fipsc_str_list *out)
{
    fipsc_bytes run = {0};
    bool pending = false;
    for (size_t i = 0; i <= in->n; i++) {
        bool flush = i == in->n;
        fipsc_span s = {0};
        if (!flush) {
            s = fipsc_str_list_item(in, i);
            flush = is_added(t, s);
        }
        if (flush && pending) {
            add_decoded_bytes(out, &run, false);
            run.len = 0;
            pending = false;
        }
        if (i == in->n) break;
        if (flush) {
            fipsc_str_list_add(out, s.p, s.len);
            continue;
        }
        for (size_t j = 0; j < s.len;) {
            int b = fipsc_char_to_byte(fipsc_utf8_next((const unsigned char *)s.p, s.len, &j));
            unsigned char byte = (unsigned char)(b < 0 ? 0 : b);
            fipsc_bytes_put(&run, &byte, 1);
        }
        pending = true;
    }
    out->oom |= run.oom;
    free(run.p);
}

static void step_byte_fallback(const fipsc_str_list *in, fipsc_str_list *out)
{
    fipsc_bytes run = {0};
    for (size_t i = 0; i <= in->n; i++) {
        int v = i < in->n ? byte_token_value(fipsc_str_list_item(in, i)) : -1;
        if (v >= 0) {
            unsigned char byte = (unsigned char)v;
            fipsc_bytes_put(&run, &byte, 1);
            continue;
        }
        if (run.len) {
            add_decoded_bytes(out, &run, true);
            run.len = 0;
        }
        if (i < in->n) {
            fipsc_span s = fipsc_str_list_item(in, i);
            fipsc_str_list_add(out, s.p, s.len);
        }
    }
    out->oom |= run.oom;
    free(run.p);
}

static void run_step(const fipsc_tokenizer *t, const fipsc_dec_step *step, const fipsc_str_list *in,
                     fipsc_str_list *out)
{
    switch (step->kind) {
    case FIPSC_DEC_BYTE_LEVEL: step_byte_level(t, in, out); return;
    case FIPSC_DEC_BYTE_FALLBACK: step_byte_fallback(in, out); return;
    case FIPSC_DEC_FUSE: {
        fipsc_bytes all = {0};
        fipsc_bytes_put(&all, NULL, 0);
        for (size_t i = 0; i < in->n; i++) {
            fipsc_span s = fipsc_str_list_item(in, i);
            fipsc_bytes_put(&all, s.p, s.len);
        }
        fipsc_str_list_add(out, all.p, all.len);
        out->oom |= all.oom;
        free(all.p);
        return;
    }
    case FIPSC_DEC_REPLACE:
    case FIPSC_DEC_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            fipsc_span s = fipsc_str_list_item(in, i);
            if (step->kind == FIPSC_DEC_STRIP) {
                size_t a = 0, b = s.len;
                for (int k = 0; k < step->strip_start && a < s.len && s.p[a] == step->strip_char; k++) a++;
                for (int k = 0; k < step->strip_stop && b > a && s.p[b - 1] == step->strip_char; k++) b--;
                fipsc_str_list_add(out, s.p + a, b - a);
            } else {
                fipsc_bytes r = {0};
                fipsc_bytes_put(&r, NULL, 0);
                fipsc_text_replace(s, step->from, step->to, &r);
                fipsc_str_list_add(out, r.p, r.len);
                out->oom |= r.oom;
                free(r.p);
            }
        }
        return;
    }
}

/* transformers' clean_up_tokenization, its replacements in its order. */
static void clean_up(fipsc_bytes *text)
{
    static const char *const rules[][2] = {{" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},
                                           {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},
                                           {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        fipsc_bytes out = {0};
        fipsc_bytes_put(&out, NULL, 0);
        fipsc_text_replace((fipsc_span){text->p, text->len}, (fipsc_span){rules[r][0], strlen(rules[r][0])},
                     (fipsc_span){rules[r][1], strlen(rules[r][1])}, &out);
        out.oom |= text->oom;
        free(text->p);
        *text = out;
    }
}

fipsc_status fipsc_tokenizer_decode(const fipsc_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                                    char **text_out, size_t *len_out, fipsc_error *err)
{
    *text_out = NULL;
    *len_out = 0;
    fipsc_str_list lists[2];
    memset(lists, 0, sizeof lists);
    fipsc_str_list *cur = &lists[0], *next = &lists[1];
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids) {
            fipsc_str_list_free(cur);
            return fipsc_fail(err, FIPSC_ERR_ARG, "token id %d is outside the vocabulary [0, %d)", (int)id, t->n_ids);
        }
        if (skip_special && t->is_special[id]) continue;
        fipsc_span s = t->token_of[id];
        if (!s.p && t->unk_id >= 0) s = t->token_of[t->unk_id]; /* a hole in the ids: the client's unk_token */
        fipsc_str_list_add(cur, s.p ? s.p : "", s.len);
    }
    fipsc_bytes text = {0};
    fipsc_bytes_put(&text, NULL, 0);
    if (t->has_decoder) {
        for (int k = 0; k < t->n_dec; k++) {
            fipsc_str_list_free(next);
            run_step(t, &t->dec[k], cur, next);
            next->oom |= cur->oom;
            fipsc_str_list *swap = cur;
            cur = next;
            next = swap;
        }
        for (size_t i = 0; i < cur->n; i++) {
            fipsc_span s = fipsc_str_list_item(cur, i);
            fipsc_bytes_put(&text, s.p, s.len);
        }
    } else {
        for (size_t i = 0; i < cur->n; i++) {
            if (i) fipsc_bytes_put(&text, " ", 1);
            fipsc_span s = fipsc_str_list_item(cur, i);
            fipsc_bytes_put(&text, s.p, s.len);
        }
    }
    bool oom = cur->oom || cur->store.oom;
    fipsc_str_list_free(&lists[0]);
    fipsc_str_list_free(&lists[1]);
    if (t->clean_up_spaces) clean_up(&text);
    if (oom || text.oom) {
        free(text.p);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory decoding %zu tokens", n);
    }
    *text_out = text.p;
    *len_out = text.len;
    return FIPSC_OK;
}
