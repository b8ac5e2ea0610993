// The ABI's shared state (firmware/include/simrun_abi.h): buffers the host
// writes, status the firmware writes, and the hook functions the host sets
// breakpoints on.
#include "simrun_abi.h"

#define BULK __attribute__((section(".bulk"), aligned(16)))
#define HOOK __attribute__((noinline, used))

// Sized by CMake (SIMRUN_MODEL_BYTES / SIMRUN_ARENA_BYTES); the host reads the
// sizes from the ELF symbol table.
uint8_t simrun_model[SIMRUN_MODEL_BYTES] BULK;
uint8_t simrun_arena[SIMRUN_ARENA_BYTES] BULK;
volatile uint32_t simrun_model_size;
volatile uint32_t simrun_arena_limit;
volatile uint32_t simrun_command;

volatile simrun_status_t simrun_status;
volatile simrun_tensor_t simrun_inputs[SIMRUN_MAX_IO];
volatile simrun_tensor_t simrun_outputs[SIMRUN_MAX_IO];
volatile simrun_op_event_t simrun_op_event;
volatile simrun_fault_t simrun_fault;
char simrun_log[SIMRUN_LOG_SIZE];
volatile uint32_t simrun_log_head;

// Distinct bodies keep the linker from folding the hooks into one address.
extern "C" {
HOOK void simrun_hook_ready(void) { __asm volatile("" ::: "memory"); }
HOOK void simrun_hook_op_begin(void) { __asm volatile("nop" ::: "memory"); }
HOOK void simrun_hook_op_end(void) { __asm volatile("nop\n nop" ::: "memory"); }
HOOK void simrun_hook_done(void) { __asm volatile("nop\n nop\n nop" ::: "memory"); }
HOOK void simrun_hook_fault(void) { __asm volatile("nop\n nop\n nop\n nop" ::: "memory"); }
}
