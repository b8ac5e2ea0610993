// The simrun TFLM runner: loads whatever model the host wrote where
// simrun_layout says, then invokes it once per SIMRUN_CMD_INVOKE, reporting through
// the ABI in simrun_abi.h (status, tensors, per-operator events, log).
#include <cstdlib>
#include <cstring>
#include <new>

#include "op_hooks.h"
#include "simrun_abi.h"
#include "simrun_all_ops.h"  // generated: every builtin op of the pinned TFLM
#include "simrun_firmware.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_resource_variable.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"

namespace {

using Resolver = tflite::MicroMutableOpResolver<SIMRUN_OP_COUNT>;

Resolver resolver;
simrun::OpHooks hooks;
const tflite::Model* model = nullptr;
alignas(simrun::Interpreter) uint8_t interpreter_storage[sizeof(simrun::Interpreter)];
simrun::Interpreter* interpreter = nullptr;

[[noreturn]] void Halt() {
  for (;;) __asm volatile("" ::: "memory");
}

void SetDetail(const char* text) { simrun::CopyName(simrun_status.detail, text); }

void RegisterAllOps() {
#define SIMRUN_ADD(method)                                      \
  if (resolver.method() != kTfLiteOk) {                         \
    simrun_log_write("simrun: registering " #method " failed\n"); \
  }
  SIMRUN_FOR_EACH_OP(SIMRUN_ADD)
#undef SIMRUN_ADD
}

uint32_t CheckModel() {
  const uint32_t size = simrun_layout.model_size;
  const uint8_t* data = reinterpret_cast<const uint8_t*>(simrun_layout.model_address);
  if (size < 8 || data == nullptr) return SIMRUN_ERR_BAD_MODEL;
  flatbuffers::Verifier verifier(data, size);
  if (!tflite::VerifyModelBuffer(verifier)) {
    simrun_log_write("simrun: model is not a valid TFLite flatbuffer\n");
    return SIMRUN_ERR_BAD_MODEL;
  }
  model = tflite::GetModel(data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("simrun: model schema version %d, TFLM supports %d", model->version(),
                TFLITE_SCHEMA_VERSION);
    return SIMRUN_ERR_BAD_MODEL;
  }
  if (model->subgraphs() == nullptr || model->subgraphs()->size() == 0) return SIMRUN_ERR_BAD_MODEL;
  return SIMRUN_OK;
}

// Every operator code the model uses must be registered; name the first that is not.
uint32_t CheckOperators() {
  const auto* codes = model->operator_codes();
  if (codes == nullptr) return SIMRUN_OK;
  for (const tflite::OperatorCode* code : *codes) {
    const tflite::BuiltinOperator builtin = tflite::GetBuiltinCode(code);
    if (builtin == tflite::BuiltinOperator_CUSTOM) {
      const char* name = code->custom_code() ? code->custom_code()->c_str() : "CUSTOM";
      if (resolver.FindOp(name) == nullptr) {
        SetDetail(name);
        return SIMRUN_ERR_UNSUPPORTED_OP;
      }
    } else if (resolver.FindOp(builtin) == nullptr) {
      SetDetail(tflite::EnumNameBuiltinOperator(builtin));
      return SIMRUN_ERR_UNSUPPORTED_OP;
    }
  }
  return SIMRUN_OK;
}

void DestroyInterpreter() {
  if (interpreter) interpreter->~Interpreter();
  interpreter = nullptr;
}

// VAR_HANDLE operators in all subgraphs: each names at most one resource variable,
// so this many slots hold every variable of the model (streaming models keep
// their state in them).
int CountVarHandles() {
  int count = 0;
  const auto* codes = model->operator_codes();
  for (const tflite::SubGraph* subgraph : *model->subgraphs()) {
    if (subgraph->operators() == nullptr || codes == nullptr) continue;
    for (const tflite::Operator* op : *subgraph->operators()) {
      if (op->opcode_index() < codes->size() &&
          tflite::GetBuiltinCode(codes->Get(op->opcode_index())) ==
              tflite::BuiltinOperator_VAR_HANDLE) {
        ++count;
      }
    }
  }
  return count;
}

TfLiteStatus Allocate(size_t arena_bytes) {
  DestroyInterpreter();
  // Resource variables live in the arena's persistent part, so the allocator comes
  // first; models without VAR_HANDLE get none (and the arena figures stay as before).
  tflite::MicroAllocator* allocator = tflite::MicroAllocator::Create(
      reinterpret_cast<uint8_t*>(simrun_layout.arena_address), arena_bytes);
  if (allocator == nullptr) return kTfLiteError;
  tflite::MicroResourceVariables* variables = nullptr;
  if (const int count = CountVarHandles()) {
    variables = tflite::MicroResourceVariables::Create(allocator, count);
    if (variables == nullptr) return kTfLiteError;
  }
  interpreter = new (interpreter_storage)
      simrun::Interpreter(model, resolver, allocator, variables, &hooks);
  hooks.Attach(interpreter, model);
  return interpreter->AllocateTensors();
}

// "missing: N" from TFLM's allocator messages written since log position `from`.
uint32_t MissingBytesLogged(uint32_t from) {
  static char text[SIMRUN_LOG_SIZE + 1];
  uint32_t n = simrun_log_head - from;
  if (n > SIMRUN_LOG_SIZE) {
    from = simrun_log_head - SIMRUN_LOG_SIZE;
    n = SIMRUN_LOG_SIZE;
  }
  for (uint32_t i = 0; i < n; ++i) text[i] = simrun_log[(from + i) % SIMRUN_LOG_SIZE];
  text[n] = 0;
  uint32_t missing = 0;
  for (const char* p = strstr(text, "missing: "); p; p = strstr(p + 1, "missing: ")) {
    uint32_t v = strtoul(p + 9, nullptr, 10);
    if (v > missing) missing = v;
  }
  return missing;
}

uint32_t AllocateTensors() {
  // The host placed the arena (ABI v2); arena_size is a user's limit within it.
  const size_t whole = simrun_layout.arena_capacity;
  size_t limit = simrun_layout.arena_size ? simrun_layout.arena_size : whole;
  if (limit > whole) limit = whole;
  const uint32_t log_mark = simrun_log_head;
  if (Allocate(limit) == kTfLiteOk) {
    simrun_status.arena_used = interpreter->arena_used_bytes();
    return SIMRUN_OK;
  }
  const uint32_t missing = MissingBytesLogged(log_mark);
  if (limit < whole) {
    // Measure what the model needs with the whole buffer: that is the number
    // the user wants, not the shortfall of this one attempt.
    const uint32_t retry_mark = simrun_log_head;
    if (Allocate(whole) == kTfLiteOk) {
      // TFLM's own advice: +16 covers aligning the arena start.
      simrun_status.bytes_needed = interpreter->arena_used_bytes() + 16;
      DestroyInterpreter();
      return SIMRUN_ERR_ARENA_TOO_SMALL;
    }
    const uint32_t more = MissingBytesLogged(retry_mark);
    if (more) {
      simrun_status.bytes_needed = whole + more;  // a lower bound: allocation stopped there
      return SIMRUN_ERR_ARENA_TOO_SMALL;
    }
    return missing ? SIMRUN_ERR_ARENA_TOO_SMALL : SIMRUN_ERR_ALLOCATE_FAILED;
  }
  if (missing) {
    simrun_status.bytes_needed = limit + missing;  // a lower bound
    return SIMRUN_ERR_ARENA_TOO_SMALL;
  }
  return SIMRUN_ERR_ALLOCATE_FAILED;
}

uint32_t Setup() {
  uint32_t err = CheckModel();
  if (err == SIMRUN_OK) err = CheckOperators();
  if (err == SIMRUN_OK) err = AllocateTensors();
  return err;
}

void DescribeTensor(const TfLiteTensor* t, int tensor_index, volatile simrun_tensor_t* out) {
  out->address = reinterpret_cast<uintptr_t>(t->data.raw);
  out->bytes = t->bytes;
  out->type = t->type;
  out->tensor_index = tensor_index;
  int n = t->dims ? t->dims->size : 0;
  if (n > SIMRUN_MAX_DIMS) n = SIMRUN_MAX_DIMS;
  out->dims_count = n;
  for (int d = 0; d < SIMRUN_MAX_DIMS; ++d) out->dims[d] = d < n ? t->dims->data[d] : 0;
  out->scale = t->params.scale;
  out->zero_point = t->params.zero_point;
}

void DescribeInputs() {
  const auto* indices = model->subgraphs()->Get(0)->inputs();
  uint32_t n = interpreter->inputs_size();
  if (n > SIMRUN_MAX_IO) n = SIMRUN_MAX_IO;
  for (uint32_t i = 0; i < n; ++i) DescribeTensor(interpreter->input(i), indices->Get(i), &simrun_inputs[i]);
  simrun_status.input_count = n;
}

void DescribeOutputs() {
  const auto* indices = model->subgraphs()->Get(0)->outputs();
  uint32_t n = interpreter->outputs_size();
  if (n > SIMRUN_MAX_IO) n = SIMRUN_MAX_IO;
  for (uint32_t i = 0; i < n; ++i) DescribeTensor(interpreter->output(i), indices->Get(i), &simrun_outputs[i]);
  simrun_status.output_count = n;
}

void Invoke() {
  simrun_status.state = SIMRUN_STATE_RUNNING;
  simrun_capture_begin_invoke();
  hooks.Enable(true);
  const TfLiteStatus status = interpreter->Invoke();
  hooks.Enable(false);
  simrun_running_subgraph = SIMRUN_NO_OP;
  simrun_running_operator = SIMRUN_NO_OP;
  if (status == kTfLiteOk) {
    DescribeOutputs();
    simrun_status.invocations = simrun_status.invocations + 1;
    simrun_status.error = SIMRUN_OK;
  } else {
    SetDetail(hooks.last_op_name());
    simrun_status.error = SIMRUN_ERR_INVOKE_FAILED;
  }
  simrun_status.state = SIMRUN_STATE_DONE;
}

}  // namespace

int main() {
  simrun_status.abi_version = SIMRUN_ABI_VERSION;
  simrun_status.state = SIMRUN_STATE_BOOT;
  simrun_status.magic = SIMRUN_ABI_MAGIC;
  simrun_log_write("simrun tflm runner (" SIMRUN_KERNELS " kernels): boot\n");
  tflite::InitializeTarget();
  RegisterAllOps();

  const uint32_t err = Setup();
  if (err != SIMRUN_OK) {
    simrun_status.error = err;
    simrun_status.state = SIMRUN_STATE_DONE;
    simrun_hook_done();
    Halt();
  }
  DescribeInputs();
  for (;;) {
    simrun_command = SIMRUN_CMD_NONE;
    simrun_status.state = SIMRUN_STATE_READY;
    simrun_hook_ready();
    if (simrun_command != SIMRUN_CMD_INVOKE) break;
    Invoke();
    simrun_hook_done();
  }
  Halt();
}
