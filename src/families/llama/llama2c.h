/* llama2.c checkpoints (Karpathy's run.c format): a 7-int header and float32 weights, loaded as a
 * Llama-family model (src/families/llama/llama2c.c). */
#ifndef FIPSC_FAMILIES_LLAMA2C_H
#define FIPSC_FAMILIES_LLAMA2C_H

#include <stddef.h>

#include "core/status.h"
#include "model/model.h"

fipsc_status fipsc_load_llama2c(const char *path, fipsc_model **out, fipsc_error *err);
/* The same from size bytes in memory (e.g. for fuzzing); the bytes are copied, not kept.
 * `name` stands for the path in messages and in m->source_path. */
fipsc_status fipsc_load_llama2c_buffer(const void *bytes, size_t size, const char *name, fipsc_model **out,
                                       fipsc_error *err);

#endif
