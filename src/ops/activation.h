/* Elementwise activation functions and their derivatives, shared by the runtime (forward) and
 * the FiPS trainer (backward), so both compute exactly the same function. */
#ifndef FIPSC_ACTIVATION_H
#define FIPSC_ACTIVATION_H

#include <stddef.h>

#include "ops/mlp.h"

/* y[i] = act(x[i]); y may alias x. */
void fipsc_activation_apply(fipsc_activation act, const float *x, float *y, size_t n);

/* d[i] = act'(x[i]) (the derivative at the pre-activation value x). */
void fipsc_activation_derivative(fipsc_activation act, const float *x, float *d, size_t n);

/* Scalar versions (for tests and reference code). */
float fipsc_activation_value(fipsc_activation act, float x);
float fipsc_activation_slope(fipsc_activation act, float x);

#endif
