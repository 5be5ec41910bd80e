/* Loading names and shapes only (fipsc_model_load_shapes, what `inspect` uses): for Llama-family
 * checkpoints as a Hugging Face directory and as GGUF in several tensor types, the model has every
 * tensor of the full load with the same name, shape and stored dtype, the same configuration and
 * parameter counts — and no weight data at all (nothing read or converted). A weight holding NaN
 * is refused by the full load and described by the shapes-only one (its values are not read). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/gguf.h"
#include "families/llama/hf.h"
#include "families/registry.h"
#include "llama_fixture.h"
#include "testutil.h"

/* The two loads of path agree on everything but the data, which the shapes-only one lacks. */
static void compare(const char *path, bool expect_data_free)
{
    fipsc_error err = {0};
    fipsc_model *full = NULL, *sh = NULL;
    CHECK_OK(fipsc_model_load(path, &full, &err), &err);
    CHECK_OK(fipsc_model_load_shapes(path, &sh, &err), &err);
    if (full && sh) {
        CHECK_MSG(full->n_tensors == sh->n_tensors, "%s: %d tensors, %d by shapes", path, full->n_tensors, sh->n_tensors);
        int with_data = 0;
        for (int i = 0; i < full->n_tensors && i < sh->n_tensors; i++) {
            const fipsc_tensor *a = &full->tensors[i], *b = &sh->tensors[i];
            CHECK_MSG(strcmp(a->name, b->name) == 0 && a->ndim == b->ndim &&
                          memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0 &&
                          a->source_dtype == b->source_dtype,
                      "%s: tensor %d differs ('%s' / '%s')", path, i, a->name, b->name);
            with_data += b->data != NULL;
        }
        CHECK_MSG(expect_data_free ? with_data == 0 : with_data == sh->n_tensors, "%s: %d tensors with data", path,
                  with_data);
        char *ca = NULL, *cb = NULL;
        CHECK_OK(full->family->config_to_json(full, &ca, &err), &err);
        CHECK_OK(sh->family->config_to_json(sh, &cb, &err), &err);
        CHECK(ca && cb && strcmp(ca, cb) == 0);
        free(ca);
        free(cb);
        fipsc_param_counts pa = fipsc_model_count_params(full), pb = fipsc_model_count_params(sh);
        CHECK(memcmp(&pa, &pb, sizeof pa) == 0);
        CHECK(sh->n_mlps == full->n_mlps); /* bound: the view and its MLPs exist */
    }
    fipsc_model_free(full);
    fipsc_model_free(sh);
}

int main(void)
{
    const char *dir = test_tmpdir("test_load_shapes");
    fixture_shape s = {.dim = 32, .hidden = 48, .layers = 2, .heads = 4, .kv_heads = 2, .head_dim = 8,
                       .vocab = 64, .max_seq = 64, .eps = 1e-5f, .theta = 10000.0f, .tied = 0, .qkv_bias = 0};
    fipsc_model *m = fixture_llama(&s, 7);
    fipsc_error err = {0};
    char path[4200];

    test_pathf(path, sizeof path, "%s/hf", dir);
    CHECK_OK(fipsc_hf_write_llama_dir(m, path, true, &err), &err);
    compare(path, true);
    test_pathf(path, sizeof path, "%s/hf/model.safetensors", dir);
    compare(path, true);

    const fipsc_ggml_type types[] = {FIPSC_GGML_F32, FIPSC_GGML_F16, FIPSC_GGML_BF16, FIPSC_GGML_Q8_0};
    for (int t = 0; t < 4; t++) {
        test_pathf(path, sizeof path, "%s/m-%s.gguf", dir, fipsc_ggml_type_name(types[t]));
        CHECK_OK(fipsc_llama_gguf_export(m, path, types[t], NULL, NULL, true, &err), &err);
        compare(path, true);
    }

    /* A NaN weight: only a load that reads the values sees it. */
    fipsc_tensor *t = NULL;
    for (int i = 0; i < m->n_tensors && !t; i++)
        if (strcmp(m->tensors[i].name, "model.layers.1.mlp.up_proj.weight") == 0) t = &m->tensors[i];
    CHECK(t != NULL);
    if (t) {
        t->data[5] = NAN;
        test_pathf(path, sizeof path, "%s/nan.gguf", dir);
        CHECK_OK(fipsc_llama_gguf_export(m, path, FIPSC_GGML_F32, NULL, NULL, true, &err), &err);
        fipsc_model *x = NULL;
        CHECK_FAILS(fipsc_model_load(path, &x, &err), FIPSC_ERR_NUMERIC, "non-finite", &err);
        CHECK_OK(fipsc_model_load_shapes(path, &x, &err), &err);
        fipsc_model_free(x);
    }
    fipsc_model_free(m);
    return test_summary("test_load_shapes");
}
