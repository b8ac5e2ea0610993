// Per-operator events for the host: a TFLM profiler whose Begin/EndEvent fill
// simrun_op_event and call simrun_hook_op_begin/end.
#ifndef SIMRUN_OP_HOOKS_H
#define SIMRUN_OP_HOOKS_H

#include <cstdint>

#include "simrun_abi.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace simrun {

// Fills `out` from a tensor of subgraph `subgraph`: data, shape and type from
// the interpreter's eval tensor, per-tensor scale/zero point and the
// constant/variable flags from the model.
void DescribeEvalTensor(const tflite::Model* model, int subgraph, int tensor_index,
                        const TfLiteEvalTensor& tensor, volatile simrun_tensor_t* out);

void CopyName(volatile char* dst, const char* src);

// MicroInterpreter keeps context() protected; the hooks need it to reach the graph.
class Interpreter : public tflite::MicroInterpreter {
 public:
  using tflite::MicroInterpreter::MicroInterpreter;
  const TfLiteContext& tflite_context() const { return context(); }
};

class OpHooks : public tflite::MicroProfilerInterface {
 public:
  // Events are reported only while enabled (i.e. inside Invoke).
  void Attach(Interpreter* interpreter, const tflite::Model* model);
  void Enable(bool on) { enabled_ = on; }
  // Name of the innermost operator begun last; "" before any.
  const char* last_op_name() const { return last_name_; }

  uint32_t BeginEvent(const char* tag) override;
  void EndEvent(uint32_t event_handle) override;

 private:
  static constexpr int kMaxDepth = 8;  // nested CALL_ONCE/WHILE/IF subgraphs
  void Fill(uint32_t phase, int subgraph, int op, const char* tag);
  void DescribeInputs(int subgraph, const tflite::NodeAndRegistration& nr);

  Interpreter* interpreter_ = nullptr;
  const tflite::Model* model_ = nullptr;
  bool enabled_ = false;
  int depth_ = 0;
  uint32_t stack_[kMaxDepth] = {};
  const char* names_[kMaxDepth] = {};
  const char* last_name_ = "";
};

}  // namespace simrun

#endif
