/* NFKC normalisation through ICU (see src/formats/nfkc.h).
 *
 * UTF-8 -> UTF-16 (ICU's native form, ill-formed bytes -> U+FFFD) -> unorm2_normalize with the
 * NFKC instance -> code points. ICU's normaliser instance is a process-wide immutable singleton,
 * safe to use from several threads at once. */
#include "formats/nfkc.h"

#include <limits.h>
#include <stdlib.h>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

/* UTF-8 -> malloc'ed UTF-16: ICU first measures (preflight), then converts. */
static fipsc_status to_utf16(const char *text, int32_t len, UChar **out, int32_t *n_out, fipsc_error *err)
{
    UErrorCode ec = U_ZERO_ERROR;
    int32_t need = 0;
    u_strFromUTF8WithSub(NULL, 0, &need, text, len, 0xFFFD, NULL, &ec);
    if (ec != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(ec))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "cannot decode UTF-8 text: %s", u_errorName(ec));
    UChar *buf = malloc(((size_t)need + 1) * sizeof *buf);
    if (!buf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory decoding %d bytes of text", (int)len);
    ec = U_ZERO_ERROR;
    u_strFromUTF8WithSub(buf, need + 1, n_out, text, len, 0xFFFD, NULL, &ec);
    if (U_FAILURE(ec)) {
        free(buf);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "cannot decode UTF-8 text: %s", u_errorName(ec));
    }
    *out = buf;
    return FIPSC_OK;
}

/* NFKC of UTF-16 text into a malloc'ed buffer, measured first like to_utf16. */
static fipsc_status normalize16(const UChar *src, int32_t n, UChar **out, int32_t *n_out, fipsc_error *err)
{
    UErrorCode ec = U_ZERO_ERROR;
    const UNormalizer2 *nfkc = unorm2_getNFKCInstance(&ec);
    if (U_FAILURE(ec))
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "ICU has no NFKC normaliser: %s", u_errorName(ec));
    int32_t need = unorm2_normalize(nfkc, src, n, NULL, 0, &ec);
    if (ec != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(ec))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "NFKC normalisation failed: %s", u_errorName(ec));
    UChar *buf = malloc(((size_t)need + 1) * sizeof *buf);
    if (!buf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory normalising text");
    ec = U_ZERO_ERROR;
    *n_out = unorm2_normalize(nfkc, src, n, buf, need + 1, &ec);
    if (U_FAILURE(ec)) {
        free(buf);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "NFKC normalisation failed: %s", u_errorName(ec));
    }
    *out = buf;
    return FIPSC_OK;
}

fipsc_status fipsc_nfkc_codepoints(const char *text, size_t len, uint32_t **out, size_t *n_out,
                                   fipsc_error *err)
{
    *out = NULL;
    *n_out = 0;
    /* NFKC can expand text up to 18-fold; ICU counts in int32_t. */
    if (len > (size_t)INT32_MAX / 32)
        return fipsc_fail(err, FIPSC_ERR_ARG, "text of %zu bytes is too long to normalise", len);
    UChar *u16 = NULL, *norm = NULL;
    int32_t n16 = 0, nn = 0;
    fipsc_status st = to_utf16(text, (int32_t)len, &u16, &n16, err);
    if (!st) st = normalize16(u16, n16, &norm, &nn, err);
    free(u16);
    if (st) return st;
    uint32_t *cps = malloc(((size_t)nn + 1) * sizeof *cps);
    if (!cps) {
        free(norm);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory normalising text");
    }
    size_t k = 0;
    for (int32_t i = 0; i < nn;) {
        UChar32 c;
        U16_NEXT(norm, i, nn, c);
        cps[k++] = (uint32_t)c;
    }
    free(norm);
    *out = cps;
    *n_out = k;
    return FIPSC_OK;
}
