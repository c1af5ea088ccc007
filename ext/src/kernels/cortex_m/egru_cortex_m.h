/*
 * egru_cortex_m.h - helpers shared by the Cortex-M kernels (ext/src/kernels/cortex_m/). Plain
 * C99 (every target compiles them, so the host tests run the same arithmetic); the float steps
 * are single IEEE operations in the order written, so the library must be compiled without
 * contraction into fused multiply-adds (-ffp-contract=off, as ext/Makefile does; -std=c99 implies
 * it with GCC). No libm call: exp is a Cephes-style polynomial with range reduction.
 */
#ifndef EGRU_CORTEX_M_H
#define EGRU_CORTEX_M_H

#include <stdint.h>
#include <string.h>

static inline uint32_t egru_cm_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static inline float egru_cm_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* The core of exp and expm1 (Cephes' expf, unfused: the Cody-Waite split of ln 2 makes
 * fx * 0.693359375 exact). x is clamped to [lo, hi] with comparisons that keep a NaN; then
 * x = n ln 2 + r, |r| <= ln 2 / 2, n rounded to nearest even by adding 1.5 * 2^23 (exact for
 * |x / ln 2| < 2^22). Returns exp(r) - 1 = r + r^2 P(r), and sets *p2n = 2^n (n in [-126, 128]
 * for the bounds used here; 2^128 is +inf). */
static inline float egru_cm_expm1_core(float x, float lo, float hi, float *p2n)
{
    const float shift = 12582912.0f; /* 1.5 * 2^23 */
    float fx, y, z;
    uint32_t n;
    x = x < lo ? lo : x;
    x = x > hi ? hi : x;
    fx = x * 1.44269504088896341f + shift; /* rounds x / ln 2 to an integer, ties to even */
    n = egru_cm_bits(fx) - egru_cm_bits(shift);
    fx = fx - shift;
    x = x - fx * 0.693359375f;
    x = x - fx * -2.12194440e-4f;
    z = x * x;
    y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    *p2n = egru_cm_float((n + 127u) << 23);
    return y * z + x;
}

/* Bit pattern of 87.0f: |x| at or below it needs no clamp in the sigmoid's exp(-x) (its bounds
 * are [-87.3, 89]), and of 20.0f: tanh's expm1(2|x|) needs none (upper bound 40). */
#define EGRU_CM_SIGMOID_FAST_BITS 0x42AE0000u
#define EGRU_CM_TANH_FAST_BITS    0x41A00000u

/* 1 / (1 + exp(-x)): exp clamped to [-87.3, 89] (+inf from about 88.38, so exactly 0 below about
 * -88.4, as expf), NaN kept, exact division. */
static inline float egru_cm_sigmoid(float x)
{
    float p2n, e;
    e = egru_cm_expm1_core(-x, -87.3f, 89.0f, &p2n) + 1.0f;
    return 1.0f / (1.0f + e * p2n);
}

/* tanh(x) = sign(x) * m / (m + 2) with m = expm1(2|x|) = 2^n (exp(r) - 1) + (2^n - 1) (for
 * |2x| < ln 2 / 2, n = 0 and m is r + r^2 P(r) itself: relative accuracy near 0); 2|x| clamped at
 * 40 (tanh is 1 in float from 9.01 on); the sign bit of x put on last (tanh(-0) = -0); NaN kept,
 * +-inf give +-1. */
static inline float egru_cm_tanh(float x)
{
    const uint32_t sign = egru_cm_bits(x) & 0x80000000u;
    const float ax = egru_cm_float(egru_cm_bits(x) & 0x7FFFFFFFu);
    float p2n, m;
    m = egru_cm_expm1_core(ax + ax, -87.3f, 40.0f, &p2n);
    m = m * p2n + (p2n - 1.0f);
    return egru_cm_float(egru_cm_bits(m / (m + 2.0f)) | sign);
}

#endif /* EGRU_CORTEX_M_H */
