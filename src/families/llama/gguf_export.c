/* Writing a Llama-family model as a GGUF file, as llama.cpp's converter would (see gguf_names.c for
 * the mapping and families/llama/gguf.h for the interface). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/fused.h"
#include "families/llama/gguf.h"
#include "families/llama/gguf_internal.h"
#include "families/llama/llama.h"
#include "formats/gguf.h"
#include "model/model.h"

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
static fipsc_status add_placeholder_vocab(fipsc_gguf_writer *w, const fipsc_config *c, const gguf_arch *a,
                                          char ***names_out, fipsc_error *err)
{
    const int n = c->vocab_size;
    /* llama.cpp's phi3 vocabulary looks up "<|endoftext|>" (Phi-3's end of text): the last placeholder */
    const int endoftext = a->fused && n > 3 ? n - 1 : -1;
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
        else if (i == endoftext) snprintf(s, sizeof s, "<|endoftext|>"), type = 3;
        else snprintf(s, sizeof s, "<fipsc-placeholder-%d>", i);
        types[i] = type;
        if (!(names[i] = strdup(s))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the vocabulary");
    }
    if (!st) {
        fipsc_gguf_add_string(w, "tokenizer.ggml.model", "llama");
        fipsc_gguf_add_string_array(w, "tokenizer.ggml.tokens", n, (const char *const *)names);
        fipsc_gguf_add_f32_array(w, "tokenizer.ggml.scores", n, scores);
        fipsc_gguf_add_i32_array(w, "tokenizer.ggml.token_type", n, types);
        if (c->bos_token >= 0 && c->bos_token < n) fipsc_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_token);
        if (c->eos_token >= 0 && c->eos_token < n) fipsc_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_token);
        fipsc_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        fipsc_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", c->bos_token >= 0 && c->bos_token < n);
        fipsc_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", false);
    }
    free(scores);
    free(types);
    *names_out = names; /* freed by the caller after the write (the writer copied them) */
    return st;
}

static void metadata(fipsc_gguf_writer *w, const fipsc_model *m, const gguf_arch *a, fipsc_ggml_type type,
                     const fipsc_gguf *vocab, const fipsc_tokenizer *tok)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    char key[160], text[1024];
