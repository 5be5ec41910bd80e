/* Error reporting and option-value parsing shared by the subcommands (see cli.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/file.h"
#include "model/family.h"

int cli_report(const char *cmd, const fipsc_error *err)
{
    fprintf(stderr, "fipsc %s: %s\n", cmd, err->message[0] ? err->message : fipsc_status_name(err->code));
    return err->code == FIPSC_ERR_ARG ? CLI_USAGE : CLI_FAILURE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fipsc %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'fipsc %s --help'.\n", cmd);
    return CLI_USAGE;
}

bool cli_parse_int(const char *cmd, const char *option, const char *text, long long lo,
                   long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects an integer in [%lld, %lld], got '%s'", option, lo, hi, text);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_double(const char *cmd, const char *option, const char *text, double lo,
                      double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects a number in [%g, %g], got '%s'", option, lo, hi, text);
        return false;
    }
    *out = v;
    return true;
}

fipsc_status cli_read_input(const char *path, char **text, size_t *size, fipsc_error *err)
{
    if (strcmp(path, "-") != 0) return fipsc_read_file(path, text, size, err);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap) break;
        char *grown = realloc(buf, 2 * cap + 1);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    if (!buf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading standard input");
    if (ferror(stdin)) {
        free(buf);
        return fipsc_fail(err, FIPSC_ERR_IO, "cannot read standard input");
    }
    buf[n] = '\0';
    *text = buf;
    *size = n;
    return FIPSC_OK;
}

void cli_format_seconds(char *buf, size_t cap, double s)
{
    if (s < 0) snprintf(buf, cap, "?");
    else if (s < 60) snprintf(buf, cap, "%.1fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}
