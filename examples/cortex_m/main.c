/*
 * main.c - one forward pass of an edgegru model on a bare-metal Cortex-M or RISC-V core, from C
 * alone (this file is also examples/riscv's: the three target-specific parts, the semihosting
 * call, the tick counter and the calibration loop, are under `#if defined(__riscv)`).
 *
 * The model and its input are compiled in as const arrays (tools/egru2c.py writes both headers);
 * the scratch memory is a static array. Nothing here or in the runtime calls malloc. The program
 * exits with status 0 on success and 1 on any error (semihosting SYS_EXIT_EXTENDED; 2 on a fault).
 *
 * Output (stdout of QEMU, one item per line):
 *   lines starting with '@' are measurements, "@name value" with value a decimal integer:
 *     @calib_ticks   SysTick ticks of CALIB_INSTRUCTIONS instructions (a loop of known length)
 *     @init_ticks    SysTick ticks of egru_model_init
 *     @forward_ticks SysTick ticks of the forward pass
 *     @arena         egru_arena_size(batch, T): the arena of the fast plan
 *     @arena_min     egru_arena_size_min(batch, T): the smallest arena (when the runtime has it)
 *     @arena_used    the bytes the forward pass was given: the first of @arena, @arena_min that
 *                    fits ARENA_BYTES
 *     @stack         stack high-water mark in bytes, from reset to the end of the forward pass
 *     @session       egru_session_size(1) + sizeof(egru_session_t) (only with REPORT_SESSION=1)
 *   every other line is one output float: with OUTPUT_HEX=1 its IEEE-754 bits as 8 hex digits
 *   (exact, no printf: newlib's printf is 17 KB of flash and needs a heap), else printf("%.9g");
 *   for an int16x8 model (OUTPUT_INT16) one int16 output: its 16 bits as 8 hex digits, or "%d".
 * Instructions = ticks * CALIB_INSTRUCTIONS / calib_ticks: under QEMU with
 * -icount shift=0,align=off,sleep=off the virtual clock advances 1 ns per instruction, and SysTick
 * (processor clock: 25 MHz on the MPS2 boards, 16 MHz on the micro:bit) then counts 40 (MPS2)
 * or 62.5 (micro:bit) instructions per tick. On RISC-V a tick is one count of the minstret CSR
 * (instructions retired; QEMU derives it from the same virtual clock): calib_ticks is then
 * CALIB_INSTRUCTIONS plus the few instructions of the counter reads. Flash wait states and real
 * cycles per instruction are not modelled: these are instruction counts, not cycles.
 *
 * Build with INPUT_HEADER (here) and MODEL_HEADER (model.c) defined as the generated headers'
 * paths (the Makefile does that from INPUT_H and MODEL_H); they must be generated with
 * --name input and --name model.
 */
#include <stddef.h>
#include <stdint.h>

#include "edgegru.h"

#include INPUT_HEADER

/* model.c: the blob tools/egru2c.py wrote (64-byte aligned, in flash). */
extern const uint8_t *const example_model;
extern const size_t example_model_size;

#ifndef OUTPUT_HEX
#define OUTPUT_HEX 0
#endif
#if !OUTPUT_HEX
#include <stdio.h>
#include <stdlib.h>
#endif
/* 1 when the runtime has egru_arena_size_min (the Makefile checks edgegru.h). */
#ifndef HAVE_ARENA_SIZE_MIN
#define HAVE_ARENA_SIZE_MIN 0
#endif
#ifndef REPORT_SESSION
#define REPORT_SESSION 0
#endif

/* Scratch for egru_forward_*: at least egru_arena_size_min() (or egru_arena_size() without the
 * low-memory plan) for the input's shape. */
#ifndef ARENA_BYTES
#define ARENA_BYTES 16384
#endif
/* Capacity of the output buffer, in floats. */
#ifndef MAX_OUTPUTS
#define MAX_OUTPUTS 1024
#endif

/* int16x8 models (INPUT_IS_INT16 inputs, or token ids with OUTPUT_INT16 1): integer-only
 * forward passes, int16 outputs at the model's output scale. */
#ifndef INPUT_IS_INT16
#define INPUT_IS_INT16 0
#endif
#ifndef OUTPUT_INT16 /* int16 inputs, or a runtime configured integer-only (egru_config.h) */
#if INPUT_IS_INT16 || (defined(EGRU_CFG_FLOAT) && !EGRU_CFG_FLOAT)
#define OUTPUT_INT16 1
#else
#define OUTPUT_INT16 0
#endif
#endif

static unsigned char arena[ARENA_BYTES] __attribute__((aligned(16)));
#if OUTPUT_INT16
static int16_t outputs[MAX_OUTPUTS];
#else
static float outputs[MAX_OUTPUTS];
#endif

/* ---- output: semihosting or printf ------------------------------------------------------- */

#if OUTPUT_HEX
#if defined(__riscv)
/* RISC-V semihosting call: EBREAK between the two marker instructions `slli x0, x0, 0x1f` and
 * `srai x0, x0, 7`, all three uncompressed (norvc) and, so that the debugger (QEMU) sees them in
 * one page, inside one 16-byte block; op in a0, argument in a1, result in a0. */
