*** Settings ***
Documentation     Instructions executed per operator, counted by simrun's QEMU plugin,
...               on the fixture firmware (no TFLM): the same count on every run, and
...               assertions that pass and fail on it. Needs qemu-system-arm,
...               arm-none-eabi-gcc and QEMU's plugin header (downloaded from the Debian
...               archive, or SIMRUN_QEMU_SOURCE_DIR); skipped with the reason without it.
Resource          resources/simrun.resource
Suite Setup       Enable Counting Or Skip
Suite Teardown    Count Instructions    enabled=False
Test Teardown     Stop Emulator Session


*** Test Cases ***
A Layer Executes The Same Instructions On Every Run
    Run Fixture Model    cortex-m4
    ${first} =    Get Instructions Of Layer    0:0
    Should Be True    ${first} > 0
    Run Inference
    ${again} =    Get Instructions Of Layer    0:0
    Should Be Equal As Integers    ${again}    ${first}

Instruction Limits Pass And Fail On The Count
    Run Fixture Model    cortex-m55
    ${n} =    Get Instructions Of Layer    0:0
    Instructions Of Layer Should Be Below    0:0    ${n + 1}
    ${shown} =    Evaluate    format($n, ",")
    Run Keyword And Expect Error    *executed ${shown} instructions, limit*
    ...    Instructions Of Layer Should Be Below    0:0    ${n}
    Total Instructions Should Be Below    ${n * 2}
    Run Keyword And Expect Error    *instructions executed, limit*    Total Instructions Should Be Below    ${n}

A Wider Input Makes The First Dense Layer Execute More Instructions
    ${narrow} =    Run Fixture Model    cortex-m3    input_len=32
    ${n_narrow} =    Get Instructions Of Layer    0:0
    ${wide} =    Run Fixture Model    cortex-m3    input_len=64
    ${n_wide} =    Get Instructions Of Layer    0:0
    Should Be True    ${n_narrow} < ${n_wide}
    Run Keyword And Expect Error    *not fewer than*
    ...    Layer Should Execute Fewer Instructions    0:0    ${wide.backend}    than=${wide.backend}


*** Keywords ***
Enable Counting Or Skip
    Skip Unless Programs On Path    qemu-system-arm    arm-none-eabi-gcc
    ${status}    ${message} =    Run Keyword And Ignore Error    Count Instructions
    Skip If    '${status}' == 'FAIL'    instruction counting unavailable: ${message}

Run Fixture Model
    [Documentation]    Runs the fixture's demo model on ${cpu} with counting on; returns the Capture.
    [Arguments]    ${cpu}    ${input_len}=64
    Build Fixture Firmware    ${cpu}
    Start Emulator Session    timeout=30
    Load Fixture Model    seed=3    input_len=${input_len}
    Set Random Input    seed=1
    ${capture} =    Run Inference
    RETURN    ${capture}
