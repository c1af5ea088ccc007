/* egru_q16_act.c - the int16x8 activations and conversions (docs/quantization.md, "Activations";
 * the same integers as edgegru.int16x8.activate). Integer operations only. */
#include "egru_q16.h"

#include "../../include/egru_format.h"

int64_t egru_q16_mul_wide(int64_t v, int32_t m, uint32_t n)
{
    /* v = hi * 2^16 + lo, lo in [0, 2^16): v * m + 2^(n-1) = 2^16 * hi * m + b, b >= 0, so for
     * n >= 16 the result is floor((hi * m + floor(b / 2^16)) / 2^(n - 16)); every term fits
     * int64 for |v| < 2^47. For n < 16, |v * m| / 2^n >= 2^32 * 2^30 / 2^15 > 2^46: beyond any
     * value a later satG keeps. */
    int64_t hi, lo, b;
    if (m == 0) {
        return 0;
    }
    if (n < 16) {
        return v < 0 ? -((int64_t)1 << 62) : ((int64_t)1 << 62);
    }
    hi = egru_q16_floor_shift(v, 16);
    lo = v - hi * 65536;
    b = lo * m + ((int64_t)1 << (n - 1));
    return egru_q16_floor_shift(hi * m + (b >> 16), n - 16);
}

/* table[k] + rshift((table[k + 1] - table[k]) * f, bits), k = a >> bits, f its low bits. */
static int64_t interp_u16(const uint16_t *table, int64_t a, uint32_t bits)
{
    const int64_t k = a >> bits, f = a & (((int64_t)1 << bits) - 1);
    return table[k] + egru_q16_rshift(((int64_t)table[k + 1] - table[k]) * f, bits);
}

int32_t egru_q16_sigmoid(int32_t g)
{
    return egru_q16_sigmoid_inline(g);
}

int32_t egru_q16_tanh(int32_t g)
{
    return egru_q16_tanh_inline(g);
}

/* EXP(d) = e^(d / 2^16) in U for d <= 0 in G (|d| <= 2^31). */
static int32_t exp_neg(int64_t d)
{
    const int64_t t = egru_q16_mul(-d, egru_q16_log2e[0], (uint32_t)egru_q16_log2e[1]);
    const int64_t k = t >> 16, p = interp_u16(egru_q16_p2_table, t & 0xFFFF, 8);
    return k > 15 ? 0 : (int32_t)egru_q16_rshift(p, (uint32_t)k);
}

int egru_q16_act_is_unit(uint32_t act)
{
    return act == EGRU_ACT_SIGMOID || act == EGRU_ACT_TANH || act == EGRU_ACT_HARD_SIGMOID ||
           act == EGRU_ACT_SOFTSIGN || act == EGRU_ACT_SOFTMAX;
}

static int32_t act_one(uint32_t act, int32_t g)
{
    const int64_t one_g = (int64_t)1 << 16; /* 1.0 in G */
    switch (act) {
    case EGRU_ACT_RELU: return g > 0 ? g : 0;
    case EGRU_ACT_LEAKY_RELU:
        return g >= 0 ? g
                      : (int32_t)egru_q16_mul(g, egru_q16_fifth[0], (uint32_t)egru_q16_fifth[1]);
    case EGRU_ACT_HARD_SIGMOID:
        return (int32_t)egru_q16_clamp(egru_q16_mul((int64_t)g + 3 * one_g, egru_q16_twelfth[0],
                                                    (uint32_t)egru_q16_twelfth[1]),
                                       0, EGRU_Q16_ONE);
    case EGRU_ACT_SOFTSIGN: {
        const int64_t a = g < 0 ? -(int64_t)g : g, d = one_g + a;
        const int32_t y = (int32_t)((a * EGRU_Q16_ONE + d / 2) / d);
        return g < 0 ? -y : y;
    }
    case EGRU_ACT_ELU: return g >= 0 ? g : (int32_t)(2 * (int64_t)exp_neg(g) - one_g);
#if EGRU_CFG_ACT_SOFTPLUS
    case EGRU_ACT_SOFTPLUS: {
        const int64_t a = egru_q16_clamp((int64_t)g + 16 * one_g, 0, 32 * one_g - 1);
        const int64_t k = a >> 12, f = a & 4095;
        if (g >= 16 * one_g) {
            return g;
        }
        if (g < -16 * one_g) {
            return 0;
        }
        return (
            int32_t)(egru_q16_log1pexp_table[k] +
                     egru_q16_rshift(
                         ((int64_t)egru_q16_log1pexp_table[k + 1] - egru_q16_log1pexp_table[k]) * f,
                         12));
    }
#endif
    default: return g; /* LINEAR (softmax is per vector, below) */
    }
}

void egru_q16_activate(uint32_t act, int32_t *v, uint32_t n)
{
    uint32_t i;
    if (act == EGRU_ACT_SOFTMAX) { /* d = g - max <= 0; e = EXP(d); y = (e * 32768 + s/2) / s */
        int32_t top = v[0];
        int64_t sum = 0;
        for (i = 1; i < n; ++i) {
            top = v[i] > top ? v[i] : top;
        }
        for (i = 0; i < n; ++i) {
            v[i] = exp_neg((int64_t)v[i] - top);
            sum += v[i]; /* >= 32768: the largest value's EXP(0) */
        }
        for (i = 0; i < n; ++i) {
            v[i] = (int32_t)(((int64_t)v[i] * EGRU_Q16_ONE + sum / 2) / sum);
        }
        return;
    }
    if (act == EGRU_ACT_LINEAR) {
        return;
    }
    if (act == EGRU_ACT_SIGMOID) { /* the common ones without the per-value dispatch */
        for (i = 0; i < n; ++i) {
            v[i] = egru_q16_sigmoid_inline(v[i]);
        }
        return;
    }
    if (act == EGRU_ACT_TANH) {
        for (i = 0; i < n; ++i) {
            v[i] = egru_q16_tanh_inline(v[i]);
        }
        return;
    }
    for (i = 0; i < n; ++i) {
        v[i] = act_one(act, v[i]);
    }
}

void egru_q16_to_s16(const int32_t *v, int16_t *out, uint32_t n, uint32_t fmt, int32_t m,
                     uint32_t sh)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)egru_q16_sat16(fmt ? v[i] : egru_q16_mul(v[i], m, sh));
    }
}
