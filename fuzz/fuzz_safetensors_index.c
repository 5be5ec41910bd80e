/* libFuzzer target: sharded safetensors checkpoints (fipsc_st_set_open on an index).
 *
 * The input is a bundle (fuzzutil.h): model.safetensors.index.json, then the shard files it
 * names, e.g.
 *     {"weight_map": {"a": "model-1.safetensors"}}
 *     @@ model-1.safetensors
 *     <safetensors bytes>
 * The index parser only takes a path, so the bundle is written into a RAM-backed scratch
 * directory for each execution. When the set opens, every tensor must be findable by name and
 * belong to one of its shards. */
#include <stdint.h>
#include <stdlib.h>

#include "formats/safetensors.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

#define INDEX_NAME "model.safetensors.index.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_bundle(data, size, INDEX_NAME);
    fipsc_st_set *s = NULL;
    fipsc_error err;
    if (fipsc_st_set_open(fuzz_scratch_path(INDEX_NAME), &s, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(s == NULL && err.code != FIPSC_OK && err.message[0]);
    } else {
        fuzz_note(NULL);
        REQUIRE(fipsc_st_set_index_path(s) != NULL);
        int total = 0;
        for (int k = 0; k < fipsc_st_set_shard_count(s); k++) {
            const fipsc_st_file *shard = fipsc_st_set_shard(s, k);
            REQUIRE(shard);
            total += fipsc_st_count(shard);
        }
        REQUIRE(total == fipsc_st_set_count(s));
        for (int i = 0; i < fipsc_st_set_count(s); i++) {
            const fipsc_st_tensor *t = fipsc_st_set_at(s, i);
            REQUIRE(t && fipsc_st_set_find(s, t->name) == t);
        }
        fipsc_st_set_close(s);
    }
    fuzz_clear_scratch();
    return 0;
}
