/*
 * startup.c - the bare-metal harness of `make -C ext check-cortex-m`: a vector table and a reset
 * handler for the QEMU MPS2 boards (mps2-an385 Cortex-M3, mps2-an386 Cortex-M4F, mps2-an500
 * Cortex-M7), enough to run a C test's main() with newlib's semihosting stdio (rdimon). The reset
 * handler copies .data, zeroes .bss, turns the FPU on when the code is built for one, opens the
 * semihosting handles and returns main()'s status to the host through exit() (QEMU's exit code).
 * Any fault exits with status 2.
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;

extern int main(void);
extern void initialise_monitor_handles(void);

void Reset_Handler(void);
void Fault_Handler(void);

void Reset_Handler(void)
{
    const uint32_t *src = &__data_load;
    uint32_t *dst;
    for (dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0;
    }
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: full access to CP10/CP11 */
    __asm__ __volatile__("dsb\n\tisb" ::: "memory");
#endif
    initialise_monitor_handles();
    exit(main());
}

void Fault_Handler(void)
{
    _Exit(2);
}

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&__stack_top,
    (uintptr_t)Reset_Handler,
    (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler,
    0,
    0,
    0,
    0,
    (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler,
    0,
    (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler};
