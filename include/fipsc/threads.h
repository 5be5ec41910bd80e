/* Thread count for fipsc's own OpenMP loops and for OpenBLAS, set together so that a command's
 * --threads option means one thing. Results never depend on it (see the runtime's notes on
 * determinism); only speed does. */
#ifndef FIPSC_THREADS_H
#define FIPSC_THREADS_H

/* Uses n threads for OpenMP regions and BLAS calls from now on (n >= 1). */
void fipsc_threads_set(int n);

/* The number of threads an OpenMP region started now would use. */
int fipsc_threads_get(void);

#endif
