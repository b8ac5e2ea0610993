/*
 * simrun firmware ABI: every symbol and struct the host controller relies on.
 *
 * Both the TFLM runner (firmware/src) and the fixture firmware
 * (firmware/fixture) implement exactly this header, so the host has one code
 * path for both. The host finds everything by symbol name through the ELF and
 * talks to the firmware only through target memory and breakpoints on the
 * simrun_hook_* functions; there is no UART protocol.
 *
 * Bump SIMRUN_ABI_VERSION on any change to a struct layout, a symbol's meaning
 * or the protocol below; the host refuses an ELF whose version differs.
 *
 * Protocol (one session):
 *   1. Host loads the ELF, the core is halted at reset; the host runs it to
 *      main(), because the C runtime zeroes .bss (where a firmware may keep
 *      the host-written variables) before main.
 *   2. Host writes the model into simrun_model and its size into
 *      simrun_model_size, optionally lowers simrun_arena_limit, continues.
 *   3. Firmware checks the model, allocates tensors, fills simrun_status and
 *      simrun_inputs/simrun_outputs, calls simrun_hook_ready(). On error the
 *      status says why and the firmware calls simrun_hook_done() instead.
 *   4. At simrun_hook_ready the host writes input data to simrun_inputs[i].address,
 *      sets simrun_command (SIMRUN_CMD_INVOKE or SIMRUN_CMD_STOP), continues.
 *   5. Firmware invokes; around every operator of every subgraph it fills
 *      simrun_op_event and calls simrun_hook_op_begin()/simrun_hook_op_end().
 *      The host stops there only if it set a breakpoint (per-layer capture).
 *   6. Firmware fills simrun_outputs and simrun_status, calls simrun_hook_done(),
 *      then goes back to step 4 (simrun_hook_ready) for the next input.
 *   Any HardFault/MemManage/BusFault/UsageFault fills simrun_fault and calls
 *   simrun_hook_fault(), then spins forever.
 */
#ifndef SIMRUN_ABI_H
#define SIMRUN_ABI_H

#include <stdint.h>

#define SIMRUN_ABI_VERSION 1u
#define SIMRUN_ABI_MAGIC 0x4E524D53u /* "SMRN" little-endian */

#define SIMRUN_MAX_DIMS 6
#define SIMRUN_MAX_IO 16          /* model inputs / outputs described */
#define SIMRUN_MAX_OP_OUTPUTS 8   /* outputs described per operator event */
#define SIMRUN_OP_NAME_LEN 32
#define SIMRUN_LOG_SIZE 4096

/* simrun_status.state */
enum {
  SIMRUN_STATE_BOOT = 0,          /* not yet past reset handler */
  SIMRUN_STATE_READY = 1,         /* allocated, waiting for input */
  SIMRUN_STATE_RUNNING = 2,       /* inside Invoke */
  SIMRUN_STATE_DONE = 3,          /* invoke finished (see .error) */
  SIMRUN_STATE_FAULT = 4,         /* see simrun_fault */
};

/* simrun_status.error */
enum {
  SIMRUN_OK = 0,
  SIMRUN_ERR_BAD_MODEL = 1,       /* size 0/too large, not a flatbuffer, schema version */
  SIMRUN_ERR_UNSUPPORTED_OP = 2,  /* .detail names the operator */
  SIMRUN_ERR_ARENA_TOO_SMALL = 3, /* .bytes_needed (0 if unknown) */
  SIMRUN_ERR_ALLOCATE_FAILED = 4, /* other AllocateTensors failure */
  SIMRUN_ERR_INVOKE_FAILED = 5,   /* .detail names the failing operator */
};

/* simrun_command */
enum {
  SIMRUN_CMD_NONE = 0,
  SIMRUN_CMD_INVOKE = 1,
  SIMRUN_CMD_STOP = 2,
};

/* simrun_op_event.phase */
enum { SIMRUN_PHASE_BEGIN = 0, SIMRUN_PHASE_END = 1 };

