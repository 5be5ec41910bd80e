/* Checked path building: see src/core/path.h. */
#include "core/path.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The message shows the first bytes of what did not fit, which is enough to recognise the path. */
static fipsc_status too_long(char *buf, size_t cap, size_t need, fipsc_error *err)
{
    char start[81] = "";
    if (cap) {
        size_t n = strnlen(buf, sizeof start - 1); /* vsnprintf left the first cap - 1 bytes */
        memcpy(start, buf, n);
        start[n] = '\0';
    }
    if (cap) buf[0] = '\0';
    return fipsc_fail(err, FIPSC_ERR_ARG, "path too long (%zu bytes, at most %zu): '%s...'", need,
                      cap ? cap - 1 : 0, start);
}

fipsc_status fipsc_path_vformat(char *buf, size_t cap, fipsc_error *err, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, cap, fmt, ap);
    if (n < 0) {
        if (cap) buf[0] = '\0';
        return fipsc_fail(err, FIPSC_ERR_ARG, "cannot format a path from '%s'", fmt);
    }
    if ((size_t)n >= cap) return too_long(buf, cap, (size_t)n, err);
    return FIPSC_OK;
}

fipsc_status fipsc_path_format(char *buf, size_t cap, fipsc_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fipsc_status st = fipsc_path_vformat(buf, cap, err, fmt, ap);
    va_end(ap);
    return st;
}

fipsc_status fipsc_path_join(char *buf, size_t cap, const char *dir, const char *name, fipsc_error *err)
{
    size_t nd = strlen(dir);
    if (nd == 0) return fipsc_path_format(buf, cap, err, "%s", name);
    const char *sep = dir[nd - 1] == '/' ? "" : "/";
    return fipsc_path_format(buf, cap, err, "%s%s%s", dir, sep, name);
}
