/* egru_gru_tail_s16_cortex_m.c - the element-wise part of one int16x8 GRU step with sigmoid
 * gates, a tanh candidate and a Q15 state (output format U), for Thumb-2 Cortex-M cores
 * (ARMv7-M and up: M3, M4, M7, M33; GCC or clang; QADD where the DSP extension has it, else
 * EGRU_CM_QADD's ADDS sequence). Same contract and the same integers as
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
 * The reset_after loop is one assembler routine (egru_cm_q16_tail_ra, 68 instructions per unit),
 * reset_before's is C. No floating-point operation. Stack: none beyond the saved registers. */
#include "../egru_kernels.h"

#if EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) && defined(__thumb2__)
#include "../../int16x8/egru_q16.h"

/* QADD d, a, b (the DSP extension's saturating add) as assembler text; without the extension an
 * ADDS whose overflow (V) replaces the wrapped sum by the end of its true sign: the wrapped sum
 * has the opposite sign, so (d >> 31) ^ 2^31 is INT32_MAX or INT32_MIN (it changes the flags;
 * the routine sets them again before it reads them). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define EGRU_CM_QADD(d, a, b) "    qadd " d ", " a ", " b "\n"
#else
#define EGRU_CM_QADD(d, a, b)                                                                      \
    "    adds " d ", " a ", " b "\n"                                                               \
    "    itt vs\n"                                                                                 \
    "    asrvs " d ", " d ", #31\n"                                                                \
    "    eorvs " d ", " d ", #0x80000000\n"
#endif

#define EGRU_CM_INLINE inline __attribute__((always_inline))

/* v clamped to [-2^19, 2^19 - 1] (SSAT). */
static EGRU_CM_INLINE int32_t ssat20(int32_t v)
{
    int32_t r;
    __asm__("ssat %0, #20, %1" : "=r"(r) : "r"(v));
    return r;
}

/* v clamped to [0, 2^19 - 1], [0, 2^15 - 1] (USAT). */
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

/* h' = sat16(rshift(z h + (32768 - z) hh, 15)) = hh + rshift(z (h - hh), 15), at least -32767. */
static EGRU_CM_INLINE int16_t blend(int32_t z, int32_t h, int32_t hh)
{
    const int32_t v = hh + asr32(z * (h - hh) + 16384, 15);
    return (int16_t)(v < -EGRU_Q16_QMAX ? -EGRU_Q16_QMAX : v);
}

/* egru_cm_q16_tail_ra(gx, gh, h, hend, sig, tanh, ub): the reset_after loop of the tail below in
 * one routine, for h up to hend (ub = 4 * units, the byte distance between gate blocks; sig and
 * tanh the tables): per unit r = sig_q(QADD(gx_r, gh_r)), n = QADD(gx_h, rshift(r gh_h, 15)) with
 * the rounding by SMULL and the carry of bit 14 (the 64-bit product's floor shift plus its bit
 * 14), hh = tanh16_q(n), z = sig_q(QADD(gx_z, gh_z)), h' = blend(z, h, hh): 68 instructions per
 * unit. The blend's clamp: its value lies between h and hh >= -32767, so it is below -32767 only
 * as -32768 (an initial state of -32768), which one ADD makes -32767. Registers: r0 gx, r1 gh, r2
 * h, r3 hend, r4 sig, r5 tanh, r6 ub, r7-r11 work, r12 = 16384 and lr = 1024 (the MLA rounding
 * terms). AAPCS, arguments 5 to 7 on the stack. */
/* sig_q(QADD(r7, r8)) into r10 (r8, r9 scratch; r4 the table, lr = 1024), flags from r7. */
#define EGRU_CM_SIG_R7                                                                             \
    EGRU_CM_QADD("r7", "r7", "r8")                                                                 \
    "    ssat r7, #21, r7\n"                                                                       \
    "    eor r8, r7, r7, asr #31\n"                                                                \
    "    sub r8, r8, r7, asr #31\n"                                                                \
    "    usat r8, #20, r8\n"                                                                       \
    "    lsr r9, r8, #11\n"                                                                        \
    "    ldr r9, [r4, r9, lsl #1]\n"                                                               \
    "    uxth r10, r9\n"                                                                           \
    "    rsb r9, r10, r9, lsr #16\n"                                                               \
    "    ubfx r8, r8, #0, #11\n"                                                                   \
    "    mla r9, r9, r8, lr\n"                                                                     \
    "    add r10, r10, r9, lsr #11\n"                                                              \
    "    cmp r7, #0\n"                                                                             \
    "    it lt\n"                                                                                  \
    "    rsblt r10, r10, #32768\n"
