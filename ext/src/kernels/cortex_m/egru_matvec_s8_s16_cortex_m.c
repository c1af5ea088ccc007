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
 * the last cols % 4 columns by MLA, reading exactly their bytes; the int32 sums go to g, and one
 * routine requantizes them in place four rows at a time (egru_cm_q16_requant4, n >= 33: one
 * SMULL, three shifts and adds, and a shared range check per block; 39 instructions per four
 * rows). 64- and 16-column rows (w 4-byte aligned) go by
 * fixed-offset assembly (egru_cm_s16_whole_S, 1.18 instructions per MAC), other widths with the
 * whole row loop in one asm block where there is no column remainder (quad_blocks_plain);
 * cols == 6 (a 6-axis sensor's input) has its own two-row path (matvec_cols6, 10 instructions
 * per row before the requantization). The int32 sums are exact: at most EGRU_Q16_INT32_COLS
 * (516) columns are summed in int32 (127 * 32767 * 516 < 2^31); wider matrices go to the
 * reference kernel. Matrices wider than XMAX are summed slice by slice into g (int32 partial
 * sums), then requantized. Without the DSP extension on Thumb-2 (ARMv7-M: the M3) rows go four
 * at a time by LDRSB + MLA (egru_cm_s16_quad_v7m, 2.5 instructions per MAC; 64-column rows eight
 * at a time at fixed offsets, egru_cm_s16_oct64_v7m, 2.19) and the same requantization; on
 * ARMv6-M (M0, M0+: no MLA or SMULL) four rows at a time by LDRSB + MULS + ADD
 * (egru_cm_s16_quad_v6m, 4.25 per MAC) and a requantization whose 64-bit product is four 16 x
 * 16-bit MULS (mul_hi_v6m); on hosts the set holds the reference. Stack: XMAX / 2 + 2 words (264
 * bytes). */

#include "../egru_kernels.h"

#if EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) && defined(__thumb2__)
#include "../../int16x8/egru_q16.h"

/* The helpers below are inlined at -Os too (each is a few instructions on the hot path). */
#define EGRU_CM_INLINE inline __attribute__((always_inline))

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

/* g[r] = satG(mul(g[r], (m[r], n[r])) + bias[r]) for r < rows, in place, as the reference
 * computes it (after the sums: one tight loop with its pointers in registers). For n >= 33
 * (the common case: a product's multiplier is below 2^-2) the rounding term 2^(n-1) falls in the
 * high word of p = acc * m = hi * 2^32 + lo (0 <= lo < 2^32), so rshift(p, n) =
 * floor((hi + 2^(n-33)) / 2^(n-32)) = floor((floor(hi / 2^(n-33)) + 1) / 2): one SMULL, two
 * arithmetic shifts and an add (|hi| <= 2^30, so nothing overflows; |result| <= 2^29 and
 * |bias| <= 2^30, so their sum fits int32). The high word is read by a modulo conversion, which
 * GCC and clang define. satG: SSAT #31 keeps [-2^30, 2^30 - 1]; a value it changed was beyond
 * the range (or exactly 2^30) and saturates to its sign's end. */
static EGRU_CM_INLINE int32_t requant1(int32_t acc, int32_t m, int32_t n, int32_t bias)
{
    const int32_t e = n - 33;
    if (e >= 0) {
        const int32_t hi = (int32_t)(uint32_t)((uint64_t)((int64_t)acc * m) >> 32);
        const int32_t v = asr32(asr32(hi, (uint32_t)e) + 1, 1) + bias;
        const int32_t t = ssat31(v);
        return t == v ? t : v > 0 ? EGRU_Q16_G_SAT : -EGRU_Q16_G_SAT;
    }
    return requant_slow(acc, m, n, bias);
}

/* egru_cm_q16_requant4(g, m, n, bias, gend): g[r] = satG(mul(g[r], (m[r], n[r])) + bias[r]) in
 * place, four rows at a time from g to gend (a multiple of four rows on), each array read by one
 * LDM per block: 39 instructions per four rows. A block stops the routine, untouched, when one of
 * its n is below 33 (the sign of the OR of the n - 33) or one of its results v = bias + rshift(.)
 * lies outside [-2^30, 2^30) (bit 31 of v ^ 2v: |v| <= 1.5 * 2^30, see requant1, so v itself fits
 * int32), where satG could apply; it returns the g it stopped at (gend when it did not). For
 * n >= 33 rshift(acc * m, n) = floor((floor(hi / 2^(n-33)) + 1) / 2), hi the high word of the
 * SMULL (requant1). Uses r0-r12 and lr; AAPCS (the fifth argument on the stack). */
