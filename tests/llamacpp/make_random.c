/* Writes a small random-weight Llama-family checkpoint in Hugging Face layout, for the llama.cpp
 * checks of architectures the shipped models do not cover (tests/test_llamacpp.sh):
 *
 *   llamacpp_make_random OUT_DIR llama|llama3|mistral|phi3|qwen2|gemma|gemma2 [VOCAB]
 *   llamacpp_make_random OUT.gguf vocab N
 *
 * VOCAB replaces the vocabulary size (e.g. 32000 to pair the model with a real tokenizer for the
 * text tests, tests/test_text.sh).
 *
 *   llama   LlamaForCausalLM: dim 64, hidden 160, 2 layers, 4 heads of 16, 2 kv heads (GQA),
 *           vocab 300, a separate lm_head, rope_theta 500000
 *   llama3  the llama shape with Llama 3.2's RoPE scaling (rope_type llama3, factor 32, low/high
 *           frequency factors 1 and 4, original context 8192) and a context of 4096: over a
 *           sequence of 2048 tokens its pairs of wavelength 2048..8192 (smoothed) and beyond (scaled)
 *           turn far enough for the scaling to change the result
 *   yarn    the llama shape with YaRN RoPE scaling (factor 4, original context 128, betas 32 and 1,
 *           attention factor 0.1·ln 4 + 1) and a context of 512: over 511 tokens the interpolated
 *           pairs turn differently from unscaled ones, and the attention factor scales every score
 *   mistral MistralForCausalLM: the llama shape (its default 4096-position window is longer than
 *           any sequence here, so attention is full; GGUF architecture `llama`)
 *   phi3    Phi3ForCausalLM: the llama shape written with fused qkv_proj and gate_up_proj, and
 *           Phi-3-mini's sliding window of 2047 (longer than the test's sequences: llama.cpp reads
 *           the window but does not apply it yet)
 *   qwen2   Qwen2ForCausalLM: the same with q/k/v biases and tied embeddings, rope_theta 1e6
 *   gemma   GemmaForCausalLM: the llama shape with tied embeddings, √dim-scaled embeddings,
 *           (1 + w) norms and GeGLU MLPs, rope_theta 10000
 *   gemma2  Gemma2ForCausalLM: gemma plus post-attention and pre/post-feedforward norms,
 *           4 layers, a sliding window of 16 positions on layers 0 and 2, attention scores
 *           soft-capped at 2 and logits at 8 (small caps, so that capping changes the result),
 *           query_pre_attn_scalar = head_dim (what llama.cpp assumes)
 *   vocab   a GGUF file of tokenizer keys only: a SentencePiece-style vocabulary of N tokens,
 *           <unk> <s> </s>, the byte tokens <0x00>..<0xFF>, then "w259", "w260", ... (N > 259;
 *           for --vocab-from: what a real model's GGUF
 *           tokenizer would be, recognisably not fipsc's placeholder)
 * Weights come from tests/llama_fixture.h (seeded); the lm_head is scaled up so that the
 * next-token distributions are peaked, as a trained model's are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/hf.h"
#include "formats/gguf.h"
#include "llama_fixture.h"

static int write_vocab(const char *path, int n)
{
    fipsc_gguf_writer *w = fipsc_gguf_writer_new();
    char **tokens = calloc((size_t)n, sizeof *tokens);
    float *scores = calloc((size_t)n, sizeof *scores);
    int32_t *types = calloc((size_t)n, sizeof *types);
    for (int i = 0; i < n; i++) {
        char t[32];
        if (i >= 3 && i < 3 + 256) snprintf(t, sizeof t, "<0x%02X>", i - 3); /* llama.cpp needs the byte tokens */
        else snprintf(t, sizeof t, i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "w%d", i);
        tokens[i] = strdup(t);
        scores[i] = (float)-i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 3 + 256 ? 6 : 1;
    }
    fipsc_gguf_add_string(w, "general.architecture", "llama");
    fipsc_gguf_add_string(w, "tokenizer.ggml.model", "llama");
    fipsc_gguf_add_string_array(w, "tokenizer.ggml.tokens", n, (const char *const *)tokens);
    fipsc_gguf_add_f32_array(w, "tokenizer.ggml.scores", n, scores);
    fipsc_gguf_add_i32_array(w, "tokenizer.ggml.token_type", n, types);
    fipsc_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    fipsc_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    fipsc_error err = {0};
    int rc = fipsc_gguf_write(w, path, true, &err) ? 1 : 0;
    if (rc) fprintf(stderr, "llamacpp_make_random: %s\n", err.message);
    for (int i = 0; i < n; i++) free(tokens[i]);
    free(tokens);
    free(scores);
    free(types);
    fipsc_gguf_writer_free(w);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[2], "vocab") == 0) return write_vocab(argv[1], atoi(argv[3]) > 259 ? atoi(argv[3]) : 260);
    const char *arch = argc == 3 || argc == 4 ? argv[2] : "";
    const bool yarn = strcmp(arch, "yarn") == 0;
    const int vocab = argc == 4 ? atoi(argv[3]) : 300;
    const bool qwen = strcmp(arch, "qwen2") == 0, gemma2 = strcmp(arch, "gemma2") == 0,
               gemma = gemma2 || strcmp(arch, "gemma") == 0, llama3 = strcmp(arch, "llama3") == 0,
               mistral = strcmp(arch, "mistral") == 0, phi3 = strcmp(arch, "phi3") == 0;
    if ((!qwen && !gemma && !llama3 && !yarn && !mistral && !phi3 && strcmp(arch, "llama") != 0) || vocab < 3 ||
        vocab > 1 << 20) {
        fprintf(stderr, "usage: llamacpp_make_random OUT_DIR llama|llama3|yarn|mistral|phi3|qwen2|gemma|gemma2 [VOCAB]\n");
        return 2;
    }
    fixture_shape s = {.dim = 64, .hidden = 160, .layers = gemma2 ? 4 : 2, .heads = 4, .kv_heads = 2, .head_dim = 16,
                       .vocab = vocab, .max_seq = llama3 ? 4096 : yarn ? 512 : 256, .eps = 1e-6f, .theta = qwen ? 1e6f : gemma ? 1e4f : 5e5f,
                       .tied = qwen || gemma, .qkv_bias = qwen};
    fipsc_model *m = fixture_llama(&s, qwen ? 11 : gemma2 ? 13 : gemma ? 12 : 7);
    fipsc_llama *v = fipsc_model_llama(m);
    const char *hf_arch = qwen ? "Qwen2ForCausalLM" : mistral ? "MistralForCausalLM" : phi3 ? "Phi3ForCausalLM" : gemma2 ? "Gemma2ForCausalLM" : gemma ? "GemmaForCausalLM" : NULL;
    if (hf_arch) {
        snprintf(v->cfg.arch_name, sizeof v->cfg.arch_name, "%s", hf_arch);
        snprintf(m->arch_name, sizeof m->arch_name, "%s", hf_arch);
    }
    fipsc_error err = {0};
    if (phi3) {
        v->cfg.fused_proj = true;
        v->cfg.sliding_window = 2047;
        v->cfg.window_all_layers = true;
    }
    if (llama3) {
        v->cfg.rope_scaling = FIPSC_ROPE_LLAMA3;
        v->cfg.rope_factor = 32.0f;
        v->cfg.rope_low_freq_factor = 1.0f;
        v->cfg.rope_high_freq_factor = 4.0f;
        v->cfg.rope_original_context = 8192;
    }
    if (yarn) {
        v->cfg.rope_scaling = FIPSC_ROPE_YARN;
        v->cfg.rope_factor = 4.0f;
        v->cfg.rope_original_context = 128;
        v->cfg.rope_beta_fast = 32.0f;
        v->cfg.rope_beta_slow = 1.0f;
    }
    if (gemma) {
        v->cfg.gemma = true;
        v->cfg.bos_token = 2, v->cfg.eos_token = 1;
        /* stored w around 0: the norms apply 1 + w */
        for (int i = 0; i < m->n_tensors; i++)
            if (strstr(m->tensors[i].name, "norm.weight"))
                for (int64_t j = 0; j < m->tensors[i].shape[0]; j++) m->tensors[i].data[j] -= 1.0f;
    }
    if (gemma2) {
        v->cfg.post_norms = true;
        v->cfg.query_pre_attn_scalar = (float)s.head_dim;
        v->cfg.attn_softcap = 2.0f;
        v->cfg.final_softcap = 8.0f;
        v->cfg.sliding_window = 16;
        char name[128];
        for (int l = 0; l < s.layers; l++) {
            snprintf(name, sizeof name, "model.layers.%d.pre_feedforward_layernorm.weight", l);
            fixture_add(m, name, s.dim, 0, 0.3, 0.0);
            snprintf(name, sizeof name, "model.layers.%d.post_feedforward_layernorm.weight", l);
            fixture_add(m, name, s.dim, 0, 0.3, 0.0);
        }
    }
    if (fipsc_llama_bind(m, &err)) {
        fprintf(stderr, "llamacpp_make_random: %s\n", err.message);
        return 1;
    }
    /* peaked distributions: logits = head · rms(x) with |logit| of a few units */
    const char *head = s.tied ? "model.embed_tokens.weight" : "lm_head.weight";
    fipsc_tensor *t = (fipsc_tensor *)fipsc_model_find(m, head);
    for (int64_t i = 0; i < t->shape[0] * t->shape[1]; i++) t->data[i] *= gemma2 ? 1.0f : gemma ? 0.1f : qwen ? 0.3f : 12.0f;
    int rc = 0;
    if (fipsc_hf_write_llama_dir(m, argv[1], true, &err)) {
        fprintf(stderr, "llamacpp_make_random: %s\n", err.message);
        rc = 1;
    }
    fipsc_model_free(m);
    return rc;
}
