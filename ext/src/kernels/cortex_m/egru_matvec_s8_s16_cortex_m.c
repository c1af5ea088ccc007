/* egru_matvec_s8_s16_cortex_m.c - the int16x8 product into G for Cortex-M (same contract as
 * egru_matvec_s8_s16, bit for bit: the sums are exact in any order and the requantization is the
 * reference's, egru_q16.h).
 *
 * With the DSP extension (ARMv7E-M, ARMv8-M Mainline; GCC or clang): x is reordered once per
 * call, XMAX columns at a time, into words of two int16 in the order SXTB16 gives the weights
 * (per four columns c..c+3: c | c+2, then c+1 | c+3), so that one SMLAD multiplies two weight
 * bytes by their two x values. Rows go two at a time over the columns that are a multiple of 8:
 * per 8 columns one LDM of four x words, per row two (unaligned) LDR of its 8 weights, four
 * SXTB16 and four SMLAD: 23 instructions per 16 MACs with the loop control. The int32 sums are
 * exact: at most EGRU_Q16_INT32_COLS (516) columns are summed in int32 (127 * 32767 * 516 <
 * 2^31); wider matrices go to the reference kernel. The last cols % 8 columns and an odd last
 * row are summed in C, reading exactly their bytes. Without the DSP extension (M0, M3, hosts)
 * the set holds the reference kernel instead. Stack: XMAX / 2 words (256 bytes). */
#include <string.h>

#include "../egru_kernels.h"

#if EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) && defined(__ARM_FEATURE_DSP) && \
    __ARM_FEATURE_DSP && defined(__thumb2__)
#include "../../int16x8/egru_q16.h"

enum { XMAX = 128 }; /* columns of x reordered at once (a multiple of 8) */

/* acc += the two 16 x 16 products of the halves of a and b (SMLAD). */
static int32_t smlad(uint32_t a, uint32_t b, int32_t acc)
{
    __asm__("smlad %0, %1, %2, %0" : "+r"(acc) : "r"(a), "r"(b));
    return acc;
}

static uint32_t sxtb16(uint32_t v, int odd)
{
    uint32_t r;
    if (odd) {
        __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    } else {
        __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
    }
    return r;
}

/* mul(acc, (m, n)) for an int32 acc, as egru_q16_mul computes it. For n >= 33 (the common case:
 * a product's multiplier is below 2^-2) the rounding term 2^(n-1) falls in the high word of
 * p = acc * m = hi * 2^32 + lo (0 <= lo < 2^32), so floor((p + 2^(n-1)) / 2^n) =
 * floor((hi + 2^(n-33)) / 2^(n-32)): one SMULL, an add and an arithmetic shift (|hi| <= 2^30,
 * so the sum fits int32). The high word is read by a modulo conversion, which GCC and clang
 * define. */
static int64_t mul_acc(int32_t acc, int32_t m, uint32_t n)
{
    if (n >= 33) {
        const uint64_t p = (uint64_t)((int64_t)acc * m);
        const int32_t hi = (int32_t)(uint32_t)(p >> 32) + (int32_t)(1u << (n - 33));
        const uint32_t s = n - 32;
        return hi >= 0 ? hi >> s : ~(~hi >> s);
    }
    return egru_q16_mul(acc, m, n);
}

/* xb[0 .. n / 2) from x[0 .. n), n a multiple of 4: per four columns (c | c+2), (c+1 | c+3). */
static void reorder(const int16_t *x, uint32_t n, uint32_t *xb)
{
    uint32_t c;
    for (c = 0; c < n; c += 4) {
        xb[c / 2] = (uint16_t)x[c] | ((uint32_t)(uint16_t)x[c + 2] << 16);
        xb[c / 2 + 1] = (uint16_t)x[c + 1] | ((uint32_t)(uint16_t)x[c + 3] << 16);
    }
}

