/*
 * egru_neon.h - helpers shared by the NEON kernels (AArch64 Advanced SIMD, which every aarch64
 * CPU has, so no run-time check is needed). Include only under
 * defined(__aarch64__) && defined(__ARM_NEON).
 */
#ifndef EGRU_NEON_H
#define EGRU_NEON_H

#include <arm_neon.h>
#include <stdint.h>

/* exp(x) for 4 lanes, |relative error| < 2.5e-7 over [-87, 88] (Cephes' expf, as egru_exp256:
 * range reduction by ln 2 in two parts, degree-5 polynomial, exponent built by integer add).
 * Inputs are clamped to [-87.3, 88.3], so the result is finite and never denormal; a NaN lane
 * stays NaN (vminq/vmaxq propagate NaN). */
static inline float32x4_t egru_exp_neon(float32x4_t x)
{
    const float32x4_t c1 = vdupq_n_f32(0.693359375f), c2 = vdupq_n_f32(-2.12194440e-4f);
    float32x4_t fx, y, z;
    int32x4_t e;
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));
    fx = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f)); /* round to nearest, ties to even */
    x = vfmsq_f32(x, fx, c1);                              /* x - fx * c1, fused */
    x = vfmsq_f32(x, fx, c2);
    z = vmulq_f32(x, x);
    y = vdupq_n_f32(1.9875691500e-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, x); /* a + b * c, fused */
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, x);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, x);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, x);
    y = vfmaq_f32(vaddq_f32(x, vdupq_n_f32(1.0f)), y, z);
    e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)), 23);
    return vmulq_f32(y, vreinterpretq_f32_s32(e));
}

/* 1 / (1 + exp(-x)), 4 lanes: egru_exp_neon and an exact division; |error| < 3e-7 absolute. */
static inline float32x4_t egru_sigmoid_neon(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, egru_exp_neon(vnegq_f32(x))));
}

/* tanh(x), 4 lanes: sign(x) * (1 - 2 / (exp(2|x|) + 1)); |error| < 3e-7 absolute. */
static inline float32x4_t egru_tanh_neon(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f), two = vdupq_n_f32(2.0f);
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    const float32x4_t e = egru_exp_neon(vmulq_f32(two, vabsq_f32(x)));
    const float32x4_t t = vsubq_f32(one, vdivq_f32(two, vaddq_f32(e, one)));
    return vbslq_f32(sign, x, t); /* t >= 0 with the sign bit of x */
}

/* The end of one row of an int8 product (egru_matvec_s8): add the products of columns [c, cols)
 * that no vector chunk covered to the row's exact int32 sum acc, then the reference's float
 * steps (unfused multiply, multiply, add) into *y. bias: this row's bias or NULL. */
static inline void egru_s8_row_finish(int32_t acc, const int8_t *row, const int8_t *xq, uint32_t c,
                                      uint32_t cols, float scale, float sx, const float *bias,
                                      float *y)
{
    float t;
    for (; c < cols; ++c) {
        acc += (int32_t)row[c] * xq[c];
    }
    t = (float)acc * (scale * sx);
    *y = bias ? t + *bias : t;
}

#endif /* EGRU_NEON_H */
