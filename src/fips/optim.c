/* AdamW (Loshchilov & Hutter; torch.optim.AdamW): Adam moments with bias correction, and weight
 * decay applied to the parameter directly instead of through the gradient. Masked entries of V
 * are held at zero together with their moments.
 *
 * BF16 moments (fipsc_adamw_step_bf16) halve the largest part of training's memory, the two
 * moments of every entry of V (8·r·P bytes in float32). Rounded to nearest, the second moment
 * would stall: v ← 0.999·v + 0.001·g² changes v by 0.1 %, below bfloat16's half-ulp (0.2–0.4 %).
 * So both moments are stored by stochastic rounding — up with probability equal to the fraction
 * the truncation drops, unbiased in expectation — with 16 random bits per value from a
 * counter-based hash of (seed, step, entry): deterministic, and the same on any thread count.
 * The arithmetic stays float32. */
#include <math.h>

#include "core/rng.h"
#include "core/tensor.h"
#include "fips/fips_internal.h"

typedef struct adamw_consts {
    float b1, b2, eps, step, decay, inv_sqrt_bc2;
} adamw_consts;

static adamw_consts consts_at(const fipsc_adamw *o, int t, float lr)
{
    const float bc1 = 1.0f - (float)pow((double)o->beta1, (double)t);
    return (adamw_consts){o->beta1, o->beta2, o->eps, lr / bc1, 1.0f - lr * o->weight_decay,
                          (float)(1.0 / sqrt(1.0 - pow((double)o->beta2, (double)t)))};
}

/* One kept entry: the moments *m, *v updated from gradient g, then the parameter. */
static inline float adamw_entry(const adamw_consts *c, float p, float *m, float *v, float g)
{
    *m = c->b1 * *m + (1.0f - c->b1) * g;
    *v = c->b2 * *v + (1.0f - c->b2) * g * g;
    /* √(v/(1−β2^t)) + eps, as torch computes the denominator */
    return p * c->decay - c->step * *m / (sqrtf(*v) * c->inv_sqrt_bc2 + c->eps);
}

static inline bool masked_out(const uint64_t *mask, int64_t e)
{
    return mask && !((mask[e >> 6] >> (e & 63)) & 1);
}

void fipsc_adamw_step(const fipsc_adamw *o, int t, float lr, int64_t rows, int64_t cols,
                      float *p, const uint64_t *mask, int64_t mask_at, int64_t ld_p, float *m, float *v,
                      int64_t ld_mv, const float *g, int64_t ld_g)
{
    const adamw_consts c = consts_at(o, t, lr);
#pragma omp parallel for schedule(static) if (rows * cols >= FIPS_PARALLEL_MIN)
    for (int64_t i = 0; i < rows; i++) {
        float *pi = p + i * ld_p, *mi = m + i * ld_mv, *vi = v + i * ld_mv;
        const float *gi = g + i * ld_g;
        const int64_t k0 = mask_at + i * ld_p;
        for (int64_t j = 0; j < cols; j++) {
            if (masked_out(mask, k0 + j)) {
                pi[j] = mi[j] = vi[j] = 0.0f;
                continue;
            }
            pi[j] = adamw_entry(&c, pi[j], &mi[j], &vi[j], gi[j]);
        }
    }
}

/* x rounded to bfloat16 up with probability (dropped bits)/2¹⁶ given 16 uniform random bits. Finite
 * x only (a moment that overflows float32 has already stopped training as a divergence). */
static inline uint16_t bf16_stochastic(float x, uint32_t random16)
{
    union { float f; uint32_t u; } b = {.f = x};
    return (uint16_t)((b.u + (random16 & 0xffffu)) >> 16);
}

/* One kept entry with bfloat16 moments *m, *v: widened, updated as adamw_entry does, stored back
 * by stochastic rounding with the random bits of (step_seed, entry e); returns the parameter. */
static inline float adamw_entry_bf16(const adamw_consts *c, float p, uint16_t *m, uint16_t *v, float g,
                                     uint64_t step_seed, int64_t e)
{
    float mf = fipsc_bf16_to_f32(*m), vf = fipsc_bf16_to_f32(*v);
    p = adamw_entry(c, p, &mf, &vf, g);
    const uint64_t bits = fipsc_seed_derive(step_seed, (uint64_t)e);
    *m = bf16_stochastic(mf, (uint32_t)bits);
    *v = bf16_stochastic(vf, (uint32_t)(bits >> 16));
    return p;
}

void fipsc_adamw_step_bf16(const fipsc_adamw *o, int t, float lr, int64_t rows, int64_t cols, float *p,
                           const uint64_t *mask, int64_t mask_at, int64_t ld_p, uint16_t *m, uint16_t *v,
                           int64_t ld_mv, const float *g, int64_t ld_g, uint64_t seed)
{
    const adamw_consts c = consts_at(o, t, lr);
    const uint64_t step_seed = fipsc_seed_derive(seed, (uint64_t)t);
#pragma omp parallel for schedule(static) if (rows * cols >= FIPS_PARALLEL_MIN)
    for (int64_t i = 0; i < rows; i++) {
        float *pi = p + i * ld_p;
        uint16_t *mi = m + i * ld_mv, *vi = v + i * ld_mv;
        const float *gi = g + i * ld_g;
        const int64_t k0 = mask_at + i * ld_p;
        for (int64_t j = 0; j < cols; j++) {
            if (masked_out(mask, k0 + j)) {
                pi[j] = 0.0f;
                mi[j] = vi[j] = 0;
                continue;
            }
            pi[j] = adamw_entry_bf16(&c, pi[j], &mi[j], &vi[j], gi[j], step_seed, k0 + j);
        }
    }
}

void fips_adamw_kept(const fipsc_adamw *o, int t, float lr, fipsc_factored_linear *rows, float *p, int64_t ld_p,
                     int64_t entry0, void *m, void *v, int64_t ld_mv, bool bf16, uint64_t seed, const float *g)
{
    const adamw_consts c = consts_at(o, t, lr);
    const uint64_t step_seed = fipsc_seed_derive(seed, (uint64_t)t);
#pragma omp parallel for schedule(static) if (rows->nnz >= FIPS_PARALLEL_MIN)
    for (int k = 0; k < rows->n_lists; k++) {
        float *pk = p + k * ld_p;
        const int64_t e0 = entry0 + k * ld_p;
        for (uint32_t q = rows->ptr[k]; q < rows->ptr[k + 1]; q++) {
            const int64_t j = fipsc_factored_position(rows, q);
            const int64_t at = k * ld_mv + j;
            pk[j] = bf16 ? adamw_entry_bf16(&c, pk[j], (uint16_t *)m + at, (uint16_t *)v + at, g[q], step_seed, e0 + j)
                         : adamw_entry(&c, pk[j], (float *)m + at, (float *)v + at, g[q]);
            rows->val[q] = pk[j];
        }
    }
}
