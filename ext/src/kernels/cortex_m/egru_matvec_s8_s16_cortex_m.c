/* egru_matvec_s8_s16_cortex_m.c - the int16x8 product into G for Cortex-M (same contract as
 * egru_matvec_s8_s16, bit for bit: the sums are exact in any order and the requantization gives
 * the reference's integers, egru_q16.h).
 *
 * With the DSP extension (ARMv7E-M, ARMv8-M Mainline; GCC or clang): x is reordered once per
 * call, XMAX columns at a time, into words of two int16 in the order SXTB16 gives the weights
 * (per four columns c..c+3: c | c+2, then c+1 | c+3), so that one SMLAD multiplies two weight
 * bytes by their two x values. Rows go four at a time, sharing the x words: per 8 columns two
 * LDRD of four x words, per row two (unaligned) LDR of its 8 weights, four SXTB16 and four
 * SMLAD: 44 instructions per 32 MACs with the loop control. Then a 4-column group by SMLAD and
 * the last cols % 4 columns by MLA, reading exactly their bytes, and the requantization of the
 * four sums while they are in registers (n >= 33: one SMULL and three shifts and adds, SSAT for
 * satG). The int32 sums are exact: at most EGRU_Q16_INT32_COLS (516) columns are summed in
 * int32 (127 * 32767 * 516 < 2^31); wider matrices go to the reference kernel. Matrices wider
 * than XMAX are summed slice by slice into g (int32 partial sums), then requantized. Without
 * the DSP extension (M0, M3, hosts) the set holds the reference kernel instead.
 * Stack: XMAX / 2 + 2 words (264 bytes). */

#include "../egru_kernels.h"

#if EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) && defined(__ARM_FEATURE_DSP) && \
    __ARM_FEATURE_DSP && defined(__thumb2__)
#include "../../int16x8/egru_q16.h"

/* The helpers below are inlined at -Os too (each is a few instructions on the hot path). */
#define EGRU_CM_INLINE inline __attribute__((always_inline))

enum { XMAX = 128 }; /* columns of x reordered at once (a multiple of 8) */

/* acc += the two 16 x 16 products of the halves of a and b (SMLAD). */
static EGRU_CM_INLINE int32_t smlad(uint32_t a, uint32_t b, int32_t acc)
{
    __asm__("smlad %0, %1, %2, %0" : "+r"(acc) : "r"(a), "r"(b));
    return acc;
}

static EGRU_CM_INLINE uint32_t sxtb16(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
    return r;
}