/* a0 += row p0 . x, a1 += row p1 . x over 8 * k columns (xb: 4 * k words). */
static void pair_sums(const int8_t *p0, const int8_t *p1, const uint32_t *xb, uint32_t k,
                      int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0, s1 = *a1;
    /* LDM fills its registers in ascending order whatever the list says: pin them. */
    register uint32_t x0 __asm__("r8");
    register uint32_t x1 __asm__("r9");
    register uint32_t x2 __asm__("r10");
    register uint32_t x3 __asm__("r11");
    uint32_t w, t;
    __asm__ __volatile__(
        "1:\n\t"
        "ldmia %[xb]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
        "ldr %[w], [%[p0]], #4\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[s0], %[t], %[x0], %[s0]\n\t"
        "sxtb16 %[w], %[w], ror #8\n\t"
        "smlad %[s0], %[w], %[x1], %[s0]\n\t"
        "ldr %[w], [%[p0]], #4\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[s0], %[t], %[x2], %[s0]\n\t"
        "sxtb16 %[w], %[w], ror #8\n\t"
        "smlad %[s0], %[w], %[x3], %[s0]\n\t"
        "ldr %[w], [%[p1]], #4\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[s1], %[t], %[x0], %[s1]\n\t"
        "sxtb16 %[w], %[w], ror #8\n\t"
        "smlad %[s1], %[w], %[x1], %[s1]\n\t"
        "ldr %[w], [%[p1]], #4\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[s1], %[t], %[x2], %[s1]\n\t"
        "sxtb16 %[w], %[w], ror #8\n\t"
        "smlad %[s1], %[w], %[x3], %[s1]\n\t"
        "subs %[k], %[k], #1\n\t"
        "bne 1b\n\t"
        : [s0] "+r"(s0), [s1] "+r"(s1), [p0] "+r"(p0), [p1] "+r"(p1), [xb] "+r"(xb), [k] "+r"(k),
          [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [w] "=&r"(w), [t] "=&r"(t)
        :
        : "cc", "memory");
    *a0 = s0;
    *a1 = s1;
}

void egru_matvec_s8_s16_cortex_m(const int8_t *w, const int16_t *x, const int32_t *m,
                                 const int32_t *n, const int32_t *bias, int32_t *g, uint32_t rows,
                                 uint32_t cols)
{
    uint32_t xb[XMAX / 2];
    const uint32_t main_cols = cols & ~7u;
    uint32_t r, c0, c;
    if (cols > EGRU_Q16_INT32_COLS) { /* int32 would not hold the sum: the reference's blocks */
        egru_matvec_s8_s16(w, x, m, n, bias, g, rows, cols);
        return;
    }
    if (cols - main_cols >= 4) { /* four tail columns by SMLAD, in the SXTB16 order */
        reorder(x + main_cols, 4, xb);
    }
    for (r = 0; r < rows; ++r) { /* the tail columns, exactly */
        const int8_t *row = w + (size_t)r * cols;
        int32_t acc = 0;
        c = main_cols;
        if (cols - main_cols >= 4) {
            uint32_t v;
            memcpy(&v, row + c, sizeof v); /* an unaligned LDR */
            acc = smlad(sxtb16(v, 1), xb[1], smlad(sxtb16(v, 0), xb[0], 0));
            c += 4;
        }
        for (; c < cols; ++c) {
            acc += (int32_t)row[c] * x[c];
        }
        g[r] = acc;
    }
    for (c0 = 0; c0 < main_cols; c0 += XMAX) { /* slices of XMAX columns, rows two at a time */
        const uint32_t len = main_cols - c0 < XMAX ? main_cols - c0 : XMAX;
        reorder(x + c0, len, xb);
        for (r = 0; r + 2 <= rows; r += 2) {
            const int8_t *p0 = w + (size_t)r * cols + c0;
            pair_sums(p0, p0 + cols, xb, len / 8, &g[r], &g[r + 1]);
        }
        if (r < rows) { /* an odd last row */
            const int8_t *row = w + (size_t)r * cols;
            int32_t acc = g[r];
            for (c = c0; c < c0 + len; ++c) {
                acc += (int32_t)row[c] * x[c];
            }
            g[r] = acc;
        }
    }
    for (r = 0; r < rows; ++r) {
        g[r] = egru_q16_sat_g(mul_acc(g[r], m[r], (uint32_t)n[r]) + bias[r]);
    }
}
#endif
