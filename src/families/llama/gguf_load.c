/* Reading GGUF files of the Llama family's architectures (see gguf_names.c for the mapping and
 * families/llama/gguf.h for the interface). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/fused.h"
#include "families/llama/gguf.h"
#include "families/llama/gguf_internal.h"
#include "families/llama/hf.h"
#include "families/llama/llama.h"
#include "formats/gguf.h"
#include "model/model.h"

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
    if (!a->post_norms && !a->fused && fipsc_gguf_find(g, full))
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: %s is set; fipsc's %s runtime has no sliding window",
                          g->origin, full, a->name);
    return FIPSC_OK;
}


/* RoPE scaling: rope.scaling.type none, linear (with rope.scaling.factor) or yarn (factor,
 * original_context_length, yarn_beta_fast/slow with llama.cpp's defaults 32 and 1; an attention
 * factor other than llama.cpp's default is refused); a rope_freqs.weight
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
    } else if (strcmp(type, "yarn") == 0) {
        double factor, fast, slow, attn;
        int64_t orig = 0;
        snprintf(key, sizeof key, "%s.rope.scaling.factor", a->name);
        if ((st = fipsc_gguf_get_float(g, key, false, 1.0, &factor, err))) return st;
        snprintf(key, sizeof key, "%s.rope.scaling.yarn_beta_fast", a->name);
        if ((st = fipsc_gguf_get_float(g, key, true, 32.0, &fast, err))) return st;
        snprintf(key, sizeof key, "%s.rope.scaling.yarn_beta_slow", a->name);
        if ((st = fipsc_gguf_get_float(g, key, true, 1.0, &slow, err))) return st;
        snprintf(key, sizeof key, "%s.rope.scaling.yarn_attn_factor", a->name);
        if ((st = fipsc_gguf_get_float(g, key, true, 1.0, &attn, err))) return st;
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", a->name);
        if ((st = fipsc_gguf_get_int(g, key, false, 0, &orig, err))) return st;
        if (!(factor >= 1 && factor < 1e6) || !(fast > slow && slow > 0 && fast < 1e6) || orig < 1 || orig > (1 << 30))
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: YaRN parameters out of range (factor %g, betas %g/%g, "
                              "original context %lld)", g->origin, factor, fast, slow, (long long)orig);
        if (attn != 1.0)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: a YaRN attention factor of %g is not supported", g->origin, attn);
        c->rope_scaling = FIPSC_ROPE_YARN;
        c->rope_factor = (float)factor;
        c->rope_beta_fast = (float)fast;
        c->rope_beta_slow = (float)slow;
        c->rope_original_context = (int)orig;
    } else if (strcmp(type, "none") != 0) {
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: RoPE scaling '%s' is not supported (fipsc computes linear, yarn and Llama 3's llama3)",
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
        llama_gguf_llama3_rope_factors(&t3, want);
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
    c->fused_proj = a->fused;
    if ((st = rope_from_gguf(g, a, c, err))) return st;
    if (a->fused) { /* Phi-3: a window on every layer when the file names one (transformers' semantics) */
        c->window_all_layers = true;
        return key_int(g, a->name, "attention.sliding_window", true, 0, 0, 1 << 30, &c->sliding_window, err);
    }
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
 * to float32 (q/k rows back into the Hugging Face order when the architecture permutes them),
 * except F32 and (with keep16) F16/BF16 tensors that need no change, which are borrowed from the
 * map when `borrow`; with shapes_only, its name, shape and dtype alone (no data). */
static fipsc_status add_from_gguf(fipsc_model *m, const fipsc_gguf *g, const fipsc_gguf_tensor *t, const char *hfname,
                                  bool rope, int head_dim, float offset, bool borrow, bool keep16, bool shapes_only,
                                  fipsc_error *err)
{
    const int64_t numel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if (t->n_dims > 2)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s: tensor '%s' has %d dimensions (expected 1 or 2)", g->origin,
                          t->name, t->n_dims);
    fipsc_dtype src = t->type == FIPSC_GGML_F16 ? FIPSC_F16 : t->type == FIPSC_GGML_BF16 ? FIPSC_BF16 : FIPSC_F32;
    const int64_t rows = t->n_dims == 2 ? t->ne[1] : t->ne[0], cols = t->n_dims == 2 ? t->ne[0] : 1;
    int64_t shape[2] = {rows, cols};
    if (shapes_only) return fipsc_model_add_tensor(m, hfname, t->n_dims, shape, NULL, false, src, err);
    if (rope && rows % head_dim)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s: tensor '%s' has %lld rows, not whole heads of %d", g->origin,
                          t->name, (long long)rows, head_dim);
    if (borrow && t->type == FIPSC_GGML_F32 && !rope && offset == 0.0f && (uintptr_t)t->data % sizeof(float) == 0)
        /* used in place from the read-only map, which the model keeps (no copy, no memory) */
        return fipsc_model_add_tensor(m, hfname, t->n_dims, shape, (float *)(uintptr_t)t->data, false, FIPSC_F32, err);
    if (borrow && keep16 && src != FIPSC_F32 && offset == 0.0f && (uintptr_t)t->data % sizeof(uint16_t) == 0) {
        /* F16/BF16 kept as stored (src/model/model.h), in place — or, for q/k, rows permuted into
         * a 16-bit copy; checked for NaN/Inf with the model */
        if (!rope)
            return fipsc_model_add_tensor16(m, hfname, t->n_dims, shape, (uint16_t *)(uintptr_t)t->data, false, src, err);
        uint16_t *p = malloc((size_t)(numel ? numel : 1) * sizeof *p);
        if (!p) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for tensor '%s'", g->origin, t->name);
        llama_gguf_permute_rope_rows(p, t->data, rows, (size_t)cols * sizeof *p, head_dim, false);
        return fipsc_model_add_tensor16(m, hfname, t->n_dims, shape, p, true, src, err);
    }
    float *data = malloc((size_t)(numel ? numel : 1) * sizeof *data);
    if (!data) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for tensor '%s'", g->origin, t->name);
    fipsc_status st = fipsc_gguf_tensor_to_f32(g, t, data, err);
    for (int64_t i = 0; offset != 0.0f && i < numel; i++) data[i] += offset;
    if (!st && rope) {
        float *p = malloc((size_t)(numel ? numel : 1) * sizeof *p);
        if (!p) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for tensor '%s'", g->origin, t->name);
        else {
            llama_gguf_permute_rope_rows(p, data, rows, (size_t)cols * sizeof *p, head_dim, false);
            free(data);
            data = p;
        }
    }
    if (st) {
        free(data);
        return st;
    }
    return fipsc_model_add_tensor(m, hfname, t->n_dims, shape, data, true, src, err);
}

