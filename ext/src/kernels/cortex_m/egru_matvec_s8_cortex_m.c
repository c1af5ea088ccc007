/* egru_matvec_s8_cortex_m.c - int8 matrix-vector product for Cortex-M (same contract as
 * egru_matvec_s8, bit for bit: the int32 sums are exact in any order, and the float steps are the
 * reference's, unfused, in its order).
 *
 * Four rows at a time share each chunk of four x values. With the DSP extension (ARMv7E-M,
 * ARMv8-M Mainline: __ARM_FEATURE_DSP), a chunk is one 32-bit load of x widened once into its
 * even and odd bytes (SXTB16, and SXTB16 of x rotated by 8), and per row one 32-bit load of four
 * weights, two SXTB16 and two SMLAD (two 16 x 16 products added to the sum each): 4 MACs in 5
 * instructions per row. Without it (M0, M3, any host) the same blocking in portable C, four
 * byte products per row and chunk, so host tests exercise the blocking and the tails. The last
 * cols % 4 columns and rows % 4 rows go one by one. Loads of four int8 are unaligned 32-bit loads
 * (memcpy; ARMv7-M's LDR allows them). */
#include "../egru_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define EGRU_CM_DSP 1
#else
#define EGRU_CM_DSP 0
#endif

/* The reference's float steps for one row whose exact int32 sum is acc. */
static float finish(int32_t acc, float scale, float sx, const float *bias)
{
    const float v = (float)acc * (scale * sx);
    return bias ? v + *bias : v;
}

#if EGRU_CM_DSP
static uint32_t load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* acc + w . x over four columns: xe, xo the even and odd bytes of x as 16-bit pairs. */
static int32_t dot4(uint32_t wv, int16x2_t xe, int16x2_t xo, int32_t acc)
{
    acc = __smlad(__sxtb16((int8x4_t)wv), xe, acc);
    return __smlad(__sxtb16((int8x4_t)((wv >> 8) | (wv << 24))), xo, acc);
}
#endif

/* The exact sums of rows w0 .. w0 + 3 * cols (each cols long) with xq, into acc[0..4). */
static void sums4(const int8_t *w0, uint32_t cols, const int8_t *xq, int32_t *acc)
{
    const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t c = 0;
    for (; c + 4 <= cols; c += 4) {
#if EGRU_CM_DSP
        const uint32_t xv = load4(xq + c);
        const int16x2_t xe = __sxtb16((int8x4_t)xv);
        const int16x2_t xo = __sxtb16((int8x4_t)((xv >> 8) | (xv << 24)));
        a0 = dot4(load4(w0 + c), xe, xo, a0);
        a1 = dot4(load4(w1 + c), xe, xo, a1);
        a2 = dot4(load4(w2 + c), xe, xo, a2);
        a3 = dot4(load4(w3 + c), xe, xo, a3);
#else
        const int32_t x0 = xq[c], x1 = xq[c + 1], x2 = xq[c + 2], x3 = xq[c + 3];
        a0 += w0[c] * x0 + w0[c + 1] * x1 + w0[c + 2] * x2 + w0[c + 3] * x3;
        a1 += w1[c] * x0 + w1[c + 1] * x1 + w1[c + 2] * x2 + w1[c + 3] * x3;
        a2 += w2[c] * x0 + w2[c + 1] * x1 + w2[c + 2] * x2 + w2[c + 3] * x3;
        a3 += w3[c] * x0 + w3[c + 1] * x1 + w3[c + 2] * x2 + w3[c + 3] * x3;
#endif
    }
    for (; c < cols; ++c) {
        const int32_t xc = xq[c];
        a0 += w0[c] * xc;
        a1 += w1[c] * xc;
        a2 += w2[c] * xc;
        a3 += w3[c] * xc;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

void egru_matvec_s8_cortex_m(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                             const float *bias, float *y, uint32_t rows, uint32_t cols)
{
    uint32_t r = 0, c, k;
    for (; r + 4 <= rows; r += 4) {
        int32_t acc[4];
        sums4(w + (size_t)r * cols, cols, xq, acc);
        for (k = 0; k < 4; ++k) {
            y[r + k] = finish(acc[k], scale[r + k], sx, bias ? bias + r + k : NULL);
        }
    }
    for (; r < rows; ++r) {
        const int8_t *row = w + (size_t)r * cols;
        int32_t acc = 0;
        c = 0;
#if EGRU_CM_DSP
        for (; c + 4 <= cols; c += 4) {
            const uint32_t xv = load4(xq + c);
            acc = dot4(load4(row + c), __sxtb16((int8x4_t)xv),
                       __sxtb16((int8x4_t)((xv >> 8) | (xv << 24))), acc);
        }
#endif
        for (; c < cols; ++c) {
            acc += row[c] * xq[c];
        }
        y[r] = finish(acc, scale[r], sx, bias ? bias + r : NULL);
    }
}
