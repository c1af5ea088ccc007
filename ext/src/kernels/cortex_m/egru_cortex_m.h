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

/* Inlined even at -Os where a loop calls it: out of line it costs a call, a store and a load of
 * 2^n and ten literal-pool loads of its constants per value (GRU(16) on the M4F spent 38
 * instructions per value in it). */
#if defined(__GNUC__) || defined(__clang__)
#define EGRU_CM_INLINE static inline __attribute__((always_inline))
#else
#define EGRU_CM_INLINE static inline
#endif

/* The constants of the functions below. A loop over many values loads them once and pins them in
 * registers with egru_cm_pin (GCC at -Os otherwise reloads each from the literal pool on every
 * value: ten loads in a sigmoid of 40 instructions); the values, so the results, are the same. */
typedef struct {
    float shift;          /* 1.5 * 2^23 */
    float log2e;          /* 1 / ln 2 */
    float ln2_hi, ln2_lo; /* Cody-Waite: x - f ln2_hi - f ln2_lo, ln2_hi exact */
    float p5, p4, p3, p2, p1, p0;
    float one, two;
} egru_cm_consts_t;

#define EGRU_CM_CONSTS                                                                             \
    {                                                                                              \
        12582912.0f, 1.44269504088896341f, 0.693359375f, -2.12194440e-4f, 1.9875691500e-4f,        \
            1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,                \
            5.0000001201e-1f, 1.0f, 2.0f                                                           \
    }

/* Makes the compiler treat the constants as values it cannot re-create (so keeps them in FPU
 * registers across a loop); no instruction. */
EGRU_CM_INLINE void egru_cm_pin(egru_cm_consts_t *k)
{
#if (defined(__GNUC__) || defined(__clang__)) && defined(__arm__) && defined(__ARM_FP) &&          \
    (__ARM_FP & 4)
    __asm__(""
            : "+t"(k->shift), "+t"(k->log2e), "+t"(k->ln2_hi), "+t"(k->ln2_lo), "+t"(k->p5),
              "+t"(k->p4), "+t"(k->p3), "+t"(k->p2), "+t"(k->p1), "+t"(k->p0), "+t"(k->one),
              "+t"(k->two));
#else
    (void)k;
#endif
}

/* The core of exp and expm1 (Cephes' expf, unfused: the Cody-Waite split of ln 2 makes
 * fx * 0.693359375 exact) for x already within the bounds below: x = n ln 2 + r, |r| <= ln 2 / 2,
 * n rounded to nearest even by adding 1.5 * 2^23 (exact for |x / ln 2| < 2^22). Returns
 * exp(r) - 1 = r + r^2 P(r), and sets *p2n = 2^n (n in [-126, 128] for the bounds used here;
 * 2^128 is +inf). */
EGRU_CM_INLINE float egru_cm_expm1_k(float x, const egru_cm_consts_t *k, float *p2n)
{
    float fx, fx0, y, z;
    fx0 = x * k->log2e + k->shift; /* rounds x / ln 2 to an integer n, ties to even */
    fx = fx0 - k->shift;
    x = x - fx * k->ln2_hi;
    x = x - fx * k->ln2_lo;
    z = x * x;
    y = k->p5;
    y = y * x + k->p4;
    y = y * x + k->p3;
    y = y * x + k->p2;
    y = y * x + k->p1;
    y = y * x + k->p0;
    /* (n + 127) << 23 as one shifted add: bits(shift) << 23 is 0 modulo 2^32 */
    *p2n = egru_cm_float((egru_cm_bits(fx0) << 23) + 0x3F800000u);
    return y * z + x;
}

EGRU_CM_INLINE float egru_cm_expm1_reduced(float x, float *p2n)
{
    const egru_cm_consts_t k = EGRU_CM_CONSTS;
    return egru_cm_expm1_k(x, &k, p2n);
}

/* The same with x clamped to [lo, hi] first, by comparisons that keep a NaN. */
static inline float egru_cm_expm1_core(float x, float lo, float hi, float *p2n)
{
    x = x < lo ? lo : x;
    x = x > hi ? hi : x;
    return egru_cm_expm1_reduced(x, p2n);
}

