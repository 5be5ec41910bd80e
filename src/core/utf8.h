/* UTF-8 validation (the safetensors header must be UTF-8; names and metadata fipsc writes too),
 * decoding, and the repair of ill-formed text that the tokenizers read. Library-internal. */
#ifndef FIPSC_IO_UTF8_H
#define FIPSC_IO_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bytes.h"

/* True when s[0..n) is well-formed UTF-8: shortest-form sequences only, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. Otherwise false with *bad_offset (may be NULL) at
 * the first byte of the offending sequence. */
bool fipsc_utf8_valid(const unsigned char *s, size_t n, size_t *bad_offset);

/* Appends s[0..n) to out with every maximal ill-formed subsequence replaced by U+FFFD (EF BF BD):
 * the WHATWG decoder's rule, which is how Node.js reads a UTF-8 file and how TextDecoder decodes
 * bytes. The result is well-formed. */
void fipsc_utf8_repair(const unsigned char *s, size_t n, fipsc_bytes *out);

/* The code point at s[*i] of well-formed UTF-8 (n bytes), advancing *i past it. */
uint32_t fipsc_utf8_next(const unsigned char *s, size_t n, size_t *i);

/* Appends code point cp (at most U+10FFFF, not a surrogate) as UTF-8. */
void fipsc_utf8_put(fipsc_bytes *out, uint32_t cp);

#endif
