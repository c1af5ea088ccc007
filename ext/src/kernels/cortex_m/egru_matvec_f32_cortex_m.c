/* egru_matvec_f32_cortex_m.c - matrix-vector product for Cortex-M (same contract as
 * egru_matvec_f32), blocked to keep values in registers: four rows at a time. On an M-profile core
 * with a single-precision FPU (M4F, M7, M33 ...; GCC or clang) the inner loops are inline
 * assembly: per iteration one VLDMIA of eight x values, per row one VLDMIA of its eight weights and
 * eight VMLA into the row's accumulator (36 instructions + 2 of loop control for 32 MACs); then
 * one block of four columns, and one column at a time (four rows). Elsewhere (M0, M3, hosts) the
 * same order in plain C. Each row adds its products in column order, one rounded multiply and one
 * rounded add per product (VMLA is the unfused multiply-accumulate), then the bias: the
 * reference's operations exactly, so on IEEE single precision the result equals egru_matvec_f32
 * bit for bit (the set is tested against the bound of docs/kernels.md in any case). */
#include "../egru_kernels.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__ARM_ARCH_PROFILE) &&                    \
    __ARM_ARCH_PROFILE == 'M' && defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__)
#define EGRU_CM_ASM_F32 1
#else
#define EGRU_CM_ASM_F32 0
#endif