static EGRU_CM_INLINE uint32_t sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* v clamped to [-2^30, 2^30 - 1] (SSAT #31). */
static EGRU_CM_INLINE int32_t ssat31(int32_t v)
{
    int32_t r;
    __asm__("ssat %0, #31, %1" : "=r"(r) : "r"(v));
    return r;
}

/* floor(v / 2^s), 0 <= s <= 31: an arithmetic shift (GCC and clang compile this to ASR). */
static EGRU_CM_INLINE int32_t asr32(int32_t v, uint32_t s)
{
    return v >= 0 ? v >> s : ~(~v >> s);
}

/* satG(mul(acc, (m, n)) + bias), the reference's computation (n < 33: rare). */
static __attribute__((noinline)) int32_t requant_slow(int32_t acc, int32_t m, int32_t n,
                                                      int32_t bias)
{
    return egru_q16_sat_g(egru_q16_mul(acc, m, (uint32_t)n) + bias);
}

/* satG(mul(acc, (m, n)) + bias) for an int32 acc, as the reference computes it. For n >= 33
 * (the common case: a product's multiplier is below 2^-2) the rounding term 2^(n-1) falls in the
 * high word of p = acc * m = hi * 2^32 + lo (0 <= lo < 2^32), so rshift(p, n) =
 * floor((hi + 2^(n-33)) / 2^(n-32)) = floor((floor(hi / 2^(n-33)) + 1) / 2): one SMULL, two
 * arithmetic shifts and an add (|hi| <= 2^30, so nothing overflows; |result| <= 2^29 and
 * |bias| <= 2^30, so their sum fits int32). The high word is read by a modulo conversion, which
 * GCC and clang define. satG: SSAT #31 keeps [-2^30, 2^30 - 1]; a value it changed was beyond
 * the range (or exactly 2^30) and saturates to its sign's end. */
static EGRU_CM_INLINE int32_t requant(int32_t acc, int32_t m, int32_t n, int32_t bias)
{
    if (n >= 33) {
        const int32_t hi = (int32_t)(uint32_t)((uint64_t)((int64_t)acc * m) >> 32);
        const int32_t v = asr32(asr32(hi, (uint32_t)n - 33u) + 1, 1) + bias;
        const int32_t s = ssat31(v);
        return s == v ? s : v > 0 ? EGRU_Q16_G_SAT : -EGRU_Q16_G_SAT;
    }
    return requant_slow(acc, m, n, bias);
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

/* acc + the sum of row[c] * x[c] over the last rem (0..3) columns, x's values given. */
static EGRU_CM_INLINE int32_t row_rem(const int8_t *row, uint32_t rem, int32_t x0, int32_t x1,
                                      int32_t x2, int32_t acc)
{
    if (rem) {
        acc += row[0] * x0;
        if (rem > 1) {
            acc += row[1] * x1;
            if (rem > 2) {
                acc += row[2] * x2;
            }
        }
    }
    return acc;
}

/* What the four-row blocks of one call share. */
typedef struct quad_job {
    const uint32_t *xb;          /* x[c0 .. c4) reordered (8-byte aligned)            */
    int32_t k;                   /* (c4 - c0) / 4: 4-column groups by SMLAD           */
    uint32_t cols, c0, c4, rem;  /* row stride; the columns summed here: [c0, c4 + rem) */
    int32_t x0, x1, x2;          /* x[c4 .. c4 + rem)                                 */
    int first, final;            /* sums start at 0 (else at g); requantize into g   */
    const int32_t *m, *n, *bias; /* the rows' multipliers and biases                  */
    int32_t *g;                  /* sums or results                                   */
} quad_job_t;

/* Rows [0, rows4) (rows4 a multiple of 4; w0: row 0's first byte), four at a time, over the
 * job's columns: the 4-column groups by SXTB16 / SMLAD sharing the x words (rows read with
 * unaligned LDR), the last rem columns by MLA; then into g, requantized when the job is final,
 * else as int32 partial sums. */
static __attribute__((noinline)) void quad_blocks(const int8_t *w0, const quad_job_t *j,
                                                  uint32_t rows4)
{
    uint32_t r;
    for (r = 0; r < rows4; r += 4) {
        const int8_t *row0 = w0 + (size_t)r * j->cols;
        const uint32_t st = j->cols;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = j->k;
        const int8_t *p = row0 + j->c0, *q = p + 2u * st;
        const uint32_t *xb = j->xb;
        uint32_t x0, x1, w, t;
        if (!j->first) {
            s0 = j->g[r], s1 = j->g[r + 1], s2 = j->g[r + 2], s3 = j->g[r + 3];
        }
#define EGRU_CM_ROW(addr, s)                                                                       \
    "ldr %[w], " addr "\n\t"                                                                       \
    "sxtb16 %[t], %[w]\n\t"                                                                        \
    "smlad %[" s "], %[t], %[x0], %[" s "]\n\t"                                                    \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                                \
    "smlad %[" s "], %[w], %[x1], %[" s "]\n\t"
#define EGRU_CM_QUAD                                                                               \
    "ldrd %[x0], %[x1], [%[xb]], #8\n\t" EGRU_CM_ROW("[%[p], %[st]]", "s1")                        \
        EGRU_CM_ROW("[%[q], %[st]]", "s3") EGRU_CM_ROW("[%[p]], #4", "s0")                         \
            EGRU_CM_ROW("[%[q]], #4", "s2")
        /* k: 4-column groups; two per iteration, then the odd one (k ends at -1 when there is one,
         * -2 when not). */
        __asm__ __volatile__(
            "subs %[k], %[k], #2\n\t"
            "blt 2f\n\t"
            "1:\n\t" EGRU_CM_QUAD EGRU_CM_QUAD "subs %[k], %[k], #2\n\t"
            "bge 1b\n\t"
            "2:\n\t"
            "tst %[k], #1\n\t"
            "beq 3f\n\t" EGRU_CM_QUAD "3:\n\t"
            : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [p] "+r"(p), [q] "+r"(q),
              [xb] "+r"(xb), [k] "+r"(k), [x0] "=&r"(x0), [x1] "=&r"(x1), [w] "=&r"(w), [t] "=&r"(t)
            : [st] "r"(st)
            : "cc", "memory");
#undef EGRU_CM_QUAD
#undef EGRU_CM_ROW
        if (j->rem) {
            const int8_t *tl = row0 + j->c4;
            s0 = row_rem(tl, j->rem, j->x0, j->x1, j->x2, s0);
            s1 = row_rem(tl + st, j->rem, j->x0, j->x1, j->x2, s1);
            s2 = row_rem(tl + 2u * st, j->rem, j->x0, j->x1, j->x2, s2);
            s3 = row_rem(tl + 3u * st, j->rem, j->x0, j->x1, j->x2, s3);
        }
        if (!j->final) {
            j->g[r] = s0, j->g[r + 1] = s1, j->g[r + 2] = s2, j->g[r + 3] = s3;
            continue;
        }
        j->g[r] = requant(s0, j->m[r], j->n[r], j->bias[r]);
        j->g[r + 1] = requant(s1, j->m[r + 1], j->n[r + 1], j->bias[r + 1]);
        j->g[r + 2] = requant(s2, j->m[r + 2], j->n[r + 2], j->bias[r + 2]);
        j->g[r + 3] = requant(s3, j->m[r + 3], j->n[r + 3], j->bias[r + 3]);
    }
}

void egru_matvec_s8_s16_cortex_m(const int8_t *w, const int16_t *x, const int32_t *m,
                                 const int32_t *n, const int32_t *bias, int32_t *g, uint32_t rows,
                                 uint32_t cols)
{
    uint32_t xb[XMAX / 2 + 2] __attribute__((aligned(8)));
    const uint32_t main_cols = cols & ~7u; /* 8-column groups, in slices of XMAX */
    quad_job_t j;
    uint32_t r, c0, i;
    if (cols > EGRU_Q16_INT32_COLS) { /* int32 would not hold the sum: the reference's blocks */
        egru_matvec_s8_s16(w, x, m, n, bias, g, rows, cols);
        return;
    }
    j.xb = xb, j.cols = cols, j.m = m, j.n = n, j.bias = bias, j.g = g;
    j.rem = 0, j.x0 = j.x1 = j.x2 = 0, j.final = 0;
    /* Slices before the last one (matrices wider than XMAX): partial sums into g. */
    for (c0 = 0; c0 + XMAX < main_cols; c0 += XMAX) {
        reorder(x + c0, XMAX, xb);
        j.k = XMAX / 4, j.c0 = c0, j.c4 = c0 + XMAX, j.first = c0 == 0;
        quad_blocks(w, &j, rows & ~3u);
        for (r = rows & ~3u; r < rows; ++r) {
            const int8_t *row = w + (size_t)r * cols;
            int32_t s = c0 == 0 ? 0 : g[r];
            for (i = c0; i < c0 + XMAX; ++i) {
                s += (int32_t)row[i] * x[i];
            }
            g[r] = s;
        }
    }
    /* The last slice [c0, main_cols), the 4-column group after it and the last cols % 4
     * columns; requantized. */
    j.c0 = c0, j.c4 = cols & ~3u, j.rem = cols - j.c4, j.k = (int32_t)(j.c4 - c0) / 4;
    j.first = c0 == 0, j.final = 1;
    j.x0 = j.rem > 0 ? x[j.c4] : 0, j.x1 = j.rem > 1 ? x[j.c4 + 1] : 0;
    j.x2 = j.rem > 2 ? x[j.c4 + 2] : 0;
    reorder(x + c0, j.c4 - c0, xb);
    quad_blocks(w, &j, rows & ~3u);
    for (r = rows & ~3u; r < rows; ++r) { /* the last rows % 4 rows */
        const int8_t *row = w + (size_t)r * cols;
        int32_t s = j.first ? 0 : g[r];
        for (i = c0; i < j.c4; ++i) {
            s += (int32_t)row[i] * x[i];
        }
        g[r] = requant(row_rem(row + j.c4, j.rem, j.x0, j.x1, j.x2, s), m[r], n[r], bias[r]);
    }
}
#endif
