/* libFuzzer target: loading a checkpoint from a single .safetensors file (fipsc_model_load: the
 * routing by content, then the compressed, ViT/DeiT, sentence-encoder or Llama-family loader —
 * configuration from __metadata__ or a config.json beside the file, every tensor's dtype, shape
 * and values checked as the architecture binds its view).
 *
 * The input is a bundle (fuzzutil.h): model.safetensors, optionally followed by config.json and
 * preprocessor_config.json parts, written to a RAM-backed scratch directory per execution. A
 * model that loads must have MLPs that run: each one runs forward on a fixed input. */
#include <stdint.h>
#include <stdlib.h>

#include "families/registry.h"
#include "ops/mlp_forward.h"
#include "model/model.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

enum { LOAD_ROWS = 2, LOAD_MAX_MLP_FLOATS = 1 << 20 };

static void forward_each_mlp(const fipsc_model *m)
{
    REQUIRE(m->n_mlps >= 0 && (m->n_mlps == 0 || m->mlps));
    for (int i = 0; i < m->n_mlps; i++) {
        const fipsc_mlp *mlp = m->mlps[i];
        REQUIRE(mlp && mlp->d > 0 && mlp->f > 0);
        if ((long long)mlp->d * mlp->f > LOAD_MAX_MLP_FLOATS) continue;
        float *x = malloc((size_t)LOAD_ROWS * mlp->d * sizeof *x);
        float *y = malloc((size_t)LOAD_ROWS * mlp->d * sizeof *y);
        REQUIRE(x && y);
        for (int k = 0; k < LOAD_ROWS * mlp->d; k++) x[k] = (float)((k * 3) % 7 - 3) / 4.0f;
        fipsc_error err;
        REQUIRE(fipsc_mlp_forward(mlp, LOAD_ROWS, x, y, NULL, &err) == FIPSC_OK);
        free(x);
        free(y);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_bundle(data, size, "model.safetensors");
    fipsc_model *m = NULL;
    fipsc_error err;
    if (fipsc_model_load(fuzz_scratch_path("model.safetensors"), &m, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(m == NULL && err.code != FIPSC_OK && err.message[0]);
    } else {
        fuzz_note(NULL);
        forward_each_mlp(m);
        fipsc_model_free(m);
    }
    fuzz_clear_scratch();
    return 0;
}
