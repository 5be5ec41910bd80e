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

bool fipsc_utf8_valid(const unsigned char *s, size_t n, size_t *bad_offset)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (in(c, 0xc2, 0xdf)) len = 2;
        else if (c == 0xe0) len = 3, lo = 0xa0;
        else if (in(c, 0xe1, 0xec) || in(c, 0xee, 0xef)) len = 3;
        else if (c == 0xed) len = 3, hi = 0x9f;
        else if (c == 0xf0) len = 4, lo = 0x90;
        else if (in(c, 0xf1, 0xf3)) len = 4;
        else if (c == 0xf4) len = 4, hi = 0x8f;
        else goto bad;
        if (n - i < len || !in(s[i + 1], lo, hi)) goto bad;
        for (size_t k = 2; k < len; k++)
            if (!in(s[i + k], 0x80, 0xbf)) goto bad;
        i += len;
    }
    return true;
bad:
    if (bad_offset) *bad_offset = i;
    return false;
}
