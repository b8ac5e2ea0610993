# File lists for TFLM and CMSIS-NN, mirroring TFLM's own make build
# (tools/make/sources.inc, ext_libs/cmsis_nn.inc). Sets:
#   TFLM_COMMON_SRCS      core + every kernel that no CMSIS-NN file replaces
#   TFLM_REFERENCE_SRCS   the reference kernels that CMSIS-NN replaces
#   TFLM_CMSIS_NN_SRCS    their kernels/cmsis_nn/*.cc replacements
#   CMSIS_NN_LIB_SRCS     the CMSIS-NN library (int paths only, as TFLM builds it)
function(simrun_tflm_sources tflm cmsis_nn)
  set(micro ${tflm}/tensorflow/lite/micro)
  file(GLOB core
    ${micro}/*.cc
    ${micro}/arena_allocator/*.cc
    ${micro}/memory_planner/*.cc
    ${micro}/tflite_bridge/*.cc)
  # The TfLite files TFLM shares (sources.inc: TFL_CC_SRCS), minus array.cc
  # which TF_LITE_STATIC_MEMORY builds leave out.
  file(GLOB_RECURSE tfl ${tflm}/tensorflow/*.cc ${tflm}/tensorflow/*.c)
  list(FILTER tfl EXCLUDE REGEX "/tensorflow/lite/(micro|experimental)/|/tensorflow/lite/array\\.cc$")
  file(GLOB kernels ${micro}/kernels/*.cc)
  set(all ${core} ${tfl} ${kernels})
  # Tests, test helpers and test data; debug_log.cc is ours (firmware/src).
  list(FILTER all EXCLUDE REGEX "_test\\.cc$|/test_helpers?[a-z_]*\\.cc$|/fake_micro_context\\.cc$|/mock_micro_graph\\.cc$|/kernel_runner\\.cc$|/conv_test_common\\.cc$|_generated_data\\.cc$|/micro/debug_log\\.cc$")

  file(GLOB cmsis_kernels ${micro}/kernels/cmsis_nn/*.cc)
  set(replaced)
  foreach(f ${cmsis_kernels})
    get_filename_component(n ${f} NAME)
    list(APPEND replaced ${micro}/kernels/${n})
  endforeach()
  set(common ${all})
  list(REMOVE_ITEM common ${replaced})

  file(GLOB_RECURSE nn ${cmsis_nn}/Source/*.c)
  # TFLM builds CMSIS-NN with ARM_NN_ENABLE_F16/F32 = 0 and drops the float files.
  list(FILTER nn EXCLUDE REGEX "_f16\\.c$|_f32\\.c$|/arm_nntables_flt\\.c$")

  set(TFLM_COMMON_SRCS ${common} PARENT_SCOPE)
  set(TFLM_REFERENCE_SRCS ${replaced} PARENT_SCOPE)
  set(TFLM_CMSIS_NN_SRCS ${cmsis_kernels} PARENT_SCOPE)
  set(CMSIS_NN_LIB_SRCS ${nn} PARENT_SCOPE)
endfunction()
