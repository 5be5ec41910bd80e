/* Internals shared by the factored-linear files (not part of the public API). */
#ifndef FIPSC_FACTORED_INTERNAL_H
#define FIPSC_FACTORED_INTERNAL_H

/* C[m, n] = A[m, k]·B[k, n] + beta·C, all row-major with leading dimensions lda, ldb, ldc
 * (B in [in, out] orientation, e.g. the basis U [d, r] for t = x·U). Like fipsc_gemm_nt
 * (src/ops/gemm.h) the output is cut into fixed column panels, each computed by one
 * single-threaded BLAS call (or, for one row, an in-library kernel summing in a fixed order), so
 * results are the same for any thread count. */
void fipsc_factored_gemm_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                            float beta, float *c, int ldc);

#endif
