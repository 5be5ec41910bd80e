/* UTF-8 validation (the safetensors header must be UTF-8; names and metadata fipsc writes too).
 * Library-internal. */
#ifndef FIPSC_IO_UTF8_H
#define FIPSC_IO_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) is well-formed UTF-8: shortest-form sequences only, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. Otherwise false with *bad_offset (may be NULL) at
 * the first byte of the offending sequence. */
bool fipsc_utf8_valid(const unsigned char *s, size_t n, size_t *bad_offset);

#endif
