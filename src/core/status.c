/* Status codes and error messages: see src/core/status.h. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

fipsc_status fipsc_fail(fipsc_error *err, fipsc_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

fipsc_status fipsc_fail_context(fipsc_error *err, const char *fmt, ...)
{
    if (!err) return FIPSC_ERR_INTERNAL;
    char prefix[FIPSC_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Join without snprintf("%s%s") so that truncation of an over-long message is explicit. */
    char joined[FIPSC_ERROR_MESSAGE_MAX];
    size_t np = strlen(prefix), nm = strlen(err->message);
    if (np > sizeof joined - 1) np = sizeof joined - 1;
    if (nm > sizeof joined - 1 - np) nm = sizeof joined - 1 - np;
    memcpy(joined, prefix, np);
    memcpy(joined + np, err->message, nm);
    joined[np + nm] = '\0';
    memcpy(err->message, joined, sizeof joined);
    return err->code;
}

const char *fipsc_status_name(fipsc_status code)
{
    switch (code) {
    case FIPSC_OK: return "ok";
    case FIPSC_ERR_IO: return "I/O error";
    case FIPSC_ERR_FORMAT: return "format error";
    case FIPSC_ERR_SHAPE: return "shape error";
    case FIPSC_ERR_NUMERIC: return "numeric error";
    case FIPSC_ERR_NOMEM: return "out of memory";
    case FIPSC_ERR_ARG: return "invalid argument";
    case FIPSC_ERR_UNSUPPORTED: return "unsupported";
    case FIPSC_ERR_NOT_FOUND: return "not found";
    case FIPSC_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

void fipsc_error_clear(fipsc_error *err)
{
    if (!err) return;
    err->code = FIPSC_OK;
    err->message[0] = '\0';
}
