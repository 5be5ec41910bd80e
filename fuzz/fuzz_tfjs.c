/* libFuzzer target: TF.js graph models, model.json's weightsManifest and modelTopology and the
 * weight shards they name (fipsc_tfjs_open).
 *
 * The input is a bundle (fuzzutil.h): model.json, then the shard files, e.g.
 *     {"weightsManifest": [{"paths": ["group1-shard1of1"], "weights": [...]}]}
 *     @@ group1-shard1of1
 *     <bytes>
 * written into a RAM-backed scratch directory for each execution (the reader takes a path). An
 * opened model's weights must be findable by name, sized product(shape) · 4 and readable to the
 * last byte; its nodes must have names, ops and inputs. */
#include <stdint.h>
#include <stdlib.h>

#include "formats/tfjs.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_bundle(data, size, "model.json");
    fipsc_tfjs_model *m = NULL;
    fipsc_error err;
    if (fipsc_tfjs_open(fuzz_scratch_path("model.json"), &m, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(m == NULL && err.code != FIPSC_OK && err.message[0]);
    } else {
        fuzz_note(NULL);
        for (int i = 0; i < fipsc_tfjs_weight_count(m); i++) {
            const fipsc_tfjs_weight *w = fipsc_tfjs_weight_at(m, i);
            REQUIRE(w && w->name && fipsc_tfjs_find(m, w->name) == w);
            REQUIRE(w->dtype == FIPSC_F32 || w->dtype == FIPSC_I32);
            REQUIRE(w->ndim >= 0 && w->ndim <= FIPSC_MAX_DIMS);
            REQUIRE((uint64_t)fipsc_shape_numel(w->ndim, w->shape) * 4 == w->nbytes);
            REQUIRE(w->data || w->nbytes == 0);
            unsigned sum = 0;
            for (size_t k = 0; k < w->nbytes; k++) sum += ((const unsigned char *)w->data)[k];
            (void)sum;
        }
        for (int i = 0; i < fipsc_tfjs_node_count(m); i++) {
            const fipsc_tfjs_node *n = fipsc_tfjs_node_at(m, i);
            REQUIRE(n && n->name && n->op && n->n_inputs >= 0);
            for (int k = 0; k < n->n_inputs; k++) REQUIRE(n->inputs[k]);
        }
        fipsc_tfjs_close(m);
    }
    fuzz_clear_scratch();
    return 0;
}
