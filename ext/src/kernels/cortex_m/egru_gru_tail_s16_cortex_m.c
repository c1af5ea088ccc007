/* egru_gru_tail_s16_cortex_m.c - the element-wise part of one int16x8 GRU step with sigmoid
 * gates, a tanh candidate and a Q15 state (output format U), for Cortex-M cores with the DSP
 * extension (ARMv7E-M, ARMv8-M Mainline; GCC or clang). Same contract and the same integers as
 * gru_tail_sig_tanh in int16x8/egru_rnn_step_s16.c (edgegru.int16x8._gru_step is the
 * specification):
 *   gx, gh: 3 * units G sums (z, r, h) of the input and recurrent products (|v| <= 2^30);
 *   h: units int16 state, updated in place.
 *   reset_after: z = sig(satG(gx_z + gh_z)), r = sig(satG(gx_r + gh_r)),
 *                n = satG(gx_h + satG(rshift(r * gh_h, 15)));
 *   reset_before (gh unused): z = gx[j] (already in U), n = gx[2 units + j];
 *   hh = sat16(tanh(n)), h' = sat16(rshift(z h + (32768 - z) hh, 15)).
 * Why bit-exact: sig and tanh read their argument only through its sign and min(|g|, 2^20 - 1)
 * (sig) or min(|g|, 2^19 - 1) (tanh). QADD (the sum saturated to int32) has the sign of the
 * exact sum and |QADD| >= 2^20 exactly when |satG(sum)| >= 2^20, so both give the same clamped
 * magnitude; SSAT #21 (#20) then bounds it away from INT32_MIN without changing
 * min(|.|, 2^20 - 1) (2^19 - 1), and USAT #20 (#19) of the absolute value is that minimum. The
 * interpolation is the reference's, in 32 bits (the tables are non-decreasing, so the term is
 * non-negative and below 2^27). sat16 of tanh's +-y (y <= 32768) is +-USAT #15 of y. The blend
 * 32768 hh + z (h - hh) rounded lies between h and hh (a convex combination of two integers,
 * rounded half up), so only the lower end -32768 (an initial state of -32768) can need sat16.
 * No floating-point operation. Stack: none beyond the saved registers. */
#include "../egru_kernels.h"

#if EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) && defined(__ARM_FEATURE_DSP) && \
    __ARM_FEATURE_DSP && defined(__thumb2__)
#include "../../int16x8/egru_q16.h"

#define EGRU_CM_INLINE inline __attribute__((always_inline))

static EGRU_CM_INLINE int32_t qadd(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("qadd %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* v clamped to [-2^20, 2^20 - 1], [-2^19, 2^19 - 1] (SSAT). */
static EGRU_CM_INLINE int32_t ssat21(int32_t v)
{
    int32_t r;
    __asm__("ssat %0, #21, %1" : "=r"(r) : "r"(v));
    return r;
}

static EGRU_CM_INLINE int32_t ssat20(int32_t v)
{
    int32_t r;
    __asm__("ssat %0, #20, %1" : "=r"(r) : "r"(v));
    return r;
}

/* v clamped to [0, 2^20 - 1], [0, 2^19 - 1], [0, 2^15 - 1] (USAT). */
static EGRU_CM_INLINE uint32_t usat20(int32_t v)
{
    uint32_t r;
    __asm__("usat %0, #20, %1" : "=r"(r) : "r"(v));
    return r;
}

static EGRU_CM_INLINE uint32_t usat19(int32_t v)
{
    uint32_t r;
    __asm__("usat %0, #19, %1" : "=r"(r) : "r"(v));
    return r;
}

static EGRU_CM_INLINE int32_t usat15(int32_t v)
{
    int32_t r;
    __asm__("usat %0, #15, %1" : "=r"(r) : "r"(v));
    return r;
}

/* t[k] | t[k + 1] << 16: two table entries by one LDR (the M4 and M7 load unaligned words). */
static EGRU_CM_INLINE uint32_t pair(const uint16_t *t, uint32_t k)
{
    uint32_t r;
    __asm__("ldr %0, [%1, %2, lsl #1]" : "=r"(r) : "r"(t), "r"(k));
    return r;
}

/* t[k] + rshift((t[k + 1] - t[k]) * f, bits) from the pair word v (t non-decreasing: the term
 * is non-negative, below 2^27, a plain shift). */
static EGRU_CM_INLINE int32_t interp(uint32_t v, uint32_t f, uint32_t bits)
{
    const uint32_t t0 = v & 0xFFFFu;
    return (int32_t)(t0 + ((((v >> 16) - t0) * f + (1u << (bits - 1u))) >> bits));
}

/* sig(g) in U for the int32 s = QADD of the two G sums (or any G value). */
static EGRU_CM_INLINE int32_t sig_q(int32_t s, const uint16_t *tab)
{
    const int32_t c = ssat21(s);
    const uint32_t a = usat20(c < 0 ? -c : c);
    const int32_t y = interp(pair(tab, a >> 11), a & 2047u, 11u);
    return c < 0 ? EGRU_Q16_ONE - y : y;
}

/* sat16(tanh(g)) for the int32 s = QADD of two G values (or any G value). */
static EGRU_CM_INLINE int32_t tanh16_q(int32_t s, const uint16_t *tab)
{
    const int32_t c = ssat20(s);
    const uint32_t a = usat19(c < 0 ? -c : c);
    const int32_t y = usat15(interp(pair(tab, a >> 10), a & 1023u, 10u));
    return c < 0 ? -y : y;
}

/* floor(v / 2^s): an arithmetic shift (GCC and clang compile this to ASR). */
static EGRU_CM_INLINE int32_t asr32(int32_t v, uint32_t s)
{
    return v >= 0 ? v >> s : ~(~v >> s);
}

/* rshift(u * g, 15) for u in U and a G value g, in 32 bits (egru_rnn_step_s16.c, mul_u_g:
 * |result| <= 2^30, so satG never applies). */
static EGRU_CM_INLINE int32_t mul_u_g(int32_t u, int32_t g)
{
    const int32_t hi = asr32(g, 15), lo = g & 0x7FFF;
    return u * hi + (int32_t)(((uint32_t)(u * lo) + 16384u) >> 15);
}

/* h' = sat16(rshift(z h + (32768 - z) hh, 15)) = hh + rshift(z (h - hh), 15), at least -32767. */
static EGRU_CM_INLINE int16_t blend(int32_t z, int32_t h, int32_t hh)
{
    const int32_t v = hh + asr32(z * (h - hh) + 16384, 15);
    return (int16_t)(v < -EGRU_Q16_QMAX ? -EGRU_Q16_QMAX : v);
}

void egru_gru_tail_s16_cortex_m(const int32_t *gx, const int32_t *gh, int16_t *h, uint32_t units,
                                int reset_after)
{
    const uint16_t *const ts = egru_q16_sig_table, *const tt = egru_q16_tanh_table;
    const uint32_t u2 = 2u * units;
    int16_t *const end = h + units;
    if (reset_after) {
        for (; h < end; ++h, ++gx, ++gh) {
            const int32_t z = sig_q(qadd(gx[0], gh[0]), ts);
            const int32_t r = sig_q(qadd(gx[units], gh[units]), ts);
            *h = blend(z, *h, tanh16_q(qadd(gx[u2], mul_u_g(r, gh[u2])), tt));
        }
        return;
    }
    for (; h < end; ++h, ++gx) {
        *h = blend(gx[0], *h, tanh16_q(gx[u2], tt));
    }
}
#else
typedef int egru_gru_tail_s16_cortex_m_unused; /* ISO C forbids an empty translation unit */
#endif
