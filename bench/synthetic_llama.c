/* Writes a Llama-shaped model with random weights — as a GGUF file, or as a Hugging Face
 * checkpoint directory sharded like the hub's — for speed and scale measurements at real shapes
 * (bench/vs-llamacpp.sh, BENCHMARKS.md): no trained model of that size is available here, and
 * speed and memory do not depend on what the weights are.
 *
 *   synthetic_llama OUT [--shape 1b|8b|gemma2-2b|gemma2-9b|gemma2-27b|tiny] [--layers N] [--vocab N]
 *                   [--type f32|f16|bf16|q8_0|q4_0]
 *                   [--shard-gb G] [--seed S]
 *
 *   OUT   a path ending in .gguf: one GGUF file (any --type); otherwise a Hugging Face directory
 *         (created; it must not exist): config.json, model-0000K-of-0000N.safetensors shards of at
 *         most G GB each (default 5, the hub's) and model.safetensors.index.json, or a single
 *         model.safetensors when everything fits in one shard (--type f32, f16 or bf16)
 *   1b    the Llama-3.2-1B shape: dim 2048, hidden 8192, 16 layers, 32 heads of 64, 8 kv heads,
 *         vocab 128256, tied embeddings, rope_theta 500000 (1.24 G parameters, 4.9 GB in F32)
 *   8b    the Llama-3-8B shape: dim 4096, hidden 14336, 32 layers, 32 heads of 128, 8 kv heads,
 *         vocab 128256, untied output, rope_theta 500000 (8.0 G parameters, 16 GB in BF16; with
 *         --layers 2 a slice of it that fits in memory as float32, 3.4 GB of BF16)
 *   gemma2-2b, gemma2-9b, gemma2-27b
 *         Gemma-2 (Gemma2ForCausalLM): dim 2304 / 3584 / 4608, hidden 9216 / 14336 / 36864, 26 / 42 /
 *         46 layers, 8 / 16 / 32 heads of 256 / 256 / 128, 4 / 8 / 16 kv heads, vocab 256000, tied
 *         (2.6 / 9.2 / 27.2 G parameters); norms 0 (Gemma's norms scale by 1 + w)
 *   tiny  dim 256, hidden 688, 2 layers, 8 heads, 4 kv heads, vocab 1000 (for a quick try)
 * Weights are uniform with the standard deviation of Hugging Face's initialisation (0.02), norms
 * 1, drawn in one fixed order from the seed: the GGUF file and the directory of one seed hold the
 * same weights (up to each format's rounding). The GGUF file is built in float32 in memory (5 GB
 * for 1b); the directory is written shard by shard, so the 8B shape needs about 2 × G GB. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/rng.h"
#include "families/llama/gguf.h"
#include "families/llama/hf.h"
#include "families/llama/llama.h"
#include "formats/safetensors.h"
#include "model/model.h"

static _Noreturn void die(const char *msg, const fipsc_error *err)
{
    fprintf(stderr, "synthetic_llama: %s%s%s\n", msg, err ? ": " : "", err ? err->message : "");
    exit(1);
}

/* One tensor of the checkpoint: [rows, cols] (cols 0: a vector), a norm (all ones) or a matrix. */
typedef struct spec {
    char name[96];
    int64_t rows, cols;
    bool norm;
} spec;

/* Every tensor in Hugging Face order; returns the count. */
static int plan(const fipsc_config *c, spec *out)
{
    const int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    int n = 0;
#define ADD(nm, r, k, isnorm) (snprintf(out[n].name, sizeof out[n].name, "%s", nm), out[n].rows = (r), \
                               out[n].cols = (k), out[n].norm = (isnorm), n++)
    ADD("model.embed_tokens.weight", c->vocab_size, c->dim, false);
    char name[96];
    for (int l = 0; l < c->n_layers; l++) {
#define N(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
        ADD(N("input_layernorm.weight"), c->dim, 0, true);
        ADD(N("self_attn.q_proj.weight"), q, c->dim, false);
        ADD(N("self_attn.k_proj.weight"), kv, c->dim, false);
        ADD(N("self_attn.v_proj.weight"), kv, c->dim, false);
        ADD(N("self_attn.o_proj.weight"), c->dim, q, false);
        ADD(N("post_attention_layernorm.weight"), c->dim, 0, true);
        if (c->post_norms) { /* Gemma-2: post_attention_layernorm follows the attention */
            ADD(N("pre_feedforward_layernorm.weight"), c->dim, 0, true);
            ADD(N("post_feedforward_layernorm.weight"), c->dim, 0, true);
        }
        ADD(N("mlp.gate_proj.weight"), c->hidden_dim, c->dim, false);
        ADD(N("mlp.up_proj.weight"), c->hidden_dim, c->dim, false);
        ADD(N("mlp.down_proj.weight"), c->dim, c->hidden_dim, false);
#undef N
    }
    ADD("model.norm.weight", c->dim, 0, true);
    if (!c->tie_embeddings) ADD("lm_head.weight", c->vocab_size, c->dim, false);
