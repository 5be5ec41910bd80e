/* The growable byte buffer (see core/bytes.h): capacity doubles, so n appends cost O(total). */
#include "core/bytes.h"

#include <stdlib.h>
#include <string.h>

void fipsc_bytes_put(fipsc_bytes *b, const void *data, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap) cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void fipsc_bytes_puts(fipsc_bytes *b, const char *s) { fipsc_bytes_put(b, s, strlen(s)); }
