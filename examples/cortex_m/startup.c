/*
 * startup.c - the least a Cortex-M4F needs before main(): a vector table and a reset handler.
 *
 * The core reads the initial stack pointer and the reset handler's address from the first two
 * words of the vector table, placed at address 0 by mps2_an386.ld. The reset handler copies the
 * initialised data from flash to RAM, zeroes .bss, turns the FPU on (the code is built with
 * -mfloat-abi=hard, so the first float instruction would fault otherwise), opens the semihosting
 * stdio handles and runs main(). exit() returns its status to the host (QEMU's exit code).
 */
#include <stdint.h>
#include <stdlib.h>

/* Defined by the linker script. */
extern uint32_t __stack_top;
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;

extern int main(void);
extern void initialise_monitor_handles(void); /* newlib's rdimon: semihosting stdin/out/err */

void Reset_Handler(void);
void Fault_Handler(void);

#define CPACR (*(volatile uint32_t *)0xE000ED88u) /* Coprocessor Access Control Register */

void Reset_Handler(void)
{
    const uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0;
    }
    CPACR |= 0xFu << 20; /* full access to CP10 and CP11: the FPU */
    __asm volatile("dsb\n\tisb" ::: "memory");
    initialise_monitor_handles();
    exit(main());
}

/* Any fault or unexpected interrupt: report failure to the host instead of hanging. */
void Fault_Handler(void)
{
    _Exit(2);
}

/* Exceptions 0 (initial SP) to 15 (SysTick); reserved slots are 0. */
__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&__stack_top,  /*  0 initial stack pointer */
    (uintptr_t)Reset_Handler, /*  1 reset                 */
    (uintptr_t)Fault_Handler, /*  2 NMI                   */
    (uintptr_t)Fault_Handler, /*  3 HardFault             */
    (uintptr_t)Fault_Handler, /*  4 MemManage             */
    (uintptr_t)Fault_Handler, /*  5 BusFault              */
    (uintptr_t)Fault_Handler, /*  6 UsageFault            */
    0,
    0,
    0,
    0,
    (uintptr_t)Fault_Handler, /* 11 SVCall                */
    (uintptr_t)Fault_Handler, /* 12 DebugMonitor          */
    0,
    (uintptr_t)Fault_Handler, /* 14 PendSV                */
    (uintptr_t)Fault_Handler, /* 15 SysTick               */
};
