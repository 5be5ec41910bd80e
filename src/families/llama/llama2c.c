/* llama2.c checkpoints (Karpathy's run.c format).
 *
 * Layout, all little-endian:
 *   header: 7 int32 = dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *           (a negative vocab_size means the classifier is stored separately, not shared)
 *   float32 arrays, layer-major inside each:
 *     token_embedding [vocab, dim]
 *     rms_att [L, dim]
 *     wq [L, dim(out), dim(in)]   wk [L, kv_dim, dim]   wv [L, kv_dim, dim]   wo [L, dim, dim]
 *     rms_ffn [L, dim]
 *     w1 [L, hidden, dim] (gate)  w2 [L, dim, hidden] (down)  w3 [L, hidden, dim] (up)
 *     rms_final [dim]
 *     freq_cis_real, freq_cis_imag [seq_len, head_size/2] each (legacy RoPE tables: skipped)
 *     wcls [vocab, dim]           only when the classifier is not shared
 *
 * Weights are renamed to Hugging Face names. run.c rotates interleaved pairs (2j, 2j+1) of each
 * head; Hugging Face rotates (j, j + head_size/2). Permuting the rows of wq and wk inside every
 * head — new row j <- old row 2j, new row j + hs/2 <- old row 2j+1 — makes the two conventions
 * compute the same attention, because q·k is unchanged when q and k are permuted alike. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "families/llama/llama.h"
#include "families/llama/llama2c.h"
#include "model/model.h"
#include "core/path.h"

/* Cursor over the float payload with bounds checking. */
typedef struct {
    const fipsc_mapped_file *mf;
    size_t offset;
} reader;

static fipsc_status take(reader *r, const char *what, size_t n_floats, const float **out,
                         fipsc_error *err)
{
    size_t bytes = n_floats * sizeof(float);
    if (r->offset > r->mf->size || r->mf->size - r->offset < bytes)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: truncated: %s needs %zu bytes at offset %zu but the file has %zu",
                          r->mf->path, what, bytes, r->offset, r->mf->size);
    *out = (const float *)(r->mf->data + r->offset);
    r->offset += bytes;
    return FIPSC_OK;
}

/* Copies a [rows, cols] matrix (optionally permuting rows for RoPE) into a new owned tensor. */
static fipsc_status add_matrix(fipsc_model *m, const char *name, const float *src, int64_t rows,
                               int64_t cols, int rope_head_size, fipsc_error *err)
{
    size_t n = (size_t)(rows * cols);
    float *dst = malloc((n ? n : 1) * sizeof *dst);
    if (!dst) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for tensor '%s'", name);
    if (rope_head_size == 0) {
        memcpy(dst, src, n * sizeof *dst);
    } else {
        int hs = rope_head_size, half = hs / 2;
        for (int64_t h = 0; h < rows / hs; h++)
            for (int j = 0; j < half; j++) {
                memcpy(dst + (h * hs + j) * cols, src + (h * hs + 2 * j) * cols, (size_t)cols * sizeof *dst);
                memcpy(dst + (h * hs + half + j) * cols, src + (h * hs + 2 * j + 1) * cols,
                       (size_t)cols * sizeof *dst);
            }
    }
    int64_t shape[2] = {rows, cols};
    return fipsc_model_add_tensor(m, name, cols ? 2 : 1, shape, dst, true, FIPSC_F32, err);
}

static fipsc_status add_vector(fipsc_model *m, const char *name, const float *src, int64_t n,
                               fipsc_error *err)
{
    float *dst = malloc((size_t)n * sizeof *dst);
    if (!dst) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for tensor '%s'", name);
    memcpy(dst, src, (size_t)n * sizeof *dst);
    return fipsc_model_add_tensor(m, name, 1, &n, dst, true, FIPSC_F32, err);
}

