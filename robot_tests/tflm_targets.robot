*** Settings ***
Documentation     Emulated TFLM firmware on Cortex-M55 in both kernel variants.
...               Needs local TFLM / CMSIS-NN source trees (SIMRUN_SOURCES_DIR):
...               every test skips with the reason when they are absent.
Resource          resources/simrun.resource
Suite Setup       Run Keywords    Skip Unless Real Models
...               AND    Skip Unless Programs On Path    qemu-system-arm    arm-none-eabi-gcc    cmake
...               AND    Skip Unless TFLM Sources
Test Teardown     Stop Emulator Session
Test Tags         needs-tflm


*** Test Cases ***
Target Reference Kernels Equal Host TFLM On Person Detect
    Load Model    ${MODELS}/person_detect.tflite
    Set Random Input    seed=1
    Build Firmware    cortex-m55    reference
    Start Emulator Session
    Run Inference
    Run Backend    tflm-host
    Compare Captures    tflm-host    target:cortex-m55:reference
    First Divergent Layer Should Be    NONE
    Layer Mismatch Ratio Should Be Below    0.000001

Reference And CMSIS-NN Kernels Agree Within Policy On Person Detect
    Load Model    ${MODELS}/person_detect.tflite
    Set Random Input    seed=1
    # Build here, where a cold build may take minutes; the backends then find both in the cache.
    Build Firmware    cortex-m55    reference
    Build Firmware    cortex-m55    cmsis-nn
    Compare Variants    target:cortex-m55:reference    target:cortex-m55:cmsis-nn
    Outputs Should Match Within Policy
    Write Reports    ${OUTPUT DIR}/person_detect_m55