__asm__(".pushsection .text.egru_cm_q16_requant4,\"ax\",%progbits\n"
        "    .syntax unified\n"
        "    .thumb\n"
        "    .p2align 2\n"
        "    .global egru_cm_q16_requant4\n"
        "    .type egru_cm_q16_requant4, %function\n"
        "    .thumb_func\n"
        "egru_cm_q16_requant4:\n"
        "    push {r4-r11, lr}\n"
        "    ldr r12, [sp, #36]\n"
        "    cmp r0, r12\n"
        "    bhs 9f\n"
        "1:\n"
        "    ldmia r1!, {r4-r7}\n" /* m */
        "    ldm r0, {r8-r11}\n"   /* the int32 sums */
        "    smull r4, r8, r8, r4\n"
        "    smull r5, r9, r9, r5\n"
        "    smull r6, r10, r10, r6\n"
        "    smull r7, r11, r11, r7\n"
        "    ldmia r2!, {r4-r7}\n" /* n, then e = n - 33 */
        "    sub r4, r4, #33\n"
        "    sub r5, r5, #33\n"
        "    sub r6, r6, #33\n"
        "    sub r7, r7, #33\n"
        "    orr lr, r4, r5\n"
        "    orr lr, lr, r6\n"
        "    orrs lr, lr, r7\n"
        "    bmi 9f\n"
        "    asr r8, r8, r4\n"
        "    asr r9, r9, r5\n"
        "    asr r10, r10, r6\n"
        "    asr r11, r11, r7\n"
        "    add r8, r8, #1\n"
        "    add r9, r9, #1\n"
        "    add r10, r10, #1\n"
        "    add r11, r11, #1\n"
        "    ldmia r3!, {r4-r7}\n" /* bias, then v */
        "    add r4, r4, r8, asr #1\n"
        "    add r5, r5, r9, asr #1\n"
        "    add r6, r6, r10, asr #1\n"
        "    add r7, r7, r11, asr #1\n"
        "    eor r8, r4, r4, lsl #1\n"
        "    eor r9, r5, r5, lsl #1\n"
        "    eor r10, r6, r6, lsl #1\n"
        "    eor r11, r7, r7, lsl #1\n"
        "    orr r8, r8, r9\n"
        "    orr r8, r8, r10\n"
        "    orrs r8, r8, r11\n"
        "    bmi 9f\n"
        "    stmia r0!, {r4-r7}\n"
        "    cmp r0, r12\n"
        "    blo 1b\n"
        "9:\n"
        "    pop {r4-r11, pc}\n"
        "    .size egru_cm_q16_requant4, .-egru_cm_q16_requant4\n"
        "    .popsection\n");

int32_t *egru_cm_q16_requant4(int32_t *g, const int32_t *m, const int32_t *n, const int32_t *bias,
                              const int32_t *gend);

/* g[r] = satG(mul(g[r], (m[r], n[r])) + bias[r]) for r < rows, in place, as the reference
 * computes it: blocks of four rows by egru_cm_q16_requant4, a block it stops at (an n below 33,
 * a result satG may change) and the last rows % 4 rows by requant1. */
static __attribute__((noinline)) void requant_rows(int32_t *g, const int32_t *m, const int32_t *n,
                                                   const int32_t *bias, uint32_t rows)
{
    int32_t *const end = g + (rows & ~3u);
    uint32_t i = 0, k;
    while (g + i < end) {
        i = (uint32_t)(egru_cm_q16_requant4(g + i, m + i, n + i, bias + i, end) - g);
        if (g + i < end) {
            for (k = i + 4u; i < k; ++i) {
                g[i] = requant1(g[i], m[i], n[i], bias[i]);
            }
        }
    }
    for (; i < rows; ++i) {
        g[i] = requant1(g[i], m[i], n[i], bias[i]);
    }
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include "egru_cm_qrow_asm.h"

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
    const uint32_t *xb;         /* x[c0 .. c4) reordered (8-byte aligned)            */
    int32_t k;                  /* (c4 - c0) / 4: 4-column groups by SMLAD           */
    uint32_t cols, c0, c4, rem; /* row stride; the columns summed here: [c0, c4 + rem) */
    int32_t x0, x1, x2;         /* x[c4 .. c4 + rem)                                 */
    int first;                  /* sums start at 0 (else at g)                       */
    int32_t *g;                 /* int32 sums                                        */
} quad_job_t;

/* One 4-column group of four rows (p: rows 0, 1; q: rows 2, 3; st the row stride). */
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

/* Rows [0, rows4) (rows4 a multiple of 4; w0: row 0's first byte), four at a time, over the
 * job's columns: the 4-column groups by SXTB16 / SMLAD sharing the x words (rows read with
 * unaligned LDR), the last rem columns by MLA; the int32 sums into g (requant_rows then
 * requantizes them: here the block's registers are all taken by the sums and the x words). */