/* Every GGUF tensor must be one of the architecture's; each becomes its Hugging Face tensor:
 * F32, F16 and BF16 tensors that need no change are borrowed from the file's map when `borrow`
 * (the model then keeps the file; fused Phi-3 files, split at load, excepted), the others are
 * converted into float32 copies. */
static fipsc_status load_tensors(fipsc_model *m, const fipsc_gguf *g, const gguf_arch *a, bool borrow,
                                 bool shapes_only, fipsc_error *err)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const fipsc_gguf_tensor *t = &g->tensors[i];
        if (strcmp(t->name, "rope_freqs.weight") == 0) continue; /* read into the configuration */
        char hf[160] = "";
        bool rope;
        int block;
        if (!llama_gguf_translate_name(t->name, false, a, c->n_layers, hf, sizeof hf, &rope, &block)) hf[0] = 0;
        if (!hf[0] || !fipsc_hf_llama_is_tensor(hf, c))
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "%s: tensor '%s' is not one of the %s architecture's tensors that fipsc computes",
                              g->origin, t->name, a->name);
        fipsc_status st = add_from_gguf(m, g, t, hf, rope, c->head_dim,
                                        a->gemma && llama_gguf_is_norm(hf) ? -1.0f : 0.0f, borrow, !a->fused,
                                        shapes_only, err);
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
    if (fipsc_gguf_get_string(g, "general.architecture", arch, sizeof arch, why) == FIPSC_OK && llama_gguf_arch_named(arch))
        p = FIPSC_PROBE_YES;
    fipsc_gguf_close(g);
    return p;
}

/* Loads the parsed file g (closed here, or kept by the model when it borrows its F32 tensors);
 * with shapes_only, names and shapes alone (fipsc_family.load_shapes; fused files load whole). */
static fipsc_status load_parsed(fipsc_gguf *g, bool borrow, bool shapes_only, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    char arch[64];
    const gguf_arch *a = NULL;
    fipsc_status st = fipsc_gguf_get_string(g, "general.architecture", arch, sizeof arch, err);
    if (!st && !(a = llama_gguf_arch_named(arch)))
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                        "%s: GGUF architecture '%s' is not one fipsc reads (llama, qwen2, phi3, gemma, gemma2)", g->origin,
                        arch);
    fipsc_config cfg;
    if (!st) st = config_from_gguf(g, a, &cfg, err);
    fipsc_model *m = st ? NULL : fipsc_model_new();
    if (!st && !m) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    const fipsc_gguf *file = g; /* valid while g is open, or while the model that keeps it lives */
    if (!st) st = fipsc_model_set_source_path(m, g->origin, err);
    if (a && a->fused) shapes_only = false;
    if (!st && borrow && !shapes_only) {
        st = fipsc_model_keep(m, g, fipsc_gguf_release, err); /* released with the model (or now, on failure) */
        g = NULL;
    }
    if (!st) st = fipsc_llama_configure(m, &cfg, err);
    if (!st) st = load_tensors(m, file, a, borrow, shapes_only, err);
    if (!st && a->fused) st = fipsc_llama_split_fused(m, err);
    if (!st && !shapes_only) st = fipsc_model_check_finite(m, err);
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
    return st ? st : load_parsed(g, true, false, out, err);
}

fipsc_status fipsc_llama_gguf_load_shapes(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_gguf *g;
    fipsc_status st = fipsc_gguf_open(path, &g, err);
    return st ? st : load_parsed(g, false, true, out, err);
}

fipsc_status fipsc_llama_gguf_load_buffer(const void *bytes, size_t size, const char *name, fipsc_model **out,
                                          fipsc_error *err)
{
    *out = NULL;
    fipsc_gguf *g;
    fipsc_status st = fipsc_gguf_parse(bytes, size, name, &g, err);
    return st ? st : load_parsed(g, false, false, out, err); /* the caller's bytes may go: copy everything */
}
