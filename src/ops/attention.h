/* Scaled dot-product attention for one head, in the two shapes fipsc's families need:
 *
 *   row    one query against n keys/values (a decoding step, or a causal prefill row):
 *            s_t = scale·(q·k_t),  a = softmax(s),  out = Σ_t a_t·v_t
 *          vectorised loops over the head, a polynomial e^x (no libm call: with small heads these
 *          loops are the whole cost of decoding).
 *   span   the tokens of one span attending to each other (an image, a sentence; or causally):
 *            P = softmax_rows(scale·Q·Kᵀ),  out = P·V
 *          two single-threaded GEMMs around a softmax with expf, as the reference frameworks
 *          compute it; P is kept for the backward, which is here too.
 *
 * Rows of q, k, v (and out) are addressed with strides, so a head is a column slice of a matrix of
 * all heads ([rows, heads·hd]), and grouped-query attention is the caller passing the shared
 * key/value head. Both kernels run on the calling thread; families spread (sequence, head) pairs
 * over OpenMP threads. */
#ifndef FIPSC_OPS_ATTENTION_H
#define FIPSC_OPS_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>

/* q [hd]; k, v: n rows of stride ld; s: scratch for n scores; out [hd]. softcap > 0 caps the
 * scores first, s_t ← softcap·tanh(s_t / softcap) (Gemma-2); 0 leaves them. */
void fipsc_attention_row(const float *q, const float *k, const float *v, int ld, int hd, int n, float scale,
                         float softcap, float *s, float *out);

/* q, k, v: len rows of stride ld; p [len, len] (written: the attention weights); out: len rows of
 * stride ldo. causal: token t attends to tokens 0..t only (p is 0 above the diagonal; a language
 * model's sequence, for its distillation's backward). */
void fipsc_attention_span(int len, int hd, float scale, bool causal, const float *q, const float *k, const float *v,
                          int ld, float *p, float *out, int ldo);

/* The gradients of fipsc_attention_span given dout (len rows of stride ldo) and its p:
 *   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),
 *   dQ = dq_scale·scale·dS·K,  dK = scale·dSᵀ·Q
 * into dq, dk, dv (len rows of stride ldg each). ds: scratch [len, len]. dq_scale carries a
 * scaling the caller applied to q before the forward (the chain rule back to its own q). A causal
 * span's p is 0 above the diagonal, which makes the same formulas its gradients. */
void fipsc_attention_span_backward(int len, int hd, float scale, float dq_scale, const float *q, const float *k,
                                   const float *v, int ld, const float *p, const float *dout, int ldo, float *ds,
                                   float *dq, float *dk, float *dv, int ldg);

/* Causal multi-head attention of a language model's pass: `rows` token rows of `batch`
 * sequences of len new tokens each (rows = batch·len, sequence-major), every row attending to the
 * keys/values of its own sequence up to its own position:
 *   row r is token i = r % len of sequence b = r / len, at position p = start_pos + i;
 *   query head h of row r is at q + r·q_stride + h·hd; it reads key/value head
 *   g = h / (heads / kv_heads) (grouped-query attention; kv_heads = heads: plain multi-head) at
 *   positions t = 0..p, k/v + b·seq_stride + t·kv_stride + g·hd, and writes out + r·out_stride + h·hd;
 *   with window > 0 only the last `window` of them, t = max(0, p − window + 1)..p (sliding-window
 *   attention); softcap as in fipsc_attention_row.
 * One work item is one (row, head), computed by fipsc_attention_row on one thread; the items run on
 * OpenMP threads when there is enough work (the result is the same either way). scores: scratch of
 * omp_get_max_threads() rows of scores_stride ≥ start_pos + len floats. */
typedef struct fipsc_causal_attention {
    const float *q, *k, *v;
    float *out;
    size_t q_stride, out_stride, seq_stride;
    int kv_stride;
    int heads, kv_heads, hd, len, start_pos;
    float scale;
    int window;    /* 0: every position up to the row's own */
    float softcap; /* 0: none */
} fipsc_causal_attention;

void fipsc_attention_causal(const fipsc_causal_attention *a, int rows, float *scores, int scores_stride);

#endif
