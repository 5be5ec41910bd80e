/* Matrix products whose results do not depend on the number of threads.
 *
 * OpenBLAS splits a threaded sgemm by thread count, and rows falling at different split points
 * are computed by different kernel paths: the same product run with 1 and 2 BLAS threads differs
 * in the last bits of many entries (measured on this project's machine: ~5% of the entries of a
 * 1024×2816×1024 product). These wrappers instead cut the output into fixed blocks that depend
 * only on the shape — column panels, or row blocks when there is a single panel — compute each
 * block with a single-threaded BLAS call (or, for one row, an in-library dot-product kernel), and
 * spread the blocks over OpenMP threads. So the output is the same bit for bit for any
 * OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, and both cores are used.
 * While a call runs, OpenBLAS is set to one thread and restored afterwards: do not run other
 * BLAS work concurrently from another thread that relies on BLAS threading. */
#ifndef FIPSC_GEMM_H
#define FIPSC_GEMM_H

/* C[m, n] = A[m, k]·B[n, k]ᵀ + beta·C, all row-major with leading dimensions lda, ldb, ldc.
 * (B is in the [out, in] orientation of a linear layer's weight.) m == 1 runs as fipsc_gemv. */
void fipsc_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   float beta, float *c, int ldc);

/* y[n] = W[n, k]·x[k] + beta·y (W row-major with leading dimension ldw). */
void fipsc_gemv(int n, int k, const float *w, int ldw, const float *x, float beta, float *y);

/* The column panel width fipsc_gemm_nt uses for n output columns (exposed for tests). */
int fipsc_gemm_panel_width(int n);

#endif
