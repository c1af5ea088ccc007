/* egru_matvec_f32_cortex_m.c - matrix-vector product for Cortex-M (same contract as
 * egru_matvec_f32), blocked to keep values in registers: four rows at a time. On an M-profile core
 * with a single-precision FPU (M4F, M7, M33 ...; GCC or clang) the inner loops are inline
 * assembly: per iteration one VLDMIA of eight x values, per row one VLDMIA of its eight weights and
 * eight VMLA into the row's accumulator (36 instructions + 2 of loop control for 32 MACs); then
 * one block of four columns, and one column at a time (four rows); all blocks of four rows in one
 * assembly loop (blocks4). The last rows % 4 rows one by one in C. Elsewhere (M0, M3, hosts) the
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

#if EGRU_CM_ASM_F32
/* y[0 .. 4 nblk) for the 4 nblk rows from w (each cols long), x (cols), bias (4 nblk or NULL):
 * every block of four rows in one assembly loop, so the per-block work is only its pointers, four
 * zeros, the bias and one store of four sums (about 23 instructions; the C version spent about 50
 * on calls, spills and reloads). Registers: sums s0-s3, bias s4-s7, x s8-s15, weights s16-s23.
 * nblk >= 1. */
static void blocks4(const float *w, const float *x, const float *bias, float *y, uint32_t nblk,
                    uint32_t cols)
{
    const uint32_t cb = cols * 4u; /* bytes per row */
    const uint32_t zero = 0;
    const float *p1, *p2, *p3, *xp;
    uint32_t n;
    __asm__ __volatile__(
        "1:\n\t"
        "add %[p1], %[p0], %[cb]\n\t"
        "add %[p2], %[p1], %[cb]\n\t"
        "add %[p3], %[p2], %[cb]\n\t"
        "mov %[xp], %[x]\n\t"
        "vmov s0, s1, %[z], %[z]\n\t"
        "vmov s2, s3, %[z], %[z]\n\t"
        "lsrs %[n], %[cb], #5\n\t" /* blocks of 8 columns */
        "beq 3f\n"
        "2:\n\t"
        "vldmia %[xp]!, {s8-s15}\n\t"
        "vldmia %[p0]!, {s16-s23}\n\t"
        "vmla.f32 s0, s16, s8\n\t"
        "vmla.f32 s0, s17, s9\n\t"
        "vmla.f32 s0, s18, s10\n\t"
        "vmla.f32 s0, s19, s11\n\t"
        "vmla.f32 s0, s20, s12\n\t"
        "vmla.f32 s0, s21, s13\n\t"
        "vmla.f32 s0, s22, s14\n\t"
        "vmla.f32 s0, s23, s15\n\t"
        "vldmia %[p1]!, {s16-s23}\n\t"
        "vmla.f32 s1, s16, s8\n\t"
        "vmla.f32 s1, s17, s9\n\t"
        "vmla.f32 s1, s18, s10\n\t"
        "vmla.f32 s1, s19, s11\n\t"
        "vmla.f32 s1, s20, s12\n\t"
        "vmla.f32 s1, s21, s13\n\t"
        "vmla.f32 s1, s22, s14\n\t"
        "vmla.f32 s1, s23, s15\n\t"
        "vldmia %[p2]!, {s16-s23}\n\t"
        "vmla.f32 s2, s16, s8\n\t"
        "vmla.f32 s2, s17, s9\n\t"
        "vmla.f32 s2, s18, s10\n\t"
        "vmla.f32 s2, s19, s11\n\t"
        "vmla.f32 s2, s20, s12\n\t"
        "vmla.f32 s2, s21, s13\n\t"
        "vmla.f32 s2, s22, s14\n\t"
        "vmla.f32 s2, s23, s15\n\t"
        "vldmia %[p3]!, {s16-s23}\n\t"
        "vmla.f32 s3, s16, s8\n\t"
        "vmla.f32 s3, s17, s9\n\t"
        "vmla.f32 s3, s18, s10\n\t"
        "vmla.f32 s3, s19, s11\n\t"
        "vmla.f32 s3, s20, s12\n\t"
        "vmla.f32 s3, s21, s13\n\t"
        "vmla.f32 s3, s22, s14\n\t"
        "vmla.f32 s3, s23, s15\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 2b\n"
        "3:\n\t"
        "tst %[cb], #16\n\t" /* a block of 4 columns */
        "beq 4f\n\t"
        "vldmia %[xp]!, {s8-s11}\n\t"
        "vldmia %[p0]!, {s16-s19}\n\t"
        "vmla.f32 s0, s16, s8\n\t"
        "vmla.f32 s0, s17, s9\n\t"
        "vmla.f32 s0, s18, s10\n\t"
        "vmla.f32 s0, s19, s11\n\t"
        "vldmia %[p1]!, {s16-s19}\n\t"
        "vmla.f32 s1, s16, s8\n\t"
        "vmla.f32 s1, s17, s9\n\t"
        "vmla.f32 s1, s18, s10\n\t"
        "vmla.f32 s1, s19, s11\n\t"
        "vldmia %[p2]!, {s16-s19}\n\t"
        "vmla.f32 s2, s16, s8\n\t"
        "vmla.f32 s2, s17, s9\n\t"
        "vmla.f32 s2, s18, s10\n\t"
        "vmla.f32 s2, s19, s11\n\t"
        "vldmia %[p3]!, {s16-s19}\n\t"
        "vmla.f32 s3, s16, s8\n\t"
        "vmla.f32 s3, s17, s9\n\t"
        "vmla.f32 s3, s18, s10\n\t"
        "vmla.f32 s3, s19, s11\n"
        "4:\n\t"
        "ands %[n], %[cb], #12\n\t" /* the last cols % 4 columns, one at a time */
        "beq 6f\n"
        "5:\n\t"
        "vldmia %[xp]!, {s8}\n\t"
        "vldmia %[p0]!, {s16}\n\t"
        "vldmia %[p1]!, {s17}\n\t"
        "vldmia %[p2]!, {s18}\n\t"
        "vldmia %[p3]!, {s19}\n\t"
        "vmla.f32 s0, s16, s8\n\t"
        "vmla.f32 s1, s17, s8\n\t"
        "vmla.f32 s2, s18, s8\n\t"
        "vmla.f32 s3, s19, s8\n\t"
        "subs %[n], %[n], #4\n\t"
        "bne 5b\n"
        "6:\n\t"
        "cmp %[b], #0\n\t"
        "beq 7f\n\t"
        "vldmia %[b]!, {s4-s7}\n\t"
        "vadd.f32 s0, s0, s4\n\t"
        "vadd.f32 s1, s1, s5\n\t"
        "vadd.f32 s2, s2, s6\n\t"
        "vadd.f32 s3, s3, s7\n"
        "7:\n\t"
        "vstmia %[y]!, {s0-s3}\n\t"
        "mov %[p0], %[p3]\n\t" /* the row after the block's last */
        "subs %[nb], %[nb], #1\n\t"
        "bne 1b\n\t"
        : [p0] "+r"(w), [p1] "=&r"(p1), [p2] "=&r"(p2), [p3] "=&r"(p3), [xp] "=&r"(xp),
          [n] "=&r"(n), [y] "+r"(y), [b] "+r"(bias), [nb] "+r"(nblk)
        : [x] "r"(x), [cb] "r"(cb), [z] "r"(zero)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
          "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "cc", "memory");
}
#else
/* y[0 .. 4 nblk) for the 4 nblk rows from w: four rows at a time, each row's products in column
 * order (the assembly's order). */
static void blocks4(const float *w, const float *x, const float *bias, float *y, uint32_t nblk,
                    uint32_t cols)
{
    for (; nblk; --nblk, w += 4 * (size_t)cols, y += 4) {
        const float *p0 = w, *p1 = w + cols, *p2 = p1 + cols, *p3 = p2 + cols;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        uint32_t c;
        for (c = 0; c < cols; ++c) {
            const float xc = x[c];
            a0 += p0[c] * xc;
            a1 += p1[c] * xc;
            a2 += p2[c] * xc;
            a3 += p3[c] * xc;
        }
        if (bias) {
            a0 += bias[0];
            a1 += bias[1];
            a2 += bias[2];
            a3 += bias[3];
            bias += 4;
        }
        y[0] = a0;
        y[1] = a1;
        y[2] = a2;
        y[3] = a3;
    }
}
#endif

void egru_matvec_f32_cortex_m(const float *w, const float *x, const float *bias, float *y,
                              uint32_t rows, uint32_t cols)
{
    const uint32_t r4 = rows / 4;
    uint32_t r, c;
    if (r4) {
        blocks4(w, x, bias, y, r4, cols);
    }
    for (r = 4 * r4; r < rows; ++r) {
        const float *row = w + (size_t)r * cols;
        float acc = 0.0f;
        for (c = 0; c < cols; ++c) {
            acc += row[c] * x[c];
        }
        y[r] = bias ? acc + bias[r] : acc;
    }
}
