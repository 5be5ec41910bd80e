/* Shared between the safetensors reader, writer and index code. Library-internal. */
#ifndef FIPSC_IO_SAFETENSORS_INTERNAL_H
#define FIPSC_IO_SAFETENSORS_INTERNAL_H

#include <stdbool.h>

/* A shard file named in an index must stay inside the index's directory: relative, non-empty,
 * without a ".." path component (checked lexically; symlinks inside are allowed, as in the
 * Hugging Face cache). On false, *why says what is wrong. */
bool fipsc_st_shard_path_ok(const char *path, const char **why);

#endif
