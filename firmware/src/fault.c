/*
 * Fault capture: HardFault, MemManage, BusFault, UsageFault and (v8-M)
 * SecureFault all land here. The handler records the fault status registers,
 * the stacked exception frame and the operator that was running into
 * simrun_fault, calls simrun_hook_fault() for the host, then spins.
 */
#include <stdint.h>

#include "simrun_abi.h"
#include "simrun_firmware.h"

#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

/* frame: the stacked r0-r3, r12, lr, pc, xpsr of the faulting code. */
__attribute__((used, noreturn)) void simrun_fault_report(const uint32_t *frame, uint32_t ipsr) {
  simrun_fault.ipsr = ipsr & 0x1FFu;
#if __ARM_ARCH >= 7 /* v6-M has no fault status registers */
  simrun_fault.cfsr = SCB_CFSR;
  simrun_fault.hfsr = SCB_HFSR;
  simrun_fault.mmfar = SCB_MMFAR;
  simrun_fault.bfar = SCB_BFAR;
#endif
  simrun_fault.lr = frame[5];
  simrun_fault.pc = frame[6];
  simrun_fault.xpsr = frame[7];
  simrun_fault.sp = (uint32_t)(uintptr_t)frame + 32u;
  simrun_fault.subgraph_index = simrun_running_subgraph;
  simrun_fault.operator_index = simrun_running_operator;
  simrun_fault.valid = 1;
  simrun_status.state = SIMRUN_STATE_FAULT;
  simrun_hook_fault();
  for (;;) __asm volatile("" ::: "memory");
}

/* Picks the stack the faulting code used (EXC_RETURN bit 2); Thumb-1 only, for v6-M. */
__attribute__((naked)) void simrun_fault_handler(void) {
  __asm volatile(
      "mov r0, lr\n"
      "movs r1, #4\n"
      "tst r0, r1\n"
      "bne 1f\n"
      "mrs r0, msp\n"
      "b 2f\n"
      "1: mrs r0, psp\n"
      "2: mrs r1, ipsr\n"
      "ldr r2, =simrun_fault_report\n"
      "bx r2\n");
}
