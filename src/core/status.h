/* Status codes and error messages.
 *
 * Every library function that can fail returns a fipsc_status and, when it fails, fills a
 * fipsc_error with a precise, human-readable message (which file, which tensor, what was wrong).
 * The library never prints and never exits; the CLI maps statuses to exit codes. */
#ifndef FIPSC_STATUS_H
#define FIPSC_STATUS_H

#include <stddef.h>

/* fipsc_status, fipsc_error and fipsc_status_name are public: include/fipsc.h. */
#include "fipsc.h"

/* Records code and a printf-style message in err (err may be NULL) and returns code, so that
 * failures read `return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: ...", path);`. */
fipsc_status fipsc_fail(fipsc_error *err, fipsc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with more context ("loading model: " + old message). */
fipsc_status fipsc_fail_context(fipsc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Resets err to FIPSC_OK with an empty message. */
void fipsc_error_clear(fipsc_error *err);

#endif
