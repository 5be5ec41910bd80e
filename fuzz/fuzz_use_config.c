/* libFuzzer target: the sentence encoder's configuration, the "config" entry of a safetensors
 * file's __metadata__ (fipsc_use_parse_config).
 *
 * The input is the JSON text. A parsed configuration must be usable (positive sizes, widths that
 * the heads divide, eps values in (0, 1] as floats) and survive the round trip through
 * fipsc_use_config_to_json exactly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/use/use.h"
#include "fuzzutil.h"

#define REQUIRE(cond)                                                    \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "fuzz_use_config: %s does not hold\n", #cond); \
            abort();                                                     \
        }                                                                \
    } while (0)

static void require_same_use(const fipsc_use *a, const fipsc_use *b)
{
    REQUIRE(a->vocab_size == b->vocab_size && a->embed_dim == b->embed_dim && a->dim == b->dim);
    REQUIRE(a->hidden == b->hidden && a->n_layers == b->n_layers && a->n_heads == b->n_heads);
    REQUIRE(a->max_tokens == b->max_tokens && a->tokenizer_reserved == b->tokenizer_reserved);
    REQUIRE(memcmp(&a->ln_eps, &b->ln_eps, sizeof a->ln_eps) == 0);
    REQUIRE(memcmp(&a->l2_eps, &b->l2_eps, sizeof a->l2_eps) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    fipsc_use u;
    memset(&u, 0, sizeof u);
    fipsc_error err;
    if (fipsc_use_parse_config(text, "fuzz/config", &u, &err) == FIPSC_OK) {
        fuzz_note(NULL);
        REQUIRE(u.vocab_size > 0 && u.embed_dim > 0 && u.dim > 0 && u.hidden > 0);
        REQUIRE(u.n_layers > 0 && u.n_heads > 0 && u.max_tokens > 0 && u.tokenizer_reserved >= 0);
        REQUIRE(u.embed_dim % 2 == 0 && u.embed_dim % u.n_heads == 0 && u.dim % u.n_heads == 0);
        REQUIRE(u.ln_eps > 0 && u.ln_eps <= 1 && u.l2_eps > 0 && u.l2_eps <= 1);
        char *json = NULL;
        REQUIRE(fipsc_use_config_to_json(&u, &json, &err) == FIPSC_OK && json);
        fipsc_use again;
        memset(&again, 0, sizeof again);
        if (fipsc_use_parse_config(json, "fuzz/config (round trip)", &again, &err) != FIPSC_OK) {
            fprintf(stderr, "round trip fails: %s\n%s\n", err.message, json);
            abort();
        }
        require_same_use(&u, &again);
        free(json);
    } else {
        fuzz_note(&err);
        REQUIRE(err.code != FIPSC_OK && err.message[0]);
    }
    free(text);
    return 0;
}