static __attribute__((noinline)) void quad_blocks(const int8_t *w0, const quad_job_t *j,
                                                  uint32_t rows4)
{
    const uint32_t st = j->cols, rem = j->rem;
    const int first = j->first;
    const int8_t *row0 = w0;
    int32_t *g = j->g, *const gend = g + rows4;
    for (; g < gend; g += 4, row0 += 4u * st) {
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = j->k;
        const int8_t *p = row0 + j->c0, *q = p + 2u * st;
        const uint32_t *xb = j->xb;
        uint32_t x0, x1, w, t;
        if (!first) {
            s0 = g[0], s1 = g[1], s2 = g[2], s3 = g[3];
        }
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
        if (rem) {
            const int8_t *tl = row0 + j->c4;
            s0 = row_rem(tl, rem, j->x0, j->x1, j->x2, s0);
            s1 = row_rem(tl + st, rem, j->x0, j->x1, j->x2, s1);
            s2 = row_rem(tl + 2u * st, rem, j->x0, j->x1, j->x2, s2);
            s3 = row_rem(tl + 3u * st, rem, j->x0, j->x1, j->x2, s3);
        }
        g[0] = s0, g[1] = s1, g[2] = s2, g[3] = s3;
    }
}

/* quad_blocks for the common job, one slice of all the columns with no remainder (c0 = 0,
 * cols = 4k, k >= 1, rows4 >= 4, a multiple of 4): the whole row loop in one asm block, so that
 * the per-block work is reloading xb and k, zeroing the sums and storing them (about 20
 * instructions beside the 4-column groups, against about 48 for quad_blocks' C); the groups go
 * four per iteration (86 instructions per 64 MACs), then one at a time. After a block's groups p
 * and q stand at rows 1 and 3's starts, so the next block's are q + cols and that plus 2 cols.
 * xb, k, g and the end of g live in memory operands: the asm takes 13 registers. */
static __attribute__((noinline)) void
quad_blocks_plain(const int8_t *w0, uint32_t cols, const uint32_t *xb0, int32_t *g, uint32_t rows4)
{
    const int8_t *p = w0, *q = w0 + 2u * cols;
    const int32_t *const gend = g + rows4;
    const int32_t k0 = (int32_t)(cols / 4u);
    int32_t *gp = g;
    int32_t s0, s1, s2, s3, k;
    const uint32_t *xb;
    uint32_t x0, x1, w, t;
    __asm__ __volatile__("0:\n\t"
                         "ldr %[xb], %[xb0]\n\t"
                         "ldr %[k], %[k0]\n\t"
                         "movs %[s0], #0\n\t"
                         "movs %[s1], #0\n\t"
                         "movs %[s2], #0\n\t"
                         "movs %[s3], #0\n\t"
                         "subs %[k], %[k], #4\n\t"
                         "blt 2f\n\t"
                         "1:\n\t" EGRU_CM_QUAD EGRU_CM_QUAD EGRU_CM_QUAD EGRU_CM_QUAD
                         "subs %[k], %[k], #4\n\t"
                         "bge 1b\n\t"
                         "2:\n\t"
                         "adds %[k], %[k], #4\n\t"
                         "beq 3f\n\t"
                         "4:\n\t" EGRU_CM_QUAD "subs %[k], %[k], #1\n\t"
                         "bne 4b\n\t"
                         "3:\n\t"
                         "ldr %[t], %[gp]\n\t"
                         "strd %[s0], %[s1], [%[t]]\n\t"
                         "strd %[s2], %[s3], [%[t], #8]\n\t"
                         "adds %[t], %[t], #16\n\t"
                         "str %[t], %[gp]\n\t"
                         "ldr %[w], %[gend]\n\t"
                         "add %[p], %[q], %[st]\n\t"
                         "add %[q], %[p], %[st], lsl #1\n\t"
                         "cmp %[t], %[w]\n\t"
                         "blo 0b\n\t"
                         : [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3),
                           [p] "+r"(p), [q] "+r"(q), [xb] "=&r"(xb), [k] "=&r"(k), [x0] "=&r"(x0),
                           [x1] "=&r"(x1), [w] "=&r"(w), [t] "=&r"(t), [gp] "+m"(gp)
                         : [st] "r"(cols), [xb0] "m"(xb0), [k0] "m"(k0), [gend] "m"(gend)
                         : "cc", "memory");
}
#undef EGRU_CM_QUAD
#undef EGRU_CM_ROW

/* egru_cm_s16_whole_S(w, xb, g, wend), S = 64 or 16: the int32 sums of four rows at a time of S
 * columns, rows contiguous (stride S, w 4-byte aligned: LDRD), x reordered in xb (S / 2 words),
 * from w to wend, into g. The int8 fast kernel's routine (egru_matvec_s8_cortex_m.c,
 * egru_cm_s8_whole_S) with int16 x: one pointer for the four rows, LDRD at offsets fixed at
 * assembly time (k * S + 8 c; the first LDRD post-increments w to the next four rows, the
 * others use negative offsets from there), the columns unrolled, the first chunk with SMUAD (no
 * sums to clear): per 8 columns one LDM of four x words and 4 x (LDRD + 4 SXTB16 + 4 SMLAD),
 * 37 instructions per 32 MACs, and 5 per four rows (1.18 per MAC on 64 columns). Each width in
 * its own section (the linker keeps the ones a model uses: about 1.2 KB for 64, 0.3 KB for 16). */
