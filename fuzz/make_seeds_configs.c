/* Seeds of the configuration parsers (fuzz/make_seeds.h): Hugging Face config.json of the Llama
 * family (as fipsc writes them and as transformers does), of ViT / DeiT, image preprocessing
 * configs, and the sentence encoder's config. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "families/llama/hf.h"
#include "families/use/use.h"
#include "make_seeds.h"

/* ------------------------------------------------------------------ config.json */

void seed_hf_config(void)
{
    fipsc_config cfg = {.dim = 64, .hidden_dim = 172, .n_layers = 5,
                        .n_heads = 8, .n_kv_heads = 4, .head_dim = 8, .vocab_size = 512,
                        .max_seq_len = 512, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                        .tie_embeddings = true, .bos_token = 1, .eos_token = 2};
    static const char *const archs[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
    static const char *const names[] = {"llama.json", "mistral.json", "qwen2.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(cfg.arch_name, sizeof cfg.arch_name, "%s", archs[i]);
        cfg.qkv_bias = i == 2;
        cfg.bos_token = i == 2 ? -1 : 1;
        char *json;
        fipsc_error err;
        seed_check(fipsc_hf_config_to_json(&cfg, &json, &err), &err);
        seed_write_text("fuzz_hf_config", names[i], json);
        free(json);
    }
    /* As transformers writes them, with keys fipsc ignores and its optional forms. */
    seed_write_text("fuzz_hf_config", "tinyllama_like.json",
                    "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"attention_bias\": false,\n"
                    "  \"bos_token_id\": 1,\n  \"eos_token_id\": [2, 32000],\n  \"hidden_act\": \"silu\",\n"
                    "  \"hidden_size\": 2048,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": 5632,\n"
                    "  \"max_position_embeddings\": 2048,\n  \"model_type\": \"llama\",\n"
                    "  \"num_attention_heads\": 32,\n  \"num_hidden_layers\": 22,\n"
                    "  \"num_key_value_heads\": 4,\n  \"pretraining_tp\": 1,\n  \"rms_norm_eps\": 1e-05,\n"
                    "  \"rope_scaling\": null,\n  \"rope_theta\": 10000.0,\n  \"tie_word_embeddings\": false,\n"
                    "  \"torch_dtype\": \"bfloat16\",\n  \"transformers_version\": \"4.35.0\",\n"
                    "  \"use_cache\": true,\n  \"vocab_size\": 32000\n}\n");
    seed_write_text("fuzz_hf_config", "qwen2_window.json",
                    "{\"model_type\": \"qwen2\", \"hidden_size\": 896, \"intermediate_size\": 4864,"
                    " \"num_hidden_layers\": 24, \"num_attention_heads\": 14, \"num_key_value_heads\": 2,"
                    " \"vocab_size\": 151936, \"use_sliding_window\": true, \"sliding_window\": 4096,"
                    " \"max_position_embeddings\": 32768, \"bos_token_id\": null, \"eos_token_id\": 151643,"
                    " \"rope_theta\": 1000000.0, \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": true}");
    seed_write_text("fuzz_hf_config", "mistral_head_dim.json",
                    "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 5120, \"head_dim\": 128,"
                    " \"intermediate_size\": 14336, \"num_hidden_layers\": 40, \"num_attention_heads\": 32,"
                    " \"num_key_value_heads\": 8, \"vocab_size\": 131072, \"sliding_window\": null,"
                    " \"max_position_embeddings\": 1024000, \"mlp_bias\": false}");
}

void seed_vit_config(void)
{
    seed_write_text("fuzz_vit_config", "deit_mnist.json",
                    "{\n  \"architectures\": [\"DeiTForImageClassificationWithTeacher\"],\n"
                    "  \"model_type\": \"deit\",\n  \"hidden_size\": 96,\n  \"num_hidden_layers\": 4,\n"
                    "  \"num_attention_heads\": 3,\n  \"intermediate_size\": 384,\n  \"hidden_act\": \"gelu\",\n"
                    "  \"layer_norm_eps\": 1e-12,\n  \"image_size\": 28,\n  \"patch_size\": 7,\n"
                    "  \"num_channels\": 1,\n  \"qkv_bias\": true,\n  \"encoder_stride\": 7,\n"
                    "  \"id2label\": {\"0\": \"0\", \"1\": \"1\", \"2\": \"2\", \"3\": \"3\", \"4\": \"4\",\n"
                    "               \"5\": \"5\", \"6\": \"6\", \"7\": \"7\", \"8\": \"8\", \"9\": \"9\"},\n"
                    "  \"label2id\": {\"0\": 0, \"1\": 1}\n}\n");
    seed_write_text("fuzz_vit_config", "vit_base.json",
                    "{\"architectures\": [\"ViTForImageClassification\"], \"model_type\": \"vit\","
                    " \"hidden_size\": 768, \"num_hidden_layers\": 12, \"num_attention_heads\": 12,"
                    " \"intermediate_size\": 3072, \"image_size\": 224, \"patch_size\": 16,"
                    " \"id2label\": {\"0\": \"tench\", \"1\": \"goldfish\", \"2\": \"great white shark\"}}");
    seed_write_text("fuzz_vit_config", "deit_rect.json",
                    "{\"architectures\": [\"DeiTForImageClassification\"], \"hidden_size\": 192,"
                    " \"num_attention_heads\": 3, \"image_size\": [32, 48], \"patch_size\": [8, 16],"
                    " \"num_labels\": 5, \"hidden_act\": \"gelu_new\", \"qkv_bias\": false,"
                    " \"layer_norm_eps\": 1e-6}");
}

void seed_gpt2_config(void)
{
    seed_write_text("fuzz_gpt2_config", "gpt2_124m.json",
                    "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"],"
                    " \"attn_pdrop\": 0.1, \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": 50256,"
                    " \"initializer_range\": 0.02, \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\","
                    " \"n_ctx\": 1024, \"n_embd\": 768, \"n_head\": 12, \"n_layer\": 12, \"n_positions\": 1024,"
                    " \"resid_pdrop\": 0.1, \"summary_activation\": null, \"summary_type\": \"cls_index\","
                    " \"vocab_size\": 50257}");
    seed_write_text("fuzz_gpt2_config", "tiny.json",
                    "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
                    "  \"vocab_size\": 61,\n  \"n_positions\": 24,\n  \"n_embd\": 32,\n  \"n_layer\": 2,\n"
                    "  \"n_head\": 2,\n  \"n_inner\": 80,\n  \"activation_function\": \"gelu\",\n"
                    "  \"layer_norm_epsilon\": 1e-05,\n  \"scale_attn_weights\": true,\n"
                    "  \"scale_attn_by_inverse_layer_idx\": true,\n  \"tie_word_embeddings\": true,\n"
                    "  \"bos_token_id\": 0,\n  \"eos_token_id\": 0\n}\n");
}

