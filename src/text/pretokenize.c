/* Pre-tokenizers: cutting normalised text into the pieces BPE works on, one step after another
 * (each step cuts every piece of the step before).
 *
 * Split cuts with a regular expression through PCRE2. The tokenizer files' patterns were written
 * for Rust's regex crate; the reference client runs them as JavaScript regexes with the "gu"
 * flags, and fipsc gives them the client's meaning:
 *   - "(?i:'s|'t|'re|'ve|'m|'ll|'d)" becomes "(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))",
 *     the client's rewrite (JavaScript has no inline flags), which also keeps the match ASCII:
 *     a caseless PCRE2 group would match "'ſ" (U+017F folds to s);
 *   - \s and \S become JavaScript's whitespace set: U+0009-000D, U+0020, U+00A0, U+1680,
 *     U+2000-200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF (PCRE2's Unicode \s differs
 *     at U+0085 and U+FEFF);
 *   - \p{L}, \p{N} are Unicode properties in both; \d, \w, \b stay ASCII (no PCRE2_UCP), as in
 *     JavaScript. Debian's PCRE2 10.42 knows Unicode 14: newer characters classify differently
 *     from a newer Node.js.
 * What Split keeps follows the client, which honours only "invert" and "Removed"; every other
 * behaviour acts as "Isolated" (matches and the text between them, both kept, empty ones not).
 *
 * ByteLevel (GPT-2's): optionally a space before the text, optionally GPT-2's own split regex,
 * then every UTF-8 byte of a piece becomes one printable character (bytes_to_unicode: the 188
 * printable Latin-1 bytes stand for themselves, the other 68 are moved to U+0100..U+0143 in
 * order), so that BPE's vocabulary never holds a space or a control character. */
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "text/tokenizer_internal.h"

#define JS_SPACE "\\t\\n\\x0b\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}"

fipsc_status fipsc_pre_compile(const char *pattern, size_t len, bool literal, pcre2_code **out, fipsc_error *err)
{
    static const char inline_i[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
    static const char js_form[] = "(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))";
    fipsc_bytes re = {0};
    uint32_t options = PCRE2_UTF; /* PCRE2 checks the pattern's UTF-8 too (the loader already did) */
    if (literal) {
        fipsc_bytes_put(&re, pattern, len);
        options |= PCRE2_LITERAL;
    } else {
        bool in_class = false;
        for (size_t i = 0; i < len; i++) {
            if (len - i >= sizeof inline_i - 1 && !memcmp(pattern + i, inline_i, sizeof inline_i - 1)) {
                fipsc_bytes_puts(&re, js_form);
                i += sizeof inline_i - 2;
            } else if (pattern[i] == '\\' && i + 1 < len) {
                char c = pattern[++i];
                if (c == 's') fipsc_bytes_puts(&re, in_class ? JS_SPACE : "[" JS_SPACE "]");
                else if (c == 'S' && !in_class) fipsc_bytes_puts(&re, "[^" JS_SPACE "]");
                else if (c == 'S') {
                    free(re.p);
                    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "regex '%.80s': \\S inside a character class is not supported", pattern);
                } else {
                    fipsc_bytes_put(&re, pattern + i - 1, 2);
                }
            } else {
                if (pattern[i] == '[' && !in_class) in_class = true;
                else if (pattern[i] == ']' && in_class) in_class = false;
                fipsc_bytes_put(&re, pattern + i, 1);
            }
        }
        fipsc_bytes_put(&re, NULL, 0);
    }
    if (re.oom) {
        free(re.p);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory compiling a regex");
    }
    int code;
    PCRE2_SIZE at;
    *out = pcre2_compile((PCRE2_SPTR)re.p, re.len, options, &code, &at, NULL);
    free(re.p);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "regex '%.80s' does not compile: %s (at offset %zu of its PCRE2 form)",
                          pattern, (const char *)msg, (size_t)at);
    }
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); /* an optimisation: without JIT it still matches */
    return FIPSC_OK;
}

uint32_t fipsc_byte_to_char(unsigned char b)
{
    if (b <= 32) return 256u + b;
    if (b >= 127 && b <= 160) return 256u + 33 + (b - 127u);
    if (b == 173) return 256u + 67;
    return b;
}

int fipsc_char_to_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 255 && cp != 173)) return (int)cp;
    if (cp >= 256 && cp <= 256 + 32) return (int)(cp - 256);
    if (cp >= 256 + 33 && cp <= 256 + 66) return (int)(cp - 256 - 33 + 127);
    if (cp == 256 + 67) return 173;
    return -1;
}

/* Appends a piece unless it is empty (the client drops empty pieces). */
static void push(fipsc_str_list *l, const char *p, size_t len)
{
    if (len) fipsc_str_list_add(l, p, len);
}

