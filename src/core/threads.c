/* Thread count shared by OpenMP and OpenBLAS (see src/core/threads.h). */
#include "core/threads.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>

void fipsc_threads_set(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int fipsc_threads_get(void) { return omp_get_max_threads(); }

int fipsc_blas_serial_begin(void)
{
    int saved = openblas_get_num_threads();
    if (saved > 1) openblas_set_num_threads(1);
    return saved;
}

void fipsc_blas_serial_end(int saved)
{
    if (saved > 1) openblas_set_num_threads(saved);
}

const char *fipsc_blas_describe(void)
{
    static char text[256];
    snprintf(text, sizeof text, "%s (kernels %s)", openblas_get_config(), openblas_get_corename());
    return text;
}