static fipsc_status load_weights(fipsc_model *m, const fipsc_mapped_file *mf, bool shared_cls,
                                 fipsc_error *err)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    const int64_t L = c->n_layers, dim = c->dim, hid = c->hidden_dim, hs = c->head_dim;
    const int64_t kv_dim = (int64_t)c->n_kv_heads * hs, q_dim = (int64_t)c->n_heads * hs;
    reader r = {mf, 7 * sizeof(int32_t)};
    const float *emb = NULL, *rms_att = NULL, *wq = NULL, *wk = NULL, *wv = NULL, *wo = NULL,
                *rms_ffn = NULL, *w1 = NULL, *w2 = NULL, *w3 = NULL, *rms_final = NULL, *rope = NULL,
                *wcls = NULL;
    fipsc_status st;
    if ((st = take(&r, "token_embedding_table", (size_t)(c->vocab_size * dim), &emb, err)) ||
        (st = take(&r, "rms_att_weight", (size_t)(L * dim), &rms_att, err)) ||
        (st = take(&r, "wq", (size_t)(L * q_dim * dim), &wq, err)) ||
        (st = take(&r, "wk", (size_t)(L * kv_dim * dim), &wk, err)) ||
        (st = take(&r, "wv", (size_t)(L * kv_dim * dim), &wv, err)) ||
        (st = take(&r, "wo", (size_t)(L * dim * q_dim), &wo, err)) ||
        (st = take(&r, "rms_ffn_weight", (size_t)(L * dim), &rms_ffn, err)) ||
        (st = take(&r, "w1", (size_t)(L * hid * dim), &w1, err)) ||
        (st = take(&r, "w2", (size_t)(L * dim * hid), &w2, err)) ||
        (st = take(&r, "w3", (size_t)(L * hid * dim), &w3, err)) ||
        (st = take(&r, "rms_final_weight", (size_t)dim, &rms_final, err)) ||
        (st = take(&r, "freq_cis tables", (size_t)(c->max_seq_len * hs), &rope, err)))
        return st;
    wcls = emb;
    if (!shared_cls && (st = take(&r, "wcls", (size_t)(c->vocab_size * dim), &wcls, err))) return st;
    if (r.offset != mf->size)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: %zu unexpected trailing bytes after the weights (header says dim %d, "
                          "hidden %d, %d layers, vocab %d%s)",
                          mf->path, mf->size - r.offset, c->dim, c->hidden_dim, c->n_layers,
                          c->vocab_size, shared_cls ? ", shared classifier" : "");

    if ((st = add_matrix(m, "model.embed_tokens.weight", emb, c->vocab_size, dim, 0, err))) return st;
    char name[128];
    for (int64_t l = 0; l < L; l++) {
#define LAYER_NAME(suffix) (snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, suffix), name)
        if ((st = add_vector(m, LAYER_NAME("input_layernorm.weight"), rms_att + l * dim, dim, err)) ||
            (st = add_matrix(m, LAYER_NAME("self_attn.q_proj.weight"), wq + l * q_dim * dim, q_dim, dim, (int)hs, err)) ||
            (st = add_matrix(m, LAYER_NAME("self_attn.k_proj.weight"), wk + l * kv_dim * dim, kv_dim, dim, (int)hs, err)) ||
            (st = add_matrix(m, LAYER_NAME("self_attn.v_proj.weight"), wv + l * kv_dim * dim, kv_dim, dim, 0, err)) ||
            (st = add_matrix(m, LAYER_NAME("self_attn.o_proj.weight"), wo + l * dim * q_dim, dim, q_dim, 0, err)) ||
            (st = add_vector(m, LAYER_NAME("post_attention_layernorm.weight"), rms_ffn + l * dim, dim, err)) ||
            (st = add_matrix(m, LAYER_NAME("mlp.gate_proj.weight"), w1 + l * hid * dim, hid, dim, 0, err)) ||
            (st = add_matrix(m, LAYER_NAME("mlp.down_proj.weight"), w2 + l * dim * hid, dim, hid, 0, err)) ||
            (st = add_matrix(m, LAYER_NAME("mlp.up_proj.weight"), w3 + l * hid * dim, hid, dim, 0, err)))
            return st;
#undef LAYER_NAME
    }
    if ((st = add_vector(m, "model.norm.weight", rms_final, dim, err))) return st;
    if (!shared_cls && (st = add_matrix(m, "lm_head.weight", wcls, c->vocab_size, dim, 0, err))) return st;
    return FIPSC_OK;
}

