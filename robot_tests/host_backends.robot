*** Settings ***
Documentation     Host-side comparisons on the real models in ../shared/models:
...               desktop TFLite (ai-edge-litert) and host TFLM (tflite-micro wheel).
...               No emulator and no TFLM sources needed.
Resource          resources/simrun.resource
Suite Setup       Skip Unless Real Models


*** Test Cases ***
Host TFLM Agrees With TFLite Reference On Hello World
    Load Model    ${MODELS}/hello_world_int8.tflite
    Set Random Input    seed=1
    Compare Variants    tflite-reference    tflm-host
    First Divergent Layer Should Be    NONE
    Layer Mismatch Ratio Should Be Below    0.000001
    Outputs Should Match Within Policy    ${CURDIR}/resources/bit_exact.toml
    Write Reports    ${OUTPUT DIR}/hello_world_int8

Every Host Backend Runs Micro Speech Within The Default Policy
    Load Model    ${MODELS}/micro_speech_quantized.tflite
    Set Random Input    seed=3
    Compare Variants    tflite-optimized    tflite-reference    tflm-host
    First Divergent Layer Should Be    NONE    a=tflite-reference    b=tflm-host
    ${layer} =    Get Layer Output    0:1    label=tflm-host
    ${same} =    Get Layer Output    0:1    label=tflite-reference
    Arrays Should Be Equal    ${layer}    ${same}
    Outputs Should Match Within Policy

Desktop TFLite Refuses Person Detect While Host TFLM Runs It
    Load Model    ${MODELS}/person_detect.tflite
    Set Random Input    seed=1
    Compare Variants    tflite-optimized    tflite-reference    tflm-host
    Backend Should Have Failed With    tflite-optimized    quantized_dimension
    Backend Should Have Failed With    tflite-reference    quantized_dimension
    ${scores} =    Get Model Output    label=tflm-host
    Should Be Equal As Strings    ${scores.shape}    (1, 2)

A Refusing Backend Fails Run Backend With BackendError
    Load Model    ${MODELS}/person_detect.tflite
    Set Random Input    seed=2
    Run Keyword And Expect Error    BackendError: tflite-reference: *quantized_dimension*
    ...    Run Backend    tflite-reference
    Backend Should Have Failed With    tflite-reference    quantized_dimension
