/* egru_tanh_f32_neon.c - hyperbolic tangent, NEON: sign(x) * (1 - 2 / (exp(2|x|) + 1)) with
 * egru_exp_neon and an exact division (vdivq_f32); |error| < 3e-7 absolute against the reference
 * (docs/kernels.md). The 1 - 2 / (e + 1) form loses relative precision for small |x|; the worst
 * absolute error, 1.5e-7, is near |x| = 1e-3. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <math.h>

#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_tanh_f32_neon(float *v, uint32_t n);

void egru_tanh_f32_neon(float *v, uint32_t n)
{
    const float32x4_t one = vdupq_n_f32(1.0f), two = vdupq_n_f32(2.0f);
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(v + i);
        const float32x4_t e = egru_exp_neon(vmulq_f32(two, vabsq_f32(x)));
        const float32x4_t t = vsubq_f32(one, vdivq_f32(two, vaddq_f32(e, one)));
        vst1q_f32(v + i, vbslq_f32(sign, x, t)); /* t >= 0 with the sign bit of x */
    }
    for (; i < n; ++i) {
        v[i] = tanhf(v[i]);
    }
}
#else
typedef int egru_tanh_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
