/* config.json parsing: the three architectures, defaults, every required key, wrong types,
 * unsupported features, and the writer's round trip. */
#include <stdlib.h>
#include <string.h>

#include "families/llama/hf.h"
#include "testutil.h"

/* A complete Llama config; tests derive variants by textual replacement. */
static const char *llama_json =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 64,"
    " \"intermediate_size\": 172, \"num_hidden_layers\": 5, \"num_attention_heads\": 8,"
    " \"num_key_value_heads\": 4, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0,"
    " \"tie_word_embeddings\": true, \"vocab_size\": 512, \"max_position_embeddings\": 512,"
    " \"bos_token_id\": 1, \"eos_token_id\": 2, \"hidden_act\": \"silu\"}";

/* llama_json with the first occurrence of `from` replaced by `to` (static buffer). */
static const char *variant(const char *from, const char *to)
{
    static char buf[4096];
    const char *at = strstr(llama_json, from);
    if (!at) {
        fprintf(stderr, "test bug: '%s' not in the base config\n", from);
        exit(2);
    }
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - llama_json), llama_json, to, at + strlen(from));
    return buf;
}

static void test_llama(void)
{
    fipsc_config c;
    fipsc_error err = {0};
    CHECK_OK(fipsc_hf_parse_config(llama_json, "config.json", &c, &err), &err);
    CHECK(strcmp(c.arch_name, "LlamaForCausalLM") == 0);
    CHECK(c.dim == 64 && c.hidden_dim == 172 && c.n_layers == 5);
    CHECK(c.n_heads == 8 && c.n_kv_heads == 4 && c.head_dim == 8);
    CHECK(c.vocab_size == 512 && c.max_seq_len == 512);
    CHECK(c.norm_eps == 1e-5f && c.rope_theta == 10000.0f);
    CHECK(c.tie_embeddings && !c.qkv_bias);
    CHECK(c.bos_token == 1 && c.eos_token == 2);
}

static void test_defaults(void)
{
    fipsc_config c;
    fipsc_error err = {0};
    const char *minimal =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 96, \"intermediate_size\": 256,"
        " \"num_hidden_layers\": 2, \"num_attention_heads\": 6, \"vocab_size\": 100}";
    CHECK_OK(fipsc_hf_parse_config(minimal, "config.json", &c, &err), &err);
    CHECK(c.n_kv_heads == 6);
    CHECK(c.head_dim == 16);
    CHECK(c.rope_theta == 10000.0f);
    CHECK(c.norm_eps == 1e-6f);
    CHECK(!c.tie_embeddings);
    CHECK(c.max_seq_len == 2048);
    CHECK(c.bos_token == 1 && c.eos_token == 2);

    /* an explicit head_dim wins over hidden/heads; eos as a list keeps the first; null bos */
    CHECK_OK(fipsc_hf_parse_config(variant("\"num_key_value_heads\": 4,",
                                           "\"num_key_value_heads\": 4, \"head_dim\": 16,"),
                                   "config.json", &c, &err), &err);
    CHECK(c.head_dim == 16);
    CHECK_OK(fipsc_hf_parse_config(variant("\"eos_token_id\": 2", "\"eos_token_id\": [7, 9]"),
                                   "config.json", &c, &err), &err);
    CHECK(c.eos_token == 7);
    CHECK_OK(fipsc_hf_parse_config(variant("\"bos_token_id\": 1", "\"bos_token_id\": null"),
                                   "config.json", &c, &err), &err);
    CHECK(c.bos_token == -1);

    /* architectures absent: model_type decides */
    CHECK_OK(fipsc_hf_parse_config(variant("\"architectures\": [\"LlamaForCausalLM\"], ", ""),
                                   "config.json", &c, &err), &err);
    CHECK(strcmp(c.arch_name, "LlamaForCausalLM") == 0);
}

static bool same_config(const fipsc_config *a, const fipsc_config *b);

/* Gemma and Gemma-2: transformers' defaults, null soft-capping, the activation check, and a
 * round trip through config.json. */
