/* Threads: fipsc's parallel loops are OpenMP; OpenBLAS runs on one thread.
 *
 * Every parallel loop of fipsc splits its work into blocks fixed by the shapes (GEMM panels, row
 * chunks, sequences) and runs the blocks on OpenMP threads, with single-threaded BLAS calls inside:
 * so results never depend on the thread count, only speed does. OpenBLAS is set to one thread
 * once, on first use, and never changed again: nothing in fipsc toggles it, so two models used
 * from two threads cannot trip over each other's settings. (An application that wants threaded
 * BLAS for its own work may set it again; fipsc's results stay the same, its speed may suffer.)
 *
 * The thread count is OpenMP's nthreads ICV of the calling thread: fipsc_threads_set changes it for
 * that thread's later calls only, another thread of the application keeps its own. */
#ifndef FIPSC_THREADS_H
#define FIPSC_THREADS_H

/* fipsc_threads_set(n) (public, include/fipsc.h): n threads (n < 1 counts as 1) for the parallel
 * loops of the calling thread's later calls. */
#include "fipsc.h"

/* The number of threads a call from this thread would use now. */
int fipsc_threads_get(void);

/* Sets OpenBLAS to one thread, once per process (idempotent, thread-safe). Everything that can
 * reach BLAS calls it: model creation, FiPS groups, the GEMM layer. */
void fipsc_blas_single_thread(void);

/* What does the arithmetic, for bug reports and CI logs: "OpenBLAS 0.3.21 ... (kernels Haswell)".
 * The kernel set follows the CPU, or OPENBLAS_CORETYPE when it is set, and decides the last bits
 * of every BLAS result. */
const char *fipsc_blas_describe(void);

#endif
