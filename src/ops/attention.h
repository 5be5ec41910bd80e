/* Scaled dot-product attention for one head, in the two shapes fipsc's families need:
 *
 *   row    one query against n keys/values (a decoding step, or a causal prefill row):
 *            s_t = scale·(q·k_t),  a = softmax(s),  out = Σ_t a_t·v_t
 *          vectorised loops over the head, a polynomial e^x (no libm call: with small heads these
 *          loops are the whole cost of decoding).
 *   span   the tokens of one span attending to each other (an image, a sentence; no mask):
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

/* q [hd]; k, v: n rows of stride ld; s: scratch for n scores; out [hd]. */
void fipsc_attention_row(const float *q, const float *k, const float *v, int ld, int hd, int n, float scale, float *s,
                         float *out);

/* q, k, v: len rows of stride ld; p [len, len] (written: the attention weights); out: len rows of
 * stride ldo. */
void fipsc_attention_span(int len, int hd, float scale, const float *q, const float *k, const float *v, int ld,
                          float *p, float *out, int ldo);

/* The gradients of fipsc_attention_span given dout (len rows of stride ldo) and its p:
 *   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),
 *   dQ = dq_scale·scale·dS·K,  dK = scale·dSᵀ·Q
 * into dq, dk, dv (len rows of stride ldg each). ds: scratch [len, len]. dq_scale carries a
 * scaling the caller applied to q before the forward (the chain rule back to its own q). */
void fipsc_attention_span_backward(int len, int hd, float scale, float dq_scale, const float *q, const float *k,
                                   const float *v, int ld, const float *p, const float *dout, int ldo, float *ds,
                                   float *dq, float *dk, float *dv, int ldg);

#endif
