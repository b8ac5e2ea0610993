# Upstream sources, pinned. FetchContent honours FETCHCONTENT_SOURCE_DIR_<NAME>
# (TFLITE_MICRO, CMSIS_NN, CMSIS_6, FLATBUFFERS, GEMMLOWP), which simrun sets
# from --sources / SIMRUN_SOURCES_DIR; otherwise the pinned archives are
# downloaded once and checked against the MD5s TFLM's own download scripts use.
include(FetchContent)

set(SIMRUN_TFLM_COMMIT 90b983c2b3f1480642e040bbd2ddb37b998f3424)
# Stall guards: a download that stops making progress fails instead of hanging.
set(_simrun_url_opts TIMEOUT 600 INACTIVITY_TIMEOUT 60 DOWNLOAD_EXTRACT_TIMESTAMP TRUE)

FetchContent_Declare(tflite_micro
  GIT_REPOSITORY https://github.com/tensorflow/tflite-micro.git
  GIT_TAG ${SIMRUN_TFLM_COMMIT}
  GIT_PROGRESS FALSE)
FetchContent_Declare(cmsis_nn
  URL https://github.com/ARM-software/CMSIS-NN/archive/4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae.zip
  URL_HASH MD5=c960031e7d10cf31c477fb34ef460106 ${_simrun_url_opts})
FetchContent_Declare(cmsis_6
  URL https://github.com/ARM-software/CMSIS_6/archive/5782d6f8057906d360f4b95ec08a2354afe5c9b9.zip
  URL_HASH MD5=563e7c6465f63bdc034359e9b536b366 ${_simrun_url_opts})
FetchContent_Declare(flatbuffers
  URL https://github.com/google/flatbuffers/archive/refs/tags/v25.9.23.zip
  URL_HASH MD5=023eca1e211d64007124420cd6be29c7 ${_simrun_url_opts})
FetchContent_Declare(gemmlowp
  URL https://github.com/google/gemmlowp/archive/719139ce755a0f31cbf1c37f7f98adcc7fc9f425.zip
  URL_HASH MD5=7e8191b24853d75de2af87622ad293ba ${_simrun_url_opts})

# Populate without add_subdirectory(): we only want the source trees.
function(simrun_fetch name out_var)
  FetchContent_GetProperties(${name})
  if(NOT ${name}_POPULATED)
    FetchContent_Populate(${name})
  endif()
  set(${out_var} "${${name}_SOURCE_DIR}" PARENT_SCOPE)
endfunction()
