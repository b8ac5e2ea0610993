/*
 * The ABI's shared state (firmware/include/simrun_abi.h): the bulk region and
 * layout the host writes, status the firmware writes, the hook functions the
 * host sets breakpoints on, and the capture log writer both firmwares call.
 * The one definition for both firmwares: the TFLM runner (CMakeLists.txt) and the fixture (simrun/device/fixture.py) compile this file.
 *
 * Every variable is plain .bss (or .bulk): the host writes its variables at
 * main(), after the startup code has cleared .bss (ABI protocol step 1).
 */
#include "simrun_abi.h"

/* The bulk region spans the board's large RAM (the TFLM build: the board row's
 * bulk size via CMake; the fixture: simrun/device/fixture.py). The host reads its size from
 * the ELF symbol table and lays model, arena and capture log out in it at run
 * time. No default, so a build that forgets cannot ship a wrong size. */
#if !defined(SIMRUN_BULK_BYTES)
#error "define SIMRUN_BULK_BYTES (size of simrun_bulk: the board's bulk RAM)"
#endif

#include <string.h>

#define BULK __attribute__((section(".bulk"), aligned(16)))
#define HOOK __attribute__((noinline, used))

uint8_t simrun_bulk[SIMRUN_BULK_BYTES] BULK;
volatile simrun_layout_t simrun_layout;
volatile uint32_t simrun_command;
volatile uint32_t simrun_capture;

volatile simrun_status_t simrun_status;
volatile simrun_tensor_t simrun_inputs[SIMRUN_MAX_IO];
volatile simrun_tensor_t simrun_outputs[SIMRUN_MAX_IO];
volatile simrun_op_event_t simrun_op_event;
volatile simrun_fault_t simrun_fault;
char simrun_log[SIMRUN_LOG_SIZE];
volatile uint32_t simrun_log_head;
volatile simrun_log_state_t simrun_log_state;

/* Distinct bodies keep the linker from folding the hooks into one address. */
HOOK void simrun_hook_ready(void) { __asm volatile("" ::: "memory"); }
HOOK void simrun_hook_op_begin(void) { __asm volatile("nop" ::: "memory"); }
HOOK void simrun_hook_op_end(void) { __asm volatile("nop\n nop" ::: "memory"); }
HOOK void simrun_hook_done(void) { __asm volatile("nop\n nop\n nop" ::: "memory"); }
HOOK void simrun_hook_fault(void) { __asm volatile("nop\n nop\n nop\n nop" ::: "memory"); }
HOOK void simrun_hook_drain(void) { __asm volatile("nop\n nop\n nop\n nop\n nop" ::: "memory"); }

void simrun_capture_begin_invoke(void) {
  simrun_log_state.used = 0;
  simrun_log_state.records = 0;
  simrun_log_state.pending = 0;
  simrun_log_state.drains = 0;
}

static uint32_t pad4(uint32_t n) { return (n + 3u) & ~3u; }

/* The END event as a record (ABI protocol step 5). Runs after every operator
 * in capture mode, so it copies with memcpy and touches the event once. */
void simrun_capture_op_end(void) {
  if (!(simrun_capture & SIMRUN_CAPTURE_LOG)) return;
  const simrun_op_event_t *ev = (const simrun_op_event_t *)&simrun_op_event;
  uint32_t n = ev->output_count;
  if (n > SIMRUN_MAX_OP_OUTPUTS) n = SIMRUN_MAX_OP_OUTPUTS;
  uint32_t size = (uint32_t)(sizeof(simrun_record_t) + n * sizeof(simrun_tensor_t));
  for (uint32_t i = 0; i < n; ++i) size += pad4(ev->outputs[i].bytes);
  const uint32_t capacity = simrun_layout.log_capacity;
  if (simrun_log_state.used + size > capacity) {
    simrun_log_state.pending = size;
    simrun_log_state.drains = simrun_log_state.drains + 1;
    simrun_hook_drain();            /* the host empties the log (used = 0) */
    simrun_log_state.pending = 0;
    if (simrun_log_state.used + size > capacity) {
      simrun_log_state.records = simrun_log_state.records + 1;  /* taken from the event at the drain */
      return;
    }
  }
  uint8_t *rec = (uint8_t *)(uintptr_t)(simrun_layout.log_address + simrun_log_state.used);
  simrun_record_t head;
  head.record_bytes = size;
  head.subgraph_index = ev->subgraph_index;
  head.operator_index = ev->operator_index;
  head.builtin_code = ev->builtin_code;
  memcpy(head.op_name, ev->op_name, SIMRUN_OP_NAME_LEN);
  head.output_count = n;
  head.op_fields[0] = head.op_fields[1] = head.op_fields[2] = 0;
  memcpy(rec, &head, sizeof head);
  uint8_t *at = rec + sizeof head;
  memcpy(at, ev->outputs, n * sizeof(simrun_tensor_t));
  at += n * sizeof(simrun_tensor_t);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t bytes = ev->outputs[i].bytes;
    memcpy(at, (const void *)(uintptr_t)ev->outputs[i].address, bytes);
    at += pad4(bytes);
  }
  simrun_log_state.used = simrun_log_state.used + size;
  simrun_log_state.records = simrun_log_state.records + 1;
}
