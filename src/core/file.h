/* Files: read-only memory maps for inputs, atomic writers for outputs.
 *
 * Every file fipsc writes goes through fipsc_atomic_file: the bytes go to a temporary file in the
 * destination's directory, which is fsynced and renamed over the destination only on commit.
 * A failure, a kill or a full disk therefore never leaves a partial output behind. */
#ifndef FIPSC_FILE_H
#define FIPSC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

typedef struct fipsc_mapped_file {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
    char path[4096];
} fipsc_mapped_file;

/* Maps path read-only. */
fipsc_status fipsc_map_file(const char *path, fipsc_mapped_file **out, fipsc_error *err);
void fipsc_unmap_file(fipsc_mapped_file *mf);
/* Same as fipsc_unmap_file, with the signature fipsc_model_keep wants. */
void fipsc_unmap_file_release(void *mf);

/* Tells the kernel that the pages wholly inside [p, p + bytes) are not needed in memory now: the
 * process drops them; the data stay in the file and come back when read. Only for memory mapped
 * from a file (shared, or private and never written): on ordinary memory it would discard the
 * data. */
void fipsc_file_pages_release(const void *p, size_t bytes);

typedef struct fipsc_atomic_file {
    FILE *fp;               /* write through this (or fipsc_atomic_write) */
    char final_path[4096];
    char temp_path[4200];
    int failed;             /* a write failed: commit will refuse */
    char first_error[256];
} fipsc_atomic_file;

/* Creates the temporary file beside path. Fails (with the directory named) if it cannot. */
fipsc_status fipsc_atomic_open(const char *path, fipsc_atomic_file *af, fipsc_error *err);
/* Writes n bytes; failures are remembered and reported by commit. */
fipsc_status fipsc_atomic_write(fipsc_atomic_file *af, const void *data, size_t n, fipsc_error *err);
/* Flushes, fsyncs, renames over the final path and fsyncs the directory. On failure the
 * temporary file is removed and the final path is untouched. */
fipsc_status fipsc_atomic_commit(fipsc_atomic_file *af, fipsc_error *err);
/* Discards the temporary file (safe to call after a failed commit or twice). */
void fipsc_atomic_abort(fipsc_atomic_file *af);

/* Reads a whole (small) file into a NUL-terminated malloc'ed buffer. */
fipsc_status fipsc_read_file(const char *path, char **out, size_t *size, fipsc_error *err);

#endif
