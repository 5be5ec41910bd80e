/* The Llama family in GGUF files: reading llama.cpp's `llama`, `qwen2`, `gemma` and `gemma2`
 * architectures, and writing a model as llama.cpp's converter (convert_hf_to_gguf.py) would.
 *
 * Names. Hugging Face tensor ↔ GGUF tensor (per block N):
 *   model.embed_tokens.weight                  token_embd.weight     ne {dim, vocab}
 *   model.layers.N.input_layernorm.weight      blk.N.attn_norm.weight
 *   model.layers.N.self_attn.{q,k,v,o}_proj.*  blk.N.attn_{q,k,v,output}.*
 *   model.layers.N.post_attention_layernorm.*  blk.N.ffn_norm.weight          (Gemma-2: post_attention_norm)
 *   model.layers.N.pre_feedforward_layernorm.* blk.N.ffn_norm.weight          (Gemma-2)
 *   model.layers.N.post_feedforward_layernorm.* blk.N.post_ffw_norm.weight    (Gemma-2)
 *   model.layers.N.mlp.{gate,up,down}_proj.*   blk.N.ffn_{gate,up,down}.weight
 *   model.norm.weight                          output_norm.weight
 *   lm_head.weight                             output.weight         (absent: tied embeddings)
 * A weight [out, in] is ne {in, out}: the same bytes, row-major.
 *
 * RoPE row order. llama.cpp's `llama` architecture rotates interleaved pairs (2i, 2i+1) of each
 * head (LLAMA_ROPE_TYPE_NORM), Hugging Face (and fipsc) rotates (i, i + hd/2). The converter
 * therefore permutes q and k rows inside every head, GGUF row 2i + s ← HF row s·hd/2 + i
 * (s ∈ {0, 1}); the reader undoes it. q·k is unchanged when both are permuted alike, so the two
 * compute the same attention. `qwen2`, `gemma` and `gemma2` use the Hugging Face order
 * (LLAMA_ROPE_TYPE_NEOX): no permutation.
 *
 * Gemma. GGUF norm weights hold 1 + w (llama.cpp multiplies by them as they are; the converter
 * adds the 1), fipsc's tensors w. Gemma-2's soft-capping values and window are keys
 * (gemma2.attn_logit_softcapping, .final_logit_softcapping, .attention.sliding_window); its
 * attention scale is not stored: llama.cpp takes 1/√head_dim (1/√(dim/heads) for the 46-layer
 * 27B), so a model whose query_pre_attn_scalar differs is not written.
 *
 * Vocabulary. fipsc's Llama models carry no tokenizer, so the file gets a placeholder SentencePiece
 * vocabulary that llama.cpp loads (tokenizer.ggml.model "llama"): <unk>, <s>, </s>, the 256 byte
 * tokens <0x00>..<0xFF> when the vocabulary has room for them (llama2.c's convention, which the
 * stories models follow), then "<fipsc-placeholder-N>"; general.description says so. Token ids,
 * not text, are what agree with the source model. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "families/llama/llama.h"
#include "families/llama/gguf.h"
#include "families/llama/hf.h"
#include "model/model.h"

/* The GGUF architectures of the family: whether q/k rows are permuted, and the Hugging Face
 * architecture a file of it becomes. */
typedef struct gguf_arch {
    const char *name;
    bool permute_qk;
    bool qkv_bias;
    const char *hf_arch;
    bool gemma, post_norms; /* Gemma: norms stored as 1 + w; Gemma-2: post norms, soft-capping, windows */
} gguf_arch;

static const gguf_arch archs[] = {
    {"llama", true, false, "LlamaForCausalLM", false, false},
    {"qwen2", false, true, "Qwen2ForCausalLM", false, false},
    {"gemma", false, false, "GemmaForCausalLM", true, false},
    {"gemma2", false, false, "Gemma2ForCausalLM", true, true},
};

static const gguf_arch *arch_named(const char *name)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

/* The GGUF architecture fipsc writes for a model: Qwen2 keeps its own, the rest are `llama` (as
 * the converter maps LlamaForCausalLM, MistralForCausalLM and llama2.c files). */
static const gguf_arch *arch_for(const fipsc_config *c)
{
    for (size_t i = 1; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(c->arch_name, archs[i].hf_arch) == 0) return &archs[i];
    return &archs[0];
}

/* One tensor name pair; "%d" stands for the block. `post` 0: every architecture; 1: only those
 * without Gemma-2's post norms; 2: only Gemma-2 (whose post_attention_layernorm follows the
 * attention, while Llama's is the pre-MLP norm). */
