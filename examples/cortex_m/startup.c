/*
 * startup.c - the least a Cortex-M needs before main(): a vector table and a reset handler.
 *
 * The core reads the initial stack pointer and the reset handler's address from the first two
 * words of the vector table, placed at address 0 by the linker script (mps2.ld, microbit.ld).
 * The reset handler copies the initialised data from flash to RAM, zeroes .bss, turns the FPU on
 * where the core has one (HAVE_FPU=1: M4F, M7; the code is then built with -mfloat-abi=hard and
 * the first float instruction would fault otherwise), opens the semihosting stdio handles (printf
 * build only) and runs main(). Its status goes to the host (QEMU's exit code).
 */
#include <stdint.h>

#ifndef HAVE_FPU
#define HAVE_FPU 0
#endif
#ifndef OUTPUT_HEX
#define OUTPUT_HEX 0
#endif

/* Defined by the linker script. */
extern uint32_t __stack_top;
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;

extern int main(void);
extern void SysTick_Handler(void); /* main.c: counts SysTick wraps */
#if OUTPUT_HEX
extern void board_exit(int status); /* main.c: semihosting SYS_EXIT_EXTENDED */
#else
#include <stdlib.h>
extern void initialise_monitor_handles(void); /* newlib's rdimon: semihosting stdin/out/err */
#define board_exit exit
#endif

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
#if HAVE_FPU
    CPACR |= 0xFu << 20; /* full access to CP10 and CP11: the FPU */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
#if !OUTPUT_HEX
    initialise_monitor_handles();
#endif
    board_exit(main());
}

/* Any fault or unexpected interrupt: report failure (status 2) to the host instead of hanging. */
void Fault_Handler(void)
{
#if OUTPUT_HEX
    board_exit(2);
#else
    _Exit(2);
#endif
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
    (uintptr_t)Fault_Handler,   /* 14 PendSV                */
    (uintptr_t)SysTick_Handler, /* 15 SysTick               */
};
