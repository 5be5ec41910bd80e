/* GEMMs of the trainer on one thread pool.
 *
 * A training step alternates GEMMs with elementwise loops. With OpenBLAS's own threads for the
 * former and OpenMP's for the latter, each pool spin-waits while the other works, and on two
 * cores the two pools steal ~20% of the step from each other (measured: 69% of the sgemm rate per
 * CPU-second with both pools, 85% on one thread). So every GEMM here cuts C into column panels
 * (fipsc_gemm_panel_width: fixed by the shape) and computes each on an OpenMP thread with a
 * single-threaded sgemm. Each element of C then comes from the same kernel call whatever the
 * number of threads, so results are the same bit for bit for any OMP_NUM_THREADS. */
#include <cblas.h>

#include "fips/fips_internal.h"
#include "ops/gemm.h"

/* Multiply-adds below which a GEMM stays on the calling thread. */
#define PANEL_PARALLEL_WORK ((int64_t)1 << 21)

void fips_sgemm(bool trans_a, bool trans_b, int m, int n, int k, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const int width = fipsc_gemm_panel_width(n), panels = (n + width - 1) / width;
    const int prev = openblas_get_num_threads();
    if (prev > 1) openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if ((int64_t)m * n * k >= PANEL_PARALLEL_WORK && panels > 1)
    for (int p = 0; p < panels; p++) {
        const int j0 = p * width, w = n - j0 < width ? n - j0 : width;
        /* columns j0 .. j0+w of op(B): rows of B when transposed ([n, k]), else columns ([k, n]) */
        const float *bp = trans_b ? b + (int64_t)j0 * ldb : b + j0;
        cblas_sgemm(CblasRowMajor, ta, tb, m, w, k, 1.0f, a, lda, bp, ldb, beta, c + j0, ldc);
    }
    if (prev > 1) openblas_set_num_threads(prev);
}
