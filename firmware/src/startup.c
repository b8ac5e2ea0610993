/*
 * Reset and vector table for every Cortex-M target: copy .data, zero .bss,
 * give the FPU/MVE access, route the configurable faults to their own handlers
 * (so CFSR says what happened), run static constructors, enter main().
 *
 * Shared by the TFLM runner and the fixture firmware (simrun/fixture.py), so
 * CI's fixture tests exercise the startup the TFLM firmware ships.
 */
#include <stdint.h>

#include "simrun_firmware.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern int main(void);
extern void simrun_fault_handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)

__attribute__((noreturn)) static void halt(void) {
  for (;;) __asm volatile("" ::: "memory");
}

__attribute__((noreturn)) void Reset_Handler(void) {
  uint32_t *src = &__data_load, *dst = &__data_start;
  while (dst < &__data_end) *dst++ = *src++;
  for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  SCB_CPACR |= 0xFu << 20; /* CP10/CP11: the compiler emits FP/MVE code anywhere */
  __asm volatile("dsb\n isb" ::: "memory");
#endif
#if __ARM_ARCH >= 7
  SCB_SHCSR |= 7u << 16; /* MemManage, BusFault, UsageFault enabled */
#endif
#if __ARM_ARCH >= 8
  SCB_SHCSR |= 1u << 19; /* SecureFault */
#endif
  simrun_run_constructors();
  main();
  halt();
}

static void default_handler(void) { halt(); }

__attribute__((section(".vectors"), used)) void (*const simrun_vectors[16])(void) = {
    (void (*)(void))&__stack_top,
    Reset_Handler,
    default_handler,      /* NMI */
    simrun_fault_handler, /* HardFault */
    simrun_fault_handler, /* MemManage */
    simrun_fault_handler, /* BusFault */
    simrun_fault_handler, /* UsageFault */
    simrun_fault_handler, /* SecureFault (v8-M), reserved before */
    0, 0, 0,
    default_handler, /* SVCall */
    default_handler, /* DebugMonitor */
    0,
    default_handler, /* PendSV */
    default_handler, /* SysTick */
};
