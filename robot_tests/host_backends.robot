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
    Layer Mismatch Ratio Should Be Below    0.01    a=tflite-reference    b=tflm-host
    Outputs Should Match Within Policy
    Write Reports    ${OUTPUT DIR}/hello_world_int8

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