#define EGRU_CM_S16_WHOLE(S)                                                                       \
    __asm__(".pushsection .text.egru_cm_s16_whole_" #S ",\"ax\",%progbits\n"                       \
            "    .syntax unified\n"                                                                \
            "    .thumb\n"                                                                         \
            "    .p2align 2\n"                                                                     \
            "    .global egru_cm_s16_whole_" #S "\n"                                               \
            "    .type egru_cm_s16_whole_" #S ", %function\n"                                      \
            "    .thumb_func\n"                                                                    \
            "egru_cm_s16_whole_" #S ":\n"                                                          \
            "    push {r3-r11, lr}\n"                                                              \
            "    mov r11, r0\n"                                                                    \
            "    mov r12, r1\n"                                                                    \
            "    mov lr, r2\n"                                                                     \
            "1:\n"                                                                                 \
            "    egru_cm_s16_qchunks " #S ", 0, (" #S "/8)\n"                                      \
            "    stmia lr!, {r0-r3}\n"                                                             \
            "    sub r12, r12, #(2 * " #S ")\n"                                                    \
            "    ldr r4, [sp]\n"                                                                   \
            "    cmp r11, r4\n"                                                                    \
            "    bne 1b\n"                                                                         \
            "    pop {r3-r11, pc}\n"                                                               \
            "    .size egru_cm_s16_whole_" #S ", .-egru_cm_s16_whole_" #S "\n"                     \
            "    .popsection\n")

__asm__(EGRU_CM_QROW_ASM("egru_cm_s16"));
EGRU_CM_S16_WHOLE(16);
EGRU_CM_S16_WHOLE(64);
#undef EGRU_CM_S16_WHOLE

void egru_cm_s16_whole_16(const int8_t *w, const uint32_t *xb, int32_t *g, const int8_t *wend);
void egru_cm_s16_whole_64(const int8_t *w, const uint32_t *xb, int32_t *g, const int8_t *wend);

/* Two int16 as the halves of a word (a low). */
static EGRU_CM_INLINE uint32_t pack16(int16_t a, int16_t b)
{
    return (uint32_t)(uint16_t)a | ((uint32_t)(uint16_t)b << 16);
}

/* cols == 6 (a 6-axis sensor's input product; the general path would spend one 4-column SMLAD
 * group and two MLA columns per row on it, with a four-row block's overhead): two rows at a
 * time are 12 consecutive bytes, three words A = a0..a3, B = a4 a5 b0 b1, C = b2..b5 (LDR: the
 * M4 and M7 load unaligned words from normal memory). SXTB16 of A (plain and ROR 8) pairs with
 * x0 | x2 and x1 | x3 by SMUAD / SMLAD; of B it gives a4 | b0 and a5 | b1, which SMLABB / SMLABT
 * take with x4, x5 for row a and SMULTB / SMLATB with x0, x1 for row b; of C it pairs with
 * x2 | x4 and x3 | x5. 20 instructions per two rows (12 MACs) with the loop, the int32 sums
 * stored, then requantized in place (requant_rows). Exactly the rows' bytes are read; an odd
 * last row goes by MLA. */
static __attribute__((noinline)) void matvec_cols6(const int8_t *w, const int16_t *x,
                                                   const int32_t *m, const int32_t *n,
                                                   const int32_t *bias, int32_t *g, uint32_t rows)
{
    const uint32_t x02 = pack16(x[0], x[2]), x13 = pack16(x[1], x[3]), x45 = pack16(x[4], x[5]);
    const uint32_t x24 = pack16(x[2], x[4]), x35 = pack16(x[3], x[5]);
    const int8_t *p = w;
    int32_t *q = g;
    uint32_t k = rows / 2u, a, b, c;
    int32_t sa, sb;
    if (k) {
        __asm__ __volatile__(
            "1:\n\t"
            "ldr %[a], [%[p]], #4\n\t"
            "ldr %[b], [%[p]], #4\n\t"
            "ldr %[c], [%[p]], #4\n\t"
            "sxtb16 %[sa], %[a], ror #8\n\t"
            "smuad %[sa], %[sa], %[x13]\n\t"
            "sxtb16 %[a], %[a]\n\t"
            "smlad %[sa], %[a], %[x02], %[sa]\n\t"
            "sxtb16 %[sb], %[b]\n\t"
            "smlabb %[sa], %[sb], %[x45], %[sa]\n\t"
            "smultb %[sb], %[sb], %[x02]\n\t"
            "sxtb16 %[b], %[b], ror #8\n\t"
            "smlabt %[sa], %[b], %[x45], %[sa]\n\t"
            "smlatb %[sb], %[b], %[x13], %[sb]\n\t"
            "sxtb16 %[a], %[c]\n\t"
            "smlad %[sb], %[a], %[x24], %[sb]\n\t"
            "sxtb16 %[c], %[c], ror #8\n\t"
            "smlad %[sb], %[c], %[x35], %[sb]\n\t"
            "strd %[sa], %[sb], [%[q]], #8\n\t"
            "subs %[k], %[k], #1\n\t"
            "bne 1b\n\t"
            : [p] "+r"(p), [q] "+r"(q), [k] "+r"(k), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c),
              [sa] "=&r"(sa), [sb] "=&r"(sb)
            : [x02] "r"(x02), [x13] "r"(x13), [x45] "r"(x45), [x24] "r"(x24), [x35] "r"(x35)
            : "cc", "memory");
    }
    if (rows & 1u) {
        int32_t s = 0;
        uint32_t i;
        for (i = 0; i < 6u; ++i) {
            s += (int32_t)p[i] * x[i];
        }
        *q = s;
    }
    requant_rows(g, m, n, bias, rows);
}

