/* Matrix products whose results do not depend on the number of threads.
 *
 * OpenBLAS splits a threaded sgemm by thread count, and rows falling at different split points
 * are computed by different kernel paths: the same product run with 1 and 2 BLAS threads differs
 * in the last bits of many entries (measured on this project's machine: ~5% of the entries of a
 * 1024×2816×1024 product). These wrappers instead cut the output into fixed blocks that depend
 * only on the shape — column panels, or row blocks when there is a single panel — compute each
 * block with a single-threaded BLAS call (or, for one row, an in-library dot-product kernel), and
 * spread the blocks over OpenMP threads. So the output is the same bit for bit for any
 * OMP_NUM_THREADS, and both cores are used. OpenBLAS itself runs on one thread (src/core/threads.h).
 * Every GEMM of fipsc goes through here: the runtime's linear layers, the factored kernels, the
 * FiPS trainer and the distiller. */
#ifndef FIPSC_GEMM_H
#define FIPSC_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

/* C[m, n] = op(A)[m, k]·op(B)[k, n] + beta·C, row-major, op(X) = Xᵀ when trans_x (A is then
 * [k, m], B [n, k]). One row (m == 1, A not transposed) runs on in-library kernels: a dot
 * product per output (fipsc_gemv) when B is transposed, B streamed row by row otherwise. Larger
 * products are cut into fixed column panels. */
void fipsc_gemm(bool trans_a, bool trans_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float beta, float *c, int ldc);

/* C[m, n] = A[m, k]·B[n, k]ᵀ + beta·C: the product of a linear layer (B its weight, [out, in]).
 * The same as fipsc_gemm(false, true, ...), except that a product with a single column panel but
 * many rows (a small model's narrow layers over a long prefill) is cut into fixed row blocks so
 * that every thread has work. */
void fipsc_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c,
                   int ldc);

/* fipsc_gemm_nt with B [n, k] (row stride ldb) held in 16-bit floats of dtype b_dtype (F16 or
 * BF16: a checkpoint's weight as stored, src/model/model.h). The partition and the kernels are
 * fipsc_gemm_nt's; each block of B (a GEMV chunk of rows, a column panel) is converted to float32
 * into a per-thread buffer just before its product, so the result equals fipsc_gemm_nt on the
 * converted matrix bit for bit while only a panel of B is ever float32. One row (decode) moves
 * half the bytes of a float32 weight. Fails only when the buffers cannot be allocated. */
fipsc_status fipsc_gemm_nt16(int m, int n, int k, const float *a, int lda, const uint16_t *b, int b_dtype,
                             int ldb, float beta, float *c, int ldc, fipsc_error *err);

/* C[m, n] = A[m, k]·B[k, n] + beta·C (fipsc_gemm without transposes) with B (row stride ldb)
 * held in 16-bit floats of dtype b_dtype (F16 or BF16): a compressed group's basis U as stored.
 * Several rows: fipsc_gemm's column panels, each converted to float32 into a per-thread buffer
 * just before its product, so the result equals fipsc_gemm on the converted matrix bit for bit.
 * One row: the row-streaming kernel of fipsc_gemm's one-row case reading the 16-bit rows as they
 * are (the same bits as on the converted matrix, at the same instruction-set level), moving half
 * the bytes. Fails only when the buffers cannot be allocated. */
fipsc_status fipsc_gemm_nn16(int m, int n, int k, const float *a, int lda, const uint16_t *b, int b_dtype,
                             int ldb, float beta, float *c, int ldc, fipsc_error *err);

/* y[n] = W[n, k]·x[k] + beta·y (W row-major with leading dimension ldw). */
void fipsc_gemv(int n, int k, const float *w, int ldw, const float *x, float beta, float *y);

/* The column panel width fipsc_gemm uses for n output columns (exposed for tests). */
int fipsc_gemm_panel_width(int n);

#endif
