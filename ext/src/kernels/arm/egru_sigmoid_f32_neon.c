/* egru_sigmoid_f32_neon.c - logistic sigmoid, NEON: 1 / (1 + exp(-x)) with egru_exp_neon and an
 * exact division (vdivq_f32); |error| < 3e-7 absolute against the reference (docs/kernels.md). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <math.h>

#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_sigmoid_f32_neon(float *v, uint32_t n);

void egru_sigmoid_f32_neon(float *v, uint32_t n)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t e = egru_exp_neon(vnegq_f32(vld1q_f32(v + i)));
        vst1q_f32(v + i, vdivq_f32(one, vaddq_f32(one, e)));
    }
    for (; i < n; ++i) {
        v[i] = 1.0f / (1.0f + expf(-v[i]));
    }
}
#else
typedef int egru_sigmoid_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