/* Parses a whole llama2.c file held in mf (mapped or borrowed); the weights are copied, so mf
 * may go away afterwards. */
static fipsc_status load_from_bytes(const fipsc_mapped_file *mf, fipsc_model **out, fipsc_error *err)
{
    const char *path = mf->path;
    *out = NULL;
    fipsc_status st;
    if (mf->size < 7 * sizeof(int32_t))
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: truncated: %zu bytes, shorter than the 28-byte llama2.c header", path,
                          mf->size);
    int32_t h[7];
    memcpy(h, mf->data, sizeof h);
    int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4], seq = h[6];
    bool shared_cls = h[5] > 0;
    int vocab = h[5] == INT32_MIN ? 0 : h[5] < 0 ? -h[5] : h[5]; /* -INT32_MIN overflows */
    /* Bounds keep every size product far inside int64 and reject files that are not llama2.c. */
    const int limit = 1 << 20;
    if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kv_heads <= 0 || vocab <= 0 ||
        seq <= 0 || dim > limit || hidden > limit || layers > 4096 || heads > dim ||
        kv_heads > heads || vocab > (1 << 24) || seq > limit || dim % heads != 0 ||
        heads % kv_heads != 0 || (dim / heads) % 2 != 0 || h[5] == INT32_MIN) {
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: not a valid llama2.c header (dim %d, hidden %d, layers %d, heads %d, "
                          "kv_heads %d, vocab %d, seq_len %d)",
                          path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    }
    fipsc_model *m = fipsc_model_new();
    if (!m) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    fipsc_config cfg = {0}, *c = &cfg;
    snprintf(c->arch_name, sizeof c->arch_name, "llama2.c");
    c->dim = dim;
    c->hidden_dim = hidden;
    c->n_layers = layers;
    c->n_heads = heads;
    c->n_kv_heads = kv_heads;
    c->head_dim = dim / heads;
    c->vocab_size = vocab;
    c->max_seq_len = seq;
    c->norm_eps = 1e-5f;       /* run.c's rmsnorm */
    c->rope_theta = 10000.0f;  /* run.c's RoPE base */
    c->tie_embeddings = shared_cls;
    c->qkv_bias = false;
    c->bos_token = 1;
    c->eos_token = 2;
    st = fipsc_llama_configure(m, c, err);
    if (!st) st = fipsc_model_set_source_path(m, path, err);
    if (!st) st = load_weights(m, mf, shared_cls, err); /* copies (q/k need permuting anyway; 1 copy total) */
    if (!st) st = fipsc_model_check_finite(m, err);
    if (!st) st = fipsc_llama_bind(m, err);
    if (st) {
        fipsc_model_free(m);
        return st;
    }
    *out = m;
    return FIPSC_OK;
}

fipsc_status fipsc_load_llama2c(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_mapped_file *mf;
    fipsc_status st = fipsc_map_file(path, &mf, err);
    if (st) return st;
    st = load_from_bytes(mf, out, err);
    fipsc_unmap_file(mf);
    return st;
}

fipsc_status fipsc_load_llama2c_buffer(const void *bytes, size_t size, const char *name,
                                       fipsc_model **out, fipsc_error *err)
{
    fipsc_mapped_file borrowed = {.data = bytes, .size = size};
    fipsc_status st = fipsc_path_format(borrowed.path, sizeof borrowed.path, err, "%s", name);
    if (st) return st;
    return load_from_bytes(&borrowed, out, err);
}
