/* egru_quantize_s8_cortex_m.c - int8 quantization of a product's input for Cortex-M (same
 * contract as egru_quantize_s8, bit for bit on every input). With EGRU_CFG_CM_S8_FAST 0 (the
 * compact variant, egru_matvec_s8_cortex_m.c) only the portable rounding below, with the shared
 * egru_abs_bits_max; with 1, all of this. The scale is the shared helper's
 * (egru_quantize_s8_scale); the maximum is egru_abs_bits_max's (the largest |x| bit pattern as an
 * unsigned integer: exact, NaN above +inf above every finite value).
 *
 * On a Thumb-2 M-profile core (M3, M4, M7, M33; GCC or clang) the maximum takes four values per
 * LDM and per value CMP m, v, LSL #1 / IT LO / LSL m, v, #1 (the doubled pattern drops the sign
 * bit and keeps the order; m is halved at the end): 15 instructions per 4 values.
 *
 * Rounding: q[j] = rint(x[j] * inv), half to even, where inv = 127 / m rounded. For |x[j]| <= m,
 * x[j] * inv rounded is at most 127 * (1 + 2^-24) rounded, below 127.5, so the integer is within
 * [-127, 127] and the reference's clamp never applies. With a single-precision FPU: VMUL then
 * VCVTR.S32.F32 (the conversion in the FPSCR rounding mode, as rintf rounds), eight values per
 * VLDM (31 instructions per 8 values), then four (15), then one at a time (7). Elsewhere (M0, M3,
 * hosts): adding 1.5 * 2^23 rounds to an integer, half to even, in the default rounding mode,
 * exactly as rintf does, and the integer is the difference of the two bit patterns (no libm call);
 * the clamp stays there. */
#include "../egru_kernels.h"
#include "egru_cortex_m.h"

/* The fast variant where it is faster: not on M-profile cores without the DSP extension (M0, M3),
 * where its portable C is as slow as the compact one's and needs 130 more bytes of stack (hosts
 * build the configured variant: the tests run its portable C there). */
#if EGRU_CFG_CM_S8_FAST && !(defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M' &&           \
                             !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP))

#if (defined(__GNUC__) || defined(__clang__)) && defined(__ARM_ARCH_PROFILE) &&                    \
    __ARM_ARCH_PROFILE == 'M' && defined(__thumb2__)
#define EGRU_CM_QT2 1
#else
#define EGRU_CM_QT2 0
#endif
#if EGRU_CM_QT2 && defined(__ARM_FP) && (__ARM_FP & 4)
#define EGRU_CM_QFPU 1
#else
#define EGRU_CM_QFPU 0
#endif

/* The largest |x[j]| bit pattern, j < n. */
static uint32_t abs_max(const float *x, uint32_t n)
{
#if EGRU_CM_QT2
    uint32_t m = 0, k = n / 4;
    const float *p = x;
    if (k) {
        __asm__ __volatile__("1:\n\t"
                             "ldmia %[p]!, {r4, r5, r6, r12}\n\t"
                             "cmp %[m], r4, lsl #1\n\t"
                             "it lo\n\t"
                             "lsllo %[m], r4, #1\n\t"
                             "cmp %[m], r5, lsl #1\n\t"
                             "it lo\n\t"
                             "lsllo %[m], r5, #1\n\t"
                             "cmp %[m], r6, lsl #1\n\t"
                             "it lo\n\t"
                             "lsllo %[m], r6, #1\n\t"
                             "cmp %[m], r12, lsl #1\n\t"
                             "it lo\n\t"
                             "lsllo %[m], r12, #1\n\t"
                             "subs %[k], %[k], #1\n\t"
                             "bne 1b\n\t"
                             : [m] "+r"(m), [p] "+r"(p), [k] "+r"(k)
                             :
                             : "cc", "memory", "r4", "r5", "r6", "r12");
    }
    return egru_abs_bits_max(x, n & ~3u, n, m >> 1);
#else
    return egru_abs_bits_max(x, 0, n, 0);
#endif
}

