/* libFuzzer target: FiPS-compressed model files (fipsc_compressed_is_file, fipsc_compressed_read:
 * the safetensors container, the __metadata__ layout and configuration, U and the stored V
 * arrays with their pointers and indices).
 *
 * The input is a whole compressed .safetensors file, written to a RAM-backed scratch file for
 * each execution (the reader takes a path). A model that loads is then used the way the runtime
 * uses it: every MLP runs forward on a fixed input through the factored kernels (so an index the
 * reader let through that points outside V or U is caught by ASan), and the model is densified. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "families/registry.h"
#include "model/compressed.h"
#include "ops/mlp_forward.h"
#include "model/model.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

enum { ROWS = 2, MAX_MLP_FLOATS = 1 << 20 };

static void run_mlps(const fipsc_model *m)
{
    for (int i = 0; i < m->n_mlps; i++) {
        const fipsc_mlp *mlp = m->mlps[i];
        REQUIRE(mlp && mlp->d > 0 && mlp->f > 0);
        if ((long long)mlp->d * mlp->f > MAX_MLP_FLOATS) continue;
        float *x = malloc((size_t)ROWS * mlp->d * sizeof *x), *y = malloc((size_t)ROWS * mlp->d * sizeof *y);
        REQUIRE(x && y);
        for (int k = 0; k < ROWS * mlp->d; k++) x[k] = (float)((k * 5) % 11 - 5) / 8.0f;
        fipsc_error err;
        REQUIRE(fipsc_mlp_forward(mlp, ROWS, x, y, NULL, &err) == FIPSC_OK);
        free(x);
        free(y);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_scratch("model.safetensors", data, size);
    const char *path = fuzz_scratch_path("model.safetensors");
    (void)fipsc_compressed_is_file(path);
    fipsc_model *m = NULL;
    fipsc_error err;
    if (fipsc_compressed_read(path, fipsc_family_named, &m, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(m == NULL && err.code != FIPSC_OK && err.message[0]);
    } else {
        fuzz_note(NULL);
        run_mlps(m);
        if (fipsc_model_densify(m, &err) == FIPSC_OK) run_mlps(m);
        fipsc_model_free(m);
    }
    fuzz_clear_scratch();
    return 0;
}
