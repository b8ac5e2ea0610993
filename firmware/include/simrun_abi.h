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
 * Version 2 (from 1): the buffers are no longer fixed by the build. The ELF
 * has one bulk region (simrun_bulk: the board's large RAM, its size the ELF
 * symbol's) and the host places model, arena and capture log in it at run
 * time (simrun_layout). simrun_tensor_t gained flags (constant / variable);
 * the begin event describes the operator's inputs; per-layer capture goes
 * through a capture log in board RAM with a drain hook, not a stop per operator.
 *
 * Protocol (one session):
 *   1. Host loads the ELF, the core is halted at reset; the host runs it to
 *      main(), because the C runtime zeroes .bss (where the host-written
 *      variables live) before main.
 *   2. Host writes the model into the bulk region, fills simrun_layout (model,
 *      arena and capture log addresses and sizes, all inside simrun_bulk),
 *      continues.
 *   3. Firmware checks the model, allocates tensors, fills simrun_status and
 *      simrun_inputs/simrun_outputs, calls simrun_hook_ready(). On error the
 *      status says why and the firmware calls simrun_hook_done() instead.
 *   4. At simrun_hook_ready the host writes input data to simrun_inputs[i].address,
 *      sets simrun_capture (SIMRUN_CAPTURE_* bits for this invoke) and
 *      simrun_command (SIMRUN_CMD_INVOKE or SIMRUN_CMD_STOP), continues.
 *   5. Firmware resets simrun_log_state and invokes; around every operator of
 *      every subgraph it fills simrun_op_event and calls simrun_hook_op_begin()
 *      / simrun_hook_op_end(). With SIMRUN_CAPTURE_INPUTS the begin event also
 *      describes the operator's inputs (the host stops there to overwrite
 *      them: isolation). With SIMRUN_CAPTURE_LOG the firmware appends, after
 *      each operator, a record (simrun_record_t, its output descriptors, then
 *      the output bytes) to the capture log. When a record does not fit, it
 *      sets simrun_log_state.pending to the record's size and calls
 *      simrun_hook_drain(); the host reads the `used` bytes of records, sets
 *      used = 0 and continues. A record larger than the whole log is not
 *      written: at that drain the host reads the outputs through the END
 *      event in simrun_op_event instead. With neither bit set nothing extra
 *      is done (a plain run pays only the two hook calls per operator).
 *   6. Firmware fills simrun_outputs and simrun_status, calls simrun_hook_done(),
 *      then goes back to step 4 (simrun_hook_ready) for the next input. The
 *      host reads the records left in the log once, at simrun_hook_done.
 *   Any HardFault/MemManage/BusFault/UsageFault fills simrun_fault and calls
 *   simrun_hook_fault(), then spins forever.
 */
#ifndef SIMRUN_ABI_H
#define SIMRUN_ABI_H

#include <stdint.h>

#define SIMRUN_ABI_VERSION 2u
#define SIMRUN_ABI_MAGIC 0x4E524D53u /* "SMRN" little-endian */

#define SIMRUN_MAX_DIMS 6
#define SIMRUN_MAX_IO 16          /* model inputs / outputs described */
#define SIMRUN_MAX_OP_OUTPUTS 8   /* outputs described per operator event */
#define SIMRUN_MAX_OP_INPUTS 24   /* inputs described per begin event (LSTM has 24) */
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

/* simrun_capture: what the firmware does during the next invoke */
#define SIMRUN_CAPTURE_LOG 1u      /* append a record per operator to the capture log */
#define SIMRUN_CAPTURE_INPUTS 2u   /* describe each operator's inputs in its begin event */

/* simrun_tensor_t.flags */
#define SIMRUN_TENSOR_CONSTANT 1u  /* data is in the model (weights, biases, constants) */
#define SIMRUN_TENSOR_VARIABLE 2u  /* variable / state tensor (persists across invokes) */

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
  uint32_t flags;                 /* SIMRUN_TENSOR_* */
} simrun_tensor_t;                /* 56 bytes */

