/* Taking a checkpoint's tensors into a model (see src/model/ingest.h). */
#include "model/ingest.h"

#include <stdlib.h>

fipsc_status fipsc_model_ingest(fipsc_model *m, const fipsc_st_tensor *t, fipsc_status wrong_dtype, fipsc_error *err)
{
    if (t->dtype != FIPSC_F32 && t->dtype != FIPSC_F16 && t->dtype != FIPSC_BF16)
        return fipsc_fail(err, wrong_dtype, "%s: tensor '%s' has dtype %s; model weights must be F32, F16 or BF16",
                          t->file, t->name, fipsc_dtype_name(t->dtype));
    float *data = (float *)fipsc_st_f32_view(t); /* read-only map: never written through */
    bool owned = data == NULL;
    fipsc_status st;
    if (owned && (st = fipsc_st_to_f32(t, &data, err))) return st;
    int64_t bad = fipsc_first_nonfinite(data, (size_t)fipsc_st_numel(t));
    if (bad >= 0) {
        double value = data[bad];
        if (owned) free(data);
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value (%g) at flat index %lld",
                          t->file, t->name, value, (long long)bad);
    }
    if ((st = fipsc_model_add_tensor(m, t->name, t->ndim, t->shape, data, owned, t->dtype, err)))
        return fipsc_fail_context(err, "%s: ", t->file);
    return FIPSC_OK;
}
