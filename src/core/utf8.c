/* UTF-8 validation (see utf8.h), following the well-formed byte sequences of Unicode table 3-7:
 *   U+0000..U+007F      00..7F
 *   U+0080..U+07FF      C2..DF 80..BF
 *   U+0800..U+0FFF      E0 A0..BF 80..BF
 *   U+1000..U+CFFF      E1..EC 80..BF 80..BF
 *   U+D000..U+D7FF      ED 80..9F 80..BF          (ED A0..BF would be a surrogate)
 *   U+E000..U+FFFF      EE..EF 80..BF 80..BF
 *   U+10000..U+3FFFF    F0 90..BF 80..BF 80..BF
 *   U+40000..U+FFFFF    F1..F3 80..BF 80..BF 80..BF
 *   U+100000..U+10FFFF  F4 80..8F 80..BF 80..BF
 * Restricting the second byte's range is what rules out overlong forms, surrogates and values
 * past U+10FFFF. */
#include "core/utf8.h"

static bool in(unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; }

/* How many bytes of s[i..n) form the longest prefix of a well-formed sequence (the "maximal
 * subpart"), and through *complete whether that prefix is a whole sequence. At least 1. */
static size_t sequence_prefix(const unsigned char *s, size_t n, size_t i, bool *complete)
{
    unsigned char c = s[i];
    *complete = true;
    if (c < 0x80) return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (in(c, 0xc2, 0xdf)) len = 2;
    else if (c == 0xe0) len = 3, lo = 0xa0;
    else if (in(c, 0xe1, 0xec) || in(c, 0xee, 0xef)) len = 3;
    else if (c == 0xed) len = 3, hi = 0x9f;
    else if (c == 0xf0) len = 4, lo = 0x90;
    else if (in(c, 0xf1, 0xf3)) len = 4;
    else if (c == 0xf4) len = 4, hi = 0x8f;
    else {
        *complete = false;
        return 1;
    }
    size_t k = 1;
    if (i + 1 < n && in(s[i + 1], lo, hi)) {
        k = 2;
        while (k < len && i + k < n && in(s[i + k], 0x80, 0xbf)) k++;
    }
    *complete = k == len;
    return k;
}

bool fipsc_utf8_valid(const unsigned char *s, size_t n, size_t *bad_offset)
{
    for (size_t i = 0; i < n;) {
        bool complete;
        size_t k = sequence_prefix(s, n, i, &complete);
        if (!complete) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += k;
    }
    return true;
}

void fipsc_utf8_repair(const unsigned char *s, size_t n, fipsc_bytes *out)
{
    size_t run = 0; /* start of the well-formed run not yet appended */
    for (size_t i = 0; i < n;) {
        bool complete;
        size_t k = sequence_prefix(s, n, i, &complete);
        if (!complete) {
            fipsc_bytes_put(out, s + run, i - run);
            fipsc_bytes_put(out, "\xEF\xBF\xBD", 3);
            run = i + k;
        }
        i += k;
    }
    fipsc_bytes_put(out, s + run, n - run);
}

uint32_t fipsc_utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (len > n - *i) len = n - *i; /* only on ill-formed input, which callers do not pass */
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
    for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[*i + k] & 0x3fu);
    *i += len;
    return cp;
}

void fipsc_utf8_put(fipsc_bytes *out, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) b[0] = (unsigned char)cp, n = 1;
    else if (cp < 0x800) b[0] = (unsigned char)(0xc0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        b[0] = (unsigned char)(0xe0 | cp >> 12), b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
        b[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
    else
        b[0] = (unsigned char)(0xf0 | cp >> 18), b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f)),
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)), b[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
    fipsc_bytes_put(out, b, n);
}
