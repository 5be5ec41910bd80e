/* Matrix transposition (see src/ops/transpose.h). */
#include "ops/transpose.h"

/* Below this many elements a transposition runs on the calling thread. */
#define TRANSPOSE_PARALLEL_MIN ((int64_t)1 << 18)

void fipsc_transpose(const float *src, int64_t ld_src, float *dst, int64_t ld_dst, int64_t rows, int64_t cols)
{
    enum { T = 64 };
#pragma omp parallel for schedule(static) if (rows * cols >= TRANSPOSE_PARALLEL_MIN)
    for (int64_t a0 = 0; a0 < rows; a0 += T) {
        const int64_t a1 = a0 + T < rows ? a0 + T : rows;
        for (int64_t c0 = 0; c0 < cols; c0 += T) {
            const int64_t c1 = c0 + T < cols ? c0 + T : cols;
            for (int64_t a = a0; a < a1; a++)
                for (int64_t c = c0; c < c1; c++) dst[c * ld_dst + a] = src[a * ld_src + c];
        }
    }
}
