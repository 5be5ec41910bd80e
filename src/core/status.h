/* Status codes and error messages.
 *
 * Every library function that can fail returns a fipsc_status and, when it fails, fills a
 * fipsc_error with a precise, human-readable message (which file, which tensor, what was wrong).
 * The library never prints and never exits; the CLI maps statuses to exit codes. */
#ifndef FIPSC_STATUS_H
#define FIPSC_STATUS_H

#include <stddef.h>

typedef enum fipsc_status {
    FIPSC_OK = 0,
    FIPSC_ERR_IO,          /* open/read/write/rename/mmap failed */
    FIPSC_ERR_FORMAT,      /* a file is malformed: truncated, corrupt header, bad JSON, ... */
    FIPSC_ERR_SHAPE,       /* shapes disagree with each other or with the configuration */
    FIPSC_ERR_NUMERIC,     /* NaN/Inf in weights or activations, training diverged */
    FIPSC_ERR_NOMEM,       /* an allocation failed */
    FIPSC_ERR_ARG,         /* an impossible option or argument */
    FIPSC_ERR_UNSUPPORTED, /* valid input that fipsc does not handle (architecture, dtype) */
    FIPSC_ERR_NOT_FOUND,   /* a named tensor, key or file does not exist */
    FIPSC_ERR_INTERNAL     /* a broken invariant inside fipsc: a bug */
} fipsc_status;

#define FIPSC_ERROR_MESSAGE_MAX 1024

typedef struct fipsc_error {
    fipsc_status code;
    char message[FIPSC_ERROR_MESSAGE_MAX];
} fipsc_error;

/* Records code and a printf-style message in err (err may be NULL) and returns code, so that
 * failures read `return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: ...", path);`. */
fipsc_status fipsc_fail(fipsc_error *err, fipsc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with more context ("loading model: " + old message). */
fipsc_status fipsc_fail_context(fipsc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A short stable name for a status ("format error"). */
const char *fipsc_status_name(fipsc_status code);

/* Resets err to FIPSC_OK with an empty message. */
void fipsc_error_clear(fipsc_error *err);

#endif