static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t a0 __asm("a0") = op;
    register const void *a1 __asm("a1") = arg;
    __asm volatile(".option push\n\t.option norvc\n\t.balign 16\n\t"
                   "slli x0, x0, 0x1f\n\tebreak\n\tsrai x0, x0, 7\n\t.option pop"
                   : "+r"(a0)
                   : "r"(a1)
                   : "memory");
    return a0;
}
#else
/* Arm semihosting call (BKPT 0xAB on M-profile): op in r0, argument in r1, result in r0. */
static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
#endif
static void put_str(const char *s)
{
    semihost(0x04u, s); /* SYS_WRITE0: a NUL-terminated string */
}
/* SYS_EXIT_EXTENDED with ADP_Stopped_ApplicationExit: QEMU exits with `status`. */
void board_exit(int status);
void board_exit(int status)
{
    const uint32_t block[2] = {0x20026u, (uint32_t)status};
    for (;;) {
        semihost(0x20u, block);
    }
}
static void put_hex32(uint32_t v)
{
    char buf[10];
    for (int i = 0; i < 8; i++) {
        buf[i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xFu];
    }
    buf[8] = '\n';
    buf[9] = '\0';
    put_str(buf);
}
static void put_u32(uint32_t v)
{
    char buf[12];
    int i = 11;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0 && i > 0);
    put_str(buf + i);
}
#if !OUTPUT_INT16
static void put_float(float f)
{
    union {
        float f;
        uint32_t u;
    } bits;
    bits.f = f;
    put_hex32(bits.u);
}
#endif
#else
static void put_str(const char *s)
{
    fputs(s, stdout);
}
static void put_u32(uint32_t v)
{
    printf("%lu", (unsigned long)v);
}
#if !OUTPUT_INT16
static void put_float(float f)
{
    printf("%.9g\n", (double)f);
}
#endif
#endif

static void put_stat(const char *name, uint32_t value)
{
    put_str("@");
    put_str(name);
    put_str(" ");
    put_u32(value);
    put_str("\n");
}

/* The printf build names the status (egru_status_str); the printf-free one prints its number
 * (egru_status_t in ext/include/edgegru.h), so that the measured image holds only what the
 * forward pass needs. */
static int fail(const char *what, egru_status_t status)
{
    put_str("error: ");
    put_str(what);
#if OUTPUT_HEX
    put_str(": status -");
    put_u32((uint32_t)(-(int32_t)status));
#else
    put_str(": ");
    put_str(egru_status_str(status));
#endif
    put_str("\n");
    return 1;
}

/* ---- ticks: instructions under QEMU -icount ----------------------------------------------- */

#if defined(__riscv)
/* minstret, the machine-mode count of instructions retired (64 bits in two CSRs on RV32; read
 * high, low, high until the high word holds still). The CSR instructions are Zicsr, which every
 * real rv32imc core has but -march=rv32imc does not name (GCC 12 counts it as its own
 * extension): enabled for these three instructions only. */
static uint64_t minstret(void)
{
    uint32_t hi, lo, hi2;
    do {
        __asm volatile(".option push\n\t.option arch, +zicsr\n\t"
                       "csrr %0, minstreth\n\tcsrr %1, minstret\n\tcsrr %2, minstreth\n\t"
                       ".option pop"
                       : "=r"(hi), "=r"(lo), "=r"(hi2));
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
}

static uint64_t ticks_origin;
static void ticks_start(void)
{
    ticks_origin = minstret();
}

/* Instructions since ticks_start(). */
static uint64_t ticks_now(void)
{
    return minstret() - ticks_origin;
}
#else
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u) /* control and status */
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u) /* reload value */
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u) /* current value */
#define SYST_MAX 0xFFFFFFu                           /* the counter has 24 bits */

/* SysTick wraps every 2^24 ticks; its interrupt (startup.c's vector 15) counts the wraps. */
static volatile uint32_t systick_wraps;
void SysTick_Handler(void);
void SysTick_Handler(void)
{
    systick_wraps++;
}

static void ticks_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYST_MAX;
    SYST_CVR = 0; /* any write clears it; the first tick reloads SYST_MAX */
    systick_wraps = 0;
    SYST_CSR = 7u; /* enable, interrupt on wrap, processor clock */
}

/* Ticks since ticks_start() (up to 2^56). */
static uint64_t ticks_now(void)
{
    uint32_t wraps, value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return (uint64_t)wraps * (SYST_MAX + 1u) + (SYST_MAX - value);
}
#endif

/* A loop of exactly CALIB_INSTRUCTIONS instructions (2 per iteration: subs, bne on Arm; addi,
 * bnez on RISC-V) to calibrate ticks against instructions on each board. */