typedef struct name_pair {
    const char *hf, *gguf;
    bool rope; /* q/k: rows permuted for `llama` */
    int post;
} name_pair;

static const name_pair block_names[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", false, 0},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", false, 1},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.post_attention_norm.weight", false, 2},
    {"model.layers.%d.pre_feedforward_layernorm.weight", "blk.%d.ffn_norm.weight", false, 2},
    {"model.layers.%d.post_feedforward_layernorm.weight", "blk.%d.post_ffw_norm.weight", false, 2},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", true, 0},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", true, 0},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", false, 0},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", true, 0},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", true, 0},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", false, 0},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", false, 0},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", false, 0},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", false, 0},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", false, 0},
};
static const name_pair top_names[] = {
    {"model.embed_tokens.weight", "token_embd.weight", false, 0},
    {"model.norm.weight", "output_norm.weight", false, 0},
    {"lm_head.weight", "output.weight", false, 0},
};
enum { N_BLOCK_NAMES = sizeof block_names / sizeof block_names[0], N_TOP_NAMES = sizeof top_names / sizeof top_names[0] };

static bool pair_applies(const name_pair *p, const gguf_arch *a)
{
    return p->post == 0 || (p->post == 2) == a->post_norms;
}

/* Gemma's GGUF norms hold 1 + w (llama.cpp multiplies by the weight as it is), as its converter
 * writes them; fipsc's tensors hold w, as transformers stores it. */
static bool is_norm(const char *hf_name) { return strstr(hf_name, "norm.weight") != NULL; }

/* Rows of a q or k tensor [heads·hd, cols] between the two RoPE orders, inside every head:
 * interleaved row 2i + s ↔ half-split row s·hd/2 + i. */
static void permute_rope_rows(float *dst, const float *src, int64_t rows, int64_t cols, int hd, bool to_interleaved)
{
    const int half = hd / 2;
    for (int64_t h = 0; h < rows / hd; h++)
        for (int i = 0; i < half; i++)
            for (int s = 0; s < 2; s++) {
                int64_t inter = h * hd + 2 * i + s, split = h * hd + s * half + i;
                int64_t to = to_interleaved ? inter : split, from = to_interleaved ? split : inter;
                memcpy(dst + to * cols, src + from * cols, (size_t)cols * sizeof *dst);
            }
}

/* ---- reading ------------------------------------------------------------------------------- */

static fipsc_status key_int(const fipsc_gguf *g, const char *arch, const char *key, bool has_default, int64_t def,
                            int64_t lo, int64_t hi, int *out, fipsc_error *err)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int64_t v;
    fipsc_status st = fipsc_gguf_get_int(g, full, has_default, def, &v, err);
    if (st) return st;
    if (v < lo || v > hi)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: %s is %lld (expected %lld..%lld)", g->origin, full, (long long)v,
                          (long long)lo, (long long)hi);
    *out = (int)v;
    return FIPSC_OK;
}

/* A `{arch}.*` float key; def when absent. */
static fipsc_status key_float(const fipsc_gguf *g, const char *arch, const char *key, double def, float *out,
                              fipsc_error *err)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    double v;
    fipsc_status st = fipsc_gguf_get_float(g, full, true, def, &v, err);
    if (st) return st;
    if (!(v > 0 && v < 1e30))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: %s is %g (expected a positive number)", g->origin, full, v);
    *out = (float)v;
    return FIPSC_OK;
}

/* Features of the architecture that the Llama runtime does not compute: refused by name (a
 * sliding window is Gemma-2's own, computed for it). */
static fipsc_status refuse_unsupported(const fipsc_gguf *g, const gguf_arch *a, fipsc_error *err)
{
    char full[160];
    snprintf(full, sizeof full, "%s.attention.sliding_window", a->name);
    if (!a->post_norms && fipsc_gguf_find(g, full))
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: %s is set; fipsc's %s runtime has no sliding window",
                          g->origin, full, a->name);
    return FIPSC_OK;
}

/* The factors llama.cpp divides RoPE pair j's angle by (rope_freqs.weight), as its converter
 * computes them for Llama 3.1/3.2's "llama3" scaling: the ratio of plain to scaled inverse
 * frequency (fipsc_llama_rope_inv_freq). */
static void llama3_rope_factors(const fipsc_config *c, float *factors)
{
    fipsc_config plain = *c;
    plain.rope_scaling = FIPSC_ROPE_NONE;
    for (int j = 0; j < c->head_dim / 2; j++)
        factors[j] = (float)((double)fipsc_llama_rope_inv_freq(&plain, j) / (double)fipsc_llama_rope_inv_freq(c, j));
}