#undef ADD
    return n;
}

static int64_t numel(const spec *s) { return s->rows * (s->cols ? s->cols : 1); }

/* Norm weights: 1 (Gemma stores w of its (1 + w) norms: 0). */
static float norm_value;

/* The tensor's values, drawn from rng (malloc'ed). */
static float *draw(const spec *s, fipsc_rng *rng)
{
    int64_t n = numel(s);
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) die("out of memory", NULL);
    const double a = 0.02 * sqrt(3.0); /* uniform in ±a has standard deviation 0.02 */
    for (int64_t i = 0; i < n; i++) p[i] = s->norm ? norm_value : (float)((2 * fipsc_rng_uniform(rng) - 1) * a);
    return p;
}

/* Gemma-2 at one of its published sizes (transformers' Gemma2Config of google/gemma-2-2b, -9b,
 * -27b): GeGLU MLPs, (1 + w) norms with post-attention and pre/post-feedforward norms, soft caps
 * 50 (attention) and 30 (logits), a 4096-token window on every other layer, tied embeddings. */
static void gemma2(fipsc_config *c, int dim, int hidden, int layers, int heads, int kv_heads, int head_dim,
                   float query_pre_attn_scalar)
{
    c->dim = dim, c->hidden_dim = hidden, c->n_layers = layers, c->n_heads = heads, c->n_kv_heads = kv_heads;
    c->head_dim = head_dim, c->vocab_size = 256000, c->tie_embeddings = true, c->norm_eps = 1e-6f;
    c->rope_theta = 10000.0f, c->max_seq_len = 8192, c->bos_token = 2, c->eos_token = 1;
    c->gemma = c->post_norms = true;
    c->query_pre_attn_scalar = query_pre_attn_scalar;
    c->attn_softcap = 50.0f, c->final_softcap = 30.0f, c->sliding_window = 4096;
    snprintf(c->arch_name, sizeof c->arch_name, "Gemma2ForCausalLM");
    norm_value = 0.0f;
}

static void write_gguf(const char *path, const fipsc_config *c, const spec *specs, int n, fipsc_rng *rng,
                       fipsc_ggml_type type)
{
    fipsc_model *m = fipsc_model_new();
    fipsc_error err = {0};
    if (!m || fipsc_llama_configure(m, c, &err)) die("configuring", &err);
    for (int i = 0; i < n; i++) {
        int64_t shape[2] = {specs[i].rows, specs[i].cols};
        if (fipsc_model_add_tensor(m, specs[i].name, specs[i].cols ? 2 : 1, shape, draw(&specs[i], rng), true,
                                   FIPSC_F32, &err))
            die("adding a tensor", &err);
    }
    if (fipsc_llama_bind(m, &err)) die("binding", &err);
    if (fipsc_llama_gguf_export(m, path, type, NULL, NULL, true, &err)) die("writing", &err);
    fipsc_model_free(m);
}

static void write_text(const char *path, const char *text)
{
    fipsc_atomic_file af;
    fipsc_error err = {0};
    if (fipsc_atomic_open(path, &af, &err) || fipsc_atomic_write(&af, text, strlen(text), &err) ||
        fipsc_atomic_commit(&af, &err))
        die("writing", &err);
}

/* The directory: tensors go to shards in order, a new shard when the next tensor would take the
 * current one past the limit (as transformers' save_pretrained does). */
