/* Writes a Llama-shaped model with random weights as a GGUF file, for speed comparisons at real
 * shapes (bench/vs-llamacpp.sh): no trained model of that size is available here, and speed does
 * not depend on what the weights are.
 *
 *   synthetic_llama OUT.gguf [--shape 1b|8b|tiny] [--layers N] [--vocab N] [--type f32|f16|bf16|q8_0|q4_0]
 *                   [--seed S]
 *
 *   1b    the Llama-3.2-1B shape: dim 2048, hidden 8192, 16 layers, 32 heads of 64, 8 kv heads,
 *         vocab 128256, tied embeddings, rope_theta 500000 (1.24 G parameters, 4.9 GB in F32)
 *   8b    the Llama-3-8B shape: dim 4096, hidden 14336, 32 layers, 32 heads of 128, 8 kv heads,
 *         vocab 128256, untied output, rope_theta 500000 (8.0 G parameters; with --layers 2 a
 *         slice of it that fits in memory as float32, 3.4 GB of BF16)
 *   tiny  dim 256, hidden 688, 2 layers, 8 heads, 4 kv heads, vocab 1000 (for a quick try)
 * Weights are uniform with the standard deviation of Hugging Face's initialisation (0.02), norms
 * 1; the model is built in float32 in memory (5 GB for 1b), then written by fipsc's GGUF writer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "families/llama/gguf.h"
#include "families/llama/llama.h"
#include "model/model.h"

static _Noreturn void die(const char *msg, const fipsc_error *err)
{
    fprintf(stderr, "synthetic_llama: %s%s%s\n", msg, err ? ": " : "", err ? err->message : "");
    exit(1);
}

static void add(fipsc_model *m, fipsc_rng *rng, const char *name, int64_t rows, int64_t cols, bool norm)
{
    int64_t n = rows * (cols ? cols : 1);
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) die("out of memory", NULL);
    const double a = 0.02 * sqrt(3.0); /* uniform in ±a has standard deviation 0.02 */
    for (int64_t i = 0; i < n; i++) p[i] = norm ? 1.0f : (float)((2 * fipsc_rng_uniform(rng) - 1) * a);
    int64_t shape[2] = {rows, cols};
    fipsc_error err = {0};
    if (fipsc_model_add_tensor(m, name, cols ? 2 : 1, shape, p, true, FIPSC_F32, &err)) die("adding a tensor", &err);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: synthetic_llama OUT.gguf [--shape 1b|8b|tiny] [--layers N] [--vocab N] "
                        "[--type f32|f16|bf16|q8_0|q4_0] [--seed S]\n");
        return 2;
    }
    fipsc_config c = {.bos_token = 128000, .eos_token = 128001, .tie_embeddings = true, .norm_eps = 1e-5f,
                      .rope_theta = 500000.0f, .max_seq_len = 131072};
    snprintf(c.arch_name, sizeof c.arch_name, "LlamaForCausalLM");
    c.dim = 2048, c.hidden_dim = 8192, c.n_layers = 16, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 64,
    c.vocab_size = 128256;
    fipsc_ggml_type type = FIPSC_GGML_F32;
    uint64_t seed = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "tiny") == 0)
            c.dim = 256, c.hidden_dim = 688, c.n_layers = 2, c.n_heads = 8, c.n_kv_heads = 4, c.head_dim = 32,
            c.vocab_size = 1000, c.bos_token = 1, c.eos_token = 2, c.max_seq_len = 2048;
        else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "8b") == 0)
            c.dim = 4096, c.hidden_dim = 14336, c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128,
            c.tie_embeddings = false;
        else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "1b") == 0) continue;
        else if (strcmp(argv[i], "--layers") == 0) c.n_layers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--vocab") == 0) c.vocab_size = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--type") == 0 && fipsc_ggml_type_parse(argv[i + 1], &type)) continue;
        else die("bad option (see the usage)", NULL);
    }
    if (c.n_layers < 1 || c.vocab_size < 3) die("--layers and --vocab must be positive", NULL);
    if (c.bos_token >= c.vocab_size) c.bos_token = 1, c.eos_token = 2;
    fipsc_model *m = fipsc_model_new();
    fipsc_error err = {0};
    if (!m || fipsc_llama_configure(m, &c, &err)) die("configuring", &err);
    fipsc_rng rng;
    fipsc_rng_seed(&rng, seed);
    const int64_t q = (int64_t)c.n_heads * c.head_dim, kv = (int64_t)c.n_kv_heads * c.head_dim;
    char name[128];
    add(m, &rng, "model.embed_tokens.weight", c.vocab_size, c.dim, false);
    for (int l = 0; l < c.n_layers; l++) {
#define N(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
        add(m, &rng, N("input_layernorm.weight"), c.dim, 0, true);
        add(m, &rng, N("self_attn.q_proj.weight"), q, c.dim, false);
        add(m, &rng, N("self_attn.k_proj.weight"), kv, c.dim, false);
        add(m, &rng, N("self_attn.v_proj.weight"), kv, c.dim, false);
        add(m, &rng, N("self_attn.o_proj.weight"), c.dim, q, false);
        add(m, &rng, N("post_attention_layernorm.weight"), c.dim, 0, true);
        add(m, &rng, N("mlp.gate_proj.weight"), c.hidden_dim, c.dim, false);
        add(m, &rng, N("mlp.up_proj.weight"), c.hidden_dim, c.dim, false);
        add(m, &rng, N("mlp.down_proj.weight"), c.dim, c.hidden_dim, false);
#undef N
    }
    add(m, &rng, "model.norm.weight", c.dim, 0, true);
    if (!c.tie_embeddings) add(m, &rng, "lm_head.weight", c.vocab_size, c.dim, false);
    if (fipsc_llama_bind(m, &err)) die("binding", &err);
    if (fipsc_llama_gguf_export(m, argv[1], type, NULL, NULL, true, &err)) die("writing", &err);
    printf("wrote %s: dim %d, hidden %d, %d layers, %d/%d heads, vocab %d, matrices %s\n", argv[1], c.dim, c.hidden_dim,
           c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, fipsc_ggml_type_name(type));
    fipsc_model_free(m);
    return 0;
}