void egru_matvec_s8_s16_cortex_m(const int8_t *w, const int16_t *x, const int32_t *m,
                                 const int32_t *n, const int32_t *bias, int32_t *g, uint32_t rows,
                                 uint32_t cols)
{
    uint32_t xb[XMAX / 2 + 2] __attribute__((aligned(8)));
    const uint32_t main_cols = cols & ~7u; /* 8-column groups, in slices of XMAX */
    quad_job_t j;
    uint32_t r, c0, i;
    if (cols == 6) {
        matvec_cols6(w, x, m, n, bias, g, rows);
        return;
    }
    if (cols > EGRU_Q16_INT32_COLS) { /* int32 would not hold the sum: the reference's blocks */
        egru_matvec_s8_s16(w, x, m, n, bias, g, rows, cols);
        return;
    }
    j.xb = xb, j.cols = cols, j.g = g;
    j.rem = 0, j.x0 = j.x1 = j.x2 = 0;
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
     * columns; then all rows requantized. */
    j.c0 = c0, j.c4 = cols & ~3u, j.rem = cols - j.c4, j.k = (int32_t)(j.c4 - c0) / 4;
    j.first = c0 == 0;
    j.x0 = j.rem > 0 ? x[j.c4] : 0, j.x1 = j.rem > 1 ? x[j.c4 + 1] : 0;
    j.x2 = j.rem > 2 ? x[j.c4 + 2] : 0;
    reorder(x + c0, j.c4 - c0, xb);
    if ((cols == 64 || cols == 16) && rows >= 4 && ((uintptr_t)w & 3u) == 0) {
        (cols == 64 ? egru_cm_s16_whole_64 : egru_cm_s16_whole_16)(w, xb, g,
                                                                   w + (size_t)(rows & ~3u) * cols);
    } else if (c0 == 0 && j.rem == 0 && j.k > 0 && rows >= 4) {
        quad_blocks_plain(w, cols, xb, g, rows & ~3u);
    } else {
        quad_blocks(w, &j, rows & ~3u);
    }
    for (r = rows & ~3u; r < rows; ++r) { /* the last rows % 4 rows */
        const int8_t *row = w + (size_t)r * cols;
        int32_t s = j.first ? 0 : g[r];
        for (i = c0; i < j.c4; ++i) {
            s += (int32_t)row[i] * x[i];
        }
        g[r] = row_rem(row + j.c4, j.rem, j.x0, j.x1, j.x2, s);
    }
    requant_rows(g, m, n, bias, rows);
}
#else /* ARMv7-M or ARMv8-M Mainline without the DSP extension (Cortex-M3, M33 without DSP) */

/* egru_cm_s16_quad_v7m(w, x, g, gend, cols): the int32 sums of four rows at a time (rows
 * contiguous, stride cols >= 1, any alignment) from w, into g up to gend, by LDRSB + MLA sharing
 * one LDRSH of x per column (ARMv7-M has no SXTB16 or SMLAD): row 0 by post-indexed LDRSB, rows
 * 1 to 3 at register offsets cols, 2 cols, 3 cols; columns two per iteration after an odd first
 * one: 20 instructions per 8 MACs (2.5 per MAC), 13 per four rows. The sums are exact (at most
 * EGRU_Q16_INT32_COLS columns). Registers: r0-r3 the sums, r4 x[j], r5 a weight, r6 row 0's
 * next byte, r7 x's next value, r8 the column pairs left, r9-r11 the row offsets, r12 g, lr
 * gend. AAPCS, the fifth argument on the stack. */