static void test_gemma(void)
{
    fipsc_config c;
    fipsc_error err = {0};
    const char *gemma2 = "{\"architectures\": [\"Gemma2ForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 128,"
                         " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 32%s}";
    char text[1024];
    snprintf(text, sizeof text, gemma2, "");
    CHECK_OK(fipsc_hf_parse_config(text, "config.json", &c, &err), &err);
    CHECK(c.gemma && c.post_norms && c.tie_embeddings && c.head_dim == 256 && c.query_pre_attn_scalar == 256.0f);
    CHECK(c.attn_softcap == 50.0f && c.final_softcap == 30.0f && c.sliding_window == 4096 && c.max_seq_len == 8192);
    CHECK(c.bos_token == 2 && c.eos_token == 1);
    snprintf(text, sizeof text, gemma2,
             ", \"head_dim\": 16, \"query_pre_attn_scalar\": 16, \"attn_logit_softcapping\": null,"
             " \"final_logit_softcapping\": 5.5, \"sliding_window\": 8, \"hidden_activation\": \"gelu_pytorch_tanh\"");
    CHECK_OK(fipsc_hf_parse_config(text, "config.json", &c, &err), &err);
    CHECK(c.head_dim == 16 && c.query_pre_attn_scalar == 16.0f && c.attn_softcap == 0.0f && c.final_softcap == 5.5f &&
          c.sliding_window == 8);
    char *json = NULL;
    fipsc_config back;
    CHECK_OK(fipsc_hf_config_to_json(&c, &json, &err), &err);
    if (json) {
        CHECK_OK(fipsc_hf_parse_config(json, "round trip", &back, &err), &err);
        CHECK(same_config(&back, &c));
        free(json);
    }
    snprintf(text, sizeof text, gemma2, ", \"hidden_activation\": \"relu\"");
    CHECK_FAILS(fipsc_hf_parse_config(text, "config.json", &c, &err), FIPSC_ERR_UNSUPPORTED,
                "hidden_activation \"relu\" is not supported", &err);
    CHECK_OK(fipsc_hf_parse_config(variant("LlamaForCausalLM", "GemmaForCausalLM"), "config.json", &c, &err), &err);
    CHECK(c.gemma && !c.post_norms && c.attn_softcap == 0.0f && c.sliding_window == 0);
}

/* Phi-3: fused projections, a window on every layer, whole-head RoPE only. */
static void test_phi3(void)
{
    fipsc_config c;
    fipsc_error err = {0};
    const char *phi3 = "{\"architectures\": [\"Phi3ForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 128,"
                       " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 32%s}";
    char text[1024];
    snprintf(text, sizeof text, phi3, ", \"sliding_window\": 2047");
    CHECK_OK(fipsc_hf_parse_config(text, "config.json", &c, &err), &err);
    CHECK(c.fused_proj && c.sliding_window == 2047 && c.window_all_layers && !c.tie_embeddings);
    snprintf(text, sizeof text, phi3, ", \"sliding_window\": null");
    CHECK_OK(fipsc_hf_parse_config(text, "config.json", &c, &err), &err);
    CHECK(c.fused_proj && c.sliding_window == 0);
    snprintf(text, sizeof text, phi3, ", \"partial_rotary_factor\": 0.75");
    CHECK_FAILS(fipsc_hf_parse_config(text, "config.json", &c, &err), FIPSC_ERR_UNSUPPORTED,
                "partial_rotary_factor 0.75 is not supported", &err);
    snprintf(text, sizeof text, phi3, ", \"rope_scaling\": {\"type\": \"longrope\", \"long_factor\": [1], \"short_factor\": [1]}");
    CHECK_FAILS(fipsc_hf_parse_config(text, "config.json", &c, &err), FIPSC_ERR_UNSUPPORTED,
                "rope_scaling type \"longrope\" is not supported", &err);
}

