/* TensorFlow.js graph models: model.json (graph + weights manifest) and its binary weight shards.
 *
 * The format (https://www.tensorflow.org/js/guide/save_load, tfjs-converter):
 *
 *   model.json = { "format": "graph-model", ...,
 *                  "modelTopology": { "node": [ { "name", "op", "input": [...], "attr" }, ... ] },
 *                  "weightsManifest": [ { "paths": ["group1-shard1of7", ...],
 *                                         "weights": [ { "name", "shape": [...],
 *                                                        "dtype": "float32" }, ... ] }, ... ] }
 *
 * Each manifest group's shard files, concatenated in the order of "paths", hold its weights back to
 * back in the order listed: product(shape) elements each, row-major, little-endian, 4 bytes for
 * float32 and int32. A weight may straddle two shards. TF.js orientation is TensorFlow's: a dense
 * kernel is [in, out] (x·W), the transpose of Hugging Face's [out, in].
 *
 * fipsc_tfjs_open reads and checks everything before returning, each failure with a message that
 * names the file and, where there is one, the group and the weight:
 *   - model.json is a JSON object with a "weightsManifest" array of groups, each with a "paths"
 *     array of relative file names (no "..", not absolute) and a "weights" array;
 *   - every weight has a non-empty unique "name", a "shape" of at most FIPSC_MAX_DIMS non-negative
 *     integers and a "dtype": float32 and int32 are read, bool/string/complex64 and quantized
 *     weights ("quantization") are refused as unsupported, any other dtype is an error;
 *   - every shard exists, and a group's shards together hold exactly the bytes its weights need;
 *   - "modelTopology", when present, has a "node" array of objects with string "name" and "op"
 *     and an optional "input" array of strings.
 * Nothing is read outside the model's directory. */
#ifndef FIPSC_TFJS_H
#define FIPSC_TFJS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

typedef struct fipsc_tfjs_weight {
    const char *name;
    fipsc_dtype dtype;             /* FIPSC_F32 or FIPSC_I32 */
    int ndim;                      /* 0 for a scalar */
    int64_t shape[FIPSC_MAX_DIMS]; /* as stored (TensorFlow orientation) */
    const void *data;              /* nbytes, 4-byte aligned, owned by the model */
    size_t nbytes;
    int group;                     /* index of its weightsManifest group */
} fipsc_tfjs_weight;

/* One graph node: an operation, its name and the names of its inputs ("node" or "node:1" for a
 * node's second output, "^node" for a control dependency), as written in model.json. */
typedef struct fipsc_tfjs_node {
    const char *name;
    const char *op;
    int n_inputs;
    const char *const *inputs;
} fipsc_tfjs_node;

typedef struct fipsc_tfjs_model fipsc_tfjs_model;

/* Opens a TF.js model: `path` is its directory (holding model.json) or its model.json. */
fipsc_status fipsc_tfjs_open(const char *path, fipsc_tfjs_model **out, fipsc_error *err);
void fipsc_tfjs_close(fipsc_tfjs_model *m);

/* The model.json path read (for messages). */
const char *fipsc_tfjs_path(const fipsc_tfjs_model *m);

/* Weights in manifest order. */
int fipsc_tfjs_weight_count(const fipsc_tfjs_model *m);
const fipsc_tfjs_weight *fipsc_tfjs_weight_at(const fipsc_tfjs_model *m, int i);
/* NULL when there is no weight of that name. */
const fipsc_tfjs_weight *fipsc_tfjs_find(const fipsc_tfjs_model *m, const char *name);

/* Graph nodes in model.json order (none when there is no modelTopology). */
int fipsc_tfjs_node_count(const fipsc_tfjs_model *m);
const fipsc_tfjs_node *fipsc_tfjs_node_at(const fipsc_tfjs_model *m, int i);
/* NULL when there is no node of that name. */
const fipsc_tfjs_node *fipsc_tfjs_find_node(const fipsc_tfjs_model *m, const char *name);

#endif
