/*
 * bench_kernels_cm.c - instructions per MAC and per activation value of the cortex_m and ref kernel
 * sets on a Cortex-M core under QEMU (make -C ext bench-cortex-m; docs/kernels.md, "Cortex-M").
 * A measurement, not a test: it prints figures and checks nothing.
 *
 * QEMU runs with -icount shift=0,align=off,sleep=off, so its virtual clock advances one
 * nanosecond per instruction and SysTick (processor clock, 24 bits, counting down) counts
 * instructions; the ratio is calibrated here with a loop of known length (SUBS + BNE, two
 * instructions per iteration). Each figure is (ticks of R calls - ticks of an empty measurement)
 * * instructions per tick / (R * MACs or values), the shapes those of the GRU(64) sensor model
 * with 6 inputs (192 x 6 input projection, 192 x 64 recurrent product) and of GRU(16) with
 * 8 inputs (48 x 8, 48 x 16).
 */
#include <stdint.h>
#include <stdio.h>

#include "../../src/kernels/egru_kernels.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static float wf[192 * 64], xf[64], bf[192], yf[192], act[192];
static int8_t ws[192 * 64], xs[64];
static float scale[192];

static uint32_t now(void)
{
    return SYST_CVR;
}

static uint32_t elapsed(uint32_t t0)
{
    return (t0 - SYST_CVR) & 0xFFFFFFu; /* counts down, 24 bits */
}

static void spin(uint32_t n) /* 2 n instructions */
{
    __asm__ __volatile__("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

static float seed_uniform(uint32_t *s) /* [-1, 1) */
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 8388608.0f - 1.0f;
}

int main(void)
{
    const egru_kernel_set_t *sets[2];
    const uint32_t shapes[4][2] = {{192, 6}, {192, 64}, {48, 8}, {48, 16}};
    const char *names[4] = {"sensor GRU(64) input 192x6", "sensor GRU(64) recurrent 192x64",
                            "GRU(16) input 48x8", "GRU(16) recurrent 48x16"};
    enum { R = 20 };
    uint32_t s = 1, i, k, q, t0, base;
    double ipt;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enabled, processor clock, no interrupt */
    for (i = 0; i < 192 * 64; ++i) {
        wf[i] = seed_uniform(&s) * 0.125f;
        ws[i] = (int8_t)(seed_uniform(&s) * 127.0f);
    }
    for (i = 0; i < 192; ++i) {
        bf[i] = seed_uniform(&s) * 0.2f;
        scale[i] = 0.01f;
        act[i] = seed_uniform(&s) * 6.0f;
    }
    for (i = 0; i < 64; ++i) {
        xf[i] = seed_uniform(&s);
        xs[i] = (int8_t)(seed_uniform(&s) * 127.0f);
    }
    t0 = now();
    spin(1000000u);
    ipt = 2000000.0 / (double)elapsed(t0);
    t0 = now();
    base = elapsed(t0);
    printf("calibration: %.3f instructions per SysTick tick (2,000,000-instruction loop)\n", ipt);
    sets[0] = egru_kernels_ref();
    sets[1] = egru_kernels_cortex_m();
    for (q = 0; q < 4; ++q) {
        const uint32_t rows = shapes[q][0], cols = shapes[q][1];
        const double macs = (double)R * rows * cols;
        for (k = 0; k < 2; ++k) {
            double f32, s8, qz;
            t0 = now();
            for (i = 0; i < R; ++i) {
                sets[k]->matvec_f32(wf, xf, bf, yf, rows, cols);
            }
            f32 = (double)(elapsed(t0) - base) * ipt / macs;
            t0 = now();
            for (i = 0; i < R; ++i) {
                sets[k]->matvec_s8(ws, scale, xs, 0.01f, bf, yf, rows, cols);
            }
            s8 = (double)(elapsed(t0) - base) * ipt / macs;
            t0 = now();
            for (i = 0; i < R; ++i) {
                (void)sets[k]->quantize_s8(xf, xs, cols);
            }
            qz = (double)(elapsed(t0) - base) * ipt / ((double)R * cols);
            printf("%-8s %-32s fp32 %.3f  int8 %.3f instr/MAC  (quantize_s8 %.1f instr/value)\n",
                   sets[k]->name, names[q], f32, s8, qz);
        }
    }
    for (k = 0; k < 2; ++k) {
        double sg, th;
        t0 = now();
        for (i = 0; i < R; ++i) {
            sets[k]->sigmoid_f32(act, 192);
        }
        sg = (double)(elapsed(t0) - base) * ipt / (R * 192.0);
        for (i = 0; i < 192; ++i) {
            act[i] = seed_uniform(&s) * 6.0f;
        }
        t0 = now();
        for (i = 0; i < R; ++i) {
            sets[k]->tanh_f32(act, 192);
        }
        th = (double)(elapsed(t0) - base) * ipt / (R * 192.0);
        printf("%-8s sigmoid %.1f  tanh %.1f instr/value (192 values, inputs in [-6, 6))\n",
               sets[k]->name, sg, th);
        for (i = 0; i < 192; ++i) {
            act[i] = seed_uniform(&s) * 6.0f;
        }
    }
    return 0;
}
