/* A minimal test harness: CHECK-style assertions that count failures and keep going, so one run
 * reports every broken expectation; main returns test_summary(). */
#ifndef FIPSC_TESTUTIL_H
#define FIPSC_TESTUTIL_H

#include <math.h>
#include <stdio.h>

#include "core/status.h"

extern int test_failures;
extern int test_checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        test_checks++;                                                              \
        if (!(cond)) {                                                              \
            test_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_MSG(cond, ...)                                                    \
    do {                                                                        \
        test_checks++;                                                          \
        if (!(cond)) {                                                          \
            test_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* Status is FIPSC_OK; on failure prints the error message. */
#define CHECK_OK(expr, errp)                                                          \
    do {                                                                              \
        test_checks++;                                                                \
        fipsc_status st_ = (expr);                                                    \
        if (st_ != FIPSC_OK) {                                                        \
            test_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #expr,  \
                    fipsc_status_name(st_), (errp)->message);                         \
        }                                                                             \
    } while (0)

/* Status equals `code` and the message contains `needle`. */
#define CHECK_FAILS(expr, code, needle, errp) \
    check_fails_impl((expr), (code), (needle), (errp), #expr, __FILE__, __LINE__)

#define CHECK_NEAR(a, b, tol)                                                                \
    do {                                                                                     \
        test_checks++;                                                                       \
        double a_ = (a), b_ = (b);                                                           \
        if (!(fabs(a_ - b_) <= (tol))) {                                                     \
            test_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g, tol %g\n", __FILE__, \
                    __LINE__, #a, a_, #b, b_, (double)(tol));                                \
        }                                                                                    \
    } while (0)

void check_fails_impl(fipsc_status got, fipsc_status want, const char *needle,
                      const fipsc_error *err, const char *expr, const char *file, int line);

/* Paths from the environment set by CMake (FIPSC_SOURCE_DIR, FIPSC_SHARED_DIR, FIPSC_BINARY_DIR),
 * joined with rel, written into buf. */
const char *test_path(char *buf, size_t cap, const char *env_var, const char *rel);

/* buf[cap] = the printf-style path, through the library's checked fipsc_path_format: a path that
 * does not fit stops the test (exit 2) with the message, instead of silently naming another file. */
const char *test_pathf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A fresh empty directory under the build tree for this test's files. */
const char *test_tmpdir(const char *test_name);

/* Prints "N checks, M failed" and returns the process exit code. */
int test_summary(const char *test_name);

#endif
