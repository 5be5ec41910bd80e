/* Schedules of the FiPS trainer: sparsity (GMP), RigL's drop fraction, the learning rate. */
#include <math.h>

#include "fips/fips_internal.h"

static const double kPi = 3.14159265358979323846;

double fipsc_fips_gmp_sparsity(const fipsc_fips_gmp *s, int t)
{
    /* A final sparsity below the accelerated one (0.5) makes the schedule flat, not a regrowth:
     * masks only shrink. */
    double sf = s->s_final;
    double sa = s->s_accel < sf ? s->s_accel : sf;
    double si = s->s_initial < sa ? s->s_initial : sa;
    if (t >= s->t_end) return sf;
    if (t < s->t_accel) return si;
    /* t_accel ≤ t < t_end, so t_end − t_accel > 0 and x ∈ (0, 1]. Normalising by t_end − t_accel
     * (the reference divides by t_end) makes s(t) → s_final as t → t_end. */
    double x = 1.0 - (double)(t - s->t_accel) / (double)(s->t_end - s->t_accel);
    return sf + (sa - sf) * x * x * x;
}

bool fipsc_fips_gmp_prunes_at(const fipsc_fips_gmp *s, int t)
{
    if (t < 0 || t > s->t_end) return false;
    int dt = s->delta_t > 0 ? s->delta_t : 1;
    return t == s->t_end || t % dt == 0;
}

double fipsc_fips_rigl_fraction(double alpha, int t, int t_end)
{
    if (t < 0 || t_end <= 0 || t > t_end) return 0.0;
    return alpha / 2.0 * (1.0 + cos(kPi * (double)t / (double)t_end));
}

bool fipsc_fips_rigl_updates_at(int t, int t_end, int delta_t)
{
    int dt = delta_t > 0 ? delta_t : 1;
    return t > 0 && t < t_end && t % dt == 0;
}

float fipsc_fips_cosine_lr(float lr_max, float lr_min, int t, int T)
{
    if (T <= 0 || t <= 0) return lr_max;
    if (t >= T) return lr_min;
    double c = 0.5 * (1.0 + cos(kPi * (double)t / (double)T));
    return (float)((double)lr_min + ((double)lr_max - (double)lr_min) * c);
}
