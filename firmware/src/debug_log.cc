// TFLM's DebugLog/MicroPrintf output goes into the simrun_log ring, which the
// host reads from target memory (there is no UART in the protocol).
#include <cstdarg>
#include <cstdio>

#include "simrun_abi.h"
#include "simrun_firmware.h"
#include "tensorflow/lite/micro/debug_log.h"

void simrun_log_write(const char* text) {
  for (; *text; ++text) simrun_log[simrun_log_head++ % SIMRUN_LOG_SIZE] = *text;
}

extern "C" void DebugLog(const char* format, va_list args) {
  char line[256];
  vsnprintf(line, sizeof line, format, args);  // truncates long lines, always terminates
  simrun_log_write(line);
}

extern "C" int DebugVsnprintf(char* buffer, size_t buf_size, const char* format, va_list vlist) {
  return vsnprintf(buffer, buf_size, format, vlist);
}