float egru_quantize_s8_cortex_m(const float *x, int8_t *q, uint32_t n)
{
    float inv;
    const float sx = egru_quantize_s8_scale(abs_max(x, n), &inv);
#if EGRU_CM_QFPU
    uint32_t k = n / 8;
    const float *p = x;
    int8_t *o = q;
#else
    const float shift = 12582912.0f; /* 1.5 * 2^23 */
    uint32_t j;
#endif
    if (inv == 0.0f) {
        memset(q, 0, n);
        return sx;
    }
#if EGRU_CM_QFPU
    if (k) {
        __asm__ __volatile__("1:\n\t"
                             "vldmia %[p]!, {s0-s7}\n\t"
                             "vmul.f32 s0, s0, %[inv]\n\t"
                             "vmul.f32 s1, s1, %[inv]\n\t"
                             "vmul.f32 s2, s2, %[inv]\n\t"
                             "vmul.f32 s3, s3, %[inv]\n\t"
                             "vmul.f32 s4, s4, %[inv]\n\t"
                             "vmul.f32 s5, s5, %[inv]\n\t"
                             "vmul.f32 s6, s6, %[inv]\n\t"
                             "vmul.f32 s7, s7, %[inv]\n\t"
                             "vcvtr.s32.f32 s0, s0\n\t"
                             "vcvtr.s32.f32 s1, s1\n\t"
                             "vcvtr.s32.f32 s2, s2\n\t"
                             "vcvtr.s32.f32 s3, s3\n\t"
                             "vcvtr.s32.f32 s4, s4\n\t"
                             "vcvtr.s32.f32 s5, s5\n\t"
                             "vcvtr.s32.f32 s6, s6\n\t"
                             "vcvtr.s32.f32 s7, s7\n\t"
                             "vmov r4, r5, s0, s1\n\t"
                             "strb r4, [%[o]], #1\n\t"
                             "strb r5, [%[o]], #1\n\t"
                             "vmov r4, r5, s2, s3\n\t"
                             "strb r4, [%[o]], #1\n\t"
                             "strb r5, [%[o]], #1\n\t"
                             "vmov r4, r5, s4, s5\n\t"
                             "strb r4, [%[o]], #1\n\t"
                             "strb r5, [%[o]], #1\n\t"
                             "vmov r4, r5, s6, s7\n\t"
                             "strb r4, [%[o]], #1\n\t"
                             "strb r5, [%[o]], #1\n\t"
                             "subs %[k], %[k], #1\n\t"
                             "bne 1b\n\t"
                             : [p] "+r"(p), [o] "+r"(o), [k] "+r"(k)
                             : [inv] "t"(inv)
                             : "cc", "memory", "r4", "r5", "s0", "s1", "s2", "s3", "s4", "s5", "s6",
                               "s7");
    }
    if (n & 4u) { /* four more */
        __asm__ __volatile__("vldmia %[p]!, {s0-s3}\n\t"
                             "vmul.f32 s0, s0, %[inv]\n\t"
                             "vmul.f32 s1, s1, %[inv]\n\t"
                             "vmul.f32 s2, s2, %[inv]\n\t"
                             "vmul.f32 s3, s3, %[inv]\n\t"
                             "vcvtr.s32.f32 s0, s0\n\t"
                             "vcvtr.s32.f32 s1, s1\n\t"
                             "vcvtr.s32.f32 s2, s2\n\t"
                             "vcvtr.s32.f32 s3, s3\n\t"
                             "vmov r4, r5, s0, s1\n\t"
                             "strb r4, [%[o]], #1\n\t"
                             "strb r5, [%[o]], #1\n\t"
                             "vmov r4, r5, s2, s3\n\t"
                             "strb r4, [%[o]], #1\n\t"
                             "strb r5, [%[o]], #1\n\t"
                             : [p] "+r"(p), [o] "+r"(o)
                             : [inv] "t"(inv)
                             : "memory", "r4", "r5", "s0", "s1", "s2", "s3");
    }
    k = n & 3u;
    if (k) {
        __asm__ __volatile__("1:\n\t"
                             "vldmia %[p]!, {s0}\n\t"
                             "vmul.f32 s0, s0, %[inv]\n\t"
                             "vcvtr.s32.f32 s0, s0\n\t"
                             "vmov r4, s0\n\t"
                             "strb r4, [%[o]], #1\n\t"
                             "subs %[k], %[k], #1\n\t"
                             "bne 1b\n\t"
                             : [p] "+r"(p), [o] "+r"(o), [k] "+r"(k)
                             : [inv] "t"(inv)
                             : "cc", "memory", "r4", "s0");
    }
#else
    for (j = 0; j < n; ++j) {
        int32_t v = (int32_t)(egru_cm_bits(x[j] * inv + shift) - egru_cm_bits(shift));
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[j] = (int8_t)v;
    }
#endif
    return sx;
}
#else  /* EGRU_CFG_CM_S8_FAST */
float egru_quantize_s8_cortex_m(const float *x, int8_t *q, uint32_t n)
{
    const float shift = 12582912.0f; /* 1.5 * 2^23 */
    float inv;
    uint32_t j;
    const float sx = egru_quantize_s8_scale(egru_abs_bits_max(x, 0, n, 0), &inv);
    if (inv == 0.0f) {
        memset(q, 0, n);
        return sx;
    }
    for (j = 0; j < n; ++j) {
        int32_t v = (int32_t)(egru_cm_bits(x[j] * inv + shift) - egru_cm_bits(shift));
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[j] = (int8_t)v;
    }
    return sx;
}
#endif /* EGRU_CFG_CM_S8_FAST */
