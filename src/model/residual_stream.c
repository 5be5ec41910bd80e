/* The residual stream between streaming calibration passes (see src/model/residual_stream.h). */
#include "model/residual_stream.h"

#include <stdlib.h>
#include <string.h>

fipsc_status fipsc_residual_stream_begin(fipsc_residual_stream *s, int to, fipsc_error *err)
{
    const int from = s->rows ? s->to + 1 : 0;
    if (to < from)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "residual stream: a pass through block %d, but the stream stands "
                          "after block %d", to, from - 1);
    s->from = from;
    s->to = to;
    s->at = 0;
    return FIPSC_OK;
}

fipsc_status fipsc_residual_stream_claim(fipsc_residual_stream *s, int64_t rows, int d, int64_t *offset,
                                         fipsc_error *err)
{
    *offset = s->at;
    if (rows < 0 || d < 1) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "residual stream: %lld rows of %d", (long long)rows, d);
    if (s->from == 0) { /* the first pass: the stream grows */
        if (s->d == 0) s->d = d;
        if (d != s->d)
            return fipsc_fail(err, FIPSC_ERR_INTERNAL, "residual stream: rows of width %d, then %d", s->d, d);
        if (s->at + rows > s->cap_rows) {
            int64_t cap = s->cap_rows > 0 ? s->cap_rows : 1024;
            while (cap < s->at + rows) cap *= 2;
            float *grown = realloc(s->rows, (size_t)cap * (size_t)d * sizeof *grown);
            if (!grown)
                return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the residual stream (%lld rows of %d)",
                                  (long long)cap, d);
            s->rows = grown;
            s->cap_rows = cap;
        }
        s->n_rows = s->at + rows;
    } else if (d != s->d || s->at + rows > s->n_rows) {
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "residual stream: a pass over blocks %d..%d takes rows %lld..%lld "
                          "of width %d, but the first pass left %lld rows of width %d (the inputs changed)",
                          s->from, s->to, (long long)s->at, (long long)(s->at + rows), d, (long long)s->n_rows, s->d);
    }
    s->at += rows;
    return FIPSC_OK;
}

void fipsc_residual_stream_load(const fipsc_residual_stream *s, int64_t offset, int64_t rows, float *x)
{
    memcpy(x, s->rows + offset * s->d, (size_t)rows * (size_t)s->d * sizeof *x);
}

void fipsc_residual_stream_store(fipsc_residual_stream *s, int64_t offset, int64_t rows, const float *x)
{
    memcpy(s->rows + offset * s->d, x, (size_t)rows * (size_t)s->d * sizeof *x);
}

fipsc_status fipsc_residual_stream_end(fipsc_residual_stream *s, fipsc_error *err)
{
    if (s->at != s->n_rows)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "residual stream: the pass over blocks %d..%d took %lld rows, the "
                          "first pass %lld (the inputs changed)", s->from, s->to, (long long)s->at, (long long)s->n_rows);
    if (s->from == 0 && s->n_rows < s->cap_rows && s->n_rows > 0) { /* give back the growth's slack */
        float *fit = realloc(s->rows, (size_t)s->n_rows * (size_t)s->d * sizeof *fit);
        if (fit) s->rows = fit, s->cap_rows = s->n_rows;
    }
    return FIPSC_OK;
}

void fipsc_residual_stream_free(fipsc_residual_stream *s)
{
    if (!s) return;
    free(s->rows);
    memset(s, 0, sizeof *s);
}
