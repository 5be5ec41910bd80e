/* Taking a checkpoint's tensors into a model (see src/model/ingest.h). */
#include "model/ingest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

fipsc_status fipsc_model_ingest(fipsc_model *m, const fipsc_st_tensor *t, fipsc_status wrong_dtype, bool keep_16bit,
                                fipsc_error *err)
{
    if (!fipsc_dtype_is_float(t->dtype))
        return fipsc_fail(err, wrong_dtype, "%s: tensor '%s' has dtype %s; model weights must be F32, F16 or BF16",
                          t->file, t->name, fipsc_dtype_name(t->dtype));
    /* The values as the model will hold them: float32 (in place from the read-only map when an
     * aligned F32 tensor, else converted), or with keep_16bit F16/BF16 as stored (in place when
     * aligned, else a 16-bit copy). Never written through. */
    fipsc_tensor v = {.ndim = t->ndim, .source_dtype = t->dtype};
    for (int i = 0; i < t->ndim; i++) v.shape[i] = t->shape[i];
    const size_t n = (size_t)fipsc_st_numel(t);
    fipsc_status st = FIPSC_OK;
    if (keep_16bit && t->dtype != FIPSC_F32) {
        v.half = (uint16_t *)(uintptr_t)t->data;
        v.owned = (uintptr_t)t->data % sizeof(uint16_t) != 0;
        if (v.owned && !(v.half = malloc((n ? n : 1) * sizeof *v.half)))
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for tensor '%s'", t->file, t->name);
        if (v.owned) memcpy(v.half, t->data, n * sizeof *v.half);
    } else {
        v.data = (float *)fipsc_st_f32_view(t);
        v.owned = v.data == NULL;
        if (v.owned && (st = fipsc_st_to_f32(t, &v.data, err))) return st;
    }
    const int64_t bad = fipsc_tensor_first_nonfinite(&v);
    if (bad >= 0) {
        st = fipsc_fail(err, FIPSC_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value (%g) at flat index %lld",
                        t->file, t->name, fipsc_tensor_value(&v, bad), (long long)bad);
        if (v.owned) {
            free(v.data);
            free(v.half);
        }
        return st;
    }
    st = v.half ? fipsc_model_add_tensor16(m, t->name, t->ndim, t->shape, v.half, v.owned, t->dtype, err)
                : fipsc_model_add_tensor(m, t->name, t->ndim, t->shape, v.data, v.owned, t->dtype, err);
    return st ? fipsc_fail_context(err, "%s: ", t->file) : FIPSC_OK;
}
