/*
 * egru_neon.h - helpers shared by the NEON kernels (AArch64 Advanced SIMD, which every aarch64
 * CPU has, so no run-time check is needed). Include only under
 * defined(__aarch64__) && defined(__ARM_NEON).
 */
#ifndef EGRU_NEON_H
#define EGRU_NEON_H

#include <arm_neon.h>
#include <stdint.h>

/* Lanes [0, rem) of p (0 < rem < 4) and 0 in the others, reading only p[0, rem): the last,
 * partial chunk of a row (NEON has no masked loads). */
static inline float32x4_t egru_load_part_neon(const float *p, uint32_t rem)
{
    float32x4_t v = vsetq_lane_f32(p[0], vdupq_n_f32(0.0f), 0);
    if (rem > 1) {
        v = vsetq_lane_f32(p[1], v, 1);
    }
    if (rem > 2) {
        v = vsetq_lane_f32(p[2], v, 2);
    }
    return v;
}

/* Columns [c, c + 4) of p when c + 4 <= cols, else those before cols and 0 (c < cols). */
static inline float32x4_t egru_chunk_neon(const float *p, uint32_t c, uint32_t cols)
{
    return c + 4 <= cols ? vld1q_f32(p + c) : egru_load_part_neon(p + c, cols - c);
}

/* The canonical row sum of the NEON float products (egru_kernels.h, "Batch invariance"): a row's
 * columns in chunks of 4 (the last one zero-padded: egru_chunk_neon), chunk k multiplied
 * into accumulator k % 2 with vfmaq_f32 (two independent FMA chains, a[0] and a[1]), then
 * s = a[0] + a[1] and its lanes added as (s0 + s1) + (s2 + s3), the bias last. These two
 * functions do the reduction, for four rows at once or for one, with the same additions. */

/* Lane k: the sum of row k (k < 4), from the two accumulators of each row. */
static inline float32x4_t egru_rowsum4_neon(const float32x4_t *a0, const float32x4_t *a1)
{
    return vpaddq_f32(vpaddq_f32(vaddq_f32(a0[0], a1[0]), vaddq_f32(a0[1], a1[1])),
                      vpaddq_f32(vaddq_f32(a0[2], a1[2]), vaddq_f32(a0[3], a1[3])));
}

/* The sum of one row, from its two accumulators. */
static inline float egru_rowsum1_neon(float32x4_t a0, float32x4_t a1)
{
    const float32x4_t s = vaddq_f32(a0, a1), p = vpaddq_f32(s, s);
    return vgetq_lane_f32(vpaddq_f32(p, p), 0);
}

/* The core of egru_exp_neon and egru_expm1_neon: egru_exp_core256 (egru_avx2.h) on 4 lanes, the
 * same algorithm, constants and fused operations (Cephes' expf, vrndnq_f32 rounding to nearest
 * even), so the same errors: x clamped to [lo, hi] (vminq/vmaxq propagate NaN), x = n ln 2 + r,
 * returns exp(r) (or with minus1 exp(r) - 1) and sets *p2n = 2^n (+inf for n = 128). */
static inline float32x4_t egru_exp_core_neon(float32x4_t x, float lo, float hi, int minus1,
                                             float32x4_t *p2n)
{
    const float32x4_t c1 = vdupq_n_f32(0.693359375f), c2 = vdupq_n_f32(-2.12194440e-4f);
    float32x4_t fx, y, z;
    int32x4_t e;
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(lo)), vdupq_n_f32(hi));
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
    e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)), 23);
    *p2n = vreinterpretq_f32_s32(e);
    return vfmaq_f32(minus1 ? x : vaddq_f32(x, vdupq_n_f32(1.0f)), y, z);
}

/* exp(x) for 4 lanes: egru_exp256 on 4 lanes (clamp to [-87.3, 89], +inf above about 88.38, NaN
 * kept, |relative error| < 2.5e-7 over [-87.3, 88.3]). */
static inline float32x4_t egru_exp_neon(float32x4_t x)
{
    float32x4_t p2n;
    const float32x4_t y = egru_exp_core_neon(x, -87.3f, 89.0f, 0, &p2n);
    return vmulq_f32(y, p2n);
}

/* exp(x) - 1 for 4 lanes, relative accuracy near 0: egru_expm1_256 on 4 lanes (x clamped to
 * [-87.3, 40], NaN kept). */
static inline float32x4_t egru_expm1_neon(float32x4_t x)
{
    float32x4_t p2n;
    const float32x4_t y = egru_exp_core_neon(x, -87.3f, 40.0f, 1, &p2n);
    return vfmaq_f32(vsubq_f32(p2n, vdupq_n_f32(1.0f)), y, p2n);
}

/* 1 / (1 + exp(-x)), 4 lanes: egru_sigmoid256 on 4 lanes (errors: docs/kernels.md; NaN gives NaN,
 * exactly 0 below about -88.4). */
static inline float32x4_t egru_sigmoid_neon(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, egru_exp_neon(vnegq_f32(x))));
}

/* tanh(x), 4 lanes: egru_tanh256 on 4 lanes, sign(x) * m / (m + 2) with m = expm1(2|x|)
 * (relative accuracy near 0, tanh(-0) = -0, +-inf give +-1, NaN gives NaN; errors:
 * docs/kernels.md). */
static inline float32x4_t egru_tanh_neon(float32x4_t x)
{
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    const float32x4_t ax = vabsq_f32(x);
    const float32x4_t m = egru_expm1_neon(vaddq_f32(ax, ax));
    const float32x4_t t = vdivq_f32(m, vaddq_f32(m, vdupq_n_f32(2.0f)));
    return vbslq_f32(sign, x, t); /* t >= 0 (or NaN) with the sign bit of x */
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