/* RoPE scaling: rope.scaling.type none or linear (with rope.scaling.factor); a rope_freqs.weight
 * tensor (llama3 scaling, as the converter writes it) must be Llama 3.1's or 3.2's — factor 8 or
 * 32, low/high frequency factors 1 and 4, original context 8192 — since the file keeps only the
 * per-pair factors, not the parameters that config.json needs. */
static fipsc_status rope_from_gguf(const fipsc_gguf *g, const gguf_arch *a, fipsc_config *c, fipsc_error *err)
{
    char key[160], type[32] = "none";
    snprintf(key, sizeof key, "%s.rope.scaling.type", a->name);
    fipsc_status st;
    if (fipsc_gguf_find(g, key) && (st = fipsc_gguf_get_string(g, key, type, sizeof type, err))) return st;
    if (strcmp(type, "linear") == 0) {
        double factor;
        snprintf(key, sizeof key, "%s.rope.scaling.factor", a->name);
        if ((st = fipsc_gguf_get_float(g, key, false, 1.0, &factor, err))) return st;
        if (!(factor > 0 && factor < 1e6))
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: %s is %g", g->origin, key, factor);
        c->rope_scaling = FIPSC_ROPE_LINEAR;
        c->rope_factor = (float)factor;
    } else if (strcmp(type, "none") != 0) {
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: RoPE scaling '%s' is not supported (fipsc computes linear and Llama 3's llama3)",
                          g->origin, type);
    }
    const fipsc_gguf_tensor *t = fipsc_gguf_find_tensor(g, "rope_freqs.weight");
    if (!t) return FIPSC_OK;
    if (c->rope_scaling != FIPSC_ROPE_NONE || t->n_dims != 1 || t->ne[0] != c->head_dim / 2 || t->type != FIPSC_GGML_F32)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: rope_freqs.weight must be %d F32 factors of a model without other RoPE scaling",
                          g->origin, c->head_dim / 2);
    float stored[2048], want[2048];
    if (c->head_dim / 2 > 2048) return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: head_dim %d", g->origin, c->head_dim);
    fipsc_gguf_tensor_to_f32(g, t, stored, err);
    static const float factors[] = {8.0f, 32.0f, 16.0f, 4.0f};
    for (size_t k = 0; k < sizeof factors / sizeof factors[0]; k++) {
        fipsc_config t3 = *c;
        t3.rope_scaling = FIPSC_ROPE_LLAMA3;
        t3.rope_factor = factors[k];
        t3.rope_low_freq_factor = 1.0f;
        t3.rope_high_freq_factor = 4.0f;
        t3.rope_original_context = 8192;
        llama3_rope_factors(&t3, want);
        bool same = true;
        for (int j = 0; j < c->head_dim / 2 && same; j++) same = fabsf(stored[j] - want[j]) <= 1e-4f * want[j];
        if (same) {
            *c = t3;
            return FIPSC_OK;
        }
    }
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "%s: rope_freqs.weight holds RoPE factors that are not Llama 3.1/3.2's llama3 scaling (factor 8, "
                      "16 or 32, low/high 1 and 4, original context 8192)",
                      g->origin);
}