/* y[0..4) for the four rows starting at w0 (each cols long); bias: the four rows' or NULL. */
static void rows4(const float *w0, uint32_t cols, const float *x, const float *bias, float *y)
{
    const float *p0 = w0, *p1 = w0 + cols, *p2 = p1 + cols, *p3 = p2 + cols;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#if EGRU_CM_ASM_F32
    const float *xp = x;
    uint32_t n = cols / 8;
    (void)x;
    if (n) {
        __asm__ __volatile__(
            "1:\n\t"
            "vldmia %[xp]!, {s16-s23}\n\t"
            "vldmia %[p0]!, {s24-s31}\n\t"
            "vmla.f32 %[a0], s24, s16\n\t"
            "vmla.f32 %[a0], s25, s17\n\t"
            "vmla.f32 %[a0], s26, s18\n\t"
            "vmla.f32 %[a0], s27, s19\n\t"
            "vmla.f32 %[a0], s28, s20\n\t"
            "vmla.f32 %[a0], s29, s21\n\t"
            "vmla.f32 %[a0], s30, s22\n\t"
            "vmla.f32 %[a0], s31, s23\n\t"
            "vldmia %[p1]!, {s24-s31}\n\t"
            "vmla.f32 %[a1], s24, s16\n\t"
            "vmla.f32 %[a1], s25, s17\n\t"
            "vmla.f32 %[a1], s26, s18\n\t"
            "vmla.f32 %[a1], s27, s19\n\t"
            "vmla.f32 %[a1], s28, s20\n\t"
            "vmla.f32 %[a1], s29, s21\n\t"
            "vmla.f32 %[a1], s30, s22\n\t"
            "vmla.f32 %[a1], s31, s23\n\t"
            "vldmia %[p2]!, {s24-s31}\n\t"
            "vmla.f32 %[a2], s24, s16\n\t"
            "vmla.f32 %[a2], s25, s17\n\t"
            "vmla.f32 %[a2], s26, s18\n\t"
            "vmla.f32 %[a2], s27, s19\n\t"
            "vmla.f32 %[a2], s28, s20\n\t"
            "vmla.f32 %[a2], s29, s21\n\t"
            "vmla.f32 %[a2], s30, s22\n\t"
            "vmla.f32 %[a2], s31, s23\n\t"
            "vldmia %[p3]!, {s24-s31}\n\t"
            "vmla.f32 %[a3], s24, s16\n\t"
            "vmla.f32 %[a3], s25, s17\n\t"
            "vmla.f32 %[a3], s26, s18\n\t"
            "vmla.f32 %[a3], s27, s19\n\t"
            "vmla.f32 %[a3], s28, s20\n\t"
            "vmla.f32 %[a3], s29, s21\n\t"
            "vmla.f32 %[a3], s30, s22\n\t"
            "vmla.f32 %[a3], s31, s23\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [a0] "+t"(a0), [a1] "+t"(a1), [a2] "+t"(a2), [a3] "+t"(a3), [xp] "+r"(xp),
              [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [n] "+r"(n)
            :
            : "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27",
              "s28", "s29", "s30", "s31", "cc", "memory");
    }
    if (cols & 4) {
        __asm__ __volatile__(
            "vldmia %[xp]!, {s16-s19}\n\t"
            "vldmia %[p0]!, {s24-s27}\n\t"
            "vmla.f32 %[a0], s24, s16\n\t"
            "vmla.f32 %[a0], s25, s17\n\t"
            "vmla.f32 %[a0], s26, s18\n\t"
            "vmla.f32 %[a0], s27, s19\n\t"
            "vldmia %[p1]!, {s24-s27}\n\t"
            "vmla.f32 %[a1], s24, s16\n\t"
            "vmla.f32 %[a1], s25, s17\n\t"
            "vmla.f32 %[a1], s26, s18\n\t"
            "vmla.f32 %[a1], s27, s19\n\t"
            "vldmia %[p2]!, {s24-s27}\n\t"
            "vmla.f32 %[a2], s24, s16\n\t"
            "vmla.f32 %[a2], s25, s17\n\t"
            "vmla.f32 %[a2], s26, s18\n\t"
            "vmla.f32 %[a2], s27, s19\n\t"
            "vldmia %[p3]!, {s24-s27}\n\t"
            "vmla.f32 %[a3], s24, s16\n\t"
            "vmla.f32 %[a3], s25, s17\n\t"
            "vmla.f32 %[a3], s26, s18\n\t"
            "vmla.f32 %[a3], s27, s19\n\t"
            : [a0] "+t"(a0), [a1] "+t"(a1), [a2] "+t"(a2), [a3] "+t"(a3), [xp] "+r"(xp),
              [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3)
            :
            : "s16", "s17", "s18", "s19", "s24", "s25", "s26", "s27", "memory");
    }
    n = cols & 3;
    if (n) {
        __asm__ __volatile__(
            "1:\n\t"
            "vldmia %[xp]!, {s16}\n\t"
            "vldmia %[p0]!, {s24}\n\t"
            "vldmia %[p1]!, {s25}\n\t"
            "vldmia %[p2]!, {s26}\n\t"
            "vldmia %[p3]!, {s27}\n\t"
            "vmla.f32 %[a0], s24, s16\n\t"
            "vmla.f32 %[a1], s25, s16\n\t"
            "vmla.f32 %[a2], s26, s16\n\t"
            "vmla.f32 %[a3], s27, s16\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [a0] "+t"(a0), [a1] "+t"(a1), [a2] "+t"(a2), [a3] "+t"(a3), [xp] "+r"(xp),
              [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [n] "+r"(n)
            :
            : "s16", "s24", "s25", "s26", "s27", "cc", "memory");
    }
#else
    uint32_t c;
    for (c = 0; c < cols; ++c) {
        const float xc = x[c];
        a0 += p0[c] * xc;
        a1 += p1[c] * xc;
        a2 += p2[c] * xc;
        a3 += p3[c] * xc;
    }
#endif
    if (bias) {
        a0 += bias[0];
        a1 += bias[1];
        a2 += bias[2];
        a3 += bias[3];
    }
    y[0] = a0;
    y[1] = a1;
    y[2] = a2;
    y[3] = a3;
}

void egru_matvec_f32_cortex_m(const float *w, const float *x, const float *bias, float *y,
                              uint32_t rows, uint32_t cols)
{
    uint32_t r = 0, c;
    for (; r + 4 <= rows; r += 4) {
        rows4(w + (size_t)r * cols, cols, x, bias ? bias + r : NULL, y + r);
    }
    for (; r < rows; ++r) {
        const float *row = w + (size_t)r * cols;
        float acc = 0.0f;
        for (c = 0; c < cols; ++c) {
            acc += row[c] * x[c];
        }
        y[r] = bias ? acc + bias[r] : acc;
    }
}
