/* egru_quantize_s8_neon.c - dynamic quantization of a product's input vector, NEON (same contract
 * as egru_quantize_s8, bit for bit on every input: the maximum of the |x| bit patterns is an exact
 * integer maximum in any order, the NaN / infinite / tiny cases are decided by the same
 * egru_quantize_s8_scale, and each value takes the same float multiply and round-half-to-even
 * conversion, vcvtnq_s32_f32, as rintf in the reference). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <string.h>

#include "../egru_kernels.h"
#include "egru_neon.h"

float egru_quantize_s8_neon(const float *x, int8_t *q, uint32_t n);

float egru_quantize_s8_neon(const float *x, int8_t *q, uint32_t n)
{
    const uint32x4_t abs_mask = vdupq_n_u32(0x7FFFFFFFu);
    uint32x4_t mv = vdupq_n_u32(0);
    float inv, sx;
    uint32_t j = 0;
    for (; j + 4 <= n; j += 4) { /* |x| bit patterns, as unsigned: an exact maximum */
        mv = vmaxq_u32(mv, vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x + j)), abs_mask));
    }
    sx = egru_quantize_s8_scale(egru_abs_bits_max(x, j, n, vmaxvq_u32(mv)), &inv);
    if (inv == 0.0f) { /* NaN or infinite (sx NaN), or below EGRU_QUANT_S8_MIN (sx 0): q = 0 */
        memset(q, 0, n);
        return sx;
    }
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
    return sx;
}
#else
typedef int egru_quantize_s8_neon_unused; /* ISO C forbids an empty translation unit */
#endif
