/* Shared helpers of the libFuzzer targets (fuzz/fuzz_*.c).
 *
 * Parsers that only take a path are fuzzed through files: each execution writes its input into a
 * private scratch directory on a RAM-backed file system ($FIPSC_FUZZ_SCRATCH_BASE when set, else
 * /dev/shm when it exists, else $TMPDIR or /tmp), runs the parser on it and removes the files
 * again. The directory is removed at exit (not after a crash: scripts/fuzz points
 * FIPSC_FUZZ_SCRATCH_BASE at a directory of its own and removes that).
 *
 * Inputs that stand for several files (a sharded index and its shards, a TF.js model.json and its
 * weight files) are "bundles": the bytes up to the first separator are the main file, and every
 * separator line
 *     "\n@@ NAME\n"      NAME = 1..FUZZ_NAME_MAX characters of [A-Za-z0-9._-], not "." or ".."
 * starts another file called NAME that runs up to the next separator. A separator whose name is
 * not valid is ordinary content. A later part with an earlier part's name replaces it. */
#ifndef FIPSC_FUZZUTIL_H
#define FIPSC_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_NAME_MAX 48
#define FUZZ_MAX_PARTS 16

/* A NUL-terminated malloc'ed copy of size bytes (aborts when out of memory). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* With FIPSC_FUZZ_VERBOSE=1 in the environment, prints what the parser said about the current
 * input ("accepted" for err == NULL, else the error message) to stderr: for checking that seeds
 * reach the parser's depths, e.g. `FIPSC_FUZZ_VERBOSE=1 fuzz_x -runs=0 fuzz/corpus/fuzz_x`. */
struct fipsc_error;
void fuzz_note(const struct fipsc_error *err);

/* The process's scratch directory (created on first use, removed at exit). */
const char *fuzz_scratch_dir(void);

/* scratch/name; the result is a static buffer, overwritten by the next call. */
const char *fuzz_scratch_path(const char *name);

/* Writes size bytes to scratch/name (aborts when that fails: the harness is broken, not the
 * parser). */
void fuzz_write_scratch(const char *name, const void *data, size_t size);

/* Removes every file written with fuzz_write_scratch since the last call. */
void fuzz_clear_scratch(void);

typedef struct fuzz_part {
    char name[FUZZ_NAME_MAX + 1];
    const uint8_t *data;
    size_t size;
} fuzz_part;

/* Splits a bundle; part 0 gets main_name. Returns the number of parts (at least 1, at most
 * FUZZ_MAX_PARTS: further separators are content of the last part). */
int fuzz_split_bundle(const uint8_t *data, size_t size, const char *main_name, fuzz_part *parts);

/* Splits a bundle and writes every part into the scratch directory. */
void fuzz_write_bundle(const uint8_t *data, size_t size, const char *main_name);

#endif
