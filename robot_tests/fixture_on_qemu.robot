*** Settings ***
Documentation     The fixture firmware (simrun's own, no TFLM) on real QEMU:
...               input injection, per-layer capture against the fixture's
...               numpy model, and the fault and timeout errors.
...               Needs qemu-system-arm and arm-none-eabi-gcc, nothing else.
Resource          resources/simrun.resource
Suite Setup       Skip Unless Programs On Path    qemu-system-arm    arm-none-eabi-gcc
Test Teardown     Stop Emulator Session


*** Test Cases ***
Every Layer Read Back Equals The Fixture Reference
    [Template]    Per-Layer Capture Should Equal Reference
    cortex-m3     seed=7
    cortex-m4     seed=8
    cortex-m55    seed=9

A Layer Is Read Back By Index And Its Output Matches
    Start Fixture Session    cortex-m3
    Load Fixture Model    seed=3
    Set Random Input    seed=11
    Run Inference
    Captured Layer Count Should Be    3
    @{expected} =    Fixture Reference Outputs
    ${relu} =    Get Layer Output    0:1
    Arrays Should Be Equal    ${relu}    ${expected}[1]
    ${last} =    Get Layer Output    2
    Arrays Should Be Equal    ${last}    ${expected}[2]

Input From A File Arrives In Target Memory Bit Exact
    ${file} =    Set Variable    ${OUTPUT DIR}${/}fixture_input.npy
    ${sent} =    Evaluate    numpy.arange(-32, 32, dtype=numpy.int8).reshape(1, 64)    numpy
    Evaluate    numpy.save($file, $sent)    numpy
    Start Fixture Session    cortex-m55
    Load Fixture Model    seed=4
    Set Input From File    ${file}
    Run Inference
    ${seen} =    Get Target Input
    Arrays Should Be Equal    ${seen}    ${sent}
    Captured Layers Should Equal Fixture Reference

Plain Run Returns Only The Final Output
    Start Fixture Session    cortex-m3
    Load Fixture Model
    Set Random Input    seed=5
    Run Inference    capture_layers=False
    Captured Layer Count Should Be    0
    @{expected} =    Fixture Reference Outputs
    ${output} =    Get Model Output
    Arrays Should Be Equal    ${output}    ${expected}[-1]

A Faulting Layer Fails With TargetFault
    Start Fixture Session    cortex-m3
    Load Fixture Model    extra_layer=fault
    Set Random Input    seed=1
    ${message} =    Run Should Fail With    TargetFault    in operator 0:3 FIXTURE_FAULT
    Should Contain    ${message}    CFSR=

A Looping Layer Fails With EmulatorTimeout
    Start Fixture Session    cortex-m3    timeout=5
    Load Fixture Model    extra_layer=hang
    Set Random Input    seed=1
    Run Keyword And Expect Error    EmulatorTimeout: *in operator 0:3 FIXTURE_HANG*    Run Inference

A Too Small Arena Is Reported With The Bytes Needed
    Build Fixture Firmware    cortex-m3
    Start Emulator Session    timeout=30    arena_limit=64
    Run Keyword And Expect Error    ArenaTooSmall: tensor arena too small (* bytes needed, arena has 64)
    ...    Load Fixture Model


*** Keywords ***
Start Fixture Session
    [Arguments]    ${cpu}    ${timeout}=30
    Build Fixture Firmware    ${cpu}
    Start Emulator Session    timeout=${timeout}

Per-Layer Capture Should Equal Reference
    [Arguments]    ${cpu}    ${seed}
    Start Fixture Session    ${cpu}
    Load Fixture Model
    Set Random Input    ${seed}
    Run Inference
    Captured Layers Should Equal Fixture Reference
    Stop Emulator Session
