// Internal interfaces between the runner's source files.
#ifndef SIMRUN_FIRMWARE_H
#define SIMRUN_FIRMWARE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIMRUN_NO_OP 0xFFFFFFFFu

// The operator inside Invoke right now (innermost when subgraphs nest),
// SIMRUN_NO_OP outside Invoke; the fault handler reports it.
extern volatile uint32_t simrun_running_subgraph;
extern volatile uint32_t simrun_running_operator;

void simrun_log_write(const char* text);

// Called by Reset_Handler (startup.c) between the .bss clear and main(); each
// firmware defines it: cxx_init.c for the TFLM runner, the fixture its own.
void simrun_run_constructors(void);

#ifdef __cplusplus
}
#endif

#endif