void seed_image_preproc(void)
{
    seed_write_text("fuzz_image_preproc", "deit_mnist.json",
                    "{\n  \"do_resize\": true,\n  \"size\": {\"height\": 28, \"width\": 28},\n"
                    "  \"resample\": 2,\n  \"do_rescale\": true,\n  \"rescale_factor\": 0.00392156862745098,\n"
                    "  \"do_normalize\": true,\n  \"image_mean\": [0.5],\n  \"image_std\": [0.5],\n"
                    "  \"image_processor_type\": \"DeiTImageProcessor\"\n}\n");
    seed_write_text("fuzz_image_preproc", "deit_base.json",
                    "{\"crop_size\": {\"height\": 24, \"width\": 24}, \"do_center_crop\": true,"
                    " \"do_normalize\": true, \"do_rescale\": true, \"do_resize\": true,"
                    " \"image_mean\": [0.485, 0.456, 0.406], \"image_processor_type\": \"DeiTImageProcessor\","
                    " \"image_std\": [0.229, 0.224, 0.225], \"resample\": 3, \"rescale_factor\": 0.00392156862745098,"
                    " \"size\": {\"height\": 27, \"width\": 27}}");
    seed_write_text("fuzz_image_preproc", "shortest_edge.json",
                    "{\"size\": {\"shortest_edge\": 30}, \"crop_size\": 24, \"resample\": 1,"
                    " \"image_mean\": 0.5, \"image_std\": 0.25, \"image_processor_type\": \"ViTImageProcessor\"}");
    seed_write_text("fuzz_image_preproc", "no_resize.json",
                    "{\"do_resize\": false, \"do_center_crop\": true, \"crop_size\": 3, \"resample\": 0,"
                    " \"do_normalize\": false, \"do_rescale\": false}");
    seed_write_text("fuzz_image_preproc", "size_int.json", "{\"size\": 9, \"resample\": 5, \"do_normalize\": true}");
    seed_write_text("fuzz_image_preproc", "box.json", "{\"size\": {\"height\": 3, \"width\": 2}, \"resample\": 4}");
}

/* ------------------------------------------------------------------ sentence-encoder config */

void seed_use_config(void)
{
    fipsc_use u = {.vocab_size = 8002, .embed_dim = 256, .dim = 512, .hidden = 1536, .n_layers = 2,
                   .n_heads = 4, .max_tokens = 128, .ln_eps = 1e-6f, .l2_eps = 1e-12f,
                   .tokenizer_reserved = 6};
    char *json;
    fipsc_error err;
    seed_check(fipsc_use_config_to_json(&u, &json, &err), &err);
    seed_write_text("fuzz_use_config", "use_lite.json", json);
    free(json);
    seed_write_text("fuzz_use_config", "small.json",
                    "{\"architectures\": [\"Other\", \"UniversalSentenceEncoderLite\"], \"vocab_size\": 10,"
                    " \"embedding_size\": 4, \"hidden_size\": 6, \"intermediate_size\": 3,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"hidden_act\": \"relu\","
                    " \"layer_norm_eps\": 0.001, \"l2_normalize_eps\": 1, \"max_position_embeddings\": 1,"
                    " \"tokenizer_reserved_symbols\": 0}");
}