/* Host-written at main(): where the model, the arena and the capture log are.
 * Every range lies inside simrun_bulk; addresses are 16-byte aligned. */
typedef struct {
  uint32_t model_address;
  uint32_t model_size;            /* bytes of the model the host wrote */
  uint32_t arena_address;
  uint32_t arena_capacity;        /* bytes reserved for the arena */
  uint32_t arena_size;            /* bytes the firmware may use (<= capacity; a user's limit) */
  uint32_t log_address;
  uint32_t log_capacity;          /* bytes of capture log */
} simrun_layout_t;

/* Capture log state; the firmware zeroes it when an invoke starts. */
typedef struct {
  uint32_t used;                  /* bytes of complete records from log_address */
  uint32_t records;               /* records written this invoke (also those drained) */
  uint32_t pending;               /* at simrun_hook_drain: size of the record that did not fit */
  uint32_t drains;                /* simrun_hook_drain calls this invoke */
} simrun_log_state_t;

/* One capture-log record: this header, then simrun_tensor_t outputs[output_count]
 * (address: where the tensor lives in the arena), then each output's bytes in
 * the same order, each padded to a multiple of 4. */
typedef struct {
  uint32_t record_bytes;          /* whole record, a multiple of 4 */
  uint32_t subgraph_index;
  uint32_t operator_index;
  int32_t builtin_code;
  char op_name[SIMRUN_OP_NAME_LEN];
  uint32_t output_count;
  uint32_t op_fields[3];          /* per-operator figures (e.g. counters); 0 unless a firmware fills them */
} simrun_record_t;                /* 64 bytes */

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
  uint32_t input_count;           /* valid entries in inputs (BEGIN with SIMRUN_CAPTURE_INPUTS) */
  uint32_t input_total;           /* the operator's inputs; > input_count if some were not described */
  simrun_tensor_t outputs[SIMRUN_MAX_OP_OUTPUTS];
  simrun_tensor_t inputs[SIMRUN_MAX_OP_INPUTS];  /* optional (absent) inputs are skipped */
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

/* The board's bulk RAM the host lays out (size: the ELF symbol's). */
extern uint8_t simrun_bulk[];
/* Host-written at main() / before each invoke. */
extern volatile simrun_layout_t simrun_layout;
extern volatile uint32_t simrun_command;
extern volatile uint32_t simrun_capture;  /* SIMRUN_CAPTURE_* for the next invoke */

/* Firmware-written. */
extern volatile simrun_status_t simrun_status;
extern volatile simrun_tensor_t simrun_inputs[SIMRUN_MAX_IO];
extern volatile simrun_tensor_t simrun_outputs[SIMRUN_MAX_IO];
extern volatile simrun_op_event_t simrun_op_event;
extern volatile simrun_fault_t simrun_fault;
extern char simrun_log[SIMRUN_LOG_SIZE];  /* ring of MicroPrintf output, NUL-padded */
extern volatile uint32_t simrun_log_head; /* total bytes ever written; index = head % size */
extern volatile simrun_log_state_t simrun_log_state;

/* Shared firmware helpers (abi_state.c): zero simrun_log_state at invoke
 * start; append the END event in simrun_op_event to the capture log
 * (a no-op unless SIMRUN_CAPTURE_LOG). */
void simrun_capture_begin_invoke(void);
void simrun_capture_op_end(void);

/* Breakpoint targets: empty, noinline, never optimised away. */
void simrun_hook_ready(void);
void simrun_hook_op_begin(void);
void simrun_hook_op_end(void);
void simrun_hook_done(void);
void simrun_hook_fault(void);
void simrun_hook_drain(void);             /* capture log full: host empties it */

#ifdef __cplusplus
}
#endif

#endif /* SIMRUN_ABI_H */