/* The byte-level form of text: each byte as its printable character. */
static void push_byte_level(fipsc_str_list *l, const char *p, size_t len, fipsc_bytes *tmp)
{
    tmp->len = 0;
    for (size_t i = 0; i < len; i++) fipsc_utf8_put(tmp, fipsc_byte_to_char((unsigned char)p[i]));
    push(l, tmp->p, tmp->len);
    l->oom |= tmp->oom;
}

typedef struct split_ctx {
    const fipsc_pre_step *step;
    fipsc_str_list *out;
    fipsc_bytes *tmp;
} split_ctx;

/* One step's pieces of s[0..n): every match of the step's regex, as JavaScript's matchAll finds
 * them (after an empty match the search goes on one character further), and for Split the text
 * between them. A matching error (a pathological pattern's match limit) is reported. */
static fipsc_status split_piece(const split_ctx *c, const char *s, size_t n, pcre2_match_data *md, fipsc_error *err)
{
    const fipsc_pre_step *step = c->step;
    size_t start = 0, prev = 0;
    while (start <= n) {
        int rc = pcre2_match(step->regex, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return fipsc_fail(err, FIPSC_ERR_INTERNAL, "pre-tokenizer regex failed on a %zu-byte text: %s", n, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (step->kind == FIPSC_PRE_BYTE_LEVEL) {
            push_byte_level(c->out, s + ms, me - ms, c->tmp);
        } else if (step->mode == FIPSC_SPLIT_INVERT) {
            push(c->out, s + ms, me - ms);
        } else {
            push(c->out, s + prev, ms - prev);
            if (step->mode == FIPSC_SPLIT_ISOLATED) {
                push(c->out, s + ms, me - ms);
            } else { /* Removed: JavaScript's split keeps what capture groups caught, and the
                      * client wraps a String pattern in one */
                uint32_t opts = 0;
                pcre2_pattern_info(step->regex, PCRE2_INFO_ARGOPTIONS, &opts);
                if (opts & PCRE2_LITERAL) push(c->out, s + ms, me - ms);
                int groups = rc == 0 ? (int)pcre2_get_ovector_count(md) : rc;
                for (int g = 1; g < groups; g++)
                    if (ov[2 * g] != PCRE2_UNSET) push(c->out, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
            }
        }
        prev = me;
        if (me > ms) start = me;
        else if (me < n) {
            size_t i = me;
            fipsc_utf8_next((const unsigned char *)s, n, &i);
            start = i;
        } else {
            break;
        }
    }
    if (step->kind == FIPSC_PRE_SPLIT && step->mode != FIPSC_SPLIT_INVERT) push(c->out, s + prev, n - prev);
    return FIPSC_OK;
}

fipsc_status fipsc_pretokenize(const fipsc_tokenizer *t, fipsc_span text, fipsc_str_list *pieces, fipsc_error *err)
{
    /* Two generations of pieces: `cur` (input of a step) and `next` (its output). */
    fipsc_str_list lists[2];
    memset(lists, 0, sizeof lists);
    fipsc_str_list *cur = &lists[0], *next = &lists[1];
    fipsc_bytes tmp = {0};
    push(cur, text.p, text.len);
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    fipsc_status st = md ? FIPSC_OK : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for regex matching");
    for (int k = 0; k < t->n_pre && !st; k++) {
        const fipsc_pre_step *step = &t->pre[k];
        fipsc_str_list_clear(next);
        split_ctx c = {step, next, &tmp};
        for (size_t i = 0; i < cur->n && !st; i++) {
            fipsc_span piece = fipsc_str_list_item(cur, i);
            const char *p = piece.p;
            size_t len = piece.len;
            if (step->kind == FIPSC_PRE_BYTE_LEVEL && step->add_prefix_space && (len == 0 || p[0] != ' ')) {
                fipsc_bytes spaced = {0};
                fipsc_bytes_put(&spaced, " ", 1);
                fipsc_bytes_put(&spaced, p, len);
                if (spaced.oom) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory pre-tokenizing");
                else if (step->regex) st = split_piece(&c, spaced.p, spaced.len, md, err);
                else push_byte_level(next, spaced.p, spaced.len, &tmp);
                free(spaced.p);
            } else if (step->kind == FIPSC_PRE_BYTE_LEVEL && !step->regex) {
                push_byte_level(next, p, len, &tmp);
            } else {
                st = split_piece(&c, p, len, md, err);
            }
        }
        fipsc_str_list *swap = cur;
        cur = next;
        next = swap;
    }
    pcre2_match_data_free(md);
    free(tmp.p);
    if (!st && cur->oom) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory pre-tokenizing");
    fipsc_str_list_free(next);
    if (st) {
        fipsc_str_list_free(cur);
        return st;
    }
    *pieces = *cur;
    return FIPSC_OK;
}