static fipsc_status config_from_gguf(const fipsc_gguf *g, const gguf_arch *a, fipsc_config *c, fipsc_error *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->arch_name, sizeof c->arch_name, "%s", a->hf_arch);
    const int big = 1 << 20;
    fipsc_status st;
    if ((st = key_int(g, a->name, "embedding_length", false, 0, 1, big, &c->dim, err)) ||
        (st = key_int(g, a->name, "feed_forward_length", false, 0, 1, big, &c->hidden_dim, err)) ||
        (st = key_int(g, a->name, "block_count", false, 0, 1, 4096, &c->n_layers, err)) ||
        (st = key_int(g, a->name, "attention.head_count", false, 0, 1, 4096, &c->n_heads, err)) ||
        (st = key_int(g, a->name, "attention.head_count_kv", true, c->n_heads, 1, c->n_heads, &c->n_kv_heads, err)) ||
        (st = key_int(g, a->name, "context_length", true, 2048, 1, 1 << 24, &c->max_seq_len, err)) ||
        (st = key_int(g, a->name, "attention.key_length", true, c->dim / c->n_heads, 2, 4096, &c->head_dim, err)) ||
        (st = key_float(g, a->name, "attention.layer_norm_rms_epsilon", 1e-5, &c->norm_eps, err)) ||
        (st = key_float(g, a->name, "rope.freq_base", 10000.0, &c->rope_theta, err)) ||
        (st = refuse_unsupported(g, a, err)))
        return st;
    int value_len, rope_dims;
    if ((st = key_int(g, a->name, "attention.value_length", true, c->head_dim, 1, 4096, &value_len, err)) ||
        (st = key_int(g, a->name, "rope.dimension_count", true, c->head_dim, 1, 4096, &rope_dims, err)))
        return st;
    if (value_len != c->head_dim || rope_dims != c->head_dim || c->head_dim % 2 || c->n_heads % c->n_kv_heads)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: head layout not supported (key length %d, value length %d, rope dimensions %d, %d "
                          "heads, %d kv heads): fipsc needs equal, even key/value/rope dimensions and kv heads "
                          "dividing heads",
                          g->origin, c->head_dim, value_len, rope_dims, c->n_heads, c->n_kv_heads);
    const fipsc_gguf_tensor *emb = fipsc_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[0] != c->dim || emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
        return fipsc_fail(err, emb ? FIPSC_ERR_SHAPE : FIPSC_ERR_NOT_FOUND,
                          "%s: token_embd.weight %s (expected extents [%d, vocab])", g->origin,
                          emb ? "has the wrong extents" : "is missing", c->dim);
    c->vocab_size = (int)emb->ne[1];
    c->tie_embeddings = fipsc_gguf_find_tensor(g, "output.weight") == NULL;
    c->qkv_bias = a->qkv_bias || fipsc_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    int64_t bos, eos;
    if ((st = fipsc_gguf_get_int(g, "tokenizer.ggml.bos_token_id", true, -1, &bos, err)) ||
        (st = fipsc_gguf_get_int(g, "tokenizer.ggml.eos_token_id", true, -1, &eos, err)))
        return st;
    c->bos_token = bos >= 0 && bos < c->vocab_size ? (int)bos : -1;
    c->eos_token = eos >= 0 && eos < c->vocab_size ? (int)eos : -1;
    c->gemma = a->gemma;
    c->post_norms = a->post_norms;
    if ((st = rope_from_gguf(g, a, c, err))) return st;
    if (!a->post_norms) return FIPSC_OK;
    /* Gemma-2: llama.cpp's defaults (window 4096, caps 50 and 30) and its attention scale, which
     * the file does not store: 1/√head_dim, or 1/√(dim/heads) for the 46-layer (27B) model */
    c->query_pre_attn_scalar = (float)(c->n_layers == 46 ? c->dim / c->n_heads : c->head_dim);
    double attn_cap, final_cap;
    char key[160];
    snprintf(key, sizeof key, "%s.attn_logit_softcapping", a->name);
    if ((st = fipsc_gguf_get_float(g, key, true, 50.0, &attn_cap, err))) return st;
    snprintf(key, sizeof key, "%s.final_logit_softcapping", a->name);
    if ((st = fipsc_gguf_get_float(g, key, true, 30.0, &final_cap, err))) return st;
    if (!(attn_cap >= 0 && attn_cap < 1e6 && final_cap >= 0 && final_cap < 1e6))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: soft-capping values %g and %g (expected 0..1e6)", g->origin,
                          attn_cap, final_cap);
    c->attn_softcap = (float)attn_cap;
    c->final_softcap = (float)final_cap;
    return key_int(g, a->name, "attention.sliding_window", true, 4096, 1, 1 << 30, &c->sliding_window, err);
}

/* Adds the GGUF tensor gname as the model tensor hfname, [out, in] = ne {in, out}, converted
 * to float32 (q/k rows back into the Hugging Face order when the architecture permutes them). */
