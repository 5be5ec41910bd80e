#include "testutil.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/path.h"

int test_failures = 0;
int test_checks = 0;

void check_fails_impl(fipsc_status got, fipsc_status want, const char *needle,
                      const fipsc_error *err, const char *expr, const char *file, int line)
{
    test_checks++;
    if (got != want) {
        test_failures++;
        fprintf(stderr, "%s:%d: %s: expected status '%s', got '%s' (%s)\n", file, line, expr,
                fipsc_status_name(want), fipsc_status_name(got), err ? err->message : "");
        return;
    }
    if (needle && (!err || !strstr(err->message, needle))) {
        test_failures++;
        fprintf(stderr, "%s:%d: %s: message '%s' does not mention '%s'\n", file, line, expr,
                err ? err->message : "(none)", needle);
    }
}

const char *test_path(char *buf, size_t cap, const char *env_var, const char *rel)
{
    const char *base = getenv(env_var);
    if (!base) {
        fprintf(stderr, "environment variable %s is not set (run the test through ctest)\n", env_var);
        exit(2);
    }
    return test_pathf(buf, cap, "%s/%s", base, rel);
}

const char *test_pathf(char *buf, size_t cap, const char *fmt, ...)
{
    fipsc_error err;
    va_list ap;
    va_start(ap, fmt);
    fipsc_status st = fipsc_path_vformat(buf, cap, &err, fmt, ap);
    va_end(ap);
    if (st != FIPSC_OK) {
        fprintf(stderr, "test path: %s\n", err.message);
        exit(2);
    }
    return buf;
}

const char *test_tmpdir(const char *test_name)
{
    static char dir[4096];
    const char *base = getenv("FIPSC_BINARY_DIR");
    test_pathf(dir, sizeof dir, "%s/test-tmp/%s", base ? base : ".", test_name);
    char cmd[2 * sizeof dir + 64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        exit(2);
    }
    return dir;
}

int test_summary(const char *test_name)
{
    printf("%s: %d checks, %d failed\n", test_name, test_checks, test_failures);
    return test_failures ? 1 : 0;
}
