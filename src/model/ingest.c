/* Taking a checkpoint's tensors into a model (see src/model/ingest.h). */
#include "model/ingest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A 16-bit tensor kept as stored: borrowed from the map when aligned, else copied (still 16-bit). */
static fipsc_status ingest16(fipsc_model *m, const fipsc_st_tensor *t, fipsc_error *err)
{
    const size_t n = (size_t)fipsc_st_numel(t);
    int64_t bad = -1;
    uint16_t *half = (uint16_t *)(uintptr_t)t->data; /* read-only map: never written through */
    bool owned = (uintptr_t)t->data % sizeof(uint16_t) != 0;
    if (owned) {
        if (!(half = malloc((n ? n : 1) * sizeof *half)))
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for tensor '%s'", t->file, t->name);
        memcpy(half, t->data, n * sizeof *half);
    }
    if ((bad = fipsc_first_nonfinite16(t->dtype, half, n)) >= 0) {
        float value;
        fipsc_convert16_to_f32(t->dtype, half + bad, 1, &value);
        if (owned) free(half);
        return fipsc_fail(err, FIPSC_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value (%g) at flat index %lld",
                          t->file, t->name, (double)value, (long long)bad);
    }
    fipsc_status st = fipsc_model_add_tensor16(m, t->name, t->ndim, t->shape, half, owned, t->dtype, err);
    return st ? fipsc_fail_context(err, "%s: ", t->file) : FIPSC_OK;
}

fipsc_status fipsc_model_ingest(fipsc_model *m, const fipsc_st_tensor *t, fipsc_status wrong_dtype, bool keep_16bit,
                                fipsc_error *err)
{
    if (t->dtype != FIPSC_F32 && t->dtype != FIPSC_F16 && t->dtype != FIPSC_BF16)
        return fipsc_fail(err, wrong_dtype, "%s: tensor '%s' has dtype %s; model weights must be F32, F16 or BF16",
                          t->file, t->name, fipsc_dtype_name(t->dtype));
    if (keep_16bit && t->dtype != FIPSC_F32) return ingest16(m, t, err);
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
