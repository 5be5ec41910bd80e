/* Writes a small random-weight Llama-family checkpoint in Hugging Face layout, for the llama.cpp
 * checks of architectures the shipped models do not cover (tests/test_llamacpp.sh):
 *
 *   llamacpp_make_random OUT_DIR llama|qwen2
 *
 *   llama  LlamaForCausalLM: dim 64, hidden 160, 2 layers, 4 heads of 16, 2 kv heads (GQA),
 *          vocab 300, a separate lm_head, rope_theta 500000
 *   qwen2  Qwen2ForCausalLM: the same with q/k/v biases and tied embeddings, rope_theta 1e6
 * Weights come from tests/llama_fixture.h (seeded); the lm_head is scaled up so that the
 * next-token distributions are peaked, as a trained model's are. */
#include <stdio.h>
#include <string.h>

#include "families/llama/hf.h"
#include "llama_fixture.h"

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "llama") != 0 && strcmp(argv[2], "qwen2") != 0)) {
        fprintf(stderr, "usage: llamacpp_make_random OUT_DIR llama|qwen2\n");
        return 2;
    }
    const bool qwen = strcmp(argv[2], "qwen2") == 0;
    fixture_shape s = {.dim = 64, .hidden = 160, .layers = 2, .heads = 4, .kv_heads = 2, .head_dim = 16,
                       .vocab = 300, .max_seq = 256, .eps = 1e-6f, .theta = qwen ? 1e6f : 5e5f,
                       .tied = qwen, .qkv_bias = qwen};
    fipsc_model *m = fixture_llama(&s, qwen ? 11 : 7);
    fipsc_llama *v = fipsc_model_llama(m);
    if (qwen) {
        snprintf(v->cfg.arch_name, sizeof v->cfg.arch_name, "Qwen2ForCausalLM");
        snprintf(m->arch_name, sizeof m->arch_name, "Qwen2ForCausalLM");
    }
    /* peaked distributions: logits = head · rms(x) with |logit| of a few units */
    const char *head = qwen ? "model.embed_tokens.weight" : "lm_head.weight";
    fipsc_tensor *t = (fipsc_tensor *)fipsc_model_find(m, head);
    for (int64_t i = 0; i < t->shape[0] * t->shape[1]; i++) t->data[i] *= qwen ? 0.3f : 12.0f;
    fipsc_error err = {0};
    int rc = 0;
    if (fipsc_hf_write_llama_dir(m, argv[1], true, &err)) {
        fprintf(stderr, "llamacpp_make_random: %s\n", err.message);
        rc = 1;
    }
    fipsc_model_free(m);
    return rc;
}
