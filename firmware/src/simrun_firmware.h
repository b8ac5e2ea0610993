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

#ifdef __cplusplus
}
#endif

#endif
