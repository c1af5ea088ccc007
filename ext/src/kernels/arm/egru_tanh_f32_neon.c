/* egru_tanh_f32_neon.c - hyperbolic tangent, NEON: sign(x) * m / (m + 2) with m = expm1(2|x|)
 * (egru_tanh_neon), relative accuracy near 0; |error| <= 3e-7 absolute and <= 2.5e-7 relative to
 * the exact tanh where it is a normal float (docs/kernels.md); NaN gives NaN, +-inf give +-1. The
 * last n % 4 values go through the same vector code on a padded copy, so an element's result does
 * not depend on where it sits. */
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
