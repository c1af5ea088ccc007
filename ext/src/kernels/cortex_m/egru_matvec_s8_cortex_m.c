/* egru_matvec_s8_cortex_m.c - int8 matrix-vector product for Cortex-M (same contract as
 * egru_matvec_s8, bit for bit: the int32 sums are exact in any order, and the float steps are the
 * reference's, unfused, in its order).
 *
 * Four rows at a time share each chunk of four x values. With the DSP extension (ARMv7E-M,
 * ARMv8-M Mainline: __ARM_FEATURE_DSP; GCC or clang) the inner loop is inline assembly: per chunk
 * one 32-bit load of x widened once into its even and odd bytes (SXTB16, SXTB16 with ROR #8), and
 * per row one 32-bit load of four weights, two SXTB16 and two SMLAD (two 16 x 16 products added to
 * the sum each): 23 instructions + 2 of loop control for 16 MACs. (The same steps written with the
 * ACLE intrinsics __sxtb16 / __smlad compile, with GCC 12 -Os, to 37 instructions with spills: it
 * has no rotated __sxtb16 and runs out of registers.) Without it (M0, M3, any host) the same
 * blocking in portable C, so host tests exercise the blocking and the tails. The last cols % 4
 * columns and rows % 4 rows go one by one in C. Loads of four int8 are unaligned 32-bit loads
 * (ARMv7-M's LDR allows them; LDRD and LDM would fault). */
#include "../egru_kernels.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__ARM_FEATURE_DSP) &&                     \
    __ARM_FEATURE_DSP && defined(__thumb2__)
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

/* The exact sums of rows w0 .. w0 + 3 * cols (each cols long) with xq, into acc[0..4). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void
sums4(const int8_t *w0, uint32_t cols, const int8_t *xq, int32_t *acc)
{
    const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t c = 0;
#if EGRU_CM_DSP
    uint32_t n = cols / 4;
    if (n) {
        const int8_t *xp = xq, *p0 = w0, *p2 = w2;
        uint32_t v, xe, xo, t;
        __asm__ __volatile__("1:\n\t"
                             "ldr %[v], [%[xp]], #4\n\t"
                             "sxtb16 %[xe], %[v]\n\t"
                             "sxtb16 %[xo], %[v], ror #8\n\t"
                             "ldr %[v], [%[p0], %[s]]\n\t" /* row 1 */
                             "sxtb16 %[t], %[v]\n\t"
                             "smlad %[a1], %[t], %[xe], %[a1]\n\t"
                             "sxtb16 %[t], %[v], ror #8\n\t"
                             "smlad %[a1], %[t], %[xo], %[a1]\n\t"
                             "ldr %[v], [%[p0]], #4\n\t" /* row 0 */
                             "sxtb16 %[t], %[v]\n\t"
                             "smlad %[a0], %[t], %[xe], %[a0]\n\t"
                             "sxtb16 %[t], %[v], ror #8\n\t"
                             "smlad %[a0], %[t], %[xo], %[a0]\n\t"
                             "ldr %[v], [%[p2], %[s]]\n\t" /* row 3 */
                             "sxtb16 %[t], %[v]\n\t"
                             "smlad %[a3], %[t], %[xe], %[a3]\n\t"
                             "sxtb16 %[t], %[v], ror #8\n\t"
                             "smlad %[a3], %[t], %[xo], %[a3]\n\t"
                             "ldr %[v], [%[p2]], #4\n\t" /* row 2 */
                             "sxtb16 %[t], %[v]\n\t"
                             "smlad %[a2], %[t], %[xe], %[a2]\n\t"
                             "sxtb16 %[t], %[v], ror #8\n\t"
                             "smlad %[a2], %[t], %[xo], %[a2]\n\t"
                             "subs %[n], %[n], #1\n\t"
                             "bne 1b\n\t"
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                               [xp] "+r"(xp), [p0] "+r"(p0), [p2] "+r"(p2), [n] "+r"(n),
                               [v] "=&r"(v), [xe] "=&r"(xe), [xo] "=&r"(xo), [t] "=&r"(t)
                             : [s] "r"(cols)
                             : "cc", "memory");
        c = cols & ~3u;
    }
#else
    for (; c + 4 <= cols; c += 4) {
        const int32_t x0 = xq[c], x1 = xq[c + 1], x2 = xq[c + 2], x3 = xq[c + 3];
        a0 += w0[c] * x0 + w0[c + 1] * x1 + w0[c + 2] * x2 + w0[c + 3] * x3;
        a1 += w1[c] * x0 + w1[c + 1] * x1 + w1[c + 2] * x2 + w1[c + 3] * x3;
        a2 += w2[c] * x0 + w2[c + 1] * x1 + w2[c + 2] * x2 + w2[c + 3] * x3;
        a3 += w3[c] * x0 + w3[c + 1] * x1 + w3[c + 2] * x2 + w3[c + 3] * x3;
    }
#endif
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
    uint32_t r = 0, c;
    for (; r + 4 <= rows; r += 4) {
        int32_t acc[4];
        float v0, v1, v2, v3;
        sums4(w + (size_t)r * cols, cols, xq, acc);
        v0 = (float)acc[0] * (scale[r] * sx);
        v1 = (float)acc[1] * (scale[r + 1] * sx);
        v2 = (float)acc[2] * (scale[r + 2] * sx);
        v3 = (float)acc[3] * (scale[r + 3] * sx);
        if (bias) {
            v0 = v0 + bias[r];
            v1 = v1 + bias[r + 1];
            v2 = v2 + bias[r + 2];
            v3 = v3 + bias[r + 3];
        }
        y[r] = v0;
        y[r + 1] = v1;
        y[r + 2] = v2;
        y[r + 3] = v3;
    }
    for (; r < rows; ++r) {
        const int8_t *row = w + (size_t)r * cols;
        int32_t acc = 0;
        for (c = 0; c < cols; ++c) {
            acc += row[c] * xq[c];
        }
        y[r] = finish(acc, scale[r], sx, bias ? bias + r : NULL);
    }
}