#define ARCH_KEY(k) (snprintf(key, sizeof key, "%s.%s", a->name, k), key)
    fipsc_gguf_add_string(w, "general.architecture", a->name);
    const char *base = strrchr(m->source_path, '/');
    fipsc_gguf_add_string(w, "general.name", base ? base + 1 : m->source_path[0] ? m->source_path : "model");
    const char *vpath = vocab ? vocab->origin : tok ? fipsc_tokenizer_path(tok) : NULL;
    const char *vbase = vpath ? strrchr(vpath, '/') : NULL;
    snprintf(text, sizeof text,
             "written by fipsc from %.200s (%s); FiPS-compressed MLPs, if any, are stored as their dense "
             "reconstruction U*V_i; %s%.150s",
             base ? base + 1 : m->source_path, c->arch_name,
             vocab ? "the tokenizer is copied from "
             : tok ? "the tokenizer is written from "
                   : "the vocabulary is a placeholder (the source has no tokenizer): token ids, not text, match the "
                     "source model",
             vpath ? (vbase ? vbase + 1 : vpath) : "");
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
    if (c->rope_scaling == FIPSC_ROPE_LINEAR || c->rope_scaling == FIPSC_ROPE_YARN) {
        fipsc_gguf_add_string(w, ARCH_KEY("rope.scaling.type"), fipsc_llama_rope_scaling_name(c->rope_scaling));
        fipsc_gguf_add_f32(w, ARCH_KEY("rope.scaling.factor"), c->rope_factor);
    }
    if (c->rope_scaling == FIPSC_ROPE_YARN) { /* as convert_hf_to_gguf.py; llama.cpp's defaults are 32 and 1 */
        fipsc_gguf_add_u32(w, ARCH_KEY("rope.scaling.original_context_length"), (uint32_t)c->rope_original_context);
        fipsc_gguf_add_f32(w, ARCH_KEY("rope.scaling.yarn_beta_fast"), c->rope_beta_fast);
        fipsc_gguf_add_f32(w, ARCH_KEY("rope.scaling.yarn_beta_slow"), c->rope_beta_slow);
    }
    if (a->fused && c->sliding_window > 0) /* llama.cpp reads it, and does not apply it yet (docs/GGUF.md) */
        fipsc_gguf_add_u32(w, ARCH_KEY("attention.sliding_window"), (uint32_t)c->sliding_window);
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
                                     const fipsc_gguf *vocab, const fipsc_tokenizer *tok, bool overwrite,
                                     fipsc_error *err)
{
    const fipsc_llama *v = fipsc_model_llama(m);
    if (!v) return fipsc_fail(err, FIPSC_ERR_ARG, "%s is not a Llama-family model", m->arch_name);
    const fipsc_config *c = &v->cfg;
    const gguf_arch *a = llama_gguf_arch_for(c);
    if (a->post_norms) { /* llama.cpp derives Gemma-2's attention scale; the model must have that one */
        const float expect = (float)(c->n_layers == 46 ? c->dim / c->n_heads : c->head_dim);
        if (c->query_pre_attn_scalar != expect)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "%s: query_pre_attn_scalar %g is not what llama.cpp assumes for this shape (%g): the "
                              "GGUF file would compute other attention",
                              m->source_path, c->query_pre_attn_scalar, expect);
    }
    fipsc_model *fused = NULL; /* Phi-3: the file holds fused projections, as llama.cpp reads them */
    fipsc_status fst = a->fused ? fipsc_llama_fused_copy(m, &fused, err) : FIPSC_OK;
    if (fst) return fst;
    const fipsc_model *src = fused ? fused : m;
    fipsc_gguf_writer *w = fipsc_gguf_writer_new();
    if (!w) {
        fipsc_model_free(fused);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    metadata(w, m, a, type, vocab, tok);
    char **placeholder = NULL;
    fipsc_status st = vocab ? copy_vocab(w, c, vocab, err)
                      : tok ? llama_gguf_add_tokenizer(w, c, tok, err)
                            : add_placeholder_vocab(w, c, a, &placeholder, err);

    /* the tensors in the converter's order: embeddings, blocks, final norm, head */
    float **converted = calloc(2 * (size_t)src->n_tensors + 1, sizeof *converted); /* copies this file needs (two per tensor at most) */
    if (!st && !converted) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    int n_converted = 0;
    for (int pass = 0; pass < 3 && !st; pass++) {
        for (int i = 0; i < src->n_tensors && !st; i++) {
            const fipsc_tensor *t = &src->tensors[i];
            char gname[160];
            bool rope;
            int block;
            if (!llama_gguf_translate_name(t->name, true, a, c->n_layers, gname, sizeof gname, &rope, &block)) {
                st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "tensor '%s' has no GGUF name", t->name);
                break;
            }
            const int want_pass = strcmp(t->name, "model.embed_tokens.weight") == 0 ? 0 : block >= 0 ? 1 : 2;
            if (want_pass != pass) continue;
            const float *data = t->data;
            const int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
            if (t->half) { /* a 16-bit weight: a float32 copy for the writer's conversion */
                float *f = malloc((size_t)(rows * cols) * sizeof *f);
                if (!f) {
                    st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for tensor '%s'", t->name);
                    break;
                }
                fipsc_convert16_to_f32(t->source_dtype, t->half, (size_t)(rows * cols), f);
                converted[n_converted++] = f;
                data = f;
            }
            const bool plus_one = a->gemma && llama_gguf_is_norm(t->name); /* GGUF holds 1 + w */
            if (plus_one || rope) { /* a converted copy, kept until the file is written */
                float *p = malloc((size_t)(rows * cols) * sizeof *p);
                if (!p) {
                    st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for tensor '%s'", t->name);
                    break;
                }
                if (rope) llama_gguf_permute_rope_rows(p, data, rows, (size_t)cols * sizeof *p, c->head_dim, true);
                else
                    for (int64_t j = 0; j < rows * cols; j++) p[j] = 1.0f + data[j];
                converted[n_converted++] = p;
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
            llama_gguf_llama3_rope_factors(c, rope_factors);
            const int64_t ne[1] = {c->head_dim / 2};
            fipsc_gguf_add_tensor(w, "rope_freqs.weight", 1, ne, FIPSC_GGML_F32, rope_factors);
        }
    }
    if (!st) st = fipsc_gguf_write(w, path, overwrite, err);
    free(rope_factors);
    for (int i = 0; i < n_converted; i++) free(converted[i]);
    free(converted);
    for (int i = 0; placeholder && i < c->vocab_size; i++) free(placeholder[i]);
    free(placeholder);
    fipsc_gguf_writer_free(w);
    fipsc_model_free(fused);
    return st;
}