#define EGRU_CM_V7M_COL                                                                            \
    "    ldrsh r4, [r7], #2\n"                                                                     \
    "    ldrsb r5, [r6, r9]\n"                                                                     \
    "    mla r1, r5, r4, r1\n"                                                                     \
    "    ldrsb r5, [r6, r10]\n"                                                                    \
    "    mla r2, r5, r4, r2\n"                                                                     \
    "    ldrsb r5, [r6, r11]\n"                                                                    \
    "    mla r3, r5, r4, r3\n"                                                                     \
    "    ldrsb r5, [r6], #1\n"                                                                     \
    "    mla r0, r5, r4, r0\n"
__asm__(".pushsection .text.egru_cm_s16_quad_v7m,\"ax\",%progbits\n"
        "    .syntax unified\n"
        "    .thumb\n"
        "    .p2align 2\n"
        "    .global egru_cm_s16_quad_v7m\n"
        "    .type egru_cm_s16_quad_v7m, %function\n"
        "    .thumb_func\n"
        "egru_cm_s16_quad_v7m:\n"
        "    push {r4-r11, lr}\n"
        "    mov r6, r0\n"
        "    mov r7, r1\n"
        "    mov r12, r2\n"
        "    mov lr, r3\n"
        "    ldr r9, [sp, #36]\n" /* cols */
        "    add r10, r9, r9\n"
        "    add r11, r10, r9\n"
        "    cmp r12, lr\n"
        "    bhs 9f\n"
        "1:\n"
        "    movs r0, #0\n"
        "    movs r1, #0\n"
        "    movs r2, #0\n"
        "    movs r3, #0\n"
        "    tst r9, #1\n"
        "    beq 2f\n" EGRU_CM_V7M_COL "2:\n"
        "    lsrs r8, r9, #1\n"
        "    beq 4f\n"
        "3:\n" EGRU_CM_V7M_COL EGRU_CM_V7M_COL "    subs r8, r8, #1\n"
        "    bne 3b\n"
        "4:\n"
        "    stmia r12!, {r0-r3}\n"
        "    sub r7, r7, r9, lsl #1\n" /* x again */
        "    add r6, r6, r11\n"        /* the next four rows */
        "    cmp r12, lr\n"
        "    blo 1b\n"
        "9:\n"
        "    pop {r4-r11, pc}\n"
        "    .size egru_cm_s16_quad_v7m, .-egru_cm_s16_quad_v7m\n"
        "    .popsection\n");
#undef EGRU_CM_V7M_COL

void egru_cm_s16_quad_v7m(const int8_t *w, const int16_t *x, int32_t *g, const int32_t *gend,
                          uint32_t cols);

/* egru_cm_s16_oct64_v7m(w, x, g, gend): the same for 64-column rows (a GRU(64)'s recurrent
 * product), eight rows at a time with every offset fixed at assembly time: per column one LDRSH
 * of x and eight LDRSB (offsets 64 r + j) + MLA, eight columns per iteration, 140 instructions
 * per 64 MACs (2.19 per MAC), 14 per eight rows. Registers: r0-r7 the sums, r8 x[j], r9 a
 * weight, r10 the block's next column, r11 x's next chunk, r12 the chunks left, lr g; gend on
 * the stack. */
__asm__(".pushsection .text.egru_cm_s16_oct64_v7m,\"ax\",%progbits\n"
        "    .syntax unified\n"
        "    .thumb\n"
        "    .p2align 2\n"
        "    .global egru_cm_s16_oct64_v7m\n"
        "    .type egru_cm_s16_oct64_v7m, %function\n"
        "    .thumb_func\n"
        "egru_cm_s16_oct64_v7m:\n"
        "    push {r3-r11, lr}\n" /* [sp]: gend */
        "    mov r10, r0\n"
        "    mov r11, r1\n"
        "    mov lr, r2\n"
        "    cmp lr, r3\n"
        "    bhs 9f\n"
        "1:\n"
        "    .irp rr, 0, 1, 2, 3, 4, 5, 6, 7\n"
        "    movs r\\rr, #0\n"
        "    .endr\n"
        "    mov r12, #8\n"
        "2:\n"
        "    .irp jj, 0, 1, 2, 3, 4, 5, 6, 7\n"
        "    ldrsh r8, [r11, #(2 * \\jj)]\n"
        "    .irp rr, 0, 1, 2, 3, 4, 5, 6, 7\n"
        "    ldrsb r9, [r10, #(64 * \\rr + \\jj)]\n"
        "    mla r\\rr, r9, r8, r\\rr\n"
        "    .endr\n"
        "    .endr\n"
        "    add r10, r10, #8\n"
        "    add r11, r11, #16\n"
        "    subs r12, r12, #1\n"
        "    bne 2b\n"
        "    stmia lr!, {r0-r7}\n"
        "    sub r11, r11, #128\n" /* x again */
        "    add r10, r10, #448\n" /* the next eight rows */
        "    ldr r9, [sp]\n"
        "    cmp lr, r9\n"
        "    blo 1b\n"
        "9:\n"
        "    pop {r3-r11, pc}\n"
        "    .size egru_cm_s16_oct64_v7m, .-egru_cm_s16_oct64_v7m\n"
        "    .popsection\n");

