/* The normalizer steps of a tokenizer (tokenizer.json "normalizer"), applied in order to each
 * piece of text between added tokens:
 *   NFC, NFD, NFKC, NFKD  ICU's Normalizer2, the library Node.js's String.normalize uses;
 *   Lowercase             ICU's full lowercase mapping in the root locale (JavaScript's
 *                         toLowerCase: context-sensitive final sigma included);
 *   Replace               every occurrence of a string by another, left to right, not
 *                         overlapping (String.replaceAll);
 *   Prepend               a string before the text, even an empty one (the client does; Rust's
 *                         tokenizers does not, but the client is the reference here). */
#include <stdlib.h>
#include <string.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "text/tokenizer_internal.h"

/* UTF-8 -> UTF-16 into a malloc'ed buffer (the text is well-formed: the encoder repaired it). */
static fipsc_status to_utf16(fipsc_span s, UChar **out, int32_t *n, fipsc_error *err)
{
    if (s.len > (size_t)INT32_MAX / 4) return fipsc_fail(err, FIPSC_ERR_ARG, "text of %zu bytes is too long to normalise", s.len);
    UChar *buf = malloc((s.len + 1) * sizeof *buf); /* UTF-16 never needs more units than UTF-8 bytes */
    if (!buf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory normalising %zu bytes of text", s.len);
    UErrorCode ec = U_ZERO_ERROR;
    u_strFromUTF8WithSub(buf, (int32_t)s.len + 1, n, s.p, (int32_t)s.len, 0xFFFD, NULL, &ec);
    if (U_FAILURE(ec)) {
        free(buf);
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "cannot convert text to UTF-16: %s", u_errorName(ec));
    }
    *out = buf;
    return FIPSC_OK;
}

static fipsc_status from_utf16(const UChar *u, int32_t n, fipsc_bytes *out, fipsc_error *err)
{
    UErrorCode ec = U_ZERO_ERROR;
    int32_t need = 0;
    u_strToUTF8WithSub(NULL, 0, &need, u, n, 0xFFFD, NULL, &ec);
    if (ec != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(ec))
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "cannot convert text to UTF-8: %s", u_errorName(ec));
    out->len = 0;
    fipsc_bytes_put(out, NULL, 0);
    char *buf = malloc((size_t)need + 1);
    if (!buf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory normalising text");
    ec = U_ZERO_ERROR;
    u_strToUTF8WithSub(buf, need + 1, &need, u, n, 0xFFFD, NULL, &ec);
    if (!U_FAILURE(ec)) fipsc_bytes_put(out, buf, (size_t)need);
    free(buf);
    if (U_FAILURE(ec)) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "cannot convert text to UTF-8: %s", u_errorName(ec));
    return FIPSC_OK;
}

/* One ICU step (a Normalizer2 form, or lowercasing) from in to out. */
static fipsc_status icu_step(fipsc_norm_kind kind, fipsc_span in, fipsc_bytes *out, fipsc_error *err)
{
    UChar *src = NULL, *dst = NULL;
    int32_t n = 0;
    fipsc_status st = to_utf16(in, &src, &n, err);
    if (st) return st;
    UErrorCode ec = U_ZERO_ERROR;
    const UNormalizer2 *form = NULL;
    switch (kind) {
    case FIPSC_NORM_NFC: form = unorm2_getNFCInstance(&ec); break;
    case FIPSC_NORM_NFD: form = unorm2_getNFDInstance(&ec); break;
    case FIPSC_NORM_NFKC: form = unorm2_getNFKCInstance(&ec); break;
    case FIPSC_NORM_NFKD: form = unorm2_getNFKDInstance(&ec); break;
    default: break;
    }
    int32_t need;
    for (int pass = 0; pass < 2; pass++) { /* measure, then convert */
        ec = U_ZERO_ERROR;
        int32_t cap = pass ? need + 1 : 0;
        if (pass && !(dst = malloc((size_t)cap * sizeof *dst))) {
            free(src);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory normalising text");
        }
        need = form ? unorm2_normalize(form, src, n, dst, cap, &ec) : u_strToLower(dst, cap, src, n, "", &ec);
        if (!pass && ec == U_BUFFER_OVERFLOW_ERROR) ec = U_ZERO_ERROR;
        if (U_FAILURE(ec)) break;
    }
    free(src);
    if (U_FAILURE(ec)) {
        free(dst);
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "ICU normalisation failed: %s", u_errorName(ec));
    }
    st = from_utf16(dst, need, out, err);
    free(dst);
    return st;
}

fipsc_status fipsc_normalize(const fipsc_tokenizer *t, fipsc_span in, fipsc_bytes *out, fipsc_error *err)
{
    /* Two buffers, swapped after each step; `out` always ends with the result. */
    fipsc_bytes tmp = {0};
    out->len = 0;
    fipsc_bytes_put(out, in.p, in.len);
    fipsc_status st = FIPSC_OK;
    for (int k = 0; k < t->n_norm && !st; k++) {
        const fipsc_norm_step *s = &t->norm[k];
        fipsc_span cur = {out->p ? out->p : "", out->len};
        switch (s->kind) {
        case FIPSC_NORM_REPLACE:
            tmp.len = 0;
            fipsc_bytes_put(&tmp, NULL, 0);
            fipsc_text_replace(cur, s->from, s->to, &tmp);
            break;
        case FIPSC_NORM_PREPEND:
            tmp.len = 0;
            fipsc_bytes_put(&tmp, s->to.p, s->to.len);
            fipsc_bytes_put(&tmp, cur.p, cur.len);
            break;
        default: st = icu_step(s->kind, cur, &tmp, err); break;
        }
        fipsc_bytes swap = *out;
        *out = tmp;
        tmp = swap;
    }
    free(tmp.p);
    if (!st && out->oom) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory normalising %zu bytes of text", in.len);
    return st;
}
