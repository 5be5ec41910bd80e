/* The fipsc command line: conventions shared by every subcommand.
 *
 * `fipsc <command> [options]`, long options, `--help` on every command. Exit codes: 0 success,
 * 1 failure (bad input file, I/O, numeric trouble), 2 usage error (unknown option, impossible
 * value). Errors go to stderr as "fipsc <command>: <message>". */
#ifndef FIPSC_CLI_H
#define FIPSC_CLI_H

#include <stdbool.h>

#include "core/status.h"
#include "model/model.h"

enum { CLI_OK = 0, CLI_FAILURE = 1, CLI_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

/* Every subcommand, defined in its own file cmd_<name>.c. */
int cmd_inspect(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval_images(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_compress(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import_tfjs(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_eval_sts(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

/* Prints "fipsc <cmd>: <message>" for a library error and returns the exit code it maps to
 * (FIPSC_ERR_ARG -> 2, anything else -> 1). */
int cli_report(const char *cmd, const fipsc_error *err);

/* A duration for progress lines: "12.5s", "3m05s", "2h10m"; "?" when negative (unknown). */
void cli_format_seconds(char *buf, size_t cap, double s);

/* Prints a usage error ("fipsc <cmd>: ...", then "Try 'fipsc <cmd> --help'.") and returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads the whole file path ("-": standard input) into a NUL-terminated malloc'ed buffer. */
fipsc_status cli_read_input(const char *path, char **text, size_t *size, fipsc_error *err);

/* Strict number parsing for option values: the whole string must be a number inside [lo, hi].
 * On failure they print a usage error naming the option and return false. */
bool cli_parse_int(const char *cmd, const char *option, const char *text, long long lo,
                   long long hi, long long *out);
bool cli_parse_double(const char *cmd, const char *option, const char *text, double lo,
                      double hi, double *out);

#endif
