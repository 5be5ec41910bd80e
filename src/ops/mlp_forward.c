/* MLP forward over a batch of rows (see src/ops/mlp_forward.h).
 *
 * Three (gated) or two (plain) GEMMs through fipsc_linear_apply; the activation (and for gated
 * MLPs the elementwise product with the up projection) runs in between on OpenMP threads, chunked
 * so that each chunk is one call of fipsc_activation_apply. Elementwise work gives the same bits
 * whatever the thread count. */
#include "ops/mlp_forward.h"

#include <stdlib.h>

#include "ops/activation.h"
#include "ops/factored.h"
#include "ops/linear.h"

/* Elements per chunk of the activation loop: big enough to amortise scheduling, small enough to
 * spread a single row of a wide MLP over two cores. */
enum { ACT_CHUNK = 4096 };

size_t fipsc_mlp_scratch_floats(const fipsc_mlp *mlp, int n)
{
    size_t per = (size_t)(n > 0 ? n : 0) * (size_t)(mlp->f > 0 ? mlp->f : 0);
    return mlp->kind == FIPSC_MLP_GATED ? 2 * per : per;
}

static fipsc_status check_linear(const fipsc_mlp *mlp, const fipsc_linear *lin, const char *slot,
                                 int out, int in, fipsc_error *err)
{
    if (lin->out == out && lin->in == in) return FIPSC_OK;
    return fipsc_fail(err, FIPSC_ERR_SHAPE,
                      "MLP %s projection %s is [%d, %d] but an MLP with d %d, f %d needs [%d, %d]",
                      slot, lin->weight_name ? lin->weight_name : "(unnamed)", lin->out, lin->in,
                      mlp->d, mlp->f, out, in);
}

static fipsc_status check_shapes(const fipsc_mlp *mlp, fipsc_error *err)
{
    if (mlp->d <= 0 || mlp->f <= 0)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "MLP with d %d and f %d (both must be positive)",
                          mlp->d, mlp->f);
    fipsc_status st;
    if (mlp->kind == FIPSC_MLP_GATED && (st = check_linear(mlp, &mlp->gate, "gate", mlp->f, mlp->d, err)))
        return st;
    if ((st = check_linear(mlp, &mlp->up, "up", mlp->f, mlp->d, err))) return st;
    return check_linear(mlp, &mlp->down, "down", mlp->d, mlp->f, err);
}

/* a[i] = act(a[i]) · (b ? b[i] : 1) for i in chunk c of n elements. */
static void activate_chunk(fipsc_activation act, float *a, const float *b, size_t n, long long c)
{
    size_t lo = (size_t)c * ACT_CHUNK, len = n - lo < ACT_CHUNK ? n - lo : ACT_CHUNK;
    fipsc_activation_apply(act, a + lo, a + lo, len);
    if (b)
        for (size_t i = lo; i < lo + len; i++) a[i] *= b[i];
}

/* One chunk (a decoded token) runs on the calling thread: even a serialised parallel region
 * costs about a microsecond. */
static void activate(fipsc_activation act, float *a, const float *b, size_t n)
{
    long long chunks = (long long)((n + ACT_CHUNK - 1) / ACT_CHUNK);
    if (chunks > 1) {
#pragma omp parallel for schedule(static)
        for (long long c = 0; c < chunks; c++) activate_chunk(act, a, b, n, c);
    } else if (chunks == 1) {
        activate_chunk(act, a, b, n, 0);
    }
}

fipsc_status fipsc_mlp_forward(const fipsc_mlp *mlp, int n, const float *x, float *y,
                               float *scratch, fipsc_error *err)
{
    fipsc_status st = check_shapes(mlp, err);
    if (st) return st;
    if (n < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "MLP forward over %d rows", n);
    if (n == 0) return FIPSC_OK;
    float *owned = NULL;
    if (!scratch) {
        owned = malloc(fipsc_mlp_scratch_floats(mlp, n) * sizeof *owned);
        if (!owned)
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for MLP scratch (%d rows × %d)",
                              n, mlp->f);
        scratch = owned;
    }
    size_t nf = (size_t)n * (size_t)mlp->f;
    float *h = scratch;
    if (mlp->kind == FIPSC_MLP_GATED) {
        float *u = scratch + nf;
        /* gate and up compressed in one group share x·U: computed once (same bits as apart) */
        if (fipsc_factored_shares_input(mlp->gate.factored, mlp->up.factored))
            st = fipsc_factored_apply_shared(mlp->gate.factored, mlp->gate.bias, mlp->up.factored,
                                             mlp->up.bias, n, x, h, u, err);
        else if (!(st = fipsc_linear_apply(&mlp->gate, n, x, h, err)))
            st = fipsc_linear_apply(&mlp->up, n, x, u, err);
        if (!st) activate(mlp->act, h, u, nf);
    } else if (!(st = fipsc_linear_apply(&mlp->up, n, x, h, err))) {
        activate(mlp->act, h, NULL, nf);
    }
    if (!st) st = fipsc_linear_apply(&mlp->down, n, h, y, err);
    free(owned);
    return st;
}
