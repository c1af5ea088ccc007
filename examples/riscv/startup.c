/*
 * startup.c - the least an rv32imc core needs before main(), on QEMU's `virt` machine.
 *
 * With `-bios none` QEMU's reset code jumps, in machine mode, to the start of RAM (0x80000000),
 * where the linker script (virt.ld) puts `_start`: it sets the global pointer (gp, for the
 * linker's gp-relative accesses to small data) and the stack pointer (sp, the top of RAM), and
 * jumps to Reset_Handler. That copies the initialised data (.data and the thread-local .tdata) from
 * "flash" to RAM, zeroes .bss and .tbss, points tp at the thread-local block (picolibc keeps errno
 * there), points mtvec at Fault_Handler and runs main(). Its status goes to the host (QEMU's exit
 * code) by semihosting: main.c's board_exit (OUTPUT_HEX=1) or picolibc's exit (printf build,
 * libsemihost). No interrupt is enabled: main.c counts instructions with the minstret CSR.
 */
#include <stdint.h>

#ifndef OUTPUT_HEX
#define OUTPUT_HEX 0
#endif

/* Defined by the linker script. */
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern uint32_t __tdata_load, __tls_base, __tdata_end, __tbss_start, __tbss_end;

extern int main(void);
#if OUTPUT_HEX
extern void board_exit(int status); /* main.c: semihosting SYS_EXIT_EXTENDED */
#else
#include <stdlib.h>
#define board_exit exit /* picolibc's exit: semihosting through libsemihost */
#endif

void Reset_Handler(void);
void Fault_Handler(void);

/* The entry point: no C before gp and sp are set. `la gp` must not be relaxed into a
 * gp-relative address of gp itself. */
__asm__(".section .text.start, \"ax\", @progbits\n"
        ".globl _start\n"
        "_start:\n"
        "    .option push\n"
        "    .option norelax\n"
        "    la gp, __global_pointer$\n"
        "    .option pop\n"
        "    la sp, __stack_top\n"
        "    j Reset_Handler\n"
        ".previous\n");

static void copy(uint32_t *dst, const uint32_t *end, const uint32_t *src)
{
    while (dst < end) {
        *dst++ = *src++;
    }
}

static void zero(uint32_t *dst, const uint32_t *end)
{
    while (dst < end) {
        *dst++ = 0;
    }
}

void Reset_Handler(void)
{
    copy(&__data_start, &__data_end, &__data_load);
    copy(&__tls_base, &__tdata_end, &__tdata_load);
    zero(&__bss_start, &__bss_end);
    zero(&__tbss_start, &__tbss_end);
    /* tp: the start of the thread-local block (.tdata then .tbss), the RISC-V TLS ABI's
     * thread pointer for the local-exec model picolibc is built with. mtvec: direct mode, every
     * trap goes to Fault_Handler (4-byte aligned). The CSR write is Zicsr, see main.c. */
    __asm volatile("mv tp, %0" : : "r"(&__tls_base));
    __asm volatile(".option push\n\t.option arch, +zicsr\n\tcsrw mtvec, %0\n\t.option pop"
                   :
                   : "r"((uintptr_t)Fault_Handler));
    board_exit(main());
}

/* Any trap (an illegal instruction, a misaligned or faulting access, an ebreak that is not a
 * semihosting call): report failure (status 2) to the host instead of hanging. */
__attribute__((aligned(4))) void Fault_Handler(void)
{
#if OUTPUT_HEX
    board_exit(2);
#else
    _Exit(2);
#endif
}
