/* The checkpoint file of one group, DIR/group-KKK.safetensors (the design is in
 * src/compress/checkpoint.c, the layout in docs/FORMAT.md "Checkpoints"): its names, hashes and
 * recorded inputs, shared by the files of the checkpoint code, internal to the compress module:
 *   checkpoint_format.c  what a file records and how: hashes, the inputs, names
 *   checkpoint_save.c    writing a group's file
 *   checkpoint_load.c    reading and validating a group's file
 *   checkpoint.c         the directory: preparing it, resuming from it */
#ifndef FIPSC_COMPRESS_CHECKPOINT_FILE_H
#define FIPSC_COMPRESS_CHECKPOINT_FILE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "compress/compress_internal.h"

#define CKPT_FORMAT "checkpoint"
#define CKPT_VERSION "1"
#define CKPT_PREFIX "group-"
#define CKPT_SUFFIX ".safetensors"

/* The start of every hash (the group's weights, its calibration rows, a file's contents). */
#define CKPT_HASH_SEED 0x6669707363636b70ULL /* "fipscckp" */

/* h extended by the n bytes at data: eight bytes at a time, then the tail and the length. */
uint64_t compress_checkpoint_hash_bytes(uint64_t h, const void *data, size_t n);

/* The integrity hash covers the metadata texts after the tensors' bytes: h extended by them. */
uint64_t compress_checkpoint_hash_metadata(uint64_t h, const char *inputs, const char *parts, const char *report);

/* The inputs of group k as name → value strings, named as the command line spells them so that
 * a mismatch reads naturally. calib NULL leaves out the calibration (not known yet). NULL when
 * out of memory. */
cJSON *compress_checkpoint_inputs_json(const fipsc_fips_group *g, const fipsc_fips_calib *calib,
                                       const fipsc_compress_options *o, const fipsc_group_plan *plan, int k);

/* buf[cap] = DIR/group-KKK.safetensors, the checkpoint of group k in dir. */
fipsc_status compress_checkpoint_path(const char *dir, int k, char *buf, size_t cap, fipsc_error *err);

/* Columns of matrix (layer, role) of g, or -1. */
int compress_checkpoint_matrix_cols(const fipsc_fips_group *g, int first_block, int layer, fipsc_mlp_role role);

/* Opens group k's checkpoint at path and checks it: integrity, then its inputs against this
 * run's (calib NULL: all but the calibration). With `out`, also reads its parts and report. */
fipsc_status compress_checkpoint_load_group(const char *path, const fipsc_fips_group *g,
                                            const fipsc_fips_calib *calib, const fipsc_compress_options *o,
                                            const fipsc_group_plan *plan, int k, compress_saved *out,
                                            fipsc_error *err);

/* The same checks and reading for a checkpoint image of size bytes in memory (one a rank sent:
 * src/compress/compress.h fipsc_compress_ranks), named `name` in messages; its calibration is
 * not compared (the receiver has not captured that group's rows). */
fipsc_status compress_checkpoint_load_bytes(const void *bytes, size_t size, const char *name,
                                            const fipsc_fips_group *g, const fipsc_compress_options *o,
                                            const fipsc_group_plan *plan, int k, compress_saved *out,
                                            fipsc_error *err);

#endif