void egru_cm_s16_oct64_v7m(const int8_t *w, const int16_t *x, int32_t *g, const int32_t *gend);

/* The int32 sums of rows [0, rows & ~3) into g (cols <= EGRU_Q16_INT32_COLS). */
static void quad_sums(const int8_t *w, const int16_t *x, int32_t *g, uint32_t rows, uint32_t cols)
{
    const uint32_t rows8 = cols == 64 ? rows & ~7u : 0u, rows4 = rows & ~3u;
    if (rows8) {
        egru_cm_s16_oct64_v7m(w, x, g, g + rows8);
    }
    if (rows4 > rows8) {
        egru_cm_s16_quad_v7m(w + (size_t)rows8 * cols, x, g + rows8, g + rows4, cols);
    }
}
#endif
#elif EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) && defined(__ARM_ARCH_6M__)
/* ARMv6-M (Cortex-M0, M0+): no MLA, no SMULL, loads with register offsets only. */
#include "../../int16x8/egru_q16.h"

/* egru_cm_s16_quad_v6m(w, x, g, gend, cols): the int32 sums of four rows at a time (rows
 * contiguous, stride cols >= 1, any alignment) from w, into g up to gend: per column one LDRSH of
 * x and per row LDRSB (at register offsets 0, cols, 2 cols, 3 cols) + MULS + ADD into a sum in
 * r8-r11: 17 instructions per 4 MACs with the loop. The sums are exact (at most
 * EGRU_Q16_INT32_COLS columns). Registers: r0 x[j], r1 a product, r2 row 0's next byte, r3 x's
 * next value, r4-r6 the row offsets, r7 0, r8-r11 the sums, r12 the end of row 0, lr g; gend on
 * the stack. AAPCS, the fifth argument on the stack. */
__asm__(".pushsection .text.egru_cm_s16_quad_v6m,\"ax\",%progbits\n"
        "    .syntax unified\n"
        "    .thumb\n"
        "    .p2align 2\n"
        "    .global egru_cm_s16_quad_v6m\n"
        "    .type egru_cm_s16_quad_v6m, %function\n"
        "    .thumb_func\n"
        "egru_cm_s16_quad_v6m:\n"
        "    push {r4-r7, lr}\n"
        "    mov r4, r8\n"
        "    mov r5, r9\n"
        "    mov r6, r10\n"
        "    mov r7, r11\n"
        "    push {r4-r7}\n"
        "    ldr r4, [sp, #36]\n" /* cols */
        "    push {r3}\n"         /* [sp]: gend */
        "    mov lr, r2\n"
        "    mov r2, r0\n"
        "    mov r3, r1\n"
        "    adds r5, r4, r4\n"
        "    adds r6, r5, r4\n"
        "    movs r7, #0\n"
        "    mov r0, lr\n"
        "    ldr r1, [sp]\n"
        "    cmp r0, r1\n"
        "    bhs 9f\n"
        "1:\n"
        "    mov r8, r7\n"
        "    mov r9, r7\n"
        "    mov r10, r7\n"
        "    mov r11, r7\n"
        "    adds r0, r2, r4\n"
        "    mov r12, r0\n"
        "2:\n"
        "    ldrsh r0, [r3, r7]\n"
        "    adds r3, #2\n"
        "    ldrsb r1, [r2, r7]\n"
        "    muls r1, r0, r1\n"
        "    add r8, r1\n"
        "    ldrsb r1, [r2, r4]\n"
        "    muls r1, r0, r1\n"
        "    add r9, r1\n"
        "    ldrsb r1, [r2, r5]\n"
        "    muls r1, r0, r1\n"
        "    add r10, r1\n"
        "    ldrsb r1, [r2, r6]\n"
        "    muls r1, r0, r1\n"
        "    add r11, r1\n"
        "    adds r2, #1\n"
        "    cmp r2, r12\n"
        "    bne 2b\n"
        "    mov r1, lr\n"
        "    mov r0, r8\n"
        "    str r0, [r1]\n"
        "    mov r0, r9\n"
        "    str r0, [r1, #4]\n"
        "    mov r0, r10\n"
        "    str r0, [r1, #8]\n"
        "    mov r0, r11\n"
        "    str r0, [r1, #12]\n"
        "    adds r1, #16\n"
        "    mov lr, r1\n"
        "    adds r2, r2, r6\n" /* the next four rows */
        "    subs r3, r3, r5\n" /* x again */
        "    ldr r0, [sp]\n"
        "    cmp r1, r0\n"
        "    blo 1b\n"
        "9:\n"
        "    add sp, #4\n"
        "    pop {r4-r7}\n"
        "    mov r8, r4\n"
        "    mov r9, r5\n"
        "    mov r10, r6\n"
        "    mov r11, r7\n"
        "    pop {r4-r7, pc}\n"
        "    .size egru_cm_s16_quad_v6m, .-egru_cm_s16_quad_v6m\n"
        "    .popsection\n");

