/*
 * The ABI's shared state (firmware/include/simrun_abi.h): buffers the host
 * writes, status the firmware writes, and the hook functions the host sets
 * breakpoints on. The one definition for both firmwares: the TFLM runner
 * (CMakeLists.txt) and the fixture (simrun/fixture.py) compile this file.
 *
 * Every variable is plain .bss (or .bulk): the host writes its variables at
 * main(), after the startup code has cleared .bss (ABI protocol step 1).
 */
#include "simrun_abi.h"

/* Each build says how big its buffers are (the TFLM build: simrun/build.py via
 * CMake; the fixture: simrun/fixture.py); the host reads the sizes from the
 * ELF symbol table. No default, so a build that forgets cannot ship wrong sizes. */
#if !defined(SIMRUN_MODEL_BYTES) || !defined(SIMRUN_ARENA_BYTES)
#error "define SIMRUN_MODEL_BYTES and SIMRUN_ARENA_BYTES (sizes of simrun_model and simrun_arena)"
#endif

#define BULK __attribute__((section(".bulk"), aligned(16)))
#define HOOK __attribute__((noinline, used))

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

/* Distinct bodies keep the linker from folding the hooks into one address. */
HOOK void simrun_hook_ready(void) { __asm volatile("" ::: "memory"); }
HOOK void simrun_hook_op_begin(void) { __asm volatile("nop" ::: "memory"); }
HOOK void simrun_hook_op_end(void) { __asm volatile("nop\n nop" ::: "memory"); }
HOOK void simrun_hook_done(void) { __asm volatile("nop\n nop\n nop" ::: "memory"); }
HOOK void simrun_hook_fault(void) { __asm volatile("nop\n nop\n nop\n nop" ::: "memory"); }
