/* egru_q16.h - the integer primitives of int16x8, integer-only inference (docs/quantization.md,
 * "int16x8"; edgegru.int16x8 is the specification in numpy, and every function here computes the
 * same integers). No floating-point operation anywhere in int16x8/.
 *
 * Formats: int16 tensors at a per-tensor scale; G, the gate domain, int32 at 2^-16 saturated to
 * +-2^30 (EGRU_Q16_G_SAT) after every addition; U, the unit format, int32 in [-32768, 32768] at
 * 2^-15 (the outputs of sigmoid, tanh and the other bounded activations). */
#ifndef EGRU_Q16_H
#define EGRU_Q16_H

#include <stdint.h>

#include "../egru_features.h"

#define EGRU_Q16_QMAX       32767      /* int16 tensors use [-32767, 32767]                 */
#define EGRU_Q16_ONE        32768      /* 1.0 in U                                           */
#define EGRU_Q16_G_SAT      1073741824 /* 2^30: |G| after every addition                  */
#define EGRU_Q16_INT32_COLS 516u       /* widest exact int32 sum: 127 * 32767 * 516 < 2^31     */

/* floor(v / 2^n) for 0 <= n <= 62 (an arithmetic shift right, written portably: C leaves >> of
 * a negative value implementation-defined). */
static inline int64_t egru_q16_floor_shift(int64_t v, uint32_t n)
{
    return v >= 0 ? v >> n : -((-v - 1) >> n) - 1;
}

/* rshift(v, n) = floor((v + 2^(n-1)) / 2^n), round half up; v for n = 0. Computed as
 * floor(v / 2^n) + bit n-1 of v, which never forms v + 2^(n-1) (that sum overflows int64 for
 * |v| near 2^63, e.g. a product sum * m near 2^62 with n = 62). Any int64 v. */
static inline int64_t egru_q16_rshift(int64_t v, uint32_t n)
{
    return n == 0 ? v : egru_q16_floor_shift(v, n) + (egru_q16_floor_shift(v, n - 1) & 1);
}

static inline int64_t egru_q16_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static inline int32_t egru_q16_sat16(int64_t v)
{
    return (int32_t)egru_q16_clamp(v, -EGRU_Q16_QMAX, EGRU_Q16_QMAX);
}

static inline int32_t egru_q16_sat_g(int64_t v)
{
    return (int32_t)egru_q16_clamp(v, -EGRU_Q16_G_SAT, EGRU_Q16_G_SAT);
}

/* mul(v, (m, n)) for |v| >= 2^32 (|v| < 2^47): rshift(v * m, n) without an overflowing product,
 * saturated to +-2^62 where the exact result is larger (any later satG gives the same value). */
int64_t egru_q16_mul_wide(int64_t v, int32_t m, uint32_t n);

/* mul(v, (m, n)) = rshift(v * m, n), exact: the product fits int64 while |v| < 2^32. */
static inline int64_t egru_q16_mul(int64_t v, int32_t m, uint32_t n)
{
    if (v > -((int64_t)1 << 32) && v < ((int64_t)1 << 32)) {
        return egru_q16_rshift(v * m, n);
    }
    return egru_q16_mul_wide(v, m, n);
}

/* The tables and multipliers of the specification (egru_q16_tables.c, generated). */
extern const uint16_t egru_q16_sig_table[513], egru_q16_tanh_table[513], egru_q16_p2_table[257];
extern const int32_t egru_q16_log1pexp_table[513];
extern const int32_t egru_q16_log2e[2], egru_q16_fifth[2], egru_q16_twelfth[2];

/* Inlined at -Os too where the compiler allows it (GCC, clang): the per-unit helpers of the
 * recurrent step are a few instructions each. */
#if defined(__GNUC__) || defined(__clang__)
#define EGRU_Q16_INLINE inline __attribute__((always_inline))
#else
#define EGRU_Q16_INLINE inline
#endif

/* G -> U (the specification's interpolated tables; g any int32 but INT32_MIN, in practice a G
 * value). The inline versions are what the recurrent step uses per unit; the functions give the
 * same integers. Both tables are non-decreasing, so the interpolation term
 * (T[k+1] - T[k]) * f + 2^(b-1) is non-negative and below 2^27: rshift is a plain shift, in
 * 32 bits. */
static EGRU_Q16_INLINE int32_t egru_q16_sigmoid_inline(int32_t g)
{
    const uint32_t a0 = g < 0 ? 0u - (uint32_t)g : (uint32_t)g;
    const uint32_t a = a0 < (1u << 20) - 1u ? a0 : (1u << 20) - 1u;
    const uint16_t *t = egru_q16_sig_table + (a >> 11);
    const int32_t y =
        (int32_t)t[0] + (int32_t)(((uint32_t)(t[1] - t[0]) * (a & 2047u) + 1024u) >> 11);
    return g < 0 ? EGRU_Q16_ONE - y : y;
}

static EGRU_Q16_INLINE int32_t egru_q16_tanh_inline(int32_t g)
{
    const uint32_t a0 = g < 0 ? 0u - (uint32_t)g : (uint32_t)g;
    const uint32_t a = a0 < (1u << 19) - 1u ? a0 : (1u << 19) - 1u;
    const uint16_t *t = egru_q16_tanh_table + (a >> 10);
    const int32_t y =
        (int32_t)t[0] + (int32_t)(((uint32_t)(t[1] - t[0]) * (a & 1023u) + 512u) >> 10);
    return g < 0 ? -y : y;
}

int32_t egru_q16_sigmoid(int32_t g);
int32_t egru_q16_tanh(int32_t g);

/* An activation (egru_act_t) applied in place to n G values: the bounded ones (sigmoid, tanh,
 * hard_sigmoid, softsign, softmax over the n) give U, the others G. */
void egru_q16_activate(uint32_t act, int32_t *v, uint32_t n);

/* 1 when the activation's output is in U (egru_q16_activate), 0 when in G. */
int egru_q16_act_is_unit(uint32_t act);

/* A layer output to int16: U values with sat16 (fmt 1), G values with sat16(mul(v, (m, n))). */
void egru_q16_to_s16(const int32_t *v, int16_t *out, uint32_t n, uint32_t fmt, int32_t m,
                     uint32_t sh);

#endif /* EGRU_Q16_H */