/* Bit pattern of 87.0f: |x| at or below it needs no clamp in the sigmoid's exp(-x) (its bounds
 * are [-87.3, 89]), and of 20.0f: tanh's expm1(2|x|) needs none (upper bound 40). The fast
 * versions below skip the clamps there (an integer compare instead of two float compares and
 * moves) and give the same bits. */
#define EGRU_CM_SIGMOID_FAST_BITS 0x42AE0000u
#define EGRU_CM_TANH_FAST_BITS    0x41A00000u

/* 1 / (1 + exp(-x)) for |x| <= 87 (no clamp needed). */
EGRU_CM_INLINE float egru_cm_sigmoid_k(float x, const egru_cm_consts_t *k)
{
    float p2n, e;
    e = egru_cm_expm1_k(-x, k, &p2n) + k->one;
    return k->one / (k->one + e * p2n);
}

/* 1 / (1 + exp(-x)): exp clamped to [-87.3, 89] (+inf from about 88.38, so exactly 0 below about
 * -88.4, as expf), NaN kept, exact division. */
static inline float egru_cm_sigmoid(float x)
{
    float p2n, e;
    e = egru_cm_expm1_core(-x, -87.3f, 89.0f, &p2n) + 1.0f;
    return 1.0f / (1.0f + e * p2n);
}

/* egru_cm_sigmoid and egru_cm_tanh out of line, once per firmware (egru_sigmoid_f32_cortex_m.c,
 * egru_tanh_f32_cortex_m.c): the rare path of the fast versions below. */
float egru_cm_sigmoid_clamped(float x);
float egru_cm_tanh_clamped(float x);

/* The sigmoid with the unclamped path inlined where |x| <= 87 and the clamped one called
 * elsewhere (rare: saturated gates, NaN): the same bits as egru_cm_sigmoid. */
EGRU_CM_INLINE float egru_cm_sigmoid_fast(float x, const egru_cm_consts_t *k)
{
    if (egru_cm_bits(x) << 1 <= EGRU_CM_SIGMOID_FAST_BITS << 1) { /* |x| <= 87 */
        return egru_cm_sigmoid_k(x, k);
    }
    return egru_cm_sigmoid_clamped(x);
}

/* tanh from ax = |x| and the sign bit of x: m = expm1(2 ax) = 2^n (exp(r) - 1) + (2^n - 1) (for
 * |2x| < ln 2 / 2, n = 0 and m is r + r^2 P(r) itself: relative accuracy near 0), then
 * m / (m + 2) with the sign put on last. reduced: ax <= 20, no clamp needed. */
EGRU_CM_INLINE float egru_cm_tanh_finish(float m, float p2n, uint32_t sign, float one, float two)
{
    m = m * p2n + (p2n - one);
    return egru_cm_float(egru_cm_bits(m / (m + two)) | sign);
}

/* tanh(x) = sign(x) * m / (m + 2) with m = expm1(2|x|); 2|x| clamped at 40 (tanh is 1 in float
 * from 9.01 on); the sign bit of x put on last (tanh(-0) = -0); NaN kept, +-inf give +-1. */
static inline float egru_cm_tanh(float x)
{
    const uint32_t sign = egru_cm_bits(x) & 0x80000000u;
    const float ax = egru_cm_float(egru_cm_bits(x) & 0x7FFFFFFFu);
    float p2n, m;
    m = egru_cm_expm1_core(ax + ax, -87.3f, 40.0f, &p2n);
    return egru_cm_tanh_finish(m, p2n, sign, 1.0f, 2.0f);
}

/* egru_cm_tanh with the unclamped path inlined where |x| <= 20: the same bits. */
EGRU_CM_INLINE float egru_cm_tanh_fast(float x, const egru_cm_consts_t *k)
{
    const uint32_t b = egru_cm_bits(x);
    if (b << 1 <= EGRU_CM_TANH_FAST_BITS << 1) { /* |x| <= 20 */
        const float ax = egru_cm_float(b & 0x7FFFFFFFu);
        float p2n, m;
        m = egru_cm_expm1_k(ax + ax, k, &p2n);
        return egru_cm_tanh_finish(m, p2n, b & 0x80000000u, k->one, k->two);
    }
    return egru_cm_tanh_clamped(x);
}

#endif /* EGRU_CORTEX_M_H */
