/* AdamW (Loshchilov & Hutter; torch.optim.AdamW): Adam moments with bias correction, and weight
 * decay applied to the parameter directly instead of through the gradient. Masked entries of V
 * are held at zero together with their moments. */
#include <math.h>

#include "fips/fips_internal.h"

void fipsc_adamw_step(const fipsc_adamw *o, int t, float lr, int64_t rows, int64_t cols,
                      float *p, const uint64_t *mask, int64_t mask_at, int64_t ld_p, float *m, float *v,
                      int64_t ld_mv, const float *g, int64_t ld_g)
{
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    const float bc1 = 1.0f - (float)pow((double)b1, (double)t);
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow((double)b2, (double)t)));
    const float step = lr / bc1;
    const float decay = 1.0f - lr * o->weight_decay;
#pragma omp parallel for schedule(static) if (rows * cols >= FIPS_PARALLEL_MIN)
    for (int64_t i = 0; i < rows; i++) {
        float *pi = p + i * ld_p, *mi = m + i * ld_mv, *vi = v + i * ld_mv;
        const float *gi = g + i * ld_g;
        const int64_t k0 = mask_at + i * ld_p;
        for (int64_t j = 0; j < cols; j++) {
            if (mask && !((mask[(k0 + j) >> 6] >> ((k0 + j) & 63)) & 1)) {
                pi[j] = mi[j] = vi[j] = 0.0f;
                continue;
            }
            float gj = gi[j];
            float mj = b1 * mi[j] + (1.0f - b1) * gj;
            float vj = b2 * vi[j] + (1.0f - b2) * gj * gj;
            mi[j] = mj;
            vi[j] = vj;
            /* √(v/(1−β2^t)) + eps, as torch computes the denominator */
            pi[j] = pi[j] * decay - step * mj / (sqrtf(vj) * inv_sqrt_bc2 + eps);
        }
    }
}
