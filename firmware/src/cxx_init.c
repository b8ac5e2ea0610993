/*
 * Static constructors for the TFLM runner (C++): newlib runs .preinit_array,
 * _init and .init_array. Kept out of startup.c because the fixture firmware
 * shares that file but has no C++ and no .init_array in its linker script.
 */
#include "simrun_firmware.h"

extern void __libc_init_array(void);

/* -nostartfiles drops crti/crtn, but newlib's __libc_init_array still calls these. */
void _init(void) {}
void _fini(void) {}

void simrun_run_constructors(void) { __libc_init_array(); }
