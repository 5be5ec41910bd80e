/* libFuzzer target: GGUF files (fipsc_gguf_parse: every count, length, type, extent, offset and
 * the alignment; then fipsc_llama_gguf_load_buffer: the llama/qwen2 metadata, tensor names and
 * extents, dequantization, the finite check and the Llama view's shapes).
 *
 * The input is a whole .gguf file. What the parser accepts must be safe to walk: every string
 * array, and every tensor's bytes within the input (dequantized when small). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/gguf.h"
#include "families/llama/llama.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fipsc_gguf *g = NULL;
    fipsc_error err;
    if (fipsc_gguf_parse(data, size, "fuzz.gguf", &g, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(g == NULL && err.code != FIPSC_OK && err.message[0]);
        return 0;
    }
    for (int64_t i = 0; i < g->n_kvs; i++) {
        const fipsc_gguf_kv *kv = &g->kvs[i];
        if (kv->type != FIPSC_GGUF_ARRAY || kv->item_type != FIPSC_GGUF_STRING || kv->count > 100000) continue;
        fipsc_gguf_str *s = malloc((size_t)(kv->count ? kv->count : 1) * sizeof *s);
        fipsc_gguf_strings(kv, s);
        for (uint64_t j = 0; j < kv->count; j++)
            REQUIRE((const uint8_t *)s[j].ptr >= data && (const uint8_t *)s[j].ptr + s[j].len <= data + size);
        free(s);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const fipsc_gguf_tensor *t = &g->tensors[i];
        REQUIRE(t->data >= data && t->data + t->nbytes <= data + size);
        const int64_t numel = t->ne[0] * (t->nbytes ? t->ne[1] * t->ne[2] * t->ne[3] : 0);
        if (numel > (1 << 20)) continue;
        float *f = malloc((size_t)(numel ? numel : 1) * sizeof *f);
        REQUIRE(fipsc_gguf_tensor_to_f32(g, t, f, &err) == FIPSC_OK);
        free(f);
    }
    fipsc_gguf_close(g);

    fipsc_model *m = NULL;
    if (fipsc_llama_gguf_load_buffer(data, size, "fuzz.gguf", &m, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(m == NULL && err.code != FIPSC_OK && err.message[0]);
        return 0;
    }
    fuzz_note(NULL);
    const fipsc_llama *v = fipsc_model_llama(m);
    REQUIRE(v && m->n_mlps == v->cfg.n_layers && fipsc_linear_is_dense(&v->tok_embeddings) && fipsc_linear_is_dense(&v->lm_head) && v->final_norm);
    fipsc_model_free(m);
    return 0;
}