static void test_qwen2_mistral(void)
{
    fipsc_config c;
    fipsc_error err = {0};
    CHECK_OK(fipsc_hf_parse_config(variant("LlamaForCausalLM", "Qwen2ForCausalLM"), "config.json", &c,
                                   &err), &err);
    CHECK(strcmp(c.arch_name, "Qwen2ForCausalLM") == 0);
    CHECK(c.qkv_bias); /* Qwen2 always has q/k/v biases */

    /* Mistral: an absent sliding_window is transformers' default 4096, null disables it */
    const char *mistral =
        "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 128,"
        " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 32,"
        " \"max_position_embeddings\": 32768%s}";
    char text[1024];
    snprintf(text, sizeof text, mistral, "");
    CHECK_OK(fipsc_hf_parse_config(text, "config.json", &c, &err), &err);
    CHECK(c.max_seq_len == 4096);
    CHECK(!c.qkv_bias);
    snprintf(text, sizeof text, mistral, ", \"sliding_window\": null");
    CHECK_OK(fipsc_hf_parse_config(text, "config.json", &c, &err), &err);
    CHECK(c.max_seq_len == 32768);
    snprintf(text, sizeof text, mistral, ", \"sliding_window\": 1000");
    CHECK_OK(fipsc_hf_parse_config(text, "config.json", &c, &err), &err);
    CHECK(c.max_seq_len == 1000);
}

static void test_missing_keys(void)
{
    static const char *required[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                     "num_attention_heads", "vocab_size"};
    fipsc_config c;
    fipsc_error err = {0};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        /* rename the key so that it is missing but the JSON stays valid */
        char from[64], to[64], needle[96];
        snprintf(from, sizeof from, "\"%s\"", required[i]);
        snprintf(to, sizeof to, "\"x_%s\"", required[i]);
        snprintf(needle, sizeof needle, "missing required key '%s'", required[i]);
        CHECK_FAILS(fipsc_hf_parse_config(variant(from, to), "dir/config.json", &c, &err),
                    FIPSC_ERR_FORMAT, needle, &err);
        CHECK(strstr(err.message, "dir/config.json") != NULL);
    }
    CHECK_FAILS(fipsc_hf_parse_config(variant("\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\",", ""),
                                      "config.json", &c, &err),
                FIPSC_ERR_FORMAT, "missing required key 'architectures'", &err);
}

