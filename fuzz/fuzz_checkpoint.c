/* libFuzzer target: a group's compression checkpoint image (compress_checkpoint_from_bytes) —
 * what `fipsc compress --resume` reads from DIR/group-KKK.safetensors and what rank 0 of
 * `mpirun -np K fipsc compress` receives from another rank: the safetensors container, the
 * metadata (format, version, inputs, parts, report: JSON), the integrity hash, every part's
 * tensors checked against the group's shapes. An image that loads is attached to the model, and
 * every MLP then runs forward through the kernels of its storage (an index or a shape the reader
 * let through that points outside an array is caught by ASan).
 *
 * An image is accepted only for the model and options it was made with (fuzz/checkpoint_fixture.h,
 * which the seeds of fuzz/make_seeds share). Fuzzing builds (FUZZING_BUILD_MODE_UNSAFE_FOR_
 * PRODUCTION) skip the comparison of the integrity hash, so that mutations reach the parts and
 * the report: the hash detects accidents, it is no defence against a forged file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_fixture.h"
#include "compress/compress_internal.h"
#include "families/registry.h"
#include "fuzzutil.h"
#include "ops/mlp_forward.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

/* The fixture's model file, written once per process into the scratch directory. */
static const char *checkpoint_model_path(void)
{
    static char path[8192];
    if (!path[0]) {
        const char *p = fuzz_scratch_path("checkpoint-model.bin");
        REQUIRE(strlen(p) < sizeof path);
        memcpy(path, p, strlen(p) + 1);
        REQUIRE(checkpoint_fixture_write_model(path));
    }
    return path;
}

static void checkpoint_run_mlps(const fipsc_model *m)
{
    for (int i = 0; i < m->n_mlps; i++) {
        const fipsc_mlp *mlp = m->mlps[i];
        float x[2 * 8], y[2 * 8];
        REQUIRE(mlp->d == 8);
        for (int k = 0; k < 2 * 8; k++) x[k] = (float)((k * 5) % 11 - 5) / 8.0f;
        fipsc_error err;
        REQUIRE(fipsc_mlp_forward(mlp, 2, x, y, NULL, &err) == FIPSC_OK);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fipsc_model *m = NULL;
    fipsc_error err;
    REQUIRE(fipsc_model_load(checkpoint_model_path(), &m, &err) == FIPSC_OK);
    fipsc_compress_settings s;
    fipsc_settings_init(&s);
    REQUIRE(checkpoint_fixture_settings(&s));
    fipsc_compress_options o;
    fipsc_settings_resolve(&s, m, &o);
    fipsc_group_plan *plans = NULL;
    int n = 0;
    REQUIRE(fipsc_compress_plan(m, &o, &plans, &n, &err) == FIPSC_OK && n == 1);
    compress_saved saved = {0};
    if (compress_checkpoint_from_bytes(m, &o, &plans[0], 0, data, size, 1, &saved, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(err.code != FIPSC_OK && err.message[0] && !saved.present && !saved.parts);
    } else {
        fuzz_note(NULL);
        REQUIRE(saved.present);
        fipsc_group_report gr = {0};
        if (compress_checkpoint_apply(m, &saved, &gr, &err) == FIPSC_OK) checkpoint_run_mlps(m);
        free(gr.mlps);
        free(gr.matrices);
        compress_saved_free_one(&saved);
    }
    free(plans);
    fipsc_settings_free(&s);
    fipsc_model_free(m);
    return 0;
}
