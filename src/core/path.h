/* Checked path building.
 *
 * Paths go into fixed buffers (PATH_MAX-sized fields of fipsc structs, stack buffers). A bare
 * snprintf silently cuts an over-long path, and the program then opens or, worse, writes another
 * file than the one named; gcc also warns about it only when inlining lets it see both sizes,
 * which depends on the target CPU's tuning. Every path is therefore built through these two
 * functions, which report truncation as an error naming the start of the path. */
#ifndef FIPSC_PATH_H
#define FIPSC_PATH_H

#include <stdarg.h>
#include <stddef.h>

#include "core/status.h"

/* buf[cap] = dir + "/" + name ("name" alone when dir is empty; no second slash when dir ends in
 * one). FIPSC_ERR_ARG "path too long" when the result needs more than cap - 1 bytes; buf is then
 * the empty string. err may be NULL. */
fipsc_status fipsc_path_join(char *buf, size_t cap, const char *dir, const char *name, fipsc_error *err);

/* buf[cap] = the printf-style fmt (for paths with numbers or suffixes: "%s/case%d", "%s.tmp-%ld").
 * Same failure as fipsc_path_join. */
fipsc_status fipsc_path_format(char *buf, size_t cap, fipsc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with a va_list, for wrappers (the tests' test_pathf). */
fipsc_status fipsc_path_vformat(char *buf, size_t cap, fipsc_error *err, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
