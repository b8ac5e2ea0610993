# Toolchain file: bare-metal Arm with the GNU Arm Embedded toolchain (arm-none-eabi-gcc).
# CPU flags are not set here: they come from simrun/device/targets.py via SIMRUN_CPU_FLAGS,
# so one toolchain file serves every Cortex-M target.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(SIMRUN_TOOLCHAIN_PREFIX "arm-none-eabi-" CACHE STRING "cross toolchain prefix")
find_program(CMAKE_C_COMPILER ${SIMRUN_TOOLCHAIN_PREFIX}gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER ${SIMRUN_TOOLCHAIN_PREFIX}g++ REQUIRED)
find_program(CMAKE_ASM_COMPILER ${SIMRUN_TOOLCHAIN_PREFIX}gcc REQUIRED)
find_program(CMAKE_OBJCOPY ${SIMRUN_TOOLCHAIN_PREFIX}objcopy)
find_program(CMAKE_SIZE ${SIMRUN_TOOLCHAIN_PREFIX}size)

# No host libraries can link for the target: compiler checks build a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