/* clang-format off */
__asm__(".pushsection .text.egru_cm_q16_tail_ra,\"ax\",%progbits\n"
        "    .syntax unified\n"
        "    .thumb\n"
        "    .p2align 2\n"
        "    .global egru_cm_q16_tail_ra\n"
        "    .type egru_cm_q16_tail_ra, %function\n"
        "    .thumb_func\n"
        "egru_cm_q16_tail_ra:\n"
        "    push {r4-r11, lr}\n"
        "    ldr r4, [sp, #36]\n"
        "    ldr r5, [sp, #40]\n"
        "    ldr r6, [sp, #44]\n"
        "    mov r12, #16384\n"
        "    mov lr, #1024\n"
        "    cmp r2, r3\n"
        "    bhs 9f\n"
        "1:\n"
        /* r = sig_q(QADD(gx_r, gh_r)) into r10 */
        "    ldr r7, [r0, r6]\n"
        "    ldr r8, [r1, r6]\n"
        EGRU_CM_SIG_R7
        /* n = QADD(gx_h, rshift(r * gh_h, 15)) into r7 */
        "    ldr r7, [r1, r6, lsl #1]\n"
        "    smull r8, r9, r10, r7\n"
        "    lsls r7, r8, #18\n" /* C = bit 14 of the product */
        "    lsr r8, r8, #15\n"
        "    orr r8, r8, r9, lsl #17\n"
        "    adc r8, r8, #0\n"
        "    ldr r7, [r0, r6, lsl #1]\n"
        EGRU_CM_QADD("r7", "r7", "r8")
        /* hh = tanh16_q(n) into r11 */
        "    ssat r8, #20, r7\n"
        "    eor r9, r8, r8, asr #31\n"
        "    sub r9, r9, r8, asr #31\n"
        "    usat r9, #19, r9\n"
        "    lsr r10, r9, #10\n"
        "    ldr r10, [r5, r10, lsl #1]\n"
        "    uxth r11, r10\n"
        "    rsb r10, r11, r10, lsr #16\n"
        "    ubfx r9, r9, #0, #10\n"
        "    mul r10, r10, r9\n"
        "    add r10, r10, #512\n"
        "    add r11, r11, r10, lsr #10\n"
        "    usat r11, #15, r11\n"
        "    cmp r8, #0\n"
        "    it lt\n"
        "    neglt r11, r11\n"
        /* z = sig_q(QADD(gx_z, gh_z)) into r10; gx and gh step to the next unit */
        "    ldr r7, [r0], #4\n"
        "    ldr r8, [r1], #4\n"
        EGRU_CM_SIG_R7
        /* h' = hh + rshift(z (h - hh), 15), -32768 made -32767 */
        "    ldrsh r7, [r2]\n"
        "    sub r7, r7, r11\n"
        "    mla r7, r10, r7, r12\n"
        "    add r7, r11, r7, asr #15\n"
        "    cmn r7, #32768\n"
        "    it le\n"
        "    addle r7, r7, #1\n"
        "    strh r7, [r2], #2\n"
        "    cmp r2, r3\n"
        "    blo 1b\n"
        "9:\n"
        "    pop {r4-r11, pc}\n"
        "    .size egru_cm_q16_tail_ra, .-egru_cm_q16_tail_ra\n"
        "    .popsection\n");
/* clang-format on */
#undef EGRU_CM_SIG_R7

void egru_cm_q16_tail_ra(const int32_t *gx, const int32_t *gh, int16_t *h, const int16_t *hend,
                         const uint16_t *sig, const uint16_t *tanh, uint32_t ub);

void egru_gru_tail_s16_cortex_m(const int32_t *gx, const int32_t *gh, int16_t *h, uint32_t units,
                                int reset_after)
{
    const uint16_t *const ts = egru_q16_sig_table, *const tt = egru_q16_tanh_table;
    const uint32_t u2 = 2u * units;
    int16_t *const end = h + units;
    if (reset_after) {
        egru_cm_q16_tail_ra(gx, gh, h, end, ts, tt, 4u * units);
        return;
    }
    for (; h < end; ++h, ++gx) {
        *h = blend(gx[0], *h, tanh16_q(gx[u2], tt));
    }
}
#else
typedef int egru_gru_tail_s16_cortex_m_unused; /* ISO C forbids an empty translation unit */
#endif
