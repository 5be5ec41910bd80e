/* Taking a checkpoint's tensors into a model: the one way every loader does it. */
#ifndef FIPSC_MODEL_INGEST_H
#define FIPSC_MODEL_INGEST_H

#include <stdbool.h>

#include "core/status.h"
#include "formats/safetensors.h"
#include "model/model.h"

/* Adds safetensors tensor t to m under its own name: an aligned F32 tensor in place (the caller
 * makes m keep the mapping alive), F16/BF16 kept as stored (in place when aligned) with
 * keep_16bit — for families whose every weight access goes through fipsc_model_require or a
 * fipsc_linear — else converted to float32. A dtype that is not a float
 * fails with wrong_dtype (FIPSC_ERR_UNSUPPORTED for a checkpoint from elsewhere, FIPSC_ERR_FORMAT
 * for a file fipsc wrote), a NaN/Inf with FIPSC_ERR_NUMERIC, both naming t->file, the tensor and
 * (for NaN/Inf) the first bad flat index. */
fipsc_status fipsc_model_ingest(fipsc_model *m, const fipsc_st_tensor *t, fipsc_status wrong_dtype, bool keep_16bit,
                                fipsc_error *err);

#endif
