// Precompiled header for the TFLM objects (CMakeLists.txt, SIMRUN_PCH).
//
// Parsing dominates a TFLM compile: a kernel such as conv.cc preprocesses to
// ~105,000 lines (schema_generated.h alone is a quarter, libstdc++ most of the
// rest) and GCC 12 at -O2 spends ~95 % of its time parsing them and ~5 %
// generating code. These are the headers nearly every TFLM file includes;
// parsed once per build tree, they cut a file's compile time about fivefold.
//
// Every object stays byte-identical to one compiled without this header (the
// headers are include-guarded and self-contained, no file defines a macro they
// test before including them; bench/build_time.py --check-identical verifies it),
// so the switch is no part of the firmware cache key. __has_include keeps local
// TFLM trees of other versions building: a header they lack is skipped.
#if __has_include("tensorflow/lite/c/common.h")
#include "tensorflow/lite/c/common.h"
#endif
#if __has_include("tensorflow/lite/c/builtin_op_data.h")
#include "tensorflow/lite/c/builtin_op_data.h"
#endif
#if __has_include("tensorflow/lite/schema/schema_generated.h")
#include "tensorflow/lite/schema/schema_generated.h"
#endif
#if __has_include("tensorflow/lite/kernels/internal/common.h")
#include "tensorflow/lite/kernels/internal/common.h"
#endif
#if __has_include("tensorflow/lite/kernels/internal/types.h")
#include "tensorflow/lite/kernels/internal/types.h"
#endif
#if __has_include("tensorflow/lite/kernels/kernel_util.h")
#include "tensorflow/lite/kernels/kernel_util.h"
#endif
#if __has_include("tensorflow/lite/micro/kernels/kernel_util.h")
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#endif
#if __has_include("tensorflow/lite/micro/micro_log.h")
#include "tensorflow/lite/micro/micro_log.h"
#endif
#if __has_include("tensorflow/lite/micro/micro_context.h")
#include "tensorflow/lite/micro/micro_context.h"
#endif
