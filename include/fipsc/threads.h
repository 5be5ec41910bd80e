/* Thread count for fipsc's OpenMP loops and for OpenBLAS, set together so that a command's
 * --threads option means one thing. The runtime's GEMMs (include/fipsc/gemm.h) spread fixed
 * panels over the OpenMP threads with single-threaded BLAS calls, so its results never depend
 * on this count, only its speed does; the OpenBLAS count serves code that calls BLAS directly. */
#ifndef FIPSC_THREADS_H
#define FIPSC_THREADS_H

/* Uses n threads for OpenMP regions and threaded BLAS calls from now on (n < 1 counts as 1). */
void fipsc_threads_set(int n);

/* The number of threads an OpenMP region started now would use. */
int fipsc_threads_get(void);

#endif
