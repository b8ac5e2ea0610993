#include "op_hooks.h"

#include "simrun_firmware.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_interpreter_graph.h"

volatile uint32_t simrun_running_subgraph = SIMRUN_NO_OP;
volatile uint32_t simrun_running_operator = SIMRUN_NO_OP;

namespace simrun {
namespace {

// The interpreter keeps its graph behind the MicroContext; during Invoke it is
// a MicroInterpreterGraph, which knows the subgraph/operator being run.
tflite::MicroInterpreterGraph& GraphOf(Interpreter* interpreter) {
  return static_cast<tflite::MicroInterpreterGraph&>(
      tflite::GetMicroContext(&interpreter->tflite_context())->graph());
}

uint32_t Handle(int subgraph, int op) {
  return (static_cast<uint32_t>(subgraph) << 16) | (static_cast<uint32_t>(op) & 0xFFFFu);
}

}  // namespace

void CopyName(volatile char* dst, const char* src) {
  int i = 0;
  for (; src && src[i] && i < SIMRUN_OP_NAME_LEN - 1; ++i) dst[i] = src[i];
  for (; i < SIMRUN_OP_NAME_LEN; ++i) dst[i] = 0;
}

void DescribeEvalTensor(const tflite::Model* model, int subgraph, int tensor_index,
                        const TfLiteEvalTensor& tensor, volatile simrun_tensor_t* out) {
  size_t bytes = 0;
  if (tflite::TfLiteEvalTensorByteLength(&tensor, &bytes) != kTfLiteOk) bytes = 0;
  out->address = reinterpret_cast<uintptr_t>(tensor.data.data);
  out->bytes = bytes;
  out->type = tensor.type;
  out->tensor_index = tensor_index;
  int n = tensor.dims ? tensor.dims->size : 0;
  if (n > SIMRUN_MAX_DIMS) n = SIMRUN_MAX_DIMS;
  out->dims_count = n;
  for (int d = 0; d < SIMRUN_MAX_DIMS; ++d) out->dims[d] = d < n ? tensor.dims->data[d] : 0;
  float scale = 0.0f;
  int32_t zero_point = 0;
  const auto* t = model->subgraphs()->Get(subgraph)->tensors()->Get(tensor_index);
  const tflite::QuantizationParameters* q = t->quantization();
  if (q && q->scale() && q->scale()->size() > 0) {
    scale = q->scale()->Get(0);
    if (q->zero_point() && q->zero_point()->size() > 0) {
      zero_point = static_cast<int32_t>(q->zero_point()->Get(0));
    }
  }
  out->scale = scale;
  out->zero_point = zero_point;
  // Constant: its data is in the model (a buffer with bytes, or an offset
  // buffer of a >2 GB model); the isolation host never overwrites those.
  uint32_t flags = t->is_variable() ? SIMRUN_TENSOR_VARIABLE : 0u;
  const auto* buffers = model->buffers();
  if (buffers && t->buffer() < buffers->size()) {
    const tflite::Buffer* b = buffers->Get(t->buffer());
    if (b && ((b->data() && b->data()->size() > 0) || b->offset() > 1)) flags |= SIMRUN_TENSOR_CONSTANT;
  }
  out->flags = flags;
}

void OpHooks::Attach(Interpreter* interpreter, const tflite::Model* model) {
  interpreter_ = interpreter;
  model_ = model;
  depth_ = 0;
  last_name_ = "";
}

void OpHooks::Fill(uint32_t phase, int subgraph, int op, const char* tag) {
  const tflite::SubgraphAllocations* alloc = GraphOf(interpreter_).GetAllocations();
  const tflite::NodeAndRegistration& nr = alloc[subgraph].node_and_registrations[op];
  simrun_op_event.phase = phase;
  simrun_op_event.subgraph_index = subgraph;
  simrun_op_event.operator_index = op;
  simrun_op_event.builtin_code =
      nr.registration->custom_name != nullptr ? -1 : nr.registration->builtin_code;
  CopyName(simrun_op_event.op_name, tag);
  simrun_op_event.output_count = 0;
  simrun_op_event.input_count = 0;
  simrun_op_event.input_total = 0;
  if (phase == SIMRUN_PHASE_BEGIN && (simrun_capture & SIMRUN_CAPTURE_INPUTS)) DescribeInputs(subgraph, nr);
  if (phase != SIMRUN_PHASE_END || nr.node.outputs == nullptr) return;
  uint32_t count = 0;
  for (int i = 0; i < nr.node.outputs->size && count < SIMRUN_MAX_OP_OUTPUTS; ++i) {
    const int index = nr.node.outputs->data[i];
    if (index < 0) continue;  // optional output not present
    DescribeEvalTensor(model_, subgraph, index, alloc[subgraph].tensors[index],
                       &simrun_op_event.outputs[count++]);
  }
  simrun_op_event.output_count = count;
}

// Isolation mode only (SIMRUN_CAPTURE_INPUTS): the host overwrites these at the begin hook.
void OpHooks::DescribeInputs(int subgraph, const tflite::NodeAndRegistration& nr) {
  if (nr.node.inputs == nullptr) return;
  const tflite::SubgraphAllocations* alloc = GraphOf(interpreter_).GetAllocations();
  uint32_t count = 0, total = 0;
  for (int i = 0; i < nr.node.inputs->size; ++i) {
    const int index = nr.node.inputs->data[i];
    if (index < 0) continue;  // optional input not present
    ++total;
    if (count < SIMRUN_MAX_OP_INPUTS) {
      DescribeEvalTensor(model_, subgraph, index, alloc[subgraph].tensors[index],
                         &simrun_op_event.inputs[count++]);
    }
  }
  simrun_op_event.input_count = count;
  simrun_op_event.input_total = total;
}

uint32_t OpHooks::BeginEvent(const char* tag) {
  if (!enabled_) return 0;
  tflite::MicroInterpreterGraph& graph = GraphOf(interpreter_);
  const int subgraph = graph.GetCurrentSubgraphIndex();
  const int op = graph.GetCurrentOperatorIndex();
  const uint32_t handle = Handle(subgraph, op);
  if (depth_ < kMaxDepth) {
    stack_[depth_] = handle;
    names_[depth_] = tag;
  }
  ++depth_;
  last_name_ = tag;
  simrun_running_subgraph = subgraph;
  simrun_running_operator = op;
  Fill(SIMRUN_PHASE_BEGIN, subgraph, op, tag);
  simrun_hook_op_begin();
  return handle;
}

// Runs after the operator's invoke returned (ScopedMicroProfiler's destructor),
// so its outputs are final; nested subgraph events have ended already.
void OpHooks::EndEvent(uint32_t handle) {
  if (!enabled_ || depth_ == 0) return;
  --depth_;
  const int subgraph = static_cast<int>(handle >> 16);
  const int op = static_cast<int>(handle & 0xFFFFu);
  const char* tag = depth_ < kMaxDepth ? names_[depth_] : "";
  Fill(SIMRUN_PHASE_END, subgraph, op, tag);
  simrun_capture_op_end();  // per-layer capture: the record goes to the log, no stop
  simrun_hook_op_end();
  if (depth_ > 0 && depth_ <= kMaxDepth) {
    simrun_running_subgraph = stack_[depth_ - 1] >> 16;
    simrun_running_operator = stack_[depth_ - 1] & 0xFFFFu;
  } else {
    simrun_running_subgraph = SIMRUN_NO_OP;
    simrun_running_operator = SIMRUN_NO_OP;
  }
}

}  // namespace simrun
