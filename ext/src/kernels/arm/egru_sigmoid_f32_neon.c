/* egru_sigmoid_f32_neon.c - logistic sigmoid, NEON: 1 / (1 + exp(-x)) with egru_exp_neon and an
 * exact division (vdivq_f32); |error| <= 3e-7 absolute, <= 2.5e-7 relative where the result is
 * a normal float (docs/kernels.md); NaN kept.
 * The last n % 4 values go through the same vector code on a padded copy, so an element's result
 * does not depend on where it sits. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <string.h>

#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_sigmoid_f32_neon(float *v, uint32_t n);

void egru_sigmoid_f32_neon(float *v, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vst1q_f32(v + i, egru_sigmoid_neon(vld1q_f32(v + i)));
    }
    if (i < n) {
        float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(t, v + i, (n - i) * sizeof *t);
        vst1q_f32(t, egru_sigmoid_neon(vld1q_f32(t)));
        memcpy(v + i, t, (n - i) * sizeof *t);
    }
}
#else
typedef int egru_sigmoid_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
