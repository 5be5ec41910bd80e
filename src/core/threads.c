/* Threads: OpenMP for fipsc's loops, OpenBLAS on one thread (see src/core/threads.h). */
#include "core/threads.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_one_thread(void) { openblas_set_num_threads(1); }

void fipsc_blas_single_thread(void) { pthread_once(&blas_once, blas_one_thread); }

void fipsc_threads_set(int n)
{
    if (n < 1) n = 1;
    fipsc_blas_single_thread();
    omp_set_num_threads(n);
}

int fipsc_threads_get(void) { return omp_get_max_threads(); }

const char *fipsc_blas_describe(void)
{
    static _Thread_local char text[256];
    snprintf(text, sizeof text, "%s (kernels %s)", openblas_get_config(), openblas_get_corename());
    return text;
}
