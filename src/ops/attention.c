/* Attention for one head: the row and span kernels (see src/ops/attention.h). */
#include "ops/attention.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

/* e^x for the softmax's x <= 0, in a form the compiler vectorises (glibc's expf is a scalar
 * call, and with head_dim 8 it was a third of the attention time): e^x = 2^n·e^r with
 * n = round(x·log2 e) and r = x − n·ln 2 (Cody–Waite split of ln 2), e^r by Cephes' polynomial
 * for |r| <= ln2/2. Measured relative error against exp() in double: below 1e-7 (about one ulp)
 * over [−87, 0]. x is clamped to −87, where e^x is still a normal float; in a softmax such terms
 * are negligible against the maximum's e^0 = 1. The clamp and the 2^n scale work on the bit
 * patterns (for x <= 0 a larger pattern is a more negative number) because float comparisons
 * may trap and so block vectorisation. */
static inline float exp_nonpositive(float x)
{
    const uint32_t minus_87 = 0xC2AE0000u;
    const float shifter = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer ... */
    const int32_t shifter_bits = 0x4B400000; /* ... which then sits in the low mantissa bits */
    uint32_t xb;
    memcpy(&xb, &x, sizeof xb);
    xb = xb > minus_87 ? minus_87 : xb;
    memcpy(&x, &xb, sizeof x);
    float z = x * 1.44269504088896341f + shifter, fn = z - shifter;
    int32_t zi;
    memcpy(&zi, &z, sizeof zi);
    int32_t n = zi - shifter_bits;
    float r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    int32_t scale_bits = (n + 127) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    return (p * r * r + r + 1.0f) * scale;
}

/* One query head over positions 0..p (keys/values kt, vt at stride kv_dim):
 *   s_t = q·k_t / sqrt(head_dim),  a = softmax(s),  out = Σ_t a_t·v_t.
 * s is scratch for p + 1 scores. Inlined with a constant hd for the usual head sizes, so the
 * per-position loops over hd are unrolled and vectorised without remainder code: with small
 * heads (stories260K: 8) those loops are the whole cost of decoding. */
static inline __attribute__((always_inline)) void row_impl(const float *q, const float *k, const float *v,
                                                           int kv_dim, const int hd, int p, float scale,
                                                           float softcap, float *s, float *out)
{
    float mx = -INFINITY;
    for (int t = 0; t <= p; t++) {
        const float *kt = k + (size_t)t * kv_dim;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < hd; j++) dot += q[j] * kt[j];
        s[t] = dot * scale;
        if (softcap > 0.0f) s[t] = softcap * tanhf(s[t] / softcap);
        mx = s[t] > mx ? s[t] : mx;
    }
#pragma omp simd
    for (int t = 0; t <= p; t++) s[t] = exp_nonpositive(s[t] - mx);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int t = 0; t <= p; t++) sum += s[t];
    float inv = 1.0f / sum;
    for (int j = 0; j < hd; j++) out[j] = 0.0f;
    for (int t = 0; t <= p; t++) {
        const float *vt = v + (size_t)t * kv_dim;
        float a = s[t] * inv;
#pragma omp simd
        for (int j = 0; j < hd; j++) out[j] += a * vt[j];
    }
}

void fipsc_attention_row(const float *q, const float *k, const float *v, int ld, int hd, int n, float scale,
                         float softcap, float *s, float *out)
{
    const int p = n - 1; /* the last position attended to */
    switch (hd) {
    case 8: row_impl(q, k, v, ld, 8, p, scale, softcap, s, out); break;
    case 16: row_impl(q, k, v, ld, 16, p, scale, softcap, s, out); break;
    case 32: row_impl(q, k, v, ld, 32, p, scale, softcap, s, out); break;
    case 64: row_impl(q, k, v, ld, 64, p, scale, softcap, s, out); break;
    case 128: row_impl(q, k, v, ld, 128, p, scale, softcap, s, out); break;
    default: row_impl(q, k, v, ld, hd, p, scale, softcap, s, out); break;
    }
}