static void test_wrong_types(void)
{
    fipsc_config c;
    fipsc_error err = {0};
    const struct {
        const char *from, *to, *needle;
    } cases[] = {
        {"\"hidden_size\": 64", "\"hidden_size\": \"64\"", "key 'hidden_size' must be an integer"},
        {"\"hidden_size\": 64", "\"hidden_size\": 64.5", "key 'hidden_size' must be an integer"},
        {"\"num_hidden_layers\": 5", "\"num_hidden_layers\": -5", "key 'num_hidden_layers'"},
        {"\"vocab_size\": 512", "\"vocab_size\": 0", "key 'vocab_size'"},
        {"\"num_key_value_heads\": 4", "\"num_key_value_heads\": [4]", "key 'num_key_value_heads'"},
        {"\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3", "not a multiple of num_key_value_heads 3"},
        {"\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": \"small\"", "key 'rms_norm_eps' must be a positive number"},
        {"\"rope_theta\": 10000.0", "\"rope_theta\": -1", "key 'rope_theta'"},
        {"\"tie_word_embeddings\": true", "\"tie_word_embeddings\": 1", "key 'tie_word_embeddings' must be true or false"},
        {"\"eos_token_id\": 2", "\"eos_token_id\": \"</s>\"", "key 'eos_token_id'"},
        {"[\"LlamaForCausalLM\"]", "\"LlamaForCausalLM\"", "key 'architectures' must be a non-empty list"},
        {"\"num_attention_heads\": 8, \"num_key_value_heads\": 4", "\"num_attention_heads\": 7, \"num_key_value_heads\": 7",
         "not divisible by num_attention_heads 7"},
        {"\"max_position_embeddings\": 512", "\"max_position_embeddings\": true", "key 'max_position_embeddings'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_FAILS(fipsc_hf_parse_config(variant(cases[i].from, cases[i].to), "config.json", &c, &err),
                    FIPSC_ERR_FORMAT, cases[i].needle, &err);

    CHECK_FAILS(fipsc_hf_parse_config("{\"hidden_size\": ", "cfg/config.json", &c, &err),
                FIPSC_ERR_FORMAT, "cfg/config.json: invalid JSON", &err);
    CHECK_FAILS(fipsc_hf_parse_config("[1, 2]", "config.json", &c, &err), FIPSC_ERR_FORMAT,
                "not a JSON object", &err);
    CHECK_FAILS(fipsc_hf_parse_config(variant("\"silu\"}", "\"silu\"} x"),
                                      "config.json", &c, &err),
                FIPSC_ERR_FORMAT, "invalid JSON", &err);
}

static void test_unsupported(void)
{
    fipsc_config c;
    fipsc_error err = {0};
    CHECK_FAILS(fipsc_hf_parse_config(variant("LlamaForCausalLM", "GPT2LMHeadModel"), "config.json", &c, &err),
                FIPSC_ERR_UNSUPPORTED, "architecture 'GPT2LMHeadModel' is not supported", &err);
    CHECK_FAILS(fipsc_hf_parse_config(variant("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""),
                                      "config.json", &c, &err),
                FIPSC_ERR_UNSUPPORTED, "hidden_act", &err);
    CHECK_FAILS(fipsc_hf_parse_config(variant("\"rope_theta\": 10000.0",
                                              "\"rope_theta\": 10000.0, \"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 4}"),
                                      "config.json", &c, &err),
                FIPSC_ERR_UNSUPPORTED, "rope_scaling type \"dynamic\" is not supported", &err);
    CHECK_FAILS(fipsc_hf_parse_config(variant("\"rope_theta\": 10000.0",
                                              "\"rope_theta\": 10000.0, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4, "
                                              "\"mscale\": 0.7, \"mscale_all_dim\": 0.7}"),
                                      "config.json", &c, &err),
                FIPSC_ERR_UNSUPPORTED, "of type yarn with \"mscale\" is not supported", &err);
    CHECK_FAILS(fipsc_hf_parse_config(variant("\"rope_theta\": 10000.0",
                                              "\"rope_theta\": 10000.0, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 0.5}"),
                                      "config.json", &c, &err),
                FIPSC_ERR_FORMAT, "of type yarn needs a factor of at least 1", &err);
    /* Qwen2.5 as published: {"factor": 4.0, "original_max_position_embeddings": 32768, "type": "yarn"} */
    CHECK_OK(fipsc_hf_parse_config(variant("\"rope_theta\": 10000.0",
                                           "\"rope_theta\": 1000000.0, \"rope_scaling\": {\"factor\": 4.0, "
                                           "\"original_max_position_embeddings\": 32768, \"type\": \"yarn\"}"),
                                   "config.json", &c, &err),
             &err);
    CHECK(c.rope_scaling == FIPSC_ROPE_YARN && c.rope_factor == 4.0f && c.rope_original_context == 32768 &&
          c.rope_beta_fast == 32.0f && c.rope_beta_slow == 1.0f);
    CHECK_NEAR(fipsc_llama_rope_mscale(&c), 0.1 * log(4.0) + 1.0, 1e-6);
    CHECK_FAILS(fipsc_hf_parse_config(variant("\"rope_theta\": 10000.0",
                                              "\"rope_theta\": 10000.0, \"rope_scaling\": {\"rope_type\": \"llama3\"}"),
                                      "config.json", &c, &err),
                FIPSC_ERR_FORMAT, "of type llama3 needs factor", &err);
    /* Llama 3.2 as published */
    CHECK_OK(fipsc_hf_parse_config(variant("\"rope_theta\": 10000.0",
                                           "\"rope_theta\": 500000.0, \"rope_scaling\": {\"factor\": 32.0, "
                                           "\"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, "
                                           "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}"),
                                   "config.json", &c, &err),
             &err);
    CHECK(c.rope_scaling == FIPSC_ROPE_LLAMA3 && c.rope_factor == 32.0f && c.rope_original_context == 8192);
    {
        /* high frequencies unchanged, low ones divided by the factor, the band between smoothed */
        fipsc_config h = c;
        h.head_dim = 128;
        CHECK(fipsc_llama_rope_inv_freq(&h, 0) == 1.0f);
        float lowest = 1.0f / powf(500000.0f, 126.0f / 128.0f);
        CHECK(fipsc_llama_rope_inv_freq(&h, 63) == lowest / 32.0f);
        int smoothed = 0;
        for (int j = 0; j < 64; j++) {
            float base = 1.0f / powf(500000.0f, (float)(2 * j) / 128.0f), f = fipsc_llama_rope_inv_freq(&h, j);
            smoothed += f < base && f > base / 32.0f;
            CHECK(f <= base && f >= base / 32.0f);
        }
        CHECK_MSG(smoothed > 0 && smoothed < 20, "%d smoothed pairs", smoothed);
        char *json = NULL;
        fipsc_config back;
        CHECK_OK(fipsc_hf_config_to_json(&c, &json, &err), &err);
        if (json) {
            CHECK_OK(fipsc_hf_parse_config(json, "round trip", &back, &err), &err);
            CHECK(back.rope_scaling == c.rope_scaling && back.rope_factor == c.rope_factor &&
                  back.rope_low_freq_factor == c.rope_low_freq_factor &&
                  back.rope_high_freq_factor == c.rope_high_freq_factor &&
                  back.rope_original_context == c.rope_original_context);
            free(json);
        }
    }
    CHECK_FAILS(fipsc_hf_parse_config(variant("\"rope_theta\": 10000.0", "\"rope_theta\": 10000.0, \"attention_bias\": true"),
                                      "config.json", &c, &err),
                FIPSC_ERR_UNSUPPORTED, "attention_bias", &err);
    /* null rope_scaling and false attention_bias are plain Llama */
    CHECK_OK(fipsc_hf_parse_config(variant("\"rope_theta\": 10000.0",
                                           "\"rope_theta\": 10000.0, \"rope_scaling\": null, \"attention_bias\": false"),
                                   "config.json", &c, &err), &err);
}

static bool same_config(const fipsc_config *a, const fipsc_config *b)
{
    return strcmp(a->arch_name, b->arch_name) == 0 && a->dim == b->dim &&
           a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
           a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len &&
           a->norm_eps == b->norm_eps && a->rope_theta == b->rope_theta &&
           a->tie_embeddings == b->tie_embeddings && a->qkv_bias == b->qkv_bias &&
           a->bos_token == b->bos_token && a->eos_token == b->eos_token && a->gemma == b->gemma &&
           a->post_norms == b->post_norms && a->query_pre_attn_scalar == b->query_pre_attn_scalar &&
           a->attn_softcap == b->attn_softcap && a->final_softcap == b->final_softcap &&
           a->sliding_window == b->sliding_window && a->rope_scaling == b->rope_scaling &&
           a->rope_factor == b->rope_factor && a->fused_proj == b->fused_proj &&
           a->window_all_layers == b->window_all_layers;
}

static void test_round_trip(void)
{
    fipsc_config c, back;
    fipsc_error err = {0};
    const char *archs[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "GemmaForCausalLM",
                           "Gemma2ForCausalLM", "Phi3ForCausalLM"};
    for (int a = 0; a < 6; a++) {
        CHECK_OK(fipsc_hf_parse_config(variant("LlamaForCausalLM", archs[a]), "config.json", &c, &err), &err);
        c.norm_eps = 1e-6f;
        c.rope_theta = 500000.0f;
        char *text = NULL;
        CHECK_OK(fipsc_hf_config_to_json(&c, &text, &err), &err);
        if (!text) continue;
        CHECK(strstr(text, "\"rms_norm_eps\":\t1e-06") != NULL);
        CHECK_OK(fipsc_hf_parse_config(text, "written", &back, &err), &err);
        CHECK_MSG(same_config(&c, &back), "%s config changed in the round trip:\n%s", archs[a], text);
        free(text);
    }
    /* llama2.c models are written as LlamaForCausalLM */
    CHECK_OK(fipsc_hf_parse_config(llama_json, "config.json", &c, &err), &err);
    snprintf(c.arch_name, sizeof c.arch_name, "llama2.c");
    char *text = NULL;
    CHECK_OK(fipsc_hf_config_to_json(&c, &text, &err), &err);
    CHECK(text && strstr(text, "\"LlamaForCausalLM\"") && strstr(text, "\"model_type\":\t\"llama\""));
    CHECK(text && strstr(text, "\"torch_dtype\":\t\"float32\"") && strstr(text, "\"hidden_act\":\t\"silu\""));
    free(text);
}

int main(void)
{
    test_llama();
    test_defaults();
    test_qwen2_mistral();
    test_gemma();
    test_phi3();
    test_missing_keys();
    test_wrong_types();
    test_unsupported();
    test_round_trip();
    return test_summary("test_hf_config");
}
