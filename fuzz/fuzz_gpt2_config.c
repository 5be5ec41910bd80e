/* libFuzzer target: config.json of GPT-2 models (fipsc_gpt2_parse_config and
 * fipsc_gpt2_config_is_gpt2).
 *
 * The input is the config.json text. A parsed configuration must be self-consistent: the head
 * size divides the width, every size is positive, the special tokens lie inside the vocabulary,
 * and layer_norm_epsilon is a positive finite float. Failures must free everything
 * (LeakSanitizer). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "families/gpt2/gpt2.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    (void)fipsc_gpt2_config_is_gpt2(text);
    fipsc_gpt2_config c;
    fipsc_error err;
    if (fipsc_gpt2_parse_config(text, "fuzz/config.json", &c, &err) == FIPSC_OK) {
        fuzz_note(NULL);
        REQUIRE(c.dim > 0 && c.n_heads > 0 && c.head_dim * c.n_heads == c.dim);
        REQUIRE(c.n_layers > 0 && c.hidden > 0 && c.vocab_size > 0 && c.n_positions > 0);
        REQUIRE(c.bos_token < c.vocab_size && c.eos_token < c.vocab_size);
        REQUIRE(c.ln_eps > 0 && isfinite(c.ln_eps) && c.config_text);
        fipsc_gpt2_config_free(&c);
    } else {
        fuzz_note(&err);
        REQUIRE(c.config_text == NULL && err.code != FIPSC_OK && err.message[0]);
    }
    free(text);
    return 0;
}
