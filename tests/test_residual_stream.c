/* The residual stream between streaming calibration passes (src/model/residual_stream.c): the
 * first pass grows it, later passes take and give back the same rows in order, and a pass whose
 * inputs changed (more or fewer rows, another width) or that does not continue where the last
 * one stopped is refused. (That the passes give the same MLP rows as one forward is checked
 * end to end on every family by tests/test_compress_streaming.sh.) */
#include <string.h>

#include "model/residual_stream.h"
#include "testutil.h"

/* A pass over `calls` forward calls of rows[i] rows of width d: each claims its rows, loads
 * them (after the first pass), adds `add` to every value and stores them. */
static fipsc_status pass(fipsc_residual_stream *s, int to, const int64_t *rows, int calls, int d, float add,
                         fipsc_error *err)
{
    fipsc_status st = fipsc_residual_stream_begin(s, to, err);
    float x[64 * 8];
    for (int c = 0; c < calls && !st; c++) {
        int64_t at;
        if ((st = fipsc_residual_stream_claim(s, rows[c], d, &at, err))) break;
        if (s->from > 0) fipsc_residual_stream_load(s, at, rows[c], x);
        else
            for (int64_t i = 0; i < rows[c] * d; i++) x[i] = (float)(at * d + i);
        for (int64_t i = 0; i < rows[c] * d; i++) x[i] += add;
        fipsc_residual_stream_store(s, at, rows[c], x);
    }
    return st ? st : fipsc_residual_stream_end(s, err);
}

int main(void)
{
    fipsc_error err = {0};
    fipsc_residual_stream s = {0};
    const int64_t rows[3] = {40, 64, 7}; /* 111 rows */
    CHECK_OK(pass(&s, 1, rows, 3, 8, 0.5f, &err), &err);
    CHECK(s.from == 0 && s.to == 1 && s.n_rows == 111 && s.d == 8);
    CHECK_OK(pass(&s, 3, rows, 3, 8, 1.0f, &err), &err);
    CHECK(s.from == 2 && s.to == 3);
    bool same = true; /* every value went through both passes, in place */
    for (int64_t i = 0; i < 111 * 8; i++) same &= s.rows[i] == (float)i + 1.5f;
    CHECK(same);
    /* the inputs changed: more rows, fewer rows, another width */
    const int64_t more[3] = {40, 64, 8}, fewer[2] = {40, 64};
    CHECK_FAILS(pass(&s, 4, more, 3, 8, 0.0f, &err), FIPSC_ERR_INTERNAL, "the inputs changed", &err);
    fipsc_residual_stream t = {0};
    CHECK_OK(pass(&t, 0, rows, 3, 8, 0.0f, &err), &err);
    CHECK_FAILS(pass(&t, 1, fewer, 2, 8, 0.0f, &err), FIPSC_ERR_INTERNAL, "took 104 rows, the first pass 111", &err);
    fipsc_residual_stream u = {0};
    CHECK_OK(pass(&u, 0, rows, 3, 8, 0.0f, &err), &err);
    CHECK_FAILS(pass(&u, 2, rows, 3, 4, 0.0f, &err), FIPSC_ERR_INTERNAL, "of width 4", &err);
    /* a pass must move forward: through a block the stream has passed (the refused pass above
     * began: a failed pass leaves the stream after its range, and the run stops) */
    CHECK_FAILS(fipsc_residual_stream_begin(&s, 2, &err), FIPSC_ERR_INTERNAL, "stands after block 4", &err);
    /* the first pass grows past its first allocation (1024 rows) */
    fipsc_residual_stream g = {0};
    const int64_t big[40] = {64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
                             64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64};
    CHECK_OK(pass(&g, 0, big, 40, 8, 0.0f, &err), &err);
    CHECK_OK(pass(&g, 5, big, 40, 8, 2.0f, &err), &err);
    same = g.n_rows == 2560 && g.cap_rows == 2560;
    for (int64_t i = 0; i < 2560 * 8; i++) same &= g.rows[i] == (float)i + 2.0f;
    CHECK(same);
    fipsc_residual_stream_free(&s);
    fipsc_residual_stream_free(&t);
    fipsc_residual_stream_free(&u);
    fipsc_residual_stream_free(&g);
    return test_summary("test_residual_stream");
}
