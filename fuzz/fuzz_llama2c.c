/* libFuzzer target: llama2.c checkpoints (fipsc_load_llama2c_buffer: the 7-int header, the size
 * of every weight array against the file, the finite check and the Llama view's shapes).
 *
 * The input is a whole .bin file. A loaded model must have the dimensions its header gave. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama2c.h"
#include "families/llama/llama.h"
#include "model/model.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fipsc_model *m = NULL;
    fipsc_error err;
    if (fipsc_load_llama2c_buffer(data, size, "fuzz.bin", &m, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(m == NULL && err.code != FIPSC_OK && err.message[0]);
        return 0;
    }
    fuzz_note(NULL);
    int32_t h[7];
    REQUIRE(size >= sizeof h);
    memcpy(h, data, sizeof h);
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    REQUIRE(c->dim == h[0] && c->hidden_dim == h[1] && c->n_layers == h[2]);
    REQUIRE(c->n_heads == h[3] && c->n_kv_heads == h[4] && c->max_seq_len == h[6]);
    REQUIRE(c->vocab_size == (h[5] < 0 ? -h[5] : h[5]) && c->tie_embeddings == (h[5] > 0));
    REQUIRE(m->n_mlps == c->n_layers && fipsc_linear_is_dense(&fipsc_model_llama(m)->tok_embeddings) && fipsc_linear_is_dense(&fipsc_model_llama(m)->lm_head) && fipsc_model_llama(m)->final_norm);
    fipsc_model_free(m);
    return 0;
}