#define CALIB_ITERATIONS   1000000u
#define CALIB_INSTRUCTIONS (2u * CALIB_ITERATIONS)
static uint32_t calibrate(void)
{
    uint32_t n = CALIB_ITERATIONS;
    ticks_start();
#if defined(__riscv)
    __asm volatile("1:\n\taddi %0, %0, -1\n\tbnez %0, 1b" : "+r"(n));
#else
    __asm volatile(".syntax unified\n1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
#endif
    return (uint32_t)ticks_now();
}

static uint32_t ticks32(uint64_t t)
{
    return t > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)t;
}

/* ---- stack high-water mark ---------------------------------------------------------------- */

/* The stack region, from the linker script: [__stack_limit, __stack_top). */
extern uint32_t __stack_limit, __stack_top;
#define STACK_PAINT 0xA5C3E1F0u

/* Fill the unused stack below the caller's frame with STACK_PAINT (leaving 64 bytes for this
 * function's own frame). */
static __attribute__((noinline)) void stack_paint(void)
{
    volatile uint32_t here = 0;
    uint32_t *end = (uint32_t *)((uintptr_t)&here & ~(uintptr_t)3) - 16;
    for (uint32_t *p = &__stack_limit; p < end; p++) {
        *p = STACK_PAINT;
    }
}

/* Bytes between the deepest word written since stack_paint() and the top of the stack. */
static uint32_t stack_used(void)
{
    const uint32_t *p = &__stack_limit;
    while (p < &__stack_top && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}

/* ---- the forward pass --------------------------------------------------------------------- */

int main(void)
{
    egru_model_t m;
    size_t need = 0, count = 0, use = 0;
    stack_paint();
    uint32_t calib = calibrate();

    ticks_start();
    egru_status_t s = egru_model_init(&m, example_model, example_model_size);
    uint32_t init_ticks = ticks32(ticks_now());
    if (s != EGRU_OK) {
        return fail("egru_model_init", s);
    }
    s = egru_arena_size(&m, INPUT_BATCH, INPUT_STEPS, &need);
    if (s != EGRU_OK) {
        return fail("egru_arena_size", s);
    }
    use = need;
#if HAVE_ARENA_SIZE_MIN
    size_t need_min = 0;
    s = egru_arena_size_min(&m, INPUT_BATCH, INPUT_STEPS, &need_min);
    if (s != EGRU_OK) {
        return fail("egru_arena_size_min", s);
    }
    if (use > sizeof arena) {
        use = need_min; /* the forward pass picks the low-memory plan */
    }
#endif
    if (use > sizeof arena) {
        put_str("error: the model needs ");
        put_u32((uint32_t)use);
        put_str(" bytes of arena, ARENA_BYTES is ");
        put_u32((uint32_t)sizeof arena);
        put_str("\n");
        return 1;
    }
    s = egru_output_count(&m, INPUT_BATCH, INPUT_STEPS, &count);
    if (s != EGRU_OK) {
        return fail("egru_output_count", s);
    }
    if (count > MAX_OUTPUTS) {
        put_str("error: the output has ");
        put_u32((uint32_t)count);
        put_str(" floats, MAX_OUTPUTS is ");
        put_u32((uint32_t)MAX_OUTPUTS);
        put_str("\n");
        return 1;
    }
    ticks_start();
#if OUTPUT_INT16 && INPUT_IS_TOKENS
    s = egru_forward_tokens_s16(&m, input, INPUT_BATCH, INPUT_STEPS, outputs, count, arena, use);
#elif OUTPUT_INT16
    s = egru_forward_features_s16(&m, input, NULL, INPUT_BATCH, INPUT_STEPS, outputs, count, arena,
                                  use);
#elif INPUT_IS_TOKENS
    s = egru_forward_tokens(&m, input, INPUT_BATCH, INPUT_STEPS, outputs, count, arena, use);
#else
    s = egru_forward_features(&m, input, INPUT_BATCH, INPUT_STEPS, outputs, count, arena, use);
#endif
    uint32_t forward_ticks = ticks32(ticks_now());
    uint32_t stack = stack_used();
    if (s != EGRU_OK) {
        return fail("forward pass", s);
    }
    put_stat("calib_ticks", calib);
    put_stat("init_ticks", init_ticks);
    put_stat("forward_ticks", forward_ticks);
    put_stat("arena", (uint32_t)need);
#if HAVE_ARENA_SIZE_MIN
    put_stat("arena_min", (uint32_t)need_min);
#endif
    put_stat("arena_used", (uint32_t)use);
    put_stat("stack", stack);
#if REPORT_SESSION
    size_t session = 0;
    if (egru_session_check(&m, NULL) == EGRU_OK && egru_session_size(&m, 1, &session) == EGRU_OK) {
        put_stat("session", (uint32_t)(session + sizeof(egru_session_t)));
    }
#endif
    for (size_t i = 0; i < count; i++) {
#if OUTPUT_INT16 && OUTPUT_HEX /* the int16 as the low 16 bits of a hex word */
        put_hex32((uint32_t)(uint16_t)outputs[i]);
#elif OUTPUT_INT16
        printf("%d\n", (int)outputs[i]);
#else
        put_float(outputs[i]);
#endif
    }
    return 0;
}
