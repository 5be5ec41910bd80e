/* Unicode NFKC normalisation of UTF-8 text, as JavaScript's String.prototype.normalize("NFKC").
 *
 * The sentence encoder's JavaScript client normalises every input with NFKC before tokenizing, so
 * the C tokenizer must produce the very same code points. Node.js implements normalize() with ICU's
 * Normalizer2; fipsc calls the same ICU normaliser (libicu, Debian's libicu-dev), so the two agree
 * up to the Unicode version of the ICU each was built with (new characters only).
 *
 * Malformed UTF-8 is read the way Node.js reads a file as 'utf8': every maximal ill-formed
 * subsequence becomes U+FFFD. */
#ifndef FIPSC_NFKC_H
#define FIPSC_NFKC_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Decodes len bytes of UTF-8 and NFKC-normalises them into a malloc'ed array of code points
 * (*n_out of them; *out is non-NULL even when *n_out is 0). Thread-safe. */
fipsc_status fipsc_nfkc_codepoints(const char *text, size_t len, uint32_t **out, size_t *n_out,
                                   fipsc_error *err);

#endif
