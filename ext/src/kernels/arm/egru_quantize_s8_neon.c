/* egru_quantize_s8_neon.c - dynamic quantization of a product's input vector, NEON (same contract
 * as egru_quantize_s8, bit for bit: max is exact in any order, and each value takes the same float
 * multiply and round-half-to-even conversion, vcvtnq_s32_f32, as rintf in the reference). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <math.h>
#include <string.h>

#include "../egru_kernels.h"
#include "egru_neon.h"

float egru_quantize_s8_neon(const float *x, int8_t *q, uint32_t n);

float egru_quantize_s8_neon(const float *x, int8_t *q, uint32_t n)
{
    float32x4_t mv = vdupq_n_f32(0.0f);
    float m, inv;
    uint32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        mv = vmaxq_f32(mv, vabsq_f32(vld1q_f32(x + j)));
    }
    m = vmaxvq_f32(mv);
    for (; j < n; ++j) {
        const float a = fabsf(x[j]);
        m = a > m ? a : m;
    }
    if (m == 0.0f) {
        memset(q, 0, n);
        return 0.0f;
    }
    inv = 127.0f / m;
    for (j = 0; j + 8 <= n; j += 8) {
        int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j), inv));
        int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4), inv));
        int16x8_t h;
        a = vminq_s32(vmaxq_s32(a, vdupq_n_s32(-127)), vdupq_n_s32(127));
        b = vminq_s32(vmaxq_s32(b, vdupq_n_s32(-127)), vdupq_n_s32(127));
        h = vcombine_s16(vmovn_s32(a), vmovn_s32(b));
        vst1_s8(q + j, vmovn_s16(h));
    }
    egru_quantize_s8_range(x, q, j, n, inv);
    return m / 127.0f;
}
#else
typedef int egru_quantize_s8_neon_unused; /* ISO C forbids an empty translation unit */
#endif
