// Stand-in for ruy's profiler header, which TFLM's reference kernels include
// only for ruy::profiler::ScopeLabel. Without RUY_PROFILER (as TFLM builds it)
// ruy's own header reduces ScopeLabel to this no-op, so we provide just that
// instead of pinning and fetching a sixth upstream tree.
#ifndef SIMRUN_SHIM_RUY_PROFILER_INSTRUMENTATION_H_
#define SIMRUN_SHIM_RUY_PROFILER_INSTRUMENTATION_H_

namespace ruy {
namespace profiler {

class ScopeLabel {
 public:
  template <typename... Args>
  explicit ScopeLabel(Args...) {}
};

}  // namespace profiler
}  // namespace ruy

#endif
