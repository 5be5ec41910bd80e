/* Thread count for fipsc's OpenMP loops and for OpenBLAS, set together so that a command's
 * --threads option means one thing. The runtime's GEMMs (src/ops/gemm.h) spread fixed
 * panels over the OpenMP threads with single-threaded BLAS calls, so its results never depend
 * on this count, only its speed does; the OpenBLAS count serves code that calls BLAS directly. */
#ifndef FIPSC_THREADS_H
#define FIPSC_THREADS_H

/* Uses n threads for OpenMP regions and threaded BLAS calls from now on (n < 1 counts as 1). */
void fipsc_threads_set(int n);

/* The number of threads an OpenMP region started now would use. */
int fipsc_threads_get(void);

/* A scope in which OpenBLAS runs on one thread, for BLAS and LAPACK calls whose rounding would
 * otherwise depend on how OpenBLAS splits the work over its threads (an SVD, an eigensolver):
 *   int saved = fipsc_blas_serial_begin();  ...calls...  fipsc_blas_serial_end(saved);
 * Returns the count to restore. Scopes nest; do not run BLAS work that relies on BLAS threading
 * from another thread meanwhile. */
int fipsc_blas_serial_begin(void);
void fipsc_blas_serial_end(int saved);

/* What does the arithmetic, for bug reports and CI logs: "OpenBLAS 0.3.21 ... (kernels Haswell)".
 * The kernel set follows the CPU, or OPENBLAS_CORETYPE when it is set, and decides the last bits
 * of every BLAS result. */
const char *fipsc_blas_describe(void);

#endif
