/* The Llama family in GGUF files, the mapping: reading llama.cpp's `llama`, `qwen2`, `gemma` and `gemma2`
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
 * Vocabulary. The tokenizer keys of a GGUF file named by the caller are copied as they are;
 * without one (fipsc's Llama models carry no tokenizer) the file gets a placeholder SentencePiece
 * vocabulary that llama.cpp loads (tokenizer.ggml.model "llama"): <unk>, <s>, </s>, the 256 byte
 * tokens <0x00>..<0xFF> when the vocabulary has room for them (llama2.c's convention, which the
 * stories models follow), then "<fipsc-placeholder-N>"; general.description says which. With the
 * placeholder, token ids, not text, are what agree with the source model.
 *
 * Reading: gguf_load.c; writing: gguf_export.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "families/llama/gguf_internal.h"
#include "formats/gguf.h"

static const gguf_arch archs[] = {
    {"llama", true, false, "LlamaForCausalLM", false, false, false},
    {"qwen2", false, true, "Qwen2ForCausalLM", false, false, false},
    {"gemma", false, false, "GemmaForCausalLM", true, false, false},
    {"gemma2", false, false, "Gemma2ForCausalLM", true, true, false},
    {"phi3", false, false, "Phi3ForCausalLM", false, false, true},
};

const gguf_arch *llama_gguf_arch_named(const char *name)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

/* The GGUF architecture fipsc writes for a model: Qwen2 keeps its own, the rest are `llama` (as
 * the converter maps LlamaForCausalLM, MistralForCausalLM and llama2.c files). */
const gguf_arch *llama_gguf_arch_for(const fipsc_config *c)
{
    for (size_t i = 1; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(c->arch_name, archs[i].hf_arch) == 0) return &archs[i];
    return &archs[0];
}

/* One tensor name pair; "%d" stands for the block. `post` 0: every architecture; 1: only those
 * without Gemma-2's post norms; 2: only Gemma-2 (whose post_attention_layernorm follows the
 * attention, while Llama's is the pre-MLP norm); 3: only Phi-3 (fused projections, as its
 * checkpoints and llama.cpp hold them: ffn_up is gate and up stacked); 4: all but Phi-3. */
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
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", true, 4},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", true, 4},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", false, 4},
    {"model.layers.%d.self_attn.qkv_proj.weight", "blk.%d.attn_qkv.weight", false, 3},
    {"model.layers.%d.mlp.gate_up_proj.weight", "blk.%d.ffn_up.weight", false, 3},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", true, 0},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", true, 0},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", false, 0},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", false, 0},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", false, 4},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", false, 4},
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
    switch (p->post) {
    case 1: return !a->post_norms;
    case 2: return a->post_norms;
    case 3: return a->fused;
    case 4: return !a->fused;
    default: return true;
    }
}

/* Gemma's GGUF norms hold 1 + w (llama.cpp multiplies by the weight as it is), as its converter
 * writes them; fipsc's tensors hold w, as transformers stores it. */
bool llama_gguf_is_norm(const char *hf_name) { return strstr(hf_name, "norm.weight") != NULL; }

/* The name a tensor has on the other side (to_gguf: Hugging Face → GGUF, else back), whether its
 * rows are RoPE-permuted, and its block (-1: none). False when the architecture has no such
 * tensor for n_layers blocks. */
bool llama_gguf_translate_name(const char *name, bool to_gguf, const gguf_arch *a, int n_layers, char *out, size_t cap,
                           bool *rope, int *block)
{
    *rope = false;
    *block = -1;
    for (int k = 0; k < N_TOP_NAMES; k++)
        if (strcmp(name, to_gguf ? top_names[k].hf : top_names[k].gguf) == 0) {
            snprintf(out, cap, "%s", to_gguf ? top_names[k].gguf : top_names[k].hf);
            return true;
        }
    int l;
    char rest[FIPSC_GGUF_MAX_NAME + 1];
    if (sscanf(name, to_gguf ? "model.layers.%d.%256s" : "blk.%d.%256s", &l, rest) != 2 || l < 0 || l >= n_layers)
        return false;
    for (int k = 0; k < N_BLOCK_NAMES; k++) {
        char candidate[160];
        if (!pair_applies(&block_names[k], a)) continue;
        snprintf(candidate, sizeof candidate, to_gguf ? block_names[k].hf : block_names[k].gguf, l);
        if (strcmp(candidate, name) != 0) continue;
        snprintf(out, cap, to_gguf ? block_names[k].gguf : block_names[k].hf, l);
        *rope = block_names[k].rope && a->permute_qk;
        *block = l;
        return true;
    }
    return false;
}

/* Rows of a q or k tensor [heads·hd, cols] between the two RoPE orders, inside every head:
 * interleaved row 2i + s ↔ half-split row s·hd/2 + i. */
void llama_gguf_permute_rope_rows(void *dst, const void *src, int64_t rows, size_t row_bytes, int hd,
                                  bool to_interleaved)
{
    char *d = dst;
    const char *from_rows = src;
    const int half = hd / 2;
    for (int64_t h = 0; h < rows / hd; h++)
        for (int i = 0; i < half; i++)
            for (int s = 0; s < 2; s++) {
                int64_t inter = h * hd + 2 * i + s, split = h * hd + s * half + i;
                int64_t to = to_interleaved ? inter : split, from = to_interleaved ? split : inter;
                memcpy(d + (size_t)to * row_bytes, from_rows + (size_t)from * row_bytes, row_bytes);
            }
}

/* The factors llama.cpp divides RoPE pair j's angle by (rope_freqs.weight), as its converter
 * computes them for Llama 3.1/3.2's "llama3" scaling: the ratio of plain to scaled inverse
 * frequency (fipsc_llama_rope_inv_freq). */
void llama_gguf_llama3_rope_factors(const fipsc_config *c, float *factors)
{
    fipsc_config plain = *c;
    plain.rope_scaling = FIPSC_ROPE_NONE;
    for (int j = 0; j < c->head_dim / 2; j++)
        factors[j] = (float)((double)fipsc_llama_rope_inv_freq(&plain, j) / (double)fipsc_llama_rope_inv_freq(c, j));
}
