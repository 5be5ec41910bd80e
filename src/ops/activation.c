/* Activations and derivatives (see src/ops/activation.h).
 *
 *   silu(x)      = x·σ(x),                     silu'(x) = σ(x)·(1 + x·(1 − σ(x)))
 *   gelu(x)      = ½x(1 + erf(x/√2)),          gelu'(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π)
 *   gelu_tanh(x) = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³)
 *                  gelu_tanh'(x) = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
 *   relu(x)      = max(x, 0),                  relu'(x) = [x > 0]
 */
#include "ops/activation.h"

#include <math.h>

static const float kSqrt2OverPi = 0.7978845608028654f;
static const float kInvSqrt2 = 0.7071067811865476f;
static const float kInvSqrt2Pi = 0.3989422804014327f;

float fipsc_activation_value(fipsc_activation act, float x)
{
    switch (act) {
    case FIPSC_ACT_SILU: return x / (1.0f + expf(-x));
    case FIPSC_ACT_GELU: return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
    case FIPSC_ACT_GELU_TANH: {
        float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case FIPSC_ACT_RELU: return x > 0.0f ? x : 0.0f;
    }
    return x;
}

float fipsc_activation_slope(fipsc_activation act, float x)
{
    switch (act) {
    case FIPSC_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case FIPSC_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * kInvSqrt2));
        return cdf + x * kInvSqrt2Pi * expf(-0.5f * x * x);
    }
    case FIPSC_ACT_GELU_TANH: {
        float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
        float t = tanhf(u);
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
    }
    case FIPSC_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    }
    return 1.0f;
}

void fipsc_activation_apply(fipsc_activation act, const float *x, float *y, size_t n)
{
    /* One switch outside the loop so each loop body is a simple vectorisable expression. */
    switch (act) {
    case FIPSC_ACT_SILU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    case FIPSC_ACT_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    default:
        for (size_t i = 0; i < n; i++) y[i] = fipsc_activation_value(act, x[i]);
        break;
    }
}

void fipsc_activation_derivative(fipsc_activation act, const float *x, float *d, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = fipsc_activation_slope(act, x[i]);
}