static fipsc_status add_from_gguf(fipsc_model *m, const fipsc_gguf *g, const fipsc_gguf_tensor *t, const char *hfname,
                                  bool rope, int head_dim, float offset, bool borrow, fipsc_error *err)
{
    const int64_t numel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if (t->n_dims > 2)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s: tensor '%s' has %d dimensions (expected 1 or 2)", g->origin,
                          t->name, t->n_dims);
    if (borrow && t->type == FIPSC_GGML_F32 && !rope && offset == 0.0f && (uintptr_t)t->data % sizeof(float) == 0) {
        /* used in place from the read-only map, which the model keeps (no copy, no memory) */
        int64_t shape[2] = {t->n_dims == 2 ? t->ne[1] : t->ne[0], t->ne[0]};
        return fipsc_model_add_tensor(m, hfname, t->n_dims, shape, (float *)(uintptr_t)t->data, false, FIPSC_F32, err);
    }
    float *data = malloc((size_t)(numel ? numel : 1) * sizeof *data);
    if (!data) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for tensor '%s'", g->origin, t->name);
    fipsc_status st = fipsc_gguf_tensor_to_f32(g, t, data, err);
    for (int64_t i = 0; offset != 0.0f && i < numel; i++) data[i] += offset;
    const int64_t rows = t->n_dims == 2 ? t->ne[1] : t->ne[0], cols = t->n_dims == 2 ? t->ne[0] : 1;
    if (!st && rope) {
        if (rows % head_dim) {
            free(data);
            return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s: tensor '%s' has %lld rows, not whole heads of %d", g->origin,
                              t->name, (long long)rows, head_dim);
        }
        float *p = malloc((size_t)(numel ? numel : 1) * sizeof *p);
        if (!p) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for tensor '%s'", g->origin, t->name);
        else {
            permute_rope_rows(p, data, rows, cols, head_dim, false);
            free(data);
            data = p;
        }
    }
    if (st) {
        free(data);
        return st;
    }
    int64_t shape[2] = {rows, cols};
    fipsc_dtype src = t->type == FIPSC_GGML_F16 ? FIPSC_F16 : t->type == FIPSC_GGML_BF16 ? FIPSC_BF16 : FIPSC_F32;
    return fipsc_model_add_tensor(m, hfname, t->n_dims, shape, data, true, src, err);
}

/* Every GGUF tensor must be one of the architecture's; each becomes its Hugging Face tensor:
 * F32 tensors that need no change are borrowed from the file's map when `borrow` (the model
 * then keeps the file), the others are converted into float32 copies. */
static fipsc_status load_tensors(fipsc_model *m, const fipsc_gguf *g, const gguf_arch *a, bool borrow, fipsc_error *err)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const fipsc_gguf_tensor *t = &g->tensors[i];
        if (strcmp(t->name, "rope_freqs.weight") == 0) continue; /* read into the configuration */
        char hf[160] = "";
        bool rope = false;
        int block;
        char rest[FIPSC_GGUF_MAX_NAME + 1];
        for (int k = 0; k < N_TOP_NAMES && !hf[0]; k++)
            if (strcmp(t->name, top_names[k].gguf) == 0) snprintf(hf, sizeof hf, "%s", top_names[k].hf);
        if (!hf[0] && sscanf(t->name, "blk.%d.%256s", &block, rest) == 2 && block >= 0 && block < c->n_layers) {
            for (int k = 0; k < N_BLOCK_NAMES && !hf[0]; k++) {
                char gname[160];
                if (!pair_applies(&block_names[k], a)) continue;
                snprintf(gname, sizeof gname, block_names[k].gguf, block);
                if (strcmp(gname, t->name) == 0) {
                    snprintf(hf, sizeof hf, block_names[k].hf, block);
                    rope = block_names[k].rope && a->permute_qk;
                }
            }
        }
        if (!hf[0] || !fipsc_hf_llama_is_tensor(hf, c))
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "%s: tensor '%s' is not one of the %s architecture's tensors that fipsc computes",
                              g->origin, t->name, a->name);
        fipsc_status st = add_from_gguf(m, g, t, hf, rope, c->head_dim, a->gemma && is_norm(hf) ? -1.0f : 0.0f, borrow, err);
        if (st) return st;
    }
    return FIPSC_OK;
}

fipsc_probe fipsc_llama_gguf_probe(const char *path, fipsc_error *why)
{
    if (!fipsc_gguf_is_file(path)) return FIPSC_PROBE_NO;
    fipsc_gguf *g;
    if (fipsc_gguf_open(path, &g, why)) return FIPSC_PROBE_MAYBE; /* the loader words the error */
    char arch[64];
    fipsc_probe p = FIPSC_PROBE_MAYBE;
    if (fipsc_gguf_get_string(g, "general.architecture", arch, sizeof arch, why) == FIPSC_OK && arch_named(arch))
        p = FIPSC_PROBE_YES;
    fipsc_gguf_close(g);
    return p;
}