/*
 * One tensor as the firmware sees it. type is TfLiteType (kTfLiteInt8 = 9,
 * kTfLiteFloat32 = 1, ...). Quantization is per-tensor here; per-channel
 * parameters the host takes from the model file by tensor_index.
 */
typedef struct {
  uint32_t address;               /* data in target memory */
  uint32_t bytes;
  int32_t type;
  int32_t tensor_index;           /* index in its subgraph's tensor list */
  int32_t dims_count;
  int32_t dims[SIMRUN_MAX_DIMS];
  float scale;                    /* 0 if not quantized */
  int32_t zero_point;
} simrun_tensor_t;                /* 52 bytes */

typedef struct {
  uint32_t magic;                 /* SIMRUN_ABI_MAGIC once the firmware booted */
  uint32_t abi_version;           /* SIMRUN_ABI_VERSION */
  uint32_t state;
  uint32_t error;
  uint32_t bytes_needed;          /* with SIMRUN_ERR_ARENA_TOO_SMALL */
  uint32_t arena_used;            /* after a successful allocation */
  uint32_t invocations;           /* completed invokes */
  uint32_t input_count;           /* entries valid in simrun_inputs */
  uint32_t output_count;          /* entries valid in simrun_outputs */
  char detail[SIMRUN_OP_NAME_LEN];/* operator name for UNSUPPORTED_OP / INVOKE_FAILED */
} simrun_status_t;

typedef struct {
  uint32_t phase;                 /* SIMRUN_PHASE_* */
  uint32_t subgraph_index;
  uint32_t operator_index;
  int32_t builtin_code;           /* tflite::BuiltinOperator, -1 for custom */
  char op_name[SIMRUN_OP_NAME_LEN];
  uint32_t output_count;          /* valid entries in outputs (END only) */
  simrun_tensor_t outputs[SIMRUN_MAX_OP_OUTPUTS];
} simrun_op_event_t;

typedef struct {
  uint32_t valid;                 /* 1 once a fault was recorded */
  uint32_t ipsr;                  /* exception number that fired */
  uint32_t cfsr, hfsr, mmfar, bfar;
  uint32_t pc, lr, sp, xpsr;      /* stacked frame of the faulting code */
  uint32_t subgraph_index;        /* operator running when it faulted, */
  uint32_t operator_index;        /* 0xFFFFFFFF if outside Invoke */
} simrun_fault_t;

#ifdef __cplusplus
extern "C" {
#endif

/* Host-written before the first continue. */
extern uint8_t simrun_model[];            /* size: symbol size in the ELF (>= 2 MiB for TFLM) */
extern volatile uint32_t simrun_model_size;
extern uint8_t simrun_arena[];            /* size: symbol size in the ELF (>= 4 MiB for TFLM) */
extern volatile uint32_t simrun_arena_limit;  /* 0 = whole buffer; else use only this many bytes */
extern volatile uint32_t simrun_command;

/* Firmware-written. */
extern volatile simrun_status_t simrun_status;
extern volatile simrun_tensor_t simrun_inputs[SIMRUN_MAX_IO];
extern volatile simrun_tensor_t simrun_outputs[SIMRUN_MAX_IO];
extern volatile simrun_op_event_t simrun_op_event;
extern volatile simrun_fault_t simrun_fault;
extern char simrun_log[SIMRUN_LOG_SIZE];  /* ring of MicroPrintf output, NUL-padded */
extern volatile uint32_t simrun_log_head; /* total bytes ever written; index = head % size */

/* Breakpoint targets: empty, noinline, never optimised away. */
void simrun_hook_ready(void);
void simrun_hook_op_begin(void);
void simrun_hook_op_end(void);
void simrun_hook_done(void);
void simrun_hook_fault(void);

#ifdef __cplusplus
}
#endif

#endif /* SIMRUN_ABI_H */
