/* libFuzzer target: Hugging Face config.json of the Llama family (fipsc_hf_parse_config).
 *
 * The input is the config.json text. When it parses, the configuration must be sane (positive
 * sizes, heads dividing as the runtime assumes them to) and must survive the documented round
 * trip: fipsc_hf_config_to_json, parsed again, gives the same configuration exactly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/hf.h"
#include "fuzzutil.h"

#define REQUIRE(cond)                                                   \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "fuzz_hf_config: %s does not hold\n", #cond); \
            abort();                                                    \
        }                                                               \
    } while (0)

static void require_same(const fipsc_config *a, const fipsc_config *b)
{
    REQUIRE(strcmp(a->arch_name, b->arch_name) == 0);
    REQUIRE(a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers);
    REQUIRE(a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim);
    REQUIRE(a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len);
    REQUIRE(memcmp(&a->norm_eps, &b->norm_eps, sizeof a->norm_eps) == 0);
    REQUIRE(memcmp(&a->rope_theta, &b->rope_theta, sizeof a->rope_theta) == 0);
    REQUIRE(a->tie_embeddings == b->tie_embeddings && a->qkv_bias == b->qkv_bias);
    REQUIRE(a->bos_token == b->bos_token && a->eos_token == b->eos_token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    fipsc_config cfg;
    fipsc_error err;
    if (fipsc_hf_parse_config(text, "fuzz/config.json", &cfg, &err) == FIPSC_OK) {
        fuzz_note(NULL);
        REQUIRE(cfg.dim > 0 && cfg.hidden_dim > 0 && cfg.n_layers > 0 && cfg.vocab_size > 0);
        REQUIRE(cfg.n_heads > 0 && cfg.n_kv_heads > 0 && cfg.n_heads % cfg.n_kv_heads == 0);
        REQUIRE(cfg.head_dim > 0 && cfg.max_seq_len > 0);
        char *json = NULL;
        REQUIRE(fipsc_hf_config_to_json(&cfg, &json, &err) == FIPSC_OK && json);
        fipsc_config again;
        if (fipsc_hf_parse_config(json, "fuzz/config.json (round trip)", &again, &err) != FIPSC_OK) {
            fprintf(stderr, "round trip fails: %s\n%s\n", err.message, json);
            abort();
        }
        require_same(&cfg, &again);
        free(json);
    } else {
        fuzz_note(&err);
        REQUIRE(err.code != FIPSC_OK && err.message[0]);
    }
    free(text);
    return 0;
}
