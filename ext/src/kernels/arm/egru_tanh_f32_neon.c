/* egru_tanh_f32_neon.c - hyperbolic tangent, NEON: sign(x) * (1 - 2 / (exp(2|x|) + 1)) with
 * egru_exp_neon and an exact division (vdivq_f32); |error| < 3e-7 absolute against the reference
 * (docs/kernels.md). The 1 - 2 / (e + 1) form loses relative precision for small |x|; the worst
 * absolute error, 1.5e-7, is near |x| = 1e-3. The last n % 4 values go through the same vector
 * code on a padded copy, so an element's result does not depend on where it sits. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <string.h>

#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_tanh_f32_neon(float *v, uint32_t n);

void egru_tanh_f32_neon(float *v, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vst1q_f32(v + i, egru_tanh_neon(vld1q_f32(v + i)));
    }
    if (i < n) {
        float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(t, v + i, (n - i) * sizeof *t);
        vst1q_f32(t, egru_tanh_neon(vld1q_f32(t)));
        memcpy(v + i, t, (n - i) * sizeof *t);
    }
}
#else
typedef int egru_tanh_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