static int write_hf(const char *dir, const fipsc_config *c, const spec *specs, int n, fipsc_rng *rng,
                    fipsc_dtype dtype, double shard_gb)
{
    if (mkdir(dir, 0777) != 0) {
        fprintf(stderr, "synthetic_llama: cannot create %s: %s (it must not exist)\n", dir, strerror(errno));
        exit(1);
    }
    const int64_t item = (int64_t)fipsc_dtype_size(dtype), limit = (int64_t)(shard_gb * 1e9);
    int *shard_of = malloc((size_t)n * sizeof *shard_of), n_shards = 1;
    int64_t used = 0;
    for (int i = 0; i < n; i++) {
        int64_t bytes = numel(&specs[i]) * item;
        if (used > 0 && used + bytes > limit) n_shards++, used = 0;
        shard_of[i] = n_shards - 1;
        used += bytes;
    }
    fipsc_st_writer **w = calloc((size_t)n_shards, sizeof *w);
    char **files = calloc((size_t)n_shards, sizeof *files);
    fipsc_error err = {0};
    char path[4200];
    for (int s = 0, i = 0; s < n_shards; s++) {
        files[s] = malloc(64);
        if (n_shards == 1) snprintf(files[s], 64, "model.safetensors");
        else snprintf(files[s], 64, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        if (!(w[s] = fipsc_st_writer_new())) die("out of memory", NULL);
        fipsc_st_writer_set_meta(w[s], "format", "pt", &err);
        int first = i;
        float **data = calloc((size_t)n, sizeof *data);
        for (; i < n && shard_of[i] == s; i++) {
            int64_t shape[2] = {specs[i].rows, specs[i].cols};
            data[i] = draw(&specs[i], rng);
            if (fipsc_st_writer_add_f32_as(w[s], specs[i].name, dtype, specs[i].cols ? 2 : 1, shape, data[i], &err))
                die("adding a tensor", &err);
        }
        snprintf(path, sizeof path, "%s/%s", dir, files[s]);
        if (fipsc_st_writer_write(w[s], path, &err)) die("writing a shard", &err);
        for (int k = first; k < i; k++) free(data[k]);
        free(data);
        fprintf(stderr, "synthetic_llama: wrote %s\n", path);
    }
    if (n_shards > 1) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        if (fipsc_st_write_index(path, n_shards, (const fipsc_st_writer *const *)w, (const char *const *)files, &err))
            die("writing the index", &err);
    }
    char *config = NULL;
    if (fipsc_hf_config_to_json(c, &config, &err)) die("the configuration", &err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, config);
    free(config);
    for (int s = 0; s < n_shards; s++) {
        fipsc_st_writer_free(w[s]);
        free(files[s]);
    }
    free(w);
    free(files);
    free(shard_of);
    return n_shards;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: synthetic_llama OUT.gguf|DIR [--shape 1b|8b|gemma2-2b|gemma2-9b|gemma2-27b|tiny] "
                        "[--layers N] [--vocab N] [--type f32|f16|bf16|q8_0|q4_0] [--shard-gb G] [--seed S]\n");
        return 2;
    }
    norm_value = 1.0f;
    fipsc_config c = {.bos_token = 128000, .eos_token = 128001, .tie_embeddings = true, .norm_eps = 1e-5f,
                      .rope_theta = 500000.0f, .max_seq_len = 131072};
    snprintf(c.arch_name, sizeof c.arch_name, "LlamaForCausalLM");
    c.dim = 2048, c.hidden_dim = 8192, c.n_layers = 16, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 64,
    c.vocab_size = 128256;
    fipsc_ggml_type type = FIPSC_GGML_F32;
    uint64_t seed = 1;
    double shard_gb = 5.0;
    int layers = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "tiny") == 0)
            c.dim = 256, c.hidden_dim = 688, c.n_layers = 2, c.n_heads = 8, c.n_kv_heads = 4, c.head_dim = 32,
            c.vocab_size = 1000, c.bos_token = 1, c.eos_token = 2, c.max_seq_len = 2048;
        else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "8b") == 0)
            c.dim = 4096, c.hidden_dim = 14336, c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128,
            c.tie_embeddings = false;
        else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "1b") == 0) continue;
        else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "gemma2-2b") == 0)
            gemma2(&c, 2304, 9216, 26, 8, 4, 256, 256.0f);
        else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "gemma2-9b") == 0)
            gemma2(&c, 3584, 14336, 42, 16, 8, 256, 256.0f);
        else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "gemma2-27b") == 0)
            gemma2(&c, 4608, 36864, 46, 32, 16, 128, 144.0f);
        else if (strcmp(argv[i], "--layers") == 0) layers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--vocab") == 0) c.vocab_size = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--shard-gb") == 0) shard_gb = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--type") == 0 && fipsc_ggml_type_parse(argv[i + 1], &type)) continue;
        else die("bad option (see the usage)", NULL);
    }
    if (layers) c.n_layers = layers;
    if (c.n_layers < 1 || c.vocab_size < 3 || !(shard_gb > 0)) die("--layers, --vocab and --shard-gb must be positive", NULL);
    if (c.bos_token >= c.vocab_size) c.bos_token = 1, c.eos_token = 2;
    const size_t len = strlen(argv[1]);
    const bool gguf = len > 5 && strcmp(argv[1] + len - 5, ".gguf") == 0;
    fipsc_dtype dtype = type == FIPSC_GGML_F32 ? FIPSC_F32 : type == FIPSC_GGML_F16 ? FIPSC_F16
                        : type == FIPSC_GGML_BF16                              ? FIPSC_BF16
                                                                               : FIPSC_U8;
    if (!gguf && dtype == FIPSC_U8) die("a Hugging Face directory holds f32, f16 or bf16 tensors", NULL);

    spec *specs = malloc((size_t)(4 + 11 * c.n_layers) * sizeof *specs);
    if (!specs) die("out of memory", NULL);
    const int n = plan(&c, specs);
    fipsc_rng rng;
    fipsc_rng_seed(&rng, seed);
    if (gguf) {
        write_gguf(argv[1], &c, specs, n, &rng, type);
        printf("wrote %s: ", argv[1]);
    } else {
        int shards = write_hf(argv[1], &c, specs, n, &rng, dtype, shard_gb);
        printf("wrote %s (%d shard%s): ", argv[1], shards, shards == 1 ? "" : "s");
    }
    printf("dim %d, hidden %d, %d layers, %d/%d heads, vocab %d, %s head, matrices %s\n", c.dim, c.hidden_dim,
           c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.tie_embeddings ? "tied" : "separate",
           fipsc_ggml_type_name(type));
    free(specs);
    return 0;
}