/* Loads the parsed file g (closed here, or kept by the model when it borrows its F32 tensors). */
static fipsc_status load_parsed(fipsc_gguf *g, bool borrow, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    char arch[64];
    const gguf_arch *a = NULL;
    fipsc_status st = fipsc_gguf_get_string(g, "general.architecture", arch, sizeof arch, err);
    if (!st && !(a = arch_named(arch)))
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                        "%s: GGUF architecture '%s' is not one fipsc reads (llama, qwen2, gemma, gemma2)", g->origin,
                        arch);
    fipsc_config cfg;
    if (!st) st = config_from_gguf(g, a, &cfg, err);
    fipsc_model *m = st ? NULL : fipsc_model_new();
    if (!st && !m) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    const fipsc_gguf *file = g; /* valid while g is open, or while the model that keeps it lives */
    if (!st) st = fipsc_model_set_source_path(m, g->origin, err);
    if (!st && borrow) {
        st = fipsc_model_keep(m, g, fipsc_gguf_release, err); /* released with the model (or now, on failure) */
        g = NULL;
    }
    if (!st) st = fipsc_llama_configure(m, &cfg, err);
    if (!st) st = load_tensors(m, file, a, borrow, err);
    if (!st) st = fipsc_model_check_finite(m, err);
    if (!st) st = fipsc_llama_bind(m, err);
    fipsc_gguf_close(g);
    if (st) {
        fipsc_model_free(m);
        return st;
    }
    *out = m;
    return FIPSC_OK;
}

fipsc_status fipsc_llama_gguf_load(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_gguf *g;
    fipsc_status st = fipsc_gguf_open(path, &g, err);
    return st ? st : load_parsed(g, true, out, err);
}

fipsc_status fipsc_llama_gguf_load_buffer(const void *bytes, size_t size, const char *name, fipsc_model **out,
                                          fipsc_error *err)
{
    *out = NULL;
    fipsc_gguf *g;
    fipsc_status st = fipsc_gguf_parse(bytes, size, name, &g, err);
    return st ? st : load_parsed(g, false, out, err); /* the caller's bytes may go: copy everything */
}

/* ---- writing ------------------------------------------------------------------------------- */

/* The stored type of a tensor: 1-D tensors (norms, biases) stay F32, as the converter keeps them;
 * a matrix whose rows do not fill whole blocks falls back to F16, as the converter does. */
static fipsc_ggml_type stored_type(fipsc_ggml_type want, const fipsc_tensor *t)
{
    if (t->ndim != 2) return FIPSC_GGML_F32;
    if (!fipsc_ggml_type_fits(want, t->shape[1])) return FIPSC_GGML_F16;
    return want;
}

/* llama.cpp's general.file_type (enum llama_ftype) of a file mostly of type t. */
static uint32_t file_type(fipsc_ggml_type t)
{
    switch (t) {
    case FIPSC_GGML_F32: return 0;
    case FIPSC_GGML_F16: return 1;
    case FIPSC_GGML_Q4_0: return 2;
    case FIPSC_GGML_Q8_0: return 7;
    case FIPSC_GGML_BF16: return 32;
    }
    return 0;
}

/* The placeholder vocabulary (see the top of this file). */
static fipsc_status add_placeholder_vocab(fipsc_gguf_writer *w, const fipsc_config *c, char ***names_out,
                                          fipsc_error *err)
{
    const int n = c->vocab_size;
    char **names = calloc((size_t)n, sizeof *names);
    float *scores = calloc((size_t)n, sizeof *scores);
    int32_t *types = calloc((size_t)n, sizeof *types);
    fipsc_status st = names && scores && types ? FIPSC_OK : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the vocabulary");
    const bool bytes = n >= 3 + 256;
    for (int i = 0; i < n && !st; i++) {
        char s[40];
        int type = 1; /* LLAMA_TOKEN_TYPE_NORMAL */
        if (i == 0) snprintf(s, sizeof s, "<unk>"), type = 2;                 /* UNKNOWN */
        else if (i == 1) snprintf(s, sizeof s, "<s>"), type = 3;              /* CONTROL */
        else if (i == 2) snprintf(s, sizeof s, "</s>"), type = 3;
        else if (bytes && i < 3 + 256) snprintf(s, sizeof s, "<0x%02X>", i - 3), type = 6; /* BYTE */
        else snprintf(s, sizeof s, "<fipsc-placeholder-%d>", i);
        types[i] = type;
        if (!(names[i] = strdup(s))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the vocabulary");
    }
    if (!st) {
        fipsc_gguf_add_string(w, "tokenizer.ggml.model", "llama");
        fipsc_gguf_add_string_array(w, "tokenizer.ggml.tokens", n, (const char *const *)names);
        fipsc_gguf_add_f32_array(w, "tokenizer.ggml.scores", n, scores);
        fipsc_gguf_add_i32_array(w, "tokenizer.ggml.token_type", n, types);
        if (c->bos_token >= 0) fipsc_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_token);
        if (c->eos_token >= 0) fipsc_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_token);
        fipsc_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        fipsc_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", c->bos_token >= 0);
        fipsc_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", false);
    }
    free(scores);
    free(types);
    *names_out = names; /* freed by the caller after the write (the writer copied them) */
    return st;
}

