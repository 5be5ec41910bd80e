/* A growable byte buffer for the writers that assemble a header or a value in memory before it
 * goes to a file: appends never fail on the spot, an allocation failure is remembered (oom) and
 * checked once at the end. The bytes are always followed by a NUL, so a buffer of text is a C
 * string. */
#ifndef FIPSC_CORE_BYTES_H
#define FIPSC_CORE_BYTES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fipsc_bytes {
    char *p;    /* len bytes and a NUL; NULL while empty; free() it */
    size_t len, cap;
    bool oom;   /* an append failed: the contents are incomplete */
} fipsc_bytes;

void fipsc_bytes_put(fipsc_bytes *b, const void *data, size_t n);
void fipsc_bytes_puts(fipsc_bytes *b, const char *s);

#endif