void egru_cm_s16_quad_v6m(const int8_t *w, const int16_t *x, int32_t *g, const int32_t *gend,
                          uint32_t cols);

/* The high word of the 64-bit product a * m (floor(a m / 2^32)) for 0 <= m < 2^31, from four 16 x
 * 16-bit MULS: with a = ah 2^16 + al and m = mh 2^16 + ml (al, ml unsigned, ah signed, mh <
 * 2^15), a m = ah mh 2^32 + (ah ml + al mh) 2^16 + al ml; q = al mh + (al ml >> 16) < 2^31 +
 * 2^16 (unsigned), s = ah ml + (q & 0xFFFF) (signed, |ah ml| < 2^31), and the high word is
 * ah mh + (q >> 16) + floor(s / 2^16) (the rest, (s & 0xFFFF) 2^16 + (al ml & 0xFFFF), lies in
 * [0, 2^32)). No libgcc 64-bit helper. */
static int32_t mul_hi_v6m(int32_t a, uint32_t m)
{
    const int32_t ah = (int32_t)((uint32_t)a >> 16) - (a < 0 ? 65536 : 0); /* floor(a / 2^16) */
    const uint32_t al = (uint32_t)a & 0xFFFFu, mh = m >> 16, ml = m & 0xFFFFu;
    const uint32_t q = al * mh + ((al * ml) >> 16);
    const int32_t s = ah * (int32_t)ml + (int32_t)(q & 0xFFFFu);
    const int32_t s_hi = s >= 0 ? s >> 16 : ~(~s >> 16); /* floor(s / 2^16) */
    return ah * (int32_t)mh + (int32_t)(q >> 16) + s_hi;
}

/* g[r] = satG(mul(g[r], (m[r], n[r])) + bias[r]) for r < rows, in place, as the reference: for
 * n >= 33 rshift(acc m, n) = floor((floor(hi / 2^(n-33)) + 1) / 2) with hi = mul_hi_v6m (see
 * egru_cm_q16_requant4 on Thumb-2; |hi| <= 2^30, the result and bias add within int32), then
 * satG by comparison; other n by the reference's formula. */
static void requant_rows(int32_t *g, const int32_t *m, const int32_t *n, const int32_t *bias,
                         uint32_t rows)
{
    uint32_t r;
    for (r = 0; r < rows; ++r) {
        const int32_t e = n[r] - 33;
        if (e >= 0) {
            const int32_t hi = mul_hi_v6m(g[r], (uint32_t)m[r]);
            const int32_t t = hi >= 0 ? hi >> e : ~(~hi >> e);
            const int32_t v = ((t + 1) >= 0 ? (t + 1) >> 1 : ~(~(t + 1) >> 1)) + bias[r];
            g[r] = v > EGRU_Q16_G_SAT ? EGRU_Q16_G_SAT : v < -EGRU_Q16_G_SAT ? -EGRU_Q16_G_SAT : v;
        } else {
            g[r] = egru_q16_sat_g(egru_q16_mul(g[r], m[r], (uint32_t)n[r]) + bias[r]);
        }
    }
}

/* The int32 sums of rows [0, rows & ~3) into g (cols <= EGRU_Q16_INT32_COLS). */
static void quad_sums(const int8_t *w, const int16_t *x, int32_t *g, uint32_t rows, uint32_t cols)
{
    if (rows >= 4u) {
        egru_cm_s16_quad_v6m(w, x, g, g + (rows & ~3u), cols);
    }
}
#endif

#if EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) &&                               \
    ((defined(__thumb2__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)) ||                \
     defined(__ARM_ARCH_6M__))
/* Without the DSP extension (M3, M0): the four-row sums of the core's quad_sums, the last rows % 4
 * rows in C, then the requantization. */
void egru_matvec_s8_s16_cortex_m(const int8_t *w, const int16_t *x, const int32_t *m,
                                 const int32_t *n, const int32_t *bias, int32_t *g, uint32_t rows,
                                 uint32_t cols)
{
    uint32_t r, c;
    if (cols > EGRU_Q16_INT32_COLS || cols == 0) { /* int32 would not hold the sum */
        egru_matvec_s8_s16(w, x, m, n, bias, g, rows, cols);
        return;
    }
    quad_sums(w, x, g, rows, cols);
    for (r = rows & ~3u; r < rows; ++r) {
        const int8_t *row = w + (size_t)r * cols;
        int32_t s = 0;
        for (c = 0; c < cols; ++c) {
            s += (int32_t)row[c] * x[c];
        }
        g[r] = s;
    }
    requant_rows(g, m, n, bias, rows);
}
#endif