static void metadata(fipsc_gguf_writer *w, const fipsc_model *m, const gguf_arch *a, fipsc_ggml_type type,
                     const fipsc_gguf *vocab)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    char key[160], text[1024];
#define ARCH_KEY(k) (snprintf(key, sizeof key, "%s.%s", a->name, k), key)
    fipsc_gguf_add_string(w, "general.architecture", a->name);
    const char *base = strrchr(m->source_path, '/');
    fipsc_gguf_add_string(w, "general.name", base ? base + 1 : m->source_path[0] ? m->source_path : "model");
    const char *vbase = vocab ? strrchr(vocab->origin, '/') : NULL;
    snprintf(text, sizeof text,
             "written by fipsc from %.200s (%s); FiPS-compressed MLPs, if any, are stored as their dense "
             "reconstruction U*V_i; %s%.150s",
             base ? base + 1 : m->source_path, c->arch_name,
             vocab ? "the tokenizer is copied from " : "the vocabulary is a placeholder (the source has no tokenizer): "
                                                       "token ids, not text, match the source model",
             vocab ? (vbase ? vbase + 1 : vocab->origin) : "");
    fipsc_gguf_add_string(w, "general.description", text);
    fipsc_gguf_add_u32(w, "general.file_type", file_type(type));
    fipsc_gguf_add_u32(w, "general.quantization_version", 2);
    fipsc_gguf_add_u32(w, ARCH_KEY("vocab_size"), (uint32_t)c->vocab_size);
    fipsc_gguf_add_u32(w, ARCH_KEY("context_length"), (uint32_t)c->max_seq_len);
    fipsc_gguf_add_u32(w, ARCH_KEY("embedding_length"), (uint32_t)c->dim);
    fipsc_gguf_add_u32(w, ARCH_KEY("block_count"), (uint32_t)c->n_layers);
    fipsc_gguf_add_u32(w, ARCH_KEY("feed_forward_length"), (uint32_t)c->hidden_dim);
    fipsc_gguf_add_u32(w, ARCH_KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    fipsc_gguf_add_f32(w, ARCH_KEY("rope.freq_base"), c->rope_theta);
    fipsc_gguf_add_u32(w, ARCH_KEY("attention.head_count"), (uint32_t)c->n_heads);
    fipsc_gguf_add_u32(w, ARCH_KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    fipsc_gguf_add_f32(w, ARCH_KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
    if (c->head_dim * c->n_heads != c->dim) {
        fipsc_gguf_add_u32(w, ARCH_KEY("attention.key_length"), (uint32_t)c->head_dim);
        fipsc_gguf_add_u32(w, ARCH_KEY("attention.value_length"), (uint32_t)c->head_dim);
    }
    if (c->rope_scaling == FIPSC_ROPE_LINEAR) {
        fipsc_gguf_add_string(w, ARCH_KEY("rope.scaling.type"), "linear");
        fipsc_gguf_add_f32(w, ARCH_KEY("rope.scaling.factor"), c->rope_factor);
    }
    if (a->post_norms) {
        fipsc_gguf_add_u32(w, ARCH_KEY("attention.sliding_window"), (uint32_t)c->sliding_window);
        fipsc_gguf_add_f32(w, ARCH_KEY("attn_logit_softcapping"), c->attn_softcap);
        fipsc_gguf_add_f32(w, ARCH_KEY("final_logit_softcapping"), c->final_softcap);
    }
#undef ARCH_KEY
}

/* Copies every tokenizer.* key of vocab, whose token list must fit the model. */
static fipsc_status copy_vocab(fipsc_gguf_writer *w, const fipsc_config *c, const fipsc_gguf *vocab, fipsc_error *err)
{
    const fipsc_gguf_kv *tokens = fipsc_gguf_find(vocab, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != FIPSC_GGUF_ARRAY || tokens->item_type != FIPSC_GGUF_STRING)
        return fipsc_fail(err, FIPSC_ERR_ARG, "%s has no tokenizer.ggml.tokens to take the vocabulary from",
                          vocab->origin);
    if (tokens->count != (uint64_t)c->vocab_size)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s has %llu tokens but the model's vocabulary has %d", vocab->origin,
                          (unsigned long long)tokens->count, c->vocab_size);
    for (int64_t i = 0; i < vocab->n_kvs; i++)
        if (strncmp(vocab->kvs[i].key, "tokenizer.", 10) == 0) fipsc_gguf_add_copy(w, &vocab->kvs[i]);
    return FIPSC_OK;
}

fipsc_status fipsc_llama_gguf_export(const fipsc_model *m, const char *path, fipsc_ggml_type type,
                                     const fipsc_gguf *vocab, bool overwrite, fipsc_error *err)
{
    const fipsc_llama *v = fipsc_model_llama(m);
    if (!v) return fipsc_fail(err, FIPSC_ERR_ARG, "%s is not a Llama-family model", m->arch_name);
    const fipsc_config *c = &v->cfg;
    const gguf_arch *a = arch_for(c);
    if (a->post_norms) { /* llama.cpp derives Gemma-2's attention scale; the model must have that one */
        const float expect = (float)(c->n_layers == 46 ? c->dim / c->n_heads : c->head_dim);
        if (c->query_pre_attn_scalar != expect)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "%s: query_pre_attn_scalar %g is not what llama.cpp assumes for this shape (%g): the "
                              "GGUF file would compute other attention",
                              m->source_path, c->query_pre_attn_scalar, expect);
    }
    fipsc_gguf_writer *w = fipsc_gguf_writer_new();
    if (!w) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    metadata(w, m, a, type, vocab);
    char **placeholder = NULL;
    fipsc_status st = vocab ? copy_vocab(w, c, vocab, err) : add_placeholder_vocab(w, c, &placeholder, err);

    /* the tensors in the converter's order: embeddings, blocks, final norm, head */
    float **permuted = calloc((size_t)m->n_tensors, sizeof *permuted);
    if (!st && !permuted) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    int n_permuted = 0;
    for (int pass = 0; pass < 3 && !st; pass++) {
        for (int i = 0; i < m->n_tensors && !st; i++) {
            const fipsc_tensor *t = &m->tensors[i];
            char gname[160] = "";
            bool rope = false;
            int block = -1, top = -1;
            for (int k = 0; k < N_TOP_NAMES; k++)
                if (strcmp(t->name, top_names[k].hf) == 0) top = k;
            for (int l = 0; top < 0 && block < 0 && l < c->n_layers; l++)
                for (int k = 0; k < N_BLOCK_NAMES && block < 0; k++) {
                    char hf[160];
                    if (!pair_applies(&block_names[k], a)) continue;
                    snprintf(hf, sizeof hf, block_names[k].hf, l);
                    if (strcmp(hf, t->name) == 0) {
                        block = l;
                        snprintf(gname, sizeof gname, block_names[k].gguf, l);
                        rope = block_names[k].rope && a->permute_qk;
                    }
                }
            if (top >= 0) snprintf(gname, sizeof gname, "%s", top_names[top].gguf);
            int want_pass = top == 0 ? 0 : block >= 0 ? 1 : 2;
            if (!gname[0]) {
                st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "tensor '%s' has no GGUF name", t->name);
                break;
            }
            if (want_pass != pass) continue;
            const float *data = t->data;
            const int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
            if (a->gemma && is_norm(t->name)) { /* GGUF holds 1 + w */
                float *p = malloc((size_t)(rows * cols) * sizeof *p);
                if (!p) {
                    st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for tensor '%s'", t->name);
                    break;
                }
                for (int64_t j = 0; j < rows * cols; j++) p[j] = 1.0f + t->data[j];
                permuted[n_permuted++] = p;
                data = p;
            }
            if (rope) {
                float *p = malloc((size_t)(rows * cols) * sizeof *p);
                if (!p) {
                    st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for tensor '%s'", t->name);
                    break;
                }
                permute_rope_rows(p, t->data, rows, cols, c->head_dim, true);
                permuted[n_permuted++] = p;
                data = p;
            }
            int64_t ne[2] = {t->ndim == 2 ? t->shape[1] : t->shape[0], t->shape[0]};
            fipsc_gguf_add_tensor(w, gname, t->ndim, ne, stored_type(type, t), data);
        }
    }
    float *rope_factors = NULL;
    if (!st && c->rope_scaling == FIPSC_ROPE_LLAMA3) { /* as the converter: a rope_freqs.weight tensor */
        if (!(rope_factors = malloc((size_t)c->head_dim / 2 * sizeof *rope_factors)))
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        else {
            llama3_rope_factors(c, rope_factors);
            const int64_t ne[1] = {c->head_dim / 2};
            fipsc_gguf_add_tensor(w, "rope_freqs.weight", 1, ne, FIPSC_GGML_F32, rope_factors);
        }
    }
    if (!st) st = fipsc_gguf_write(w, path, overwrite, err);
    free(rope_factors);
    for (int i = 0; i < n_permuted; i++) free(permuted[i]);
    free(permuted);
    for (int i = 0; placeholder && i < c->vocab_size; i++) free(placeholder[i]);
    free(placeholder);
    fipsc_gguf_writer_free(w);
    return st;
}