void fipsc_attention_span(int len, int hd, float scale, bool causal, const float *q, const float *k, const float *v,
                          int ld, float *p, float *out, int ldo)
{
    /* p = scale·q·kᵀ, then softmax by row (max subtracted first; causal: over s ≤ t, the rest 0),
     * then out = p·v */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hd, scale, q, ld, k, ld, 0.0f, p, len);
    for (int t = 0; t < len; t++) {
        float *pt = p + (size_t)t * len, mx = -INFINITY, sum = 0.0f;
        const int n = causal ? t + 1 : len;
        for (int s = 0; s < n; s++) mx = pt[s] > mx ? pt[s] : mx;
        for (int s = 0; s < n; s++) sum += (pt[s] = expf(pt[s] - mx));
        const float inv = 1.0f / sum;
        for (int s = 0; s < n; s++) pt[s] *= inv;
        for (int s = n; s < len; s++) pt[s] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hd, len, 1.0f, p, len, v, ld, 0.0f, out, ldo);
}

void fipsc_attention_span_backward(int len, int hd, float scale, float dq_scale, const float *q, const float *k,
                                   const float *v, int ld, const float *p, const float *dout, int ldo, float *ds,
                                   float *dq, float *dk, float *dv, int ldg)
{
    /* dv = Pᵀ·dO;  dP = dO·vᵀ */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, hd, len, 1.0f, p, len, dout, ldo, 0.0f, dv, ldg);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hd, 1.0f, dout, ldo, v, ld, 0.0f, ds, len);
    /* dS = P ⊙ (dP − rowsum(dP ⊙ P)): the softmax's Jacobian, row by row */
    for (int t = 0; t < len; t++) {
        float *dst = ds + (size_t)t * len;
        const float *pt = p + (size_t)t * len;
        float dot = 0.0f;
        for (int s = 0; s < len; s++) dot += dst[s] * pt[s];
        for (int s = 0; s < len; s++) dst[s] = pt[s] * (dst[s] - dot);
    }
    /* dq = dq_scale·scale·dS·k;  dk = scale·dSᵀ·q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hd, len, dq_scale * scale, ds, len, k, ld, 0.0f, dq,
                ldg);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, hd, len, scale, ds, len, q, ld, 0.0f, dk, ldg);
}

/* Below this many multiply-adds the items run on the calling thread: entering a parallel region
 * costs about a microsecond, more than a decoding step of a small model. */
#define CAUSAL_PARALLEL_WORK 32768LL

static void causal_item(const fipsc_causal_attention *a, long long item, float *scores)
{
    const int r = (int)(item / a->heads), h = (int)(item % a->heads), g = h / (a->heads / a->kv_heads);
    const int pos = a->start_pos + r % a->len, first = a->window > 0 && pos >= a->window ? pos - a->window + 1 : 0;
    const size_t kv_off = (size_t)(r / a->len) * a->seq_stride + (size_t)first * a->kv_stride + (size_t)g * a->hd;
    fipsc_attention_row(a->q + (size_t)r * a->q_stride + (size_t)h * a->hd, a->k + kv_off, a->v + kv_off, a->kv_stride,
                        a->hd, pos - first + 1, a->scale, a->softcap, scores,
                        a->out + (size_t)r * a->out_stride + (size_t)h * a->hd);
}

void fipsc_attention_causal(const fipsc_causal_attention *a, int rows, float *scores, int scores_stride)
{
    const long long items = (long long)rows * a->heads;
    if (items * (a->start_pos + a->len) * a->hd > CAUSAL_PARALLEL_WORK) {
#pragma omp parallel for schedule(dynamic, 4)
        for (long long it = 0; it < items; it++)
            causal_item(a, it, scores + (size_t)omp_get_thread_num() * scores_stride);
    } else {
        for (long long it = 0; it < items; it++) causal_item(a, it, scores);
    }
}
